<?php

// A small test runner (no PHPUnit, no network): runs every test* method of the *Test classes in
// tests/, in file order, each on a fresh instance, and prints one line per test and a summary.
//
//   php tests/run.php [substring of Class::method to select]

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

$filter = $argv[1] ?? '';
$files = glob(__DIR__ . '/*Test.php') ?: [];
sort($files);
foreach ($files as $f) {
    require_once $f;
}
// The fake forgets minted tokens on reset: do it before this process holds any.
(new ReflectionMethod(TestCase::class, 'fake'))->invoke(null, '/_fake/reset', []);

$passed = $failed = 0;
$t0 = microtime(true);
foreach ($files as $f) {
    $class = basename($f, '.php');
    foreach ((new ReflectionClass($class))->getMethods(ReflectionMethod::IS_PUBLIC) as $m) {
        if (!str_starts_with($m->name, 'test') || ($filter !== '' && !str_contains("$class::{$m->name}", $filter))) {
            continue;
        }
        $start = microtime(true);
        $test = new $class();
        $error = null;
        try {
            $test->setUp();
            try {
                $test->{$m->name}();
            } finally {
                $test->tearDown();
            }
        } catch (Throwable $e) {
            $error = $e;
        }
        $ms = (microtime(true) - $start) * 1000;
        if ($error === null) {
            $passed++;
            printf("ok   %s::%s (%.0f ms)\n", $class, $m->name, $ms);
        } else {
            $failed++;
            printf("FAIL %s::%s (%.0f ms)\n     %s: %s\n     at %s:%d\n", $class, $m->name, $ms, get_class($error),
                $error->getMessage(), $error->getFile(), $error->getLine());
            foreach (array_slice($error->getTrace(), 0, 4) as $fr) {
                printf("     from %s:%s\n", $fr['file'] ?? '?', $fr['line'] ?? '?');
            }
        }
    }
}
printf("%d tests, %d passed, %d failed (%.1f s)\n", $passed + $failed, $passed, $failed, microtime(true) - $t0);
exit($failed === 0 && $passed > 0 ? 0 : 1);
