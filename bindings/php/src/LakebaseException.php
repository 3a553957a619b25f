<?php

declare(strict_types=1);

namespace Lakebase;

/**
 * A failed liblakebase call. getMessage() is the library's message (auth method, HTTP status, the
 * API's error code and message, what to set; never a token), getCode() the lakebase_result value
 * and getCodeName() its name, e.g. "LAKEBASE_AUTH_ERROR".
 */
class LakebaseException extends \RuntimeException
{
    public const INVALID_ARGUMENT = 1;
    public const INSUFFICIENT_SIZE = 2;
    public const CONFIG_ERROR = 3;
    public const AUTH_ERROR = 4;
    public const API_ERROR = 5;
    public const NETWORK_ERROR = 6;
    public const INTERNAL_ERROR = 7;
    public const WOULD_BLOCK = 8;

    private const CLASSES = [
        self::INVALID_ARGUMENT => InvalidArgumentException::class,
        self::CONFIG_ERROR => ConfigException::class,
        self::AUTH_ERROR => AuthException::class,
        self::API_ERROR => ApiException::class,
        self::NETWORK_ERROR => NetworkException::class,
        self::INTERNAL_ERROR => InternalException::class,
    ];

    private string $codeName;

    public function __construct(string $message, int $code, string $codeName, ?\Throwable $previous = null)
    {
        parent::__construct($message !== '' ? $message : $codeName, $code, $previous);
        $this->codeName = $codeName;
    }

    public function getCodeName(): string
    {
        return $this->codeName;
    }

    /** The exception class for a result code (InternalException for codes this version does not know). */
    public static function forResult(int $code, string $codeName, string $message): self
    {
        $class = self::CLASSES[$code] ?? InternalException::class;
        return new $class($message, $code, $codeName);
    }
}
