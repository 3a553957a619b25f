'use strict';
// The worker thread of blocking.js: one blocking liblakebase call, its message read on this thread.

const { parentPort, workerData } = require('node:worker_threads');
const native = require('./native');

const { op, handle, libPath, arg } = workerData;
let answer;
try {
  native.load(libPath);
  const f = native.fn();
  let value;
  if (op === 'identity') value = native.getString(f.identity, handle);
  else if (op === 'postgresHost') value = native.getString(f.postgresHost, handle);
  else if (op === 'postgresRole') value = native.getString(f.postgresRole, handle);
  else if (op === 'refresh') native.check(f.refresh(handle));
  else if (op === 'refreshRejected') {
    const rejected = Buffer.from(arg); // a copy with a NUL, wiped after the call
    try {
      native.check(f.refreshRejected(handle, rejected));
    } finally {
      rejected.fill(0);
    }
  }
  else throw new Error(`unknown operation ${op}`);
  answer = { ok: true, value };
} catch (e) {
  answer = { ok: false, message: e.message, code: e.code || 'LAKEBASE_INTERNAL_ERROR', result: e.result ?? 7 };
}
parentPort.postMessage(answer);
if (arg) arg.fill(0);
