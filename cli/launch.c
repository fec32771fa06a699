/* launch.c: how `arca measure` starts a program under the shield (see
 * launch.h), and the CLI's side of the checks that a program can carry the
 * shield at all (lib/exec_check.c, shared with arca-las).
 *
 * A program the loader would start without the shield must be refused
 * before anyone is asked to run it: `arca run` checks before it asks LAS,
 * so that the operator hears why at once; LAS checks again as the user. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "launch.h"
#include "arca/exec_check.h"

int launch_resolve(const char *cmd, char *out, size_t cap)
{
	struct arca_errbuf e = {{0}};
	int rc = arca_exec_resolve(cmd, out, cap, &e);
	if (rc == 0)
		rc = arca_exec_check(out, &e);
	if (rc < 0)
		cli_fail("%s", e.msg);
	return rc;
}

int launch_env_init(struct launch_env *le, const char *shield, const char *mode)
{
	memset(le, 0, sizeof(*le));
	GUARD(launch_env_add(le, "LD_PRELOAD", shield));
	return launch_env_add(le, "ARCA_SHIELD_MODE", mode);
}

int launch_env_add(struct launch_env *le, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (le->n + 1 >= sizeof le->v / sizeof le->v[0] || nl + vl + 2 > sizeof le->buf - le->used)
		return ARCA_ETOOBIG;
	char *s = le->buf + le->used;
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, value, vl + 1);
	le->used += nl + vl + 2;
	le->v[le->n++] = s;
	le->v[le->n] = NULL;
	return 0;
}

int launch_exec(const char *path, char *const argv[], struct launch_env *le)
{
	execve(path, argv, le->v);
	return cli_fail("cannot execute %s: %s", path, strerror(errno));
}
