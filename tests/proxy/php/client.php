<?php
// PHP through the lakebase proxy, both drivers: PDO pgsql and the pgsql extension (pg_connect).
// PHP loads libpq with RTLD_DEEPBIND, so LD_PRELOAD injection cannot reach it: the proxy can.
// Usage: php client.php HOST PORT USER DATABASE. Prints key=value lines; exits non-zero on failure.
[$_, $host, $port, $user, $db] = $argv;
try {
    $pdo = new PDO("pgsql:host=$host;port=$port;dbname=$db;sslmode=disable", $user, null,
                   [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $st = $pdo->prepare('select current_user as u, ?::int + 1 as n');
    $st->execute([41]);
    $row = $st->fetch(PDO::FETCH_ASSOC);
    echo "pdo_user={$row['u']}\npdo_sum={$row['n']}\n";
} catch (PDOException $e) {
    fwrite(STDERR, "pdo: " . $e->getMessage() . "\n");
    exit(1);
}
$c = pg_connect("host=$host port=$port dbname=$db user=$user sslmode=disable");
if ($c === false) {
    fwrite(STDERR, "pg_connect failed\n");
    exit(1);
}
$r = pg_query_params($c, 'select current_user, $1::int * 2', [21]);
$row = pg_fetch_row($r);
echo "pg_user={$row[0]}\npg_product={$row[1]}\n";
pg_close($c);
