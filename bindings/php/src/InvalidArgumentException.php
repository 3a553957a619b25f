<?php

declare(strict_types=1);

namespace Lakebase;

/** LAKEBASE_INVALID_ARGUMENT: malformed options (unknown key, bad quoting), a NUL byte, a closed client, a configuration the helpers refuse (sslmode=disable). */
class InvalidArgumentException extends LakebaseException
{
}
