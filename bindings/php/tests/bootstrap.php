<?php

// Test bootstrap: the liblakebase test rig (tests/rig: a real PostgreSQL with TLS whose logins are
// checked by a fake Databricks workspace), a clean environment and the package under test.
//
// Uses the rig named by FAKE_URL/PGPORT/... in the environment (scripts/test-bindings.sh starts
// one), or starts one for this run. The library comes from LAKEBASE_LIBRARY, defaulting to the
// repository's target/release build. The package is loaded through LAKEBASE_PHP_AUTOLOAD (the
// vendor/autoload.php of a project that installed it, as scripts/test-bindings.sh does) or this
// checkout's autoload.php.

declare(strict_types=1);

const REPO = __DIR__ . '/../../..';

if ((string) getenv('LAKEBASE_LIBRARY') === '') {
    $built = REPO . '/target/release/liblakebase.so';
    if (is_file($built)) {
        putenv('LAKEBASE_LIBRARY=' . realpath($built));
    }
}

if ((string) getenv('FAKE_URL') === '' || (string) getenv('PGPORT') === '') {
    $dir = sys_get_temp_dir() . '/lakebase-php-rig-' . bin2hex(random_bytes(4));
    $rig = REPO . '/tests/rig/rig.py';
    exec('python3 ' . escapeshellarg($rig) . ' up --dir ' . escapeshellarg($dir) . ' > /dev/null', $_, $rc);
    if ($rc !== 0) {
        fwrite(STDERR, "could not start the test rig\n");
        exit(2);
    }
    foreach (json_decode((string) file_get_contents("$dir/env.json"), true) as $k => $v) {
        putenv("$k=$v");
    }
    register_shutdown_function(static function () use ($rig, $dir): void {
        exec('python3 ' . escapeshellarg($rig) . ' down --dir ' . escapeshellarg($dir) . ' > /dev/null 2>&1');
        exec('rm -rf ' . escapeshellarg($dir));
    });
}

// No Databricks configuration from the machine; HOME without a ~/.databrickscfg.
foreach (array_keys(getenv()) as $k) {
    if (preg_match('/^(DATABRICKS_|LAKEBASE_|ARM_|GOOGLE_|ACTIONS_ID_TOKEN)/', $k) && $k !== 'LAKEBASE_LIBRARY' && $k !== 'LAKEBASE_PHP_AUTOLOAD') {
        putenv($k);
    }
}
putenv('PGUSER');
putenv('PGPASSWORD');
$home = sys_get_temp_dir() . '/lakebase-php-home-' . bin2hex(random_bytes(4));
mkdir($home);
putenv("HOME=$home");
register_shutdown_function(static fn () => @rmdir($home));

define('LAKEBASE_AUTOLOAD', (string) getenv('LAKEBASE_PHP_AUTOLOAD') !== '' ? (string) getenv('LAKEBASE_PHP_AUTOLOAD') : dirname(__DIR__) . '/autoload.php');
require LAKEBASE_AUTOLOAD;
require __DIR__ . '/TestCase.php';
