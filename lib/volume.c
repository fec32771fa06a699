/* volume.c: protected volumes (docs/VOLUMES.md): create, open (choice of
 * manifest, rollback check, clean-up), commit, and the files (vfiles) of
 * an open volume. The namespace is in volume_ns.c, records in
 * volume_block.c.
 *
 * Every file entry has a struct vf; its heavy state (keys, leaves, tree,
 * descriptors) exists while it is open or changed since the commit. A file
 * that leaves the namespace while open lives on until its last close; what
 * it leaves on disk goes as soon as no manifest that may still be current
 * refers to it. A commit that fails after manifest.new was written leaves
 * the volume "stuck" (enum vol_stuck) until a commit settles it; a child
 * of fork is read-only. One mutex per volume guards everything. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "volume_int.h"

#define HEADER_NAME "arca-volume.json"
#define SEALED_MAX (VOL_MANIFEST_MAX + 64)
#define CACHE_DEFAULT ((size_t)8 << 20)
#define CACHE_MIN_BLOCKS 64

/* ---- small helpers shared by the volume_*.c files ---- */

int vol_sys(int err)
{
	switch (err) {
	case ENOENT: return ARCA_ENOTFOUND;
	case EEXIST: return ARCA_EEXIST;
	case ENOMEM: return ARCA_ENOMEM;
	case EROFS: return ARCA_EROFS;
	case EACCES:
	case EPERM: return ARCA_EDENIED;
	case EFBIG:
	case ENOSPC: return ARCA_EIO;
	default: return ARCA_EIO;
	}
}

void *vol_zalloc(size_t n)
{
	return calloc(1, n ? n : 1);
}

void vol_free(void *p, size_t n)
{
	if (!p)
		return;
	arca_wipe(p, n);
	free(p);
}

int vol_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	uint8_t *q = vol_zalloc(n * elem);
	ENSURE(q != NULL, ARCA_ENOMEM);
	if (*p)
		memcpy(q, *p, *cap * elem);
	vol_free(*p, *cap * elem);
	*p = q;
	*cap = n;
	return 0;
}

EVP_MD_CTX *vol_md_new(EVP_MD **md)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	*md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!c || !*md || EVP_DigestInit_ex(c, *md, NULL) != 1) {
		EVP_MD_CTX_free(c);
		EVP_MD_free(*md);
		*md = NULL;
		return NULL;
	}
	return c;
}

int64_t vol_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int vol_sync_dir(int fd)
{
	return fsync(fd) == 0 ? 0 : ARCA_EIO;
}

int vol_read_all(int dirfd, const char *name, size_t max, struct arca_buf *out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return vol_sys(errno);
	int rc = arca_read_fd(fd, name, max, out, NULL);
	close(fd);
	return rc;
}

int vol_write_new(int dirfd, const char *name, const void *p, size_t n)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return vol_sys(errno);
	const uint8_t *q = p;
	int rc = 0;
	while (n > 0 && rc == 0) {
		ssize_t w = write(fd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = ARCA_EIO;
		else
			q += w, n -= (size_t)w;
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = ARCA_EIO;
	close(fd);
	return rc;
}

/* ---- files and what they leave on disk ---- */

static struct vf *vf_new(struct arca_vol *v, const uint8_t fid[VOL_FID_LEN])
{
	struct vf *f = vol_zalloc(sizeof *f);
	if (!f)
		return NULL;
	f->v = v;
	memcpy(f->fid, fid, VOL_FID_LEN);
	f->next_gen = 1;
	return f;
}

static void vf_free(struct vf *f)
{
	vb_unload(f);
	vol_free(f, sizeof *f);
}

static void remove_disk(struct arca_vol *v, const struct garbage *g, int slots)
{
	char name[VOL_NAME_MAX];
	if (v->ro) /* and so never in a child of fork */
		return;
	for (int s = 0; slots && s < 2; s++) {
		vol_slot_name(g->fid, s, name);
		(void)unlinkat(v->dfd, name, 0);
	}
	for (uint64_t gen = g->gen_lo; gen < g->gen_hi; gen++) {
		vol_table_name(g->fid, gen, name);
		(void)unlinkat(v->dfd, name, 0);
	}
}

/* f has left the namespace and has no vfile. What the last commit still
 * refers to goes after the next one; the rest at once, unless a commit is
 * unsettled (the manifest on disk may be older than the last commit). (A
 * failed allocation only leaves the files for the clean-up at the next
 * open.) */
static void vf_bury(struct arca_vol *v, struct vf *f)
{
	struct garbage g;
	memcpy(g.fid, f->fid, VOL_FID_LEN);
	g.gen_lo = f->gen;
	g.gen_hi = f->next_gen > f->gen ? f->next_gen : f->gen + 1;
	int committed = f->committed;
	vf_free(f);
	if (v->ro)
		return;
	if (!committed && v->stuck == VOL_OK) {
		remove_disk(v, &g, 1);
		return;
	}
	if (vol_grow((void **)&v->garbage, &v->capgarbage, v->ngarbage + 1, sizeof *v->garbage) == 0)
		v->garbage[v->ngarbage++] = g;
}

int vol_changeable(const struct arca_vol *v)
{
	if (v->ro)
		return ARCA_EROFS;
	return v->stuck == VOL_OK ? 0 : ARCA_EIO;
}

void vol_vf_detach(struct arca_vol *v, struct vol_ent *x)
{
	struct vf *f = x->f;
	x->f = NULL;
	f->ent = NULL;
	f->omode = x->mode;
	f->omtime = x->mtime_ns;
	if (f->refs == 0)
		vf_bury(v, f);
}

/* A file closed and unchanged keeps its checked leaves, tree and keys for
 * a while, so that opening it again costs no second check of its leaf
 * table; the most recently used ones, within bounds on count and size. */
#define IDLE_FILES 16
#define IDLE_BLOCKS ((uint64_t)1 << 20)

static void trim_idle(struct arca_vol *v)
{
	unsigned files = 0;
	uint64_t blocks = 0;
	for (struct vf *f = v->loaded.lnext, *next; f != &v->loaded; f = next) {
		next = f->lnext;
		if (f->refs > 0 || f->changed || !f->ent)
			continue;
		files++;
		blocks += f->d->cap;
		if (files > IDLE_FILES || blocks > IDLE_BLOCKS)
			vb_unload(f);
	}
}

/* ---- the manifest ---- */

static int build_namespace(struct arca_vol *v, const struct vol_manifest *m)
{
	GUARD(vol_grow((void **)&v->ents, &v->capents, m->count ? m->count : 1, sizeof *v->ents));
	for (uint32_t k = 0; k < m->count; k++) {
		const struct vol_rec *r = &m->recs[k];
		struct vol_ent *x = vol_ent_new(r->path, r->plen, r->type, r->mode, r->mtime_ns);
		ENSURE(x != NULL, ARCA_ENOMEM);
		v->ents[v->nents++] = x;
		if (r->type != ARCA_VOL_FILE)
			continue;
		x->f = vf_new(v, r->fid);
		ENSURE(x->f != NULL, ARCA_ENOMEM);
		x->f->ent = x;
		x->f->size = r->size;
		x->f->gen = r->gen;
		x->f->next_gen = r->gen + 1;
		memcpy(x->f->root, r->root, 32);
		x->f->committed = 1;
	}
	v->counter = m->counter;
	return 0;
}

static int seal_manifest(struct arca_vol *v, uint64_t counter, struct arca_buf *sealed)
{
	struct vol_rec *recs = vol_zalloc(v->nents * sizeof *recs);
	ENSURE(recs != NULL, ARCA_ENOMEM);
	for (size_t i = 0; i < v->nents; i++) {
		const struct vol_ent *x = v->ents[i];
		struct vol_rec *r = &recs[i];
		r->type = x->type;
		r->mode = x->mode;
		r->mtime_ns = x->mtime_ns;
		r->path = x->path;
		r->plen = x->plen;
		if (x->type != ARCA_VOL_FILE)
			continue;
		memcpy(r->fid, x->f->fid, VOL_FID_LEN);
		r->size = x->f->size;
		r->gen = x->f->changed ? x->f->pgen : x->f->gen;
		memcpy(r->root, x->f->changed ? x->f->proot : x->f->root, 32);
	}
	struct arca_buf pt;
	arca_buf_init(&pt, VOL_MANIFEST_MAX, 1);
	int rc = vol_manifest_encode(counter, recs, (uint32_t)v->nents, &pt);
	if (rc == 0)
		rc = vol_manifest_seal(v->kman, v->hdr.id, v->hdr.mode, &pt, sealed);
	arca_buf_free(&pt);
	vol_free(recs, v->nents * sizeof *recs);
	return rc;
}

/* ---- create ---- */

static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	int empty = 1;
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

static int create_files(int dirfd, const struct vol_header *h, const uint8_t key[ARCA_VOL_KEY_LEN],
			uint8_t tag[ARCA_VOL_TAG_LEN])
{
	uint8_t kman[32];
	struct arca_buf hb, pt, sealed;
	arca_buf_init(&hb, VOL_HEADER_MAX, 0);
	arca_buf_init(&pt, 64, 1);
	arca_buf_init(&sealed, 256, 0);
	int rc = vol_derive(key, h->id, "arca-vol/1 manifest", NULL, kman);
	if (rc == 0)
		rc = vol_manifest_encode(0, NULL, 0, &pt);
	if (rc == 0)
		rc = vol_manifest_seal(kman, h->id, h->mode, &pt, &sealed);
	if (rc == 0)
		rc = vol_header_encode(h, &hb);
	if (rc == 0)
		rc = vol_write_new(dirfd, HEADER_NAME, hb.p, hb.len);
	if (rc == 0)
		rc = vol_write_new(dirfd, "manifest", sealed.p, sealed.len);
	if (rc == 0)
		rc = arca_sha256(sealed.p, sealed.len, tag);
	arca_wipe(kman, sizeof kman);
	arca_buf_free(&hb);
	arca_buf_free(&pt);
	arca_buf_free(&sealed);
	return rc;
}

int arca_vol_create(const char *dir, const uint8_t key[static ARCA_VOL_KEY_LEN], enum arca_vol_mode mode,
		    uint8_t tag[static ARCA_VOL_TAG_LEN], struct arca_errbuf *e)
{
	if (mode != ARCA_VOL_ENCRYPTED && mode != ARCA_VOL_AUTHENTICATED)
		return arca_errf(e, ARCA_EINVAL, "volume mode must be encrypted or authenticated");
	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST)
			return arca_errf(e, vol_sys(errno), "cannot create volume directory %s: %s", dir, strerror(errno));
		if (!dir_empty(dir))
			return arca_errf(e, ARCA_EEXIST, "cannot create a volume in %s: it is not an empty directory", dir);
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return arca_errf(e, vol_sys(errno), "cannot open %s: %s", dir, strerror(errno));
	struct vol_header h = {.mode = mode};
	int rc = arca_random(h.id, sizeof h.id);
	if (rc == 0)
		rc = vol_check_value(key, h.id, h.check);
	if (rc == 0 && mkdirat(dirfd, "d", 0700) < 0)
		rc = vol_sys(errno);
	int lfd = rc == 0 ? openat(dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (rc == 0 && lfd < 0)
		rc = vol_sys(errno);
	if (rc == 0)
		rc = create_files(dirfd, &h, key, tag);
	if (rc == 0)
		rc = vol_sync_dir(dirfd);
	if (lfd >= 0)
		close(lfd);
	close(dirfd);
	if (rc < 0)
		return arca_errf(e, rc, "cannot create a volume in %s: %s", dir, arca_strerror(rc));
	return 0;
}

/* ---- open ---- */

static int take_lock(struct arca_vol *v, struct arca_errbuf *e)
{
	v->lockfd = openat(v->dirfd, "lock", (v->ro ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (v->lockfd < 0)
		return arca_errf(e, vol_sys(errno), "volume %s: cannot open its lock file: %s", v->dir, strerror(errno));
	if (flock(v->lockfd, (v->ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return arca_errf(e, ARCA_EBUSY, "volume %s is in use: %s", v->dir,
					 v->ro ? "a writer has it open" : "another program has it open");
		return arca_errf(e, ARCA_EIO, "volume %s: cannot lock: %s", v->dir, strerror(errno));
	}
	return 0;
}

static int read_header(struct arca_vol *v, const uint8_t key[ARCA_VOL_KEY_LEN], struct arca_errbuf *e)
{
	struct arca_buf b;
	arca_buf_init(&b, VOL_HEADER_MAX + 1, 0);
	int rc = vol_read_all(v->dirfd, HEADER_NAME, VOL_HEADER_MAX, &b);
	if (rc < 0) {
		arca_buf_free(&b);
		return arca_errf(e, rc == ARCA_ENOTFOUND ? ARCA_ENOTFOUND : ARCA_EPARSE,
				 "volume %s: cannot read %s (%s): not an arca volume?", v->dir, HEADER_NAME,
				 arca_strerror(rc));
	}
	struct arca_errbuf pe;
	rc = vol_header_parse((const char *)b.p, b.len, &v->hdr, &pe);
	arca_buf_free(&b);
	if (rc < 0)
		return arca_errf(e, rc, "volume %s: %s", v->dir, pe.msg);
	uint8_t check[32];
	GUARD(vol_check_value(key, v->hdr.id, check));
	if (!arca_ct_eq(check, v->hdr.check, 32))
		return arca_errf(e, ARCA_EDENIED, "volume %s: the key does not open this volume", v->dir);
	memcpy(v->key, key, ARCA_VOL_KEY_LEN);
	return vol_derive(key, v->hdr.id, "arca-vol/1 manifest", NULL, v->kman);
}

struct candidates {
	struct arca_buf m[2]; /* manifest, manifest.new */
	int have[2];
	uint8_t tag[2][ARCA_VOL_TAG_LEN];
};

static int read_candidates(struct arca_vol *v, struct candidates *c, struct arca_errbuf *e)
{
	static const char *names[2] = {"manifest", "manifest.new"};
	for (int i = 0; i < 2; i++) {
		arca_buf_init(&c->m[i], SEALED_MAX, 0);
		int rc = vol_read_all(v->dirfd, names[i], SEALED_MAX, &c->m[i]);
		if (rc == ARCA_ENOTFOUND)
			continue;
		if (rc < 0)
			return arca_errf(e, rc, "volume %s: cannot read %s: %s", v->dir, names[i], arca_strerror(rc));
		c->have[i] = 1;
		GUARD(arca_sha256(c->m[i].p, c->m[i].len, c->tag[i]));
	}
	return 0;
}

static int rollback_error(const struct arca_vol *v, const struct candidates *c, const uint8_t *expected,
			  struct arca_errbuf *e)
{
	char want[ARCA_VOL_TAG_HEX], have[ARCA_VOL_TAG_HEX], pending[ARCA_VOL_TAG_HEX + 32] = "";
	arca_vol_tag_hex(expected, want);
	if (c->have[0])
		arca_vol_tag_hex(c->tag[0], have);
	else
		snprintf(have, sizeof have, "(no manifest)");
	if (c->have[1]) {
		char t[ARCA_VOL_TAG_HEX];
		arca_vol_tag_hex(c->tag[1], t);
		snprintf(pending, sizeof pending, ", manifest.new %s", t);
	}
	return arca_errf(e, ARCA_ESTALE,
			 "volume %s: rollback: it holds tag %s%s but its last commit has tag %s; it was restored from "
			 "an older copy or changed outside arca",
			 v->dir, have, pending, want);
}

/* Which of manifest (0) and manifest.new (1) to take; docs/VOLUMES.md
 * "Commit". *promote: finish the rename; *discard: manifest.new is dead. */
static int choose(const struct arca_vol *v, const struct candidates *c, const uint8_t *expected, int *which,
		  int *promote, int *discard, struct arca_errbuf *e)
{
	*promote = *discard = 0;
	if (expected) {
		if (c->have[0] && arca_ct_eq(c->tag[0], expected, ARCA_VOL_TAG_LEN)) {
			*which = 0;
			*discard = c->have[1];
		} else if (c->have[1] && arca_ct_eq(c->tag[1], expected, ARCA_VOL_TAG_LEN)) {
			*which = 1;
			*promote = 1;
		} else {
			return rollback_error(v, c, expected, e);
		}
		return 0;
	}
	if (c->have[0]) {
		*which = 0;
	} else if (c->have[1]) {
		*which = 1;
		*promote = 1;
	} else {
		return arca_errf(e, ARCA_ENOTFOUND, "volume %s has no manifest", v->dir);
	}
	return 0;
}

/* Finishes step 4 of an interrupted commit with the bytes that verified,
 * not with whatever has the name manifest.new by now: they go to a fresh
 * file, flushed and renamed over manifest; then manifest.new goes. A crash
 * in between leaves manifest.new beside a manifest of the same tag, which
 * the next open discards. */
static int promote_new(struct arca_vol *v, const struct arca_buf *m)
{
	static const char tmp[] = "manifest.tmp";
	(void)unlinkat(v->dirfd, tmp, 0);
	GUARD(vol_write_new(v->dirfd, tmp, m->p, m->len));
	if (renameat(v->dirfd, tmp, v->dirfd, "manifest") < 0) {
		int rc = vol_sys(errno);
		(void)unlinkat(v->dirfd, tmp, 0);
		return rc;
	}
	GUARD(vol_sync_dir(v->dirfd));
	(void)unlinkat(v->dirfd, "manifest.new", 0);
	return vol_sync_dir(v->dirfd);
}

static int load_manifest(struct arca_vol *v, const uint8_t *expected, int *kept_new, struct arca_errbuf *e)
{
	struct candidates c;
	memset(&c, 0, sizeof c);
	int which = 0, do_promote = 0, discard = 0;
	struct arca_buf pt;
	arca_buf_init(&pt, SEALED_MAX, 1);
	struct vol_manifest m = {0};
	int rc = read_candidates(v, &c, e);
	if (rc == 0)
		rc = choose(v, &c, expected, &which, &do_promote, &discard, e);
	if (rc == 0) {
		rc = vol_manifest_open(v->kman, v->hdr.id, v->hdr.mode, c.m[which].p, c.m[which].len, &pt);
		if (rc < 0)
			rc = arca_errf(e, ARCA_ECRYPTO, "volume %s: %s does not verify: it was damaged or changed",
				       v->dir, which ? "manifest.new" : "manifest");
	}
	if (rc == 0) {
		struct arca_errbuf pe;
		rc = vol_manifest_parse(pt.p, pt.len, &m, &pe);
		if (rc < 0)
			arca_errf(e, rc, "volume %s: %s", v->dir, pe.msg);
	}
	if (rc == 0)
		rc = build_namespace(v, &m);
	if (rc == 0) {
		memcpy(v->tag, c.tag[which], ARCA_VOL_TAG_LEN);
		*kept_new = !expected && which == 0 && c.have[1];
	}
	if (rc == 0 && !v->ro && do_promote) {
		rc = promote_new(v, &c.m[1]);
		if (rc < 0)
			rc = arca_errf(e, ARCA_EIO, "volume %s: cannot finish the interrupted commit: %s", v->dir,
				       arca_strerror(rc));
	}
	if (rc == 0 && !v->ro && discard)
		(void)unlinkat(v->dirfd, "manifest.new", 0);
	vol_manifest_free(&m);
	arca_buf_free(&pt);
	arca_buf_free(&c.m[0]);
	arca_buf_free(&c.m[1]);
	return rc;
}

static int vf_fid_cmp(const void *a, const void *b)
{
	return memcmp((*(struct vf *const *)a)->fid, (*(struct vf *const *)b)->fid, VOL_FID_LEN);
}

static int fid_key_cmp(const void *key, const void *elem)
{
	return memcmp(key, (*(struct vf *const *)elem)->fid, VOL_FID_LEN);
}

/* Removes slot files and leaf tables the manifest does not refer to
 * (left by a crash, a failed commit or a discarded manifest.new). */
static void collect_garbage(struct arca_vol *v)
{
	int fd = openat(v->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	/* Files in the manifest, found by binary search over their FIDs. */
	struct vf **byfid = NULL;
	size_t n = 0;
	for (size_t i = 0; i < v->nents; i++)
		n += v->ents[i]->type == ARCA_VOL_FILE;
	byfid = calloc(n ? n : 1, sizeof *byfid);
	if (!byfid) {
		closedir(d);
		return;
	}
	n = 0;
	for (size_t i = 0; i < v->nents; i++)
		if (v->ents[i]->type == ARCA_VOL_FILE)
			byfid[n++] = v->ents[i]->f;
	qsort(byfid, n, sizeof *byfid, vf_fid_cmp);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint8_t fid[VOL_FID_LEN];
		int slot;
		uint64_t gen;
		int kind = vol_name_parse(de->d_name, fid, &slot, &gen);
		if (kind < 0)
			continue;
		struct vf **hit = bsearch(fid, byfid, n, sizeof *byfid, fid_key_cmp);
		if (!hit || (kind == 1 && gen != (*hit)->gen))
			(void)unlinkat(v->dfd, de->d_name, 0);
	}
	free(byfid);
	closedir(d);
}

static int vol_setup(struct arca_vol *v, const uint8_t key[ARCA_VOL_KEY_LEN], const uint8_t *expected,
		     struct arca_errbuf *e)
{
	v->dirfd = open(v->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->dirfd < 0)
		return arca_errf(e, vol_sys(errno), "cannot open volume %s: %s", v->dir, strerror(errno));
	GUARD(take_lock(v, e));
	GUARD(read_header(v, key, e));
	v->dfd = openat(v->dirfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (v->dfd < 0)
		return arca_errf(e, ARCA_EPARSE, "volume %s: cannot open its d/ directory: %s", v->dir, strerror(errno));
	v->md = vol_md_new(&v->sha256);
	v->io = malloc((size_t)VOL_IO_RECORDS * ARCA_VOL_RECORD);
	if (!v->md || !v->io)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	int kept_new = 0;
	GUARD(load_manifest(v, expected, &kept_new, e));
	/* A manifest.new kept for a later open with its tag keeps what it
	 * refers to, too. */
	if (!v->ro && !kept_new)
		collect_garbage(v);
	return 0;
}

int arca_vol_open(const char *dir, const uint8_t key[static ARCA_VOL_KEY_LEN], const uint8_t *expected_tag,
		  unsigned flags, struct arca_vol **out, struct arca_errbuf *e)
{
	*out = NULL;
	if (flags & ~ARCA_VOL_RDONLY)
		return arca_errf(e, ARCA_EINVAL, "unknown volume open flags %#x", flags);
	struct arca_vol *v = vol_zalloc(sizeof *v);
	if (!v)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	v->dirfd = v->dfd = v->lockfd = -1;
	v->ro = (flags & ARCA_VOL_RDONLY) != 0;
	v->loaded.lnext = v->loaded.lprev = &v->loaded;
	pthread_mutex_init(&v->mu, NULL);
	v->dir = strdup(dir);
	int rc = v->dir ? vc_init(&v->cache, CACHE_DEFAULT / ARCA_VOL_BLOCK) : ARCA_ENOMEM;
	if (rc < 0)
		arca_errf(e, rc, "out of memory");
	else
		rc = vol_setup(v, key, expected_tag, e);
	if (rc < 0) {
		arca_vol_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

void arca_vol_close(struct arca_vol *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nents; i++) {
		if (v->ents[i]->f)
			vf_free(v->ents[i]->f);
		vol_ent_free(v->ents[i]);
	}
	/* Unlinked files a caller left open; their vfiles are dead now. */
	while (v->loaded.lnext && v->loaded.lnext != &v->loaded)
		vf_free(v->loaded.lnext);
	vol_free(v->ents, v->capents * sizeof *v->ents);
	vol_free(v->garbage, v->capgarbage * sizeof *v->garbage);
	vc_free(&v->cache);
	EVP_MD_CTX_free(v->md);
	EVP_MD_free(v->sha256);
	vol_free(v->io, (size_t)VOL_IO_RECORDS * ARCA_VOL_RECORD);
	if (v->dfd >= 0)
		close(v->dfd);
	if (v->dirfd >= 0)
		close(v->dirfd);
	if (v->lockfd >= 0)
		close(v->lockfd);
	pthread_mutex_destroy(&v->mu);
	free(v->dir);
	vol_free(v, sizeof *v);
}

/* ---- accessors and hooks ---- */

enum arca_vol_mode arca_vol_mode(const struct arca_vol *v)
{
	return v->hdr.mode;
}

int arca_vol_readonly(const struct arca_vol *v)
{
	return v->ro;
}

const char *arca_vol_dir(const struct arca_vol *v)
{
	return v->dir;
}

void arca_vol_tag(const struct arca_vol *v, uint8_t tag[static ARCA_VOL_TAG_LEN])
{
	struct arca_vol *w = (struct arca_vol *)v;
	pthread_mutex_lock(&w->mu);
	memcpy(tag, v->tag, ARCA_VOL_TAG_LEN);
	pthread_mutex_unlock(&w->mu);
}

void arca_vol_tag_hex(const uint8_t tag[static ARCA_VOL_TAG_LEN], char out[static ARCA_VOL_TAG_HEX])
{
	arca_hex_encode(tag, ARCA_VOL_TAG_LEN, out);
}

int arca_vol_tag_parse(const char *hex, uint8_t tag[static ARCA_VOL_TAG_LEN])
{
	size_t n = 0;
	ENSURE(strnlen(hex, 2 * ARCA_VOL_TAG_LEN + 1) == 2 * ARCA_VOL_TAG_LEN, ARCA_EPARSE);
	for (size_t i = 0; i < 2 * ARCA_VOL_TAG_LEN; i++)
		ENSURE((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'), ARCA_EPARSE);
	GUARD(arca_hex_decode(hex, 2 * ARCA_VOL_TAG_LEN, tag, ARCA_VOL_TAG_LEN, &n));
	return n == ARCA_VOL_TAG_LEN ? 0 : ARCA_EPARSE;
}

void arca_vol_set_publish(struct arca_vol *v, arca_vol_publish_fn fn, void *arg)
{
	pthread_mutex_lock(&v->mu);
	v->publish = fn;
	v->publish_arg = arg;
	pthread_mutex_unlock(&v->mu);
}

void arca_vol_set_log(struct arca_vol *v, arca_vol_log_fn fn, void *arg)
{
	pthread_mutex_lock(&v->mu);
	v->log = fn;
	v->log_arg = arg;
	pthread_mutex_unlock(&v->mu);
}

void arca_vol_fork_child(struct arca_vol *v)
{
	static const pthread_mutex_t unlocked = PTHREAD_MUTEX_INITIALIZER;
	if (!v)
		return;
	/* Another thread of the parent may have held the lock at the fork;
	 * that thread does not exist here, so the lock is made anew, never
	 * taken. Plain stores only: callable from a pthread_atfork child
	 * handler. */
	memcpy(&v->mu, &unlocked, sizeof unlocked);
	v->forked = 1;
	v->ro = 1;
	v->cache.pin_dirty = 1;
}

void arca_vol_set_cache(struct arca_vol *v, size_t bytes)
{
	size_t blocks = bytes / ARCA_VOL_BLOCK;
	pthread_mutex_lock(&v->mu);
	vc_set_max(&v->cache, blocks < CACHE_MIN_BLOCKS ? CACHE_MIN_BLOCKS : blocks);
	pthread_mutex_unlock(&v->mu);
}

/* ---- commit ---- */

/* The new manifest's tag is recorded: the in-memory state follows it
 * (whether or not manifest.new could be renamed yet). collect: manifest is
 * the new one, durably, so what only older manifests referred to goes now;
 * otherwise the files of buried files wait for the next commit and old leaf
 * tables for the clean-up at the next open. */
static void commit_done(struct arca_vol *v, const uint8_t tag[ARCA_VOL_TAG_LEN], int collect)
{
	for (struct vf *f = v->loaded.lnext; f != &v->loaded; f = f->lnext) {
		if (!f->ent) {
			f->committed = 0;
			continue;
		}
		if (!f->changed)
			continue;
		struct garbage old = {.gen_lo = f->committed ? f->gen : 0, .gen_hi = f->pgen};
		memcpy(old.fid, f->fid, VOL_FID_LEN);
		vb_committed(f, f->proot, f->pgen);
		if (collect)
			remove_disk(v, &old, 0);
	}
	for (size_t i = 0; i < v->nents; i++)
		if (v->ents[i]->f)
			v->ents[i]->f->committed = 1;
	if (collect) {
		for (size_t i = 0; i < v->ngarbage; i++)
			remove_disk(v, &v->garbage[i], 1);
		v->ngarbage = 0;
	}
	memcpy(v->tag, tag, ARCA_VOL_TAG_LEN);
	v->counter++;
	v->dirty = 0;
	trim_idle(v);
}

static int write_pending(struct arca_vol *v, uint8_t tag[ARCA_VOL_TAG_LEN], struct arca_errbuf *e)
{
	struct arca_buf sealed;
	arca_buf_init(&sealed, SEALED_MAX, 0);
	int rc = seal_manifest(v, v->counter + 1, &sealed);
	if (rc < 0) {
		arca_buf_free(&sealed);
		return arca_errf(e, rc, "volume %s: cannot build the manifest: %s", v->dir, arca_strerror(rc));
	}
	rc = vol_write_new(v->dirfd, "manifest.new", sealed.p, sealed.len);
	if (rc == 0)
		rc = vol_sync_dir(v->dfd);
	if (rc == 0)
		rc = vol_sync_dir(v->dirfd);
	if (rc == 0)
		rc = arca_sha256(sealed.p, sealed.len, tag);
	arca_buf_free(&sealed);
	if (rc < 0)
		return arca_errf(e, rc, "volume %s: cannot write manifest.new: %s", v->dir, arca_strerror(rc));
	return 0;
}

/* Step 4. A failed rename leaves the volume VOL_UNRENAMED: CAS holds the
 * new tag, the next open takes manifest.new by it, and until a commit
 * retries the rename nothing may touch the records manifest still names
 * (a trusted machine opens that one). */
static int make_current(struct arca_vol *v, struct arca_errbuf *e)
{
	if (renameat(v->dirfd, "manifest.new", v->dirfd, "manifest") < 0) {
		int err = errno;
		v->stuck = VOL_UNRENAMED;
		return arca_errf(e, ARCA_EIO,
				 "volume %s: the commit is recorded, but manifest.new cannot be made current (%s); the "
				 "next commit retries (the next open finishes it), and until then the volume takes no "
				 "change",
				 v->dir, strerror(err));
	}
	v->stuck = VOL_OK;
	if (vol_sync_dir(v->dirfd) < 0)
		return arca_errf(e, ARCA_EIO, "volume %s: committed, but its directory could not be flushed", v->dir);
	return 0;
}

/* Steps 3 to 5 for the manifest.new of tag. A failed publish leaves the
 * volume VOL_UNPUBLISHED: CAS may hold the tag (only its answer was lost),
 * so manifest.new and the records it names must stay as they are, and the
 * next commit offers the same tag again (CAS answers a repeat with 200)
 * before anything new is written. docs/VOLUMES.md "Commit". */
static int publish_and_finish(struct arca_vol *v, const uint8_t tag[ARCA_VOL_TAG_LEN], struct arca_errbuf *e)
{
	if (v->publish) {
		int rc = v->publish(v->tag, tag, v->publish_arg);
		if (rc != 0) {
			memcpy(v->ptag, tag, ARCA_VOL_TAG_LEN);
			v->stuck = VOL_UNPUBLISHED;
			return arca_errf(e, ARCA_EIO,
					 "volume %s: commit not made: the new tag could not be recorded (publish hook "
					 "returned %d); the volume stays at its last commit and takes no change until a "
					 "commit records this one",
					 v->dir, rc);
		}
	}
	int rc = make_current(v, e);
	commit_done(v, tag, rc == 0);
	return rc;
}

/* A commit left unsettled by the last one is settled first. */
static int settle(struct arca_vol *v, struct arca_errbuf *e)
{
	if (v->stuck == VOL_UNPUBLISHED) {
		uint8_t tag[ARCA_VOL_TAG_LEN];
		memcpy(tag, v->ptag, sizeof tag);
		return publish_and_finish(v, tag, e);
	}
	if (v->stuck == VOL_UNRENAMED) {
		GUARD(make_current(v, e));
		for (size_t i = 0; i < v->ngarbage; i++)
			remove_disk(v, &v->garbage[i], 1);
		v->ngarbage = 0;
	}
	return 0;
}

static int commit_locked(struct arca_vol *v, struct arca_errbuf *e)
{
	if (v->forked)
		return arca_errf(e, ARCA_EROFS, "volume %s: a child of fork does not commit (its parent does)", v->dir);
	if (v->ro)
		return arca_errf(e, ARCA_EROFS, "volume %s is open read-only", v->dir);
	GUARD(settle(v, e));
	if (!v->dirty)
		return 0;
	int rc = vc_flush_all(v);
	if (rc < 0)
		return arca_errf(e, rc, "volume %s: cannot write cached blocks: %s", v->dir, arca_strerror(rc));
	for (struct vf *f = v->loaded.lnext; f != &v->loaded; f = f->lnext)
		if (f->changed && f->ent)
			GUARD(vb_flush(f, f->proot, &f->pgen, e));
	uint8_t tag[ARCA_VOL_TAG_LEN];
	GUARD(write_pending(v, tag, e));
	return publish_and_finish(v, tag, e);
}

int arca_vol_commit(struct arca_vol *v, struct arca_errbuf *e)
{
	pthread_mutex_lock(&v->mu);
	int rc = commit_locked(v, e);
	pthread_mutex_unlock(&v->mu);
	return rc;
}

/* ---- vfiles ---- */

static int create_file(struct arca_vol *v, const char *path, size_t len, size_t at, uint32_t mode,
		       struct vol_ent **out)
{
	uint8_t fid[VOL_FID_LEN];
	GUARD(arca_random(fid, sizeof fid));
	struct vol_ent *x = vol_ent_new(path, len, ARCA_VOL_FILE, mode, vol_now_ns());
	struct vf *f = vf_new(v, fid);
	if (!x || !f || vol_ent_insert(v, x, at) < 0) {
		if (x)
			vol_ent_free(x);
		vol_free(f, sizeof *f);
		return ARCA_ENOMEM;
	}
	x->f = f;
	f->ent = x;
	f->changed = 1; /* even empty, it needs a leaf table */
	vol_touch_parent(v, path, len);
	v->dirty = 1;
	*out = x;
	return 0;
}

static int find_or_create(struct arca_vol *v, const char *path, int oflags, uint32_t mode, int writable,
			  struct vol_ent **out, int *created)
{
	size_t len, at;
	*created = 0;
	ENSURE(path[0] != '\0', ARCA_EISDIR);
	GUARD(vol_check_path(path, &len));
	GUARD(vol_parents_ok(v, path, len));
	if (vol_ent_find(v, path, len, &at)) {
		struct vol_ent *x = v->ents[at];
		ENSURE((oflags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL), ARCA_EEXIST);
		ENSURE(x->type == ARCA_VOL_FILE, ARCA_EISDIR);
		ENSURE(!v->ro || (!writable && !(oflags & O_TRUNC)), ARCA_EROFS);
		*out = x;
		return 0;
	}
	ENSURE(oflags & O_CREAT, ARCA_ENOTFOUND);
	GUARD(vol_changeable(v));
	GUARD(create_file(v, path, len, at, mode, out));
	*created = 1;
	return 0;
}

static int vfile_open_locked(struct arca_vol *v, const char *path, int oflags, uint32_t mode, int writable,
			     struct arca_vfile *vfile)
{
	struct vol_ent *x;
	int created;
	GUARD(find_or_create(v, path, oflags, mode, writable, &x, &created));
	struct vf *f = x->f;
	struct arca_errbuf e;
	int rc = vb_load(f, &e);
	if (rc == 0 && writable && (oflags & O_TRUNC))
		rc = vb_truncate(f, 0);
	if (rc < 0) {
		if (created) {
			size_t at;
			if (vol_ent_find(v, x->path, x->plen, &at))
				vol_ent_remove(v, at);
			vol_vf_detach(v, x);
			vol_ent_free(x);
		} else if (f->refs == 0 && !f->changed) {
			vb_unload(f);
		}
		return rc;
	}
	f->refs++;
	vfile->f = f;
	vfile->writable = writable;
	return 0;
}

int arca_vfile_open(struct arca_vol *v, const char *path, int oflags, uint32_t mode, struct arca_vfile **out)
{
	*out = NULL;
	int acc = oflags & O_ACCMODE;
	ENSURE(acc == O_RDONLY || acc == O_WRONLY || acc == O_RDWR, ARCA_EINVAL);
	struct arca_vfile *vfile = vol_zalloc(sizeof *vfile);
	ENSURE(vfile != NULL, ARCA_ENOMEM);
	pthread_mutex_lock(&v->mu);
	int rc = vfile_open_locked(v, path, oflags, mode, acc != O_RDONLY, vfile);
	pthread_mutex_unlock(&v->mu);
	if (rc < 0) {
		vol_free(vfile, sizeof *vfile);
		return rc;
	}
	*out = vfile;
	return 0;
}

void arca_vfile_close(struct arca_vfile *vfile)
{
	if (!vfile)
		return;
	struct vf *f = vfile->f;
	struct arca_vol *v = f->v;
	pthread_mutex_lock(&v->mu);
	if (--f->refs == 0) {
		if (!f->ent) {
			vf_bury(v, f);
		} else {
			/* Most recently used first, for trim_idle. */
			f->lprev->lnext = f->lnext;
			f->lnext->lprev = f->lprev;
			f->lnext = v->loaded.lnext;
			f->lprev = &v->loaded;
			v->loaded.lnext->lprev = f;
			v->loaded.lnext = f;
			trim_idle(v);
		}
	}
	pthread_mutex_unlock(&v->mu);
	vol_free(vfile, sizeof *vfile);
}

ssize_t arca_vfile_pread(struct arca_vfile *vfile, void *buf, size_t n, uint64_t off)
{
	struct arca_vol *v = vfile->f->v;
	pthread_mutex_lock(&v->mu);
	ssize_t r = vb_pread(vfile->f, buf, n, off);
	pthread_mutex_unlock(&v->mu);
	return r;
}

ssize_t arca_vfile_pwrite(struct arca_vfile *vfile, const void *buf, size_t n, uint64_t off)
{
	struct arca_vol *v = vfile->f->v;
	if (!vfile->writable)
		return ARCA_EROFS;
	pthread_mutex_lock(&v->mu);
	ssize_t r = vb_pwrite(vfile->f, buf, n, off);
	pthread_mutex_unlock(&v->mu);
	return r;
}

int arca_vfile_truncate(struct arca_vfile *vfile, uint64_t size)
{
	struct arca_vol *v = vfile->f->v;
	if (!vfile->writable)
		return ARCA_EROFS;
	LOCKED(v, vb_truncate(vfile->f, size));
}

static void vfile_stat_locked(const struct vf *f, struct arca_vol_stat *st)
{
	if (f->ent) {
		vol_ent_stat(f->v, f->ent, st);
		return;
	}
	struct vol_ent gone = {.type = ARCA_VOL_FILE, .mode = f->omode, .mtime_ns = f->omtime, .f = (struct vf *)f};
	vol_ent_stat(f->v, &gone, st);
	st->nlink = 0;
}

int arca_vfile_stat(struct arca_vfile *vfile, struct arca_vol_stat *st)
{
	struct arca_vol *v = vfile->f->v;
	pthread_mutex_lock(&v->mu);
	vfile_stat_locked(vfile->f, st);
	pthread_mutex_unlock(&v->mu);
	return 0;
}

struct arca_vol *arca_vfile_vol(struct arca_vfile *vfile)
{
	return vfile->f->v;
}
