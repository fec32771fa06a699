/* policy.h: session policies (YAML, per design.md), their canonical form
 * and hash, and $$arca:NAME[:FORMAT]$$ placeholders.
 *
 * arca_policy_parse builds a struct arca_policy the caller frees with
 * arca_policy_free (which wipes given secret values). Every problem found is
 * added to the caller's struct arca_diags with file, line and column
 * (1-based) and a sentence saying what to do; parsing fails closed: any
 * diagnostic means no policy. */
#ifndef ARCA_POLICY_H
#define ARCA_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "arca/err.h"
#include "arca/buf.h"

#define ARCA_NAME_MAX 128
#define ARCA_POLICY_MAX_BYTES (1u << 20)

struct arca_diag {
	int line, col;
	char msg[300];
};

struct arca_diags {
	char file[256];
	struct arca_diag d[32];
	size_t n;        /* kept entries */
	size_t dropped;  /* more than fit */
};

void arca_diags_init(struct arca_diags *ds, const char *file);
void arca_diags_add(struct arca_diags *ds, int line, int col, const char *fmt, ...) ARCA_PRINTF(4, 5);
/* "FILE:LINE:COL: message" lines, one per diagnostic. */
int arca_diags_format(const struct arca_diags *ds, struct arca_buf *out) ARCA_MUST_CHECK;

enum arca_secret_kind {
	ARCA_SECRET_ASCII = 1,
	ARCA_SECRET_BINARY,
	ARCA_SECRET_PRIVATE_KEY,
	ARCA_SECRET_X509,
};

struct arca_secret_def {
	char *name;
	enum arca_secret_kind kind;
	size_t size;          /* ascii: characters; binary: bytes; 0 = default (32).
	                       * The parser always fills it in (with a given
	                       * value: value_len). */
	uint8_t *value;       /* given by the owner (ascii/binary), else NULL;
	                       * arca_secret_alloc(value_len + 1), NUL after
	                       * the bytes, wiped by arca_policy_free */
	size_t value_len;
	char *common_name;    /* x509 */
	char **dns;           /* x509 */
	size_t ndns;
	int line, col;
};

struct arca_kv {
	char *key;
	char *value;          /* may contain placeholders */
	int line, col;
};

struct arca_volume_ref {
	char *name;
	char *path;
	int line, col;
};

/* A top-level volume. With key and tag it is a code volume: sealed by its
 * owner (arca fs seal) under the named secret (kind binary, exactly
 * ARCA_VOLUME_KEY_BYTES bytes), its tag pinned here, read-only to programs.
 * Without both it is a data volume: CAS generates its key on first use and
 * keeps its tag (docs/VOLUMES.md "Freshness"). The parser accepts either
 * both or neither. */
#define ARCA_VOLUME_KEY_BYTES 32
struct arca_volume_def {
	char *name;
	int authenticated;    /* 0 = encrypted */
	char *key;            /* code volume: the secret's name; else NULL */
	int has_tag;          /* code volume: 1 */
	uint8_t tag[32];      /* the pinned tag */
	int line, col;
};
/* 1 for a code volume (key and tag given). */
static inline int arca_volume_is_code(const struct arca_volume_def *v)
{
	return v->key != NULL && v->has_tag;
}

/* Constraints a service puts on hardware evidence (design.md, platform:).
 * A has_ flag of 0 means "not constrained"; the parser fills every field
 * (absent numbers as -1). What each field is compared with, and how, is
 * documented in include/arca/evidence_hw.h, which checks them. */
enum arca_snp_tcb_part {
	ARCA_SNP_TCB_BOOTLOADER = 0,
	ARCA_SNP_TCB_TEE,
	ARCA_SNP_TCB_SNP,
	ARCA_SNP_TCB_MICROCODE,
	ARCA_SNP_TCB_NPARTS
};

struct arca_snp_policy {
	int has_measurement, has_host_data, has_id_key_digest;
	uint8_t measurement[48];   /* launch measurement */
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	int min_tcb[ARCA_SNP_TCB_NPARTS]; /* 0..255 each, -1: no minimum */
	int debug;                 /* 1: a guest policy that allows debugging is accepted */
	int product;               /* 0: any; else enum arca_snp_product (snp.h): 1 Milan, 2 Genoa, 3 Turin */
};

struct arca_tdx_policy {
	int has_mrtd, has_mrconfigid;
	int has_rtmr[4];
	uint8_t mrtd[48];
	uint8_t rtmr[4][48];
	uint8_t mrconfigid[48];
	int debug;                 /* 1: a TD whose attributes say DEBUG is accepted */
	int min_tcb_status;        /* enum arca_tcb_status (intel.h), -1: no minimum */
};

struct arca_sgx_policy {
	int has_mrenclave, has_mrsigner;
	uint8_t mrenclave[32];
	uint8_t mrsigner[32];
	int isvprodid;             /* 0..65535, -1: not given (then no mrsigner either) */
	int min_isvsvn;            /* 0..65535, -1: not given */
	int debug;                 /* 1: a debug enclave is accepted */
	int min_tcb_status;        /* enum arca_tcb_status (intel.h), -1: no minimum */
};

struct arca_service {
	char *name;
	char **command;       /* argv, may contain placeholders */
	size_t ncommand;
	uint8_t measurement[32];
	int has_measurement;
	int platform_sim;     /* platform: {sim: {}} listed */
	int platform_snp;     /* platform: {sev-snp: {...}} listed; constraints in snp */
	int platform_tdx;
	int platform_sgx;
	struct arca_snp_policy snp;
	struct arca_tdx_policy tdx;
	struct arca_sgx_policy sgx;
	struct arca_kv *env;
	size_t nenv;
	struct arca_kv *files; /* key = absolute path, value = content */
	size_t nfiles;
	struct arca_volume_ref *volumes;
	size_t nvolumes;
	int line, col;
};

struct arca_policy {
	char *name;
	int has_predecessor;
	uint8_t predecessor[32];
	int has_access;
	char **owners;        /* "SHA256:…" */
	size_t nowners;
	struct arca_service *services;
	size_t nservices;
	struct arca_secret_def *secrets;
	size_t nsecrets;
	struct arca_volume_def *volumes;
	size_t nvolumes;
	char **tolerate;      /* reserved words, e.g. no-secret-memory */
	size_t ntolerate;
};

/* Parses and validates: schema, names, unknown keys, duplicates, that every
 * placeholder names a declared secret with a format fitting its kind, that
 * every service volume names a declared volume, file paths absolute. */
int arca_policy_parse(const char *text, size_t len, struct arca_diags *ds, struct arca_policy **out) ARCA_MUST_CHECK;
void arca_policy_free(struct arca_policy *p);

const struct arca_service *arca_policy_service(const struct arca_policy *p, const char *name);
const struct arca_secret_def *arca_policy_secret(const struct arca_policy *p, const char *name);
const struct arca_volume_def *arca_policy_volume(const struct arca_policy *p, const char *name);

/* The canonical form: JSON with sorted keys, no insignificant whitespace,
 * every field present in a fixed shape, secret values included (hex).
 * The exact shape is documented at the top of lib/policy_json.c.
 * With redact != 0 given secret values are replaced by "<redacted>"
 * (for reads); the hash is always over the unredacted form.
 * arca_policy_to_json returns a new reference (NULL on failure); an
 * unredacted one holds secret values, so free it with arca_policy_json_free,
 * which wipes its strings before json_decref.
 * arca_policy_canonical appends to out (use a secret buffer: it holds the
 * secret values); nothing is appended on failure. */
json_t *arca_policy_to_json(const struct arca_policy *p, int redact);
void arca_policy_json_free(json_t *j);
int arca_policy_canonical(const struct arca_policy *p, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_policy_hash(const struct arca_policy *p, uint8_t out[32]) ARCA_MUST_CHECK;

/* Name syntax of design.md: [A-Za-z0-9_.~/-]{1,128} */
int arca_name_valid(const char *s);

/* Placeholder substitution. lookup appends the rendering of secret NAME in
 * FORMAT (NULL = the kind's default) to out, or returns an error. */
typedef int (*arca_secret_lookup_fn)(void *ctx, const char *name, const char *format, struct arca_buf *out);
/* Appends in (len bytes) to out with every $$arca:NAME[:FORMAT]$$ replaced.
 * A malformed or unknown placeholder is an error (message in e) and then
 * nothing is appended. The exact bytes "$$arca:" always start a placeholder;
 * any other '$' is literal (grammar at the top of lib/subst.c). */
int arca_subst(const char *in, size_t len, arca_secret_lookup_fn lookup, void *ctx, struct arca_buf *out,
	       struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Formats: NULL/"" default, "hex", "base64", "pem", "key", "chain".
 * Defaults: ascii → the characters; binary → raw bytes; private-key → PEM
 * private key; x509 → PEM certificate. hex/base64 apply to ascii and binary;
 * pem/key/chain to x509 (key also to private-key). */
int arca_format_fits(enum arca_secret_kind kind, const char *format);

#endif
