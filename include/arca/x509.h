/* x509.h: identities and certificates (OpenSSL 3).
 *
 * An identity is an Ed25519 key with a self-signed certificate; owners use
 * it as their TLS client certificate, CAS as its server certificate, and
 * its fingerprint (arca_fpr_pkey) names it in policies and pins.
 * Returned EVP_PKEY and X509 objects belong to the caller
 * (EVP_PKEY_free/X509_free); PEM text in struct arca_buf belongs to the
 * caller too (private keys are returned in secret buffers). */
#ifndef ARCA_X509_H
#define ARCA_X509_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include "arca/err.h"
#include "arca/buf.h"
#include "arca/crypto.h"

struct arca_identity {
	EVP_PKEY *key;
	X509 *cert;
	char fpr[ARCA_FPR_LEN];
};

/* Creates DIR/identity.key (0600, PEM PKCS#8) and DIR/identity.crt (PEM)
 * with a fresh Ed25519 key and a self-signed certificate for common_name,
 * valid 20 years. Refuses (ARCA_EEXIST) when an identity is already there. */
int arca_identity_create(const char *dir, const char *common_name, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Loads it; ARCA_ENOTFOUND with a message naming the file when absent;
 * refuses a key file readable by group or others. */
int arca_identity_load(const char *dir, struct arca_identity *id, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Same, creating it first when absent (daemons). */
int arca_identity_load_or_create(const char *dir, const char *common_name, struct arca_identity *id,
				 struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_identity_free(struct arca_identity *id);

/* Loads one certificate from DER (exactly one, nothing after it) or PEM
 * (the first certificate) bytes; ARCA_EPARSE otherwise. Serial number 0
 * (AMD VCEKs) is accepted. */
int arca_x509_load(const uint8_t *p, size_t n, X509 **out) ARCA_MUST_CHECK;
int arca_x509_pem(X509 *c, struct arca_buf *out) ARCA_MUST_CHECK;

/* A CA per session (ECDSA P-256): creates a CA key and self-signed CA
 * certificate valid 10 years, both as PEM. */
int arca_ca_create(const char *common_name, struct arca_buf *key_pem, struct arca_buf *cert_pem) ARCA_MUST_CHECK;
/* Issues a leaf (new P-256 key) for common_name and DNS names, valid
 * 1 year, signed by the CA; returns key and certificate as PEM. */
int arca_ca_issue(const uint8_t *ca_key_pem, size_t ca_key_len, const uint8_t *ca_cert_pem, size_t ca_cert_len,
		  const char *common_name, const char *const *dns, size_t ndns, struct arca_buf *key_pem,
		  struct arca_buf *cert_pem) ARCA_MUST_CHECK;
/* 1 when s is a DNS name arca_ca_issue accepts for a SAN: dot-separated
 * labels of letters, digits and '-', each 1..63, 253 at most in all, and
 * optionally "*." in front; no trailing dot. Lets a policy check early. */
int arca_dns_name_valid(const char *s);
/* Issued certificates have a common name of 1..64 bytes (RFC 5280's upper
 * bound); a longer one is refused with ARCA_EINVAL. */
#define ARCA_CN_MAX 64
/* A fresh private key (P-256) as PKCS#8 PEM, for secrets of kind private-key. */
int arca_private_key_pem(struct arca_buf *key_pem) ARCA_MUST_CHECK;

#endif
