<?php

declare(strict_types=1);

namespace Lakebase;

/** LAKEBASE_CONFIG_ERROR: no host, no instance/endpoint, unknown profile, conflicting auth methods. */
class ConfigException extends LakebaseException
{
}
