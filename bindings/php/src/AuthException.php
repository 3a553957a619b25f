<?php

declare(strict_types=1);

namespace Lakebase;

/** LAKEBASE_AUTH_ERROR: the workspace rejected the credentials (HTTP 401/403, OAuth error). */
class AuthException extends LakebaseException
{
}
