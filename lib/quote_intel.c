/* quote_intel.c: Intel DCAP quotes (SGX v3, TDX v4 and v5): the layout,
 * the fields a verdict reports, and the checks that tie a quote to Intel:
 * PCK chain to the pinned root, QE report signed by the PCK key, QE report
 * data binding the attestation key, quote signature. Collateral is
 * dcap_collateral.c's; shared PKI pieces are intel_pki.c's.
 *
 * Parsing is exact: every length inside the signature data must add up,
 * because those bytes are not signed and slack in them would let someone
 * alter a quote unnoticed. Only bytes after the signature data (padding)
 * are accepted and counted. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/intel.h"

#define PCK_CHAIN_LEN 3 /* PCK leaf, PCK CA (Platform or Processor), root */

/* ---- layout ---- */

static int parse_qe_block(struct arca_cur *c, struct arca_intel_quote *q, struct arca_errbuf *e)
{
	uint16_t auth_len, type;
	uint32_t size;
	if (arca_cur_take(c, ARCA_SGX_REPORT_LEN, &q->qe_report) < 0 || arca_cur_take(c, 64, &q->qe_report_sig) < 0 ||
	    arca_cur_u16le(c, &auth_len) < 0 || arca_cur_take(c, auth_len, &q->qe_auth) < 0)
		return arca_errf(e, ARCA_EPARSE, "truncated QE report certification data");
	q->qe_auth_len = auth_len;
	if (arca_cur_u16le(c, &type) < 0 || arca_cur_u32le(c, &size) < 0)
		return arca_errf(e, ARCA_EPARSE, "truncated PCK certification data header");
	if (type != ARCA_INTEL_CERT_PCK_CHAIN)
		return arca_errf(e, ARCA_EUNSUPPORTED,
				 "certification data type %u is not supported (only 5: PCK certificate chain); "
				 "configure the quote provider to include the PCK chain",
				 type);
	q->cert_type = type;
	if (arca_cur_take(c, size, &q->pck_pem) < 0)
		return arca_errf(e, ARCA_EPARSE, "PCK chain claims %u bytes, %zu are left", size, arca_cur_left(c));
	q->pck_pem_len = size;
	return 0;
}

int arca_intel_quote_parse(const uint8_t *p, size_t n, struct arca_intel_quote *q, struct arca_errbuf *e)
{
	memset(q, 0, sizeof *q);
	struct arca_cur c;
	arca_cur_init(&c, p, n);
	if (n < ARCA_INTEL_HEADER_LEN)
		return arca_errf(e, ARCA_EPARSE, "%zu bytes is shorter than a quote header (48)", n);
	GUARD(arca_cur_take(&c, ARCA_INTEL_HEADER_LEN, &q->header));
	q->version = (uint16_t)(q->header[0] | q->header[1] << 8);
	q->att_key_type = (uint16_t)(q->header[2] | q->header[3] << 8);
	q->tee_type = (uint32_t)q->header[4] | (uint32_t)q->header[5] << 8 | (uint32_t)q->header[6] << 16 |
		      (uint32_t)q->header[7] << 24;

	if (q->version == 3) {
		if (q->tee_type != ARCA_INTEL_TEE_SGX)
			return arca_errf(e, ARCA_EUNSUPPORTED, "quote v3 with TEE type 0x%x (only SGX)", q->tee_type);
		q->body_type = ARCA_INTEL_BODY_SGX;
		q->body_len = ARCA_SGX_REPORT_LEN;
	} else if (q->version == 4 || q->version == 5) {
		if (q->tee_type != ARCA_INTEL_TEE_TDX)
			return arca_errf(e, ARCA_EUNSUPPORTED,
					 "quote v%u with TEE type 0x%x is not supported (SGX quotes: v3; TDX: v4, v5)",
					 q->version, q->tee_type);
		q->body_type = ARCA_INTEL_BODY_TDX10;
		q->body_len = ARCA_TDX10_BODY_LEN;
		if (q->version == 5) {
			uint16_t bt;
			uint32_t bs;
			if (arca_cur_u16le(&c, &bt) < 0 || arca_cur_u32le(&c, &bs) < 0)
				return arca_errf(e, ARCA_EPARSE, "truncated v5 body descriptor");
			if (bt == ARCA_INTEL_BODY_TDX15)
				q->body_len = ARCA_TDX15_BODY_LEN;
			else if (bt != ARCA_INTEL_BODY_TDX10)
				return arca_errf(e, ARCA_EUNSUPPORTED,
						 "quote v5 body type %u is not supported (2: TDX 1.0, 3: TDX 1.5)", bt);
			if (bs != q->body_len)
				return arca_errf(e, ARCA_EPARSE, "quote v5 body type %u must be %zu bytes, says %u",
						 bt, q->body_len, bs);
			q->body_type = bt;
		}
	} else {
		return arca_errf(e, ARCA_EUNSUPPORTED, "quote version %u is not supported (SGX: 3; TDX: 4, 5)",
				 q->version);
	}
	if (q->att_key_type != ARCA_INTEL_AK_ECDSA_P256)
		return arca_errf(e, ARCA_EUNSUPPORTED,
				 "attestation key type %u is not supported (only 2: ECDSA P-256)", q->att_key_type);
	if (memcmp(q->header + 12, ARCA_INTEL_QE_VENDOR_ID, 16) != 0)
		return arca_errf(e, ARCA_EUNSUPPORTED, "the quoting enclave is not Intel's (QE vendor ID)");
	if (arca_cur_take(&c, q->body_len, &q->body) < 0)
		return arca_errf(e, ARCA_EPARSE, "truncated: the body needs %zu bytes, %zu are left", q->body_len,
				 arca_cur_left(&c));
	q->signed_data = p;
	q->signed_len = c.off;

	uint32_t sig_len;
	const uint8_t *sd;
	if (arca_cur_u32le(&c, &sig_len) < 0)
		return arca_errf(e, ARCA_EPARSE, "truncated: no signature data length");
	if (arca_cur_take(&c, sig_len, &sd) < 0)
		return arca_errf(e, ARCA_EPARSE, "signature data claims %u bytes, %zu are left", sig_len,
				 arca_cur_left(&c));
	q->quote_len = c.off;
	q->trailing_bytes = arca_cur_left(&c);

	struct arca_cur s;
	arca_cur_init(&s, sd, sig_len);
	if (arca_cur_take(&s, 64, &q->sig) < 0 || arca_cur_take(&s, 64, &q->att_key) < 0)
		return arca_errf(e, ARCA_EPARSE, "truncated signature data");
	if (q->version == 3) {
		/* v3 puts the QE report block directly in the signature data. */
		q->qe_cert_data = s.p + s.off;
		GUARD(parse_qe_block(&s, q, e));
		q->qe_cert_data_len = (size_t)(s.p + s.off - q->qe_cert_data);
	} else {
		uint16_t type;
		uint32_t size;
		const uint8_t *inner;
		if (arca_cur_u16le(&s, &type) < 0 || arca_cur_u32le(&s, &size) < 0)
			return arca_errf(e, ARCA_EPARSE, "truncated certification data header");
		if (type != ARCA_INTEL_CERT_QE_REPORT)
			return arca_errf(e, ARCA_EUNSUPPORTED,
					 "certification data type %u is not supported (v4/v5: 6, QE report)", type);
		if (arca_cur_take(&s, size, &inner) < 0)
			return arca_errf(e, ARCA_EPARSE, "certification data claims %u bytes, %zu are left", size,
					 arca_cur_left(&s));
		struct arca_cur in;
		arca_cur_init(&in, inner, size);
		GUARD(parse_qe_block(&in, q, e));
		if (arca_cur_left(&in) != 0)
			return arca_errf(e, ARCA_EPARSE, "%zu stray bytes inside the QE report certification data",
					 arca_cur_left(&in));
		q->qe_cert_data = inner;
		q->qe_cert_data_len = size;
	}
	if (arca_cur_left(&s) != 0)
		return arca_errf(e, ARCA_EPARSE, "%zu stray bytes inside the signature data", arca_cur_left(&s));
	return 0;
}

/* ---- fields ---- */

static int set_new(json_t *o, const char *k, json_t *v)
{
	/* json_object_set_new frees v on failure, and refuses v == NULL. */
	return json_object_set_new(o, k, v) == 0 ? 0 : ARCA_ENOMEM;
}

static int set_hex(json_t *o, const char *k, const uint8_t *p, size_t n)
{
	char s[ARCA_HEX_LEN(64)];
	if (n > 64)
		return ARCA_EINVAL;
	arca_hex_encode(p, n, s);
	return set_new(o, k, json_string(s));
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int quote_fields(const struct arca_intel_quote *q, json_t *o)
{
	const uint8_t *b = q->body;
	GUARD(set_new(o, "version", json_integer(q->version)));
	if (q->body_type == ARCA_INTEL_BODY_SGX) {
		GUARD(set_new(o, "tee", json_string("sgx")));
		GUARD(set_hex(o, "mrenclave", b + ARCA_SGX_OFF_MRENCLAVE, 32));
		GUARD(set_hex(o, "mrsigner", b + ARCA_SGX_OFF_MRSIGNER, 32));
		GUARD(set_new(o, "isvprodid", json_integer(le16(b + ARCA_SGX_OFF_ISVPRODID))));
		GUARD(set_new(o, "isvsvn", json_integer(le16(b + ARCA_SGX_OFF_ISVSVN))));
		GUARD(set_hex(o, "attributes", b + ARCA_SGX_OFF_ATTRIBUTES, 16));
		GUARD(set_hex(o, "report_data", b + ARCA_SGX_OFF_REPORTDATA, 64));
	} else {
		static const char *const rtmr[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
		GUARD(set_new(o, "tee", json_string("tdx")));
		if (q->version >= 5)
			GUARD(set_new(o, "body_type", json_integer(q->body_type)));
		GUARD(set_hex(o, "mrseam", b + ARCA_TDX_OFF_MRSEAM, 48));
		GUARD(set_hex(o, "td_attributes", b + ARCA_TDX_OFF_TDATTR, 8));
		GUARD(set_hex(o, "xfam", b + ARCA_TDX_OFF_XFAM, 8));
		GUARD(set_hex(o, "mrtd", b + ARCA_TDX_OFF_MRTD, 48));
		GUARD(set_hex(o, "mrconfigid", b + ARCA_TDX_OFF_MRCONFIGID, 48));
		for (int i = 0; i < 4; i++)
			GUARD(set_hex(o, rtmr[i], b + ARCA_TDX_OFF_RTMR0 + 48 * i, 48));
		GUARD(set_hex(o, "report_data", b + ARCA_TDX_OFF_REPORTDATA, 64));
	}
	GUARD(set_new(o, "cert_data_type", json_integer(q->cert_type)));
	GUARD(set_new(o, "trailing_bytes", json_integer((json_int_t)q->trailing_bytes)));
	return 0;
}

/* RFC 2253 form, as expected.json writes issuers. */
static int issuer_string(X509 *c, char *out, size_t cap)
{
	BIO *bio = BIO_new(BIO_s_mem());
	ENSURE(bio != NULL, ARCA_ENOMEM);
	int rc = ARCA_EPARSE;
	char *d = NULL;
	if (X509_NAME_print_ex(bio, X509_get_issuer_name(c), 0, XN_FLAG_RFC2253) >= 0) {
		long n = BIO_get_mem_data(bio, &d);
		if (n >= 0 && (size_t)n < cap) {
			memcpy(out, d, (size_t)n);
			out[n] = '\0';
			rc = 0;
		}
	}
	BIO_free(bio);
	if (rc < 0)
		ERR_clear_error();
	return rc;
}

/* ---- the chain cache ---- */

void arca_intel_chain_cache_init(struct arca_intel_chain_cache *c)
{
	memset(c, 0, sizeof *c);
}

static void slot_clear(struct arca_intel_chain_slot *s)
{
	X509_free(s->leaf);
	X509_free(s->ca);
	EVP_PKEY_free(s->att_pkey);
	memset(s, 0, sizeof *s);
}

void arca_intel_chain_cache_free(struct arca_intel_chain_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ARCA_INTEL_CACHE_SLOTS; i++)
		slot_clear(&c->slot[i]);
	arca_intel_chain_cache_init(c);
}

static struct arca_intel_chain_slot *cache_find(struct arca_intel_chain_cache *c, const uint8_t key[32])
{
	for (size_t i = 0; i < ARCA_INTEL_CACHE_SLOTS; i++)
		if (c->slot[i].used && memcmp(c->slot[i].key, key, 32) == 0)
			return &c->slot[i];
	return NULL;
}

/* What a slot vouches for: this root certified this PCK chain, whose
 * leaf signed this QE report. Bytes that differ make a different key. */
static int cache_key(X509 *root, int builtin, const struct arca_intel_quote *q, uint8_t key[32])
{
	uint8_t rootid[32];
	if (builtin) {
		const uint8_t *d;
		size_t dn;
		arca_intel_root_der(&d, &dn);
		GUARD(arca_sha256(d, dn, rootid));
	} else {
		unsigned char *der = NULL;
		int dn = i2d_X509(root, &der);
		if (dn <= 0)
			return ARCA_ENOMEM;
		int rc = arca_sha256(der, (size_t)dn, rootid);
		OPENSSL_free(der);
		GUARD(rc);
	}
	struct arca_sha256 h;
	GUARD(arca_sha256_begin(&h));
	if (arca_sha256_update(&h, rootid, sizeof rootid) < 0 ||
	    arca_sha256_update(&h, q->qe_cert_data, q->qe_cert_data_len) < 0) {
		arca_sha256_abort(&h);
		return ARCA_ECRYPTO;
	}
	return arca_sha256_end(&h, key);
}

/* ---- verification ---- */

struct vctx {
	struct arca_intel_quote q;
	X509 *chain[PCK_CHAIN_LEN + 1]; /* one more, to say how many too many */
	size_t nchain;
	X509 *root;
	X509 *leaf, *ca; /* borrowed: from chain[] or a cache slot */
	EVP_PKEY *att;   /* owned unless borrowed_att */
	int borrowed_att;
	char pck_issuer[256];
	time_t valid_from, valid_until;
};

static int fail(struct arca_hw_result *res, int code, const char *fmt, ...) ARCA_PRINTF(3, 4);
static int fail(struct arca_hw_result *res, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(res->reason, sizeof res->reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		res->reason[0] = '\0';
	res->verified = 0;
	return code < 0 ? code : ARCA_EINVAL;
}

/* The quote's PCK chain, checked to the root at time at, and the QE
 * report's signature by the PCK leaf: what a cache slot may remember. */
static int verify_chain(struct vctx *v, time_t at, struct arca_hw_result *res)
{
	struct arca_errbuf e = { { 0 } };
	static const char *const role[PCK_CHAIN_LEN] = { "PCK certificate", "PCK CA certificate",
							 "root certificate" };
	if (arca_intel_pem_certs(v->q.pck_pem, v->q.pck_pem_len, v->chain, PCK_CHAIN_LEN + 1, &v->nchain, &e) < 0)
		return fail(res, ARCA_EPARSE, "PCK chain in the quote is malformed: %s", e.msg);
	if (v->nchain != PCK_CHAIN_LEN)
		return fail(res, ARCA_EPARSE,
			    "PCK chain in the quote holds %zu certificates; expected leaf, PCK CA and root",
			    v->nchain);
	v->leaf = v->chain[0];
	v->ca = v->chain[1];
	if (issuer_string(v->leaf, v->pck_issuer, sizeof v->pck_issuer) < 0)
		return fail(res, ARCA_EPARSE, "PCK certificate has an unprintable issuer");
	if (set_new(res->fields, "pck_issuer", json_string(v->pck_issuer)) < 0)
		return fail(res, ARCA_ENOMEM, "out of memory");

	/* The window is reported even when at falls outside it, so that a
	 * caller can say when the quote was or will be verifiable. */
	for (size_t i = 0; i < PCK_CHAIN_LEN; i++) {
		time_t nb, na;
		if (arca_intel_asn1_time(X509_get0_notBefore(v->chain[i]), &nb) < 0 ||
		    arca_intel_asn1_time(X509_get0_notAfter(v->chain[i]), &na) < 0)
			return fail(res, ARCA_EPARSE, "%s in the quote has an unreadable validity period", role[i]);
		if (i == 0 || nb > v->valid_from)
			v->valid_from = nb;
		if (i == 0 || na < v->valid_until)
			v->valid_until = na;
	}
	res->valid_from = v->valid_from;
	res->valid_until = v->valid_until;

	if (!arca_intel_cert_equal(v->chain[2], v->root)) {
		char name[128];
		arca_intel_cert_name(v->chain[2], name, sizeof name);
		return fail(res, ARCA_EDENIED,
			    "PCK chain ends in '%s', which is not the pinned Intel SGX Root CA; the quote is not "
			    "certified by Intel",
			    name);
	}
	for (size_t i = 0; i < PCK_CHAIN_LEN; i++) {
		int rc = arca_intel_cert_current(v->chain[i], role[i], at, &e);
		if (rc < 0)
			return fail(res, rc, "PCK chain: %s", e.msg);
	}
	int rc = arca_intel_verify_path(v->leaf, v->ca, v->root, &e);
	if (rc < 0)
		return fail(res, rc, "PCK chain: %s", e.msg);
	if (arca_intel_ecdsa_verify(X509_get0_pubkey(v->leaf), v->q.qe_report, ARCA_SGX_REPORT_LEN,
				    v->q.qe_report_sig) < 0)
		return fail(res, ARCA_ECRYPTO,
			    "QE report signature does not verify with the PCK certificate's key: the QE report or "
			    "the PCK chain was changed");
	return 0;
}

static void cache_put(struct arca_intel_chain_cache *c, const uint8_t key[32], struct vctx *v)
{
	struct arca_intel_chain_slot *s = &c->slot[c->next];
	c->next = (c->next + 1) % ARCA_INTEL_CACHE_SLOTS;
	slot_clear(s);
	if (X509_up_ref(v->leaf) != 1)
		return;
	if (X509_up_ref(v->ca) != 1) {
		X509_free(v->leaf);
		return;
	}
	s->leaf = v->leaf;
	s->ca = v->ca;
	memcpy(s->key, key, 32);
	s->valid_from = v->valid_from;
	s->valid_until = v->valid_until;
	memcpy(s->pck_issuer, v->pck_issuer, sizeof s->pck_issuer);
	s->used = 1;
}

static int check_binding(const struct arca_intel_quote *q, struct arca_hw_result *res)
{
	struct arca_sha256 h;
	uint8_t d[32];
	static const uint8_t zero[32];
	const uint8_t *rd = q->qe_report + ARCA_SGX_OFF_REPORTDATA;
	if (arca_sha256_begin(&h) < 0)
		return fail(res, ARCA_ENOMEM, "out of memory");
	if (arca_sha256_update(&h, q->att_key, 64) < 0 || arca_sha256_update(&h, q->qe_auth, q->qe_auth_len) < 0) {
		arca_sha256_abort(&h);
		return fail(res, ARCA_ECRYPTO, "SHA-256 failed");
	}
	if (arca_sha256_end(&h, d) < 0)
		return fail(res, ARCA_ECRYPTO, "SHA-256 failed");
	if (!arca_ct_eq(d, rd, 32) || !arca_ct_eq(rd + 32, zero, 32))
		return fail(res, ARCA_ECRYPTO,
			    "QE report data does not bind the attestation key and QE auth data "
			    "(SHA-256(key || auth data) || zeros): one of them was changed");
	return 0;
}

static int use_slot(struct vctx *v, struct arca_intel_chain_slot *s, struct arca_hw_result *res)
{
	v->leaf = s->leaf;
	v->ca = s->ca;
	v->valid_from = s->valid_from;
	v->valid_until = s->valid_until;
	res->valid_from = s->valid_from;
	res->valid_until = s->valid_until;
	memcpy(v->pck_issuer, s->pck_issuer, sizeof v->pck_issuer);
	if (set_new(res->fields, "pck_issuer", json_string(v->pck_issuer)) < 0)
		return fail(res, ARCA_ENOMEM, "out of memory");
	return 0;
}

static int check_quote_sig(struct vctx *v, struct arca_intel_chain_slot *s, struct arca_hw_result *res)
{
	if (s && s->att_pkey && memcmp(s->att_key, v->q.att_key, 64) == 0) {
		v->att = s->att_pkey;
		v->borrowed_att = 1;
	} else if (arca_intel_p256_key(v->q.att_key, &v->att) < 0) {
		return fail(res, ARCA_ECRYPTO, "attestation key in the quote is not a P-256 point");
	}
	if (arca_intel_ecdsa_verify(v->att, v->q.signed_data, v->q.signed_len, v->q.sig) < 0)
		return fail(res, ARCA_ECRYPTO,
			    "quote signature does not verify with the attestation key: the header or body was "
			    "changed");
	if (s && !v->borrowed_att) {
		/* The key is bound to this slot's QE report (checked above). */
		EVP_PKEY_free(s->att_pkey);
		s->att_pkey = v->att;
		memcpy(s->att_key, v->q.att_key, 64);
		v->borrowed_att = 1;
	}
	return 0;
}

int arca_intel_quote_verify_opts(const uint8_t *p, size_t n, time_t at, const struct arca_intel_opts *o,
				 struct arca_hw_result *res)
{
	static const struct arca_intel_opts none;
	struct vctx v;
	struct arca_errbuf e = { { 0 } };
	struct arca_intel_chain_slot *slot = NULL;
	int rc;
	if (!o)
		o = &none;
	memset(&v, 0, sizeof v);
	arca_hw_result_free(res);

	if (!p || arca_intel_quote_parse(p, n, &v.q, &e) < 0)
		return fail(res, ARCA_EPARSE, "not a quote arca can verify: %s", p ? e.msg : "no data");
	res->fields = json_object();
	if (!res->fields || quote_fields(&v.q, res->fields) < 0)
		return fail(res, ARCA_ENOMEM, "out of memory");
	memcpy(res->report_data,
	       v.q.body + (v.q.body_type == ARCA_INTEL_BODY_SGX ? ARCA_SGX_OFF_REPORTDATA : ARCA_TDX_OFF_REPORTDATA),
	       64);

	uint8_t key[32];
	if (o->cache) {
		GUARD_GOTO(cache_key(o->root, o->root == NULL, &v.q, key), nomem);
		slot = cache_find(o->cache, key);
		if (slot && (at < slot->valid_from || at > slot->valid_until))
			slot = NULL; /* the full path names the certificate out of date */
	}
	/* Loading the root costs more than a signature check: a cache hit
	 * without collateral does without it. */
	if (!slot || o->collateral) {
		if (o->root) {
			if (X509_up_ref(o->root) != 1)
				return fail(res, ARCA_ENOMEM, "out of memory");
			v.root = o->root;
		} else if (arca_intel_root(&v.root) < 0) {
			return fail(res, ARCA_EINVAL, "built-in Intel root does not load");
		}
	}
	if (slot) {
		o->cache->hits++;
		GUARD_GOTO(use_slot(&v, slot, res), out);
	} else {
		if (o->cache)
			o->cache->misses++;
		GUARD_GOTO(verify_chain(&v, at, res), out);
		if (o->cache) {
			cache_put(o->cache, key, &v);
			slot = cache_find(o->cache, key);
		}
	}
	GUARD_GOTO(check_binding(&v.q, res), out);
	GUARD_GOTO(check_quote_sig(&v, slot, res), out);

	if (o->collateral) {
		struct arca_dcap_tcb tcb;
		memset(&tcb, 0, sizeof tcb);
		tcb.status = -1;
		rc = arca_dcap_verify(o->collateral, &v.q, v.leaf, v.ca, v.root, at, &tcb, &e);
		const char *name = tcb.status >= 0 ? arca_tcb_status_name(tcb.status) : NULL;
		if (name && strlen(name) >= sizeof res->tcb_status) {
			/* A cut status would read as another or none: refuse. */
			rc = fail(res, ARCA_ETOOBIG, "TCB status %s does not fit struct arca_hw_result (hwev.h)", name);
			goto out;
		}
		if (name)
			memcpy(res->tcb_status, name, strlen(name) + 1);
		if (rc < 0) {
			/* A revoked TCB keeps its status for the caller to show. */
			if (tcb.status != ARCA_TCB_REVOKED)
				res->tcb_status[0] = '\0';
			rc = fail(res, rc, "collateral: %s", e.msg);
			goto out;
		}
	}
	res->verified = 1;
	res->reason[0] = '\0';
	rc = 0;
	goto out;
nomem:
	rc = fail(res, rc, "cannot compute the chain cache key");
out:
	if (!v.borrowed_att)
		EVP_PKEY_free(v.att);
	for (size_t i = 0; i < v.nchain; i++)
		X509_free(v.chain[i]);
	X509_free(v.root);
	ERR_clear_error();
	return rc;
}

int arca_intel_quote_verify(const uint8_t *p, size_t n, const struct arca_dcap_collateral *coll, time_t at,
			    struct arca_hw_result *res)
{
	struct arca_intel_opts o = { .collateral = coll };
	return arca_intel_quote_verify_opts(p, n, at, &o, res);
}
