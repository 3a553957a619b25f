/*
 * connect_loop: open a new libpq connection every few seconds with the password from
 * lakebase_get_password(), showing the token rotate underneath (a fingerprint, never the token).
 *
 *   connect_loop [connections] [seconds-between]
 *
 * Connection settings come from the PG* variables; Databricks settings from the environment.
 */
#include <lakebase.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint32_t fingerprint(const char *s) { /* FNV-1a: enough to tell tokens apart */
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5;
    int pause = argc > 2 ? atoi(argv[2]) : 4;
    const lakebase_client *client = NULL;
    char msg[1024];
    if (lakebase_default_client(&client) != LAKEBASE_OK) {
        lakebase_last_error(msg, sizeof msg);
        fprintf(stderr, "configuration: %s\n", msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char password[4096];
        size_t len = 0;
        lakebase_result r = lakebase_get_password(password, sizeof password, &len);
        if (r != LAKEBASE_OK) {
            lakebase_last_error(msg, sizeof msg);
            fprintf(stderr, "lakebase_get_password: %s: %s\n", lakebase_result_name(r), msg);
            return 1;
        }
        int64_t expiry = 0;
        lakebase_client_token_expiry(client, &expiry);
        const char *keys[] = {"password", "sslmode", NULL};
        const char *vals[] = {password, "require", NULL};
        PGconn *conn = PQconnectdbParams(keys, vals, 0);
        uint32_t fp = fingerprint(password);
        memset(password, 0, sizeof password);
        if (PQstatus(conn) != CONNECTION_OK) {
            fprintf(stderr, "connection %d failed: %s", i + 1, PQerrorMessage(conn));
            PQfinish(conn);
            return 1;
        }
        PGresult *res = PQexec(conn, "SELECT current_user");
        printf("connection %d: user=%s ssl=%s token=%08x (%zu bytes) expires in %llds\n", i + 1,
               PQntuples(res) ? PQgetvalue(res, 0, 0) : "?", PQsslInUse(conn) ? "on" : "off", fp, len,
               (long long)(expiry - (int64_t)time(NULL)));
        fflush(stdout);
        PQclear(res);
        PQfinish(conn);
        if (i + 1 < n)
            sleep((unsigned)pause);
    }
    return 0;
}
