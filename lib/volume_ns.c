/* volume_ns.c: the namespace of a volume: the sorted entry list, stat,
 * mkdir, rmdir, unlink, rename, chmod, utime, list and walk.
 *
 * Entries are kept sorted by path (bytewise), which puts every parent
 * before its children and makes the entries under a directory one range
 * ("dir/" is a prefix of all of them and of nothing else). List and walk
 * copy what they report under the lock and call back without it, so a
 * callback may use the volume. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/crypto.h"
#include "volume_int.h"

/* ---- entries ---- */

/* 1 and its index when path is an entry; else 0 and where it would go. */
int vol_ent_find(const struct arca_vol *v, const char *p, size_t len, size_t *pos)
{
	size_t lo = 0, hi = v->nents;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = vol_path_cmp(v->ents[mid]->path, v->ents[mid]->plen, p, len);
		if (c == 0) {
			*pos = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return 0;
}

static int prefix_of(const struct vol_ent *x, const char *pre, size_t plen)
{
	return x->plen > plen && memcmp(x->path, pre, plen) == 0;
}

/* Index of the first entry under dir (of length len; 0 for the root) and
 * the prefix "dir/" that all of them start with. */
static size_t children_start(const struct arca_vol *v, const char *dir, size_t len, char pre[ARCA_VOL_PATH_MAX + 2],
			     size_t *plen)
{
	memcpy(pre, dir, len);
	*plen = len;
	if (len > 0)
		pre[(*plen)++] = '/';
	pre[*plen] = '\0';
	size_t at;
	(void)vol_ent_find(v, pre, *plen, &at);
	return at;
}

static int has_children(const struct arca_vol *v, const char *dir, size_t len)
{
	char pre[ARCA_VOL_PATH_MAX + 2];
	size_t plen, at = children_start(v, dir, len, pre, &plen);
	return at < v->nents && prefix_of(v->ents[at], pre, plen);
}

int vol_check_path(const char *p, size_t *len)
{
	*len = strnlen(p, ARCA_VOL_PATH_MAX + 1);
	return vol_path_ok(p, *len) ? 0 : ARCA_EINVAL;
}

/* Every ancestor of p exists and is a directory. */
int vol_parents_ok(const struct arca_vol *v, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t at;
		if (p[i] != '/')
			continue;
		if (!vol_ent_find(v, p, i, &at))
			return ARCA_ENOTFOUND;
		if (v->ents[at]->type != ARCA_VOL_DIR)
			return ARCA_ENOTDIR;
	}
	return 0;
}

static int lookup(const struct arca_vol *v, const char *p, size_t *at)
{
	size_t len;
	GUARD(vol_check_path(p, &len));
	GUARD(vol_parents_ok(v, p, len));
	return vol_ent_find(v, p, len, at) ? 0 : ARCA_ENOTFOUND;
}

struct vol_ent *vol_ent_new(const char *p, size_t len, uint8_t type, uint32_t mode, int64_t mtime)
{
	struct vol_ent *x = vol_zalloc(sizeof *x);
	char *path = malloc(len + 1);
	if (!x || !path) {
		free(x);
		free(path);
		return NULL;
	}
	memcpy(path, p, len);
	path[len] = '\0';
	x->path = path;
	x->plen = (uint16_t)len;
	x->type = type;
	x->mode = mode & 07777;
	x->mtime_ns = mtime;
	return x;
}

void vol_ent_free(struct vol_ent *x)
{
	vol_free(x->path, x->plen + 1u);
	vol_free(x, sizeof *x);
}

int vol_ent_insert(struct arca_vol *v, struct vol_ent *x, size_t at)
{
	/* A manifest with more could be written but not read back. */
	ENSURE(v->nents < VOL_ENTRIES_MAX, ARCA_ENOMEM);
	GUARD(vol_grow((void **)&v->ents, &v->capents, v->nents + 1, sizeof *v->ents));
	memmove(v->ents + at + 1, v->ents + at, (v->nents - at) * sizeof *v->ents);
	v->ents[at] = x;
	v->nents++;
	return 0;
}

void vol_ent_remove(struct arca_vol *v, size_t at)
{
	memmove(v->ents + at, v->ents + at + 1, (v->nents - at - 1) * sizeof *v->ents);
	v->nents--;
}

void vol_touch_parent(struct arca_vol *v, const char *p, size_t len)
{
	const char *slash = memrchr(p, '/', len);
	size_t at;
	if (slash && vol_ent_find(v, p, (size_t)(slash - p), &at))
		v->ents[at]->mtime_ns = vol_now_ns();
}

/* ---- stat ---- */

static uint64_t ino_of(const struct vol_ent *x)
{
	uint8_t h[32];
	uint64_t ino = 0;
	if (x->type == ARCA_VOL_FILE)
		memcpy(h, x->f->fid, 8);
	else if (arca_sha256(x->path, x->plen, h) < 0)
		memset(h, 0xa5, 8);
	for (int i = 7; i >= 0; i--)
		ino = ino << 8 | h[i];
	/* Files and directories never share a number; 1 is the root. */
	ino = x->type == ARCA_VOL_FILE ? ino & ~((uint64_t)1 << 63) : ino | (uint64_t)1 << 63;
	return ino > 1 ? ino : 2;
}

static uint32_t subdirs(const struct arca_vol *v, const char *dir, size_t len)
{
	char pre[ARCA_VOL_PATH_MAX + 2];
	size_t plen;
	uint32_t n = 0;
	for (size_t at = children_start(v, dir, len, pre, &plen); at < v->nents && prefix_of(v->ents[at], pre, plen);
	     at++)
		if (v->ents[at]->type == ARCA_VOL_DIR && !memchr(v->ents[at]->path + plen, '/', v->ents[at]->plen - plen))
			n++;
	return n;
}

void vol_ent_stat(const struct arca_vol *v, const struct vol_ent *x, struct arca_vol_stat *st)
{
	memset(st, 0, sizeof *st);
	st->type = x->type;
	st->mode = x->mode;
	st->mtime_ns = x->mtime_ns;
	st->ino = ino_of(x);
	st->size = x->type == ARCA_VOL_FILE ? x->f->size : 0;
	st->nlink = x->type == ARCA_VOL_FILE ? 1 : 2 + subdirs(v, x->path, x->plen);
}

static void root_stat(const struct arca_vol *v, struct arca_vol_stat *st)
{
	memset(st, 0, sizeof *st);
	st->type = ARCA_VOL_DIR;
	st->mode = 0755;
	st->ino = 1;
	st->nlink = 2 + subdirs(v, "", 0);
	for (size_t i = 0; i < v->nents; i++)
		if (v->ents[i]->mtime_ns > st->mtime_ns)
			st->mtime_ns = v->ents[i]->mtime_ns;
}

/* ---- namespace ---- */


static int stat_locked(struct arca_vol *v, const char *path, struct arca_vol_stat *st)
{
	size_t at;
	if (path[0] == '\0') {
		root_stat(v, st);
		return 0;
	}
	GUARD(lookup(v, path, &at));
	vol_ent_stat(v, v->ents[at], st);
	return 0;
}

int arca_vol_stat(struct arca_vol *v, const char *path, struct arca_vol_stat *st)
{
	LOCKED(v, stat_locked(v, path, st));
}

static int mkdir_locked(struct arca_vol *v, const char *path, uint32_t mode)
{
	size_t len, at;
	ENSURE(path[0] != '\0', ARCA_EEXIST);
	GUARD(vol_check_path(path, &len));
	GUARD(vol_changeable(v));
	GUARD(vol_parents_ok(v, path, len));
	ENSURE(!vol_ent_find(v, path, len, &at), ARCA_EEXIST);
	struct vol_ent *x = vol_ent_new(path, len, ARCA_VOL_DIR, mode, vol_now_ns());
	ENSURE(x != NULL, ARCA_ENOMEM);
	if (vol_ent_insert(v, x, at) < 0) {
		vol_ent_free(x);
		return ARCA_ENOMEM;
	}
	vol_touch_parent(v, path, len);
	v->dirty = 1;
	return 0;
}

int arca_vol_mkdir(struct arca_vol *v, const char *path, uint32_t mode)
{
	LOCKED(v, mkdir_locked(v, path, mode));
}

static int rmdir_locked(struct arca_vol *v, const char *path)
{
	size_t at;
	ENSURE(path[0] != '\0', ARCA_EBUSY);
	GUARD(vol_changeable(v));
	GUARD(lookup(v, path, &at));
	struct vol_ent *x = v->ents[at];
	ENSURE(x->type == ARCA_VOL_DIR, ARCA_ENOTDIR);
	ENSURE(!has_children(v, x->path, x->plen), ARCA_ENOTEMPTY);
	vol_ent_remove(v, at);
	vol_touch_parent(v, x->path, x->plen);
	vol_ent_free(x);
	v->dirty = 1;
	return 0;
}

int arca_vol_rmdir(struct arca_vol *v, const char *path)
{
	LOCKED(v, rmdir_locked(v, path));
}

static int unlink_locked(struct arca_vol *v, const char *path)
{
	size_t at;
	ENSURE(path[0] != '\0', ARCA_EISDIR);
	GUARD(vol_changeable(v));
	GUARD(lookup(v, path, &at));
	struct vol_ent *x = v->ents[at];
	ENSURE(x->type == ARCA_VOL_FILE, ARCA_EISDIR);
	vol_ent_remove(v, at);
	vol_touch_parent(v, x->path, x->plen);
	vol_vf_detach(v, x);
	vol_ent_free(x);
	v->dirty = 1;
	return 0;
}

int arca_vol_unlink(struct arca_vol *v, const char *path)
{
	LOCKED(v, unlink_locked(v, path));
}

static int ent_cmp(const void *a, const void *b)
{
	const struct vol_ent *x = *(struct vol_ent *const *)a, *y = *(struct vol_ent *const *)b;
	return vol_path_cmp(x->path, x->plen, y->path, y->plen);
}

/* The entries that move: from itself and, for a directory, all under it. */
struct moving {
	struct vol_ent **ents;
	char **paths; /* their new paths */
	size_t n;
};

static void moving_free(struct moving *m)
{
	for (size_t i = 0; m->paths && i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m->ents);
}

static int moving_plan(struct arca_vol *v, size_t fi, const char *to, size_t tlen, struct moving *m)
{
	struct vol_ent *src = v->ents[fi];
	char pre[ARCA_VOL_PATH_MAX + 2];
	size_t plen, start = src->type == ARCA_VOL_DIR ? children_start(v, src->path, src->plen, pre, &plen) : 0;
	size_t end = start;
	if (src->type == ARCA_VOL_DIR)
		while (end < v->nents && prefix_of(v->ents[end], pre, plen))
			end++;
	m->n = 1 + end - start;
	m->ents = calloc(m->n, sizeof *m->ents);
	m->paths = calloc(m->n, sizeof *m->paths);
	ENSURE(m->ents && m->paths, ARCA_ENOMEM);
	for (size_t k = 0; k < m->n; k++) {
		struct vol_ent *x = k == 0 ? src : v->ents[start + k - 1];
		size_t rest = x->plen - src->plen, nlen = tlen + rest;
		ENSURE(nlen <= ARCA_VOL_PATH_MAX, ARCA_EINVAL);
		m->ents[k] = x;
		m->paths[k] = malloc(nlen + 1);
		ENSURE(m->paths[k] != NULL, ARCA_ENOMEM);
		memcpy(m->paths[k], to, tlen);
		memcpy(m->paths[k] + tlen, x->path + src->plen, rest);
		m->paths[k][nlen] = '\0';
	}
	return 0;
}

/* Checks rename(2)'s rules for replacing to; *ti is its index if it exists. */
static int rename_target(struct arca_vol *v, const struct vol_ent *src, const char *to, size_t tlen, size_t *ti,
			 int *exists)
{
	GUARD(vol_parents_ok(v, to, tlen));
	if (src->type == ARCA_VOL_DIR && tlen > src->plen && to[src->plen] == '/' &&
	    memcmp(to, src->path, src->plen) == 0)
		return ARCA_EINVAL; /* into itself */
	*exists = vol_ent_find(v, to, tlen, ti);
	if (!*exists)
		return 0;
	const struct vol_ent *dst = v->ents[*ti];
	if (src->type == ARCA_VOL_FILE)
		return dst->type == ARCA_VOL_DIR ? ARCA_EISDIR : 0;
	ENSURE(dst->type == ARCA_VOL_DIR, ARCA_ENOTDIR);
	return has_children(v, dst->path, dst->plen) ? ARCA_ENOTEMPTY : 0;
}

static int rename_locked(struct arca_vol *v, const char *from, const char *to)
{
	size_t flen, tlen, fi, ti;
	int exists;
	ENSURE(from[0] != '\0' && to[0] != '\0', ARCA_EBUSY);
	GUARD(vol_check_path(from, &flen));
	GUARD(vol_check_path(to, &tlen));
	GUARD(vol_changeable(v));
	GUARD(lookup(v, from, &fi));
	struct vol_ent *src = v->ents[fi];
	GUARD(rename_target(v, src, to, tlen, &ti, &exists));
	if (exists && v->ents[ti] == src)
		return 0;
	struct moving m = {0};
	int rc = moving_plan(v, fi, to, tlen, &m);
	if (rc < 0) {
		moving_free(&m);
		return rc;
	}
	vol_touch_parent(v, src->path, src->plen);
	if (exists) {
		struct vol_ent *dst = v->ents[ti];
		vol_ent_remove(v, ti);
		if (dst->f)
			vol_vf_detach(v, dst);
		vol_ent_free(dst);
	}
	for (size_t k = 0; k < m.n; k++) {
		struct vol_ent *x = m.ents[k];
		vol_free(x->path, x->plen + 1u);
		x->path = m.paths[k];
		x->plen = (uint16_t)strlen(x->path);
		m.paths[k] = NULL;
	}
	qsort(v->ents, v->nents, sizeof *v->ents, ent_cmp);
	vol_touch_parent(v, to, tlen);
	v->dirty = 1;
	moving_free(&m);
	return 0;
}

int arca_vol_rename(struct arca_vol *v, const char *from, const char *to)
{
	LOCKED(v, rename_locked(v, from, to));
}

static int setattr_locked(struct arca_vol *v, const char *path, const uint32_t *mode, const int64_t *mtime)
{
	size_t at;
	ENSURE(path[0] != '\0', ARCA_EUNSUPPORTED);
	GUARD(vol_changeable(v));
	GUARD(lookup(v, path, &at));
	if (mode)
		v->ents[at]->mode = *mode & 07777;
	if (mtime)
		v->ents[at]->mtime_ns = *mtime;
	v->dirty = 1;
	return 0;
}

int arca_vol_chmod(struct arca_vol *v, const char *path, uint32_t mode)
{
	LOCKED(v, setattr_locked(v, path, &mode, NULL));
}

int arca_vol_utime(struct arca_vol *v, const char *path, int64_t mtime_ns)
{
	LOCKED(v, setattr_locked(v, path, NULL, &mtime_ns));
}

/* ---- list and walk: a copy taken under the lock, called without it ---- */

struct snap {
	char *name;
	struct arca_vol_stat st;
};

struct snaps {
	struct snap *s;
	size_t n, cap;
};

static void snaps_free(struct snaps *s)
{
	for (size_t i = 0; i < s->n; i++)
		vol_free(s->s[i].name, strlen(s->s[i].name) + 1);
	vol_free(s->s, s->cap * sizeof *s->s);
}

static int snaps_add(struct snaps *s, const struct arca_vol *v, const struct vol_ent *x, size_t skip)
{
	GUARD(vol_grow((void **)&s->s, &s->cap, s->n + 1, sizeof *s->s));
	s->s[s->n].name = strdup(x->path + skip);
	ENSURE(s->s[s->n].name != NULL, ARCA_ENOMEM);
	vol_ent_stat(v, x, &s->s[s->n].st);
	s->n++;
	return 0;
}

static int snap_dir(const struct arca_vol *v, const char *dir, struct snaps *s)
{
	char pre[ARCA_VOL_PATH_MAX + 2];
	size_t len = 0, plen, at;
	if (dir[0] != '\0') {
		GUARD(lookup(v, dir, &at));
		ENSURE(v->ents[at]->type == ARCA_VOL_DIR, ARCA_ENOTDIR);
		len = v->ents[at]->plen;
	}
	for (at = children_start(v, dir, len, pre, &plen); at < v->nents && (plen == 0 || prefix_of(v->ents[at], pre, plen));
	     at++) {
		const struct vol_ent *x = v->ents[at];
		if (!memchr(x->path + plen, '/', x->plen - plen))
			GUARD(snaps_add(s, v, x, plen));
	}
	return 0;
}

static int snaps_call(struct snaps *s, arca_vol_list_fn fn, void *arg)
{
	int rc = 0;
	for (size_t i = 0; i < s->n && rc == 0; i++)
		rc = fn(s->s[i].name, &s->s[i].st, arg);
	return rc;
}

int arca_vol_list(struct arca_vol *v, const char *dir, arca_vol_list_fn fn, void *arg)
{
	struct snaps s = {0};
	pthread_mutex_lock(&v->mu);
	int rc = snap_dir(v, dir, &s);
	pthread_mutex_unlock(&v->mu);
	if (rc == 0)
		rc = snaps_call(&s, fn, arg);
	snaps_free(&s);
	return rc;
}

int arca_vol_walk(struct arca_vol *v, arca_vol_list_fn fn, void *arg)
{
	struct snaps s = {0};
	int rc = 0;
	pthread_mutex_lock(&v->mu);
	for (size_t i = 0; i < v->nents && rc == 0; i++)
		rc = snaps_add(&s, v, v->ents[i], 0);
	pthread_mutex_unlock(&v->mu);
	if (rc == 0)
		rc = snaps_call(&s, fn, arg);
	snaps_free(&s);
	return rc;
}
