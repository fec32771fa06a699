/* test_intel.c: Intel DCAP quotes and collateral against the real vectors
 * in $ARCA_VECTORS (SGX v3, TDX v4/v5, Intel PCS collateral), and against
 * quotes and collateral this test signs itself with a private PKI, for the
 * paths real data cannot reach (revocation, expired CA, v5 body type 2,
 * out-of-date QE or TDX module).
 *
 * Without the vectors the test is skipped (exit 77), never passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/hwev.h"
#include "arca/intel.h"
#include "arca/x509.h"

static const char *vectors;
static json_t *expected;

/* ---- helpers ---- */

static void vpath(char *out, size_t cap, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", vectors, rel);
	assert_true(n > 0 && (size_t)n < cap);
}

/* Whole file; caller frees. */
static uint8_t *slurp(const char *rel, size_t *n)
{
	char path[1024];
	struct arca_buf b;
	struct arca_errbuf e = { { 0 } };
	vpath(path, sizeof path, rel);
	arca_buf_init(&b, 1 << 20, 0);
	if (arca_read_file(path, 1 << 20, &b, &e) < 0)
		fail_msg("cannot read %s: %s", path, e.msg);
	return arca_buf_steal(&b, n);
}

static time_t when(const char *s)
{
	time_t t = 0;
	assert_int_equal(arca_intel_time_parse(s, &t), 0);
	return t;
}

static const char *fmt_time(time_t t, char buf[ARCA_INTEL_TIME_LEN])
{
	arca_intel_time_format(t, buf);
	return buf;
}

static int verify(const uint8_t *q, size_t n, const struct arca_dcap_collateral *c, time_t at,
		  struct arca_hw_result *r)
{
	arca_hw_result_init(r);
	return arca_intel_quote_verify(q, n, c, at, r);
}

static void assert_refused(const uint8_t *q, size_t n, time_t at, const char *why, const char *ctx)
{
	struct arca_hw_result r;
	int rc = verify(q, n, NULL, at, &r);
	if (rc == 0 || r.verified)
		fail_msg("%s: accepted", ctx);
	if (why && !strstr(r.reason, why))
		fail_msg("%s: reason \"%s\" does not mention \"%s\"", ctx, r.reason, why);
	arca_hw_result_free(&r);
}

static struct arca_dcap_collateral *load_coll(const char *rel)
{
	size_t n;
	uint8_t *p = slurp(rel, &n);
	struct arca_dcap_collateral *c = NULL;
	struct arca_errbuf e = { { 0 } };
	if (arca_dcap_collateral_load(p, n, &c, &e) < 0)
		fail_msg("%s: %s", rel, e.msg);
	free(p);
	return c;
}

static void add_coll_text(struct arca_dcap_collateral *c, const char *json)
{
	struct arca_errbuf e = { { 0 } };
	if (arca_dcap_collateral_add(c, (const uint8_t *)json, strlen(json), &e) < 0)
		fail_msg("collateral add: %s", e.msg);
}

/* A bundle holding only the named keys of a collateral file. */
static char *bundle_subset(const char *rel, const char *const *keys)
{
	size_t n;
	uint8_t *p = slurp(rel, &n);
	json_t *all = json_loadb((const char *)p, n, 0, NULL), *out = json_object();
	assert_non_null(all);
	for (size_t i = 0; keys[i]; i++)
		assert_int_equal(json_object_set(out, keys[i], json_object_get(all, keys[i])), 0);
	char *s = json_dumps(out, JSON_COMPACT);
	json_decref(all);
	json_decref(out);
	free(p);
	return s;
}

/* Time inside a vector's window: a day after the chain became valid. */
static time_t inside(json_t *exp)
{
	return when(json_string_value(json_object_get(exp, "valid_from"))) + 86400;
}

/* ---- the quote as parts, to change one thing and put it back together ---- */

struct parts {
	int version;
	uint8_t header[48];
	uint16_t body_type;
	uint8_t body[ARCA_TDX15_BODY_LEN];
	size_t body_len;
	uint8_t sig[64], ak[64], qe_report[384], qe_sig[64];
	uint8_t auth[512];
	size_t auth_len;
	uint8_t *pem;
	size_t pem_len;
	uint8_t *trailing;
	size_t trailing_len;
};

static void split(const uint8_t *p, size_t n, struct parts *pp)
{
	struct arca_intel_quote q;
	struct arca_errbuf e = { { 0 } };
	if (arca_intel_quote_parse(p, n, &q, &e) < 0)
		fail_msg("parse: %s", e.msg);
	memset(pp, 0, sizeof *pp);
	pp->version = q.version;
	memcpy(pp->header, q.header, 48);
	pp->body_type = q.body_type;
	pp->body_len = q.body_len;
	memcpy(pp->body, q.body, q.body_len);
	memcpy(pp->sig, q.sig, 64);
	memcpy(pp->ak, q.att_key, 64);
	memcpy(pp->qe_report, q.qe_report, 384);
	memcpy(pp->qe_sig, q.qe_report_sig, 64);
	assert_true(q.qe_auth_len <= sizeof pp->auth);
	memcpy(pp->auth, q.qe_auth, q.qe_auth_len);
	pp->auth_len = q.qe_auth_len;
	pp->pem = malloc(q.pck_pem_len);
	memcpy(pp->pem, q.pck_pem, q.pck_pem_len);
	pp->pem_len = q.pck_pem_len;
	pp->trailing_len = q.trailing_bytes;
	pp->trailing = malloc(q.trailing_bytes + 1);
	memcpy(pp->trailing, p + q.quote_len, q.trailing_bytes);
}

static void parts_free(struct parts *pp)
{
	free(pp->pem);
	free(pp->trailing);
}

static void put16(struct arca_buf *b, unsigned v)
{
	assert_int_equal(arca_buf_u16le(b, (uint16_t)v), 0);
}

static void put32(struct arca_buf *b, size_t v)
{
	assert_int_equal(arca_buf_u32le(b, (uint32_t)v), 0);
}

static void put(struct arca_buf *b, const void *p, size_t n)
{
	assert_int_equal(arca_buf_append(b, p, n), 0);
}

/* The signed part: header, v5's body descriptor, body. */
static void signed_part(const struct parts *pp, struct arca_buf *b)
{
	put(b, pp->header, 48);
	if (pp->version == 5) {
		put16(b, pp->body_type);
		put32(b, pp->body_len);
	}
	put(b, pp->body, pp->body_len);
}

static uint8_t *assemble(const struct parts *pp, size_t *n)
{
	struct arca_buf b, qe;
	arca_buf_init(&b, 1 << 20, 0);
	arca_buf_init(&qe, 1 << 20, 0);
	signed_part(pp, &b);
	put(&qe, pp->qe_report, 384);
	put(&qe, pp->qe_sig, 64);
	put16(&qe, (unsigned)pp->auth_len);
	put(&qe, pp->auth, pp->auth_len);
	put16(&qe, 5);
	put32(&qe, pp->pem_len);
	put(&qe, pp->pem, pp->pem_len);
	size_t sig_len = 128 + qe.len + (pp->version == 3 ? 0 : 6);
	put32(&b, sig_len);
	put(&b, pp->sig, 64);
	put(&b, pp->ak, 64);
	if (pp->version != 3) {
		put16(&b, 6);
		put32(&b, qe.len);
	}
	put(&b, qe.p, qe.len);
	put(&b, pp->trailing, pp->trailing_len);
	arca_buf_free(&qe);
	return arca_buf_steal(&b, n);
}

/* ---- a private PKI shaped like Intel's ---- */

static EVP_PKEY *p256_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("prime256v1");
	assert_non_null(k);
	return k;
}

static void raw_pub(EVP_PKEY *k, uint8_t xy[64])
{
	uint8_t pt[65];
	size_t n = 0;
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", pt, sizeof pt, &n), 1);
	assert_int_equal(n, 65);
	memcpy(xy, pt + 1, 64);
}

static void sign_raw(EVP_PKEY *k, const void *msg, size_t n, uint8_t sig[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t dl = sizeof der;
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, der, &dl, msg, n), 1);
	EVP_MD_CTX_free(md);
	const unsigned char *d = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &d, (long)dl);
	assert_non_null(s);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32), 32);
	ECDSA_SIG_free(s);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* sgx_from: a real PCK leaf whose SGX extension (FMSPC, TCB) the new leaf
 * carries, so that Intel's real TCB info applies to it. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int ca, time_t from,
		       time_t until, long serial, X509 *sgx_from)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"arca test", -1, -1, 0);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	X509_NAME_free(name);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), from));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), until));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,nonRepudiation");
	}
	if (sgx_from) {
		ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
		int i = X509_get_ext_by_OBJ(sgx_from, obj, -1);
		ASN1_OBJECT_free(obj);
		assert_true(i >= 0);
		assert_int_equal(X509_add_ext(x, X509_get_ext(sgx_from, i), -1), 1);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void append_pem(struct arca_buf *b, X509 *x)
{
	assert_int_equal(arca_x509_pem(x, b), 0);
}

struct pki {
	EVP_PKEY *root_key, *ca_key, *leaf_key, *ak_key, *tcb_key;
	X509 *root, *ca, *leaf, *tcb;
};

static time_t T0; /* the time the synthetic tests verify at */

/* Root and TCB signer valid around T0; CA and leaf valid [ca_from, ca_until]. */
static void pki_make(struct pki *k, X509 *real_leaf, time_t ca_from, time_t ca_until)
{
	k->root_key = p256_new();
	k->ca_key = p256_new();
	k->leaf_key = p256_new();
	k->ak_key = p256_new();
	k->tcb_key = p256_new();
	k->root = make_cert("Test SGX Root CA", k->root_key, NULL, NULL, 1, T0 - 86400 * 365, T0 + 86400 * 3650, 1,
			    NULL);
	k->ca = make_cert("Test SGX PCK Platform CA", k->ca_key, k->root, k->root_key, 1, ca_from, ca_until, 2,
			  NULL);
	k->leaf = make_cert("Test SGX PCK Certificate", k->leaf_key, k->ca, k->ca_key, 0, T0 - 86400 * 30,
			    T0 + 86400 * 365, 0x1234, real_leaf);
	k->tcb = make_cert("Test SGX TCB Signing", k->tcb_key, k->root, k->root_key, 0, T0 - 86400 * 30,
			   T0 + 86400 * 365, 3, NULL);
}

static void pki_free(struct pki *k)
{
	EVP_PKEY_free(k->root_key);
	EVP_PKEY_free(k->ca_key);
	EVP_PKEY_free(k->leaf_key);
	EVP_PKEY_free(k->ak_key);
	EVP_PKEY_free(k->tcb_key);
	X509_free(k->root);
	X509_free(k->ca);
	X509_free(k->leaf);
	X509_free(k->tcb);
}

/* Gives the parts this PKI's chain and keys and signs them afresh: QE
 * report data binding the attestation key, QE report by the leaf, quote by
 * the attestation key. */
static void resign(struct parts *pp, const struct pki *k)
{
	struct arca_buf pem, sp;
	arca_buf_init(&pem, 1 << 16, 0);
	append_pem(&pem, k->leaf);
	append_pem(&pem, k->ca);
	append_pem(&pem, k->root);
	free(pp->pem);
	pp->pem = arca_buf_steal(&pem, &pp->pem_len);
	raw_pub(k->ak_key, pp->ak);
	struct arca_sha256 h;
	assert_int_equal(arca_sha256_begin(&h), 0);
	assert_int_equal(arca_sha256_update(&h, pp->ak, 64), 0);
	assert_int_equal(arca_sha256_update(&h, pp->auth, pp->auth_len), 0);
	assert_int_equal(arca_sha256_end(&h, pp->qe_report + ARCA_SGX_OFF_REPORTDATA), 0);
	memset(pp->qe_report + ARCA_SGX_OFF_REPORTDATA + 32, 0, 32);
	sign_raw(k->leaf_key, pp->qe_report, 384, pp->qe_sig);
	arca_buf_init(&sp, 1 << 16, 0);
	signed_part(pp, &sp);
	sign_raw(k->ak_key, sp.p, sp.len, pp->sig);
	arca_buf_free(&sp);
}

static char *crl_hex(X509 *issuer, EVP_PKEY *key, time_t from, time_t until, const long *revoked, size_t n)
{
	X509_CRL *crl = X509_CRL_new();
	assert_int_equal(X509_CRL_set_version(crl, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
	ASN1_TIME *t = ASN1_TIME_set(NULL, from);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	ASN1_TIME_set(t, until);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, revoked[i]);
		X509_REVOKED_set_serialNumber(r, s);
		ASN1_TIME_set(t, from);
		X509_REVOKED_set_revocationDate(r, t);
		assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
		ASN1_INTEGER_free(s);
	}
	ASN1_TIME_free(t);
	assert_int_equal(X509_CRL_sort(crl), 1);
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	unsigned char *der = NULL;
	int dl = i2d_X509_CRL(crl, &der);
	assert_true(dl > 0);
	char *hex = malloc(2 * (size_t)dl + 1);
	arca_hex_encode(der, (size_t)dl, hex);
	OPENSSL_free(der);
	X509_CRL_free(crl);
	return hex;
}

/* A complete bundle signed by this PKI around Intel's real TCB info and
 * QE identity texts from rel, so that Intel's real levels apply; their
 * dates are Intel's, so T0 must lie inside Intel's window. The CRLs list
 * the given serial numbers. */
static struct arca_dcap_collateral *pki_collateral_ex(const struct pki *k, const char *rel, const long *rev_leaf,
						      size_t nleaf, const long *rev_ca, size_t nca, EVP_PKEY *pck_crl_key)
{
	size_t n;
	uint8_t *p = slurp(rel, &n);
	json_t *real = json_loadb((const char *)p, n, 0, NULL);
	assert_non_null(real);
	const char *tcb = json_string_value(json_object_get(real, "tcb_info"));
	const char *qe = json_string_value(json_object_get(real, "qe_identity"));
	uint8_t s1[64], s2[64];
	char h1[129], h2[129];
	sign_raw(k->tcb_key, tcb, strlen(tcb), s1);
	sign_raw(k->tcb_key, qe, strlen(qe), s2);
	arca_hex_encode(s1, 64, h1);
	arca_hex_encode(s2, 64, h2);
	struct arca_buf chain, pck_chain;
	arca_buf_init(&chain, 1 << 16, 0);
	arca_buf_init(&pck_chain, 1 << 16, 0);
	append_pem(&chain, k->tcb);
	append_pem(&chain, k->root);
	append_pem(&pck_chain, k->ca);
	append_pem(&pck_chain, k->root);
	char *root_crl = crl_hex(k->root, k->root_key, T0 - 86400, T0 + 86400 * 30, rev_ca, nca);
	char *pck_crl = crl_hex(k->ca, pck_crl_key ? pck_crl_key : k->ca_key, T0 - 86400, T0 + 86400 * 30, rev_leaf, nleaf);
	json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "tcb_info", tcb, "tcb_info_signature",
			      h1, "tcb_info_issuer_chain", arca_buf_str(&chain), "qe_identity", qe,
			      "qe_identity_signature", h2, "qe_identity_issuer_chain", arca_buf_str(&chain),
			      "root_ca_crl", root_crl, "pck_crl", pck_crl, "pck_crl_issuer_chain",
			      arca_buf_str(&pck_chain));
	assert_non_null(b);
	char *text = json_dumps(b, JSON_COMPACT);
	struct arca_dcap_collateral *c = NULL;
	struct arca_errbuf e = { { 0 } };
	if (arca_dcap_collateral_load((const uint8_t *)text, strlen(text), &c, &e) < 0)
		fail_msg("synthetic collateral: %s", e.msg);
	free(text);
	json_decref(b);
	json_decref(real);
	free(root_crl);
	free(pck_crl);
	arca_buf_free(&chain);
	arca_buf_free(&pck_chain);
	free(p);
	return c;
}

static struct arca_dcap_collateral *pki_collateral(const struct pki *k, const char *rel, const long *rev_leaf,
						   size_t nleaf, const long *rev_ca, size_t nca)
{
	return pki_collateral_ex(k, rel, rev_leaf, nleaf, rev_ca, nca, NULL);
}

static X509 *first_cert(const struct parts *pp)
{
	X509 *certs[4];
	size_t k = 0;
	assert_int_equal(arca_intel_pem_certs(pp->pem, pp->pem_len, certs, 4, &k, NULL), 0);
	while (k > 1)
		X509_free(certs[--k]);
	return certs[0];
}

static int verify_with(const uint8_t *q, size_t n, const struct pki *k, const struct arca_dcap_collateral *c,
		       struct arca_hw_result *r)
{
	struct arca_intel_opts o = { .collateral = c, .root = k ? k->root : NULL };
	arca_hw_result_init(r);
	return arca_intel_quote_verify_opts(q, n, T0, &o, r);
}

/* ---- the built-in root ---- */

static void test_builtin_root(void **state)
{
	const uint8_t *d;
	size_t n;
	uint8_t h[32];
	char hex[65];
	arca_intel_root_der(&d, &n);
	assert_int_equal(arca_sha256(d, n, h), 0);
	arca_hex_encode(h, 32, hex);
	assert_string_equal(hex, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");

	/* The same certificate as the vectors' copy of Intel's root. */
	size_t pn;
	uint8_t *pem = slurp("roots/intel-sgx-root-ca.pem", &pn);
	X509 *a = NULL, *b = NULL;
	assert_int_equal(arca_x509_load(pem, pn, &a), 0);
	assert_int_equal(arca_intel_root(&b), 0);
	assert_true(arca_intel_cert_equal(a, b));
	X509_free(a);
	X509_free(b);
	free(pem);
}

/* ---- every vector, field by field ---- */

static void check_fields(const char *name, json_t *exp, const struct arca_hw_result *r)
{
	const char *key;
	json_t *want;
	char buf[ARCA_INTEL_TIME_LEN];
	json_object_foreach(exp, key, want) {
		if (strcmp(key, "valid_from") == 0 || strcmp(key, "valid_until") == 0) {
			time_t t = strcmp(key, "valid_from") == 0 ? r->valid_from : r->valid_until;
			if (strcmp(fmt_time(t, buf), json_string_value(want)) != 0)
				fail_msg("%s: %s is %s, expected %s", name, key, buf, json_string_value(want));
			continue;
		}
		json_t *got = json_object_get(r->fields, key);
		if (!got || !json_equal(got, want)) {
			char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
			char *w = json_dumps(want, JSON_ENCODE_ANY);
			fail_msg("%s: %s is %s, expected %s", name, key, g ? g : "(absent)", w);
		}
	}
	/* Nothing beyond what expected.json names. */
	json_object_foreach(r->fields, key, want)
		if (!json_object_get(exp, key))
			fail_msg("%s: unexpected field %s", name, key);
}

static void test_vectors(void **state)
{
	const char *name;
	json_t *exp;
	size_t count = 0;
	json_object_foreach(expected, name, exp) {
		if (strncmp(name, "tdx/", 4) != 0 && strncmp(name, "sgx/", 4) != 0)
			continue;
		size_t n;
		uint8_t *q = slurp(name, &n);
		struct arca_hw_result r;
		time_t at = inside(exp);
		if (verify(q, n, NULL, at, &r) != 0 || !r.verified)
			fail_msg("%s: %s", name, r.reason);
		check_fields(name, exp, &r);
		assert_string_equal(r.tcb_status, ""); /* no collateral: unknown, never UpToDate */
		const char *rd = json_string_value(json_object_get(exp, "report_data"));
		char rdhex[129];
		arca_hex_encode(r.report_data, 64, rdhex);
		assert_string_equal(rdhex, rd);
		arca_hw_result_free(&r);

		/* At either end of the window, and just outside it. */
		assert_int_equal(verify(q, n, NULL, when(json_string_value(json_object_get(exp, "valid_until"))), &r), 0);
		arca_hw_result_free(&r);
		assert_refused(q, n, when(json_string_value(json_object_get(exp, "valid_until"))) + 1,
			       "PCK certificate 'Intel SGX PCK Certificate' expired on", name);
		assert_refused(q, n, when(json_string_value(json_object_get(exp, "valid_from"))) - 1,
			       "is not valid before", name);
		free(q);
		count++;
	}
	assert_int_equal(count, 9); /* 7 TDX, 2 SGX: none silently skipped */
}

static void test_known_pck_extension(void **state)
{
	/* Read out independently (a separate DER walk) from the vectors. */
	size_t n;
	uint8_t *q = slurp("sgx/phala-quote-v3.dat", &n);
	struct parts pp;
	split(q, n, &pp);
	X509 *leaf = first_cert(&pp);
	struct arca_pck_ext x;
	struct arca_errbuf e = { { 0 } };
	assert_int_equal(arca_pck_ext_from_cert(leaf, &x, &e), 0);
	static const uint8_t comp[16] = { 11, 11, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t fmspc[6] = { 0x00, 0xa0, 0x67, 0x11, 0x00, 0x00 };
	assert_memory_equal(x.comp_svn, comp, 16);
	assert_int_equal(x.pcesvn, 13);
	assert_memory_equal(x.fmspc, fmspc, 6);
	assert_int_equal(x.pceid[0] | x.pceid[1], 0);
	assert_int_equal(x.sgx_type, 0);
	X509_free(leaf);
	parts_free(&pp);
	free(q);

	q = slurp("tdx/phala-quote.dat", &n);
	split(q, n, &pp);
	leaf = first_cert(&pp);
	assert_int_equal(arca_pck_ext_from_cert(leaf, &x, &e), 0);
	static const uint8_t comp2[16] = { 3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t fmspc2[6] = { 0xb0, 0xc0, 0x6f, 0x00, 0x00, 0x00 };
	assert_memory_equal(x.comp_svn, comp2, 16);
	assert_int_equal(x.pcesvn, 11);
	assert_memory_equal(x.fmspc, fmspc2, 6);
	assert_int_equal(x.sgx_type, 1);
	X509_free(leaf);
	parts_free(&pp);
	free(q);
}

/* ---- refusals ---- */

/* Another root, with Intel's name even, at the end of the chain. */
static void test_foreign_root(void **state)
{
	size_t n;
	uint8_t *q = slurp("tdx/trustee-quote-4.dat", &n);
	json_t *exp = json_object_get(expected, "tdx/trustee-quote-4.dat");
	time_t at = inside(exp);
	struct parts pp;
	split(q, n, &pp);

	EVP_PKEY *k = p256_new();
	X509 *fake = make_cert("Intel SGX Root CA", k, NULL, NULL, 1, at - 86400, at + 86400, 7, NULL);
	const char *third = NULL;
	const char *s = (const char *)pp.pem;
	for (int i = 0; i < 3; i++) {
		third = strstr(s, "-----BEGIN CERTIFICATE-----");
		assert_non_null(third);
		s = third + 1;
	}
	struct arca_buf pem;
	arca_buf_init(&pem, 1 << 16, 0);
	put(&pem, pp.pem, (size_t)((const uint8_t *)third - pp.pem));
	append_pem(&pem, fake);
	put(&pem, "", 1); /* it was NUL-terminated */
	free(pp.pem);
	pp.pem = arca_buf_steal(&pem, &pp.pem_len);
	size_t m;
	uint8_t *bad = assemble(&pp, &m);
	assert_refused(bad, m, at, "not the pinned Intel SGX Root CA", "foreign root");
	free(bad);

	/* The real chain with one certificate more (the root again). */
	{
		struct parts more;
		split(q, n, &more);
		const char *root_pem = NULL;
		s = (const char *)more.pem;
		for (int i = 0; i < 3; i++) {
			root_pem = strstr(s, "-----BEGIN CERTIFICATE-----");
			s = root_pem + 1;
		}
		size_t root_len = strlen(root_pem), head = (size_t)((const uint8_t *)root_pem - more.pem);
		uint8_t *p4 = malloc(head + 2 * root_len + 1);
		memcpy(p4, more.pem, head);
		memcpy(p4 + head, root_pem, root_len);
		memcpy(p4 + head + root_len, root_pem, root_len + 1);
		free(more.pem);
		more.pem = p4;
		more.pem_len = head + 2 * root_len + 1;
		uint8_t *four = assemble(&more, &m);
		assert_refused(four, m, at, "holds 4 certificates", "four certificates");
		free(four);
		parts_free(&more);
	}

	/* A whole consistent chain under another root: refused with the
	 * built-in root, accepted only when that root is pinned instead, so
	 * the refusal above is the pin's doing. */
	T0 = at;
	struct pki pk;
	X509 *real_leaf = first_cert(&pp);
	pki_make(&pk, real_leaf, at - 86400, at + 86400 * 365);
	resign(&pp, &pk);
	bad = assemble(&pp, &m);
	assert_refused(bad, m, at, "not the pinned Intel SGX Root CA", "private chain");
	struct arca_hw_result r;
	if (verify_with(bad, m, &pk, NULL, &r) != 0)
		fail_msg("private chain with its root pinned: %s", r.reason);
	arca_hw_result_free(&r);
	free(bad);
	pki_free(&pk);
	X509_free(real_leaf);
	X509_free(fake);
	EVP_PKEY_free(k);
	parts_free(&pp);
	free(q);
}

static void test_qe_auth_data_changed(void **state)
{
	const char *names[] = { "tdx/gtg-quote-v5.dat", "sgx/trustee-occlum-quote-v3.dat" };
	for (size_t v = 0; v < 2; v++) {
		size_t n, m;
		uint8_t *q = slurp(names[v], &n);
		time_t at = inside(json_object_get(expected, names[v]));
		struct parts pp;
		split(q, n, &pp);
		assert_true(pp.auth_len > 0);
		/* Same length, one byte changed; then one byte longer, with
		 * every length fixed: only the binding can catch either. */
		pp.auth[0] ^= 0x01;
		uint8_t *bad = assemble(&pp, &m);
		assert_refused(bad, m, at, "does not bind the attestation key", names[v]);
		free(bad);
		pp.auth[0] ^= 0x01;
		pp.auth[pp.auth_len++] = 0x00;
		bad = assemble(&pp, &m);
		assert_refused(bad, m, at, "does not bind the attestation key", names[v]);
		free(bad);
		/* Control: put back together unchanged, it verifies. */
		pp.auth_len--;
		bad = assemble(&pp, &m);
		assert_int_equal(m, n);
		assert_memory_equal(bad, q, n);
		free(bad);
		parts_free(&pp);
		free(q);
	}
}

/* Deterministic, so that a failure can be replayed. */
static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void flip_and_refuse(const char *name, size_t i, uint8_t *q, size_t n, time_t at)
{
	uint8_t bit = (uint8_t)(1u << (i % 8));
	q[i] ^= bit;
	struct arca_hw_result r;
	int rc = verify(q, n, NULL, at, &r);
	q[i] ^= bit;
	if (rc == 0 || r.verified)
		fail_msg("%s: flipping bit %u of byte %zu was accepted", name, (unsigned)(i % 8), i);
	arca_hw_result_free(&r);
}

static void test_bit_flips(void **state)
{
	/* Every byte of the whole quote (signed part and signature data) of
	 * one TDX v4, one TDX v5 and one SGX vector. */
	const char *full[] = { "tdx/gtg-spr-e4-quote-v4-trailing.dat", "tdx/gtg-quote-v5.dat", "sgx/phala-quote-v3.dat" };
	for (size_t v = 0; v < 3; v++) {
		size_t n;
		uint8_t *q = slurp(full[v], &n);
		struct arca_intel_quote pq;
		assert_int_equal(arca_intel_quote_parse(q, n, &pq, NULL), 0);
		time_t at = inside(json_object_get(expected, full[v]));
		for (size_t i = 0; i < pq.quote_len; i++)
			flip_and_refuse(full[v], i, q, n, at);
		free(q);
	}
	/* The others: every byte of the signed part, and a sample of each
	 * region of the signature data. */
	const char *name;
	json_t *exp;
	json_object_foreach(expected, name, exp) {
		if ((strncmp(name, "tdx/", 4) != 0 && strncmp(name, "sgx/", 4) != 0) ||
		    strcmp(name, full[0]) == 0 || strcmp(name, full[1]) == 0 || strcmp(name, full[2]) == 0)
			continue;
		size_t n;
		uint8_t *q = slurp(name, &n);
		struct arca_intel_quote pq;
		assert_int_equal(arca_intel_quote_parse(q, n, &pq, NULL), 0);
		time_t at = inside(exp);
		for (size_t i = 0; i < pq.signed_len; i++)
			flip_and_refuse(name, i, q, n, at);
		struct {
			const uint8_t *p;
			size_t n;
		} region[] = {
			{ q + pq.signed_len, 4 },               /* signature data length */
			{ pq.sig, 64 },                         /* quote signature */
			{ pq.att_key, 64 },                     /* attestation key */
			{ pq.qe_report, 384 },                  /* QE report */
			{ pq.qe_report_sig, 64 },               /* its signature */
			{ pq.qe_auth - 2, pq.qe_auth_len + 2 }, /* QE auth data and its length */
			{ pq.pck_pem - 6, 6 },                  /* certification data type and size */
			{ pq.pck_pem, pq.pck_pem_len },         /* PCK chain */
		};
		for (size_t g = 0; g < sizeof region / sizeof region[0]; g++)
			for (int k = 0; k < 24; k++)
				flip_and_refuse(name, (size_t)(region[g].p - q) + rng() % region[g].n, q, n, at);
		free(q);
	}
}

/* Padding after the signature data is not signed: changing, adding or
 * removing it changes nothing but trailing_bytes. */
static void test_trailing_bytes(void **state)
{
	const char *name;
	json_t *exp;
	size_t with_padding = 0;
	json_object_foreach(expected, name, exp) {
		if (strncmp(name, "tdx/", 4) != 0 && strncmp(name, "sgx/", 4) != 0)
			continue;
		size_t n;
		uint8_t *q = slurp(name, &n);
		struct arca_intel_quote pq;
		struct arca_hw_result r;
		assert_int_equal(arca_intel_quote_parse(q, n, &pq, NULL), 0);
		time_t at = inside(exp);
		assert_int_equal(pq.trailing_bytes, json_integer_value(json_object_get(exp, "trailing_bytes")));
		for (size_t i = pq.quote_len; i < n; i++)
			q[i] ^= 0xa5;
		if (verify(q, n, NULL, at, &r) != 0)
			fail_msg("%s: changed padding refused: %s", name, r.reason);
		arca_hw_result_free(&r);
		/* Cut to nothing, and grown by 100 bytes. */
		assert_int_equal(verify(q, pq.quote_len, NULL, at, &r), 0);
		assert_int_equal(json_integer_value(json_object_get(r.fields, "trailing_bytes")), 0);
		arca_hw_result_free(&r);
		uint8_t *grown = calloc(1, pq.quote_len + 100);
		memcpy(grown, q, pq.quote_len);
		assert_int_equal(verify(grown, pq.quote_len + 100, NULL, at, &r), 0);
		assert_int_equal(json_integer_value(json_object_get(r.fields, "trailing_bytes")), 100);
		arca_hw_result_free(&r);
		free(grown);
		with_padding += pq.trailing_bytes > 0;
		free(q);
	}
	assert_int_equal(with_padding, 4);
}

static void test_malformed(void **state)
{
	size_t n;
	uint8_t *q = slurp("tdx/phala-quote.dat", &n);
	struct arca_intel_quote pq;
	struct arca_errbuf e = { { 0 } };
	/* Every truncation inside the quote is refused without reading past
	 * the end (ASan watches). */
	assert_int_equal(arca_intel_quote_parse(q, n, &pq, NULL), 0);
	for (size_t len = 0; len < pq.quote_len; len++) {
		uint8_t *cut = malloc(len ? len : 1);
		memcpy(cut, q, len);
		assert_true(arca_intel_quote_parse(cut, len, &pq, &e) < 0);
		free(cut);
	}
	/* Unsupported kinds say what they are. */
	q[0] = 6;
	assert_int_equal(arca_intel_quote_parse(q, n, &pq, &e), ARCA_EUNSUPPORTED);
	assert_non_null(strstr(e.msg, "version 6"));
	q[0] = 4;
	q[2] = 3;
	assert_int_equal(arca_intel_quote_parse(q, n, &pq, &e), ARCA_EUNSUPPORTED);
	assert_non_null(strstr(e.msg, "attestation key type 3"));
	q[2] = 2;
	q[4] = 0;
	assert_int_equal(arca_intel_quote_parse(q, n, &pq, &e), ARCA_EUNSUPPORTED);
	q[4] = 0x81;
	assert_int_equal(arca_intel_quote_parse(q, n, &pq, &e), 0);
	free(q);

	struct arca_hw_result r;
	assert_true(verify((const uint8_t *)"junk", 4, NULL, 0, &r) < 0);
	assert_false(r.verified);
	assert_null(r.fields);
	assert_non_null(strstr(r.reason, "shorter than a quote header"));
	arca_hw_result_free(&r);
}

static void test_strict_pem(void **state)
{
	size_t n;
	uint8_t *q = slurp("sgx/trustee-occlum-quote-v3.dat", &n);
	struct parts pp;
	split(q, n, &pp);
	X509 *c[4];
	size_t k = 0;
	/* As in the quote (no NUL), with one NUL, with two (refused). */
	assert_int_equal(arca_intel_pem_certs(pp.pem, pp.pem_len, c, 4, &k, NULL), 0);
	assert_int_equal(k, 3);
	while (k > 0)
		X509_free(c[--k]);
	uint8_t *p = malloc(pp.pem_len + 2);
	memcpy(p, pp.pem, pp.pem_len);
	p[pp.pem_len] = 0;
	p[pp.pem_len + 1] = 0;
	assert_int_equal(arca_intel_pem_certs(p, pp.pem_len + 1, c, 4, &k, NULL), 0);
	while (k > 0)
		X509_free(c[--k]);
	assert_true(arca_intel_pem_certs(p, pp.pem_len + 2, c, 4, &k, NULL) < 0);
	assert_int_equal(k, 0);
	/* Stray text, CRLF, a blank line, too few slots. */
	struct arca_errbuf e = { { 0 } };
	const char *bad[] = { "x-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\r\nMIIB\n-----END CERTIFICATE-----\n",
			      "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n", "" };
	for (size_t i = 0; i < 4; i++)
		assert_true(arca_intel_pem_certs((const uint8_t *)bad[i], strlen(bad[i]), c, 4, &k, &e) < 0);
	assert_true(arca_intel_pem_certs(pp.pem, pp.pem_len, c, 2, &k, &e) < 0);
	assert_non_null(strstr(e.msg, "more than 2"));
	free(p);
	parts_free(&pp);
	free(q);
}

/* ---- the chain cache ---- */

static void test_cache(void **state)
{
	size_t n;
	uint8_t *q = slurp("tdx/phala-quote.dat", &n);
	json_t *exp = json_object_get(expected, "tdx/phala-quote.dat");
	time_t at = inside(exp);
	struct arca_intel_chain_cache cache;
	arca_intel_chain_cache_init(&cache);
	struct arca_intel_opts o = { .cache = &cache };
	struct arca_hw_result r;
	for (int i = 0; i < 3; i++) {
		arca_hw_result_init(&r);
		if (arca_intel_quote_verify_opts(q, n, at, &o, &r) != 0)
			fail_msg("round %d: %s", i, r.reason);
		check_fields("cached", exp, &r);
		arca_hw_result_free(&r);
	}
	assert_int_equal(cache.misses, 1);
	assert_int_equal(cache.hits, 2);

	/* A hit still checks the signature, the binding and the time. */
	struct arca_intel_quote pq;
	assert_int_equal(arca_intel_quote_parse(q, n, &pq, NULL), 0);
	size_t sig_at = (size_t)(pq.sig - q), body_at = (size_t)(pq.body - q);
	const size_t spots[] = { sig_at + 5, body_at + 100, (size_t)(pq.att_key - q) + 7 };
	for (size_t i = 0; i < 3; i++) {
		q[spots[i]] ^= 0x10;
		arca_hw_result_init(&r);
		assert_true(arca_intel_quote_verify_opts(q, n, at, &o, &r) < 0);
		q[spots[i]] ^= 0x10;
		arca_hw_result_free(&r);
	}
	arca_hw_result_init(&r);
	assert_true(arca_intel_quote_verify_opts(q, n, when("2032-02-07T00:00:00Z"), &o, &r) < 0);
	assert_non_null(strstr(r.reason, "expired on 2032-02-06T23:25:51Z"));
	arca_hw_result_free(&r);
	/* The three tampered ones were hits; the late one went the full way. */
	assert_int_equal(cache.hits, 5);
	assert_int_equal(cache.misses, 2);

	/* A changed byte in the cached region is another key: full path. */
	unsigned long misses = cache.misses;
	q[(size_t)(pq.qe_report - q) + 10] ^= 1;
	arca_hw_result_init(&r);
	assert_true(arca_intel_quote_verify_opts(q, n, at, &o, &r) < 0);
	assert_non_null(strstr(r.reason, "QE report signature"));
	arca_hw_result_free(&r);
	assert_int_equal(cache.misses, misses + 1);
	arca_intel_chain_cache_free(&cache);
	free(q);
}

/* ---- collateral from Intel ---- */

/* SGX: sgx/phala-collateral.json with sgx/phala-quote-v3.dat.
 * Valid together on 2025-07-01: PCK chain from 2023-09-20, root CA CRL
 * 2025-03-20..2026-04-03, PCK CRL 2025-06-19T10:23:18Z..2025-07-19, TCB
 * signing certificate from 2025-05-06, TCB info 2025-06-19T10:56:11Z..
 * 2025-07-19, QE identity 2025-06-19T10:01:18Z..2025-07-19.
 * Status by hand: the PCK certificate says SGX TCB components
 * 11,11,2,2,255,1,0,0,… and PCESVN 13 (test_known_pck_extension). The
 * tcbLevels, best first: [11,11,2,2,255,1,12,…] pcesvn 13
 * SWHardeningNeeded: component 7 is 0 < 12, not reached;
 * [11,11,2,2,255,1,0,…] pcesvn 13 ConfigurationAndSWHardeningNeeded:
 * reached. The QE's ISVSVN is 10 >= 8, the QE identity's UpToDate level,
 * which changes nothing. So: ConfigurationAndSWHardeningNeeded. */
static void test_collateral_sgx(void **state)
{
	size_t n;
	uint8_t *q = slurp("sgx/phala-quote-v3.dat", &n);
	struct arca_dcap_collateral *c = load_coll("sgx/phala-collateral.json");
	struct arca_hw_result r;
	if (verify(q, n, c, when("2025-07-01T00:00:00Z"), &r) != 0)
		fail_msg("%s", r.reason);
	assert_string_equal(r.tcb_status, "ConfigurationAndSWHardeningNeeded");
	arca_hw_result_free(&r);

	/* The other SGX quote has another PCK CA (Platform, not Processor). */
	size_t n2;
	uint8_t *q2 = slurp("sgx/trustee-occlum-quote-v3.dat", &n2);
	assert_true(verify(q2, n2, c, when("2025-07-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "PCK CRL is issued by 'Intel SGX PCK Processor CA', not by "
					 "'Intel SGX PCK Platform CA'"));
	assert_string_equal(r.tcb_status, "");
	arca_hw_result_free(&r);
	free(q2);

	/* Today the CRLs have expired (the PCK CRL on 2025-07-19). */
	assert_true(verify(q, n, c, when("2025-08-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "the PCK CRL expired on 2025-07-19T10:23:18Z (nextUpdate)"));
	arca_hw_result_free(&r);
	assert_true(verify(q, n, c, time(NULL), &r) < 0);
	assert_non_null(strstr(r.reason, "expired on"));
	assert_string_equal(r.tcb_status, "");
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	free(q);
}

/* TDX: tdx/phala-collateral.json with tdx/phala-quote.dat, on 2025-07-01.
 * By hand: PCK TCB components 3,3,2,2,4,1,0,5,… PCESVN 11 reach the first
 * level [2,2,2,2,3,1,0,5,…] pcesvn 11; the TD's TEE_TCB_SVN is 06 01 03
 * 00…: byte 1 (module version 1) > 0, so bytes 2.. are compared with the
 * level's tdxtcbcomponents [5,0,2,…] (3 >= 2): UpToDate; the module
 * identity TDX_01 lists ISVSVN 4 UpToDate, 2 OutOfDate and byte 0 is 6:
 * UpToDate; the TD QE's ISVSVN 6 >= 4: UpToDate. So: UpToDate. */
static void test_collateral_tdx(void **state)
{
	size_t n;
	uint8_t *q = slurp("tdx/phala-quote.dat", &n);
	struct arca_dcap_collateral *c = load_coll("tdx/phala-collateral.json");
	struct arca_hw_result r;
	time_t at = when("2025-07-01T00:00:00Z");
	if (verify(q, n, c, at, &r) != 0)
		fail_msg("%s", r.reason);
	assert_string_equal(r.tcb_status, "UpToDate");
	check_fields("tdx/phala-quote.dat", json_object_get(expected, "tdx/phala-quote.dat"), &r);
	arca_hw_result_free(&r);

	/* The same collateral is not another platform's (other FMSPC). */
	size_t n2;
	uint8_t *q2 = slurp("tdx/gtg-quote-v5.dat", &n2);
	assert_true(verify(q2, n2, c, when("2026-02-01T00:00:00Z"), &r) < 0);
	assert_string_equal(r.tcb_status, "");
	arca_hw_result_free(&r);
	free(q2);
	q2 = slurp("tdx/trustee-quote-5.dat", &n2);
	assert_true(verify(q2, n2, c, at, &r) < 0);
	assert_non_null(strstr(r.reason, "the TCB info is for FMSPC b0c06f000000, the PCK certificate's is "
					 "90c06f000000"));
	arca_hw_result_free(&r);
	free(q2);

	/* A PCK CRL issuer chain of another PCK CA (Processor, from the SGX
	 * collateral) next to the right CRL. */
	static const char *const but_chain[] = { "tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
						 "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain",
						 "root_ca_crl", "pck_crl", NULL };
	static const char *const chain_only[] = { "pck_crl_issuer_chain", NULL };
	char *b1 = bundle_subset("tdx/phala-collateral.json", but_chain);
	char *b2 = bundle_subset("sgx/phala-collateral.json", chain_only);
	struct arca_dcap_collateral *mixed = NULL;
	struct arca_errbuf e = { { 0 } };
	assert_int_equal(arca_dcap_collateral_load((const uint8_t *)b1, strlen(b1), &mixed, &e), 0);
	if (verify(q, n, mixed, at, &r) != 0) /* the chain is optional */
		fail_msg("%s", r.reason);
	arca_hw_result_free(&r);
	add_coll_text(mixed, b2);
	assert_true(verify(q, n, mixed, at, &r) < 0);
	assert_non_null(strstr(r.reason, "the PCK CRL issuer chain is not for this quote's PCK CA"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(mixed);
	free(b1);
	free(b2);

	/* SGX collateral for a TDX quote. */
	struct arca_dcap_collateral *sgx = load_coll("sgx/phala-collateral.json");
	assert_true(verify(q, n, sgx, at, &r) < 0);
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(sgx);

	/* Now: the root CA CRL ran out on 2026-04-03, the rest before. */
	assert_true(verify(q, n, c, when("2026-05-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "the root CA CRL expired on 2026-04-03T11:21:57Z (nextUpdate)"));
	arca_hw_result_free(&r);
	assert_true(verify(q, n, c, time(NULL), &r) < 0);
	assert_non_null(strstr(r.reason, "expired on"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	free(q);
}

static char *replace_once(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return out;
}

static void test_collateral_tampered(void **state)
{
	size_t n, qn;
	uint8_t *p = slurp("tdx/phala-collateral.json", &n);
	uint8_t *q = slurp("tdx/phala-quote.dat", &qn);
	time_t at = when("2025-07-01T00:00:00Z");
	char *text = malloc(n + 1);
	memcpy(text, p, n);
	text[n] = '\0';
	/* One byte of the signed tcbInfo text (inside the JSON string), of the
	 * QE identity, of the signature; each still loads. */
	const char *edits[][3] = {
		{ "\\\"pcesvn\\\":11", "\\\"pcesvn\\\":10", "signature of the TCB info does not verify" },
		{ "\\\"isvprodid\\\":2", "\\\"isvprodid\\\":3", "signature of the QE identity does not verify" },
		{ "\"tcb_info_signature\": \"02", "\"tcb_info_signature\": \"03", "signature of the TCB info" },
		/* The last byte of the root CA CRL's signature (…9b4f33). */
		{ "b5eaff9b4f33\"", "b5eaff9b4f34\"", "signature of the root CA CRL does not verify" },
	};
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		char *t = replace_once(text, edits[i][0], edits[i][1]);
		struct arca_dcap_collateral *c = NULL;
		struct arca_errbuf e = { { 0 } };
		if (arca_dcap_collateral_load((const uint8_t *)t, strlen(t), &c, &e) < 0)
			fail_msg("edit %zu: %s", i, e.msg);
		struct arca_hw_result r;
		assert_true(verify(q, qn, c, at, &r) < 0);
		if (!strstr(r.reason, edits[i][2]))
			fail_msg("edit %zu: %s", i, r.reason);
		assert_string_equal(r.tcb_status, "");
		arca_hw_result_free(&r);
		arca_dcap_collateral_free(c);
		free(t);
	}
	free(text);
	free(p);
	free(q);
}

/* The Intel PCS responses (tdx/gtg-*.json) carry neither their issuer
 * chain (PCS sends it in an HTTP header) nor CRLs, and their TCB info ran
 * 2023-06-18..2023-07-18. Intel re-certified the same TCB signing key in
 * 2025 (the chain in tdx/phala-collateral.json), so with that chain the
 * signatures check, but never at a time when both are valid. */
static void test_collateral_pcs_responses(void **state)
{
	struct arca_dcap_collateral *c = load_coll("tdx/gtg-tcbinfo-response.json");
	size_t n, qn;
	uint8_t *p = slurp("tdx/gtg-qeidentity-response.json", &n);
	struct arca_errbuf e = { { 0 } };
	assert_int_equal(arca_dcap_collateral_add(c, p, n, &e), 0);
	/* The same part twice is refused, and leaves c as it was. */
	assert_int_equal(arca_dcap_collateral_add(c, p, n, &e), ARCA_EEXIST);
	free(p);
	uint8_t *q = slurp("tdx/trustee-quote-4.dat", &qn);
	struct arca_hw_result r;
	assert_true(verify(q, qn, c, when("2023-07-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "collateral lacks the TCB info issuer chain"));
	assert_string_equal(r.tcb_status, "");
	arca_hw_result_free(&r);

	/* Matching alone (no signature or date checked): trustee-quote-4 has
	 * FMSPC 50806f000000 like this TCB info. By hand: PCK components
	 * 5,5,13,2,3,1,0,3,… PCESVN 11 reach the first level
	 * [5,5,2,2,3,1,0,3,…] pcesvn 11, TEE_TCB_SVN 03 00 05 … (module
	 * version 0: all 16 bytes compared) reaches its tdxtcbcomponents
	 * [3,0,5,…]: UpToDate; TD QE ISVSVN 4 >= 4: UpToDate. */
	struct parts pp;
	split(q, qn, &pp);
	struct arca_intel_quote pq;
	assert_int_equal(arca_intel_quote_parse(q, qn, &pq, NULL), 0);
	X509 *leaf = first_cert(&pp);
	struct arca_pck_ext x;
	assert_int_equal(arca_pck_ext_from_cert(leaf, &x, &e), 0);
	struct arca_dcap_tcb t;
	assert_int_equal(arca_dcap_tcb_evaluate(c, &pq, &x, &t, &e), 0);
	assert_int_equal(t.status, ARCA_TCB_UP_TO_DATE);
	assert_int_equal(t.module_status, -1);
	assert_int_equal(t.qe_status, ARCA_TCB_UP_TO_DATE);
	X509_free(leaf);
	parts_free(&pp);

	/* gtg-spr-e4 (same FMSPC): components 3,3,… are below 5,5,… of every
	 * level: TCB not supported, not a status. */
	size_t sn;
	uint8_t *s = slurp("tdx/gtg-spr-e4-quote-v4-trailing.dat", &sn);
	split(s, sn, &pp);
	assert_int_equal(arca_intel_quote_parse(s, sn, &pq, NULL), 0);
	leaf = first_cert(&pp);
	assert_int_equal(arca_pck_ext_from_cert(leaf, &x, &e), 0);
	assert_int_equal(arca_dcap_tcb_evaluate(c, &pq, &x, &t, &e), ARCA_EDENIED);
	assert_non_null(strstr(e.msg, "TCB not supported"));
	assert_int_equal(t.status, -1);
	X509_free(leaf);
	parts_free(&pp);
	free(s);

	/* With the 2025 issuer chain and CRLs: on 2025-07-01 everything up to
	 * the TCB info's signature checks, then its date does not. */
	static const char *const keys[] = { "tcb_info_issuer_chain", "qe_identity_issuer_chain", "root_ca_crl",
					    "pck_crl", "pck_crl_issuer_chain", NULL };
	char *rest = bundle_subset("tdx/phala-collateral.json", keys);
	add_coll_text(c, rest);
	assert_true(verify(q, qn, c, when("2025-07-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "the TCB info expired on 2023-07-18T08:42:58Z (nextUpdate)"));
	arca_hw_result_free(&r);
	/* In 2023 the CRLs and the signing certificate are not valid yet. */
	assert_true(verify(q, qn, c, when("2023-07-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "the root CA CRL is not valid before 2025-03-20T11:21:57Z"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);

	/* One changed byte inside the PCS response's signed tcbInfo. */
	p = slurp("tdx/gtg-tcbinfo-response.json", &n);
	char *t0 = malloc(n + 1);
	memcpy(t0, p, n);
	t0[n] = '\0';
	char *t1 = replace_once(t0, "\"pcesvn\":11", "\"pcesvn\":12");
	c = NULL;
	assert_int_equal(arca_dcap_collateral_load((const uint8_t *)t1, strlen(t1), &c, &e), 0);
	p = (free(p), slurp("tdx/gtg-qeidentity-response.json", &n));
	assert_int_equal(arca_dcap_collateral_add(c, p, n, &e), 0);
	add_coll_text(c, rest);
	assert_true(verify(q, qn, c, when("2025-07-01T00:00:00Z"), &r) < 0);
	assert_non_null(strstr(r.reason, "the signature of the TCB info does not verify"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	free(t0);
	free(t1);
	free(rest);
	free(p);
	free(q);
}

static void test_collateral_load_errors(void **state)
{
	struct arca_dcap_collateral *c = NULL;
	struct arca_errbuf e = { { 0 } };
	const char *bad[][2] = {
		{ "{\"tcb_info\":\"{}\"}", "" },
		{ "{\"surprise\":\"x\"}", "unknown key 'surprise'" },
		{ "{\"root_ca_crl\":\"zz\"}", "root_ca_crl" },
		{ "{\"pck_crl_issuer_chain\":\"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}",
		  "pck_crl_issuer_chain" },
		{ "{\"tcbInfo\":{},\"signature\":\"00\"}", "signature" },
		{ "{\"tcbInfo\":{\"id\":\"TDX\"},\"tcbInfo\":{},\"signature\":\"00\"}", "not JSON" },
		{ "[]", "not a JSON object" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (arca_dcap_collateral_load((const uint8_t *)bad[i][0], strlen(bad[i][0]), &c, &e) == 0)
			fail_msg("accepted %s", bad[i][0]);
		assert_null(c);
		if (!strstr(e.msg, bad[i][1]))
			fail_msg("%s: %s", bad[i][0], e.msg);
	}
	/* A signature without its text, in a bundle. */
	const char *lone = "{\"tcb_info_signature\":\"00\"}";
	assert_true(arca_dcap_collateral_load((const uint8_t *)lone, strlen(lone), &c, &e) < 0);

	assert_string_equal(arca_tcb_status_name(ARCA_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED),
			    "OutOfDateConfigurationNeeded");
	assert_int_equal(arca_tcb_status_parse("SWHardeningNeeded", 17), ARCA_TCB_SW_HARDENING_NEEDED);
	assert_int_equal(arca_tcb_status_parse("UpToDat", 7), -1);
	assert_null(arca_tcb_status_name(7));
}

/* ---- synthetic: what real data cannot show ---- */

struct synth {
	uint8_t *q;
	size_t n;
	struct parts pp;
	struct pki k;
	X509 *real_leaf;
};

/* A real quote given this test's PKI; its certificates carry the real
 * PCK leaf's SGX extension, so Intel's TCB info still applies. */
static void synth_make(struct synth *s, const char *rel, time_t at, time_t ca_from, time_t ca_until)
{
	size_t n;
	uint8_t *q = slurp(rel, &n);
	T0 = at;
	split(q, n, &s->pp);
	free(q);
	s->real_leaf = first_cert(&s->pp);
	pki_make(&s->k, s->real_leaf, ca_from, ca_until);
	resign(&s->pp, &s->k);
	s->q = assemble(&s->pp, &s->n);
}

static void synth_redo(struct synth *s)
{
	free(s->q);
	resign(&s->pp, &s->k);
	s->q = assemble(&s->pp, &s->n);
}

static void synth_free(struct synth *s)
{
	free(s->q);
	parts_free(&s->pp);
	pki_free(&s->k);
	X509_free(s->real_leaf);
}

static void test_synthetic_v5_body2(void **state)
{
	/* TDX 1.0 body in a v5 quote: no vector has one. */
	struct synth s;
	time_t at = when("2025-07-01T00:00:00Z");
	synth_make(&s, "tdx/phala-quote.dat", at, at - 86400, at + 86400 * 365);
	s.pp.version = 5;
	s.pp.header[0] = 5;
	s.pp.body_type = ARCA_INTEL_BODY_TDX10;
	synth_redo(&s);
	struct arca_hw_result r;
	if (verify_with(s.q, s.n, &s.k, NULL, &r) != 0)
		fail_msg("%s", r.reason);
	assert_int_equal(json_integer_value(json_object_get(r.fields, "version")), 5);
	assert_int_equal(json_integer_value(json_object_get(r.fields, "body_type")), 2);
	assert_string_equal(json_string_value(json_object_get(r.fields, "mrtd")),
			    json_string_value(json_object_get(json_object_get(expected, "tdx/phala-quote.dat"), "mrtd")));
	arca_hw_result_free(&r);
	/* A body size that disagrees with the type. */
	s.q[50] ^= 0x40;
	assert_true(verify_with(s.q, s.n, &s.k, NULL, &r) < 0);
	assert_non_null(strstr(r.reason, "must be 584 bytes"));
	arca_hw_result_free(&r);
	synth_free(&s);
}

static void test_synthetic_expired_ca(void **state)
{
	struct synth s;
	time_t at = when("2025-07-01T00:00:00Z");
	synth_make(&s, "sgx/phala-quote-v3.dat", at, at - 86400 * 365, at - 86400);
	struct arca_hw_result r;
	assert_true(verify_with(s.q, s.n, &s.k, NULL, &r) < 0);
	assert_non_null(strstr(r.reason, "PCK CA certificate 'Test SGX PCK Platform CA' expired on 2025-06-30"));
	assert_int_equal(r.valid_until, at - 86400);
	arca_hw_result_free(&r);
	synth_free(&s);
}

static void test_synthetic_revocation(void **state)
{
	struct synth s;
	time_t at = when("2025-07-01T00:00:00Z");
	synth_make(&s, "tdx/phala-quote.dat", at, at - 86400, at + 86400 * 365);
	struct arca_hw_result r;

	/* Control: this PKI's collateral, nothing revoked: the real status. */
	const long other[] = { 99, 100 };
	struct arca_dcap_collateral *c = pki_collateral(&s.k, "tdx/phala-collateral.json", other, 2, other, 1);
	if (verify_with(s.q, s.n, &s.k, c, &r) != 0)
		fail_msg("%s", r.reason);
	assert_string_equal(r.tcb_status, "UpToDate");
	arca_hw_result_free(&r);
	/* Intel's own collateral does not vouch for this PKI's chain. */
	struct arca_dcap_collateral *intel = load_coll("tdx/phala-collateral.json");
	assert_true(verify_with(s.q, s.n, &s.k, intel, &r) < 0);
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(intel);
	arca_dcap_collateral_free(c);

	const long leaf[] = { 7, 0x1234 }, ca[] = { 2 };
	c = pki_collateral(&s.k, "tdx/phala-collateral.json", leaf, 2, NULL, 0);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "certificate 'Test SGX PCK Certificate' is revoked by the PCK CRL"));
	assert_string_equal(r.tcb_status, "Revoked");
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);

	c = pki_collateral(&s.k, "tdx/phala-collateral.json", NULL, 0, ca, 1);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "certificate 'Test SGX PCK Platform CA' is revoked by the root CA CRL"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);

	/* A CRL that names the right issuer but is signed by another key. */
	EVP_PKEY *other_key = p256_new();
	c = pki_collateral_ex(&s.k, "tdx/phala-collateral.json", NULL, 0, NULL, 0, other_key);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "the signature of the PCK CRL does not verify"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	EVP_PKEY_free(other_key);

	/* An expired TCB signing certificate. */
	X509_free(s.k.tcb);
	s.k.tcb = make_cert("Test SGX TCB Signing", s.k.tcb_key, s.k.root, s.k.root_key, 0, at - 86400 * 30,
			    at - 3600, 3, NULL);
	c = pki_collateral(&s.k, "tdx/phala-collateral.json", NULL, 0, NULL, 0);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "TCB signing certificate 'Test SGX TCB Signing' expired on 2025-06-30T23:00:00Z"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	X509_free(s.k.tcb);
	s.k.tcb = make_cert("Test SGX TCB Signing", s.k.tcb_key, s.k.root, s.k.root_key, 0, at - 86400 * 30,
			    at + 86400 * 365, 3, NULL);

	/* The TCB signer revoked by the root CA CRL. */
	const long tcb[] = { 3 };
	c = pki_collateral(&s.k, "tdx/phala-collateral.json", NULL, 0, tcb, 1);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "'Test SGX TCB Signing' is revoked by the root CA CRL"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	synth_free(&s);
}

static void set16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void test_synthetic_statuses(void **state)
{
	time_t at = when("2025-07-01T00:00:00Z");
	struct arca_hw_result r;
	struct synth s;

	/* SGX, platform ConfigurationAndSWHardeningNeeded (see
	 * test_collateral_sgx). QE identity levels: ISVSVN 8 UpToDate,
	 * 6 OutOfDate, 5, 4, 2, 1 OutOfDate. */
	synth_make(&s, "sgx/phala-quote-v3.dat", at, at - 86400, at + 86400 * 365);
	struct arca_dcap_collateral *c = pki_collateral(&s.k, "sgx/phala-collateral.json", NULL, 0, NULL, 0);
	const struct {
		unsigned isvsvn;
		const char *status;
	} qe[] = {
		{ 10, "ConfigurationAndSWHardeningNeeded" },
		{ 8, "ConfigurationAndSWHardeningNeeded" },
		{ 7, "OutOfDateConfigurationNeeded" }, /* QE OutOfDate + configuration needed */
		{ 1, "OutOfDateConfigurationNeeded" },
	};
	for (size_t i = 0; i < sizeof qe / sizeof qe[0]; i++) {
		set16(s.pp.qe_report + ARCA_SGX_OFF_ISVSVN, qe[i].isvsvn);
		synth_redo(&s);
		if (verify_with(s.q, s.n, &s.k, c, &r) != 0)
			fail_msg("QE ISVSVN %u: %s", qe[i].isvsvn, r.reason);
		assert_string_equal(r.tcb_status, qe[i].status);
		arca_hw_result_free(&r);
	}
	/* Below every QE level: Revoked, refused. */
	set16(s.pp.qe_report + ARCA_SGX_OFF_ISVSVN, 0);
	synth_redo(&s);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_string_equal(r.tcb_status, "Revoked");
	arca_hw_result_free(&r);
	/* Not Intel's QE: each identity field in turn. The QE identity wants
	 * attributes & FBFFFFFFFFFFFFFF0000… = 1100…; the report has 15 00 …
	 * e7 …, so clearing bit 4 of byte 0 breaks it, and setting bit 2
	 * (masked out) does not. */
	set16(s.pp.qe_report + ARCA_SGX_OFF_ISVSVN, 10);
	const struct {
		size_t off;
		uint8_t x;
		const char *why;
	} qe_id[] = {
		{ ARCA_SGX_OFF_MRSIGNER, 0x01, "MRSIGNER" },
		{ ARCA_SGX_OFF_ISVPRODID, 0x02, "ISVPRODID 3 is not the QE identity's 1" },
		{ ARCA_SGX_OFF_MISCSELECT + 3, 0x80, "MISCSELECT" },
		{ ARCA_SGX_OFF_ATTRIBUTES, 0x10, "attributes" },
		{ ARCA_SGX_OFF_ATTRIBUTES, 0x04, NULL },
		{ ARCA_SGX_OFF_ATTRIBUTES + 8, 0xff, NULL },
	};
	for (size_t i = 0; i < sizeof qe_id / sizeof qe_id[0]; i++) {
		s.pp.qe_report[qe_id[i].off] ^= qe_id[i].x;
		synth_redo(&s);
		int rc = verify_with(s.q, s.n, &s.k, c, &r);
		if (qe_id[i].why) {
			assert_true(rc < 0);
			if (!strstr(r.reason, qe_id[i].why))
				fail_msg("QE byte %zu: %s", qe_id[i].off, r.reason);
			assert_string_equal(r.tcb_status, "");
		} else if (rc != 0) {
			fail_msg("QE byte %zu (masked): %s", qe_id[i].off, r.reason);
		}
		s.pp.qe_report[qe_id[i].off] ^= qe_id[i].x;
		arca_hw_result_free(&r);
	}
	arca_dcap_collateral_free(c);
	synth_free(&s);

	/* TDX, platform UpToDate (see test_collateral_tdx); module identity
	 * TDX_01: ISVSVN 4 UpToDate, 2 OutOfDate. */
	synth_make(&s, "tdx/phala-quote.dat", at, at - 86400, at + 86400 * 365);
	c = pki_collateral(&s.k, "tdx/phala-collateral.json", NULL, 0, NULL, 0);
	uint8_t *tee = s.pp.body + ARCA_TDX_OFF_TEE_TCB_SVN;
	tee[0] = 3; /* module SVN 3: OutOfDate level */
	synth_redo(&s);
	if (verify_with(s.q, s.n, &s.k, c, &r) != 0)
		fail_msg("%s", r.reason);
	assert_string_equal(r.tcb_status, "OutOfDate");
	arca_hw_result_free(&r);
	tee[0] = 1; /* below every module level */
	synth_redo(&s);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "below every level"));
	arca_hw_result_free(&r);
	tee[0] = 6;
	tee[1] = 2; /* a module version the TCB info does not know */
	synth_redo(&s);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "no identity TDX_02"));
	arca_hw_result_free(&r);
	tee[1] = 1;
	tee[2] = 1; /* TDX late microcode below the level's 2: no TDX level */
	synth_redo(&s);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "TEE TCB SVN is below every level"));
	arca_hw_result_free(&r);
	tee[2] = 3;
	s.pp.body[ARCA_TDX_OFF_MRSIGNERSEAM] = 1; /* not Intel's TDX module */
	synth_redo(&s);
	assert_true(verify_with(s.q, s.n, &s.k, c, &r) < 0);
	assert_non_null(strstr(r.reason, "MRSIGNERSEAM"));
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(c);
	synth_free(&s);
}

static int setup(void **state)
{
	size_t n;
	uint8_t *p = slurp("expected.json", &n);
	expected = json_loadb((const char *)p, n, 0, NULL);
	free(p);
	return expected ? 0 : -1;
}

static int teardown(void **state)
{
	json_decref(expected);
	return 0;
}

int main(void)
{
	char path[1024];
	vectors = getenv("ARCA_VECTORS");
	if (!vectors || snprintf(path, sizeof path, "%s/expected.json", vectors) >= (int)sizeof path ||
	    access(path, R_OK) != 0) {
		printf("SKIP: test vectors not found (set ARCA_VECTORS)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_root),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_known_pck_extension),
		cmocka_unit_test(test_foreign_root),
		cmocka_unit_test(test_qe_auth_data_changed),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_strict_pem),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_collateral_sgx),
		cmocka_unit_test(test_collateral_tdx),
		cmocka_unit_test(test_collateral_tampered),
		cmocka_unit_test(test_collateral_pcs_responses),
		cmocka_unit_test(test_collateral_load_errors),
		cmocka_unit_test(test_synthetic_v5_body2),
		cmocka_unit_test(test_synthetic_expired_ca),
		cmocka_unit_test(test_synthetic_revocation),
		cmocka_unit_test(test_synthetic_statuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
