<?php

declare(strict_types=1);

namespace Lakebase;

/** liblakebase could not be loaded (see LAKEBASE_LIBRARY), or FFI is not available. Code -1. */
class LibraryNotFoundException extends LakebaseException
{
    public function __construct(string $message)
    {
        parent::__construct($message, -1, 'LAKEBASE_LIBRARY_NOT_FOUND');
    }
}
