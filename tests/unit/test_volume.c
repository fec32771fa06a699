/* test_volume.c: protected volumes (docs/VOLUMES.md) from the outside: the
 * format checked by hand (keys, records, leaf hashes, manifest), what a
 * program sees (read/write/truncate/sparse files, the namespace, open
 * flags, read-only and locking), and every attack the format promises to
 * catch, made on the files in the directory: flipped bits, swapped, cut,
 * replaced and copied records and files, rolled-back and interrupted
 * manifests, plus the crash rule (a write never touches committed data). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/volume.h"

#define BS ARCA_VOL_BLOCK
#define REC ARCA_VOL_RECORD

static const uint8_t KEY[32] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
				0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
				0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x42};
static const uint8_t KEY2[32] = {0x42};

struct t {
	char dir[64];
	char vdir[96];
	uint8_t tag[32];
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof *t);
	snprintf(t->dir, sizeof t->dir, "/tmp/arca-test-vol-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->vdir, sizeof t->vdir, "%s/vol", t->dir);
	*state = t;
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void rm_rf(const char *dir)
{
	(void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int teardown(void **state)
{
	struct t *t = *state;
	rm_rf(t->dir);
	free(t);
	return 0;
}

/* ---- helpers ---- */

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static void make(struct t *t, enum arca_vol_mode mode)
{
	struct arca_errbuf e = {{0}};
	if (arca_vol_create(t->vdir, KEY, mode, t->tag, &e) != 0)
		fail_msg("create: %s", e.msg);
}

static struct arca_vol *vopen(const char *vdir, const uint8_t *tag, unsigned flags)
{
	struct arca_vol *v = NULL;
	struct arca_errbuf e = {{0}};
	int rc = arca_vol_open(vdir, KEY, tag, flags, &v, &e);
	if (rc != 0)
		fail_msg("open %s: %d %s", vdir, rc, e.msg);
	return v;
}

static int try_open(const char *vdir, const uint8_t *key, const uint8_t *tag, unsigned flags, struct arca_errbuf *e)
{
	struct arca_vol *v = NULL;
	int rc = arca_vol_open(vdir, key, tag, flags, &v, e);
	if (rc == 0)
		arca_vol_close(v);
	else
		assert_null(v);
	return rc;
}

static void commit(struct arca_vol *v)
{
	struct arca_errbuf e = {{0}};
	if (arca_vol_commit(v, &e) != 0)
		fail_msg("commit: %s", e.msg);
}

static void commit_close(struct arca_vol *v, uint8_t tag[32])
{
	commit(v);
	arca_vol_tag(v, tag);
	arca_vol_close(v);
}

static void put_at(struct arca_vol *v, const char *path, const void *d, size_t n, uint64_t off)
{
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, path, O_RDWR | O_CREAT, 0644, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, d, n, off), (ssize_t)n);
	arca_vfile_close(f);
}

static void put(struct arca_vol *v, const char *path, const void *d, size_t n)
{
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, path, O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, d, n, 0), (ssize_t)n);
	arca_vfile_close(f);
}

static ssize_t read_at(struct arca_vol *v, const char *path, void *buf, size_t n, uint64_t off)
{
	struct arca_vfile *f;
	int rc = arca_vfile_open(v, path, O_RDONLY, 0, &f);
	if (rc < 0)
		return rc;
	ssize_t r = arca_vfile_pread(f, buf, n, off);
	arca_vfile_close(f);
	return r;
}

/* The file holds exactly d[0..n). */
static void expect(struct arca_vol *v, const char *path, const void *d, size_t n)
{
	struct arca_vol_stat st;
	assert_int_equal(arca_vol_stat(v, path, &st), 0);
	assert_int_equal(st.type, ARCA_VOL_FILE);
	assert_int_equal(st.size, n);
	uint8_t *got = malloc(n + 100);
	assert_int_equal(read_at(v, path, got, n + 100, 0), (ssize_t)n);
	assert_memory_equal(got, d, n);
	free(got);
}

struct logs {
	int n;
	char last[8192];
};

static void log_fn(const char *line, void *arg)
{
	struct logs *l = arg;
	l->n++;
	snprintf(l->last, sizeof l->last, "%s", line);
}

/* The FID (hex) of a file, found in d/ by its inode number (the first
 * eight bytes of the FID, as volume.h promises). */
static void file_fid(struct arca_vol *v, const char *vdir, const char *path, char hex[33])
{
	struct arca_vol_stat st;
	char d[256];
	assert_int_equal(arca_vol_stat(v, path, &st), 0);
	snprintf(d, sizeof d, "%s/d", vdir);
	DIR *dir = opendir(d);
	assert_non_null(dir);
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(dir)) != NULL) {
		uint8_t fid[16];
		size_t n;
		if (strlen(de->d_name) < 34 || arca_hex_decode(de->d_name, 32, fid, 16, &n) != 0)
			continue;
		uint64_t ino = 0;
		for (int i = 7; i >= 0; i--)
			ino = ino << 8 | fid[i];
		ino &= ~((uint64_t)1 << 63);
		if (ino == st.ino || (ino <= 1 && st.ino == 2)) {
			memcpy(hex, de->d_name, 32);
			hex[32] = '\0';
			found = 1;
		}
	}
	closedir(dir);
	assert_true(found);
}

static void dfile(char *out, size_t cap, const char *vdir, const char *hex, const char *suffix)
{
	snprintf(out, cap, "%s/d/%s%s", vdir, hex, suffix);
}

/* The name of the one leaf table of hex in d/ ("" if none). */
static int table_of(const char *vdir, const char *hex, char out[256])
{
	char d[128];
	int n = 0;
	snprintf(d, sizeof d, "%s/d", vdir);
	DIR *dir = opendir(d);
	assert_non_null(dir);
	struct dirent *de;
	out[0] = '\0';
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, hex, 32) == 0 && strncmp(de->d_name + 32, ".t", 2) == 0) {
			snprintf(out, 256, "%s/%.64s", d, de->d_name);
			n++;
		}
	}
	closedir(dir);
	return n;
}

static int count_in_d(const char *vdir, const char *prefix)
{
	char d[256];
	int n = 0;
	snprintf(d, sizeof d, "%s/d", vdir);
	DIR *dir = opendir(d);
	assert_non_null(dir);
	struct dirent *de;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.' && strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(dir);
	return n;
}

static void flip(const char *path, off_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= mask;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static size_t slurp(const char *path, uint8_t **out)
{
	struct arca_buf b;
	arca_buf_init(&b, (size_t)64 << 20, 0);
	assert_int_equal(arca_read_file(path, (size_t)64 << 20, &b, NULL), 0);
	size_t n = b.len;
	*out = arca_buf_steal(&b, &n);
	return n;
}

static void spit(const char *path, const uint8_t *d, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
}

static void copy_file(const char *from, const char *to)
{
	uint8_t *d;
	size_t n = slurp(from, &d);
	spit(to, d, n);
	free(d);
}

static void copy_dir(const char *from, const char *to)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static int file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

struct problems {
	int n;
	char all[16384];
};

static void problem_fn(const char *path, const char *what, void *arg)
{
	struct problems *p = arg;
	size_t len = strlen(p->all);
	p->n++;
	snprintf(p->all + len, sizeof p->all - len, "%s: %s\n", path, what);
}

static int verify(struct arca_vol *v, struct problems *p)
{
	memset(p, 0, sizeof *p);
	int n = arca_vol_verify(v, problem_fn, NULL, p);
	assert_int_equal(n, p->n);
	return n;
}

/* ---- the format, checked by hand ---- */

static void hkdf(const uint8_t id[16], const char *label, const uint8_t *fid, uint8_t out[32])
{
	uint8_t info[64];
	size_t n = strlen(label);
	memcpy(info, label, n);
	if (fid) {
		memcpy(info + n, fid, 16);
		n += 16;
	}
	assert_int_equal(arca_hkdf_sha256(KEY, 32, id, 16, info, n, out, 32), 0);
}

/* AES-256-GCM open with OpenSSL directly; 1 when the tag verifies. */
static int gcm_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aadlen,
		    const uint8_t *ct, size_t n, const uint8_t tag[16], uint8_t *pt)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l, ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
		    EVP_DecryptUpdate(c, NULL, &l, aad, (int)aadlen) == 1 &&
		    (n == 0 || EVP_DecryptUpdate(c, pt, &l, ct, (int)n) == 1) &&
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) == 1;
	uint8_t fin[16];
	ok = ok && EVP_DecryptFinal_ex(c, fin, &l) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

static void sha(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn, uint8_t out[32])
{
	uint8_t buf[256];
	assert_true(an + bn + cn <= sizeof buf);
	memcpy(buf, a, an);
	memcpy(buf + an, b, bn);
	if (cn)
		memcpy(buf + an + bn, c, cn);
	assert_int_equal(arca_sha256(buf, an + bn + cn, out), 0);
}

static void header_id(const char *vdir, uint8_t id[16], uint8_t check[32], const char **mode)
{
	char p[256];
	uint8_t *d;
	snprintf(p, sizeof p, "%s/arca-volume.json", vdir);
	size_t n = slurp(p, &d);
	const char *s = (const char *)d;
	const char *idp = strstr(s, "\"id\": \""), *ckp = strstr(s, "\"check\": \"");
	assert_non_null(idp);
	assert_non_null(ckp);
	size_t m;
	assert_int_equal(arca_hex_decode(idp + 7, 32, id, 16, &m), 0);
	assert_int_equal(arca_hex_decode(ckp + 10, 64, check, 32, &m), 0);
	*mode = strstr(s, "\"mode\": \"encrypted\"") ? "encrypted" : "authenticated";
	assert_int_equal(arca_vol_header_check(s, n, NULL), 0);
	free(d);
}

static void test_format_by_hand(void **state)
{
	struct t *t = *state;
	for (int mode = 1; mode <= 2; mode++) {
		rm_rf(t->vdir);
		make(t, (enum arca_vol_mode)mode);
		struct arca_vol *v = vopen(t->vdir, t->tag, 0);
		uint8_t data[2 * BS + 100];
		fill(data, sizeof data, 7);
		put(v, "dir", NULL, 0); /* a file named dir, just to have two entries */
		put(v, "f", data, sizeof data);
		char hex[33];
		file_fid(v, t->vdir, "f", hex);
		uint8_t tag[32];
		commit_close(v, tag);

		uint8_t id[16], check[32], k[32];
		const char *mname;
		header_id(t->vdir, id, check, &mname);
		assert_string_equal(mname, mode == 1 ? "encrypted" : "authenticated");
		/* check = HMAC-SHA256(K_check, "arca-volume check") */
		hkdf(id, "arca-vol/1 check", NULL, k);
		uint8_t mac[32];
		assert_int_equal(arca_hmac_sha256(k, 32, "arca-volume check", 17, mac), 0);
		assert_memory_equal(mac, check, 32);

		/* The manifest: magic, nonce, GCM under K_manifest; tag = SHA-256. */
		char p[256];
		uint8_t *m;
		snprintf(p, sizeof p, "%s/manifest", t->vdir);
		size_t mlen = slurp(p, &m);
		uint8_t h[32];
		assert_int_equal(arca_sha256(m, mlen, h), 0);
		assert_memory_equal(h, tag, 32);
		assert_memory_equal(m, "ARCAMAN1", 8);
		hkdf(id, "arca-vol/1 manifest", NULL, k);
		uint8_t aad[64];
		memcpy(aad, "arca-vol/1 manifest", 19);
		memcpy(aad + 19, id, 16);
		aad[35] = (uint8_t)mode;
		size_t ptlen = mlen - 8 - 12 - 16;
		uint8_t *pt = malloc(ptlen);
		assert_true(gcm_open(k, m + 8, aad, 36, m + 20, ptlen, m + mlen - 16, pt));
		assert_int_equal(arca_vol_manifest_check(pt, ptlen, NULL), 2);
		assert_memory_equal(pt, "ARCAMF1\0", 8);
		assert_int_equal(le64(pt + 8), 1); /* counter: the creation was 0 */
		assert_int_equal(pt[16] | pt[17] << 8 | pt[18] << 16 | pt[19] << 24, 2);
		/* entries sorted: "dir" then "f"; skip "dir" */
		const uint8_t *q = pt + 20;
		assert_int_equal(q[0], 1);
		size_t plen = (size_t)(q[13] | q[14] << 8);
		assert_int_equal(plen, 3);
		q += 15 + plen + 16 + 8 + 8 + 32;
		assert_int_equal(q[0], 1);
		assert_int_equal(q[1] | q[2] << 8, 0644);
		assert_int_equal(q[13] | q[14] << 8, 1);
		assert_int_equal(q[15], 'f');
		uint8_t fid[16];
		size_t fl;
		assert_int_equal(arca_hex_decode(hex, 32, fid, 16, &fl), 0);
		assert_memory_equal(q + 16, fid, 16);
		assert_int_equal(le64(q + 32), sizeof data);
		uint64_t gen = le64(q + 40);
		const uint8_t *root = q + 48;
		assert_true(q + 80 == pt + ptlen);

		/* The leaf table of that generation, and the root by hand: three
		 * leaves, so the third moves up unchanged. */
		char tname[64];
		snprintf(tname, sizeof tname, ".t%016llx", (unsigned long long)gen);
		dfile(p, sizeof p, t->vdir, hex, tname);
		uint8_t *lt;
		size_t ltlen = slurp(p, &lt);
		assert_int_equal(ltlen, 16 + 3 * 32);
		assert_int_equal(arca_vol_leaves_check(lt, ltlen, NULL), 3);
		assert_memory_equal(lt, "ARCALT1\0", 8);
		uint8_t hl[3][32], n0[32], r[32], pre[25];
		pre[0] = 0;
		memcpy(pre + 1, fid, 16);
		for (int i = 0; i < 3; i++) {
			for (int b = 0; b < 8; b++)
				pre[17 + b] = (uint8_t)((uint64_t)i >> (8 * b));
			sha(pre, 25, lt + 16 + 32 * i, 32, NULL, 0, hl[i]);
		}
		uint8_t one = 1;
		sha(&one, 1, hl[0], 32, hl[1], 32, n0);
		sha(&one, 1, n0, 32, hl[2], 32, r);
		assert_memory_equal(r, root, 32);

		/* The last block's record, opened by hand with K_file and the AAD. */
		const uint8_t *leaf = lt + 16 + 2 * 32;
		assert_true(leaf[28] <= 1);
		dfile(p, sizeof p, t->vdir, hex, leaf[28] ? ".1" : ".0");
		uint8_t *slot;
		size_t slen = slurp(p, &slot);
		assert_true(slen >= 3 * REC);
		const uint8_t *rec = slot + 2 * REC;
		assert_memory_equal(rec, leaf, 12);
		assert_memory_equal(rec + 12 + BS, leaf + 12, 16);
		hkdf(id, "arca-vol/1 file", fid, k);
		uint8_t baad[57 + BS], block[BS];
		memcpy(baad, "arca-vol/1 block", 16);
		memcpy(baad + 16, id, 16);
		baad[32] = (uint8_t)mode;
		memcpy(baad + 33, fid, 16);
		memset(baad + 49, 0, 8);
		baad[49] = 2;
		uint8_t want[BS] = {0};
		memcpy(want, data + 2 * BS, 100);
		if (mode == 1) {
			assert_true(gcm_open(k, rec, baad, 57, rec + 12, BS, rec + 12 + BS, block));
			assert_memory_equal(block, want, BS);
		} else {
			/* authenticated: body in clear, tag = GMAC over AAD || block */
			assert_memory_equal(rec + 12, want, BS);
			memcpy(baad + 57, rec + 12, BS);
			assert_true(gcm_open(k, rec, baad, 57 + BS, NULL, 0, rec + 12 + BS, block));
		}
		free(slot);
		free(lt);
		free(pt);
		free(m);
	}
}

/* ---- life cycle ---- */

static void test_create_open(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	uint8_t tag[32];
	arca_vol_tag(v, tag);
	assert_memory_equal(tag, t->tag, 32);
	assert_int_equal(arca_vol_mode(v), ARCA_VOL_ENCRYPTED);
	assert_int_equal(arca_vol_readonly(v), 0);
	assert_string_equal(arca_vol_dir(v), t->vdir);
	struct arca_vol_stat st;
	assert_int_equal(arca_vol_stat(v, "", &st), 0);
	assert_int_equal(st.type, ARCA_VOL_DIR);
	arca_vol_close(v);
	arca_vol_close(NULL);

	/* Tag text round trip; upper case and short strings are refused. */
	char hex[ARCA_VOL_TAG_HEX];
	arca_vol_tag_hex(t->tag, hex);
	assert_int_equal(strlen(hex), 64);
	assert_int_equal(arca_vol_tag_parse(hex, tag), 0);
	assert_memory_equal(tag, t->tag, 32);
	hex[5] = 'A';
	assert_int_equal(arca_vol_tag_parse(hex, tag), ARCA_EPARSE);
	assert_int_equal(arca_vol_tag_parse("abcd", tag), ARCA_EPARSE);

	/* Not over an existing, non-empty directory; a missing one is not a volume. */
	assert_int_equal(arca_vol_create(t->vdir, KEY, ARCA_VOL_ENCRYPTED, tag, &e), ARCA_EEXIST);
	assert_non_null(strstr(e.msg, "not an empty directory"));
	char other[128];
	snprintf(other, sizeof other, "%s/nothing", t->dir);
	assert_int_equal(try_open(other, KEY, NULL, 0, &e), ARCA_ENOTFOUND);
	assert_int_equal(arca_vol_create(t->vdir, KEY, (enum arca_vol_mode)3, tag, &e), ARCA_EINVAL);
	/* An empty existing directory is fine. */
	assert_int_equal(mkdir(other, 0700), 0);
	assert_int_equal(arca_vol_create(other, KEY, ARCA_VOL_AUTHENTICATED, tag, &e), 0);
	v = vopen(other, tag, ARCA_VOL_RDONLY);
	assert_int_equal(arca_vol_mode(v), ARCA_VOL_AUTHENTICATED);
	assert_int_equal(arca_vol_readonly(v), 1);
	arca_vol_close(v);
	/* A volume is unique: two creations never share a tag. */
	assert_memory_not_equal(tag, t->tag, 32);
}

static void test_wrong_key(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	make(t, ARCA_VOL_ENCRYPTED);
	assert_int_equal(try_open(t->vdir, KEY2, t->tag, 0, &e), ARCA_EDENIED);
	assert_non_null(strstr(e.msg, "the key does not open this volume"));
	assert_int_equal(try_open(t->vdir, KEY2, NULL, ARCA_VOL_RDONLY, &e), ARCA_EDENIED);
	/* The check is keyed by the id: a changed id looks like a wrong key. */
	char p[256];
	snprintf(p, sizeof p, "%s/arca-volume.json", t->vdir);
	uint8_t *d;
	size_t n = slurp(p, &d);
	char *idp = strstr((char *)d, "\"id\": \"");
	idp[7] = idp[7] == '0' ? '1' : '0';
	spit(p, d, n);
	assert_int_equal(try_open(t->vdir, KEY, t->tag, 0, &e), ARCA_EDENIED);
	idp[7] = idp[7] == '0' ? '1' : '0';
	char *mp = strstr((char *)d, "\"encrypted\"");
	memcpy(mp, "\"authenticated\"", 15); /* overwrites part of the next key: broken JSON */
	spit(p, d, n);
	assert_int_equal(try_open(t->vdir, KEY, t->tag, 0, &e), ARCA_EPARSE);
	free(d);
}

static void test_mode_in_header_is_bound(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	make(t, ARCA_VOL_ENCRYPTED);
	char p[256];
	snprintf(p, sizeof p, "%s/arca-volume.json", t->vdir);
	uint8_t *d;
	size_t n = slurp(p, &d);
	/* Rewrite the header as authenticated, same id and check. */
	char buf[512];
	char *s = (char *)d, *mp = strstr(s, "\"encrypted\"");
	assert_non_null(mp);
	int k = snprintf(buf, sizeof buf, "%.*s\"authenticated\"%s", (int)(mp - s), s, mp + 11);
	spit(p, (uint8_t *)buf, (size_t)k);
	assert_int_equal(try_open(t->vdir, KEY, NULL, 0, &e), ARCA_ECRYPTO);
	assert_non_null(strstr(e.msg, "manifest"));
	(void)n;
	free(d);
}

static void test_roundtrip(void **state)
{
	struct t *t = *state;
	static const size_t sizes[] = {0, 1, 100, BS - 1, BS, BS + 1, 3 * BS, 70 * BS + 5, (size_t)1 << 20};
	for (int mode = 1; mode <= 2; mode++) {
		rm_rf(t->vdir);
		make(t, (enum arca_vol_mode)mode);
		struct arca_vol *v = vopen(t->vdir, t->tag, 0);
		uint8_t *d = malloc((size_t)1 << 20);
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			char name[32];
			snprintf(name, sizeof name, "f%zu", i);
			fill(d, sizes[i], (uint32_t)i);
			put(v, name, d, sizes[i]);
			expect(v, name, d, sizes[i]); /* before the commit */
		}
		uint8_t tag[32];
		commit_close(v, tag);
		v = vopen(t->vdir, tag, ARCA_VOL_RDONLY);
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			char name[32];
			snprintf(name, sizeof name, "f%zu", i);
			fill(d, sizes[i], (uint32_t)i);
			expect(v, name, d, sizes[i]);
		}
		/* Unaligned reads across block edges. */
		uint8_t got[3 * BS];
		fill(d, 70 * BS + 5, 7);
		assert_int_equal(read_at(v, "f7", got, sizeof got, BS - 7), (ssize_t)sizeof got);
		assert_memory_equal(got, d + BS - 7, sizeof got);
		assert_int_equal(read_at(v, "f7", got, sizeof got, 70 * BS), 5);
		assert_memory_equal(got, d + 70 * BS, 5);
		assert_int_equal(read_at(v, "f7", got, sizeof got, 80 * BS), 0);
		struct problems p;
		assert_int_equal(verify(v, &p), 0);
		arca_vol_close(v);
		free(d);
	}
}

static void test_overwrite_patterns(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	arca_vol_set_cache(v, 0); /* the minimum: writes must go through eviction too */
	size_t n = 300 * BS;
	uint8_t *model = calloc(1, n), *chunk = malloc(3 * BS), *got = malloc(n);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "x", O_RDWR | O_CREAT, 0600, &f), 0);
	uint64_t size = 0;
	uint32_t seed = 1;
	for (int round = 0; round < 3; round++) {
		for (int k = 0; k < 400; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t off = (seed >> 3) % (n - 3 * BS), len = 1 + (seed >> 11) % (3 * BS);
			if (k % 5 == 0)
				off &= ~(size_t)(BS - 1), len = (len / BS + 1) * BS;
			fill(chunk, len, seed);
			assert_int_equal(arca_vfile_pwrite(f, chunk, len, off), (ssize_t)len);
			memcpy(model + off, chunk, len);
			if (off + len > size)
				size = off + len;
		}
		assert_int_equal(arca_vfile_pread(f, got, n, 0), (ssize_t)size);
		assert_memory_equal(got, model, size);
		commit(v);
	}
	arca_vfile_close(f);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	expect(v, "x", model, size);
	struct problems p;
	assert_int_equal(verify(v, &p), 0);
	arca_vol_close(v);
	free(model);
	free(chunk);
	free(got);
}

/* ---- attacks on the files ---- */

/* A committed volume with "a" (5 blocks of pattern 1) and "b" (5 blocks of
 * pattern 2), opened writable with a log hook. */
static struct arca_vol *two_files(struct t *t, enum arca_vol_mode mode, struct logs *l, uint8_t *a, uint8_t *b)
{
	make(t, mode);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	fill(a, 5 * BS, 1);
	fill(b, 5 * BS, 2);
	put(v, "a", a, 5 * BS);
	put(v, "b", b, 5 * BS);
	commit_close(v, t->tag);
	v = vopen(t->vdir, t->tag, 0);
	if (l) {
		memset(l, 0, sizeof *l);
		arca_vol_set_log(v, log_fn, l);
	}
	return v;
}

/* Files closed but unchanged keep their checked state (and cached blocks)
 * in memory, which tampering on disk cannot touch; a fresh open, as after
 * a restart, reads everything from disk again. */
static struct arca_vol *reopen(struct t *t, struct arca_vol *v, struct logs *l)
{
	arca_vol_close(v);
	v = vopen(t->vdir, t->tag, 0);
	if (l)
		arca_vol_set_log(v, log_fn, l);
	return v;
}

static void test_flipped_bit(void **state)
{
	struct t *t = *state;
	static const size_t where[] = {0, 11, 12, 12 + 2000, 12 + BS - 1, 12 + BS, REC - 1};
	for (int mode = 1; mode <= 2; mode++) {
		for (size_t w = 0; w < sizeof where / sizeof *where; w++) {
			rm_rf(t->vdir);
			struct logs l;
			uint8_t a[5 * BS], b[5 * BS], got[5 * BS];
			struct arca_vol *v = two_files(t, (enum arca_vol_mode)mode, &l, a, b);
			char hex[33], p[256];
			file_fid(v, t->vdir, "a", hex);
			dfile(p, sizeof p, t->vdir, hex, ".0");
			flip(p, 3 * REC + (off_t)where[w], 0x10);
			/* The program's buffer never holds a byte of the block
			 * (another of its threads could read it meanwhile). */
			memset(got, 0xa5, sizeof got);
			assert_int_equal(read_at(v, "a", got, BS, 3 * BS), ARCA_ECRYPTO);
			for (size_t k = 0; k < BS; k++)
				if (got[k] != 0xa5)
					fail_msg("byte %zu of the buffer was written by a read that failed", k);
			assert_int_equal(l.n, 1);
			char want[256];
			snprintf(want, sizeof want, "volume %s: a: block 3: ", t->vdir);
			assert_memory_equal(l.last, want, strlen(want));
			/* The whole-file read fails too, with one more line; the
			 * blocks around it and the other file still read. */
			assert_int_equal(read_at(v, "a", got, sizeof got, 0), ARCA_ECRYPTO);
			assert_int_equal(l.n, 2);
			assert_int_equal(read_at(v, "a", got, 3 * BS, 0), 3 * BS);
			assert_memory_equal(got, a, 3 * BS);
			assert_int_equal(read_at(v, "a", got, BS, 4 * BS), BS);
			assert_int_equal(read_at(v, "a", got, 10, 3 * BS + 5), ARCA_ECRYPTO); /* partial read */
			expect(v, "b", b, sizeof b);
			struct problems pr;
			assert_int_equal(verify(v, &pr), 1);
			if (!strstr(pr.all, "a: block 3: ")) fail_msg("%s", pr.all);
			/* A write of part of the damaged block must not launder it. */
			struct arca_vfile *f;
			assert_int_equal(arca_vfile_open(v, "a", O_RDWR, 0, &f), 0);
			assert_int_equal(arca_vfile_pwrite(f, "x", 1, 3 * BS + 1), ARCA_ECRYPTO);
			arca_vfile_close(f);
			arca_vol_close(v);
		}
	}
}

static void test_swapped_files(void **state)
{
	struct t *t = *state;
	struct logs l;
	uint8_t a[5 * BS], b[5 * BS], got[BS];
	struct arca_vol *v = two_files(t, ARCA_VOL_ENCRYPTED, &l, a, b);
	char ha[33], hb[33], pa[256], pb[256], tmp[256];
	file_fid(v, t->vdir, "a", ha);
	file_fid(v, t->vdir, "b", hb);
	/* Swap the slot files only: every record is of the wrong file. */
	dfile(pa, sizeof pa, t->vdir, ha, ".0");
	dfile(pb, sizeof pb, t->vdir, hb, ".0");
	snprintf(tmp, sizeof tmp, "%s/tmp", t->dir);
	assert_int_equal(rename(pa, tmp), 0);
	assert_int_equal(rename(pb, pa), 0);
	assert_int_equal(rename(tmp, pb), 0);
	assert_int_equal(read_at(v, "a", got, BS, 0), ARCA_ECRYPTO);
	assert_int_equal(read_at(v, "b", got, BS, 0), ARCA_ECRYPTO);
	assert_int_equal(l.n, 2);
	/* And the leaf tables too: now the tree names the wrong file. */
	char ta[256], tb[256];
	assert_int_equal(table_of(t->vdir, ha, ta), 1);
	assert_int_equal(table_of(t->vdir, hb, tb), 1);
	assert_int_equal(rename(ta, tmp), 0);
	assert_int_equal(rename(tb, ta), 0);
	assert_int_equal(rename(tmp, tb), 0);
	v = reopen(t, v, &l);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "a", O_RDONLY, 0, &f), ARCA_ECRYPTO);
	assert_non_null(strstr(l.last, "a: leaf table: "));
	assert_int_equal(arca_vfile_open(v, "b", O_RDONLY, 0, &f), ARCA_ECRYPTO);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 2);
	arca_vol_close(v);
}

static void test_truncated_on_disk(void **state)
{
	struct t *t = *state;
	struct logs l;
	uint8_t a[5 * BS], b[5 * BS], got[5 * BS];
	struct arca_vol *v = two_files(t, ARCA_VOL_ENCRYPTED, &l, a, b);
	char hex[33], p[256];
	file_fid(v, t->vdir, "a", hex);
	dfile(p, sizeof p, t->vdir, hex, ".0");
	assert_int_equal(truncate(p, 3 * REC + 100), 0);
	assert_int_equal(read_at(v, "a", got, sizeof got, 0), ARCA_ECRYPTO);
	assert_non_null(strstr(l.last, "a: block 3: "));
	assert_int_equal(read_at(v, "a", got, 3 * BS, 0), 3 * BS);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 2); /* blocks 3 and 4 */
	assert_non_null(strstr(pr.all, "a: block 4: the record is missing"));
	/* The slot file gone altogether. */
	assert_int_equal(unlink(p), 0);
	v = reopen(t, v, &l);
	assert_int_equal(read_at(v, "a", got, BS, 0), ARCA_ECRYPTO);
	assert_int_equal(verify(v, &pr), 5);
	arca_vol_close(v);
}

/* Links planted in the directory are never followed: a writer must not
 * be turned into a tool that overwrites other files. */
static void test_symlinks_not_followed(void **state)
{
	struct t *t = *state;
	uint8_t a[5 * BS], b[5 * BS];
	struct arca_vol *v = two_files(t, ARCA_VOL_ENCRYPTED, NULL, a, b);
	char hex[33], p[256], victim[128];
	file_fid(v, t->vdir, "a", hex);
	snprintf(victim, sizeof victim, "%s/victim", t->dir);
	spit(victim, (const uint8_t *)"precious", 8);
	dfile(p, sizeof p, t->vdir, hex, ".1"); /* where the next write goes */
	assert_false(file_exists(p));
	assert_int_equal(symlink(victim, p), 0);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "a", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, a, BS, 0), ARCA_EIO);
	arca_vfile_close(f);
	uint8_t *d;
	assert_int_equal(slurp(victim, &d), 8);
	assert_memory_equal(d, "precious", 8);
	free(d);
	/* The same for manifest.new at the commit. */
	assert_int_equal(unlink(p), 0);
	snprintf(p, sizeof p, "%s/manifest.new", t->vdir);
	assert_int_equal(symlink(victim, p), 0);
	put(v, "c", "c", 1);
	assert_int_equal(arca_vol_commit(v, NULL), ARCA_EIO);
	assert_int_equal(slurp(victim, &d), 8);
	assert_memory_equal(d, "precious", 8);
	free(d);
	arca_vol_close(v);
}

static void test_older_copy_of_file(void **state)
{
	struct t *t = *state;
	struct logs l;
	uint8_t a[5 * BS], b[5 * BS], got[5 * BS];
	struct arca_vol *v = two_files(t, ARCA_VOL_ENCRYPTED, &l, a, b);
	char hex[33], p0[256], tab[256], old0[256], oldt[256];
	file_fid(v, t->vdir, "a", hex);
	dfile(p0, sizeof p0, t->vdir, hex, ".0");
	assert_int_equal(table_of(t->vdir, hex, tab), 1);
	snprintf(old0, sizeof old0, "%s/old0", t->dir);
	snprintf(oldt, sizeof oldt, "%s/oldt", t->dir);
	copy_file(p0, old0);
	copy_file(tab, oldt);
	/* Two new versions, so that both slots hold newer records. */
	for (int k = 0; k < 2; k++) {
		fill(a, sizeof a, 10 + (uint32_t)k);
		put(v, "a", a, sizeof a);
		commit(v);
	}
	expect(v, "a", a, sizeof a);
	/* The old slot file alone: old records, the current leaves. */
	copy_file(old0, p0);
	assert_int_equal(read_at(v, "a", got, sizeof got, 0), ARCA_ECRYPTO);
	assert_non_null(strstr(l.last, "not the one the leaf table names"));
	/* Old slot file and old leaf table under the current name: the tree
	 * no longer has the manifest's root. */
	assert_int_equal(table_of(t->vdir, hex, tab), 1);
	copy_file(oldt, tab);
	arca_vol_tag(v, t->tag);
	v = reopen(t, v, &l);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "a", O_RDONLY, 0, &f), ARCA_ECRYPTO);
	assert_non_null(strstr(l.last, "does not match the manifest"));
	arca_vol_close(v);
}

static void test_record_copied(void **state)
{
	struct t *t = *state;
	for (int mode = 1; mode <= 2; mode++) {
		rm_rf(t->vdir);
		struct logs l;
		uint8_t a[5 * BS], b[5 * BS], got[BS];
		struct arca_vol *v = two_files(t, (enum arca_vol_mode)mode, &l, a, b);
		char ha[33], hb[33], pa[256], pb[256];
		file_fid(v, t->vdir, "a", ha);
		file_fid(v, t->vdir, "b", hb);
		dfile(pa, sizeof pa, t->vdir, ha, ".0");
		dfile(pb, sizeof pb, t->vdir, hb, ".0");
		uint8_t *da, *db;
		size_t na = slurp(pa, &da), nb = slurp(pb, &db);
		assert_int_equal(na, 5 * REC);
		assert_int_equal(nb, 5 * REC);
		/* Block 0 of a over block 1 of a (another index). */
		uint8_t *x = malloc(na);
		memcpy(x, da, na);
		memcpy(x + REC, da, REC);
		spit(pa, x, na);
		assert_int_equal(read_at(v, "a", got, BS, BS), ARCA_ECRYPTO);
		assert_non_null(strstr(l.last, "a: block 1: "));
		/* Block 2 of b over block 2 of a (another file, same index). */
		memcpy(x, da, na);
		memcpy(x + 2 * REC, db + 2 * REC, REC);
		spit(pa, x, na);
		assert_int_equal(read_at(v, "a", got, BS, 0), BS);
		assert_int_equal(read_at(v, "a", got, BS, 2 * BS), ARCA_ECRYPTO);
		assert_non_null(strstr(l.last, "a: block 2: "));
		free(x);
		free(da);
		free(db);
		arca_vol_close(v);
	}
}

static void test_manifest_rollback(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	put(v, "f", "one", 3);
	uint8_t t1[32], t2[32];
	commit(v);
	arca_vol_tag(v, t1);
	char saved[128], p[256];
	snprintf(saved, sizeof saved, "%s/v1", t->dir);
	copy_dir(t->vdir, saved);
	put(v, "f", "two", 3);
	commit_close(v, t2);
	assert_memory_not_equal(t1, t2, 32);

	/* The whole volume put back as it was: consistent in itself, but CAS's
	 * tag says rollback. */
	rm_rf(t->vdir);
	copy_dir(saved, t->vdir);
	assert_int_equal(try_open(t->vdir, KEY, t2, 0, &e), ARCA_ESTALE);
	assert_non_null(strstr(e.msg, "rollback"));
	char h1[ARCA_VOL_TAG_HEX], h2[ARCA_VOL_TAG_HEX];
	arca_vol_tag_hex(t1, h1);
	arca_vol_tag_hex(t2, h2);
	assert_non_null(strstr(e.msg, h1));
	assert_non_null(strstr(e.msg, h2));
	assert_int_equal(try_open(t->vdir, KEY, t2, ARCA_VOL_RDONLY, &e), ARCA_ESTALE);
	v = vopen(t->vdir, NULL, ARCA_VOL_RDONLY);
	expect(v, "f", "one", 3);
	arca_vol_close(v);

	/* A changed manifest: damage without a tag, rollback with one. */
	snprintf(p, sizeof p, "%s/manifest", t->vdir);
	flip(p, 30, 1);
	assert_int_equal(try_open(t->vdir, KEY, NULL, 0, &e), ARCA_ECRYPTO);
	assert_non_null(strstr(e.msg, "manifest"));
	assert_int_equal(try_open(t->vdir, KEY, t1, 0, &e), ARCA_ESTALE);
	/* No manifest at all. */
	unlink(p);
	assert_int_equal(try_open(t->vdir, KEY, NULL, 0, &e), ARCA_ENOTFOUND);
	assert_int_equal(try_open(t->vdir, KEY, t1, 0, &e), ARCA_ESTALE);
}

static int publish_fail(const uint8_t old_tag[32], const uint8_t new_tag[32], void *arg)
{
	memcpy(arg, new_tag, 32);
	(void)old_tag;
	return -1;
}

struct pub {
	int calls;
	uint8_t old_tag[32], new_tag[32];
};

static int publish_ok(const uint8_t old_tag[32], const uint8_t new_tag[32], void *arg)
{
	struct pub *p = arg;
	p->calls++;
	memcpy(p->old_tag, old_tag, 32);
	memcpy(p->new_tag, new_tag, 32);
	return 0;
}

static void test_publish_failure(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	char p[256], pn[256];
	snprintf(p, sizeof p, "%s/manifest", t->vdir);
	snprintf(pn, sizeof pn, "%s/manifest.new", t->vdir);
	uint8_t *before, *after, newtag[32], tag[32];
	size_t nb = slurp(p, &before);
	put(v, "f", "data", 4);
	arca_vol_set_publish(v, publish_fail, newtag);
	assert_int_equal(arca_vol_commit(v, &e), ARCA_EIO);
	assert_non_null(strstr(e.msg, "could not be recorded"));
	size_t na = slurp(p, &after);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	arca_vol_tag(v, tag);
	assert_memory_equal(tag, t->tag, 32);
	assert_true(file_exists(pn));
	free(after);
	/* The data is still there and a later commit goes through. */
	expect(v, "f", "data", 4);
	struct pub pub = {0};
	arca_vol_set_publish(v, publish_ok, &pub);
	commit(v);
	assert_int_equal(pub.calls, 1);
	assert_memory_equal(pub.old_tag, t->tag, 32);
	arca_vol_tag(v, tag);
	assert_memory_equal(pub.new_tag, tag, 32);
	assert_false(file_exists(pn));
	arca_vol_close(v);
	v = vopen(t->vdir, tag, 0);
	expect(v, "f", "data", 4);
	arca_vol_close(v);
	free(before);
}

/* A CAS in memory, as the shield's publish hook reaches it: compare and
 * swap, a repeat of a swap that happened answered as a success. */
struct fake_cas {
	uint8_t held[32];
	int calls;
	int lose;	      /* answers lost: the tag is stored, the hook fails */
	int down;	      /* unreachable: nothing stored, the hook fails */
	const char *sabotage; /* vdir: its manifest becomes a directory */
};

static int fake_publish(const uint8_t old_tag[32], const uint8_t new_tag[32], void *arg)
{
	struct fake_cas *c = arg;
	c->calls++;
	if (c->down)
		return ARCA_ENET;
	if (memcmp(c->held, new_tag, 32) != 0) {
		if (memcmp(c->held, old_tag, 32) != 0)
			return ARCA_ESTALE;
		memcpy(c->held, new_tag, 32);
	}
	if (c->sabotage) {
		/* The rename of manifest.new that follows fails. */
		char p[256];
		snprintf(p, sizeof p, "%s/manifest", c->sabotage);
		if (unlink(p) != 0 || mkdir(p, 0700) != 0)
			return -1;
		c->sabotage = NULL;
	}
	if (c->lose > 0) {
		c->lose--;
		return ARCA_ENET;
	}
	return 0;
}

/* Every kind of change fails with want. */
static void expect_no_change(struct arca_vol *v, const char *file, int want)
{
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, file, O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, "zz", 2, 1), want);
	assert_int_equal(arca_vfile_pwrite(f, NULL, 0, 0), want);
	assert_int_equal(arca_vfile_truncate(f, 1), want);
	arca_vfile_close(f);
	assert_int_equal(arca_vfile_open(v, file, O_RDWR | O_TRUNC, 0, &f), want);
	assert_int_equal(arca_vfile_open(v, "brand-new", O_RDWR | O_CREAT, 0600, &f), want);
	assert_int_equal(arca_vol_mkdir(v, "newdir", 0700), want);
	assert_int_equal(arca_vol_unlink(v, file), want);
	assert_int_equal(arca_vol_rename(v, file, "elsewhere"), want);
	assert_int_equal(arca_vol_chmod(v, file, 0600), want);
	assert_int_equal(arca_vol_utime(v, file, 1), want);
}

/* Whole and partial blocks of a (n bytes, pattern seed), and a new file. */
static void change_a(struct arca_vol *v, uint8_t *a, size_t n, uint32_t seed, const char *newfile)
{
	struct arca_vfile *f;
	uint8_t *w = malloc(n);
	fill(w, n, seed);
	assert_int_equal(arca_vfile_open(v, "a", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, w, 4 * BS, 0), 4 * BS);
	memcpy(a, w, 4 * BS);
	for (size_t off = 4 * BS + 7; off + 100 <= n; off += BS) {
		assert_int_equal(arca_vfile_pwrite(f, w + off, 100, off), 100);
		memcpy(a + off, w + off, 100);
	}
	arca_vfile_close(f);
	put(v, newfile, w, 1000);
	free(w);
}

/* The publish hook's answer is lost (CAS stored the tag) or CAS is down:
 * the commit fails and its outcome is unknown to the library, so nothing
 * the unpublished manifest.new refers to may change until a commit settles
 * it, and that commit offers the same tag again. */
static void test_publish_unknown_outcome(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	for (int lost = 0; lost <= 1; lost++) {
		rm_rf(t->vdir);
		make(t, ARCA_VOL_ENCRYPTED);
		struct arca_vol *v = vopen(t->vdir, t->tag, 0);
		struct fake_cas c = {0};
		memcpy(c.held, t->tag, 32);
		arca_vol_set_publish(v, fake_publish, &c);
		size_t n = 10 * BS + 100;
		uint8_t *a = malloc(n), *a1 = malloc(n), t1[32], tag[32];
		fill(a, n, 21);
		memcpy(a1, a, n);
		put(v, "a", a, n);
		put(v, "b", "bee", 3);
		commit(v);
		arca_vol_tag(v, t1);
		assert_memory_equal(t1, c.held, 32);

		change_a(v, a, n, 22, "c");
		if (lost)
			c.lose = 1;
		else
			c.down = 1;
		assert_int_equal(arca_vol_commit(v, &e), ARCA_EIO);
		assert_non_null(strstr(e.msg, "could not be recorded"));
		arca_vol_tag(v, tag);
		assert_memory_equal(tag, t1, 32); /* the last commit known good */
		assert_int_equal(memcmp(c.held, t1, 32) != 0, lost);

		/* A crash now: the directory opens with whatever CAS holds. */
		char copy[128];
		snprintf(copy, sizeof copy, "%s/crash", t->dir);
		copy_dir(t->vdir, copy);
		struct arca_vol *cv = vopen(copy, c.held, ARCA_VOL_RDONLY);
		struct arca_vol_stat st;
		if (lost) { /* CAS holds the new tag */
			expect(cv, "a", a, n);
			assert_int_equal(arca_vol_stat(cv, "c", &st), 0);
			assert_int_equal(st.size, 1000);
		} else {
			expect(cv, "a", a1, n);
			assert_int_equal(arca_vol_stat(cv, "c", &st), ARCA_ENOTFOUND);
		}
		arca_vol_close(cv);
		rm_rf(copy);

		/* Until a commit settles it, the volume takes no change; it
		 * reads what was written. */
		expect_no_change(v, "a", ARCA_EIO);
		expect(v, "a", a, n);
		expect(v, "b", "bee", 3);

		/* CAS still unreachable: the same tag is offered again. */
		int calls = c.calls;
		c.down = 1;
		assert_int_equal(arca_vol_commit(v, &e), ARCA_EIO);
		assert_int_equal(c.calls, calls + 1);
		expect_no_change(v, "a", ARCA_EIO);
		c.down = 0;
		commit(v);
		assert_int_equal(c.calls, calls + 2);
		arca_vol_tag(v, tag);
		assert_memory_equal(tag, c.held, 32);
		assert_memory_not_equal(tag, t1, 32);

		/* Back to normal. */
		change_a(v, a, n, 23, "d");
		commit(v);
		arca_vol_tag(v, tag);
		assert_memory_equal(tag, c.held, 32);
		arca_vol_close(v);
		v = vopen(t->vdir, c.held, 0);
		expect(v, "a", a, n);
		expect(v, "b", "bee", 3);
		struct problems pr;
		assert_int_equal(verify(v, &pr), 0);
		arca_vol_close(v);
		free(a);
		free(a1);
	}
}

/* CAS recorded the new tag, then manifest.new cannot be renamed: the
 * commit fails but the volume is at the new commit (its tag is CAS's); it
 * takes no change until a commit (or the next open) finishes the rename. */
static void test_rename_fails_after_publish(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	char pm[256], pn[256], pt[256];
	snprintf(pm, sizeof pm, "%s/manifest", t->vdir);
	snprintf(pn, sizeof pn, "%s/manifest.new", t->vdir);
	snprintf(pt, sizeof pt, "%s/manifest.tmp", t->vdir);
	for (int by_open = 0; by_open <= 1; by_open++) {
		rm_rf(t->vdir);
		make(t, ARCA_VOL_ENCRYPTED);
		struct arca_vol *v = vopen(t->vdir, t->tag, 0);
		struct fake_cas c = {0};
		memcpy(c.held, t->tag, 32);
		arca_vol_set_publish(v, fake_publish, &c);
		size_t n = 10 * BS + 100;
		uint8_t *a = malloc(n), t1[32], tag[32];
		fill(a, n, 31);
		put(v, "a", a, n);
		commit(v);
		arca_vol_tag(v, t1);
		change_a(v, a, n, 32, "c");
		c.sabotage = t->vdir;
		assert_int_equal(arca_vol_commit(v, &e), ARCA_EIO);
		assert_non_null(strstr(e.msg, "cannot be made current"));
		arca_vol_tag(v, tag);
		assert_memory_equal(tag, c.held, 32);
		assert_memory_not_equal(tag, t1, 32);
		assert_true(file_exists(pn));
		expect_no_change(v, "a", ARCA_EIO);
		expect(v, "a", a, n);
		/* Still in the way: the commit retries and fails again. */
		assert_int_equal(arca_vol_commit(v, &e), ARCA_EIO);
		assert_non_null(strstr(e.msg, "cannot be made current"));
		assert_int_equal(rmdir(pm), 0);
		if (by_open) {
			arca_vol_close(v);
			/* A stale temporary file from a crash is no obstacle. */
			spit(pt, (const uint8_t *)"junk", 4);
			v = vopen(t->vdir, c.held, 0);
			assert_false(file_exists(pt));
			arca_vol_set_publish(v, fake_publish, &c);
		} else {
			commit(v); /* finishes the rename, publishes nothing */
		}
		assert_false(file_exists(pn));
		assert_true(file_exists(pm));
		arca_vol_tag(v, tag);
		assert_memory_equal(tag, c.held, 32);
		expect(v, "a", a, n);
		change_a(v, a, n, 33, "d");
		commit(v);
		arca_vol_close(v);
		v = vopen(t->vdir, c.held, 0);
		expect(v, "a", a, n);
		struct problems pr;
		assert_int_equal(verify(v, &pr), 0);
		arca_vol_close(v);
		/* A trusted machine (no tag) opens the same commit. */
		v = vopen(t->vdir, NULL, ARCA_VOL_RDONLY);
		arca_vol_tag(v, tag);
		assert_memory_equal(tag, c.held, 32);
		arca_vol_close(v);
		free(a);
	}
}

static void test_interrupted_commit(void **state)
{
	struct t *t = *state;
	char pn[256];
	snprintf(pn, sizeof pn, "%s/manifest.new", t->vdir);
	for (int take_new = 0; take_new <= 1; take_new++) {
		rm_rf(t->vdir);
		make(t, ARCA_VOL_ENCRYPTED);
		struct arca_vol *v = vopen(t->vdir, t->tag, 0);
		uint8_t big[20 * BS], newtag[32];
		fill(big, sizeof big, 3);
		put(v, "old", "o", 1);
		uint8_t t1[32];
		commit(v);
		arca_vol_tag(v, t1);
		put(v, "new", big, sizeof big);
		put(v, "old", "O", 1);
		/* The commit stops after manifest.new (the publish hook fails,
		 * as a crash there would leave it). */
		arca_vol_set_publish(v, publish_fail, newtag);
		assert_int_equal(arca_vol_commit(v, NULL), ARCA_EIO);
		arca_vol_close(v);
		assert_true(file_exists(pn));
		if (take_new) {
			/* CAS had recorded the new tag: the open finishes the rename. */
			v = vopen(t->vdir, newtag, 0);
			assert_false(file_exists(pn));
			uint8_t tag[32];
			arca_vol_tag(v, tag);
			assert_memory_equal(tag, newtag, 32);
			expect(v, "new", big, sizeof big);
			expect(v, "old", "O", 1);
			arca_vol_close(v);
			v = vopen(t->vdir, newtag, 0); /* and it is now the manifest */
		} else {
			/* CAS still has the old tag: manifest.new and its files go. */
			v = vopen(t->vdir, t1, 0);
			assert_false(file_exists(pn));
			struct arca_vol_stat st;
			assert_int_equal(arca_vol_stat(v, "new", &st), ARCA_ENOTFOUND);
			expect(v, "old", "o", 1);
			/* Left: old's two slot files and its one leaf table. */
			char hex[33], tab[256];
			file_fid(v, t->vdir, "old", hex);
			assert_int_equal(count_in_d(t->vdir, ""), 3);
			assert_int_equal(count_in_d(t->vdir, hex), 3);
			assert_int_equal(table_of(t->vdir, hex, tab), 1);
		}
		struct problems pr;
		assert_int_equal(verify(v, &pr), 0);
		arca_vol_close(v);
	}
	/* Without a tag: manifest wins over manifest.new, which is kept; with
	 * no manifest, manifest.new is taken. */
	rm_rf(t->vdir);
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	uint8_t newtag[32];
	put(v, "x", "x", 1);
	arca_vol_set_publish(v, publish_fail, newtag);
	assert_int_equal(arca_vol_commit(v, NULL), ARCA_EIO);
	arca_vol_close(v);
	v = vopen(t->vdir, NULL, 0);
	struct arca_vol_stat st;
	assert_int_equal(arca_vol_stat(v, "x", &st), ARCA_ENOTFOUND);
	arca_vol_close(v);
	assert_true(file_exists(pn));
	char p[256];
	snprintf(p, sizeof p, "%s/manifest", t->vdir);
	unlink(p);
	v = vopen(t->vdir, NULL, 0);
	expect(v, "x", "x", 1);
	arca_vol_close(v);
	assert_false(file_exists(pn));
	assert_true(file_exists(p));
}

/* Nothing written after a commit touches what it refers to: a copy of the
 * directory taken before the next commit (a crash) opens with the commit's
 * tag and reads every committed byte. */
static void test_crash_keeps_commit(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	size_t n = 200 * BS + 10;
	uint8_t *d = malloc(n), *w = malloc(n);
	fill(d, n, 5);
	put(v, "f", d, n);
	put(v, "g", d, 1000);
	uint8_t tag[32];
	for (int round = 0; round < 3; round++) {
		commit(v);
		arca_vol_tag(v, tag);
		/* Whole blocks, partial blocks (the small cache pushes them out
		 * to disk), a truncation and growth, two times over each. */
		arca_vol_set_cache(v, 64 * BS);
		struct arca_vfile *f;
		assert_int_equal(arca_vfile_open(v, "f", O_RDWR, 0, &f), 0);
		for (int k = 0; k < 2; k++) {
			fill(w, n, 100 + (uint32_t)(round * 2 + k));
			assert_int_equal(arca_vfile_pwrite(f, w, 50 * BS, 0), 50 * BS);
			for (size_t off = 60 * BS + 7; off < 190 * BS; off += BS)
				assert_int_equal(arca_vfile_pwrite(f, w + off, 100, off), 100);
			assert_int_equal(arca_vfile_truncate(f, 30 * BS + 1), 0);
			assert_int_equal(arca_vfile_truncate(f, n), 0);
		}
		arca_vfile_close(f);
		assert_int_equal(arca_vol_unlink(v, "g"), 0);
		char h[8];
		snprintf(h, sizeof h, "h%d", round);
		put(v, h, "new", 3);
		char copy[128];
		snprintf(copy, sizeof copy, "%s/crash%d", t->dir, round);
		copy_dir(t->vdir, copy);
		/* A new open of the copy needs the lock the original holds: the
		 * copy has its own lock file. */
		struct arca_vol *c = vopen(copy, tag, ARCA_VOL_RDONLY);
		expect(c, "f", d, n);
		expect(c, "g", d, 1000);
		struct arca_vol_stat st;
		assert_int_equal(arca_vol_stat(c, h, &st), ARCA_ENOTFOUND);
		struct problems pr;
		assert_int_equal(verify(c, &pr), 0);
		arca_vol_close(c);
		/* Writable too (which cleans up the uncommitted records). */
		c = vopen(copy, tag, 0);
		expect(c, "f", d, n);
		arca_vol_close(c);
		rm_rf(copy);
		/* The next committed state is the data as written now. */
		uint8_t *cur = malloc(n);
		assert_int_equal(read_at(v, "f", cur, n, 0), (ssize_t)n);
		memcpy(d, cur, n);
		free(cur);
		put(v, "g", d, 1000);
	}
	arca_vol_close(v);
	free(d);
	free(w);
}

/* ---- fork ---- */

/* What a child of fork checks (exit status 0: all held; else which not). */
static int fork_child_checks(struct arca_vol *v, struct arca_vfile *x, struct arca_vfile *o, const uint8_t *od,
			     size_t on)
{
	char buf[16];
	struct arca_errbuf e = {{0}};
	/* 64 blocks: the partial reads below push every clean block out. */
	arca_vol_set_cache(v, 0);
	for (size_t off = 5; off + 10 <= on; off += BS)
		if (arca_vfile_pread(o, buf, 10, off) != 10 || memcmp(buf, od + off, 10) != 0)
			return 1;
	/* The parent's unsealed block reads as it was at the fork. */
	if (arca_vfile_pread(x, buf, 12, 0) != 12 || memcmp(buf, "PARENT-v2!!!", 12) != 0)
		return 2;
	if (!arca_vol_readonly(v))
		return 3;
	if (arca_vol_commit(v, &e) != ARCA_EROFS)
		return 4;
	if (arca_vfile_pwrite(x, "child", 5, 0) != ARCA_EROFS || arca_vfile_truncate(x, 0) != ARCA_EROFS)
		return 5;
	struct arca_vfile *f;
	if (arca_vfile_open(v, "x", O_RDWR, 0, &f) != ARCA_EROFS ||
	    arca_vfile_open(v, "new", O_RDWR | O_CREAT, 0600, &f) != ARCA_EROFS)
		return 6;
	if (arca_vol_unlink(v, "x") != ARCA_EROFS || arca_vol_mkdir(v, "d", 0700) != ARCA_EROFS ||
	    arca_vol_rename(v, "x", "y") != ARCA_EROFS || arca_vol_chmod(v, "x", 0600) != ARCA_EROFS)
		return 7;
	/* Closing unlinks nothing and leaves the parent's lock alone. */
	arca_vfile_close(x);
	arca_vfile_close(o);
	arca_vol_close(v);
	return 0;
}

/* A child of fork has a copy of the parent's cache, with the blocks the
 * parent wrote but has not sealed yet. The parent seals and commits them;
 * were the child to seal its copy when its reads push it out of the cache,
 * it would land in the very slot the parent's commit names (another
 * nonce), and the parent's acknowledged data would read as damaged. */
static void test_fork_child(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	size_t on = 200 * BS;
	uint8_t *od = malloc(on), tag[32];
	fill(od, on, 41);
	put(v, "other", od, on);
	put(v, "x", "committed-v1", 12);
	commit(v);
	struct arca_vfile *x, *o;
	assert_int_equal(arca_vfile_open(v, "x", O_RDWR, 0, &x), 0);
	assert_int_equal(arca_vfile_open(v, "other", O_RDONLY, 0, &o), 0);
	assert_int_equal(arca_vfile_pwrite(x, "PARENT-v2!!!", 12, 0), 12);
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		arca_vol_fork_child(v);
		char ch;
		close(go[1]);
		if (read(go[0], &ch, 1) != 1)
			_exit(100);
		_exit(fork_child_checks(v, x, o, od, on));
	}
	close(go[0]);
	commit(v); /* fsync acknowledged */
	arca_vol_tag(v, tag);
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	/* The parent still holds the volume. */
	struct arca_errbuf e = {{0}};
	assert_int_equal(try_open(t->vdir, KEY, NULL, ARCA_VOL_RDONLY, &e), ARCA_EBUSY);
	arca_vfile_close(x);
	arca_vfile_close(o);
	arca_vol_close(v);
	v = vopen(t->vdir, tag, 0);
	expect(v, "x", "PARENT-v2!!!", 12);
	expect(v, "other", od, on);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 0);
	arca_vol_close(v);
	free(od);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* A child whose cache holds nothing but the parent's unsealed blocks
 * reads other blocks around the cache, and the parent's ones from it. */
static void test_fork_child_cache_full(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	size_t n = 100 * BS, qn = 10 * BS;
	uint8_t *d = malloc(n), *q = malloc(qn), tag[32];
	fill(d, n, 51);
	fill(q, qn, 52);
	put(v, "p", d, n);
	put(v, "q", q, qn);
	commit(v);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "p", O_RDWR, 0, &f), 0);
	for (size_t i = 0; i < 100; i++) {
		d[i * BS + 1] ^= 0xff;
		assert_int_equal(arca_vfile_pwrite(f, d + i * BS + 1, 1, i * BS + 1), 1);
	}
	arca_vfile_close(f);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		arca_vol_fork_child(v);
		arca_vol_set_cache(v, 0); /* 64 blocks, 100 pinned */
		uint8_t buf[3 * BS];
		for (int round = 0; round < 2; round++) {
			for (size_t off = 3; off + 10 <= qn; off += BS / 2)
				if (read_at(v, "q", buf, 10, off) != 10 || memcmp(buf, q + off, 10) != 0)
					_exit(1);
			if (read_at(v, "q", buf, sizeof buf, BS + 17) != (ssize_t)sizeof buf ||
			    memcmp(buf, q + BS + 17, sizeof buf) != 0)
				_exit(2);
			for (size_t off = 0; off + sizeof buf <= n; off += BS + 1)
				if (read_at(v, "p", buf, sizeof buf, off) != (ssize_t)sizeof buf ||
				    memcmp(buf, d + off, sizeof buf) != 0)
					_exit(3);
		}
		arca_vol_close(v);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	commit(v);
	arca_vol_tag(v, tag);
	arca_vol_close(v);
	v = vopen(t->vdir, tag, 0);
	expect(v, "p", d, n);
	expect(v, "q", q, qn);
	arca_vol_close(v);
	free(d);
	free(q);
}

/* arca_vol_fork_child works from a pthread_atfork child handler while
 * another thread of the parent holds the volume's lock at the fork. */
static struct arca_vol *atfork_vol;
static void atfork_child(void)
{
	arca_vol_fork_child(atfork_vol);
}

struct holder {
	struct arca_vol *v;
	int in[2], out[2];
};

/* Sits in a library call (the log hook runs with the volume locked) until
 * told to go on. */
static void hold_log(const char *line, void *arg)
{
	struct holder *h = arg;
	char ch = 'h';
	(void)line;
	assert_int_equal(write(h->out[1], &ch, 1), 1);
	assert_int_equal(read(h->in[0], &ch, 1), 1);
}

static void *hold_thread(void *arg)
{
	struct holder *h = arg;
	char buf[8];
	ssize_t r = read_at(h->v, "bad", buf, 1, 0); /* fails, logs, holds */
	(void)r;
	return NULL;
}

static void test_fork_child_atfork(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	put(v, "bad", "b", 1);
	put(v, "good", "good", 4);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	char hex[33], p[256];
	file_fid(v, t->vdir, "bad", hex);
	dfile(p, sizeof p, t->vdir, hex, ".0");
	flip(p, 20, 1);
	struct holder h = {.v = v};
	assert_int_equal(pipe(h.in), 0);
	assert_int_equal(pipe(h.out), 0);
	arca_vol_set_log(v, hold_log, &h);
	atfork_vol = v;
	static int registered;
	if (!registered++)
		assert_int_equal(pthread_atfork(NULL, NULL, atfork_child), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, hold_thread, &h), 0);
	char ch;
	assert_int_equal(read(h.out[0], &ch, 1), 1); /* the thread holds the lock now */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[8];
		alarm(10); /* a child stuck on the lock dies */
		_exit(read_at(v, "good", buf, 4, 0) == 4 && memcmp(buf, "good", 4) == 0 ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	atfork_vol = NULL;
	assert_int_equal(write(h.in[1], "g", 1), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	arca_vol_close(v);
	close(h.in[0]), close(h.in[1]), close(h.out[0]), close(h.out[1]);
}

/* ---- files ---- */

static void test_truncate(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	uint8_t ff[3 * BS], got[5 * BS], want[5 * BS];
	memset(ff, 0xff, sizeof ff);
	for (int committed = 0; committed <= 1; committed++) {
		put(v, "f", ff, sizeof ff);
		if (committed)
			commit(v);
		struct arca_vfile *f;
		assert_int_equal(arca_vfile_open(v, "f", O_RDWR, 0, &f), 0);
		assert_int_equal(arca_vfile_truncate(f, 5000), 0);
		struct arca_vol_stat st;
		assert_int_equal(arca_vfile_stat(f, &st), 0);
		assert_int_equal(st.size, 5000);
		assert_int_equal(arca_vfile_truncate(f, 5 * BS), 0);
		/* Shrinking then growing reads zeros past the cut. */
		memset(want, 0, sizeof want);
		memset(want, 0xff, 5000);
		assert_int_equal(arca_vfile_pread(f, got, sizeof got, 0), 5 * BS);
		assert_memory_equal(got, want, sizeof want);
		arca_vfile_close(f);
		commit(v);
		expect(v, "f", want, sizeof want);
	}
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	expect(v, "f", want, sizeof want);
	/* Truncate to zero and to a block edge. */
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vfile_truncate(f, BS), 0);
	assert_int_equal(arca_vfile_pread(f, got, sizeof got, 0), BS);
	assert_memory_equal(got, want, BS);
	assert_int_equal(arca_vfile_truncate(f, 0), 0);
	assert_int_equal(arca_vfile_pread(f, got, sizeof got, 0), 0);
	assert_int_equal(arca_vfile_truncate(f, (uint64_t)1 << 41), ARCA_ETOOBIG);
	arca_vfile_close(f);
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	expect(v, "f", NULL, 0);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 0);
	arca_vol_close(v);
}

static void test_sparse(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	size_t off = ((size_t)1 << 20) + 100, n = off + 10;
	uint8_t *want = calloc(1, n), *got = malloc(n);
	memcpy(want, "head", 4);
	memcpy(want + off, "0123456789", 10);
	put(v, "s", "head", 4);
	put_at(v, "s", "0123456789", 10, off);
	expect(v, "s", want, n);
	/* A hole of whole blocks, and writes into it. */
	put_at(v, "s", "mid", 3, 200 * BS + 1);
	memcpy(want + 200 * BS + 1, "mid", 3);
	expect(v, "s", want, n);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, ARCA_VOL_RDONLY);
	expect(v, "s", want, n);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 0);
	arca_vol_close(v);
	/* Beyond what this implementation allows. */
	v = vopen(t->vdir, tag, 0);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "s", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, "x", 1, (uint64_t)1 << 41), ARCA_ETOOBIG);
	assert_int_equal(arca_vfile_pwrite(f, "x", 0, 5), 0);
	arca_vfile_close(f);
	arca_vol_close(v);
	free(want);
	free(got);
}

static void test_open_flags(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	struct arca_vfile *f, *g;
	assert_int_equal(arca_vfile_open(v, "f", O_RDONLY, 0, &f), ARCA_ENOTFOUND);
	assert_null(f);
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR | O_CREAT | O_EXCL, 0640, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, "hello", 5, 0), 5);
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR | O_CREAT | O_EXCL, 0640, &g), ARCA_EEXIST);
	/* A second open shares the file: it sees the write at once. */
	assert_int_equal(arca_vfile_open(v, "f", O_RDONLY | O_CREAT, 0, &g), 0);
	char buf[16];
	assert_int_equal(arca_vfile_pread(g, buf, sizeof buf, 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(arca_vfile_pwrite(g, "x", 1, 0), ARCA_EROFS);
	assert_int_equal(arca_vfile_truncate(g, 0), ARCA_EROFS);
	assert_ptr_equal(arca_vfile_vol(g), v);
	arca_vfile_close(g);
	/* O_TRUNC empties it; O_RDONLY|O_TRUNC does not. */
	assert_int_equal(arca_vfile_open(v, "f", O_RDONLY | O_TRUNC, 0, &g), 0);
	arca_vfile_close(g);
	assert_int_equal(arca_vfile_pread(f, buf, sizeof buf, 0), 5);
	assert_int_equal(arca_vfile_open(v, "f", O_WRONLY | O_TRUNC, 0, &g), 0);
	assert_int_equal(arca_vfile_pread(f, buf, sizeof buf, 0), 0);
	arca_vfile_close(g);
	struct arca_vol_stat st;
	assert_int_equal(arca_vfile_stat(f, &st), 0);
	assert_int_equal(st.mode, 0640);
	assert_int_equal(st.nlink, 1);
	arca_vfile_close(f);
	/* Directories, bad paths, missing parents. */
	assert_int_equal(arca_vol_mkdir(v, "d", 0700), 0);
	assert_int_equal(arca_vfile_open(v, "d", O_RDONLY, 0, &f), ARCA_EISDIR);
	assert_int_equal(arca_vfile_open(v, "", O_RDONLY, 0, &f), ARCA_EISDIR);
	assert_int_equal(arca_vfile_open(v, "d", O_RDWR | O_CREAT, 0600, &f), ARCA_EISDIR);
	assert_int_equal(arca_vfile_open(v, "nodir/x", O_RDWR | O_CREAT, 0600, &f), ARCA_ENOTFOUND);
	assert_int_equal(arca_vfile_open(v, "f/x", O_RDWR | O_CREAT, 0600, &f), ARCA_ENOTDIR);
	assert_int_equal(arca_vfile_open(v, "f/x/y", O_RDONLY, 0, &f), ARCA_ENOTDIR);
	static const char *bad[] = {"/f", "f/", "a//b", "./f", "d/../f", "..", ".", "d/."};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(arca_vfile_open(v, bad[i], O_RDWR | O_CREAT, 0600, &f), ARCA_EINVAL);
	assert_int_equal(arca_vfile_open(v, "f", 3, 0, &f), ARCA_EINVAL);
	char longp[ARCA_VOL_PATH_MAX + 2];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	assert_int_equal(arca_vfile_open(v, longp, O_RDWR | O_CREAT, 0600, &f), ARCA_EINVAL);
	longp[ARCA_VOL_PATH_MAX] = '\0'; /* exactly the maximum */
	assert_int_equal(arca_vfile_open(v, longp, O_RDWR | O_CREAT, 0600, &f), 0);
	arca_vfile_close(f);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	assert_int_equal(arca_vol_stat(v, longp, &st), 0);
	arca_vol_close(v);
}

static void test_unlink_open(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	uint8_t d[10 * BS], got[10 * BS];
	fill(d, sizeof d, 9);
	put(v, "f", d, sizeof d);
	commit(v);
	char hex[33];
	file_fid(v, t->vdir, "f", hex);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vol_unlink(v, "f"), 0);
	struct arca_vol_stat st;
	assert_int_equal(arca_vol_stat(v, "f", &st), ARCA_ENOTFOUND);
	assert_int_equal(arca_vfile_stat(f, &st), 0);
	assert_int_equal(st.nlink, 0);
	assert_int_equal(st.size, sizeof d);
	/* Still readable and writable, through a commit. */
	assert_int_equal(arca_vfile_pwrite(f, "zz", 2, 5), 2);
	memcpy(d + 5, "zz", 2);
	commit(v);
	assert_int_equal(arca_vfile_pread(f, got, sizeof got, 0), (ssize_t)sizeof got);
	assert_memory_equal(got, d, sizeof d);
	/* A new file under the same name is another file. */
	put(v, "f", "new", 3);
	assert_int_equal(arca_vfile_pread(f, got, 3, 0), 3);
	assert_memory_equal(got, d, 3);
	assert_true(count_in_d(t->vdir, hex) > 0);
	arca_vfile_close(f);
	/* The last commit no longer lists it: gone at the last close. */
	assert_int_equal(count_in_d(t->vdir, hex), 0);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	expect(v, "f", "new", 3);
	/* Unlinked while closed: its files go after the next commit. */
	file_fid(v, t->vdir, "f", hex);
	assert_int_equal(arca_vol_unlink(v, "f"), 0);
	assert_true(count_in_d(t->vdir, hex) > 0);
	commit(v);
	assert_int_equal(count_in_d(t->vdir, hex), 0);
	assert_int_equal(arca_vol_unlink(v, "f"), ARCA_ENOTFOUND);
	arca_vol_close(v);
}

/* ---- the namespace ---- */

struct names {
	int n;
	char s[32][64];
	struct arca_vol_stat st[32];
	int stop_at;
};

static int name_fn(const char *name, const struct arca_vol_stat *st, void *arg)
{
	struct names *l = arg;
	if (l->n < 32) {
		snprintf(l->s[l->n], sizeof l->s[0], "%s", name);
		l->st[l->n] = *st;
	}
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 42 : 0;
}

static void names_are(struct names *l, const char *const *want, int n)
{
	assert_int_equal(l->n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(l->s[i], want[i]);
}

static void test_mkdir_rmdir(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	assert_int_equal(arca_vol_mkdir(v, "a", 0750), 0);
	assert_int_equal(arca_vol_mkdir(v, "a/b", 0700), 0);
	assert_int_equal(arca_vol_mkdir(v, "a", 0700), ARCA_EEXIST);
	assert_int_equal(arca_vol_mkdir(v, "", 0700), ARCA_EEXIST);
	assert_int_equal(arca_vol_mkdir(v, "x/y", 0700), ARCA_ENOTFOUND);
	put(v, "a/f", "f", 1);
	assert_int_equal(arca_vol_mkdir(v, "a/f/g", 0700), ARCA_ENOTDIR);
	assert_int_equal(arca_vol_mkdir(v, "a//c", 0700), ARCA_EINVAL);
	struct arca_vol_stat st;
	assert_int_equal(arca_vol_stat(v, "a", &st), 0);
	assert_int_equal(st.type, ARCA_VOL_DIR);
	assert_int_equal(st.mode, 0750);
	assert_int_equal(st.nlink, 3); /* ., its entry, and b's .. */
	assert_int_equal(arca_vol_rmdir(v, "a"), ARCA_ENOTEMPTY);
	assert_int_equal(arca_vol_rmdir(v, "a/f"), ARCA_ENOTDIR);
	assert_int_equal(arca_vol_unlink(v, "a/b"), ARCA_EISDIR);
	assert_int_equal(arca_vol_rmdir(v, "a/zz"), ARCA_ENOTFOUND);
	assert_int_equal(arca_vol_rmdir(v, "a/b"), 0);
	assert_int_equal(arca_vol_unlink(v, "a/f"), 0);
	/* "a-b" sorts between "a" and "a/…": not a child of a. */
	put(v, "a-b", "x", 1);
	assert_int_equal(arca_vol_rmdir(v, "a"), 0);
	assert_int_equal(arca_vol_stat(v, "a", &st), ARCA_ENOTFOUND);
	/* chmod and utime, and that they persist. */
	assert_int_equal(arca_vol_chmod(v, "a-b", 0400 | 0100000), 0);
	assert_int_equal(arca_vol_utime(v, "a-b", 1234567890123456789LL), 0);
	assert_int_equal(arca_vol_chmod(v, "nope", 0400), ARCA_ENOTFOUND);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	assert_int_equal(arca_vol_stat(v, "a-b", &st), 0);
	assert_int_equal(st.mode, 0400);
	assert_int_equal(st.mtime_ns, 1234567890123456789LL);
	arca_vol_close(v);
}

static void test_rename(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	assert_int_equal(arca_vol_mkdir(v, "d", 0700), 0);
	assert_int_equal(arca_vol_mkdir(v, "d/sub", 0700), 0);
	assert_int_equal(arca_vol_mkdir(v, "empty", 0700), 0);
	assert_int_equal(arca_vol_mkdir(v, "full", 0700), 0);
	put(v, "full/x", "x", 1);
	put(v, "d/f1", "one", 3);
	put(v, "d/sub/f2", "two", 3);
	put(v, "a", "AAA", 3);
	put(v, "b", "BBB", 3);
	commit(v);
	char hb[33];
	file_fid(v, t->vdir, "b", hb);
	/* A file replaces a file; the replaced one's files go at the commit. */
	assert_int_equal(arca_vol_rename(v, "a", "b"), 0);
	expect(v, "b", "AAA", 3);
	struct arca_vol_stat st;
	assert_int_equal(arca_vol_stat(v, "a", &st), ARCA_ENOTFOUND);
	commit(v);
	assert_int_equal(count_in_d(t->vdir, hb), 0);
	/* The rules of rename(2). */
	assert_int_equal(arca_vol_rename(v, "b", "d"), ARCA_EISDIR);
	assert_int_equal(arca_vol_rename(v, "d", "b"), ARCA_ENOTDIR);
	assert_int_equal(arca_vol_rename(v, "d", "full"), ARCA_ENOTEMPTY);
	assert_int_equal(arca_vol_rename(v, "d", "d/sub/in"), ARCA_EINVAL);
	assert_int_equal(arca_vol_rename(v, "nope", "x"), ARCA_ENOTFOUND);
	assert_int_equal(arca_vol_rename(v, "b", "nodir/b"), ARCA_ENOTFOUND);
	assert_int_equal(arca_vol_rename(v, "b", "b/x"), ARCA_ENOTDIR);
	assert_int_equal(arca_vol_rename(v, "", "x"), ARCA_EBUSY);
	assert_int_equal(arca_vol_rename(v, "b", "b"), 0);
	/* A directory replaces an empty one and takes everything under it. */
	assert_int_equal(arca_vol_rename(v, "d", "empty"), 0);
	expect(v, "empty/f1", "one", 3);
	expect(v, "empty/sub/f2", "two", 3);
	assert_int_equal(arca_vol_stat(v, "d", &st), ARCA_ENOTFOUND);
	assert_int_equal(arca_vol_stat(v, "d/f1", &st), ARCA_ENOTFOUND);
	/* Into a deeper place, with an open file inside. */
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "empty/f1", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vol_rename(v, "empty", "full/moved"), 0);
	assert_int_equal(arca_vfile_pwrite(f, "ONE", 3, 0), 3);
	arca_vfile_close(f);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	expect(v, "full/moved/f1", "ONE", 3);
	expect(v, "full/moved/sub/f2", "two", 3);
	expect(v, "full/x", "x", 1);
	struct names l = {0};
	assert_int_equal(arca_vol_walk(v, name_fn, &l), 0);
	static const char *const all[] = {"b", "full", "full/moved", "full/moved/f1", "full/moved/sub",
					  "full/moved/sub/f2", "full/x"};
	names_are(&l, all, 7);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 0);
	arca_vol_close(v);
}

static void test_list_walk(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	assert_int_equal(arca_vol_mkdir(v, "a", 0700), 0);
	assert_int_equal(arca_vol_mkdir(v, "a/c", 0700), 0);
	put(v, "a/x", "1234", 4);
	put(v, "a/c/y", "", 0);
	put(v, "b", "", 0);
	put(v, "a-b", "", 0);
	put(v, "a.c", "", 0);
	put(v, "A", "", 0);
	struct names l = {0};
	assert_int_equal(arca_vol_list(v, "", name_fn, &l), 0);
	static const char *const top[] = {"A", "a", "a-b", "a.c", "b"};
	names_are(&l, top, 5);
	assert_int_equal(l.st[1].type, ARCA_VOL_DIR);
	assert_int_equal(l.st[0].type, ARCA_VOL_FILE);
	memset(&l, 0, sizeof l);
	assert_int_equal(arca_vol_list(v, "a", name_fn, &l), 0);
	static const char *const ina[] = {"c", "x"};
	names_are(&l, ina, 2);
	assert_int_equal(l.st[1].size, 4);
	memset(&l, 0, sizeof l);
	assert_int_equal(arca_vol_walk(v, name_fn, &l), 0);
	static const char *const all[] = {"A", "a", "a-b", "a.c", "a/c", "a/c/y", "a/x", "b"};
	names_are(&l, all, 8);
	/* Parents before children, and inode numbers that differ. */
	for (int i = 0; i < l.n; i++)
		for (int j = 0; j < i; j++)
			assert_true(l.st[i].ino != l.st[j].ino);
	memset(&l, 0, sizeof l);
	l.stop_at = 2;
	assert_int_equal(arca_vol_list(v, "", name_fn, &l), 42);
	assert_int_equal(l.n, 2);
	assert_int_equal(arca_vol_list(v, "b", name_fn, &l), ARCA_ENOTDIR);
	assert_int_equal(arca_vol_list(v, "zz", name_fn, &l), ARCA_ENOTFOUND);
	/* Inode numbers are stable across a reopen for files. */
	struct arca_vol_stat st1, st2;
	assert_int_equal(arca_vol_stat(v, "a/x", &st1), 0);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	assert_int_equal(arca_vol_stat(v, "a/x", &st2), 0);
	assert_int_equal(st1.ino, st2.ino);
	arca_vol_close(v);
}

/* ---- modes of opening ---- */

static void test_readonly(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	assert_int_equal(arca_vol_mkdir(v, "d", 0700), 0);
	put(v, "f", "data", 4);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, ARCA_VOL_RDONLY);
	struct arca_errbuf e = {{0}};
	struct arca_vfile *f;
	assert_int_equal(arca_vol_mkdir(v, "x", 0700), ARCA_EROFS);
	assert_int_equal(arca_vol_rmdir(v, "d"), ARCA_EROFS);
	assert_int_equal(arca_vol_unlink(v, "f"), ARCA_EROFS);
	assert_int_equal(arca_vol_rename(v, "f", "g"), ARCA_EROFS);
	assert_int_equal(arca_vol_chmod(v, "f", 0600), ARCA_EROFS);
	assert_int_equal(arca_vol_utime(v, "f", 5), ARCA_EROFS);
	assert_int_equal(arca_vol_commit(v, &e), ARCA_EROFS);
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR, 0, &f), ARCA_EROFS);
	assert_int_equal(arca_vfile_open(v, "f", O_WRONLY, 0, &f), ARCA_EROFS);
	assert_int_equal(arca_vfile_open(v, "f", O_RDONLY | O_TRUNC, 0, &f), ARCA_EROFS);
	assert_int_equal(arca_vfile_open(v, "new", O_RDONLY | O_CREAT, 0600, &f), ARCA_EROFS);
	assert_int_equal(arca_vfile_open(v, "f", O_RDONLY, 0, &f), 0);
	assert_int_equal(arca_vfile_pwrite(f, "x", 1, 0), ARCA_EROFS);
	assert_int_equal(arca_vfile_truncate(f, 0), ARCA_EROFS);
	arca_vfile_close(f);
	expect(v, "f", "data", 4);
	/* Two readers at once are fine; a writer is not. */
	struct arca_vol *v2 = vopen(t->vdir, tag, ARCA_VOL_RDONLY);
	assert_int_equal(try_open(t->vdir, KEY, tag, 0, &e), ARCA_EBUSY);
	arca_vol_close(v2);
	arca_vol_close(v);
}

static void test_second_writer(void **state)
{
	struct t *t = *state;
	struct arca_errbuf e = {{0}};
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	assert_int_equal(try_open(t->vdir, KEY, t->tag, 0, &e), ARCA_EBUSY);
	assert_non_null(strstr(e.msg, "in use"));
	assert_int_equal(try_open(t->vdir, KEY, t->tag, ARCA_VOL_RDONLY, &e), ARCA_EBUSY);
	/* Another process too (flock is per open file, so this is no different
	 * in kind, but it is what happens in practice). */
	pid_t pid = fork();
	if (pid == 0) {
		struct arca_vol *w = NULL;
		int rc = arca_vol_open(t->vdir, KEY, t->tag, 0, &w, NULL);
		_exit(rc == ARCA_EBUSY ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	arca_vol_close(v);
	v = vopen(t->vdir, t->tag, 0);
	arca_vol_close(v);
}

static int memmem_file(const char *path, const void *needle, size_t n)
{
	uint8_t *d;
	size_t len = slurp(path, &d);
	int found = memmem(d, len, needle, n) != NULL;
	free(d);
	return found;
}

static void test_authenticated_is_plain(void **state)
{
	struct t *t = *state;
	static const char marker[] = "a line of plain text that must show in the slot file";
	for (int mode = 1; mode <= 2; mode++) {
		rm_rf(t->vdir);
		make(t, (enum arca_vol_mode)mode);
		struct arca_vol *v = vopen(t->vdir, t->tag, 0);
		put(v, "code.py", marker, sizeof marker);
		char hex[33], p[256];
		commit(v);
		file_fid(v, t->vdir, "code.py", hex);
		dfile(p, sizeof p, t->vdir, hex, ".0");
		assert_int_equal(memmem_file(p, marker, sizeof marker - 1), mode == ARCA_VOL_AUTHENTICATED);
		/* Names are never in the clear, in either mode. */
		char mp[256];
		snprintf(mp, sizeof mp, "%s/manifest", t->vdir);
		assert_false(memmem_file(mp, "code.py", 7));
		/* A changed plain byte is caught. */
		flip(p, 12 + 3, 0x20);
		struct logs l = {0};
		arca_vol_tag(v, t->tag);
		v = reopen(t, v, &l);
		char got[sizeof marker];
		assert_int_equal(read_at(v, "code.py", got, sizeof got, 0), ARCA_ECRYPTO);
		assert_int_equal(l.n, 1);
		arca_vol_close(v);
	}
}

/* ---- verify, commit, clean-up ---- */

static void test_verify_finds_each(void **state)
{
	struct t *t = *state;
	struct problems pr;
	uint8_t a[5 * BS], b[5 * BS];
	struct arca_vol *v = two_files(t, ARCA_VOL_ENCRYPTED, NULL, a, b);
	assert_int_equal(arca_vol_mkdir(v, "d", 0700), 0);
	put(v, "d/c", a, 2 * BS + 3);
	commit(v);
	assert_int_equal(verify(v, &pr), 0);
	char ha[33], hb[33], hc[33], p[256], tab[256];
	file_fid(v, t->vdir, "a", ha);
	file_fid(v, t->vdir, "b", hb);
	file_fid(v, t->vdir, "d/c", hc);
	/* a: block 2 changed; b: leaf table gone; d/c: a leaf changed. */
	dfile(p, sizeof p, t->vdir, ha, ".0");
	flip(p, 2 * REC + 40, 4);
	assert_int_equal(table_of(t->vdir, hb, tab), 1);
	assert_int_equal(unlink(tab), 0);
	assert_int_equal(table_of(t->vdir, hc, tab), 1);
	flip(tab, 16 + 32 + 3, 1);
	memset(&pr, 0, sizeof pr);
	assert_int_equal(arca_vol_verify(v, problem_fn, NULL, &pr), 3);
	assert_non_null(strstr(pr.all, "a: block 2: authentication failed"));
	assert_non_null(strstr(pr.all, "b: leaf table d/"));
	assert_non_null(strstr(pr.all, "is missing"));
	assert_non_null(strstr(pr.all, "d/c: leaf table d/"));
	assert_non_null(strstr(pr.all, "does not match the manifest"));
	/* The manifest replaced behind the open volume's back. */
	snprintf(p, sizeof p, "%s/manifest", t->vdir);
	flip(p, 40, 1);
	assert_int_equal(verify(v, &pr), 2);
	assert_non_null(strstr(pr.all, ": no manifest on disk has the tag"));
	assert_non_null(strstr(pr.all, ": the manifest does not verify"));
	arca_vol_close(v);
}

struct progress {
	uint64_t done, total;
	int calls;
	int backwards;
};

static void progress_fn(uint64_t done, uint64_t total, void *arg)
{
	struct progress *p = arg;
	if (done < p->done)
		p->backwards = 1;
	p->done = done;
	p->total = total;
	p->calls++;
}

static void test_verify_progress(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_AUTHENTICATED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	uint8_t d[200 * BS];
	fill(d, sizeof d, 4);
	put(v, "big", d, sizeof d);
	put(v, "small", d, 10);
	commit(v);
	struct progress pg = {0};
	assert_int_equal(arca_vol_verify(v, NULL, progress_fn, &pg), 0);
	assert_true(pg.calls >= 4);
	assert_false(pg.backwards);
	assert_int_equal(pg.total, 201 * BS);
	assert_int_equal(pg.done, pg.total);
	/* In authenticated mode the body is plain, and still bound. */
	char hex[33], p[256];
	file_fid(v, t->vdir, "small", hex);
	dfile(p, sizeof p, t->vdir, hex, ".0");
	flip(p, 12 + 100, 1);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 1);
	assert_non_null(strstr(pr.all, "small: block 0: authentication failed"));
	arca_vol_close(v);
}

static void test_commit_nothing(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	struct pub pub = {0};
	arca_vol_set_publish(v, publish_ok, &pub);
	char p[256];
	snprintf(p, sizeof p, "%s/manifest", t->vdir);
	struct stat a, b;
	assert_int_equal(stat(p, &a), 0);
	commit(v);
	assert_int_equal(pub.calls, 0);
	/* Reads, lists, stats and a read-only open change nothing either. */
	put(v, "f", "x", 1);
	commit(v);
	assert_int_equal(pub.calls, 1);
	assert_int_equal(stat(p, &a), 0);
	char buf[4];
	assert_int_equal(read_at(v, "f", buf, 4, 0), 1);
	struct names l = {0};
	assert_int_equal(arca_vol_walk(v, name_fn, &l), 0);
	struct arca_vfile *f;
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR, 0, &f), 0);
	assert_int_equal(arca_vfile_truncate(f, 1), 0); /* same size: no change */
	arca_vfile_close(f);
	commit(v);
	assert_int_equal(pub.calls, 1);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
	assert_int_equal(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
	/* Writes are not durable before the commit: close and reopen. */
	put(v, "f", "changed", 7);
	arca_vol_close(v);
	v = vopen(t->vdir, pub.new_tag, 0);
	expect(v, "f", "x", 1);
	arca_vol_close(v);
}

static void test_clean_up(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	put(v, "f", "v1", 2);
	commit(v);
	char hex[33], tab[256];
	file_fid(v, t->vdir, "f", hex);
	for (int k = 0; k < 3; k++) {
		put(v, "f", "v2", 2);
		commit(v);
		assert_int_equal(table_of(t->vdir, hex, tab), 1); /* only the current table */
	}
	uint8_t tag[32];
	commit_close(v, tag);
	/* Strays: an old table of f, files of an unknown FID, other names. */
	char p[256];
	dfile(p, sizeof p, t->vdir, hex, ".t0000000000000001");
	spit(p, (const uint8_t *)"x", 1);
	dfile(p, sizeof p, t->vdir, "0123456789abcdef0123456789abcdef", ".0");
	spit(p, (const uint8_t *)"x", 1);
	dfile(p, sizeof p, t->vdir, "0123456789abcdef0123456789abcdef", ".t0000000000000007");
	spit(p, (const uint8_t *)"x", 1);
	snprintf(p, sizeof p, "%s/d/README", t->vdir);
	spit(p, (const uint8_t *)"x", 1);
	/* A read-only open removes nothing. */
	v = vopen(t->vdir, tag, ARCA_VOL_RDONLY);
	arca_vol_close(v);
	assert_int_equal(count_in_d(t->vdir, "0123456789abcdef"), 2);
	assert_int_equal(table_of(t->vdir, hex, tab), 2);
	v = vopen(t->vdir, tag, 0);
	assert_int_equal(count_in_d(t->vdir, "0123456789abcdef"), 0);
	assert_int_equal(table_of(t->vdir, hex, tab), 1);
	assert_true(file_exists(p)); /* not ours to remove */
	expect(v, "f", "v2", 2);
	arca_vol_close(v);
}

struct worker {
	struct arca_vol *v;
	char name[16];
	int ok;
};

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	uint8_t d[3 * BS + 17], got[sizeof d];
	struct arca_vfile *f;
	w->ok = arca_vfile_open(w->v, w->name, O_RDWR | O_CREAT, 0600, &f) == 0;
	for (uint32_t k = 0; w->ok && k < 200; k++) {
		fill(d, sizeof d, k);
		w->ok = arca_vfile_pwrite(f, d, sizeof d, k * 7) == (ssize_t)sizeof d &&
			arca_vfile_pread(f, got, sizeof got, k * 7) == (ssize_t)sizeof got &&
			memcmp(d, got, sizeof d) == 0;
		if (k % 50 == 0)
			w->ok = w->ok && arca_vol_commit(w->v, NULL) == 0;
	}
	if (w->ok)
		arca_vfile_close(f);
	return NULL;
}

static void test_threads(void **state)
{
	struct t *t = *state;
	make(t, ARCA_VOL_ENCRYPTED);
	struct arca_vol *v = vopen(t->vdir, t->tag, 0);
	arca_vol_set_cache(v, 64 * BS);
	struct worker w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i].v = v;
		snprintf(w[i].name, sizeof w[i].name, "t%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, worker_fn, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		assert_true(w[i].ok);
	uint8_t tag[32];
	commit_close(v, tag);
	v = vopen(t->vdir, tag, 0);
	struct problems pr;
	assert_int_equal(verify(v, &pr), 0);
	uint8_t d[3 * BS + 17];
	fill(d, sizeof d, 199);
	uint8_t *got = malloc(199 * 7 + sizeof d);
	assert_int_equal(read_at(v, "t2", got, 199 * 7 + sizeof d, 0), (ssize_t)(199 * 7 + sizeof d));
	assert_memory_equal(got + 199 * 7, d, sizeof d);
	free(got);
	arca_vol_close(v);
}

/* ---- the parsers ---- */

struct mb {
	uint8_t b[12288];
	size_t n;
};

static void mb_raw(struct mb *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof m->b);
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void mb_le(struct mb *m, uint64_t x, int bytes)
{
	for (int i = 0; i < bytes; i++) {
		uint8_t c = (uint8_t)(x >> (8 * i));
		mb_raw(m, &c, 1);
	}
}

static void mb_head(struct mb *m, uint32_t count)
{
	m->n = 0;
	mb_raw(m, "ARCAMF1\0", 8);
	mb_le(m, 7, 8);
	mb_le(m, count, 4);
}

static void mb_dir(struct mb *m, const char *path)
{
	mb_le(m, 2, 1);
	mb_le(m, 0755, 4);
	mb_le(m, 1, 8);
	mb_le(m, strlen(path), 2);
	mb_raw(m, path, strlen(path));
}

static void mb_file(struct mb *m, const char *path, uint8_t fidbyte, uint64_t size)
{
	uint8_t fid[16], root[32] = {0};
	memset(fid, fidbyte, sizeof fid);
	mb_le(m, 1, 1);
	mb_le(m, 0644, 4);
	mb_le(m, 1, 8);
	mb_le(m, strlen(path), 2);
	mb_raw(m, path, strlen(path));
	mb_raw(m, fid, 16);
	mb_le(m, size, 8);
	mb_le(m, 1, 8);
	mb_raw(m, root, 32);
}

static int man(const struct mb *m, const char *want_msg)
{
	struct arca_errbuf e = {{0}};
	int rc = arca_vol_manifest_check(m->b, m->n, &e);
	if (want_msg && !strstr(e.msg, want_msg))
		fail_msg("manifest message \"%s\" lacks \"%s\"", e.msg, want_msg);
	return rc;
}

static void test_manifest_parser(void **state)
{
	(void)state;
	struct mb m;
	mb_head(&m, 0);
	assert_int_equal(man(&m, NULL), 0);
	mb_head(&m, 3);
	mb_dir(&m, "a");
	mb_file(&m, "a/f", 1, 10);
	mb_file(&m, "b", 2, 0);
	assert_int_equal(man(&m, NULL), 3);
	/* Trailing bytes, a count too high or too low. */
	struct mb x = m;
	mb_le(&x, 0, 1);
	assert_int_equal(man(&x, "after the last entry"), ARCA_EPARSE);
	x = m;
	x.b[16] = 4;
	assert_int_equal(man(&x, NULL), ARCA_EPARSE);
	x.b[16] = 2;
	assert_int_equal(man(&x, "after the last entry"), ARCA_EPARSE);
	x.b[16] = 0xff, x.b[17] = 0xff, x.b[18] = 0xff, x.b[19] = 0x7f;
	assert_int_equal(man(&x, "does not fit"), ARCA_EPARSE);
	/* Cut anywhere. */
	for (size_t cut = 0; cut < m.n; cut++)
		assert_int_equal(arca_vol_manifest_check(m.b, cut, NULL), ARCA_EPARSE);
	/* Bad magic. */
	x = m;
	x.b[6] = '2';
	assert_int_equal(man(&x, "magic"), ARCA_EPARSE);
	/* Unsorted, duplicate. */
	mb_head(&x, 2);
	mb_file(&x, "b", 1, 0);
	mb_file(&x, "a", 2, 0);
	assert_int_equal(man(&x, "out of order"), ARCA_EPARSE);
	mb_head(&x, 2);
	mb_file(&x, "a", 1, 0);
	mb_file(&x, "a", 2, 0);
	assert_int_equal(man(&x, "duplicate"), ARCA_EPARSE);
	mb_head(&x, 2);
	mb_dir(&x, "a");
	mb_file(&x, "a", 2, 0);
	assert_int_equal(man(&x, NULL), ARCA_EPARSE);
	/* Missing parent; a file as parent. */
	mb_head(&x, 1);
	mb_file(&x, "a/f", 1, 0);
	assert_int_equal(man(&x, "parent"), ARCA_EPARSE);
	mb_head(&x, 2);
	mb_file(&x, "a", 1, 0);
	mb_file(&x, "a/f", 2, 0);
	assert_int_equal(man(&x, "parent"), ARCA_EPARSE);
	mb_head(&x, 3);
	mb_dir(&x, "a");
	mb_dir(&x, "a-b");
	mb_file(&x, "a/f", 2, 0); /* parent two entries back */
	assert_int_equal(man(&x, NULL), 3);
	/* Two files with one FID. */
	mb_head(&x, 2);
	mb_file(&x, "a", 1, 0);
	mb_file(&x, "b", 1, 0);
	assert_int_equal(man(&x, "file id"), ARCA_EPARSE);
	/* Bad paths. */
	static const char *bad[] = {"", "/a", "a/", ".", "..", "a//b", "./a", "x/../a"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		mb_head(&x, 1);
		mb_file(&x, bad[i], 1, 0);
		assert_int_equal(man(&x, NULL), ARCA_EPARSE);
	}
	/* A NUL inside a path (by hand: strlen would stop at it). */
	mb_head(&x, 1);
	mb_le(&x, 1, 1);
	mb_le(&x, 0644, 4);
	mb_le(&x, 1, 8);
	mb_le(&x, 3, 2);
	mb_raw(&x, "a\0b", 3);
	uint8_t tail[16 + 8 + 8 + 32] = {1};
	mb_raw(&x, tail, sizeof tail);
	assert_int_equal(man(&x, "bad path"), ARCA_EPARSE);
	/* Type and mode. */
	mb_head(&x, 1);
	mb_file(&x, "a", 1, 0);
	x.b[20] = 3;
	assert_int_equal(man(&x, "type"), ARCA_EPARSE);
	x.b[20] = 1;
	x.b[22] = 0x10; /* mode 0x1000 + 0644: a file-type bit */
	assert_int_equal(man(&x, "mode"), ARCA_EPARSE);
	/* A size beyond the implementation's limit. */
	mb_head(&x, 1);
	mb_file(&x, "a", 1, (uint64_t)1 << 50);
	assert_int_equal(man(&x, "size"), ARCA_EPARSE);
	/* The longest path, and one byte more. */
	char *longp = malloc(ARCA_VOL_PATH_MAX + 2);
	memset(longp, 'p', ARCA_VOL_PATH_MAX + 1);
	longp[ARCA_VOL_PATH_MAX] = '\0';
	mb_head(&x, 1);
	mb_file(&x, longp, 1, 0);
	assert_int_equal(man(&x, NULL), 1);
	longp[ARCA_VOL_PATH_MAX] = 'p';
	longp[ARCA_VOL_PATH_MAX + 1] = '\0';
	mb_head(&x, 1);
	mb_file(&x, longp, 1, 0);
	assert_int_equal(man(&x, "bad path"), ARCA_EPARSE);
	free(longp);
}

static void test_leaves_parser(void **state)
{
	(void)state;
	uint8_t d[16 + 3 * 32] = "ARCALT1";
	d[8] = 3;
	for (int i = 0; i < 3; i++)
		d[16 + 32 * i + 28] = (uint8_t)(i & 1);
	assert_int_equal(arca_vol_leaves_check(d, sizeof d, NULL), 3);
	assert_int_equal(arca_vol_leaves_check(d, 16, NULL), ARCA_EPARSE);
	assert_int_equal(arca_vol_leaves_check(d, sizeof d - 1, NULL), ARCA_EPARSE);
	uint8_t more[sizeof d + 1];
	memcpy(more, d, sizeof d);
	more[sizeof d] = 0;
	assert_int_equal(arca_vol_leaves_check(more, sizeof more, NULL), ARCA_EPARSE);
	d[8] = 2;
	assert_int_equal(arca_vol_leaves_check(d, sizeof d, NULL), ARCA_EPARSE);
	d[8] = 3;
	d[16 + 32 + 28] = 2; /* slot 2 */
	assert_int_equal(arca_vol_leaves_check(d, sizeof d, NULL), ARCA_EPARSE);
	d[16 + 32 + 28] = 1;
	d[16 + 32 + 31] = 1; /* padding */
	assert_int_equal(arca_vol_leaves_check(d, sizeof d, NULL), ARCA_EPARSE);
	d[16 + 32 + 31] = 0;
	d[7] = 'x';
	assert_int_equal(arca_vol_leaves_check(d, sizeof d, NULL), ARCA_EPARSE);
	d[7] = 0;
	d[15] = 0x80; /* a huge count */
	assert_int_equal(arca_vol_leaves_check(d, sizeof d, NULL), ARCA_EPARSE);
	uint8_t empty[16] = "ARCALT1";
	assert_int_equal(arca_vol_leaves_check(empty, sizeof empty, NULL), 0);
}

static void test_header_parser(void **state)
{
	(void)state;
	static const char good[] =
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": "
		"\"encrypted\", \"check\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n";
	assert_int_equal(arca_vol_header_check(good, strlen(good), NULL), 0);
	static const char *bad[] = {
		"{\"format\": \"arca-volume/2\", \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": \"encrypted\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899AABBCCDDEEFF\", \"mode\": \"encrypted\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddee\", \"mode\": \"encrypted\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": \"plain\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": \"encrypted\"}",
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": \"encrypted\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\", \"x\": 1}",
		"{\"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": \"encrypted\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"} x",
		"{\"format\": \"arca-volume/1\", \"format\": \"arca-volume/1\", \"id\": \"00112233445566778899aabbccddeeff\", "
		"\"mode\": \"encrypted\"}",
		"[1, 2, 3, 4]",
		"{\"format\": 1, \"id\": \"00112233445566778899aabbccddeeff\", \"mode\": \"encrypted\", "
		"\"check\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct arca_errbuf e = {{0}};
		assert_int_equal(arca_vol_header_check(bad[i], strlen(bad[i]), &e), ARCA_EPARSE);
		assert_non_null(strstr(e.msg, "arca-volume.json"));
	}
	/* Not a C string: a NUL inside is refused too. */
	char nul[sizeof good];
	memcpy(nul, good, sizeof good);
	nul[40] = '\0';
	assert_int_equal(arca_vol_header_check(nul, sizeof good - 1, NULL), ARCA_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format_by_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_in_header_is_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_patterns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swapped_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_on_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_copy_of_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_copied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_unknown_outcome, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_fails_after_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_keeps_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_cache_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_atfork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlink_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_rmdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticated_is_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_finds_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test(test_manifest_parser),
		cmocka_unit_test(test_leaves_parser),
		cmocka_unit_test(test_header_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
