<?php

declare(strict_types=1);

namespace Lakebase;

/** LAKEBASE_API_ERROR: the workspace API answered with an error (e.g. unknown instance). */
class ApiException extends LakebaseException
{
}
