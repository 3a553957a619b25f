<?php

declare(strict_types=1);

namespace Lakebase;

/** LAKEBASE_NETWORK_ERROR: the workspace could not be reached in time. */
class NetworkException extends LakebaseException
{
}
