// Type definitions for the lakebase npm package (bindings/node): a koffi binding of liblakebase.
import type { ConnectionOptions } from 'node:tls';
import type { Pool, PoolConfig } from 'pg';

/** lakebase_result values (include/lakebase.h). */
export declare const Result: Readonly<{
  OK: 0;
  INVALID_ARGUMENT: 1;
  INSUFFICIENT_SIZE: 2;
  CONFIG_ERROR: 3;
  AUTH_ERROR: 4;
  API_ERROR: 5;
  NETWORK_ERROR: 6;
  INTERNAL_ERROR: 7;
  WOULD_BLOCK: 8;
}>;

/** The name of a result code, as `lakebase_result_name` returns it. */
export type ResultName =
  | 'LAKEBASE_INVALID_ARGUMENT'
  | 'LAKEBASE_INSUFFICIENT_SIZE'
  | 'LAKEBASE_CONFIG_ERROR'
  | 'LAKEBASE_AUTH_ERROR'
  | 'LAKEBASE_API_ERROR'
  | 'LAKEBASE_NETWORK_ERROR'
  | 'LAKEBASE_INTERNAL_ERROR'
  | 'LAKEBASE_WOULD_BLOCK'
  | 'LAKEBASE_UNKNOWN_RESULT'
  | 'LAKEBASE_LIBRARY_NOT_FOUND';

/**
 * A failed liblakebase call. `message` is the library's (never a token or secret), `code` the
 * result's name and `result` its number (-1 for LibraryNotFoundError).
 */
export declare class LakebaseError extends Error {
  readonly code: ResultName | string;
  readonly result: number;
}

/** liblakebase could not be loaded (see LAKEBASE_LIBRARY). */
export declare class LibraryNotFoundError extends LakebaseError {}

type OptionValue = string | number | bigint | boolean | URL | null | undefined;

/**
 * The library's option keys, camelCase or snake_case; what is not given comes from `DATABRICKS_*`
 * / `LAKEBASE_*` variables and `~/.databrickscfg`, as in the Databricks SDKs.
 */
export interface ClientOptions {
  /** Workspace URL, e.g. `https://my-workspace.cloud.databricks.com` (DATABRICKS_HOST). */
  host?: string | URL;
  /** Personal access token (DATABRICKS_TOKEN). */
  token?: string;
  /** OAuth M2M service principal (DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET). */
  clientId?: string;
  clientSecret?: string;
  /** A `~/.databrickscfg` profile (DATABRICKS_CONFIG_PROFILE). */
  profile?: string;
  configFile?: string;
  /** Force one auth method: `pat`, `oauth-m2m`, `databricks-cli`, `azure-cli`, ... */
  authType?: string;
  accountId?: string;
  workspaceId?: string;
  /** Lakebase Provisioned instance name (LAKEBASE_INSTANCE). */
  instance?: string;
  /** Lakebase Autoscaling endpoint: `projects/<p>/branches/<b>/endpoints/<e>` (LAKEBASE_ENDPOINT). */
  endpoint?: string;
  /** Extra root certificates (PEM) for the workspace's HTTPS. */
  caFile?: string;
  httpTimeoutSeconds?: number;
  [key: string]: OptionValue;
}

/** A Lakebase credential client. Creating one does no network I/O. */
export declare class Client {
  constructor(options?: ClientOptions | string);
  /**
   * The current password (an OAuth token). Never blocks the event loop; concurrent calls share one
   * fetch. Ask for it for every new connection; do not keep it.
   */
  password(): Promise<string>;
  /** The password if servable now (a memory read), else `undefined` after starting a background fetch. */
  tryPassword(): string | undefined;
  /** Discard the cached password and mint a new one now (on a worker thread). */
  refresh(): Promise<void>;
  /**
   * The server turned down a login with `rejected` (a password this client handed out): mint a new
   * one if it is still cached (N concurrent reports, one mint). Resolves whether the client's
   * password is now another one (worth one more login).
   */
  refreshRejected(rejected: string): Promise<boolean>;
  /** The workspace user name / service principal application id the client authenticates as. Cached. */
  identity(): Promise<string>;
  /** The Postgres role to log in as: the group's role when acting for a group, else identity(). Cached. */
  postgresRole(): Promise<string>;
  /** The Postgres host of the instance / endpoint. Cached. */
  postgresHost(): Promise<string>;
  /** Expiry of the cached password, `undefined` when none is cached. No network I/O. */
  tokenExpiry(): Date | undefined;
  /** `pat`, `oauth-m2m`, ... No network I/O. */
  authType(): string;
  /** The last token-refresh failure not yet followed by a success. */
  refreshError(): string | undefined;
  /** Release the handle (no-op for the default client); calls in flight finish first. */
  close(): void;
  readonly closed: boolean;
  [Symbol.dispose](): void;
}

/** The process-wide default client (environment + ~/.databrickscfg); `close()` does nothing on it. */
export declare function defaultClient(): Client;
/** The default client's current password. */
export declare function getPassword(): Promise<string>;
/** The loaded liblakebase's version, e.g. `"0.1.0"`. */
export declare function version(): string;
/** The file or name liblakebase was loaded from. */
export declare function libraryPath(): string;
/** The libpq-style options string an options object becomes. */
export declare function optionsString(options?: ClientOptions | string): string;
/** Quote one value for an options string. */
export declare function quoteValue(value: string): string;

/** Configuration of a Lakebase pg.Pool: pg.Pool's options (minus `password`) plus these. */
export interface LakebasePoolConfig extends Omit<PoolConfig, 'password'> {
  /** An existing client (not closed by the pool). Excludes workspace/instance/endpoint. */
  client?: Client;
  /** Options of a client the pool creates (and closes in `end()`): host = the workspace URL. */
  workspace?: ClientOptions | string;
  /** Lakebase Provisioned instance name (else LAKEBASE_INSTANCE). */
  instance?: string;
  /** Lakebase Autoscaling endpoint resource name (else LAKEBASE_ENDPOINT). */
  endpoint?: string;
  /**
   * Default PGSSLMODE, else `verify-full`. `verify-full` and `require` verify the certificate and the
   * host name, `verify-ca` the certificate only; `disable`, `allow` and `prefer` are refused.
   */
  sslMode?: 'require' | 'verify-ca' | 'verify-full';
  /** Trusted root certificates (PEM); default: `caFile`, PGSSLROOTCERT's file, the system CA bundle, Node's bundled roots. */
  ca?: ConnectionOptions['ca'];
  caFile?: string;
  /** Postgres host; default PGHOST, else the instance's / endpoint's host. */
  host?: string;
  /** Postgres role; default PGUSER, else the client's postgresRole(). */
  user?: string;
}

/** A pg.Pool with `lakebase` = its Client. */
export interface LakebasePool extends Pool {
  readonly lakebase: Client;
}

/**
 * A pg.Pool whose every new physical connection gets the current token. Its connect() (and so
 * query()) retries like the library's own libpq connects: a login rejected after the password was
 * sent (SQLSTATE class 28) once with a newly minted token; a transport failure or 57P03 while the
 * endpoint wakes from scale-to-zero with backoff (LAKEBASE_CONNECT_RETRY, else
 * connectionTimeoutMillis, else 10 s).
 */
export declare function createLakebasePool(config?: LakebasePoolConfig): LakebasePool;
/** A pg.PoolConfig for Lakebase, with user and host looked up when missing. */
export declare function getLakebasePgConfig(config?: LakebasePoolConfig): Promise<PoolConfig>;
/** `() => client.password()`, for pg's `password` option. */
export declare function passwordCallback(client?: Client): () => Promise<string>;
