/*
 * Hot-path and single-flight benchmarks through the C ABI (linked against liblakebase.so).
 *
 *   hotpath latency    default|client SAMPLES           per-call latency of a cache hit: p50, p99, mean
 *   hotpath throughput default|client THREADS SECONDS   aggregate cache-hit calls/s with THREADS threads
 *   hotpath singleflight THREADS CALLS SECONDS          THREADS x CALLS calls spread over SECONDS (from a
 *                                                       cold cache); counts the distinct tokens callers saw
 *   hotpath cold                                        time of the first lakebase_get_password (cold cache)
 *
 * "default" = lakebase_get_password (process-wide default client), "client" =
 * lakebase_client_get_password on a client from lakebase_client_new(""). Configuration comes from
 * the environment (DATABRICKS_HOST, DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/SECRET,
 * LAKEBASE_INSTANCE). Output: one `key=value` line per figure, for scripts/bench.sh.
 *
 * Latency: each call is timed on its own with the TSC (x86-64: lfence; rdtsc, calibrated against
 * CLOCK_MONOTONIC) or clock_gettime elsewhere; the median cost of an empty timed region is
 * subtracted. `mean_ns` is from an untimed loop (calls / elapsed) and needs no correction.
 */
#define _GNU_SOURCE
#include <lakebase.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define PWBUF 4096

static const lakebase_client *g_client; /* NULL: use lakebase_get_password */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline lakebase_result get_pw(char *buf, size_t *len) {
    return g_client ? lakebase_client_get_password(g_client, buf, PWBUF, len)
                    : lakebase_get_password(buf, PWBUF, len);
}

static void die_lb(const char *what, lakebase_result r) {
    char msg[2048];
    lakebase_last_error(msg, sizeof msg);
    fprintf(stderr, "hotpath: %s: %s: %s\n", what, lakebase_result_name(r), msg);
    exit(2);
}

static void setup(const char *which) {
    if (strcmp(which, "client") == 0) {
        lakebase_client *c;
        lakebase_result r = lakebase_client_new("", &c);
        if (r != LAKEBASE_OK) die_lb("lakebase_client_new", r);
        g_client = c;
    } else if (strcmp(which, "default") != 0) {
        fprintf(stderr, "hotpath: expected default|client, got %s\n", which);
        exit(64);
    }
    char buf[PWBUF];
    size_t len;
    lakebase_result r = get_pw(buf, &len); /* warm the cache: everything after this is a hit */
    if (r != LAKEBASE_OK) die_lb("first password", r);
}

/* ---- timer ---- */
static double g_ns_per_tick = 1.0;

static inline uint64_t ticks(void) {
#if defined(__x86_64__)
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
#endif
}

static void calibrate(void) {
#if defined(__x86_64__)
    double t0 = now_s();
    uint64_t c0 = ticks();
    while (now_s() - t0 < 0.05) {
    }
    double t1 = now_s();
    uint64_t c1 = ticks();
    g_ns_per_tick = (t1 - t0) * 1e9 / (double)(c1 - c0);
#endif
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p) {
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static int cmd_latency(const char *which, long samples) {
    setup(which);
    calibrate();
    char buf[PWBUF];
    size_t len;
    uint64_t *d = malloc(sizeof *d * samples);
    uint64_t *e = malloc(sizeof *e * samples);
    if (!d || !e) return 2;
    for (long i = 0; i < samples / 10 + 1000; i++) get_pw(buf, &len); /* warm-up */
    for (long i = 0; i < samples; i++) {
        uint64_t a = ticks();
        uint64_t b = ticks();
        e[i] = b - a;
    }
    for (long i = 0; i < samples; i++) {
        uint64_t a = ticks();
        lakebase_result r = get_pw(buf, &len);
        uint64_t b = ticks();
        if (r != LAKEBASE_OK) die_lb("get_password", r);
        d[i] = b - a;
    }
    qsort(d, samples, sizeof *d, cmp_u64);
    qsort(e, samples, sizeof *e, cmp_u64);
    double over = (double)pct(e, samples, 0.5);
    double p50 = ((double)pct(d, samples, 0.5) - over) * g_ns_per_tick;
    double p99 = ((double)pct(d, samples, 0.99) - over) * g_ns_per_tick;
    double p999 = ((double)pct(d, samples, 0.999) - over) * g_ns_per_tick;
    /* untimed loop for the mean */
    long n = samples;
    double t0 = now_s();
    for (long i = 0; i < n; i++) get_pw(buf, &len);
    double mean = (now_s() - t0) * 1e9 / (double)n;
    printf("p50_ns=%.1f\np99_ns=%.1f\np999_ns=%.1f\nmean_ns=%.1f\ntimer_overhead_ns=%.1f\ntoken_bytes=%zu\n",
           p50 < 0 ? 0 : p50, p99 < 0 ? 0 : p99, p999 < 0 ? 0 : p999, mean, over * g_ns_per_tick, len);
    free(d);
    free(e);
    return 0;
}

/* ---- throughput ---- */
static atomic_int g_go, g_stop;
static atomic_long g_ready;

struct worker {
    pthread_t th;
    long calls;
    long errors;
    char pad[64];
};

static void *tp_worker(void *arg) {
    struct worker *w = arg;
    char buf[PWBUF];
    size_t len;
    atomic_fetch_add(&g_ready, 1);
    while (!atomic_load_explicit(&g_go, memory_order_acquire)) {
    }
    long n = 0, errs = 0;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) errs += get_pw(buf, &len) != LAKEBASE_OK;
        n += 256;
    }
    w->calls = n;
    w->errors = errs;
    return NULL;
}

static int cmd_throughput(const char *which, int threads, double seconds) {
    setup(which);
    struct worker *w = calloc(threads, sizeof *w);
    for (int i = 0; i < threads; i++) pthread_create(&w[i].th, NULL, tp_worker, &w[i]);
    while (atomic_load(&g_ready) < threads) usleep(100);
    double t0 = now_s();
    atomic_store_explicit(&g_go, 1, memory_order_release);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&g_stop, 1);
    long total = 0, errs = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].calls;
        errs += w[i].errors;
    }
    double el = now_s() - t0;
    printf("threads=%d\ncalls=%ld\nerrors=%ld\nseconds=%.3f\ncalls_per_s=%.0f\n", threads, total, errs, el, total / el);
    free(w);
    return errs != 0;
}

/* ---- single-flight ---- */
#define MAX_TOKENS 4096
static pthread_mutex_t g_tok_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_tokens[MAX_TOKENS][64];
static int g_ntokens;
static long g_calls_per_thread;
static double g_spread_s;

static void note_token(const char *t) {
    pthread_mutex_lock(&g_tok_mu);
    int seen = 0;
    for (int i = 0; i < g_ntokens && !seen; i++) seen = memcmp(g_tokens[i], t, 64) == 0;
    if (!seen && g_ntokens < MAX_TOKENS) memcpy(g_tokens[g_ntokens++], t, 64);
    pthread_mutex_unlock(&g_tok_mu);
}

static void *sf_worker(void *arg) {
    struct worker *w = arg;
    char buf[PWBUF], last[64] = {0};
    size_t len;
    long errs = 0;
    const int chunks = 100;
    long per_chunk = g_calls_per_thread / chunks;
    atomic_fetch_add(&g_ready, 1);
    while (!atomic_load_explicit(&g_go, memory_order_acquire)) {
    }
    double t0 = now_s();
    for (int c = 0; c < chunks; c++) {
        long n = c == chunks - 1 ? g_calls_per_thread - per_chunk * (chunks - 1) : per_chunk;
        for (long i = 0; i < n; i++) {
            if (get_pw(buf, &len) != LAKEBASE_OK) {
                errs++;
                continue;
            }
            if (memcmp(buf, last, 64) != 0) { /* tokens differ from byte ~12 on (random kid) */
                memcpy(last, buf, 64);
                note_token(buf);
            }
        }
        /* pace: chunk c ends at (c+1)/chunks of the spread */
        double target = t0 + g_spread_s * (c + 1) / chunks, now = now_s();
        if (target > now) usleep((useconds_t)((target - now) * 1e6));
    }
    w->calls = g_calls_per_thread;
    w->errors = errs;
    return NULL;
}

static int cmd_singleflight(int threads, long calls, double spread) {
    g_calls_per_thread = calls;
    g_spread_s = spread;
    struct worker *w = calloc(threads, sizeof *w);
    for (int i = 0; i < threads; i++) pthread_create(&w[i].th, NULL, sf_worker, &w[i]);
    while (atomic_load(&g_ready) < threads) usleep(100);
    double t0 = now_s();
    atomic_store_explicit(&g_go, 1, memory_order_release); /* all threads miss the cold cache at once */
    long errs = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].th, NULL);
        errs += w[i].errors;
    }
    printf("threads=%d\ncalls=%ld\nerrors=%ld\nseconds=%.3f\ndistinct_tokens=%d\n", threads, calls * threads, errs,
           now_s() - t0, g_ntokens);
    free(w);
    return errs != 0;
}

static int cmd_cold(void) {
    char buf[PWBUF];
    size_t len;
    double t0 = now_s();
    lakebase_result r = lakebase_get_password(buf, sizeof buf, &len);
    double el = now_s() - t0;
    if (r != LAKEBASE_OK) die_lb("first password", r);
    t0 = now_s();
    r = lakebase_get_password(buf, sizeof buf, &len);
    double hit = now_s() - t0;
    if (r != LAKEBASE_OK) die_lb("second password", r);
    printf("first_ms=%.3f\nsecond_us=%.3f\n", el * 1e3, hit * 1e6);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "latency") == 0) return cmd_latency(argv[2], atol(argv[3]));
    if (argc >= 5 && strcmp(argv[1], "throughput") == 0) return cmd_throughput(argv[2], atoi(argv[3]), atof(argv[4]));
    if (argc >= 5 && strcmp(argv[1], "singleflight") == 0) return cmd_singleflight(atoi(argv[2]), atol(argv[3]), atof(argv[4]));
    if (argc >= 2 && strcmp(argv[1], "cold") == 0) return cmd_cold();
    fprintf(stderr,
            "usage: hotpath latency default|client SAMPLES\n"
            "       hotpath throughput default|client THREADS SECONDS\n"
            "       hotpath singleflight THREADS CALLS_PER_THREAD SECONDS\n"
            "       hotpath cold\n");
    return 64;
}
