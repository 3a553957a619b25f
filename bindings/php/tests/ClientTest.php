<?php

declare(strict_types=1);

use Lakebase\ApiException;
use Lakebase\AuthException;
use Lakebase\Client;
use Lakebase\ConfigException;
use Lakebase\InvalidArgumentException;
use Lakebase\LakebaseException;
use Lakebase\NetworkException;
use Lakebase\Options;

final class ClientTest extends TestCase
{
    public function testVersionAndLibraryPath(): void
    {
        self::assertMatches('/^0\.\d+\.\d+/', Client::libraryVersion());
        self::assertSame(getenv('LAKEBASE_LIBRARY'), Client::libraryPath());
    }

    public function testOptionsArraysBecomeAQuotedOptionsString(): void
    {
        self::assertSame(
            "host='https://x' client_id='a b' client_secret='it\\'s\\\\' http_timeout_seconds='5' x='true'",
            Options::toString(['host' => 'https://x', 'clientId' => 'a b', 'client_secret' => "it's\\", 'token' => null, 'httpTimeoutSeconds' => 5, 'x' => true])
        );
        self::assertSame("profile=prod instance='db'", Options::toString("profile=prod instance='db'"));
        self::assertThrows(InvalidArgumentException::class, fn () => Options::toString(['token' => "a\0b"]), '/NUL/');
        self::assertThrows(InvalidArgumentException::class, fn () => Options::toString(['bad-key' => 'x']));
        self::assertThrows(InvalidArgumentException::class, fn () => Options::toString(['host' => []]));
    }

    public function testAPatClient(): void
    {
        $c = new Client(self::patOptions());
        self::assertSame(null, $c->tokenExpiry(), 'nothing cached before the first password');
        self::assertSame('pat', $c->authType());
        $pw = $c->password();
        self::assertMatches('/^[\w-]+\.[\w-]+\.[\w-]+$/', $pw);
        self::assertTrue(strlen($pw) > 800, 'a token of ' . strlen($pw) . ' bytes');
        $left = $c->tokenExpiry() - time();
        self::assertTrue($left > 3000 && $left <= 3600, "expires in $left s");
        self::assertSame($pw, $c->password(), 'a hit returns the cached token');
        self::assertSame($pw, $c->tryPassword());
        self::assertSame(self::rig('RIG_USER'), $c->identity());
        self::assertSame('localhost', $c->postgresHost());
        self::assertSame(null, $c->refreshError());
    }

    public function testAnM2mClientAuthenticatesAsTheServicePrincipal(): void
    {
        $c = new Client(self::spOptions() + ['instance' => self::rig('RIG_INSTANCE')]);
        self::assertSame('oauth-m2m', $c->authType());
        self::assertSame(self::rig('RIG_SP_USER'), $c->identity());
        self::assertTrue(strlen($c->password()) > 800);
    }

    public function testAnAutoscalingEndpointClient(): void
    {
        $c = new Client(sprintf("host='%s' token='%s' endpoint='%s'", self::rig('FAKE_URL'), self::freshPat(), self::rig('RIG_ENDPOINT')));
        self::assertTrue(strlen($c->password()) > 800);
        self::assertSame('localhost', $c->postgresHost());
    }

    public function testTryPasswordStartsOneBackgroundFetch(): void
    {
        $c = new Client(self::patOptions());
        $before = self::minted();
        self::assertSame(null, $c->tryPassword());
        $pw = null;
        self::pollUntil('the background fetch', function () use ($c, &$pw): bool {
            return ($pw = $c->tryPassword()) !== null;
        }, 10, 0.005);
        self::assertSame($pw, $c->password());
        self::assertSame($before + 1, self::minted());
    }

    public function testRefreshMintsANewToken(): void
    {
        $c = new Client(self::patOptions());
        $first = $c->password();
        $before = self::minted();
        $c->refresh();
        self::assertSame($before + 1, self::minted());
        self::assertNotSame($first, $c->password());
    }

    public function testClientsWithTheSameSettingsShareOneToken(): void
    {
        $opts = self::patOptions();
        $a = new Client($opts);
        $before = self::minted();
        $pw = $a->password();
        $b = new Client($opts);
        self::assertSame($pw, $b->password());
        self::assertSame($before + 1, self::minted());
    }

    public function testAWrongPatIsAnAuthErrorWithoutTheToken(): void
    {
        $bad = 'dapi' . str_repeat('f', 32);
        $c = new Client(['host' => self::rig('FAKE_URL'), 'token' => $bad, 'instance' => self::rig('RIG_INSTANCE')]);
        foreach ([fn () => $c->password(), fn () => $c->identity(), fn () => $c->refresh()] as $call) {
            $e = self::assertThrows(AuthException::class, $call, '/403/');
            self::assertTrue($e instanceof LakebaseException);
            self::assertSame(LakebaseException::AUTH_ERROR, $e->getCode());
            self::assertSame('LAKEBASE_AUTH_ERROR', $e->getCodeName());
            self::assertNotContains($bad, $e->getMessage());
            self::assertNotContains($bad, (string) $e);
        }
    }

    // #[SensitiveParameter]: with argument capture on (zend.exception_ignore_args=0, the
    // development setting), a trace through the constructor shows no secret.
    public function testSecretsStayOutOfStackTraces(): void
    {
        $secret = 'dose' . bin2hex(random_bytes(16));
        [$rc, $out, $err] = self::php('
            try { new Lakebase\Client(["host" => "' . self::rig('FAKE_URL') . '", "client_id" => "x", "client_secret" => "' . $secret . '", "no_such" => "y"]); }
            catch (Lakebase\InvalidArgumentException $e) { echo $e, "\n"; print_r($e->getTrace()); }', null, ['-d', 'zend.exception_ignore_args=0']);
        self::assertSame(0, $rc, $err);
        self::assertMatches('/no_such/', $out);
        self::assertMatches('/SensitiveParameterValue/', $out);
        self::assertNotContains($secret, $out . $err);
    }

    public function testConfigurationErrors(): void
    {
        self::assertThrows(InvalidArgumentException::class, fn () => new Client(['host' => self::rig('FAKE_URL'), 'token' => 'x', 'no_such_option' => 'y']), '/no_such_option/');
        self::assertThrows(InvalidArgumentException::class, fn () => new Client("host='unterminated"));
        $noTarget = new Client(['host' => self::rig('FAKE_URL'), 'token' => self::rig('RIG_PAT')]);
        self::assertThrows(ConfigException::class, fn () => $noTarget->password(), '/LAKEBASE_INSTANCE/');
        self::assertThrows(ConfigException::class, fn () => $noTarget->postgresHost());
        $unknown = new Client(['host' => self::rig('FAKE_URL'), 'token' => self::rig('RIG_PAT'), 'instance' => 'no-such-instance']);
        self::assertThrows(ApiException::class, fn () => $unknown->password(), '/no-such-instance/');
        $down = new Client(['host' => 'http://127.0.0.1:1', 'token' => 'x', 'instance' => 'x', 'retry_timeout_seconds' => 1]);
        self::assertThrows(NetworkException::class, fn () => $down->password());
    }

    public function testAClosedClient(): void
    {
        $c = new Client(self::patOptions());
        $c->close();
        $c->close();
        self::assertTrue($c->isClosed());
        self::assertThrows(InvalidArgumentException::class, fn () => $c->password(), '/closed/');
        self::assertThrows(InvalidArgumentException::class, fn () => $c->tokenExpiry(), '/closed/');
        self::assertThrows(\Error::class, fn () => clone $c);
    }

    public function testTheDefaultClientReadsTheEnvironment(): void
    {
        $env = getenv() + ['DATABRICKS_HOST' => self::rig('FAKE_URL'), 'DATABRICKS_TOKEN' => self::rig('RIG_PAT'), 'LAKEBASE_INSTANCE' => self::rig('RIG_INSTANCE')];
        [$rc, $out, $err] = self::php('
            $d = Lakebase\Client::default();
            $d->close(); // a no-op on the default client
            echo strlen($d->password()), " ", $d->identity(), " ", var_export($d->isClosed(), true), " ", var_export(Lakebase\Client::default() === $d, true), "\n";', $env);
        self::assertSame(0, $rc, $err);
        self::assertMatches('/^\d{3,4} ' . preg_quote(self::rig('RIG_USER'), '/') . ' false true\n$/', $out);
        [$rc, $out] = self::php('try { Lakebase\Client::default(); } catch (Lakebase\ConfigException $e) { echo $e->getCodeName(); }');
        self::assertSame('LAKEBASE_CONFIG_ERROR', $out);
    }

    // Lookup: LAKEBASE_LIBRARY, then lib/<platform>/liblakebase.so.0 in the package, then the system loader.
    public function testLibraryLookupOrder(): void
    {
        $lib = (string) getenv('LAKEBASE_LIBRARY');
        $base = getenv();
        unset($base['LAKEBASE_LIBRARY'], $base['LD_LIBRARY_PATH']);
        $probe = 'try { echo Lakebase\Client::libraryPath(); } catch (Lakebase\LibraryNotFoundException $e) { echo get_class($e), " ", $e->getCodeName(), " ", $e->getMessage(); }';

        [, $out] = self::php($probe, $base + ['LAKEBASE_LIBRARY' => '/nonexistent/liblakebase.so']);
        self::assertMatches('#^Lakebase\\\\LibraryNotFoundException LAKEBASE_LIBRARY_NOT_FOUND .*/nonexistent/liblakebase\.so#', $out);
        self::assertNotContains('liblakebase.so.0', $out, 'LAKEBASE_LIBRARY set: nothing else is tried');

        [, $out] = self::php($probe, $base + ['LD_LIBRARY_PATH' => dirname($lib)]);
        self::assertSame('liblakebase.so.0', $out, 'the system loader');

        // A copy of the package (src/ only) with the library bundled.
        $tmp = sys_get_temp_dir() . '/lakebase-php-pkg-' . bin2hex(random_bytes(4));
        $src = dirname((new ReflectionClass(Client::class))->getFileName());
        try {
            mkdir("$tmp/src", 0777, true);
            foreach (glob("$src/*.php") as $f) {
                copy($f, "$tmp/src/" . basename($f));
            }
            copy(dirname(__DIR__) . '/autoload.php', "$tmp/autoload.php");
            $dir = "$tmp/lib/" . Lakebase\Native::platformDir();
            mkdir($dir, 0777, true);
            copy(realpath($lib), "$dir/liblakebase.so.0");
            [, $out] = self::php($probe, $base + ['LD_LIBRARY_PATH' => dirname($lib)], [], null, "$tmp/autoload.php");
            self::assertSame("$dir/liblakebase.so.0", $out);
            [, $out] = self::php($probe, $base + ['LAKEBASE_LIBRARY' => $lib], [], null, "$tmp/autoload.php");
            self::assertSame($lib, $out, 'LAKEBASE_LIBRARY wins over the bundled copy');
        } finally {
            exec('rm -rf ' . escapeshellarg($tmp));
        }
    }
}
