// ES module entry point: the same objects as the CommonJS one (lib/index.js).
import lakebase from './lib/index.js';

export const {
  Client,
  LakebaseError,
  LibraryNotFoundError,
  Result,
  createLakebasePool,
  defaultClient,
  getLakebasePgConfig,
  getPassword,
  libraryPath,
  optionsString,
  passwordCallback,
  quoteValue,
  version,
} = lakebase;
export default lakebase;
