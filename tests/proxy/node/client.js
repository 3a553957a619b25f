// node-postgres (pure JS, no pg-native) through the lakebase proxy: no password configured.
// Usage: node client.js HOST PORT USER DATABASE. Prints key=value lines; exits non-zero on failure.
'use strict';
const { Client, Pool } = require('pg');

async function main() {
  const [host, port, user, database] = process.argv.slice(2);
  const cfg = { host, port: Number(port), user, database, ssl: false };
  const c = new Client(cfg);
  await c.connect();
  // Extended protocol with a parameter, then a simple query.
  const r = await c.query('select current_user as u, $1::int + 1 as n', [41]);
  console.log(`user=${r.rows[0].u}`);
  console.log(`sum=${r.rows[0].n}`);
  const s = await c.query('select count(*)::int as n from generate_series(1, 50000)');
  console.log(`rows=${s.rows[0].n}`);
  await c.end();

  const pool = new Pool({ ...cfg, max: 5 });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.query('select $1::int as i', [i])));
  console.log(`pool=${results.map((x) => x.rows[0].i).reduce((a, b) => a + b, 0)}`);
  await pool.end();
}

main().catch((e) => {
  console.error(`error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
