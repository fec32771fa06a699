/* proto.h: the messages of arca's protocol (design.md "Protocol"), as JSON
 * through jansson, and the configuration CAS releases to a service.
 *
 * Decoders are strict: an unknown key, a missing key, a wrong type, bad
 * base64 or a binary field of the wrong size is refused (ARCA_EPARSE, with
 * the field named in e). Decoded structs are owned by the caller; free them
 * with the matching _free (which wipes what may be secret). */
#ifndef ARCA_PROTO_H
#define ARCA_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "arca/err.h"
#include "arca/buf.h"

#define ARCA_NONCE_LEN 32
/* Largest request body CAS reads: a policy of ARCA_POLICY_MAX_BYTES grows
 * when escaped as a JSON string (quotes, backslashes, newlines). */
#define ARCA_MAX_BODY (2u << 20)
#define ARCA_MAX_EVIDENCE (64u << 10)
/* Largest encoded struct arca_config (the JSON inside the sealed box):
 * CAS refuses to render more, the shield sizes its reply buffer by it. */
#define ARCA_MAX_CONFIG (4u << 20)

/* Report data binding (design.md step 2):
 * SHA-512(nonce || public key || "S/V"). */
int arca_report_data(const uint8_t nonce[32], const uint8_t pub[32], const char *session, const char *service,
		     uint8_t out[64]) ARCA_MUST_CHECK;

/* POST /v1/attest/nonce → {"nonce": b64, "expires_in": seconds} */
struct arca_msg_nonce {
	uint8_t nonce[ARCA_NONCE_LEN];
	int expires_in;
};
int arca_msg_nonce_encode(const struct arca_msg_nonce *m, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_msg_nonce_decode(const uint8_t *p, size_t n, struct arca_msg_nonce *m, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* POST /v1/attest {"session","service","platform","nonce","pubkey","evidence"} */
struct arca_msg_attest {
	char session[129];
	char service[129];
	char platform[16];            /* "sim" (later "sev-snp", "tdx") */
	uint8_t nonce[ARCA_NONCE_LEN];
	uint8_t pubkey[32];           /* X25519 */
	uint8_t *evidence;            /* malloc'd */
	size_t evidence_len;
};
int arca_msg_attest_encode(const struct arca_msg_attest *m, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_msg_attest_decode(const uint8_t *p, size_t n, struct arca_msg_attest *m, struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_msg_attest_free(struct arca_msg_attest *m);

/* reply {"config": b64(box)} where box = arca_box_seal(pubkey,
 * "arca/v1/config", encoded struct arca_config) */
int arca_msg_sealed_encode(const uint8_t *box, size_t n, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_msg_sealed_decode(const uint8_t *p, size_t n, struct arca_buf *box, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* 4xx/5xx {"error": code, "detail": sentence} */
int arca_msg_error_encode(const char *code, const char *detail, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_msg_error_decode(const uint8_t *p, size_t n, char code[64], char detail[256]) ARCA_MUST_CHECK;

/* POST /v1/sessions, PUT /v1/sessions/NAME: {"policy": "<YAML text>"}
 * reply {"name": …, "hash": "<64 hex>"} */
int arca_msg_policy_encode(const char *yaml, size_t len, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_msg_policy_decode(const uint8_t *p, size_t n, struct arca_buf *yaml, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* The configuration of one service instance: what the shield installs
 * before main. Everything in it may be secret. */
struct arca_file_entry {
	char *path;
	uint8_t *data;
	size_t len;
};
/* A protected volume the service mounts (docs/VOLUMES.md "Freshness"). */
struct arca_config_volume {
	char name[129];
	char path[4096];             /* absolute, normalised */
	int mode;                    /* enum arca_vol_mode: 1 encrypted, 2 authenticated */
	uint8_t key[32];             /* the volume key */
	int has_tag;                 /* 0: CAS holds no tag yet (a new volume) */
	uint8_t tag[32];             /* the tag the volume must have */
	int readonly;                /* a code volume: its tag is pinned */
	uint8_t token[32];           /* authorizes POST /v1/volumes/S/V/tag for this instance */
};
struct arca_config {
	char **argv;
	size_t argc;
	char **env;                  /* "NAME=value" */
	size_t nenv;
	struct arca_file_entry *files;
	size_t nfiles;
	struct arca_config_volume *volumes;
	size_t nvolumes;
};
/* JSON {"argv":[…],"env":["K=V",…],"files":[{"path":…,"data":b64}],
 *       "volumes":[{"name","path","mode":"encrypted"|"authenticated",
 *                   "key":b64,"tag":"<64 hex>"|null,"readonly":bool,
 *                   "token":b64}]}  ("volumes" may be absent: none)
 * argv has at least one entry; argv and env are also NULL-terminated
 * (argv[argc] == NULL) so they can go straight to execve-like code. Encode
 * into a secret buffer: the text holds the secrets in clear. */
int arca_config_encode(const struct arca_config *c, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_config_decode(const uint8_t *p, size_t n, struct arca_config **out, struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_config_free(struct arca_config *c);

/* POST /v1/volumes/S/V/tag {"token": b64, "previous": "<64 hex>"|null,
 * "tag": "<64 hex>"} → 200 {"tag": "<64 hex>"}. CAS stores tag when
 * previous equals the tag it holds (compare and swap); otherwise 409
 * volume_rollback, audited. At start, a shield that finds a volume whose
 * tag is not the one CAS gave it sends previous = tag = what it found, so
 * that CAS audits the rollback, and refuses to start. */
struct arca_msg_voltag {
	uint8_t token[32];
	int has_previous;
	uint8_t previous[32];
	uint8_t tag[32];
};
int arca_msg_voltag_encode(const struct arca_msg_voltag *m, struct arca_buf *out) ARCA_MUST_CHECK;
int arca_msg_voltag_decode(const uint8_t *p, size_t n, struct arca_msg_voltag *m, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
