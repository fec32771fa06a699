/* volume_block.c: the records of one file (docs/VOLUMES.md "Block records").
 *
 * Speed comes from three things: each open file keeps two GCM contexts with
 * its key already expanded (only the nonce changes per record), runs of
 * consecutive records move with one pread/pwrite, and whole blocks are
 * sealed from the caller's buffer without a copy and opened in the volume's
 * io buffer with one copy out (made only after the tag verified). Partial
 * blocks go through the volume's bounded cache, which also holds blocks
 * written but not yet sealed (write-back); all of it is wiped when freed.
 *
 * The A/B rule lives in target_slot(): a block is always written to the
 * slot its committed record is not in, so nothing before the next commit
 * can damage what the last commit refers to. In a child of fork nothing is
 * written at all (its dirty blocks are copies of the parent's, and the
 * parent writes and commits them): they stay pinned in the cache. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arca/crypto.h"
#include "volume_int.h"

static const uint8_t zero_block[ARCA_VOL_BLOCK];

#define REC_BODY VOL_NONCE
#define REC_TAG (VOL_NONCE + ARCA_VOL_BLOCK)

/* ---- logging ---- */

void vb_logf(struct arca_vol *v, const struct vf *f, const char *fmt, ...)
{
	if (!v->log)
		return;
	char what[256], line[PATH_MAX + ARCA_VOL_PATH_MAX + 320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(line, sizeof line, "volume %s: %s: %s", v->dir, f->ent ? f->ent->path : "(deleted file)", what);
	v->log(line, v->log_arg);
}

/* ---- GCM ---- */

int vb_cipher_ctx(struct arca_vol *v, const uint8_t fid[VOL_FID_LEN], int enc, EVP_CIPHER_CTX **out)
{
	uint8_t k[32];
	GUARD(vol_derive(v->key, v->hdr.id, "arca-vol/1 file", fid, k));
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok = c != NULL;
	if (ok && enc)
		ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, NULL) == 1;
	else if (ok)
		ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, NULL) == 1;
	arca_wipe(k, sizeof k);
	if (!ok) {
		EVP_CIPHER_CTX_free(c);
		return c ? ARCA_ECRYPTO : ARCA_ENOMEM;
	}
	*out = c;
	return 0;
}

static void aad_index(uint8_t aad[VOL_AAD_LEN], uint64_t idx)
{
	for (int k = 0; k < 8; k++)
		aad[VOL_AAD_LEN - 8 + k] = (uint8_t)(idx >> (8 * k));
}

/* rec holds the nonce on entry; gets body and tag. */
static int record_seal(EVP_CIPHER_CTX *c, uint8_t aad[VOL_AAD_LEN], enum arca_vol_mode mode, uint64_t idx,
		       const uint8_t *pt, uint8_t *rec)
{
	int l;
	uint8_t fin[16];
	aad_index(aad, idx);
	ENSURE(EVP_EncryptInit_ex(c, NULL, NULL, NULL, rec) == 1, ARCA_ECRYPTO);
	ENSURE(EVP_EncryptUpdate(c, NULL, &l, aad, VOL_AAD_LEN) == 1, ARCA_ECRYPTO);
	if (mode == ARCA_VOL_ENCRYPTED) {
		ENSURE(EVP_EncryptUpdate(c, rec + REC_BODY, &l, pt, ARCA_VOL_BLOCK) == 1 && l == ARCA_VOL_BLOCK,
		       ARCA_ECRYPTO);
	} else {
		ENSURE(EVP_EncryptUpdate(c, NULL, &l, pt, ARCA_VOL_BLOCK) == 1, ARCA_ECRYPTO);
		memcpy(rec + REC_BODY, pt, ARCA_VOL_BLOCK);
	}
	ENSURE(EVP_EncryptFinal_ex(c, fin, &l) == 1, ARCA_ECRYPTO);
	ENSURE(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VOL_TAGB, rec + REC_TAG) == 1, ARCA_ECRYPTO);
	return 0;
}

int vb_record_open(EVP_CIPHER_CTX *c, uint8_t aad[VOL_AAD_LEN], enum arca_vol_mode mode, uint64_t idx, uint8_t *rec,
		   const uint8_t leaf[VOL_LEAF], uint8_t *out, const char **why)
{
	/* A valid record of another version of the block (or of another
	 * block) carries another nonce and tag than the leaf names. */
	if (!(arca_ct_eq(rec, leaf, VOL_NONCE) & arca_ct_eq(rec + REC_TAG, leaf + VOL_NONCE, VOL_TAGB))) {
		*why = "the record is not the one the leaf table names (an older, moved or copied record)";
		return ARCA_ECRYPTO;
	}
	int l;
	uint8_t tag[VOL_TAGB], fin[16];
	memcpy(tag, leaf + VOL_NONCE, VOL_TAGB);
	aad_index(aad, idx);
	*why = "authentication failed (the record was changed)";
	ENSURE(EVP_DecryptInit_ex(c, NULL, NULL, NULL, leaf) == 1, ARCA_ECRYPTO);
	ENSURE(EVP_DecryptUpdate(c, NULL, &l, aad, VOL_AAD_LEN) == 1, ARCA_ECRYPTO);
	/* In place: out (the program's buffer, when a whole block is read)
	 * never holds a byte that has not verified. */
	if (mode == ARCA_VOL_ENCRYPTED)
		ENSURE(EVP_DecryptUpdate(c, rec + REC_BODY, &l, rec + REC_BODY, ARCA_VOL_BLOCK) == 1, ARCA_ECRYPTO);
	else
		ENSURE(EVP_DecryptUpdate(c, NULL, &l, rec + REC_BODY, ARCA_VOL_BLOCK) == 1, ARCA_ECRYPTO);
	ENSURE(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VOL_TAGB, tag) == 1, ARCA_ECRYPTO);
	if (EVP_DecryptFinal_ex(c, fin, &l) <= 0) {
		if (mode == ARCA_VOL_ENCRYPTED)
			arca_wipe(rec + REC_BODY, ARCA_VOL_BLOCK);
		return ARCA_ECRYPTO;
	}
	memcpy(out, rec + REC_BODY, ARCA_VOL_BLOCK);
	return 0;
}

/* ---- slot files ---- */

int vb_open_slot(struct vf *f, int slot, int write)
{
	struct arca_vol *v = f->v;
	struct vfdata *d = f->d;
	if (d->fd[slot] >= 0 && (!write || d->fdw[slot]))
		return 0;
	ENSURE(!write || !v->ro, ARCA_EROFS);
	char name[VOL_NAME_MAX];
	vol_slot_name(f->fid, slot, name);
	int flags = (v->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | (write ? O_CREAT : 0);
	int fd = openat(v->dfd, name, flags, 0600);
	if (fd < 0)
		return vol_sys(errno);
	if (d->fd[slot] >= 0)
		close(d->fd[slot]);
	d->fd[slot] = fd;
	d->fdw[slot] = !v->ro;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ARCA_EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Reads up to n bytes; fewer only at the end of the file. */
static ssize_t pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ARCA_EIO;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* ---- per-file state ---- */

static int target_slot(const struct vfdata *d, uint64_t i)
{
	if (i < d->ccount)
		return (d->bst[i] & BST_CSLOT1) ? 0 : 1;
	return 0;
}

static int leaf_slot(const struct vfdata *d, uint64_t i)
{
	return d->leaves[i * VOL_LEAF + 28];
}

/* Room for n blocks in leaves and bst (bst also covers the committed
 * version, which may be longer than the current one). */
static int reserve_blocks(struct vfdata *d, uint64_t n)
{
	if (n <= d->cap)
		return 0;
	ENSURE(n <= VOL_BLOCKS_MAX, ARCA_ETOOBIG);
	uint64_t cap = d->cap ? d->cap : 16;
	while (cap < n)
		cap *= 2;
	uint8_t *leaves = vol_zalloc(cap * VOL_LEAF), *bst = vol_zalloc(cap);
	if (!leaves || !bst) {
		free(leaves);
		free(bst);
		return ARCA_ENOMEM;
	}
	if (d->cap) {
		memcpy(leaves, d->leaves, d->cap * VOL_LEAF);
		memcpy(bst, d->bst, d->cap);
	}
	vol_free(d->leaves, d->cap * VOL_LEAF);
	vol_free(d->bst, d->cap);
	d->leaves = leaves;
	d->bst = bst;
	d->cap = cap;
	return 0;
}

static int load_table(struct vf *f, struct arca_errbuf *e)
{
	struct arca_vol *v = f->v;
	struct vfdata *d = f->d;
	char name[VOL_NAME_MAX];
	uint64_t count = vol_blocks(f->size);
	vol_table_name(f->fid, f->gen, name);
	int fd = openat(v->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return arca_errf(e, ARCA_ECRYPTO, "leaf table d/%s is missing", name);
	uint8_t hdr[VOL_LT_HDR];
	uint64_t got;
	int rc = ARCA_ECRYPTO;
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0 || (uint64_t)end != VOL_LT_HDR + count * VOL_LEAF) {
		arca_errf(e, rc, "leaf table d/%s has %lld bytes, not the %llu its file's size needs", name,
			  (long long)end, (unsigned long long)(VOL_LT_HDR + count * VOL_LEAF));
		goto out;
	}
	if (pread_full(fd, hdr, VOL_LT_HDR, 0) != VOL_LT_HDR || vol_leaves_header(hdr, sizeof hdr, &got, e) < 0 ||
	    got != count) {
		arca_errf(e, rc, "leaf table d/%s: bad header or count", name);
		goto out;
	}
	/* Only now, with a table of the right length on disk, is the memory
	 * for it taken. */
	rc = reserve_blocks(d, count);
	if (rc < 0) {
		arca_errf(e, rc, "no memory for the %llu leaves of d/%s", (unsigned long long)count, name);
		goto out;
	}
	rc = ARCA_ECRYPTO;
	if (count > 0 && pread_full(fd, d->leaves, count * VOL_LEAF, VOL_LT_HDR) != (ssize_t)(count * VOL_LEAF)) {
		arca_errf(e, ARCA_EIO, "cannot read leaf table d/%s", name);
		goto out;
	}
	for (uint64_t i = 0; i < count; i++) {
		if (!vol_leaf_ok(d->leaves + i * VOL_LEAF)) {
			arca_errf(e, rc, "leaf table d/%s: leaf %llu is malformed", name, (unsigned long long)i);
			goto out;
		}
		d->bst[i] = leaf_slot(d, i) ? BST_CSLOT1 : 0;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

static void vfdata_free(struct vfdata *d)
{
	for (int s = 0; s < 2; s++)
		if (d->fd[s] >= 0)
			close(d->fd[s]);
	EVP_CIPHER_CTX_free(d->enc);
	EVP_CIPHER_CTX_free(d->dec);
	vol_free(d->leaves, d->cap * VOL_LEAF);
	vol_free(d->bst, d->cap);
	vm_free(&d->tree);
	vol_free(d, sizeof *d);
}

static int load_verified(struct vf *f, struct arca_errbuf *e)
{
	struct vfdata *d = f->d;
	uint64_t count = vol_blocks(f->size);
	if (!f->committed) /* created since the commit: empty so far */
		return 0;
	GUARD(load_table(f, e));
	d->nleaves = d->ccount = count;
	GUARD(vm_resize(&d->tree, count));
	vm_mark_all(&d->tree);
	uint8_t root[32];
	GUARD(vm_root(&d->tree, f->v->md, f->fid, d->leaves, root));
	if (!arca_ct_eq(root, f->root, 32))
		return arca_errf(e, ARCA_ECRYPTO,
				 "leaf table does not match the manifest (replaced, or from another version of the file)");
	return 0;
}

int vb_load(struct vf *f, struct arca_errbuf *e)
{
	struct arca_vol *v = f->v;
	if (f->d)
		return 0;
	struct vfdata *d = vol_zalloc(sizeof *d);
	if (!d)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	d->fd[0] = d->fd[1] = -1;
	vm_init(&d->tree);
	vol_block_aad_prefix(v->hdr.id, v->hdr.mode, f->fid, d->aad);
	f->d = d;
	int rc = vb_cipher_ctx(v, f->fid, 0, &d->dec);
	if (rc == 0 && !v->ro)
		rc = vb_cipher_ctx(v, f->fid, 1, &d->enc);
	if (rc < 0)
		arca_errf(e, rc, "cannot set up the file's cipher");
	else
		rc = load_verified(f, e);
	if (rc < 0) {
		vb_logf(v, f, "leaf table: %s", e ? e->msg : arca_strerror(rc));
		f->d = NULL;
		vfdata_free(d);
		return rc;
	}
	f->lnext = v->loaded.lnext;
	f->lprev = &v->loaded;
	v->loaded.lnext->lprev = f;
	v->loaded.lnext = f;
	return 0;
}

void vb_unload(struct vf *f)
{
	if (!f->d)
		return;
	vc_drop_file(&f->v->cache, f, 0);
	f->lprev->lnext = f->lnext;
	f->lnext->lprev = f->lprev;
	f->lnext = f->lprev = NULL;
	vfdata_free(f->d);
	f->d = NULL;
}

/* ---- moving records ---- */

/* Seals blocks i..i+k-1 (contents src[j]) into their target slot, all one
 * slot, and makes them current. */
static int write_run(struct vf *f, uint64_t i, unsigned k, const uint8_t *const src[])
{
	struct arca_vol *v = f->v;
	struct vfdata *d = f->d;
	int slot = target_slot(d, i);
	uint8_t nonces[VOL_IO_RECORDS * VOL_NONCE];
	GUARD(vb_open_slot(f, slot, 1));
	GUARD(arca_random(nonces, (size_t)k * VOL_NONCE));
	for (unsigned j = 0; j < k; j++) {
		uint8_t *rec = v->io + (size_t)j * ARCA_VOL_RECORD;
		memcpy(rec, nonces + j * VOL_NONCE, VOL_NONCE);
		GUARD(record_seal(d->enc, d->aad, v->hdr.mode, i + j, src[j], rec));
	}
	d->wrote[slot] = 1;
	GUARD(pwrite_all(d->fd[slot], v->io, (size_t)k * ARCA_VOL_RECORD, i * ARCA_VOL_RECORD));
	/* A full run is most likely part of a stream: start it on its way to
	 * the disk now, so that the disk works while the next run is sealed
	 * and the commit's fdatasync finds little left (measured: write +
	 * commit of 256 MiB went from 0.6x to about 0.95x of write + fsync). */
	if (k == VOL_IO_RECORDS)
		(void)sync_file_range(d->fd[slot], (off_t)(i * ARCA_VOL_RECORD), (off_t)k * ARCA_VOL_RECORD,
				      SYNC_FILE_RANGE_WRITE);
	for (unsigned j = 0; j < k; j++) {
		const uint8_t *rec = v->io + (size_t)j * ARCA_VOL_RECORD;
		uint8_t *leaf = d->leaves + (i + j) * VOL_LEAF;
		memcpy(leaf, rec, VOL_NONCE);
		memcpy(leaf + VOL_NONCE, rec + REC_TAG, VOL_TAGB);
		leaf[28] = (uint8_t)slot;
		leaf[29] = leaf[30] = leaf[31] = 0;
		d->bst[i + j] &= (uint8_t)~BST_ZERO;
		vm_mark(&d->tree, i + j);
	}
	return 0;
}

/* Opens blocks i..i+k-1, all in one slot, into dst[j]. */
static int read_run(struct vf *f, uint64_t i, unsigned k, uint8_t *const dst[])
{
	struct arca_vol *v = f->v;
	struct vfdata *d = f->d;
	int slot = leaf_slot(d, i);
	size_t want = (size_t)k * ARCA_VOL_RECORD;
	ssize_t got = 0;
	int rc = vb_open_slot(f, slot, 0);
	if (rc == 0)
		got = pread_full(d->fd[slot], v->io, want, i * ARCA_VOL_RECORD);
	if (rc == ARCA_ENOTFOUND)
		got = 0;
	else if (rc < 0 || got < 0)
		return ARCA_EIO;
	for (unsigned j = 0; j < k; j++) {
		const char *why;
		if ((size_t)got < (size_t)(j + 1) * ARCA_VOL_RECORD) {
			arca_wipe(dst[j], ARCA_VOL_BLOCK);
			vb_logf(v, f, "block %llu: the record is missing (slot file cut short)",
				(unsigned long long)(i + j));
			return ARCA_ECRYPTO;
		}
		if (vb_record_open(d->dec, d->aad, v->hdr.mode, i + j, v->io + (size_t)j * ARCA_VOL_RECORD,
				   d->leaves + (i + j) * VOL_LEAF, dst[j], &why) < 0) {
			vb_logf(v, f, "block %llu: %s", (unsigned long long)(i + j), why);
			return ARCA_ECRYPTO;
		}
	}
	return 0;
}

/* ---- the block cache ---- */

static size_t cache_hash(const struct vcache *c, const struct vf *f, uint64_t idx)
{
	uint64_t h = (uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ull ^ idx * 0xff51afd7ed558ccdull;
	h ^= h >> 31;
	return (size_t)(h & (c->tabsize - 1));
}

static int cache_rehash(struct vcache *c, size_t max)
{
	size_t ts = 64;
	while (ts < 2 * max)
		ts *= 2;
	if (ts <= c->tabsize)
		return 0;
	struct cblk **tab = calloc(ts, sizeof *tab);
	ENSURE(tab != NULL, ARCA_ENOMEM);
	free(c->tab);
	c->tab = tab;
	c->tabsize = ts;
	for (struct cblk *b = c->lru.next; b != &c->lru; b = b->next) {
		size_t h = cache_hash(c, b->f, b->idx);
		b->hnext = tab[h];
		tab[h] = b;
	}
	return 0;
}

int vc_init(struct vcache *c, size_t max)
{
	memset(c, 0, sizeof *c);
	c->lru.next = c->lru.prev = &c->lru;
	c->max = max;
	return cache_rehash(c, max);
}

static struct cblk *cache_get(struct vcache *c, const struct vf *f, uint64_t idx)
{
	for (struct cblk *b = c->tab[cache_hash(c, f, idx)]; b; b = b->hnext)
		if (b->f == f && b->idx == idx)
			return b;
	return NULL;
}

static void lru_unlink(struct cblk *b)
{
	b->prev->next = b->next;
	b->next->prev = b->prev;
}

static void lru_front(struct vcache *c, struct cblk *b)
{
	b->next = c->lru.next;
	b->prev = &c->lru;
	c->lru.next->prev = b;
	c->lru.next = b;
}

static void cache_unhash(struct vcache *c, struct cblk *b)
{
	struct cblk **pp = &c->tab[cache_hash(c, b->f, b->idx)];
	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
}

static void cache_remove(struct vcache *c, struct cblk *b)
{
	cache_unhash(c, b);
	lru_unlink(b);
	vol_free(b->data, ARCA_VOL_BLOCK);
	free(b);
	c->n--;
}

void vc_drop_file(struct vcache *c, const struct vf *f, uint64_t from)
{
	for (struct cblk *b = c->lru.next, *next; b != &c->lru; b = next) {
		next = b->next;
		if (b->f == f && b->idx >= from)
			cache_remove(c, b);
	}
}

void vc_free(struct vcache *c)
{
	while (c->lru.next && c->lru.next != &c->lru)
		cache_remove(c, c->lru.next);
	free(c->tab);
	c->tab = NULL;
}

/* Seals the run of dirty cached blocks that b belongs to (one slot, at most
 * VOL_IO_RECORDS) and leaves them clean in the cache. */
static int flush_run(struct vcache *c, struct cblk *b)
{
	struct vf *f = b->f;
	struct vfdata *d = f->d;
	uint64_t i = b->idx;
	int slot = target_slot(d, i);
	struct cblk *run[VOL_IO_RECORDS];
	const uint8_t *src[VOL_IO_RECORDS];
	unsigned back = 0;
	while (i > 0 && back < VOL_IO_RECORDS / 2) {
		struct cblk *p = cache_get(c, f, i - 1);
		if (!p || !p->dirty || target_slot(d, i - 1) != slot)
			break;
		i--, back++;
	}
	unsigned k = 0;
	for (; k < VOL_IO_RECORDS && i + k < d->nleaves; k++) {
		struct cblk *p = cache_get(c, f, i + k);
		if (!p || !p->dirty || target_slot(d, i + k) != slot)
			break;
		run[k] = p;
		src[k] = p->data;
	}
	GUARD(write_run(f, i, k, src));
	for (unsigned j = 0; j < k; j++)
		run[j]->dirty = 0;
	return 0;
}

int vc_flush_all(struct arca_vol *v)
{
	struct vcache *c = &v->cache;
	for (struct cblk *b = c->lru.next; b != &c->lru; b = b->next)
		if (b->dirty)
			GUARD(flush_run(c, b));
	return 0;
}

/* ARCA_EBUSY: a child of fork whose cache is full of pinned dirty blocks
 * (vb_pread then reads around the cache). */
static int cache_make_room(struct vcache *c)
{
	struct cblk *old = c->lru.prev;
	while (c->n >= c->max && old != &c->lru) {
		struct cblk *prev = old->prev;
		if (old->dirty) {
			/* A child of fork must not write: its copy of a block the
			 * parent wrote would land in the slot the parent commits. */
			if (c->pin_dirty) {
				old = prev;
				continue;
			}
			GUARD(flush_run(c, old));
		}
		cache_remove(c, old);
		old = prev;
	}
	return c->n >= c->max ? ARCA_EBUSY : 0;
}

void vc_set_max(struct vcache *c, size_t max)
{
	c->max = max;
	(void)cache_rehash(c, max); /* a small table only makes chains longer */
	for (struct cblk *b = c->lru.prev, *prev; c->n > c->max && b != &c->lru; b = prev) {
		prev = b->prev;
		if (!b->dirty)
			cache_remove(c, b);
	}
}

static int cache_new(struct vcache *c, struct vf *f, uint64_t idx, struct cblk **out)
{
	GUARD(cache_make_room(c));
	struct cblk *b = calloc(1, sizeof *b);
	uint8_t *data = malloc(ARCA_VOL_BLOCK);
	if (!b || !data) {
		free(b);
		free(data);
		return ARCA_ENOMEM;
	}
	b->f = f;
	b->idx = idx;
	b->data = data;
	size_t h = cache_hash(c, f, idx);
	b->hnext = c->tab[h];
	c->tab[h] = b;
	lru_front(c, b);
	c->n++;
	*out = b;
	return 0;
}

/* The cache entry of block i with its current contents. */
static int block_get(struct vf *f, uint64_t i, struct cblk **out)
{
	struct vcache *c = &f->v->cache;
	struct cblk *b = cache_get(c, f, i);
	if (b) {
		lru_unlink(b);
		lru_front(c, b);
		*out = b;
		return 0;
	}
	GUARD(cache_new(c, f, i, &b));
	int rc = 0;
	if (f->d->bst[i] & BST_ZERO)
		memset(b->data, 0, ARCA_VOL_BLOCK);
	else
		rc = read_run(f, i, 1, &b->data);
	if (rc < 0) {
		cache_remove(c, b);
		return rc;
	}
	*out = b;
	return 0;
}

/* ---- read, write, truncate ---- */

static int block_cached_or_zero(struct vf *f, uint64_t i)
{
	return (f->d->bst[i] & BST_ZERO) || cache_get(&f->v->cache, f, i) != NULL;
}

/* Whole blocks from i into dst: as many as share a slot, up to max. */
static int read_direct(struct vf *f, uint64_t i, uint64_t max, uint8_t *dst, unsigned *nread)
{
	struct vfdata *d = f->d;
	uint8_t *dsts[VOL_IO_RECORDS];
	int slot = leaf_slot(d, i);
	unsigned k = 1;
	dsts[0] = dst;
	while (k < VOL_IO_RECORDS && k < max && leaf_slot(d, i + k) == slot && !block_cached_or_zero(f, i + k)) {
		dsts[k] = dst + (size_t)k * ARCA_VOL_BLOCK;
		k++;
	}
	*nread = k;
	return read_run(f, i, k, dsts);
}

/* Part of block i without the cache (a child of fork whose cache holds
 * only pinned blocks). */
static int read_around(struct vf *f, uint64_t i, uint8_t *dst, size_t bo, size_t take)
{
	uint8_t block[ARCA_VOL_BLOCK], *p = block;
	int rc = read_run(f, i, 1, &p);
	if (rc == 0)
		memcpy(dst, block + bo, take);
	arca_wipe(block, sizeof block);
	return rc;
}

ssize_t vb_pread(struct vf *f, uint8_t *buf, size_t n, uint64_t off)
{
	if (off >= f->size || n == 0)
		return 0;
	if (n > f->size - off)
		n = (size_t)(f->size - off);
	if (n > (size_t)SSIZE_MAX)
		n = (size_t)SSIZE_MAX & ~(size_t)(ARCA_VOL_BLOCK - 1);
	size_t done = 0;
	while (done < n) {
		uint64_t pos = off + done, i = pos / ARCA_VOL_BLOCK;
		size_t bo = (size_t)(pos % ARCA_VOL_BLOCK), take = ARCA_VOL_BLOCK - bo;
		if (take > n - done)
			take = n - done;
		struct cblk *b = cache_get(&f->v->cache, f, i);
		if (b) {
			memcpy(buf + done, b->data + bo, take);
		} else if (f->d->bst[i] & BST_ZERO) {
			memset(buf + done, 0, take);
		} else if (take == ARCA_VOL_BLOCK) {
			unsigned k;
			GUARD(read_direct(f, i, (n - done) / ARCA_VOL_BLOCK, buf + done, &k));
			take = (size_t)k * ARCA_VOL_BLOCK;
		} else {
			int rc = block_get(f, i, &b);
			if (rc == ARCA_EBUSY)
				rc = read_around(f, i, buf + done, bo, take);
			else if (rc == 0)
				memcpy(buf + done, b->data + bo, take);
			GUARD(rc);
		}
		done += take;
	}
	return (ssize_t)n;
}

static void mark_changed(struct vf *f)
{
	f->changed = 1;
	if (f->ent) { /* an unlinked file changes no manifest */
		f->v->dirty = 1;
		f->ent->mtime_ns = vol_now_ns();
	}
}

/* Grows to size: the new blocks read as zeros until the commit seals them
 * (the old last block's tail is already zero). */
static int extend(struct vf *f, uint64_t size)
{
	struct vfdata *d = f->d;
	uint64_t nb = vol_blocks(size);
	GUARD(reserve_blocks(d, nb));
	GUARD(vm_resize(&d->tree, nb));
	for (uint64_t i = d->nleaves; i < nb; i++) {
		memset(d->leaves + i * VOL_LEAF, 0, VOL_LEAF);
		d->bst[i] = (uint8_t)((i < d->ccount ? d->bst[i] & BST_CSLOT1 : 0) | BST_ZERO);
	}
	d->nleaves = nb;
	f->size = size;
	return 0;
}

static int write_direct(struct vf *f, uint64_t i, uint64_t max, const uint8_t *src, unsigned *nwritten)
{
	struct vfdata *d = f->d;
	const uint8_t *srcs[VOL_IO_RECORDS];
	int slot = target_slot(d, i);
	unsigned k = 1;
	srcs[0] = src;
	while (k < VOL_IO_RECORDS && k < max && target_slot(d, i + k) == slot) {
		srcs[k] = src + (size_t)k * ARCA_VOL_BLOCK;
		k++;
	}
	GUARD(write_run(f, i, k, srcs));
	/* Only now: a failed write leaves earlier cached contents in place. */
	for (unsigned j = 0; j < k; j++) {
		struct cblk *b = cache_get(&f->v->cache, f, i + j);
		if (b)
			cache_remove(&f->v->cache, b);
	}
	*nwritten = k;
	return 0;
}

ssize_t vb_pwrite(struct vf *f, const uint8_t *buf, size_t n, uint64_t off)
{
	GUARD(vol_changeable(f->v));
	if (n == 0)
		return 0;
	ENSURE(off <= VOL_SIZE_MAX && n <= VOL_SIZE_MAX - off, ARCA_ETOOBIG);
	if (off + n > f->size)
		GUARD(extend(f, off + n));
	mark_changed(f);
	size_t done = 0;
	while (done < n) {
		uint64_t pos = off + done, i = pos / ARCA_VOL_BLOCK;
		size_t bo = (size_t)(pos % ARCA_VOL_BLOCK), take = ARCA_VOL_BLOCK - bo;
		if (take > n - done)
			take = n - done;
		if (take == ARCA_VOL_BLOCK) {
			unsigned k;
			GUARD(write_direct(f, i, (n - done) / ARCA_VOL_BLOCK, buf + done, &k));
			take = (size_t)k * ARCA_VOL_BLOCK;
		} else {
			struct cblk *b;
			GUARD(block_get(f, i, &b));
			memcpy(b->data + bo, buf + done, take);
			b->dirty = 1;
			f->d->bst[i] &= (uint8_t)~BST_ZERO;
		}
		done += take;
	}
	return (ssize_t)n;
}

int vb_truncate(struct vf *f, uint64_t size)
{
	struct vfdata *d = f->d;
	GUARD(vol_changeable(f->v));
	ENSURE(size <= VOL_SIZE_MAX, ARCA_ETOOBIG);
	if (size == f->size)
		return 0;
	if (size > f->size) {
		GUARD(extend(f, size));
		mark_changed(f);
		return 0;
	}
	uint64_t nb = vol_blocks(size);
	size_t tail = (size_t)(size % ARCA_VOL_BLOCK);
	if (tail != 0 && !(d->bst[nb - 1] & BST_ZERO)) {
		/* A file's last block is zero past its end (docs/VOLUMES.md). */
		struct cblk *b;
		GUARD(block_get(f, nb - 1, &b));
		memset(b->data + tail, 0, ARCA_VOL_BLOCK - tail);
		b->dirty = 1;
	}
	vc_drop_file(&f->v->cache, f, nb);
	for (uint64_t i = nb; i < d->nleaves; i++) {
		memset(d->leaves + i * VOL_LEAF, 0, VOL_LEAF);
		d->bst[i] &= BST_CSLOT1;
	}
	d->nleaves = nb;
	f->size = size;
	GUARD(vm_resize(&d->tree, nb));
	mark_changed(f);
	return 0;
}

/* ---- commit ---- */

static int seal_zero_blocks(struct vf *f)
{
	struct vfdata *d = f->d;
	const uint8_t *src[VOL_IO_RECORDS];
	for (unsigned j = 0; j < VOL_IO_RECORDS; j++)
		src[j] = zero_block;
	for (uint64_t i = 0; i < d->nleaves;) {
		if (!(d->bst[i] & BST_ZERO)) {
			i++;
			continue;
		}
		int slot = target_slot(d, i);
		unsigned k = 1;
		while (k < VOL_IO_RECORDS && i + k < d->nleaves && (d->bst[i + k] & BST_ZERO) &&
		       target_slot(d, i + k) == slot)
			k++;
		GUARD(write_run(f, i, k, src));
		i += k;
	}
	return 0;
}

static int write_table(struct vf *f, uint64_t gen)
{
	struct vfdata *d = f->d;
	char name[VOL_NAME_MAX];
	uint8_t hdr[VOL_LT_HDR];
	vol_table_name(f->fid, gen, name);
	vol_leaves_header_encode(d->nleaves, hdr);
	int fd = openat(f->v->dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return vol_sys(errno);
	int rc = pwrite_all(fd, hdr, sizeof hdr, 0);
	if (rc == 0)
		rc = pwrite_all(fd, d->leaves, d->nleaves * VOL_LEAF, VOL_LT_HDR);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = ARCA_EIO;
	close(fd);
	return rc;
}

int vb_flush(struct vf *f, uint8_t root[32], uint64_t *gen, struct arca_errbuf *e)
{
	struct vfdata *d = f->d;
	int rc = seal_zero_blocks(f);
	if (rc < 0)
		return arca_errf(e, rc, "cannot write the blocks of %s", f->ent ? f->ent->path : "a file");
	for (int s = 0; s < 2; s++) {
		if (!d->wrote[s])
			continue;
		if (fdatasync(d->fd[s]) < 0)
			return arca_errf(e, ARCA_EIO, "cannot flush the blocks of %s: %s",
					 f->ent ? f->ent->path : "a file", strerror(errno));
		d->wrote[s] = 0;
	}
	GUARD(vm_root(&d->tree, f->v->md, f->fid, d->leaves, root));
	if (f->next_gen <= f->gen)
		f->next_gen = f->gen + 1;
	*gen = f->next_gen++;
	rc = write_table(f, *gen);
	if (rc < 0)
		return arca_errf(e, rc, "cannot write the leaf table of %s", f->ent ? f->ent->path : "a file");
	return 0;
}

void vb_committed(struct vf *f, const uint8_t root[32], uint64_t gen)
{
	struct vfdata *d = f->d;
	for (uint64_t i = 0; i < d->nleaves; i++)
		d->bst[i] = leaf_slot(d, i) ? BST_CSLOT1 : 0;
	for (uint64_t i = d->nleaves; i < d->ccount; i++)
		d->bst[i] = 0;
	d->ccount = d->nleaves;
	memcpy(f->root, root, 32);
	f->gen = gen;
	f->changed = 0;
	f->committed = 1;
}
