// Compiled (not run) by test/types.test.js with tsc --strict: the declarations in index.d.ts
// describe the package as its README uses it. The @ts-expect-error lines must stay errors.
import { Client, LakebaseError, Result, createLakebasePool, getLakebasePgConfig, passwordCallback, type LakebasePool } from '../..';
import pg from 'pg';

async function main(): Promise<void> {
  const client = new Client({ host: 'https://x.cloud.databricks.com', token: 'dapi', instance: 'db', httpTimeoutSeconds: 5 });
  const fromString = new Client("profile=prod endpoint='projects/p/branches/b/endpoints/e'");
  const pw: string = await client.password();
  const maybe: string | undefined = client.tryPassword();
  const who: string = await client.identity();
  const host: string = await client.postgresHost();
  const exp: Date | undefined = client.tokenExpiry();
  const auth: string = client.authType();
  await client.refresh();
  fromString.close();

  const pool: LakebasePool = createLakebasePool({ client, max: 10, idleTimeoutMillis: 30000, caFile: '/etc/ssl/certs/ca-certificates.crt' });
  const same: Client = pool.lakebase;
  const rows = (await pool.query<{ n: number }>('select 1 as n')).rows;
  const n: number = rows[0].n;
  const provisioned = createLakebasePool({ workspace: { profile: 'prod' }, instance: 'db', sslMode: 'verify-full' });
  const autoscaling = createLakebasePool({ endpoint: 'projects/p/branches/b/endpoints/e', database: 'databricks_postgres' });
  const config: pg.PoolConfig = await getLakebasePgConfig({ client });
  const own = new pg.Pool({ ...config, password: passwordCallback(client) });
  // @ts-expect-error the pool supplies the password
  createLakebasePool({ client, password: 'secret' });
  // @ts-expect-error sslMode disable is not offered
  createLakebasePool({ client, sslMode: 'disable' });

  try {
    await client.password();
  } catch (e) {
    if (e instanceof LakebaseError && e.result === Result.AUTH_ERROR) console.log(e.code, e.message);
  }
  console.log(pw, maybe, who, host, exp, auth, same, n, provisioned, autoscaling, own);
}

void main;
