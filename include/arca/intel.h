/* intel.h: Intel DCAP quotes (SGX v3, TDX v4 and v5) and their collateral
 * (TCB info, QE identity, CRLs), verified to Intel's SGX Root CA.
 *
 * Contract:
 * - arca_intel_quote_parse borrows: every pointer in struct arca_intel_quote
 *   points into the caller's bytes, which must outlive the struct.
 * - The verifiers fill a caller-owned struct arca_hw_result (hwev.h); it
 *   must have been through arca_hw_result_init (or used before: it is
 *   reset first). They return 0 only when res->verified is 1; otherwise a
 *   negative ARCA_E* code and res->reason says which check failed.
 * - The Intel SGX Root CA is built in (SHA-256 of its DER
 *   44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3);
 *   nothing is read from disk. A caller may pin another root instead
 *   (struct arca_intel_opts.root), for tests and private PKIs only.
 * - struct arca_dcap_collateral is opaque: made by arca_dcap_collateral_load,
 *   freed by arca_dcap_collateral_free; it copies what it keeps.
 * - struct arca_intel_chain_cache is caller-owned and not thread-safe: one
 *   per thread, or behind the caller's lock.
 * - X509 objects handed out belong to the caller (X509_free). */
#ifndef ARCA_INTEL_H
#define ARCA_INTEL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "arca/err.h"
#include "arca/hwev.h"

/* ---- quote layout (Intel DCAP quote format, little endian) ---- */

#define ARCA_INTEL_HEADER_LEN 48
#define ARCA_INTEL_TEE_SGX 0x00000000u
#define ARCA_INTEL_TEE_TDX 0x00000081u
#define ARCA_INTEL_AK_ECDSA_P256 2
#define ARCA_INTEL_CERT_PCK_CHAIN 5  /* PEM: PCK leaf, PCK CA, root */
#define ARCA_INTEL_CERT_QE_REPORT 6  /* QE report + auth data + type 5 */
#define ARCA_INTEL_QE_VENDOR_ID "\x93\x9a\x72\x33\xf7\x9c\x4c\xa9\x94\x0a\x0d\xb3\x95\x7f\x06\x07"

/* Body kinds, numbered as v5's body descriptor numbers them. */
enum arca_intel_body {
	ARCA_INTEL_BODY_SGX = 1,   /* 384-byte SGX report body */
	ARCA_INTEL_BODY_TDX10 = 2, /* 584-byte TD report body */
	ARCA_INTEL_BODY_TDX15 = 3, /* 648: adds tee_tcb_svn2, mrservicetd */
};
#define ARCA_SGX_REPORT_LEN 384
#define ARCA_TDX10_BODY_LEN 584
#define ARCA_TDX15_BODY_LEN 648

/* SGX report body (also the QE report). */
#define ARCA_SGX_OFF_CPUSVN 0         /* 16 */
#define ARCA_SGX_OFF_MISCSELECT 16    /* u32 */
#define ARCA_SGX_OFF_ATTRIBUTES 48    /* 16 */
#define ARCA_SGX_OFF_MRENCLAVE 64     /* 32 */
#define ARCA_SGX_OFF_MRSIGNER 128     /* 32 */
#define ARCA_SGX_OFF_ISVPRODID 256    /* u16 */
#define ARCA_SGX_OFF_ISVSVN 258       /* u16 */
#define ARCA_SGX_OFF_REPORTDATA 320   /* 64 */

/* TD report body. */
#define ARCA_TDX_OFF_TEE_TCB_SVN 0    /* 16 */
#define ARCA_TDX_OFF_MRSEAM 16        /* 48 */
#define ARCA_TDX_OFF_MRSIGNERSEAM 64  /* 48 */
#define ARCA_TDX_OFF_SEAMATTR 112     /* 8 */
#define ARCA_TDX_OFF_TDATTR 120       /* 8 */
#define ARCA_TDX_OFF_XFAM 128         /* 8 */
#define ARCA_TDX_OFF_MRTD 136         /* 48 */
#define ARCA_TDX_OFF_MRCONFIGID 184   /* 48 */
#define ARCA_TDX_OFF_MROWNER 232      /* 48 */
#define ARCA_TDX_OFF_MROWNERCONFIG 280 /* 48 */
#define ARCA_TDX_OFF_RTMR0 328        /* 4 x 48 */
#define ARCA_TDX_OFF_REPORTDATA 520   /* 64 */
#define ARCA_TDX_OFF_TEE_TCB_SVN2 584 /* 16, TDX 1.5 */
#define ARCA_TDX_OFF_MRSERVICETD 600  /* 48, TDX 1.5 */

struct arca_intel_quote {
	uint16_t version;       /* 3 (SGX), 4 or 5 (TDX) */
	uint16_t att_key_type;  /* 2 */
	uint32_t tee_type;      /* ARCA_INTEL_TEE_* */
	uint16_t body_type;     /* enum arca_intel_body */
	const uint8_t *header;  /* ARCA_INTEL_HEADER_LEN */
	const uint8_t *body;
	size_t body_len;
	const uint8_t *signed_data; /* what the attestation key signs: header, v5's body descriptor, body */
	size_t signed_len;
	const uint8_t *sig;      /* 64: r || s, big endian */
	const uint8_t *att_key;  /* 64: x || y, big endian */
	const uint8_t *qe_report;     /* ARCA_SGX_REPORT_LEN */
	const uint8_t *qe_report_sig; /* 64 */
	const uint8_t *qe_auth;
	size_t qe_auth_len;
	uint16_t cert_type;      /* of the PCK certification data: 5 */
	const uint8_t *pck_pem;  /* as in the quote, NUL terminator included */
	size_t pck_pem_len;
	/* QE report through the end of the PCK chain: the part the chain
	 * cache keys on. */
	const uint8_t *qe_cert_data;
	size_t qe_cert_data_len;
	size_t quote_len;        /* through the end of the signature data */
	size_t trailing_bytes;   /* after it; accepted, not signed */
};

/* Parses the layout only (no signature checked). Refuses what it does not
 * fully understand: other versions, key types, TEE types, certification
 * data types, lengths that do not add up exactly. */
int arca_intel_quote_parse(const uint8_t *p, size_t n, struct arca_intel_quote *q,
			   struct arca_errbuf *e) ARCA_MUST_CHECK;

/* ---- the PCK certificate's SGX extension (OID 1.2.840.113741.1.13.1) ---- */

struct arca_pck_ext {
	uint8_t ppid[16];
	uint8_t comp_svn[16];   /* SGX TCB components 1..16 */
	uint16_t pcesvn;
	uint8_t cpusvn[16];
	uint8_t pceid[2];
	uint8_t fmspc[6];
	uint8_t sgx_type;       /* 0 standard, 1 scalable, 2 scalable with integrity */
};

/* der: the extension's value (the SEQUENCE), strict DER. */
int arca_pck_ext_parse(const uint8_t *der, size_t n, struct arca_pck_ext *out,
		       struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Finds the extension (exactly once) in cert and parses it. */
int arca_pck_ext_from_cert(X509 *cert, struct arca_pck_ext *out, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* ---- building blocks shared by the quote and collateral verifiers ---- */

/* A new reference to the built-in Intel SGX Root CA, and its DER. */
int arca_intel_root(X509 **out) ARCA_MUST_CHECK;
void arca_intel_root_der(const uint8_t **p, size_t *n);
/* Strict PEM certificate list: "-----BEGIN CERTIFICATE-----\n", base64
 * lines, "-----END CERTIFICATE-----", "\n" between and optionally at the
 * end, then at most one NUL. Anything else (other labels, headers, stray
 * text, non-canonical base64) is refused, so that every changed byte
 * changes the certificates or fails. Puts up to max certificates in
 * out[] (caller frees each); *count says how many. */
int arca_intel_pem_certs(const uint8_t *p, size_t n, X509 **out, size_t max, size_t *count,
			 struct arca_errbuf *e) ARCA_MUST_CHECK;
/* A P-256 public key from Intel's raw x || y; refuses a point off the curve. */
int arca_intel_p256_key(const uint8_t xy[64], EVP_PKEY **out) ARCA_MUST_CHECK;
/* ECDSA P-256 / SHA-256 with a raw 64-byte r || s signature. 0 when valid,
 * ARCA_ECRYPTO otherwise (also for a key that is not P-256). */
int arca_intel_ecdsa_verify(EVP_PKEY *key, const void *msg, size_t n, const uint8_t sig[64]) ARCA_MUST_CHECK;
/* 1 when a and b are the same certificate (same DER). */
int arca_intel_cert_equal(X509 *a, X509 *b);
/* 0 when c is valid at at; otherwise a sentence naming c (by role and CN)
 * and the date it starts or ended. */
int arca_intel_cert_current(X509 *c, const char *role, time_t at, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Path validation of leaf, through ca (NULL: none), to root as the only
 * trust anchor (signatures, names, CA flags, key usage, critical
 * extensions; strict X.509). Looks at neither dates (check them with
 * arca_intel_cert_current) nor CRLs. */
int arca_intel_verify_path(X509 *leaf, X509 *ca, X509 *root, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* A short name for messages: the certificate's CN, else its whole subject. */
void arca_intel_cert_name(X509 *c, char *out, size_t cap);
/* "YYYY-MM-DDTHH:MM:SSZ" both ways (collateral dates, messages). */
#define ARCA_INTEL_TIME_LEN 21
void arca_intel_time_format(time_t t, char out[ARCA_INTEL_TIME_LEN]);
int arca_intel_time_parse(const char *s, time_t *out) ARCA_MUST_CHECK;
int arca_intel_asn1_time(const ASN1_TIME *a, time_t *out) ARCA_MUST_CHECK;

/* ---- collateral ---- */

/* TCB statuses in the order Intel lists them, roughly best first; a
 * policy should name the statuses it accepts rather than lean on the
 * order (ConfigurationNeeded and SWHardeningNeeded are not comparable). */
enum arca_tcb_status {
	ARCA_TCB_UP_TO_DATE = 0,
	ARCA_TCB_SW_HARDENING_NEEDED,
	ARCA_TCB_CONFIGURATION_NEEDED,
	ARCA_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	ARCA_TCB_OUT_OF_DATE,
	ARCA_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	ARCA_TCB_REVOKED,
};
/* "UpToDate", …, as Intel spells them; NULL for anything else. */
const char *arca_tcb_status_name(int status);
/* The enum for Intel's spelling, or -1. */
int arca_tcb_status_parse(const char *s, size_t n);

struct arca_dcap_collateral;

/* Reads one collateral document, in either form:
 * - a bundle: a JSON object with any of tcb_info (the signed JSON text, as
 *   a string), tcb_info_signature (hex r || s), tcb_info_issuer_chain
 *   (PEM), qe_identity, qe_identity_signature, qe_identity_issuer_chain,
 *   root_ca_crl and pck_crl (hex DER), pck_crl_issuer_chain (PEM); no
 *   other keys;
 * - an Intel PCS response: {"tcbInfo": {…}, "signature": "…"} or
 *   {"enclaveIdentity": {…}, "signature": "…"}, where the signed bytes are
 *   the object's text exactly as it appears in the document.
 * arca_dcap_collateral_add merges another document into c (a part given
 * twice is refused), so that PCS responses and their issuer chain and CRLs
 * can come from separate files. Signatures are checked at verification,
 * not here. */
int arca_dcap_collateral_load(const uint8_t *json, size_t n, struct arca_dcap_collateral **out,
			      struct arca_errbuf *e) ARCA_MUST_CHECK;
int arca_dcap_collateral_add(struct arca_dcap_collateral *c, const uint8_t *json, size_t n,
			     struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_dcap_collateral_free(struct arca_dcap_collateral *c);

struct arca_dcap_tcb {
	int status;           /* enum arca_tcb_status: the verdict */
	int platform_status;  /* of the matched tcbLevel */
	int module_status;    /* TDX module identity's; -1 when none applies */
	int qe_status;        /* of the QE identity level the QE's ISVSVN reaches */
	time_t tcb_date;      /* tcbDate of the matched tcbLevel */
};

/* Matching only: which tcbLevel the platform reaches and what status
 * follows; checks no signature, date or CRL (arca_dcap_verify does, then
 * calls this). ARCA_EDENIED when no level matches ("TCB not supported") or
 * the QE or TDX module does not match its identity. */
int arca_dcap_tcb_evaluate(const struct arca_dcap_collateral *c, const struct arca_intel_quote *q,
			   const struct arca_pck_ext *pck, struct arca_dcap_tcb *out,
			   struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Everything collateral can say about a quote whose PCK chain (pck_leaf,
 * pck_ca, to root) and signatures have already been verified at time at:
 * CRLs (signed, current, none of the chain revoked), TCB signing chain to
 * root, TCB info and QE identity (signed, current, for this TEE, FMSPC and
 * PCE ID), then arca_dcap_tcb_evaluate. A status of Revoked is
 * ARCA_EDENIED; other statuses are 0 and left to policy. */
int arca_dcap_verify(const struct arca_dcap_collateral *c, const struct arca_intel_quote *q, X509 *pck_leaf,
		     X509 *pck_ca, X509 *root, time_t at, struct arca_dcap_tcb *out,
		     struct arca_errbuf *e) ARCA_MUST_CHECK;

/* ---- verification ---- */

/* A verified PCK chain and QE report, reused while their bytes are the
 * same: the key is SHA-256 over the pinned root and the quote's QE report,
 * QE report signature, QE auth data and PCK chain PEM. A hit still checks
 * the time against the chain's window, the QE report's binding of the
 * attestation key, the quote signature and all collateral. */
#define ARCA_INTEL_CACHE_SLOTS 8
struct arca_intel_chain_slot {
	int used;
	uint8_t key[32];
	time_t valid_from, valid_until;
	X509 *leaf, *ca;
	EVP_PKEY *att_pkey;     /* the attestation key last seen with this entry */
	uint8_t att_key[64];
	char pck_issuer[256];
};
struct arca_intel_chain_cache {
	struct arca_intel_chain_slot slot[ARCA_INTEL_CACHE_SLOTS];
	unsigned next;
	unsigned long hits, misses;
};
void arca_intel_chain_cache_init(struct arca_intel_chain_cache *c);
void arca_intel_chain_cache_free(struct arca_intel_chain_cache *c);

struct arca_intel_opts {
	const struct arca_dcap_collateral *collateral; /* NULL: tcb_status stays "" (unknown) */
	struct arca_intel_chain_cache *cache;          /* NULL: verify the chain every time */
	X509 *root;  /* NULL: Intel's built-in root; anything else is for tests */
};

/* Verifies a quote at time at: parse, PCK chain to the pinned root with
 * every certificate valid at at, QE report signed by the PCK key, QE
 * report data = SHA-256(attestation key || QE auth data) || 32 zero bytes,
 * quote signature by the attestation key, then collateral if given.
 * res->fields gets the quote's fields named as in expected.json;
 * valid_from/valid_until the PCK chain's common window; tcb_status the
 * status when collateral was given and checked, else "". */
int arca_intel_quote_verify(const uint8_t *p, size_t n, const struct arca_dcap_collateral *coll, time_t at,
			    struct arca_hw_result *res) ARCA_MUST_CHECK;
int arca_intel_quote_verify_opts(const uint8_t *p, size_t n, time_t at, const struct arca_intel_opts *o,
				 struct arca_hw_result *res) ARCA_MUST_CHECK;

#endif
