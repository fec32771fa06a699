/* memdump: the classic attack of the confidential-computing demonstration.
 * Root reads every readable mapping of a process through /proc/PID/maps and
 * /proc/PID/mem and searches it for a needle.
 *
 *   attack-memdump PID NEEDLE_FILE
 *
 * Prints where the needle was found, how many bytes could be read, and
 * which ranges could not be read and why (secret memory gives EIO).
 * Exit: 0 found, 1 not found, 2 the attack could not run (scan.h). */
#include "scan.h"

#define CHUNK ((size_t)1 << 20)

/* Reads [from, to) of one mapping; a chunk that fails as a whole is retried
 * page by page, so that one unreadable page does not hide its neighbours. */
static void dump_mapping(int mem, struct scan *s, const struct mapping *m, unsigned char *buf, long page)
{
	int failed = 0;
	for (unsigned long a = m->start; a < m->end;) {
		size_t want = m->end - a < CHUNK ? m->end - a : CHUNK;
		ssize_t r = pread(mem, buf, want, (off_t)a);
		if (r > 0) {
			scan_feed(s, a, buf, (size_t)r, m, "/proc/PID/mem");
			a += (unsigned long)r;
			continue;
		}
		int err = r < 0 ? errno : EIO;
		if (r < 0 && err == EINTR)
			continue;
		/* page by page through this chunk */
		unsigned long end = a + want, bad_from = 0;
		int bad_err = 0;
		for (unsigned long p = a; p < end; p += (unsigned long)page) {
			ssize_t q = pread(mem, buf, (size_t)page, (off_t)p);
			if (q == page) {
				if (bad_from) {
					scan_unreadable(s, m, bad_from, p, bad_err);
					bad_from = 0;
				}
				scan_feed(s, p, buf, (size_t)q, m, "/proc/PID/mem");
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

int main(int argc, char **argv)
{
	scan_tool = "attack-memdump";
	if (argc != 3)
		tool_error("usage: attack-memdump PID NEEDLE_FILE");
	pid_t pid = parse_pid(argv[1]);
	static unsigned char needle[NEEDLE_MAX];
	size_t nlen = load_needle(argv[2], needle);
	long page = sysconf(_SC_PAGESIZE);

	size_t nmaps;
	struct mapping *maps = read_maps(pid, &nmaps);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0)
		tool_error("cannot open %s: %s", path, strerror(errno));
	unsigned char *buf = malloc(CHUNK);
	if (buf == NULL)
		tool_error("out of memory");

	struct scan s;
	scan_init(&s, needle, nlen);
	for (size_t i = 0; i < nmaps; i++) {
		if (maps[i].perms[0] != 'r')
			continue;
		/* The kernel's vsyscall page is not in the process's page tables
		 * as far as /proc/PID/mem is concerned; nothing of the program is
		 * there. */
		if (strcmp(maps[i].name, "[vsyscall]") == 0)
			continue;
		s.maps_total++;
		dump_mapping(mem, &s, &maps[i], buf, page);
	}
	close(mem);
	free(buf);
	free(maps);
	return scan_verdict(&s, "memdump");
}
