/*
 * The shared harness of the C test programs (regex-capi style): one function per case, a CHECK
 * that reports the library's last error and jumps to the case's `done:` cleanup, PASSED/FAILED
 * lines and an "N passed, N failed" summary.
 */
#ifndef LAKEBASE_TEST_HARNESS_H
#define LAKEBASE_TEST_HARNESS_H

#include <lakebase.h>
#include <stdbool.h>
#include <stdio.h>

static char errbuf[4096];
static inline const char *last_error(void) {
    lakebase_last_error(errbuf, sizeof errbuf);
    return errbuf;
}

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  %s:%d: check failed: %s (last error: %s)\n", __FILE__, \
                    __LINE__, #cond, last_error());                                   \
            passed = false;                                                           \
            goto done;                                                                \
        }                                                                             \
    } while (0)

struct test {
    const char *name;
    bool (*fn)(void);
};

/* Run every case, print one line per case and the summary; returns the process exit code. */
static inline int run_tests(const struct test *tests, int n) {
    int failed = 0;
    for (int i = 0; i < n; i++) {
        bool ok = tests[i].fn();
        printf("%s ... %s\n", tests[i].name, ok ? "PASSED" : "FAILED");
        fflush(stdout);
        failed += !ok;
    }
    printf("%d passed, %d failed\n", n - failed, failed);
    return failed ? 1 : 0;
}

#endif
