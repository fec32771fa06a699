/* fuzz_volume.c: libFuzzer harness for the protected-volume parsers
 * (docs/VOLUMES.md). The first byte picks the target, the rest is its
 * input:
 *   0  manifest plaintext: whatever arca_vol_manifest_check accepts must
 *      encode back to exactly the same bytes (one encoding per manifest);
 *   1  leaf table: an accepted table has exactly count leaves, each well
 *      formed;
 *   2  arca-volume.json: an accepted header re-encodes and re-parses to the
 *      same id, mode and check;
 *   3  a block record checked against a leaf under a fixed key (both
 *      modes): nothing made up verifies unless it was sealed with that key;
 *   4  a whole volume whose manifest plaintext is the input, sealed under
 *      the volume's key (what an attacker cannot do, but what a bug in the
 *      writer could produce): opening must succeed exactly when the
 *      plaintext checks, and the namespace must then list, walk and stat
 *      without fault. */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/volume.h"
#include "../../lib/volume_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[32] = {0x61, 0x72, 0x63, 0x61, 0x2d, 0x66, 0x75, 0x7a, 0x7a};

static void fuzz_manifest(const uint8_t *d, size_t n)
{
	int count = arca_vol_manifest_check(d, n, NULL);
	struct vol_manifest m;
	int rc = vol_manifest_parse(d, n, &m, NULL);
	if ((count >= 0) != (rc == 0))
		abort();
	if (rc < 0)
		return;
	if ((uint32_t)count != m.count)
		abort();
	struct arca_buf out;
	arca_buf_init(&out, VOL_MANIFEST_MAX, 0);
	if (vol_manifest_encode(m.counter, m.recs, m.count, &out) != 0 || out.len != n || memcmp(out.p, d, n) != 0)
		abort();
	arca_buf_free(&out);
	vol_manifest_free(&m);
}

static void fuzz_leaves(const uint8_t *d, size_t n)
{
	int64_t count = arca_vol_leaves_check(d, n, NULL);
	if (count < 0)
		return;
	if ((uint64_t)count * VOL_LEAF + VOL_LT_HDR != n)
		abort();
	for (int64_t i = 0; i < count; i++)
		if (!vol_leaf_ok(d + VOL_LT_HDR + i * VOL_LEAF))
			abort();
}

static void fuzz_header(const uint8_t *d, size_t n)
{
	struct vol_header h, again;
	int rc = vol_header_parse((const char *)d, n, &h, NULL);
	if ((rc == 0) != (arca_vol_header_check((const char *)d, n, NULL) == 0))
		abort();
	if (rc < 0)
		return;
	struct arca_buf out;
	arca_buf_init(&out, VOL_HEADER_MAX, 0);
	if (vol_header_encode(&h, &out) != 0 || vol_header_parse((const char *)out.p, out.len, &again, NULL) != 0 ||
	    memcmp(&h, &again, sizeof h) != 0)
		abort();
	arca_buf_free(&out);
}

static void fuzz_record(const uint8_t *d, size_t n)
{
	if (n < 1 + 8 + VOL_LEAF + ARCA_VOL_RECORD)
		return;
	enum arca_vol_mode mode = (d[0] & 1) ? ARCA_VOL_AUTHENTICATED : ARCA_VOL_ENCRYPTED;
	uint64_t idx = 0;
	for (int i = 0; i < 8; i++)
		idx |= (uint64_t)d[1 + i] << (8 * i);
	const uint8_t *leaf = d + 9, *rec = leaf + VOL_LEAF;
	uint8_t fid[VOL_FID_LEN] = {0}, id[VOL_ID_LEN] = {0}, aad[VOL_AAD_LEN];
	vol_block_aad_prefix(id, mode, fid, aad);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, KEY, NULL) != 1)
		abort();
	/* vb_record_open decrypts in place (nothing reaches out unverified):
	 * it gets a copy, never libFuzzer's const input. */
	uint8_t *out = malloc(ARCA_VOL_BLOCK), *copy = malloc(ARCA_VOL_RECORD);
	if (!out || !copy)
		abort();
	memcpy(copy, rec, ARCA_VOL_RECORD);
	const char *why = NULL;
	int rc = vb_record_open(c, aad, mode, idx, copy, leaf, out, &why);
	if (rc != 0 && (rc != ARCA_ECRYPTO || !why))
		abort();
	free(copy);
	free(out);
	EVP_CIPHER_CTX_free(c);
}

/* ---- a whole volume ---- */

static char vdir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void cleanup(void)
{
	if (vdir[0])
		(void)nftw(vdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static struct vol_header hdr;
static uint8_t kman[32];

static int setup_volume(void)
{
	if (vdir[0])
		return 0;
	uint8_t tag[32];
	snprintf(vdir, sizeof vdir, "/tmp/arca-fuzz-volume-%d", (int)getpid());
	if (arca_vol_create(vdir, KEY, ARCA_VOL_ENCRYPTED, tag, NULL) != 0)
		return -1;
	atexit(cleanup);
	char p[128];
	struct arca_buf b;
	arca_buf_init(&b, VOL_HEADER_MAX, 0);
	snprintf(p, sizeof p, "%s/arca-volume.json", vdir);
	if (arca_read_file(p, VOL_HEADER_MAX, &b, NULL) != 0 || vol_header_parse((const char *)b.p, b.len, &hdr, NULL) != 0 ||
	    vol_derive(KEY, hdr.id, "arca-vol/1 manifest", NULL, kman) != 0)
		return -1;
	arca_buf_free(&b);
	return 0;
}

struct listing {
	struct arca_vol *v;
	const char *dir;
};

/* Every name a directory lists is an entry of its own with the same stat. */
static int list_fn(const char *name, const struct arca_vol_stat *st, void *arg)
{
	const struct listing *l = arg;
	char full[2 * ARCA_VOL_PATH_MAX + 2];
	struct arca_vol_stat again;
	snprintf(full, sizeof full, "%s%s%s", l->dir, l->dir[0] ? "/" : "", name);
	if (strchr(name, '/') || arca_vol_stat(l->v, full, &again) != 0 || again.type != st->type ||
	    again.size != st->size || again.ino != st->ino)
		abort();
	return 0;
}

static int walk_fn(const char *name, const struct arca_vol_stat *st, void *arg)
{
	struct arca_vol *v = arg;
	struct listing l = {v, name};
	if (st->type == ARCA_VOL_DIR) {
		if (arca_vol_list(v, name, list_fn, &l) != 0)
			abort();
		return 0;
	}
	struct arca_vfile *f;
	/* No leaf table exists: a file must be refused, never read. */
	if (arca_vfile_open(v, name, O_RDONLY, 0, &f) != ARCA_ECRYPTO)
		abort();
	return 0;
}

static void fuzz_volume(const uint8_t *d, size_t n)
{
	if (setup_volume() != 0)
		abort();
	struct arca_buf pt, sealed;
	arca_buf_init(&pt, VOL_MANIFEST_MAX, 0);
	arca_buf_init(&sealed, VOL_MANIFEST_MAX + 64, 0);
	if (arca_buf_append(&pt, d, n) != 0 || vol_manifest_seal(kman, hdr.id, hdr.mode, &pt, &sealed) != 0)
		abort();
	char p[128];
	snprintf(p, sizeof p, "%s/manifest", vdir);
	FILE *fp = fopen(p, "wb");
	if (!fp || fwrite(sealed.p, 1, sealed.len, fp) != sealed.len || fclose(fp) != 0)
		abort();
	int ok = arca_vol_manifest_check(d, n, NULL) >= 0;
	struct arca_vol *v = NULL;
	int rc = arca_vol_open(vdir, KEY, NULL, ARCA_VOL_RDONLY, &v, NULL);
	if (ok != (rc == 0) || (!ok && rc != ARCA_EPARSE))
		abort();
	if (v) {
		struct listing root = {v, ""};
		if (arca_vol_list(v, "", list_fn, &root) != 0 || arca_vol_walk(v, walk_fn, v) != 0)
			abort();
		arca_vol_close(v);
	}
	arca_buf_free(&pt);
	arca_buf_free(&sealed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *d = data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0: fuzz_manifest(d, n); break;
	case 1: fuzz_leaves(d, n); break;
	case 2: fuzz_header(d, n); break;
	case 3: fuzz_record(d, n); break;
	default: fuzz_volume(d, n); break;
	}
	return 0;
}
