// The cost of a cached Lakebase password from Node.js through the lakebase npm package (koffi),
// next to the bare koffi call it wraps. Prints key=value lines for scripts/bench.sh.
//
//   DATABRICKS_HOST=... DATABRICKS_TOKEN=... LAKEBASE_INSTANCE=... LAKEBASE_LIBRARY=target/release/liblakebase.so \
//     node bench/node_hit.mjs [--calls N] [--batch B]
//
// Needs bindings/node's dependencies (npm ci in bindings/node). Uses the default client (the
// environment), warms it with one password, then times N cached calls of each kind; p50 is the
// median of per-call means over batches of B calls (one call is too short to time alone).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, '..', 'bindings', 'node');
const require = createRequire(path.join(pkg, 'package.json'));
const lakebase = require(pkg);
const native = require(path.join(pkg, 'lib', 'native.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const CALLS = opt('--calls', 200000);
const BATCH = opt('--batch', 100);

async function apiRequests() {
  const host = process.env.DATABRICKS_HOST;
  const stats = await (await fetch(`${host}/_fake/stats`)).json();
  return Object.values(stats.requests).reduce((a, b) => a + b, 0);
}

const now = () => process.hrtime.bigint();

/** Mean and batch-median per call, in microseconds, of `fn` (sync) or `afn` (awaited). */
async function measure(calls, batch, fn, isAsync) {
  const perCall = [];
  let total = 0n;
  for (let done = 0; done < calls; done += batch) {
    const t0 = now();
    if (isAsync) for (let i = 0; i < batch; i++) await fn();
    else for (let i = 0; i < batch; i++) fn();
    const dt = now() - t0;
    total += dt;
    perCall.push(Number(dt) / batch / 1000);
  }
  perCall.sort((a, b) => a - b);
  const n = Math.ceil(calls / batch) * batch;
  return { mean: Number(total) / n / 1000, p50: perCall[Math.floor(perCall.length / 2)] };
}

const client = lakebase.defaultClient();
const before = await apiRequests();
let t0 = now();
const first = await client.password();
const firstUs = Number(now() - t0) / 1000;
if (!first) throw new Error('no password');

// The bare koffi call (no string made): the floor of any binding over koffi.
const f = native.fn();
const buf = Buffer.alloc(2048);
const len = new BigUint64Array(1);
const handle = (() => {
  const out = [null];
  native.check(f.defaultClient(out));
  return out[0];
})();
const raw = () => f.tryGetPassword(handle, buf, buf.length, len);
if (raw() !== 0) throw new Error('raw call failed');

// Warm-up (JIT) for each path, then the measured runs.
await measure(Math.min(CALLS, 20000), BATCH, () => client.password(), true);
await measure(Math.min(CALLS, 20000), BATCH, () => client.tryPassword(), false);
await measure(Math.min(CALLS, 20000), BATCH, raw, false);
const awaited = await measure(CALLS, BATCH, () => client.password(), true);
const sync = await measure(CALLS, BATCH, () => client.tryPassword(), false);
const bare = await measure(CALLS, BATCH, raw, false);
buf.fill(0);
const requests = (await apiRequests()) - before;

const out = {
  node_version: process.versions.node,
  node_password_mean_us: awaited.mean.toFixed(3),
  node_password_p50_us: awaited.p50.toFixed(3),
  node_try_mean_us: sync.mean.toFixed(3),
  node_try_p50_us: sync.p50.toFixed(3),
  node_koffi_raw_mean_us: bare.mean.toFixed(3),
  node_koffi_raw_p50_us: bare.p50.toFixed(3),
  node_first_call_us: firstUs.toFixed(1),
  node_calls: 3 * CALLS,
  node_requests_total: requests, // the first call's mint, then none
};
for (const [k, v] of Object.entries(out)) console.log(`${k}=${v}`);
