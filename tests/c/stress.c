/*
 * 64 threads calling lakebase_get_password and lakebase_client_get_password (a client with the
 * same settings, so one shared token) for a while, across several rotations of short-lived
 * tokens. Every result must be a non-empty password; each thread records the distinct passwords
 * it saw. Prints one line "distinct N calls M errors E" and each distinct password's first 64
 * bytes (the test compares them with the fake's minted tokens and its mint count: single-flight
 * means exactly one mint per rotation). Run plain, under ThreadSanitizer and under valgrind.
 *
 *   stress THREADS SECONDS
 * Needs DATABRICKS_HOST, DATABRICKS_TOKEN, LAKEBASE_INSTANCE in the environment.
 */
#include <lakebase.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define MAX_SEEN 64
#define PREFIX 64

struct seen {
    char p[MAX_SEEN][PREFIX + 1];
    int n;
};

static lakebase_client *shared_client;
static double run_seconds;
static pthread_barrier_t gate;

struct worker {
    struct seen seen;
    long calls, errors;
    char last_error[512];
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void remember(struct seen *s, const char *pw) {
    for (int i = 0; i < s->n; i++)
        if (strncmp(s->p[i], pw, PREFIX) == 0)
            return;
    if (s->n < MAX_SEEN) {
        strncpy(s->p[s->n], pw, PREFIX);
        s->p[s->n][PREFIX] = '\0';
        s->n++;
    }
}

static void *run(void *arg) {
    struct worker *w = arg;
    char pw[4096];
    size_t len = 0;
    pthread_barrier_wait(&gate);
    double end = now() + run_seconds;
    for (long i = 0; now() < end; i++) {
        lakebase_result r = (i & 1) ? lakebase_client_get_password(shared_client, pw, sizeof pw, &len)
                                    : lakebase_get_password(pw, sizeof pw, &len);
        w->calls++;
        if (r != LAKEBASE_OK || len < 16 || strlen(pw) != len) {
            w->errors++;
            lakebase_last_error(w->last_error, sizeof w->last_error);
            continue;
        }
        remember(&w->seen, pw);
        if ((i & 63) == 0) {
            struct timespec d = {0, 1000000}; /* 1 ms now and then: let the refresher run */
            nanosleep(&d, NULL);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 64;
    run_seconds = argc > 2 ? atof(argv[2]) : 10;
    if (n < 1 || n > MAX_THREADS)
        return 2;
    if (lakebase_client_new("", &shared_client) != LAKEBASE_OK) {
        char e[512];
        lakebase_last_error(e, sizeof e);
        fprintf(stderr, "client: %s\n", e);
        return 1;
    }
    struct worker *ws = calloc(n, sizeof *ws);
    pthread_t *ts = calloc(n, sizeof *ts);
    pthread_barrier_init(&gate, NULL, n);
    for (int i = 0; i < n; i++)
        if (pthread_create(&ts[i], NULL, run, &ws[i]))
            return 1;
    struct seen all = {.n = 0};
    long calls = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ts[i], NULL);
        calls += ws[i].calls;
        errors += ws[i].errors;
        for (int j = 0; j < ws[i].seen.n; j++)
            remember(&all, ws[i].seen.p[j]);
        if (ws[i].errors)
            fprintf(stderr, "thread %d: %ld errors, last: %s\n", i, ws[i].errors, ws[i].last_error);
    }
    printf("distinct %d calls %ld errors %ld\n", all.n, calls, errors);
    for (int i = 0; i < all.n; i++)
        printf("%s\n", all.p[i]);
    pthread_barrier_destroy(&gate);
    lakebase_client_free(shared_client);
    free(ws);
    free(ts);
    return errors ? 1 : 0;
}
