/* volume_int.h: what the volume_*.c files share (not a public interface).
 *
 * volume_format.c  paths, the header, the manifest and leaf-table bytes,
 *                  key derivation and the additional-data strings
 * volume_merkle.c  the in-memory tree of one file (O(log n) per changed
 *                  leaf, roots recomputed at commit only)
 * volume_block.c   one file's records: GCM, the block cache, read, write,
 *                  truncate, flush
 * volume.c         open, create, commit, the namespace, vfiles
 * volume_verify.c  arca_vol_verify
 *
 * Locking: every public entry point takes v->mu; everything declared here
 * expects the caller to hold it. */
#ifndef ARCA_VOLUME_INT_H
#define ARCA_VOLUME_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "arca/buf.h"
#include "arca/volume.h"

#define VOL_ID_LEN 16
#define VOL_FID_LEN 16
#define VOL_NONCE 12
#define VOL_TAGB 16
#define VOL_LEAF 32
#define VOL_AAD_LEN (16 + VOL_ID_LEN + 1 + VOL_FID_LEN + 8)
/* Limits of this implementation (the format allows more): they keep every
 * offset computation far from overflow and every allocation bounded. */
#define VOL_SIZE_MAX ((uint64_t)1 << 40)
#define VOL_BLOCKS_MAX (VOL_SIZE_MAX / ARCA_VOL_BLOCK)
#define VOL_ENTRIES_MAX ((uint32_t)1 << 20)
#define VOL_MANIFEST_MAX ((size_t)64 << 20)
#define VOL_HEADER_MAX 4096
/* Records moved by one pread/pwrite (256 KiB of blocks). */
#define VOL_IO_RECORDS 64

static inline uint64_t vol_blocks(uint64_t size) { return (size + ARCA_VOL_BLOCK - 1) / ARCA_VOL_BLOCK; }

/* ---- format (volume_format.c) ---- */

/* 1 when p (len bytes, no NUL inside) is a valid entry path. */
int vol_path_ok(const char *p, size_t len);
int vol_path_cmp(const char *a, size_t alen, const char *b, size_t blen);

struct vol_header {
	uint8_t id[VOL_ID_LEN];
	enum arca_vol_mode mode;
	uint8_t check[32];
};
int vol_header_parse(const char *d, size_t len, struct vol_header *h, struct arca_errbuf *e) ARCA_MUST_CHECK;
int vol_header_encode(const struct vol_header *h, struct arca_buf *out) ARCA_MUST_CHECK;

/* One manifest entry; path points into the parsed plaintext (or the
 * caller's string when encoding). */
struct vol_rec {
	uint8_t type;
	uint32_t mode;
	int64_t mtime_ns;
	const char *path;
	uint16_t plen;
	uint8_t fid[VOL_FID_LEN];
	uint64_t size;
	uint64_t gen;
	uint8_t root[32];
};
struct vol_manifest {
	uint64_t counter;
	uint32_t count;
	struct vol_rec *recs; /* malloc'd, count long */
};
int vol_manifest_parse(const uint8_t *pt, size_t len, struct vol_manifest *m, struct arca_errbuf *e) ARCA_MUST_CHECK;
void vol_manifest_free(struct vol_manifest *m);
int vol_manifest_encode(uint64_t counter, const struct vol_rec *recs, uint32_t count, struct arca_buf *out)
	ARCA_MUST_CHECK;

/* Keys and additional data. */
int vol_derive(const uint8_t key[ARCA_VOL_KEY_LEN], const uint8_t id[VOL_ID_LEN], const char *label,
	       const uint8_t *fid, uint8_t out[32]) ARCA_MUST_CHECK;
int vol_check_value(const uint8_t key[ARCA_VOL_KEY_LEN], const uint8_t id[VOL_ID_LEN], uint8_t out[32]) ARCA_MUST_CHECK;
size_t vol_manifest_aad(const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode, uint8_t out[64]);
void vol_block_aad_prefix(const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode, const uint8_t fid[VOL_FID_LEN],
			  uint8_t aad[VOL_AAD_LEN]);
/* The sealed manifest file (magic, nonce, ciphertext, tag) and its tag. */
int vol_manifest_seal(const uint8_t kman[32], const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode,
		      const struct arca_buf *pt, struct arca_buf *out) ARCA_MUST_CHECK;
int vol_manifest_open(const uint8_t kman[32], const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode,
		      const uint8_t *sealed, size_t len, struct arca_buf *pt) ARCA_MUST_CHECK;

/* Leaf tables: "ARCALT1\0" count leaves. */
#define VOL_LT_HDR 16
int vol_leaves_header(const uint8_t *d, size_t len, uint64_t *count, struct arca_errbuf *e) ARCA_MUST_CHECK;
int vol_leaf_ok(const uint8_t leaf[VOL_LEAF]);
void vol_leaves_header_encode(uint64_t count, uint8_t out[VOL_LT_HDR]);

/* Names in d/: "FID.0", "FID.1", "FID.tGEN". */
#define VOL_NAME_MAX 64
void vol_slot_name(const uint8_t fid[VOL_FID_LEN], int slot, char out[VOL_NAME_MAX]);
void vol_table_name(const uint8_t fid[VOL_FID_LEN], uint64_t gen, char out[VOL_NAME_MAX]);
/* Returns 0 (slot file: *slot 0/1), 1 (table: *gen) or -1 (other name). */
int vol_name_parse(const char *name, uint8_t fid[VOL_FID_LEN], int *slot, uint64_t *gen);

/* ---- Merkle tree (volume_merkle.c) ---- */

#define VM_LEVELS 48
struct vmerkle {
	unsigned nlev; /* 0 for an empty file */
	uint64_t n[VM_LEVELS];
	uint64_t cap[VM_LEVELS];
	uint8_t *h[VM_LEVELS];	    /* 32 bytes per node */
	uint64_t *dirty[VM_LEVELS]; /* one bit per node */
};
void vm_init(struct vmerkle *m);
void vm_free(struct vmerkle *m);
/* Reshapes for n leaves; marks what the new right edge changes. */
int vm_resize(struct vmerkle *m, uint64_t n) ARCA_MUST_CHECK;
void vm_mark(struct vmerkle *m, uint64_t leaf);
void vm_mark_all(struct vmerkle *m);
/* Recomputes every marked node from leaves (32 bytes each) and gives the
 * root (docs/VOLUMES.md "Leaf table and Merkle tree"); md_ctx comes from
 * vol_md_new. */
int vm_root(struct vmerkle *m, EVP_MD_CTX *md_ctx, const uint8_t fid[VOL_FID_LEN], const uint8_t *leaves,
	    uint8_t root[32]) ARCA_MUST_CHECK;
/* The root of leaves without keeping a tree (verify). */
int vm_root_of(EVP_MD_CTX *md_ctx, const uint8_t fid[VOL_FID_LEN], const uint8_t *leaves, uint64_t n, uint8_t root[32])
	ARCA_MUST_CHECK;

/* ---- in-memory state ---- */

struct vol_ent;
struct vf;

/* The heavy state of a file that is open, changed since the commit, or
 * recently closed (volume.c trim_idle). */
struct vfdata {
	int fd[2];	/* slot files, -1 until needed */
	int fdw[2];	/* fd[s] was opened for writing */
	int wrote[2];	/* written since the last flush to disk */
	EVP_CIPHER_CTX *enc, *dec; /* K_file set once */
	uint8_t aad[VOL_AAD_LEN];
	uint8_t *leaves;   /* current version, nleaves */
	uint8_t *bst;	   /* per block: BST_* */
	uint64_t nleaves, cap;
	uint64_t ccount;   /* blocks of the committed version */
	struct vmerkle tree;
};
#define BST_CSLOT1 1u /* the committed record is in slot 1 */
#define BST_ZERO 2u   /* all zeros, no record written yet */

struct vf {
	struct arca_vol *v;
	struct vol_ent *ent; /* NULL once unlinked */
	uint8_t fid[VOL_FID_LEN];
	uint64_t size;
	uint64_t gen;	   /* of the committed leaf table */
	uint64_t next_gen; /* never reuse a generation written to disk */
	uint8_t root[32];  /* committed */
	uint64_t pgen;	   /* commit in progress: the new table's generation */
	uint8_t proot[32]; /* and root */
	uint32_t omode;	   /* mode and mtime kept once unlinked */
	int64_t omtime;
	int committed;	   /* listed by the last committed manifest */
	int changed;	   /* content differs from the commit */
	unsigned refs;	   /* open vfiles */
	struct vfdata *d;
	struct vf *lnext, *lprev; /* on v->loaded while d != NULL */
};

struct vol_ent {
	char *path; /* NUL-terminated */
	uint16_t plen;
	uint8_t type;
	uint32_t mode;
	int64_t mtime_ns;
	struct vf *f; /* files only */
};

struct cblk {
	struct vf *f;
	uint64_t idx;
	int dirty;
	struct cblk *hnext;
	struct cblk *prev, *next; /* LRU, most recent at head.next */
	uint8_t *data;		  /* ARCA_VOL_BLOCK */
};

struct vcache {
	struct cblk **tab;
	size_t tabsize;
	size_t n, max;
	int pin_dirty; /* a child of fork: dirty blocks are never evicted */
	struct cblk lru;
};

/* A file no manifest will list after the next commit: its slot files and
 * leaf tables gen_lo..gen_hi-1 go once that commit is current. */
struct garbage {
	uint8_t fid[VOL_FID_LEN];
	uint64_t gen_lo, gen_hi;
};

/* A commit that went wrong after manifest.new was written (volume.c):
 * until a commit settles it, the volume takes no change (ARCA_EIO). */
enum vol_stuck {
	VOL_OK = 0,
	VOL_UNPUBLISHED, /* the publish hook failed: CAS may or may not hold ptag */
	VOL_UNRENAMED,	 /* published, but manifest.new is not yet manifest */
};

struct arca_vol {
	pthread_mutex_t mu;
	char *dir;
	int dirfd, dfd, lockfd;
	int ro;
	int forked; /* arca_vol_fork_child was called (ro is set too) */
	enum vol_stuck stuck;
	uint8_t ptag[ARCA_VOL_TAG_LEN]; /* manifest.new's tag while stuck */
	struct vol_header hdr;
	uint8_t key[ARCA_VOL_KEY_LEN];
	uint8_t kman[32];
	uint8_t tag[ARCA_VOL_TAG_LEN];
	uint64_t counter;
	int dirty;
	struct vol_ent **ents;
	size_t nents, capents;
	struct vf loaded; /* list head */
	struct garbage *garbage;
	size_t ngarbage, capgarbage;
	struct vcache cache;
	EVP_MD_CTX *md; /* for the trees */
	EVP_MD *sha256;
	uint8_t *io;	/* VOL_IO_RECORDS records */
	arca_vol_publish_fn publish;
	void *publish_arg;
	arca_vol_log_fn log;
	void *log_arg;
};

struct arca_vfile {
	struct vf *f;
	int writable;
};

/* volume_block.c */
int vb_load(struct vf *f, struct arca_errbuf *e) ARCA_MUST_CHECK; /* makes f->d, checks the leaf table */
void vb_unload(struct vf *f);
ssize_t vb_pread(struct vf *f, uint8_t *buf, size_t n, uint64_t off);
ssize_t vb_pwrite(struct vf *f, const uint8_t *buf, size_t n, uint64_t off);
int vb_truncate(struct vf *f, uint64_t size) ARCA_MUST_CHECK;
/* Commit step 1 for f: records, fdatasync, root, leaf table *gen. */
int vb_flush(struct vf *f, uint8_t root[32], uint64_t *gen, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* After the commit made root/gen current. */
void vb_committed(struct vf *f, const uint8_t root[32], uint64_t gen);
int vb_open_slot(struct vf *f, int slot, int write) ARCA_MUST_CHECK;
/* Checks one record against its leaf and opens it into out (a block);
 * ARCA_ECRYPTO with why set when it does not verify. rec is scratch: the
 * body is decrypted in place and out is written only once the tag has
 * verified (out may be the program's buffer, seen by its other threads). */
int vb_record_open(EVP_CIPHER_CTX *c, uint8_t aad[VOL_AAD_LEN], enum arca_vol_mode mode, uint64_t idx, uint8_t *rec,
		   const uint8_t leaf[VOL_LEAF], uint8_t *out, const char **why) ARCA_MUST_CHECK;
int vb_cipher_ctx(struct arca_vol *v, const uint8_t fid[VOL_FID_LEN], int enc, EVP_CIPHER_CTX **out) ARCA_MUST_CHECK;
/* One line to the log hook: "volume DIR: PATH: <fmt>". */
void vb_logf(struct arca_vol *v, const struct vf *f, const char *fmt, ...) ARCA_PRINTF(3, 4);
/* The block cache. */
int vc_init(struct vcache *c, size_t max) ARCA_MUST_CHECK;
void vc_free(struct vcache *c);
void vc_drop_file(struct vcache *c, const struct vf *f, uint64_t from);
int vc_flush_all(struct arca_vol *v) ARCA_MUST_CHECK;
void vc_set_max(struct vcache *c, size_t max);

/* volume_ns.c: entries */
int vol_ent_find(const struct arca_vol *v, const char *p, size_t len, size_t *pos);
int vol_check_path(const char *p, size_t *len) ARCA_MUST_CHECK;
int vol_parents_ok(const struct arca_vol *v, const char *p, size_t len) ARCA_MUST_CHECK;
struct vol_ent *vol_ent_new(const char *p, size_t len, uint8_t type, uint32_t mode, int64_t mtime);
void vol_ent_free(struct vol_ent *x);
int vol_ent_insert(struct arca_vol *v, struct vol_ent *x, size_t at) ARCA_MUST_CHECK;
void vol_ent_remove(struct arca_vol *v, size_t at);
void vol_touch_parent(struct arca_vol *v, const char *p, size_t len);
void vol_ent_stat(const struct arca_vol *v, const struct vol_ent *x, struct arca_vol_stat *st);

#define LOCKED(v, expr)                         \
	do {                                    \
		pthread_mutex_lock(&(v)->mu);   \
		int locked_rc_ = (expr);        \
		pthread_mutex_unlock(&(v)->mu); \
		return locked_rc_;              \
	} while (0)

/* volume.c */
/* 0 when the volume may change now; ARCA_EROFS when it is read-only or
 * this process is a child of fork; ARCA_EIO while a commit is unsettled. */
int vol_changeable(const struct arca_vol *v) ARCA_MUST_CHECK;
/* x leaves the namespace: its file is buried now or at its last close. */
void vol_vf_detach(struct arca_vol *v, struct vol_ent *x);
int vol_sys(int err);
void *vol_zalloc(size_t n);
void vol_free(void *p, size_t n);
int vol_grow(void **p, size_t *cap, size_t need, size_t elem) ARCA_MUST_CHECK;
int64_t vol_now_ns(void);
/* A SHA-256 context for vm_root (which reuses its digest); *md to free. */
EVP_MD_CTX *vol_md_new(EVP_MD **md);
int vol_sync_dir(int fd) ARCA_MUST_CHECK;
int vol_read_all(int dirfd, const char *name, size_t max, struct arca_buf *out) ARCA_MUST_CHECK;
int vol_write_new(int dirfd, const char *name, const void *p, size_t n) ARCA_MUST_CHECK;

#endif
