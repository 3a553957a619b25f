'use strict';
// Loading liblakebase with koffi and declaring the C prototypes of include/lakebase.h.
// Nothing here caches passwords or reads configuration: every call goes to the library.

const fs = require('node:fs');
const path = require('node:path');
const { Result, LakebaseError, LibraryNotFoundError } = require('./errors');

/** The SONAME major version this binding speaks. */
const ABI_MAJOR = 0;
/** A first guess that fits a Lakebase token (~1 KB), so a cache hit is one call. */
const FIRST_GUESS = 2048;

const PACKAGE_ROOT = path.join(__dirname, '..');

/** The prebuilds/ folder name for this platform: linux-x64, linux-arm64, linux-x64-musl, ... */
function platformDir() {
  let musl = false;
  if (process.platform === 'linux') {
    try {
      musl = !process.report.getReport().header.glibcVersionRuntime;
    } catch {
      musl = false;
    }
  }
  return `${process.platform}-${process.arch}${musl ? '-musl' : ''}`;
}

/**
 * Where to look, in order: $LAKEBASE_LIBRARY (a path; when set, nothing else is tried), the copy
 * bundled in this package (prebuilds/<platform>/liblakebase.so.0), the system loader
 * (liblakebase.so.0, then liblakebase.so: ld.so.cache, LD_LIBRARY_PATH).
 */
function candidates(env = process.env) {
  if (env.LAKEBASE_LIBRARY) return [env.LAKEBASE_LIBRARY];
  const out = [];
  const prebuilds = path.join(PACKAGE_ROOT, 'prebuilds');
  if (fs.existsSync(prebuilds)) { // (platformDir() asks for a process report: only when there is something to pick)
    const bundled = path.join(prebuilds, platformDir(), 'liblakebase.so.0');
    if (fs.existsSync(bundled)) out.push(bundled);
  }
  out.push('liblakebase.so.0', 'liblakebase.so');
  return out;
}

let state = null; // { koffi, lib, path, fn: {...} }

let typesDeclared = false;

function declare(koffi, lib) {
  if (!typesDeclared) {
    koffi.opaque('lakebase_client');
    typesDeclared = true;
  }
  const f = (proto) => lib.func(proto);
  return {
    version: f('const char *lakebase_version(void)'),
    resultName: f('const char *lakebase_result_name(int result)'),
    lastError: f('size_t lakebase_last_error(uint8_t *buf, size_t buf_len)'),
    clientNew: f('int lakebase_client_new(const uint8_t *options, _Out_ lakebase_client **out)'),
    clientFree: f('void lakebase_client_free(lakebase_client *c)'),
    defaultClient: f('int lakebase_default_client(_Out_ const lakebase_client **out)'),
    getPassword: f('int lakebase_client_get_password(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    tryGetPassword: f('int lakebase_client_try_get_password(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    refresh: f('int lakebase_client_refresh(const lakebase_client *c)'),
    tokenExpiry: f('int lakebase_client_token_expiry(const lakebase_client *c, int64_t *out_unix_seconds)'),
    identity: f('int lakebase_client_identity(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    authType: f('int lakebase_client_auth_type(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    refreshError: f('int lakebase_client_refresh_error(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    postgresHost: f('int lakebase_client_postgres_host(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    postgresRole: f('int lakebase_client_postgres_role(const lakebase_client *c, uint8_t *buf, size_t buf_len, size_t *out_len)'),
    refreshRejected: f('int lakebase_client_refresh_rejected(const lakebase_client *c, const uint8_t *rejected)'),
    connectRetryDelay: f('int lakebase_connect_retry_delay(const char *sqlstate, const char *message, int password_asked, uint32_t failed_attempts, int64_t elapsed_ms, const char *connect_timeout, int64_t *out_delay_ms)'),
  };
}

/**
 * The loaded library (loaded on first use, so requiring the package never fails). `only` forces
 * one file (worker threads load exactly what the main thread loaded).
 */
function load(only) {
  if (state) return state;
  let koffi;
  try {
    koffi = require('koffi');
  } catch (e) {
    throw new LibraryNotFoundError(`the koffi package could not be loaded (${e.message}); reinstall lakebase's dependencies`);
  }
  const tried = [];
  for (const cand of only ? [only] : candidates()) {
    let lib;
    try {
      lib = koffi.load(cand);
    } catch (e) {
      tried.push(`${cand} (${String(e.message).split('\n')[0]})`);
      continue;
    }
    let fn;
    try {
      fn = declare(koffi, lib);
    } catch (e) {
      tried.push(`${cand} (not liblakebase: ${e.message})`);
      continue;
    }
    const version = fn.version();
    if (String(version).split('.')[0] !== String(ABI_MAJOR)) {
      tried.push(`${cand} (version ${version}, this binding needs ${ABI_MAJOR}.x)`);
      continue;
    }
    state = { koffi, lib, path: cand, fn, version };
    return state;
  }
  throw new LibraryNotFoundError(
    'liblakebase not found; set LAKEBASE_LIBRARY to the path of liblakebase.so, install it ' +
      `(make install) or put it on LD_LIBRARY_PATH. Tried: ${tried.join('; ')}`,
  );
}

function fn() {
  return (state || load()).fn;
}

/** This thread's detail message for its last failed call (koffi's synchronous calls run on this thread). */
function lastError() {
  const f = fn();
  const n = Number(f.lastError(null, 0));
  if (n === 0) return '';
  const buf = Buffer.alloc(n + 1);
  f.lastError(buf, n + 1);
  return buf.toString('utf8', 0, n);
}

function errorFor(result, message) {
  const name = fn().resultName(result);
  return new LakebaseError(message || name, name, result);
}

function check(result) {
  if (result !== Result.OK) throw errorFor(result, lastError());
}

// One reusable output buffer per thread (JS runs one call at a time on it); wiped after each use.
const shared = { buf: Buffer.alloc(FIRST_GUESS), len: new BigUint64Array(1) };

/**
 * Call a (client, buf, buf_len, out_len) function: copy into a Buffer sized with the library's
 * INSUFFICIENT_SIZE protocol, decode, wipe the buffer. Returns undefined on LAKEBASE_WOULD_BLOCK
 * (only try_get_password answers it); throws LakebaseError on any other failure.
 */
function getString(f, handle) {
  let buf = shared.buf;
  const len = shared.len;
  for (let i = 0; i < 8; i++) { // the value may grow between calls (a new token); bounded
    const r = f(handle, buf, buf.length, len);
    if (r === Result.OK) {
      const n = Number(len[0]);
      const s = buf.toString('utf8', 0, n);
      buf.fill(0, 0, n);
      return s;
    }
    if (r === Result.WOULD_BLOCK) return undefined;
    if (r !== Result.INSUFFICIENT_SIZE) check(r);
    buf.fill(0);
    buf = Buffer.alloc(Number(len[0]) + 1);
  }
  buf.fill(0);
  throw new LakebaseError('value kept growing while it was being copied', 'LAKEBASE_INTERNAL_ERROR', Result.INTERNAL_ERROR);
}

/**
 * lakebase_connect_retry_delay: milliseconds to wait before repeating a failed connect, or
 * `undefined` to give up (the library's policy for endpoints waking from scale-to-zero; budget
 * LAKEBASE_CONNECT_RETRY, else connect_timeout, else 10 s). No I/O.
 */
function connectRetryDelay(sqlstate, message, passwordAsked, failedAttempts, elapsedMs, connectTimeout) {
  const out = new BigInt64Array(1);
  check(fn().connectRetryDelay(sqlstate ?? null, message ?? null, passwordAsked ? 1 : 0, Math.max(1, failedAttempts),
    Math.max(0, Math.floor(elapsedMs)), connectTimeout ?? null, out));
  return out[0] < 0n ? undefined : Number(out[0]);
}

/** The library's file or name, and its version. */
function info() {
  const s = state || load();
  return { path: s.path, version: s.version };
}

module.exports = { ABI_MAJOR, candidates, platformDir, load, fn, check, errorFor, lastError, getString, info, connectRetryDelay };
