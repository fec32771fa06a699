/* cmd_measure.c: `arca measure [--json] [--] CMD [ARGS]`, the measurement a
 * session's `measurement:` must hold for CMD, with the per-object list that
 * explains why two measurements differ.
 *
 * CMD is started as arca-las starts it for `arca run` (only LD_PRELOAD and
 * ARCA_* variables, the shield found by the same rule) but with the shield
 * in measure mode: once the loader has mapped everything and the shield
 * has loaded what it loads in attest mode, the shield says so on a socket
 * and waits; we measure it from outside with the code LAS uses, then kill
 * it. main never runs. The shield's path is part of the measurement: when
 * arca-las runs with --shield PATH, measure with ARCA_SHIELD=PATH.
 *
 * --json prints {"measurement": "sha256:<hex>", "objects": [{"path": P,
 * "sha256": "sha256:<hex>"}, ...]}: object digests are written like the
 * measurement, in the form a policy uses. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "cli.h"
#include "launch.h"
#include "arca/encode.h"
#include "arca/measure.h"

#define READY_TIMEOUT_MS 30000

static const char usage_text[] = "arca measure [--json] [--] CMD [ARGS...]";

static int print_text(const struct arca_measurement *m)
{
	char d[ARCA_DIGEST_STR_LEN];
	arca_digest_format(m->digest, d);
	printf("measurement %s\n", d);
	for (size_t i = 0; i < m->nobjs; i++) {
		arca_digest_format(m->objs[i].sha256, d);
		printf("  %s  %s\n", d, m->objs[i].path);
	}
	return fflush(stdout) == 0 ? 0 : cli_fail("cannot write the output");
}

static int print_json(const struct arca_measurement *m)
{
	char d[ARCA_DIGEST_STR_LEN];
	json_t *root = json_object(), *objs = json_array();
	int rc = 1;

	if (root == NULL || objs == NULL)
		goto out;
	arca_digest_format(m->digest, d);
	if (json_object_set_new(root, "measurement", json_string(d)) != 0)
		goto out;
	for (size_t i = 0; i < m->nobjs; i++) {
		json_t *path = json_string(m->objs[i].path), *o = json_object();
		arca_digest_format(m->objs[i].sha256, d);
		if (path == NULL) {
			json_decref(o);
			cli_fail("%s: path is not UTF-8 and cannot be written as JSON", m->objs[i].path);
			goto out_quiet;
		}
		if (o == NULL || json_object_set_new(o, "path", path) != 0 ||
		    json_object_set_new(o, "sha256", json_string(d)) != 0 || json_array_append_new(objs, o) != 0)
			goto out;
	}
	if (json_object_set(root, "objects", objs) != 0)
		goto out;
	char *text = json_dumps(root, JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	printf("%s\n", text);
	free(text);
	rc = fflush(stdout) == 0 ? 0 : cli_fail("cannot write the output");
	goto out_quiet;
out:
	cli_fail("cannot build the JSON output");
out_quiet:
	json_decref(objs);
	json_decref(root);
	return rc;
}

static const char *describe_status(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exit status %d%s", WEXITSTATUS(status),
			 WEXITSTATUS(status) == 78 ? ", refused by the shield" :
			 WEXITSTATUS(status) == 127 ? ", could not be started (see above)" : "");
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, cap, "status %d", status);
	return buf;
}

/* Child side: never returns. */
__attribute__((noreturn)) static void start_child(const char *path, char **argv, const char *shield, int fd)
{
	struct launch_env le;
	char fdnum[16];
	/* stdout belongs to our output (JSON); the program gets /dev/null. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		_exit(127);
	if (fcntl(fd, F_SETFD, 0) < 0)
		_exit(127);
	snprintf(fdnum, sizeof fdnum, "%d", fd);
	if (launch_env_init(&le, shield, "measure") < 0 || launch_env_add(&le, "ARCA_MEASURE_FD", fdnum) < 0) {
		cli_fail("the shield's environment does not fit");
		_exit(127);
	}
	launch_exec(path, argv, &le);
	_exit(127);
}

enum ready { READY, NOT_READY, ENDED };

/* Waits for the shield's byte. */
static enum ready wait_ready(int fd, const char *path)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;
	int pr;

	while ((pr = poll(&pfd, 1, READY_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (pr == 0) {
		cli_fail("%s did not get ready within %d seconds", path, READY_TIMEOUT_MS / 1000);
		return NOT_READY;
	}
	ssize_t r;
	while ((r = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	/* EOF: it ended before the shield ran, or the shield refused. */
	return r == 1 ? READY : ENDED;
}

int cmd_measure(int argc, char **argv)
{
	char path[PATH_MAX], shield[PATH_MAX];
	struct arca_measurement m;
	struct arca_errbuf e = {{0}};
	int json = 0, i = 1, sv[2];

	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (argv[i][0] == '-')
			return cli_usage(usage_text);
		else
			break;
	}
	if (i >= argc)
		return cli_usage(usage_text);
	if (launch_resolve(argv[i], path, sizeof path) < 0)
		return 1;
	if (cli_shield_path(shield, sizeof shield) < 0)
		return 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return cli_fail("socketpair: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return cli_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		start_child(path, argv + i, shield, sv[1]);
	}
	close(sv[1]);

	/* Until it is reaped below, pid names our child even if it exited,
	 * so measuring and killing by pid cannot hit another process. */
	int rc = 0, status = 0;
	enum ready ready = wait_ready(sv[0], path);
	if (ready == READY && arca_measure_pid(pid, NULL, &m, &e) < 0)
		rc = cli_fail("cannot measure %s: %s", path, e.msg);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	close(sv[0]);
	if (ready == ENDED) {
		char why[96];
		return cli_fail("%s ended before the shield was ready (%s); is it a glibc program?", path,
				describe_status(status, why, sizeof why));
	}
	if (ready != READY || rc != 0)
		return 1;
	rc = json ? print_json(&m) : print_text(&m);
	arca_measurement_free(&m);
	return rc;
}
