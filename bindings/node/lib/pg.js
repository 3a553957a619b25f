'use strict';
// node-postgres integration: a pg.Pool whose `password` callback asks the library for the current
// token on every new physical connection, the user defaulting to the client's Postgres role, the
// host to the instance's / endpoint's Postgres host, and TLS with certificate verification; its
// connect() retries like the library's own libpq connects (a rejected cached token once, an
// endpoint waking from scale-to-zero with backoff).
//
// The shape follows Databricks' @databricks/lakebase (createLakebasePool, getLakebasePgConfig),
// for Provisioned instances as well as Autoscaling endpoints.

const fs = require('node:fs');
const { Client, defaultClient } = require('./client');
const { invalidArgument } = require('./errors');
const native = require('./native');

const DEFAULT_DATABASE = 'databricks_postgres';
const OWN_KEYS = ['client', 'workspace', 'instance', 'endpoint', 'sslMode', 'ca', 'caFile'];

function loadPg() {
  try {
    return require('pg');
  } catch (e) {
    throw invalidArgument(`the pg package is needed for the node-postgres integration (npm install pg): ${e.message}`);
  }
}

/** The lakebase Client a pool uses, and whether the pool created (and so owns) it. */
function resolveClient(config) {
  const { client, workspace, instance, endpoint } = config;
  if (client !== undefined) {
    if (!(client instanceof Client)) throw invalidArgument('client must be a lakebase Client');
    if (workspace !== undefined || instance !== undefined || endpoint !== undefined) {
      throw invalidArgument('give either client or workspace/instance/endpoint, not both');
    }
    return { client, owned: false };
  }
  if (workspace === undefined && instance === undefined && endpoint === undefined) {
    return { client: defaultClient(), owned: false };
  }
  if (instance !== undefined && endpoint !== undefined) {
    throw invalidArgument('give either instance (Lakebase Provisioned) or endpoint (Lakebase Autoscaling), not both');
  }
  let options = workspace ?? {};
  if (typeof options === 'string') {
    const { quoteValue } = require('./options');
    if (instance !== undefined) options += ` instance=${quoteValue(instance)}`;
    if (endpoint !== undefined) options += ` endpoint=${quoteValue(endpoint)}`;
  } else {
    options = { ...options, instance, endpoint };
  }
  return { client: new Client(options), owned: true };
}

/** The system CA bundles tried for the trusted roots (Debian/Ubuntu, RHEL/Fedora, Alpine/macOS). */
const CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];
const SSL_MODES = ['require', 'verify-ca', 'verify-full'];

function readCa(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw invalidArgument(`cannot read the root certificate file ${file}: ${e.message}`);
  }
}

/**
 * pg's `ssl` option: verified TLS. `ssl` given explicitly wins (but `false` is refused: Lakebase
 * accepts only TLS and the password would go in clear text). Otherwise the mode is `sslMode`, else
 * PGSSLMODE, else 'verify-full': 'verify-full' and 'require' verify the certificate and the host
 * name (require as @databricks/lakebase's does: stricter than libpq's), 'verify-ca' only the
 * certificate; 'disable', 'allow' and 'prefer' are refused. The trusted roots are `ca`, the file
 * `caFile`, the file named by PGSSLROOTCERT, else the system CA bundle (else Node's bundled roots).
 * pg sets the TLS servername to the host (unless it is an IP address).
 */
function sslConfig(config) {
  if (config.ssl === false) throw invalidArgument('ssl: false is not allowed: Lakebase accepts only TLS connections');
  if (config.ssl !== undefined && config.ssl !== true) return config.ssl;
  const mode = config.sslMode ?? (blank(process.env.PGSSLMODE) ? 'verify-full' : process.env.PGSSLMODE);
  if (!SSL_MODES.includes(mode)) {
    throw invalidArgument(`sslMode ${JSON.stringify(mode)} is not allowed: Lakebase accepts only TLS, and the password must not be sent without it (use 'require', 'verify-ca' or 'verify-full')`);
  }
  const ssl = { rejectUnauthorized: true };
  if (mode === 'verify-ca') ssl.checkServerIdentity = () => undefined;
  let ca = config.ca;
  if (ca === undefined) {
    let file = config.caFile ?? (blank(process.env.PGSSLROOTCERT) ? undefined : process.env.PGSSLROOTCERT);
    if (file === 'system') file = undefined;
    file ??= CA_BUNDLES.find((f) => fs.existsSync(f));
    if (file) ca = readCa(file);
  }
  if (ca !== undefined) ssl.ca = ca;
  return ssl;
}

function blank(v) {
  return v === undefined || v === null || v === '';
}

/**
 * The parts of a pool configuration that need no network: the pg options without ours, the
 * password callback, TLS, the database; `needUser` / `needHost` say what must still be looked up.
 */
function baseConfig(config, client) {
  if (config.password !== undefined) {
    throw invalidArgument('password: the Lakebase pool supplies the password (an OAuth token); use pg.Pool directly for a native Postgres password');
  }
  const pgConfig = {};
  for (const [k, v] of Object.entries(config)) if (!OWN_KEYS.includes(k)) pgConfig[k] = v;
  pgConfig.password = () => client.password();
  pgConfig.ssl = sslConfig(config);
  if (blank(pgConfig.database) && blank(process.env.PGDATABASE) && blank(config.connectionString)) {
    pgConfig.database = DEFAULT_DATABASE;
  }
  const needUser = blank(config.user) && blank(process.env.PGUSER) && blank(config.connectionString);
  const needHost = blank(config.host) && blank(process.env.PGHOST) && blank(config.connectionString);
  return { pgConfig, needUser, needHost };
}

async function completeConfig(target, client, needUser, needHost) {
  const [user, host] = await Promise.all([
    needUser ? client.postgresRole() : undefined,
    needHost ? client.postgresHost() : undefined,
  ]);
  if (needUser) target.user = user;
  if (needHost) target.host = host;
}

/**
 * A pg.PoolConfig for Lakebase, with the user (the client's Postgres role unless `user` / PGUSER) and
 * host (the database's Postgres host unless `host` / PGHOST) looked up when missing.
 */
async function getLakebasePgConfig(config = {}) {
  const { client } = resolveClient(config);
  const { pgConfig, needUser, needHost } = baseConfig(config, client);
  await completeConfig(pgConfig, client, needUser, needHost);
  return pgConfig;
}

const clientClasses = new WeakMap();

/** For each failed connect of a LakebasePgClient: the password it sent and whether the server asked for it. */
const attempts = new WeakMap();
const PASSWORD_REQUESTS = ['authenticationCleartextPassword', 'authenticationMD5Password', 'authenticationSASL'];

/**
 * A pg.Client subclass that asks for the password before opening the socket: a failure (wrong
 * credentials, workspace down) then fails connect() without a half-open Postgres connection
 * (pg leaves the socket open when a password callback rejects), and pg gets the string. It notes
 * whether the server asked for the password, for the pool's retry decision.
 */
function prefetchingClient(Base) {
  let C = clientClasses.get(Base);
  if (C) return C;
  C = class LakebasePgClient extends Base {
    connect(cb) {
      const pw = this.password;
      if (typeof pw !== 'function') return super.connect(cb);
      const facts = { password: undefined, passwordAsked: false };
      const asked = () => {
        facts.passwordAsked = true;
      };
      const p = Promise.resolve()
        .then(() => pw(this.connectionParameters))
        .then((s) => {
          this.password = s;
          facts.password = s;
          for (const ev of PASSWORD_REQUESTS) this.connection.once(ev, asked);
          return super.connect();
        })
        .then(
          () => {
            for (const ev of PASSWORD_REQUESTS) this.connection.removeListener(ev, asked);
          },
          (e) => {
            if (e !== null && typeof e === 'object' && facts.password !== undefined) attempts.set(e, facts);
            throw e;
          },
        );
      if (typeof cb === 'function') {
        p.then(() => process.nextTick(cb), (e) => process.nextTick(cb, e));
        return undefined;
      }
      return p;
    }
  };
  clientClasses.set(Base, C);
  return C;
}

// Server answers no new password changes: a missing database or role, a token for another identity.
const NOT_THE_PASSWORD = /does not exist|did not match the security label/i;

// Node's words for transport failures, in libpq's (what lakebase_connect_retry_delay reads).
const TRANSPORT_CODES = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'could not send data to server',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  EAI_AGAIN: 'temporary failure in name resolution',
};

/** Whether `e` is the server's answer (an ErrorResponse with a SQLSTATE), not a socket error. */
function serverError(e) {
  return e instanceof Error && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && 'severity' in e;
}

/**
 * What to do after a failed connect: { renew: true } (the login was rejected after the password
 * was sent: class 28, not a missing role or another identity's token), { delayMs } (an endpoint
 * waking from scale-to-zero, as lakebase_connect_retry_delay says) or undefined (give up).
 */
function classifyFailure(e, failed, elapsedMs, connectTimeout) {
  const facts = attempts.get(e);
  const sqlstate = serverError(e) ? e.code : undefined;
  const message = String(e?.message ?? e);
  const asked = facts?.passwordAsked ?? false;
  if (facts && asked && sqlstate?.startsWith('28') && !NOT_THE_PASSWORD.test(message)) {
    return { renew: true, password: facts.password };
  }
  let text = message;
  if (!sqlstate) {
    if (TRANSPORT_CODES[e?.code]) text = `${TRANSPORT_CODES[e.code]} (${message})`;
    else if (/Connection terminated unexpectedly/.test(message)) text = 'server closed the connection unexpectedly';
    else if (/timeout/i.test(message)) text = 'timeout expired';
  }
  let delayMs;
  try {
    delayMs = native.connectRetryDelay(sqlstate, text, asked, failed, elapsedMs, connectTimeout);
  } catch {
    return undefined;
  }
  return delayMs === undefined ? undefined : { delayMs };
}

/** libpq's connect_timeout for the pool: connectionTimeoutMillis in whole seconds, else PGCONNECT_TIMEOUT. */
function connectTimeoutOf(options) {
  const ms = options.connectionTimeoutMillis;
  if (typeof ms === 'number' && ms > 0) return String(Math.ceil(ms / 1000));
  return blank(process.env.PGCONNECT_TIMEOUT) ? undefined : process.env.PGCONNECT_TIMEOUT;
}

let PoolClass = null;

function lakebasePoolClass() {
  if (PoolClass) return PoolClass;
  const pg = loadPg();
  // pg.Pool, plus: the first connect waits until the user and host are known (looked up once;
  // a failed lookup fails that connect and is retried by the next), and end() closes a client
  // the pool created.
  PoolClass = class LakebasePool extends pg.Pool {
    constructor(options, lakebase) {
      super(options);
      Object.defineProperty(this, 'lakebase', { value: lakebase.client, enumerable: false });
      Object.defineProperty(this, '_lakebase', {
        value: { ...lakebase, ready: !lakebase.needUser && !lakebase.needHost, resolving: null },
        enumerable: false,
      });
    }

    connect(cb) {
      const p = this._lakebaseReady().then(() => this._lakebaseConnect());
      if (typeof cb === 'function') {
        p.then(
          (client) => process.nextTick(cb, undefined, client, client.release),
          (e) => process.nextTick(cb, e),
        );
        return undefined;
      }
      return p;
    }

    /** The user and host, looked up once (a failed lookup fails this connect and is retried by the next). */
    _lakebaseReady() {
      const st = this._lakebase;
      if (st.ready) return Promise.resolve();
      if (!st.resolving) {
        st.resolving = completeConfig(this.options, st.client, st.needUser, st.needHost).then(
          () => {
            st.ready = true;
            st.resolving = null;
          },
          (e) => {
            st.resolving = null;
            throw e;
          },
        );
      }
      return st.resolving;
    }

    /**
     * pg.Pool's connect, retried like the library's own libpq connects: a login rejected after the
     * password was sent is retried once after client.refreshRejected(password) (one mint for any
     * number of rejected connections); a transport failure or 57P03 while the endpoint wakes from
     * scale-to-zero is retried after lakebase_connect_retry_delay's delay. Nothing else.
     */
    async _lakebaseConnect() {
      const start = Date.now();
      const timeout = connectTimeoutOf(this.options);
      let failed = 0;
      let renewed = false;
      for (;;) {
        try {
          return await super.connect();
        } catch (e) {
          failed++;
          const next = classifyFailure(e, failed, Date.now() - start, timeout);
          if (next === undefined) throw e;
          if (next.renew) {
            if (renewed) throw e;
            renewed = true;
            let worth;
            try {
              worth = await this._lakebase.client.refreshRejected(next.password);
            } catch {
              throw e; // the server's error says what it refused
            }
            if (!worth) throw e;
          } else {
            await new Promise((resolve) => setTimeout(resolve, next.delayMs));
          }
        }
      }
    }

    end(cb) {
      const st = this._lakebase;
      const closeClient = () => {
        if (st.owned) st.client.close();
      };
      if (typeof cb === 'function') {
        return super.end((...a) => {
          closeClient();
          cb(...a);
        });
      }
      return super.end().finally(closeClient);
    }
  };
  return PoolClass;
}

/**
 * A pg.Pool for a Lakebase database whose every new physical connection gets the current token.
 *
 *   createLakebasePool({ instance: 'my-db' })                          // Provisioned
 *   createLakebasePool({ endpoint: 'projects/p/branches/b/endpoints/e' }) // Autoscaling
 *   createLakebasePool({ client, max: 10 })                            // an existing lakebase Client
 *
 * Other options are pg.Pool's (max, idleTimeoutMillis, maxLifetimeSeconds, ...). Synchronous like
 * pg.Pool: a missing user/host is looked up before the first connection.
 */
function createLakebasePool(config = {}) {
  const Pool = lakebasePoolClass();
  const { client, owned } = resolveClient(config);
  const { pgConfig, needUser, needHost } = baseConfig(config, client);
  pgConfig.Client = prefetchingClient(config.Client ?? loadPg().Client);
  return new Pool(pgConfig, { client, owned, needUser, needHost });
}

/** A pg `password` option: `() => client.password()` (the pattern of the Lakebase guide). */
function passwordCallback(client = defaultClient()) {
  return () => client.password();
}

module.exports = { createLakebasePool, getLakebasePgConfig, passwordCallback, sslConfig, DEFAULT_DATABASE, CA_BUNDLES };
