/* volume_format.c: the bytes of a protected volume (docs/VOLUMES.md): the
 * header, the manifest plaintext and its seal, leaf tables, file names in
 * d/, keys and additional data. Parsers refuse anything the format does not
 * allow, trailing bytes included; nothing here touches the disk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "volume_int.h"

static const char header_format[] = "arca-volume/1";
static const uint8_t man_magic[8] = "ARCAMF1";	/* with its NUL */
static const uint8_t seal_magic[8] = {'A', 'R', 'C', 'A', 'M', 'A', 'N', '1'};
static const uint8_t lt_magic[8] = "ARCALT1";

/* ---- paths ---- */

int vol_path_ok(const char *p, size_t len)
{
	if (len == 0 || len > ARCA_VOL_PATH_MAX)
		return 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] == '\0')
			return 0;
		if (i < len && p[i] != '/')
			continue;
		size_t clen = i - start;
		if (clen == 0 || (clen == 1 && p[start] == '.') || (clen == 2 && p[start] == '.' && p[start + 1] == '.'))
			return 0;
		start = i + 1;
	}
	return 1;
}

int vol_path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- header ---- */

static int lower_hex(const char *s, size_t want, uint8_t *out)
{
	if (strlen(s) != 2 * want)
		return ARCA_EPARSE;
	for (size_t i = 0; i < 2 * want; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return ARCA_EPARSE;
	size_t n = 0;
	GUARD(arca_hex_decode(s, 2 * want, out, want, &n));
	return n == want ? 0 : ARCA_EPARSE;
}

static const char *json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int vol_header_parse(const char *d, size_t len, struct vol_header *h, struct arca_errbuf *e)
{
	if (len > VOL_HEADER_MAX)
		return arca_errf(e, ARCA_EPARSE, "arca-volume.json: larger than %d bytes", VOL_HEADER_MAX);
	json_error_t je;
	json_t *o = json_loadb(d, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return arca_errf(e, ARCA_EPARSE, "arca-volume.json: not JSON (%s, line %d)", je.text, je.line);
	int rc = ARCA_EPARSE;
	const char *fmt = json_str(o, "format"), *id = json_str(o, "id"), *mode = json_str(o, "mode"),
		   *check = json_str(o, "check");
	if (!json_is_object(o) || json_object_size(o) != 4 || !fmt || !id || !mode || !check) {
		arca_errf(e, rc, "arca-volume.json: needs exactly the string keys format, id, mode and check");
		goto out;
	}
	if (strcmp(fmt, header_format) != 0) {
		arca_errf(e, rc, "arca-volume.json: format \"%.64s\" is not %s", fmt, header_format);
		goto out;
	}
	if (strcmp(mode, "encrypted") == 0)
		h->mode = ARCA_VOL_ENCRYPTED;
	else if (strcmp(mode, "authenticated") == 0)
		h->mode = ARCA_VOL_AUTHENTICATED;
	else {
		arca_errf(e, rc, "arca-volume.json: mode must be encrypted or authenticated");
		goto out;
	}
	if (lower_hex(id, VOL_ID_LEN, h->id) < 0 || lower_hex(check, 32, h->check) < 0) {
		arca_errf(e, rc, "arca-volume.json: id must be 32 and check 64 lower-case hex digits");
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int vol_header_encode(const struct vol_header *h, struct arca_buf *out)
{
	char id[2 * VOL_ID_LEN + 1], check[65];
	arca_hex_encode(h->id, VOL_ID_LEN, id);
	arca_hex_encode(h->check, 32, check);
	return arca_buf_appendf(out, "{\"format\": \"%s\", \"id\": \"%s\", \"mode\": \"%s\", \"check\": \"%s\"}\n",
				header_format, id, h->mode == ARCA_VOL_ENCRYPTED ? "encrypted" : "authenticated",
				check);
}

int arca_vol_header_check(const char *d, size_t len, struct arca_errbuf *e)
{
	struct vol_header h;
	return vol_header_parse(d, len, &h, e);
}

/* ---- manifest plaintext ---- */

#define ENT_MIN (1 + 4 + 8 + 2 + 1)
#define FILE_EXTRA (VOL_FID_LEN + 8 + 8 + 32)

static int rec_parse(struct arca_cur *c, struct vol_rec *r, uint32_t k, struct arca_errbuf *e)
{
	uint64_t mt;
	const uint8_t *path;
	if (arca_cur_u8(c, &r->type) < 0 || arca_cur_u32le(c, &r->mode) < 0 || arca_cur_u64le(c, &mt) < 0 ||
	    arca_cur_u16le(c, &r->plen) < 0 || arca_cur_take(c, r->plen, &path) < 0)
		return arca_errf(e, ARCA_EPARSE, "manifest: entry %u is cut short", k);
	r->mtime_ns = (int64_t)mt;
	r->path = (const char *)path;
	if (r->type != ARCA_VOL_FILE && r->type != ARCA_VOL_DIR)
		return arca_errf(e, ARCA_EPARSE, "manifest: entry %u has unknown type %u", k, r->type);
	if (r->mode & ~07777u)
		return arca_errf(e, ARCA_EPARSE, "manifest: entry %u: mode %#o has bits beyond the permissions", k,
				 r->mode);
	if (!vol_path_ok(r->path, r->plen))
		return arca_errf(e, ARCA_EPARSE, "manifest: entry %u: bad path", k);
	if (r->type == ARCA_VOL_DIR) {
		memset(r->fid, 0, sizeof r->fid);
		r->size = r->gen = 0;
		memset(r->root, 0, sizeof r->root);
		return 0;
	}
	if (arca_cur_copy(c, r->fid, VOL_FID_LEN) < 0 || arca_cur_u64le(c, &r->size) < 0 ||
	    arca_cur_u64le(c, &r->gen) < 0 || arca_cur_copy(c, r->root, 32) < 0)
		return arca_errf(e, ARCA_EPARSE, "manifest: entry %u is cut short", k);
	if (r->size > VOL_SIZE_MAX)
		return arca_errf(e, ARCA_EPARSE, "manifest: %.*s: size %llu beyond this implementation's limit", (int)r->plen,
				 r->path, (unsigned long long)r->size);
	return 0;
}

static int find_rec(const struct vol_rec *recs, uint32_t n, const char *p, size_t len)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = vol_path_cmp(recs[mid].path, recs[mid].plen, p, len);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int fid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, VOL_FID_LEN);
}

static int fids_unique(const struct vol_rec *recs, uint32_t n, struct arca_errbuf *e)
{
	uint8_t *fids = malloc((size_t)n * VOL_FID_LEN + 1);
	if (!fids)
		return arca_errf(e, ARCA_ENOMEM, "manifest: out of memory");
	size_t nf = 0;
	for (uint32_t i = 0; i < n; i++)
		if (recs[i].type == ARCA_VOL_FILE)
			memcpy(fids + VOL_FID_LEN * nf++, recs[i].fid, VOL_FID_LEN);
	qsort(fids, nf, VOL_FID_LEN, fid_cmp);
	int rc = 0;
	for (size_t i = 1; i < nf && rc == 0; i++)
		if (memcmp(fids + VOL_FID_LEN * (i - 1), fids + VOL_FID_LEN * i, VOL_FID_LEN) == 0)
			rc = arca_errf(e, ARCA_EPARSE, "manifest: two files share one file id");
	free(fids);
	return rc;
}

/* Sorted order puts every parent before its children, so the parent of
 * entry k is looked up among entries 0..k-1. */
static int structure_ok(const struct vol_rec *recs, uint32_t n, struct arca_errbuf *e)
{
	for (uint32_t k = 0; k < n; k++) {
		const struct vol_rec *r = &recs[k];
		if (k > 0 && vol_path_cmp(recs[k - 1].path, recs[k - 1].plen, r->path, r->plen) >= 0)
			return arca_errf(e, ARCA_EPARSE, "manifest: entry %u is out of order or a duplicate", k);
		const char *slash = memrchr(r->path, '/', r->plen);
		if (!slash)
			continue;
		int p = find_rec(recs, k, r->path, (size_t)(slash - r->path));
		if (p < 0 || recs[p].type != ARCA_VOL_DIR)
			return arca_errf(e, ARCA_EPARSE, "manifest: %.*s: parent directory is not listed", (int)r->plen,
					 r->path);
	}
	return fids_unique(recs, n, e);
}

int vol_manifest_parse(const uint8_t *pt, size_t len, struct vol_manifest *m, struct arca_errbuf *e)
{
	struct arca_cur c;
	const uint8_t *magic;
	memset(m, 0, sizeof *m);
	arca_cur_init(&c, pt, len);
	if (arca_cur_take(&c, 8, &magic) < 0 || memcmp(magic, man_magic, 8) != 0)
		return arca_errf(e, ARCA_EPARSE, "manifest: bad magic (not ARCAMF1)");
	if (arca_cur_u64le(&c, &m->counter) < 0 || arca_cur_u32le(&c, &m->count) < 0)
		return arca_errf(e, ARCA_EPARSE, "manifest: cut short in its header");
	if (m->count > VOL_ENTRIES_MAX || (uint64_t)m->count * ENT_MIN > arca_cur_left(&c))
		return arca_errf(e, ARCA_EPARSE, "manifest: count %u does not fit its length", m->count);
	m->recs = calloc(m->count ? m->count : 1, sizeof *m->recs);
	if (!m->recs)
		return arca_errf(e, ARCA_ENOMEM, "manifest: out of memory");
	int rc = 0;
	for (uint32_t k = 0; k < m->count && rc == 0; k++)
		rc = rec_parse(&c, &m->recs[k], k, e);
	if (rc == 0 && arca_cur_left(&c) != 0)
		rc = arca_errf(e, ARCA_EPARSE, "manifest: %zu bytes after the last entry", arca_cur_left(&c));
	if (rc == 0)
		rc = structure_ok(m->recs, m->count, e);
	if (rc < 0)
		vol_manifest_free(m);
	return rc;
}

void vol_manifest_free(struct vol_manifest *m)
{
	if (m->recs)
		arca_wipe(m->recs, (size_t)m->count * sizeof *m->recs);
	free(m->recs);
	m->recs = NULL;
	m->count = 0;
}

int vol_manifest_encode(uint64_t counter, const struct vol_rec *recs, uint32_t count, struct arca_buf *out)
{
	GUARD(arca_buf_append(out, man_magic, 8));
	GUARD(arca_buf_u64le(out, counter));
	GUARD(arca_buf_u32le(out, count));
	for (uint32_t k = 0; k < count; k++) {
		const struct vol_rec *r = &recs[k];
		uint8_t t = r->type;
		GUARD(arca_buf_append(out, &t, 1));
		GUARD(arca_buf_u32le(out, r->mode));
		GUARD(arca_buf_u64le(out, (uint64_t)r->mtime_ns));
		GUARD(arca_buf_u16le(out, r->plen));
		GUARD(arca_buf_append(out, r->path, r->plen));
		if (r->type != ARCA_VOL_FILE)
			continue;
		GUARD(arca_buf_append(out, r->fid, VOL_FID_LEN));
		GUARD(arca_buf_u64le(out, r->size));
		GUARD(arca_buf_u64le(out, r->gen));
		GUARD(arca_buf_append(out, r->root, 32));
	}
	return 0;
}

int arca_vol_manifest_check(const uint8_t *pt, size_t len, struct arca_errbuf *e)
{
	struct vol_manifest m;
	GUARD(vol_manifest_parse(pt, len, &m, e));
	int n = (int)m.count;
	vol_manifest_free(&m);
	return n;
}

/* ---- keys and additional data ---- */

int vol_derive(const uint8_t key[ARCA_VOL_KEY_LEN], const uint8_t id[VOL_ID_LEN], const char *label,
	       const uint8_t *fid, uint8_t out[32])
{
	uint8_t info[64];
	size_t n = strlen(label);
	ENSURE(n + VOL_FID_LEN <= sizeof info, ARCA_EINVAL);
	memcpy(info, label, n);
	if (fid) {
		memcpy(info + n, fid, VOL_FID_LEN);
		n += VOL_FID_LEN;
	}
	return arca_hkdf_sha256(key, ARCA_VOL_KEY_LEN, id, VOL_ID_LEN, info, n, out, 32);
}

int vol_check_value(const uint8_t key[ARCA_VOL_KEY_LEN], const uint8_t id[VOL_ID_LEN], uint8_t out[32])
{
	static const char what[] = "arca-volume check";
	uint8_t kc[32];
	int rc = vol_derive(key, id, "arca-vol/1 check", NULL, kc);
	if (rc == 0)
		rc = arca_hmac_sha256(kc, sizeof kc, what, sizeof what - 1, out);
	arca_wipe(kc, sizeof kc);
	return rc;
}

size_t vol_manifest_aad(const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode, uint8_t out[64])
{
	static const char label[] = "arca-vol/1 manifest";
	size_t n = sizeof label - 1;
	memcpy(out, label, n);
	memcpy(out + n, id, VOL_ID_LEN);
	out[n + VOL_ID_LEN] = (uint8_t)mode;
	return n + VOL_ID_LEN + 1;
}

void vol_block_aad_prefix(const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode, const uint8_t fid[VOL_FID_LEN],
			  uint8_t aad[VOL_AAD_LEN])
{
	memcpy(aad, "arca-vol/1 block", 16);
	memcpy(aad + 16, id, VOL_ID_LEN);
	aad[16 + VOL_ID_LEN] = (uint8_t)mode;
	memcpy(aad + 17 + VOL_ID_LEN, fid, VOL_FID_LEN);
	memset(aad + 17 + VOL_ID_LEN + VOL_FID_LEN, 0, 8);
}

int vol_manifest_seal(const uint8_t kman[32], const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode,
		      const struct arca_buf *pt, struct arca_buf *out)
{
	uint8_t aad[64];
	size_t alen = vol_manifest_aad(id, mode, aad);
	GUARD(arca_buf_append(out, seal_magic, sizeof seal_magic));
	return arca_aead_seal(kman, aad, alen, pt->p, pt->len, out);
}

int vol_manifest_open(const uint8_t kman[32], const uint8_t id[VOL_ID_LEN], enum arca_vol_mode mode,
		      const uint8_t *sealed, size_t len, struct arca_buf *pt)
{
	uint8_t aad[64];
	size_t alen = vol_manifest_aad(id, mode, aad);
	ENSURE(len >= sizeof seal_magic + ARCA_AEAD_OVERHEAD && memcmp(sealed, seal_magic, sizeof seal_magic) == 0,
	       ARCA_EPARSE);
	return arca_aead_open(kman, aad, alen, sealed + sizeof seal_magic, len - sizeof seal_magic, pt);
}

/* ---- leaf tables ---- */

static uint64_t get_u64le(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

int vol_leaves_header(const uint8_t *d, size_t len, uint64_t *count, struct arca_errbuf *e)
{
	if (len < VOL_LT_HDR || memcmp(d, lt_magic, 8) != 0)
		return arca_errf(e, ARCA_EPARSE, "leaf table: bad magic (not ARCALT1)");
	*count = get_u64le(d + 8);
	if (*count > VOL_BLOCKS_MAX)
		return arca_errf(e, ARCA_EPARSE, "leaf table: count %llu beyond this implementation's limit",
				 (unsigned long long)*count);
	return 0;
}

int vol_leaf_ok(const uint8_t leaf[VOL_LEAF])
{
	return leaf[28] <= 1 && leaf[29] == 0 && leaf[30] == 0 && leaf[31] == 0;
}

void vol_leaves_header_encode(uint64_t count, uint8_t out[VOL_LT_HDR])
{
	memcpy(out, lt_magic, 8);
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(count >> (8 * i));
}

int64_t arca_vol_leaves_check(const uint8_t *d, size_t len, struct arca_errbuf *e)
{
	uint64_t count;
	GUARD(vol_leaves_header(d, len, &count, e));
	if ((len - VOL_LT_HDR) % VOL_LEAF != 0 || (len - VOL_LT_HDR) / VOL_LEAF != count)
		return arca_errf(e, ARCA_EPARSE, "leaf table: %zu bytes do not hold exactly %llu leaves", len,
				 (unsigned long long)count);
	for (uint64_t i = 0; i < count; i++)
		if (!vol_leaf_ok(d + VOL_LT_HDR + i * VOL_LEAF))
			return arca_errf(e, ARCA_EPARSE, "leaf table: leaf %llu has a bad slot or padding",
					 (unsigned long long)i);
	return (int64_t)count;
}

/* ---- names in d/ ---- */

void vol_slot_name(const uint8_t fid[VOL_FID_LEN], int slot, char out[VOL_NAME_MAX])
{
	char hex[2 * VOL_FID_LEN + 1];
	arca_hex_encode(fid, VOL_FID_LEN, hex);
	snprintf(out, VOL_NAME_MAX, "%s.%d", hex, slot);
}

void vol_table_name(const uint8_t fid[VOL_FID_LEN], uint64_t gen, char out[VOL_NAME_MAX])
{
	char hex[2 * VOL_FID_LEN + 1];
	arca_hex_encode(fid, VOL_FID_LEN, hex);
	snprintf(out, VOL_NAME_MAX, "%s.t%016llx", hex, (unsigned long long)gen);
}

int vol_name_parse(const char *name, uint8_t fid[VOL_FID_LEN], int *slot, uint64_t *gen)
{
	char hex[2 * VOL_FID_LEN + 1];
	size_t len = strlen(name);
	if (len < 2 * VOL_FID_LEN + 2 || name[2 * VOL_FID_LEN] != '.')
		return -1;
	memcpy(hex, name, 2 * VOL_FID_LEN);
	hex[2 * VOL_FID_LEN] = '\0';
	if (lower_hex(hex, VOL_FID_LEN, fid) < 0)
		return -1;
	const char *rest = name + 2 * VOL_FID_LEN + 1;
	if (strcmp(rest, "0") == 0 || strcmp(rest, "1") == 0) {
		*slot = rest[0] - '0';
		return 0;
	}
	uint8_t g[8];
	if (rest[0] != 't' || lower_hex(rest + 1, 8, g) < 0)
		return -1;
	*gen = 0;
	for (int i = 0; i < 8; i++)
		*gen = *gen << 8 | g[i];
	return 1;
}
