/* encode.c: hex and base64 (standard and url), strict and constant-time.
 *
 * Secrets (keys, tokens) pass through these encoders, so the mapping between
 * a 4- or 6-bit value and its character is computed with masks rather than
 * looked up in a table indexed by the secret, and decoding does the same per
 * character. Decoders stop at the first invalid character; that reveals only
 * where the input is malformed, which the caller learns anyway. */
#include <string.h>

#include "arca/encode.h"
#include "arca/crypto.h"

/* Masks: 0xFF when the relation holds, 0 otherwise; x and y below 2^16. */
static unsigned ct_lt(unsigned x, unsigned y) { return ((x - y) >> 16) & 0xFF; }
static unsigned ct_ge(unsigned x, unsigned y) { return ct_lt(x, y) ^ 0xFF; }
static unsigned ct_eq(unsigned x, unsigned y) { return ct_lt(x ^ y, 1); }
static unsigned ct_in(unsigned x, unsigned lo, unsigned hi) { return ct_ge(x, lo) & ct_lt(x, hi + 1); }

/* ---- hex ---- */

static char hex_char(unsigned v)
{
	/* v < 10: '0' + v; else 'a' + v - 10 */
	return (char)((ct_lt(v, 10) & ('0' + v)) | (ct_ge(v, 10) & ('a' + v - 10)));
}

/* 0..15, or 0x100 for an invalid character. */
static unsigned hex_val(unsigned c)
{
	unsigned d = ct_in(c, '0', '9'), l = ct_in(c, 'a', 'f'), u = ct_in(c, 'A', 'F');
	unsigned v = (d & (c - '0')) | (l & (c - 'a' + 10)) | (u & (c - 'A' + 10));
	return (v & 0xF) | ((~(d | l | u) & 1) << 8);
}

void arca_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_char(in[i] >> 4);
		out[2 * i + 1] = hex_char(in[i] & 0xF);
	}
	out[2 * n] = '\0';
}

int arca_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (outlen)
		*outlen = 0;
	ENSURE(inlen % 2 == 0, ARCA_EPARSE);
	ENSURE(inlen / 2 <= outcap, ARCA_ETOOBIG);
	for (size_t i = 0; i < inlen / 2; i++) {
		unsigned hi = hex_val((unsigned char)in[2 * i]);
		unsigned lo = hex_val((unsigned char)in[2 * i + 1]);
		if ((hi | lo) & 0x100) {
			arca_wipe(out, i);
			return ARCA_EPARSE;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (outlen)
		*outlen = inlen / 2;
	return 0;
}

/* ---- base64 ---- */

/* c62/c63 are '+' '/' (standard) or '-' '_' (url). */
static char b64_char(unsigned v, unsigned c62, unsigned c63)
{
	return (char)((ct_lt(v, 26) & ('A' + v)) | (ct_in(v, 26, 51) & ('a' + v - 26)) |
		      (ct_in(v, 52, 61) & ('0' + v - 52)) | (ct_eq(v, 62) & c62) | (ct_eq(v, 63) & c63));
}

/* 0..63, or 0x100 for a character outside the alphabet ('=' included). */
static unsigned b64_val(unsigned c, unsigned c62, unsigned c63)
{
	unsigned up = ct_in(c, 'A', 'Z'), lo = ct_in(c, 'a', 'z'), dg = ct_in(c, '0', '9');
	unsigned s62 = ct_eq(c, c62), s63 = ct_eq(c, c63);
	unsigned v = (up & (c - 'A')) | (lo & (c - 'a' + 26)) | (dg & (c - '0' + 52)) | (s62 & 62) | (s63 & 63);
	return (v & 0x3F) | ((~(up | lo | dg | s62 | s63) & 1) << 8);
}

static void b64_encode(const uint8_t *in, size_t n, char *out, int pad, unsigned c62, unsigned c63)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_char(w >> 18, c62, c63);
		out[o++] = b64_char((w >> 12) & 63, c62, c63);
		out[o++] = b64_char((w >> 6) & 63, c62, c63);
		out[o++] = b64_char(w & 63, c62, c63);
	}
	if (n - i == 1) {
		unsigned w = (unsigned)in[i] << 16;
		out[o++] = b64_char(w >> 18, c62, c63);
		out[o++] = b64_char((w >> 12) & 63, c62, c63);
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64_char(w >> 18, c62, c63);
		out[o++] = b64_char((w >> 12) & 63, c62, c63);
		out[o++] = b64_char((w >> 6) & 63, c62, c63);
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
}

/* Decodes exactly inlen characters of alphabet (no '='), which must not be
 * 1 mod 4, with zero trailing bits. */
static int b64_decode_body(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen,
			   unsigned c62, unsigned c63)
{
	ENSURE(inlen % 4 != 1, ARCA_EPARSE);
	size_t need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
	ENSURE(need <= outcap, ARCA_ETOOBIG);

	size_t o = 0;
	unsigned acc = 0, bits = 0, bad = 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned v = b64_val((unsigned char)in[i], c62, c63);
		bad |= v;
		if (v & 0x100)
			break;
		acc = (acc << 6 | v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over from the last character must be zero: otherwise two
	 * encodings would decode to the same bytes. */
	if ((bad & 0x100) || (acc & ((1u << bits) - 1)) != 0) {
		arca_wipe(out, o);
		return ARCA_EPARSE;
	}
	if (outlen)
		*outlen = o;
	return 0;
}

void arca_b64_encode(const uint8_t *in, size_t n, char *out)
{
	b64_encode(in, n, out, 1, '+', '/');
}

int arca_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (outlen)
		*outlen = 0;
	ENSURE(inlen % 4 == 0, ARCA_EPARSE);
	size_t body = inlen;
	if (body > 0 && in[body - 1] == '=') {
		body--;
		if (in[body - 1] == '=')
			body--;
	}
	/* Padding is exactly what completes the last quantum: "xx==" or "xxx=". */
	ENSURE(body % 4 != 1, ARCA_EPARSE);
	return b64_decode_body(in, body, out, outcap, outlen, '+', '/');
}

void arca_b64url_encode(const uint8_t *in, size_t n, char *out)
{
	b64_encode(in, n, out, 0, '-', '_');
}

int arca_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (outlen)
		*outlen = 0;
	return b64_decode_body(in, inlen, out, outcap, outlen, '-', '_');
}

/* ---- digests ---- */

void arca_digest_format(const uint8_t d[32], char out[ARCA_DIGEST_STR_LEN])
{
	memcpy(out, "sha256:", 7);
	arca_hex_encode(d, 32, out + 7);
}

int arca_digest_parse(const char *s, uint8_t d[32])
{
	size_t len = strnlen(s, ARCA_DIGEST_STR_LEN);
	ENSURE(len == ARCA_DIGEST_STR_LEN - 1, ARCA_EPARSE);
	ENSURE(memcmp(s, "sha256:", 7) == 0, ARCA_EPARSE);
	size_t n;
	GUARD(arca_hex_decode(s + 7, 64, d, 32, &n));
	return n == 32 ? 0 : ARCA_EPARSE;
}
