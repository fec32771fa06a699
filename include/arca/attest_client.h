/* attest_client.h: the client side of the attestation exchange
 * (CONTRACTS.md "Attestation"), one implementation for the shield, the
 * benchmark and the tests.
 *
 * The caller owns the HTTPS connection (pinned to CAS) and supplies the
 * evidence through a callback, which gets the report data to bind: the
 * shield asks its arca-las, the benchmark the LAS socket, the tests sign
 * their own. The ephemeral X25519 key lives in arca_secret_alloc memory
 * and every plaintext buffer is wiped before this returns. On success
 * *cfg is the decrypted configuration (arca_config_free). When CAS refuses,
 * the result is ARCA_EDENIED and code holds CAS's error code (else ""),
 * so that the caller can say in its own words what to do. */
#ifndef ARCA_ATTEST_CLIENT_H
#define ARCA_ATTEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "arca/err.h"
#include "arca/proto.h"

struct arca_http;

/* Returns evidence for report_data in a malloc'd buffer (*ev, freed by the
 * caller), or an error with the reason in e. */
typedef int (*arca_evidence_fn)(void *ctx, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
				struct arca_errbuf *e);

struct arca_attest_outcome {
	char code[64];     /* CAS's error code when it refused, else "" */
	char platform[16]; /* kind of evidence sent ("sim", "sev-snp", "tdx") */
};

#define ARCA_CONFIG_CONTEXT "arca/v1/config"

int arca_attest_exchange(struct arca_http *h, const char *cas, const char *session, const char *service,
			 arca_evidence_fn get_evidence, void *ctx, struct arca_config **cfg,
			 struct arca_attest_outcome *outcome, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* POST /v1/volumes/SESSION/VOLUME/tag (CONTRACTS.md "Volumes"): asks CAS
 * to record m->tag as the tag of the volume's last commit, with the token
 * the volume came with in the configuration. Session and volume go into
 * the path as they are (names need no escaping; a session's '/' stays a
 * '/', as in GET /v1/sessions/NAME). Returns 0 once CAS has stored it (it
 * answered 200 with exactly that tag), ARCA_ESTALE when CAS holds another
 * previous tag (409 volume_rollback: the volume was rolled back, or
 * changed outside arca; CAS has audited it), ARCA_EDENIED on 403 (the
 * token is not good for this volume, or it is a read-only code volume),
 * ARCA_EINVAL for a name that cannot be a session or volume name, and
 * ARCA_ENET when CAS cannot be reached or answers anything else (after
 * one retry of the same request on a fresh connection: CAS answers 200 to
 * a repeat of a swap it already made, so a lost answer is safe to retry).
 * e says which, never the token. */
int arca_cas_volume_tag(struct arca_http *h, const char *session, const char *volume,
			const struct arca_msg_voltag *m, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
