<?php

// The base class of the tests (run by tests/run.php): assertions and rig helpers.

declare(strict_types=1);

final class AssertionFailed extends \Exception
{
}

abstract class TestCase
{
    public function setUp(): void
    {
    }

    public function tearDown(): void
    {
    }

    // ---- assertions --------------------------------------------------------------------------

    protected static function fail(string $message): never
    {
        throw new AssertionFailed($message);
    }

    protected static function assertTrue(bool $cond, string $message = 'expected true'): void
    {
        if (!$cond) {
            self::fail($message);
        }
    }

    protected static function assertSame(mixed $expected, mixed $actual, string $message = ''): void
    {
        if ($expected !== $actual) {
            self::fail(($message !== '' ? "$message: " : '') . 'expected ' . var_export($expected, true) . ', got ' . var_export($actual, true));
        }
    }

    protected static function assertNotSame(mixed $unexpected, mixed $actual, string $message = ''): void
    {
        if ($unexpected === $actual) {
            self::fail(($message !== '' ? "$message: " : '') . 'did not expect ' . var_export($actual, true));
        }
    }

    protected static function assertMatches(string $pattern, string $actual, string $message = ''): void
    {
        if (!preg_match($pattern, $actual)) {
            self::fail(($message !== '' ? "$message: " : '') . var_export($actual, true) . " does not match $pattern");
        }
    }

    protected static function assertNotContains(string $needle, string $haystack, string $message = ''): void
    {
        if ($needle !== '' && str_contains($haystack, $needle)) {
            self::fail(($message !== '' ? "$message: " : '') . 'the text contains ' . var_export(substr($needle, 0, 12) . '...', true));
        }
    }

    /**
     * @template T of \Throwable
     * @param class-string<T> $class
     * @return T
     */
    protected static function assertThrows(string $class, callable $fn, ?string $messagePattern = null): \Throwable
    {
        try {
            $fn();
        } catch (\Throwable $e) {
            if (!$e instanceof $class) {
                self::fail("expected $class, got " . get_class($e) . ': ' . $e->getMessage());
            }
            if ($messagePattern !== null) {
                self::assertMatches($messagePattern, $e->getMessage());
            }
            return $e;
        }
        self::fail("expected $class, nothing was thrown");
    }

    // ---- the rig -----------------------------------------------------------------------------

    protected static function rig(string $key): string
    {
        $v = getenv($key);
        if (!is_string($v) || $v === '') {
            throw new \RuntimeException("$key not set (the rig's env.sh)");
        }
        return $v;
    }

    /** A fake-control call: GET without body, POST with one. */
    protected static function fake(string $path, ?array $body = null): array
    {
        $ctx = stream_context_create(['http' => $body === null ? ['timeout' => 10] : [
            'method' => 'POST', 'header' => "Content-Type: application/json\r\n",
            'content' => json_encode($body === [] ? new \stdClass() : $body), 'timeout' => 10,
        ]]);
        $res = file_get_contents(self::rig('FAKE_URL') . $path, false, $ctx);
        if ($res === false) {
            throw new \RuntimeException("fake $path failed");
        }
        return json_decode($res, true);
    }

    protected static function minted(): int
    {
        return (int) self::fake('/_fake/stats')['lakebase_tokens_minted_total'];
    }

    /** @return array{ok: int, failed: int} */
    protected static function checks(): array
    {
        $c = self::fake('/_fake/stats')['checks'];
        return ['ok' => (int) $c['ok'], 'failed' => (int) $c['failed']];
    }

    /**
     * A new personal access token for alice: a client using it has a cache entry of its own in the
     * library, so its first password is a cold miss even if other tests ran in this process.
     */
    protected static function freshPat(): string
    {
        $pat = 'dapi' . bin2hex(random_bytes(16));
        self::fake('/_fake/identities', ['pats' => [$pat => self::rig('RIG_USER')]]);
        return $pat;
    }

    /** @return array<string, string> */
    protected static function patOptions(): array
    {
        return ['host' => self::rig('FAKE_URL'), 'token' => self::freshPat(), 'instance' => self::rig('RIG_INSTANCE')];
    }

    /** @return array<string, string> */
    protected static function spOptions(): array
    {
        return ['host' => self::rig('FAKE_URL'), 'client_id' => self::rig('RIG_SP_CLIENT_ID'), 'client_secret' => self::rig('RIG_SP_CLIENT_SECRET')];
    }

    /** Tokens minted inside $fn live $seconds (the library refreshes them at about half their life). */
    protected static function withTokenLifetime(int $seconds, callable $fn): mixed
    {
        self::fake('/_fake/config', ['token_lifetime_seconds' => $seconds]);
        try {
            return $fn();
        } finally {
            self::fake('/_fake/config', ['token_lifetime_seconds' => 3600]);
        }
    }

    /** Bounded polling: call $cond every $interval s until it returns true; fail after $timeout s. */
    protected static function pollUntil(string $what, callable $cond, float $timeout = 30.0, float $interval = 0.25): void
    {
        $deadline = microtime(true) + $timeout;
        while (!$cond()) {
            if (microtime(true) > $deadline) {
                self::fail("timed out after {$timeout} s waiting for $what");
            }
            usleep((int) ($interval * 1e6));
        }
    }

    /**
     * Run PHP code in a child process (the package's autoloader loaded first); returns [exit code, stdout, stderr].
     *
     * @param array<string, string>|null $env null: this process's environment
     * @param list<string> $phpArgs interpreter arguments (-d ...)
     * @return array{int, string, string}
     */
    protected static function php(string $code, ?array $env = null, array $phpArgs = [], ?string $binary = null, ?string $autoload = null): array
    {
        $base = (string) tempnam(sys_get_temp_dir(), 'lakebase-php-');
        $script = "$base.php";
        file_put_contents($script, "<?php\nrequire " . var_export($autoload ?? LAKEBASE_AUTOLOAD, true) . ";\n" . $code);
        chmod($script, 0644); // readable by an unprivileged child (SapiTest)
        try {
            $cmd = array_merge([$binary ?? PHP_BINARY], $phpArgs, [$script]);
            $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env ?? getenv());
            $out = stream_get_contents($pipes[1]);
            $err = stream_get_contents($pipes[2]);
            fclose($pipes[1]);
            fclose($pipes[2]);
            return [proc_close($p), (string) $out, (string) $err];
        } finally {
            @unlink($script);
            @unlink($base);
        }
    }

    protected static function pdoAdmin(): \PDO
    {
        // The rig's superuser over the Unix socket (trust): to end other backends.
        return new \PDO('pgsql:host=' . self::rig('RIG_PG_SOCKET_DIR') . ';port=' . self::rig('PGPORT') . ';dbname=databricks_postgres',
            self::rig('RIG_PG_ADMIN_USER'), null, [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION]);
    }
}
