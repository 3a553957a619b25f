/*
 * connect: lakebase_PQconnectdb() is PQconnectdb() with the Lakebase password filled in.
 *
 *   cc connect.c $(pkg-config --cflags --libs lakebase libpq) -o connect
 *   DATABRICKS_HOST=https://my.cloud.databricks.com DATABRICKS_TOKEN=dapi... LAKEBASE_INSTANCE=my-db \
 *   ./connect "host=instance-....database.cloud.databricks.com dbname=databricks_postgres"
 *
 * No password in the conninfo: liblakebase supplies the current OAuth token, raises sslmode to
 * require, and sets user to your Databricks identity's Postgres role when none is given.
 */
#include <lakebase.h>
#include <libpq-fe.h>
#include <stdio.h>

int main(int argc, char **argv) {
    const char *conninfo = argc > 1 ? argv[1] : "dbname=databricks_postgres";
    PGconn *conn = lakebase_PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    PGresult *res = PQexec(conn, "SELECT current_user, version()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        printf("connected as %s over %s\n%s\n", PQgetvalue(res, 0, 0), PQsslInUse(conn) ? "TLS" : "plain TCP",
               PQgetvalue(res, 0, 1));
    PQclear(res);
    PQfinish(conn);
    return 0;
}
