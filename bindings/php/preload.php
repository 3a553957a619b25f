<?php

// opcache.preload script for php-fpm (and any non-CLI SAPI). With ffi.enable=preload (the
// default outside the CLI) only code loaded at server start may use FFI: this loads the Lakebase\
// classes then, so their calls into FFI are allowed in every request.
//
//   opcache.enable=1
//   opcache.preload=/path/to/vendor/liblakebase/lakebase/preload.php
//   opcache.preload_user=www-data        ; required when the server starts as root
//   ffi.enable=preload                   ; the default
//
// Requests then load the library with FFI::cdef() (found as usual: LAKEBASE_LIBRARY, the copy
// bundled in lib/<platform>/, the system's liblakebase.so.0). When the server does not start as
// root (no opcache.preload_user), this script also registers the library as the FFI scope
// "LAKEBASE" once, which spares each request parsing the declarations; with preload_user set, PHP
// refuses FFI::load() here, and ffi.preload=<lakebase.h> does the same job (see README.md).

declare(strict_types=1);

require_once __DIR__ . '/autoload.php';

foreach (glob(__DIR__ . '/src/*.php') ?: [] as $file) {
    class_exists('Lakebase\\' . basename($file, '.php')); // through the autoloader: parents first
}

if ((string) ini_get('opcache.preload_user') === '') {
    try {
        FFI::scope(\Lakebase\Native::SCOPE); // already registered by ffi.preload
    } catch (FFI\Exception $e) {
        \Lakebase\Native::preload();
    }
}
