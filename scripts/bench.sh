#!/usr/bin/env bash
# The benchmark suite (issue 7): builds what it needs, starts the test rig (PostgreSQL with TLS +
# PAM, fake workspace), runs every measurement and prints ONE table (measurement, figure, target, met?). Raw figures: build/bench/results.txt.
#
#   scripts/bench.sh           full run for the README figures (~6-8 minutes; run on a quiet machine)
#   scripts/bench.sh --quick   CI: same steps with tiny iteration counts, only to check that the
#                              benchmarks still work (~1-2 minutes; its figures are not meaningful)
#
# Section 7 (shared cache across processes): bench/shared.py; 8 (lakebase proxy vs direct vs
# PgBouncer): bench/proxy.py; 9 (a cached password from Node.js and PHP): bench/node_hit.mjs,
# bench/php_hit.php.
# Needs what scripts/test.sh installs (Rust, cc, libpq-dev, PostgreSQL, pgbench, Python 3,
# databricks-sdk); run as root like the rig. Programs: bench/*.c, bench/*.py, benches/cache.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Python packages live in the repository's virtualenv (.venv), first on PATH from here on.
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ROOT=$PWD
export CARGO_TERM_COLOR=never

QUICK=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $a" >&2; exit 64 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    LAT_SAMPLES=100000; TP_SECONDS=0.3; SF_LIFETIME=2; COMPARE_CALLS=10; CACHED_CALLS=20000
    PGB_ROUNDS=1; PGB_TX=5; SPAWN_TRUE=30; SPAWN_PQ=3; PQ_CONNECTS=3; COLD_RUNS=2
    SH_ARGS=(--runs 4 --pairs 4 --off-runs 2 --burst 4 --warm 3)
    PROXY_ARGS=(--quick)
    CRIT_ARGS=(--warm-up-time 0.05 --measurement-time 0.1 --sample-size 10 --nresamples 1000)
else
    LAT_SAMPLES=2000000; TP_SECONDS=3; SF_LIFETIME=4; COMPARE_CALLS=200; CACHED_CALLS=500000
    PGB_ROUNDS=5; PGB_TX=100; SPAWN_TRUE=500; SPAWN_PQ=40; PQ_CONNECTS=50; COLD_RUNS=20
    SH_ARGS=(--runs 20 --pairs 60 --off-runs 5 --burst 16 --warm 20)
    PROXY_ARGS=()
    CRIT_ARGS=(--warm-up-time 1 --measurement-time 3)
fi
SF_THREADS=64; SF_CALLS=100000
THREADS_LIST="1 2 4 16 64"

OUT=$ROOT/build/bench
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: > "$RESULTS"
LIB=$ROOT/target/release/liblakebase.so
declare -A R

T0=$(date +%s)
log() { printf '==> [%3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
# record KEY VALUE
rec() { R[$1]=$2; echo "$1=$2" >> "$RESULTS"; }
# collect PREFIX < key=value lines
collect() { local k v; while IFS='=' read -r k v; do [ -n "$k" ] && rec "$1$k" "$v"; done; }
# kv PREFIX CMD...: run CMD (failing the script if it fails) and record its key=value lines
kv() { local p=$1; shift; "$@" > "$OUT/last.kv"; collect "$p" < "$OUT/last.kv"; }
calc() { awk "BEGIN { printf \"%s\", $* }"; }
fcalc() { awk "BEGIN { printf \"$1\", ${*:2} }"; } # fcalc FORMAT EXPR...

# ---------------------------------------------------------------- dependencies + build
log "dependencies of sections 8-9 (PgBouncer, asyncpg in .venv; Node's koffi, PHP FFI): idempotent"
scripts/install-deps-proxy.sh >/dev/null
scripts/install-deps-bindings.sh >/dev/null
log "build (cargo build --release: the library and the lakebase command; C bench programs, criterion bench)"
cargo build --release --quiet -p lakebase -p lakebase-cli
ln -sf liblakebase.so target/release/liblakebase.so.0
CFLAGS=(-O2 -g -Wall -Wextra -Werror)
cc "${CFLAGS[@]}" -Iinclude bench/hotpath.c -Ltarget/release -Wl,-rpath,"$ROOT/target/release" -llakebase -lpthread \
   -o "$OUT/hotpath"
cc "${CFLAGS[@]}" bench/spawn.c -o "$OUT/spawn"
cc "${CFLAGS[@]}" $(pkg-config --cflags libpq) bench/pqprobe.c $(pkg-config --libs libpq) -ldl -o "$OUT/pqprobe"
CRIT_EXE=$(cargo bench --bench cache --no-run 2>&1 | tee "$OUT/criterion-build.txt" | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n1)
[ -x "$CRIT_EXE" ] || { cat "$OUT/criterion-build.txt" >&2; exit 1; }

# ---------------------------------------------------------------- rig + fake
STATE=$(mktemp -d /tmp/lakebase-bench.XXXXXX)
cleanup() {
    python3 tests/rig/rig.py down --dir "$STATE/rig" >/dev/null 2>&1 || true
    rm -rf "$STATE"
}
trap cleanup EXIT
log "start the test rig (PostgreSQL with TLS + the fake workspace)"
python3 tests/rig/rig.py up --dir "$STATE/rig" >/dev/null

# Run in a subshell with only the variables named. Sections 1-6 measure one process at a time:
# the per-user shared cache is off there (section 7 measures it).
rig_env() { ( set -a; . "$STATE/rig/env.sh"; set +a; unset DATABRICKS_TOKEN DATABRICKS_CLIENT_ID DATABRICKS_CLIENT_SECRET \
              XDG_RUNTIME_DIR XDG_CACHE_HOME LAKEBASE_CACHE_DIR; export LAKEBASE_CACHE=off; "$@" ); }
# The workspace only (no PG* variables): for the measurements that need no PostgreSQL.
nd_env() {
    ( set -a; . "$STATE/rig/env.sh"; set +a
      unset DATABRICKS_TOKEN DATABRICKS_CLIENT_ID DATABRICKS_CLIENT_SECRET DATABRICKS_CONFIG_PROFILE LD_PRELOAD \
            PGHOST PGPORT PGDATABASE PGSSLMODE PGSSLROOTCERT XDG_RUNTIME_DIR XDG_CACHE_HOME LAKEBASE_CACHE_DIR
      export DATABRICKS_HOST=$FAKE_URL LAKEBASE_INSTANCE=$RIG_INSTANCE LAKEBASE_CACHE=off
      "$@" )
}
ND_URL=$(. "$STATE/rig/env.sh"; echo "$FAKE_URL")
fake() { # fake METHOD PATH [JSON] -> body (the rig's fake workspace)
    if [ -n "${3:-}" ]; then curl -sf -X "$1" -H 'Content-Type: application/json' -d "$3" "$ND_URL$2"; else curl -sf "$ND_URL$2"; fi
}
stat_of() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
api_total() { fake GET /_fake/stats | stat_of 'sum(d["requests"].values())'; }

# ---------------------------------------------------------------- 1. hot path
log "1. cached get_password through the C ABI: latency and throughput"
fake POST /_fake/reset '{}' >/dev/null
pat() { DATABRICKS_TOKEN=$RIG_PAT "$@"; } # inside nd_env
for which in default client; do
    kv "lat_${which}_" nd_env pat "$OUT/hotpath" latency "$which" "$LAT_SAMPLES"
    for t in $THREADS_LIST; do
        kv "tp_${which}_${t}_" nd_env pat "$OUT/hotpath" throughput "$which" "$t" "$TP_SECONDS"
    done
done

log "1b. criterion (Rust view: Client::with_password)"
rm -rf target/criterion
"$CRIT_EXE" --bench "${CRIT_ARGS[@]}" > "$OUT/criterion.txt" 2>&1 || { cat "$OUT/criterion.txt" >&2; exit 1; }
crit() { python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["median"]["point_estimate"])' \
    "target/criterion/$1/new/estimates.json"; }
rec crit_hit_ns "$(crit hit/with_password)"
rec crit_copy_ns "$(crit hit/copy_4k)"
rec crit_owned_ns "$(crit hit/password_owned)"
for t in $THREADS_LIST; do rec "crit_threads_${t}_ns" "$(crit "threads/$t")"; done

# ---------------------------------------------------------------- 2. side by side
log "2. Databricks Python SDK vs raw HTTP vs cached (same fake workspace)"
kv cmp_ nd_env env LAKEBASE_LIB="$LIB" python3 bench/compare.py --calls "$COMPARE_CALLS" --cached-calls "$CACHED_CALLS"

# ---------------------------------------------------------------- 3. single-flight
log "3. single-flight: $SF_THREADS threads x $SF_CALLS calls, token lifetime ${SF_LIFETIME}s, 3 rotations"
fake POST /_fake/reset '{}' >/dev/null
fake POST /_fake/config "{\"token_lifetime_seconds\": $SF_LIFETIME}" >/dev/null
# refresh happens at 45-50% of the lifetime: 3 rotations end by 1.5 x lifetime, a 4th starts >= 1.8 x
SPREAD=$(calc "$SF_LIFETIME * 1.62")
kv sf_ nd_env pat "$OUT/hotpath" singleflight "$SF_THREADS" "$SF_CALLS" "$SPREAD"
rec sf_mints "$(fake GET /_fake/stats | stat_of 'd["lakebase_tokens_minted_total"]')"
rec sf_api_calls "$(api_total)"
fake POST /_fake/reset '{}' >/dev/null

# ---------------------------------------------------------------- 4. pgbench -C
log "4. pgbench -C -S: PGPASSWORD vs LD_PRELOAD injection (rig PostgreSQL, TLS, PAM)"
pgb() { pgbench -n -C -S -c 1 -j 1 -t "$PGB_TX" 2>&1; }
pgb_setup() {
    TOKEN=$(curl -sf -H "Authorization: Bearer $RIG_PAT" -H 'Content-Type: application/json' \
        -d "{\"instance_names\":[\"$RIG_INSTANCE\"],\"request_id\":\"$(cat /proc/sys/kernel/random/uuid)\"}" \
        "$FAKE_URL/api/2.0/database/credentials" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    export PGUSER=$RIG_USER
    PGPASSWORD=$TOKEN pgbench -i -s 1 -q >/dev/null 2>&1
    for i in $(seq "$PGB_ROUNDS"); do
        PGPASSWORD=$TOKEN pgb > "$OUT/pgbench-pw-$i.txt"
        ( unset PGPASSWORD; export LD_PRELOAD="$LIB" LAKEBASE_HOSTS=localhost DATABRICKS_TOKEN="$RIG_PAT" \
              LAKEBASE_INSTANCE="$RIG_INSTANCE"; pgb > "$OUT/pgbench-lb-$i.txt" )
    done
}
rig_env pgb_setup
pgb_stat() { # MODE FIELD-REGEX -> median over rounds
    cat "$OUT"/pgbench-"$1"-*.txt | sed -n "s/^$2 = \([0-9.]*\).*/\1/p" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
grep -q "number of failed transactions: 0 " "$OUT"/pgbench-lb-1.txt || { cat "$OUT"/pgbench-lb-1.txt >&2; exit 1; }
rec pgb_pw_tps "$(pgb_stat pw tps)"
rec pgb_lb_tps "$(pgb_stat lb tps)"
rec pgb_pw_conn_ms "$(pgb_stat pw 'average connection time')"
rec pgb_lb_conn_ms "$(pgb_stat lb 'average connection time')"
rec pgb_delta_pct "$(calc "(${R[pgb_lb_tps]} - ${R[pgb_pw_tps]}) / ${R[pgb_pw_tps]} * 100")"

# ---------------------------------------------------------------- 5. load cost
log "5. load cost: LD_PRELOAD into /bin/true and into a libpq program (non-Lakebase host)"
before=$(api_total)
kv true_ nd_env pat "$OUT/spawn" "$SPAWN_TRUE" "$LIB" /bin/true
PQ_CI=$(. "$STATE/rig/env.sh"; echo "host=$RIG_PG_SOCKET_DIR port=$PGPORT user=$RIG_PG_ADMIN_USER dbname=postgres")
kv pqspawn_ nd_env pat "$OUT/spawn" "$SPAWN_PQ" "$LIB" "$OUT/pqprobe" "$PQ_CI" 1
kv pq_plain_ nd_env pat "$OUT/pqprobe" "$PQ_CI" "$PQ_CONNECTS"
kv pq_preload_ nd_env pat env LD_PRELOAD="$LIB" "$OUT/pqprobe" "$PQ_CI" "$PQ_CONNECTS"
rec load_api_calls "$(( $(api_total) - before ))"
[ "${R[pq_preload_lakebase_loaded]}" = 1 ] || { echo "bench.sh: the preload did not load liblakebase" >&2; exit 1; }

# ---------------------------------------------------------------- 6. cold start
log "6. cold start: first password (PAT, M2M), HTTP round trips, stripped size"
cold_once() { # KIND -> "first_ms=..." from one fresh process
    if [ "$1" = pat ]; then
        nd_env pat "$OUT/hotpath" cold
    else
        nd_env sh -c 'DATABRICKS_CLIENT_ID=$RIG_SP_CLIENT_ID DATABRICKS_CLIENT_SECRET=$RIG_SP_CLIENT_SECRET exec "$0" cold' "$OUT/hotpath"
    fi
}
COLD_DELAY_MS=200
cold() { # KIND -> median first_ms, requests per run by path, sequential round trips
    local kind=$1 i
    fake POST /_fake/reset '{}' >/dev/null
    for i in $(seq "$COLD_RUNS"); do cold_once "$kind"; done | sed -n 's/^first_ms=//p' | sort -g > "$OUT/cold-$kind.txt"
    rec "cold_${kind}_ms" "$(awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }' "$OUT/cold-$kind.txt")"
    rec "cold_${kind}_requests" "$(fake GET /_fake/stats | stat_of "sum(d['requests'].values()) / $COLD_RUNS")"
    rec "cold_${kind}_paths" "$(fake GET /_fake/stats | stat_of "' + '.join({'GET /.well-known/databricks-config': 'host metadata', 'GET /oidc/.well-known/oauth-authorization-server': 'OIDC metadata', 'POST /oidc/v1/token': 'OAuth token', 'POST /api/2.0/database/credentials': 'mint'}.get(k, k) for k in d['requests'])")"
    # Sequential round trips: with every response delayed by COLD_DELAY_MS, the first password
    # takes (round trips in sequence) x the delay; requests made in parallel overlap.
    fake POST /_fake/faults "{\"path\": \"/\", \"action\": \"delay\", \"delay_ms\": $COLD_DELAY_MS, \"count\": -1}" >/dev/null
    local slow; slow=$(cold_once "$kind" | sed -n 's/^first_ms=//p')
    fake POST /_fake/faults/clear '{}' >/dev/null
    rec "cold_${kind}_serial" "$(calc "int($slow / $COLD_DELAY_MS)")"
}
cold pat
cold m2m
cp "$LIB" "$OUT/liblakebase.stripped.so"
strip --strip-all "$OUT/liblakebase.stripped.so"
rec size_stripped_kib "$(( $(stat -c %s "$OUT/liblakebase.stripped.so") / 1024 ))"
rec size_unstripped_kib "$(( $(stat -c %s "$LIB") / 1024 ))"

# ---------------------------------------------------------------- 7. shared cache
SH_DELAY_MS=100
log "7. shared cache across processes: sequential psql, a burst, cold start on a warm entry (workspace ${SH_DELAY_MS} ms away)"
sh_run() { ( set -a; . "$STATE/rig/env.sh"; set +a; unset LD_PRELOAD; export LAKEBASE_LIB="$LIB" HOTPATH="$OUT/hotpath" SHARED_DIR="$STATE/shared"
             python3 bench/shared.py --delay-ms "$SH_DELAY_MS" "${SH_ARGS[@]}" ); }
kv sh_ sh_run
fake POST /_fake/reset '{}' >/dev/null

# ---------------------------------------------------------------- 8. proxy
log "8. lakebase proxy: pgbench through the proxy vs direct vs PgBouncer (session mode), latency, memory, mints"
kv px_ env LAKEBASE_BIN="$ROOT/target/release/lakebase" python3 bench/proxy.py --kv "${PROXY_ARGS[@]}"

# ---------------------------------------------------------------- 9. Node.js, PHP
log "9. a cached password from Node.js (koffi) and PHP (FFI)"
kv "" nd_env pat env LAKEBASE_LIBRARY="$LIB" node bench/node_hit.mjs --calls "$CACHED_CALLS"
kv "" nd_env pat env LAKEBASE_LIBRARY="$LIB" php bench/php_hit.php --calls "$CACHED_CALLS"

# ---------------------------------------------------------------- table
# In quick mode the figures mean nothing, and neither would a verdict on them.
yes_no() { if [ "$QUICK" = 1 ]; then echo "-"; elif awk "BEGIN { exit !($1) }"; then echo yes; else echo NO; fi; }
NCPU=$(nproc)
peak=0; for t in $THREADS_LIST; do peak=$(calc "(${R[tp_default_${t}_calls_per_s]} > $peak) ? ${R[tp_default_${t}_calls_per_s]} : $peak"); done
cores_t=$(( NCPU >= 4 ? 4 : (NCPU >= 2 ? 2 : 1) ))
scale=$(calc "${R[tp_default_${cores_t}_calls_per_s]} / ${R[tp_default_1_calls_per_s]}")
c_p50=${R[lat_default_p50_ns]}
sdk=${R[cmp_sdk_reused_p50_us]}; sdk_new=${R[cmp_sdk_new_client_p50_us]}; raw=${R[cmp_raw_pat_p50_us]}; raw2=${R[cmp_raw_m2m_p50_us]}
mps() { fcalc '%.1f M/s' "${R[tp_default_$1_calls_per_s]} / 1e6"; }
fmt() { printf "$1" "${@:2}"; }

rows=()
row() { rows+=("$1|$2|$3|$4"); }
row "1. lakebase_get_password, cached: p50 / p99 / mean (1 thread)" \
    "$(fmt '%.0f / %.0f / %.0f ns' "${R[lat_default_p50_ns]}" "${R[lat_default_p99_ns]}" "${R[lat_default_mean_ns]}")" "p50 <= 70 ns" \
    "$(yes_no "${R[lat_default_p50_ns]} <= 70")"
row "1. lakebase_client_get_password, cached: p50 / p99 / mean" \
    "$(fmt '%.0f / %.0f / %.0f ns' "${R[lat_client_p50_ns]}" "${R[lat_client_p99_ns]}" "${R[lat_client_mean_ns]}")" "p50 <= 70 ns" \
    "$(yes_no "${R[lat_client_p50_ns]} <= 70")"
row "1. Rust Client::with_password hit / + 4 KiB copy / password() (criterion median)" \
    "$(fmt '%.0f / %.0f / %.0f ns' "${R[crit_hit_ns]}" "${R[crit_copy_ns]}" "${R[crit_owned_ns]}")" "p50 < 100 ns" \
    "$(yes_no "${R[crit_hit_ns]} < 100")"
row "1. throughput, lakebase_get_password, threads 1/2/4/16/64 ($NCPU cores)" \
    "$(mps 1) / $(mps 2) / $(mps 4) / $(mps 16) / $(mps 64)" "grows with cores, no collapse" \
    "$(yes_no "$scale >= 0.75 * $cores_t && ${R[tp_default_64_calls_per_s]} >= 0.7 * $peak") ($(fmt '%.2fx at %d threads' "$scale" "$cores_t"))"
row "1. throughput, lakebase_client_get_password, threads 1/64" \
    "$(fcalc '%.1f / %.1f M/s' "${R[tp_client_1_calls_per_s]} / 1e6, ${R[tp_client_64_calls_per_s]} / 1e6")" "no collapse" \
    "$(yes_no "${R[tp_client_64_calls_per_s]} >= 0.7 * ${R[tp_client_1_calls_per_s]}")"
row "2. Python SDK generate_database_credential, client reused (p50, API calls/call)" \
    "$(fmt '%.2f ms, %s; %.0fx the cached C call' "$(calc "$sdk / 1000")" "${R[cmp_sdk_reused_requests_per_call]}" "$(calc "$sdk * 1000 / $c_p50")")" "(ratio)" "-"
row "2. Python SDK, new WorkspaceClient per call" \
    "$(fmt '%.2f ms, %s; %.0fx' "$(calc "$sdk_new / 1000")" "${R[cmp_sdk_new_client_requests_per_call]}" "$(calc "$sdk_new * 1000 / $c_p50")")" "(ratio)" "-"
row "2. raw HTTP mint, urllib: PAT (1 POST) / M2M two-step (token + POST)" \
    "$(fmt '%.2f ms / %.2f ms; %.0fx / %.0fx' "$(calc "$raw / 1000")" "$(calc "$raw2 / 1000")" "$(calc "$raw * 1000 / $c_p50")" "$(calc "$raw2 * 1000 / $c_p50")")" "(ratio)" "-"
row "2. liblakebase cached: C ABI p50 / from Python via ctypes (mean)" \
    "$(fmt '%.0f ns / %.2f us (SDK is %.0fx ctypes)' "$c_p50" "${R[cmp_ctypes_cached_mean_us]}" "$(calc "$sdk / ${R[cmp_ctypes_cached_mean_us]}")")" "(ratio)" "-"
row "3. single-flight: $SF_THREADS thr x $(( SF_CALLS / 1000 ))k calls, ${SF_LIFETIME}s tokens: mints / tokens seen" \
    "${R[sf_mints]} mints / ${R[sf_distinct_tokens]} tokens ($(( R[sf_distinct_tokens] - 1 )) rotations, $(( R[sf_calls] / 1000000 )).$(( R[sf_calls] % 1000000 / 100000 ))M calls, ${R[sf_errors]} errors)" \
    "1 mint per rotation" \
    "$(yes_no "${R[sf_mints]} == ${R[sf_distinct_tokens]} && ${R[sf_distinct_tokens]} >= 4 && ${R[sf_errors]} == 0")"
row "4. pgbench -C -S TPS: PGPASSWORD / LD_PRELOAD (avg connect ms)" \
    "$(fmt '%.2f / %.2f (%.0f / %.0f ms): %+.1f%%' "${R[pgb_pw_tps]}" "${R[pgb_lb_tps]}" "${R[pgb_pw_conn_ms]}" "${R[pgb_lb_conn_ms]}" "${R[pgb_delta_pct]}")" \
    "within 2%" "$(yes_no "${R[pgb_delta_pct]} >= -2")"
row "5. LD_PRELOAD into /bin/true: wall / peak RSS delta (median of $SPAWN_TRUE)" \
    "$(fmt '%+.2f ms / %+d KiB' "$(calc "${R[true_delta_us]} / 1000")" "${R[true_delta_rss_kib]}")" "< 1 ms, < 2 MB" \
    "$(yes_no "${R[true_delta_us]} < 1000 && ${R[true_delta_rss_kib]} < 2048")"
row "5. LD_PRELOAD into a libpq program (Unix socket): wall / RSS / threads delta" \
    "$(fmt '%+.2f ms / %+d KiB / %+d threads (connect %+.2f ms)' "$(calc "${R[pqspawn_delta_us]} / 1000")" \
        "$(( R[pq_preload_vmrss_kib] - R[pq_plain_vmrss_kib] ))" "$(( R[pq_preload_threads] - R[pq_plain_threads] ))" \
        "$(calc "(${R[pq_preload_connect_us]} - ${R[pq_plain_connect_us]}) / 1000")")" \
    "< 1 ms, 0 threads, < 2 MB" \
    "$(yes_no "${R[pqspawn_delta_us]} < 1000 && ${R[pq_preload_threads]} == ${R[pq_plain_threads]} && ${R[pq_preload_vmrss_kib]} - ${R[pq_plain_vmrss_kib]} < 2048")"
row "5. API calls made by the preloaded programs above" "${R[load_api_calls]}" "0" "$(yes_no "${R[load_api_calls]} == 0")"
row "6. cold start, PAT: first password / sequential round trips (requests)" \
    "$(fmt '%.1f ms / %s (%s: %s)' "${R[cold_pat_ms]}" "${R[cold_pat_serial]}" "${R[cold_pat_requests]}" "${R[cold_pat_paths]}")" "1 round trip (mint; host metadata beside it)" \
    "$(yes_no "${R[cold_pat_serial]} <= 1")"
row "6. cold start, M2M: first password / sequential round trips (requests)" \
    "$(fmt '%.1f ms / %s (%s: %s)' "${R[cold_m2m_ms]}" "${R[cold_m2m_serial]}" "${R[cold_m2m_requests]}" "${R[cold_m2m_paths]}")" "<= 3 (discovery, token, mint)" \
    "$(yes_no "${R[cold_m2m_serial]} <= 3")"
row "6. library size, stripped (unstripped)" "$(fmt '%.1f MiB (%.1f MiB)' "$(calc "${R[size_stripped_kib]} / 1024")" "$(calc "${R[size_unstripped_kib]} / 1024")")" "-" "-"
row "7. ${R[sh_seq_runs]} sequential psql, workspace ${SH_DELAY_MS} ms away: mints / requests (1st process)" \
    "$(fmt '%s mints, %s requests (mint + SCIM; 1st process %.0f ms); %s mints in all %s' "${R[sh_seq_mints]}" "${R[sh_seq_requests]}" \
        "${R[sh_seq_lb_first_ms]}" "${R[sh_seq_mints_all]}" "${R[sh_seq_pairs]}")" "<= 1 mint" "$(yes_no "${R[sh_seq_mints]} <= 1")"
row "7. psql PGPASSWORD / LD_PRELOAD on the shared entry: median; difference per pair median / mean / of minima" \
    "$(fmt '%.1f / %.1f ms; %+.1f / %+.1f / %+.1f ms (%s pairs)' "${R[sh_seq_pw_ms]}" "${R[sh_seq_lb_ms]}" \
        "${R[sh_seq_delta_median_ms]}" "${R[sh_seq_delta_mean_ms]}" "${R[sh_seq_delta_min_ms]}" "$(( R[sh_seq_pairs] - 1 ))")" \
    "<= +5 ms each" "$(yes_no "${R[sh_seq_delta_median_ms]} <= 5")"
row "7. the same with LAKEBASE_CACHE=off (before issue 15): median / mints" \
    "$(fmt '%.1f ms (%+.0f ms); %s mints in %s runs' "${R[sh_seq_off_ms]}" "$(calc "${R[sh_seq_off_ms]} - ${R[sh_seq_pw_ms]}")" "${R[sh_seq_off_mints]}" "${R[sh_seq_off_runs]}")" "(comparison)" "-"
row "7. ${R[sh_burst_n]} processes started at once (empty shared cache): mints / requests / slowest first password" \
    "$(fmt '%s / %s / %.0f ms' "${R[sh_burst_mints]}" "${R[sh_burst_requests]}" "${R[sh_burst_slowest_ms]}")" "1 mint" \
    "$(yes_no "${R[sh_burst_mints]} == 1")"
row "7. cold start on a warm shared entry: first password median / max, workspace requests (${R[sh_warm_runs]} runs)" \
    "$(fmt '%.3f / %.3f ms, %s requests' "${R[sh_warm_first_ms]}" "${R[sh_warm_first_max_ms]}" "${R[sh_warm_requests]}")" "< 1 ms, 0 requests" \
    "$(yes_no "${R[sh_warm_first_ms]} < 1 && ${R[sh_warm_requests]} == 0")"

row "8. proxy: pgbench -S -c 8, established: direct (TLS) / proxy / PgBouncer session mode" \
    "$(fmt '%.0f / %.0f / %.0f TPS: proxy %.0f %% of direct, %.0f %% of PgBouncer' "${R[px_direct_tps]}" "${R[px_proxy_tps]}" "${R[px_bouncer_tps]}" "$(calc "100 * ${R[px_proxy_tps]} / ${R[px_direct_tps]}")" "$(calc "100 * ${R[px_proxy_tps]} / ${R[px_bouncer_tps]}")")" \
    ">= 90 % of direct, not behind PgBouncer" \
    "$(yes_no "${R[px_proxy_tps]} >= 0.9 * ${R[px_direct_tps]}") / $(yes_no "${R[px_proxy_tps]} >= ${R[px_bouncer_tps]}")"
row "8. proxy: the same through the proxy's unix socket (--unix-socket), and the proxy's CPU per transaction" \
    "$(fmt '%.0f TPS (%.0f %% of direct); %.1f us CPU per transaction over TCP' "${R[px_proxy_unix_tps]}" "$(calc "100 * ${R[px_proxy_unix_tps]} / ${R[px_direct_tps]}")" "${R[px_proxy_cpu_us]}")" "-" "-"
row "8. proxy: pgbench -S -C -c 4 (a login per transaction): direct / proxy" \
    "$(fmt '%.0f / %.0f TPS' "${R[px_direct_connect_tps]}" "${R[px_proxy_connect_tps]}")" "-" "-"
row "8. proxy: p50 per round trip, direct / proxy (added)" \
    "$(fmt '%.0f / %.0f us (%+.0f us)' "${R[px_direct_p50_us]}" "${R[px_proxy_p50_us]}" "$(calc "${R[px_proxy_p50_us]} - ${R[px_direct_p50_us]}")")" "<= +50 us" \
    "$(yes_no "${R[px_proxy_p50_us]} - ${R[px_direct_p50_us]} <= 50")"
row "8. proxy: memory per idle connection (${R[px_idle_n]} idle, RSS delta)" "$(fmt '%.1f KiB' "${R[px_idle_kib]}")" "<= 100 KiB" "$(yes_no "${R[px_idle_kib]} <= 100")"
row "8. proxy: mints per rotation (100 concurrent logins after a revocation)" "${R[px_rotation_mints]}" "1" "$(yes_no "${R[px_rotation_mints]} == 1")"
row "9. cached password from Node.js: await client.password() / tryPassword() / bare koffi call (p50, mean)" \
    "$(fmt '%.2f, %.2f / %.2f, %.2f / %.2f, %.2f us' "${R[node_password_p50_us]}" "${R[node_password_mean_us]}" "${R[node_try_p50_us]}" "${R[node_try_mean_us]}" "${R[node_koffi_raw_p50_us]}" "${R[node_koffi_raw_mean_us]}")" "-" "-"
row "9. cached password from PHP: password() / bare FFI call (p50, mean)" \
    "$(fmt '%.2f, %.2f / %.2f, %.2f us' "${R[php_password_p50_us]}" "${R[php_password_mean_us]}" "${R[php_ffi_raw_p50_us]}" "${R[php_ffi_raw_mean_us]}")" "-" "-"

{
    echo
    [ "$QUICK" = 1 ] && echo "QUICK MODE: tiny iteration counts; these figures only show that the benchmarks run."
    echo "liblakebase $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1), $(uname -m), $NCPU CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%s\n' "${rows[@]}" | awk -F'|' '
        { for (i = 1; i <= 4; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR }
        END {
            h[1] = "measurement"; h[2] = "figure"; h[3] = "target"; h[4] = "met?"
            for (i = 1; i <= 4; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
            printf "| %-*s | %-*s | %-*s | %-*s |\n", w[1], h[1], w[2], h[2], w[3], h[3], w[4], h[4]
            printf "|%s|%s|%s|%s|\n", sprintf("%*s", w[1] + 2, "") , sprintf("%*s", w[2] + 2, ""), sprintf("%*s", w[3] + 2, ""), sprintf("%*s", w[4] + 2, "")
            for (r = 1; r <= n; r++) printf "| %-*s | %-*s | %-*s | %-*s |\n", w[1], c[r,1], w[2], c[r,2], w[3], c[r,3], w[4], c[r,4]
        }' | sed '2s/ /-/g'
    echo
    echo "raw figures: $RESULTS"
} | tee "$OUT/table.md"
