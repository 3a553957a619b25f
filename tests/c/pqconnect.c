/*
 * pqconnect: connect through libpq entry points, for the injection tests. Linked -llakebase -lpq
 * (liblakebase ahead of libpq), or run under LD_PRELOAD.
 *
 *   pqconnect <api> <conninfo> [connections]
 *
 * api: connectdb | params | setdblogin | start (PQconnectStart + PQconnectPoll) | ping |
 *      lakebase_connectdb | lakebase_params | lakebase_start | lakebase_ping |
 *      dbname2 (PQconnectdbParams({"dbname", "dbname"}, {"", conninfo}, 1): libpq expands only
 *      the first non-NULL dbname, so the conninfo is a plain database name) |
 *      long (PQconnectdbParams with 1500 application_name entries before dbname=conninfo)
 * Before every connection after the first it reads one line from stdin (so a test can change the
 * world in between). Prints "ok <current_user> ssl=<on|off>" or "fail <message>" per connection.
 */
#include <lakebase.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGconn *poll_until_done(PGconn *c) {
    if (!c)
        return c;
    for (int i = 0; i < 10000; i++) {
        PostgresPollingStatusType st = PQconnectPoll(c);
        if (st == PGRES_POLLING_OK || st == PGRES_POLLING_FAILED)
            return c;
        struct pollfd p = {.fd = PQsocket(c), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        poll(&p, 1, 1000);
    }
    return c;
}

static PGconn *open_conn(const char *api, const char *conninfo) {
    const char *keys[] = {"dbname", NULL};
    const char *vals[] = {conninfo, NULL};
    if (!strcmp(api, "connectdb"))
        return PQconnectdb(conninfo);
    if (!strcmp(api, "params"))
        return PQconnectdbParams(keys, vals, 1);
    if (!strcmp(api, "setdblogin"))
        return PQsetdbLogin(NULL, NULL, NULL, NULL, conninfo, NULL, NULL);
    if (!strcmp(api, "start"))
        return poll_until_done(PQconnectStart(conninfo));
    if (!strcmp(api, "dbname2")) {
        const char *k2[] = {"dbname", "dbname", NULL};
        const char *v2[] = {"", conninfo, NULL};
        return PQconnectdbParams(k2, v2, 1);
    }
    if (!strcmp(api, "long")) {
        enum { N = 1500 };
        static const char *kl[N + 2], *vl[N + 2];
        for (int i = 0; i < N; i++) {
            kl[i] = "application_name";
            vl[i] = "pqconnect-long";
        }
        kl[N] = "dbname";
        vl[N] = conninfo;
        kl[N + 1] = vl[N + 1] = NULL;
        return PQconnectdbParams(kl, vl, 1);
    }
    if (!strcmp(api, "lakebase_connectdb"))
        return lakebase_PQconnectdb(conninfo);
    if (!strcmp(api, "lakebase_params"))
        return lakebase_PQconnectdbParams(keys, vals, 1);
    if (!strcmp(api, "lakebase_start"))
        return poll_until_done(lakebase_PQconnectStart(conninfo));
    fprintf(stderr, "unknown api %s\n", api);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: pqconnect <api> <conninfo> [connections]\n");
        return 2;
    }
    const char *api = argv[1], *conninfo = argv[2];
    int n = argc > 3 ? atoi(argv[3]) : 1, failures = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            char line[256];
            if (!fgets(line, sizeof line, stdin))
                break;
        }
        if (!strcmp(api, "ping") || !strcmp(api, "lakebase_ping")) {
            PGPing r = !strcmp(api, "ping") ? PQping(conninfo) : (PGPing)lakebase_PQping(conninfo);
            printf("ping %d\n", (int)r);
            fflush(stdout);
            continue;
        }
        PGconn *c = open_conn(api, conninfo);
        if (PQstatus(c) != CONNECTION_OK) {
            char *m = PQerrorMessage(c);
            m[strcspn(m, "\n")] = 0;
            printf("fail %s\n", m);
            failures++;
        } else {
            PGresult *r = PQexec(c, "SELECT current_user");
            printf("ok %s ssl=%s\n", PQgetvalue(r, 0, 0), PQsslInUse(c) ? "on" : "off");
            PQclear(r);
        }
        fflush(stdout);
        PQfinish(c);
    }
    return failures ? 1 : 0;
}
