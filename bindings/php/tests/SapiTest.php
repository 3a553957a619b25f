<?php

// Outside the CLI, ffi.enable=preload (the default) lets only code loaded at server start use
// FFI. php-cgi is such a SAPI (as php-fpm is): these tests run the package there.

declare(strict_types=1);

use Lakebase\Client;
use Lakebase\Native;

final class SapiTest extends TestCase
{
    private const SCRIPT = '
        header("Content-Type: text/plain");
        try {
            $c = new Lakebase\Client(["host" => getenv("FAKE_URL"), "token" => getenv("RIG_PAT"), "instance" => getenv("RIG_INSTANCE")]);
            $pdo = Lakebase\Postgres::pdo($c);
            echo PHP_SAPI, "|", Lakebase\Client::libraryPath(), "|", $pdo->query("select current_user::text")->fetchColumn(), "\n";
        } catch (Throwable $e) {
            echo get_class($e), "|", $e->getMessage(), "\n";
        }';

    private static function packageDir(): string
    {
        return dirname((string) (new ReflectionClass(Client::class))->getFileName(), 2);
    }

    private static function cgi(array $ini, ?string $autoload = null, array $wrap = [], ?array $env = null): string
    {
        $args = ['-q'];
        foreach ($ini as $k => $v) {
            array_push($args, '-d', "$k=$v");
        }
        $bin = trim((string) shell_exec('command -v php-cgi'));
        if ($bin === '') {
            self::fail('php-cgi not found (scripts/install-deps-bindings.sh installs php-cgi)');
        }
        if ($wrap !== []) {
            $args = array_merge(array_slice($wrap, 1), [$bin], $args);
            $bin = $wrap[0];
        }
        [$rc, $out, $err] = self::php(self::SCRIPT, $env, $args, $bin, $autoload);
        self::assertSame(0, $rc, $out . $err);
        return trim($out);
    }

    private static function preloadUser(): string
    {
        return (string) posix_getpwuid(posix_geteuid())['name'];
    }

    public function testWithoutPreloadTheErrorSaysWhatToSet(): void
    {
        $out = self::cgi([]);
        self::assertMatches('/^Lakebase\\\\LibraryNotFoundException\|FFI is restricted here .*opcache\.preload=\S*preload\.php/', $out);
    }

    // opcache.preload=preload.php with opcache.preload_user (required when the server starts as
    // root, as php-fpm's master does): the preloaded classes load the library with FFI::cdef().
    public function testOpcachePreloadWithAPreloadUser(): void
    {
        $out = self::cgi(['opcache.enable' => '1', 'opcache.preload' => self::packageDir() . '/preload.php', 'opcache.preload_user' => self::preloadUser()]);
        self::assertSame('cgi-fcgi|' . getenv('LAKEBASE_LIBRARY') . '|' . self::rig('RIG_USER'), $out);
    }

    // ffi.preload=<header> registers the LAKEBASE scope at start (FFI::load() is refused with
    // opcache.preload_user, ffi.preload is not); lakebase.h in the package is the header for the
    // system library.
    public function testFfiPreloadHeaderGivesTheScope(): void
    {
        self::assertSame(Native::header('liblakebase.so.0'), file_get_contents(self::packageDir() . '/lakebase.h'), 'lakebase.h is Native::header()');
        $header = tempnam(sys_get_temp_dir(), 'lakebase-h-');
        file_put_contents($header, Native::header());
        try {
            $out = self::cgi(['ffi.preload' => $header, 'opcache.enable' => '1', 'opcache.preload' => self::packageDir() . '/preload.php',
                'opcache.preload_user' => self::preloadUser()]);
            self::assertSame('cgi-fcgi|FFI::scope("LAKEBASE")|' . self::rig('RIG_USER'), $out);
        } finally {
            unlink($header);
        }
    }

    // A server that does not start as root needs no preload_user, and preload.php registers the
    // scope itself with FFI::load(). Run as nobody when the tests run as root (a world-readable
    // copy of the package, since the installed one may sit in a private directory).
    public function testPreloadAsAnUnprivilegedUserRegistersTheScope(): void
    {
        $tmp = sys_get_temp_dir() . '/lakebase-php-sapi-' . bin2hex(random_bytes(4));
        mkdir("$tmp/src", 0755, true);
        chmod($tmp, 0755);
        try {
            foreach (glob(self::packageDir() . '/src/*.php') as $f) {
                copy($f, "$tmp/src/" . basename($f));
            }
            foreach (['autoload.php', 'preload.php'] as $f) {
                copy(self::packageDir() . "/$f", "$tmp/$f");
            }
            copy(self::rig('PGSSLROOTCERT'), "$tmp/ca.crt"); // the rig's directory and the checkout may be private too
            copy((string) realpath((string) getenv('LAKEBASE_LIBRARY')), "$tmp/liblakebase.so.0");
            exec('chmod -R a+rX ' . escapeshellarg($tmp));
            $wrap = posix_geteuid() === 0 ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : [];
            $out = self::cgi(['opcache.enable' => '1', 'opcache.preload' => "$tmp/preload.php"], "$tmp/autoload.php", $wrap,
                ['PGSSLROOTCERT' => "$tmp/ca.crt", 'LAKEBASE_LIBRARY' => "$tmp/liblakebase.so.0"] + getenv());
            self::assertSame('cgi-fcgi|FFI::scope("LAKEBASE")|' . self::rig('RIG_USER'), $out);
        } finally {
            exec('rm -rf ' . escapeshellarg($tmp));
        }
    }
}
