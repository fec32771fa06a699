/* volfs_dir.c: directory streams (opendir, readdir, …) of directories in
 * protected volumes.
 *
 * glibc's opendir and readdir read the kernel's directory with internal
 * calls, so a volume directory gets a DIR of the shield's own: a listing
 * taken from the volume when it is opened (and again at rewinddir), with
 * "." and ".." first, as the kernel gives them. The DIR pointer the program
 * holds is a struct volfs_dir; it starts with a negative int where glibc's
 * DIR has its descriptor, so that each directory function can tell the two
 * apart by reading that int. scandir and scandirat are served for volume
 * paths; glibc's other walkers (ftw, nftw, fts, glob) open directories with
 * internal calls and do not see into volumes. */
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "shield.h"
#include "arca/crypto.h"
#include "arca/volume.h"

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "dirent and dirent64 must share a layout");

#define DIR_TAG (-0x41524341) /* never a descriptor */
#define DIR_MAGIC 0x766f6c64u

struct volfs_dirent {
	char *name;
	unsigned char type;
	uint64_t ino;
};

struct volfs_dir {
	int tag; /* where glibc's DIR keeps its descriptor */
	uint32_t magic;
	int fd;
	pthread_mutex_t lock;
	struct volfs_dirent *ents;
	size_t n, cap, pos;
	struct dirent64 de;
};

static struct volfs_dir *ours(DIR *d)
{
	struct volfs_dir *v = (struct volfs_dir *)d;
	if (d == NULL || v->tag != DIR_TAG || v->magic != DIR_MAGIC)
		return NULL;
	return v;
}

static void free_ents(struct volfs_dir *d)
{
	for (size_t i = 0; i < d->n; i++) {
		arca_wipe(d->ents[i].name, strlen(d->ents[i].name));
		free(d->ents[i].name);
	}
	free(d->ents);
	d->ents = NULL;
	d->n = d->cap = d->pos = 0;
}

static int add(struct volfs_dir *d, const char *name, unsigned char type, uint64_t ino)
{
	if (strlen(name) > NAME_MAX)
		return 0; /* cannot be named through struct dirent */
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct volfs_dirent *e = realloc(d->ents, cap * sizeof *e);
		if (e == NULL)
			return ARCA_ENOMEM;
		d->ents = e;
		d->cap = cap;
	}
	char *s = strdup(name);
	if (s == NULL)
		return ARCA_ENOMEM;
	d->ents[d->n++] = (struct volfs_dirent){s, type, ino};
	return 0;
}

static int add_entry(const char *name, const struct arca_vol_stat *st, void *arg)
{
	return add(arg, name, st->type == ARCA_VOL_DIR ? DT_DIR : DT_REG, st->ino);
}

/* Takes the listing of d's directory. 0 or -1 with errno. */
static int snapshot(struct volfs_dir *d)
{
	struct arca_vol_stat vs;
	struct stat st;
	char rel[4096];
	struct volfs_ofd *o = shield_volfs_get(d->fd);
	if (o == NULL)
		return -1;
	struct volfs_mount *m = o->m;
	pthread_mutex_lock(&m->lock);
	size_t n = strlen(o->rel);
	memcpy(rel, o->rel, n < sizeof rel ? n + 1 : sizeof rel);
	rel[sizeof rel - 1] = 0;
	pthread_mutex_unlock(&m->lock);
	shield_volfs_put(o);

	free_ents(d);
	shield_volfs_enter();
	int rc = arca_vol_stat(m->vol, rel, &vs);
	if (rc == 0)
		rc = add(d, ".", DT_DIR, vs.ino);
	if (rc == 0) {
		/* "..": the directory above, which for the root is on disk. */
		char *slash = strrchr(rel, '/');
		uint64_t ino = 0;
		if (rel[0] == 0) {
			char parent[4096];
			memcpy(parent, m->path, m->len + 1);
			*strrchr(parent, '/') = 0;
			if (shield.real.stat != NULL && shield.real.stat(parent[0] ? parent : "/", &st) == 0)
				ino = st.st_ino;
		} else {
			if (slash != NULL)
				*slash = 0;
			if (arca_vol_stat(m->vol, slash != NULL ? rel : "", &vs) == 0)
				ino = vs.ino;
			if (slash != NULL)
				*slash = '/';
		}
		rc = add(d, "..", DT_DIR, ino);
	}
	if (rc == 0)
		rc = arca_vol_list(m->vol, rel, add_entry, d);
	shield_volfs_leave();
	if (rc < 0) {
		free_ents(d);
		errno = shield_volfs_errno(rc);
		return -1;
	}
	return 0;
}

/* A stream over volume directory descriptor fd (owned from now on). */
static DIR *make_dir(int fd)
{
	struct volfs_dir *d = calloc(1, sizeof *d);
	if (d == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	d->tag = DIR_TAG;
	d->magic = DIR_MAGIC;
	d->fd = fd;
	pthread_mutex_init(&d->lock, NULL);
	if (snapshot(d) != 0) {
		int e = errno;
		free(d);
		errno = e;
		return NULL;
	}
	return (DIR *)d;
}

DIR *shield_volfs_opendir(struct volfs_mount *m, const char *rel)
{
	int fd = shield_volfs_open(m, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	DIR *d = make_dir(fd);
	if (d == NULL) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

SHIELD_API DIR *fdopendir(int fd)
{
	if (!shield_volfs_owns_fd(fd))
		return VREAL(fdopendir)(fd);
	struct volfs_ofd *o = shield_volfs_get(fd);
	if (o == NULL)
		return NULL;
	int bad = o->f != NULL ? ENOTDIR : (o->flags & O_PATH) ? EBADF : 0;
	shield_volfs_put(o);
	if (bad) {
		errno = bad;
		return NULL;
	}
	return make_dir(fd);
}

/* The next entry into de, or NULL at the end (errno untouched). */
static struct dirent64 *next(struct volfs_dir *d, struct dirent64 *de)
{
	struct dirent64 *r = NULL;
	pthread_mutex_lock(&d->lock);
	if (d->pos < d->n) {
		const struct volfs_dirent *e = &d->ents[d->pos++];
		memset(de, 0, offsetof(struct dirent64, d_name));
		de->d_ino = e->ino;
		de->d_off = (off64_t)d->pos;
		de->d_reclen = sizeof *de;
		de->d_type = e->type;
		size_t n = strlen(e->name);
		memcpy(de->d_name, e->name, n + 1);
		r = de;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

SHIELD_API struct dirent *readdir(DIR *dir)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(readdir)(dir);
	return (struct dirent *)next(d, &d->de);
}

SHIELD_API struct dirent64 *readdir64(DIR *dir)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(readdir64)(dir);
	return next(d, &d->de);
}

SHIELD_API int readdir_r(DIR *dir, struct dirent *entry, struct dirent **result)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(readdir_r)(dir, entry, result);
	*result = (struct dirent *)next(d, (struct dirent64 *)entry);
	return 0;
}

SHIELD_API int readdir64_r(DIR *dir, struct dirent64 *entry, struct dirent64 **result)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(readdir64_r)(dir, entry, result);
	*result = next(d, entry);
	return 0;
}

SHIELD_API int closedir(DIR *dir)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(closedir)(dir);
	int rc = close(d->fd);
	int e = errno;
	free_ents(d);
	pthread_mutex_destroy(&d->lock);
	d->tag = 0;
	d->magic = 0;
	free(d);
	errno = e;
	return rc;
}

SHIELD_API int dirfd(DIR *dir)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(dirfd)(dir);
	return d->fd;
}

SHIELD_API void rewinddir(DIR *dir)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL) {
		VREAL(rewinddir)(dir);
		return;
	}
	int saved = errno;
	pthread_mutex_lock(&d->lock);
	if (snapshot(d) != 0)
		d->pos = 0; /* an empty listing: the directory went away */
	pthread_mutex_unlock(&d->lock);
	errno = saved;
}

SHIELD_API long telldir(DIR *dir)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL)
		return VREAL(telldir)(dir);
	pthread_mutex_lock(&d->lock);
	long pos = (long)d->pos;
	pthread_mutex_unlock(&d->lock);
	return pos;
}

SHIELD_API void seekdir(DIR *dir, long pos)
{
	struct volfs_dir *d = ours(dir);
	if (d == NULL) {
		VREAL(seekdir)(dir, pos);
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->pos = pos < 0 ? 0 : (size_t)pos > d->n ? d->n : (size_t)pos;
	pthread_mutex_unlock(&d->lock);
}

/* scandir over one of our streams (dirent and dirent64 share a layout). */
int shield_volfs_scandir(int dirfd, const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
			 int (*cmp)(const struct dirent **, const struct dirent **), int *handled)
{
	struct shield_route r;
	*handled = 0;
	shield_route(dirfd, path, 0, &r);
	if (r.kind == SHIELD_ROUTE_LIBC)
		return -1;
	*handled = 1;
	if (r.kind == SHIELD_ROUTE_ERROR) {
		errno = r.err;
		return -1;
	}
	if (r.kind != SHIELD_ROUTE_VOLUME) {
		errno = ENOTDIR;
		return -1;
	}
	DIR *dir = shield_volfs_opendir(r.m, r.rel);
	if (dir == NULL)
		return -1;
	struct dirent **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int err = 0;
	while ((e = readdir(dir)) != NULL) {
		if (sel != NULL && !sel(e))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct dirent **nv = realloc(v, nc * sizeof *nv);
			if (nv == NULL) {
				err = ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		size_t sz = offsetof(struct dirent, d_name) + strlen(e->d_name) + 1;
		struct dirent *c = malloc(sz < sizeof *c ? sizeof *c : sz);
		if (c == NULL) {
			err = ENOMEM;
			break;
		}
		memcpy(c, e, sz);
		v[n++] = c;
	}
	closedir(dir);
	if (err != 0 || n > 0x7fffffff) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		errno = err ? err : EOVERFLOW;
		return -1;
	}
	if (cmp != NULL && n > 1)
		qsort(v, n, sizeof *v, (int (*)(const void *, const void *))cmp);
	*list = v;
	return (int)n;
}
