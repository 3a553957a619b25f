/*
 * get_password: get a Lakebase password with lakebase_get_password() and run a query over TLS
 * through libpq.
 *
 *   cc get_password.c $(pkg-config --cflags --libs lakebase libpq) -o get_password
 *   DATABRICKS_HOST=https://my.cloud.databricks.com DATABRICKS_TOKEN=dapi... \
 *   LAKEBASE_INSTANCE=my-db PGHOST=instance-....database.cloud.databricks.com \
 *   PGUSER=me@example.com ./get_password "SELECT current_user"
 *
 * Connection settings come from the usual PG* variables; the password comes from liblakebase.
 */
#include <lakebase.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, lakebase_result r) {
    char msg[1024];
    lakebase_last_error(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s: %s\n", what, lakebase_result_name(r), msg);
    return 1;
}

int main(int argc, char **argv) {
    const char *query = argc > 1 ? argv[1] : "SELECT current_user";
    size_t len = 0;
    /* Ask for the length first, then allocate exactly: tokens are about 1 KB but not fixed. */
    lakebase_result r = lakebase_get_password(NULL, 0, &len);
    if (r != LAKEBASE_INSUFFICIENT_SIZE)
        return fail("lakebase_get_password", r);
    char *password = malloc(len + 1);
    if (!password)
        return 1;
    r = lakebase_get_password(password, len + 1, &len);
    if (r != LAKEBASE_OK) {
        free(password);
        return fail("lakebase_get_password", r);
    }

    const char *keys[] = {"password", "sslmode", "dbname", NULL};
    const char *dbname = getenv("PGDATABASE") ? getenv("PGDATABASE") : "databricks_postgres";
    const char *vals[] = {password, "require", dbname, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    memset(password, 0, len); /* the token is a secret: wipe it once libpq has it */
    free(password);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    PGresult *res = PQexec(conn, query);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "query failed: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return 1;
    }
    for (int i = 0; i < PQntuples(res); i++)
        printf("%s\n", PQgetvalue(res, i, 0));
    printf("ssl=%s\n", PQsslInUse(conn) ? "on" : "off");
    PQclear(res);
    PQfinish(conn);
    return 0;
}
