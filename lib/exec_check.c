/* exec_check.c: can this program carry the shield, and which shield
 * (exec_check.h).
 *
 * A program the loader would start without the shield (static, setuid,
 * another architecture, a script whose interpreter nobody checked) must be
 * refused before it runs: it would run unprotected, and a launched program
 * that asks LAS for evidence without the shield in it must not look like a
 * protected one. The ELF headers come from the file, so every offset and
 * count is checked against its size before use. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "arca/exec_check.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#error "arca's exec checks know the ELF machine of x86_64 and aarch64 only"
#endif

#define MAX_PHNUM 512
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static int executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int arca_exec_resolve(const char *cmd, char *out, size_t cap, struct arca_errbuf *e)
{
	if (cmd == NULL || cmd[0] == 0)
		return arca_errf(e, ARCA_EINVAL, "no command given");
	if (strchr(cmd, '/') != NULL) {
		int n = snprintf(out, cap, "%s", cmd);
		if (n < 0 || (size_t)n >= cap)
			return arca_errf(e, ARCA_ETOOBIG, "command path too long");
		return 0;
	}
	const char *path = getenv("PATH");
	if (path == NULL || path[0] == 0)
		path = DEFAULT_PATH;
	while (*path != 0) {
		const char *end = strchrnul(path, ':');
		size_t n = (size_t)(end - path);
		/* An empty entry means the current directory, as for execvp. */
		int m = n == 0 ? snprintf(out, cap, "%s", cmd) : snprintf(out, cap, "%.*s/%s", (int)n, path, cmd);
		if (m > 0 && (size_t)m < cap && executable_file(out))
			return 0;
		path = *end == ':' ? end + 1 : end;
	}
	return arca_errf(e, ARCA_ENOTFOUND, "%.200s: command not found in PATH", cmd);
}

static int pread_exact(int fd, void *p, size_t n, off_t off)
{
	ssize_t r = pread(fd, p, n, off);
	return r == (ssize_t)n ? 0 : ARCA_EIO;
}

static int check_elf(const char *path, int fd, off_t size, struct arca_errbuf *e)
{
	Elf64_Ehdr eh;
	unsigned char head[4];

	if (size < 4 || pread_exact(fd, head, 4, 0) < 0)
		return arca_errf(e, ARCA_EINVAL, "%s is not an executable program (too short to be ELF)", path);
	if (head[0] == '#' && head[1] == '!')
		return arca_errf(e, ARCA_EINVAL,
				 "%s is a script: a measurement covers executable code only, so neither this script "
				 "nor anything else the interpreter reads would be attested; give the interpreter as "
				 "the command only if whoever can change %s is trusted with the session's secrets",
				 path, path);
	if (memcmp(head, ELFMAG, SELFMAG) != 0)
		return arca_errf(e, ARCA_EINVAL, "%s is not an ELF executable", path);
	if ((size_t)size < sizeof eh || pread_exact(fd, &eh, sizeof eh, 0) < 0)
		return arca_errf(e, ARCA_EINVAL, "%s: truncated ELF header", path);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != HOST_MACHINE)
		return arca_errf(e, ARCA_EINVAL,
				 "%s is an ELF program for another machine or word size; the shield (64-bit, this "
				 "machine) cannot be loaded into it",
				 path);
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return arca_errf(e, ARCA_EINVAL, "%s is not an ELF executable (type %u)", path, (unsigned)eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHNUM)
		return arca_errf(e, ARCA_EINVAL, "%s: unusual ELF program header table (%u entries of %u bytes)", path,
				 (unsigned)eh.e_phnum, (unsigned)eh.e_phentsize);
	uint64_t table = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
	if (eh.e_phoff > (uint64_t)size || table > (uint64_t)size - eh.e_phoff)
		return arca_errf(e, ARCA_EINVAL, "%s: the ELF program headers lie outside the file", path);

	/* One header at a time: no large stack buffer, no allocation. */
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread_exact(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) < 0)
			return arca_errf(e, ARCA_EIO, "%s: cannot read the ELF program headers", path);
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz < 2 || ph.p_filesz > PATH_MAX || ph.p_offset > (uint64_t)size ||
		    ph.p_filesz > (uint64_t)size - ph.p_offset)
			return arca_errf(e, ARCA_EINVAL, "%s: malformed PT_INTERP", path);
		return 0;
	}
	return arca_errf(e, ARCA_EINVAL,
			 "%s is statically linked: the shield is a preloaded library and can only protect "
			 "dynamically linked programs (no PT_INTERP); rebuild it without -static",
			 path);
}

int arca_exec_check_fd(int fd, const char *path, struct arca_errbuf *e)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return arca_errf(e, ARCA_EINVAL, "%s is not a regular file", path);
	/* On the open file, not the name: the name may point elsewhere by now. */
	if (faccessat(fd, "", X_OK, AT_EMPTY_PATH) != 0)
		return arca_errf(e, ARCA_EINVAL, "%s is not executable", path);
	if ((st.st_mode & (S_ISUID | S_ISGID)) != 0 || fgetxattr(fd, "security.capability", NULL, 0) >= 0)
		/* The loader ignores LD_PRELOAD for such programs: they would run
		 * without the shield. */
		return arca_errf(e, ARCA_EINVAL,
				 "%s is setuid, setgid or has file capabilities; the loader would start it without the "
				 "shield",
				 path);
	return check_elf(path, fd, st.st_size, e);
}

int arca_exec_open(const char *path, int *fd_out, struct arca_errbuf *e)
{
	*fd_out = -1;
	if (path == NULL || path[0] == 0)
		return arca_errf(e, ARCA_EINVAL, "no program given");
	/* O_NONBLOCK: a FIFO put in the program's place must not hang us. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO,
				 "cannot read %s: %s (the program must be readable to be checked and measured)", path,
				 strerror(errno));
	int rc = arca_exec_check_fd(fd, path, e);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int arca_exec_check(const char *path, struct arca_errbuf *e)
{
	int fd;
	GUARD(arca_exec_open(path, &fd, e));
	close(fd);
	return 0;
}

int arca_shield_check(const char *path, char *out, size_t cap, struct arca_errbuf *e)
{
	char real[PATH_MAX];
	struct stat st;

	if (path == NULL || path[0] == 0)
		return arca_errf(e, ARCA_EINVAL, "no shield path given");
	if (realpath(path, real) == NULL)
		return arca_errf(e, ARCA_ENOTFOUND, "shield %s: %s", path, strerror(errno));
	if (stat(real, &st) < 0)
		return arca_errf(e, ARCA_ENOTFOUND, "shield %s: %s", real, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return arca_errf(e, ARCA_EINVAL, "shield %s is not a regular file", real);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return arca_errf(e, ARCA_EDENIED,
				 "shield %s can be written by its group or by others (mode %04o); run chmod go-w %s",
				 real, (unsigned)(st.st_mode & 07777), real);
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return arca_errf(e, ARCA_EDENIED, "shield %s belongs to uid %u, neither root nor this user", real,
				 (unsigned)st.st_uid);
	int n = snprintf(out, cap, "%s", real);
	if (n < 0 || (size_t)n >= cap)
		return arca_errf(e, ARCA_ETOOBIG, "shield path %s is too long", real);
	return 0;
}

int arca_shield_default(char *out, size_t cap, struct arca_errbuf *e)
{
	char self[PATH_MAX], cand[PATH_MAX + 32];

	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0 || (size_t)n >= sizeof self - 1)
		return arca_errf(e, ARCA_EIO, "cannot find this program's own path through /proc/self/exe");
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return arca_errf(e, ARCA_EIO, "this program's path %s has no directory", self);
	*slash = 0;
	snprintf(cand, sizeof cand, "%s/../lib/%s", self, ARCA_SHIELD_NAME);
	return arca_shield_check(cand, out, cap, e);
}
