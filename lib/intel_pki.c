/* intel_pki.c: what the Intel quote and collateral verifiers share: the
 * built-in Intel SGX Root CA, a strict PEM certificate-list reader, ECDSA
 * P-256 with Intel's raw r || s signatures, dates, and the SGX extension of
 * PCK certificates.
 *
 * The readers here are strict on purpose: the PCK chain travels unsigned
 * inside the quote, so a reader that tolerated stray bytes would let
 * someone change the quote without the verifier noticing. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/intel.h"
#include "arca/x509.h"

/* Intel SGX Root CA (CN=Intel SGX Root CA, O=Intel Corporation, valid
 * 2018-05-21 to 2049-12-31), DER. Its SHA-256 is checked by test_intel
 * against the one Intel publishes (44a0196b…74d3). */
static const uint8_t intel_root_der[] = {
	0x30, 0x82, 0x02, 0x8f, 0x30, 0x82, 0x02, 0x34, 0xa0, 0x03, 0x02, 0x01,
	0x02, 0x02, 0x14, 0x22, 0x65, 0x0c, 0xd6, 0x5a, 0x9d, 0x34, 0x89, 0xf3,
	0x83, 0xb4, 0x95, 0x52, 0xbf, 0x50, 0x1b, 0x39, 0x27, 0x06, 0xac, 0x30,
	0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30,
	0x68, 0x31, 0x1a, 0x30, 0x18, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x11,
	0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20, 0x53, 0x47, 0x58, 0x20, 0x52, 0x6f,
	0x6f, 0x74, 0x20, 0x43, 0x41, 0x31, 0x1a, 0x30, 0x18, 0x06, 0x03, 0x55,
	0x04, 0x0a, 0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20, 0x43, 0x6f,
	0x72, 0x70, 0x6f, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x31, 0x14, 0x30,
	0x12, 0x06, 0x03, 0x55, 0x04, 0x07, 0x0c, 0x0b, 0x53, 0x61, 0x6e, 0x74,
	0x61, 0x20, 0x43, 0x6c, 0x61, 0x72, 0x61, 0x31, 0x0b, 0x30, 0x09, 0x06,
	0x03, 0x55, 0x04, 0x08, 0x0c, 0x02, 0x43, 0x41, 0x31, 0x0b, 0x30, 0x09,
	0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 0x55, 0x53, 0x30, 0x1e, 0x17,
	0x0d, 0x31, 0x38, 0x30, 0x35, 0x32, 0x31, 0x31, 0x30, 0x34, 0x35, 0x31,
	0x30, 0x5a, 0x17, 0x0d, 0x34, 0x39, 0x31, 0x32, 0x33, 0x31, 0x32, 0x33,
	0x35, 0x39, 0x35, 0x39, 0x5a, 0x30, 0x68, 0x31, 0x1a, 0x30, 0x18, 0x06,
	0x03, 0x55, 0x04, 0x03, 0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20,
	0x53, 0x47, 0x58, 0x20, 0x52, 0x6f, 0x6f, 0x74, 0x20, 0x43, 0x41, 0x31,
	0x1a, 0x30, 0x18, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x11, 0x49, 0x6e,
	0x74, 0x65, 0x6c, 0x20, 0x43, 0x6f, 0x72, 0x70, 0x6f, 0x72, 0x61, 0x74,
	0x69, 0x6f, 0x6e, 0x31, 0x14, 0x30, 0x12, 0x06, 0x03, 0x55, 0x04, 0x07,
	0x0c, 0x0b, 0x53, 0x61, 0x6e, 0x74, 0x61, 0x20, 0x43, 0x6c, 0x61, 0x72,
	0x61, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x08, 0x0c, 0x02,
	0x43, 0x41, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13,
	0x02, 0x55, 0x53, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
	0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
	0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x0b, 0xa9, 0xc4, 0xc0, 0xc0, 0xc8,
	0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda, 0x10, 0xa8, 0xbb,
	0xd4, 0xe8, 0x8e, 0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70, 0x55,
	0x25, 0xf5, 0x67, 0x91, 0x8e, 0x2e, 0xdc, 0x88, 0xe4, 0x0d, 0x86, 0x0b,
	0xd0, 0xcc, 0x4e, 0xe2, 0x6a, 0xac, 0xc9, 0x88, 0xe5, 0x05, 0xa9, 0x53,
	0x55, 0x8c, 0x45, 0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94, 0xa3, 0x81,
	0xbb, 0x30, 0x81, 0xb8, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d, 0x23, 0x04,
	0x18, 0x30, 0x16, 0x80, 0x14, 0x22, 0x65, 0x0c, 0xd6, 0x5a, 0x9d, 0x34,
	0x89, 0xf3, 0x83, 0xb4, 0x95, 0x52, 0xbf, 0x50, 0x1b, 0x39, 0x27, 0x06,
	0xac, 0x30, 0x52, 0x06, 0x03, 0x55, 0x1d, 0x1f, 0x04, 0x4b, 0x30, 0x49,
	0x30, 0x47, 0xa0, 0x45, 0xa0, 0x43, 0x86, 0x41, 0x68, 0x74, 0x74, 0x70,
	0x73, 0x3a, 0x2f, 0x2f, 0x63, 0x65, 0x72, 0x74, 0x69, 0x66, 0x69, 0x63,
	0x61, 0x74, 0x65, 0x73, 0x2e, 0x74, 0x72, 0x75, 0x73, 0x74, 0x65, 0x64,
	0x73, 0x65, 0x72, 0x76, 0x69, 0x63, 0x65, 0x73, 0x2e, 0x69, 0x6e, 0x74,
	0x65, 0x6c, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x49, 0x6e, 0x74, 0x65, 0x6c,
	0x53, 0x47, 0x58, 0x52, 0x6f, 0x6f, 0x74, 0x43, 0x41, 0x2e, 0x64, 0x65,
	0x72, 0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14,
	0x22, 0x65, 0x0c, 0xd6, 0x5a, 0x9d, 0x34, 0x89, 0xf3, 0x83, 0xb4, 0x95,
	0x52, 0xbf, 0x50, 0x1b, 0x39, 0x27, 0x06, 0xac, 0x30, 0x0e, 0x06, 0x03,
	0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x01, 0x06,
	0x30, 0x12, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x08,
	0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x01, 0x30, 0x0a, 0x06, 0x08,
	0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x49, 0x00, 0x30,
	0x46, 0x02, 0x21, 0x00, 0xe5, 0xbf, 0xe5, 0x09, 0x11, 0xf9, 0x2f, 0x42,
	0x89, 0x20, 0xdc, 0x36, 0x8a, 0x30, 0x2e, 0xe3, 0xd1, 0x2e, 0xc5, 0x86,
	0x7f, 0xf6, 0x22, 0xec, 0x64, 0x97, 0xf7, 0x80, 0x60, 0xc1, 0x3c, 0x20,
	0x02, 0x21, 0x00, 0xe0, 0x9d, 0x25, 0xac, 0x7a, 0x0c, 0xb3, 0xe5, 0xe8,
	0xe6, 0x8f, 0xec, 0x5f, 0xa3, 0xbd, 0x41, 0x6c, 0x47, 0x44, 0x0b, 0xd9,
	0x50, 0x63, 0x9d, 0x45, 0x0e, 0xdc, 0xbe, 0xa4, 0x57, 0x6a, 0xa2
};

static int ossl_fail(int code)
{
	ERR_clear_error();
	return code;
}

void arca_intel_root_der(const uint8_t **p, size_t *n)
{
	*p = intel_root_der;
	*n = sizeof intel_root_der;
}

int arca_intel_root(X509 **out)
{
	return arca_x509_load(intel_root_der, sizeof intel_root_der, out);
}

/* ---- names and dates for messages ---- */

void arca_intel_cert_name(X509 *c, char *out, size_t cap)
{
	if (cap == 0)
		return;
	out[0] = '\0';
	X509_NAME *name = c ? X509_get_subject_name(c) : NULL;
	if (!name)
		return;
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	const ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)) : NULL;
	if (!s) {
		X509_NAME_oneline(name, out, cap > INT_MAX ? INT_MAX : (int)cap);
		return;
	}
	/* Certificates come from the quote: keep control bytes out of
	 * messages that reach terminals and logs. */
	const unsigned char *d = ASN1_STRING_get0_data(s);
	size_t n = (size_t)ASN1_STRING_length(s), j = 0;
	for (size_t k = 0; k < n && j + 1 < cap; k++)
		out[j++] = d[k] >= 0x20 && d[k] < 0x7f ? (char)d[k] : '?';
	out[j] = '\0';
}

void arca_intel_time_format(time_t t, char out[ARCA_INTEL_TIME_LEN])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, ARCA_INTEL_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		memcpy(out, "(unrepresentable)", 18);
}

static int digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		ENSURE(s[i] >= '0' && s[i] <= '9', ARCA_EPARSE);
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int arca_intel_time_parse(const char *s, time_t *out)
{
	/* Exactly "YYYY-MM-DDTHH:MM:SSZ", the only form Intel's PCS writes. */
	ENSURE(s && strnlen(s, 21) == 20, ARCA_EPARSE);
	ENSURE(s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z',
	       ARCA_EPARSE);
	int y, mo, d, h, mi, se;
	GUARD(digits(s, 4, &y));
	GUARD(digits(s + 5, 2, &mo));
	GUARD(digits(s + 8, 2, &d));
	GUARD(digits(s + 11, 2, &h));
	GUARD(digits(s + 14, 2, &mi));
	GUARD(digits(s + 17, 2, &se));
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	ENSURE(y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] && h <= 23 && mi <= 59 &&
		       se <= 59,
	       ARCA_EPARSE);
	ENSURE(!(mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))), ARCA_EPARSE);
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se };
	time_t t = timegm(&tm);
	ENSURE(t != (time_t)-1, ARCA_EPARSE);
	*out = t;
	return 0;
}

int arca_intel_asn1_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
		return ossl_fail(ARCA_EPARSE);
	time_t t = timegm(&tm);
	ENSURE(t != (time_t)-1, ARCA_EPARSE);
	*out = t;
	return 0;
}

/* ---- strict PEM ---- */

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"
#define PEM_LINE_MAX 76
#define PEM_B64_MAX (16u << 10) /* per certificate; Intel's are under 1 KiB */

static int b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
	       c == '=';
}

static int has_at(const uint8_t *p, size_t n, size_t i, const char *lit)
{
	size_t l = strlen(lit);
	return n - i >= l && memcmp(p + i, lit, l) == 0;
}

/* One certificate from offset *i, which ends past its END line. */
static int pem_one(const uint8_t *p, size_t n, size_t *i, char *b64, uint8_t *der, X509 **out,
		   struct arca_errbuf *e)
{
	size_t at = *i;
	if (!has_at(p, n, at, PEM_BEGIN "\n"))
		return arca_errf(e, ARCA_EPARSE, "expected \"" PEM_BEGIN "\" and a newline at byte %zu", at);
	at += sizeof PEM_BEGIN;
	size_t bl = 0;
	for (;;) {
		if (has_at(p, n, at, PEM_END)) {
			at += sizeof PEM_END - 1;
			break;
		}
		size_t ls = at;
		while (at < n && p[at] != '\n') {
			if (!b64_char(p[at]))
				return arca_errf(e, ARCA_EPARSE, "byte %zu (0x%02x) is not base64", at, p[at]);
			if (bl == PEM_B64_MAX)
				return arca_errf(e, ARCA_ETOOBIG, "certificate larger than %u base64 characters",
						 PEM_B64_MAX);
			b64[bl++] = (char)p[at++];
		}
		if (at == n)
			return arca_errf(e, ARCA_EPARSE, "certificate without \"" PEM_END "\"");
		if (at == ls || at - ls > PEM_LINE_MAX)
			return arca_errf(e, ARCA_EPARSE, "base64 line of %zu characters at byte %zu", at - ls, ls);
		at++;
	}
	if (at < n) {
		if (p[at] != '\n')
			return arca_errf(e, ARCA_EPARSE, "byte %zu (0x%02x) after \"" PEM_END "\"", at, p[at]);
		at++;
	}
	size_t dl = 0;
	if (arca_b64_decode(b64, bl, der, PEM_B64_MAX, &dl) < 0)
		return arca_errf(e, ARCA_EPARSE, "certificate ending at byte %zu is not canonical base64", at);
	if (arca_x509_load(der, dl, out) < 0)
		return arca_errf(e, ARCA_EPARSE, "certificate ending at byte %zu is not DER X.509", at);
	*i = at;
	return 0;
}

int arca_intel_pem_certs(const uint8_t *p, size_t n, X509 **out, size_t max, size_t *count,
			 struct arca_errbuf *e)
{
	*count = 0;
	/* Some quote generators NUL-terminate the PEM, as a C string. */
	if (n > 0 && p[n - 1] == '\0')
		n--;
	if (n == 0)
		return arca_errf(e, ARCA_EPARSE, "no certificate");
	char *b64 = malloc(PEM_B64_MAX);
	uint8_t *der = malloc(PEM_B64_MAX);
	int rc = 0;
	if (!b64 || !der) {
		rc = ARCA_ENOMEM;
		goto out;
	}
	size_t i = 0;
	while (i < n) {
		if (*count == max) {
			rc = arca_errf(e, ARCA_EPARSE, "more than %zu certificates", max);
			goto out;
		}
		X509 *x = NULL;
		GUARD_GOTO(pem_one(p, n, &i, b64, der, &x, e), out);
		out[(*count)++] = x;
	}
out:
	if (rc < 0) {
		while (*count > 0)
			X509_free(out[--*count]);
	}
	free(b64);
	free(der);
	return rc;
}

/* ---- ECDSA P-256 ---- */

static int is_p256(EVP_PKEY *k)
{
	char group[32];
	size_t gl = 0;
	return k && EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

int arca_intel_p256_key(const uint8_t xy[64], EVP_PKEY **out)
{
	*out = NULL;
	uint8_t pt[65];
	pt[0] = 0x04;
	memcpy(pt + 1, xy, 64);
	char group[] = "prime256v1";
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt),
		OSSL_PARAM_END,
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	ENSURE(ctx != NULL, ARCA_ENOMEM);
	/* Import decodes the point and refuses one that is not on the curve. */
	int ok = EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		EVP_PKEY_free(*out);
		*out = NULL;
		return ossl_fail(ARCA_ECRYPTO);
	}
	return 0;
}

int arca_intel_ecdsa_verify(EVP_PKEY *key, const void *msg, size_t n, const uint8_t sig[64])
{
	if (!is_p256(key))
		return ossl_fail(ARCA_ECRYPTO);
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(ss);
		return ossl_fail(ARCA_ENOMEM);
	}
	uint8_t der[80];
	unsigned char *pp = der;
	int dl = i2d_ECDSA_SIG(s, NULL) <= (int)sizeof der ? i2d_ECDSA_SIG(s, &pp) : -1;
	ECDSA_SIG_free(s);
	if (dl <= 0)
		return ossl_fail(ARCA_ECRYPTO);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ENSURE(md != NULL, ARCA_ENOMEM);
	int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestVerify(md, der, (size_t)dl, msg, n) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : ossl_fail(ARCA_ECRYPTO);
}

/* ---- the SGX extension of PCK certificates ---- */

/* 1.2.840.113741.1.13.1 */
static const uint8_t sgx_arc[] = { 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01 };

#define DER_INTEGER 0x02
#define DER_OCTETS 0x04
#define DER_OID 0x06
#define DER_ENUM 0x0a
#define DER_SEQ 0x30

/* One DER TLV with a one-byte tag and a minimal definite length. */
static int der_next(struct arca_cur *c, uint8_t *tag, struct arca_cur *val)
{
	uint8_t l0;
	GUARD(arca_cur_u8(c, tag));
	ENSURE((*tag & 0x1f) != 0x1f, ARCA_EPARSE);
	GUARD(arca_cur_u8(c, &l0));
	size_t len = l0;
	if (l0 & 0x80) {
		size_t nb = l0 & 0x7f;
		ENSURE(nb >= 1 && nb <= 3, ARCA_EPARSE);
		len = 0;
		for (size_t i = 0; i < nb; i++) {
			uint8_t b;
			GUARD(arca_cur_u8(c, &b));
			ENSURE(i > 0 || b != 0, ARCA_EPARSE);
			len = len << 8 | b;
		}
		ENSURE(len >= 0x80, ARCA_EPARSE);
	}
	const uint8_t *v;
	GUARD(arca_cur_take(c, len, &v));
	arca_cur_init(val, v, len);
	return 0;
}

static int der_expect(struct arca_cur *c, uint8_t want, struct arca_cur *val)
{
	uint8_t tag;
	GUARD(der_next(c, &tag, val));
	ENSURE(tag == want, ARCA_EPARSE);
	return 0;
}

static int der_uint(struct arca_cur *v, unsigned max, unsigned *out)
{
	size_t n = v->len;
	ENSURE(n >= 1 && n <= 3, ARCA_EPARSE);
	const uint8_t *p = v->p;
	ENSURE(!(p[0] & 0x80), ARCA_EPARSE);                  /* negative */
	ENSURE(!(n > 1 && p[0] == 0 && !(p[1] & 0x80)), ARCA_EPARSE); /* not minimal */
	unsigned x = 0;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | p[i];
	ENSURE(x <= max, ARCA_EPARSE);
	*out = x;
	return 0;
}

static int der_octets(struct arca_cur *c, uint8_t *out, size_t n)
{
	struct arca_cur v;
	GUARD(der_expect(c, DER_OCTETS, &v));
	ENSURE(v.len == n, ARCA_EPARSE);
	memcpy(out, v.p, n);
	return 0;
}

/* The number after the SGX arc (and after `sub` when sub > 0), or -1. */
static int sgx_oid_id(const struct arca_cur *oid, int sub)
{
	size_t base = sizeof sgx_arc + (sub > 0);
	if (oid->len != base + 1 || memcmp(oid->p, sgx_arc, sizeof sgx_arc) != 0)
		return -1;
	if (sub > 0 && oid->p[sizeof sgx_arc] != sub)
		return -1;
	uint8_t id = oid->p[base];
	return id & 0x80 ? -1 : id;
}

static int parse_tcb(struct arca_cur *tcb, struct arca_pck_ext *out)
{
	uint32_t seen = 0;
	while (arca_cur_left(tcb) > 0) {
		struct arca_cur item, oid, v;
		uint8_t tag;
		GUARD(der_expect(tcb, DER_SEQ, &item));
		GUARD(der_expect(&item, DER_OID, &oid));
		GUARD(der_next(&item, &tag, &v));
		ENSURE(arca_cur_left(&item) == 0, ARCA_EPARSE);
		int id = sgx_oid_id(&oid, 2);
		ENSURE(id >= 1 && id <= 18 && !(seen & (1u << id)), ARCA_EPARSE);
		seen |= 1u << id;
		unsigned x;
		if (id <= 16) {
			ENSURE(tag == DER_INTEGER, ARCA_EPARSE);
			GUARD(der_uint(&v, 255, &x));
			out->comp_svn[id - 1] = (uint8_t)x;
		} else if (id == 17) {
			ENSURE(tag == DER_INTEGER, ARCA_EPARSE);
			GUARD(der_uint(&v, 65535, &x));
			out->pcesvn = (uint16_t)x;
		} else {
			ENSURE(tag == DER_OCTETS && v.len == 16, ARCA_EPARSE);
			memcpy(out->cpusvn, v.p, 16);
		}
	}
	ENSURE(seen == 0x7fffeu, ARCA_EPARSE); /* components 1..18, each once */
	return 0;
}

int arca_pck_ext_parse(const uint8_t *der, size_t n, struct arca_pck_ext *out, struct arca_errbuf *e)
{
	memset(out, 0, sizeof *out);
	struct arca_cur all, seq;
	arca_cur_init(&all, der, n);
	if (der_expect(&all, DER_SEQ, &seq) < 0 || arca_cur_left(&all) != 0)
		return arca_errf(e, ARCA_EPARSE, "PCK certificate: SGX extension is not one DER SEQUENCE");
	uint32_t seen = 0;
	while (arca_cur_left(&seq) > 0) {
		struct arca_cur item, oid, v;
		uint8_t tag;
		if (der_expect(&seq, DER_SEQ, &item) < 0 || der_expect(&item, DER_OID, &oid) < 0)
			return arca_errf(e, ARCA_EPARSE, "PCK certificate: malformed SGX extension entry");
		int id = sgx_oid_id(&oid, 0);
		if (id < 0)
			return arca_errf(e, ARCA_EPARSE, "PCK certificate: SGX extension holds a foreign OID");
		if (id < 32 && (seen & (1u << id)))
			return arca_errf(e, ARCA_EPARSE, "PCK certificate: SGX extension entry %d appears twice", id);
		if (id < 32)
			seen |= 1u << id;
		int rc = 0;
		struct arca_cur body = item;
		switch (id) {
		case 1: rc = der_octets(&body, out->ppid, sizeof out->ppid); break;
		case 2:
			rc = der_expect(&body, DER_SEQ, &v);
			if (rc == 0)
				rc = parse_tcb(&v, out);
			break;
		case 3: rc = der_octets(&body, out->pceid, sizeof out->pceid); break;
		case 4: rc = der_octets(&body, out->fmspc, sizeof out->fmspc); break;
		case 5: {
			unsigned t = 0;
			rc = der_expect(&body, DER_ENUM, &v);
			if (rc == 0)
				rc = der_uint(&v, 2, &t);
			out->sgx_type = (uint8_t)t;
			break;
		}
		default:
			/* Platform instance ID, configuration and what Intel adds
			 * later: one value, not used for TCB evaluation. */
			rc = der_next(&body, &tag, &v);
			break;
		}
		if (rc < 0 || arca_cur_left(&body) != 0)
			return arca_errf(e, ARCA_EPARSE, "PCK certificate: SGX extension entry %d is malformed", id);
	}
	if ((seen & 0x3eu) != 0x3eu)
		return arca_errf(e, ARCA_EPARSE,
				 "PCK certificate: SGX extension lacks PPID, TCB, PCE-ID, FMSPC or SGX type");
	return 0;
}

int arca_pck_ext_from_cert(X509 *cert, struct arca_pck_ext *out, struct arca_errbuf *e)
{
	ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
	ENSURE(obj != NULL, ossl_fail(ARCA_ENOMEM));
	int i = X509_get_ext_by_OBJ(cert, obj, -1);
	int again = i >= 0 ? X509_get_ext_by_OBJ(cert, obj, i) : -1;
	ASN1_OBJECT_free(obj);
	if (i < 0)
		return arca_errf(e, ossl_fail(ARCA_EPARSE), "PCK certificate has no SGX extension");
	if (again >= 0)
		return arca_errf(e, ARCA_EPARSE, "PCK certificate has the SGX extension twice");
	ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(X509_get_ext(cert, i));
	ENSURE(d != NULL, arca_errf(e, ARCA_EPARSE, "PCK certificate: empty SGX extension"));
	return arca_pck_ext_parse(ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d), out, e);
}

/* ---- certificate checks ---- */

int arca_intel_cert_equal(X509 *a, X509 *b)
{
	unsigned char *da = NULL, *db = NULL;
	int na = a ? i2d_X509(a, &da) : -1, nb = b ? i2d_X509(b, &db) : -1;
	int eq = na > 0 && na == nb && memcmp(da, db, (size_t)na) == 0;
	OPENSSL_free(da);
	OPENSSL_free(db);
	ERR_clear_error();
	return eq;
}

int arca_intel_cert_current(X509 *c, const char *role, time_t at, struct arca_errbuf *e)
{
	char name[128], when[ARCA_INTEL_TIME_LEN];
	time_t nb, na;
	arca_intel_cert_name(c, name, sizeof name);
	if (arca_intel_asn1_time(X509_get0_notBefore(c), &nb) < 0 || arca_intel_asn1_time(X509_get0_notAfter(c), &na) < 0)
		return arca_errf(e, ARCA_EPARSE, "%s '%s' has an unreadable validity period", role, name);
	if (at < nb) {
		arca_intel_time_format(nb, when);
		return arca_errf(e, ARCA_EDENIED, "%s '%s' is not valid before %s; check the verification time", role,
				 name, when);
	}
	if (at > na) {
		arca_intel_time_format(na, when);
		return arca_errf(e, ARCA_EDENIED, "%s '%s' expired on %s; evidence it certifies cannot be verified after that",
				 role, name, when);
	}
	return 0;
}

int arca_intel_verify_path(X509 *leaf, X509 *ca, X509 *root, struct arca_errbuf *e)
{
	/* Signatures, issuer names, CA flags, key usage, path length and
	 * critical extensions: OpenSSL's path validation, with root as the
	 * only trust anchor and nothing else trusted. */
	int rc = ARCA_ENOMEM;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	if (!st || !ctx || !untrusted || X509_STORE_add_cert(st, root) != 1 || (ca && !sk_X509_push(untrusted, ca)) ||
	    X509_STORE_CTX_init(ctx, st, leaf, untrusted) != 1) {
		rc = arca_errf(e, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	/* Dates are arca_intel_cert_current's: RFC 5280 counts notAfter in
	 * the window, OpenSSL does not, and the reason should name the
	 * certificate. */
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT | X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(ctx) != 1) {
		char name[128] = "?";
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
		if (bad)
			arca_intel_cert_name(bad, name, sizeof name);
		rc = arca_errf(e, ARCA_ECRYPTO, "certificate '%s' does not verify: %s", name,
			       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
	if (sk_X509_num(built) != (ca ? 3 : 2) || (ca && sk_X509_value(built, 1) != ca)) {
		rc = arca_errf(e, ARCA_ECRYPTO, "the chain does not run %s to the root",
			       ca ? "leaf, CA" : "leaf directly");
		goto out;
	}
	rc = 0;
out:
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	ERR_clear_error();
	return rc;
}
