<?php

declare(strict_types=1);

namespace Lakebase;

/**
 * A Lakebase credential client:
 *
 *     $client = new Lakebase\Client(['host' => 'https://...', 'token' => $pat, 'instance' => 'my-db']);
 *     $client->password();  // ask again for every new connection
 *
 * Options are the library's option keys (host, token, client_id, client_secret, profile,
 * config_file, auth_type, instance, endpoint, ca_file, http_timeout_seconds, ...; camelCase works
 * too) or a raw options string; what is not given comes from DATABRICKS_* / LAKEBASE_* variables
 * and ~/.databrickscfg, as in the Databricks SDKs. Creating a client does no network I/O. Clients
 * with the same settings share one cached token inside the library while at least one of them is
 * alive; Client::default() lives as long as the process (the one to use under php-fpm, where
 * objects die with each request).
 */
final class Client
{
    private ?\FFI\CData $handle;
    private bool $borrowed = false;
    private static ?self $default = null;

    /** @param array<string, string|int|float|bool|null>|string $options */
    public function __construct(#[\SensitiveParameter] array|string $options = [])
    {
        $this->handle = null;
        $ffi = Native::ffi();
        $text = Native::cString(Options::toString($options)); // C memory, wiped below: it may hold a secret
        $out = $ffi->new('lakebase_client*');
        try {
            Native::check($ffi->lakebase_client_new($text, \FFI::addr($out)));
        } finally {
            Native::wipe($text);
        }
        $this->handle = $out;
    }

    /**
     * The process-wide default client (configured on first use from the environment and
     * ~/.databrickscfg). Borrowed: close() does nothing. It and its cached token outlive the
     * request under php-fpm; a configuration error is not remembered.
     */
    public static function default(): self
    {
        if (self::$default !== null) {
            return self::$default;
        }
        $ffi = Native::ffi();
        $out = $ffi->new('const lakebase_client*');
        Native::check($ffi->lakebase_default_client(\FFI::addr($out)));
        $c = (new \ReflectionClass(self::class))->newInstanceWithoutConstructor();
        $c->handle = $out; // const lakebase_client*: never freed
        $c->borrowed = true;
        return self::$default = $c;
    }

    private function h(): \FFI\CData
    {
        if ($this->handle === null) {
            throw new InvalidArgumentException('this Lakebase\Client is closed', LakebaseException::INVALID_ARGUMENT, 'LAKEBASE_INVALID_ARGUMENT');
        }
        return $this->handle;
    }

    /**
     * The current Lakebase password (an OAuth token). A cache hit is a memory read in the library;
     * a miss mints a token (one request however many callers). Ask for it for every new
     * connection; do not keep it.
     */
    public function password(): string
    {
        return (string) Native::getString('lakebase_client_get_password', $this->h());
    }

    /** The password if one can be served now, else null after starting a background fetch. Never waits. */
    public function tryPassword(): ?string
    {
        return Native::getString('lakebase_client_try_get_password', $this->h());
    }

    /** Discard the cached password and mint a new one now (e.g. after a login failed with 28P01/28000). */
    public function refresh(): void
    {
        Native::check(Native::ffi()->lakebase_client_refresh($this->h()));
    }

    /**
     * The server rejected $rejected (a password from this client) at login: if it is still the
     * cached password, the library discards it and mints a new one; if another caller replaced it
     * already, nothing happens. Then password() gives the newest one. Returns whether the password
     * changed (worth one more attempt). A new password rejected again within a second throws
     * AuthException instead of minting again.
     */
    public function refreshRejected(#[\SensitiveParameter] string $rejected): bool
    {
        $c = Native::cString($rejected);
        try {
            Native::check(Native::ffi()->lakebase_client_refresh_rejected($this->h(), $c));
        } finally {
            Native::wipe($c);
        }
        return !hash_equals($rejected, $this->password());
    }

    /**
     * The Postgres role this client logs in as: the identity's user name, or the group's role
     * when the configuration names a group. Cached; the first call may look it up.
     */
    public function postgresRole(): string
    {
        return (string) Native::getString('lakebase_client_postgres_role', $this->h());
    }

    /** Expiry of the cached password in Unix seconds, or null when none is cached. No network I/O. */
    public function tokenExpiry(): ?int
    {
        $ffi = Native::ffi();
        $v = $ffi->new('int64_t');
        Native::check($ffi->lakebase_client_token_expiry($this->h(), \FFI::addr($v)));
        return $v->cdata === 0 ? null : $v->cdata;
    }

    /**
     * The identity the client authenticates as: the workspace user name (SCIM /Me), which is its
     * Postgres role, or a service principal's application id. One API call the first time, then
     * cached by the library.
     */
    public function identity(): string
    {
        return (string) Native::getString('lakebase_client_identity', $this->h());
    }

    /** The auth method in use: "pat", "oauth-m2m", ... No network I/O. */
    public function authType(): string
    {
        return (string) Native::getString('lakebase_client_auth_type', $this->h());
    }

    /** The last token-refresh failure not yet followed by a success, or null. */
    public function refreshError(): ?string
    {
        $e = Native::getString('lakebase_client_refresh_error', $this->h());
        return $e === '' ? null : $e;
    }

    /**
     * The Postgres host of the configured database: a Provisioned instance's read_write_dns or an
     * Autoscaling endpoint's host. One API call the first time, then cached.
     */
    public function postgresHost(): string
    {
        return (string) Native::getString('lakebase_client_postgres_host', $this->h());
    }

    /** Release the handle (a no-op for the default client and when already closed). */
    public function close(): void
    {
        if ($this->borrowed || $this->handle === null) {
            return;
        }
        $h = $this->handle;
        $this->handle = null;
        Native::ffi()->lakebase_client_free($h);
    }

    public function isClosed(): bool
    {
        return $this->handle === null;
    }

    public function __destruct()
    {
        $this->close();
    }

    /** @return array<string, string> */
    public function __debugInfo(): array
    {
        return ['state' => $this->handle === null ? 'closed' : ($this->borrowed ? 'default' : 'open')];
    }

    /** The loaded liblakebase's version, e.g. "0.1.0". */
    public static function libraryVersion(): string
    {
        return (string) Native::ffi()->lakebase_version();
    }

    /** The file (or preloaded FFI scope) liblakebase was loaded from. */
    public static function libraryPath(): string
    {
        return Native::path();
    }

    private function __clone()
    {
    }
}
