<?php

declare(strict_types=1);

namespace Lakebase;

/**
 * pg_connect() failed (the server refused the login, TLS verification failed, ...). The message is
 * libpq's; it never contains the password. PDO connections throw PDOException instead.
 */
class ConnectionException extends \RuntimeException
{
}
