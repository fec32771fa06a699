/* test_encode.c: known answers and strictness of hex/base64/base64url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arca/encode.h"

static const struct { const char *in, *b64, *hex; } rfc4648[] = {
	{ "", "", "" },
	{ "f", "Zg==", "66" },
	{ "fo", "Zm8=", "666f" },
	{ "foo", "Zm9v", "666f6f" },
	{ "foob", "Zm9vYg==", "666f6f62" },
	{ "fooba", "Zm9vYmE=", "666f6f6261" },
	{ "foobar", "Zm9vYmFy", "666f6f626172" },
};

static void test_rfc4648_known_answers(void **state)
{
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		const char *in = rfc4648[i].in;
		size_t n = strlen(in);
		char out[64];
		uint8_t dec[64];
		size_t declen = 99;

		arca_b64_encode((const uint8_t *)in, n, out);
		assert_string_equal(out, rfc4648[i].b64);
		assert_int_equal(arca_b64_decode(out, strlen(out), dec, sizeof dec, &declen), 0);
		assert_int_equal(declen, n);
		assert_memory_equal(dec, in, n);

		/* base64url of these inputs is the same text without padding. */
		arca_b64url_encode((const uint8_t *)in, n, out);
		size_t unpadded = strcspn(rfc4648[i].b64, "=");
		assert_int_equal(strlen(out), unpadded);
		assert_memory_equal(out, rfc4648[i].b64, unpadded);
		declen = 99;
		assert_int_equal(arca_b64url_decode(out, strlen(out), dec, sizeof dec, &declen), 0);
		assert_int_equal(declen, n);
		assert_memory_equal(dec, in, n);

		arca_hex_encode((const uint8_t *)in, n, out);
		assert_string_equal(out, rfc4648[i].hex);
		declen = 99;
		assert_int_equal(arca_hex_decode(out, strlen(out), dec, sizeof dec, &declen), 0);
		assert_int_equal(declen, n);
		assert_memory_equal(dec, in, n);
	}
}

static void test_alphabets_differ(void **state)
{
	const uint8_t in[] = { 0xfb, 0xff, 0xbf };
	char out[16];
	uint8_t dec[8];
	size_t n;

	arca_b64_encode(in, 2, out);
	assert_string_equal(out, "+/8=");
	arca_b64url_encode(in, 2, out);
	assert_string_equal(out, "-_8");
	arca_b64_encode(in, 3, out);
	assert_string_equal(out, "+/+/");
	arca_b64url_encode(in, 3, out);
	assert_string_equal(out, "-_-_");

	/* Each decoder refuses the other's alphabet. */
	assert_int_equal(arca_b64_decode("-_-_", 4, dec, sizeof dec, &n), ARCA_EPARSE);
	assert_int_equal(arca_b64url_decode("+/+/", 4, dec, sizeof dec, &n), ARCA_EPARSE);
	assert_int_equal(arca_b64url_decode("-_8", 3, dec, sizeof dec, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(dec, in, 2);
}

static void test_b64_rejects(void **state)
{
	static const char *bad[] = {
		"Zg=",       /* length not a multiple of 4 */
		"Zg",        /* padding missing */
		"Zg===",     /* too much padding */
		"Z===",      /* padding covering more than a quantum allows */
		"====",
		"Zg==Zg==",  /* padding in the middle */
		"Zm=v",
		"Zm9v\n",    /* whitespace */
		" Zm9v",
		"Zm9 v",
		"Zm9v\r\n",
		"Zh==",      /* non-canonical: trailing bits set */
		"Zm9=",
		"Zm-v",      /* url alphabet */
		"Zm_v",
		"Zm\x80v",   /* high byte */
	};
	uint8_t out[16];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t n = 77;
		int rc = arca_b64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n);
		if (rc != ARCA_EPARSE)
			fail_msg("accepted or wrong code %d for \"%s\"", rc, bad[i]);
		assert_int_equal(n, 0);
	}
	/* An embedded NUL is a bad character, not the end of the input. */
	assert_int_equal(arca_b64_decode("Zg\0=", 4, out, sizeof out, NULL), ARCA_EPARSE);
}

static void test_b64url_rejects(void **state)
{
	static const char *bad[] = {
		"Zg==",  /* padding is not allowed */
		"Zm8=",
		"Z",     /* 1 mod 4 can never be valid */
		"Zm9vY",
		"Zh",    /* trailing bits */
		"Zm9",
		"+/8",
		"Zm 8",
		"Zm8\n",
	};
	uint8_t out[16];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = arca_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out, NULL);
		if (rc != ARCA_EPARSE)
			fail_msg("accepted or wrong code %d for \"%s\"", rc, bad[i]);
	}
}

static void test_hex_rejects(void **state)
{
	uint8_t out[8];
	size_t n;
	assert_int_equal(arca_hex_decode("abc", 3, out, sizeof out, &n), ARCA_EPARSE);
	assert_int_equal(arca_hex_decode("0g", 2, out, sizeof out, &n), ARCA_EPARSE);
	assert_int_equal(arca_hex_decode("g0", 2, out, sizeof out, &n), ARCA_EPARSE);
	assert_int_equal(arca_hex_decode(" 0", 2, out, sizeof out, &n), ARCA_EPARSE);
	assert_int_equal(arca_hex_decode("0x00", 4, out, sizeof out, &n), ARCA_EPARSE);
	assert_int_equal(arca_hex_decode("00\n0", 4, out, sizeof out, &n), ARCA_EPARSE);
	/* Upper case is accepted on input, lower case produced on output. */
	assert_int_equal(arca_hex_decode("DEADbeef", 8, out, sizeof out, &n), 0);
	assert_int_equal(n, 4);
	const uint8_t want[] = { 0xde, 0xad, 0xbe, 0xef };
	assert_memory_equal(out, want, 4);
}

/* Every character, checked against the obvious table: the masked
 * arithmetic must agree with it everywhere. */
static void test_every_character(void **state)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (int c = 0; c < 256; c++) {
		char s[4] = { 'A', 'A', 'A', (char)c };
		uint8_t out[3];
		size_t n = 0;
		const char *p = c ? memchr(std, c, 64) : NULL;
		int rc = arca_b64_decode(s, 4, out, sizeof out, &n);
		if (p) {
			assert_int_equal(rc, 0);
			assert_int_equal(out[2], p - std);
		} else if (c == '=') {
			assert_int_equal(rc, 0);
			assert_int_equal(n, 2);
		} else {
			assert_int_equal(rc, ARCA_EPARSE);
		}

		p = c ? memchr(url, c, 64) : NULL;
		rc = arca_b64url_decode(s, 4, out, sizeof out, &n);
		if (p) {
			assert_int_equal(rc, 0);
			assert_int_equal(out[2], p - url);
		} else {
			assert_int_equal(rc, ARCA_EPARSE);
		}

		char h[2] = { '0', (char)c };
		int val = (c >= '0' && c <= '9') ? c - '0'
			: (c >= 'a' && c <= 'f') ? c - 'a' + 10
			: (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
		rc = arca_hex_decode(h, 2, out, 1, &n);
		if (val >= 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(out[0], val);
		} else {
			assert_int_equal(rc, ARCA_EPARSE);
		}
	}
	for (unsigned v = 0; v < 64; v++) {
		uint8_t in[3] = { 0, 0, (uint8_t)v };
		char out[5];
		arca_b64_encode(in, 3, out);
		assert_int_equal(out[3], std[v]);
		arca_b64url_encode(in, 3, out);
		assert_int_equal(out[3], url[v]);
	}
	for (unsigned v = 0; v < 256; v++) {
		uint8_t in = (uint8_t)v;
		char out[3];
		arca_hex_encode(&in, 1, out);
		assert_int_equal(out[0], "0123456789abcdef"[v >> 4]);
		assert_int_equal(out[1], "0123456789abcdef"[v & 15]);
	}
}

static void test_outcap(void **state)
{
	uint8_t out[8];
	size_t n = 77;
	assert_int_equal(arca_b64_decode("Zm9vYmFy", 8, out, 5, &n), ARCA_ETOOBIG);
	assert_int_equal(n, 0);
	assert_int_equal(arca_b64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(arca_b64_decode("Zm9vYmE=", 8, out, 4, &n), ARCA_ETOOBIG);
	assert_int_equal(arca_b64_decode("Zm9vYmE=", 8, out, 5, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(arca_b64url_decode("Zm9vYmE", 7, out, 4, &n), ARCA_ETOOBIG);
	assert_int_equal(arca_b64url_decode("Zm9vYmE", 7, out, 5, &n), 0);
	assert_int_equal(arca_hex_decode("666f6f", 6, out, 2, &n), ARCA_ETOOBIG);
	assert_int_equal(arca_hex_decode("666f6f", 6, out, 3, &n), 0);

	/* A guard byte after outcap stays untouched. */
	uint8_t guard[7];
	memset(guard, 0xAA, sizeof guard);
	assert_int_equal(arca_b64_decode("Zm9vYmFy", 8, guard, 6, &n), 0);
	assert_int_equal(guard[6], 0xAA);
}

static void test_round_trip_all_lengths(void **state)
{
	uint8_t in[100], dec[100];
	char enc[ARCA_B64_LEN(100) > ARCA_HEX_LEN(100) ? ARCA_B64_LEN(100) : ARCA_HEX_LEN(100)];
	uint32_t x = 12345;
	for (size_t len = 0; len <= sizeof in; len++) {
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			in[i] = (uint8_t)(x >> 16);
		}
		size_t n;
		arca_b64_encode(in, len, enc);
		assert_int_equal(strlen(enc), ARCA_B64_LEN(len) - 1);
		assert_int_equal(arca_b64_decode(enc, strlen(enc), dec, len, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
		arca_b64url_encode(in, len, enc);
		assert_int_equal(arca_b64url_decode(enc, strlen(enc), dec, len, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
		arca_hex_encode(in, len, enc);
		assert_int_equal(strlen(enc), 2 * len);
		assert_int_equal(arca_hex_decode(enc, strlen(enc), dec, len, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
	}
}

static void test_digest_string(void **state)
{
	uint8_t d[32], back[32];
	for (int i = 0; i < 32; i++)
		d[i] = (uint8_t)(i * 7 + 3);
	char s[ARCA_DIGEST_STR_LEN];
	arca_digest_format(d, s);
	assert_string_equal(s, "sha256:030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc");
	assert_int_equal(arca_digest_parse(s, back), 0);
	assert_memory_equal(back, d, 32);

	assert_int_equal(arca_digest_parse("sha256:030a", back), ARCA_EPARSE);
	assert_int_equal(arca_digest_parse("SHA256:030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc", back),
			 ARCA_EPARSE);
	assert_int_equal(arca_digest_parse("sha256:030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc0", back),
			 ARCA_EPARSE);
	assert_int_equal(arca_digest_parse("sha256:030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dz", back),
			 ARCA_EPARSE);
	assert_int_equal(arca_digest_parse("", back), ARCA_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_known_answers),
		cmocka_unit_test(test_alphabets_differ),
		cmocka_unit_test(test_b64_rejects),
		cmocka_unit_test(test_b64url_rejects),
		cmocka_unit_test(test_hex_rejects),
		cmocka_unit_test(test_every_character),
		cmocka_unit_test(test_outcap),
		cmocka_unit_test(test_round_trip_all_lengths),
		cmocka_unit_test(test_digest_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
