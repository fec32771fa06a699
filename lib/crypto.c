/* crypto.c: arca's cryptographic primitives over OpenSSL 3.
 *
 * Every OpenSSL object lives only for the call that needs it, and every
 * intermediate secret (shared secrets, derived keys, raw private keys on the
 * stack) is wiped before return on every path. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "arca/crypto.h"
#include "arca/encode.h"

/* OpenSSL treats NULL with length 0 inconsistently; give it a real pointer. */
static const uint8_t empty[1];
#define NZ(p) ((p) ? (const void *)(p) : (const void *)empty)

void arca_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int arca_ct_eq(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	return CRYPTO_memcmp(a, b, n) == 0;
}

int arca_random(void *out, size_t n)
{
	uint8_t *p = out;
	while (n > 0) {
		int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
		ENSURE(RAND_bytes(p, chunk) == 1, ARCA_ECRYPTO);
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

/* ---- secret memory ----
 * Layout: guard page | data pages | guard page, with the object placed so
 * that it ends (16-byte aligned) against the trailing guard: an overrun
 * faults instead of reading a neighbour. Free recomputes the layout from the
 * same n, so callers must pass the size they allocated. */

static size_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	return ps > 0 ? (size_t)ps : 4096;
}

static int secret_layout(size_t n, size_t *rn, size_t *data)
{
	size_t ps = page_size();
	if (n == 0 || n > SIZE_MAX / 2)
		return -1;
	*rn = (n + 15) & ~(size_t)15;
	*data = (*rn + ps - 1) / ps * ps;
	return 0;
}

void *arca_secret_alloc(size_t n)
{
	size_t ps = page_size(), rn, data;
	if (secret_layout(n, &rn, &data) < 0)
		return NULL;
	size_t total = data + 2 * ps;
	uint8_t *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base, ps, PROT_NONE) < 0 || mprotect(base + ps + data, ps, PROT_NONE) < 0) {
		munmap(base, total);
		return NULL;
	}
	/* Best effort: RLIMIT_MEMLOCK is often small for unprivileged users. */
	(void)mlock(base + ps, data);
#ifdef MADV_DONTDUMP
	(void)madvise(base, total, MADV_DONTDUMP);
#endif
	return base + ps + data - rn;
}

void arca_secret_free(void *p, size_t n)
{
	size_t ps = page_size(), rn, data;
	if (!p || secret_layout(n, &rn, &data) < 0)
		return;
	/* data - rn < one page, so p lies in the first data page. */
	uint8_t *start = (uint8_t *)((uintptr_t)p & ~(uintptr_t)(ps - 1));
	OPENSSL_cleanse(start, data);
	(void)munlock(start, data);
	munmap(start - ps, data + 2 * ps);
}

/* ---- hashes ---- */

static int digest(const EVP_MD *md, const void *d, size_t n, uint8_t *out)
{
	unsigned int len = 0;
	ENSURE(EVP_Digest(NZ(d), n, out, &len, md, NULL) == 1, ARCA_ECRYPTO);
	return 0;
}

int arca_sha256(const void *d, size_t n, uint8_t out[32])
{
	return digest(EVP_sha256(), d, n, out);
}

int arca_sha512(const void *d, size_t n, uint8_t out[64])
{
	return digest(EVP_sha512(), d, n, out);
}

int arca_sha256_begin(struct arca_sha256 *h)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	h->md_ctx = NULL;
	ENSURE(ctx != NULL, ARCA_ENOMEM);
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return ARCA_ECRYPTO;
	}
	h->md_ctx = ctx;
	return 0;
}

int arca_sha256_update(struct arca_sha256 *h, const void *d, size_t n)
{
	ENSURE(h->md_ctx != NULL, ARCA_EINVAL);
	ENSURE(EVP_DigestUpdate(h->md_ctx, NZ(d), n) == 1, ARCA_ECRYPTO);
	return 0;
}

int arca_sha256_end(struct arca_sha256 *h, uint8_t out[32])
{
	ENSURE(h->md_ctx != NULL, ARCA_EINVAL);
	unsigned int len = 0;
	int ok = EVP_DigestFinal_ex(h->md_ctx, out, &len);
	arca_sha256_abort(h);
	return ok == 1 && len == 32 ? 0 : ARCA_ECRYPTO;
}

void arca_sha256_abort(struct arca_sha256 *h)
{
	EVP_MD_CTX_free(h->md_ctx);
	h->md_ctx = NULL;
}

int arca_sha256_fd(int fd, uint8_t out[32])
{
	struct arca_sha256 h;
	uint8_t buf[16384];
	GUARD(arca_sha256_begin(&h));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			arca_sha256_abort(&h);
			return ARCA_EIO;
		}
		if (n == 0)
			break;
		int rc = arca_sha256_update(&h, buf, (size_t)n);
		if (rc < 0) {
			arca_sha256_abort(&h);
			return rc;
		}
	}
	return arca_sha256_end(&h, out);
}

int arca_hmac_sha256(const uint8_t *key, size_t keylen, const void *d, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	ENSURE(keylen <= INT_MAX, ARCA_EINVAL);
	ENSURE(HMAC(EVP_sha256(), NZ(key), (int)keylen, NZ(d), n, out, &len) != NULL && len == 32,
	       ARCA_ECRYPTO);
	return 0;
}

int arca_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen, const void *info,
		     size_t infolen, uint8_t *out, size_t outlen)
{
	ENSURE(outlen > 0 && outlen <= 255 * 32, ARCA_EINVAL);
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	ENSURE(kdf != NULL, ARCA_ECRYPTO);
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	ENSURE(kctx != NULL, ARCA_ENOMEM);

	OSSL_PARAM params[5], *p = params;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)NZ(ikm), ikmlen);
	/* An absent salt is the RFC's default (hashlen zeros), same as empty. */
	if (saltlen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	if (infolen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();

	int ok = EVP_KDF_derive(kctx, out, outlen, params);
	EVP_KDF_CTX_free(kctx);
	if (ok != 1) {
		arca_wipe(out, outlen);
		return ARCA_ECRYPTO;
	}
	return 0;
}

/* ---- AES-256-GCM ---- */

int arca_aead_seal(const uint8_t key[32], const void *aad, size_t aadlen, const void *pt, size_t ptlen,
		   struct arca_buf *out)
{
	ENSURE(ptlen <= INT_MAX - 64 && aadlen <= INT_MAX, ARCA_ETOOBIG);
	GUARD(arca_buf_reserve(out, ARCA_AEAD_OVERHEAD + ptlen));
	uint8_t *nonce = out->p + out->len;
	uint8_t *ct = nonce + ARCA_AEAD_NONCE_LEN;
	GUARD(arca_random(nonce, ARCA_AEAD_NONCE_LEN));

	int rc = ARCA_ECRYPTO, len;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	ENSURE(ctx != NULL, ARCA_ENOMEM);
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1)
		goto out;
	if (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (ptlen > 0 && (EVP_EncryptUpdate(ctx, ct, &len, pt, (int)ptlen) != 1 || (size_t)len != ptlen))
		goto out;
	if (EVP_EncryptFinal_ex(ctx, ct + ptlen, &len) != 1 || len != 0)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ARCA_AEAD_TAG_LEN, ct + ptlen) != 1)
		goto out;
	out->len += ARCA_AEAD_OVERHEAD + ptlen;
	out->p[out->len] = 0;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int arca_aead_open(const uint8_t key[32], const void *aad, size_t aadlen, const void *sealed, size_t sealedlen,
		   struct arca_buf *out)
{
	ENSURE(sealedlen >= ARCA_AEAD_OVERHEAD, ARCA_ECRYPTO);
	size_t ctlen = sealedlen - ARCA_AEAD_OVERHEAD;
	ENSURE(ctlen <= INT_MAX - 64 && aadlen <= INT_MAX, ARCA_ETOOBIG);
	const uint8_t *nonce = sealed;
	const uint8_t *ct = nonce + ARCA_AEAD_NONCE_LEN;
	uint8_t tag[ARCA_AEAD_TAG_LEN];
	memcpy(tag, ct + ctlen, sizeof tag);
	GUARD(arca_buf_reserve(out, ctlen));
	uint8_t *pt = out->p + out->len;

	int rc = ARCA_ECRYPTO, len;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	ENSURE(ctx != NULL, ARCA_ENOMEM);
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1)
		goto out;
	if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (ctlen > 0 && (EVP_DecryptUpdate(ctx, pt, &len, ct, (int)ctlen) != 1 || (size_t)len != ctlen))
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ARCA_AEAD_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, pt + ctlen, &len) != 1)
		goto out;
	out->len += ctlen;
	out->p[out->len] = 0;
	rc = 0;
out:
	/* Unauthenticated plaintext must not linger in the caller's buffer. */
	if (rc < 0)
		arca_wipe(pt, ctlen);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* ---- Ed25519 / X25519 ---- */

static int raw_public(int type, const uint8_t priv[32], uint8_t pub[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(type, NULL, priv, 32);
	ENSURE(k != NULL, ARCA_ECRYPTO);
	size_t len = 32;
	int ok = EVP_PKEY_get_raw_public_key(k, pub, &len);
	EVP_PKEY_free(k);
	return ok == 1 && len == 32 ? 0 : ARCA_ECRYPTO;
}

int arca_ed25519_public(const uint8_t priv[32], uint8_t pub[32])
{
	return raw_public(EVP_PKEY_ED25519, priv, pub);
}

int arca_ed25519_keygen(uint8_t pub[32], uint8_t priv[32])
{
	int rc = arca_random(priv, 32);
	if (rc == 0)
		rc = arca_ed25519_public(priv, pub);
	if (rc < 0)
		arca_wipe(priv, 32);
	return rc;
}

int arca_ed25519_sign(const uint8_t priv[32], const void *msg, size_t n, uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
	ENSURE(k != NULL, ARCA_ECRYPTO);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = ARCA_ECRYPTO;
	size_t siglen = 64;
	if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, NZ(msg), n) == 1 && siglen == 64)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

int arca_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n, const uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	ENSURE(k != NULL, ARCA_ECRYPTO);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = ARCA_ECRYPTO;
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestVerify(ctx, sig, 64, NZ(msg), n) == 1)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

int arca_x25519_keygen(uint8_t pub[32], uint8_t priv[32])
{
	int rc = arca_random(priv, 32);
	if (rc == 0)
		rc = raw_public(EVP_PKEY_X25519, priv, pub);
	if (rc < 0)
		arca_wipe(priv, 32);
	return rc;
}

int arca_x25519(uint8_t shared[32], const uint8_t priv[32], const uint8_t peer_pub[32])
{
	static const uint8_t zero[32];
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, 32);
	EVP_PKEY_CTX *ctx = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	int rc = ARCA_ECRYPTO;
	size_t len = 32;
	if (ctx && peer && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
	    EVP_PKEY_derive(ctx, shared, &len) == 1 && len == 32)
		rc = 0;
	/* A low-order peer key gives an all-zero secret that anyone can compute. */
	if (rc == 0 && arca_ct_eq(shared, zero, 32))
		rc = ARCA_ECRYPTO;
	if (rc < 0)
		arca_wipe(shared, 32);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(k);
	return rc;
}

/* ---- sealed boxes ----
 * The AEAD has no associated data: epk and R are bound through the HKDF salt
 * and the context through its info, so a box opened under another context or
 * for another recipient fails the tag. */

static int box_key(const uint8_t shared[32], const uint8_t epk[32], const uint8_t rpub[32], const char *context,
		   uint8_t key[32])
{
	uint8_t salt[64];
	memcpy(salt, epk, 32);
	memcpy(salt + 32, rpub, 32);
	return arca_hkdf_sha256(shared, 32, salt, sizeof salt, context, strlen(context), key, 32);
}

int arca_box_seal(const uint8_t recipient_pub[32], const char *context, const void *pt, size_t ptlen,
		  struct arca_buf *out)
{
	ENSURE(context != NULL, ARCA_EINVAL);
	uint8_t epk[32], esk[32], shared[32], key[32];
	size_t start = out->len;
	int rc;
	GUARD_GOTO(arca_x25519_keygen(epk, esk), done);
	GUARD_GOTO(arca_x25519(shared, esk, recipient_pub), done);
	GUARD_GOTO(box_key(shared, epk, recipient_pub, context, key), done);
	GUARD_GOTO(arca_buf_append(out, epk, sizeof epk), done);
	GUARD_GOTO(arca_aead_seal(key, NULL, 0, pt, ptlen, out), done);
done:
	if (rc < 0)
		arca_buf_truncate(out, start);
	arca_wipe(esk, sizeof esk);
	arca_wipe(shared, sizeof shared);
	arca_wipe(key, sizeof key);
	return rc;
}

int arca_box_open(const uint8_t recipient_priv[32], const uint8_t recipient_pub[32], const char *context,
		  const void *in, size_t inlen, struct arca_buf *out)
{
	ENSURE(context != NULL, ARCA_EINVAL);
	ENSURE(inlen >= 32 + ARCA_AEAD_OVERHEAD, ARCA_ECRYPTO);
	const uint8_t *epk = in;
	uint8_t shared[32], key[32], pub[32];
	int rc;
	/* A pub that does not belong to priv would derive a key nobody sealed to. */
	GUARD_GOTO(raw_public(EVP_PKEY_X25519, recipient_priv, pub), done);
	ENSURE_GOTO(arca_ct_eq(pub, recipient_pub, 32), ARCA_EINVAL, done);
	GUARD_GOTO(arca_x25519(shared, recipient_priv, epk), done);
	GUARD_GOTO(box_key(shared, epk, recipient_pub, context, key), done);
	GUARD_GOTO(arca_aead_open(key, NULL, 0, epk + 32, inlen - 32, out), done);
done:
	arca_wipe(shared, sizeof shared);
	arca_wipe(key, sizeof key);
	return rc;
}

/* ---- fingerprints ---- */

int arca_fpr_pkey(const void *pkey, char out[ARCA_FPR_LEN])
{
	ENSURE(pkey != NULL, ARCA_EINVAL);
	unsigned char *der = NULL;
	int n = i2d_PUBKEY((EVP_PKEY *)pkey, &der);
	ENSURE(n > 0, ARCA_ECRYPTO);
	uint8_t h[32];
	int rc = arca_sha256(der, (size_t)n, h);
	OPENSSL_free(der);
	GUARD(rc);
	char b64[ARCA_B64_LEN(32)];
	arca_b64_encode(h, sizeof h, b64);
	memcpy(out, "SHA256:", 7);
	memcpy(out + 7, b64, 43); /* drop the one '=' of 32 bytes' encoding */
	out[50] = '\0';
	return 0;
}

int arca_fpr_ed25519(const uint8_t pub[32], char out[ARCA_FPR_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	ENSURE(k != NULL, ARCA_ECRYPTO);
	int rc = arca_fpr_pkey(k, out);
	EVP_PKEY_free(k);
	return rc;
}

int arca_fpr_valid(const char *s)
{
	if (!s || strnlen(s, ARCA_FPR_LEN) != ARCA_FPR_LEN - 1 || memcmp(s, "SHA256:", 7) != 0)
		return 0;
	/* Restoring the padding lets the strict decoder check alphabet and
	 * zero trailing bits. */
	char padded[45];
	memcpy(padded, s + 7, 43);
	padded[43] = '=';
	padded[44] = '\0';
	uint8_t h[32];
	size_t n;
	return arca_b64_decode(padded, 44, h, sizeof h, &n) == 0 && n == 32;
}
