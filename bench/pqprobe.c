/*
 * A plain libpq program for the load-cost benchmark: connects K times to CONNINFO (a non-Lakebase
 * host), then reports the mean in-process connect time, its own VmRSS and thread count
 * (/proc/self/status) while connected, and whether liblakebase is loaded (LD_PRELOAD).
 *
 *   pqprobe CONNINFO K
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static long status_field(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0 && line[k] == ':') v = atol(line + k + 1);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: pqprobe CONNINFO K\n");
        return 64;
    }
    int k = atoi(argv[2]);
    double total = 0;
    PGconn *c = NULL;
    for (int i = 0; i < k; i++) {
        if (c) PQfinish(c);
        double t0 = now_us();
        c = PQconnectdb(argv[1]);
        total += now_us() - t0;
        if (PQstatus(c) != CONNECTION_OK) {
            fprintf(stderr, "pqprobe: %s", PQerrorMessage(c));
            return 1;
        }
    }
    PGresult *r = PQexec(c, "select 1");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    printf("connect_us=%.1f\nvmrss_kib=%ld\nthreads=%ld\nlakebase_loaded=%d\nquery_ok=%d\n", total / k,
           status_field("VmRSS"), status_field("Threads"), dlsym(RTLD_DEFAULT, "lakebase_version") != NULL, ok);
    PQfinish(c);
    return !ok;
}
