'use strict';
// Rotating Databricks Lakebase OAuth passwords for Node.js: a koffi binding of liblakebase.
// The library caches and refreshes tokens and resolves configuration exactly like the Databricks
// SDKs; this package only calls it, so a cache hit is a memory read.

const { Client, defaultClient, getPassword, version, libraryPath } = require('./client');
const { Result, LakebaseError, LibraryNotFoundError } = require('./errors');
const { optionsString, quoteValue } = require('./options');
const { createLakebasePool, getLakebasePgConfig, passwordCallback } = require('./pg');

module.exports = {
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
};
