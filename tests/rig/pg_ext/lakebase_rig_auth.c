/*
 * lakebase_rig_auth: let the test rig's PostgreSQL word a failed login the way Lakebase does.
 *
 * Loaded with shared_preload_libraries. PostgreSQL still decides every login (pg_hba + PAM,
 * whose checker asks the fake workspace); this hook only changes the text of a failure. When
 * authentication failed, the PAM checker (a child of this backend) may have left a file
 * <lakebase_rig.reject_dir>/<backend pid> holding
 *
 *     SQLSTATE '\n' message
 *
 * If it is there, the backend ends with FATAL <message> and that SQLSTATE instead of PostgreSQL's
 * own "PAM authentication failed for user ..." (28000). Without the file (the rig's "pam" mode,
 * or a failure the checker never saw) nothing changes. A client that hung up when asked for a
 * password (STATUS_EOF) is left alone, as PostgreSQL does.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

/*
 * The hook as libpq/auth.h declares it. That header pulls in libpq-be.h and with it the GSSAPI
 * headers (libkrb5-dev); the hook needs only the type, so it is declared here.
 */
struct Port;
typedef void (*ClientAuthentication_hook_type) (struct Port *, int);
extern PGDLLIMPORT ClientAuthentication_hook_type ClientAuthentication_hook;

PG_MODULE_MAGIC;

void _PG_init(void);

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static char *reject_dir = NULL;

#define REJECT_MAX 4096

static bool
valid_sqlstate(const char *s)
{
	int			i;

	for (i = 0; i < 5; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

static void
lakebase_rig_client_auth(struct Port *port, int status)
{
	char		path[MAXPGPATH];
	char		buf[REJECT_MAX + 1];
	ssize_t		n = 0;
	ssize_t		r;
	int			fd;
	char	   *msg;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status == STATUS_OK || status == STATUS_EOF || reject_dir == NULL || reject_dir[0] == '\0')
		return;

	snprintf(path, sizeof(path), "%s/%d", reject_dir, (int) MyProcPid);
	fd = open(path, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return;
	while (n < REJECT_MAX && (r = read(fd, buf + n, REJECT_MAX - n)) > 0)
		n += r;
	close(fd);
	unlink(path);
	buf[n] = '\0';

	if (n < 7 || buf[5] != '\n' || !valid_sqlstate(buf))
		return;
	msg = buf + 6;

	ereport(FATAL,
			(errcode(MAKE_SQLSTATE(buf[0], buf[1], buf[2], buf[3], buf[4])),
			 errmsg("%s", msg)));
}

void
_PG_init(void)
{
	DefineCustomStringVariable("lakebase_rig.reject_dir",
							   "Directory where the rig's PAM checker leaves rejection texts per backend pid.",
							   NULL,
							   &reject_dir,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	MarkGUCPrefixReserved("lakebase_rig");

	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = lakebase_rig_client_auth;
}
