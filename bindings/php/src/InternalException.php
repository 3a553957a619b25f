<?php

declare(strict_types=1);

namespace Lakebase;

/** LAKEBASE_INTERNAL_ERROR (or a result code this binding does not know): a bug, please report it. */
class InternalException extends LakebaseException
{
}
