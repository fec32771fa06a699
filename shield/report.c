/* report.c: the coverage report of `arca run --report` (CONTRACTS.md
 * "Coverage report"): when the program exits, how much of its private
 * writable memory was secret memory, what the rest was, and what it cost
 * in page faults, so that anyone can see what the memory shield does and
 * does not cover instead of taking it on trust.
 *
 * It runs from an atexit handler, after the program's own handlers (it is
 * registered before main, so it runs last) and while the heap still
 * works; it allocates nothing all the same: every buffer is fixed and
 * static, and the text goes to fd 2 with write(2), not through stdio,
 * whose buffers the program may have closed or left half full. A child of
 * fork inherits the handler but is not the program that was asked about:
 * only the process that installed it reports, once. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "memory.h"
#include "shield.h"

#define SECRET_NAME "/secretmem (deleted)"
#define MAX_NAMES 64     /* distinct names of uncovered mappings kept; the rest are lumped */
#define NAME_CAP 96      /* longer names are cut (with "...") */
#define SHOW_NAMES 6     /* the largest uncovered ones printed */
#define LINE_CAP 4608    /* one smaps line: a header with a path of up to PATH_MAX */

struct named_kib {
	char name[NAME_CAP];
	unsigned long long kib;
};

enum kind { K_NONE, K_SECRET, K_PRIVATE, K_SHARED };

/* On the heap (secret memory), not in the shield's own data: the report
 * must not count its own buffers as memory left uncovered. */
struct report {
	pid_t pid; /* the process that asked for the report */
	int installed, done;
	unsigned long long secret, other, shared; /* KiB of Rss */
	int secret_maps;
	struct named_kib names[MAX_NAMES];
	size_t nnames;
	enum kind cur;
	int cur_name; /* index into names for a K_PRIVATE mapping */
	char line[LINE_CAP];
	size_t linelen;
	char io[16384];
	char out[8192];
	size_t outlen;
};
static struct report *rp;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;
	if (rp->outlen >= sizeof rp->out)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(rp->out + rp->outlen, sizeof rp->out - rp->outlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		rp->outlen += (size_t)n < sizeof rp->out - rp->outlen ? (size_t)n : sizeof rp->out - rp->outlen - 1;
}

static void flush_out(void)
{
	size_t off = 0;
	while (off < rp->outlen) {
		ssize_t w = write(2, rp->out + off, rp->outlen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	rp->outlen = 0;
}

/* The table slot of a name, made on first sight; the last slot collects
 * everything once the table is full, so no memory goes uncounted. */
static int name_slot(const char *name)
{
	for (size_t i = 0; i < rp->nnames; i++)
		if (strcmp(rp->names[i].name, name) == 0)
			return (int)i;
	if (rp->nnames == MAX_NAMES - 1) {
		snprintf(rp->names[rp->nnames].name, NAME_CAP, "(other mappings)");
		rp->names[rp->nnames].kib = 0;
		rp->nnames++;
	}
	if (rp->nnames == MAX_NAMES)
		return MAX_NAMES - 1;
	size_t n = strlen(name);
	if (n < NAME_CAP) {
		memcpy(rp->names[rp->nnames].name, name, n + 1);
	} else {
		memcpy(rp->names[rp->nnames].name, name, NAME_CAP - 4);
		memcpy(rp->names[rp->nnames].name + NAME_CAP - 4, "...", 4);
	}
	rp->names[rp->nnames].kib = 0;
	return (int)rp->nnames++;
}

/* "7f..-7f.. rw-p 00000000 00:00 0    [heap]": the kind of the mapping
 * and, for uncovered private memory, its name. */
static void header_line(char *l)
{
	char *f[6] = {0};
	int nf = 0;
	char *p = l;
	/* Five fields separated by single runs of spaces, then the name,
	 * which may itself contain spaces. */
	while (nf < 5 && *p != 0) {
		while (*p == ' ')
			p++;
		f[nf++] = p;
		while (*p != ' ' && *p != 0)
			p++;
		if (*p == ' ')
			*p++ = 0;
	}
	while (*p == ' ')
		p++;
	const char *name = *p != 0 ? p : "anonymous";
	const char *perms = f[1];
	rp->cur = K_NONE;
	if (nf < 5 || perms == NULL || strlen(perms) != 4)
		return;
	if (strcmp(name, SECRET_NAME) == 0) {
		rp->cur = K_SECRET;
		rp->secret_maps++;
	} else if (perms[1] == 'w' && perms[3] == 'p') {
		rp->cur = K_PRIVATE;
		rp->cur_name = name_slot(name);
	} else if (perms[1] == 'w' && perms[3] == 's') {
		rp->cur = K_SHARED;
	}
}

static void smaps_line(char *l)
{
	if ((l[0] >= '0' && l[0] <= '9') || (l[0] >= 'a' && l[0] <= 'f')) {
		header_line(l);
		return;
	}
	if (strncmp(l, "Rss:", 4) != 0 || rp->cur == K_NONE)
		return;
	unsigned long long kib = 0;
	for (const char *p = l + 4; *p != 0; p++) {
		if (*p == ' ')
			continue;
		if (*p < '0' || *p > '9')
			break;
		kib = kib * 10 + (unsigned long long)(*p - '0');
	}
	if (rp->cur == K_SECRET)
		rp->secret += kib;
	else if (rp->cur == K_SHARED)
		rp->shared += kib;
	else {
		rp->other += kib;
		rp->names[rp->cur_name].kib += kib;
	}
}

/* 0, or the errno of a failed open. */
static int read_smaps(void)
{
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno ? errno : EIO;
	rp->linelen = 0;
	for (;;) {
		ssize_t n = read(fd, rp->io, sizeof rp->io);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char c = rp->io[i];
			if (c != '\n') {
				/* A longer line is cut: only its start matters. */
				if (rp->linelen < sizeof rp->line - 1)
					rp->line[rp->linelen++] = c;
				continue;
			}
			rp->line[rp->linelen] = 0;
			smaps_line(rp->line);
			rp->linelen = 0;
		}
	}
	close(fd);
	return 0;
}

/* VmHWM of /proc/self/status in KiB, or 0. */
static unsigned long long peak_rss(void)
{
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n;
	while ((n = read(fd, rp->io, sizeof rp->io - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n <= 0)
		return 0;
	rp->io[n] = 0;
	const char *p = strstr(rp->io, "\nVmHWM:");
	if (p == NULL)
		return 0;
	unsigned long long kib = 0;
	for (p += 7; *p == ' ' || *p == '\t'; p++)
		;
	for (; *p >= '0' && *p <= '9'; p++)
		kib = kib * 10 + (unsigned long long)(*p - '0');
	return kib;
}

/* KiB as MiB with one decimal, without floating point. */
static void mib(unsigned long long kib, char *buf, size_t cap)
{
	unsigned long long t = (kib * 10 + 512) / 1024;
	snprintf(buf, cap, "%llu.%llu MiB", t / 10, t % 10);
}

static void report_now(void)
{
	struct rusage ru;
	char a[32], b[32];

	if (rp->done || getpid() != rp->pid)
		return;
	rp->done = 1;
	int saved = errno;
	memset(&ru, 0, sizeof ru);
	(void)getrusage(RUSAGE_SELF, &ru);
	int smaps_err = read_smaps();
	unsigned long long hwm = peak_rss();
	if (hwm == 0)
		hwm = (unsigned long long)ru.ru_maxrss; /* KiB on Linux */
	unsigned long long total = rp->secret + rp->other;
	unsigned long long pct10 = total ? (rp->secret * 1000 + total / 2) / total : 0;
	unsigned long long opct10 = total ? 1000 - pct10 : 0;
	int secret = rp->secret_maps > 0;

	out("arca: memory report (sim mode: secret memory keeps root's reads through /proc/PID/mem, ptrace and "
	    "core dumps out, but not a malicious kernel or kernel module)\n");
	if (smaps_err != 0)
		out("arca:   cannot read /proc/self/smaps: %s\n", strerror(smaps_err));
	mib(rp->secret, a, sizeof a);
	out("arca:   secret memory (memfd_secret): %s, %llu.%llu%% of private writable memory\n", a, pct10 / 10,
	    pct10 % 10);
	mib(rp->other, a, sizeof a);
	out("arca:   NOT covered: other private writable memory: %s, %llu.%llu%%%s\n", a, opct10 / 10, opct10 % 10,
	    rp->other ? "; the largest:" : "");
	/* The largest few, by selection: the table is small. */
	int shown[SHOW_NAMES];
	int nshown = 0;
	for (; nshown < SHOW_NAMES; nshown++) {
		int best = -1;
		for (size_t i = 0; i < rp->nnames; i++) {
			int taken = 0;
			for (int k = 0; k < nshown; k++)
				taken |= shown[k] == (int)i;
			if (!taken && rp->names[i].kib > 0 && (best < 0 || rp->names[i].kib > rp->names[best].kib))
				best = (int)i;
		}
		if (best < 0)
			break;
		shown[nshown] = best;
		out("arca:     %8llu KiB  %s\n", rp->names[best].kib, rp->names[best].name);
	}
	mib(rp->shared, b, sizeof b);
	out("arca:   shared writable memory other than secret memory (not counted above): %s\n", b);
	mib(hwm, a, sizeof a);
	out("arca:   peak RSS %s; page faults: %ld minor, %ld major\n", a, ru.ru_minflt, ru.ru_majflt);
	unsigned long refused = shield_threads_fallbacks();
	if (refused != 0)
		out("arca:   threads refused for want of a secret stack (pthread_create: EAGAIN): %lu\n", refused);
	if (!secret) {
		const struct shield_mem_status *st = shield_mem_status();
		out("arca:   this program had no secret memory%s%s\n", st && st->reason[0] ? ": " : "",
		    st && st->reason[0] ? st->reason : "");
	}
	out("arca: report: secret_kib=%llu other_kib=%llu percent=%llu.%llu shared_kib=%llu maxrss_kib=%llu "
	    "minflt=%ld majflt=%ld secret_memory=%s\n",
	    rp->secret, rp->other, pct10 / 10, pct10 % 10, rp->shared, hwm, ru.ru_minflt, ru.ru_majflt,
	    secret ? "yes" : "no");
	flush_out();
	errno = saved;
}

void shield_report_install(int enabled)
{
	if (!enabled || rp != NULL)
		return;
	rp = shield_heap_alloc(sizeof *rp);
	if (rp == NULL)
		shield_refuse("out of memory for the memory report");
	memset(rp, 0, sizeof *rp);
	rp->installed = 1;
	rp->pid = getpid();
	if (atexit(report_now) != 0) {
		out("arca: cannot arrange the memory report at exit (atexit failed)\n");
		flush_out();
	}
}
