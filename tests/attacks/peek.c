/* peek: root reads another process's memory the debugger's way.
 *
 *   attack-peek ptrace PID NEEDLE_FILE   PTRACE_SEIZE + PTRACE_INTERRUPT,
 *                                        PTRACE_PEEKDATA word by word over
 *                                        every readable mapping, then detach
 *   attack-peek vm PID NEEDLE_FILE       process_vm_readv over the same
 *                                        mappings, without stopping it
 *
 * Exit: 0 found, 1 not found, 2 the attack could not run (scan.h). The
 * tracee is always detached (and so resumed) before the verdict. */
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "scan.h"


/* PEEKDATA returns the word itself, so an error is told apart only by errno.
 * A page whose first word fails is skipped whole: secret memory fails on
 * every word, and a word-by-word walk of it would take minutes. */
static void peek_mapping(pid_t pid, struct scan *s, const struct mapping *m, unsigned char *buf, long page)
{
	int failed = 0;
	unsigned long bad_from = 0;
	int bad_err = 0;
	for (unsigned long p = m->start; p < m->end; p += (unsigned long)page) {
		size_t got = 0;
		int err = 0;
		for (; got < (size_t)page; got += sizeof(long)) {
			errno = 0;
			long w = ptrace(PTRACE_PEEKDATA, pid, (void *)(p + got), NULL);
			if (errno != 0) {
				err = errno;
				break;
			}
			memcpy(buf + got, &w, sizeof(w));
		}
		if (got > 0) {
			if (bad_from) {
				scan_unreadable(s, m, bad_from, p, bad_err);
				bad_from = 0;
			}
			scan_feed(s, p, buf, got, m, "PTRACE_PEEKDATA");
		}
		if (got < (size_t)page) {
			failed = 1;
			if (!bad_from) {
				bad_from = p + got;
				bad_err = err;
			}
		}
	}
	if (bad_from)
		scan_unreadable(s, m, bad_from, m->end, bad_err);
	s->maps_failed += (unsigned long)failed;
}

static ssize_t vm_read(void *ctx, void *buf, size_t len, unsigned long addr)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)addr, .iov_len = len};
	return process_vm_readv(*(pid_t *)ctx, &local, 1, &remote, 1, 0);
}

int main(int argc, char **argv)
{
	scan_tool = "attack-peek";
	if (argc != 4 || (strcmp(argv[1], "ptrace") != 0 && strcmp(argv[1], "vm") != 0))
		tool_error("usage: attack-peek ptrace|vm PID NEEDLE_FILE");
	int use_ptrace = strcmp(argv[1], "ptrace") == 0;
	pid_t pid = parse_pid(argv[2]);
	static unsigned char needle[NEEDLE_MAX];
	size_t nlen = load_needle(argv[3], needle);
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *buf = malloc(SCAN_CHUNK);
	if (buf == NULL)
		tool_error("out of memory");

	if (use_ptrace) {
		/* SEIZE does not send SIGSTOP, so the tracee sees no signal of
		 * ours; INTERRUPT stops it so that PEEKDATA is allowed. */
		if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0)
			tool_error("PTRACE_SEIZE %d: %s", (int)pid, strerror(errno));
		if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) != 0) {
			int e = errno;
			ptrace(PTRACE_DETACH, pid, NULL, NULL);
			tool_error("PTRACE_INTERRUPT %d: %s", (int)pid, strerror(e));
		}
		int st;
		if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st)) {
			int e = errno;
			ptrace(PTRACE_DETACH, pid, NULL, NULL);
			tool_error("waiting for %d to stop: %s", (int)pid, strerror(e));
		}
		printf("peek: attached to %d with PTRACE_SEIZE, stopped\n", (int)pid);
	}

	/* Read the maps only now: the tracee is stopped and cannot change
	 * them while we walk. */
	size_t nmaps;
	struct mapping *maps = read_maps(pid, &nmaps);
	struct scan s;
	scan_init(&s, needle, nlen);
	for (size_t i = 0; i < nmaps; i++) {
		if (maps[i].perms[0] != 'r' || strcmp(maps[i].name, "[vsyscall]") == 0)
			continue;
		s.maps_total++;
		if (use_ptrace)
			peek_mapping(pid, &s, &maps[i], buf, page);
		else
			scan_mapping(&s, &maps[i], buf, page, vm_read, &pid, "process_vm_readv");
	}
	free(maps);
	free(buf);
	if (use_ptrace) {
		if (ptrace(PTRACE_DETACH, pid, NULL, NULL) != 0)
			tool_error("PTRACE_DETACH %d: %s", (int)pid, strerror(errno));
		printf("peek: detached from %d\n", (int)pid);
	}
	return scan_verdict(&s, use_ptrace ? "ptrace PEEKDATA" : "process_vm_readv");
}
