/*
 * fork() after using liblakebase. Needs the test rig's environment (DATABRICKS_HOST/TOKEN,
 * LAKEBASE_INSTANCE, PGHOST/PGPORT/PGDATABASE/PGUSER, FAKE_URL); driven by tests/e2e/test_hardening.py,
 * which sets up the fake's faults and checks its counters.
 *
 *   fork basic       parent gets a password, forks; the child gets the same cached password and logs
 *                    in with libpq; then the parent logs in too
 *   fork midflight   a thread starts the first (slowed: the test queues a "delay" fault) fetch;
 *                    the main thread forks while that thread holds the single-flight lock; the child
 *                    must get a password (its own fetch) and log in, not deadlock
 *   fork rotation    parent gets a password and forks; the child's refresher must rotate the short-
 *                    lived token by itself (observed through lakebase_client_token_expiry)
 *   fork prefork N   parent warms the cache, forks N workers; each gets the password and logs in
 *
 * Every child runs under alarm(): a deadlock fails the test instead of hanging it.
 */
#include <lakebase.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char errbuf[1024];

static int get_pw(char *buf, size_t len) {
    size_t n = 0;
    lakebase_result r = lakebase_get_password(buf, len, &n);
    if (r != LAKEBASE_OK) {
        lakebase_last_error(errbuf, sizeof errbuf);
        fprintf(stderr, "[%d] lakebase_get_password: %s: %s\n", (int)getpid(), lakebase_result_name(r), errbuf);
        return -1;
    }
    return 0;
}

static int login(const char *pw) {
    const char *k[] = {"host", "port", "dbname", "user", "password", "sslmode", NULL};
    const char *v[] = {getenv("PGHOST"), getenv("PGPORT"), getenv("PGDATABASE"), getenv("PGUSER"), pw, "require", NULL};
    PGconn *c = PQconnectdbParams(k, v, 0);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *res = PQexec(c, "SELECT 1");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    } else {
        fprintf(stderr, "[%d] login failed: %s", (int)getpid(), PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

static int wait_child(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "child %d killed by signal %d%s\n", (int)pid, WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (deadlock?)" : "");
        return -1;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int basic(void) {
    char pw[4096], cpw[4096];
    if (get_pw(pw, sizeof pw))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        if (get_pw(cpw, sizeof cpw))
            _exit(2);
        if (strcmp(pw, cpw) != 0) {
            fprintf(stderr, "child got a different password: the cached token was not kept\n");
            _exit(3);
        }
        _exit(login(cpw) ? 4 : 0);
    }
    if (wait_child(pid))
        return 1;
    if (get_pw(pw, sizeof pw) || login(pw))
        return 1;
    printf("basic ok\n");
    return 0;
}

static volatile int fetch_started;
static void *slow_first_fetch(void *arg) {
    (void)arg;
    char pw[4096];
    fetch_started = 1;
    return (void *)(long)get_pw(pw, sizeof pw);
}

static int midflight(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, slow_first_fetch, NULL))
        return 1;
    while (!fetch_started)
        usleep(1000);
    usleep(400 * 1000); /* the fetch is now in flight (the fake delays it ~2 s) */
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        char pw[4096];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (get_pw(pw, sizeof pw))
            _exit(2);
        clock_gettime(CLOCK_MONOTONIC, &b);
        fprintf(stderr, "child got a password in %.2f s\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
        _exit(login(pw) ? 4 : 0);
    }
    int child = wait_child(pid);
    void *ret = NULL;
    pthread_join(t, &ret);
    if (child || ret != NULL)
        return 1;
    char pw[4096];
    if (get_pw(pw, sizeof pw) || login(pw))
        return 1;
    printf("midflight ok\n");
    return 0;
}

static int rotation(void) {
    char pw[4096];
    if (get_pw(pw, sizeof pw))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        const lakebase_client *d = NULL;
        int64_t first = 0, now = 0;
        char cpw[4096];
        if (lakebase_default_client(&d) != LAKEBASE_OK || lakebase_client_token_expiry(d, &first) != LAKEBASE_OK)
            _exit(2);
        /* One read (a cache hit) starts this process's refresher; then only watch. */
        if (get_pw(cpw, sizeof cpw))
            _exit(2);
        for (int i = 0; i < 400; i++) { /* <= 40 s */
            if (lakebase_client_token_expiry(d, &now) != LAKEBASE_OK)
                _exit(3);
            if (now > first)
                break;
            usleep(100 * 1000);
        }
        if (now <= first) {
            fprintf(stderr, "no rotation in the child (expiry stayed %lld)\n", (long long)first);
            _exit(4);
        }
        if (get_pw(cpw, sizeof cpw) || strcmp(cpw, pw) == 0)
            _exit(5);
        printf("child rotated %lld -> %lld\n", (long long)first, (long long)now);
        fflush(stdout);
        _exit(login(cpw) ? 6 : 0);
    }
    if (wait_child(pid))
        return 1;
    printf("rotation ok\n");
    return 0;
}

static int prefork(int n) {
    char pw[4096];
    if (get_pw(pw, sizeof pw))
        return 1;
    pid_t pids[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            alarm(60);
            char cpw[4096];
            if (get_pw(cpw, sizeof cpw))
                _exit(2);
            _exit(strcmp(cpw, pw) != 0 ? 3 : login(cpw) ? 4 : 0);
        }
    }
    int failed = 0;
    for (int i = 0; i < n; i++)
        failed += wait_child(pids[i]) != 0;
    if (failed) {
        fprintf(stderr, "%d of %d workers failed\n", failed, n);
        return 1;
    }
    printf("prefork %d ok\n", n);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: fork basic|midflight|rotation|prefork N\n");
        return 2;
    }
    if (strcmp(argv[1], "basic") == 0)
        return basic();
    if (strcmp(argv[1], "midflight") == 0)
        return midflight();
    if (strcmp(argv[1], "rotation") == 0)
        return rotation();
    if (strcmp(argv[1], "prefork") == 0)
        return prefork(argc > 2 ? atoi(argv[2]) : 8);
    return 2;
}
