/* volume_merkle.c: the Merkle tree of one file, kept level by level so that
 * a write only marks a leaf and a commit recomputes just the marked nodes
 * and their ancestors (docs/VOLUMES.md "Leaf table and Merkle tree").
 *
 * Level 0 holds the leaf hashes; level k+1 has ceil(n_k / 2) nodes, the last
 * one a copy of its single child when n_k is odd; the top level has one
 * node, the root. Hashes are not secret, but are wiped like every other
 * buffer the volume keeps. */
#include <stdlib.h>
#include <string.h>

#include "arca/crypto.h"
#include "volume_int.h"

void vm_init(struct vmerkle *m)
{
	memset(m, 0, sizeof *m);
}

void vm_free(struct vmerkle *m)
{
	for (unsigned l = 0; l < VM_LEVELS; l++) {
		vol_free(m->h[l], m->cap[l] * 32);
		vol_free(m->dirty[l], (m->cap[l] + 63) / 64 * 8);
	}
	vm_init(m);
}

static int grow_level(struct vmerkle *m, unsigned l, uint64_t n)
{
	if (n <= m->cap[l])
		return 0;
	uint64_t cap = m->cap[l] ? m->cap[l] : 64;
	while (cap < n)
		cap *= 2;
	uint8_t *h = vol_zalloc(cap * 32);
	uint64_t *d = vol_zalloc((cap + 63) / 64 * 8);
	if (!h || !d) {
		free(h);
		free(d);
		return ARCA_ENOMEM;
	}
	if (m->cap[l]) {
		memcpy(h, m->h[l], m->cap[l] * 32);
		memcpy(d, m->dirty[l], (m->cap[l] + 63) / 64 * 8);
	}
	vol_free(m->h[l], m->cap[l] * 32);
	vol_free(m->dirty[l], (m->cap[l] + 63) / 64 * 8);
	m->h[l] = h;
	m->dirty[l] = d;
	m->cap[l] = cap;
	return 0;
}

static inline void set_bit(uint64_t *b, uint64_t i)
{
	b[i / 64] |= (uint64_t)1 << (i % 64);
}

static void set_range(uint64_t *b, uint64_t from, uint64_t to)
{
	while (from < to && from % 64 != 0)
		set_bit(b, from++);
	for (; from + 64 <= to; from += 64)
		b[from / 64] = ~(uint64_t)0;
	while (from < to)
		set_bit(b, from++);
}

static void clear_from(uint64_t *b, uint64_t from, uint64_t cap)
{
	if (!b)
		return;
	if (from % 64 != 0) {
		b[from / 64] &= ((uint64_t)1 << (from % 64)) - 1;
		from += 64 - from % 64;
	}
	for (; from < cap; from += 64)
		b[from / 64] = 0;
}

int vm_resize(struct vmerkle *m, uint64_t n)
{
	uint64_t want[VM_LEVELS] = {0};
	unsigned nlev = 0;
	for (uint64_t k = n; k > 0; k = k == 1 ? 0 : (k + 1) / 2) {
		ENSURE(nlev < VM_LEVELS, ARCA_ETOOBIG);
		want[nlev++] = k;
	}
	for (unsigned l = 0; l < nlev; l++)
		GUARD(grow_level(m, l, want[l]));
	for (unsigned l = 0; l < VM_LEVELS; l++) {
		uint64_t old = l < m->nlev ? m->n[l] : 0;
		if (want[l] < old || l >= nlev)
			clear_from(m->dirty[l], want[l], m->cap[l]);
		else if (want[l] > old)
			set_range(m->dirty[l], old, want[l]);
		m->n[l] = want[l];
		if (want[l] > 0)
			set_bit(m->dirty[l], want[l] - 1); /* the right edge changes shape */
	}
	m->nlev = nlev;
	return 0;
}

void vm_mark(struct vmerkle *m, uint64_t leaf)
{
	if (m->nlev > 0 && leaf < m->n[0])
		set_bit(m->dirty[0], leaf);
}

void vm_mark_all(struct vmerkle *m)
{
	for (unsigned l = 0; l < m->nlev; l++)
		set_range(m->dirty[l], 0, m->n[l]);
}

static int hash_parts(EVP_MD_CTX *md, const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
		      uint8_t out[32])
{
	unsigned int len = 0;
	/* The context was set up once with a fetched SHA-256 (vol_md_new):
	 * reusing it skips the per-call algorithm lookup, a third of the cost
	 * of hashing 65 bytes. */
	ENSURE(EVP_DigestInit_ex(md, NULL, NULL) == 1, ARCA_ECRYPTO);
	ENSURE(EVP_DigestUpdate(md, a, an) == 1 && EVP_DigestUpdate(md, b, bn) == 1, ARCA_ECRYPTO);
	ENSURE(cn == 0 || EVP_DigestUpdate(md, c, cn) == 1, ARCA_ECRYPTO);
	ENSURE(EVP_DigestFinal_ex(md, out, &len) == 1 && len == 32, ARCA_ECRYPTO);
	return 0;
}

static int leaf_hash(EVP_MD_CTX *md, const uint8_t fid[VOL_FID_LEN], uint64_t i, const uint8_t leaf[VOL_LEAF],
		     uint8_t out[32])
{
	uint8_t pre[1 + VOL_FID_LEN + 8];
	pre[0] = 0x00;
	memcpy(pre + 1, fid, VOL_FID_LEN);
	for (int k = 0; k < 8; k++)
		pre[1 + VOL_FID_LEN + k] = (uint8_t)(i >> (8 * k));
	return hash_parts(md, pre, sizeof pre, leaf, VOL_LEAF, NULL, 0, out);
}

static int node_hash(EVP_MD_CTX *md, const uint8_t *below, uint64_t nbelow, uint64_t j, uint8_t out[32])
{
	static const uint8_t one = 0x01;
	if (2 * j + 1 >= nbelow) {
		memcpy(out, below + 2 * j * 32, 32);
		return 0;
	}
	return hash_parts(md, &one, 1, below + 2 * j * 32, 32, below + (2 * j + 1) * 32, 32, out);
}

static int empty_root(EVP_MD_CTX *md, const uint8_t fid[VOL_FID_LEN], uint8_t root[32])
{
	static const uint8_t two = 0x02;
	return hash_parts(md, &two, 1, fid, VOL_FID_LEN, NULL, 0, root);
}

int vm_root(struct vmerkle *m, EVP_MD_CTX *md_ctx, const uint8_t fid[VOL_FID_LEN], const uint8_t *leaves,
	    uint8_t root[32])
{
	EVP_MD_CTX *md = md_ctx;
	if (m->nlev == 0)
		return empty_root(md, fid, root);
	for (unsigned l = 0; l < m->nlev; l++) {
		uint64_t *d = m->dirty[l];
		for (uint64_t w = 0; w < (m->n[l] + 63) / 64; w++) {
			while (d[w]) {
				uint64_t j = w * 64 + (uint64_t)__builtin_ctzll(d[w]);
				d[w] &= d[w] - 1;
				if (j >= m->n[l])
					continue;
				if (l == 0)
					GUARD(leaf_hash(md, fid, j, leaves + j * VOL_LEAF, m->h[0] + j * 32));
				else
					GUARD(node_hash(md, m->h[l - 1], m->n[l - 1], j, m->h[l] + j * 32));
				if (l + 1 < m->nlev)
					set_bit(m->dirty[l + 1], j / 2);
			}
		}
	}
	memcpy(root, m->h[m->nlev - 1], 32);
	return 0;
}

int vm_root_of(EVP_MD_CTX *md_ctx, const uint8_t fid[VOL_FID_LEN], const uint8_t *leaves, uint64_t n, uint8_t root[32])
{
	struct vmerkle m;
	vm_init(&m);
	int rc = vm_resize(&m, n);
	if (rc == 0) {
		vm_mark_all(&m);
		rc = vm_root(&m, md_ctx, fid, leaves, root);
	}
	vm_free(&m);
	return rc;
}
