/* volfs_fd.c: descriptors of files and directories in protected volumes.
 *
 * An open of a path in a volume gets a real kernel descriptor as its
 * number: a close-on-exec descriptor of the volume's directory, so that
 * the number is the program's until it closes it, and so that a system
 * call the shield does not see (a raw syscall, io_uring, a program it
 * execs) reads a directory and fails loudly instead of returning the
 * stored ciphertext as data. The table maps the number to an open file
 * description (struct volfs_ofd: the library's file, the position, the
 * flags) that dup'ed descriptors share. Every call that takes a descriptor
 * first tests one bit of an atomic bitmap, so that descriptors that are not
 * in a volume (sockets, pipes, other files) go to libc at the cost of a
 * load.
 *
 * Semantics that differ from a kernel file system (docs/ARCHITECTURE.md
 * "The file shield"): record locks (fcntl F_SETLK & co., flock, lockf) are
 * granted at once and F_GETLK answers F_UNLCK, since one process owns a
 * writable volume (the library locks the volume's directory); fsync,
 * fdatasync and syncfs commit the whole volume; copy_file_range, sendfile
 * and splice refuse volume descriptors (EXDEV, EINVAL) so that callers
 * fall back to read and write; the kernel's close-on-exec flag is always
 * set (FD_CLOEXEC as the program set it is kept in the table). */
#undef _FORTIFY_SOURCE /* we define read and friends; the inline wrappers must not exist here */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/xattr.h>

#include "shield.h"
#include "arca/crypto.h"
#include "arca/volume.h"

/* libc's entry points that have no prototype in the installed headers. */
SHIELD_API ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
SHIELD_API ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
SHIELD_API ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen);
SHIELD_API int __fxstat(int ver, int fd, struct stat *st);
SHIELD_API int __fxstat64(int ver, int fd, struct stat64 *st);
/* glibc's report of a _FORTIFY_SOURCE overflow (prints and aborts). */
extern void __chk_fail(void) __attribute__((noreturn));

#define MAX_RW 0x7ffff000L /* what Linux moves in one call */

#define LIB(expr)                                        \
	({                                               \
		shield_volfs_enter();                    \
		__auto_type lib_rc_ = (expr);            \
		shield_volfs_leave();                    \
		lib_rc_;                                 \
	})

/* ---- the real functions ---- */

#define RES(field, name) (r.field = (__typeof__(r.field))dlsym(RTLD_NEXT, name))
#define RES_V(field, name, ver)                                                   \
	do {                                                                      \
		r.field = (__typeof__(r.field))dlvsym(RTLD_NEXT, name, ver);     \
		if (r.field == NULL)                                              \
			RES(field, name);                                         \
	} while (0)

void shield_volfs_resolve_real(void)
{
	struct volfs_real r;

	if (__atomic_load_n(&shield.volfs.real_ready, __ATOMIC_ACQUIRE))
		return;
	RES(read, "read");
	RES(write, "write");
	RES(pread, "pread64");
	RES(pwrite, "pwrite64");
	RES(readv, "readv");
	RES(writev, "writev");
	RES(preadv, "preadv64");
	RES(pwritev, "pwritev64");
	RES(preadv2, "preadv64v2");
	RES(pwritev2, "pwritev64v2");
	RES(read_chk, "__read_chk");
	RES(pread_chk, "__pread64_chk");
	RES(lseek, "lseek64");
	RES(fstat, "fstat64");
	RES_V(fxstat, "__fxstat", "GLIBC_2.2.5");
	RES_V(fxstat64, "__fxstat64", "GLIBC_2.2.5");
	RES(ftruncate, "ftruncate64");
	RES(fsync, "fsync");
	RES(fdatasync, "fdatasync");
	RES(syncfs, "syncfs");
	RES(sync, "sync");
	RES(close, "close");
	RES(close_range, "close_range");
	RES(closefrom, "closefrom");
	RES(dup, "dup");
	RES(dup2, "dup2");
	RES(dup3, "dup3");
	RES(fcntl, "fcntl");
	RES(fcntl64, "fcntl64");
	RES(flock, "flock");
	RES(lockf, "lockf64");
	RES(posix_fadvise, "posix_fadvise64");
	RES(fallocate, "fallocate64");
	RES(posix_fallocate, "posix_fallocate64");
	RES(ioctl, "ioctl");
	RES(copy_file_range, "copy_file_range");
	RES(sendfile, "sendfile64");
	RES(splice, "splice");
	RES(fchmod, "fchmod");
	RES(fchown, "fchown");
	RES(futimens, "futimens");
	RES(futimes, "futimes");
	RES(fchdir, "fchdir");
	RES(umask, "umask");
	RES(fdopen, "fdopen");
	RES(freopen, "freopen");
	RES(freopen64, "freopen64");
	RES(fileno, "fileno");
	RES(fileno_unlocked, "fileno_unlocked");
	RES(opendir, "opendir");
	RES(fdopendir, "fdopendir");
	RES(readdir, "readdir");
	RES(readdir64, "readdir64");
	RES(readdir_r, "readdir_r");
	RES(readdir64_r, "readdir64_r");
	RES(closedir, "closedir");
	RES(dirfd, "dirfd");
	RES(rewinddir, "rewinddir");
	RES(telldir, "telldir");
	RES(seekdir, "seekdir");
	RES(scandir, "scandir");
	RES(scandir64, "scandir64");
	RES(scandirat, "scandirat");
	RES(scandirat64, "scandirat64");
	RES(truncate, "truncate64");
	RES(unlink, "unlink");
	RES(unlinkat, "unlinkat");
	RES(rename, "rename");
	RES(renameat, "renameat");
	RES(renameat2, "renameat2");
	RES(mkdir, "mkdir");
	RES(mkdirat, "mkdirat");
	RES(rmdir, "rmdir");
	RES(chmod, "chmod");
	RES(fchmodat, "fchmodat");
	RES(chown, "chown");
	RES(lchown, "lchown");
	RES(fchownat, "fchownat");
	RES(utimensat, "utimensat");
	RES(utime, "utime");
	RES(utimes, "utimes");
	RES(lutimes, "lutimes");
	RES(futimesat, "futimesat");
	RES(chdir, "chdir");
	RES(readlink, "readlink");
	RES(readlinkat, "readlinkat");
	RES(readlink_chk, "__readlink_chk");
	RES(readlinkat_chk, "__readlinkat_chk");
	RES_V(realpath, "realpath", "GLIBC_2.3");
	RES(realpath_chk, "__realpath_chk");
	RES(canonicalize_file_name, "canonicalize_file_name");
	RES(link, "link");
	RES(linkat, "linkat");
	RES(symlink, "symlink");
	RES(symlinkat, "symlinkat");
	RES(mkfifo, "mkfifo");
	RES(mkfifoat, "mkfifoat");
	RES(mknod, "mknod");
	RES(mknodat, "mknodat");
	RES(statfs, "statfs64");
	RES(statvfs, "statvfs64");
	RES(getcwd, "getcwd");
	RES(getcwd_chk, "__getcwd_chk");
	RES(get_current_dir_name, "get_current_dir_name");
	RES(getwd, "getwd");
	RES(mkstemp, "mkstemp");
	RES(mkstemp64, "mkstemp64");
	RES(mkostemp, "mkostemp");
	RES(mkostemp64, "mkostemp64");
	RES(mkstemps, "mkstemps");
	RES(mkstemps64, "mkstemps64");
	RES(mkostemps, "mkostemps");
	RES(mkostemps64, "mkostemps64");
	RES(mkdtemp, "mkdtemp");
	RES(fgetxattr, "fgetxattr");
	RES(fsetxattr, "fsetxattr");
	RES(flistxattr, "flistxattr");
	RES(fremovexattr, "fremovexattr");
	RES(getxattr, "getxattr");
	RES(lgetxattr, "lgetxattr");
	RES(setxattr, "setxattr");
	RES(lsetxattr, "lsetxattr");
	RES(listxattr, "listxattr");
	RES(llistxattr, "llistxattr");
	RES(removexattr, "removexattr");
	RES(lremovexattr, "lremovexattr");
	shield.volfs.real = r;
	__atomic_store_n(&shield.volfs.real_ready, 1, __ATOMIC_RELEASE);
}

/* ---- the table ---- */

static struct volfs_slot *slot_at(int fd, int create)
{
	struct volfs_slot **c = &shield.volfs.chunks[fd / SHIELD_VOLFS_CHUNK];
	if (*c == NULL) {
		if (!create)
			return NULL;
		*c = calloc(SHIELD_VOLFS_CHUNK, sizeof **c);
		if (*c == NULL)
			return NULL;
	}
	return &(*c)[fd % SHIELD_VOLFS_CHUNK];
}

static void bit_set(int fd, int on)
{
	uint64_t b = (uint64_t)1 << (fd & 63);
	if (on)
		__atomic_or_fetch(&shield.volfs.bits[fd >> 6], b, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(&shield.volfs.bits[fd >> 6], ~b, __ATOMIC_RELEASE);
}

static void ofd_free(struct volfs_ofd *o)
{
	struct volfs_mount *m = o->m;
	pthread_mutex_lock(&m->lock);
	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		m->open = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
	pthread_mutex_unlock(&m->lock);
	if (o->f != NULL) {
		shield_volfs_enter();
		arca_vfile_close(o->f);
		shield_volfs_leave();
	}
	arca_wipe(o->rel, strlen(o->rel)); /* a file name of an encrypted volume */
	free(o->rel);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

void shield_volfs_put(struct volfs_ofd *o)
{
	if (o == NULL)
		return;
	int saved = errno;
	if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0)
		ofd_free(o);
	errno = saved;
}

static void ofd_ref(struct volfs_ofd *o)
{
	__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

struct volfs_ofd *shield_volfs_get(int fd)
{
	struct volfs_ofd *o = NULL;
	if (shield_volfs_owns_fd(fd)) {
		pthread_mutex_lock(&shield.volfs.tab_lock);
		struct volfs_slot *s = slot_at(fd, 0);
		if (s != NULL && s->ofd != NULL) {
			o = s->ofd;
			ofd_ref(o);
		}
		pthread_mutex_unlock(&shield.volfs.tab_lock);
	}
	if (o == NULL)
		errno = EBADF;
	return o;
}

/* Puts o (whose reference the slot takes over) at fd. */
static int slot_install(int fd, struct volfs_ofd *o, int cloexec)
{
	if (fd < 0 || fd >= SHIELD_VOLFS_MAX_FD) {
		errno = EMFILE;
		return -1;
	}
	pthread_mutex_lock(&shield.volfs.tab_lock);
	struct volfs_slot *s = slot_at(fd, 1);
	if (s == NULL) {
		pthread_mutex_unlock(&shield.volfs.tab_lock);
		errno = ENOMEM;
		return -1;
	}
	struct volfs_ofd *old = s->ofd;
	s->ofd = o;
	s->cloexec = cloexec;
	bit_set(fd, 1);
	pthread_mutex_unlock(&shield.volfs.tab_lock);
	shield_volfs_put(old);
	return 0;
}

/* Takes fd's description out of the table (the caller holds its reference). */
static struct volfs_ofd *slot_remove(int fd)
{
	struct volfs_ofd *o = NULL;
	if (fd < 0 || fd >= SHIELD_VOLFS_MAX_FD)
		return NULL;
	pthread_mutex_lock(&shield.volfs.tab_lock);
	struct volfs_slot *s = slot_at(fd, 0);
	if (s != NULL) {
		o = s->ofd;
		s->ofd = NULL;
		s->cloexec = 0;
	}
	bit_set(fd, 0);
	pthread_mutex_unlock(&shield.volfs.tab_lock);
	return o;
}

void shield_volfs_forget_stale(int fd)
{
	if (shield_volfs_owns_fd(fd))
		shield_volfs_put(slot_remove(fd));
}

static int slot_cloexec(int fd, int set, int value)
{
	int v = -1;
	pthread_mutex_lock(&shield.volfs.tab_lock);
	struct volfs_slot *s = slot_at(fd, 0);
	if (s != NULL && s->ofd != NULL) {
		if (set)
			s->cloexec = value;
		v = s->cloexec;
	}
	pthread_mutex_unlock(&shield.volfs.tab_lock);
	if (v < 0)
		errno = EBADF;
	return v;
}

/* o's path in the volume, copied (renames change it). */
static void ofd_rel(struct volfs_ofd *o, char out[4096], int *unlinked)
{
	pthread_mutex_lock(&o->m->lock);
	size_t n = strlen(o->rel);
	if (n > 4095)
		n = 4095;
	memcpy(out, o->rel, n);
	out[n] = 0;
	if (unlinked != NULL)
		*unlinked = o->unlinked;
	pthread_mutex_unlock(&o->m->lock);
}

static int read_only(const struct volfs_mount *m)
{
	return m->readonly || !shield_volfs_writable();
}

static int fail_errno(int e)
{
	errno = e;
	return -1;
}

/* ---- open ---- */

/* The placeholder descriptor: the volume's directory, close-on-exec,
 * opened through the descriptor held since the mount (the path may lead
 * elsewhere by now). */
static int placeholder(struct volfs_mount *m)
{
	int dfd = shield_volfs_dirfd(m);
	if (dfd < 0)
		return -1;
	shield_resolve_real();
	shield_volfs_enter();
	int fd = shield.real.openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	shield_volfs_leave();
	return fd;
}

static int owner_may(const struct arca_vol_stat *vs, int acc)
{
	if (geteuid() == 0)
		return 1;
	if ((acc == O_RDONLY || acc == O_RDWR) && !(vs->mode & 0400))
		return 0;
	if ((acc == O_WRONLY || acc == O_RDWR) && !(vs->mode & 0200))
		return 0;
	return 1;
}

int shield_volfs_open(struct volfs_mount *m, const char *rel, int flags, mode_t mode)
{
	struct arca_vol_stat vs;
	struct arca_vfile *f = NULL;
	int acc = flags & O_ACCMODE;
	int path_only = (flags & O_PATH) != 0;

	if ((flags & O_TMPFILE) == O_TMPFILE)
		return fail_errno(EOPNOTSUPP);
	if (acc == O_ACCMODE && !path_only)
		return fail_errno(EINVAL);
	if (path_only)
		flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	if (acc == O_RDONLY)
		flags &= ~O_TRUNC; /* nothing to truncate through a read-only descriptor */
	int writes = !path_only && acc != O_RDONLY;

	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc == 0) {
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
			return fail_errno(EEXIST);
		if (vs.type == ARCA_VOL_DIR) {
			if (writes)
				return fail_errno(EISDIR);
		} else if (flags & O_DIRECTORY) {
			return fail_errno(ENOTDIR);
		}
		if (!path_only && !owner_may(&vs, acc))
			return fail_errno(EACCES);
	} else if (rc == ARCA_ENOTFOUND) {
		if (!(flags & O_CREAT) || path_only)
			return fail_errno(ENOENT);
		if (flags & O_DIRECTORY)
			return fail_errno(EINVAL);
		vs.type = ARCA_VOL_FILE;
	} else {
		errno = shield_volfs_errno(rc);
		return -1;
	}
	if ((writes || (rc != 0 && (flags & O_CREAT))) && read_only(m))
		return fail_errno(EROFS);

	if (vs.type == ARCA_VOL_FILE && !path_only) {
		mode_t u = __atomic_load_n(&shield.volfs.umask, __ATOMIC_RELAXED);
		rc = LIB(arca_vfile_open(m->vol, rel, acc | (flags & (O_CREAT | O_EXCL | O_TRUNC)),
					 (uint32_t)(mode & ~u & 07777), &f));
		if (rc < 0) {
			errno = shield_volfs_errno(rc);
			return -1;
		}
	}
	struct volfs_ofd *o = calloc(1, sizeof *o);
	char *r = strdup(rel);
	int fd = (o != NULL && r != NULL) ? placeholder(m) : -1;
	if (fd < 0) {
		int e = o == NULL || r == NULL ? ENOMEM : errno;
		free(o);
		free(r);
		if (f != NULL) {
			shield_volfs_enter();
			arca_vfile_close(f);
			shield_volfs_leave();
		}
		return fail_errno(e);
	}
	o->refs = 1;
	pthread_mutex_init(&o->lock, NULL);
	o->m = m;
	o->f = f;
	o->rel = r;
	o->flags = (path_only ? O_PATH : acc) | (flags & (O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC));
	pthread_mutex_lock(&m->lock);
	o->next = m->open;
	if (m->open != NULL)
		m->open->prev = o;
	m->open = o;
	pthread_mutex_unlock(&m->lock);
	if (slot_install(fd, o, (flags & O_CLOEXEC) != 0) != 0) {
		int e = errno;
		VREAL(close)(fd);
		shield_volfs_put(o);
		return fail_errno(e);
	}
	return fd;
}

/* ---- commit ---- */

int shield_volfs_commit(struct volfs_mount *m)
{
	struct arca_errbuf e = {{0}};
	if (m->readonly || !shield_volfs_writable() || getpid() != shield.volfs.owner)
		return 0;
	int rc = LIB(arca_vol_commit(m->vol, &e));
	if (rc < 0) {
		shield_volfs_log("volume %s at %s: commit failed, writes since the last fsync are not durable: %s",
				 m->name, m->path, e.msg[0] ? e.msg : arca_strerror(rc));
		errno = EIO;
		return -1;
	}
	return 0;
}

/* ---- read and write ---- */

static int check_io(struct volfs_ofd *o, int write)
{
	int acc = o->flags & O_ACCMODE;
	if (o->flags & O_PATH)
		return fail_errno(EBADF);
	if (o->f == NULL)
		return fail_errno(write ? EBADF : EISDIR);
	if (write ? acc == O_RDONLY : acc == O_WRONLY)
		return fail_errno(EBADF);
	if (write && read_only(o->m))
		return fail_errno(EROFS);
	return 0;
}

/* Reads or writes cnt buffers at off (-1: at the position, which moves). */
static ssize_t ofd_vec(struct volfs_ofd *o, const struct iovec *iov, int cnt, int64_t off, int write, int rwf)
{
	struct arca_vol_stat vs;
	if (check_io(o, write) != 0)
		return -1;
	if (cnt < 0 || cnt > IOV_MAX || off < -1)
		return fail_errno(EINVAL);
	if (rwf & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND))
		return fail_errno(EOPNOTSUPP);
	int use_pos = off == -1;
	int append = write && ((o->flags & O_APPEND) || (rwf & RWF_APPEND));
	ssize_t total = 0;
	int err = 0;

	pthread_mutex_lock(&o->lock);
	uint64_t at = use_pos ? o->pos : (uint64_t)off;
	if (append) {
		int rc = LIB(arca_vfile_stat(o->f, &vs));
		if (rc < 0)
			err = rc;
		else
			at = vs.size;
	}
	for (int i = 0; i < cnt && err == 0 && total < MAX_RW; i++) {
		size_t len = iov[i].iov_len;
		if (len == 0)
			continue;
		if (len > (size_t)(MAX_RW - total))
			len = (size_t)(MAX_RW - total);
		ssize_t r = write ? LIB(arca_vfile_pwrite(o->f, iov[i].iov_base, len, at))
				  : LIB(arca_vfile_pread(o->f, iov[i].iov_base, len, at));
		if (r < 0) {
			err = (int)r;
			break;
		}
		total += r;
		at += (uint64_t)r;
		if ((size_t)r < len)
			break;
	}
	if (use_pos)
		o->pos = at;
	pthread_mutex_unlock(&o->lock);
	if (total == 0 && err != 0) {
		errno = shield_volfs_errno(err);
		return -1;
	}
	if (write && total > 0 && ((o->flags & (O_SYNC | O_DSYNC)) || (rwf & (RWF_SYNC | RWF_DSYNC))) &&
	    shield_volfs_commit(o->m) != 0)
		return -1;
	return total;
}

static ssize_t vol_vec(int fd, const struct iovec *iov, int cnt, int64_t off, int write, int rwf)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	ssize_t r = ofd_vec(o, iov, cnt, off, write, rwf);
	shield_volfs_put(o);
	return r;
}

static ssize_t vol_io(int fd, const void *buf, size_t n, int64_t off, int write)
{
	struct iovec v = {(void *)buf, n};
	return vol_vec(fd, &v, 1, off, write, 0);
}

SHIELD_API ssize_t read(int fd, void *buf, size_t n)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(read)(fd, buf, n);
	return vol_io(fd, buf, n, -1, 0);
}

SHIELD_API ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	if (!shield_volfs_owns_fd(fd))
		return VREAL(read_chk)(fd, buf, n, buflen);
	return vol_io(fd, buf, n, -1, 0);
}

SHIELD_API ssize_t write(int fd, const void *buf, size_t n)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(write)(fd, buf, n);
	return vol_io(fd, buf, n, -1, 1);
}

#define PREAD(name, otype)                                                 \
	SHIELD_API ssize_t name(int fd, void *buf, size_t n, otype off)    \
	{                                                                  \
		if (!shield_volfs_owns_fd(fd))                             \
			return VREAL(pread)(fd, buf, n, off);              \
		if (off < 0)                                               \
			return fail_errno(EINVAL);                         \
		return vol_io(fd, buf, n, off, 0);                         \
	}
PREAD(pread, off_t)
PREAD(pread64, off64_t)

#define PREAD_CHK(name, otype)                                                      \
	SHIELD_API ssize_t name(int fd, void *buf, size_t n, otype off, size_t buflen) \
	{                                                                           \
		if (n > buflen)                                                     \
			__chk_fail();                                               \
		if (!shield_volfs_owns_fd(fd))                                      \
			return VREAL(pread_chk)(fd, buf, n, off, buflen);           \
		if (off < 0)                                                        \
			return fail_errno(EINVAL);                                  \
		return vol_io(fd, buf, n, off, 0);                                  \
	}
PREAD_CHK(__pread_chk, off_t)
PREAD_CHK(__pread64_chk, off64_t)

#define PWRITE(name, otype)                                                      \
	SHIELD_API ssize_t name(int fd, const void *buf, size_t n, otype off)    \
	{                                                                        \
		if (!shield_volfs_owns_fd(fd))                                   \
			return VREAL(pwrite)(fd, buf, n, off);                   \
		if (off < 0)                                                     \
			return fail_errno(EINVAL);                               \
		return vol_io(fd, buf, n, off, 1);                               \
	}
PWRITE(pwrite, off_t)
PWRITE(pwrite64, off64_t)

SHIELD_API ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(readv)(fd, iov, cnt);
	return vol_vec(fd, iov, cnt, -1, 0, 0);
}

SHIELD_API ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(writev)(fd, iov, cnt);
	return vol_vec(fd, iov, cnt, -1, 1, 0);
}

#define PVEC(name, otype, field, wr)                                                   \
	SHIELD_API ssize_t name(int fd, const struct iovec *iov, int cnt, otype off)   \
	{                                                                              \
		if (!shield_volfs_owns_fd(fd))                                         \
			return VREAL(field)(fd, iov, cnt, off);                        \
		if (off < 0)                                                           \
			return fail_errno(EINVAL);                                     \
		return vol_vec(fd, iov, cnt, off, wr, 0);                              \
	}
PVEC(preadv, off_t, preadv, 0)
PVEC(preadv64, off64_t, preadv, 0)
PVEC(pwritev, off_t, pwritev, 1)
PVEC(pwritev64, off64_t, pwritev, 1)

/* offset -1 means the position, as for the system call. */
#define PVEC2(name, otype, field, wr)                                                           \
	SHIELD_API ssize_t name(int fd, const struct iovec *iov, int cnt, otype off, int flags) \
	{                                                                                       \
		if (!shield_volfs_owns_fd(fd))                                                  \
			return VREAL(field)(fd, iov, cnt, off, flags);                          \
		if (off < -1)                                                                   \
			return fail_errno(EINVAL);                                              \
		return vol_vec(fd, iov, cnt, off, wr, flags);                                   \
	}
PVEC2(preadv2, off_t, preadv2, 0)
PVEC2(preadv64v2, off64_t, preadv2, 0)
PVEC2(pwritev2, off_t, pwritev2, 1)
PVEC2(pwritev64v2, off64_t, pwritev2, 1)

/* ---- position, attributes, size ---- */

static off_t vol_lseek(int fd, off_t off, int whence)
{
	struct arca_vol_stat vs;
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	off_t res = -1;
	int err = 0;
	if (o->flags & O_PATH) {
		err = EBADF;
		goto out;
	}
	pthread_mutex_lock(&o->lock);
	int64_t size = 0;
	if (o->f != NULL) {
		int rc = LIB(arca_vfile_stat(o->f, &vs));
		if (rc < 0) {
			err = shield_volfs_errno(rc);
			goto unlock;
		}
		size = (int64_t)vs.size;
	}
	int64_t base;
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = (int64_t)o->pos;
		break;
	case SEEK_END:
		base = size;
		break;
	case SEEK_DATA: /* the whole file is data */
	case SEEK_HOLE:
		if (o->f == NULL || off < 0) {
			err = EINVAL;
			goto unlock;
		}
		if (off >= size) {
			err = ENXIO;
			goto unlock;
		}
		res = whence == SEEK_DATA ? off : size;
		o->pos = (uint64_t)res;
		goto unlock;
	default:
		err = EINVAL;
		goto unlock;
	}
	if ((off > 0 && base > INT64_MAX - off) || base + off < 0) {
		err = off > 0 ? EOVERFLOW : EINVAL;
		goto unlock;
	}
	res = base + off;
	o->pos = (uint64_t)res;
unlock:
	pthread_mutex_unlock(&o->lock);
out:
	shield_volfs_put(o);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return res;
}

SHIELD_API off_t lseek(int fd, off_t off, int whence)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(lseek)(fd, off, whence);
	return vol_lseek(fd, off, whence);
}

SHIELD_API off64_t lseek64(int fd, off64_t off, int whence)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(lseek)(fd, off, whence);
	return vol_lseek(fd, off, whence);
}

static int ofd_vstat(struct volfs_ofd *o, struct arca_vol_stat *vs)
{
	char rel[4096];
	int rc;
	if (o->f != NULL) {
		rc = LIB(arca_vfile_stat(o->f, vs));
	} else {
		ofd_rel(o, rel, NULL);
		rc = LIB(arca_vol_stat(o->m->vol, rel, vs));
	}
	if (rc < 0) {
		errno = shield_volfs_errno(rc);
		return -1;
	}
	return 0;
}

/* fstat (st) or statx (stx) of a volume descriptor: one of them is set. */
static int fd_stat(int fd, struct stat *st, struct statx *stx)
{
	struct arca_vol_stat vs;
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc = ofd_vstat(o, &vs);
	/* An unlinked file still open has no name left: no link. */
	if (rc == 0 && st != NULL) {
		shield_volfs_fill_stat(o->m, &vs, st);
		if (o->unlinked)
			st->st_nlink = 0;
	}
	if (rc == 0 && stx != NULL) {
		shield_volfs_fill_statx(o->m, &vs, stx);
		if (o->unlinked)
			stx->stx_nlink = 0;
	}
	shield_volfs_put(o);
	return rc;
}

int shield_volfs_fd_stat(int fd, struct stat *st)
{
	return fd_stat(fd, st, NULL);
}

int shield_volfs_fd_statx(int fd, struct statx *stx)
{
	return fd_stat(fd, NULL, stx);
}

SHIELD_API int fstat(int fd, struct stat *st)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fstat)(fd, st);
	return shield_volfs_fd_stat(fd, st);
}

SHIELD_API int fstat64(int fd, struct stat64 *st)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fstat)(fd, (struct stat *)st);
	return shield_volfs_fd_stat(fd, (struct stat *)st);
}

SHIELD_API int __fxstat(int ver, int fd, struct stat *st)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fxstat) != NULL ? shield.volfs.real.fxstat(ver, fd, st) : fail_errno(ENOSYS);
	return shield_volfs_fd_stat(fd, st);
}

SHIELD_API int __fxstat64(int ver, int fd, struct stat64 *st)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fxstat64) != NULL ? shield.volfs.real.fxstat64(ver, fd, st) : fail_errno(ENOSYS);
	return shield_volfs_fd_stat(fd, (struct stat *)st);
}

static int vol_ftruncate(int fd, off_t len)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc = 0;
	if (o->flags & O_PATH)
		rc = fail_errno(EBADF);
	else if (o->f == NULL || (o->flags & O_ACCMODE) == O_RDONLY || len < 0)
		rc = fail_errno(EINVAL);
	else if (read_only(o->m))
		rc = fail_errno(EROFS);
	else {
		int r = LIB(arca_vfile_truncate(o->f, (uint64_t)len));
		if (r < 0)
			rc = fail_errno(shield_volfs_errno(r));
	}
	shield_volfs_put(o);
	return rc;
}

SHIELD_API int ftruncate(int fd, off_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(ftruncate)(fd, len);
	return vol_ftruncate(fd, len);
}

SHIELD_API int ftruncate64(int fd, off64_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(ftruncate)(fd, len);
	return vol_ftruncate(fd, len);
}

/* ---- durability ---- */

static int vol_sync(int fd)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc = (o->flags & O_PATH) ? fail_errno(EBADF) : shield_volfs_commit(o->m);
	shield_volfs_put(o);
	return rc;
}

SHIELD_API int fsync(int fd)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fsync)(fd);
	return vol_sync(fd);
}

SHIELD_API int fdatasync(int fd)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fdatasync)(fd);
	return vol_sync(fd);
}

SHIELD_API int syncfs(int fd)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(syncfs)(fd);
	return vol_sync(fd);
}

SHIELD_API void sync(void)
{
	size_t n = __atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < n; i++)
		(void)shield_volfs_commit(&shield.volfs.mounts[i]);
	VREAL(sync)();
}

/* ---- closing and duplicating ---- */

SHIELD_API int close(int fd)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(close)(fd);
	struct volfs_ofd *o = slot_remove(fd);
	int rc = VREAL(close)(fd);
	shield_volfs_put(o);
	return rc;
}

/* Forgets (or marks close-on-exec) the volume descriptors in [lo, hi]. */
static void table_range(unsigned lo, unsigned hi, int cloexec_only)
{
	if (lo >= SHIELD_VOLFS_MAX_FD)
		return;
	if (hi >= SHIELD_VOLFS_MAX_FD)
		hi = SHIELD_VOLFS_MAX_FD - 1;
	for (unsigned w = lo >> 6; w <= hi >> 6; w++) {
		uint64_t bits = __atomic_load_n(&shield.volfs.bits[w], __ATOMIC_ACQUIRE);
		while (bits != 0) {
			unsigned fd = w * 64 + (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (fd < lo || fd > hi)
				continue;
			if (cloexec_only)
				(void)slot_cloexec((int)fd, 1, 1);
			else
				shield_volfs_put(slot_remove((int)fd));
		}
	}
}

SHIELD_API int close_range(unsigned lo, unsigned hi, int flags)
{
	if (lo > hi)
		return fail_errno(EINVAL);
	if (VREAL(close_range) == NULL)
		return fail_errno(ENOSYS);
	table_range(lo, hi, (flags & CLOSE_RANGE_CLOEXEC) != 0);
	return shield.volfs.real.close_range(lo, hi, flags);
}

SHIELD_API void closefrom(int lo)
{
	if (lo >= 0)
		table_range((unsigned)lo, ~0u, 0);
	if (VREAL(closefrom) != NULL)
		shield.volfs.real.closefrom(lo);
}

/* A new descriptor >= min for volume descriptor fd. */
static int vol_dup_from(int fd, int min, int cloexec)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int nfd = VREAL(fcntl)(fd, F_DUPFD_CLOEXEC, min);
	if (nfd < 0) {
		shield_volfs_put(o);
		return -1;
	}
	if (slot_install(nfd, o, cloexec) != 0) {
		int e = errno;
		VREAL(close)(nfd);
		shield_volfs_put(o);
		return fail_errno(e);
	}
	return nfd;
}

static int fresh(int fd)
{
	if (fd >= 0)
		shield_volfs_forget_stale(fd);
	return fd;
}

SHIELD_API int dup(int fd)
{
	if (!shield_volfs_owns_fd(fd))
		return fresh(VREAL(dup)(fd));
	return vol_dup_from(fd, 0, 0);
}

/* dup2/dup3 onto nfd, for old and new in or out of volumes. */
static int dup_onto(int fd, int nfd, int flags, int is_dup3)
{
	if (is_dup3 && fd == nfd)
		return fail_errno(EINVAL);
	if (is_dup3 && (flags & ~O_CLOEXEC))
		return fail_errno(EINVAL);
	if (!shield_volfs_owns_fd(fd)) {
		if (!shield_volfs_owns_fd(nfd))
			return fresh(is_dup3 ? VREAL(dup3)(fd, nfd, flags) : VREAL(dup2)(fd, nfd));
		if (fd == nfd) /* dup2 of a descriptor onto itself: whether it is open */
			return VREAL(dup2)(fd, nfd);
		struct volfs_ofd *old = slot_remove(nfd);
		int r = is_dup3 ? VREAL(dup3)(fd, nfd, flags) : VREAL(dup2)(fd, nfd);
		if (r < 0 && old != NULL) {
			int e = errno;
			if (slot_install(nfd, old, 0) != 0)
				shield_volfs_put(old);
			errno = e;
			return -1;
		}
		shield_volfs_put(old);
		return r;
	}
	if (fd == nfd)
		return nfd;
	if (nfd < 0 || nfd >= SHIELD_VOLFS_MAX_FD)
		return fail_errno(EBADF);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	struct volfs_ofd *old = slot_remove(nfd);
	int r = VREAL(dup3)(fd, nfd, O_CLOEXEC);
	if (r < 0) {
		int e = errno;
		if (old != NULL && slot_install(nfd, old, 0) != 0)
			shield_volfs_put(old);
		shield_volfs_put(o);
		return fail_errno(e);
	}
	shield_volfs_put(old);
	if (slot_install(nfd, o, (flags & O_CLOEXEC) != 0) != 0) {
		int e = errno;
		VREAL(close)(nfd);
		shield_volfs_put(o);
		return fail_errno(e);
	}
	return nfd;
}

SHIELD_API int dup2(int fd, int nfd)
{
	return dup_onto(fd, nfd, 0, 0);
}

SHIELD_API int dup3(int fd, int nfd, int flags)
{
	return dup_onto(fd, nfd, flags, 1);
}

/* ---- fcntl, locks, hints ---- */

static int lock_ok(struct volfs_ofd *o, const struct flock *l)
{
	if (l == NULL)
		return fail_errno(EFAULT);
	int acc = o->flags & O_ACCMODE;
	switch (l->l_type) {
	case F_RDLCK:
		return (o->flags & O_PATH) || acc == O_WRONLY ? fail_errno(EBADF) : 0;
	case F_WRLCK:
		return (o->flags & O_PATH) || acc == O_RDONLY ? fail_errno(EBADF) : 0;
	case F_UNLCK:
		return 0;
	default:
		return fail_errno(EINVAL);
	}
}

static int vol_fcntl(int fd, int cmd, void *arg)
{
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		long min = (long)arg;
		if (min < 0 || min >= SHIELD_VOLFS_MAX_FD)
			return fail_errno(EINVAL);
		return vol_dup_from(fd, (int)min, cmd == F_DUPFD_CLOEXEC);
	}
	if (cmd == F_GETFD) {
		int v = slot_cloexec(fd, 0, 0);
		return v < 0 ? -1 : (v ? FD_CLOEXEC : 0);
	}
	if (cmd == F_SETFD)
		return slot_cloexec(fd, 1, ((long)arg & FD_CLOEXEC) != 0) < 0 ? -1 : 0;
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc;
	switch (cmd) {
	case F_GETFL:
		pthread_mutex_lock(&o->lock);
		rc = o->flags | O_LARGEFILE;
		pthread_mutex_unlock(&o->lock);
		break;
	case F_SETFL:
		pthread_mutex_lock(&o->lock);
		o->flags = (o->flags & ~(O_APPEND | O_NONBLOCK)) | ((int)(long)arg & (O_APPEND | O_NONBLOCK));
		pthread_mutex_unlock(&o->lock);
		rc = 0;
		break;
	case F_GETLK:
	case F_OFD_GETLK:
		/* The process owns the volume: nobody else holds a lock. */
		rc = lock_ok(o, arg);
		if (rc == 0)
			((struct flock *)arg)->l_type = F_UNLCK;
		break;
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		rc = lock_ok(o, arg);
		break;
	case F_GETLEASE:
		rc = F_UNLCK;
		break;
	case F_GETOWN:
	case F_SETOWN:
	case F_GETOWN_EX:
	case F_SETOWN_EX:
	case F_GETSIG:
	case F_SETSIG:
		rc = VREAL(fcntl)(fd, cmd, arg);
		break;
	default:
		rc = fail_errno(EINVAL);
		break;
	}
	shield_volfs_put(o);
	return rc;
}

#define FCNTL(name, field)                                                         \
	SHIELD_API int name(int fd, int cmd, ...)                                  \
	{                                                                          \
		va_list ap;                                                        \
		va_start(ap, cmd);                                                 \
		void *arg = va_arg(ap, void *);                                    \
		va_end(ap);                                                        \
		if (!shield_volfs_owns_fd(fd)) {                                   \
			int r_ = VREAL(field)(fd, cmd, arg);                       \
			if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)              \
				fresh(r_);                                         \
			return r_;                                                 \
		}                                                                  \
		return vol_fcntl(fd, cmd, arg);                                    \
	}
FCNTL(fcntl, fcntl)
FCNTL(fcntl64, fcntl64)

SHIELD_API int flock(int fd, int op)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(flock)(fd, op);
	int kind = op & ~LOCK_NB;
	if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN)
		return fail_errno(EINVAL);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	shield_volfs_put(o);
	return 0;
}

static int vol_lockf(int fd, int cmd)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc = 0;
	if ((cmd == F_LOCK || cmd == F_TLOCK) && ((o->flags & O_PATH) || (o->flags & O_ACCMODE) == O_RDONLY))
		rc = fail_errno(EBADF);
	else if (cmd != F_LOCK && cmd != F_TLOCK && cmd != F_ULOCK && cmd != F_TEST)
		rc = fail_errno(EINVAL);
	shield_volfs_put(o);
	return rc;
}

SHIELD_API int lockf(int fd, int cmd, off_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(lockf)(fd, cmd, len);
	return vol_lockf(fd, cmd);
}

SHIELD_API int lockf64(int fd, int cmd, off64_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(lockf)(fd, cmd, len);
	return vol_lockf(fd, cmd);
}

/* posix_fadvise answers an error number, not -1. */
static int vol_fadvise(int fd, off_t off, off_t len, int advice)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return EBADF;
	shield_volfs_put(o);
	if (len < 0 || advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE)
		return EINVAL;
	return 0;
}

SHIELD_API int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(posix_fadvise)(fd, off, len, advice);
	return vol_fadvise(fd, off, len, advice);
}

SHIELD_API int posix_fadvise64(int fd, off64_t off, off64_t len, int advice)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(posix_fadvise)(fd, off, len, advice);
	return vol_fadvise(fd, off, len, advice);
}

/* Mode 0 (and KEEP_SIZE, which keeps nothing to allocate) only. Returns
 * 0 or an errno value. */
static int vol_fallocate(int fd, int mode, off_t off, off_t len)
{
	struct arca_vol_stat vs;
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return EBADF;
	int err = 0;
	if (o->flags & O_PATH)
		err = EBADF;
	else if (o->f == NULL)
		err = ENODEV;
	else if ((o->flags & O_ACCMODE) == O_RDONLY)
		err = EBADF;
	else if (off < 0 || len <= 0 || off > INT64_MAX - len)
		err = off > INT64_MAX - len ? EFBIG : EINVAL;
	else if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE)
		err = EOPNOTSUPP;
	else if (read_only(o->m))
		err = EROFS;
	else if (mode == 0) {
		pthread_mutex_lock(&o->lock);
		int rc = LIB(arca_vfile_stat(o->f, &vs));
		if (rc == 0 && (uint64_t)(off + len) > vs.size)
			rc = LIB(arca_vfile_truncate(o->f, (uint64_t)(off + len)));
		pthread_mutex_unlock(&o->lock);
		if (rc < 0)
			err = shield_volfs_errno(rc);
	}
	shield_volfs_put(o);
	return err;
}

SHIELD_API int fallocate(int fd, int mode, off_t off, off_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fallocate)(fd, mode, off, len);
	int e = vol_fallocate(fd, mode, off, len);
	return e ? fail_errno(e) : 0;
}

SHIELD_API int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fallocate)(fd, mode, off, len);
	int e = vol_fallocate(fd, mode, off, len);
	return e ? fail_errno(e) : 0;
}

SHIELD_API int posix_fallocate(int fd, off_t off, off_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(posix_fallocate)(fd, off, len);
	return vol_fallocate(fd, 0, off, len);
}

SHIELD_API int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(posix_fallocate)(fd, off, len);
	return vol_fallocate(fd, 0, off, len);
}

SHIELD_API int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!shield_volfs_owns_fd(fd)) {
		/* A clone from a volume file would share its stored records. */
		if (req == FICLONE && shield_volfs_owns_fd((int)(long)arg))
			return fail_errno(EXDEV);
		if (req == FICLONERANGE && arg != NULL &&
		    shield_volfs_owns_fd((int)((struct file_clone_range *)arg)->src_fd))
			return fail_errno(EXDEV);
		return VREAL(ioctl)(fd, req, arg);
	}
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc;
	struct arca_vol_stat vs;
	switch (req) {
	case FIOCLEX:
	case FIONCLEX:
		rc = slot_cloexec(fd, 1, req == FIOCLEX) < 0 ? -1 : 0;
		break;
	case FIONREAD:
		if (o->f == NULL) {
			rc = fail_errno(ENOTTY);
		} else if (ofd_vstat(o, &vs) != 0) {
			rc = -1;
		} else {
			pthread_mutex_lock(&o->lock);
			uint64_t left = vs.size > o->pos ? vs.size - o->pos : 0;
			pthread_mutex_unlock(&o->lock);
			*(int *)arg = left > INT_MAX ? INT_MAX : (int)left;
			rc = 0;
		}
		break;
	case FICLONE:
	case FICLONERANGE:
	case FIDEDUPERANGE:
		rc = fail_errno(EXDEV);
		break;
	default:
		rc = fail_errno(ENOTTY);
		break;
	}
	shield_volfs_put(o);
	return rc;
}

SHIELD_API ssize_t copy_file_range(int in, off64_t *inoff, int out, off64_t *outoff, size_t n, unsigned flags)
{
	if (shield_volfs_owns_fd(in) || shield_volfs_owns_fd(out))
		return fail_errno(EXDEV); /* callers fall back to read and write */
	return VREAL(copy_file_range)(in, inoff, out, outoff, n, flags);
}

SHIELD_API ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	if (shield_volfs_owns_fd(in) || shield_volfs_owns_fd(out))
		return fail_errno(EINVAL);
	return VREAL(sendfile)(out, in, off, n);
}

SHIELD_API ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	if (shield_volfs_owns_fd(in) || shield_volfs_owns_fd(out))
		return fail_errno(EINVAL);
	return VREAL(sendfile)(out, in, off, n);
}

SHIELD_API ssize_t splice(int in, off64_t *inoff, int out, off64_t *outoff, size_t n, unsigned flags)
{
	if (shield_volfs_owns_fd(in) || shield_volfs_owns_fd(out))
		return fail_errno(EINVAL);
	return VREAL(splice)(in, inoff, out, outoff, n, flags);
}

/* ---- attributes through a descriptor ---- */

SHIELD_API int fchmod(int fd, mode_t mode)
{
	char rel[4096];
	int unlinked;
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fchmod)(fd, mode);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	ofd_rel(o, rel, &unlinked);
	int rc;
	if (o->flags & O_PATH)
		rc = fail_errno(EBADF);
	else if (read_only(o->m))
		rc = fail_errno(EROFS);
	else
		rc = unlinked ? 0 : shield_volfs_chmod(o->m, rel, mode);
	shield_volfs_put(o);
	return rc;
}

SHIELD_API int fchown(int fd, uid_t uid, gid_t gid)
{
	char rel[4096];
	int unlinked;
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fchown)(fd, uid, gid);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	ofd_rel(o, rel, &unlinked);
	int rc;
	if ((uid != (uid_t)-1 && uid != geteuid()) || (gid != (gid_t)-1 && gid != getegid()))
		rc = fail_errno(EPERM);
	else if (read_only(o->m))
		rc = fail_errno(EROFS);
	else
		rc = unlinked ? 0 : shield_volfs_chown(o->m, rel, uid, gid);
	shield_volfs_put(o);
	return rc;
}

static int vol_futime(int fd, const struct timespec ts[2])
{
	char rel[4096];
	int unlinked;
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	ofd_rel(o, rel, &unlinked);
	int rc = unlinked ? (read_only(o->m) ? fail_errno(EROFS) : 0) : shield_volfs_utime(o->m, rel, ts);
	shield_volfs_put(o);
	return rc;
}

SHIELD_API int futimens(int fd, const struct timespec ts[2])
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(futimens)(fd, ts);
	return vol_futime(fd, ts);
}

SHIELD_API int futimes(int fd, const struct timeval tv[2])
{
	struct timespec ts[2];
	if (!shield_volfs_owns_fd(fd))
		return VREAL(futimes)(fd, tv);
	if (tv == NULL)
		return vol_futime(fd, NULL);
	for (int i = 0; i < 2; i++) {
		if (tv[i].tv_usec < 0 || tv[i].tv_usec >= 1000000)
			return fail_errno(EINVAL);
		ts[i].tv_sec = tv[i].tv_sec;
		ts[i].tv_nsec = tv[i].tv_usec * 1000;
	}
	return vol_futime(fd, ts);
}

SHIELD_API int fchdir(int fd)
{
	char rel[4096];
	if (!shield_volfs_owns_fd(fd))
		return shield_volfs_fchdir_libc(fd);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	ofd_rel(o, rel, NULL);
	int rc;
	if (o->f != NULL)
		rc = fail_errno(ENOTDIR);
	else if (rel[0] != 0)
		rc = fail_errno(EOPNOTSUPP); /* a directory inside a volume: see shield_volfs_chdir */
	else
		rc = shield_volfs_chdir(o->m, "");
	shield_volfs_put(o);
	return rc;
}

/* Extended attributes, and so POSIX ACLs, are not kept in volumes: none
 * to read or list, and setting one is ENOTSUP, which makes gnulib's
 * copy_acl (sed -i, cp -p) fall back to fchmod. Passed to libc they would
 * act on the placeholder, i.e. on the volume's directory itself (an ACL
 * made from a file's mode would take its search bits away). */
static int vol_xattr_fd(int fd, int err)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return -1;
	int rc = (o->flags & O_PATH) ? fail_errno(EBADF) : (err ? fail_errno(err) : 0);
	shield_volfs_put(o);
	return rc;
}

SHIELD_API ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fgetxattr)(fd, name, value, size);
	return vol_xattr_fd(fd, ENODATA);
}

SHIELD_API int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fsetxattr)(fd, name, value, size, flags);
	return vol_xattr_fd(fd, ENOTSUP);
}

SHIELD_API ssize_t flistxattr(int fd, char *list, size_t size)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(flistxattr)(fd, list, size);
	return vol_xattr_fd(fd, 0);
}

SHIELD_API int fremovexattr(int fd, const char *name)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fremovexattr)(fd, name);
	return vol_xattr_fd(fd, ENODATA);
}

SHIELD_API mode_t umask(mode_t mask)
{
	mode_t old = VREAL(umask)(mask);
	__atomic_store_n(&shield.volfs.umask, mask & 0777, __ATOMIC_RELAXED);
	return old;
}

/* ---- mmap (vm.c calls this first for a volume descriptor) ---- */

void *shield_volfs_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	char rel[4096];
	struct arca_vol_stat vs;
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return MAP_FAILED;
	void *p = MAP_FAILED;
	int err = 0, type = flags & MAP_TYPE;
	int shared = type == MAP_SHARED || type == MAP_SHARED_VALIDATE;
	ofd_rel(o, rel, NULL);
	if (o->flags & O_PATH) {
		err = EBADF;
	} else if (o->f == NULL) {
		err = ENODEV;
	} else if ((o->flags & O_ACCMODE) == O_WRONLY) {
		err = EACCES;
	} else if (shared && (prot & PROT_WRITE)) {
		shield_volfs_log("%s%s%s: a shared writable mapping of a protected file is refused", o->m->path,
				 rel[0] ? "/" : "", rel);
		err = EACCES;
	} else if (shared && !o->m->readonly) {
		/* A copy would not see the program's later writes to the
		 * file, so only files that cannot change are served shared. */
		shield_volfs_log("%s%s%s: a shared mapping of a file in a writable protected volume is refused "
				 "(it would not see later writes); read the file instead",
				 o->m->path, rel[0] ? "/" : "", rel);
		err = ENODEV;
	} else if (len == 0 || off < 0 || (off & (off_t)(sysconf(_SC_PAGESIZE) - 1)) != 0) {
		err = EINVAL;
	} else if (type != MAP_PRIVATE && !shared) {
		err = EINVAL;
	} else if (ofd_vstat(o, &vs) != 0) {
		err = errno;
	}
	if (err != 0)
		goto out;
	/* Anonymous memory through the shield's own mmap: secret memory. */
	p = mmap(addr, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)), -1, 0);
	if (p == MAP_FAILED) {
		err = errno;
		goto out;
	}
	uint64_t want = (uint64_t)off < vs.size ? vs.size - (uint64_t)off : 0;
	if (want > len)
		want = len;
	for (uint64_t done = 0; done < want;) {
		size_t chunk = want - done > (uint64_t)MAX_RW ? (size_t)MAX_RW : (size_t)(want - done);
		ssize_t r = LIB(arca_vfile_pread(o->f, (char *)p + done, chunk, (uint64_t)off + done));
		if (r <= 0) {
			err = r < 0 ? shield_volfs_errno((int)r) : EIO;
			break;
		}
		done += (uint64_t)r;
	}
	if (err == 0 && prot != (PROT_READ | PROT_WRITE) && mprotect(p, len, prot) != 0)
		err = errno;
	if (err != 0) {
		munmap(p, len);
		p = MAP_FAILED;
	}
out:
	shield_volfs_put(o);
	if (err != 0)
		errno = err;
	return p;
}
