'use strict';
// Shared by the test files: the liblakebase test rig (tests/rig: a real PostgreSQL with TLS whose
// logins are checked by a fake Databricks workspace), a clean environment, fake-control helpers.
//
// Uses the rig named by FAKE_URL/PGPORT/... in the environment (scripts/test-bindings.sh starts
// one), or starts one for this test file. The library comes from LAKEBASE_LIBRARY, defaulting to
// the repository's target/release build. Each test file runs in its own process (node --test).

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');

if (!process.env.LAKEBASE_LIBRARY) {
  const built = path.join(REPO, 'target', 'release', 'liblakebase.so');
  if (fs.existsSync(built)) process.env.LAKEBASE_LIBRARY = built;
}

if (!process.env.FAKE_URL || !process.env.PGPORT) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lakebase-node-rig-'));
  const rig = path.join(REPO, 'tests', 'rig', 'rig.py');
  execFileSync('python3', [rig, 'up', '--dir', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  Object.assign(process.env, JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8')));
  process.on('exit', () => {
    execFileSync('python3', [rig, 'down', '--dir', dir], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

// No Databricks configuration from the machine; HOME without a ~/.databrickscfg.
for (const k of Object.keys(process.env)) {
  if (/^(DATABRICKS_|LAKEBASE_|ARM_|GOOGLE_|ACTIONS_ID_TOKEN)/.test(k) && k !== 'LAKEBASE_LIBRARY') delete process.env[k];
}
delete process.env.PGUSER;
delete process.env.PGPASSWORD;
process.env.HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'lakebase-node-home-'));
process.on('exit', () => fs.rmSync(process.env.HOME, { recursive: true, force: true }));

function rig(key) {
  const v = process.env[key];
  if (!v) throw new Error(`${key} not set (the rig's env.sh)`);
  return v;
}

/** A fake-control call: GET without body, POST with one. */
async function fake(p, body) {
  const res = await fetch(rig('FAKE_URL') + p, body === undefined
    ? {}
    : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`fake ${p}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

async function minted() {
  return (await fake('/_fake/stats')).lakebase_tokens_minted_total;
}

/**
 * A new personal access token for alice: a client using it has a cache entry of its own in the
 * library (so its first password is a cold miss even if other tests ran in this process).
 */
async function freshPat() {
  const pat = `dapi${crypto.randomBytes(16).toString('hex')}`;
  await fake('/_fake/identities', { pats: { [pat]: rig('RIG_USER') } });
  return pat;
}

async function patOptions() {
  return { host: rig('FAKE_URL'), token: await freshPat(), instance: rig('RIG_INSTANCE') };
}

function spOptions() {
  return { host: rig('FAKE_URL'), clientId: rig('RIG_SP_CLIENT_ID'), clientSecret: rig('RIG_SP_CLIENT_SECRET') };
}

/** Tokens minted inside `fn` live `seconds` (the library refreshes them at about half their life). */
async function withTokenLifetime(seconds, fn) {
  await fake('/_fake/config', { token_lifetime_seconds: seconds });
  try {
    return await fn();
  } finally {
    await fake('/_fake/config', { token_lifetime_seconds: 3600 });
  }
}

/** Bounded polling: call `cond` every `interval` ms until it is truthy; fail after `timeout` ms. */
async function pollUntil(what, cond, { timeout = 30000, interval = 200 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Run `fn` while a setInterval ticks every `everyMs`; resolves { value, ticks, maxGapMs, elapsedMs }.
 * A blocked event loop shows as a gap between ticks as long as the block.
 */
async function whileTicking(fn, everyMs = 10) {
  let last = performance.now();
  let maxGapMs = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
  }, everyMs);
  const t0 = performance.now();
  try {
    const value = await fn();
    const elapsedMs = performance.now() - t0;
    maxGapMs = Math.max(maxGapMs, performance.now() - last);
    return { value, ticks, maxGapMs, elapsedMs };
  } finally {
    clearInterval(timer);
  }
}

const ready = fake('/_fake/reset', {}); // before this process holds any token

module.exports = { REPO, rig, fake, minted, freshPat, patOptions, spOptions, withTokenLifetime, pollUntil, whileTicking, ready };

/** The package under test: the installed one (LAKEBASE_NODE_PACKAGE, set by scripts/test-bindings.sh) or this checkout. */
module.exports.PACKAGE = process.env.LAKEBASE_NODE_PACKAGE || path.join(__dirname, '..');
