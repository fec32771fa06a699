/* snp.h: AMD SEV-SNP attestation reports (versions 2 and 3): the raw, hex
 * and configfs-tsm capture forms, the GHCB certificate table, the VCEK/VLEK
 * extensions, and verification of a report against its VCEK or VLEK, the
 * ASK or ASVK, and the AMD root keys (ARKs) pinned in the library.
 *
 * Ownership: struct arca_snp_evidence and struct arca_snp_certs own the
 * certificates they hold (arca_snp_evidence_free / arca_snp_certs_free);
 * X509 objects and stacks a caller passes in stay the caller's. Results go
 * into a caller-owned struct arca_hw_result (hwev.h). No global state: the
 * chain cache is a caller-owned struct with its own lock.
 *
 * What is refused and what is not (the spec is AMD's SEV-SNP ABI, table
 * "ATTESTATION_REPORT Structure"):
 *  - the signed part (0x000-0x29F) is parsed field by field; every reserved
 *    field of the report's version must be zero, the version must be 2 or 3,
 *    the signature algorithm 1 (ECDSA P-384 SHA-384), VMPL 0..3 and the
 *    signing key VCEK or VLEK;
 *  - r and s are 72-byte little-endian fields of which a P-384 value uses 48
 *    bytes: the upper 24 bytes of each must be zero;
 *  - the rest of the signature field (0x330-0x49F) is the report's trailing
 *    padding: unsigned and meaningless, so a change there is not refused
 *    (struct arca_snp_report.padding_nonzero records it);
 *  - bytes after the 1184-byte report in a raw, hex or outblob capture are
 *    trailing padding of the capture and are ignored (counted in
 *    struct arca_snp_evidence.trailing). */
#ifndef ARCA_SNP_H
#define ARCA_SNP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "arca/err.h"
#include "arca/hwev.h"

#define ARCA_SNP_REPORT_LEN 1184
#define ARCA_SNP_SIGNED_LEN 0x2a0
#define ARCA_SNP_SIG_R_OFF 0x2a0
#define ARCA_SNP_SIG_S_OFF 0x2e8
#define ARCA_SNP_SIG_PAD_OFF 0x330 /* first byte of the unsigned trailing padding */
#define ARCA_SNP_SIG_COMPONENT_LEN 72
#define ARCA_SNP_P384_LEN 48

/* Largest capture arca_snp_load_any reads, and largest certificate table. */
#define ARCA_SNP_CAPTURE_MAX ((size_t)1 << 20)
#define ARCA_SNP_CERTTABLE_MAX ((size_t)256 << 10)
#define ARCA_SNP_CERTTABLE_MAX_ENTRIES 64

enum arca_snp_key {
	ARCA_SNP_KEY_VCEK = 0,
	ARCA_SNP_KEY_VLEK = 1,
};

enum arca_snp_product {
	ARCA_SNP_PRODUCT_UNKNOWN = 0,
	ARCA_SNP_MILAN,
	ARCA_SNP_GENOA,
	ARCA_SNP_TURIN,
};

/* "Milan", "Genoa", "Turin" or "unknown". */
const char *arca_snp_product_name(enum arca_snp_product p);

struct arca_snp_report {
	uint8_t raw[ARCA_SNP_REPORT_LEN]; /* the report as read; the signature covers raw[0..0x29F] */
	uint32_t version;
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t signature_algo;
	uint64_t current_tcb;
	uint64_t platform_info;
	uint32_t signer_info;   /* the word at 0x48 as read */
	int author_key_en;      /* signer_info bit 0 */
	int mask_chip_key;      /* signer_info bit 1 */
	enum arca_snp_key signing_key; /* signer_info bits 4:2 */
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;
	uint8_t cpuid_fam_id, cpuid_mod_id, cpuid_step; /* version 3; zero in version 2 */
	uint8_t chip_id[64];
	uint64_t committed_tcb;
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	uint64_t launch_tcb;
	int padding_nonzero;    /* 0x330-0x49F held something other than zeros */
};

/* Parses exactly ARCA_SNP_REPORT_LEN bytes (see the top of this file for
 * what is refused). ARCA_EPARSE / ARCA_EUNSUPPORTED with a reason in e. */
int arca_snp_parse(const uint8_t *p, size_t n, struct arca_snp_report *out, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* The certificates of a GHCB certificate table (configfs-tsm auxblob). */
struct arca_snp_certs {
	X509 *ark, *ask, *vcek, *vlek;
};

/* Parses a certificate table: entries of GUID (16 bytes, RFC 4122 byte
 * order), offset (u32le, from the start of the table) and length (u32le),
 * ended by an all-zero entry. Every entry's data must lie inside p..p+n and
 * after the table; ARK, ASK, VCEK and VLEK entries must hold one PEM or DER
 * certificate and appear at most once; other GUIDs (a CRL, a vendor's
 * extras) are bounds-checked and skipped. */
int arca_snp_certtable_parse(const uint8_t *p, size_t n, struct arca_snp_certs *out,
			     struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_snp_certs_free(struct arca_snp_certs *c);

enum arca_snp_form {
	ARCA_SNP_FORM_RAW = 1, /* the report's bytes */
	ARCA_SNP_FORM_HEX,     /* the same as hex digits, optionally followed by white space */
	ARCA_SNP_FORM_TSM,     /* JSON {"outblob", "auxblob", "provider"}, base64url without padding */
};

struct arca_snp_evidence {
	enum arca_snp_form form;
	struct arca_snp_report report;
	size_t trailing;         /* bytes after the report in the capture, ignored */
	char provider[32];       /* TSM form: as configfs gave it ("sev_guest\n") */
	struct arca_snp_certs certs; /* TSM form: from the auxblob, when there is one */
};

/* Detects the form (a JSON object, 2368 or more hex digits, else raw
 * bytes), decodes it and parses the report. For the TSM form the provider
 * must be sev_guest, outblob is required, auxblob is optional; keys that
 * configfs-tsm does not define are refused. On failure *out holds nothing
 * that needs freeing. */
int arca_snp_load_any(const uint8_t *p, size_t n, struct arca_snp_evidence *out,
		      struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_snp_evidence_free(struct arca_snp_evidence *ev);

/* The fields as expected.json names them (version, guest_svn, policy, vmpl,
 * signing_key, report_data, measurement, host_data, id_key_digest,
 * reported_tcb, chip_id, current_tcb, platform_info, signature_algo, and
 * provider for the TSM form). *out is a new reference. */
int arca_snp_fields(const struct arca_snp_evidence *ev, json_t **out) ARCA_MUST_CHECK;

/* What a VCEK or VLEK certificate says about the chip. */
struct arca_snp_leaf {
	enum arca_snp_key kind;        /* from the subject CN: SEV-VCEK or SEV-VLEK */
	enum arca_snp_product product; /* from 1.3.6.1.4.1.3704.1.2 ("Milan-B0" is Milan) */
	char product_name[32];
	uint64_t tcb;          /* SPL extensions in the product's TCB_VERSION layout */
	uint8_t hwid[64];      /* 1.3.6.1.4.1.3704.1.4 (VCEK only) */
	size_t hwid_len;       /* as found, even when above 64 (then hwid holds nothing) */
};

/* Reads the kind, product, TCB and hwID of a VCEK or VLEK and checks that
 * its key is ECDSA P-384. TCB layout: Milan and Genoa
 * [0] boot loader, [1] TEE, [2..5] zero, [6] SNP, [7] microcode; Turin
 * [0] FMC, [1] boot loader, [2] TEE, [3] SNP, [4..6] zero, [7] microcode. */
int arca_snp_leaf_read(X509 *leaf, struct arca_snp_leaf *out, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* SHA-256 of the DER of AMD's ARK for a product, pinned in the library;
 * NULL for ARCA_SNP_PRODUCT_UNKNOWN. */
const uint8_t *arca_snp_ark_sha256(enum arca_snp_product p);

/* Verifies leaf -> ASK (VCEK) or ASVK (VLEK) -> ARK: issuer names, the
 * intermediate is a CA, RSA-PSS SHA-384 / MGF1 SHA-384 / salt 48 on both
 * signatures (parameters checked, not defaulted), the ARK pinned for the
 * leaf's product, and every certificate valid at `at`. The ASK/ASVK and ARK
 * are looked up by name in chain (any order; extra certificates ignored).
 * *valid_from / *valid_until get the intersection of the three validity
 * windows once the signatures are known good, even if `at` is outside it
 * (0 when unknown). info may be NULL. */
int arca_snp_chain_verify(X509 *leaf, STACK_OF(X509) *chain, time_t at, struct arca_snp_leaf *info,
			  time_t *valid_from, time_t *valid_until, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Checks 4 to 6 below: what the report says about the chip against what
 * its (already trusted) VCEK or VLEK says. ARCA_EDENIED with a reason. */
int arca_snp_check_bindings(const struct arca_snp_report *r, const struct arca_snp_leaf *leaf,
			    struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Remembers leaves whose chain to a pinned ARK verified, keyed by the
 * SHA-256 of the leaf's DER, with what the leaf says and the chain's window,
 * so that a repeated verification only checks the report's signature and
 * bindings. A cached leaf is trusted only inside its window; outside it the
 * whole chain is checked again (and the reason names the certificate).
 * The slots are the library's to fill; whoever can write them can vouch
 * for any leaf (the unit test does, to reach the checks after the chain),
 * so keep the cache where the verifier's other state is. */
#define ARCA_SNP_CACHE_SLOTS 32
struct arca_snp_cache_entry {
	int used;
	uint8_t leaf_sha256[32];
	struct arca_snp_leaf info;
	time_t valid_from, valid_until;
};
struct arca_snp_chain_cache {
	pthread_mutex_t lock;
	struct arca_snp_cache_entry slot[ARCA_SNP_CACHE_SLOTS];
	unsigned next;          /* round-robin replacement */
	unsigned long hits, misses;
};
int arca_snp_chain_cache_init(struct arca_snp_chain_cache *c) ARCA_MUST_CHECK;
void arca_snp_chain_cache_free(struct arca_snp_chain_cache *c);

/* Verifies a report at time `at`. leaf: the VCEK/VLEK, or NULL to take it
 * from the evidence. chain: ASK/ASVK and ARK in any order, or NULL; the
 * evidence's own ASK and ARK are searched after it. cache may be NULL.
 * Order of checks (the reason names the first that failed):
 *  1. a leaf is there, reads as a VCEK or VLEK (arca_snp_leaf_read), and
 *     is the kind signer_info names;
 *  2. the chain (arca_snp_chain_verify), or a cache hit inside its window;
 *  3. the report's ECDSA P-384 SHA-384 signature over 0x000-0x29F;
 *  4. a version 3 report's CPUID family matches the leaf's product;
 *  5. reported_tcb equals the leaf's TCB;
 *  6. chip_id equals the VCEK's hwID, unless chip_id is all zero.
 * res (initialised by the caller) gets the fields, the verdict, the reason,
 * the window and report_data. Returns 0 only when res->verified is 1. */
int arca_snp_verify(const struct arca_snp_evidence *ev, X509 *leaf, STACK_OF(X509) *chain, time_t at,
		    struct arca_snp_chain_cache *cache, struct arca_hw_result *res) ARCA_MUST_CHECK;

#endif
