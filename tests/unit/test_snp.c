/* test_snp.c: SEV-SNP reports against the real evidence in $ARCA_VECTORS:
 * every report verifies inside its window with exactly expected.json's
 * fields, and each kind of tampering, wrong key, wrong root, bad chain
 * parameter and expiry is refused with a reason that names it. Exits 77
 * (skipped) when the vectors are not there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "arca/buf.h"
#include "arca/encode.h"
#include "arca/hwev.h"
#include "arca/snp.h"
#include "arca/x509.h"

static const char *vdir;
static json_t *expected;

/* 2025-06-01T00:00:00Z lies inside every SEV-SNP vector's window. */
#define AT_COMMON ((time_t)1748736000)

/* ---- helpers ---- */

static void readfile(const char *rel, struct arca_buf *b)
{
	char path[1024];
	struct arca_errbuf e = { { 0 } };
	snprintf(path, sizeof path, "%s/%s", vdir, rel);
	arca_buf_init(b, 0, 0);
	int rc = arca_read_file(path, 1 << 20, b, &e);
	if (rc != 0)
		fail_msg("cannot read %s: %s", path, e.msg);
}

static X509 *load_cert(const char *rel)
{
	struct arca_buf b;
	readfile(rel, &b);
	X509 *x = NULL;
	assert_int_equal(arca_x509_load(b.p, b.len, &x), 0);
	arca_buf_free(&b);
	return x;
}

static STACK_OF(X509) *load_chain(const char *rel)
{
	struct arca_buf b;
	readfile(rel, &b);
	BIO *bio = BIO_new_mem_buf(b.p, (int)b.len);
	assert_non_null(bio);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		assert_true(sk_X509_push(sk, x) > 0);
	BIO_free(bio);
	arca_buf_free(&b);
	assert_true(sk_X509_num(sk) >= 2);
	return sk;
}

static void free_chain(STACK_OF(X509) *sk)
{
	sk_X509_pop_free(sk, X509_free);
}

static time_t rfc3339(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	assert_non_null(end);
	assert_int_equal(*end, '\0');
	return timegm(&tm);
}

static void load_ev(const uint8_t *p, size_t n, struct arca_snp_evidence *ev)
{
	struct arca_errbuf e = { { 0 } };
	int rc = arca_snp_load_any(p, n, ev, &e);
	if (rc != 0)
		fail_msg("load failed: %s", e.msg);
}

/* 0 and a filled res when verified; the reason stays in res. */
static int verify(const struct arca_snp_evidence *ev, X509 *leaf, STACK_OF(X509) *chain, time_t at,
		  struct arca_snp_chain_cache *cache, struct arca_hw_result *res)
{
	arca_hw_result_free(res);
	arca_hw_result_init(res);
	int rc = arca_snp_verify(ev, leaf, chain, at, cache, res);
	assert_int_equal(rc == 0, res->verified == 1);
	if (rc != 0)
		assert_true(res->reason[0] != '\0');
	return rc;
}

static void assert_refused(const struct arca_snp_evidence *ev, X509 *leaf, STACK_OF(X509) *chain, time_t at,
			   struct arca_snp_chain_cache *cache, const char *why)
{
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	int rc = verify(ev, leaf, chain, at, cache, &res);
	if (rc == 0)
		fail_msg("verified, but should have been refused (%s)", why ? why : "");
	if (why && !strstr(res.reason, why))
		fail_msg("refused for \"%s\", expected a reason containing \"%s\"", res.reason, why);
	arca_hw_result_free(&res);
}

/* Every SEV-SNP vector, loaded once. */
struct vec {
	const char *name;
	json_t *exp;
	struct arca_buf bytes;
	struct arca_snp_evidence ev;
	X509 *leaf;              /* NULL: in the evidence */
	STACK_OF(X509) *chain;   /* NULL: in the evidence */
	time_t from, until;
};
static struct vec vecs[16];
static size_t nvec;

static struct vec *find_vec(const char *suffix)
{
	for (size_t i = 0; i < nvec; i++)
		if (strstr(vecs[i].name, suffix))
			return &vecs[i];
	fail_msg("no vector %s", suffix);
	return NULL;
}

static X509 *vec_leaf(const struct vec *v)
{
	return v->leaf ? v->leaf : v->ev.certs.vcek;
}

static void load_vectors(void)
{
	const char *k;
	json_t *v;
	json_object_foreach(expected, k, v) {
		if (strncmp(k, "sev-snp/", 8) != 0)
			continue;
		assert_true(nvec < sizeof vecs / sizeof vecs[0]);
		struct vec *x = &vecs[nvec++];
		x->name = k;
		x->exp = v;
		readfile(k, &x->bytes);
		load_ev(x->bytes.p, x->bytes.len, &x->ev);
		json_t *leaf = json_object_get(v, "leaf"), *chain = json_object_get(v, "chain");
		if (json_is_string(leaf))
			x->leaf = load_cert(json_string_value(leaf));
		if (json_is_string(chain) && strncmp(json_string_value(chain), "roots/", 6) == 0)
			x->chain = load_chain(json_string_value(chain));
		x->from = rfc3339(json_string_value(json_object_get(v, "valid_from")));
		x->until = rfc3339(json_string_value(json_object_get(v, "valid_until")));
	}
}

static void free_vectors(void)
{
	for (size_t i = 0; i < nvec; i++) {
		arca_buf_free(&vecs[i].bytes);
		arca_snp_evidence_free(&vecs[i].ev);
		X509_free(vecs[i].leaf);
		if (vecs[i].chain)
			free_chain(vecs[i].chain);
	}
}

/* Everything in the three chain files, for tests that must fail on the
 * report rather than for want of an ASK. */
static STACK_OF(X509) *all_roots(void)
{
	static const char *const files[] = { "roots/amd-milan-ask-ark-asvk.pem", "roots/amd-genoa-ask-ark.pem",
					     "roots/amd-turin-ask-ark.pem" };
	STACK_OF(X509) *all = sk_X509_new_null();
	for (size_t i = 0; i < 3; i++) {
		STACK_OF(X509) *c = load_chain(files[i]);
		while (sk_X509_num(c) > 0)
			assert_true(sk_X509_push(all, sk_X509_shift(c)) > 0);
		sk_X509_free(c);
	}
	return all;
}

/* ---- every vector verifies, with expected.json's fields ---- */

static void test_vectors_verify(void **state)
{
	size_t want = 0;
	const char *k;
	json_t *v;
	json_object_foreach(expected, k, v)
		want += strncmp(k, "sev-snp/", 8) == 0;
	assert_true(want >= 5);
	assert_int_equal(nvec, want);

	static const char *const meta[] = { "ark_sha256", "chain", "leaf", "valid_from", "valid_until" };
	for (size_t i = 0; i < nvec; i++) {
		struct vec *x = &vecs[i];
		json_t *fields = json_deep_copy(x->exp);
		for (size_t m = 0; m < sizeof meta / sizeof meta[0]; m++)
			json_object_del(fields, meta[m]);

		struct arca_hw_result res;
		arca_hw_result_init(&res);
		time_t mid = x->from + (x->until - x->from) / 2;
		if (verify(&x->ev, x->leaf, x->chain, mid, NULL, &res) != 0)
			fail_msg("%s refused: %s", x->name, res.reason);
		if (!json_equal(res.fields, fields)) {
			char *got = json_dumps(res.fields, JSON_SORT_KEYS), *exp = json_dumps(fields, JSON_SORT_KEYS);
			fail_msg("%s fields differ:\n got %s\nwant %s", x->name, got, exp);
		}
		assert_int_equal(res.valid_from, x->from);
		assert_int_equal(res.valid_until, x->until);
		assert_memory_equal(res.report_data, x->ev.report.report_data, 64);

		/* The window is inclusive at both ends and not a second more. */
		assert_int_equal(verify(&x->ev, x->leaf, x->chain, x->from, NULL, &res), 0);
		assert_int_equal(verify(&x->ev, x->leaf, x->chain, x->until, NULL, &res), 0);
		assert_int_not_equal(verify(&x->ev, x->leaf, x->chain, x->from - 1, NULL, &res), 0);
		assert_non_null(strstr(res.reason, "is not valid before"));
		assert_int_not_equal(verify(&x->ev, x->leaf, x->chain, x->until + 1, NULL, &res), 0);
		assert_non_null(strstr(res.reason, "expired on"));
		/* Fields are there even when refused. */
		assert_true(json_equal(res.fields, fields));

		/* The ARK expected.json names is the one pinned for the leaf's product. */
		json_t *ark = json_object_get(x->exp, "ark_sha256");
		if (ark) {
			struct arca_snp_leaf li;
			struct arca_errbuf e;
			assert_int_equal(arca_snp_leaf_read(vec_leaf(x), &li, &e), 0);
			char hex[ARCA_HEX_LEN(32)];
			arca_hex_encode(arca_snp_ark_sha256(li.product), 32, hex);
			assert_string_equal(hex, json_string_value(ark));
		}
		arca_hw_result_free(&res);
		json_decref(fields);
	}
}

static void test_forms_detected(void **state)
{
	assert_int_equal(find_vec("gsg-milan-report.bin")->ev.form, ARCA_SNP_FORM_RAW);
	assert_int_equal(find_vec("virtee-milan-report.hex")->ev.form, ARCA_SNP_FORM_HEX);
	struct vec *t = find_vec("tsm-report.json");
	assert_int_equal(t->ev.form, ARCA_SNP_FORM_TSM);
	assert_string_equal(t->ev.provider, "sev_guest\n");
	assert_non_null(t->ev.certs.ark);
	assert_non_null(t->ev.certs.ask);
	assert_non_null(t->ev.certs.vcek);
	assert_null(t->ev.certs.vlek);
	assert_int_equal(find_vec("vlek-report.bin")->ev.report.signing_key, ARCA_SNP_KEY_VLEK);
	assert_int_equal(find_vec("vlek-report.bin")->ev.report.version, 3);
}

/* ---- expiry ---- */

static void test_vlek_expired_today(void **state)
{
	struct vec *x = find_vec("vlek-report.bin");
	time_t today = rfc3339("2026-11-21T00:00:00Z");
	assert_refused(&x->ev, x->leaf, x->chain, today, NULL, "the VLEK certificate expired on 2025-12-10T22:14:21Z");

	struct vec *g = find_vec("gsg-milan-report.bin");
	assert_refused(&g->ev, g->leaf, g->chain, rfc3339("2035-01-01T00:00:00Z"), NULL,
		       "the VCEK certificate expired on 2029-09-24T00:55:28Z");
	assert_refused(&g->ev, g->leaf, g->chain, rfc3339("2021-01-01T00:00:00Z"), NULL,
		       "the VCEK certificate is not valid before 2022-09-24T00:55:28Z");
	/* The ASK and ARK expire too, and are named when they are first. */
	assert_refused(&g->ev, g->leaf, g->chain, rfc3339("2020-10-22T18:00:00Z"), NULL, "VCEK");
}

/* A cached chain is trusted only inside its window; outside, the reason
 * still names the certificate. */
static void test_cache(void **state)
{
	struct arca_snp_chain_cache cache;
	assert_int_equal(arca_snp_chain_cache_init(&cache), 0);
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	for (size_t i = 0; i < nvec; i++) {
		struct vec *x = &vecs[i];
		assert_int_equal(verify(&x->ev, x->leaf, x->chain, AT_COMMON, &cache, &res), 0);
		assert_int_equal(verify(&x->ev, x->leaf, x->chain, AT_COMMON, &cache, &res), 0);
		assert_int_equal(res.valid_from, x->from);
		assert_int_equal(res.valid_until, x->until);
	}
	assert_int_equal(cache.hits, nvec);
	assert_int_equal(cache.misses, nvec);
	/* A hit still checks the report: the VLEK report against the cached VCEK. */
	struct vec *g = find_vec("gsg-milan-report.bin");
	struct vec *t = find_vec("trustee-milan-report.bin");
	assert_refused(&t->ev, g->leaf, NULL, AT_COMMON, &cache, "signature does not verify");
	struct vec *l = find_vec("vlek-report.bin");
	assert_refused(&l->ev, l->leaf, l->chain, rfc3339("2026-11-21T00:00:00Z"), &cache,
		       "the VLEK certificate expired on 2025-12-10T22:14:21Z");
	/* Without a chain, only the cache could vouch for the leaf. */
	assert_int_equal(verify(&g->ev, g->leaf, NULL, AT_COMMON, &cache, &res), 0);
	assert_refused(&g->ev, g->leaf, NULL, AT_COMMON, NULL, "the chain has no ASK");
	arca_hw_result_free(&res);
	arca_snp_chain_cache_free(&cache);
}

/* ---- wrong keys and roots ---- */

static void test_invalid_hwid_vceks(void **state)
{
	static const char *const bad[] = { "sev-snp/trustee-vcek-invalid-hwid-legacy.der",
					   "sev-snp/trustee-vcek-invalid-hwid-new.der" };
	STACK_OF(X509) *all = all_roots();
	struct arca_snp_chain_cache cache;
	assert_int_equal(arca_snp_chain_cache_init(&cache), 0);
	for (size_t b = 0; b < 2; b++) {
		X509 *leaf = load_cert(bad[b]);
		for (size_t i = 0; i < nvec; i++) {
			struct vec *x = &vecs[i];
			time_t times[] = { AT_COMMON, x->from + (x->until - x->from) / 2,
					   rfc3339("2027-01-01T00:00:00Z") };
			for (size_t t = 0; t < 3; t++) {
				assert_refused(&x->ev, leaf, all, times[t], &cache, NULL);
				assert_refused(&x->ev, leaf, x->chain, times[t], NULL, NULL);
			}
		}
		/* Its chain is what fails, not only the report. */
		struct arca_errbuf e = { { 0 } };
		assert_int_not_equal(arca_snp_chain_verify(leaf, all, AT_COMMON, NULL, NULL, NULL, &e), 0);
		X509_free(leaf);
	}
	assert_int_equal(cache.hits, 0);
	arca_snp_chain_cache_free(&cache);
	free_chain(all);
}

static void test_other_reports_vcek(void **state)
{
	STACK_OF(X509) *all = all_roots();
	size_t pairs = 0;
	for (size_t i = 0; i < nvec; i++) {
		for (size_t j = 0; j < nvec; j++) {
			X509 *leaf = vec_leaf(&vecs[j]);
			if (i == j || !leaf)
				continue;
			assert_refused(&vecs[i].ev, leaf, all, AT_COMMON, NULL, NULL);
			pairs++;
		}
	}
	assert_true(pairs >= 16);
	/* Same product, same kind: refused for the signature itself. */
	assert_refused(&find_vec("trustee-milan-report.bin")->ev, find_vec("gsg-milan-report.bin")->leaf, all,
		       AT_COMMON, NULL, "signature does not verify with this VCEK");
	/* The VLEK report with a VCEK. */
	assert_refused(&find_vec("vlek-report.bin")->ev, find_vec("gsg-milan-report.bin")->leaf, all, AT_COMMON,
		       NULL, "signed by a VLEK, but the certificate given is a VCEK");
	free_chain(all);
}

static void test_wrong_ark(void **state)
{
	STACK_OF(X509) *genoa = load_chain("roots/amd-genoa-ask-ark.pem");
	STACK_OF(X509) *turin = load_chain("roots/amd-turin-ask-ark.pem");
	STACK_OF(X509) *milan = load_chain("roots/amd-milan-ask-ark.pem");
	for (size_t i = 0; i < nvec; i++) {
		struct vec *x = &vecs[i];
		if (x->ev.form == ARCA_SNP_FORM_TSM)
			continue;
		assert_refused(&x->ev, x->leaf, genoa, AT_COMMON, NULL, "the chain has no");
		assert_refused(&x->ev, x->leaf, turin, AT_COMMON, NULL, "the chain has no");
	}
	/* The VLEK needs the ASVK, not the ASK. */
	struct vec *l = find_vec("vlek-report.bin");
	assert_refused(&l->ev, l->leaf, milan, AT_COMMON, NULL, "the chain has no ASVK");
	/* The Genoa capture without its own certificates, with Milan's. */
	struct vec *t = find_vec("tsm-report.json");
	struct arca_snp_evidence bare = t->ev;
	memset(&bare.certs, 0, sizeof bare.certs);
	assert_refused(&bare, t->ev.certs.vcek, milan, AT_COMMON, NULL, "the chain has no ASK");
	assert_refused(&bare, t->ev.certs.vcek, NULL, AT_COMMON, NULL, "the chain has no ASK");
	assert_refused(&bare, NULL, genoa, AT_COMMON, NULL, "none was given");
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	assert_int_equal(verify(&bare, t->ev.certs.vcek, genoa, AT_COMMON, NULL, &res), 0);
	/* An ASK without its ARK is not enough. */
	X509 *ask = sk_X509_value(genoa, 0);
	STACK_OF(X509) *only_ask = sk_X509_new_null();
	assert_true(sk_X509_push(only_ask, ask) > 0);
	assert_refused(&bare, t->ev.certs.vcek, only_ask, AT_COMMON, NULL, "the chain has no ARK");
	sk_X509_free(only_ask);
	arca_hw_result_free(&res);
	free_chain(genoa);
	free_chain(turin);
	free_chain(milan);
}

/* ---- tampering ---- */

/* Re-parses raw into a copy of ev that shares its certificates. */
static int tampered(const struct vec *x, const uint8_t *raw, struct arca_snp_evidence *out)
{
	struct arca_errbuf e;
	*out = x->ev;
	return arca_snp_parse(raw, ARCA_SNP_REPORT_LEN, &out->report, &e);
}

static void flip_and_refuse(const struct vec *x, size_t byte, unsigned bit, struct arca_snp_chain_cache *cache)
{
	uint8_t raw[ARCA_SNP_REPORT_LEN];
	memcpy(raw, x->ev.report.raw, sizeof raw);
	raw[byte] ^= (uint8_t)(1u << bit);
	struct arca_snp_evidence ev;
	if (tampered(x, raw, &ev) != 0)
		return; /* refused as malformed */
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	if (arca_snp_verify(&ev, x->leaf, x->chain, AT_COMMON, cache, &res) == 0 || res.verified)
		fail_msg("%s with bit %u of byte 0x%03zx flipped verified", x->name, bit, byte);
	arca_hw_result_free(&res);
}

static void test_every_bit_of_one_vector(void **state)
{
	struct vec *x = find_vec("gsg-milan-report.bin");
	struct arca_snp_chain_cache cache;
	assert_int_equal(arca_snp_chain_cache_init(&cache), 0);
	for (size_t byte = 0; byte < ARCA_SNP_SIGNED_LEN; byte++)
		for (unsigned bit = 0; bit < 8; bit++)
			flip_and_refuse(x, byte, bit, &cache);
	/* And in r and s, which the signature does not cover but is. */
	for (size_t byte = ARCA_SNP_SIG_R_OFF; byte < ARCA_SNP_SIG_PAD_OFF; byte++)
		for (unsigned bit = 0; bit < 8; bit++)
			flip_and_refuse(x, byte, bit, &cache);
	assert_true(cache.hits > 1000); /* the chain was checked once, the reports thousands of times */
	arca_snp_chain_cache_free(&cache);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_random_bits_of_the_others(void **state)
{
	struct arca_snp_chain_cache cache;
	assert_int_equal(arca_snp_chain_cache_init(&cache), 0);
	for (size_t i = 0; i < nvec; i++) {
		/* One bit in every byte of each, and 256 more at random. */
		for (size_t byte = 0; byte < ARCA_SNP_SIGNED_LEN; byte++)
			flip_and_refuse(&vecs[i], byte, (unsigned)(next_rand() % 8), &cache);
		for (int k = 0; k < 256; k++) {
			uint64_t r = next_rand();
			flip_and_refuse(&vecs[i], (size_t)(r % ARCA_SNP_SIG_PAD_OFF), (unsigned)(r >> 32) % 8, &cache);
		}
	}
	arca_snp_chain_cache_free(&cache);
}

/* The unsigned rest of the signature field, and bytes after the report,
 * are padding: changing them does not make a good report bad. */
static void test_padding_not_refused(void **state)
{
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	for (size_t i = 0; i < nvec; i++) {
		struct vec *x = &vecs[i];
		assert_int_equal(x->ev.report.padding_nonzero, 0);
		uint8_t raw[ARCA_SNP_REPORT_LEN];
		memcpy(raw, x->ev.report.raw, sizeof raw);
		memset(raw + ARCA_SNP_SIG_PAD_OFF, 0xa5, ARCA_SNP_REPORT_LEN - ARCA_SNP_SIG_PAD_OFF);
		struct arca_snp_evidence ev;
		assert_int_equal(tampered(x, raw, &ev), 0);
		assert_int_equal(ev.report.padding_nonzero, 1);
		if (verify(&ev, x->leaf, x->chain, AT_COMMON, NULL, &res) != 0)
			fail_msg("%s with changed padding refused: %s", x->name, res.reason);
		json_t *want = json_object_get(x->exp, "measurement");
		assert_true(json_equal(json_object_get(res.fields, "measurement"), want));
	}

	/* Bytes after the report in the raw and hex forms. */
	struct vec *g = find_vec("gsg-milan-report.bin");
	uint8_t big[ARCA_SNP_REPORT_LEN + 100];
	memcpy(big, g->bytes.p, ARCA_SNP_REPORT_LEN);
	memset(big + ARCA_SNP_REPORT_LEN, 0x5a, 100);
	struct arca_snp_evidence ev;
	load_ev(big, sizeof big, &ev);
	assert_int_equal(ev.trailing, 100);
	assert_int_equal(verify(&ev, g->leaf, g->chain, AT_COMMON, NULL, &res), 0);
	arca_snp_evidence_free(&ev);

	struct vec *h = find_vec("virtee-milan-report.hex");
	struct arca_buf hx;
	arca_buf_init(&hx, 0, 0);
	assert_int_equal(arca_buf_append(&hx, h->bytes.p, h->bytes.len), 0);
	assert_int_equal(arca_buf_appends(&hx, "00ff00ff\r\n"), 0);
	load_ev(hx.p, hx.len, &ev);
	assert_int_equal(ev.form, ARCA_SNP_FORM_HEX);
	assert_int_equal(ev.trailing, 4);
	assert_int_equal(verify(&ev, h->leaf, h->chain, AT_COMMON, NULL, &res), 0);
	arca_snp_evidence_free(&ev);
	arca_buf_free(&hx);
	arca_hw_result_free(&res);
}

/* ---- the parser's strictness ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int parse_with(const uint8_t *base, size_t off, uint32_t v, size_t width, struct arca_errbuf *e)
{
	uint8_t raw[ARCA_SNP_REPORT_LEN];
	memcpy(raw, base, sizeof raw);
	if (width == 4)
		put32(raw + off, v);
	else
		raw[off] = (uint8_t)v;
	struct arca_snp_report r;
	return arca_snp_parse(raw, sizeof raw, &r, e);
}

static void test_parse_strict(void **state)
{
	const uint8_t *v2 = find_vec("gsg-milan-report.bin")->ev.report.raw;
	const uint8_t *v3 = find_vec("vlek-report.bin")->ev.report.raw;
	struct arca_errbuf e = { { 0 } };
	struct arca_snp_report r;
	assert_int_equal(arca_snp_parse(v2, ARCA_SNP_REPORT_LEN, &r, &e), 0);
	assert_int_equal(r.version, 2);
	assert_int_equal(arca_snp_parse(v3, ARCA_SNP_REPORT_LEN, &r, &e), 0);
	assert_int_equal(r.cpuid_fam_id, 0x19);
	assert_int_equal(r.cpuid_mod_id, 0x01);
	assert_int_equal(r.cpuid_step, 0x01);
	assert_int_not_equal(arca_snp_parse(v2, ARCA_SNP_REPORT_LEN - 1, &r, &e), 0);
	assert_int_not_equal(arca_snp_parse(v2, 0, &r, &e), 0);

	assert_int_equal(parse_with(v2, 0x00, 1, 4, &e), ARCA_EUNSUPPORTED);
	assert_int_equal(parse_with(v2, 0x00, 4, 4, &e), ARCA_EUNSUPPORTED);
	assert_int_equal(parse_with(v2, 0x00, 5, 4, &e), ARCA_EUNSUPPORTED);
	assert_non_null(strstr(e.msg, "version 5"));
	assert_int_equal(parse_with(v2, 0x30, 4, 4, &e), ARCA_EPARSE);         /* VMPL */
	assert_int_equal(parse_with(v2, 0x34, 2, 4, &e), ARCA_EUNSUPPORTED);   /* signature algorithm */
	assert_int_equal(parse_with(v2, 0x48, 7 << 2, 4, &e), ARCA_EUNSUPPORTED); /* no signing key */
	assert_int_equal(parse_with(v2, 0x48, 2 << 2, 4, &e), ARCA_EPARSE);    /* reserved key */
	assert_int_equal(parse_with(v2, 0x48, 1 << 5, 4, &e), ARCA_EPARSE);    /* reserved bit */
	assert_int_equal(parse_with(v2, 0x4c, 1, 4, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x188, 0x19, 1, &e), ARCA_EPARSE);     /* CPUID is reserved in v2 */
	assert_int_equal(parse_with(v3, 0x18b, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x1eb, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x1ef, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x1f8, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x29f, 1, 1, &e), ARCA_EPARSE);
	assert_non_null(strstr(e.msg, "0x1f8-0x29f"));
	/* The unused upper bytes of r and s. */
	assert_int_equal(parse_with(v2, 0x2a0 + 48, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x2e7, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x2e8 + 48, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x32f, 1, 1, &e), ARCA_EPARSE);
	assert_int_equal(parse_with(v2, 0x330, 1, 1, &e), 0);
	assert_int_equal(parse_with(v2, 0x49f, 1, 1, &e), 0);
}

static void test_forms_refused(void **state)
{
	struct arca_snp_evidence ev;
	struct arca_errbuf e = { { 0 } };
	struct vec *h = find_vec("virtee-milan-report.hex");
	/* Hex: odd, junk after, too short. */
	struct arca_buf b;
	arca_buf_init(&b, 0, 0);
	assert_int_equal(arca_buf_append(&b, h->bytes.p, h->bytes.len), 0);
	assert_int_equal(arca_buf_appends(&b, "0"), 0);
	assert_int_equal(arca_snp_load_any(b.p, b.len, &ev, &e), ARCA_EPARSE);
	arca_buf_truncate(&b, h->bytes.len);
	assert_int_equal(arca_buf_appends(&b, "\nx"), 0);
	assert_int_equal(arca_snp_load_any(b.p, b.len, &ev, &e), ARCA_EPARSE);
	assert_int_not_equal(arca_snp_load_any(h->bytes.p, h->bytes.len - 2, &ev, &e), 0);
	arca_buf_free(&b);
	/* Raw: short. */
	struct vec *g = find_vec("gsg-milan-report.bin");
	assert_int_equal(arca_snp_load_any(g->bytes.p, 1183, &ev, &e), ARCA_EPARSE);
	assert_int_equal(arca_snp_load_any(g->bytes.p, 0, &ev, &e), ARCA_EPARSE);

	/* TSM captures. */
	struct vec *t = find_vec("tsm-report.json");
	json_t *root = json_loadb((const char *)t->bytes.p, t->bytes.len, 0, NULL);
	assert_non_null(root);
	struct {
		const char *key;
		json_t *value; /* NULL: delete */
		int rc;
		const char *why;
	} cases[] = {
		{ "outblob", NULL, ARCA_EPARSE, "no outblob" },
		{ "provider", NULL, ARCA_EPARSE, "no provider" },
		{ "provider", json_string("tdx_guest\n"), ARCA_EUNSUPPORTED, "not sev_guest" },
		{ "provider", json_integer(1), ARCA_EPARSE, "no provider" },
		{ "outblob", json_integer(1), ARCA_EPARSE, "not a string" },
		{ "outblob", json_string("AAAA"), ARCA_EPARSE, "a report is 1184" },
		{ "outblob", json_string("A"), ARCA_EPARSE, "base64url" },
		{ "auxblob", json_string("AAAA"), ARCA_EPARSE, "terminating" },
		{ "auxblob", json_string("+/+/"), ARCA_EPARSE, "base64url" },
		{ "extra", json_string(""), ARCA_EPARSE, "does not define" },
		{ "generation", json_integer(3), 0, NULL },
		{ "auxblob", NULL, 0, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *c = json_deep_copy(root);
		if (cases[i].value)
			json_object_set_new(c, cases[i].key, cases[i].value);
		else
			json_object_del(c, cases[i].key);
		char *s = json_dumps(c, 0);
		int rc = arca_snp_load_any((const uint8_t *)s, strlen(s), &ev, &e);
		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d, want %d (%s)", i, cases[i].key, rc, cases[i].rc, e.msg);
		if (cases[i].why && !strstr(e.msg, cases[i].why))
			fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, e.msg, cases[i].why);
		if (rc == 0)
			arca_snp_evidence_free(&ev);
		free(s);
		json_decref(c);
	}
	/* Padded base64 is not what configfs-tsm captures hold. */
	const char *ob = json_string_value(json_object_get(root, "outblob"));
	struct arca_buf padded;
	arca_buf_init(&padded, 0, 0);
	assert_int_equal(arca_buf_appends(&padded, ob), 0);
	assert_int_equal(arca_buf_appends(&padded, "="), 0);
	json_t *c = json_deep_copy(root);
	json_object_set_new(c, "outblob", json_string(arca_buf_str(&padded)));
	char *s = json_dumps(c, 0);
	assert_int_equal(arca_snp_load_any((const uint8_t *)s, strlen(s), &ev, &e), ARCA_EPARSE);
	free(s);
	json_decref(c);
	arca_buf_free(&padded);
	/* Duplicate keys, and not an object. */
	const char dup[] = "{\"outblob\": \"\", \"outblob\": \"\", \"provider\": \"sev_guest\"}";
	assert_int_equal(arca_snp_load_any((const uint8_t *)dup, sizeof dup - 1, &ev, &e), ARCA_EPARSE);
	const char arr[] = " [1]";
	assert_int_equal(arca_snp_load_any((const uint8_t *)arr, sizeof arr - 1, &ev, &e), ARCA_EPARSE);
	json_decref(root);
}

/* ---- the certificate table ---- */

static void put_entry(uint8_t *p, const uint8_t guid[16], uint32_t off, uint32_t len)
{
	memcpy(p, guid, 16);
	put32(p + 16, off);
	put32(p + 20, len);
}

static void test_certtable(void **state)
{
	struct vec *t = find_vec("tsm-report.json");
	json_t *root = json_loadb((const char *)t->bytes.p, t->bytes.len, 0, NULL);
	const char *ab = json_string_value(json_object_get(root, "auxblob"));
	size_t cap = strlen(ab), n = 0;
	uint8_t *aux = malloc(cap);
	assert_int_equal(arca_b64url_decode(ab, strlen(ab), aux, cap, &n), 0);
	json_decref(root);

	struct arca_snp_certs c;
	struct arca_errbuf e = { { 0 } };
	assert_int_equal(arca_snp_certtable_parse(aux, n, &c, &e), 0);
	assert_non_null(c.ark);
	assert_non_null(c.ask);
	assert_non_null(c.vcek);
	assert_null(c.vlek);
	/* The ARK the host sent is AMD's Genoa ARK. */
	uint8_t h[32];
	unsigned hl;
	assert_int_equal(X509_digest(c.ark, EVP_sha256(), h, &hl), 1);
	assert_memory_equal(h, arca_snp_ark_sha256(ARCA_SNP_GENOA), 32);
	arca_snp_certs_free(&c);

	uint8_t *m = malloc(n);
	const uint8_t zero[16] = { 0 };
	const uint8_t *ark_guid = aux, *ask_guid = aux + 24, *vcek_guid = aux + 48;
	uint8_t guids[3][16];
	memcpy(guids[0], ark_guid, 16);
	memcpy(guids[1], ask_guid, 16);
	memcpy(guids[2], vcek_guid, 16);
#define MUTATE(stmt, want, why)                                                      \
	do {                                                                         \
		memcpy(m, aux, n);                                                   \
		stmt;                                                                \
		e.msg[0] = '\0';                                                     \
		const char *why_ = (why);                                            \
		int rc_ = arca_snp_certtable_parse(m, n, &c, &e);                    \
		if (rc_ != (want) || (why_ && !strstr(e.msg, why_)))                 \
			fail_msg("%s: rc %d want %d (%s)", #stmt, rc_, want, e.msg); \
		if (rc_ == 0)                                                        \
			arca_snp_certs_free(&c);                                     \
	} while (0)
	MUTATE((void)0, 0, NULL);
	/* offset at the end, length > 0 */
	MUTATE(put32(m + 16, (uint32_t)n), ARCA_EPARSE, "lies outside");
	/* offset beyond */
	MUTATE(put32(m + 16, 0xfffffff0u), ARCA_EPARSE, "lies outside");
	/* length beyond */
	MUTATE(put32(m + 20, 0xffffffffu), ARCA_EPARSE, "lies outside");
	/* wraps */
	MUTATE((put32(m + 16, 200), put32(m + 20, 0xfffffff0u)), ARCA_EPARSE, "lies outside");
	/* inside the table */
	MUTATE(put32(m + 16, 8), ARCA_EPARSE, "lies outside");
	/* the ARK twice */
	MUTATE(put_entry(m + 24, guids[0], 2373, 2325), ARCA_EPARSE, "the ARK twice");
	/* empty ARK */
	MUTATE(put32(m + 20, 0), ARCA_EPARSE, "ARK entry is 0 bytes");
	/* terminator with a length */
	MUTATE(put32(m + 92, 1), ARCA_EPARSE, "terminating entry");
	/* No terminator left: the certificates' text is read as entries until
	 * the entry limit stops it. */
	MUTATE(put_entry(m + 72, guids[2], 4698, 1879), ARCA_ETOOBIG, "more than 64 entries");
	/* not a certificate */
	MUTATE(put32(m + 16, 97), ARCA_EPARSE, "not one PEM or DER certificate");
	/* unknown GUID: skipped */
	MUTATE(m[48] ^= 1, 0, NULL);
	memcpy(m, aux, n);
	m[48] ^= 1;
	assert_int_equal(arca_snp_certtable_parse(m, n, &c, &e), 0);
	assert_null(c.vcek);
	assert_non_null(c.ask);
	arca_snp_certs_free(&c);
	/* Truncated: no room for the terminator. */
	assert_int_equal(arca_snp_certtable_parse(aux, 80, &c, &e), ARCA_EPARSE);
	assert_int_equal(arca_snp_certtable_parse(aux, 0, &c, &e), ARCA_EPARSE);
	/* An empty table is a table. */
	assert_int_equal(arca_snp_certtable_parse(zero, 16, &c, &e), ARCA_EPARSE);
	uint8_t empty[24] = { 0 };
	assert_int_equal(arca_snp_certtable_parse(empty, sizeof empty, &c, &e), 0);
	assert_null(c.ark);
	/* A DER entry and a VLEK entry. */
	X509 *vlek = load_cert("sev-snp/trustee-milan-vlek.der");
	unsigned char *der = NULL;
	int dl = i2d_X509(vlek, &der);
	assert_true(dl > 0);
	uint8_t *tb = calloc(1, 48 + (size_t)dl);
	static const uint8_t vlek_guid[16] = { 0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
					       0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1 };
	put_entry(tb, vlek_guid, 48, (uint32_t)dl);
	memcpy(tb + 48, der, (size_t)dl);
	assert_int_equal(arca_snp_certtable_parse(tb, 48 + (size_t)dl, &c, &e), 0);
	assert_non_null(c.vlek);
	assert_int_equal(X509_cmp(c.vlek, vlek), 0);
	arca_snp_certs_free(&c);
	put32(tb + 20, (uint32_t)dl - 1); /* DER cut short */
	assert_int_equal(arca_snp_certtable_parse(tb, 48 + (size_t)dl, &c, &e), ARCA_EPARSE);
	free(tb);
	OPENSSL_free(der);
	X509_free(vlek);
	free(m);
	free(aux);
}

/* ---- the leaf's extensions ---- */

static void test_leaf_extensions(void **state)
{
	struct arca_errbuf e = { { 0 } };
	struct arca_snp_leaf li;
	X509 *turin = load_cert("sev-snp/virtee-turin-vcek.der");
	assert_int_equal(arca_snp_leaf_read(turin, &li, &e), 0);
	assert_int_equal(li.kind, ARCA_SNP_KEY_VCEK);
	assert_int_equal(li.product, ARCA_SNP_TURIN);
	assert_string_equal(li.product_name, "Turin");
	assert_int_equal(li.hwid_len, 8);
	static const uint8_t hwid[8] = { 0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d };
	assert_memory_equal(li.hwid, hwid, 8);
	/* FMC 0, boot loader 0, TEE 0, SNP 0, microcode 9. */
	assert_int_equal(li.tcb, 0x0900000000000000ull);

	STACK_OF(X509) *tr = load_chain("roots/amd-turin-ask-ark.pem");
	STACK_OF(X509) *mi = load_chain("roots/amd-milan-ask-ark.pem");
	time_t from, until;
	assert_int_equal(arca_snp_chain_verify(turin, tr, AT_COMMON, &li, &from, &until, &e), 0);
	assert_int_equal(from, rfc3339("2024-11-06T21:14:00Z"));
	assert_int_equal(until, rfc3339("2031-11-06T21:14:00Z"));
	assert_int_not_equal(arca_snp_chain_verify(turin, mi, AT_COMMON, &li, &from, &until, &e), 0);
	X509_free(turin);

	X509 *g = find_vec("gsg-milan-report.bin")->leaf;
	assert_int_equal(arca_snp_leaf_read(g, &li, &e), 0);
	assert_int_equal(li.product, ARCA_SNP_MILAN);
	assert_string_equal(li.product_name, "Milan-B0");
	assert_int_equal(li.tcb, 0x4405000000000002ull);
	assert_int_equal(li.hwid_len, 64);
	X509 *l = find_vec("vlek-report.bin")->leaf;
	assert_int_equal(arca_snp_leaf_read(l, &li, &e), 0);
	assert_int_equal(li.kind, ARCA_SNP_KEY_VLEK);
	assert_int_equal(li.tcb, 0xd918000000000004ull);
	X509 *n = load_cert("sev-snp/trustee-vcek-invalid-hwid-new.der");
	assert_int_equal(arca_snp_leaf_read(n, &li, &e), 0);
	assert_int_equal(li.hwid_len, 66);
	X509_free(n);
	/* An ASK is not a signing key. */
	assert_int_not_equal(arca_snp_leaf_read(sk_X509_value(mi, 0), &li, &e), 0);
	assert_non_null(strstr(e.msg, "neither a VCEK nor a VLEK"));
	free_chain(tr);
	free_chain(mi);
}

static void test_bindings(void **state)
{
	struct arca_errbuf e = { { 0 } };
	struct vec *g = find_vec("gsg-milan-report.bin");
	struct arca_snp_leaf li;
	assert_int_equal(arca_snp_leaf_read(g->leaf, &li, &e), 0);
	struct arca_snp_report r = g->ev.report;
	assert_int_equal(arca_snp_check_bindings(&r, &li, &e), 0);
	struct arca_snp_leaf bad = li;
	bad.tcb ^= 1;
	assert_int_equal(arca_snp_check_bindings(&r, &bad, &e), ARCA_EDENIED);
	assert_non_null(strstr(e.msg, "reported_tcb"));
	bad = li;
	bad.hwid[63] ^= 1;
	assert_int_equal(arca_snp_check_bindings(&r, &bad, &e), ARCA_EDENIED);
	assert_non_null(strstr(e.msg, "chip_id"));
	/* chip_id all zero (MASK_CHIP_ID): no comparison. */
	memset(r.chip_id, 0, sizeof r.chip_id);
	assert_int_equal(arca_snp_check_bindings(&r, &bad, &e), 0);
	/* A 66-byte hwID never matches. */
	r = g->ev.report;
	bad = li;
	bad.hwid_len = 66;
	assert_int_equal(arca_snp_check_bindings(&r, &bad, &e), ARCA_EDENIED);
	/* Turin: 8-byte hwID, zero-extended in chip_id, family 1Ah, its own layout. */
	struct arca_snp_leaf tu = { .kind = ARCA_SNP_KEY_VCEK, .product = ARCA_SNP_TURIN, .tcb = 0x0900000000000000ull,
				    .hwid_len = 8 };
	memcpy(tu.hwid, "\x1e\x55\x0a\x8e\xe5\xcf\x9f\x4d", 8);
	memset(&r, 0, sizeof r);
	r.version = 3;
	r.cpuid_fam_id = 0x1a;
	r.reported_tcb = tu.tcb;
	memcpy(r.chip_id, tu.hwid, 8);
	assert_int_equal(arca_snp_check_bindings(&r, &tu, &e), 0);
	r.chip_id[8] = 1;
	assert_int_equal(arca_snp_check_bindings(&r, &tu, &e), ARCA_EDENIED);
	r.chip_id[8] = 0;
	r.cpuid_fam_id = 0x19;
	assert_int_equal(arca_snp_check_bindings(&r, &tu, &e), ARCA_EDENIED);
	assert_non_null(strstr(e.msg, "family"));
	/* A VLEK has no hwID to compare. */
	struct vec *l = find_vec("vlek-report.bin");
	assert_int_equal(arca_snp_leaf_read(l->leaf, &li, &e), 0);
	r = l->ev.report;
	r.chip_id[0] = 1;
	assert_int_equal(arca_snp_check_bindings(&r, &li, &e), 0);
}

/* ---- a chain of our own: parameters, the pin, and the whole path ---- */

enum sigvar { SIG_GOOD, SIG_SALT32, SIG_SHA256, SIG_MGF256, SIG_PKCS1 };

static void sign_cert(X509 *x, EVP_PKEY *key, enum sigvar v)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, v == SIG_SHA256 ? EVP_sha256() : EVP_sha384(), NULL, key), 1);
	if (v != SIG_PKCS1) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, v == SIG_SALT32 ? 32 : 48) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, v == SIG_MGF256 || v == SIG_SHA256 ? EVP_sha256()
												 : EVP_sha384()) > 0);
	}
	assert_true(X509_sign_ctx(x, ctx) > 0);
	EVP_MD_CTX_free(ctx);
}

static X509 *make_cert(X509 *like, EVP_PKEY *pub, int ca, X509 *exts_from)
{
	X509 *x = X509_new();
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_int_equal(X509_set_subject_name(x, X509_get_subject_name(like)), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_issuer_name(like)), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), rfc3339("2020-01-01T00:00:00Z")));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), rfc3339("2040-01-01T00:00:00Z")));
	assert_int_equal(X509_set_pubkey(x, pub), 1);
	if (ca) {
		X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
		X509_EXTENSION *ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,keyCertSign");
		assert_int_equal(X509_add_ext(x, bc, -1), 1);
		assert_int_equal(X509_add_ext(x, ku, -1), 1);
		X509_EXTENSION_free(bc);
		X509_EXTENSION_free(ku);
	}
	for (int i = 0; exts_from && i < X509_get_ext_count(exts_from); i++)
		assert_int_equal(X509_add_ext(x, X509_get_ext(exts_from, i), -1), 1);
	return x;
}

static void sign_report(uint8_t *raw, EVP_PKEY *key)
{
	uint8_t der[160];
	size_t dl = sizeof der;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &dl, raw, ARCA_SNP_SIGNED_LEN), 1);
	EVP_MD_CTX_free(ctx);
	const unsigned char *q = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)dl);
	assert_non_null(sig);
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(sig, &r, &s);
	memset(raw + ARCA_SNP_SIG_R_OFF, 0, 2 * ARCA_SNP_SIG_COMPONENT_LEN);
	assert_true(BN_bn2lebinpad(r, raw + ARCA_SNP_SIG_R_OFF, 72) == 72);
	assert_true(BN_bn2lebinpad(s, raw + ARCA_SNP_SIG_S_OFF, 72) == 72);
	ECDSA_SIG_free(sig);
}

struct fake {
	EVP_PKEY *ark_key, *ask_key, *vcek_key;
	X509 *ark, *ask, *vcek;
	STACK_OF(X509) *chain;
};

/* A chain shaped exactly like AMD's Milan chain (same names, the gsg
 * VCEK's extensions), under keys of our own; ask_sig / leaf_sig choose how
 * the ASK and the VCEK are signed. */
static void make_fake(struct fake *f, enum sigvar ask_sig, enum sigvar leaf_sig, int ask_is_ca)
{
	STACK_OF(X509) *milan = load_chain("roots/amd-milan-ask-ark.pem");
	X509 *real_ask = sk_X509_value(milan, 0), *real_ark = sk_X509_value(milan, 1);
	X509 *real_vcek = find_vec("gsg-milan-report.bin")->leaf;
	f->ark_key = EVP_RSA_gen(2048);
	f->ask_key = EVP_RSA_gen(2048);
	f->vcek_key = EVP_EC_gen("secp384r1");
	assert_non_null(f->ark_key);
	assert_non_null(f->ask_key);
	assert_non_null(f->vcek_key);
	f->ark = make_cert(real_ark, f->ark_key, 1, NULL);
	sign_cert(f->ark, f->ark_key, SIG_GOOD);
	f->ask = make_cert(real_ask, f->ask_key, ask_is_ca, NULL);
	sign_cert(f->ask, f->ark_key, ask_sig);
	f->vcek = make_cert(real_vcek, f->vcek_key, 0, real_vcek);
	sign_cert(f->vcek, f->ask_key, leaf_sig);
	f->chain = sk_X509_new_null();
	assert_true(sk_X509_push(f->chain, f->ask) > 0);
	assert_true(sk_X509_push(f->chain, f->ark) > 0);
	free_chain(milan);
}

static void free_fake(struct fake *f)
{
	sk_X509_free(f->chain);
	X509_free(f->ark);
	X509_free(f->ask);
	X509_free(f->vcek);
	EVP_PKEY_free(f->ark_key);
	EVP_PKEY_free(f->ask_key);
	EVP_PKEY_free(f->vcek_key);
}

static void fake_report(const struct fake *f, void (*edit)(uint8_t *), struct arca_snp_evidence *ev)
{
	struct vec *g = find_vec("gsg-milan-report.bin");
	uint8_t raw[ARCA_SNP_REPORT_LEN];
	memcpy(raw, g->ev.report.raw, sizeof raw);
	if (edit)
		edit(raw);
	sign_report(raw, f->vcek_key);
	load_ev(raw, sizeof raw, ev);
}

static void test_fake_chain_refused(void **state)
{
	struct {
		enum sigvar ask, leaf;
		int ca;
		const char *why;
	} cases[] = {
		{ SIG_GOOD, SIG_GOOD, 1, "is not AMD's Milan ARK pinned in arca" },
		{ SIG_SALT32, SIG_GOOD, 1, "the ASK certificate's RSA-PSS salt length is 32" },
		{ SIG_SHA256, SIG_GOOD, 1, "the ASK certificate's RSA-PSS hash is not SHA-384" },
		{ SIG_MGF256, SIG_GOOD, 1, "the ASK certificate's RSA-PSS mask generation is not MGF1 with SHA-384" },
		{ SIG_PKCS1, SIG_GOOD, 1, "the ASK certificate is not signed with RSA-PSS" },
		{ SIG_GOOD, SIG_SALT32, 1, "the VCEK certificate's RSA-PSS salt length is 32" },
		{ SIG_GOOD, SIG_GOOD, 0, "the ASK certificate is not a CA certificate" },
	};
	STACK_OF(X509) *milan = load_chain("roots/amd-milan-ask-ark.pem");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fake f;
		make_fake(&f, cases[i].ask, cases[i].leaf, cases[i].ca);
		struct arca_snp_evidence ev;
		fake_report(&f, NULL, &ev);
		assert_refused(&ev, f.vcek, f.chain, AT_COMMON, NULL, cases[i].why);
		if (i == 0) {
			/* With AMD's real ASK and ARK, the fake VCEK's signature fails. */
			assert_refused(&ev, f.vcek, milan, AT_COMMON, NULL,
				       "the VCEK certificate's signature by the ASK does not verify");
			/* AMD's ARK and our ASK: the ASK's signature fails. */
			STACK_OF(X509) *mix = sk_X509_new_null();
			assert_true(sk_X509_push(mix, f.ask) > 0);
			assert_true(sk_X509_push(mix, sk_X509_value(milan, 1)) > 0);
			assert_refused(&ev, f.vcek, mix, AT_COMMON, NULL,
				       "the ASK certificate's signature by the ARK does not verify");
			sk_X509_free(mix);
		}
		arca_snp_evidence_free(&ev);
		free_fake(&f);
	}
	free_chain(milan);
}

static void set_tcb(uint8_t *raw) { raw[0x180] ^= 1; }
static void set_chip(uint8_t *raw) { raw[0x1a0] ^= 1; }
static void zero_chip(uint8_t *raw) { memset(raw + 0x1a0, 0, 64); }
static void set_vlek(uint8_t *raw) { raw[0x48] = 1 << 2; }
static void set_v3_turin(uint8_t *raw)
{
	raw[0] = 3;
	raw[0x188] = 0x1a;
}

/* A chain the cache vouches for (as if verified before) carries a report
 * through the rest of arca_snp_verify: signature conversion and bindings. */
static void test_path_after_the_chain(void **state)
{
	struct fake f;
	make_fake(&f, SIG_GOOD, SIG_GOOD, 1);
	struct arca_snp_chain_cache cache;
	assert_int_equal(arca_snp_chain_cache_init(&cache), 0);
	struct arca_snp_cache_entry *s = &cache.slot[0];
	unsigned hl;
	struct arca_errbuf e;
	s->used = 1;
	assert_int_equal(X509_digest(f.vcek, EVP_sha256(), s->leaf_sha256, &hl), 1);
	assert_int_equal(arca_snp_leaf_read(f.vcek, &s->info, &e), 0);
	s->valid_from = rfc3339("2020-01-01T00:00:00Z");
	s->valid_until = rfc3339("2040-01-01T00:00:00Z");

	struct arca_hw_result res;
	arca_hw_result_init(&res);
	struct arca_snp_evidence ev;
	fake_report(&f, NULL, &ev);
	if (verify(&ev, f.vcek, NULL, AT_COMMON, &cache, &res) != 0)
		fail_msg("refused: %s", res.reason);
	/* Outside the cached window the chain is checked again, and fails. */
	assert_refused(&ev, f.vcek, f.chain, rfc3339("2041-01-01T00:00:00Z"), &cache, "pinned");
	arca_snp_evidence_free(&ev);

	struct {
		void (*edit)(uint8_t *);
		int ok;
		const char *why;
	} cases[] = {
		{ set_tcb, 0, "reported_tcb" },
		{ set_chip, 0, "chip_id is not the VCEK's hwID" },
		{ zero_chip, 1, NULL },
		{ set_vlek, 0, "signed by a VLEK" },
		{ set_v3_turin, 0, "family 0x1a" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fake_report(&f, cases[i].edit, &ev);
		if (cases[i].ok)
			assert_int_equal(verify(&ev, f.vcek, NULL, AT_COMMON, &cache, &res), 0);
		else
			assert_refused(&ev, f.vcek, NULL, AT_COMMON, &cache, cases[i].why);
		arca_snp_evidence_free(&ev);
	}
	/* A high-s or out-of-range signature is refused, not reduced. */
	fake_report(&f, NULL, &ev);
	memset(ev.report.raw + ARCA_SNP_SIG_R_OFF, 0xff, 48);
	assert_refused(&ev, f.vcek, NULL, AT_COMMON, &cache, "signature does not verify");
	memset(ev.report.raw + ARCA_SNP_SIG_R_OFF, 0, 48);
	assert_refused(&ev, f.vcek, NULL, AT_COMMON, &cache, "signature does not verify");
	arca_snp_evidence_free(&ev);
	arca_hw_result_free(&res);
	arca_snp_chain_cache_free(&cache);
	free_fake(&f);
}

static void test_hw_result_lifecycle(void **state)
{
	struct arca_hw_result r;
	arca_hw_result_init(&r);
	assert_null(r.fields);
	assert_int_equal(r.verified, 0);
	r.fields = json_object();
	arca_hw_result_free(&r);
	assert_null(r.fields);
	arca_hw_result_free(&r); /* twice is harmless */
	arca_hw_result_free(NULL);
}

int main(void)
{
	vdir = getenv("ARCA_VECTORS");
	char path[1024];
	if (!vdir || !*vdir) {
		fprintf(stderr, "SKIP: ARCA_VECTORS is not set\n");
		return 77;
	}
	snprintf(path, sizeof path, "%s/expected.json", vdir);
	json_error_t jerr;
	expected = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!expected) {
		fprintf(stderr, "SKIP: cannot read %s: %s\n", path, jerr.text);
		return 77;
	}
	load_vectors();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_verify),
		cmocka_unit_test(test_forms_detected),
		cmocka_unit_test(test_vlek_expired_today),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_invalid_hwid_vceks),
		cmocka_unit_test(test_other_reports_vcek),
		cmocka_unit_test(test_wrong_ark),
		cmocka_unit_test(test_every_bit_of_one_vector),
		cmocka_unit_test(test_random_bits_of_the_others),
		cmocka_unit_test(test_padding_not_refused),
		cmocka_unit_test(test_parse_strict),
		cmocka_unit_test(test_forms_refused),
		cmocka_unit_test(test_certtable),
		cmocka_unit_test(test_leaf_extensions),
		cmocka_unit_test(test_bindings),
		cmocka_unit_test(test_fake_chain_refused),
		cmocka_unit_test(test_path_after_the_chain),
		cmocka_unit_test(test_hw_result_lifecycle),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	free_vectors();
	json_decref(expected);
	return failed ? 1 : 0;
}
