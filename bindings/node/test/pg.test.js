'use strict';
// node-postgres against the rig's PostgreSQL (TLS, logins checked against the fake workspace).
const { test, before, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helper');

const lakebase = require(h.PACKAGE);
const pg = require('pg');
const { Client, createLakebasePool, getLakebasePgConfig } = lakebase;

before(() => h.ready);

const SSL_SQL = 'select current_user::text as who, ssl from pg_stat_ssl where pid = pg_backend_pid()';

// Tests that unset PG* variables put them back.
const saved = { ...process.env };
afterEach(() => {
  for (const k of ['PGHOST', 'PGDATABASE', 'PGSSLROOTCERT', 'PGUSER']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

async function checks() {
  return (await h.fake('/_fake/stats')).checks;
}

test('a pool over verified TLS, the user defaulting to the Postgres role', async () => {
  const client = new Client(await h.patOptions());
  const pool = createLakebasePool({ client, max: 2 });
  try {
    assert.equal(pool.lakebase, client);
    assert.equal(pool.options.ssl.rejectUnauthorized, true);
    assert.match(pool.options.ssl.ca, /BEGIN CERTIFICATE/, 'the CA from PGSSLROOTCERT');
    const { rows } = await pool.query(SSL_SQL);
    assert.deepEqual(rows, [{ who: h.rig('RIG_USER'), ssl: true }]);
    assert.equal(pool.options.user, h.rig('RIG_USER'));
  } finally {
    await pool.end();
  }
  assert.equal(client.closed, false, 'a client passed in is not closed by the pool');
  client.close();
});

test('M2M: the service principal is the Postgres role', async () => {
  const pool = createLakebasePool({ workspace: h.spOptions(), instance: h.rig('RIG_INSTANCE') });
  const { rows } = await pool.query('select current_user::text as who');
  assert.equal(rows[0].who, h.rig('RIG_SP_USER'));
  await pool.end();
  assert.equal(pool.lakebase.closed, true, 'end() closes the client the pool created');
});

test('Autoscaling endpoint; host and database default to the endpoint host and databricks_postgres', async () => {
  delete process.env.PGHOST;
  delete process.env.PGDATABASE;
  const pool = createLakebasePool({ workspace: { host: h.rig('FAKE_URL'), token: await h.freshPat() }, endpoint: h.rig('RIG_ENDPOINT') });
  const { rows } = await pool.query('select current_database()::text as db, inet_server_addr() is not null as tcp');
  assert.deepEqual(rows, [{ db: 'databricks_postgres', tcp: true }]);
  assert.equal(pool.options.host, 'localhost', "the endpoint's status.hosts.host");
  await pool.end();
});

test('the server certificate is verified: an untrusted CA fails before any password is sent', async () => {
  const client = new Client(await h.patOptions());
  const before = await checks();
  const pool = createLakebasePool({ client, caFile: '/etc/ssl/certs/ca-certificates.crt', user: h.rig('RIG_USER') });
  await assert.rejects(pool.query('select 1'), (e) => /certificate/i.test(e.message) && !(e instanceof lakebase.LakebaseError));
  await pool.end();
  const after = await checks();
  assert.equal(after.ok + after.failed, before.ok + before.failed, 'no login reached the password check');
  // The same pool with the rig's CA given inline works.
  const ok = createLakebasePool({ client, ca: require('node:fs').readFileSync(h.rig('RIG_CA_FILE'), 'utf8') });
  assert.equal((await ok.query('select 1 as one')).rows[0].one, 1);
  await ok.end();
  client.close();
});

test('refused configurations', async () => {
  const client = new Client(await h.patOptions());
  assert.throws(() => createLakebasePool({ client, ssl: false }), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /TLS/ });
  assert.throws(() => createLakebasePool({ client, sslMode: 'disable' }), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  assert.throws(() => createLakebasePool({ client, password: 'x' }), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /password/ });
  assert.throws(() => createLakebasePool({ client, instance: 'x' }), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  assert.throws(() => createLakebasePool({ workspace: {}, instance: 'a', endpoint: 'b' }), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  assert.throws(() => createLakebasePool({ client, caFile: '/nonexistent.pem' }), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /nonexistent/ });
  client.close();
});

test('a wrong PAT: the query fails with the library error, without the token', async () => {
  const bad = `dapi${'e'.repeat(32)}`;
  const pool = createLakebasePool({ workspace: { host: h.rig('FAKE_URL'), token: bad }, instance: h.rig('RIG_INSTANCE'), user: h.rig('RIG_USER') });
  const e = await pool.query('select 1').then(() => assert.fail('no error'), (err) => err);
  assert.ok(e instanceof lakebase.LakebaseError, String(e));
  assert.equal(e.code, 'LAKEBASE_AUTH_ERROR');
  assert.ok(!e.message.includes(bad) && !String(e.stack).includes(bad));
  // Without a user, the identity lookup fails first, the same way.
  const noUser = createLakebasePool({ workspace: { host: h.rig('FAKE_URL'), token: bad }, instance: h.rig('RIG_INSTANCE') });
  await assert.rejects(noUser.query('select 1'), { code: 'LAKEBASE_AUTH_ERROR', message: /403/ });
  await assert.rejects(noUser.connect(), { code: 'LAKEBASE_AUTH_ERROR' }, 'a failed lookup is retried, not remembered');
  await pool.end();
  await noUser.end();
});

test('concurrent first connections share one mint and one identity lookup', async () => {
  const client = new Client(await h.patOptions());
  const pool = createLakebasePool({ client, max: 5 });
  const before = await h.fake('/_fake/stats');
  const held = await Promise.all([...Array(5)].map(() => pool.connect()));
  const whos = await Promise.all(held.map((c) => c.query('select current_user::text as who')));
  assert.deepEqual(new Set(whos.map((r) => r.rows[0].who)), new Set([h.rig('RIG_USER')]));
  held.forEach((c) => c.release());
  const after = await h.fake('/_fake/stats');
  assert.equal(after.lakebase_tokens_minted_total, before.lakebase_tokens_minted_total + 1);
  const me = (s) => s.requests['GET /api/2.0/preview/scim/v2/Me'] ?? 0;
  assert.equal(me(after), me(before) + 1);
  await pool.end();
  client.close();
});

// Every new physical connection asks for the current token, so a pool keeps working past the first
// token's expiry; a connection opened before the expiry keeps working too (tokens are checked only at login).
test('a pool keeps opening connections after the first token expired', async () => {
  await h.withTokenLifetime(4, async () => {
    const client = new Client(await h.patOptions());
    const pool = createLakebasePool({ client, max: 2 });
    try {
      const held = await pool.connect();
      const first = held.password;
      const firstExpiry = client.tokenExpiry().getTime();
      assert.ok(firstExpiry - Date.now() <= 4500, `a short-lived token (${firstExpiry - Date.now()} ms)`);
      const logins = [];
      await h.pollUntil('a new connection after the first token expired', async () => {
        const c = await pool.connect();
        try {
          assert.equal((await c.query('select current_user::text as who')).rows[0].who, h.rig('RIG_USER'));
          logins.push({ at: Date.now(), password: c.password });
        } finally {
          c.release(true); // destroy: the next connect opens a new physical connection
        }
        return logins.some((l) => l.at > firstExpiry + 500 && l.password !== first);
      }, { timeout: 20000, interval: 250 });
      assert.equal((await held.query('select 1 as one')).rows[0].one, 1, 'the first connection outlived its token');
      held.release();
      assert.ok(logins.every((l) => typeof l.password === 'string' && l.password.length > 800));
      assert.equal(client.refreshError(), undefined);
    } finally {
      await pool.end();
      client.close();
    }
  });
});

test('getLakebasePgConfig: a config for your own pg.Pool, user and host looked up', async () => {
  delete process.env.PGHOST;
  const client = new Client(await h.patOptions());
  const config = await getLakebasePgConfig({ client, max: 1 });
  assert.equal(config.user, h.rig('RIG_USER'));
  assert.equal(config.host, 'localhost');
  assert.equal(typeof config.password, 'function');
  assert.equal(config.max, 1);
  assert.equal('client' in config, false);
  const pool = new pg.Pool(config);
  assert.equal((await pool.query('select current_user::text as who')).rows[0].who, h.rig('RIG_USER'));
  await pool.end();
  // The guide's pattern by hand: a password callback on a plain pg.Client.
  const c = new pg.Client({ ...config, password: lakebase.passwordCallback(client) });
  await c.connect();
  assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
  await c.end();
  client.close();
});

test('the default client, as @databricks/lakebase does with LAKEBASE_ENDPOINT', async () => {
  // The default client is configured from the environment on first use; this process has not used it.
  process.env.DATABRICKS_HOST = h.rig('FAKE_URL');
  process.env.DATABRICKS_TOKEN = h.rig('RIG_PAT');
  process.env.LAKEBASE_ENDPOINT = h.rig('RIG_ENDPOINT');
  try {
    const pool = createLakebasePool();
    assert.equal(pool.lakebase, lakebase.defaultClient());
    assert.equal((await pool.query('select current_user::text as who')).rows[0].who, h.rig('RIG_USER'));
    await pool.end();
    assert.equal(pool.lakebase.closed, false);
  } finally {
    delete process.env.DATABRICKS_HOST;
    delete process.env.DATABRICKS_TOKEN;
    delete process.env.LAKEBASE_ENDPOINT;
  }
});

async function failedChecks() {
  return (await checks()).failed;
}

// The server no longer accepts the cached token (revoked here; in the field also a token left in
// the shared cache by another process): one new token, one more login, which succeeds.
test('a rejected cached token is replaced once and the login succeeds', async () => {
  const client = new Client(await h.patOptions());
  const old = await client.password();
  assert.equal((await h.fake('/_fake/revoke', { token: old })).revoked, 1);
  const [minted, failed] = [await h.minted(), await failedChecks()];
  const pool = createLakebasePool({ client, max: 1 });
  try {
    assert.equal((await pool.query('select current_user::text as who')).rows[0].who, h.rig('RIG_USER'));
  } finally {
    await pool.end();
  }
  assert.equal(await h.minted(), minted + 1, 'one new token');
  assert.equal(await failedChecks(), failed + 1, 'one rejected login');
  assert.notEqual(await client.password(), old);
  assert.equal(await client.refreshRejected(old), true, 'a stale report: the current password is another one');
  assert.equal(await h.minted(), minted + 1);
  client.close();
});

// A login no new token can fix (a token for another identity, in Lakebase's words) is not retried.
test('an identity mismatch is not retried', async () => {
  const client = new Client(await h.patOptions());
  const pw = await client.password();
  await h.fake('/_fake/config', { pg_reject_mode: 'identity' });
  const pool = createLakebasePool({ client, user: h.rig('RIG_SP_USER') });
  try {
    const [minted, failed] = [await h.minted(), await failedChecks()];
    const e = await pool.query('select 1').then(() => assert.fail('no error'), (err) => err);
    assert.match(e.message, /did not match the security label/);
    assert.equal(e.code, '28P01');
    assert.ok(!require('node:util').inspect(e, { showHidden: true }).includes(pw), 'no password in the error');
    assert.equal(await h.minted(), minted, 'no new token');
    assert.equal(await failedChecks(), failed + 1, 'one login attempt');
  } finally {
    await h.fake('/_fake/config', { pg_reject_mode: 'pam' });
    await pool.end();
    client.close();
  }
});

test('a missing database is not retried', async () => {
  const client = new Client(await h.patOptions());
  await client.password();
  const minted = await h.minted();
  const pool = createLakebasePool({ client, database: 'no_such_db' });
  const t0 = Date.now();
  await assert.rejects(pool.query('select 1'), { code: '3D000', message: /does not exist/ });
  assert.ok(Date.now() - t0 < 2000, 'no backoff');
  assert.equal(await h.minted(), minted);
  await pool.end();
  client.close();
});

// An endpoint waking from scale-to-zero refuses connections, then answers "starting up": the
// pool's connect retries with backoff and logs in once it is up.
test('a waking endpoint is retried within the budget', { skip: !process.env.RIG_COLD_HOST && 'no cold-start host' }, async () => {
  const client = new Client(await h.patOptions());
  const pool = createLakebasePool({ client, host: h.rig('RIG_COLD_HOST'), max: 1, idleTimeoutMillis: 1 });
  try {
    await h.fake('/_fake/cold/arm', { mode: 'refuse', wake_ms: 1500, now: true });
    const t0 = Date.now();
    assert.equal((await pool.query('select current_user::text as who')).rows[0].who, h.rig('RIG_USER'));
    assert.ok(Date.now() - t0 >= 1000, 'it waited for the wake-up');
    await h.fake('/_fake/cold/arm', { mode: 'starting', wake_attempts: 2, now: true });
    const other = createLakebasePool({ client, host: h.rig('RIG_COLD_HOST'), max: 1 });
    assert.equal((await other.query('select 1 as one')).rows[0].one, 1);
    await other.end();
    assert.equal(Number((await h.fake('/_fake/cold')).counters.starting), 2, 'two "starting up" answers, then the login');
    // LAKEBASE_CONNECT_RETRY=0 turns retries off: the first refusal is the answer.
    process.env.LAKEBASE_CONNECT_RETRY = '0';
    await h.fake('/_fake/cold/arm', { mode: 'refuse', wake_ms: 60000, now: true });
    const off = createLakebasePool({ client, host: h.rig('RIG_COLD_HOST'), max: 1 });
    const t1 = Date.now();
    await assert.rejects(off.query('select 1'));
    assert.ok(Date.now() - t1 < 2000, 'no retries');
    await off.end();
  } finally {
    delete process.env.LAKEBASE_CONNECT_RETRY;
    await h.fake('/_fake/cold/reset', {});
    await pool.end();
    client.close();
  }
});

test('TLS modes without verification are refused; verify-full and the system bundle by default', async () => {
  const client = new Client(await h.patOptions());
  for (const sslMode of ['disable', 'allow', 'prefer']) {
    assert.throws(() => createLakebasePool({ client, sslMode }), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /only TLS/ });
  }
  process.env.PGSSLMODE = 'disable';
  try {
    assert.throws(() => createLakebasePool({ client }), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  } finally {
    delete process.env.PGSSLMODE;
  }
  const { sslConfig, CA_BUNDLES } = require(require('node:path').join(h.PACKAGE, 'lib', 'pg.js'));
  const fs = require('node:fs');
  assert.deepEqual(sslConfig({}), { rejectUnauthorized: true, ca: fs.readFileSync(h.rig('PGSSLROOTCERT'), 'utf8') });
  delete process.env.PGSSLROOTCERT;
  const system = CA_BUNDLES.find((f) => fs.existsSync(f));
  assert.equal(sslConfig({}).ca, system ? fs.readFileSync(system, 'utf8') : undefined, 'the system bundle');
  assert.equal(typeof sslConfig({ sslMode: 'verify-ca' }).checkServerIdentity, 'function');
  client.close();
});

// The default user is the client's Postgres role: its group's role when it acts for a group.
test('the default user is the Postgres role', { skip: !process.env.RIG_GROUP_NAME && 'no group' }, async () => {
  const group = h.rig('RIG_GROUP_NAME');
  const client = new Client({ host: h.rig('FAKE_URL'), token: await h.freshPat(), endpoint: h.rig('RIG_ENDPOINT'), groupName: group });
  assert.equal(await client.identity(), h.rig('RIG_USER'));
  assert.equal(await client.postgresRole(), group);
  const pool = createLakebasePool({ client });
  try {
    assert.equal((await pool.query('select current_user::text as who')).rows[0].who, group);
  } finally {
    await pool.end();
    client.close();
  }
});
