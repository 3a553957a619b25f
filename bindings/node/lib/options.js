'use strict';
// The libpq-style options string liblakebase parses: key='value' ..., every value single-quoted
// with \' and \\ escaped (the same as the Python, Ruby and Go bindings build).

const { invalidArgument } = require('./errors');

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Quote one value: `'...'` with `\` and `'` backslash-escaped. */
function quoteValue(value) {
  return `'${String(value).replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** `clientSecret` -> `client_secret`; snake_case keys pass unchanged. */
function optionKey(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Build the options string from an object: camelCase keys become the library's snake_case keys
 * (`clientId` -> `client_id`), `undefined`/`null` values are left out. Keys are not checked against
 * a list here: the library knows them and rejects unknown ones.
 */
function optionsString(options) {
  if (options === undefined || options === null) return '';
  if (typeof options === 'string') return options;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalidArgument('options must be an object of option keys or an options string');
  }
  const parts = [];
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined || v === null) continue;
    const key = optionKey(k);
    if (!KEY.test(key)) throw invalidArgument(`invalid option name ${JSON.stringify(k)}`);
    let text;
    if (typeof v === 'string') text = v;
    else if (typeof v === 'number' || typeof v === 'bigint') text = String(v);
    else if (typeof v === 'boolean') text = v ? 'true' : 'false';
    else if (v instanceof URL) text = v.href.replace(/\/$/, '');
    else throw invalidArgument(`option ${k}: expected a string, number or boolean, got ${typeof v}`);
    if (text.includes('\0')) throw invalidArgument(`option ${k} contains a NUL character`);
    parts.push(`${key}=${quoteValue(text)}`);
  }
  return parts.join(' ');
}

module.exports = { quoteValue, optionKey, optionsString };
