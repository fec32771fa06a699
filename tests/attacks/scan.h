/* scan.h: what the attack tools share (memdump.c, peek.c, grabfd.c): the
 * needle, the target's mappings, and a streaming search that finds the
 * needle across chunk boundaries and says in which mapping it lay.
 *
 * The needle is read from a file, never taken from argv or the
 * environment: a needle on the attacker's command line would sit in
 * /proc/PID/cmdline for anyone to see, and one in the environment would be
 * inherited by a native victim started from the same shell, which would
 * then "hold the secret" without ever having read it.
 *
 * Exit codes of every tool: 0 the needle was found (the attack worked),
 * 1 not found, 2 the attack could not run (a tool error; a test must treat
 * it as a failure, never as "protected"). Header-only on purpose: every
 * C file of tests/attacks is built as a program of its own. */
#ifndef ARCA_ATTACK_SCAN_H
#define ARCA_ATTACK_SCAN_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_FOUND 0
#define EXIT_NOT_FOUND 1
#define EXIT_TOOL_ERROR 2

#define NEEDLE_MAX 4096
#define MAP_NAME_MAX 512
#define HITS_SHOWN 20
#define FAILS_SHOWN 20

static const char *scan_tool = "attack";

static void __attribute__((noreturn, format(printf, 1, 2))) tool_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: error: ", scan_tool);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_TOOL_ERROR);
}

/* Reads the needle from PATH; a trailing newline is not part of it. */
static size_t load_needle(const char *path, unsigned char buf[static NEEDLE_MAX])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		tool_error("cannot open needle file %s: %s", path, strerror(errno));
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, NEEDLE_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			tool_error("cannot read needle file %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == NEEDLE_MAX)
			tool_error("needle in %s is longer than %d bytes", path, NEEDLE_MAX - 1);
	}
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	/* A short needle would match by chance and prove nothing. */
	if (n < 8)
		tool_error("needle in %s is shorter than 8 bytes", path);
	return n;
}

static pid_t parse_pid(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != 0 || v <= 0 || v > INT_MAX)
		tool_error("not a pid: %s", s);
	return (pid_t)v;
}

struct mapping {
	unsigned long start, end, offset;
	char perms[5];
	char name[MAP_NAME_MAX];
};

/* One line of /proc/PID/maps: "start-end perms offset dev inode   name". */
static int parse_map_line(const char *line, struct mapping *m)
{
	char *p;
	memset(m, 0, sizeof(*m));
	errno = 0;
	m->start = strtoul(line, &p, 16);
	if (*p != '-')
		return -1;
	m->end = strtoul(p + 1, &p, 16);
	if (*p != ' ' || errno != 0 || m->end <= m->start)
		return -1;
	p++;
	if (strlen(p) < 5 || p[4] != ' ')
		return -1;
	memcpy(m->perms, p, 4);
	p += 5;
	m->offset = strtoul(p, &p, 16);
	/* dev and inode */
	for (int field = 0; field < 2; field++) {
		while (*p == ' ')
			p++;
		while (*p != ' ' && *p != 0 && *p != '\n')
			p++;
	}
	while (*p == ' ')
		p++;
	size_t len = strcspn(p, "\n");
	if (len >= sizeof(m->name))
		len = sizeof(m->name) - 1;
	memcpy(m->name, p, len);
	m->name[len] = 0;
	return 0;
}

/* Every mapping of PID, in address order; *count set. Tool error when the
 * maps file cannot be read: without it no attack can run. */
static struct mapping *read_maps(pid_t pid, size_t *count)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		tool_error("cannot open %s: %s", path, strerror(errno));
	size_t n = 0, cap = 64;
	struct mapping *v = calloc(cap, sizeof(*v));
	char *line = NULL;
	size_t linecap = 0;
	if (v == NULL)
		tool_error("out of memory");
	while (getline(&line, &linecap, f) > 0) {
		if (n == cap) {
			cap *= 2;
			struct mapping *nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				tool_error("out of memory");
			v = nv;
		}
		if (parse_map_line(line, &v[n]) != 0)
			tool_error("cannot parse a line of %s: %s", path, line);
		n++;
	}
	free(line);
	fclose(f);
	if (n == 0)
		tool_error("%s is empty (is %d a kernel thread or gone?)", path, (int)pid);
	*count = n;
	return v;
}

static const char *map_label(const struct mapping *m)
{
	return m->name[0] ? m->name : "[anonymous]";
}

/* The search: fed chunks of the target's memory in any order; a chunk that
 * continues the previous one (next address) is searched together with the
 * tail of that one, so that a needle split across two reads is found. */
struct scan {
	const unsigned char *needle;
	size_t nlen;
	unsigned char carry[NEEDLE_MAX];
	size_t carry_len;
	unsigned long carry_end; /* address just after the carried bytes */
	unsigned long hits;
	unsigned long long bytes_read, bytes_failed;
	unsigned long maps_total, maps_failed, maps_shown;
};

static void scan_init(struct scan *s, const unsigned char *needle, size_t nlen)
{
	memset(s, 0, sizeof(*s));
	s->needle = needle;
	s->nlen = nlen;
}

static void scan_hit(struct scan *s, unsigned long addr, const struct mapping *m, const char *via)
{
	s->hits++;
	if (s->hits <= HITS_SHOWN)
		printf("hit: needle at 0x%lx in %lx-%lx %s %s (%s)\n", addr, m->start, m->end, m->perms,
		       map_label(m), via);
	else if (s->hits == HITS_SHOWN + 1)
		printf("hit: (more hits not shown)\n");
}

static void scan_feed(struct scan *s, unsigned long addr, const unsigned char *buf, size_t len,
		      const struct mapping *m, const char *via)
{
	size_t k = s->nlen;
	s->bytes_read += len;
	if (len == 0)
		return;
	/* Needles straddling the previous chunk and this one. */
	if (s->carry_len > 0 && s->carry_end == addr) {
		unsigned char joint[2 * NEEDLE_MAX];
		size_t take = len < k - 1 ? len : k - 1;
		memcpy(joint, s->carry, s->carry_len);
		memcpy(joint + s->carry_len, buf, take);
		size_t jl = s->carry_len + take;
		for (size_t i = 0; i + k <= jl; i++)
			/* only matches that use bytes of both sides; the rest
			 * are found in one chunk or the other */
			if (i < s->carry_len && i + k > s->carry_len && memcmp(joint + i, s->needle, k) == 0)
				scan_hit(s, addr - s->carry_len + i, m, via);
	}
	for (const unsigned char *p = buf, *e = buf + len; p + k <= e;) {
		const unsigned char *h = memmem(p, (size_t)(e - p), s->needle, k);
		if (h == NULL)
			break;
		scan_hit(s, addr + (unsigned long)(h - buf), m, via);
		p = h + 1;
	}
	size_t keep = len < k - 1 ? len : k - 1;
	if (s->carry_end == addr && keep < k - 1) {
		/* a tiny chunk: keep what came before it too */
		size_t old = s->carry_len, total = old + keep;
		size_t drop = total > k - 1 ? total - (k - 1) : 0;
		memmove(s->carry, s->carry + drop, old - drop);
		memcpy(s->carry + old - drop, buf, keep);
		s->carry_len = old - drop + keep;
	} else {
		memcpy(s->carry, buf + len - keep, keep);
		s->carry_len = keep;
	}
	s->carry_end = addr + len;
}

/* A range the tool could not read: counted, and the first few shown with
 * the reason, so that "not found" can be told apart from "not looked". */
static void scan_unreadable(struct scan *s, const struct mapping *m, unsigned long from, unsigned long to,
			    int err)
{
	s->bytes_failed += to - from;
	s->carry_len = 0;
	if (s->maps_shown < FAILS_SHOWN) {
		printf("unreadable: %lx-%lx of %lx-%lx %s %s: %s\n", from, to, m->start, m->end, m->perms,
		       map_label(m), strerror(err));
		s->maps_shown++;
	}
}

/* Reads one mapping with read_at (bytes read, or -1 with errno), a chunk
 * of SCAN_CHUNK bytes at a time; a chunk that fails is retried page by
 * page, so that one unreadable page does not hide its neighbours. via
 * names the reading method in hits. */
#define SCAN_CHUNK ((size_t)1 << 20)
typedef ssize_t (*scan_reader)(void *ctx, void *buf, size_t len, unsigned long addr);

static inline void scan_mapping(struct scan *s, const struct mapping *m, unsigned char *buf, long page, scan_reader read_at,
				void *ctx, const char *via)
{
	int failed = 0;
	for (unsigned long a = m->start; a < m->end;) {
		size_t want = m->end - a < SCAN_CHUNK ? m->end - a : SCAN_CHUNK;
		ssize_t r = read_at(ctx, buf, want, a);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == (ssize_t)want) {
			scan_feed(s, a, buf, want, m, via);
			a += want;
			continue;
		}
		unsigned long end = a + want, bad_from = 0;
		int bad_err = 0;
		for (unsigned long p = a; p < end; p += (unsigned long)page) {
			ssize_t q = read_at(ctx, buf, (size_t)page, p);
			if (q == page) {
				if (bad_from) {
					scan_unreadable(s, m, bad_from, p, bad_err);
					bad_from = 0;
				}
				scan_feed(s, p, buf, (size_t)q, m, via);
				continue;
			}
			failed = 1;
			if (!bad_from) {
				bad_from = p;
				bad_err = q < 0 ? errno : EIO;
			}
		}
		if (bad_from)
			scan_unreadable(s, m, bad_from, end, bad_err);
		a = end;
	}
	s->maps_failed += (unsigned long)failed;
}

/* The verdict line and exit code. Having read nothing at all is a tool
 * error: the attack did not run. */
static inline int scan_verdict(const struct scan *s, const char *what)
{
	printf("%s: read %llu bytes in %lu mappings; %llu bytes in %lu mappings unreadable\n", what,
	       s->bytes_read, s->maps_total, s->bytes_failed, s->maps_failed);
	if (s->hits > 0) {
		printf("FOUND (%lu hits)\n", s->hits);
		return EXIT_FOUND;
	}
	if (s->bytes_read == 0) {
		printf("ERROR: nothing could be read\n");
		return EXIT_TOOL_ERROR;
	}
	printf("NOT FOUND\n");
	return EXIT_NOT_FOUND;
}

#endif
