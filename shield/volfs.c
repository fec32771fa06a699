/* volfs.c: protected volumes as the program sees them: which volume a path
 * names, and the operations on paths in a volume (stat, access, unlink,
 * rename, mkdir, …) over the volume library (include/arca/volume.h); the
 * working directory when it is a volume's root; the backstop that keeps
 * libc from writing into a volume's directory on disk.
 *
 * A volume is the directory at its configured path: the program sees the
 * volume's files under that path, never the records stored there. Paths
 * are matched lexically (made absolute against the working directory, or
 * the directory a descriptor names, with "." and ".." folded) because
 * the volume's names exist nowhere on disk; a symbolic link on the host
 * that leads into a volume's directory is therefore not followed into the
 * volume, and a write through it is refused (the backstop). The directory
 * itself is held by a descriptor from the mount on, so that what root
 * does to the path later moves nothing the shield uses. The descriptor
 * table is volfs_fd.c, streams volfs_stdio.c, directory streams
 * volfs_dir.c, start-up and CAS volfs_mount.c.
 *
 * Kept apart from the interposers (files.c, volfs_fd.c) so that the
 * compiler cannot assume the nonnull promises of libc's prototypes about
 * a path: a NULL path must reach libc (EFAULT), not crash here. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "shield.h"
#include "arca/crypto.h"
#include "arca/volume.h"

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat and stat64 must share a layout");

#define MAX_MOUNTS 64
/* Minor numbers of the st_dev volume files show: an unnamed device
 * (major 0) far above what the kernel hands out. */
#define DEV_MINOR_BASE 0xa5ca0

/* Inside the shield's own volume code (the library opening the slot files
 * in a volume's directory) every interposer goes to libc. */
static __thread int inside __attribute__((tls_model("initial-exec")));

void shield_volfs_enter(void)
{
	inside++;
}

void shield_volfs_leave(void)
{
	inside--;
}

int shield_volfs_inside(void)
{
	return inside;
}

#define LIB(expr)                                        \
	({                                               \
		shield_volfs_enter();                    \
		__auto_type lib_rc_ = (expr);            \
		shield_volfs_leave();                    \
		lib_rc_;                                 \
	})

int shield_volfs_errno(int code)
{
	switch (code) {
	case ARCA_ECRYPTO:
	case ARCA_EPARSE:
	case ARCA_EIO:
	case ARCA_ESTALE:
		return EIO;
	case ARCA_ETOOBIG:
		return EFBIG;
	default:
		return arca_err_errno(code);
	}
}

static int fail(int code)
{
	errno = shield_volfs_errno(code);
	return -1;
}

static int fail_errno(int e)
{
	errno = e;
	return -1;
}

void shield_volfs_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	memcpy(line, "arca: ", 6);
	va_start(ap, fmt);
	int n = vsnprintf(line + 6, sizeof line - 7, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = 6 + ((size_t)n < sizeof line - 7 ? (size_t)n : sizeof line - 8);
	for (size_t i = 6; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	int saved = errno;
	size_t off = 0;
	while (off < len) {
		ssize_t w = VREAL(write)(2, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	errno = saved;
}

/* ---- mounts ---- */

/* fork: the table's locks are taken around it, so that the child never
 * starts with one held by a thread it does not have; in the child the
 * volumes become read-only. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&shield.volfs.cwd_lock);
	pthread_mutex_lock(&shield.volfs.tab_lock);
	pthread_mutex_lock(&shield.volfs.streams_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&shield.volfs.streams_lock);
	pthread_mutex_unlock(&shield.volfs.tab_lock);
	pthread_mutex_unlock(&shield.volfs.cwd_lock);
}

static void fork_child(void)
{
	pthread_mutex_init(&shield.volfs.streams_lock, NULL);
	pthread_mutex_init(&shield.volfs.tab_lock, NULL);
	pthread_mutex_init(&shield.volfs.cwd_lock, NULL);
	__atomic_store_n(&shield.volfs.forked, 1, __ATOMIC_RELEASE);
	/* The library's own read-only mode for the child: it keeps the
	 * parent's uncommitted blocks (the records on disk are still the
	 * last commit's) and never writes or collects a file the parent
	 * owns. Code volumes are read-only already. */
	size_t n = __atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < n; i++)
		if (!shield.volfs.mounts[i].readonly)
			arca_vol_fork_child(shield.volfs.mounts[i].vol);
}

/* Opens the directory at path (absolute, normalised) O_PATH, one
 * component at a time without following a symbolic link, so that what is
 * held is the directory the path names on disk and not where a link
 * points. -1 with errno; ELOOP with the prefix that is a link in lnk. */
static int open_nofollow(const char *path, char *lnk, size_t cap)
{
	char comp[NAME_MAX + 1];
	struct stat st;
	shield_resolve_real();
	int fd = shield.real.open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (const char *c = path; fd >= 0 && *c != 0;) {
		while (*c == '/')
			c++;
		if (*c == 0)
			break;
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);
		int err = ENAMETOOLONG, nfd = -1;
		if (n <= NAME_MAX) {
			memcpy(comp, c, n);
			comp[n] = 0;
			nfd = shield.real.openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			err = errno;
			if (nfd < 0 && shield.real.fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode)) {
				snprintf(lnk, cap, "%.*s", (int)(end - path), path);
				err = ELOOP;
			}
		}
		VREAL(close)(fd);
		if (nfd < 0)
			return fail_errno(err);
		fd = nfd;
		c = end;
	}
	return fd;
}

struct volfs_mount *shield_volfs_add(const char *path, const char *name, struct arca_vol *vol,
				     struct arca_errbuf *e)
{
	struct shield_volfs *V = &shield.volfs;
	size_t n = V->nmounts;
	size_t len = strlen(path);

	if (path[0] != '/' || len < 2 || path[len - 1] == '/') {
		arca_errf(e, ARCA_EINVAL, "volume %s: its path '%s' is not an absolute directory other than /", name,
			  path);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct volfs_mount *o = &V->mounts[i];
		size_t k = len < o->len ? len : o->len;
		if (strncmp(path, o->path, k) == 0 && (path[k] == 0 || path[k] == '/') &&
		    (o->path[k] == 0 || o->path[k] == '/')) {
			arca_errf(e, ARCA_EINVAL, "volumes %s (%s) and %s (%s) overlap; give each its own directory",
				  o->name, o->path, name, path);
			return NULL;
		}
	}
	if (n >= MAX_MOUNTS) {
		arca_errf(e, ARCA_ENOMEM, "a service may mount at most %d volumes", MAX_MOUNTS);
		return NULL;
	}
	if (V->mounts == NULL) {
		/* Pointers into the array are kept: it never moves. */
		V->mounts = calloc(MAX_MOUNTS, sizeof *V->mounts);
		if (V->mounts == NULL) {
			arca_errf(e, ARCA_ENOMEM, "out of memory");
			return NULL;
		}
		mode_t u = VREAL(umask)(022);
		VREAL(umask)(u);
		V->umask = u;
		V->owner = getpid();
		if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
			arca_errf(e, ARCA_ENOMEM, "cannot register the fork handler of the volumes");
			return NULL;
		}
	}
	/* The directory is held from here on: root may rename it, or put
	 * another at the path, while the program runs. */
	char lnk[PATH_MAX] = "";
	struct stat st, dst;
	int dfd = len < PATH_MAX ? open_nofollow(path, lnk, sizeof lnk) : fail_errno(ENAMETOOLONG);
	if (dfd < 0) {
		if (errno == ELOOP && lnk[0] != 0)
			arca_errf(e, ARCA_EINVAL,
				  "volume %s at %s: %s is a symbolic link; a volume's path may hold none (configure "
				  "the directory's real path)",
				  name, path, lnk);
		else
			arca_errf(e, ARCA_EIO, "volume %s at %s: cannot open its directory: %s", name, path,
				  strerror(errno));
		return NULL;
	}
	if (VREAL(fstat)(dfd, &st) != 0) {
		arca_errf(e, ARCA_EIO, "volume %s at %s: cannot stat its directory: %s", name, path, strerror(errno));
		VREAL(close)(dfd);
		return NULL;
	}
	struct volfs_mount *m = &V->mounts[n];
	memset(m, 0, sizeof *m);
	m->path = strdup(path);
	m->name = strdup(name);
	if (m->path == NULL || m->name == NULL) {
		free(m->path);
		free(m->name);
		VREAL(close)(dfd);
		arca_errf(e, ARCA_ENOMEM, "out of memory");
		return NULL;
	}
	m->dirfd = dfd;
	m->host_dev = st.st_dev;
	m->host_ino = st.st_ino;
	if (shield.real.fstatat(dfd, "d", &dst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(dst.st_mode)) {
		m->has_d = 1;
		m->d_dev = dst.st_dev;
		m->d_ino = dst.st_ino;
	}
	m->len = len;
	m->vol = vol;
	m->readonly = arca_vol_readonly(vol);
	m->dev = makedev(0, DEV_MINOR_BASE + (unsigned)n);
	pthread_mutex_init(&m->lock, NULL);
	__atomic_store_n(&V->nmounts, n + 1, __ATOMIC_RELEASE);
	return m;
}

int shield_volfs_writable(void)
{
	return !__atomic_load_n(&shield.volfs.forked, __ATOMIC_ACQUIRE);
}

/* ---- paths ---- */

/* The absolute path a volume descriptor names, into out. */
static int volfd_base(int fd, char *out, size_t cap, size_t *len, int *err)
{
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL) {
		*err = EBADF;
		return -1;
	}
	int rc = 0;
	if (o->f != NULL) {
		*err = ENOTDIR;
		rc = -1;
	} else {
		pthread_mutex_lock(&o->m->lock);
		size_t ml = o->m->len, rl = strlen(o->rel);
		if (ml + 1 + rl + 1 > cap) {
			*err = ENAMETOOLONG;
			rc = -1;
		} else {
			memcpy(out, o->m->path, ml);
			*len = ml;
			if (rl > 0) {
				out[(*len)++] = '/';
				memcpy(out + *len, o->rel, rl);
				*len += rl;
			}
			out[*len] = 0;
		}
		pthread_mutex_unlock(&o->m->lock);
	}
	shield_volfs_put(o);
	return rc;
}

void shield_route(int dirfd, const char *path, int empty_ok, struct shield_route *r)
{
	char norm[PATH_MAX];
	size_t len = 0;

	r->kind = SHIELD_ROUTE_LIBC;
	if (path == NULL || inside)
		return;
	size_t nm = __atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE);
	size_t nf = __atomic_load_n(&shield.nfiles, __ATOMIC_ACQUIRE);
	if (nm == 0 && nf == 0)
		return;
	int saved = errno;
	if (path[0] == 0) {
		if (empty_ok && shield_volfs_owns_fd(dirfd)) {
			r->kind = SHIELD_ROUTE_VOLFD;
			r->fd = dirfd;
		}
		goto out;
	}
	if (path[0] != '/') {
		if (dirfd != AT_FDCWD && shield_volfs_owns_fd(dirfd)) {
			int err = 0;
			if (volfd_base(dirfd, norm, sizeof norm, &len, &err) != 0) {
				r->kind = SHIELD_ROUTE_ERROR;
				r->err = err;
				goto out;
			}
		} else {
			char base[PATH_MAX];
			if (dirfd == AT_FDCWD) {
				/* A volume's root as the working directory is the
				 * volume's path, whatever the kernel's directory is
				 * called by now (root may have renamed it). */
				struct volfs_mount *cm = shield_volfs_cwd();
				if (cm != NULL)
					memcpy(base, cm->path, cm->len + 1);
				else if (VREAL(getcwd)(base, sizeof base) == NULL)
					goto out;
			} else {
				char link[48];
				snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
				ssize_t n = readlink(link, base, sizeof base - 1);
				if (n <= 0)
					goto out;
				base[n] = 0;
			}
			if (base[0] != '/' || shield_path_fold(norm, sizeof norm, &len, base) != 0)
				goto out;
		}
	}
	if (shield_path_fold(norm, sizeof norm, &len, path) != 0)
		goto out; /* too long for us: libc says ENAMETOOLONG */
	if (len == 0) {
		norm[0] = '/';
		norm[1] = 0;
		len = 1;
	}
	for (size_t i = 0; i < nf; i++) {
		if (strcmp(shield.files[i].path, norm) == 0) {
			r->kind = SHIELD_ROUTE_INJECTED;
			r->file = &shield.files[i];
			goto out;
		}
	}
	for (size_t i = 0; i < nm; i++) {
		struct volfs_mount *m = &shield.volfs.mounts[i];
		if (strncmp(norm, m->path, m->len) != 0 || (norm[m->len] != 0 && norm[m->len] != '/'))
			continue;
		const char *rel = norm[m->len] == '/' ? norm + m->len + 1 : "";
		size_t rl = strlen(rel);
		if (rl > ARCA_VOL_PATH_MAX) {
			r->kind = SHIELD_ROUTE_ERROR;
			r->err = ENAMETOOLONG;
			goto out;
		}
		for (const char *c = rel; *c != 0;) {
			const char *end = strchrnul(c, '/');
			if (end - c > NAME_MAX) {
				r->kind = SHIELD_ROUTE_ERROR;
				r->err = ENAMETOOLONG;
				goto out;
			}
			c = *end ? end + 1 : end;
		}
		memcpy(r->rel, rel, rl + 1);
		r->m = m;
		r->kind = SHIELD_ROUTE_VOLUME;
		goto out;
	}
out:
	errno = saved;
}

/* ---- attributes ---- */

static void fill_times(struct timespec *t, int64_t ns)
{
	t->tv_sec = (time_t)(ns / 1000000000);
	t->tv_nsec = (long)(ns % 1000000000);
	if (t->tv_nsec < 0) {
		t->tv_nsec += 1000000000;
		t->tv_sec--;
	}
}

static mode_t mode_of(const struct arca_vol_stat *vs)
{
	return (vs->type == ARCA_VOL_DIR ? S_IFDIR : S_IFREG) | (vs->mode & 07777);
}

void shield_volfs_fill_stat(const struct volfs_mount *m, const struct arca_vol_stat *vs, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_dev = m->dev;
	st->st_ino = vs->ino;
	st->st_mode = mode_of(vs);
	st->st_nlink = vs->nlink ? vs->nlink : 1;
	st->st_uid = geteuid();
	st->st_gid = getegid();
	st->st_size = (off_t)vs->size;
	st->st_blksize = ARCA_VOL_BLOCK;
	/* Whole blocks, so that nothing takes the file for a sparse one. */
	st->st_blocks = (blkcnt_t)((vs->size + ARCA_VOL_BLOCK - 1) / ARCA_VOL_BLOCK * (ARCA_VOL_BLOCK / 512));
	fill_times(&st->st_mtim, vs->mtime_ns);
	st->st_atim = st->st_ctim = st->st_mtim;
}

void shield_volfs_fill_statx(const struct volfs_mount *m, const struct arca_vol_stat *vs, struct statx *stx)
{
	struct timespec t;
	memset(stx, 0, sizeof *stx);
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_blksize = ARCA_VOL_BLOCK;
	stx->stx_nlink = vs->nlink ? vs->nlink : 1;
	stx->stx_uid = geteuid();
	stx->stx_gid = getegid();
	stx->stx_mode = (uint16_t)mode_of(vs);
	stx->stx_ino = vs->ino;
	stx->stx_size = vs->size;
	stx->stx_blocks = (vs->size + ARCA_VOL_BLOCK - 1) / ARCA_VOL_BLOCK * (ARCA_VOL_BLOCK / 512);
	fill_times(&t, vs->mtime_ns);
	stx->stx_mtime.tv_sec = stx->stx_atime.tv_sec = stx->stx_ctime.tv_sec = t.tv_sec;
	stx->stx_mtime.tv_nsec = stx->stx_atime.tv_nsec = stx->stx_ctime.tv_nsec = (uint32_t)t.tv_nsec;
	stx->stx_dev_major = major(m->dev);
	stx->stx_dev_minor = minor(m->dev);
}

int shield_volfs_stat(struct volfs_mount *m, const char *rel, struct stat *st)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	shield_volfs_fill_stat(m, &vs, st);
	return 0;
}

int shield_volfs_statx(struct volfs_mount *m, const char *rel, struct statx *stx)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	shield_volfs_fill_statx(m, &vs, stx);
	return 0;
}

/* Whether writes are refused: a code volume, or a child of fork. */
static int read_only(const struct volfs_mount *m)
{
	return m->readonly || !shield_volfs_writable();
}

int shield_volfs_access(struct volfs_mount *m, const char *rel, int mode)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	if (mode == F_OK)
		return 0;
	if ((mode & W_OK) && read_only(m))
		return fail_errno(EROFS);
	/* The files are the program's own (st_uid is its user): the owner
	 * bits decide, and root may read and write anything and execute
	 * what anyone may execute. */
	uint32_t p = vs.mode;
	if (geteuid() == 0) {
		if ((mode & X_OK) && vs.type != ARCA_VOL_DIR && !(p & 0111))
			return fail_errno(EACCES);
		return 0;
	}
	if (((mode & R_OK) && !(p & 0400)) || ((mode & W_OK) && !(p & 0200)) || ((mode & X_OK) && !(p & 0100)))
		return fail_errno(EACCES);
	return 0;
}

int shield_volfs_unlink(struct volfs_mount *m, const char *rel)
{
	if (rel[0] == 0)
		return fail_errno(EISDIR);
	if (read_only(m))
		return fail_errno(EROFS);
	int rc = LIB(arca_vol_unlink(m->vol, rel));
	if (rc < 0)
		return fail(rc);
	shield_volfs_unlinked(m, rel);
	return 0;
}

int shield_volfs_rmdir(struct volfs_mount *m, const char *rel)
{
	if (rel[0] == 0)
		return fail_errno(EBUSY); /* the volume's root: a mount point */
	if (read_only(m))
		return fail_errno(EROFS);
	int rc = LIB(arca_vol_rmdir(m->vol, rel));
	return rc < 0 ? fail(rc) : 0;
}

int shield_volfs_mkdir(struct volfs_mount *m, const char *rel, mode_t mode)
{
	if (rel[0] == 0)
		return fail_errno(EEXIST);
	if (read_only(m))
		return fail_errno(EROFS);
	mode_t u = __atomic_load_n(&shield.volfs.umask, __ATOMIC_RELAXED);
	int rc = LIB(arca_vol_mkdir(m->vol, rel, (uint32_t)(mode & ~u & 07777)));
	return rc < 0 ? fail(rc) : 0;
}

int shield_volfs_rename(struct volfs_mount *m, const char *from, const char *to, unsigned flags)
{
	struct arca_vol_stat vs;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return fail_errno(EINVAL); /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	if (from[0] == 0 || to[0] == 0)
		return fail_errno(EBUSY);
	if (read_only(m))
		return fail_errno(EROFS);
	if (flags & RENAME_NOREPLACE) {
		int rc = LIB(arca_vol_stat(m->vol, to, &vs));
		if (rc == 0)
			return fail_errno(EEXIST);
		if (rc != ARCA_ENOTFOUND)
			return fail(rc);
	}
	if (strcmp(from, to) == 0) {
		int rc = LIB(arca_vol_stat(m->vol, from, &vs));
		return rc < 0 ? fail(rc) : 0;
	}
	int rc = LIB(arca_vol_rename(m->vol, from, to));
	if (rc < 0)
		return fail(rc);
	shield_volfs_renamed(m, from, to);
	return 0;
}

int shield_volfs_chmod(struct volfs_mount *m, const char *rel, mode_t mode)
{
	if (read_only(m))
		return fail_errno(EROFS);
	int rc = LIB(arca_vol_chmod(m->vol, rel, (uint32_t)(mode & 07777)));
	return rc < 0 ? fail(rc) : 0;
}

/* Owners are not kept: the files are the program's. A chown to its own
 * user and group (what sqlite does for its journal as root) succeeds. */
int shield_volfs_chown(struct volfs_mount *m, const char *rel, uid_t uid, gid_t gid)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	if ((uid != (uid_t)-1 && uid != geteuid()) || (gid != (gid_t)-1 && gid != getegid()))
		return fail_errno(EPERM);
	if (read_only(m))
		return fail_errno(EROFS);
	return 0;
}

int shield_volfs_utime(struct volfs_mount *m, const char *rel, const struct timespec ts[2])
{
	struct arca_vol_stat vs;
	struct timespec now;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	if (read_only(m))
		return fail_errno(EROFS);
	/* Only the modification time is kept (atime and ctime show it too). */
	const struct timespec *t = ts != NULL ? &ts[1] : NULL;
	if (t != NULL && t->tv_nsec == UTIME_OMIT)
		return 0;
	if (t == NULL || t->tv_nsec == UTIME_NOW) {
		clock_gettime(CLOCK_REALTIME, &now);
		t = &now;
	} else if (t->tv_nsec < 0 || t->tv_nsec >= 1000000000) {
		return fail_errno(EINVAL);
	}
	rc = LIB(arca_vol_utime(m->vol, rel, (int64_t)t->tv_sec * 1000000000 + t->tv_nsec));
	return rc < 0 ? fail(rc) : 0;
}

int shield_volfs_truncate(struct volfs_mount *m, const char *rel, off_t len)
{
	struct arca_vfile *f;
	if (len < 0)
		return fail_errno(EINVAL);
	if (read_only(m))
		return fail_errno(EROFS);
	int rc = LIB(arca_vfile_open(m->vol, rel, O_WRONLY, 0, &f));
	if (rc < 0)
		return fail(rc);
	rc = LIB(arca_vfile_truncate(f, (uint64_t)len));
	shield_volfs_enter();
	arca_vfile_close(f);
	shield_volfs_leave();
	return rc < 0 ? fail(rc) : 0;
}

/* ---- the working directory ----
 * A volume's root may be the working directory (a directory inside a
 * volume may not: EOPNOTSUPP). The kernel's working directory is then the
 * volume's directory, reached through the descriptor held since the mount
 * (never by path: root may have made the path lead elsewhere), and the
 * shield remembers the volume, so that relative paths and getcwd name the
 * volume's path even after root renames the directory away or puts
 * another at the path; what the kernel resolves relative to it anyway (a
 * path that leaves the volume with "..", a program's raw system call) is
 * the volume's directory itself, which the backstop below guards. */

struct volfs_mount *shield_volfs_cwd(void)
{
	return __atomic_load_n(&shield.volfs.cwd, __ATOMIC_ACQUIRE);
}

int shield_volfs_dirfd(struct volfs_mount *m)
{
	struct stat st;
	/* The program may have closed the number (closefrom) and got it back
	 * for something else: that is not the volume's directory. */
	if (VREAL(fstat)(m->dirfd, &st) != 0 || st.st_dev != m->host_dev || st.st_ino != m->host_ino) {
		shield_volfs_log("volume %s at %s: the descriptor the shield holds for its directory was closed "
				 "behind its back",
				 m->name, m->path);
		return fail_errno(EBADF);
	}
	return m->dirfd;
}

int shield_volfs_chdir(struct volfs_mount *m, const char *rel)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	if (vs.type != ARCA_VOL_DIR)
		return fail_errno(ENOTDIR);
	if (rel[0] != 0)
		return fail_errno(EOPNOTSUPP);
	pthread_mutex_lock(&shield.volfs.cwd_lock);
	int fd = shield_volfs_dirfd(m);
	rc = fd < 0 ? -1 : VREAL(fchdir)(fd);
	if (rc == 0)
		__atomic_store_n(&shield.volfs.cwd, m, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&shield.volfs.cwd_lock);
	return rc;
}

int shield_volfs_chdir_libc(const char *path)
{
	char full[PATH_MAX];
	if (__atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE) == 0)
		return VREAL(chdir)(path);
	pthread_mutex_lock(&shield.volfs.cwd_lock);
	struct volfs_mount *cm = shield_volfs_cwd();
	const char *p = path;
	int rc = 0;
	/* Relative to the volume's path, as the program sees its working
	 * directory, not to wherever root has moved the directory. */
	if (cm != NULL && path != NULL && path[0] != '/' && path[0] != 0) {
		int n = snprintf(full, sizeof full, "%s/%s", cm->path, path);
		if (n < 0 || (size_t)n >= sizeof full)
			rc = fail_errno(ENAMETOOLONG);
		p = full;
	}
	if (rc == 0)
		rc = VREAL(chdir)(p);
	if (rc == 0)
		__atomic_store_n(&shield.volfs.cwd, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&shield.volfs.cwd_lock);
	return rc;
}

int shield_volfs_fchdir_libc(int fd)
{
	if (__atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE) == 0)
		return VREAL(fchdir)(fd);
	pthread_mutex_lock(&shield.volfs.cwd_lock);
	int rc = VREAL(fchdir)(fd);
	if (rc == 0)
		__atomic_store_n(&shield.volfs.cwd, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&shield.volfs.cwd_lock);
	return rc;
}

/* ---- the backstop ----
 * Lexical routing sends a path to a volume only when it names one; the
 * kernel may still resolve a path libc gets into a volume's directory (a
 * host symbolic link or bind mount, the directory renamed under the
 * program, a descriptor of it, a template glibc opens itself). A write
 * there would put the program's plaintext beside the records, so it is
 * refused by the identity of the directory that would hold the new name. */

static int guarding(void)
{
	return !inside && __atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE) > 0;
}

/* The volume whose directory (or d/) st is, or NULL. */
static const struct volfs_mount *voldir_of(const struct stat *st, int *is_d)
{
	size_t n = __atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < n; i++) {
		const struct volfs_mount *m = &shield.volfs.mounts[i];
		*is_d = m->has_d && st->st_ino == m->d_ino && st->st_dev == m->d_dev;
		if (*is_d || (st->st_ino == m->host_ino && st->st_dev == m->host_dev))
			return m;
	}
	return NULL;
}

static int refuse_write(const char *path, const struct stat *st)
{
	int is_d = 0;
	const struct volfs_mount *m = voldir_of(st, &is_d);
	if (m == NULL)
		return 0;
	shield_volfs_log("%s: refused: it would write outside the volume into the volume directory (%s%s)", path,
			 m->path, is_d ? "/d" : "");
	return fail_errno(EACCES);
}

/* Splits path before its last component: *base points into path (with
 * any trailing '/', which the kernel sees too), the part before it goes
 * to dir ("." when there is none). 1 when path has no component ("",
 * "/"): nothing to check; -1 ENAMETOOLONG. */
static int split_last(const char *path, char *dir, size_t cap, const char **base)
{
	size_t end = strlen(path);
	while (end > 0 && path[end - 1] == '/')
		end--;
	if (end == 0)
		return 1;
	size_t start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	*base = path + start;
	if (start == 0) {
		memcpy(dir, ".", 2);
		return 0;
	}
	if (start >= cap)
		return fail_errno(ENAMETOOLONG);
	memcpy(dir, path, start);
	dir[start] = 0;
	return 0;
}

/* The check without a descriptor: for the calls that take none (rename,
 * link, fopen, …), and for an open when no descriptor is left to spare. */
static int guard_at(int dirfd, const char *dir, const char *path)
{
	struct stat st;
	shield_resolve_real();
	/* Cannot be resolved: the call would fail on it too; failing now
	 * keeps a directory that appears meanwhile out of it. */
	if (shield.real.fstatat(dirfd, dir, &st, 0) != 0)
		return -1;
	return refuse_write(path, &st);
}

int shield_volfs_guard(int dirfd, const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	if (path == NULL || !guarding())
		return 0;
	int saved = errno;
	int s = split_last(path, dir, sizeof dir, &base);
	if (s != 0)
		return s < 0 ? -1 : 0;
	if (guard_at(dirfd, dir, path) != 0)
		return -1;
	errno = saved;
	return 0;
}

/* The directory that would hold path's new name, opened O_PATH relative
 * to dirfd and checked; the call is then made relative to it. -2: not
 * ours to do (nothing to check, or no descriptor to spare and the check
 * passed without one). */
static int guarded_dir(int dirfd, const char *path, int tmpfile, const char **base)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *at = path;
	if (tmpfile) {
		*base = "."; /* O_TMPFILE names the directory itself */
	} else {
		int s = split_last(path, dir, sizeof dir, base);
		if (s != 0)
			return s < 0 ? -1 : -2;
		at = dir;
	}
	shield_resolve_real();
	int pfd = shield.real.openat(dirfd, at, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		if (errno != EMFILE && errno != ENFILE)
			return -1;
		return guard_at(dirfd, at, path) != 0 ? -1 : -2;
	}
	if (VREAL(fstat)(pfd, &st) != 0 || refuse_write(path, &st) != 0) {
		int err = errno;
		VREAL(close)(pfd);
		return fail_errno(err);
	}
	return pfd;
}

int shield_volfs_guarded_open(int dirfd, const char *path, int flags, mode_t mode)
{
	const char *base;
	if (path == NULL || !shield_open_writes(flags) || !guarding())
		return -2;
	int pfd = guarded_dir(dirfd, path, (flags & O_TMPFILE) == O_TMPFILE, &base);
	if (pfd < 0)
		return pfd;
	int fd = shield.real.openat(pfd, base, flags, mode);
	int err = errno;
	VREAL(close)(pfd);
	errno = err;
	return fd;
}

int shield_volfs_guarded_mkdir(int dirfd, const char *path, mode_t mode)
{
	const char *base;
	if (path == NULL || !guarding())
		return -2;
	int pfd = guarded_dir(dirfd, path, 0, &base);
	if (pfd < 0)
		return pfd;
	int rc = VREAL(mkdirat)(pfd, base, mode);
	int err = errno;
	VREAL(close)(pfd);
	errno = err;
	return rc;
}

int shield_volfs_readlink(struct volfs_mount *m, const char *rel)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0)
		return fail(rc);
	return fail_errno(EINVAL); /* a volume holds no symbolic links */
}

char *shield_volfs_realpath(struct volfs_mount *m, const char *rel, char *buf)
{
	struct arca_vol_stat vs;
	int rc = LIB(arca_vol_stat(m->vol, rel, &vs));
	if (rc < 0) {
		fail(rc);
		return NULL;
	}
	size_t rl = strlen(rel), n = m->len + (rl ? 1 + rl : 0);
	if (n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	char *out = buf != NULL ? buf : malloc(n + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, m->path, m->len);
	if (rl) {
		out[m->len] = '/';
		memcpy(out + m->len + 1, rel, rl);
	}
	out[n] = 0;
	return out;
}

/* ---- open descriptions follow renames and unlinks ---- */

void shield_volfs_renamed(struct volfs_mount *m, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	pthread_mutex_lock(&m->lock);
	/* A file the rename replaced is gone from the namespace. */
	for (struct volfs_ofd *o = m->open; o != NULL; o = o->next)
		if (o->f != NULL && !o->unlinked && strcmp(o->rel, to) == 0)
			o->unlinked = 1;
	for (struct volfs_ofd *o = m->open; o != NULL; o = o->next) {
		if (o->unlinked || strncmp(o->rel, from, fl) != 0 || (o->rel[fl] != 0 && o->rel[fl] != '/'))
			continue;
		size_t rest = strlen(o->rel + fl);
		char *n = malloc(tl + rest + 1);
		if (n == NULL)
			continue; /* keeps the old name: fchmod/futimens may then miss */
		memcpy(n, to, tl);
		memcpy(n + tl, o->rel + fl, rest + 1);
		arca_wipe(o->rel, strlen(o->rel));
		free(o->rel);
		o->rel = n;
	}
	pthread_mutex_unlock(&m->lock);
}

void shield_volfs_unlinked(struct volfs_mount *m, const char *rel)
{
	pthread_mutex_lock(&m->lock);
	for (struct volfs_ofd *o = m->open; o != NULL; o = o->next)
		if (o->f != NULL && !o->unlinked && strcmp(o->rel, rel) == 0)
			o->unlinked = 1;
	pthread_mutex_unlock(&m->lock);
}
