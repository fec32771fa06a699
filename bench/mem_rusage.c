/* mem_rusage.c: arca-bench-rusage, the native side of bench/mem_run.sh's
 * measurements: wall time, peak resident set and page faults of one
 * command and the children it waited for, as the kernel counted them.
 *
 *   arca-bench-rusage [-o FILE] -- CMD [ARGS...]
 *
 * It forks and execs CMD, waits with wait4 and writes one line (to FILE,
 * or to stderr so that it does not mix with CMD's own output):
 *   wall_ms=12.3 maxrss_kib=4567 minflt=89 majflt=0 status=0 source=wait4
 * and exits with CMD's exit status (128+N when a signal N ended it).
 *
 * For a program under arca the figures of wait4 would be those of `arca
 * run`, not of the program: arca-las starts it, so it is not our child.
 * There only wall_ms is meaningful (time around `arca run`); the memory and
 * fault figures come from the shield's `arca run --report` line. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: arca-bench-rusage [-o FILE] -- CMD [ARGS...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *outpath = NULL;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			outpath = argv[++i];
			continue;
		}
		return usage();
	}
	if (i >= argc)
		return usage();

	/* Opened before the fork, so that a bad path is reported before CMD runs. */
	FILE *out = stderr;
	if (outpath) {
		out = fopen(outpath, "w");
		if (!out) {
			fprintf(stderr, "arca-bench-rusage: cannot write %s: %s\n", outpath, strerror(errno));
			return 2;
		}
	}

	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "arca-bench-rusage: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		if (out != stderr)
			fclose(out);
		execvp(argv[i], &argv[i]);
		fprintf(stderr, "arca-bench-rusage: cannot execute %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	/* The terminal's ^C and a parent's SIGTERM go to CMD; we only report. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);

	int status = 0;
	struct rusage ru;
	pid_t got;
	do
		got = wait4(pid, &status, 0, &ru);
	while (got < 0 && errno == EINTR);
	double wall = now_ms() - t0;
	if (got < 0) {
		fprintf(stderr, "arca-bench-rusage: wait4: %s\n", strerror(errno));
		return 1;
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fprintf(out, "wall_ms=%.1f maxrss_kib=%ld minflt=%ld majflt=%ld status=%d source=wait4\n", wall, ru.ru_maxrss,
		ru.ru_minflt, ru.ru_majflt, code);
	if (out != stderr && fclose(out) != 0) {
		fprintf(stderr, "arca-bench-rusage: cannot write %s: %s\n", outpath, strerror(errno));
		return 1;
	}
	return code;
}
