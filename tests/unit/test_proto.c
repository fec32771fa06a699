/* test_proto.c: the protocol messages and the sealed configuration: known
 * answers, round trips, and a refusal for every check the decoders make
 * (CAS trusts nothing it did not check here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arca/proto.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/policy.h"

#define B64_32_ZERO "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define B64_32_SEQ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static const uint8_t *u(const char *s) { return (const uint8_t *)s; }

/* ---- report data ---- */

static void test_report_data_kat(void **state)
{
	uint8_t nonce[32], pub[32], out[64], want[64];
	size_t n;

	memset(nonce, 1, sizeof(nonce));
	memset(pub, 2, sizeof(pub));
	assert_int_equal(arca_report_data(nonce, pub, "payroll", "api", out), 0);
	assert_int_equal(arca_hex_decode("cc7786b9224052f5fd904e252caa18dbdb58d2f0bb61637e1abad9016713a520"
					 "47bc2fd00a60f76e63c86bc56356c9c2843910f4c2c5e6cc556f0973658a82b0",
					 128, want, sizeof(want), &n),
			 0);
	assert_memory_equal(out, want, 64);

	/* Every input is bound. */
	uint8_t other[64];
	assert_int_equal(arca_report_data(nonce, pub, "payroll", "apj", other), 0);
	assert_memory_not_equal(out, other, 64);
	nonce[31] ^= 1;
	assert_int_equal(arca_report_data(nonce, pub, "payroll", "api", other), 0);
	assert_memory_not_equal(out, other, 64);
	nonce[31] ^= 1;
	pub[0] ^= 0x80;
	assert_int_equal(arca_report_data(nonce, pub, "payroll", "api", other), 0);
	assert_memory_not_equal(out, other, 64);

	/* Names outside the syntax of design.md are refused. */
	assert_int_equal(arca_report_data(nonce, pub, "", "api", other), ARCA_EINVAL);
	assert_int_equal(arca_report_data(nonce, pub, "pay roll", "api", other), ARCA_EINVAL);
	assert_int_equal(arca_report_data(nonce, pub, "payroll", "a\nb", other), ARCA_EINVAL);
	char longname[130];
	memset(longname, 'a', 129);
	longname[129] = 0;
	assert_int_equal(arca_report_data(nonce, pub, longname, "api", other), ARCA_EINVAL);
	longname[128] = 0;
	assert_int_equal(arca_report_data(nonce, pub, longname, "api", other), 0);
}

/* ---- nonce ---- */

static void test_nonce_kat_and_roundtrip(void **state)
{
	struct arca_msg_nonce m = {.expires_in = 60}, d;
	struct arca_errbuf e;
	struct arca_buf b;

	arca_buf_init(&b, 4096, 0);
	assert_int_equal(arca_msg_nonce_encode(&m, &b), 0);
	assert_string_equal((char *)b.p, "{\"expires_in\":60,\"nonce\":\"" B64_32_ZERO "\"}");
	arca_buf_reset(&b);
	for (int i = 0; i < 32; i++)
		m.nonce[i] = (uint8_t)i;
	m.expires_in = 300;
	assert_int_equal(arca_msg_nonce_encode(&m, &b), 0);
	assert_int_equal(arca_msg_nonce_decode(b.p, b.len, &d, &e), 0);
	assert_memory_equal(d.nonce, m.nonce, 32);
	assert_int_equal(d.expires_in, 300);

	m.expires_in = 0;
	assert_int_equal(arca_msg_nonce_encode(&m, &b), ARCA_EINVAL);
	arca_buf_free(&b);
}

static void expect_nonce_refused(const char *json, const char *needle)
{
	struct arca_msg_nonce d;
	struct arca_errbuf e = {{0}};

	memset(&d, 0x55, sizeof(d));
	int rc = arca_msg_nonce_decode(u(json), strlen(json), &d, &e);
	if (rc >= 0 || strstr(e.msg, needle) == NULL)
		fail_msg("accepted or wrong message for %s: rc %d, \"%s\"", json, rc, e.msg);
	/* Nothing half-decoded is left behind. */
	uint8_t zero[32] = {0};
	assert_memory_equal(d.nonce, zero, 32);
}

static void test_nonce_refusals(void **state)
{
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":60,\"x\":1}", "unknown key \"x\"");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\"}", "missing key \"expires_in\"");
	expect_nonce_refused("{\"expires_in\":60}", "missing key \"nonce\"");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":\"60\"}", "\"expires_in\" must be an integer");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":60.0}", "\"expires_in\" must be an integer");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":0}", "\"expires_in\"");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":-5}", "\"expires_in\"");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":99999999999}", "\"expires_in\"");
	expect_nonce_refused("{\"nonce\":12,\"expires_in\":60}", "\"nonce\" must be a string");
	/* 31 and 33 bytes, bad alphabet, missing padding, whitespace. */
	expect_nonce_refused("{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\",\"expires_in\":60}",
			     "\"nonce\" must be base64 of exactly 32 bytes");
	expect_nonce_refused("{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\",\"expires_in\":60}",
			     "\"nonce\" must be base64");
	expect_nonce_refused("{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*=\",\"expires_in\":60}",
			     "\"nonce\" must be base64");
	expect_nonce_refused("{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"expires_in\":60}",
			     "\"nonce\" must be base64");
	expect_nonce_refused("{\"nonce\":\" AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"expires_in\":60}",
			     "\"nonce\" must be base64");
	/* Trailing bits not zero: "...Hh9=" decodes to the same bytes in a lax decoder. */
	expect_nonce_refused("{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\",\"expires_in\":60}",
			     "\"nonce\" must be base64");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":60,\"nonce\":\"" B64_32_SEQ "\"}",
			     "not valid JSON");
	expect_nonce_refused("[1,2]", "expected a JSON object");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":60} x", "not valid JSON");
	expect_nonce_refused("", "not valid JSON");
	expect_nonce_refused("{\"nonce\":\"" B64_32_SEQ "\",\"expires_in\":60", "not valid JSON");
	expect_nonce_refused("{\"nonce\\u0000\":1,\"expires_in\":60}", "not valid JSON");
}

/* ---- attest ---- */

static void fill_attest(struct arca_msg_attest *m, uint8_t *ev, size_t evlen)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->session, sizeof(m->session), "payroll");
	snprintf(m->service, sizeof(m->service), "api");
	snprintf(m->platform, sizeof(m->platform), "sim");
	for (int i = 0; i < 32; i++) {
		m->nonce[i] = (uint8_t)i;
		m->pubkey[i] = (uint8_t)(0xff - i);
	}
	m->evidence = ev;
	m->evidence_len = evlen;
}

static void test_attest_roundtrip(void **state)
{
	uint8_t ev[224];
	struct arca_msg_attest m, d;
	struct arca_errbuf e;
	struct arca_buf b;

	for (size_t i = 0; i < sizeof(ev); i++)
		ev[i] = (uint8_t)(i * 7);
	fill_attest(&m, ev, sizeof(ev));
	arca_buf_init(&b, ARCA_MAX_BODY, 0);
	assert_int_equal(arca_msg_attest_encode(&m, &b), 0);
	/* Sorted keys: the encoding is deterministic. */
	assert_true(strncmp((char *)b.p, "{\"evidence\":\"", 13) == 0);
	assert_int_equal(arca_msg_attest_decode(b.p, b.len, &d, &e), 0);
	assert_string_equal(d.session, "payroll");
	assert_string_equal(d.service, "api");
	assert_string_equal(d.platform, "sim");
	assert_memory_equal(d.nonce, m.nonce, 32);
	assert_memory_equal(d.pubkey, m.pubkey, 32);
	assert_int_equal(d.evidence_len, sizeof(ev));
	assert_memory_equal(d.evidence, ev, sizeof(ev));
	arca_msg_attest_free(&d);
	assert_null(d.evidence);

	/* Names with every allowed character, and the longest name. */
	snprintf(m.session, sizeof(m.session), "a-b_c.d~e/f");
	memset(m.service, 'x', 128);
	m.service[128] = 0;
	arca_buf_reset(&b);
	assert_int_equal(arca_msg_attest_encode(&m, &b), 0);
	assert_int_equal(arca_msg_attest_decode(b.p, b.len, &d, &e), 0);
	assert_string_equal(d.session, "a-b_c.d~e/f");
	assert_int_equal(strlen(d.service), 128);
	arca_msg_attest_free(&d);

	/* The encoder refuses what the decoder would. */
	snprintf(m.session, sizeof(m.session), "bad name");
	assert_int_equal(arca_msg_attest_encode(&m, &b), ARCA_EINVAL);
	fill_attest(&m, ev, 0);
	assert_int_equal(arca_msg_attest_encode(&m, &b), ARCA_EINVAL);
	fill_attest(&m, ev, sizeof(ev));
	snprintf(m.platform, sizeof(m.platform), "SIM");
	assert_int_equal(arca_msg_attest_encode(&m, &b), ARCA_EINVAL);
	arca_buf_free(&b);
}

/* Builds an attest body with one field replaced (or, with value NULL,
 * removed; with key not among the six, added). */
static char *attest_json(const char *key, const char *value)
{
	static const char *const keys[] = {"session", "service", "platform", "nonce", "pubkey", "evidence"};
	const char *vals[] = {"\"payroll\"", "\"api\"", "\"sim\"", "\"" B64_32_SEQ "\"", "\"" B64_32_ZERO "\"",
			      "\"QVJDQUVWMDE=\""};
	struct arca_buf b;
	int first = 1, found = 0;

	arca_buf_init(&b, 1 << 20, 0);
	assert_int_equal(arca_buf_appends(&b, "{"), 0);
	for (size_t i = 0; i < 6; i++) {
		const char *v = vals[i];
		if (key != NULL && strcmp(key, keys[i]) == 0) {
			found = 1;
			if (value == NULL)
				continue;
			v = value;
		}
		assert_int_equal(arca_buf_appendf(&b, "%s\"%s\":%s", first ? "" : ",", keys[i], v), 0);
		first = 0;
	}
	if (key != NULL && !found)
		assert_int_equal(arca_buf_appendf(&b, ",\"%s\":%s", key, value), 0);
	assert_int_equal(arca_buf_appends(&b, "}"), 0);
	return (char *)arca_buf_steal(&b, NULL);
}

static void expect_attest(const char *key, const char *value, int want_rc, const char *needle)
{
	char *json = attest_json(key, value);
	struct arca_msg_attest d;
	struct arca_errbuf e = {{0}};
	int rc = arca_msg_attest_decode(u(json), strlen(json), &d, &e);

	if (rc != want_rc || (needle != NULL && strstr(e.msg, needle) == NULL))
		fail_msg("%s=%s: rc %d (want %d), \"%s\"", key, value ? value : "(none)", rc, want_rc, e.msg);
	if (rc < 0)
		assert_null(d.evidence);
	arca_msg_attest_free(&d);
	free(json);
}

static void test_attest_refusals(void **state)
{
	expect_attest(NULL, NULL, 0, NULL);
	expect_attest("extra", "1", ARCA_EPARSE, "unknown key \"extra\"");
	expect_attest("Session", "\"x\"", ARCA_EPARSE, "unknown key \"Session\"");
	const char *keys[] = {"session", "service", "platform", "nonce", "pubkey", "evidence"};
	for (size_t i = 0; i < 6; i++) {
		char want[64];
		snprintf(want, sizeof(want), "missing key \"%s\"", keys[i]);
		expect_attest(keys[i], NULL, ARCA_EPARSE, want);
		snprintf(want, sizeof(want), "\"%s\" must be", keys[i]);
		expect_attest(keys[i], "1", ARCA_EPARSE, want);
		expect_attest(keys[i], "null", ARCA_EPARSE, want);
		expect_attest(keys[i], "[\"a\"]", ARCA_EPARSE, want);
	}
	expect_attest("session", "\"\"", ARCA_EPARSE, "\"session\" must be a name");
	expect_attest("session", "\"a b\"", ARCA_EPARSE, "\"session\" must be a name");
	expect_attest("session", "\"caf\\u00e9\"", ARCA_EPARSE, "\"session\" must be a name");
	expect_attest("service", "\"a\\u0000b\"", ARCA_EPARSE, "not valid JSON");
	char longname[140];
	snprintf(longname, sizeof(longname), "\"%0129d\"", 0);
	expect_attest("service", longname, ARCA_EPARSE, "\"service\" must be a name");
	expect_attest("platform", "\"\"", ARCA_EPARSE, "\"platform\"");
	expect_attest("platform", "\"SIM\"", ARCA_EPARSE, "\"platform\"");
	expect_attest("platform", "\"sev-snp\"", 0, NULL);
	expect_attest("platform", "\"aaaaaaaaaaaaaaaa\"", ARCA_EPARSE, "\"platform\"");
	expect_attest("nonce", "\"" B64_32_SEQ B64_32_SEQ "\"", ARCA_EPARSE, "\"nonce\" must be base64 of exactly 32");
	expect_attest("pubkey", "\"AAEC\"", ARCA_EPARSE, "\"pubkey\" must be base64 of exactly 32");
	expect_attest("pubkey", "\"" B64_32_SEQ "=\"", ARCA_EPARSE, "\"pubkey\" must be base64 of exactly 32");
	expect_attest("evidence", "\"\"", ARCA_EPARSE, "\"evidence\" must be base64");
	expect_attest("evidence", "\"QVJDQUVWMDE\"", ARCA_EPARSE, "\"evidence\" must be base64");
	expect_attest("evidence", "\"QVJD!UVWMDE=\"", ARCA_EPARSE, "\"evidence\" must be base64");

	/* Evidence of exactly the limit is fine, one byte more is not. */
	size_t n = ARCA_MAX_EVIDENCE;
	uint8_t *raw = calloc(1, n + 1);
	char *b64 = malloc(ARCA_B64_LEN(n + 1) + 2);
	b64[0] = '"';
	arca_b64_encode(raw, n, b64 + 1);
	memcpy(b64 + ARCA_B64_LEN(n), "\"", 2);
	expect_attest("evidence", b64, 0, NULL);
	arca_b64_encode(raw, n + 1, b64 + 1);
	memcpy(b64 + ARCA_B64_LEN(n + 1), "\"", 2);
	expect_attest("evidence", b64, ARCA_EPARSE, "\"evidence\" must be base64 of 1 to");
	free(raw);
	free(b64);

	/* The whole body is bounded. */
	size_t big = ARCA_MAX_BODY + 1;
	char *body = malloc(big);
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	struct arca_msg_attest d;
	struct arca_errbuf e;
	assert_int_equal(arca_msg_attest_decode(u(body), big, &d, &e), ARCA_ETOOBIG);
	free(body);
}

/* ---- sealed, error, policy ---- */

static void test_sealed(void **state)
{
	uint8_t box[100];
	struct arca_buf b, out;
	struct arca_errbuf e;

	for (size_t i = 0; i < sizeof(box); i++)
		box[i] = (uint8_t)(i ^ 0x5a);
	arca_buf_init(&b, 1 << 20, 0);
	arca_buf_init(&out, 1 << 20, 0);
	assert_int_equal(arca_msg_sealed_encode(box, sizeof(box), &b), 0);
	assert_true(strncmp((char *)b.p, "{\"config\":\"", 11) == 0);
	assert_int_equal(arca_msg_sealed_decode(b.p, b.len, &out, &e), 0);
	assert_int_equal(out.len, sizeof(box));
	assert_memory_equal(out.p, box, sizeof(box));

	/* A box shorter than key + nonce + tag cannot be one. */
	assert_int_equal(arca_msg_sealed_encode(box, 59, &b), ARCA_EINVAL);
	const char *shortbox = "{\"config\":\"QUJD\"}";
	arca_buf_reset(&out);
	assert_int_equal(arca_msg_sealed_decode(u(shortbox), strlen(shortbox), &out, &e), ARCA_EPARSE);
	assert_non_null(strstr(e.msg, "\"config\""));
	assert_int_equal(out.len, 0);
	const char *extra = "{\"config\":\"QUJD\",\"x\":1}";
	assert_int_equal(arca_msg_sealed_decode(u(extra), strlen(extra), &out, &e), ARCA_EPARSE);
	assert_non_null(strstr(e.msg, "unknown key \"x\""));
	const char *num = "{\"config\":5}";
	assert_int_equal(arca_msg_sealed_decode(u(num), strlen(num), &out, &e), ARCA_EPARSE);
	const char *none = "{}";
	assert_int_equal(arca_msg_sealed_decode(u(none), strlen(none), &out, &e), ARCA_EPARSE);
	assert_non_null(strstr(e.msg, "missing key \"config\""));

	/* The caller's buffer limit holds. */
	struct arca_buf small;
	arca_buf_init(&small, 50, 0);
	assert_true(arca_msg_sealed_decode(b.p, b.len, &small, &e) < 0);
	assert_int_equal(small.len, 0);
	arca_buf_free(&small);
	arca_buf_free(&b);
	arca_buf_free(&out);
}

static void test_error_msg(void **state)
{
	struct arca_buf b;
	char code[64], detail[256];

	arca_buf_init(&b, 4096, 0);
	assert_int_equal(arca_msg_error_encode("nonce_invalid", "The nonce is unknown or was already used.", &b), 0);
	assert_string_equal((char *)b.p,
			    "{\"detail\":\"The nonce is unknown or was already used.\",\"error\":\"nonce_invalid\"}");
	assert_int_equal(arca_msg_error_decode(b.p, b.len, code, detail), 0);
	assert_string_equal(code, "nonce_invalid");
	assert_string_equal(detail, "The nonce is unknown or was already used.");
	assert_int_equal(arca_msg_error_encode("Bad Code", "x", &b), ARCA_EINVAL);
	assert_int_equal(arca_msg_error_encode("bad", "\xff\xfe", &b), ARCA_EINVAL);

	const char *esc = "{\"error\":\"internal\",\"detail\":\"a\\u001b[31mb\\nc\\u009bd\"}";
	assert_int_equal(arca_msg_error_decode(u(esc), strlen(esc), code, detail), 0);
	assert_string_equal(detail, "a?[31mb\nc??d");

	/* A long detail is cut at a character boundary. */
	struct arca_buf lng;
	arca_buf_init(&lng, 8192, 0);
	assert_int_equal(arca_buf_appends(&lng, "{\"error\":\"invalid_policy\",\"detail\":\"ab"), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(arca_buf_appends(&lng, "\xc3\xa9"), 0);
	assert_int_equal(arca_buf_appends(&lng, "\"}"), 0);
	assert_int_equal(arca_msg_error_decode(lng.p, lng.len, code, detail), 0);
	/* 255 bytes would end in the middle of an e-acute. */
	assert_int_equal(strlen(detail), 254);
	assert_int_equal((unsigned char)detail[253], 0xa9);
	arca_buf_free(&lng);

	const char *bad[] = {
		"{\"error\":\"x\"}",
		"{\"error\":\"x\",\"detail\":\"y\",\"z\":1}",
		"{\"error\":1,\"detail\":\"y\"}",
		"{\"error\":\"X Y\",\"detail\":\"y\"}",
		"{\"error\":\"\",\"detail\":\"y\"}",
		"{\"error\":\"x\",\"detail\":false}",
		"not json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(arca_msg_error_decode(u(bad[i]), strlen(bad[i]), code, detail) < 0);
		assert_string_equal(code, "");
	}
	arca_buf_free(&b);
}

static void test_policy_msg(void **state)
{
	const char *yaml = "name: payroll\nservices: []\n# \"quoted\" \\ tab\t\n";
	struct arca_buf b, y;
	struct arca_errbuf e;

	arca_buf_init(&b, 1 << 20, 0);
	arca_buf_init(&y, ARCA_POLICY_MAX_BYTES, 1);
	assert_int_equal(arca_msg_policy_encode(yaml, strlen(yaml), &b), 0);
	assert_int_equal(arca_msg_policy_decode(b.p, b.len, &y, &e), 0);
	assert_int_equal(y.len, strlen(yaml));
	assert_memory_equal(y.p, yaml, y.len);

	assert_int_equal(arca_msg_policy_encode("a\0b", 3, &b), ARCA_EINVAL);
	/* A policy of the largest size with a line break every 8 bytes grows
	 * by an eighth when escaped: the body still fits. */
	char *big = malloc(ARCA_POLICY_MAX_BYTES);
	for (size_t i = 0; i < ARCA_POLICY_MAX_BYTES; i++)
		big[i] = i % 8 == 7 ? '\n' : 'a';
	arca_buf_free(&b);
	arca_buf_init(&b, ARCA_MAX_BODY, 0);
	assert_int_equal(arca_msg_policy_encode(big, ARCA_POLICY_MAX_BYTES, &b), 0);
	assert_true(b.len > ARCA_POLICY_MAX_BYTES);
	arca_buf_reset(&y);
	assert_int_equal(arca_msg_policy_decode(b.p, b.len, &y, &e), 0);
	assert_int_equal(y.len, ARCA_POLICY_MAX_BYTES);
	assert_memory_equal(y.p, big, y.len);
	/* Escaping that makes the body larger than ARCA_MAX_BODY: CAS would
	 * refuse it, so it is not sent. */
	memset(big, '\t', ARCA_POLICY_MAX_BYTES);
	arca_buf_reset(&b);
	assert_int_equal(arca_msg_policy_encode(big, ARCA_POLICY_MAX_BYTES, &b), ARCA_ETOOBIG);
	assert_int_equal(b.len, 0);
	free(big);
	assert_int_equal(arca_msg_policy_encode("", 0, &b), ARCA_EINVAL);
	const char *bad[][2] = {
		{"{\"policy\":\"x\",\"y\":1}", "unknown key \"y\""},
		{"{}", "missing key \"policy\""},
		{"{\"policy\":[]}", "\"policy\" must be a string"},
		{"{\"policy\":\"\"}", "\"policy\" must be 1 to"},
		{"{\"policy\":\"a\\u0000b\"}", "not valid JSON"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		arca_buf_reset(&y);
		memset(e.msg, 0, sizeof(e.msg));
		assert_int_equal(arca_msg_policy_decode(u(bad[i][0]), strlen(bad[i][0]), &y, &e), ARCA_EPARSE);
		if (strstr(e.msg, bad[i][1]) == NULL)
			fail_msg("%s: \"%s\"", bad[i][0], e.msg);
	}
	arca_buf_free(&b);
	arca_buf_free(&y);
}

/* ---- configuration ---- */

static void test_config_kat_and_roundtrip(void **state)
{
	char *argv[] = {"/usr/bin/python3", "/app/server.py", "--port=8080", NULL};
	char *env[] = {"DB_PASSWORD=s3cr\"et\\", "EMPTY=", "X==y", NULL};
	uint8_t bin[] = {0, 1, 2, 0xff, 0xfe, '\n', 0};
	struct arca_file_entry files[] = {
		{.path = "/etc/app/app.ini", .data = (uint8_t *)"password = s3cret\n", .len = 18},
		{.path = "/etc/app/key.bin", .data = bin, .len = sizeof(bin)},
		{.path = "/etc/empty", .data = NULL, .len = 0},
	};
	struct arca_config c = {argv, 3, env, 3, files, 3, NULL, 0}, *d = NULL;
	struct arca_errbuf e;
	struct arca_buf b;

	arca_buf_init(&b, ARCA_MAX_CONFIG, 1);
	assert_int_equal(arca_config_encode(&c, &b), 0);
	assert_string_equal((char *)b.p,
			    "{\"argv\":[\"/usr/bin/python3\",\"/app/server.py\",\"--port=8080\"],"
			    "\"env\":[\"DB_PASSWORD=s3cr\\\"et\\\\\",\"EMPTY=\",\"X==y\"],"
			    "\"files\":[{\"data\":\"cGFzc3dvcmQgPSBzM2NyZXQK\",\"path\":\"/etc/app/app.ini\"},"
			    "{\"data\":\"AAEC//4KAA==\",\"path\":\"/etc/app/key.bin\"},"
			    "{\"data\":\"\",\"path\":\"/etc/empty\"}]}");
	assert_int_equal(arca_config_decode(b.p, b.len, &d, &e), 0);
	assert_int_equal(d->argc, 3);
	assert_int_equal(d->nenv, 3);
	assert_int_equal(d->nfiles, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(d->argv[i], argv[i]);
		assert_string_equal(d->env[i], env[i]);
		assert_string_equal(d->files[i].path, files[i].path);
		assert_int_equal(d->files[i].len, files[i].len);
		assert_non_null(d->files[i].data);
		if (files[i].len)
			assert_memory_equal(d->files[i].data, files[i].data, files[i].len);
	}
	/* NULL-terminated for execve. */
	assert_null(d->argv[3]);
	assert_null(d->env[3]);
	arca_config_free(d);
	arca_config_free(NULL);

	/* Minimal: one argv entry, nothing else. */
	const char *min = "{\"argv\":[\"a\"],\"env\":[],\"files\":[]}";
	assert_int_equal(arca_config_decode(u(min), strlen(min), &d, &e), 0);
	assert_int_equal(d->argc, 1);
	assert_int_equal(d->nenv, 0);
	assert_int_equal(d->nfiles, 0);
	assert_null(d->env[0]);
	arca_config_free(d);
	arca_buf_free(&b);
}

static void test_config_encode_refusals(void **state)
{
	char *argv[] = {"/bin/true", NULL};
	char *noeq[] = {"NOEQUALS", NULL};
	char *leadeq[] = {"=value", NULL};
	char *binary[] = {"K=\xff\xfe", NULL};
	struct arca_file_entry rel = {.path = "etc/x", .data = (uint8_t *)"a", .len = 1};
	struct arca_config c;
	struct arca_buf b;

	arca_buf_init(&b, ARCA_MAX_CONFIG, 1);
	c = (struct arca_config){argv, 0, NULL, 0, NULL, 0, NULL, 0};
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	c = (struct arca_config){argv, 1, noeq, 1, NULL, 0, NULL, 0};
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	c = (struct arca_config){argv, 1, leadeq, 1, NULL, 0, NULL, 0};
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	/* Raw bytes are not JSON text: binary secrets go as hex or base64. */
	c = (struct arca_config){argv, 1, binary, 1, NULL, 0, NULL, 0};
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	c = (struct arca_config){argv, 1, NULL, 0, &rel, 1, NULL, 0};
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	assert_int_equal(b.len, 0);

	/* Nothing the shield would refuse for its size is ever sent. */
	size_t big = (size_t)ARCA_MAX_CONFIG / 4 * 3 + 1;
	struct arca_file_entry huge = {.path = "/big", .data = calloc(1, big), .len = big};
	c = (struct arca_config){argv, 1, NULL, 0, &huge, 1, NULL, 0};
	assert_int_equal(arca_config_encode(&c, &b), ARCA_ETOOBIG);
	assert_int_equal(b.len, 0);
	huge.len = big - 1024;
	assert_int_equal(arca_config_encode(&c, &b), 0);
	struct arca_config *d;
	struct arca_errbuf e;
	assert_int_equal(arca_config_decode(b.p, b.len, &d, &e), 0);
	assert_int_equal(d->files[0].len, big - 1024);
	arca_config_free(d);
	free(huge.data);
	arca_buf_free(&b);
}

static void expect_config_refused(const char *json, const char *needle)
{
	struct arca_config *d = (struct arca_config *)1;
	struct arca_errbuf e = {{0}};
	int rc = arca_config_decode(u(json), strlen(json), &d, &e);

	if (rc >= 0 || strstr(e.msg, needle) == NULL)
		fail_msg("%s: rc %d, \"%s\"", json, rc, e.msg);
	assert_null(d);
}

static void test_config_refusals(void **state)
{
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"cwd\":\"/\"}", "unknown key \"cwd\"");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[]}", "missing key \"files\"");
	expect_config_refused("{\"env\":[],\"files\":[]}", "missing key \"argv\"");
	expect_config_refused("{\"argv\":[],\"env\":[],\"files\":[]}", "\"argv\" must have 1 to");
	expect_config_refused("{\"argv\":\"a\",\"env\":[],\"files\":[]}", "\"argv\" must be an array");
	expect_config_refused("{\"argv\":[1],\"env\":[],\"files\":[]}", "\"argv\"[0] must be a string");
	expect_config_refused("{\"argv\":[\"a\",null],\"env\":[],\"files\":[]}", "\"argv\"[1] must be a string");
	expect_config_refused("{\"argv\":[\"a\\u0000b\"],\"env\":[],\"files\":[]}", "not valid JSON");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[\"A=1\",\"B\"],\"files\":[]}",
			      "\"env\"[1] must have the form NAME=VALUE");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[\"=x\"],\"files\":[]}", "\"env\"[0] must have the form");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":{},\"files\":[]}", "\"env\" must be an array");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":{}}", "\"files\" must be an array");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[\"x\"]}", "\"files\"[0] must be an object");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[{\"path\":\"/a\"}]}",
			      "\"files\"[0]: missing key \"data\"");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[{\"path\":\"/a\",\"data\":\"\",\"mode\":1}]}",
			      "\"files\"[0]: unknown key \"mode\"");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[{\"path\":\"/a\",\"data\":\"\"},"
			      "{\"path\":\"rel\",\"data\":\"\"}]}",
			      "\"files\"[1]: \"path\" must be an absolute path");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[{\"path\":\"/a\",\"data\":\"YW=\"}]}",
			      "\"files\"[0]: \"data\" must be base64");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[{\"path\":\"/a\",\"data\":\"YWJj\\n\"}]}",
			      "\"files\"[0]: \"data\" must be base64");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[{\"path\":\"/a\",\"data\":7}]}",
			      "\"files\"[0]: \"data\" must be a string");
	expect_config_refused("{\"argv\":[\"a\"],\"argv\":[\"b\"],\"env\":[],\"files\":[]}", "not valid JSON");
	expect_config_refused("[]", "expected a JSON object");
}


/* ---- volumes in the configuration ---- */

#define TAG_SEQ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void fill_volumes(struct arca_config_volume v[2])
{
	memset(v, 0, 2 * sizeof(*v));
	snprintf(v[0].name, sizeof(v[0].name), "data");
	snprintf(v[0].path, sizeof(v[0].path), "/var/lib/app");
	v[0].mode = 1;
	for (int i = 0; i < 32; i++)
		v[0].key[i] = (uint8_t)i;
	/* no tag yet: a new data volume */
	snprintf(v[1].name, sizeof(v[1].name), "code");
	snprintf(v[1].path, sizeof(v[1].path), "/opt/app");
	v[1].mode = 2;
	v[1].has_tag = 1;
	for (int i = 0; i < 32; i++)
		v[1].tag[i] = (uint8_t)i;
	v[1].readonly = 1;
	for (int i = 0; i < 32; i++)
		v[1].token[i] = (uint8_t)i;
}

static void test_config_volumes_kat_and_roundtrip(void **state)
{
	char *argv[] = {"/bin/app", NULL};
	struct arca_config_volume v[2];
	struct arca_config c = {argv, 1, NULL, 0, NULL, 0, v, 2}, *d = NULL;
	struct arca_errbuf e = {{0}};
	struct arca_buf b;

	fill_volumes(v);
	arca_buf_init(&b, ARCA_MAX_CONFIG, 1);
	assert_int_equal(arca_config_encode(&c, &b), 0);
	assert_string_equal((char *)b.p,
			    "{\"argv\":[\"/bin/app\"],\"env\":[],\"files\":[],\"volumes\":["
			    "{\"key\":\"" B64_32_SEQ "\",\"mode\":\"encrypted\",\"name\":\"data\",\"path\":\"/var/lib/app\","
			    "\"readonly\":false,\"tag\":null,\"token\":\"" B64_32_ZERO "\"},"
			    "{\"key\":\"" B64_32_ZERO "\",\"mode\":\"authenticated\",\"name\":\"code\",\"path\":\"/opt/app\","
			    "\"readonly\":true,\"tag\":\"" TAG_SEQ "\",\"token\":\"" B64_32_SEQ "\"}]}");
	assert_int_equal(arca_config_decode(b.p, b.len, &d, &e), 0);
	assert_int_equal(d->nvolumes, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(d->volumes[i].name, v[i].name);
		assert_string_equal(d->volumes[i].path, v[i].path);
		assert_int_equal(d->volumes[i].mode, v[i].mode);
		assert_memory_equal(d->volumes[i].key, v[i].key, 32);
		assert_int_equal(d->volumes[i].has_tag, v[i].has_tag);
		assert_memory_equal(d->volumes[i].tag, v[i].tag, 32);
		assert_int_equal(d->volumes[i].readonly, v[i].readonly);
		assert_memory_equal(d->volumes[i].token, v[i].token, 32);
	}
	arca_config_free(d);

	/* No volumes: no "volumes" key, the shape configurations had before. */
	c.nvolumes = 0;
	arca_buf_reset(&b);
	assert_int_equal(arca_config_encode(&c, &b), 0);
	assert_string_equal((char *)b.p, "{\"argv\":[\"/bin/app\"],\"env\":[],\"files\":[]}");
	assert_int_equal(arca_config_decode(b.p, b.len, &d, &e), 0);
	assert_int_equal(d->nvolumes, 0);
	arca_config_free(d);
	/* An empty list is accepted as none. */
	const char *empty = "{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":[]}";
	assert_int_equal(arca_config_decode(u(empty), strlen(empty), &d, &e), 0);
	assert_int_equal(d->nvolumes, 0);
	arca_config_free(d);
	arca_buf_free(&b);
}

static void test_config_volumes_encode_refusals(void **state)
{
	char *argv[] = {"/bin/app", NULL};
	struct arca_config_volume v[2];
	struct arca_config c = {argv, 1, NULL, 0, NULL, 0, v, 2};
	struct arca_buf b;

	arca_buf_init(&b, ARCA_MAX_CONFIG, 1);
	fill_volumes(v);
	assert_int_equal(arca_config_encode(&c, &b), 0);
	arca_buf_reset(&b);
	/* Each of these is something the shield's decoder refuses. */
	fill_volumes(v);
	v[0].mode = 3;
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	v[1].has_tag = 0; /* read-only without a pinned tag */
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	snprintf(v[1].name, sizeof(v[1].name), "a/b");
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	snprintf(v[1].name, sizeof(v[1].name), "..");
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	snprintf(v[1].path, sizeof(v[1].path), "/var/lib/app");
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	snprintf(v[1].name, sizeof(v[1].name), "data");
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	snprintf(v[0].path, sizeof(v[0].path), "/var/lib/");
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	fill_volumes(v);
	memset(v[0].path, 'a', sizeof(v[0].path)); /* not terminated */
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	c.volumes = NULL;
	assert_int_equal(arca_config_encode(&c, &b), ARCA_EINVAL);
	assert_int_equal(b.len, 0);
	arca_buf_free(&b);
}

/* One volume entry with member k replaced by "k":val (or removed when val
 * is NULL, or an extra member added when k is unknown). */
static void volume_json_with(char *out, size_t cap, const char *k, const char *val)
{
	static const char *const keys[] = {"name", "path", "mode", "key", "tag", "readonly", "token"};
	static const char *const vals[] = {"\"data\"", "\"/var/lib/app\"", "\"encrypted\"", "\"" B64_32_SEQ "\"",
					   "\"" TAG_SEQ "\"", "false", "\"" B64_32_ZERO "\""};
	size_t o = 0;
	int found = 0;

	o += (size_t)snprintf(out + o, cap - o, "{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":[{");
	for (size_t i = 0; i < 7; i++) {
		const char *v = vals[i];
		if (strcmp(keys[i], k) == 0) {
			found = 1;
			if (val == NULL)
				continue;
			v = val;
		}
		o += (size_t)snprintf(out + o, cap - o, "%s\"%s\":%s", o && out[o - 1] != '{' ? "," : "", keys[i], v);
	}
	if (!found)
		o += (size_t)snprintf(out + o, cap - o, ",\"%s\":%s", k, val);
	snprintf(out + o, cap - o, "}]}");
}

static void expect_volume_refused(const char *k, const char *val, const char *needle)
{
	char json[1024];

	volume_json_with(json, sizeof(json), k, val);
	expect_config_refused(json, needle);
}

static void test_config_volumes_refusals(void **state)
{
	char json[1024];
	struct arca_config *d = NULL;
	struct arca_errbuf e = {{0}};

	/* The template itself decodes. */
	volume_json_with(json, sizeof(json), "name", "\"data\"");
	assert_int_equal(arca_config_decode(u(json), strlen(json), &d, &e), 0);
	assert_int_equal(d->nvolumes, 1);
	assert_int_equal(d->volumes[0].has_tag, 1);
	arca_config_free(d);

	expect_volume_refused("size", "1", "\"volumes\"[0]: unknown key \"size\"");
	expect_volume_refused("token", NULL, "\"volumes\"[0]: missing key \"token\"");
	expect_volume_refused("readonly", NULL, "missing key \"readonly\"");
	/* wrong key length: 31 and 33 bytes, and not base64 */
	expect_volume_refused("key", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"",
			      "\"key\" must be base64 of exactly 32 bytes");
	expect_volume_refused("key", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\"",
			      "\"key\" must be base64 of exactly 32 bytes");
	expect_volume_refused("key", "\"!AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"", "\"key\" must be base64");
	expect_volume_refused("key", "null", "\"key\" must be a string");
	expect_volume_refused("token", "\"AAAA\"", "\"token\" must be base64 of exactly 32 bytes");
	/* bad hex */
	expect_volume_refused("tag", "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\"",
			      "\"tag\" must be 64 lower-case hex digits or null");
	expect_volume_refused("tag", "\"g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"",
			      "\"tag\" must be 64 lower-case hex digits");
	expect_volume_refused("tag", "\"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\"",
			      "\"tag\" must be 64 lower-case hex digits");
	expect_volume_refused("tag", "\"" TAG_SEQ "00\"", "\"tag\" must be 64 lower-case hex digits");
	expect_volume_refused("tag", "7", "\"tag\" must be 64 lower-case hex digits");
	expect_volume_refused("readonly", "1", "\"readonly\" must be true or false");
	expect_volume_refused("mode", "\"plain\"", "\"mode\" must be \"encrypted\" or \"authenticated\"");
	expect_volume_refused("name", "\"a/b\"", "\"name\" must be a volume name");
	expect_volume_refused("name", "\"..\"", "\"name\" must be a volume name");
	expect_volume_refused("name", "\"\"", "\"name\" must be a volume name");
	expect_volume_refused("path", "\"var/lib\"", "\"path\" must be an absolute, normalised");
	expect_volume_refused("path", "\"/\"", "\"path\" must be an absolute, normalised");
	expect_volume_refused("path", "\"/a/../b\"", "\"path\" must be an absolute, normalised");
	expect_volume_refused("path", "\"/a//b\"", "\"path\" must be an absolute, normalised");
	expect_volume_refused("path", "\"/a/\"", "\"path\" must be an absolute, normalised");

	/* A read-only (code) volume without a tag cannot be opened safely. */
	volume_json_with(json, sizeof(json), "readonly", "true");
	assert_int_equal(arca_config_decode(u(json), strlen(json), &d, &e), 0);
	arca_config_free(d);
	d = NULL;
	char *p = strstr(json, "\"tag\":\"");
	assert_non_null(p);
	memcpy(p + 6, "null", 4);
	memmove(p + 10, p + 6 + 66, strlen(p + 6 + 66) + 1);
	expect_config_refused(json, "a read-only (code) volume must have a tag");

	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":{}}",
			      "\"volumes\" must be an array of objects");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":null}",
			      "\"volumes\" must be an array of objects");
	expect_config_refused("{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":[1]}",
			      "\"volumes\"[0] must be an object");
	/* the same name or path twice */
	const char *one = "{\"key\":\"" B64_32_SEQ "\",\"mode\":\"encrypted\",\"name\":\"data\",\"path\":\"/d\","
			  "\"readonly\":false,\"tag\":null,\"token\":\"" B64_32_ZERO "\"}";
	const char *two = "{\"key\":\"" B64_32_SEQ "\",\"mode\":\"encrypted\",\"name\":\"data\",\"path\":\"/e\","
			  "\"readonly\":false,\"tag\":null,\"token\":\"" B64_32_ZERO "\"}";
	const char *three = "{\"key\":\"" B64_32_SEQ "\",\"mode\":\"encrypted\",\"name\":\"other\",\"path\":\"/d\","
			    "\"readonly\":false,\"tag\":null,\"token\":\"" B64_32_ZERO "\"}";
	snprintf(json, sizeof(json), "{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":[%s,%s]}", one, two);
	expect_config_refused(json, "\"volumes\"[1]: volume name given twice");
	snprintf(json, sizeof(json), "{\"argv\":[\"a\"],\"env\":[],\"files\":[],\"volumes\":[%s,%s]}", one, three);
	expect_config_refused(json, "\"volumes\"[1]: path given twice");
}

/* ---- volume tags ---- */

static void test_voltag_kat_and_roundtrip(void **state)
{
	struct arca_msg_voltag m, d;
	struct arca_errbuf e = {{0}};
	struct arca_buf b;

	memset(&m, 0, sizeof(m));
	for (int i = 0; i < 32; i++) {
		m.token[i] = (uint8_t)i;
		m.tag[i] = (uint8_t)(0xff - i);
	}
	arca_buf_init(&b, 4096, 1);
	/* previous absent: a volume CAS holds no tag for yet */
	assert_int_equal(arca_msg_voltag_encode(&m, &b), 0);
	assert_string_equal((char *)b.p, "{\"previous\":null,\"tag\":"
					  "\"fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0\","
					  "\"token\":\"" B64_32_SEQ "\"}");
	assert_int_equal(arca_msg_voltag_decode(b.p, b.len, &d, &e), 0);
	assert_int_equal(d.has_previous, 0);
	assert_memory_equal(d.tag, m.tag, 32);
	assert_memory_equal(d.token, m.token, 32);

	m.has_previous = 1;
	for (int i = 0; i < 32; i++)
		m.previous[i] = (uint8_t)i;
	arca_buf_reset(&b);
	assert_int_equal(arca_msg_voltag_encode(&m, &b), 0);
	assert_non_null(strstr((char *)b.p, "\"previous\":\"" TAG_SEQ "\""));
	assert_int_equal(arca_msg_voltag_decode(b.p, b.len, &d, &e), 0);
	assert_int_equal(d.has_previous, 1);
	assert_memory_equal(d.previous, m.previous, 32);
	assert_memory_equal(d.tag, m.tag, 32);

	m.has_previous = 2;
	assert_int_equal(arca_msg_voltag_encode(&m, &b), ARCA_EINVAL);
	arca_buf_free(&b);
}

static void expect_voltag_refused(const char *json, const char *needle)
{
	struct arca_msg_voltag d;
	struct arca_errbuf e = {{0}};
	int rc;

	memset(&d, 0x55, sizeof(d));
	rc = arca_msg_voltag_decode(u(json), strlen(json), &d, &e);
	if (rc >= 0 || strstr(e.msg, needle) == NULL)
		fail_msg("%s: rc %d, \"%s\"", json, rc, e.msg);
	/* nothing half-decoded is left behind */
	static const uint8_t zero[sizeof(d)];
	assert_memory_equal(&d, zero, sizeof(d));
}

static void test_voltag_refusals(void **state)
{
#define TOK "\"token\":\"" B64_32_SEQ "\""
#define TAG "\"tag\":\"" TAG_SEQ "\""
	expect_voltag_refused("{" TOK ",\"previous\":null," TAG ",\"x\":1}", "unknown key \"x\"");
	expect_voltag_refused("{" TOK "," TAG "}", "missing key \"previous\"");
	expect_voltag_refused("{\"previous\":null," TAG "}", "missing key \"token\"");
	expect_voltag_refused("{" TOK ",\"previous\":null}", "missing key \"tag\"");
	expect_voltag_refused("{" TOK ",\"previous\":null,\"tag\":null}", "\"tag\" must be 64 lower-case hex digits");
	expect_voltag_refused("{" TOK ",\"previous\":\"\"," TAG "}", "\"previous\" must be 64 lower-case hex digits or null");
	expect_voltag_refused("{" TOK ",\"previous\":\"" TAG_SEQ "0\"," TAG "}", "\"previous\" must be 64");
	expect_voltag_refused("{" TOK ",\"previous\":null,\"tag\":\"000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f\"}",
			      "\"tag\" must be 64 lower-case hex digits");
	expect_voltag_refused("{" TOK ",\"previous\":null,\"tag\":\"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}",
			      "\"tag\" must be 64 lower-case hex digits");
	expect_voltag_refused("{\"token\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\",\"previous\":null," TAG "}",
			      "\"token\" must be base64 of exactly 32 bytes");
	expect_voltag_refused("{\"token\":7,\"previous\":null," TAG "}", "\"token\" must be a string");
	expect_voltag_refused("{" TOK ",\"previous\":null," TAG "} x", "not valid JSON");
	expect_voltag_refused("[]", "expected a JSON object");
#undef TOK
#undef TAG
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_data_kat),
		cmocka_unit_test(test_nonce_kat_and_roundtrip),
		cmocka_unit_test(test_nonce_refusals),
		cmocka_unit_test(test_attest_roundtrip),
		cmocka_unit_test(test_attest_refusals),
		cmocka_unit_test(test_sealed),
		cmocka_unit_test(test_error_msg),
		cmocka_unit_test(test_policy_msg),
		cmocka_unit_test(test_config_kat_and_roundtrip),
		cmocka_unit_test(test_config_encode_refusals),
		cmocka_unit_test(test_config_refusals),
		cmocka_unit_test(test_config_volumes_kat_and_roundtrip),
		cmocka_unit_test(test_config_volumes_encode_refusals),
		cmocka_unit_test(test_config_volumes_refusals),
		cmocka_unit_test(test_voltag_kat_and_roundtrip),
		cmocka_unit_test(test_voltag_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
