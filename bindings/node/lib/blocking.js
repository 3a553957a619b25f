'use strict';
// Calls that may wait for the network and have no non-blocking variant in the C API (identity,
// postgres role and host, refresh) run on a short-lived worker thread, so the event loop never waits.
//
// Why a worker_threads Worker and not koffi's `.async`: lakebase_last_error is per OS thread, and
// an async koffi call and a follow-up call need not run on the same pool thread. The worker makes
// the call and reads the message on one thread, then posts both back.

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { LakebaseError, Result } = require('./errors');

const SCRIPT = path.join(__dirname, 'blocking-worker.js');

/**
 * Run `op` ('identity' | 'postgresRole' | 'postgresHost' | 'refresh' | 'refreshRejected') for the
 * client handle; resolves its value. `arg` (refreshRejected: the NUL-terminated password) is a
 * Uint8Array copied to the worker and wiped on both sides.
 */
function runBlocking(op, handle, libPath, arg) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = new Worker(SCRIPT, { workerData: { op, handle, libPath, arg }, execArgv: [] });
    if (arg) arg.fill(0); // the worker has its own copy
    worker.once('message', (m) => {
      settled = true;
      if (m.ok) resolve(m.value);
      else reject(new LakebaseError(m.message, m.code, m.result));
    });
    worker.once('error', (e) => {
      if (settled) return;
      settled = true;
      reject(new LakebaseError(`liblakebase worker thread failed: ${e.message}`, 'LAKEBASE_INTERNAL_ERROR', Result.INTERNAL_ERROR));
    });
    worker.once('exit', (code) => {
      if (settled) return;
      settled = true;
      reject(new LakebaseError(`liblakebase worker thread exited (${code}) without an answer`, 'LAKEBASE_INTERNAL_ERROR', Result.INTERNAL_ERROR));
    });
  });
}

module.exports = { runBlocking };
