/* volfs_stdio.c: stdio streams over files in protected volumes.
 *
 * glibc's FILE functions read and write through libc-internal calls that
 * no preloaded library can interpose, so a stream over a volume file is a
 * fopencookie(3) stream whose read, write, seek and close go through the
 * descriptor table (volfs_fd.c). The cookie is the descriptor number: the
 * stream's data path is the same as the program's read(2) and write(2) on
 * it. Every such stream is also listed here so that fileno() can answer
 * its descriptor and so that the exit commit (volfs_mount.c) can flush
 * what the program left in stream buffers first; glibc would flush them
 * only after every exit handler has run, i.e. after the last commit.
 *
 * freopen of a path in a volume works on the shield's own streams only; a
 * stream libc opened (stdin, stdout, a fopen of another file) cannot be
 * turned into one (EOPNOTSUPP). */
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shield.h"

struct volfs_stream {
	FILE *fp;
	int *cookie; /* the descriptor */
	struct volfs_stream *next;
};

static ssize_t ck_read(void *c, char *buf, size_t n)
{
	return read(*(int *)c, buf, n);
}

/* Returns what was written; glibc marks the stream's error when it is
 * short, and errno says why. */
static ssize_t ck_write(void *c, const char *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(*(int *)c, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static int ck_seek(void *c, off64_t *pos, int whence)
{
	off64_t r = lseek64(*(int *)c, *pos, whence);
	if (r < 0)
		return -1;
	*pos = r;
	return 0;
}

static void forget(int *cookie)
{
	struct shield_volfs *V = &shield.volfs;
	pthread_mutex_lock(&V->streams_lock);
	for (struct volfs_stream **p = &V->streams; *p != NULL; p = &(*p)->next) {
		if ((*p)->cookie == cookie) {
			struct volfs_stream *s = *p;
			*p = s->next;
			free(s);
			__atomic_sub_fetch(&V->nstreams, 1, __ATOMIC_RELEASE);
			break;
		}
	}
	pthread_mutex_unlock(&V->streams_lock);
}

static int ck_close(void *c)
{
	int *cookie = c;
	forget(cookie);
	int rc = close(*cookie);
	free(cookie);
	return rc;
}

static const cookie_io_functions_t volfs_io = {ck_read, ck_write, ck_seek, ck_close};

/* The descriptor under fp when it is one of ours, else -1. */
static int *cookie_of(FILE *fp)
{
	struct shield_volfs *V = &shield.volfs;
	int *c = NULL;
	if (fp == NULL || __atomic_load_n(&V->nstreams, __ATOMIC_ACQUIRE) == 0)
		return NULL;
	pthread_mutex_lock(&V->streams_lock);
	for (struct volfs_stream *s = V->streams; s != NULL; s = s->next)
		if (s->fp == fp) {
			c = s->cookie;
			break;
		}
	pthread_mutex_unlock(&V->streams_lock);
	return c;
}

/* A stream over volume descriptor fd, which it owns from now on; on
 * failure fd is closed when close_on_fail is set. Always readable and
 * writable as far as stdio is concerned: the descriptor's access mode
 * decides (EBADF), which also lets freopen change it. */
static FILE *make_stream(int fd, int close_on_fail)
{
	struct shield_volfs *V = &shield.volfs;
	int *c = malloc(sizeof *c);
	struct volfs_stream *s = malloc(sizeof *s);
	FILE *fp = NULL;
	if (c != NULL && s != NULL) {
		*c = fd;
		fp = fopencookie(c, "r+", volfs_io);
	}
	if (fp == NULL) {
		int e = c == NULL || s == NULL ? ENOMEM : errno;
		free(c);
		free(s);
		if (close_on_fail)
			close(fd);
		errno = e;
		return NULL;
	}
	s->fp = fp;
	s->cookie = c;
	pthread_mutex_lock(&V->streams_lock);
	s->next = V->streams;
	V->streams = s;
	__atomic_add_fetch(&V->nstreams, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&V->streams_lock);
	return fp;
}

int shield_volfs_fmode(const char *mode)
{
	int flags;
	if (mode == NULL)
		return -1;
	switch (mode[0]) {
	case 'r':
		flags = O_RDONLY;
		break;
	case 'w':
		flags = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	for (const char *p = mode + 1; *p != 0 && *p != ','; p++) {
		switch (*p) {
		case '+':
			flags = (flags & ~O_ACCMODE) | O_RDWR;
			break;
		case 'e':
			flags |= O_CLOEXEC;
			break;
		case 'x':
			flags |= O_EXCL;
			break;
		default: /* 'b', 't', 'm', 'c' and the like: nothing for us */
			break;
		}
	}
	return flags;
}

FILE *shield_volfs_fopen(struct volfs_mount *m, const char *rel, const char *mode)
{
	int flags = shield_volfs_fmode(mode);
	if (flags < 0) {
		errno = EINVAL;
		return NULL;
	}
	int fd = shield_volfs_open(m, rel, flags, 0666);
	if (fd < 0)
		return NULL;
	return make_stream(fd, 1);
}

SHIELD_API FILE *fdopen(int fd, const char *mode)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fdopen)(fd, mode);
	int flags = shield_volfs_fmode(mode);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return NULL;
	int acc = o->flags & O_ACCMODE, want = flags & O_ACCMODE, bad = flags < 0 || (o->flags & O_PATH);
	if (!bad && want != O_WRONLY && acc == O_WRONLY)
		bad = 1;
	if (!bad && want != O_RDONLY && acc == O_RDONLY)
		bad = 1;
	if (!bad && (flags & O_APPEND)) {
		pthread_mutex_lock(&o->lock);
		o->flags |= O_APPEND;
		pthread_mutex_unlock(&o->lock);
	}
	shield_volfs_put(o);
	if (bad) {
		errno = EINVAL;
		return NULL;
	}
	return make_stream(fd, 0);
}

FILE *shield_volfs_freopen(const struct shield_route *r, const char *path, const char *mode, FILE *fp,
			   int *handled)
{
	int *c = cookie_of(fp);
	*handled = 0;
	if (c == NULL) {
		if (r->kind != SHIELD_ROUTE_VOLUME)
			return NULL;
		/* A libc stream cannot be made a cookie stream in place. */
		*handled = 1;
		errno = EOPNOTSUPP;
		return NULL;
	}
	*handled = 1;
	int flags = shield_volfs_fmode(mode);
	if (flags < 0) {
		errno = EINVAL;
		return NULL;
	}
	fflush(fp);
	int nfd;
	if (path == NULL) {
		/* The same file in another mode: a new description of it. */
		struct volfs_ofd *o = shield_volfs_get(*c);
		if (o == NULL)
			return NULL;
		char *rel = NULL;
		pthread_mutex_lock(&o->m->lock);
		if (!o->unlinked)
			rel = strdup(o->rel);
		pthread_mutex_unlock(&o->m->lock);
		struct volfs_mount *m = o->m;
		shield_volfs_put(o);
		if (rel == NULL) {
			errno = ENOENT;
			return NULL;
		}
		nfd = shield_volfs_open(m, rel, flags & ~O_EXCL, 0666);
		free(rel);
	} else if (r->kind == SHIELD_ROUTE_VOLUME) {
		nfd = shield_volfs_open(r->m, r->rel, flags, 0666);
	} else if (r->kind == SHIELD_ROUTE_LIBC) {
		shield_resolve_real();
		nfd = shield.real.open(path, flags, 0666);
	} else {
		errno = r->kind == SHIELD_ROUTE_ERROR ? r->err : EOPNOTSUPP;
		return NULL;
	}
	if (nfd < 0)
		return NULL;
	int old = *c;
	*c = nfd;
	close(old);
	clearerr(fp);
	rewind(fp);
	if (flags & O_APPEND)
		fseeko(fp, 0, SEEK_END);
	return fp;
}

SHIELD_API int fileno(FILE *fp)
{
	int *c = cookie_of(fp);
	if (c != NULL)
		return *c;
	return VREAL(fileno)(fp);
}

SHIELD_API int fileno_unlocked(FILE *fp)
{
	int *c = cookie_of(fp);
	if (c != NULL)
		return *c;
	return VREAL(fileno_unlocked)(fp);
}

void shield_volfs_flush_streams(void)
{
	struct shield_volfs *V = &shield.volfs;
	if (__atomic_load_n(&V->nstreams, __ATOMIC_ACQUIRE) == 0)
		return;
	pthread_mutex_lock(&V->streams_lock);
	/* A stream another thread holds is left to it (no deadlock at exit). */
	for (struct volfs_stream *s = V->streams; s != NULL; s = s->next) {
		if (ftrylockfile(s->fp) == 0) {
			fflush_unlocked(s->fp);
			funlockfile(s->fp);
		}
	}
	pthread_mutex_unlock(&V->streams_lock);
}
