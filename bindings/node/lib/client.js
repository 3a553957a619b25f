'use strict';
// Clients: thin wrappers over lakebase_client handles. All caching and refreshing happens in the
// library; this file only decides how to wait without blocking the event loop.

const crypto = require('node:crypto');
const native = require('./native');
const { runBlocking } = require('./blocking');
const { invalidArgument } = require('./errors');
const { optionsString } = require('./options');

// How long to wait between two non-blocking reads while the library fetches a token in the
// background: every 2 ms for the first 20 ms, every 5 ms up to 100 ms, then every 20 ms. A mint
// takes milliseconds (a nearby workspace) to a few hundred; the wait adds at most one interval.
function pollDelay(round) {
  if (round < 10) return 2;
  if (round < 26) return 5;
  return 20;
}

const freeOnCollect = new FinalizationRegistry((handle) => {
  try {
    native.fn().clientFree(handle);
  } catch {
    // the library cannot be gone if a handle exists; nothing useful to do at collection time
  }
});

const BORROW = Symbol('borrow');

/**
 * A Lakebase credential client: `new Client({ host, token, instance })`.
 *
 * Options are the library's option keys, camelCase or snake_case (`host`, `token`, `clientId`,
 * `clientSecret`, `profile`, `configFile`, `authType`, `accountId`, `instance`, `endpoint`,
 * `caFile`, `httpTimeoutSeconds`, ...) or a raw options string; what is not given comes from
 * `DATABRICKS_*` / `LAKEBASE_*` variables and `~/.databrickscfg`, as in the Databricks SDKs.
 * Creating a client does no network I/O. Clients with the same workspace, credentials and target
 * share one cached token inside the library (also across worker threads of one process).
 */
class Client {
  #handle = null;
  #borrowed = false;
  #closed = false;
  #busy = 0; // polls and worker calls using the handle; close() frees it once they are done
  #pending = null; // the shared wait for a token being fetched
  #identity = null;
  #role = null;
  #host = null;

  constructor(options) {
    if (options === BORROW) return; // Client[BORROW](handle)
    const text = optionsString(options);
    const f = native.fn();
    const cstr = Buffer.from(`${text}\0`, 'utf8'); // a Buffer, so the copy can be wiped (it may hold a secret)
    const out = [null];
    try {
      native.check(f.clientNew(cstr, out));
    } finally {
      cstr.fill(0);
    }
    this.#handle = out[0];
    freeOnCollect.register(this, out[0], this);
  }

  static [BORROW](handle) {
    const c = new Client(BORROW);
    c.#handle = handle;
    c.#borrowed = true;
    return c;
  }

  #h() {
    if (this.#closed || this.#handle === null) throw invalidArgument('this lakebase Client is closed');
    return this.#handle;
  }

  /**
   * The current Lakebase password (an OAuth token). Never blocks the event loop: a cache hit is a
   * memory read in the library; on a miss the library fetches a token on its own thread while this
   * promise polls it, and concurrent calls share that one fetch. Ask for it for every new
   * connection; do not keep it.
   */
  password() {
    let s;
    try {
      s = native.getString(native.fn().tryGetPassword, this.#h());
    } catch (e) {
      return Promise.reject(e);
    }
    return s !== undefined ? Promise.resolve(s) : this.#wait();
  }

  /**
   * The password if one can be served now (a memory read), else `undefined` after starting a
   * background fetch. Synchronous and non-blocking; throws LakebaseError on failures.
   */
  tryPassword() {
    return native.getString(native.fn().tryGetPassword, this.#h());
  }

  #wait() {
    if (this.#pending) return this.#pending;
    this.#busy++;
    const p = new Promise((resolve, reject) => {
      let round = 0;
      const tick = () => {
        let s;
        try {
          s = native.getString(native.fn().tryGetPassword, this.#h());
        } catch (e) {
          reject(e);
          return;
        }
        if (s !== undefined) resolve(s);
        else setTimeout(tick, pollDelay(++round));
      };
      setTimeout(tick, pollDelay(0));
    });
    this.#pending = p;
    const done = () => {
      if (this.#pending === p) this.#pending = null;
      this.#release();
    };
    p.then(done, done);
    return p;
  }

  /**
   * Discard the cached password and mint a new one now. After a rejected login prefer
   * refreshRejected(), which mints once however many connections report it.
   */
  refresh() {
    return this.#blocking('refresh').then(() => undefined);
  }

  /**
   * The server turned down a login with `rejected` (a password this client handed out): mint a new
   * one if it is still the cached password (N concurrent reports cause one mint; on a worker
   * thread). Resolves whether the client's password is now another one, i.e. worth one more login.
   */
  async refreshRejected(rejected) {
    // A Uint8Array of its own (not a view of Buffer's shared pool, which a worker would get whole).
    await this.#blocking('refreshRejected', new TextEncoder().encode(`${rejected}\0`));
    const now = Buffer.from(await this.password(), 'utf8');
    const was = Buffer.from(rejected, 'utf8');
    try {
      return now.length !== was.length || !crypto.timingSafeEqual(now, was);
    } finally {
      now.fill(0);
      was.fill(0);
    }
  }

  /**
   * The Postgres role to log in as: the group's role when the client acts for a group
   * (group_name / group_id), else identity(). The pools use it as the default user. One lookup the
   * first time (on a worker thread), then cached.
   */
  postgresRole() {
    if (!this.#role) {
      const p = this.#blocking('postgresRole');
      this.#role = p;
      p.catch(() => {
        if (this.#role === p) this.#role = null; // a failure is not remembered
      });
    }
    return this.#role;
  }

  /**
   * The identity the client authenticates as: the workspace user name (SCIM /Me), which is its
   * Postgres role, or a service principal's application id. One API call the first time (on a
   * worker thread), then cached.
   */
  identity() {
    if (!this.#identity) {
      const p = this.#blocking('identity');
      this.#identity = p;
      p.catch(() => {
        if (this.#identity === p) this.#identity = null; // a failure is not remembered
      });
    }
    return this.#identity;
  }

  /**
   * The Postgres host of the configured Lakebase database: a Provisioned instance's
   * `read_write_dns` or an Autoscaling endpoint's host. One API call the first time, then cached.
   */
  postgresHost() {
    if (!this.#host) {
      const p = this.#blocking('postgresHost');
      this.#host = p;
      p.catch(() => {
        if (this.#host === p) this.#host = null;
      });
    }
    return this.#host;
  }

  #blocking(op, arg) {
    let h;
    try {
      h = this.#h();
    } catch (e) {
      if (arg) arg.fill(0);
      return Promise.reject(e);
    }
    this.#busy++;
    const p = runBlocking(op, h, native.info().path, arg);
    const done = () => this.#release();
    p.then(done, done);
    return p;
  }

  /** Expiry of the cached password, or `undefined` when none is cached. No network I/O. */
  tokenExpiry() {
    const v = new BigInt64Array(1);
    native.check(native.fn().tokenExpiry(this.#h(), v));
    return v[0] === 0n ? undefined : new Date(Number(v[0]) * 1000);
  }

  /** The auth method in use: `pat`, `oauth-m2m`, ... No network I/O. */
  authType() {
    return native.getString(native.fn().authType, this.#h());
  }

  /** The last token-refresh error not yet followed by a success, or `undefined`. */
  refreshError() {
    return native.getString(native.fn().refreshError, this.#h()) || undefined;
  }

  /**
   * Release the handle (a no-op for the default client and when already closed). Calls still in
   * flight finish first; new calls fail with LAKEBASE_INVALID_ARGUMENT.
   */
  close() {
    if (this.#borrowed || this.#closed) return;
    this.#closed = true;
    if (this.#busy === 0) this.#free();
  }

  get closed() {
    return this.#closed;
  }

  #release() {
    this.#busy--;
    if (this.#closed && this.#busy === 0) this.#free();
  }

  #free() {
    const h = this.#handle;
    this.#handle = null;
    if (h !== null) {
      freeOnCollect.unregister(this);
      native.fn().clientFree(h);
    }
  }

  get [Symbol.toStringTag]() {
    return 'lakebase.Client';
  }
}

if (Symbol.dispose) {
  Client.prototype[Symbol.dispose] = function dispose() {
    this.close();
  };
}

let defaultInstance = null;

/**
 * The process-wide default client (environment + `~/.databrickscfg`), borrowed: `close()` on it
 * does nothing. A configuration error is not remembered, so fixing the environment and calling
 * again works.
 */
function defaultClient() {
  if (defaultInstance) return defaultInstance;
  const out = [null];
  native.check(native.fn().defaultClient(out));
  defaultInstance = Client[BORROW](out[0]);
  return defaultInstance;
}

/** The default client's current password. */
function getPassword() {
  return defaultClient().password();
}

/** The loaded liblakebase's version, e.g. `"0.1.0"`. */
function version() {
  return native.info().version;
}

/** The file or name liblakebase was loaded from. */
function libraryPath() {
  return native.info().path;
}

module.exports = { Client, defaultClient, getPassword, version, libraryPath, pollDelay };
