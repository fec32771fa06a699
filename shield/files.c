/* files.c: injected files (the session's `files:`), served from memory at
 * their paths and never written to disk.
 *
 * Each open of an injected path gets a fresh memfd holding a copy, sealed
 * so that nobody can change it, positioned at 0; the copy lives only as
 * long as the program keeps the descriptor. The originals stay in mlocked
 * memory (arca_secret_alloc). Writing is refused with EROFS, as on a
 * read-only file system. Every other path goes to libc untouched.
 *
 * Limits (by design of interposition): a program that makes system calls
 * itself (syscall(2), io_uring, static binaries) or reaches the file
 * through another name (a symbolic link, a hard link) bypasses this. */
#undef _FORTIFY_SOURCE /* we define open and friends; the inline wrappers must not exist here */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "shield.h"
#include "arca/crypto.h"

/* libc's entry points that have no prototype in the installed headers. */
SHIELD_API int __open_2(const char *path, int flags);
SHIELD_API int __open64_2(const char *path, int flags);
SHIELD_API int __openat_2(int dirfd, const char *path, int flags);
SHIELD_API int __openat64_2(int dirfd, const char *path, int flags);
SHIELD_API int __xstat(int ver, const char *path, struct stat *st);
SHIELD_API int __xstat64(int ver, const char *path, struct stat64 *st);
SHIELD_API int __lxstat(int ver, const char *path, struct stat *st);
SHIELD_API int __lxstat64(int ver, const char *path, struct stat64 *st);
SHIELD_API int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
SHIELD_API int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

#define INJECTED_MODE (S_IFREG | 0400)
#define FAKE_DEV 0
#define FAKE_INO_BASE 0x61726361000000ull /* "arca" */

static void free_files(struct shield_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(files[i].path);
		if (files[i].data != NULL)
			arca_secret_free(files[i].data, files[i].len > 0 ? files[i].len : 1);
	}
	free(files);
}

void shield_files_install(const struct arca_config *cfg)
{
	struct timespec now;
	char norm[4096];
	const char *why = NULL;

	if (cfg->nfiles == 0)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	struct shield_file *files = calloc(cfg->nfiles, sizeof(*files));
	if (files == NULL)
		shield_refuse("out of memory while installing the session's files");
	size_t i;
	for (i = 0; i < cfg->nfiles && why == NULL; i++) {
		const struct arca_file_entry *fe = &cfg->files[i];
		if (fe->path == NULL || fe->path[0] != '/' ||
		    shield_path_normalize(AT_FDCWD, fe->path, norm, sizeof norm) < 0) {
			why = "the session's configuration names a file with a bad path";
			break;
		}
		for (size_t j = 0; j < i && why == NULL; j++)
			if (strcmp(files[j].path, norm) == 0)
				why = "the session's configuration lists one file twice";
		if (why != NULL)
			break;
		files[i].path = strdup(norm);
		/* Locked memory even for an empty file: one code path. */
		files[i].data = arca_secret_alloc(fe->len > 0 ? fe->len : 1);
		files[i].len = fe->len;
		files[i].time = now;
		if (files[i].path == NULL || files[i].data == NULL) {
			why = "out of memory while installing the session's files";
			i++; /* free this entry's parts too */
			break;
		}
		memcpy(files[i].data, fe->data, fe->len);
	}
	if (why != NULL) {
		free_files(files, i);
		shield_refuse("%s", why);
	}
	shield.files = files;
	__atomic_store_n(&shield.nfiles, cfg->nfiles, __ATOMIC_RELEASE);
}

/* A sealed, read-only-mode copy of f; -1 with errno on failure. */
static int injected_fd(const struct shield_file *f)
{
	int fd = memfd_create("arca-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < f->len) {
		ssize_t w = write(fd, f->data + off, f->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	/* 0400 also for fstat: programs check key files' modes that way. */
	if (fchmod(fd, 0400) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		goto fail;
	return fd;
fail:;
	int err = errno ? errno : EIO;
	close(fd);
	errno = err;
	return -1;
}

static int open_injected(const struct shield_file *f, int flags)
{
	if ((flags & O_DIRECTORY) != 0) { /* also O_TMPFILE */
		errno = ENOTDIR;
		return -1;
	}
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
		errno = EEXIST;
		return -1;
	}
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) {
		errno = EROFS;
		return -1;
	}
	return injected_fd(f);
}

static int needs_mode(int flags)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

static int no_real(void)
{
	errno = ENOSYS;
	return -1;
}

#define REAL(fn) (shield_resolve_real(), shield.real.fn)

#define OPEN_VARIADIC(name, field)                                              \
	SHIELD_API int name(const char *path, int flags, ...)                    \
	{                                                                        \
		mode_t mode = 0;                                                 \
		if (needs_mode(flags)) {                                         \
			va_list ap;                                              \
			va_start(ap, flags);                                     \
			mode = (mode_t)va_arg(ap, int);                          \
			va_end(ap);                                              \
		}                                                                \
		const struct shield_file *f = shield_file_lookup(AT_FDCWD, path); \
		if (f != NULL)                                                   \
			return open_injected(f, flags);                          \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(path, flags, mode);                     \
	}

#define OPENAT_VARIADIC(name, field)                                             \
	SHIELD_API int name(int dirfd, const char *path, int flags, ...)          \
	{                                                                         \
		mode_t mode = 0;                                                  \
		if (needs_mode(flags)) {                                          \
			va_list ap;                                               \
			va_start(ap, flags);                                      \
			mode = (mode_t)va_arg(ap, int);                           \
			va_end(ap);                                               \
		}                                                                 \
		const struct shield_file *f = shield_file_lookup(dirfd, path);    \
		if (f != NULL)                                                    \
			return open_injected(f, flags);                           \
		if (REAL(field) == NULL)                                          \
			return no_real();                                         \
		return shield.real.field(dirfd, path, flags, mode);               \
	}

OPEN_VARIADIC(open, open)
OPEN_VARIADIC(open64, open64)
OPENAT_VARIADIC(openat, openat)
OPENAT_VARIADIC(openat64, openat64)

/* The _FORTIFY_SOURCE entry points (open without a mode argument). */
#define OPEN_FORTIFY(name, field)                                                \
	SHIELD_API int name(const char *path, int flags)                         \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(AT_FDCWD, path); \
		if (f != NULL)                                                   \
			return open_injected(f, flags);                          \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(path, flags);                           \
	}
#define OPENAT_FORTIFY(name, field)                                              \
	SHIELD_API int name(int dirfd, const char *path, int flags)              \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(dirfd, path);   \
		if (f != NULL)                                                   \
			return open_injected(f, flags);                          \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(dirfd, path, flags);                    \
	}

OPEN_FORTIFY(__open_2, open_2)
OPEN_FORTIFY(__open64_2, open64_2)
OPENAT_FORTIFY(__openat_2, openat_2)
OPENAT_FORTIFY(__openat64_2, openat64_2)

#define CREAT(name, field)                                                       \
	SHIELD_API int name(const char *path, mode_t mode)                       \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(AT_FDCWD, path); \
		if (f != NULL)                                                   \
			return open_injected(f, O_CREAT | O_WRONLY | O_TRUNC);   \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(path, mode);                            \
	}

CREAT(creat, creat)
CREAT(creat64, creat64)

static FILE *fopen_injected(const struct shield_file *f, const char *mode)
{
	if (mode == NULL || mode[0] != 'r' || strchr(mode, '+') != NULL) {
		errno = EROFS;
		return NULL;
	}
	int fd = injected_fd(f);
	if (fd < 0)
		return NULL;
	FILE *fp = fdopen(fd, "r");
	if (fp == NULL) {
		int err = errno;
		close(fd);
		errno = err;
	}
	return fp;
}

#define FOPEN(name, field)                                                       \
	SHIELD_API FILE *name(const char *path, const char *mode)                \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(AT_FDCWD, path); \
		if (f != NULL)                                                   \
			return fopen_injected(f, mode);                          \
		if (REAL(field) == NULL) {                                       \
			errno = ENOSYS;                                          \
			return NULL;                                             \
		}                                                                \
		return shield.real.field(path, mode);                            \
	}

FOPEN(fopen, fopen)
FOPEN(fopen64, fopen64)

/* ---- stat ---- */

#define FILL_STAT(st, f)                                                          \
	do {                                                                      \
		memset((st), 0, sizeof(*(st)));                                   \
		(st)->st_dev = FAKE_DEV;                                          \
		(st)->st_ino = FAKE_INO_BASE + (size_t)((f) - shield.files);      \
		(st)->st_mode = INJECTED_MODE;                                    \
		(st)->st_nlink = 1;                                               \
		(st)->st_uid = getuid();                                          \
		(st)->st_gid = getgid();                                          \
		(st)->st_size = (off_t)(f)->len;                                  \
		(st)->st_blksize = 4096;                                          \
		(st)->st_blocks = (blkcnt_t)(((f)->len + 511) / 512);             \
		(st)->st_atim = (st)->st_mtim = (st)->st_ctim = (f)->time;        \
	} while (0)

static int stat_injected(const struct shield_file *f, struct stat *st)
{
	FILL_STAT(st, f);
	return 0;
}

static int stat64_injected(const struct shield_file *f, struct stat64 *st)
{
	FILL_STAT(st, f);
	return 0;
}

/* AT_EMPTY_PATH with "" means the descriptor itself: never a path match. */
#define STAT_PATH(name, stype, fill, field)                                      \
	SHIELD_API int name(const char *path, stype *st)                         \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(AT_FDCWD, path); \
		if (f != NULL)                                                   \
			return fill(f, st);                                      \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(path, st);                              \
	}

STAT_PATH(stat, struct stat, stat_injected, stat)
STAT_PATH(lstat, struct stat, stat_injected, lstat)
STAT_PATH(stat64, struct stat64, stat64_injected, stat64)
STAT_PATH(lstat64, struct stat64, stat64_injected, lstat64)

#define STAT_AT(name, stype, fill, field)                                        \
	SHIELD_API int name(int dirfd, const char *path, stype *st, int flags)   \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(dirfd, path);   \
		if (f != NULL)                                                   \
			return fill(f, st);                                      \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(dirfd, path, st, flags);                \
	}

STAT_AT(fstatat, struct stat, stat_injected, fstatat)
STAT_AT(fstatat64, struct stat64, stat64_injected, fstatat64)

/* Programs built against glibc before 2.33 call these. */
#define XSTAT(name, stype, fill, field)                                          \
	SHIELD_API int name(int ver, const char *path, stype *st)                \
	{                                                                        \
		const struct shield_file *f = shield_file_lookup(AT_FDCWD, path); \
		if (f != NULL)                                                   \
			return fill(f, st);                                      \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(ver, path, st);                         \
	}

XSTAT(__xstat, struct stat, stat_injected, xstat)
XSTAT(__lxstat, struct stat, stat_injected, lxstat)
XSTAT(__xstat64, struct stat64, stat64_injected, xstat64)
XSTAT(__lxstat64, struct stat64, stat64_injected, lxstat64)

#define FXSTATAT(name, stype, fill, field)                                                \
	SHIELD_API int name(int ver, int dirfd, const char *path, stype *st, int flags) \
	{                                                                                 \
		const struct shield_file *f = shield_file_lookup(dirfd, path);            \
		if (f != NULL)                                                            \
			return fill(f, st);                                               \
		if (REAL(field) == NULL)                                                  \
			return no_real();                                                 \
		return shield.real.field(ver, dirfd, path, st, flags);                    \
	}

FXSTATAT(__fxstatat, struct stat, stat_injected, fxstatat)
FXSTATAT(__fxstatat64, struct stat64, stat64_injected, fxstatat64)

SHIELD_API int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
	const struct shield_file *f = shield_file_lookup(dirfd, path);
	if (f != NULL) {
		memset(stx, 0, sizeof(*stx));
		stx->stx_mask = STATX_BASIC_STATS;
		stx->stx_blksize = 4096;
		stx->stx_nlink = 1;
		stx->stx_uid = getuid();
		stx->stx_gid = getgid();
		stx->stx_mode = INJECTED_MODE;
		stx->stx_ino = FAKE_INO_BASE + (size_t)(f - shield.files);
		stx->stx_size = f->len;
		stx->stx_blocks = (f->len + 511) / 512;
		stx->stx_atime.tv_sec = stx->stx_mtime.tv_sec = stx->stx_ctime.tv_sec = f->time.tv_sec;
		stx->stx_atime.tv_nsec = stx->stx_mtime.tv_nsec = stx->stx_ctime.tv_nsec = (uint32_t)f->time.tv_nsec;
		return 0;
	}
	if (REAL(statx) == NULL)
		return no_real();
	return shield.real.statx(dirfd, path, flags, mask, stx);
}

/* ---- access ---- */

static int access_injected(int mode)
{
	if (mode & W_OK) {
		errno = EROFS;
		return -1;
	}
	if (mode & X_OK) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

SHIELD_API int access(const char *path, int mode)
{
	const struct shield_file *f = shield_file_lookup(AT_FDCWD, path);
	if (f != NULL)
		return access_injected(mode);
	if (REAL(access) == NULL)
		return no_real();
	return shield.real.access(path, mode);
}

SHIELD_API int faccessat(int dirfd, const char *path, int mode, int flags)
{
	const struct shield_file *f = shield_file_lookup(dirfd, path);
	if (f != NULL)
		return access_injected(mode);
	if (REAL(faccessat) == NULL)
		return no_real();
	return shield.real.faccessat(dirfd, path, mode, flags);
}
