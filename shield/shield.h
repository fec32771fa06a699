/* shield.h: the parts of libarca-shield.so, the runtime preloaded into a
 * protected program.
 *
 * guard.c runs first (a constructor of the highest priority): it makes an
 * attesting process non-dumpable and checks how it was started; start.c
 * takes over __libc_start_main, reads the shield's environment and runs
 * one of two modes before main; attest.c talks to CAS and LAS;
 * files.c routes every path a program names (an injected file, a file in
 * a protected volume, or libc) and serves injected files from memory;
 * volfs*.c serve protected volumes (docs/ARCHITECTURE.md "The file
 * shield"); state.c holds the one global context (design: the shield is
 * the exception to "no global state") and the real libc functions the
 * interposers forward to. Nothing here is exported but the interposed libc
 * symbols. */
#ifndef ARCA_SHIELD_H
#define ARCA_SHIELD_H

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "arca/crypto.h"
#include "arca/err.h"
#include "arca/policy.h"
#include "arca/proto.h"

#define SHIELD_API __attribute__((visibility("default")))

/* The refusal of CONTRACTS.md: one line, exit status 78, main never runs. */
#define SHIELD_REFUSED_STATUS 78
__attribute__((noreturn)) void shield_refuse(const char *fmt, ...) ARCA_PRINTF(1, 2);

/* What arca-las (attest) or `arca measure` told the shield (CONTRACTS.md). */
struct shield_env {
	char mode[16];
	char cas[300];
	char pin[ARCA_FPR_LEN];
	int las_fd; /* the launch channel to arca-las, close-on-exec */
	char session[ARCA_NAME_MAX + 1];
	char service[ARCA_NAME_MAX + 1];
	int measure_fd;
};

/* Loads what both modes load before the measurement is taken, so that
 * `arca measure` and an attesting start map the same objects. */
void shield_prepare_libraries(void);

/* Runs the attestation of CONTRACTS.md; refuses (never returns) on any
 * failure. The configuration is the caller's (arca_config_free). */
struct arca_config *shield_attest(const struct shield_env *env);

/* ---- injected files (files.c) ---- */
struct shield_file {
	char *path;      /* normalized absolute path */
	uint8_t *data;   /* arca_secret_alloc: mlocked, guarded, not dumped */
	size_t len;
	struct timespec time;
};

/* Takes copies of the configuration's files; refuses on a bad path. */
void shield_files_install(const struct arca_config *cfg);
/* Normalizes path (relative to dirfd, or cwd for AT_FDCWD) lexically:
 * "." and ".." removed, no repeated or trailing '/'. 0 or ARCA_E*. */
int shield_path_normalize(int dirfd, const char *path, char *out, size_t cap);
/* Appends the components of s to out (an absolute path of *len bytes, kept
 * NUL-terminated), folding "." and ".."; ARCA_ETOOBIG past cap. */
int shield_path_fold(char *out, size_t cap, size_t *len, const char *s);

/* ---- the one global context (state.c) ---- */
struct shield_real {
	int (*open)(const char *, int, ...);
	int (*open64)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*openat64)(int, const char *, int, ...);
	int (*open_2)(const char *, int);
	int (*open64_2)(const char *, int);
	int (*openat_2)(int, const char *, int);
	int (*openat64_2)(int, const char *, int);
	int (*creat)(const char *, mode_t);
	int (*creat64)(const char *, mode_t);
	FILE *(*fopen)(const char *, const char *);
	FILE *(*fopen64)(const char *, const char *);
	int (*stat)(const char *, struct stat *);
	int (*stat64)(const char *, struct stat64 *);
	int (*lstat)(const char *, struct stat *);
	int (*lstat64)(const char *, struct stat64 *);
	int (*fstatat)(int, const char *, struct stat *, int);
	int (*fstatat64)(int, const char *, struct stat64 *, int);
	int (*xstat)(int, const char *, struct stat *);
	int (*xstat64)(int, const char *, struct stat64 *);
	int (*lxstat)(int, const char *, struct stat *);
	int (*lxstat64)(int, const char *, struct stat64 *);
	int (*fxstatat)(int, int, const char *, struct stat *, int);
	int (*fxstatat64)(int, int, const char *, struct stat64 *, int);
	int (*statx)(int, const char *, int, unsigned, struct statx *);
	int (*access)(const char *, int);
	int (*faccessat)(int, const char *, int, int);
};

/* ---- protected volumes (volfs*.c) ---- */
struct arca_vol;
struct arca_vfile;
struct volfs_ofd;

/* One mounted volume: the directory at path is served from the volume it
 * holds. Set up before main; path, name and vol never change after. */
struct volfs_mount {
	char *path;	    /* normalised absolute path */
	size_t len;	    /* strlen(path) */
	char *name;	    /* the volume's name in the session */
	struct arca_vol *vol;
	int readonly;	    /* a code volume (or opened read-only) */
	dev_t dev;	    /* st_dev its files show */
	/* The directory on disk, held by an O_PATH descriptor (close-on-exec)
	 * from the mount on: chdir and the placeholders use the descriptor,
	 * never the path, which root can point elsewhere while the program
	 * runs. Its identity, and that of its d/, is what the backstop
	 * (shield_volfs_guard) refuses to let libc write into. */
	int dirfd;
	dev_t host_dev;
	ino_t host_ino;
	int has_d;
	dev_t d_dev;
	ino_t d_ino;
	uint8_t token[32];  /* authorizes POST /v1/volumes/S/V/tag */
	pthread_mutex_t lock; /* the list of open descriptions below */
	struct volfs_ofd *open;
};

/* An open file description of a file or directory in a volume (what
 * open(2) makes and dup(2) shares). */
struct volfs_ofd {
	long refs;	       /* descriptors and calls in progress (atomic) */
	pthread_mutex_t lock;  /* pos, flags */
	struct volfs_mount *m;
	struct arca_vfile *f;  /* NULL: a directory */
	char *rel;	       /* path in the volume ("" the root), renames followed */
	int flags;	       /* O_ACCMODE, O_APPEND, O_NONBLOCK, O_SYNC, O_DSYNC, O_PATH */
	int unlinked;
	uint64_t pos;
	struct volfs_ofd *next, *prev; /* m->open */
};

#define SHIELD_VOLFS_MAX_FD (1 << 20)
#define SHIELD_VOLFS_CHUNK 1024
struct volfs_slot {
	struct volfs_ofd *ofd;
	int cloexec; /* FD_CLOEXEC as the program set it (the kernel's is always set) */
};

/* The real libc functions behind the volume interposers. */
struct volfs_real {
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*preadv)(int, const struct iovec *, int, off_t);
	ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
	ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
	ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
	ssize_t (*read_chk)(int, void *, size_t, size_t);
	ssize_t (*pread_chk)(int, void *, size_t, off_t, size_t);
	off_t (*lseek)(int, off_t, int);
	int (*fstat)(int, struct stat *);
	int (*fxstat)(int, int, struct stat *);
	int (*fxstat64)(int, int, struct stat64 *);
	int (*ftruncate)(int, off_t);
	int (*fsync)(int);
	int (*fdatasync)(int);
	int (*syncfs)(int);
	void (*sync)(void);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*flock)(int, int);
	int (*lockf)(int, int, off_t);
	int (*posix_fadvise)(int, off_t, off_t, int);
	int (*fallocate)(int, int, off_t, off_t);
	int (*posix_fallocate)(int, off_t, off_t);
	int (*ioctl)(int, unsigned long, ...);
	ssize_t (*copy_file_range)(int, off_t *, int, off_t *, size_t, unsigned);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned);
	int (*fchmod)(int, mode_t);
	int (*fchown)(int, uid_t, gid_t);
	int (*futimens)(int, const struct timespec *);
	int (*futimes)(int, const struct timeval *);
	int (*fchdir)(int);
	mode_t (*umask)(mode_t);
	/* streams */
	FILE *(*fdopen)(int, const char *);
	FILE *(*freopen)(const char *, const char *, FILE *);
	FILE *(*freopen64)(const char *, const char *, FILE *);
	int (*fileno)(FILE *);
	int (*fileno_unlocked)(FILE *);
	/* directories */
	DIR *(*opendir)(const char *);
	DIR *(*fdopendir)(int);
	struct dirent *(*readdir)(DIR *);
	struct dirent64 *(*readdir64)(DIR *);
	int (*readdir_r)(DIR *, struct dirent *, struct dirent **);
	int (*readdir64_r)(DIR *, struct dirent64 *, struct dirent64 **);
	int (*closedir)(DIR *);
	int (*dirfd)(DIR *);
	void (*rewinddir)(DIR *);
	long (*telldir)(DIR *);
	void (*seekdir)(DIR *, long);
	int (*scandir)(const char *, struct dirent ***, int (*)(const struct dirent *),
		       int (*)(const struct dirent **, const struct dirent **));
	int (*scandir64)(const char *, struct dirent64 ***, int (*)(const struct dirent64 *),
			 int (*)(const struct dirent64 **, const struct dirent64 **));
	int (*scandirat)(int, const char *, struct dirent ***, int (*)(const struct dirent *),
			 int (*)(const struct dirent **, const struct dirent **));
	int (*scandirat64)(int, const char *, struct dirent64 ***, int (*)(const struct dirent64 *),
			   int (*)(const struct dirent64 **, const struct dirent64 **));
	/* paths (files.c) */
	int (*truncate)(const char *, off_t);
	int (*unlink)(const char *);
	int (*unlinkat)(int, const char *, int);
	int (*rename)(const char *, const char *);
	int (*renameat)(int, const char *, int, const char *);
	int (*renameat2)(int, const char *, int, const char *, unsigned);
	int (*mkdir)(const char *, mode_t);
	int (*mkdirat)(int, const char *, mode_t);
	int (*rmdir)(const char *);
	int (*chmod)(const char *, mode_t);
	int (*fchmodat)(int, const char *, mode_t, int);
	int (*chown)(const char *, uid_t, gid_t);
	int (*lchown)(const char *, uid_t, gid_t);
	int (*fchownat)(int, const char *, uid_t, gid_t, int);
	int (*utimensat)(int, const char *, const struct timespec *, int);
	int (*utime)(const char *, const void *);
	int (*utimes)(const char *, const struct timeval *);
	int (*lutimes)(const char *, const struct timeval *);
	int (*futimesat)(int, const char *, const struct timeval *);
	int (*chdir)(const char *);
	ssize_t (*readlink)(const char *, char *, size_t);
	ssize_t (*readlinkat)(int, const char *, char *, size_t);
	ssize_t (*readlink_chk)(const char *, char *, size_t, size_t);
	ssize_t (*readlinkat_chk)(int, const char *, char *, size_t, size_t);
	char *(*realpath)(const char *, char *);
	char *(*realpath_chk)(const char *, char *, size_t);
	char *(*canonicalize_file_name)(const char *);
	int (*link)(const char *, const char *);
	int (*linkat)(int, const char *, int, const char *, int);
	int (*symlink)(const char *, const char *);
	int (*symlinkat)(const char *, int, const char *);
	int (*mkfifo)(const char *, mode_t);
	int (*mkfifoat)(int, const char *, mode_t);
	int (*mknod)(const char *, mode_t, dev_t);
	int (*mknodat)(int, const char *, mode_t, dev_t);
	int (*statfs)(const char *, void *);
	int (*statvfs)(const char *, void *);
	/* the working directory (files.c) */
	char *(*getcwd)(char *, size_t);
	char *(*getcwd_chk)(char *, size_t, size_t);
	char *(*get_current_dir_name)(void);
	char *(*getwd)(char *);
	/* temporary files (files.c) */
	int (*mkstemp)(char *);
	int (*mkstemp64)(char *);
	int (*mkostemp)(char *, int);
	int (*mkostemp64)(char *, int);
	int (*mkstemps)(char *, int);
	int (*mkstemps64)(char *, int);
	int (*mkostemps)(char *, int, int);
	int (*mkostemps64)(char *, int, int);
	char *(*mkdtemp)(char *);
	/* extended attributes (volfs_fd.c, files.c) */
	ssize_t (*fgetxattr)(int, const char *, void *, size_t);
	int (*fsetxattr)(int, const char *, const void *, size_t, int);
	ssize_t (*flistxattr)(int, char *, size_t);
	int (*fremovexattr)(int, const char *);
	ssize_t (*getxattr)(const char *, const char *, void *, size_t);
	ssize_t (*lgetxattr)(const char *, const char *, void *, size_t);
	int (*setxattr)(const char *, const char *, const void *, size_t, int);
	int (*lsetxattr)(const char *, const char *, const void *, size_t, int);
	ssize_t (*listxattr)(const char *, char *, size_t);
	ssize_t (*llistxattr)(const char *, char *, size_t);
	int (*removexattr)(const char *, const char *);
	int (*lremovexattr)(const char *, const char *);
};

/* The volume part of the shield's global context. mounts is set once
 * before main; the descriptor table is a bitmap (cheap test for every
 * descriptor the program uses) and chunks of slots. */
struct shield_volfs {
	struct volfs_mount *mounts;
	size_t nmounts; /* published with release order after mounts */
	uint64_t bits[SHIELD_VOLFS_MAX_FD / 64];
	struct volfs_slot *chunks[SHIELD_VOLFS_MAX_FD / SHIELD_VOLFS_CHUNK];
	pthread_mutex_t tab_lock;   /* slots and chunks */
	pthread_mutex_t streams_lock;
	struct volfs_stream *streams; /* stdio streams over volume descriptors */
	size_t nstreams;	      /* atomic: a fast "none" for fileno */
	pid_t owner;		      /* the process that mounted: only it commits */
	int forked;		      /* set in a child of fork: volumes are read-only there */
	/* The working directory when it is a volume's root (NULL: the
	 * kernel's): relative paths and getcwd use its path, whatever the
	 * directory the kernel holds is called by now. Changed only together
	 * with the kernel's working directory, under cwd_lock. */
	struct volfs_mount *cwd;
	pthread_mutex_t cwd_lock;
	unsigned umask;		      /* the process's umask, kept by the umask interposer */
	char cas[300];		      /* where commits report their tags (volfs_mount.c) */
	char pin[ARCA_FPR_LEN];
	char session[ARCA_NAME_MAX + 1];
	struct volfs_real real;
	int real_ready;
};

struct shield_state {
	struct shield_real real;
	int real_ready;
	struct shield_file *files; /* set once before main, read-only after */
	size_t nfiles;
	int las_fd; /* ARCA_LAS_FD, checked by guard.c; -1 outside attest mode */
	struct shield_volfs volfs;
};

extern struct shield_state shield;

/* getenv over environ itself: the program may define its own getenv
 * (bash does), which knows nothing of ours before its main. */
const char *shield_getenv(const char *name);
/* Resolves every real function once (dlsym RTLD_NEXT); safe to call again. */
void shield_resolve_real(void);

/* ---- where a path goes (volfs.c; used by every path interposer) ---- */
enum shield_route_kind {
	SHIELD_ROUTE_LIBC,     /* neither: the real function, untouched */
	SHIELD_ROUTE_INJECTED, /* r.file */
	SHIELD_ROUTE_VOLUME,   /* r.m, r.rel */
	SHIELD_ROUTE_VOLFD,    /* "" with AT_EMPTY_PATH on a volume descriptor: r.fd */
	SHIELD_ROUTE_ERROR,    /* r.err: a path the shield must refuse (ENOTDIR, ENAMETOOLONG) */
};
struct shield_route {
	int kind;
	int err;
	int fd;
	const struct shield_file *file;
	struct volfs_mount *m;
	char rel[4096]; /* path in the volume, normalised; "" the root */
};
/* Decides, for path as the program gave it relative to dirfd (AT_FDCWD
 * or a descriptor), whether an injected file, a volume or libc serves it.
 * empty_ok: the call takes AT_EMPTY_PATH and the flag is set. Never
 * changes errno; a NULL or empty path (without empty_ok) goes to libc. */
void shield_route(int dirfd, const char *path, int empty_ok, struct shield_route *r);

/* ---- the volume runtime (volfs*.c) ---- */
/* Whether fd is a descriptor of a file or directory in a volume. Cheap:
 * every read and write of the program asks. */
static inline int shield_volfs_owns_fd(int fd)
{
	return fd >= 0 && fd < SHIELD_VOLFS_MAX_FD &&
	       ((__atomic_load_n(&shield.volfs.bits[fd >> 6], __ATOMIC_RELAXED) >> (fd & 63)) & 1u);
}
/* mmap of a volume descriptor (vm.c calls it first for such fds). */
void *shield_volfs_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
/* Resolves shield.volfs.real once (safe to call again). */
void shield_volfs_resolve_real(void);
#define VREAL(fn) (shield.volfs.real_ready ? shield.volfs.real.fn : (shield_volfs_resolve_real(), shield.volfs.real.fn))

/* While the shield's own volume code runs (the library opening its slot
 * files inside a volume's directory), every interposer passes to libc. */
void shield_volfs_enter(void);
void shield_volfs_leave(void);
int shield_volfs_inside(void);

/* Adds an open volume at path (normalised, absolute) before main; the
 * caller (volfs_mount.c) has opened it. The directory is opened anew
 * component by component without following a symbolic link (one in the
 * path is refused) and kept (m->dirfd, its identity). Returns the mount,
 * or NULL with a reason in e. */
struct volfs_mount *shield_volfs_add(const char *path, const char *name, struct arca_vol *vol,
				     struct arca_errbuf *e);
/* The descriptor table (volfs_fd.c). */
int shield_volfs_open(struct volfs_mount *m, const char *rel, int flags, mode_t mode);
int shield_volfs_fd_stat(int fd, struct stat *st);
int shield_volfs_fd_statx(int fd, struct statx *stx);
/* A reference to fd's description (NULL, errno EBADF: not ours), and its release. */
struct volfs_ofd *shield_volfs_get(int fd);
void shield_volfs_put(struct volfs_ofd *o);
/* The kernel handed out fd through a call that is not ours: any entry the
 * table still has for it is stale (its placeholder was closed behind the
 * shield's back) and goes. */
void shield_volfs_forget_stale(int fd);
/* Commits m's volume (fsync of any of its descriptors): 0, or -1 errno EIO
 * with one line on stderr. */
int shield_volfs_commit(struct volfs_mount *m);
/* Whether this process may write volumes (not a child of fork). */
int shield_volfs_writable(void);

/* Path operations on a volume (volfs.c): 0 or -1 with errno, as the
 * system call would answer. */
int shield_volfs_stat(struct volfs_mount *m, const char *rel, struct stat *st);
int shield_volfs_statx(struct volfs_mount *m, const char *rel, struct statx *stx);
int shield_volfs_access(struct volfs_mount *m, const char *rel, int mode);
int shield_volfs_unlink(struct volfs_mount *m, const char *rel);
int shield_volfs_rmdir(struct volfs_mount *m, const char *rel);
int shield_volfs_mkdir(struct volfs_mount *m, const char *rel, mode_t mode);
int shield_volfs_rename(struct volfs_mount *m, const char *from, const char *to, unsigned flags);
int shield_volfs_chmod(struct volfs_mount *m, const char *rel, mode_t mode);
int shield_volfs_chown(struct volfs_mount *m, const char *rel, uid_t uid, gid_t gid);
int shield_volfs_utime(struct volfs_mount *m, const char *rel, const struct timespec ts[2]);
int shield_volfs_truncate(struct volfs_mount *m, const char *rel, off_t len);
/* chdir into a volume: its root only (a directory inside is EOPNOTSUPP).
 * The kernel's working directory becomes the volume's directory through
 * m->dirfd, and the shield's (shield.volfs.cwd) the volume. */
int shield_volfs_chdir(struct volfs_mount *m, const char *rel);
/* chdir and fchdir anywhere else: the real call, and the shield forgets
 * the volume working directory when it succeeds. */
int shield_volfs_chdir_libc(const char *path);
int shield_volfs_fchdir_libc(int fd);
/* The volume that is the working directory, or NULL. */
struct volfs_mount *shield_volfs_cwd(void);
/* m->dirfd once it is checked to still be m's directory; -1 EBADF (and
 * one line) when the program closed it and the number is another's. */
int shield_volfs_dirfd(struct volfs_mount *m);

/* The fail-closed backstop. A call that goes to libc because its path is
 * not a volume's (lexically) must still never create or write a file in a
 * volume's directory on disk or in its d/ (the kernel may resolve the path
 * there: a host symbolic link, a directory renamed under the program, a
 * descriptor of it): such a call fails with EACCES and one line
 * "arca: PATH: refused: it would write outside the volume into the volume
 * directory (DIR)". They cost nothing until a volume is mounted, and pass
 * inside the shield's own volume code.
 * shield_volfs_guard checks the directory that would hold the last
 * component of path (relative to dirfd): 0 go ahead, -1 with errno (EACCES,
 * or what resolving that directory gave, which the call would give too). */
int shield_volfs_guard(int dirfd, const char *path);
/* An open (flags with O_CREAT, O_TMPFILE, write access or O_TRUNC) or a
 * mkdir made relative to the directory checked, so that root cannot swap
 * the directory between the check and the call: the descriptor (open), 0
 * (mkdir) or -1 with errno; -2 when the caller is to make the call itself
 * (nothing to check). */
int shield_volfs_guarded_open(int dirfd, const char *path, int flags, mode_t mode);
int shield_volfs_guarded_mkdir(int dirfd, const char *path, mode_t mode);
/* Whether an open with these flags creates or writes. */
static inline int shield_open_writes(int flags)
{
	if (flags & O_PATH)
		return 0;
	return (flags & (O_CREAT | O_TRUNC | O_ACCMODE)) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}
/* readlink of a path in a volume: EINVAL (nothing there is a link) or ENOENT. */
int shield_volfs_readlink(struct volfs_mount *m, const char *rel);
/* The canonical name of a path in a volume (malloc'd, or into buf of
 * PATH_MAX), NULL with errno ENOENT when there is nothing there. */
char *shield_volfs_realpath(struct volfs_mount *m, const char *rel, char *buf);
/* Fills st (struct stat; stat64 has the same layout here) from a volume entry. */
struct arca_vol_stat;
void shield_volfs_fill_stat(const struct volfs_mount *m, const struct arca_vol_stat *vs, struct stat *st);
void shield_volfs_fill_statx(const struct volfs_mount *m, const struct arca_vol_stat *vs, struct statx *stx);
/* The errno of an ARCA_E* code of the volume library. */
int shield_volfs_errno(int code);
/* One line "arca: …" on stderr, written with the real write. */
void shield_volfs_log(const char *fmt, ...) ARCA_PRINTF(1, 2);
/* Follows a rename in the open descriptions of m (paths at or under from). */
void shield_volfs_renamed(struct volfs_mount *m, const char *from, const char *to);
/* Marks descriptions of rel as unlinked. */
void shield_volfs_unlinked(struct volfs_mount *m, const char *rel);

/* Streams (volfs_stdio.c). */
FILE *shield_volfs_fopen(struct volfs_mount *m, const char *rel, const char *mode);
/* freopen for volume paths and the shield's own streams; *handled says
 * whether it was ours to do. */
FILE *shield_volfs_freopen(const struct shield_route *r, const char *path, const char *mode, FILE *fp,
			   int *handled);
/* Parses an fopen mode into open(2) flags; -1 when invalid. */
int shield_volfs_fmode(const char *mode);
/* Flushes every stream over a volume descriptor (before the exit commit). */
void shield_volfs_flush_streams(void);

/* Directory streams (volfs_dir.c). */
DIR *shield_volfs_opendir(struct volfs_mount *m, const char *rel);
int shield_volfs_scandir(int dirfd, const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
			 int (*cmp)(const struct dirent **, const struct dirent **), int *handled);

/* Start-up (volfs_mount.c, from start.c): mounts every volume of the
 * configuration, checking freshness with CAS; refuses (never returns) on
 * any failure. */
void shield_volumes_mount(const struct arca_config *cfg, const struct shield_env *env);

#endif
