/*
 * Whole-process cost of LD_PRELOAD=liblakebase.so: runs a command N times without and N times with
 * the preload, interleaved (so drift in machine load hits both alike), and reports the median wall
 * time and the median peak RSS (wait4's ru_maxrss) of each, and the differences.
 *
 *   spawn N /path/to/liblakebase.so CMD [ARGS...]
 *
 * Output: `key=value` lines (times in microseconds, RSS in KiB) for scripts/bench.sh.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* environ without LD_PRELOAD, plus LD_PRELOAD=lib when lib != NULL */
static char **make_env(const char *lib) {
    int n = 0;
    while (environ[n]) n++;
    char **e = calloc(n + 2, sizeof *e);
    int j = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) e[j++] = environ[i];
    if (lib) {
        char *s = malloc(strlen(lib) + 12);
        sprintf(s, "LD_PRELOAD=%s", lib);
        e[j++] = s;
    }
    e[j] = NULL;
    return e;
}

static int run(char **argv, char **env, double *us, double *rss_kib) {
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0); /* O_WRONLY */
    double t0 = now_us();
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, env) != 0) {
        perror("posix_spawn");
        exit(2);
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    *us = now_us() - t0;
    *rss_kib = (double)ru.ru_maxrss;
    posix_spawn_file_actions_destroy(&fa);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: spawn N LIB CMD [ARGS...]\n");
        return 64;
    }
    int n = atoi(argv[1]);
    char **plain = make_env(NULL), **pre = make_env(argv[2]);
    double *t0 = calloc(n, sizeof *t0), *t1 = calloc(n, sizeof *t1);
    double *r0 = calloc(n, sizeof *r0), *r1 = calloc(n, sizeof *r1);
    int bad = 0;
    for (int w = 0; w < 5; w++) { /* warm the page cache */
        double a, b;
        run(argv + 3, plain, &a, &b);
        run(argv + 3, pre, &a, &b);
    }
    for (int i = 0; i < n; i++) {
        bad |= run(argv + 3, plain, &t0[i], &r0[i]);
        bad |= run(argv + 3, pre, &t1[i], &r1[i]);
    }
    double m0 = median(t0, n), m1 = median(t1, n), s0 = median(r0, n), s1 = median(r1, n);
    printf("runs=%d\nplain_us=%.1f\npreload_us=%.1f\ndelta_us=%.1f\nplain_rss_kib=%.0f\npreload_rss_kib=%.0f\n"
           "delta_rss_kib=%.0f\nexit_status_nonzero=%d\n",
           n, m0, m1, m1 - m0, s0, s1, s1 - s0, bad);
    return 0;
}
