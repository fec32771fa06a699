/* evidence_snp.c: SEV-SNP attestation reports: the report itself, the forms
 * it is captured in, its fields as arca reports them, and its verification
 * against a VCEK or VLEK whose chain snp_chain.c checks.
 *
 * The parser reads the report field by field through a cursor and refuses
 * nonzero reserved fields in the signed part: they are signed, so a
 * nonzero value came from firmware of a layout arca does not know, and
 * reading such a report as if it were version 2 or 3 would misreport it.
 * See snp.h for what counts as padding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/snp.h"

#define SIGNATURE_ALGO_ECDSA_P384_SHA384 1
#define SIGNING_KEY_NONE 7
#define HEX_REPORT_LEN (2 * ARCA_SNP_REPORT_LEN)
/* An outblob larger than this is not a report with some padding. */
#define OUTBLOB_MAX ((size_t)16 << 10)

/* ---- the report ---- */

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Takes n reserved bytes that must be zero. */
static int reserved(struct arca_cur *c, size_t n, uint32_t version, struct arca_errbuf *e)
{
	size_t at = c->off;
	const uint8_t *p;
	GUARD(arca_cur_take(c, n, &p));
	if (!all_zero(p, n))
		return arca_errf(e, ARCA_EPARSE,
				 "the report's reserved bytes 0x%03zx-0x%03zx are not zero, which a version %u report "
				 "never has",
				 at, at + n - 1, version);
	return 0;
}

static int sig_component(struct arca_cur *c, const char *name, struct arca_errbuf *e)
{
	const uint8_t *p;
	GUARD(arca_cur_take(c, ARCA_SNP_SIG_COMPONENT_LEN, &p));
	if (!all_zero(p + ARCA_SNP_P384_LEN, ARCA_SNP_SIG_COMPONENT_LEN - ARCA_SNP_P384_LEN))
		return arca_errf(e, ARCA_EPARSE,
				 "the report's signature %s has nonzero bytes above the 48 a P-384 value uses", name);
	return 0;
}

int arca_snp_parse(const uint8_t *p, size_t n, struct arca_snp_report *out, struct arca_errbuf *e)
{
	memset(out, 0, sizeof *out);
	if (!p || n != ARCA_SNP_REPORT_LEN)
		return arca_errf(e, ARCA_EPARSE, "an SEV-SNP report is %d bytes, not %zu", ARCA_SNP_REPORT_LEN, n);
	memcpy(out->raw, p, n);
	struct arca_cur c;
	arca_cur_init(&c, out->raw, n);
	struct arca_snp_report *r = out;

	GUARD(arca_cur_u32le(&c, &r->version));
	if (r->version != 2 && r->version != 3)
		return arca_errf(e, ARCA_EUNSUPPORTED,
				 "report version %u is not supported; arca reads versions 2 and 3", r->version);
	GUARD(arca_cur_u32le(&c, &r->guest_svn));
	GUARD(arca_cur_u64le(&c, &r->policy));
	GUARD(arca_cur_copy(&c, r->family_id, sizeof r->family_id));
	GUARD(arca_cur_copy(&c, r->image_id, sizeof r->image_id));
	GUARD(arca_cur_u32le(&c, &r->vmpl));
	if (r->vmpl > 3)
		return arca_errf(e, ARCA_EPARSE, "the report's VMPL is %u; a guest's VMPL is 0 to 3", r->vmpl);
	GUARD(arca_cur_u32le(&c, &r->signature_algo));
	if (r->signature_algo != SIGNATURE_ALGO_ECDSA_P384_SHA384)
		return arca_errf(e, ARCA_EUNSUPPORTED,
				 "the report's signature algorithm is %u; arca knows 1 (ECDSA P-384 with SHA-384)",
				 r->signature_algo);
	GUARD(arca_cur_u64le(&c, &r->current_tcb));
	GUARD(arca_cur_u64le(&c, &r->platform_info));
	GUARD(arca_cur_u32le(&c, &r->signer_info));
	r->author_key_en = (int)(r->signer_info & 1);
	r->mask_chip_key = (int)(r->signer_info >> 1 & 1);
	uint32_t key = r->signer_info >> 2 & 7;
	if (r->signer_info >> 5)
		return arca_errf(e, ARCA_EPARSE, "the report's signer_info (0x%x) has reserved bits set",
				 r->signer_info);
	if (key == SIGNING_KEY_NONE)
		return arca_errf(e, ARCA_EUNSUPPORTED,
				 "the report is not signed (signing key 7: the firmware had none)");
	if (key > ARCA_SNP_KEY_VLEK)
		return arca_errf(e, ARCA_EPARSE, "the report's signing key %u is reserved; 0 is the VCEK, 1 a VLEK",
				 key);
	r->signing_key = key == 1 ? ARCA_SNP_KEY_VLEK : ARCA_SNP_KEY_VCEK;
	GUARD(reserved(&c, 4, r->version, e));
	GUARD(arca_cur_copy(&c, r->report_data, sizeof r->report_data));
	GUARD(arca_cur_copy(&c, r->measurement, sizeof r->measurement));
	GUARD(arca_cur_copy(&c, r->host_data, sizeof r->host_data));
	GUARD(arca_cur_copy(&c, r->id_key_digest, sizeof r->id_key_digest));
	GUARD(arca_cur_copy(&c, r->author_key_digest, sizeof r->author_key_digest));
	GUARD(arca_cur_copy(&c, r->report_id, sizeof r->report_id));
	GUARD(arca_cur_copy(&c, r->report_id_ma, sizeof r->report_id_ma));
	GUARD(arca_cur_u64le(&c, &r->reported_tcb));
	if (r->version >= 3) {
		GUARD(arca_cur_u8(&c, &r->cpuid_fam_id));
		GUARD(arca_cur_u8(&c, &r->cpuid_mod_id));
		GUARD(arca_cur_u8(&c, &r->cpuid_step));
		GUARD(reserved(&c, 21, r->version, e));
	} else {
		GUARD(reserved(&c, 24, r->version, e));
	}
	GUARD(arca_cur_copy(&c, r->chip_id, sizeof r->chip_id));
	GUARD(arca_cur_u64le(&c, &r->committed_tcb));
	GUARD(arca_cur_u8(&c, &r->current_build));
	GUARD(arca_cur_u8(&c, &r->current_minor));
	GUARD(arca_cur_u8(&c, &r->current_major));
	GUARD(reserved(&c, 1, r->version, e));
	GUARD(arca_cur_u8(&c, &r->committed_build));
	GUARD(arca_cur_u8(&c, &r->committed_minor));
	GUARD(arca_cur_u8(&c, &r->committed_major));
	GUARD(reserved(&c, 1, r->version, e));
	GUARD(arca_cur_u64le(&c, &r->launch_tcb));
	GUARD(reserved(&c, ARCA_SNP_SIG_R_OFF - c.off, r->version, e));
	/* The signature: r and s, then padding the signature does not cover. */
	GUARD(sig_component(&c, "r", e));
	GUARD(sig_component(&c, "s", e));
	const uint8_t *pad;
	GUARD(arca_cur_take(&c, arca_cur_left(&c), &pad));
	r->padding_nonzero = !all_zero(pad, ARCA_SNP_REPORT_LEN - ARCA_SNP_SIG_PAD_OFF);
	return 0;
}

/* ---- capture forms ---- */

static int is_space(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int is_hex(uint8_t ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* The report and whatever follows it: ignored trailing padding. */
static int load_raw(const uint8_t *p, size_t n, struct arca_snp_evidence *out, struct arca_errbuf *e)
{
	if (n < ARCA_SNP_REPORT_LEN)
		return arca_errf(e, ARCA_EPARSE,
				 "%zu bytes are not an SEV-SNP report: a report is %d bytes raw, %d hex digits, or a "
				 "configfs-tsm capture (JSON)",
				 n, ARCA_SNP_REPORT_LEN, HEX_REPORT_LEN);
	GUARD(arca_snp_parse(p, ARCA_SNP_REPORT_LEN, &out->report, e));
	out->trailing = n - ARCA_SNP_REPORT_LEN;
	return 0;
}

static int load_hex(const uint8_t *p, size_t n, struct arca_snp_evidence *out, struct arca_errbuf *e)
{
	size_t digits = 0;
	while (digits < n && is_hex(p[digits]))
		digits++;
	for (size_t i = digits; i < n; i++)
		if (!is_space(p[i]))
			return arca_errf(e, ARCA_EPARSE,
					 "the hex report has a character that is not a hex digit at offset %zu", i);
	if (digits % 2)
		return arca_errf(e, ARCA_EPARSE, "the hex report has an odd number of digits (%zu)", digits);
	uint8_t *raw = malloc(digits / 2);
	if (!raw)
		return arca_errf(e, ARCA_ENOMEM, "out of memory decoding the hex report");
	size_t rawlen = 0;
	int rc = arca_hex_decode((const char *)p, digits, raw, digits / 2, &rawlen);
	if (rc < 0)
		rc = arca_errf(e, ARCA_EPARSE, "the hex report does not decode");
	else
		rc = load_raw(raw, rawlen, out, e);
	free(raw);
	return rc;
}

/* Decodes base64url without padding into a new buffer of at most max bytes. */
static int b64url(json_t *v, const char *name, size_t max, uint8_t **out, size_t *outlen, struct arca_errbuf *e)
{
	*out = NULL;
	*outlen = 0;
	if (!json_is_string(v))
		return arca_errf(e, ARCA_EPARSE, "the capture's %s is not a string", name);
	const char *s = json_string_value(v);
	size_t sn = json_string_length(v);
	size_t cap = sn / 4 * 3 + 3;
	if (cap > max)
		cap = max;
	uint8_t *b = malloc(cap ? cap : 1);
	if (!b)
		return arca_errf(e, ARCA_ENOMEM, "out of memory decoding the capture's %s", name);
	int rc = arca_b64url_decode(s, sn, b, cap, outlen);
	if (rc == ARCA_ETOOBIG) {
		free(b);
		return arca_errf(e, ARCA_ETOOBIG, "the capture's %s is larger than %zu bytes", name, max);
	}
	if (rc < 0) {
		free(b);
		return arca_errf(e, ARCA_EPARSE, "the capture's %s is not base64url without padding", name);
	}
	*out = b;
	return 0;
}

/* configfs-tsm report attributes: the three arca reads, and the others a
 * capture tool may record, which arca does not use. */
static int known_tsm_key(const char *k)
{
	static const char *const keys[] = { "outblob", "auxblob", "provider", "generation", "inblob",
					    "manifestblob", "privlevel", "privlevel_floor", "service_provider",
					    "service_guid", "service_manifest_version" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(k, keys[i]) == 0)
			return 1;
	return 0;
}

static int load_tsm(const uint8_t *p, size_t n, struct arca_snp_evidence *out, struct arca_errbuf *e)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return arca_errf(e, ARCA_EPARSE, "the configfs-tsm capture is not JSON: %s (line %d, column %d)",
				 jerr.text, jerr.line, jerr.column);
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	int rc = 0;
	if (!json_is_object(root)) {
		rc = arca_errf(e, ARCA_EPARSE, "the configfs-tsm capture is not a JSON object");
		goto out;
	}
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v) {
		if (!known_tsm_key(k)) {
			rc = arca_errf(e, ARCA_EPARSE,
				       "the configfs-tsm capture has a key \"%.64s\" that configfs-tsm does not define",
				       k);
			goto out;
		}
	}

	json_t *prov = json_object_get(root, "provider");
	if (!json_is_string(prov)) {
		rc = arca_errf(e, ARCA_EPARSE, "the configfs-tsm capture has no provider string");
		goto out;
	}
	const char *ps = json_string_value(prov);
	size_t pn = json_string_length(prov);
	if (!(pn == 9 || (pn == 10 && ps[9] == '\n')) || memcmp(ps, "sev_guest", 9) != 0) {
		rc = arca_errf(e, ARCA_EUNSUPPORTED, "the capture's provider is \"%.32s\", not sev_guest: it is not "
				   "SEV-SNP evidence", ps);
		goto out;
	}
	memcpy(out->provider, ps, pn);
	out->provider[pn] = '\0';

	json_t *ob = json_object_get(root, "outblob");
	if (!ob) {
		rc = arca_errf(e, ARCA_EPARSE, "the configfs-tsm capture has no outblob");
		goto out;
	}
	GUARD_GOTO(b64url(ob, "outblob", OUTBLOB_MAX, &blob, &bloblen, e), out);
	if (bloblen < ARCA_SNP_REPORT_LEN) {
		rc = arca_errf(e, ARCA_EPARSE, "the capture's outblob is %zu bytes; a report is %d", bloblen,
			       ARCA_SNP_REPORT_LEN);
		goto out;
	}
	GUARD_GOTO(arca_snp_parse(blob, ARCA_SNP_REPORT_LEN, &out->report, e), out);
	out->trailing = bloblen - ARCA_SNP_REPORT_LEN;
	free(blob);
	blob = NULL;

	json_t *ab = json_object_get(root, "auxblob");
	if (ab) {
		GUARD_GOTO(b64url(ab, "auxblob", ARCA_SNP_CERTTABLE_MAX, &blob, &bloblen, e), out);
		GUARD_GOTO(arca_snp_certtable_parse(blob, bloblen, &out->certs, e), out);
	}
out:
	free(blob);
	json_decref(root);
	return rc;
}

int arca_snp_load_any(const uint8_t *p, size_t n, struct arca_snp_evidence *out, struct arca_errbuf *e)
{
	memset(out, 0, sizeof *out);
	if (!p)
		return arca_errf(e, ARCA_EINVAL, "no evidence given");
	if (n > ARCA_SNP_CAPTURE_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "the evidence is %zu bytes; an SEV-SNP capture is at most %zu", n,
				 ARCA_SNP_CAPTURE_MAX);
	size_t i = 0;
	while (i < n && is_space(p[i]))
		i++;
	int rc;
	if (i < n && p[i] == '{') {
		out->form = ARCA_SNP_FORM_TSM;
		rc = load_tsm(p, n, out, e);
	} else {
		size_t h = 0;
		while (h < n && h < HEX_REPORT_LEN && is_hex(p[h]))
			h++;
		if (h == HEX_REPORT_LEN) {
			out->form = ARCA_SNP_FORM_HEX;
			rc = load_hex(p, n, out, e);
		} else {
			out->form = ARCA_SNP_FORM_RAW;
			rc = load_raw(p, n, out, e);
		}
	}
	if (rc < 0)
		arca_snp_evidence_free(out);
	return rc;
}

void arca_snp_evidence_free(struct arca_snp_evidence *ev)
{
	if (!ev)
		return;
	arca_snp_certs_free(&ev->certs);
	memset(ev, 0, sizeof *ev);
}

/* ---- fields ---- */

static int set_hex(json_t *o, const char *k, const uint8_t *p, size_t n)
{
	char s[ARCA_HEX_LEN(64)];
	arca_hex_encode(p, n, s);
	return json_object_set_new(o, k, json_string(s));
}

/* full: all 16 digits (TCB values, eight one-byte SPLs, read by byte). */
static int set_u64(json_t *o, const char *k, int full, uint64_t v)
{
	char s[24];
	if (full)
		snprintf(s, sizeof s, "0x%016llx", (unsigned long long)v);
	else
		snprintf(s, sizeof s, "0x%llx", (unsigned long long)v);
	return json_object_set_new(o, k, json_string(s));
}

int arca_snp_fields(const struct arca_snp_evidence *ev, json_t **out)
{
	*out = NULL;
	const struct arca_snp_report *r = &ev->report;
	json_t *o = json_object();
	ENSURE(o != NULL, ARCA_ENOMEM);
	int bad = 0;
	bad |= json_object_set_new(o, "version", json_integer(r->version));
	bad |= json_object_set_new(o, "guest_svn", json_integer(r->guest_svn));
	bad |= set_u64(o, "policy", 0, r->policy);
	bad |= json_object_set_new(o, "vmpl", json_integer(r->vmpl));
	bad |= json_object_set_new(o, "signing_key",
				   json_string(r->signing_key == ARCA_SNP_KEY_VLEK ? "vlek" : "vcek"));
	bad |= set_hex(o, "report_data", r->report_data, sizeof r->report_data);
	bad |= set_hex(o, "measurement", r->measurement, sizeof r->measurement);
	bad |= set_hex(o, "host_data", r->host_data, sizeof r->host_data);
	bad |= set_hex(o, "id_key_digest", r->id_key_digest, sizeof r->id_key_digest);
	bad |= set_u64(o, "reported_tcb", 1, r->reported_tcb);
	bad |= set_hex(o, "chip_id", r->chip_id, sizeof r->chip_id);
	bad |= set_u64(o, "current_tcb", 1, r->current_tcb);
	bad |= set_u64(o, "platform_info", 0, r->platform_info);
	bad |= json_object_set_new(o, "signature_algo", json_integer(r->signature_algo));
	if (ev->form == ARCA_SNP_FORM_TSM)
		bad |= json_object_set_new(o, "provider", json_string(ev->provider));
	if (bad) {
		json_decref(o);
		return ARCA_ENOMEM;
	}
	*out = o;
	return 0;
}

/* ---- verification ---- */

/* r and s are little-endian; OpenSSL wants an ECDSA-Sig-Value in DER. */
static int report_signature(const struct arca_snp_report *r, X509 *leaf, const char *who, struct arca_errbuf *e)
{
	EVP_PKEY *key = X509_get0_pubkey(leaf);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *br = BN_lebin2bn(r->raw + ARCA_SNP_SIG_R_OFF, ARCA_SNP_SIG_COMPONENT_LEN, NULL);
	BIGNUM *bs = BN_lebin2bn(r->raw + ARCA_SNP_SIG_S_OFF, ARCA_SNP_SIG_COMPONENT_LEN, NULL);
	unsigned char *der = NULL;
	EVP_MD_CTX *ctx = NULL;
	int rc = ARCA_ENOMEM;
	if (!key || !sig || !br || !bs || ECDSA_SIG_set0(sig, br, bs) != 1)
		goto out;
	br = bs = NULL; /* owned by sig now */
	int derlen = i2d_ECDSA_SIG(sig, &der);
	ctx = EVP_MD_CTX_new();
	if (derlen <= 0 || !ctx)
		goto out;
	if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, key) != 1) {
		rc = ARCA_ECRYPTO;
		goto out;
	}
	rc = EVP_DigestVerify(ctx, der, (size_t)derlen, r->raw, ARCA_SNP_SIGNED_LEN) == 1 ? 0 : ARCA_ECRYPTO;
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	if (rc == ARCA_ENOMEM)
		return arca_errf(e, rc, "out of memory checking the report's signature");
	if (rc < 0) {
		ERR_clear_error();
		return arca_errf(e, rc, "the report's signature does not verify with this %s: the report was changed "
				     "or signed by another chip's key",
				 who);
	}
	return 0;
}

int arca_snp_chain_cache_init(struct arca_snp_chain_cache *c)
{
	memset(c, 0, sizeof *c);
	return pthread_mutex_init(&c->lock, NULL) == 0 ? 0 : ARCA_ENOMEM;
}

void arca_snp_chain_cache_free(struct arca_snp_chain_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof *c);
}

static int cache_find(struct arca_snp_chain_cache *c, const uint8_t h[32], struct arca_snp_cache_entry *out)
{
	int found = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < ARCA_SNP_CACHE_SLOTS && !found; i++) {
		if (c->slot[i].used && arca_ct_eq(c->slot[i].leaf_sha256, h, 32)) {
			*out = c->slot[i];
			found = 1;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void cache_put(struct arca_snp_chain_cache *c, const uint8_t h[32], const struct arca_snp_leaf *info,
		      time_t from, time_t until)
{
	pthread_mutex_lock(&c->lock);
	size_t i = 0;
	while (i < ARCA_SNP_CACHE_SLOTS && !(c->slot[i].used && arca_ct_eq(c->slot[i].leaf_sha256, h, 32)))
		i++;
	if (i == ARCA_SNP_CACHE_SLOTS)
		i = c->next++ % ARCA_SNP_CACHE_SLOTS;
	struct arca_snp_cache_entry *s = &c->slot[i];
	s->used = 1;
	memcpy(s->leaf_sha256, h, 32);
	s->info = *info;
	s->valid_from = from;
	s->valid_until = until;
	pthread_mutex_unlock(&c->lock);
}

static void cache_count(struct arca_snp_chain_cache *c, int hit)
{
	pthread_mutex_lock(&c->lock);
	if (hit)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
}

/* Family 19h is Milan and Genoa, 1Ah Turin: the TCB layout depends on it. */
static int family_matches(const struct arca_snp_report *r, enum arca_snp_product p)
{
	if (r->version < 3)
		return 1;
	return p == ARCA_SNP_TURIN ? r->cpuid_fam_id == 0x1a : r->cpuid_fam_id == 0x19;
}

int arca_snp_check_bindings(const struct arca_snp_report *r, const struct arca_snp_leaf *li, struct arca_errbuf *e)
{
	const char *who = li->kind == ARCA_SNP_KEY_VLEK ? "VLEK" : "VCEK";
	if (!family_matches(r, li->product))
		return arca_errf(e, ARCA_EDENIED, "the report comes from a CPU of family 0x%02x, but the %s is for %s",
				 r->cpuid_fam_id, who, arca_snp_product_name(li->product));
	if (r->reported_tcb != li->tcb)
		return arca_errf(e, ARCA_EDENIED, "the report's reported_tcb 0x%016llx is not the TCB 0x%016llx the %s "
				     "was issued for; fetch the %s for this TCB",
				 (unsigned long long)r->reported_tcb, (unsigned long long)li->tcb, who, who);
	if (li->kind != ARCA_SNP_KEY_VCEK || all_zero(r->chip_id, sizeof r->chip_id))
		return 0;
	/* A Turin hwID is 8 bytes, and its chip_id is that, zero-extended. */
	size_t want = li->product == ARCA_SNP_TURIN ? 8 : 64;
	if (li->hwid_len != want)
		return arca_errf(e, ARCA_EDENIED, "the VCEK's hwID is %zu bytes; a %s hwID is %zu", li->hwid_len,
				 arca_snp_product_name(li->product), want);
	if (!arca_ct_eq(r->chip_id, li->hwid, want) || !all_zero(r->chip_id + want, sizeof r->chip_id - want))
		return arca_errf(e, ARCA_EDENIED, "the report's chip_id is not the VCEK's hwID: the VCEK belongs to "
				     "another chip");
	return 0;
}

/* The ASK and ARK the caller gave, then the evidence's own. */
static STACK_OF(X509) *merged_chain(STACK_OF(X509) *chain, const struct arca_snp_certs *c)
{
	STACK_OF(X509) *all = sk_X509_new_null();
	if (!all)
		return NULL;
	for (int i = 0; chain && i < sk_X509_num(chain); i++)
		if (!sk_X509_push(all, sk_X509_value(chain, i)))
			goto fail;
	X509 *own[3] = { c->ask, c->ark, NULL };
	for (int i = 0; own[i]; i++)
		if (!sk_X509_push(all, own[i]))
			goto fail;
	return all;
fail:
	sk_X509_free(all);
	return NULL;
}

static int fail(struct arca_hw_result *res, int rc, const struct arca_errbuf *e)
{
	snprintf(res->reason, sizeof res->reason, "%s", e->msg[0] ? e->msg : arca_strerror(rc));
	res->verified = 0;
	return rc < 0 ? rc : ARCA_EINVAL;
}

int arca_snp_verify(const struct arca_snp_evidence *ev, X509 *leaf, STACK_OF(X509) *chain, time_t at,
		    struct arca_snp_chain_cache *cache, struct arca_hw_result *res)
{
	struct arca_errbuf e = { { 0 } };
	const struct arca_snp_report *r = &ev->report;
	res->verified = 0;
	res->reason[0] = '\0';
	res->valid_from = res->valid_until = 0;
	json_decref(res->fields);
	res->fields = NULL;
	memcpy(res->report_data, r->report_data, sizeof res->report_data);
	int rc = arca_snp_fields(ev, &res->fields);
	if (rc < 0)
		return fail(res, rc, &e);

	const char *who = r->signing_key == ARCA_SNP_KEY_VLEK ? "VLEK" : "VCEK";
	if (!leaf)
		leaf = r->signing_key == ARCA_SNP_KEY_VLEK ? ev->certs.vlek : ev->certs.vcek;
	if (!leaf)
		return fail(res, arca_errf(&e, ARCA_ENOTFOUND, "the report is signed by a %s and none was given; pass "
								 "the %s certificate for this chip and TCB",
					   who, who),
			    &e);

	uint8_t h[32];
	unsigned hl = 0;
	if (X509_digest(leaf, EVP_sha256(), h, &hl) != 1 || hl != sizeof h) {
		ERR_clear_error();
		return fail(res, arca_errf(&e, ARCA_ECRYPTO, "hashing the %s failed", who), &e);
	}
	struct arca_snp_cache_entry hit;
	int cached = cache && cache_find(cache, h, &hit) && at >= hit.valid_from && at <= hit.valid_until;
	struct arca_snp_leaf li;
	if (cached) {
		li = hit.info;
		res->valid_from = hit.valid_from;
		res->valid_until = hit.valid_until;
	} else if ((rc = arca_snp_leaf_read(leaf, &li, &e)) < 0) {
		return fail(res, rc, &e);
	}
	if (li.kind != r->signing_key)
		return fail(res, arca_errf(&e, ARCA_EDENIED, "the report says it is signed by a %s, but the "
								"certificate given is a %s",
					   who, li.kind == ARCA_SNP_KEY_VLEK ? "VLEK" : "VCEK"),
			    &e);
	if (!cached) {
		STACK_OF(X509) *all = merged_chain(chain, &ev->certs);
		if (!all)
			return fail(res, arca_errf(&e, ARCA_ENOMEM, "out of memory"), &e);
		rc = arca_snp_chain_verify(leaf, all, at, NULL, &res->valid_from, &res->valid_until, &e);
		sk_X509_free(all);
		if (rc < 0)
			return fail(res, rc, &e);
		if (cache)
			cache_put(cache, h, &li, res->valid_from, res->valid_until);
	}
	if (cache)
		cache_count(cache, cached);
	if ((rc = report_signature(r, leaf, who, &e)) < 0)
		return fail(res, rc, &e);
	if ((rc = arca_snp_check_bindings(r, &li, &e)) < 0)
		return fail(res, rc, &e);
	res->verified = 1;
	return 0;
}
