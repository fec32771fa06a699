/* evidence_hw.h: hardware evidence from an arca-las inside a confidential
 * VM: the envelope of docs/CONTRACTS.md ("Hardware evidence from
 * arca-las"), its binding, and its verification against a service's
 * platform constraints (policy.h).
 *
 *   0   magic "ARCAHW01"                 8
 *   8   platform u32 (2 = sev-snp, 3 = tdx)
 *   12  flags u32 (bit 0: ARCA_HW_FLAG_PTRACE_PROTECTED, bit 1:
 *       ARCA_HW_FLAG_SECRET_MEMORY; other bits refused)
 *   16  timestamp u64
 *   24  pid u32, uid u32                 (the measured caller)
 *   32  measurement                      32 (in-guest program measurement)
 *   64  report data of the caller        64
 *   128 u32 length + hardware report (SEV-SNP: exactly 1184 bytes; TDX: the quote)
 *   …   u32 length + auxblob (SEV-SNP: GHCB certificate table, may be empty; TDX: empty)
 *   …   u32 length + provider (configfs-tsm "provider": sev_guest or tdx_guest,
 *       optionally followed by one newline, as the kernel writes it)
 *   nothing after it. All integers little endian.
 *
 * The hardware report's report data must be the binding, SHA-512("arca-las-
 * hw-v1" || bytes 0..127): so the CPU vendor's signature covers what the
 * in-guest arca-las measured, the report data its caller asked for, and
 * the flags.
 *
 * ARCA_HW_FLAG_PTRACE_PROTECTED says what ARCA_SIM_FLAG_PTRACE_PROTECTED
 * says of sim evidence (evidence.h): arca-las started the program and no
 * other process of its user could reach into it before its shield made it
 * non-dumpable (Yama inside the VM). The hardware vouches for the VM; the
 * measurement inside it is only as good as that window was closed.
 * ARCA_HW_FLAG_SECRET_MEMORY says what ARCA_SIM_FLAG_SECRET_MEMORY says:
 * the program had secret memory (memfd_secret) when arca-las signed, so
 * root inside the VM cannot read its heap.
 *
 * Ownership: struct arca_hw_envelope borrows (report, aux and provider
 * point into the bytes parsed, which must outlive it). struct
 * arca_hw_facts is plain data. Results go into a caller-owned struct
 * arca_hw_result (hwev.h), initialised by the caller. Caches in struct
 * arca_hw_opts stay the caller's (snp.h and intel.h say which may be
 * shared between threads: the SEV-SNP one may, the Intel one may not). */
#ifndef ARCA_EVIDENCE_HW_H
#define ARCA_EVIDENCE_HW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "arca/buf.h"
#include "arca/err.h"
#include "arca/hwev.h"
#include "arca/intel.h"
#include "arca/policy.h"
#include "arca/snp.h"

#define ARCA_HW_MAGIC "ARCAHW01"
#define ARCA_HW_PLATFORM_SEV_SNP 2u
#define ARCA_HW_PLATFORM_TDX 3u
#define ARCA_HW_PLATFORM_SGX 4u /* facts of an SGX quote only; never in an envelope */
#define ARCA_HW_HEADER_LEN 128
#define ARCA_HW_FLAG_PTRACE_PROTECTED 0x1u
#define ARCA_HW_FLAG_SECRET_MEMORY 0x2u
#define ARCA_HW_FLAGS_KNOWN (ARCA_HW_FLAG_PTRACE_PROTECTED | ARCA_HW_FLAG_SECRET_MEMORY)
#define ARCA_HW_BINDING_LABEL "arca-las-hw-v1"

/* Bounds of each part. Together they keep an envelope inside one LAS
 * answer (u16 length, evidence.h) and CAS's ARCA_MAX_EVIDENCE. */
#define ARCA_HW_REPORT_MAX ((size_t)24 << 10)
#define ARCA_HW_AUX_MAX ((size_t)32 << 10)
#define ARCA_HW_PROVIDER_MAX 64
#define ARCA_HW_ENVELOPE_MAX (ARCA_HW_HEADER_LEN + 12 + ARCA_HW_REPORT_MAX + ARCA_HW_AUX_MAX + ARCA_HW_PROVIDER_MAX)

struct arca_hw_envelope {
	uint32_t platform;            /* ARCA_HW_PLATFORM_SEV_SNP or _TDX */
	uint32_t flags;               /* ARCA_HW_FLAG_* */
	uint64_t timestamp;
	uint32_t pid, uid;
	uint8_t measurement[32];
	uint8_t report_data[64];      /* the caller's, as it asked LAS */
	const uint8_t *report;
	size_t report_len;
	const uint8_t *aux;           /* may be NULL when aux_len is 0 */
	size_t aux_len;
	const uint8_t *provider;
	size_t provider_len;
};

/* "sev-snp", "tdx", "sgx" for ARCA_HW_PLATFORM_*, NULL otherwise; and back
 * (0 for an unknown name). */
const char *arca_hw_platform_name(uint32_t platform);
uint32_t arca_hw_platform_parse(const char *name);

/* Bytes 0..127 of the envelope (the report and what follows it are not
 * needed): what LAS hashes into the binding before it asks the hardware. */
int arca_hw_header_encode(const struct arca_hw_envelope *env, uint8_t out[static ARCA_HW_HEADER_LEN]) ARCA_MUST_CHECK;
/* SHA-512(ARCA_HW_BINDING_LABEL || header). */
int arca_hw_binding(const uint8_t header[static ARCA_HW_HEADER_LEN], uint8_t out[static 64]) ARCA_MUST_CHECK;
/* Appends the whole envelope to out; refuses parts the parser would refuse
 * (ARCA_EINVAL with a reason in e), so a LAS never sends what CAS cannot
 * read. */
int arca_hw_envelope_encode(const struct arca_hw_envelope *env, struct arca_buf *out,
			    struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Strict: exact lengths, every bound above, no unknown flag, the platform's
 * report length (SEV-SNP 1184), TDX without auxblob, a provider that names
 * the envelope's platform, nothing after the provider. ARCA_EPARSE or
 * ARCA_ETOOBIG with a reason in e. */
int arca_hw_envelope_parse(const uint8_t *p, size_t n, struct arca_hw_envelope *out,
			   struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Which kind of evidence LAS sent, by its magic and platform field, so a
 * client can say "platform" in its attest request without parsing it:
 * "sim", "sev-snp", "tdx", or NULL. Needs no verifier code (the shield
 * links it). */
static inline const char *arca_evidence_platform(const uint8_t *p, size_t n)
{
	if (p && n >= 12 && memcmp(p, "ARCAEV01", 8) == 0)
		return "sim";
	if (p && n >= 12 && memcmp(p, ARCA_HW_MAGIC, 8) == 0) {
		uint32_t v = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
		return v == ARCA_HW_PLATFORM_SEV_SNP ? "sev-snp" : v == ARCA_HW_PLATFORM_TDX ? "tdx" : NULL;
	}
	return NULL;
}

/* What verified evidence says, for the platform constraints of a service
 * and for CAS's own checks. Only the fields of `platform` mean anything. */
struct arca_hw_facts {
	uint32_t platform;
	/* from the envelope (not for SGX) */
	uint32_t flags;
	uint64_t timestamp;
	uint32_t pid, uid;
	uint8_t measurement[32];     /* in-guest program measurement */
	uint8_t report_data[64];     /* the caller's report data */
	/* sev-snp */
	uint64_t snp_policy;
	uint8_t snp_measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint64_t reported_tcb;
	enum arca_snp_product product; /* from the VCEK/VLEK that signed */
	/* tdx */
	uint64_t td_attributes;
	uint8_t mrtd[48];
	uint8_t rtmr[4][48];
	uint8_t mrconfigid[48];
	/* sgx */
	uint64_t sgx_attributes;     /* the flags word */
	uint8_t mrenclave[32];
	uint8_t mrsigner[32];
	uint16_t isvprodid, isvsvn;
	/* tdx, sgx: enum arca_tcb_status from collateral, -1 when unknown */
	int tcb_status;
};

/* Where a refusal came from, so that a caller (CAS) can map it to its
 * error codes. */
enum arca_hw_failure {
	ARCA_HW_OK = 0,
	ARCA_HW_BAD_ENVELOPE,   /* not a well-formed envelope */
	ARCA_HW_BAD_BINDING,    /* report data is not the binding of the envelope */
	ARCA_HW_BAD_REPORT,     /* the hardware report, its signature or chain */
	ARCA_HW_NOT_LISTED,     /* the service does not list the platform */
	ARCA_HW_CONSTRAINT,     /* a platform constraint of the service is not met */
};

struct arca_hw_opts {
	struct arca_snp_chain_cache *snp_cache;    /* NULL: verify the chain every time */
	struct arca_intel_chain_cache *intel_cache; /* NULL: likewise */
	const struct arca_dcap_collateral *collateral; /* NULL: TCB status unknown */
	X509 *intel_root;                          /* NULL: Intel's pinned root; else tests only */
};

/* Verifies an envelope at time now, in this order (the reason in res and
 * e names the first check that failed, *failed says which kind):
 *  1. the envelope parses (arca_hw_envelope_parse) and so does the report
 *     (and, for SEV-SNP, the certificate table);
 *  2. the binding: the report's report data equals SHA-512(label ||
 *     bytes 0..127). It goes before the signature because it is cheap and
 *     needs nothing but the bytes: what fails it is refused whatever the
 *     signature says, and the verdict does not depend on certificate dates;
 *  3. the hardware report: SEV-SNP by arca_snp_verify with the VCEK/VLEK,
 *     ASK/ASVK and ARK of the auxblob (the ARK pinned); TDX by
 *     arca_intel_quote_verify_opts with the quote's own PCK chain (the
 *     root pinned), each at now;
 *  4. when svc is not NULL: the service lists the platform, then its
 *     constraints (arca_hw_check_constraints).
 * facts gets what the evidence says once step 3 passed (callers that pass
 * svc = NULL check the constraints later with arca_hw_check_constraints).
 * res (initialised by the caller, reset here) gets the report's fields;
 * res->verified is 1 only when steps 1 to 3, and 4 when svc is given,
 * passed. opts may be NULL. Returns 0 only then; ARCA_EPARSE, ARCA_ECRYPTO,
 * ARCA_EDENIED, … otherwise. */
int arca_hw_evidence_verify(const uint8_t *p, size_t n, time_t now, const struct arca_service *svc,
			    const struct arca_hw_opts *opts, struct arca_hw_facts *facts, enum arca_hw_failure *failed,
			    struct arca_hw_result *res, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* 1 when svc lists the platform of f. */
int arca_hw_platform_listed(const struct arca_hw_facts *f, const struct arca_service *svc);

/* The service's constraints for f's platform, against f (ARCA_EDENIED and
 * a reason naming the field, what was seen and what was wanted):
 *  sev-snp: measurement, host_data, id_key_digest equal; min_tcb per
 *    component of reported_tcb (Milan/Genoa: bootloader byte 0, TEE 1, SNP
 *    6, microcode 7; Turin: bootloader 1, TEE 2, SNP 3, microcode 7);
 *    debug: false refuses a guest policy with bit 19 (DEBUG) set; product
 *    equal to the signing key's;
 *  tdx: mrtd, rtmr0..3, mrconfigid equal; debug: false refuses
 *    td_attributes bit 0 (DEBUG); min_tcb_status;
 *  sgx: mrenclave equal; mrsigner equal with isvprodid equal and isvsvn at
 *    least min_isvsvn; debug: false refuses attributes bit 1 (DEBUG);
 *    min_tcb_status.
 * min_tcb_status accepts a status no worse than it in enum arca_tcb_status
 * order; without collateral the status is unknown and a service that
 * names one is refused ("TCB status unknown: no collateral"). A platform
 * the service does not list is ARCA_EDENIED too. */
int arca_hw_check_constraints(const struct arca_hw_facts *f, const struct arca_service *svc,
			      struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Facts of a parsed SEV-SNP report signed by a key of `product`. */
void arca_hw_facts_from_snp(const struct arca_snp_report *r, enum arca_snp_product product,
			    struct arca_hw_facts *f);
/* Facts of a parsed TDX or SGX quote; tcb_status -1 when unknown. */
int arca_hw_facts_from_quote(const struct arca_intel_quote *q, int tcb_status, struct arca_hw_facts *f) ARCA_MUST_CHECK;

#endif
