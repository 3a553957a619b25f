<?php

declare(strict_types=1);

namespace Lakebase;

/**
 * Loading liblakebase with PHP's FFI extension and the C declarations of include/lakebase.h.
 * Nothing here caches passwords or reads configuration: every call goes to the library.
 *
 * @internal
 */
final class Native
{
    /** The SONAME major version this binding speaks. */
    public const ABI_MAJOR = 0;
    /** The FFI scope preload.php registers (opcache.preload; the way under php-fpm). */
    public const SCOPE = 'LAKEBASE';
    /** A first guess that fits a Lakebase token (~1 KB), so a cache hit is one call. */
    public const FIRST_GUESS = 2048;

    public const CDEF = <<<'C'
        typedef struct lakebase_client lakebase_client;
        int lakebase_client_new(const char *options, lakebase_client **out);
        void lakebase_client_free(lakebase_client *c);
        int lakebase_default_client(const lakebase_client **out);
        int lakebase_client_get_password(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_client_try_get_password(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_client_refresh(const lakebase_client *c);
        int lakebase_client_refresh_rejected(const lakebase_client *c, const char *rejected);
        int lakebase_client_token_expiry(const lakebase_client *c, int64_t *out_unix_seconds);
        int lakebase_client_identity(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_client_auth_type(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_client_refresh_error(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_client_postgres_host(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_client_postgres_role(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
        int lakebase_connect_retry_delay(const char *sqlstate, const char *message, int password_asked, uint32_t failed_attempts, int64_t elapsed_ms, const char *connect_timeout, int64_t *out_delay_ms);
        size_t lakebase_last_error(char *buf, size_t buf_len);
        const char *lakebase_result_name(int result);
        const char *lakebase_version(void);
        C;

    private static ?\FFI $ffi = null;
    private static string $path = '';
    private static ?\FFI\CData $buf = null;
    private static ?\FFI\CData $len = null;
    private static ?\FFI\CData $lenPtr = null;

    /**
     * Where to look, in order: $LAKEBASE_LIBRARY (a path; when set, nothing else is tried), the copy
     * bundled in this package (lib/<os>-<machine>/liblakebase.so.0, e.g. lib/linux-x86_64), the
     * system loader (liblakebase.so.0, then liblakebase.so).
     *
     * @return list<string>
     */
    public static function candidates(): array
    {
        $env = getenv('LAKEBASE_LIBRARY');
        if (is_string($env) && $env !== '') {
            return [$env];
        }
        $out = [];
        $bundled = dirname(__DIR__) . '/lib/' . self::platformDir() . '/liblakebase.so.0';
        if (is_file($bundled)) {
            $out[] = $bundled;
        }
        $out[] = 'liblakebase.so.0';
        $out[] = 'liblakebase.so';
        return $out;
    }

    /** The lib/ folder name for this platform, e.g. "linux-x86_64". */
    public static function platformDir(): string
    {
        return strtolower(PHP_OS_FAMILY) . '-' . php_uname('m');
    }

    /** The FFI instance: the preloaded scope if there is one, else FFI::cdef over the lookup. */
    public static function ffi(): \FFI
    {
        if (self::$ffi !== null) {
            return self::$ffi;
        }
        if (!extension_loaded('ffi')) {
            throw new LibraryNotFoundException('the PHP FFI extension is not loaded (Debian: php8.2-common ships it; enable extension=ffi)');
        }
        try {
            $scoped = \FFI::scope(self::SCOPE);
            self::accept($scoped, 'FFI::scope("' . self::SCOPE . '")');
            return $scoped;
        } catch (\FFI\Exception $e) {
            // not preloaded: load it here
        }
        $tried = [];
        foreach (self::candidates() as $cand) {
            try {
                $ffi = \FFI::cdef(self::CDEF, $cand);
            } catch (\FFI\Exception $e) {
                $tried[] = "$cand ({$e->getMessage()})";
                if (str_contains($e->getMessage(), 'ffi.enable')) {
                    throw new LibraryNotFoundException(
                        'FFI is restricted here (ffi.enable=preload outside the CLI): load the Lakebase classes at server '
                        . 'start with opcache.preload=' . dirname(__DIR__) . '/preload.php (see the package README), '
                        . 'or set ffi.enable=true. ' . $e->getMessage()
                    );
                }
                continue;
            }
            $problem = self::accept($ffi, $cand);
            if ($problem === null) {
                return $ffi;
            }
            $tried[] = "$cand ($problem)";
        }
        throw new LibraryNotFoundException(
            'liblakebase not found; set LAKEBASE_LIBRARY to the path of liblakebase.so, install it '
            . '(make install) or put it on LD_LIBRARY_PATH. Tried: ' . implode('; ', $tried)
        );
    }

    /** Keep $ffi if it is liblakebase of the right ABI; else say why not. */
    private static function accept(\FFI $ffi, string $where): ?string
    {
        $version = (string) $ffi->lakebase_version();
        if (explode('.', $version)[0] !== (string) self::ABI_MAJOR) {
            return "version $version, this binding needs " . self::ABI_MAJOR . '.x';
        }
        self::$ffi = $ffi;
        self::$path = $where;
        return null;
    }

    /** The file (or FFI scope) liblakebase was loaded from. */
    public static function path(): string
    {
        self::ffi();
        return self::$path;
    }

    /**
     * The FFI header for ffi.preload (php.ini), registering the LAKEBASE scope at server start:
     * the declarations plus FFI_SCOPE and FFI_LIB (default: the library the lookup finds now,
     * as an absolute path when it is a file). lakebase.h in the package is header('liblakebase.so.0').
     */
    public static function header(?string $library = null): string
    {
        if ($library === null) {
            $library = self::candidates()[0];
            $resolved = is_file($library) ? realpath($library) : false;
            $library = $resolved !== false ? $resolved : $library;
        }
        // The FFI_* defines must come first: FFI only looks for them at the top of the file.
        return '#define FFI_SCOPE "' . self::SCOPE . "\"\n"
            . '#define FFI_LIB "' . addcslashes($library, "\"\\") . "\"\n"
            . "/* liblakebase for PHP FFI: ffi.preload=<this file>, then FFI::scope(\"" . self::SCOPE . "\") (Lakebase\\Native does it). */\n"
            . preg_replace('/^ +/m', '', self::CDEF) . "\n";
    }

    /**
     * For opcache.preload (preload.php): register the LAKEBASE scope with the library found by
     * candidates(), so requests can use FFI::scope() where ffi.enable=preload forbids FFI::cdef().
     * Returns the library's path.
     */
    public static function preload(): string
    {
        $tried = [];
        foreach (self::candidates() as $cand) {
            $header = tempnam(sys_get_temp_dir(), 'lakebase-ffi-');
            if ($header === false) {
                throw new LibraryNotFoundException('cannot create a temporary FFI header file');
            }
            try {
                file_put_contents($header, self::header($cand));
                $ffi = \FFI::load($header);
            } catch (\FFI\Exception $e) {
                $tried[] = "$cand ({$e->getMessage()})";
                continue;
            } finally {
                @unlink($header);
            }
            if ($ffi === null) {
                $tried[] = "$cand (FFI::load failed)";
                continue;
            }
            $version = (string) $ffi->lakebase_version();
            if (explode('.', $version)[0] === (string) self::ABI_MAJOR) {
                return $cand;
            }
            $tried[] = "$cand (version $version)";
        }
        throw new LibraryNotFoundException('liblakebase could not be preloaded. Tried: ' . implode('; ', $tried));
    }

    /** This thread's detail message for its last failed call. */
    public static function lastError(): string
    {
        $ffi = self::ffi();
        $n = $ffi->lakebase_last_error(null, 0);
        if ($n === 0) {
            return '';
        }
        $buf = $ffi->new('char[' . ($n + 1) . ']');
        $ffi->lakebase_last_error($buf, $n + 1);
        return \FFI::string($buf, $n);
    }

    public static function check(int $result): void
    {
        if ($result !== 0) {
            throw LakebaseException::forResult($result, (string) self::ffi()->lakebase_result_name($result), self::lastError());
        }
    }

    /**
     * Call a (client, buf, buf_len, out_len) function: copy into a C buffer sized with the
     * library's INSUFFICIENT_SIZE protocol, make the PHP string, wipe the buffer. Returns null on
     * LAKEBASE_WOULD_BLOCK (only try_get_password answers it).
     */
    public static function getString(string $function, \FFI\CData $client): ?string
    {
        $ffi = self::ffi();
        if (self::$buf === null) { // one reusable buffer (PHP runs one call at a time), wiped after each use
            self::$buf = $ffi->new('char[' . self::FIRST_GUESS . ']');
            self::$len = $ffi->new('size_t');
            self::$lenPtr = \FFI::addr(self::$len);
        }
        $buf = self::$buf;
        $size = self::FIRST_GUESS;
        for ($i = 0; $i < 8; $i++) { // the value may grow between calls (a new token); bounded
            $r = $ffi->$function($client, $buf, $size, self::$lenPtr);
            if ($r === 0) {
                $n = self::$len->cdata;
                $s = \FFI::string($buf, $n);
                \FFI::memset($buf, 0, $n);
                return $s;
            }
            if ($r === LakebaseException::WOULD_BLOCK) {
                return null;
            }
            if ($r !== LakebaseException::INSUFFICIENT_SIZE) {
                self::check($r);
            }
            $size = self::$len->cdata + 1;
            $buf = $ffi->new("char[$size]"); // a larger one for this call only (zeroed; wiped on success)
        }
        throw new InternalException('value kept growing while it was being copied', LakebaseException::INTERNAL_ERROR, 'LAKEBASE_INTERNAL_ERROR');
    }

    /** A NUL-terminated copy of $s in C memory (wiped by the caller with wipe()). */
    /**
     * The library's retry policy for a failed connect (endpoints waking from scale-to-zero): the
     * delay in milliseconds before the next attempt, or null to give up. See
     * lakebase_connect_retry_delay in lakebase.h.
     */
    public static function connectRetryDelay(?string $sqlstate, string $message, bool $passwordAsked, int $failedAttempts, int $elapsedMs, ?string $connectTimeout): ?int
    {
        $ffi = self::ffi();
        $out = $ffi->new('int64_t');
        self::check($ffi->lakebase_connect_retry_delay($sqlstate, $message, $passwordAsked ? 1 : 0, max(1, $failedAttempts), max(0, $elapsedMs), $connectTimeout, \FFI::addr($out)));
        return $out->cdata < 0 ? null : (int) $out->cdata;
    }

    public static function cString(#[\SensitiveParameter] string $s): \FFI\CData
    {
        $n = strlen($s);
        $buf = self::ffi()->new('char[' . ($n + 1) . ']');
        if ($n > 0) {
            \FFI::memcpy($buf, $s, $n);
        }
        return $buf;
    }

    public static function wipe(\FFI\CData $buf): void
    {
        \FFI::memset($buf, 0, \FFI::sizeof($buf));
    }
}
