/* test_evidence_hw.c: the hardware envelope arca-las sends from a
 * confidential VM, as CAS meets it: the format (known answer, round trip,
 * every kind of malformed input), real SEV-SNP and TDX evidence whose
 * signatures verify but whose report data cannot be our binding (refused
 * for the binding, whatever the date), the whole path with a report that
 * does carry the binding (a chain the cache vouches for, as in
 * test_snp.c), and every platform constraint a session can name. Exits 77
 * when $ARCA_VECTORS is not there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/policy.h"
#include "arca/x509.h"

static const char *vdir;

/* 2026-01-01T00:00:00Z: inside the Genoa capture's window (2025-04-20 ..
 * 2032-04-20) and trustee-quote-4's (2023-02-07 .. 2030-02-07). */
#define AT_INSIDE ((time_t)1767225600)
/* 2040-01-01: after both. */
#define AT_AFTER ((time_t)2208988800)

#define MEAS "sha256:a172cedcae47474b615c54d510a5d84a8dea3032e958587430b413538be3f333"

/* ---- helpers ---- */

static void readfile(const char *rel, struct arca_buf *b)
{
	char path[1024];
	struct arca_errbuf e = {{0}};
	snprintf(path, sizeof path, "%s/%s", vdir, rel);
	arca_buf_init(b, 0, 0);
	if (arca_read_file(path, 1 << 20, b, &e) != 0)
		fail_msg("cannot read %s: %s", path, e.msg);
}

static void b64url_field(json_t *o, const char *k, struct arca_buf *out)
{
	const char *s = json_string_value(json_object_get(o, k));
	assert_non_null(s);
	size_t n = strlen(s), got = 0;
	arca_buf_init(out, 0, 0);
	assert_int_equal(arca_buf_reserve(out, n), 0);
	assert_int_equal(arca_b64url_decode(s, n, out->p, n, &got), 0);
	out->len = got;
}

/* The Genoa configfs-tsm capture: outblob, auxblob, provider. */
struct capture {
	struct arca_buf out, aux;
	char provider[32];
};

static void load_genoa(struct capture *c)
{
	struct arca_buf b;
	readfile("sev-snp/veraison-genoa-tsm-report.json", &b);
	json_error_t je;
	json_t *j = json_loadb((const char *)b.p, b.len, 0, &je);
	assert_non_null(j);
	b64url_field(j, "outblob", &c->out);
	b64url_field(j, "auxblob", &c->aux);
	snprintf(c->provider, sizeof c->provider, "%s", json_string_value(json_object_get(j, "provider")));
	json_decref(j);
	arca_buf_free(&b);
}

static void free_capture(struct capture *c)
{
	arca_buf_free(&c->out);
	arca_buf_free(&c->aux);
}

static void fill_header(struct arca_hw_envelope *env, uint32_t platform)
{
	memset(env, 0, sizeof *env);
	env->platform = platform;
	env->timestamp = 0x0102030405060708ull;
	env->pid = 4242;
	env->uid = 1000;
	for (int i = 0; i < 32; i++)
		env->measurement[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		env->report_data[i] = (uint8_t)(0x40 + i);
}

static void wrap(uint32_t platform, const uint8_t *rep, size_t rn, const uint8_t *aux, size_t an, const char *prov,
		 struct arca_buf *out)
{
	struct arca_hw_envelope env;
	struct arca_errbuf e = {{0}};
	fill_header(&env, platform);
	env.report = rep;
	env.report_len = rn;
	env.aux = aux;
	env.aux_len = an;
	env.provider = (const uint8_t *)prov;
	env.provider_len = strlen(prov);
	arca_buf_init(out, 0, 0);
	if (arca_hw_envelope_encode(&env, out, &e) != 0)
		fail_msg("encode: %s", e.msg);
}

static struct arca_policy *policy(const char *platform_yaml)
{
	char y[4096];
	struct arca_diags ds;
	struct arca_policy *p = NULL;
	snprintf(y, sizeof y,
		 "name: s\nservices:\n  - name: api\n    command: [/bin/true]\n    measurement: " MEAS
		 "\n    platform:\n%s",
		 platform_yaml);
	arca_diags_init(&ds, "t.yaml");
	if (arca_policy_parse(y, strlen(y), &ds, &p) != 0) {
		struct arca_buf b;
		arca_buf_init(&b, 0, 0);
		if (arca_diags_format(&ds, &b) == 0)
			fail_msg("policy refused:\n%s%s", arca_buf_str(&b), y);
	}
	return p;
}

/* ---- the format ---- */

static const char binding_kat[] = "88bb91b8183dd8be01e17704579cdb5e32f6ab8cca994c8d3750a549c322ed02"
				   "bb7fa552a6b4c170147fa9bcd1dcd8b96be269437aec2cac2f5ec012f2fa6bc7";

static void test_header_and_binding_known_answer(void **state)
{
	(void)state;
	struct arca_hw_envelope env;
	uint8_t hdr[ARCA_HW_HEADER_LEN], b[64];
	char hex[ARCA_HEX_LEN(64)];
	fill_header(&env, ARCA_HW_PLATFORM_SEV_SNP);
	assert_int_equal(arca_hw_header_encode(&env, hdr), 0);
	assert_memory_equal(hdr, "ARCAHW01\x02\0\0\0\0\0\0\0\x08\x07\x06\x05\x04\x03\x02\x01\x92\x10\0\0\xe8\x03\0\0", 32);
	assert_int_equal(hdr[32], 0);
	assert_int_equal(hdr[63], 31);
	assert_int_equal(hdr[64], 0x40);
	assert_int_equal(hdr[127], 0x7f);
	/* SHA-512("arca-las-hw-v1" || header), computed with Python's hashlib */
	assert_int_equal(arca_hw_binding(hdr, b), 0);
	arca_hex_encode(b, 64, hex);
	assert_string_equal(hex, binding_kat);
	/* platforms other than the two hardware ones have no header */
	env.platform = 1;
	assert_int_equal(arca_hw_header_encode(&env, hdr), ARCA_EINVAL);
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t rep[ARCA_SNP_REPORT_LEN], aux[300];
	for (size_t i = 0; i < sizeof rep; i++)
		rep[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < sizeof aux; i++)
		aux[i] = (uint8_t)(i * 13);
	struct arca_buf b;
	wrap(ARCA_HW_PLATFORM_SEV_SNP, rep, sizeof rep, aux, sizeof aux, "sev_guest\n", &b);
	assert_int_equal(b.len, 128 + 4 + sizeof rep + 4 + sizeof aux + 4 + 10);
	struct arca_hw_envelope env;
	struct arca_errbuf e = {{0}};
	assert_int_equal(arca_hw_envelope_parse(b.p, b.len, &env, &e), 0);
	assert_int_equal(env.platform, 2);
	assert_int_equal(env.timestamp, 0x0102030405060708ull);
	assert_int_equal(env.pid, 4242);
	assert_int_equal(env.uid, 1000);
	assert_int_equal(env.measurement[31], 31);
	assert_int_equal(env.report_data[0], 0x40);
	assert_int_equal(env.report_len, sizeof rep);
	assert_ptr_equal(env.report, b.p + 132);
	assert_memory_equal(env.report, rep, sizeof rep);
	assert_int_equal(env.aux_len, sizeof aux);
	assert_memory_equal(env.aux, aux, sizeof aux);
	assert_int_equal(env.provider_len, 10);
	assert_memory_equal(env.provider, "sev_guest\n", 10);
	assert_string_equal(arca_evidence_platform(b.p, b.len), "sev-snp");

	/* encoding what was parsed gives the same bytes */
	struct arca_buf again;
	arca_buf_init(&again, 0, 0);
	assert_int_equal(arca_hw_envelope_encode(&env, &again, &e), 0);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.p, b.p, b.len);
	arca_buf_free(&again);
	arca_buf_free(&b);

	/* the flag is carried, and covered by the binding */
	{
		struct arca_hw_envelope fe;
		uint8_t h0[ARCA_HW_HEADER_LEN], h1[ARCA_HW_HEADER_LEN], b0[64], b1[64];
		fill_header(&fe, ARCA_HW_PLATFORM_SEV_SNP);
		assert_int_equal(arca_hw_header_encode(&fe, h0), 0);
		fe.flags = ARCA_HW_FLAG_PTRACE_PROTECTED;
		assert_int_equal(arca_hw_header_encode(&fe, h1), 0);
		assert_int_equal(h1[12], 1);
		assert_int_equal(arca_hw_binding(h0, b0), 0);
		assert_int_equal(arca_hw_binding(h1, b1), 0);
		assert_memory_not_equal(b0, b1, 64);
		fe.report = rep;
		fe.report_len = sizeof rep;
		fe.provider = (const uint8_t *)"sev_guest";
		fe.provider_len = 9;
		struct arca_buf fb;
		arca_buf_init(&fb, 0, 0);
		assert_int_equal(arca_hw_envelope_encode(&fe, &fb, &e), 0);
		assert_int_equal(arca_hw_envelope_parse(fb.p, fb.len, &env, &e), 0);
		assert_int_equal(env.flags, ARCA_HW_FLAG_PTRACE_PROTECTED);
		/* secret memory is bit 1, carried and bound the same way */
		fe.flags = ARCA_HW_FLAG_PTRACE_PROTECTED | ARCA_HW_FLAG_SECRET_MEMORY;
		uint8_t h2[ARCA_HW_HEADER_LEN], b2[64];
		assert_int_equal(arca_hw_header_encode(&fe, h2), 0);
		assert_int_equal(h2[12], 3);
		assert_int_equal(arca_hw_binding(h2, b2), 0);
		assert_memory_not_equal(b1, b2, 64);
		arca_buf_reset(&fb);
		assert_int_equal(arca_hw_envelope_encode(&fe, &fb, &e), 0);
		assert_int_equal(arca_hw_envelope_parse(fb.p, fb.len, &env, &e), 0);
		assert_int_equal(env.flags, ARCA_HW_FLAG_PTRACE_PROTECTED | ARCA_HW_FLAG_SECRET_MEMORY);
		fe.flags = 4;
		assert_int_equal(arca_hw_header_encode(&fe, h1), ARCA_EINVAL);
		arca_buf_reset(&fb);
		assert_int_equal(arca_hw_envelope_encode(&fe, &fb, &e), ARCA_EINVAL);
		arca_buf_free(&fb);
	}

	/* TDX: no auxblob, provider without its newline */
	wrap(ARCA_HW_PLATFORM_TDX, rep, 1000, NULL, 0, "tdx_guest", &b);
	assert_int_equal(arca_hw_envelope_parse(b.p, b.len, &env, &e), 0);
	assert_int_equal(env.platform, 3);
	assert_int_equal(env.aux_len, 0);
	assert_string_equal(arca_evidence_platform(b.p, b.len), "tdx");
	arca_buf_free(&b);

	uint8_t sim[ARCA_SIM_EVIDENCE_LEN] = "ARCAEV01";
	assert_string_equal(arca_evidence_platform(sim, sizeof sim), "sim");
	assert_null(arca_evidence_platform((const uint8_t *)"ARCAHW01\x05\0\0\0", 12));
	assert_null(arca_evidence_platform((const uint8_t *)"nonsense nonsense", 17));
	assert_null(arca_evidence_platform(NULL, 0));
	assert_string_equal(arca_hw_platform_name(ARCA_HW_PLATFORM_SGX), "sgx");
	assert_null(arca_hw_platform_name(1));
	assert_int_equal(arca_hw_platform_parse("sev-snp"), 2);
	assert_int_equal(arca_hw_platform_parse("tdx"), 3);
	assert_int_equal(arca_hw_platform_parse("sim"), 0);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void expect_parse_fails(const uint8_t *p, size_t n, int code, const char *why)
{
	struct arca_hw_envelope env;
	struct arca_errbuf e = {{0}};
	int rc = arca_hw_envelope_parse(p, n, &env, &e);
	if (rc != code || !strstr(e.msg, why))
		fail_msg("parse: rc %d '%s', want %d '%s'", rc, e.msg, code, why);
	/* and the whole verification refuses it as a malformed envelope */
	struct arca_hw_result res;
	struct arca_hw_facts f;
	enum arca_hw_failure failed;
	arca_hw_result_init(&res);
	assert_true(arca_hw_evidence_verify(p, n, AT_INSIDE, NULL, NULL, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_ENVELOPE);
	assert_false(res.verified);
	assert_non_null(strstr(res.reason, why));
	arca_hw_result_free(&res);
}

static void test_strict_parsing(void **state)
{
	(void)state;
	uint8_t rep[ARCA_SNP_REPORT_LEN] = {2};
	uint8_t aux[64] = {0};
	struct arca_buf b;
	wrap(ARCA_HW_PLATFORM_SEV_SNP, rep, sizeof rep, aux, sizeof aux, "sev_guest\n", &b);
	uint8_t *m = malloc(b.len + 16);
	assert_non_null(m);

	/* every truncation */
	for (size_t n = 0; n < b.len; n++) {
		struct arca_hw_envelope env;
		struct arca_errbuf e = {{0}};
		if (arca_hw_envelope_parse(b.p, n, &env, &e) != ARCA_EPARSE)
			fail_msg("a %zu-byte prefix of %zu was not refused as malformed (%s)", n, b.len, e.msg);
	}
	expect_parse_fails(b.p, 100, ARCA_EPARSE, "shorter than its fixed part");
	expect_parse_fails(b.p, b.len - 1, ARCA_EPARSE, "ends inside its provider");
	expect_parse_fails(b.p, 128 + 4 + 500, ARCA_EPARSE, "ends inside its hardware report (1184 bytes announced, 500 left)");
	expect_parse_fails(b.p, 128 + 4 + sizeof rep + 2, ARCA_EPARSE, "ends before the length of its auxblob");
	/* extended */
	memcpy(m, b.p, b.len);
	m[b.len] = 0;
	expect_parse_fails(m, b.len + 1, ARCA_EPARSE, "1 bytes follow the envelope's provider");
	/* wrong magic, platform, reserved */
	memcpy(m, b.p, b.len);
	m[7] = '2';
	expect_parse_fails(m, b.len, ARCA_EPARSE, "magic is not ARCAHW01");
	memcpy(m, b.p, b.len);
	memcpy(m, "ARCAEV01", 8);
	expect_parse_fails(m, b.len, ARCA_EPARSE, "magic");
	memcpy(m, b.p, b.len);
	put32(m + 8, 1);
	expect_parse_fails(m, b.len, ARCA_EPARSE, "platform 1 is neither 2 (sev-snp) nor 3 (tdx)");
	put32(m + 8, 4);
	expect_parse_fails(m, b.len, ARCA_EPARSE, "platform 4");
	memcpy(m, b.p, b.len);
	m[13] = 1;
	expect_parse_fails(m, b.len, ARCA_EPARSE, "flags 0x00000100 hold a bit this version does not know");
	memcpy(m, b.p, b.len);
	m[12] = 4;
	expect_parse_fails(m, b.len, ARCA_EPARSE, "flags 0x00000004");
	memcpy(m, b.p, b.len);
	m[12] = 2; /* secret memory: known, but the binding no longer holds (checked by verify, not parse) */
	{
		struct arca_hw_envelope pe;
		struct arca_errbuf pe_err = {{0}};
		assert_int_equal(arca_hw_envelope_parse(m, b.len, &pe, &pe_err), 0);
		assert_int_equal(pe.flags, ARCA_HW_FLAG_SECRET_MEMORY);
	}
	/* oversize lengths are refused before anything is taken */
	memcpy(m, b.p, b.len);
	put32(m + 128, 0xffffffffu);
	expect_parse_fails(m, b.len, ARCA_ETOOBIG, "hardware report is 4294967295 bytes; at most 24576");
	put32(m + 128, (uint32_t)ARCA_HW_REPORT_MAX + 1);
	expect_parse_fails(m, b.len, ARCA_ETOOBIG, "at most 24576");
	memcpy(m, b.p, b.len);
	put32(m + 128 + 4 + sizeof rep, (uint32_t)ARCA_HW_AUX_MAX + 1);
	expect_parse_fails(m, b.len, ARCA_ETOOBIG, "auxblob is 32769 bytes; at most 32768");
	memcpy(m, b.p, b.len);
	put32(m + 128 + 4 + sizeof rep + 4 + sizeof aux, ARCA_HW_PROVIDER_MAX + 1);
	expect_parse_fails(m, b.len, ARCA_ETOOBIG, "provider is 65 bytes; at most 64");
	uint8_t *big = calloc(1, ARCA_HW_ENVELOPE_MAX + 1);
	assert_non_null(big);
	memcpy(big, b.p, 128);
	expect_parse_fails(big, ARCA_HW_ENVELOPE_MAX + 1, ARCA_ETOOBIG, "the envelope is 57549 bytes; at most 57548");
	free(big);
	/* a length that is consistent but wrong for the platform */
	memcpy(m, b.p, b.len);
	put32(m + 8, ARCA_HW_PLATFORM_TDX);
	expect_parse_fails(m, b.len, ARCA_EPARSE, "a TDX envelope carries no auxblob, but this one has 64 bytes");
	arca_buf_free(&b);
	wrap(ARCA_HW_PLATFORM_TDX, rep, 1000, NULL, 0, "tdx_guest\n", &b);
	memcpy(m, b.p, b.len);
	put32(m + 8, ARCA_HW_PLATFORM_SEV_SNP);
	expect_parse_fails(m, b.len, ARCA_EPARSE, "an SEV-SNP report in an envelope is 1184 bytes, not 1000");
	/* the provider names the platform, and nothing else */
	memcpy(m, b.p, b.len);
	memcpy(m + b.len - 10, "sev_guest\n", 10);
	expect_parse_fails(m, b.len, ARCA_EPARSE, "the provider of a tdx envelope must be tdx_guest");
	memcpy(m, b.p, b.len);
	m[b.len - 1] = ' ';
	expect_parse_fails(m, b.len, ARCA_EPARSE, "must be tdx_guest");
	memcpy(m, b.p, b.len);
	put32(m + b.len - 14, 0);
	expect_parse_fails(m, b.len - 10, ARCA_ETOOBIG, "the provider is 0 bytes; 1 to 64");
	arca_buf_free(&b);
	free(m);

	/* the encoder refuses what the parser would */
	struct arca_hw_envelope env;
	struct arca_errbuf e = {{0}};
	struct arca_buf out;
	arca_buf_init(&out, 0, 0);
	fill_header(&env, ARCA_HW_PLATFORM_SEV_SNP);
	env.report = rep;
	env.report_len = 1000;
	env.provider = (const uint8_t *)"sev_guest";
	env.provider_len = 9;
	assert_int_equal(arca_hw_envelope_encode(&env, &out, &e), ARCA_EINVAL);
	assert_non_null(strstr(e.msg, "1184 bytes, not 1000"));
	env.report_len = sizeof rep;
	env.provider = (const uint8_t *)"tdx_guest";
	assert_int_equal(arca_hw_envelope_encode(&env, &out, &e), ARCA_EINVAL);
	env.platform = ARCA_HW_PLATFORM_TDX;
	env.aux = aux;
	env.aux_len = 1;
	assert_int_equal(arca_hw_envelope_encode(&env, &out, &e), ARCA_EINVAL);
	assert_int_equal(out.len, 0);
	arca_buf_free(&out);
}

/* ---- real evidence: verifies, but cannot carry our binding ---- */

static void test_genoa_capture_refused_for_binding(void **state)
{
	(void)state;
	struct capture c;
	load_genoa(&c);
	assert_int_equal(c.out.len, ARCA_SNP_REPORT_LEN);
	struct arca_buf env;
	wrap(ARCA_HW_PLATFORM_SEV_SNP, c.out.p, c.out.len, c.aux.p, c.aux.len, c.provider, &env);

	/* The hardware part is genuine: signature and chain (from the
	 * auxblob, to the pinned Genoa ARK) verify inside the window. */
	struct arca_hw_envelope pe;
	struct arca_errbuf e = {{0}};
	assert_int_equal(arca_hw_envelope_parse(env.p, env.len, &pe, &e), 0);
	struct arca_snp_evidence ev;
	memset(&ev, 0, sizeof ev);
	ev.form = ARCA_SNP_FORM_RAW;
	assert_int_equal(arca_snp_parse(pe.report, pe.report_len, &ev.report, &e), 0);
	assert_int_equal(arca_snp_certtable_parse(pe.aux, pe.aux_len, &ev.certs, &e), 0);
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	if (arca_snp_verify(&ev, NULL, NULL, AT_INSIDE, NULL, &res) != 0)
		fail_msg("the Genoa capture does not verify: %s", res.reason);
	assert_true(res.verified);

	/* but its report data is some other program's, not our binding */
	struct arca_hw_facts f;
	enum arca_hw_failure failed;
	struct arca_policy *p = policy("      sev-snp: {measurement: "
				       "7699e6ac12ccdfd1dfac70e649ce1f046cb2afbb003438f4cdddfe2ccbe182fa5ffbe8dcdb930454324e10c52c788980}\n");
	const struct arca_service *svc = &p->services[0];
	time_t times[] = {AT_INSIDE, AT_AFTER, time(NULL)};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		memset(e.msg, 0, sizeof e.msg);
		int rc = arca_hw_evidence_verify(env.p, env.len, times[i], svc, NULL, &f, &failed, &res, &e);
		assert_int_equal(rc, ARCA_EDENIED);
		assert_false(res.verified);
		assert_int_equal(failed, ARCA_HW_BAD_BINDING);
		/* the reason says binding, whatever the date: the binding is
		 * checked before the certificates' validity */
		assert_non_null(strstr(res.reason, "binding"));
		assert_non_null(strstr(res.reason, "report data 4d4944424e48323869696f69736a5079"));
		assert_string_equal(e.msg, res.reason);
		assert_memory_equal(res.report_data, ev.report.report_data, 64);
	}
	arca_hw_result_free(&res);
	arca_snp_evidence_free(&ev);
	arca_policy_free(p);
	arca_buf_free(&env);
	free_capture(&c);
}

static void test_tdx_quote_refused_for_binding(void **state)
{
	(void)state;
	struct arca_buf q, env;
	readfile("tdx/trustee-quote-4.dat", &q);
	wrap(ARCA_HW_PLATFORM_TDX, q.p, q.len, NULL, 0, "tdx_guest\n", &env);
	struct arca_hw_result res;
	arca_hw_result_init(&res);
	/* the quote verifies with its own PCK chain inside its window */
	if (arca_intel_quote_verify(q.p, q.len, NULL, AT_INSIDE, &res) != 0)
		fail_msg("trustee-quote-4 does not verify: %s", res.reason);
	struct arca_hw_facts f;
	enum arca_hw_failure failed;
	struct arca_errbuf e = {{0}};
	assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, NULL, NULL, &f, &failed, &res, &e),
			 ARCA_EDENIED);
	assert_int_equal(failed, ARCA_HW_BAD_BINDING);
	assert_non_null(strstr(res.reason, "binding: the tdx report's report data"));
	arca_buf_free(&env);

	/* an SGX quote is not TDX evidence */
	struct arca_buf sq;
	readfile("sgx/phala-quote-v3.dat", &sq);
	wrap(ARCA_HW_PLATFORM_TDX, sq.p, sq.len, NULL, 0, "tdx_guest\n", &env);
	assert_true(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, NULL, NULL, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_ENVELOPE);
	assert_non_null(strstr(res.reason, "quote of another TEE"));
	arca_buf_free(&env);
	/* nor is anything that is not a quote */
	wrap(ARCA_HW_PLATFORM_TDX, (const uint8_t *)"not a quote", 11, NULL, 0, "tdx_guest\n", &env);
	assert_true(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, NULL, NULL, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_ENVELOPE);
	arca_buf_free(&env);
	arca_buf_free(&sq);
	arca_hw_result_free(&res);
	arca_buf_free(&q);
}

/* ---- constraints against the real Genoa report ---- */

static void genoa_facts(struct arca_hw_facts *f)
{
	struct capture c;
	struct arca_snp_report r;
	struct arca_errbuf e = {{0}};
	load_genoa(&c);
	assert_int_equal(arca_snp_parse(c.out.p, c.out.len, &r, &e), 0);
	memset(f, 0, sizeof *f);
	arca_hw_facts_from_snp(&r, ARCA_SNP_GENOA, f);
	free_capture(&c);
}

struct ccase {
	const char *yaml;
	const char *why; /* NULL: accepted */
};

static void run_cases(const struct arca_hw_facts *f, const struct ccase *cs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct arca_policy *p = policy(cs[i].yaml);
		struct arca_errbuf e = {{0}};
		int rc = arca_hw_check_constraints(f, &p->services[0], &e);
		if (cs[i].why == NULL && rc != 0)
			fail_msg("case %zu refused: %s\n%s", i, e.msg, cs[i].yaml);
		if (cs[i].why != NULL && (rc != ARCA_EDENIED || !strstr(e.msg, cs[i].why)))
			fail_msg("case %zu: rc %d '%s', want refusal with '%s'\n%s", i, rc, e.msg, cs[i].why, cs[i].yaml);
		arca_policy_free(p);
	}
}

#define GM "7699e6ac12ccdfd1dfac70e649ce1f046cb2afbb003438f4cdddfe2ccbe182fa5ffbe8dcdb930454324e10c52c788980"
#define Z32 "0000000000000000000000000000000000000000000000000000000000000000"
#define Z48 "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
#define Z31 "00000000000000000000000000000000000000000000000000000000000000"
#define Z47 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

static void test_snp_constraints(void **state)
{
	(void)state;
	struct arca_hw_facts f;
	genoa_facts(&f);
	/* Genoa: reported_tcb 0x541700000000000a = boot loader 10, TEE 0,
	 * SNP 23 (0x17), microcode 84 (0x54); policy 0x30000 (no debug) */
	const struct ccase cs[] = {
		{"      sev-snp: {measurement: " GM "}\n", NULL},
		{"      sev-snp:\n        measurement: " GM "\n        host_data: " Z32 "\n        id_key_digest: " Z48
		 "\n        min_tcb: {bootloader: 10, tee: 0, snp: 23, microcode: 84}\n        debug: false\n        product: Genoa\n",
		 NULL},
		{"      sim: {}\n", "service 'api' does not list sev-snp under platform"},
		{"      sev-snp: {measurement: " Z48 "}\n", "launch measurement " GM " does not match the service's " Z48},
		{"      sev-snp: {measurement: " GM ", host_data: " Z31 "01}\n",
		 "host_data " Z32 " does not match the service's " Z31 "01"},
		{"      sev-snp: {measurement: " GM ", id_key_digest: ff" Z47 "}\n",
		 "id_key_digest " Z48 " does not match the service's ff" Z47},
		{"      sev-snp: {measurement: " GM ", min_tcb: {bootloader: 11}}\n",
		 "boot loader SVN 10, below the service's min_tcb of 11 (reported_tcb 0x541700000000000a)"},
		{"      sev-snp: {measurement: " GM ", min_tcb: {tee: 1}}\n", "TEE SVN 0, below the service's min_tcb of 1"},
		{"      sev-snp: {measurement: " GM ", min_tcb: {snp: 24}}\n", "SNP firmware SVN 23, below the service's min_tcb of 24"},
		{"      sev-snp: {measurement: " GM ", min_tcb: {microcode: 85}}\n", "microcode SVN 84, below the service's min_tcb of 85"},
		{"      sev-snp: {measurement: " GM ", min_tcb: {bootloader: 10, microcode: 84}}\n", NULL},
		{"      sev-snp: {measurement: " GM ", product: Milan}\n", "signed by a Genoa key; the service requires Milan"},
		{"      sev-snp: {measurement: " GM ", product: Turin}\n", "the service requires Turin"},
	};
	run_cases(&f, cs, sizeof cs / sizeof cs[0]);

	/* a guest policy that allows debugging (bit 19) */
	f.snp_policy |= 1ull << 19;
	const struct ccase dbg[] = {
		{"      sev-snp: {measurement: " GM "}\n", "the guest policy 0xb0000 allows debugging (bit 19)"},
		{"      sev-snp: {measurement: " GM ", debug: false}\n", "allows debugging"},
		{"      sev-snp: {measurement: " GM ", debug: true}\n", NULL},
	};
	run_cases(&f, dbg, sizeof dbg / sizeof dbg[0]);

	/* Turin lays its TCB out differently: boot loader is byte 1 */
	genoa_facts(&f);
	f.product = ARCA_SNP_TURIN;
	f.reported_tcb = 0x4800000000170a05ull; /* fmc 5, bl 10, tee 23, snp 0, microcode 0x48 */
	const struct ccase turin[] = {
		{"      sev-snp: {measurement: " GM ", min_tcb: {bootloader: 10, tee: 23, microcode: 72}}\n", NULL},
		{"      sev-snp: {measurement: " GM ", min_tcb: {snp: 1}}\n", "SNP firmware SVN 0"},
		{"      sev-snp: {measurement: " GM ", min_tcb: {bootloader: 11}}\n", "boot loader SVN 10"},
		{"      sev-snp: {measurement: " GM ", product: Turin}\n", NULL},
	};
	run_cases(&f, turin, sizeof turin / sizeof turin[0]);
}

static void quote_facts(const char *rel, int tcb_status, struct arca_hw_facts *f)
{
	struct arca_buf q;
	struct arca_intel_quote iq;
	struct arca_errbuf e = {{0}};
	readfile(rel, &q);
	assert_int_equal(arca_intel_quote_parse(q.p, q.len, &iq, &e), 0);
	memset(f, 0, sizeof *f);
	assert_int_equal(arca_hw_facts_from_quote(&iq, tcb_status, f), 0);
	arca_buf_free(&q);
}

static void test_tdx_constraints(void **state)
{
	(void)state;
	struct arca_hw_facts f;
	char mrtd[ARCA_HEX_LEN(48)], rtmr[4][ARCA_HEX_LEN(48)], cfg[ARCA_HEX_LEN(48)];
	quote_facts("tdx/trustee-quote-5.dat", -1, &f);
	assert_int_equal(f.platform, ARCA_HW_PLATFORM_TDX);
	arca_hex_encode(f.mrtd, 48, mrtd);
	for (int i = 0; i < 4; i++)
		arca_hex_encode(f.rtmr[i], 48, rtmr[i]);
	arca_hex_encode(f.mrconfigid, 48, cfg);
	char y[8][2048];
	snprintf(y[0], sizeof y[0], "      tdx: {mrtd: %s}\n", mrtd);
	snprintf(y[1], sizeof y[1], "      tdx:\n        mrtd: %s\n        rtmr: [%s, %s, %s, %s]\n        mrconfigid: %s\n",
		 mrtd, rtmr[0], rtmr[1], rtmr[2], rtmr[3], cfg);
	snprintf(y[2], sizeof y[2], "      tdx: {mrtd: %s, rtmr2: %s}\n", mrtd, mrtd);
	snprintf(y[3], sizeof y[3], "      tdx: {mrtd: %s}\n", rtmr[0]);
	snprintf(y[4], sizeof y[4], "      tdx: {mrtd: %s, mrconfigid: %s}\n", mrtd, rtmr[0]);
	snprintf(y[5], sizeof y[5], "      tdx: {mrtd: %s, min_tcb_status: OutOfDate}\n", mrtd);
	snprintf(y[6], sizeof y[6], "      sev-snp: {measurement: %s}\n", mrtd);
	snprintf(y[7], sizeof y[7], "      tdx: {mrtd: %s, rtmr3: %s}\n", mrtd, rtmr[3]);
	const struct ccase cs[] = {
		{y[0], NULL},
		{y[1], NULL},
		{y[2], "RTMR2 "},
		{y[3], "MRTD "},
		{y[4], "MRCONFIGID "},
		{y[5], "TCB status unknown: no collateral"},
		{y[6], "does not list tdx under platform"},
		{y[7], NULL},
	};
	run_cases(&f, cs, sizeof cs / sizeof cs[0]);

	/* with a status (from collateral), the order of Intel's list counts */
	f.tcb_status = ARCA_TCB_SW_HARDENING_NEEDED;
	snprintf(y[0], sizeof y[0], "      tdx: {mrtd: %s, min_tcb_status: SWHardeningNeeded}\n", mrtd);
	snprintf(y[1], sizeof y[1], "      tdx: {mrtd: %s, min_tcb_status: UpToDate}\n", mrtd);
	const struct ccase st[] = {
		{y[0], NULL},
		{y[1], "TCB status SWHardeningNeeded is worse than the service's min_tcb_status UpToDate"},
		{y[5], NULL},
	};
	run_cases(&f, st, sizeof st / sizeof st[0]);
	f.tcb_status = ARCA_TCB_REVOKED;
	const struct ccase rv[] = {{y[5], "TCB status Revoked is worse"}};
	run_cases(&f, rv, 1);

	/* trustee-quote-4's TD says DEBUG (attributes bit 0) */
	quote_facts("tdx/trustee-quote-4.dat", -1, &f);
	assert_true(f.td_attributes & 1);
	arca_hex_encode(f.mrtd, 48, mrtd);
	snprintf(y[0], sizeof y[0], "      tdx: {mrtd: %s}\n", mrtd);
	snprintf(y[1], sizeof y[1], "      tdx: {mrtd: %s, debug: true}\n", mrtd);
	const struct ccase dbg[] = {
		{y[0], "the TD's attributes 0x0000000010000001 say DEBUG (bit 0)"},
		{y[1], NULL},
	};
	run_cases(&f, dbg, sizeof dbg / sizeof dbg[0]);
}

static void test_sgx_constraints(void **state)
{
	(void)state;
	struct arca_hw_facts f;
	char enc[ARCA_HEX_LEN(32)], sig[ARCA_HEX_LEN(32)];
	/* phala: attributes flags 0x05 (no DEBUG), ISVPRODID 0, ISVSVN 0 */
	quote_facts("sgx/phala-quote-v3.dat", -1, &f);
	assert_int_equal(f.platform, ARCA_HW_PLATFORM_SGX);
	assert_int_equal(f.sgx_attributes & 0xff, 0x05);
	arca_hex_encode(f.mrenclave, 32, enc);
	arca_hex_encode(f.mrsigner, 32, sig);
	char y[6][1024];
	snprintf(y[0], sizeof y[0], "      sgx: {mrenclave: %s}\n", enc);
	snprintf(y[1], sizeof y[1], "      sgx: {mrsigner: %s, isvprodid: 0, min_isvsvn: 0}\n", sig);
	snprintf(y[2], sizeof y[2], "      sgx: {mrsigner: %s, isvprodid: 1, min_isvsvn: 0}\n", sig);
	snprintf(y[3], sizeof y[3], "      sgx: {mrsigner: %s, isvprodid: 0, min_isvsvn: 1}\n", sig);
	snprintf(y[4], sizeof y[4], "      sgx: {mrenclave: %s}\n", sig);
	snprintf(y[5], sizeof y[5], "      sgx: {mrenclave: %s, min_tcb_status: UpToDate}\n", enc);
	const struct ccase cs[] = {
		{y[0], NULL},
		{y[1], NULL},
		{y[2], "ISVPRODID 0 is not the service's 1"},
		{y[3], "ISVSVN 0 is below the service's min_isvsvn 1"},
		{y[4], "MRENCLAVE "},
		{y[5], "TCB status unknown: no collateral"},
	};
	run_cases(&f, cs, sizeof cs / sizeof cs[0]);

	/* occlum's enclave is a debug enclave (flags 0x07) */
	quote_facts("sgx/trustee-occlum-quote-v3.dat", -1, &f);
	arca_hex_encode(f.mrenclave, 32, enc);
	snprintf(y[0], sizeof y[0], "      sgx: {mrenclave: %s}\n", enc);
	snprintf(y[1], sizeof y[1], "      sgx: {mrenclave: %s, debug: true}\n", enc);
	const struct ccase dbg[] = {
		{y[0], "say DEBUG (bit 1)"},
		{y[1], NULL},
	};
	run_cases(&f, dbg, sizeof dbg / sizeof dbg[0]);
}

/* ---- the whole path, with a report that carries the binding ---- */

/* A VCEK shaped like the gsg Milan VCEK (its names and extensions), under a
 * key of our own; only the chain cache can vouch for it. */
struct forged {
	EVP_PKEY *key;
	X509 *vcek;
	uint8_t report[ARCA_SNP_REPORT_LEN];
	struct arca_buf table;
	struct arca_snp_chain_cache cache;
};

static void sign_report(uint8_t *raw, EVP_PKEY *key)
{
	uint8_t der[160];
	size_t dl = sizeof der;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &dl, raw, ARCA_SNP_SIGNED_LEN), 1);
	EVP_MD_CTX_free(ctx);
	const unsigned char *q = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &q, (long)dl);
	assert_non_null(s);
	const BIGNUM *r, *sv;
	ECDSA_SIG_get0(s, &r, &sv);
	memset(raw + ARCA_SNP_SIG_R_OFF, 0, 2 * ARCA_SNP_SIG_COMPONENT_LEN);
	assert_true(BN_bn2lebinpad(r, raw + ARCA_SNP_SIG_R_OFF, 72) == 72);
	assert_true(BN_bn2lebinpad(sv, raw + ARCA_SNP_SIG_S_OFF, 72) == 72);
	ECDSA_SIG_free(s);
}

static void forge(struct forged *g)
{
	struct arca_buf b;
	X509 *real = NULL;
	readfile("sev-snp/gsg-milan-vcek.der", &b);
	assert_int_equal(arca_x509_load(b.p, b.len, &real), 0);
	arca_buf_free(&b);
	g->key = EVP_EC_gen("secp384r1");
	assert_non_null(g->key);
	g->vcek = X509_new();
	assert_int_equal(X509_set_version(g->vcek, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(g->vcek), 1), 1);
	assert_int_equal(X509_set_subject_name(g->vcek, X509_get_subject_name(real)), 1);
	assert_int_equal(X509_set_issuer_name(g->vcek, X509_get_issuer_name(real)), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(g->vcek), 1577836800));  /* 2020 */
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(g->vcek), 2208988800));   /* 2040 */
	assert_int_equal(X509_set_pubkey(g->vcek, g->key), 1);
	for (int i = 0; i < X509_get_ext_count(real); i++)
		assert_int_equal(X509_add_ext(g->vcek, X509_get_ext(real, i), -1), 1);
	assert_true(X509_sign(g->vcek, g->key, EVP_sha384()) > 0);
	X509_free(real);

	readfile("sev-snp/gsg-milan-report.bin", &b);
	assert_int_equal(b.len, ARCA_SNP_REPORT_LEN);
	memcpy(g->report, b.p, ARCA_SNP_REPORT_LEN);
	arca_buf_free(&b);

	/* certificate table: the VCEK entry, the all-zero end, the DER */
	static const uint8_t vcek_guid[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
					      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
	unsigned char *der = NULL;
	int dl = i2d_X509(g->vcek, &der);
	assert_true(dl > 0);
	arca_buf_init(&g->table, 0, 0);
	uint8_t ent[48] = {0};
	memcpy(ent, vcek_guid, 16);
	put32(ent + 16, 48);
	put32(ent + 20, (uint32_t)dl);
	assert_int_equal(arca_buf_append(&g->table, ent, sizeof ent), 0);
	assert_int_equal(arca_buf_append(&g->table, der, (size_t)dl), 0);
	OPENSSL_free(der);

	/* as if the chain had been verified before */
	struct arca_errbuf e = {{0}};
	unsigned hl;
	assert_int_equal(arca_snp_chain_cache_init(&g->cache), 0);
	struct arca_snp_cache_entry *s = &g->cache.slot[0];
	s->used = 1;
	assert_int_equal(X509_digest(g->vcek, EVP_sha256(), s->leaf_sha256, &hl), 1);
	assert_int_equal(arca_snp_leaf_read(g->vcek, &s->info, &e), 0);
	s->valid_from = 1577836800;
	s->valid_until = 2208988800;
}

static void unforge(struct forged *g)
{
	arca_snp_chain_cache_free(&g->cache);
	arca_buf_free(&g->table);
	X509_free(g->vcek);
	EVP_PKEY_free(g->key);
}

/* An envelope whose report carries its binding (or, with bind = 0, not). */
static void bound_envelope(struct forged *g, int bind, struct arca_buf *out)
{
	struct arca_hw_envelope env;
	uint8_t hdr[ARCA_HW_HEADER_LEN];
	fill_header(&env, ARCA_HW_PLATFORM_SEV_SNP);
	assert_int_equal(arca_hw_header_encode(&env, hdr), 0);
	assert_int_equal(arca_hw_binding(hdr, g->report + 0x50), 0);
	if (!bind)
		g->report[0x50] ^= 1;
	sign_report(g->report, g->key);
	wrap(ARCA_HW_PLATFORM_SEV_SNP, g->report, sizeof g->report, g->table.p, g->table.len, "sev_guest\n", out);
}

#define GSG_MEAS "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"

static void test_whole_path(void **state)
{
	(void)state;
	struct forged g;
	forge(&g);
	struct arca_hw_opts o = {.snp_cache = &g.cache};
	struct arca_hw_result res;
	struct arca_hw_facts f;
	enum arca_hw_failure failed;
	struct arca_errbuf e = {{0}};
	struct arca_buf env;
	arca_hw_result_init(&res);

	/* the gsg report's guest policy 0xb0000 allows debugging */
	struct arca_policy *ok = policy("      sev-snp:\n        measurement: " GSG_MEAS "\n        min_tcb: {bootloader: 2, "
					"tee: 0, snp: 5, microcode: 68}\n        product: Milan\n        debug: true\n");
	bound_envelope(&g, 1, &env);
	if (arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &ok->services[0], &o, &f, &failed, &res, &e) != 0)
		fail_msg("refused: %s", e.msg);
	assert_true(res.verified);
	assert_int_equal(failed, ARCA_HW_OK);
	assert_int_equal(f.platform, ARCA_HW_PLATFORM_SEV_SNP);
	assert_int_equal(f.product, ARCA_SNP_MILAN);
	assert_int_equal(f.pid, 4242);
	assert_int_equal(f.uid, 1000);
	assert_int_equal(f.flags, 0);
	assert_int_equal(f.measurement[31], 31);
	assert_int_equal(f.report_data[63], 0x7f);
	assert_int_equal(f.reported_tcb, 0x4405000000000002ull);
	assert_non_null(res.fields);
	/* svc NULL: hardware only; the constraints are checked later */
	assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, NULL, &o, &f, &failed, &res, &e), 0);
	assert_int_equal(arca_hw_check_constraints(&f, &ok->services[0], &e), 0);

	/* a constraint the report does not meet */
	struct arca_policy *bad = policy("      sev-snp: {measurement: " GSG_MEAS ", min_tcb: {snp: 6}, debug: true}\n");
	assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &bad->services[0], &o, &f, &failed, &res, &e),
			 ARCA_EDENIED);
	assert_int_equal(failed, ARCA_HW_CONSTRAINT);
	assert_false(res.verified);
	assert_non_null(strstr(e.msg, "SNP firmware SVN 5, below the service's min_tcb of 6"));
	arca_policy_free(bad);
	bad = policy("      sev-snp: {measurement: " GM ", debug: true}\n");
	assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &bad->services[0], &o, &f, &failed, &res, &e),
			 ARCA_EDENIED);
	assert_int_equal(failed, ARCA_HW_CONSTRAINT);
	assert_non_null(strstr(e.msg, "launch measurement " GSG_MEAS " does not match"));
	arca_policy_free(bad);
	bad = policy("      sev-snp: {measurement: " GSG_MEAS "}\n");
	assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &bad->services[0], &o, &f, &failed, &res, &e),
			 ARCA_EDENIED);
	assert_int_equal(failed, ARCA_HW_CONSTRAINT);
	assert_non_null(strstr(e.msg, "allows debugging (bit 19)"));
	arca_policy_free(bad);
	/* a service that lists only sim */
	bad = policy("      sim: {}\n");
	assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &bad->services[0], &o, &f, &failed, &res, &e),
			 ARCA_EDENIED);
	assert_int_equal(failed, ARCA_HW_NOT_LISTED);
	arca_policy_free(bad);

	/* a changed byte of the envelope's header breaks the binding */
	for (size_t i = 0; i < ARCA_HW_HEADER_LEN; i += 1) {
		if (i < 12)
			continue; /* magic and platform are refused as malformed */
		env.p[i] ^= 0x20;
		assert_int_equal(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &ok->services[0], &o, &f, &failed, &res, &e),
				 i < 16 ? ARCA_EPARSE : ARCA_EDENIED);
		assert_int_equal(failed, i < 16 ? ARCA_HW_BAD_ENVELOPE : ARCA_HW_BAD_BINDING);
		env.p[i] ^= 0x20;
	}
	/* a changed signed byte of the report breaks the signature (the
	 * report data itself, the binding) */
	size_t off = 128 + 4 + 0x90; /* measurement */
	env.p[off] ^= 1;
	assert_true(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &ok->services[0], &o, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_REPORT);
	assert_non_null(strstr(res.reason, "signature"));
	env.p[off] ^= 1;
	env.p[128 + 4 + 0x50] ^= 1;
	assert_true(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &ok->services[0], &o, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_BINDING);
	env.p[128 + 4 + 0x50] ^= 1;
	/* without the cache, the forged VCEK's chain does not reach AMD */
	assert_true(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &ok->services[0], NULL, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_REPORT);
	/* and without any certificate there is no VCEK at all */
	struct arca_buf bare;
	wrap(ARCA_HW_PLATFORM_SEV_SNP, env.p + 132, ARCA_SNP_REPORT_LEN, NULL, 0, "sev_guest\n", &bare);
	assert_true(arca_hw_evidence_verify(bare.p, bare.len, AT_INSIDE, NULL, &o, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_REPORT);
	assert_non_null(strstr(res.reason, "none was given"));
	arca_buf_free(&bare);
	arca_buf_free(&env);

	/* a report signed over a different binding */
	bound_envelope(&g, 0, &env);
	assert_true(arca_hw_evidence_verify(env.p, env.len, AT_INSIDE, &ok->services[0], &o, &f, &failed, &res, &e) < 0);
	assert_int_equal(failed, ARCA_HW_BAD_BINDING);
	arca_buf_free(&env);

	arca_policy_free(ok);
	arca_hw_result_free(&res);
	unforge(&g);
}

int main(void)
{
	vdir = getenv("ARCA_VECTORS");
	char path[1024];
	if (!vdir || !*vdir) {
		fprintf(stderr, "SKIP: ARCA_VECTORS is not set\n");
		return 77;
	}
	snprintf(path, sizeof path, "%s/sev-snp/veraison-genoa-tsm-report.json", vdir);
	FILE *fp = fopen(path, "r");
	if (!fp) {
		fprintf(stderr, "SKIP: no vectors at %s\n", vdir);
		return 77;
	}
	fclose(fp);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_and_binding_known_answer),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_strict_parsing),
		cmocka_unit_test(test_genoa_capture_refused_for_binding),
		cmocka_unit_test(test_tdx_quote_refused_for_binding),
		cmocka_unit_test(test_snp_constraints),
		cmocka_unit_test(test_tdx_constraints),
		cmocka_unit_test(test_sgx_constraints),
		cmocka_unit_test(test_whole_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
