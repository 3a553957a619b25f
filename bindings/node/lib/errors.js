'use strict';
// Errors carrying liblakebase's result code and its detail message (which never holds a secret).

/** lakebase_result values (include/lakebase.h). */
const Result = Object.freeze({
  OK: 0,
  INVALID_ARGUMENT: 1,
  INSUFFICIENT_SIZE: 2,
  CONFIG_ERROR: 3,
  AUTH_ERROR: 4,
  API_ERROR: 5,
  NETWORK_ERROR: 6,
  INTERNAL_ERROR: 7,
  WOULD_BLOCK: 8,
});

/**
 * A failed liblakebase call. `message` is the library's (auth method, HTTP status, the API's error
 * code and message, what to set; never a token), `code` the result's name (`'LAKEBASE_AUTH_ERROR'`,
 * ...) and `result` its number.
 */
class LakebaseError extends Error {
  constructor(message, code, result) {
    super(message || code);
    this.name = 'LakebaseError';
    this.code = code;
    this.result = result;
  }
}

/** liblakebase could not be loaded (see LAKEBASE_LIBRARY). */
class LibraryNotFoundError extends LakebaseError {
  constructor(message) {
    super(message, 'LAKEBASE_LIBRARY_NOT_FOUND', -1);
    this.name = 'LibraryNotFoundError';
  }
}

function invalidArgument(message) {
  return new LakebaseError(message, 'LAKEBASE_INVALID_ARGUMENT', Result.INVALID_ARGUMENT);
}

module.exports = { Result, LakebaseError, LibraryNotFoundError, invalidArgument };
