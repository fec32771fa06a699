/* encode.h: hex and base64, strict in both directions.
 *
 * Decoders refuse anything that is not exactly canonical: wrong alphabet,
 * bad padding, whitespace, trailing bits, output larger than outcap.
 * Encoders write a NUL-terminated string into a caller buffer. Hex and
 * base64 encoding of secrets runs without secret-dependent branches or
 * table lookups. */
#ifndef ARCA_ENCODE_H
#define ARCA_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include "arca/err.h"

#define ARCA_HEX_LEN(n) ((n) * 2 + 1)
#define ARCA_B64_LEN(n) ((((n) + 2) / 3) * 4 + 1)

/* Lower-case hex. out must hold 2*n+1 bytes. */
void arca_hex_encode(const uint8_t *in, size_t n, char *out);
/* Accepts upper and lower case. Returns ARCA_EPARSE on odd length or a bad
 * digit, ARCA_ETOOBIG when the result would exceed outcap. */
int arca_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen) ARCA_MUST_CHECK;

/* Standard base64 with padding (RFC 4648 section 4). */
void arca_b64_encode(const uint8_t *in, size_t n, char *out);
int arca_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen) ARCA_MUST_CHECK;

/* base64url without padding (RFC 4648 section 5), as configfs-tsm captures
 * and fingerprints use it. */
void arca_b64url_encode(const uint8_t *in, size_t n, char *out);
int arca_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen) ARCA_MUST_CHECK;

/* "sha256:" followed by 64 lower-case hex digits. */
#define ARCA_DIGEST_STR_LEN (7 + 64 + 1)
void arca_digest_format(const uint8_t d[32], char out[ARCA_DIGEST_STR_LEN]);
/* Accepts exactly "sha256:" + 64 hex digits. */
int arca_digest_parse(const char *s, uint8_t d[32]) ARCA_MUST_CHECK;

#endif
