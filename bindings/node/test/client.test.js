'use strict';
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const h = require('./helper');

const lakebase = require(h.PACKAGE);
const { Client, LakebaseError } = lakebase;

before(() => h.ready);

test('version and library path', () => {
  assert.match(lakebase.version(), /^0\.\d+\.\d+/);
  assert.equal(lakebase.libraryPath(), process.env.LAKEBASE_LIBRARY);
});

test('options objects become a quoted options string', () => {
  assert.equal(
    lakebase.optionsString({ host: 'https://x', clientId: 'a b', client_secret: "it's\\", token: undefined, instance: null, httpTimeoutSeconds: 5, x: true }),
    "host='https://x' client_id='a b' client_secret='it\\'s\\\\' http_timeout_seconds='5' x='true'",
  );
  assert.equal(lakebase.optionsString("profile=prod instance='db'"), "profile=prod instance='db'");
  assert.equal(lakebase.optionsString(undefined), '');
  assert.throws(() => lakebase.optionsString({ token: 'a\0b' }), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /NUL/ });
  assert.throws(() => lakebase.optionsString({ 'bad-key': 'x' }), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  assert.throws(() => lakebase.optionsString({ host: {} }), { code: 'LAKEBASE_INVALID_ARGUMENT' });
});

test('a PAT client: password, expiry, identity, auth type, Postgres host', async () => {
  const c = new Client(await h.patOptions());
  try {
    assert.equal(c.tokenExpiry(), undefined, 'nothing cached before the first password');
    assert.equal(c.authType(), 'pat');
    const pw = await c.password();
    assert.match(pw, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.ok(pw.length > 800, `token of ${pw.length} bytes`);
    const exp = c.tokenExpiry();
    assert.ok(exp instanceof Date);
    assert.ok(exp.getTime() > Date.now() + 3000 * 1000 && exp.getTime() < Date.now() + 3700 * 1000, String(exp));
    assert.equal(await c.password(), pw, 'a hit returns the cached token');
    assert.equal(c.tryPassword(), pw);
    assert.equal(await c.identity(), h.rig('RIG_USER'));
    assert.equal(await c.postgresHost(), 'localhost');
    assert.equal(c.refreshError(), undefined);
  } finally {
    c.close();
  }
});

test('an M2M client authenticates as the service principal', async () => {
  const c = new Client({ ...h.spOptions(), instance: h.rig('RIG_INSTANCE') });
  assert.equal(c.authType(), 'oauth-m2m');
  assert.equal(await c.identity(), h.rig('RIG_SP_USER'));
  assert.ok((await c.password()).length > 800);
  c.close();
});

test('an Autoscaling endpoint client', async () => {
  const c = new Client(`host='${h.rig('FAKE_URL')}' token='${await h.freshPat()}' endpoint='${h.rig('RIG_ENDPOINT')}'`);
  assert.ok((await c.password()).length > 800);
  assert.equal(await c.postgresHost(), 'localhost');
  c.close();
});

test('tryPassword answers undefined on a miss and starts one background fetch', async () => {
  const c = new Client(await h.patOptions());
  const before = await h.minted();
  assert.equal(c.tryPassword(), undefined);
  const pw = await h.pollUntil('the background fetch', () => c.tryPassword(), { interval: 5, timeout: 10000 });
  assert.equal(await c.password(), pw);
  assert.equal(await h.minted(), before + 1);
  c.close();
});

test('concurrent password() calls on a cold cache share one mint', async () => {
  const opts = await h.patOptions();
  const a = new Client(opts);
  const b = new Client(opts); // same settings: the same cache entry inside the library
  const before = await h.minted();
  const all = await Promise.all([...Array(20)].map((_, i) => (i % 4 === 0 ? b : a).password()));
  assert.equal(new Set(all).size, 1);
  assert.equal(await h.minted(), before + 1);
  a.close();
  b.close();
});

test('the event loop keeps running while a slow mint is in flight', async () => {
  const c = new Client(await h.patOptions());
  await h.fake('/_fake/faults', { path: '/api/2.0/database/credentials', action: 'delay', delay_ms: 2000, count: 1 });
  const r = await h.whileTicking(() => c.password());
  assert.ok(r.value.length > 800);
  assert.ok(r.elapsedMs >= 1900, `the mint was delayed (${r.elapsedMs} ms)`);
  // A blocked loop would show one pause as long as the mint (2 s); the bound leaves room for a
  // loaded machine.
  assert.ok(r.maxGapMs < 1000, `longest pause between 10 ms ticks: ${r.maxGapMs.toFixed(0)} ms`);
  assert.ok(r.ticks >= 10, `${r.ticks} ticks`);
  c.close();
});

test('identity() on a slow workspace does not block the event loop either', async () => {
  const c = new Client(await h.patOptions());
  await h.fake('/_fake/faults', { path: '/api/2.0/preview/scim/v2/Me', action: 'delay', delay_ms: 2000, count: 1 });
  const r = await h.whileTicking(() => c.identity());
  assert.equal(r.value, h.rig('RIG_USER'));
  assert.ok(r.elapsedMs >= 1900, `the lookup was delayed (${r.elapsedMs} ms)`);
  assert.ok(r.maxGapMs < 1000, `longest pause between ticks: ${r.maxGapMs.toFixed(0)} ms`);
  c.close();
});

test('refresh() mints a new token', async () => {
  const c = new Client(await h.patOptions());
  const first = await c.password();
  const before = await h.minted();
  const r = await h.whileTicking(() => c.refresh());
  assert.equal(r.value, undefined);
  assert.equal(await h.minted(), before + 1);
  assert.notEqual(await c.password(), first);
  c.close();
});

test('a wrong PAT: LAKEBASE_AUTH_ERROR with the HTTP status, never the token', async () => {
  const bad = `dapi${'f'.repeat(32)}`;
  const c = new Client({ host: h.rig('FAKE_URL'), token: bad, instance: h.rig('RIG_INSTANCE') });
  for (const call of [() => c.password(), () => c.identity(), () => c.refresh()]) {
    const e = await call().then(() => assert.fail('no error'), (err) => err);
    assert.ok(e instanceof LakebaseError && e instanceof Error);
    assert.equal(e.code, 'LAKEBASE_AUTH_ERROR');
    assert.equal(e.result, lakebase.Result.AUTH_ERROR);
    assert.match(e.message, /403/);
    assert.ok(!e.message.includes(bad) && !String(e.stack).includes(bad), e.message);
  }
  assert.throws(() => c.tryPassword(), { code: 'LAKEBASE_AUTH_ERROR' }, 'the failure is remembered for a poll');
  c.close();
});

test('configuration errors', async () => {
  assert.throws(() => new Client({ host: h.rig('FAKE_URL'), token: 'x', no_such_option: 'y' }), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /no_such_option/ });
  assert.throws(() => new Client("host='unterminated"), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  const noTarget = new Client({ host: h.rig('FAKE_URL'), token: h.rig('RIG_PAT') });
  await assert.rejects(noTarget.password(), { code: 'LAKEBASE_CONFIG_ERROR' });
  await assert.rejects(noTarget.postgresHost(), { code: 'LAKEBASE_CONFIG_ERROR' });
  noTarget.close();
  const unknown = new Client({ host: h.rig('FAKE_URL'), token: h.rig('RIG_PAT'), instance: 'no-such-instance' });
  await assert.rejects(unknown.password(), { code: 'LAKEBASE_API_ERROR', message: /no-such-instance/ });
  unknown.close();
  const down = new Client({ host: 'http://127.0.0.1:1', token: h.rig('RIG_PAT'), instance: 'x', retryTimeoutSeconds: 1 });
  await assert.rejects(down.password(), { code: 'LAKEBASE_NETWORK_ERROR' });
  down.close();
});

test('close(): later calls fail, a call in flight finishes without touching a freed handle', async () => {
  const c = new Client(await h.patOptions());
  await h.fake('/_fake/faults', { path: '/api/2.0/database/credentials', action: 'delay', delay_ms: 300, count: 1 });
  const before = await h.minted();
  const inFlight = c.password();
  const lookup = c.identity();
  c.close();
  c.close();
  assert.equal(c.closed, true);
  await assert.rejects(inFlight, { code: 'LAKEBASE_INVALID_ARGUMENT', message: /closed/ });
  assert.equal(await lookup, h.rig('RIG_USER'), 'a worker-thread call already started completes');
  await assert.rejects(c.password(), { code: 'LAKEBASE_INVALID_ARGUMENT', message: /closed/ });
  assert.throws(() => c.tokenExpiry(), { code: 'LAKEBASE_INVALID_ARGUMENT' });
  // The library's background fetch outlives the handle; let it land before the next test counts mints.
  await h.pollUntil('the abandoned mint', async () => (await h.minted()) === before + 1, { interval: 50 });
});

// The library shares a cache entry among the live clients with the same settings, whichever thread
// made them (a client here keeps the entry alive while workers come and go).
test('worker threads: each has its own Client; one process, one cached token', async () => {
  const opts = await h.patOptions();
  const holder = new Client(opts);
  const before = await h.minted();
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Client } = require(workerData.pkg);
    const c = new Client(workerData.opts);
    Promise.all([c.password(), c.identity()]).then(([pw, id]) => { c.close(); parentPort.postMessage({ pw, id }); },
      (e) => parentPort.postMessage({ error: e.message }));`;
  const run = () => new Promise((resolve, reject) => {
    const w = new Worker(src, { eval: true, workerData: { pkg: h.PACKAGE, opts } });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const answers = await Promise.all([run(), run(), run()]);
  for (const a of answers) {
    assert.equal(a.error, undefined);
    assert.equal(a.id, h.rig('RIG_USER'));
  }
  assert.equal(new Set(answers.map((a) => a.pw)).size, 1);
  assert.equal(await h.minted(), before + 1);
  assert.equal(holder.tryPassword(), answers[0].pw, "the workers' token is the main thread's too");
  holder.close();
});

test('a child process loads the library itself and mints its own token', async () => {
  const opts = await h.patOptions();
  const before = await h.minted();
  const r = spawnSync(process.execPath, ['-e', `
    const { Client } = require(${JSON.stringify(h.PACKAGE)});
    new Client(${JSON.stringify(opts)}).password().then((p) => console.log(p.length));`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Number(r.stdout) > 800);
  assert.equal(await h.minted(), before + 1);
});

test('the default client reads the environment', () => {
  const env = { ...process.env, DATABRICKS_HOST: h.rig('FAKE_URL'), DATABRICKS_TOKEN: h.rig('RIG_PAT'), LAKEBASE_INSTANCE: h.rig('RIG_INSTANCE') };
  const r = spawnSync(process.execPath, ['-e', `
    const lb = require(${JSON.stringify(h.PACKAGE)});
    const d = lb.defaultClient();
    d.close(); // a no-op on the default client
    Promise.all([lb.getPassword(), d.identity()]).then(([p, id]) => console.log(p.length, id, d.closed, lb.defaultClient() === d));`], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^\\d{3,4} ${h.rig('RIG_USER')} false true\\n$`));
  const none = spawnSync(process.execPath, ['-e', `
    const lb = require(${JSON.stringify(h.PACKAGE)});
    try { lb.defaultClient(); } catch (e) { console.log(e.code); }`], { env: { ...process.env }, encoding: 'utf8' });
  assert.equal(none.stdout.trim(), 'LAKEBASE_CONFIG_ERROR', none.stderr);
});

// Library lookup: LAKEBASE_LIBRARY, then prebuilds/<platform>/liblakebase.so.0 inside the package,
// then the system loader. Each case in a fresh process.
test('library lookup order', () => {
  const lib = process.env.LAKEBASE_LIBRARY;
  const probe = (pkg, env) => spawnSync(process.execPath, ['-e', `
    const lb = require(${JSON.stringify(pkg)});
    try { console.log(lb.libraryPath()); } catch (e) { console.log(e.name, e.code, e.message); }`], { env, encoding: 'utf8' });
  const base = { ...process.env };
  delete base.LAKEBASE_LIBRARY;
  delete base.LD_LIBRARY_PATH;

  let r = probe(h.PACKAGE, { ...base, LAKEBASE_LIBRARY: '/nonexistent/liblakebase.so' });
  assert.match(r.stdout, /^LibraryNotFoundError LAKEBASE_LIBRARY_NOT_FOUND .*\/nonexistent\/liblakebase\.so/, r.stderr);
  assert.ok(!r.stdout.includes('liblakebase.so.0'), 'LAKEBASE_LIBRARY set: nothing else is tried');

  r = probe(h.PACKAGE, { ...base, LD_LIBRARY_PATH: path.dirname(lib) });
  assert.equal(r.stdout.trim(), 'liblakebase.so.0', r.stderr); // the system loader

  // A copy of the package with the library bundled (koffi linked from where the package finds it).
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lakebase-node-pkg-'));
  try {
    const pkg = path.join(tmp, 'lakebase');
    for (const f of ['package.json', 'lib']) fs.cpSync(path.join(h.PACKAGE, f), path.join(pkg, f), { recursive: true });
    const koffi = path.dirname(require.resolve('koffi', { paths: [h.PACKAGE] }));
    fs.mkdirSync(path.join(pkg, 'node_modules'));
    fs.symlinkSync(koffi, path.join(pkg, 'node_modules', 'koffi'));
    const { platformDir } = require(path.join(h.PACKAGE, 'lib', 'native.js'));
    const dir = path.join(pkg, 'prebuilds', platformDir());
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), path.join(dir, 'liblakebase.so.0'));
    r = probe(pkg, { ...base, LD_LIBRARY_PATH: path.dirname(lib) });
    assert.equal(r.stdout.trim(), path.join(dir, 'liblakebase.so.0'), r.stderr);
    r = probe(pkg, { ...base, LAKEBASE_LIBRARY: lib });
    assert.equal(r.stdout.trim(), lib, 'LAKEBASE_LIBRARY wins over the bundled copy');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
