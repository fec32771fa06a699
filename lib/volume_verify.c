/* volume_verify.c: arca_vol_verify reads the last commit back from disk as
 * a reader with no cache would (manifest, every leaf table against its
 * root, every record against its leaf) and reports each fault it meets, so
 * that `arca fs verify` can say which file and block is damaged. Writes
 * not yet committed are not looked at: they live in the other slot. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arca/crypto.h"
#include "volume_int.h"

struct vctx {
	struct arca_vol *v;
	arca_vol_problem_fn problem;
	arca_vol_progress_fn progress;
	void *arg;
	int count;
	uint64_t done, total;
	uint8_t *leaves;
	uint64_t nleaves;
};

static void report(struct vctx *c, const char *path, const char *fmt, ...) ARCA_PRINTF(3, 4);

static void report(struct vctx *c, const char *path, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	c->count++;
	if (c->problem)
		c->problem(path, what, c->arg);
}

static void advance(struct vctx *c, uint64_t bytes)
{
	c->done += bytes;
	if (c->progress)
		c->progress(c->done, c->total, c->arg);
}

/* The sealed manifest of the last commit: normally `manifest`; a
 * read-only open may have taken manifest.new. */
static int read_sealed(struct vctx *c, struct arca_buf *sealed)
{
	static const char *names[2] = {"manifest", "manifest.new"};
	struct arca_vol *v = c->v;
	for (int i = 0; i < 2; i++) {
		uint8_t tag[ARCA_VOL_TAG_LEN];
		arca_buf_reset(sealed);
		if (vol_read_all(v->dirfd, names[i], VOL_MANIFEST_MAX + 64, sealed) == 0 &&
		    arca_sha256(sealed->p, sealed->len, tag) == 0 && arca_ct_eq(tag, v->tag, sizeof tag))
			return 0;
	}
	char hex[ARCA_VOL_TAG_HEX];
	arca_vol_tag_hex(v->tag, hex);
	report(c, "", "no manifest on disk has the tag of the last commit (%s): replaced or changed since", hex);
	arca_buf_reset(sealed);
	if (vol_read_all(v->dirfd, "manifest", VOL_MANIFEST_MAX + 64, sealed) < 0) {
		report(c, "", "the manifest is missing");
		return ARCA_ENOTFOUND;
	}
	return 0;
}

/* m's paths point into pt. */
static int read_manifest(struct vctx *c, struct arca_buf *pt, struct vol_manifest *m)
{
	struct arca_vol *v = c->v;
	struct arca_buf sealed;
	arca_buf_init(&sealed, VOL_MANIFEST_MAX + 64, 0);
	int rc = read_sealed(c, &sealed);
	if (rc == 0) {
		rc = vol_manifest_open(v->kman, v->hdr.id, v->hdr.mode, sealed.p, sealed.len, pt);
		if (rc < 0)
			report(c, "", "the manifest does not verify: damaged or changed");
	}
	if (rc == 0) {
		struct arca_errbuf e;
		rc = vol_manifest_parse(pt->p, pt->len, m, &e);
		if (rc < 0)
			report(c, "", "%s", e.msg);
	}
	arca_buf_free(&sealed);
	return rc;
}

/* The leaf table of r into c->leaves; a problem and nonzero if it is not
 * the one r's root names. */
static int check_table(struct vctx *c, const struct vol_rec *r, const char *path)
{
	struct arca_vol *v = c->v;
	char name[VOL_NAME_MAX];
	uint64_t count = vol_blocks(r->size);
	struct arca_buf b;
	struct arca_errbuf e;
	vol_table_name(r->fid, r->gen, name);
	arca_buf_init(&b, VOL_LT_HDR + count * VOL_LEAF, 1);
	int rc = vol_read_all(v->dfd, name, VOL_LT_HDR + count * VOL_LEAF, &b);
	if (rc == ARCA_ENOTFOUND)
		report(c, path, "leaf table d/%s is missing", name);
	else if (rc == ARCA_ETOOBIG)
		report(c, path, "leaf table d/%s is longer than the file's %llu blocks need", name,
		       (unsigned long long)count);
	else if (rc < 0)
		report(c, path, "leaf table d/%s cannot be read: %s", name, arca_strerror(rc));
	int64_t n = rc == 0 ? arca_vol_leaves_check(b.p, b.len, &e) : -1;
	if (rc == 0 && n < 0)
		report(c, path, "leaf table d/%s: %s", name, e.msg);
	else if (rc == 0 && (uint64_t)n != count)
		report(c, path, "leaf table d/%s has %lld leaves, the file's size needs %llu", name, (long long)n,
		       (unsigned long long)count);
	uint8_t root[32];
	int ok = rc == 0 && n >= 0 && (uint64_t)n == count &&
		 vm_root_of(v->md, r->fid, b.p + VOL_LT_HDR, count, root) == 0;
	if (ok && !arca_ct_eq(root, r->root, 32)) {
		report(c, path, "leaf table d/%s does not match the manifest (replaced, or another version)", name);
		ok = 0;
	}
	if (ok && count > 0) {
		c->leaves = vol_zalloc(count * VOL_LEAF);
		ok = c->leaves != NULL;
		if (ok)
			memcpy(c->leaves, b.p + VOL_LT_HDR, count * VOL_LEAF);
		c->nleaves = count;
	}
	arca_buf_free(&b);
	return ok ? 0 : -1;
}

struct fstate {
	const struct vol_rec *r;
	const char *path;
	EVP_CIPHER_CTX *dec;
	uint8_t aad[VOL_AAD_LEN];
	int fd[2];
	int missing[2];
};

static ssize_t read_records(struct vctx *c, struct fstate *s, int slot, uint64_t i, unsigned k)
{
	if (s->fd[slot] < 0 && !s->missing[slot]) {
		char name[VOL_NAME_MAX];
		vol_slot_name(s->r->fid, slot, name);
		s->fd[slot] = openat(c->v->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		s->missing[slot] = s->fd[slot] < 0;
	}
	if (s->fd[slot] < 0)
		return 0;
	size_t want = (size_t)k * ARCA_VOL_RECORD, got = 0;
	while (got < want) {
		ssize_t n = pread(s->fd[slot], c->v->io + got, want - got, (off_t)(i * ARCA_VOL_RECORD + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void check_block(struct vctx *c, struct fstate *s, uint64_t i, uint8_t *rec, uint8_t *block)
{
	const char *why;
	if (vb_record_open(s->dec, s->aad, c->v->hdr.mode, i, rec, c->leaves + i * VOL_LEAF, block, &why) < 0) {
		report(c, s->path, "block %llu: %s", (unsigned long long)i, why);
		return;
	}
	size_t tail = (size_t)(s->r->size % ARCA_VOL_BLOCK);
	if (i + 1 == c->nleaves && tail != 0) {
		for (size_t k = tail; k < ARCA_VOL_BLOCK; k++) {
			if (block[k] != 0) {
				report(c, s->path, "block %llu: bytes after the end of the file are not zero",
				       (unsigned long long)i);
				break;
			}
		}
	}
}

static void check_records(struct vctx *c, struct fstate *s)
{
	uint8_t *block = malloc(ARCA_VOL_BLOCK);
	if (!block) {
		report(c, s->path, "out of memory");
		return;
	}
	for (uint64_t i = 0; i < c->nleaves;) {
		int slot = c->leaves[i * VOL_LEAF + 28];
		unsigned k = 1;
		while (k < VOL_IO_RECORDS && i + k < c->nleaves && c->leaves[(i + k) * VOL_LEAF + 28] == slot)
			k++;
		ssize_t got = read_records(c, s, slot, i, k);
		for (unsigned j = 0; j < k; j++) {
			if (got < (ssize_t)((j + 1) * (size_t)ARCA_VOL_RECORD))
				report(c, s->path, "block %llu: the record is missing (slot file %s)",
				       (unsigned long long)(i + j), s->missing[slot] ? "missing" : "cut short");
			else
				check_block(c, s, i + j, c->v->io + (size_t)j * ARCA_VOL_RECORD, block);
		}
		i += k;
		advance(c, (uint64_t)k * ARCA_VOL_BLOCK);
	}
	vol_free(block, ARCA_VOL_BLOCK);
}

static void verify_file(struct vctx *c, const struct vol_rec *r)
{
	char path[ARCA_VOL_PATH_MAX + 1];
	memcpy(path, r->path, r->plen);
	path[r->plen] = '\0';
	uint64_t bytes = vol_blocks(r->size) * ARCA_VOL_BLOCK;
	c->leaves = NULL;
	c->nleaves = 0;
	if (check_table(c, r, path) < 0) {
		advance(c, bytes);
		return;
	}
	struct fstate s = {.r = r, .path = path, .fd = {-1, -1}};
	vol_block_aad_prefix(c->v->hdr.id, c->v->hdr.mode, r->fid, s.aad);
	if (vb_cipher_ctx(c->v, r->fid, 0, &s.dec) < 0) {
		report(c, path, "cannot set up the file's cipher");
		advance(c, bytes);
	} else {
		check_records(c, &s);
	}
	EVP_CIPHER_CTX_free(s.dec);
	for (int k = 0; k < 2; k++)
		if (s.fd[k] >= 0)
			close(s.fd[k]);
	vol_free(c->leaves, c->nleaves * VOL_LEAF);
	c->leaves = NULL;
}

static int verify_locked(struct vctx *c)
{
	struct vol_manifest m;
	struct arca_buf pt;
	arca_buf_init(&pt, VOL_MANIFEST_MAX + 64, 1);
	if (read_manifest(c, &pt, &m) == 0) {
		for (uint32_t k = 0; k < m.count; k++)
			c->total += vol_blocks(m.recs[k].size) * ARCA_VOL_BLOCK;
		for (uint32_t k = 0; k < m.count; k++)
			if (m.recs[k].type == ARCA_VOL_FILE)
				verify_file(c, &m.recs[k]);
		vol_manifest_free(&m);
	}
	arca_buf_free(&pt);
	return c->count;
}

int arca_vol_verify(struct arca_vol *v, arca_vol_problem_fn problem, arca_vol_progress_fn progress, void *arg)
{
	struct vctx c = {.v = v, .problem = problem, .progress = progress, .arg = arg};
	pthread_mutex_lock(&v->mu);
	int rc = verify_locked(&c);
	pthread_mutex_unlock(&v->mu);
	return rc;
}
