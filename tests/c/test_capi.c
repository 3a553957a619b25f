/*
 * C API contract tests that need no server: argument checking, buffer semantics, error codes and
 * messages, secret hygiene. One function per case; prints PASSED/FAILED lines and a summary.
 * Built with -Wall -Wextra -Werror (and under ASan/UBSan by scripts/test.sh).
 */
#include "harness.h"
#include <lakebase.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool test_version(void) {
    bool passed = true;
    const char *v = lakebase_version();
    CHECK(v != NULL);
    CHECK(strncmp(v, "0.", 2) == 0);
done:
    return passed;
}

static bool test_result_names(void) {
    bool passed = true;
    CHECK(strcmp(lakebase_result_name(LAKEBASE_OK), "LAKEBASE_OK") == 0);
    CHECK(strcmp(lakebase_result_name(LAKEBASE_INSUFFICIENT_SIZE), "LAKEBASE_INSUFFICIENT_SIZE") == 0);
    CHECK(strcmp(lakebase_result_name(LAKEBASE_INTERNAL_ERROR), "LAKEBASE_INTERNAL_ERROR") == 0);
    CHECK(strcmp(lakebase_result_name(LAKEBASE_WOULD_BLOCK), "LAKEBASE_WOULD_BLOCK") == 0);
    CHECK(LAKEBASE_WOULD_BLOCK == 8);
    CHECK(strcmp(lakebase_result_name(9999), "LAKEBASE_UNKNOWN_RESULT") == 0);
    CHECK(strcmp(lakebase_result_name(-1), "LAKEBASE_UNKNOWN_RESULT") == 0);
    CHECK(LAKEBASE_OK == 0);
done:
    return passed;
}

static void *no_error_thread(void *arg) {
    size_t *n = arg;
    char buf[8] = "xxxxxxx";
    *n = lakebase_last_error(buf, sizeof buf);
    if (buf[0] != '\0')
        *n = 999;
    return NULL;
}

static bool test_last_error_is_per_thread(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host", &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_last_error(NULL, 0) > 0);
    pthread_t t;
    size_t n = 12345;
    CHECK(pthread_create(&t, NULL, no_error_thread, &n) == 0);
    pthread_join(t, NULL);
    CHECK(n == 0);
done:
    return passed;
}

static bool test_last_error_truncates_like_snprintf(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host", &c) == LAKEBASE_INVALID_ARGUMENT);
    size_t full = lakebase_last_error(NULL, 0);
    CHECK(full > 10);
    char small[6];
    memset(small, 'X', sizeof small);
    CHECK(lakebase_last_error(small, sizeof small) == full);
    CHECK(small[5] == '\0' && strlen(small) == 5);
done:
    return passed;
}

static bool test_client_new_null_out(void) {
    bool passed = true;
    CHECK(lakebase_client_new("", NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "out") != NULL);
done:
    return passed;
}

static bool test_malformed_options(void) {
    bool passed = true;
    lakebase_client *c = (lakebase_client *)0x1;
    CHECK(lakebase_client_new("host", &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(c == (lakebase_client *)0x1); /* out-params are written only on success */
    CHECK(strstr(last_error(), "=") != NULL);
    CHECK(lakebase_client_new("token='unterminated", &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "unterminated") != NULL);
    CHECK(strstr(last_error(), "unterminated") != NULL);
done:
    return passed;
}

static bool test_unknown_option_key(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("colour=blue", &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "colour") != NULL);
done:
    return passed;
}

static bool test_invalid_utf8(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host=\xff\xfe", &c) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "UTF-8") != NULL);
done:
    return passed;
}

static bool test_unknown_profile(void) {
    bool passed = true;
    char path[] = "/tmp/lakebase-capi-XXXXXX";
    int fd = mkstemp(path);
    lakebase_client *c = NULL;
    CHECK(fd >= 0);
    const char *ini = "[DEFAULT]\nhost = https://a.cloud.databricks.com\ntoken = dapi123\n";
    CHECK(write(fd, ini, strlen(ini)) == (ssize_t)strlen(ini));
    close(fd);
    char opts[256];
    snprintf(opts, sizeof opts, "config_file=%s profile=nope", path);
    CHECK(lakebase_client_new(opts, &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "nope") != NULL);
    CHECK(strstr(last_error(), "profile") != NULL);
done:
    unlink(path);
    lakebase_client_free(c);
    return passed;
}

static bool test_conflicting_auth(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com token=dapiSECRETSECRET client_id=x client_secret=doseSECRET instance=i", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "more than one authorization method configured") != NULL);
    CHECK(strstr(last_error(), "dapiSECRETSECRET") == NULL);
    CHECK(strstr(last_error(), "doseSECRET") == NULL);
done:
    lakebase_client_free(c);
    return passed;
}

static bool test_null_client(void) {
    bool passed = true;
    char buf[16];
    size_t len = 0;
    int64_t exp = 0;
    CHECK(lakebase_client_get_password(NULL, buf, sizeof buf, &len) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_refresh(NULL) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_token_expiry(NULL, &exp) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_identity(NULL, buf, sizeof buf, &len) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_auth_type(NULL, buf, sizeof buf, &len) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(lakebase_client_refresh_error(NULL, buf, sizeof buf, &len) == LAKEBASE_INVALID_ARGUMENT);
    lakebase_client_free(NULL);
done:
    return passed;
}

static bool test_null_buffer_with_length(void) {
    bool passed = true;
    size_t len = 0;
    CHECK(lakebase_get_password(NULL, 10, &len) == LAKEBASE_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "buf") != NULL);
done:
    return passed;
}

static bool test_no_target_is_a_config_error(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    char buf[64], at[32];
    size_t len = 0;
    int64_t exp = -1;
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com token=dapiSECRETSECRET", &c) == LAKEBASE_OK);
    CHECK(lakebase_client_auth_type(c, at, sizeof at, &len) == LAKEBASE_OK);
    CHECK(strcmp(at, "pat") == 0 && len == 3);
    CHECK(lakebase_client_token_expiry(c, &exp) == LAKEBASE_OK && exp == 0);
    CHECK(lakebase_client_get_password(c, buf, sizeof buf, &len) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "LAKEBASE_INSTANCE") != NULL);
    CHECK(strstr(last_error(), "dapiSECRETSECRET") == NULL);
done:
    lakebase_client_free(c);
    return passed;
}

static bool test_plain_http_refused(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    char buf[64];
    size_t len = 0;
    CHECK(lakebase_client_new("host=http://workspace.example.com token=dapiSECRETSECRET instance=db", &c) == LAKEBASE_OK);
    CHECK(lakebase_client_get_password(c, buf, sizeof buf, &len) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "plain http") != NULL);
    CHECK(strstr(last_error(), "dapiSECRETSECRET") == NULL);
done:
    lakebase_client_free(c);
    return passed;
}

static bool test_bad_endpoint_name(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com token=x endpoint=my-endpoint", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "projects/") != NULL);
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com token=x endpoint=projects/p/branches/b/endpoints/e instance=i", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "only one") != NULL);
done:
    return passed;
}

static bool test_unknown_auth_type(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com auth_type=carrier-pigeon", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "carrier-pigeon") != NULL);
done:
    return passed;
}

static bool test_nothing_configured(void) {
    bool passed = true;
    lakebase_client *c = NULL;
    CHECK(lakebase_client_new("host=https://a.cloud.databricks.com config_file=/nonexistent/cfg", &c) == LAKEBASE_CONFIG_ERROR);
    CHECK(strstr(last_error(), "pat") != NULL);
    CHECK(strstr(last_error(), "oauth-m2m") != NULL);
    CHECK(strstr(last_error(), "DATABRICKS_TOKEN") != NULL);
done:
    return passed;
}

static bool test_default_client_free_is_noop(void) {
    bool passed = true;
    /* The default client may not be configurable here; either way free must be safe. */
    const lakebase_client *d = NULL;
    if (lakebase_default_client(&d) == LAKEBASE_OK) {
        lakebase_client_free((lakebase_client *)d);
        const lakebase_client *d2 = NULL;
        CHECK(lakebase_default_client(&d2) == LAKEBASE_OK && d2 == d);
    }
    CHECK(lakebase_default_client(NULL) == LAKEBASE_INVALID_ARGUMENT);
done:
    return passed;
}

static bool test_connect_retry_delay(void) {
    bool passed = true;
    int64_t d = 12345;
    unsetenv("LAKEBASE_CONNECT_RETRY");
    /* A waking endpoint: refused, then starting up, retried with a growing delay inside 10 s. */
    CHECK(lakebase_connect_retry_delay(NULL, "connection refused", 0, 1, 0, NULL, &d) == LAKEBASE_OK && d >= 250 && d < 400);
    CHECK(lakebase_connect_retry_delay("57P03", "the database system is starting up", 0, 3, 1000, NULL, &d) == LAKEBASE_OK && d >= 1000);
    /* Never after authentication, nor on "does not exist", nor once the budget is spent. */
    CHECK(lakebase_connect_retry_delay("28P01", "password authentication failed", 0, 1, 0, NULL, &d) == LAKEBASE_OK && d == -1);
    CHECK(lakebase_connect_retry_delay(NULL, "connection refused", 1, 1, 0, NULL, &d) == LAKEBASE_OK && d == -1);
    CHECK(lakebase_connect_retry_delay("3D000", "database \"x\" does not exist", 0, 1, 0, NULL, &d) == LAKEBASE_OK && d == -1);
    CHECK(lakebase_connect_retry_delay(NULL, "connection refused", 0, 9, 9990, NULL, &d) == LAKEBASE_OK && d == -1);
    /* connect_timeout is the budget; LAKEBASE_CONNECT_RETRY=0 turns retries off. */
    CHECK(lakebase_connect_retry_delay(NULL, "timeout expired", 0, 9, 9990, "30", &d) == LAKEBASE_OK && d > 0);
    setenv("LAKEBASE_CONNECT_RETRY", "0", 1);
    CHECK(lakebase_connect_retry_delay(NULL, "connection refused", 0, 1, 0, NULL, &d) == LAKEBASE_OK && d == -1);
    unsetenv("LAKEBASE_CONNECT_RETRY");
done:
    return passed;
}

int main(void) {
    /* These cases must not depend on the caller's Databricks configuration. */
    unsetenv("DATABRICKS_HOST");
    unsetenv("DATABRICKS_TOKEN");
    unsetenv("DATABRICKS_CLIENT_ID");
    unsetenv("DATABRICKS_CLIENT_SECRET");
    unsetenv("DATABRICKS_CONFIG_PROFILE");
    unsetenv("DATABRICKS_AUTH_TYPE");
    setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg", 1);
    struct test tests[] = {
        {"version", test_version},
        {"result_names", test_result_names},
        {"last_error_is_per_thread", test_last_error_is_per_thread},
        {"last_error_truncates_like_snprintf", test_last_error_truncates_like_snprintf},
        {"client_new_null_out", test_client_new_null_out},
        {"malformed_options", test_malformed_options},
        {"unknown_option_key", test_unknown_option_key},
        {"invalid_utf8", test_invalid_utf8},
        {"unknown_profile", test_unknown_profile},
        {"conflicting_auth", test_conflicting_auth},
        {"null_client", test_null_client},
        {"null_buffer_with_length", test_null_buffer_with_length},
        {"no_target_is_a_config_error", test_no_target_is_a_config_error},
        {"plain_http_refused", test_plain_http_refused},
        {"bad_endpoint_name", test_bad_endpoint_name},
        {"unknown_auth_type", test_unknown_auth_type},
        {"nothing_configured", test_nothing_configured},
        {"default_client_free_is_noop", test_default_client_free_is_noop},
        {"connect_retry_delay", test_connect_retry_delay},
    };
    return run_tests(tests, (int)(sizeof tests / sizeof tests[0]));
}
