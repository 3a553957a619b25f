/*
 * Hostile input to every exported function: NULL, empty, non-UTF-8, oversized (a 1 MB options
 * string, SIZE_MAX buffer lengths) and odd keyword arrays for the lakebase_PQ* wrappers. Every
 * call must return a result code (or a connection object / PGPing value), never crash or hang.
 * Needs no server: no Databricks configuration is visible to this program. Style as test_capi.c;
 * built plain and under ASan/UBSan by scripts/test-hardening.sh.
 */
#include "harness.h"
#include <lakebase.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1024 * 1024)

static bool valid_result(lakebase_result r) { return (int)r >= 0 && (int)r <= 7; }

static bool test_every_function_with_nulls(void) {
    bool passed = true;
    size_t len = 0;
    int64_t exp = 0;
    CHECK(lakebase_client_new(NULL, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_default_client(NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(valid_result(lakebase_get_password(NULL, 0, NULL)));
    CHECK(lakebase_get_password(NULL, 1, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_get_password(NULL, NULL, 0, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_get_password(NULL, NULL, SIZE_MAX, &len) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_refresh(NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_refresh_rejected(NULL, "x") == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_refresh_rejected(NULL, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_connect_retry_delay(NULL, NULL, 0, 1, 0, NULL, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_token_expiry(NULL, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_token_expiry(NULL, &exp) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_identity(NULL, NULL, 0, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_auth_type(NULL, NULL, 0, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_refresh_error(NULL, NULL, 0, NULL) == LAKEBASE_INVALID_ARGUMENT);
    lakebase_client_free(NULL);
    (void)lakebase_last_error(NULL, 0);
    (void)lakebase_last_error(NULL, 100); /* NULL buf with a length: no write, just the length */
    CHECK(lakebase_result_name(INT_MIN) != NULL && lakebase_result_name(INT_MAX) != NULL);
    CHECK(lakebase_version() != NULL);
done:
    return passed;
}

static bool test_client_out_params_with_nulls(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    char buf[64];
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com token=dapiX instance=i", &c) == LAKEBASE_OK);
    CHECK(lakebase_client_token_expiry(c, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_auth_type(c, NULL, 0, NULL) == LAKEBASE_INSUFFICIENT_SIZE);
    CHECK(lakebase_client_auth_type(c, NULL, 10, NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_auth_type(c, buf, sizeof buf, NULL) == LAKEBASE_OK); /* out_len may be NULL */
    CHECK(strcmp(buf, "pat") == 0);
    CHECK(lakebase_client_refresh_error(c, NULL, 0, NULL) == LAKEBASE_INSUFFICIENT_SIZE); /* "" needs its NUL */
done:
    lakebase_client_free(c);
    return passed;
}

static bool test_empty_strings(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    lakebase_result r = lakebase_client_new("", &c);
    CHECK(r == LAKEBASE_CONFIG_ERROR); /* nothing configured in this environment */
    CHECK(lakebase_client_new("   \t\n ", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(lakebase_client_new("=", &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_new("host=", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(lakebase_client_new("''", &c) == LAKEBASE_INVALID_ARGUMENT);
done:
    return passed;
}

static bool test_non_utf8(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    const char *bad[] = {"\xff", "host=\xc3", "token='\xed\xa0\x80'", "\xc0\xafhost=x", "instance=\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(lakebase_client_new(bad[i], &c) == LAKEBASE_INVALID_ARGUMENT);
        CHECK(strstr(last_error(), "UTF-8") != NULL);
    }
done:
    return passed;
}

static bool test_oversized_options(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    char *big = malloc(MB + 64);
    CHECK(big != NULL);
    /* A 1 MB value for a known key: accepted (no network I/O at creation). */
    strcpy(big, "host=https://a.cloud.databricks.com instance=i token=");
    size_t off = strlen(big);
    memset(big + off, 'a', MB);
    big[off + MB] = '\0';
    CHECK(lakebase_client_new(big, &c) == LAKEBASE_OK);
    lakebase_client_free(c);
    c = NULL;
    /* 1 MB of unknown keys, of '=' and of an unterminated quote. */
    for (size_t i = 0; i + 4 <= MB; i += 4)
        memcpy(big + i, "a=b ", 4);
    big[MB] = '\0';
    CHECK(lakebase_client_new(big, &c) == LAKEBASE_INVALID_ARGUMENT);
    memset(big, '=', MB);
    big[MB] = '\0';
    CHECK(lakebase_client_new(big, &c) == LAKEBASE_INVALID_ARGUMENT);
    big[0] = 't'; big[1] = 'o'; big[2] = 'k'; big[3] = 'e'; big[4] = 'n'; big[5] = '='; big[6] = '\'';
    memset(big + 7, 'x', MB - 7);
    big[MB] = '\0';
    CHECK(lakebase_client_new(big, &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "unterminated") != NULL);
    CHECK(lakebase_last_error(NULL, 0) < 4096); /* messages never echo the input */
    memset(big, ' ', MB);
    big[MB] = '\0';
    CHECK(lakebase_client_new(big, &c) == LAKEBASE_CONFIG_ERROR);
done:
    free(big);
    return passed;
}

static bool test_huge_buffer_lengths(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    char buf[4096];
    size_t len = 0;
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com token=dapiX instance=i", &c) == LAKEBASE_OK);
    /* The length is a promise about buf: a huge one must only cause writes of the value's size. */
    memset(buf, 'Z', sizeof buf);
    CHECK(lakebase_client_auth_type(c, buf, SIZE_MAX, &len) == LAKEBASE_OK && len == 3 && buf[4] == 'Z');
    CHECK(lakebase_client_refresh_error(c, buf, SIZE_MAX, &len) == LAKEBASE_OK && len == 0);
    CHECK(lakebase_client_new("colour=blue", &c) == LAKEBASE_INVALID_ARGUMENT);
    size_t n = lakebase_last_error(buf, SIZE_MAX);
    CHECK(n > 0 && n < sizeof buf && strlen(buf) == n);
    CHECK(lakebase_last_error(buf, 1) == n && buf[0] == '\0');
done:
    return passed;
}

static bool conn_ok_or_bad(PGconn *conn) {
    /* NULL (libpq out of memory) or a connection object; never a crash. */
    bool ok = conn == NULL || PQstatus(conn) == CONNECTION_BAD || PQstatus(conn) == CONNECTION_OK ||
              PQstatus(conn) == CONNECTION_STARTED || PQstatus(conn) == CONNECTION_MADE;
    PQfinish(conn);
    return ok;
}

static bool test_pq_wrappers_with_nulls(void) {
    bool passed = true;
    CHECK(conn_ok_or_bad(lakebase_PQconnectdb(NULL)));
    CHECK(conn_ok_or_bad(lakebase_PQconnectStart(NULL)));
    CHECK(conn_ok_or_bad(lakebase_PQconnectdbParams(NULL, NULL, 0)));
    CHECK(conn_ok_or_bad(lakebase_PQconnectdbParams(NULL, NULL, 1)));
    CHECK(conn_ok_or_bad(lakebase_PQconnectStartParams(NULL, NULL, 0)));
    CHECK(conn_ok_or_bad(lakebase_PQsetdbLogin(NULL, NULL, NULL, NULL, NULL, NULL, NULL)));
    int p = lakebase_PQping(NULL);
    CHECK(p >= PQPING_OK && p <= PQPING_NO_ATTEMPT);
    p = lakebase_PQpingParams(NULL, NULL, 0);
    CHECK(p >= PQPING_OK && p <= PQPING_NO_ATTEMPT);
    /* Keywords with NULL and empty values, an empty array, values NULL with keywords given. */
    const char *k1[] = {"host", "dbname", "password", "user", NULL};
    const char *v1[] = {NULL, "", NULL, "", NULL};
    CHECK(conn_ok_or_bad(lakebase_PQconnectdbParams(k1, v1, 1)));
    const char *k0[] = {NULL};
    CHECK(conn_ok_or_bad(lakebase_PQconnectdbParams(k0, k0, 0)));
    CHECK(conn_ok_or_bad(lakebase_PQconnectdbParams(k1, NULL, 0)));
    p = lakebase_PQpingParams(k1, v1, 1);
    CHECK(p >= PQPING_OK && p <= PQPING_NO_ATTEMPT);
done:
    return passed;
}

static bool test_pq_wrappers_with_odd_strings(void) {
    bool passed = true;
    CHECK(conn_ok_or_bad(lakebase_PQconnectdb("")));
    CHECK(conn_ok_or_bad(lakebase_PQconnectdb("host=\xff\xfe port=\x80")));
    CHECK(conn_ok_or_bad(lakebase_PQconnectdb("host='unterminated")));
    CHECK(conn_ok_or_bad(lakebase_PQconnectdb("postgresql://%zz@[::1")));
    CHECK(conn_ok_or_bad(lakebase_PQsetdbLogin("\xff", "notaport", "", "", "host=x dbname='", "", "")));
    char *big = malloc(MB + 16);
    CHECK(big != NULL);
    strcpy(big, "host=");
    memset(big + 5, 'h', MB);
    big[MB + 5] = '\0';
    CHECK(conn_ok_or_bad(lakebase_PQconnectStart(big)));
    free(big);
done:
    return passed;
}

/* Numbers at the edge of their types: nothing may overflow (a Duration overflow used to panic). */
static bool test_extreme_numbers(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    char buf[256];
    size_t len = 0;
    /* Nothing listens on port 1: a network error within the 1 s deadline, not an internal error. */
    CHECK(lakebase_client_new("host=http://127.0.0.1:1 token=x instance=i http_timeout_seconds=18446744073709551615 "
                              "retry_timeout_seconds=1", &c) == LAKEBASE_OK);
    CHECK(lakebase_client_get_password(c, buf, sizeof buf, &len) == LAKEBASE_NETWORK_ERROR);
    lakebase_client_free(c);
    c = NULL;
    CHECK(lakebase_client_new("host=h token=x instance=i http_timeout_seconds=18446744073709551616", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(lakebase_client_new("host=h token=x instance=i retry_timeout_seconds=-9223372036854775808", &c) == LAKEBASE_OK);
done:
    lakebase_client_free(c);
    return passed;
}

int main(void) {
    /* Nothing from the caller's environment: no Databricks configuration, no Postgres to reach. */
    const char *scrub[] = {"DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                           "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE", "LAKEBASE_INSTANCE", "LAKEBASE_ENDPOINT",
                           "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "LAKEBASE_HOSTS"};
    for (size_t i = 0; i < sizeof scrub / sizeof scrub[0]; i++)
        unsetenv(scrub[i]);
    setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg", 1);
    setenv("PGCONNECT_TIMEOUT", "2", 1);
    setenv("PGHOST", "127.0.0.1", 1);
    setenv("PGPORT", "1", 1); /* nothing listens: libpq fails fast */
    struct test tests[] = {
        {"every_function_with_nulls", test_every_function_with_nulls},
        {"client_out_params_with_nulls", test_client_out_params_with_nulls},
        {"empty_strings", test_empty_strings},
        {"non_utf8", test_non_utf8},
        {"oversized_options", test_oversized_options},
        {"huge_buffer_lengths", test_huge_buffer_lengths},
        {"pq_wrappers_with_nulls", test_pq_wrappers_with_nulls},
        {"pq_wrappers_with_odd_strings", test_pq_wrappers_with_odd_strings},
        {"extreme_numbers", test_extreme_numbers},
    };
    return run_tests(tests, (int)(sizeof tests / sizeof tests[0]));
}
