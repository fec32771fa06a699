/* launch.c: the one way the CLI starts a program under the shield (see
 * launch.h), and the checks that the program can carry it at all.
 *
 * A program the loader would start without the shield (static, setuid,
 * another architecture, a script whose interpreter we did not check) must
 * be refused here: otherwise `arca run` would quietly run it unprotected
 * with the host's arguments. The ELF headers come from the file, so they
 * are read with every offset and count checked against its size. */
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

#include "cli.h"
#include "launch.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#error "arca's launcher knows the ELF machine of x86_64 and aarch64 only"
#endif

#define MAX_PHNUM 512
/* Prints the reason (cli_fail) and yields an ARCA_E* code. */
#define REFUSE(code, ...) (cli_fail(__VA_ARGS__), (code))
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static int executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int search_path(const char *cmd, char *out, size_t cap)
{
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
	return ARCA_ENOTFOUND;
}

static int pread_exact(int fd, void *p, size_t n, off_t off)
{
	ssize_t r = pread(fd, p, n, off);
	return r == (ssize_t)n ? 0 : ARCA_EIO;
}

/* 0 when path is a dynamically linked ELF executable for this machine. */
static int check_elf(const char *path, int fd, off_t size)
{
	Elf64_Ehdr eh;
	unsigned char head[4];

	if (size < 4 || pread_exact(fd, head, 4, 0) < 0)
		return REFUSE(ARCA_EINVAL, "%s is not an executable program (too short to be ELF)", path);
	if (head[0] == '#' && head[1] == '!')
		return REFUSE(ARCA_EINVAL,
			      "%s is a script: the measurement would cover its interpreter only; run the "
			      "interpreter with the script as an argument instead (e.g. arca run -- /usr/bin/python3 %s)",
			      path, path);
	if (memcmp(head, ELFMAG, SELFMAG) != 0)
		return REFUSE(ARCA_EINVAL, "%s is not an ELF executable", path);
	if ((size_t)size < sizeof eh || pread_exact(fd, &eh, sizeof eh, 0) < 0)
		return REFUSE(ARCA_EINVAL, "%s: truncated ELF header", path);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != HOST_MACHINE)
		return REFUSE(ARCA_EINVAL,
			      "%s is an ELF program for another machine or word size; the shield (64-bit, this "
			      "machine) cannot be loaded into it",
			      path);
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return REFUSE(ARCA_EINVAL, "%s is not an ELF executable (type %u)", path, (unsigned)eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHNUM)
		return REFUSE(ARCA_EINVAL, "%s: unusual ELF program header table (%u entries of %u bytes)", path,
			      (unsigned)eh.e_phnum, (unsigned)eh.e_phentsize);
	uint64_t table = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
	if (eh.e_phoff > (uint64_t)size || table > (uint64_t)size - eh.e_phoff)
		return REFUSE(ARCA_EINVAL, "%s: the ELF program headers lie outside the file", path);

	Elf64_Phdr ph[MAX_PHNUM];
	if (pread_exact(fd, ph, (size_t)table, (off_t)eh.e_phoff) < 0)
		return REFUSE(ARCA_EIO, "%s: cannot read the ELF program headers", path);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_INTERP)
			continue;
		if (ph[i].p_filesz < 2 || ph[i].p_filesz > PATH_MAX || ph[i].p_offset > (uint64_t)size ||
		    ph[i].p_filesz > (uint64_t)size - ph[i].p_offset)
			return REFUSE(ARCA_EINVAL, "%s: malformed PT_INTERP", path);
		return 0;
	}
	return REFUSE(ARCA_EINVAL,
		      "%s is statically linked: the shield is a preloaded library and can only protect "
		      "dynamically linked programs (no PT_INTERP); rebuild it without -static",
		      path);
}

int launch_resolve(const char *cmd, char *out, size_t cap)
{
	struct stat st;

	if (cmd == NULL || cmd[0] == 0)
		return REFUSE(ARCA_EINVAL, "no command given");
	if (strchr(cmd, '/') != NULL) {
		int n = snprintf(out, cap, "%s", cmd);
		if (n < 0 || (size_t)n >= cap)
			return REFUSE(ARCA_ETOOBIG, "command path too long");
	} else if (search_path(cmd, out, cap) < 0) {
		return REFUSE(ARCA_ENOTFOUND, "%s: command not found in PATH", cmd);
	}
	int fd = open(out, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return REFUSE(ARCA_EIO, "cannot read %s: %s (the program must be readable to be checked and measured)",
			      out, strerror(errno));
	int rc = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = REFUSE(ARCA_EINVAL, "%s is not a regular file", out);
	} else if (access(out, X_OK) != 0) {
		rc = REFUSE(ARCA_EINVAL, "%s is not executable", out);
	} else if ((st.st_mode & (S_ISUID | S_ISGID)) != 0 ||
		   fgetxattr(fd, "security.capability", NULL, 0) >= 0) {
		/* The loader ignores LD_PRELOAD for such programs: they would run
		 * without the shield. */
		rc = REFUSE(ARCA_EINVAL,
			    "%s is setuid, setgid or has file capabilities; the loader would start it without the shield",
			    out);
	} else {
		rc = check_elf(out, fd, st.st_size);
	}
	close(fd);
	return rc;
}

int launch_env_init(struct launch_env *le, const char *shield, const char *mode)
{
	memset(le, 0, sizeof(*le));
	GUARD(launch_env_add(le, "LD_PRELOAD", shield));
	return launch_env_add(le, "ARCA_SHIELD_MODE", mode);
}

int launch_env_add(struct launch_env *le, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (le->n + 1 >= sizeof le->v / sizeof le->v[0] || nl + vl + 2 > sizeof le->buf - le->used)
		return ARCA_ETOOBIG;
	char *s = le->buf + le->used;
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, value, vl + 1);
	le->used += nl + vl + 2;
	le->v[le->n++] = s;
	le->v[le->n] = NULL;
	return 0;
}

int launch_exec(const char *path, char *const argv[], struct launch_env *le)
{
	execve(path, argv, le->v);
	return cli_fail("cannot execute %s: %s", path, strerror(errno));
}
