<?php

// PDO pgsql and pg_connect against the rig's PostgreSQL (TLS, logins checked against the fake workspace).

declare(strict_types=1);

use Lakebase\AuthException;
use Lakebase\Client;
use Lakebase\ConnectionException;
use Lakebase\InvalidArgumentException;
use Lakebase\Postgres;

final class PostgresTest extends TestCase
{
    private const SSL_SQL = 'select current_user::text as who, ssl from pg_stat_ssl where pid = pg_backend_pid()';

    /** @var array<string, string|false> */
    private array $saved = [];

    public function setUp(): void
    {
        foreach (['PGHOST', 'PGDATABASE', 'PGSSLROOTCERT', 'PGUSER', 'PGPASSWORD'] as $k) {
            $this->saved[$k] = getenv($k);
        }
    }

    public function tearDown(): void
    {
        foreach ($this->saved as $k => $v) {
            putenv($v === false ? $k : "$k=$v");
        }
    }

    public function testPdoOverVerifiedTlsAsTheIdentity(): void
    {
        $c = new Client(self::patOptions());
        $pdo = Postgres::pdo($c);
        self::assertSame(['who' => self::rig('RIG_USER'), 'ssl' => true], $pdo->query(self::SSL_SQL)->fetch(\PDO::FETCH_ASSOC));
        self::assertSame(\PDO::ERRMODE_EXCEPTION, $pdo->getAttribute(\PDO::ATTR_ERRMODE));
    }

    public function testPgConnectOverVerifiedTlsAsTheIdentity(): void
    {
        $c = new Client(self::patOptions());
        $conn = Postgres::pgConnect($c);
        self::assertSame(['who' => self::rig('RIG_USER'), 'ssl' => 't'], pg_fetch_assoc(pg_query($conn, self::SSL_SQL)));
        self::assertSame(self::rig('RIG_USER'), pg_parameter_status($conn, 'session_authorization'));
        pg_close($conn);
    }

    public function testM2mServicePrincipalIsThePostgresRole(): void
    {
        $c = new Client(self::spOptions() + ['instance' => self::rig('RIG_INSTANCE')]);
        self::assertSame(self::rig('RIG_SP_USER'), Postgres::pdo($c)->query('select current_user::text')->fetchColumn());
    }

    public function testParamsDefaults(): void
    {
        $c = new Client(self::patOptions());
        putenv('PGHOST');
        putenv('PGDATABASE');
        $p = Postgres::params($c, ['port' => (int) self::rig('PGPORT'), 'application_name' => 'x']);
        self::assertSame('localhost', $p['host'], "the instance's read_write_dns");
        self::assertSame(self::rig('RIG_USER'), $p['user']);
        self::assertSame('databricks_postgres', $p['dbname']);
        self::assertSame('verify-full', $p['sslmode']);
        self::assertSame(self::rig('PGSSLROOTCERT'), $p['sslrootcert']);
        self::assertSame($c->password(), $p['password']);
        self::assertSame(self::rig('PGPORT'), $p['port']);
        // What is given (or in PG* variables) wins.
        putenv('PGUSER=someone');
        $p = Postgres::params($c, ['host' => 'h', 'dbname' => 'd', 'sslmode' => 'require', 'sslrootcert' => '/x.pem']);
        self::assertSame(['h', 'd', 'require', '/x.pem', false], [$p['host'], $p['dbname'], $p['sslmode'], $p['sslrootcert'], isset($p['user'])]);
        putenv('PGSSLROOTCERT');
        self::assertTrue(in_array(Postgres::params($c)['sslrootcert'], array_merge(Postgres::CA_BUNDLES, ['system']), true), 'the system bundle');
    }

    public function testRefusedParameters(): void
    {
        $c = new Client(self::patOptions());
        foreach (['disable', 'allow', 'prefer'] as $mode) {
            self::assertThrows(InvalidArgumentException::class, fn () => Postgres::params($c, ['sslmode' => $mode]), '/TLS/');
        }
        self::assertThrows(InvalidArgumentException::class, fn () => Postgres::params($c, ['password' => 'x']), '/password/');
        self::assertThrows(InvalidArgumentException::class, fn () => Postgres::pdo($c, ['application_name' => 'a;b']), "/';'/");
        self::assertThrows(InvalidArgumentException::class, fn () => Postgres::conninfo(['bad key' => 'x']));
        self::assertSame("host='a b' application_name='it\\'s'", Postgres::conninfo(['host' => 'a b', 'application_name' => "it's"]));
    }

    // verify-full against roots that do not include the rig's CA: the TLS handshake fails, so no
    // login (and no password) reaches the server's check.
    public function testTheServerCertificateIsVerified(): void
    {
        $c = new Client(self::patOptions());
        $c->password();
        $bundle = '/etc/ssl/certs/ca-certificates.crt';
        $before = self::checks();
        $e = self::assertThrows(\PDOException::class, fn () => Postgres::pdo($c, ['sslrootcert' => $bundle]), '/certificate verify failed/');
        self::assertNotContains($c->password(), $e->getMessage());
        $e = self::assertThrows(ConnectionException::class, fn () => Postgres::pgConnect($c, ['sslrootcert' => $bundle]), '/certificate verify failed/');
        self::assertNotContains($c->password(), $e->getMessage());
        self::assertSame($before, self::checks(), 'no login reached the password check');
    }

    public function testAWrongPatFailsBeforeConnecting(): void
    {
        $bad = 'dapi' . str_repeat('e', 32);
        $c = new Client(['host' => self::rig('FAKE_URL'), 'token' => $bad, 'instance' => self::rig('RIG_INSTANCE')]);
        $before = self::checks();
        foreach ([fn () => Postgres::pdo($c), fn () => Postgres::pgConnect($c), fn () => Postgres::pdo($c, ['user' => self::rig('RIG_USER')])] as $connect) {
            $e = self::assertThrows(AuthException::class, $connect, '/403/');
            self::assertNotContains($bad, (string) $e);
        }
        self::assertSame($before, self::checks());
    }

    // The server no longer accepts the cached token (revoked here; in the field also a token left
    // in the shared cache by another process): the connect asks the library for a new one (one
    // mint) and logs in with it, as the library's own libpq connects do.
    public function testARejectedCachedTokenIsReplacedOnceAndTheLoginSucceeds(): void
    {
        $c = new Client(self::patOptions());
        $old = $c->password();
        self::fake('/_fake/revoke', ['user' => self::rig('RIG_USER')]);
        $minted = self::minted();
        $conn = Postgres::pgConnect($c);
        self::assertSame(self::rig('RIG_USER'), pg_parameter_status($conn, 'session_authorization'));
        self::assertSame($minted + 1, self::minted(), 'one new token');
        self::assertNotSame($old, $c->password());
        self::assertTrue($c->refreshRejected($old), 'a stale report: the current password is another one, worth trying');
        self::assertSame($minted + 1, self::minted());
        $d = new Client(self::patOptions());
        $d->password();
        self::fake('/_fake/revoke', ['user' => self::rig('RIG_USER')]);
        self::assertSame(self::rig('RIG_USER'), Postgres::pdo($d)->query('select current_user::text')->fetchColumn());
        self::assertSame($minted + 3, self::minted());
    }

    // A login no new token can fix (a role the token is not for, in Lakebase's words) is not
    // retried: the driver's error, without the password, after one login attempt.
    public function testARejectedLoginIsAConnectionExceptionWithoutThePassword(): void
    {
        self::fake('/_fake/config', ['pg_reject_mode' => 'identity']);
        try {
            $c = new Client(self::patOptions());
            $pw = $c->password();
            $minted = self::minted();
            $failed = self::checks()['failed'];
            $e = self::assertThrows(ConnectionException::class, fn () => Postgres::pgConnect($c, ['user' => self::rig('RIG_SP_USER')]), '/did not match the security label/');
            self::assertNotContains($pw, $e->getMessage());
            $e = self::assertThrows(\PDOException::class, fn () => Postgres::pdo($c, ['user' => self::rig('RIG_SP_USER')]), '/did not match the security label/');
            self::assertNotContains($pw, $e->getMessage() . $e->getTraceAsString());
            self::assertSame($minted, self::minted(), 'no new token');
            self::assertSame($failed + 2, self::checks()['failed'], 'one login attempt each');
        } finally {
            self::fake('/_fake/config', ['pg_reject_mode' => 'pam']);
        }
    }

    // An endpoint waking from scale-to-zero refuses connections for a while: the connect retries
    // with backoff within connect_timeout and logs in once it is up.
    public function testAWakingEndpointIsRetriedWithinConnectTimeout(): void
    {
        $cold = self::rig('RIG_COLD_HOST'); // 127.0.0.2 on PGPORT
        putenv('PGHOST'); // the host comes from the endpoint
        $name = 'projects/php-cold/branches/main/endpoints/primary';
        self::fake('/_fake/endpoints', ['name' => $name, 'host' => $cold]);
        self::fake('/_fake/cold/arm', ['mode' => 'refuse', 'wake_ms' => 1500, 'now' => true]);
        try {
            $c = new Client(['host' => self::rig('FAKE_URL'), 'token' => self::freshPat(), 'endpoint' => $name]);
            $t0 = microtime(true);
            $pdo = Postgres::pdo($c, ['connect_timeout' => '10']);
            self::assertSame(self::rig('RIG_USER'), $pdo->query('select current_user::text')->fetchColumn());
            self::assertTrue(microtime(true) - $t0 >= 1.0, 'it waited for the wake-up');
            self::fake('/_fake/cold/arm', ['mode' => 'starting', 'wake_attempts' => 2, 'now' => true]);
            $conn = Postgres::pgConnect($c, ['connect_timeout' => '10']);
            self::assertSame(self::rig('RIG_USER'), pg_parameter_status($conn, 'session_authorization'));
            self::assertSame(2, (int) self::fake('/_fake/cold')['counters']['starting'], 'two "starting up" answers, then the login');
            // Retries are off with LAKEBASE_CONNECT_RETRY=0: the first refusal is the answer.
            putenv('LAKEBASE_CONNECT_RETRY=0');
            self::fake('/_fake/cold/arm', ['mode' => 'refuse', 'wake_ms' => 60000, 'now' => true]);
            self::assertThrows(\PDOException::class, fn () => Postgres::pdo($c), '/refused/');
        } finally {
            putenv('LAKEBASE_CONNECT_RETRY');
            self::fake('/_fake/cold/reset', []);
        }
    }

    // A database that does not exist is not retried.
    public function testAMissingDatabaseIsNotRetried(): void
    {
        $c = new Client(self::patOptions());
        $c->password();
        $minted = self::minted();
        $t0 = microtime(true);
        self::assertThrows(\PDOException::class, fn () => Postgres::pdo($c, ['dbname' => 'no_such_db']), '/does not exist/');
        self::assertTrue(microtime(true) - $t0 < 2.0, 'no backoff');
        self::assertSame($minted, self::minted());
    }

    // Each new connection asks for the current token, so connections opened after the first
    // token's expiry log in; a connection opened before keeps working (tokens are checked at login).
    public function testNewConnectionsAfterTheFirstTokenExpired(): void
    {
        self::withTokenLifetime(4, function (): void {
            $c = new Client(self::patOptions());
            $first = $c->password();
            $firstExpiry = (int) $c->tokenExpiry();
            self::assertTrue($firstExpiry - time() <= 5, 'a short-lived token');
            $held = Postgres::pdo($c);
            $heldPg = Postgres::pgConnect($c);
            $logins = [];
            self::pollUntil('new connections after the first token expired', function () use ($c, $first, $firstExpiry, &$logins): bool {
                $pdo = Postgres::pdo($c);
                self::assertSame(self::rig('RIG_USER'), $pdo->query('select current_user::text')->fetchColumn());
                $pg = Postgres::pgConnect($c, [], PGSQL_CONNECT_FORCE_NEW); // not the held link for the same conninfo
                self::assertSame(self::rig('RIG_USER'), pg_fetch_result(pg_query($pg, 'select current_user'), 0, 0));
                pg_close($pg);
                $logins[] = [microtime(true), $c->password()];
                return $logins[count($logins) - 1][0] > $firstExpiry + 0.5 && $logins[count($logins) - 1][1] !== $first;
            }, 20, 0.25);
            self::assertSame(1, (int) $held->query('select 1')->fetchColumn(), 'the first PDO connection outlived its token');
            self::assertSame('1', pg_fetch_result(pg_query($heldPg, 'select 1'), 0, 0), 'and the first pg_connect one');
            self::assertSame(null, $c->refreshError());
        });
    }

    // A persistent PDO connection is keyed without the token (it goes through PGPASSWORD), so it is
    // reused by a later call with another token, with its login; once it is gone, a new one logs in
    // with the current token. (Two clients stand for two tokens: the library rate-limits forced
    // refreshes of one cache entry.)
    public function testPersistentPdoConnectionsSurviveRotation(): void
    {
        $a = new Client(self::patOptions());
        $b = new Client(self::patOptions());
        self::assertNotSame($a->password(), $b->password());
        $opts = [\PDO::ATTR_PERSISTENT => true];
        $params = ['application_name' => 'lakebase-persistent-' . bin2hex(random_bytes(3))];
        $pid = (int) Postgres::pdo($a, $params, $opts)->query('select pg_backend_pid()')->fetchColumn();
        self::assertSame($pid, (int) Postgres::pdo($b, $params, $opts)->query('select pg_backend_pid()')->fetchColumn(), 'reused with another token');
        self::assertSame(false, getenv('PGPASSWORD'), 'PGPASSWORD is put back');
        self::fake('/_fake/revoke', ['user' => self::rig('RIG_USER')]); // only tokens minted from now on log in
        $b->refresh();
        self::pdoAdmin()->exec("select pg_terminate_backend($pid)");
        $pdo = self::pollUntilConnected(fn () => Postgres::pdo($b, $params, $opts));
        $new = (int) $pdo->query('select pg_backend_pid()')->fetchColumn();
        self::assertNotSame($pid, $new, 'a new persistent connection');
        self::assertSame(self::rig('RIG_USER'), $pdo->query('select current_user::text')->fetchColumn());
    }

    public function testPersistentPgConnectIsReusedWithAnotherToken(): void
    {
        $a = new Client(self::patOptions());
        $b = new Client(self::patOptions());
        $params = ['application_name' => 'lakebase-pconnect-' . bin2hex(random_bytes(3))];
        $pid = pg_get_pid(Postgres::pgConnect($a, $params, 0, true));
        self::assertSame($pid, pg_get_pid(Postgres::pgConnect($b, $params, 0, true)));
        self::assertSame(false, getenv('PGPASSWORD'));
    }

    /** The first connect after a backend was ended may still see the dead link: retry a few times. */
    private static function pollUntilConnected(callable $connect): \PDO
    {
        $pdo = null;
        self::pollUntil('a fresh persistent connection', function () use ($connect, &$pdo): bool {
            try {
                $pdo = $connect();
                $pdo->query('select 1');
                return true;
            } catch (\PDOException $e) {
                return false;
            }
        }, 10, 0.1);
        return $pdo;
    }
}
