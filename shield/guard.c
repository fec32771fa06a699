/* guard.c: the first code of the shield to run in a program to be
 * protected, before any other constructor of ours and before attestation.
 *
 * Until this runs, any process of the same user could read or write the
 * program's memory (ptrace, /proc/PID/mem) or get it in a core dump: the
 * kernel's Yama ptrace_scope >= 1 keeps non-ancestors out until then (where
 * the kernel lacks it, the evidence says so and CAS refuses unless the
 * session tolerates no-ptrace-protection), and making the process
 * non-dumpable here keeps everyone but root out from now on. Then the start-up is checked:
 * arca-las starts a protected program with exactly LD_PRELOAD=<shield>, the
 * ARCA_* variables and the channel ARCA_LAS_FD; anything else means it was
 * started by someone else, and code of theirs may already have run, so
 * the shield refuses before any secret is asked for. Measure mode (`arca
 * measure`, which reads us from outside as the same user and never runs
 * main) is left dumpable. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "memory.h"
#include "shield.h"

/* The descriptor number arca-las puts in ARCA_LAS_FD, or -1 when absent
 * or malformed. */
static int parse_fd(const char *s)
{
	char *end;
	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != 0 || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

static void check_loader_environment(void)
{
	Dl_info self;

	for (char **e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "LD_", 3) != 0 || strncmp(*e, "LD_PRELOAD=", 11) == 0)
			continue;
		size_t n = strcspn(*e, "=");
		shield_refuse("the environment holds the loader variable %.*s; a protected program must be started "
			      "by arca-las (arca run), which sets none but LD_PRELOAD",
			      (int)(n > 64 ? 64 : n), *e);
	}
	/* dladdr names this library as the loader recorded it: the very
	 * string LD_PRELOAD gave. Anything else in LD_PRELOAD (a second
	 * library, a separator) was loaded beside us and may have run. */
	const char *preload = shield_getenv("LD_PRELOAD");
	if (dladdr((void *)check_loader_environment, &self) == 0 || self.dli_fname == NULL)
		shield_refuse("cannot find the shield's own path");
	if (preload == NULL || strcmp(preload, self.dli_fname) != 0)
		shield_refuse("LD_PRELOAD must name only the shield (%.200s); it was \"%.200s\"", self.dli_fname,
			      preload != NULL ? preload : "");
}

__attribute__((constructor(101))) static void shield_guard(void)
{
	struct rlimit none = {0, 0};
	struct stat st;

	shield.las_fd = -1;
	const char *mode = shield_getenv("ARCA_SHIELD_MODE");
	if (mode == NULL || strcmp(mode, "attest") != 0)
		return; /* start.c refuses anything but measure */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		shield_refuse("cannot make the process non-dumpable: %s", strerror(errno));
	if (setrlimit(RLIMIT_CORE, &none) != 0)
		shield_refuse("cannot switch off core dumps: %s", strerror(errno));

	/* Close-on-exec at once: nothing this process starts may inherit
	 * the channel that evidence comes through. */
	int fd = parse_fd(shield_getenv("ARCA_LAS_FD"));
	if (fd < 0)
		shield_refuse("ARCA_LAS_FD is not set; protected programs are started by arca-las: use `arca run`");
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		shield_refuse("ARCA_LAS_FD=%d is not a channel to arca-las; use `arca run`", fd);
	shield.las_fd = fd;
	check_loader_environment();
	/* Before any secret arrives: the loaded objects' data into secret
	 * memory (the heap already is, since the first allocation). */
	shield_remap_loaded();
}
