<?php

declare(strict_types=1);

namespace Lakebase;

/**
 * Opening PDO pgsql and pg_connect connections with the current token:
 *
 *     $pdo  = Lakebase\Postgres::pdo($client, ['dbname' => 'databricks_postgres']);
 *     $conn = Lakebase\Postgres::pgConnect($client);
 *
 * Every call asks the library for the password (a memory read on a cache hit), so connections
 * opened after the first token expired get the current one. Defaults, unless given in $params:
 * user = PGUSER, else the client's Postgres role (its identity, or its group); host = PGHOST, else the instance's / endpoint's host;
 * dbname = PGDATABASE, else databricks_postgres; sslmode = verify-full (require and verify-ca are
 * accepted; disable, allow and prefer are refused: the password must not travel in clear text);
 * sslrootcert = PGSSLROOTCERT, else the system CA bundle. $client null means Client::default().
 */
final class Postgres
{
    /** The system CA bundles tried for sslrootcert (Debian/Ubuntu, RHEL/Fedora, Alpine/macOS). */
    public const CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

    /**
     * libpq connection parameters: $params plus password, user, host, dbname, sslmode and
     * sslrootcert as described above. Holds the password: pass it on, do not log or keep it.
     *
     * @param array<string, string|int> $params libpq keywords (host, port, dbname, user, sslmode, sslrootcert, connect_timeout, application_name, ...)
     * @return array<string, string>
     */
    public static function params(?Client $client = null, array $params = []): array
    {
        $client ??= Client::default();
        $out = [];
        foreach ($params as $k => $v) {
            if ($v !== null && $v !== '') {
                $out[(string) $k] = (string) $v;
            }
        }
        if (array_key_exists('password', $out)) {
            throw self::invalid('password: the Lakebase password comes from the client; do not pass one');
        }
        $out['sslmode'] ??= 'verify-full';
        if (!in_array($out['sslmode'], ['require', 'verify-ca', 'verify-full'], true)) {
            throw self::invalid("sslmode={$out['sslmode']} is not allowed: Lakebase accepts only TLS, and the password must not be sent without it (use require, verify-ca or verify-full)");
        }
        if (!isset($out['sslrootcert'])) {
            $out['sslrootcert'] = self::env('PGSSLROOTCERT') ?? self::systemBundle();
        }
        if (!isset($out['user']) && self::env('PGUSER') === null) {
            $out['user'] = $client->postgresRole();
        }
        if (!isset($out['host']) && self::env('PGHOST') === null) {
            $out['host'] = $client->postgresHost();
        }
        if (!isset($out['dbname']) && self::env('PGDATABASE') === null) {
            $out['dbname'] = 'databricks_postgres';
        }
        $out['password'] = $client->password();
        return $out;
    }

    /**
     * A PDO pgsql connection (PDO::ERRMODE_EXCEPTION unless $options say otherwise).
     *
     * With PDO::ATTR_PERSISTENT the password is handed to libpq through PGPASSWORD for the length
     * of the constructor call instead of PDO's password argument: PDO keys persistent connections
     * by DSN, user and password, so a rotating password would open a new persistent connection
     * per token and strand the old ones. A live persistent connection is reused as is (it logged
     * in already); a new one logs in with the current token.
     *
     * @param array<string, string|int> $params
     * @param array<int, mixed> $options PDO driver options
     */
    public static function pdo(?Client $client = null, array $params = [], array $options = []): \PDO
    {
        $p = self::params($client, $params);
        $password = $p['password'];
        $user = $p['user'] ?? self::env('PGUSER');
        unset($p['password'], $p['user']);
        $dsn = 'pgsql:' . implode(';', array_map(
            static fn (string $k, string $v): string => $k . '=' . self::dsnValue($k, $v),
            array_keys($p),
            $p
        ));
        $options += [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION];
        $persistent = !empty($options[\PDO::ATTR_PERSISTENT]);
        return self::connect($client ?? Client::default(), $password, $p['connect_timeout'] ?? null,
            static fn (string $pw): \PDO => $persistent
                ? self::withPgPassword($pw, static fn () => new \PDO($dsn, $user, null, $options))
                : new \PDO($dsn, $user, $pw, $options));
    }

    /**
     * Open a connection with $password, as the library's own connects do: a login rejected with
     * the password the client handed out (a token the server no longer accepts, e.g. one revoked
     * or left in the shared cache) is retried once with a newly minted password; a connect that
     * failed because the endpoint is waking from scale-to-zero (refused, reset, timed out, "the
     * database system is starting up") is retried with backoff within connect_timeout (else 10 s,
     * LAKEBASE_CONNECT_RETRY overrides; 0 turns retries off). Nothing else is retried.
     *
     * @template T
     * @param callable(string): T $open
     * @return T
     */
    private static function connect(Client $client, #[\SensitiveParameter] string $password, ?string $connectTimeout, callable $open): mixed
    {
        $start = hrtime(true);
        $failed = 0;
        $renewed = false;
        while (true) {
            try {
                return $open($password);
            } catch (\PDOException|ConnectionException $e) {
                $failed++;
                $message = $e->getMessage();
                if (self::loginRejected($message)) {
                    if ($renewed) {
                        throw $e;
                    }
                    $renewed = true;
                    try {
                        if (!$client->refreshRejected($password)) {
                            throw $e;
                        }
                    } catch (LakebaseException) {
                        throw $e; // the driver's error says what the server refused
                    }
                    $password = $client->password();
                    continue;
                }
                $delay = Native::connectRetryDelay(self::sqlstate($e), $message, false, $failed, intdiv(hrtime(true) - $start, 1000000), $connectTimeout);
                if ($delay === null) {
                    throw $e;
                }
                usleep($delay * 1000);
            }
        }
    }

    /**
     * Whether the server turned the login down (its FATAL answer to the password) rather than
     * being unreachable, waking, or missing the database or role. Neither PDO nor ext-pgsql gives
     * the SQLSTATE of a failed connect, so this reads libpq's message: the server's FATAL line,
     * without the answers no new password changes.
     */
    private static function loginRejected(string $message): bool
    {
        if (!preg_match('/FATAL:\s+(.*)/s', $message, $m)) {
            return false;
        }
        return !preg_match('/does not exist|did not match the security label|starting up|shutting down|not yet accepting|in recovery|too many (connections|clients)|remaining connection slots|no pg_hba\.conf entry|not permitted to log in|SSL|terminating connection/i', $m[1]);
    }

    /** The SQLSTATE of a server error in libpq's message when it carries one (verbose messages), else null. */
    private static function sqlstate(\Throwable $e): ?string
    {
        return preg_match('/FATAL:\s+([0-9A-Z]{5}):/', $e->getMessage(), $m) ? $m[1] : null;
    }

    /**
     * A pg_connect() connection (ext-pgsql). Throws ConnectionException with libpq's message when
     * the connection fails. $persistent uses pg_pconnect, with the password in PGPASSWORD for the
     * call (pg_pconnect keys links by the whole connection string); see pdo().
     *
     * @param array<string, string|int> $params
     * @return \PgSql\Connection
     */
    public static function pgConnect(?Client $client = null, array $params = [], int $flags = 0, bool $persistent = false): \PgSql\Connection
    {
        $p = self::params($client, $params);
        $password = $p['password'];
        unset($p['password']);
        $conninfo = self::conninfo($p);
        $connect = static function (string $conninfo) use ($flags, $persistent): \PgSql\Connection {
            $warning = null;
            set_error_handler(static function (int $no, string $msg) use (&$warning): bool {
                $warning = $msg;
                return true;
            });
            try {
                $conn = $persistent ? pg_pconnect($conninfo, $flags) : pg_connect($conninfo, $flags);
            } finally {
                restore_error_handler();
            }
            if (!$conn instanceof \PgSql\Connection) {
                throw new ConnectionException(preg_replace('/^pg_p?connect\(\): /', '', (string) ($warning ?? 'pg_connect failed')));
            }
            return $conn;
        };
        return self::connect($client ?? Client::default(), $password, $p['connect_timeout'] ?? null,
            static fn (string $pw): \PgSql\Connection => $persistent
                ? self::withPgPassword($pw, static fn () => $connect($conninfo))
                : $connect($conninfo . ' password=' . Options::quote($pw)));
    }

    /**
     * A libpq conninfo string: key='value' pairs, quoted and escaped.
     *
     * @param array<string, string> $params
     */
    public static function conninfo(#[\SensitiveParameter] array $params): string
    {
        $parts = [];
        foreach ($params as $k => $v) {
            if (!preg_match('/\A[a-z_]+\z/', (string) $k)) {
                throw self::invalid('invalid connection parameter name ' . json_encode((string) $k));
            }
            $parts[] = $k . '=' . Options::quote((string) $v);
        }
        return implode(' ', $parts);
    }

    /** A PDO DSN value: libpq-quoted (PDO turns ';' into spaces, so a value cannot contain one). */
    private static function dsnValue(string $key, string $value): string
    {
        if (str_contains($value, ';')) {
            throw self::invalid("$key: a PDO pgsql DSN value cannot contain ';'");
        }
        return Options::quote($value);
    }

    /**
     * Run $fn with PGPASSWORD set to $password (libpq reads it when no password is given), then
     * restore the previous value. For persistent connections, whose key must not hold the token.
     *
     * @template T
     * @param callable(): T $fn
     * @return T
     */
    private static function withPgPassword(#[\SensitiveParameter] string $password, callable $fn): mixed
    {
        $previous = getenv('PGPASSWORD', true);
        putenv('PGPASSWORD=' . $password);
        try {
            return $fn();
        } finally {
            putenv($previous === false ? 'PGPASSWORD' : 'PGPASSWORD=' . $previous);
        }
    }

    private static function env(string $name): ?string
    {
        $v = getenv($name, true);
        if ($v === false || $v === '') {
            $v = getenv($name);
        }
        return is_string($v) && $v !== '' ? $v : null;
    }

    private static function systemBundle(): string
    {
        foreach (self::CA_BUNDLES as $f) {
            if (is_file($f)) {
                return $f;
            }
        }
        return 'system'; // libpq >= 16: the system's trusted roots
    }

    private static function invalid(string $message): InvalidArgumentException
    {
        return new InvalidArgumentException($message, LakebaseException::INVALID_ARGUMENT, 'LAKEBASE_INVALID_ARGUMENT');
    }
}
