<?php

// The cost of a cached Lakebase password from PHP through the Composer package (FFI), next to the
// bare FFI call it wraps. Prints key=value lines for scripts/bench.sh.
//
//   DATABRICKS_HOST=... DATABRICKS_TOKEN=... LAKEBASE_INSTANCE=... LAKEBASE_LIBRARY=target/release/liblakebase.so \
//     php bench/php_hit.php [--calls N] [--batch B]
//
// Uses the default client (the environment), warms it with one password, then times N cached
// calls of each kind; p50 is the median of per-call means over batches of B calls.

declare(strict_types=1);

require __DIR__ . '/../bindings/php/autoload.php';

$opts = getopt('', ['calls:', 'batch:']);
$calls = (int) ($opts['calls'] ?? 200000);
$batch = (int) ($opts['batch'] ?? 100);

function api_requests(): int
{
    $stats = json_decode((string) file_get_contents(getenv('DATABRICKS_HOST') . '/_fake/stats'), true);
    return array_sum($stats['requests']);
}

/** @return array{float, float} mean and batch-median per call, microseconds */
function measure(int $calls, int $batch, callable $fn): array
{
    $per = [];
    $total = 0;
    for ($done = 0; $done < $calls; $done += $batch) {
        $t0 = hrtime(true);
        for ($i = 0; $i < $batch; $i++) {
            $fn();
        }
        $dt = hrtime(true) - $t0;
        $total += $dt;
        $per[] = $dt / $batch / 1000;
    }
    sort($per);
    return [$total / (count($per) * $batch) / 1000, $per[intdiv(count($per), 2)]];
}

$client = Lakebase\Client::default();
$before = api_requests();
$t0 = hrtime(true);
$first = $client->password();
$firstUs = (hrtime(true) - $t0) / 1000;

// The bare FFI call into a preallocated buffer (no PHP string made): the floor of any FFI binding.
$ffi = Lakebase\Native::ffi();
$handle = $ffi->new('const lakebase_client*');
Lakebase\Native::check($ffi->lakebase_default_client(FFI::addr($handle)));
$buf = $ffi->new('char[2048]');
$len = $ffi->new('size_t');
$lenp = FFI::addr($len);
$raw = static fn () => $ffi->lakebase_client_get_password($handle, $buf, 2048, $lenp);
if ($raw() !== 0 || $len->cdata !== strlen($first)) {
    throw new RuntimeException('raw call failed');
}

$warm = min($calls, 20000);
measure($warm, $batch, static fn () => $client->password());
measure($warm, $batch, $raw);
[$pwMean, $pwP50] = measure($calls, $batch, static fn () => $client->password());
[$rawMean, $rawP50] = measure($calls, $batch, $raw);
FFI::memset($buf, 0, 2048);
$requests = api_requests() - $before;

$out = [
    'php_version' => PHP_VERSION,
    'php_password_mean_us' => sprintf('%.3f', $pwMean),
    'php_password_p50_us' => sprintf('%.3f', $pwP50),
    'php_ffi_raw_mean_us' => sprintf('%.3f', $rawMean),
    'php_ffi_raw_p50_us' => sprintf('%.3f', $rawP50),
    'php_first_call_us' => sprintf('%.1f', $firstUs),
    'php_calls' => 2 * $calls,
    'php_requests_total' => $requests, // the first call's mint, then none
];
foreach ($out as $k => $v) {
    echo "$k=$v\n";
}
