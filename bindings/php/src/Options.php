<?php

declare(strict_types=1);

namespace Lakebase;

/**
 * The libpq-style options string liblakebase parses: key='value' ..., every value single-quoted
 * with \' and \\ escaped (the same as the other bindings build).
 */
final class Options
{
    /** Quote one value: '...' with \ and ' backslash-escaped. */
    public static function quote(#[\SensitiveParameter] string $value): string
    {
        return "'" . addcslashes($value, "\\'") . "'";
    }

    /**
     * The options string for an array of option keys (snake_case as in .databrickscfg, or
     * camelCase: clientId becomes client_id); null values are left out. A string is passed as is.
     * Keys are not checked against a list here: the library knows them and rejects unknown ones.
     *
     * @param array<string, string|int|float|bool|null>|string $options
     */
    public static function toString(#[\SensitiveParameter] array|string $options): string
    {
        if (is_string($options)) {
            return $options;
        }
        $parts = [];
        foreach ($options as $key => $value) {
            if ($value === null) {
                continue;
            }
            $name = strtolower((string) preg_replace('/(?<=[a-z0-9])([A-Z])/', '_$1', (string) $key));
            if (!preg_match('/\A[A-Za-z_][A-Za-z0-9_]*\z/', $name)) {
                throw new InvalidArgumentException('invalid option name ' . json_encode((string) $key), LakebaseException::INVALID_ARGUMENT, 'LAKEBASE_INVALID_ARGUMENT');
            }
            if (is_bool($value)) {
                $text = $value ? 'true' : 'false';
            } elseif (is_string($value) || is_int($value) || is_float($value)) {
                $text = (string) $value;
            } else {
                throw new InvalidArgumentException("option $key: expected a string, number or bool, got " . get_debug_type($value), LakebaseException::INVALID_ARGUMENT, 'LAKEBASE_INVALID_ARGUMENT');
            }
            if (str_contains($text, "\0")) {
                throw new InvalidArgumentException("option $key contains a NUL byte", LakebaseException::INVALID_ARGUMENT, 'LAKEBASE_INVALID_ARGUMENT');
            }
            $parts[] = $name . '=' . self::quote($text);
        }
        return implode(' ', $parts);
    }
}
