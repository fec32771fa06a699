/* crypto.h: every cryptographic primitive arca uses, over OpenSSL 3 only.
 *
 * Keys are raw bytes in caller-owned memory (allocate secret ones with
 * arca_secret_alloc). Nothing here keeps state between calls. Comparison of
 * MACs, tags and fingerprints goes through arca_ct_eq; every secret is
 * erased with arca_wipe. */
#ifndef ARCA_CRYPTO_H
#define ARCA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "arca/err.h"
#include "arca/buf.h"

/* The one secure erase (OPENSSL_cleanse). */
void arca_wipe(void *p, size_t n);
/* 1 when equal, 0 otherwise; time depends on n only. */
int arca_ct_eq(const void *a, const void *b, size_t n);
int arca_random(void *out, size_t n) ARCA_MUST_CHECK;

/* Memory for secrets: locked (never swapped) where the system allows,
 * excluded from core dumps, wiped on free, between guard pages so that an
 * overrun faults. Returns NULL on failure or for n == 0; arca_secret_free
 * must get the same n. (The memory shield replaces this with memfd_secret
 * memory.) */
void *arca_secret_alloc(size_t n);
void arca_secret_free(void *p, size_t n);

int arca_sha256(const void *d, size_t n, uint8_t out[32]) ARCA_MUST_CHECK;
int arca_sha512(const void *d, size_t n, uint8_t out[64]) ARCA_MUST_CHECK;

/* Incremental SHA-256 (EVP underneath). */
struct arca_sha256 {
	void *md_ctx; /* EVP_MD_CTX* */
};
int arca_sha256_begin(struct arca_sha256 *h) ARCA_MUST_CHECK;
int arca_sha256_update(struct arca_sha256 *h, const void *d, size_t n) ARCA_MUST_CHECK;
int arca_sha256_end(struct arca_sha256 *h, uint8_t out[32]) ARCA_MUST_CHECK; /* also frees */
void arca_sha256_abort(struct arca_sha256 *h);
/* SHA-256 of everything readable from fd (from its current offset). */
int arca_sha256_fd(int fd, uint8_t out[32]) ARCA_MUST_CHECK;

int arca_hmac_sha256(const uint8_t *key, size_t keylen, const void *d, size_t n, uint8_t out[32]) ARCA_MUST_CHECK;
int arca_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
		     const void *info, size_t infolen, uint8_t *out, size_t outlen) ARCA_MUST_CHECK;

/* AES-256-GCM with a random 96-bit nonce.
 * Sealed form: nonce (12) || ciphertext || tag (16). */
#define ARCA_AEAD_KEY_LEN 32
#define ARCA_AEAD_NONCE_LEN 12
#define ARCA_AEAD_TAG_LEN 16
#define ARCA_AEAD_OVERHEAD (ARCA_AEAD_NONCE_LEN + ARCA_AEAD_TAG_LEN)
int arca_aead_seal(const uint8_t key[32], const void *aad, size_t aadlen, const void *pt, size_t ptlen,
		   struct arca_buf *out) ARCA_MUST_CHECK; /* appends to out */
/* ARCA_ECRYPTO when the tag does not verify; nothing is appended then. */
int arca_aead_open(const uint8_t key[32], const void *aad, size_t aadlen, const void *sealed, size_t sealedlen,
		   struct arca_buf *out) ARCA_MUST_CHECK; /* appends to out */

/* Ed25519 signatures (identities, LAS platform key). */
#define ARCA_ED25519_PUB_LEN 32
#define ARCA_ED25519_PRIV_LEN 32
#define ARCA_ED25519_SIG_LEN 64
int arca_ed25519_keygen(uint8_t pub[32], uint8_t priv[32]) ARCA_MUST_CHECK;
int arca_ed25519_public(const uint8_t priv[32], uint8_t pub[32]) ARCA_MUST_CHECK;
int arca_ed25519_sign(const uint8_t priv[32], const void *msg, size_t n, uint8_t sig[64]) ARCA_MUST_CHECK;
/* 0 when valid, ARCA_ECRYPTO otherwise. */
int arca_ed25519_verify(const uint8_t pub[32], const void *msg, size_t n, const uint8_t sig[64]) ARCA_MUST_CHECK;

/* X25519 key agreement (the shield's ephemeral key). */
int arca_x25519_keygen(uint8_t pub[32], uint8_t priv[32]) ARCA_MUST_CHECK;
int arca_x25519(uint8_t shared[32], const uint8_t priv[32], const uint8_t peer_pub[32]) ARCA_MUST_CHECK;

/* Public-key encryption to an X25519 key (how CAS sends a configuration):
 * epk (32) || AEAD-sealed box, key = HKDF-SHA256(ikm = X25519(e, R),
 * salt = epk || R, info = context), no associated data. arca_box_open
 * refuses (ARCA_EINVAL) a recipient_pub that is not recipient_priv's. */
int arca_box_seal(const uint8_t recipient_pub[32], const char *context, const void *pt, size_t ptlen,
		  struct arca_buf *out) ARCA_MUST_CHECK;
int arca_box_open(const uint8_t recipient_priv[32], const uint8_t recipient_pub[32], const char *context,
		  const void *in, size_t inlen, struct arca_buf *out) ARCA_MUST_CHECK;

/* Fingerprints: "SHA256:" + unpadded base64 of SHA-256 over the key's
 * DER SubjectPublicKeyInfo (OpenSSH style), for every kind of key. */
#define ARCA_FPR_LEN (7 + 43 + 1)
int arca_fpr_ed25519(const uint8_t pub[32], char out[ARCA_FPR_LEN]) ARCA_MUST_CHECK;
/* pkey is an EVP_PKEY* (void* keeps OpenSSL out of this header). */
int arca_fpr_pkey(const void *pkey, char out[ARCA_FPR_LEN]) ARCA_MUST_CHECK;
/* Strict syntax check of "SHA256:<43 base64 chars>". */
int arca_fpr_valid(const char *s);

#endif
