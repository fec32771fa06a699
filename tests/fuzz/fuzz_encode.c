/* fuzz_encode.c: libFuzzer harness for the hex/base64/base64url decoders.
 *
 * Any input: the decoders must never read or write out of bounds, must
 * report a length within outcap, and whatever they accept must re-encode to
 * exactly the input (strictness: one encoding per byte string). Any bytes
 * must also survive encode-then-decode unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arca/encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes into a buffer of exactly outcap bytes (so ASan sees overruns). */
typedef int (*decode_fn)(const char *, size_t, uint8_t *, size_t, size_t *);
typedef void (*encode_fn)(const uint8_t *, size_t, char *);

/* fold_case: hex decoding accepts upper case, encoding produces lower. */
static void check_decoder(decode_fn dec, encode_fn enc, size_t enclen_max, int fold_case, const uint8_t *data,
			  size_t size)
{
	size_t outcap = size; /* ample for any of the three */
	uint8_t *out = malloc(outcap ? outcap : 1);
	if (!out)
		abort();
	size_t n = 0;
	int rc = dec((const char *)data, size, out, outcap, &n);
	if (rc == 0) {
		if (n > outcap)
			abort();
		char *again = malloc(enclen_max);
		if (!again)
			abort();
		enc(out, n, again);
		if (strlen(again) != size ||
		    (fold_case ? strncasecmp(again, (const char *)data, size) : memcmp(again, data, size)) != 0)
			abort(); /* accepted a non-canonical encoding */
		free(again);

		/* A buffer one byte short must be refused, not overrun. */
		if (n > 0) {
			uint8_t *tight = malloc(n - 1 ? n - 1 : 1);
			if (!tight)
				abort();
			if (dec((const char *)data, size, tight, n - 1, &n) != ARCA_ETOOBIG)
				abort();
			free(tight);
		}
	} else if (rc != ARCA_EPARSE && rc != ARCA_ETOOBIG) {
		abort();
	}
	free(out);
}

static void check_round_trip(decode_fn dec, encode_fn enc, size_t enclen, const uint8_t *data, size_t size)
{
	char *s = malloc(enclen);
	uint8_t *back = malloc(size ? size : 1);
	if (!s || !back)
		abort();
	enc(data, size, s);
	if (strlen(s) != enclen - 1)
		abort();
	size_t n = 0;
	if (dec(s, enclen - 1, back, size, &n) != 0 || n != size || memcmp(back, data, size) != 0)
		abort();
	free(s);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Enough room to re-encode whatever decodes from size characters. */
	size_t cap = ARCA_B64_LEN(size) + ARCA_HEX_LEN(size);
	check_decoder(arca_hex_decode, arca_hex_encode, cap, 1, data, size);
	check_decoder(arca_b64_decode, arca_b64_encode, cap, 0, data, size);
	check_decoder(arca_b64url_decode, arca_b64url_encode, cap, 0, data, size);

	check_round_trip(arca_hex_decode, arca_hex_encode, ARCA_HEX_LEN(size), data, size);
	check_round_trip(arca_b64_decode, arca_b64_encode, ARCA_B64_LEN(size), data, size);
	/* base64url has no padding: its length is the padded one minus '='s. */
	size_t url = ARCA_B64_LEN(size) - (size % 3 ? 3 - size % 3 : 0);
	check_round_trip(arca_b64url_decode, arca_b64url_encode, url, data, size);

	if (size == ARCA_DIGEST_STR_LEN - 1) {
		char s[ARCA_DIGEST_STR_LEN];
		memcpy(s, data, size);
		s[size] = '\0';
		uint8_t d[32];
		if (strlen(s) == size && arca_digest_parse(s, d) == 0) {
			char back[ARCA_DIGEST_STR_LEN];
			arca_digest_format(d, back);
			/* Upper-case hex is accepted, so compare case-insensitively. */
			if (strncasecmp(back, s, size) != 0 || memcmp(s, "sha256:", 7) != 0)
				abort();
		}
	}
	return 0;
}
