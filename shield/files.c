/* files.c: every interposed call that names a path, routed in one place
 * (shield_route, volfs.c): to an injected file (the session's `files:`),
 * to a file in a protected volume (volfs*.c), or to libc untouched.
 *
 * Injected files are served from memory at their paths and never written
 * to disk. Each open of an injected path gets a fresh memfd holding a
 * copy, sealed so that nobody can change it, positioned at 0; the copy
 * lives only as long as the program keeps the descriptor. The originals
 * stay in mlocked memory (arca_secret_alloc). Writing, renaming or
 * removing one is refused with EROFS, as on a read-only file system.
 *
 * The working directory as the program sees it (getcwd and co., a
 * volume's path while it is one) and the temporary-file makers (mkstemp
 * and co.) are here too: both decide which path a later call names.
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
#include <limits.h>
#include <unistd.h>
#include <utime.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/xattr.h>

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
/* glibc's report of a _FORTIFY_SOURCE overflow (prints and aborts). */
extern void __chk_fail(void) __attribute__((noreturn));

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
	if (shield_volfs_owns_fd(fd))
		shield_volfs_forget_stale(fd);
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

static int fail_errno(int e)
{
	errno = e;
	return -1;
}

#define REAL(fn) (shield_resolve_real(), shield.real.fn)

/* A descriptor libc handed out: the shield's table must not still claim
 * its number (volfs_fd.c). */
static int fresh(int fd)
{
	if (fd >= 0 && shield_volfs_owns_fd(fd))
		shield_volfs_forget_stale(fd);
	return fd;
}

/* The one path dispatch: every interposer below asks shield_route where
 * the path goes. An injected file is served from memory and is read-only;
 * a path in a volume goes to volfs*.c; anything else to libc, untouched. */
#define ROUTE(r, dirfd, path, empty_ok)      \
	struct shield_route r;               \
	shield_route((dirfd), (path), (empty_ok), &r)

/* What an open of route r does, or -2 when it is libc's. */
static int open_routed(const struct shield_route *r, int flags, mode_t mode)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return open_injected(r->file, flags);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_open(r->m, r->rel, flags, mode);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

/* An open the shield serves (an injected file, a volume) or makes itself
 * through the write guard (guard set); -2 when it is libc's to make. */
static int open_shielded(int dirfd, const char *path, int flags, mode_t mode, int guard)
{
	ROUTE(r, dirfd, path, 0);
	int fd = open_routed(&r, flags, mode);
	if (fd != -2 || !guard)
		return fd;
	fd = shield_volfs_guarded_open(dirfd, path, flags, mode);
	return fd != -2 ? fresh(fd) : -2;
}

#define OPEN_VARIADIC(name, field)                                              \
	SHIELD_API int name(const char *path, int flags, ...)                   \
	{                                                                       \
		mode_t mode = 0;                                                \
		if (needs_mode(flags)) {                                        \
			va_list ap;                                             \
			va_start(ap, flags);                                    \
			mode = (mode_t)va_arg(ap, int);                         \
			va_end(ap);                                             \
		}                                                               \
		int fd = open_shielded(AT_FDCWD, path, flags, mode, 1);         \
		if (fd != -2)                                                   \
			return fd;                                              \
		if (REAL(field) == NULL)                                        \
			return no_real();                                       \
		return fresh(shield.real.field(path, flags, mode));             \
	}

#define OPENAT_VARIADIC(name, field)                                             \
	SHIELD_API int name(int dirfd, const char *path, int flags, ...)         \
	{                                                                        \
		mode_t mode = 0;                                                 \
		if (needs_mode(flags)) {                                         \
			va_list ap;                                              \
			va_start(ap, flags);                                     \
			mode = (mode_t)va_arg(ap, int);                          \
			va_end(ap);                                              \
		}                                                                \
		int fd = open_shielded(dirfd, path, flags, mode, 1);             \
		if (fd != -2)                                                    \
			return fd;                                               \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return fresh(shield.real.field(dirfd, path, flags, mode));       \
	}

OPEN_VARIADIC(open, open)
OPEN_VARIADIC(open64, open64)
OPENAT_VARIADIC(openat, openat)
OPENAT_VARIADIC(openat64, openat64)

/* The _FORTIFY_SOURCE entry points (open without a mode argument). */
#define OPEN_FORTIFY(name, field)                                                 \
	SHIELD_API int name(const char *path, int flags)                          \
	{                                                                         \
		int fd = open_shielded(AT_FDCWD, path, flags, 0, !needs_mode(flags)); \
		if (fd != -2)                                                     \
			return fd;                                                \
		if (REAL(field) == NULL)                                          \
			return no_real();                                         \
		return fresh(shield.real.field(path, flags));                     \
	}
#define OPENAT_FORTIFY(name, field)                                              \
	SHIELD_API int name(int dirfd, const char *path, int flags)              \
	{                                                                        \
		int fd = open_shielded(dirfd, path, flags, 0, !needs_mode(flags)); \
		if (fd != -2)                                                    \
			return fd;                                               \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return fresh(shield.real.field(dirfd, path, flags));             \
	}

OPEN_FORTIFY(__open_2, open_2)
OPEN_FORTIFY(__open64_2, open64_2)
OPENAT_FORTIFY(__openat_2, openat_2)
OPENAT_FORTIFY(__openat64_2, openat64_2)

#define CREAT(name, field)                                                                          \
	SHIELD_API int name(const char *path, mode_t mode)                                          \
	{                                                                                           \
		int fd = open_shielded(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, 1);      \
		if (fd != -2)                                                                       \
			return fd;                                                                  \
		if (REAL(field) == NULL)                                                            \
			return no_real();                                                           \
		return fresh(shield.real.field(path, mode));                                        \
	}

CREAT(creat, creat)
CREAT(creat64, creat64)

/* Whether an fopen mode creates or writes (what comes before ",ccs=" only). */
static int fmode_writes(const char *mode)
{
	for (const char *c = mode; c != NULL && *c != 0 && *c != ','; c++)
		if (*c == 'w' || *c == 'a' || *c == '+')
			return 1;
	return 0;
}

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

#define FOPEN(name, field)                                                         \
	SHIELD_API FILE *name(const char *path, const char *mode)                  \
	{                                                                          \
		ROUTE(r, AT_FDCWD, path, 0);                                       \
		switch (r.kind) {                                                  \
		case SHIELD_ROUTE_INJECTED:                                        \
			return fopen_injected(r.file, mode);                       \
		case SHIELD_ROUTE_VOLUME:                                          \
			return shield_volfs_fopen(r.m, r.rel, mode);               \
		case SHIELD_ROUTE_ERROR:                                           \
			errno = r.err;                                             \
			return NULL;                                               \
		}                                                                  \
		if (REAL(field) == NULL) {                                         \
			errno = ENOSYS;                                            \
			return NULL;                                               \
		}                                                                  \
		if (fmode_writes(mode) && shield_volfs_guard(AT_FDCWD, path) != 0) \
			return NULL;                                               \
		FILE *fp = shield.real.field(path, mode);                          \
		if (fp != NULL)                                                    \
			fresh(VREAL(fileno)(fp));                                  \
		return fp;                                                         \
	}

FOPEN(fopen, fopen)
FOPEN(fopen64, fopen64)

#define FREOPEN(name, field)                                                            \
	SHIELD_API FILE *name(const char *path, const char *mode, FILE *fp)             \
	{                                                                               \
		int handled;                                                            \
		ROUTE(r, AT_FDCWD, path, 0);                                            \
		if (r.kind == SHIELD_ROUTE_INJECTED) {                                  \
			errno = EOPNOTSUPP;                                             \
			return NULL;                                                    \
		}                                                                       \
		FILE *res = shield_volfs_freopen(&r, path, mode, fp, &handled);         \
		if (handled)                                                            \
			return res;                                                     \
		if (fmode_writes(mode) && shield_volfs_guard(AT_FDCWD, path) != 0)      \
			return NULL;                                                    \
		res = VREAL(field)(path, mode, fp);                                     \
		if (res != NULL)                                                        \
			fresh(VREAL(fileno)(res));                                      \
		return res;                                                             \
	}

FREOPEN(freopen, freopen)
FREOPEN(freopen64, freopen64)

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

/* stat of route r into st (struct stat and stat64 share a layout here);
 * -2 when it is libc's. */
static int stat_routed(const struct shield_route *r, struct stat *st)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		FILL_STAT(st, r->file);
		return 0;
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_stat(r->m, r->rel, st);
	case SHIELD_ROUTE_VOLFD:
		return shield_volfs_fd_stat(r->fd, st);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

#define STAT_PATH(name, stype, field)                                            \
	SHIELD_API int name(const char *path, stype *st)                         \
	{                                                                        \
		ROUTE(r, AT_FDCWD, path, 0);                                     \
		int rc = stat_routed(&r, (struct stat *)st);                     \
		if (rc != -2)                                                    \
			return rc;                                               \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(path, st);                              \
	}

STAT_PATH(stat, struct stat, stat)
STAT_PATH(lstat, struct stat, lstat)
STAT_PATH(stat64, struct stat64, stat64)
STAT_PATH(lstat64, struct stat64, lstat64)

/* AT_EMPTY_PATH with "" means the descriptor itself. */
#define STAT_AT(name, stype, field)                                              \
	SHIELD_API int name(int dirfd, const char *path, stype *st, int flags)   \
	{                                                                        \
		ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);             \
		int rc = stat_routed(&r, (struct stat *)st);                     \
		if (rc != -2)                                                    \
			return rc;                                               \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(dirfd, path, st, flags);                \
	}

STAT_AT(fstatat, struct stat, fstatat)
STAT_AT(fstatat64, struct stat64, fstatat64)

/* Programs built against glibc before 2.33 call these. */
#define XSTAT(name, stype, field)                                                \
	SHIELD_API int name(int ver, const char *path, stype *st)                \
	{                                                                        \
		ROUTE(r, AT_FDCWD, path, 0);                                     \
		int rc = stat_routed(&r, (struct stat *)st);                     \
		if (rc != -2)                                                    \
			return rc;                                               \
		if (REAL(field) == NULL)                                         \
			return no_real();                                        \
		return shield.real.field(ver, path, st);                         \
	}

XSTAT(__xstat, struct stat, xstat)
XSTAT(__lxstat, struct stat, lxstat)
XSTAT(__xstat64, struct stat64, xstat64)
XSTAT(__lxstat64, struct stat64, lxstat64)

#define FXSTATAT(name, stype, field)                                                      \
	SHIELD_API int name(int ver, int dirfd, const char *path, stype *st, int flags) \
	{                                                                                 \
		ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);                      \
		int rc = stat_routed(&r, (struct stat *)st);                              \
		if (rc != -2)                                                             \
			return rc;                                                        \
		if (REAL(field) == NULL)                                                  \
			return no_real();                                                 \
		return shield.real.field(ver, dirfd, path, st, flags);                    \
	}

FXSTATAT(__fxstatat, struct stat, fxstatat)
FXSTATAT(__fxstatat64, struct stat64, fxstatat64)

SHIELD_API int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
	ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);
	switch (r.kind) {
	case SHIELD_ROUTE_INJECTED: {
		const struct shield_file *f = r.file;
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
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_statx(r.m, r.rel, stx);
	case SHIELD_ROUTE_VOLFD:
		return shield_volfs_fd_statx(r.fd, stx);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r.err);
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

static int access_routed(const struct shield_route *r, int mode)
{
	struct stat st;
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return access_injected(mode);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_access(r->m, r->rel, mode);
	case SHIELD_ROUTE_VOLFD:
		return shield_volfs_fd_stat(r->fd, &st);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API int access(const char *path, int mode)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = access_routed(&r, mode);
	if (rc != -2)
		return rc;
	if (REAL(access) == NULL)
		return no_real();
	return shield.real.access(path, mode);
}

SHIELD_API int faccessat(int dirfd, const char *path, int mode, int flags)
{
	ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);
	int rc = access_routed(&r, mode);
	if (rc != -2)
		return rc;
	if (REAL(faccessat) == NULL)
		return no_real();
	return shield.real.faccessat(dirfd, path, mode, flags);
}

/* ---- changes to the namespace and attributes ----
 * An injected file is read-only (EROFS); a volume path goes to volfs.c. */

SHIELD_API int truncate(const char *path, off_t len)
{
	ROUTE(r, AT_FDCWD, path, 0);
	switch (r.kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EROFS);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_truncate(r.m, r.rel, len);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r.err);
	}
	if (shield_volfs_guard(AT_FDCWD, path) != 0)
		return -1;
	return VREAL(truncate)(path, len);
}

SHIELD_API int truncate64(const char *path, off64_t len)
{
	return truncate(path, len);
}

static int unlink_routed(const struct shield_route *r, int dir)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(dir ? ENOTDIR : EROFS);
	case SHIELD_ROUTE_VOLUME:
		return dir ? shield_volfs_rmdir(r->m, r->rel) : shield_volfs_unlink(r->m, r->rel);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API int unlink(const char *path)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = unlink_routed(&r, 0);
	return rc != -2 ? rc : VREAL(unlink)(path);
}

SHIELD_API int unlinkat(int dirfd, const char *path, int flags)
{
	ROUTE(r, dirfd, path, 0);
	int rc = unlink_routed(&r, (flags & AT_REMOVEDIR) != 0);
	return rc != -2 ? rc : VREAL(unlinkat)(dirfd, path, flags);
}

SHIELD_API int rmdir(const char *path)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = unlink_routed(&r, 1);
	return rc != -2 ? rc : VREAL(rmdir)(path);
}

static int mkdir_routed(const struct shield_route *r, mode_t mode)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EEXIST);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_mkdir(r->m, r->rel, mode);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API int mkdir(const char *path, mode_t mode)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = mkdir_routed(&r, mode);
	if (rc == -2)
		rc = shield_volfs_guarded_mkdir(AT_FDCWD, path, mode);
	return rc != -2 ? rc : VREAL(mkdir)(path, mode);
}

SHIELD_API int mkdirat(int dirfd, const char *path, mode_t mode)
{
	ROUTE(r, dirfd, path, 0);
	int rc = mkdir_routed(&r, mode);
	if (rc == -2)
		rc = shield_volfs_guarded_mkdir(dirfd, path, mode);
	return rc != -2 ? rc : VREAL(mkdirat)(dirfd, path, mode);
}

/* Both ends in one volume, or neither in any: else EXDEV, as between two
 * file systems (mv then copies). */
static int rename_routed(int fd1, const char *p1, int fd2, const char *p2, unsigned flags)
{
	ROUTE(a, fd1, p1, 0);
	ROUTE(b, fd2, p2, 0);
	if (a.kind == SHIELD_ROUTE_LIBC && b.kind == SHIELD_ROUTE_LIBC) {
		/* The new name must not land in a volume's directory (with
		 * RENAME_EXCHANGE the old one gets a file too). */
		if (shield_volfs_guard(fd2, p2) != 0 ||
		    ((flags & RENAME_EXCHANGE) && shield_volfs_guard(fd1, p1) != 0))
			return -1;
		return -2;
	}
	if (a.kind == SHIELD_ROUTE_ERROR)
		return fail_errno(a.err);
	if (b.kind == SHIELD_ROUTE_ERROR)
		return fail_errno(b.err);
	if (a.kind == SHIELD_ROUTE_INJECTED || b.kind == SHIELD_ROUTE_INJECTED)
		return fail_errno(EROFS);
	if (a.kind == SHIELD_ROUTE_VOLUME && b.kind == SHIELD_ROUTE_VOLUME && a.m == b.m)
		return shield_volfs_rename(a.m, a.rel, b.rel, flags);
	return fail_errno(EXDEV);
}

SHIELD_API int rename(const char *from, const char *to)
{
	int rc = rename_routed(AT_FDCWD, from, AT_FDCWD, to, 0);
	return rc != -2 ? rc : VREAL(rename)(from, to);
}

SHIELD_API int renameat(int fd1, const char *from, int fd2, const char *to)
{
	int rc = rename_routed(fd1, from, fd2, to, 0);
	return rc != -2 ? rc : VREAL(renameat)(fd1, from, fd2, to);
}

SHIELD_API int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags)
{
	int rc = rename_routed(fd1, from, fd2, to, flags);
	return rc != -2 ? rc : VREAL(renameat2)(fd1, from, fd2, to, flags);
}

static int chmod_routed(const struct shield_route *r, mode_t mode)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EROFS);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_chmod(r->m, r->rel, mode);
	case SHIELD_ROUTE_VOLFD:
		return fchmod(r->fd, mode);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API int chmod(const char *path, mode_t mode)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = chmod_routed(&r, mode);
	return rc != -2 ? rc : VREAL(chmod)(path, mode);
}

SHIELD_API int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);
	int rc = chmod_routed(&r, mode);
	return rc != -2 ? rc : VREAL(fchmodat)(dirfd, path, mode, flags);
}

static int chown_routed(const struct shield_route *r, uid_t uid, gid_t gid)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EROFS);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_chown(r->m, r->rel, uid, gid);
	case SHIELD_ROUTE_VOLFD:
		return fchown(r->fd, uid, gid);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API int chown(const char *path, uid_t uid, gid_t gid)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = chown_routed(&r, uid, gid);
	return rc != -2 ? rc : VREAL(chown)(path, uid, gid);
}

SHIELD_API int lchown(const char *path, uid_t uid, gid_t gid)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = chown_routed(&r, uid, gid);
	return rc != -2 ? rc : VREAL(lchown)(path, uid, gid);
}

SHIELD_API int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);
	int rc = chown_routed(&r, uid, gid);
	return rc != -2 ? rc : VREAL(fchownat)(dirfd, path, uid, gid, flags);
}

static int utime_routed(const struct shield_route *r, const struct timespec ts[2])
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EROFS);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_utime(r->m, r->rel, ts);
	case SHIELD_ROUTE_VOLFD:
		return futimens(r->fd, ts);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

/* timeval pairs as timespec pairs; NULL stays NULL (now). */
static const struct timespec *tv2ts(const struct timeval *tv, struct timespec ts[2])
{
	if (tv == NULL)
		return NULL;
	for (int i = 0; i < 2; i++) {
		ts[i].tv_sec = tv[i].tv_sec;
		ts[i].tv_nsec = tv[i].tv_usec * 1000;
	}
	return ts;
}

SHIELD_API int utimensat(int dirfd, const char *path, const struct timespec ts[2], int flags)
{
	/* futimens(dirfd): libc declares path nonnull, the system call
	 * takes NULL; a volatile copy keeps the compiler from assuming. */
	const char *volatile p = path;
	if (p == NULL) {
		if (shield_volfs_owns_fd(dirfd))
			return futimens(dirfd, ts);
		return VREAL(utimensat)(dirfd, path, ts, flags);
	}
	ROUTE(r, dirfd, path, (flags & AT_EMPTY_PATH) != 0);
	int rc = utime_routed(&r, ts);
	return rc != -2 ? rc : VREAL(utimensat)(dirfd, path, ts, flags);
}

SHIELD_API int utime(const char *path, const struct utimbuf *times)
{
	struct timespec ts[2];
	ROUTE(r, AT_FDCWD, path, 0);
	const struct timespec *t = NULL;
	if (times != NULL) {
		ts[0] = (struct timespec){times->actime, 0};
		ts[1] = (struct timespec){times->modtime, 0};
		t = ts;
	}
	int rc = utime_routed(&r, t);
	return rc != -2 ? rc : VREAL(utime)(path, times);
}

SHIELD_API int utimes(const char *path, const struct timeval tv[2])
{
	struct timespec ts[2];
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = utime_routed(&r, tv2ts(tv, ts));
	return rc != -2 ? rc : VREAL(utimes)(path, tv);
}

SHIELD_API int lutimes(const char *path, const struct timeval tv[2])
{
	struct timespec ts[2];
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = utime_routed(&r, tv2ts(tv, ts));
	return rc != -2 ? rc : VREAL(lutimes)(path, tv);
}

SHIELD_API int futimesat(int dirfd, const char *path, const struct timeval tv[2])
{
	struct timespec ts[2];
	if (path == NULL) {
		if (shield_volfs_owns_fd(dirfd))
			return futimens(dirfd, tv2ts(tv, ts));
		return VREAL(futimesat)(dirfd, path, tv);
	}
	ROUTE(r, dirfd, path, 0);
	int rc = utime_routed(&r, tv2ts(tv, ts));
	return rc != -2 ? rc : VREAL(futimesat)(dirfd, path, tv);
}

SHIELD_API int chdir(const char *path)
{
	ROUTE(r, AT_FDCWD, path, 0);
	switch (r.kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(ENOTDIR);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_chdir(r.m, r.rel);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r.err);
	}
	return shield_volfs_chdir_libc(path);
}

/* ---- the working directory as the program sees it ----
 * While a volume's root is the working directory (shield_volfs_chdir), it
 * is the volume's path: the kernel would name the directory by wherever
 * root has moved it, and a path built from that name would miss the
 * volume and reach its stored records through libc. */

SHIELD_API char *__getcwd_chk(char *buf, size_t size, size_t buflen);

/* getcwd's answer for the volume m, with glibc's rules for buf and size. */
static char *cwd_of(const struct volfs_mount *m, char *buf, size_t size)
{
	size_t n = m->len + 1;
	if ((buf != NULL && size == 0) || (size != 0 && size < n)) {
		errno = size == 0 ? EINVAL : ERANGE;
		return NULL;
	}
	char *out = buf != NULL ? buf : malloc(size != 0 ? size : n);
	if (out == NULL)
		return NULL;
	memcpy(out, m->path, n);
	return out;
}

SHIELD_API char *getcwd(char *buf, size_t size)
{
	struct volfs_mount *m = shield_volfs_cwd();
	return m != NULL ? cwd_of(m, buf, size) : VREAL(getcwd)(buf, size);
}

SHIELD_API char *__getcwd_chk(char *buf, size_t size, size_t buflen)
{
	if (size > buflen)
		__chk_fail();
	struct volfs_mount *m = shield_volfs_cwd();
	return m != NULL ? cwd_of(m, buf, size) : VREAL(getcwd_chk)(buf, size, buflen);
}

SHIELD_API char *get_current_dir_name(void)
{
	struct volfs_mount *m = shield_volfs_cwd();
	return m != NULL ? cwd_of(m, NULL, 0) : VREAL(get_current_dir_name)();
}

SHIELD_API char *getwd(char *buf)
{
	struct volfs_mount *m = shield_volfs_cwd();
	if (m == NULL)
		return VREAL(getwd)(buf);
	return cwd_of(m, buf, PATH_MAX); /* getwd's buffer is PATH_MAX bytes */
}

/* ---- temporary files ----
 * glibc's mkstemp and co. create the file with an internal open that no
 * interposer sees: a template in a volume would become a plaintext file in
 * the volume's directory. Those are made here, through the volume; other
 * templates go to glibc once the backstop has checked their directory. */

#define TEMP_TRIES 100

/* Fills the n X's at a and b with the same random letters and digits. */
static int temp_letters(char *a, char *b, size_t n)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint8_t r[32];
	size_t done = 0;
	while (done < n) {
		if (arca_random(r, sizeof r) != 0)
			return fail_errno(EIO);
		/* 248 = 4 * 62: no letter more likely than another. */
		for (size_t i = 0; i < sizeof r && done < n; i++)
			if (r[i] < 248) {
				a[done] = b[done] = set[r[i] % 62];
				done++;
			}
	}
	arca_wipe(r, sizeof r);
	return 0;
}

/* mkstemp (dir 0) or mkdtemp (dir 1) of tmpl in a volume; *handled says
 * whether it was the shield's to do (else glibc's, which the backstop has
 * let through). A descriptor, 0 (mkdtemp) or -1 with errno. */
static int temp_make(char *tmpl, int suffixlen, int flags, int dir, int *handled)
{
	*handled = 0;
	if (tmpl == NULL)
		return -1; /* glibc's EFAULT */
	ROUTE(r, AT_FDCWD, tmpl, 0);
	if (r.kind == SHIELD_ROUTE_LIBC || r.kind == SHIELD_ROUTE_INJECTED) {
		*handled = shield_volfs_guard(AT_FDCWD, tmpl) != 0;
		return -1;
	}
	*handled = 1;
	if (r.kind != SHIELD_ROUTE_VOLUME)
		return fail_errno(r.err);
	size_t len = strlen(tmpl), rl = strlen(r.rel);
	if (len < 6 || suffixlen < 0 || (size_t)suffixlen > len - 6 || rl < 6 + (size_t)suffixlen)
		return fail_errno(EINVAL);
	char *x = tmpl + len - (size_t)suffixlen - 6, *rx = r.rel + rl - (size_t)suffixlen - 6;
	if (memcmp(x, "XXXXXX", 6) != 0 || memchr(x, '/', 6 + (size_t)suffixlen) != NULL)
		return fail_errno(EINVAL);
	int fd = -1;
	for (int i = 0; i < TEMP_TRIES; i++) {
		if (temp_letters(x, rx, 6) != 0)
			return -1;
		fd = dir ? shield_volfs_mkdir(r.m, r.rel, 0700)
			 : shield_volfs_open(r.m, r.rel, (flags & ~O_ACCMODE) | O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	return fd;
}

#define MKSTEMP(name, field)                                                       \
	SHIELD_API int name(char *tmpl)                                            \
	{                                                                          \
		int handled, fd = temp_make(tmpl, 0, 0, 0, &handled);              \
		return handled ? fd : fresh(VREAL(field)(tmpl));                   \
	}
#define MKOSTEMP(name, field)                                                      \
	SHIELD_API int name(char *tmpl, int flags)                                 \
	{                                                                          \
		int handled, fd = temp_make(tmpl, 0, flags, 0, &handled);          \
		return handled ? fd : fresh(VREAL(field)(tmpl, flags));            \
	}
#define MKSTEMPS(name, field)                                                      \
	SHIELD_API int name(char *tmpl, int suffixlen)                             \
	{                                                                          \
		int handled, fd = temp_make(tmpl, suffixlen, 0, 0, &handled);      \
		return handled ? fd : fresh(VREAL(field)(tmpl, suffixlen));        \
	}
#define MKOSTEMPS(name, field)                                                     \
	SHIELD_API int name(char *tmpl, int suffixlen, int flags)                  \
	{                                                                          \
		int handled, fd = temp_make(tmpl, suffixlen, flags, 0, &handled);  \
		return handled ? fd : fresh(VREAL(field)(tmpl, suffixlen, flags)); \
	}

MKSTEMP(mkstemp, mkstemp)
MKSTEMP(mkstemp64, mkstemp64)
MKOSTEMP(mkostemp, mkostemp)
MKOSTEMP(mkostemp64, mkostemp64)
MKSTEMPS(mkstemps, mkstemps)
MKSTEMPS(mkstemps64, mkstemps64)
MKOSTEMPS(mkostemps, mkostemps)
MKOSTEMPS(mkostemps64, mkostemps64)

SHIELD_API char *mkdtemp(char *tmpl)
{
	int handled, rc = temp_make(tmpl, 0, 0, 1, &handled);
	if (!handled)
		return VREAL(mkdtemp)(tmpl);
	return rc == 0 ? tmpl : NULL;
}

/* Extended attributes of paths: as for volume descriptors (volfs_fd.c),
 * none are kept in a volume or on an injected file; a path in a volume
 * passed to libc would reach the volume's directory on disk. Returns -2
 * when the path is libc's; err 0 answers "none" (a listing of 0 bytes). */
static int xattr_routed(const char *path, int err)
{
	struct stat st;
	ROUTE(r, AT_FDCWD, path, 0);
	switch (r.kind) {
	case SHIELD_ROUTE_INJECTED:
		return err ? fail_errno(err) : 0;
	case SHIELD_ROUTE_VOLUME:
		if (shield_volfs_stat(r.m, r.rel, &st) != 0)
			return -1;
		return err ? fail_errno(err) : 0;
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r.err);
	default:
		return -2;
	}
}

#define GETXATTR(name)                                                                        \
	SHIELD_API ssize_t name(const char *path, const char *attr, void *value, size_t size) \
	{                                                                                     \
		int rc = xattr_routed(path, ENODATA);                                         \
		return rc != -2 ? rc : VREAL(name)(path, attr, value, size);                  \
	}
#define SETXATTR(name)                                                                                     \
	SHIELD_API int name(const char *path, const char *attr, const void *value, size_t size, int flags) \
	{                                                                                                  \
		int rc = xattr_routed(path, ENOTSUP);                                                      \
		return rc != -2 ? rc : VREAL(name)(path, attr, value, size, flags);                        \
	}
#define LISTXATTR(name)                                                    \
	SHIELD_API ssize_t name(const char *path, char *list, size_t size) \
	{                                                                  \
		int rc = xattr_routed(path, 0);                            \
		return rc != -2 ? rc : VREAL(name)(path, list, size);      \
	}
#define REMOVEXATTR(name)                                       \
	SHIELD_API int name(const char *path, const char *attr) \
	{                                                       \
		int rc = xattr_routed(path, ENODATA);           \
		return rc != -2 ? rc : VREAL(name)(path, attr); \
	}

GETXATTR(getxattr)
GETXATTR(lgetxattr)
SETXATTR(setxattr)
SETXATTR(lsetxattr)
LISTXATTR(listxattr)
LISTXATTR(llistxattr)
REMOVEXATTR(removexattr)
REMOVEXATTR(lremovexattr)

/* Nothing in a volume or among the injected files is a symbolic link. */
static int readlink_routed(const struct shield_route *r)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EINVAL);
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_readlink(r->m, r->rel);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API ssize_t readlink(const char *path, char *buf, size_t n)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = readlink_routed(&r);
	return rc != -2 ? rc : VREAL(readlink)(path, buf, n);
}

SHIELD_API ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t n)
{
	ROUTE(r, dirfd, path, 0);
	int rc = readlink_routed(&r);
	return rc != -2 ? rc : VREAL(readlinkat)(dirfd, path, buf, n);
}

SHIELD_API ssize_t __readlink_chk(const char *path, char *buf, size_t n, size_t buflen);
SHIELD_API ssize_t __readlink_chk(const char *path, char *buf, size_t n, size_t buflen)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = readlink_routed(&r);
	return rc != -2 ? rc : VREAL(readlink_chk)(path, buf, n, buflen);
}

SHIELD_API ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t n, size_t buflen);
SHIELD_API ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t n, size_t buflen)
{
	ROUTE(r, dirfd, path, 0);
	int rc = readlink_routed(&r);
	return rc != -2 ? rc : VREAL(readlinkat_chk)(dirfd, path, buf, n, buflen);
}

/* The canonical name of a path in a volume or of an injected file; *done
 * says whether it was ours to answer. */
static char *realpath_routed(const char *path, char *buf, int *done)
{
	ROUTE(r, AT_FDCWD, path, 0);
	*done = 1;
	switch (r.kind) {
	case SHIELD_ROUTE_INJECTED: {
		size_t n = strlen(r.file->path);
		char *out = buf != NULL ? buf : malloc(n + 1);
		if (out != NULL)
			memcpy(out, r.file->path, n + 1);
		return out;
	}
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_realpath(r.m, r.rel, buf);
	case SHIELD_ROUTE_ERROR:
		errno = r.err;
		return NULL;
	}
	*done = 0;
	return NULL;
}

SHIELD_API char *realpath(const char *path, char *resolved)
{
	int done;
	char *res = realpath_routed(path, resolved, &done);
	return done ? res : VREAL(realpath)(path, resolved);
}

SHIELD_API char *__realpath_chk(const char *path, char *resolved, size_t len);
SHIELD_API char *__realpath_chk(const char *path, char *resolved, size_t len)
{
	int done;
	if (resolved != NULL && len < PATH_MAX)
		__chk_fail();
	char *res = realpath_routed(path, resolved, &done);
	return done ? res : VREAL(realpath_chk)(path, resolved, len);
}

SHIELD_API char *canonicalize_file_name(const char *path)
{
	int done;
	char *res = realpath_routed(path, NULL, &done);
	return done ? res : VREAL(canonicalize_file_name)(path);
}

/* Links, symbolic links, FIFOs and device nodes are not kept in volumes. */
static int nolink(const struct shield_route *r)
{
	switch (r->kind) {
	case SHIELD_ROUTE_INJECTED:
		return fail_errno(EEXIST);
	case SHIELD_ROUTE_VOLUME:
	case SHIELD_ROUTE_VOLFD:
		return fail_errno(EPERM);
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r->err);
	default:
		return -2;
	}
}

SHIELD_API int link(const char *from, const char *to)
{
	ROUTE(a, AT_FDCWD, from, 0);
	ROUTE(b, AT_FDCWD, to, 0);
	if (a.kind == SHIELD_ROUTE_VOLUME || b.kind != SHIELD_ROUTE_LIBC)
		return nolink(a.kind == SHIELD_ROUTE_VOLUME ? &a : &b);
	if (shield_volfs_guard(AT_FDCWD, to) != 0)
		return -1;
	return VREAL(link)(from, to);
}

SHIELD_API int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	ROUTE(a, fd1, from, (flags & AT_EMPTY_PATH) != 0);
	ROUTE(b, fd2, to, 0);
	if (a.kind == SHIELD_ROUTE_VOLUME || a.kind == SHIELD_ROUTE_VOLFD || b.kind != SHIELD_ROUTE_LIBC)
		return nolink(b.kind != SHIELD_ROUTE_LIBC ? &b : &a);
	if (shield_volfs_guard(fd2, to) != 0)
		return -1;
	return VREAL(linkat)(fd1, from, fd2, to, flags);
}

SHIELD_API int symlink(const char *target, const char *path)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = nolink(&r);
	if (rc == -2 && shield_volfs_guard(AT_FDCWD, path) != 0)
		return -1;
	return rc != -2 ? rc : VREAL(symlink)(target, path);
}

SHIELD_API int symlinkat(const char *target, int dirfd, const char *path)
{
	ROUTE(r, dirfd, path, 0);
	int rc = nolink(&r);
	if (rc == -2 && shield_volfs_guard(dirfd, path) != 0)
		return -1;
	return rc != -2 ? rc : VREAL(symlinkat)(target, dirfd, path);
}

SHIELD_API int mkfifo(const char *path, mode_t mode)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = nolink(&r);
	if (rc == -2 && shield_volfs_guard(AT_FDCWD, path) != 0)
		return -1;
	return rc != -2 ? rc : VREAL(mkfifo)(path, mode);
}

SHIELD_API int mkfifoat(int dirfd, const char *path, mode_t mode)
{
	ROUTE(r, dirfd, path, 0);
	int rc = nolink(&r);
	if (rc == -2 && shield_volfs_guard(dirfd, path) != 0)
		return -1;
	return rc != -2 ? rc : VREAL(mkfifoat)(dirfd, path, mode);
}

SHIELD_API int mknod(const char *path, mode_t mode, dev_t dev)
{
	ROUTE(r, AT_FDCWD, path, 0);
	int rc = nolink(&r);
	if (rc == -2 && shield_volfs_guard(AT_FDCWD, path) != 0)
		return -1;
	return rc != -2 ? rc : VREAL(mknod)(path, mode, dev);
}

SHIELD_API int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
	ROUTE(r, dirfd, path, 0);
	int rc = nolink(&r);
	if (rc == -2 && shield_volfs_guard(dirfd, path) != 0)
		return -1;
	return rc != -2 ? rc : VREAL(mknodat)(dirfd, path, mode, dev);
}

/* The file system of a path in a volume is that of the volume's directory. */
static int statfs_routed(const char *path, void *buf, int vfs, int *done)
{
	struct stat st;
	ROUTE(r, AT_FDCWD, path, 0);
	*done = 1;
	switch (r.kind) {
	case SHIELD_ROUTE_VOLUME:
		if (shield_volfs_stat(r.m, r.rel, &st) != 0)
			return -1;
		shield_volfs_enter();
		int rc = vfs ? VREAL(statvfs)(r.m->path, buf) : VREAL(statfs)(r.m->path, buf);
		shield_volfs_leave();
		return rc;
	case SHIELD_ROUTE_ERROR:
		return fail_errno(r.err);
	}
	*done = 0;
	return -1;
}

SHIELD_API int statfs(const char *path, struct statfs *buf)
{
	int done, rc = statfs_routed(path, buf, 0, &done);
	return done ? rc : VREAL(statfs)(path, buf);
}

SHIELD_API int statfs64(const char *path, struct statfs64 *buf)
{
	int done, rc = statfs_routed(path, buf, 0, &done);
	return done ? rc : VREAL(statfs)(path, buf);
}

SHIELD_API int statvfs(const char *path, struct statvfs *buf)
{
	int done, rc = statfs_routed(path, buf, 1, &done);
	return done ? rc : VREAL(statvfs)(path, buf);
}

SHIELD_API int statvfs64(const char *path, struct statvfs64 *buf)
{
	int done, rc = statfs_routed(path, buf, 1, &done);
	return done ? rc : VREAL(statvfs)(path, buf);
}

/* ---- directories ---- */

SHIELD_API DIR *opendir(const char *path)
{
	ROUTE(r, AT_FDCWD, path, 0);
	switch (r.kind) {
	case SHIELD_ROUTE_INJECTED:
		errno = ENOTDIR;
		return NULL;
	case SHIELD_ROUTE_VOLUME:
		return shield_volfs_opendir(r.m, r.rel);
	case SHIELD_ROUTE_ERROR:
		errno = r.err;
		return NULL;
	}
	DIR *d = VREAL(opendir)(path);
	if (d != NULL)
		fresh(VREAL(dirfd)(d));
	return d;
}

SHIELD_API int scandir(const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
		       int (*cmp)(const struct dirent **, const struct dirent **))
{
	int handled, n = shield_volfs_scandir(AT_FDCWD, path, list, sel, cmp, &handled);
	return handled ? n : VREAL(scandir)(path, list, sel, cmp);
}

SHIELD_API int scandir64(const char *path, struct dirent64 ***list, int (*sel)(const struct dirent64 *),
			 int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	int handled, n = shield_volfs_scandir(AT_FDCWD, path, (struct dirent ***)list,
					      (int (*)(const struct dirent *))sel,
					      (int (*)(const struct dirent **, const struct dirent **))cmp, &handled);
	return handled ? n : VREAL(scandir64)(path, list, sel, cmp);
}

SHIELD_API int scandirat(int dirfd, const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
			 int (*cmp)(const struct dirent **, const struct dirent **))
{
	int handled, n = shield_volfs_scandir(dirfd, path, list, sel, cmp, &handled);
	return handled ? n : VREAL(scandirat)(dirfd, path, list, sel, cmp);
}

SHIELD_API int scandirat64(int dirfd, const char *path, struct dirent64 ***list,
			   int (*sel)(const struct dirent64 *),
			   int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	int handled, n = shield_volfs_scandir(dirfd, path, (struct dirent ***)list,
					      (int (*)(const struct dirent *))sel,
					      (int (*)(const struct dirent **, const struct dirent **))cmp, &handled);
	return handled ? n : VREAL(scandirat64)(dirfd, path, list, sel, cmp);
}
