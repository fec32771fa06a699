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

static ssize_t mem_read(void *ctx, void *buf, size_t len, unsigned long addr)
{
	return pread(*(int *)ctx, buf, len, (off_t)addr);
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
	unsigned char *buf = malloc(SCAN_CHUNK);
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
		scan_mapping(&s, &maps[i], buf, page, mem_read, &mem, "/proc/PID/mem");
	}
	close(mem);
	free(buf);
	free(maps);
	return scan_verdict(&s, "memdump");
}
