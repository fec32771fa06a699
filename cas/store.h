/* store.h: CAS's persistent state in SQLite, every record sealed.
 *
 * One struct cas_store is one SQLite connection; it is used by one thread
 * at a time. Several connections of one process share a write lock (a
 * pthread mutex the caller owns) so that they queue in memory instead of
 * sleeping in SQLite's busy handler; the busy timeout still covers other
 * processes. The master key stays in the caller's secret memory and must
 * outlive the store.
 *
 * Sealing: AES-256-GCM under the master key with associated data that
 * names the table, the row's key columns and (for sessions) the hash
 * column, so a record copied to another row, or a hash edited beside it,
 * does not open (ARCA_ECRYPTO).
 *
 * Volumes keep the key and last tag of each data volume and the tokens
 * of attested instances (see below).
 *
 * Records returned to the caller are the caller's: free them with the
 * matching _free, which wipes what may be secret. */
#ifndef CAS_STORE_H
#define CAS_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/err.h"
#include "arca/policy.h"

#define CAS_MASTER_KEY_LEN 32
#define CAS_MAX_OWNERS 64
#define CAS_MAX_SECRETS 1024
/* Reserved secret name of the per-session CA; cannot clash with a policy
 * name because '#' is outside the name alphabet. */
#define CAS_CA_SECRET "#ca"

struct cas_store;

/* Master key file (software mode): 32 bytes, mode 0600, owned by us.
 * Created with fresh random bytes when absent; refused when group or
 * others have any access, when it is not a regular file, or when its size
 * is not exactly 32. *key is arca_secret_alloc memory the caller releases
 * with arca_secret_free(*key, CAS_MASTER_KEY_LEN). */
int cas_master_key_load(const char *path, uint8_t **key, int *created, struct arca_errbuf *e) ARCA_MUST_CHECK;

int cas_store_open(const char *path, const uint8_t key[CAS_MASTER_KEY_LEN], pthread_mutex_t *write_lock,
		   struct cas_store **out, struct arca_errbuf *e) ARCA_MUST_CHECK;
void cas_store_close(struct cas_store *s);

/* Transactions. A write transaction holds the shared write lock from begin
 * to commit/rollback; durable = 1 makes its commit reach the disk (session
 * changes), 0 leaves that to the next checkpoint (nonces). A read
 * transaction gives one consistent snapshot. */
int cas_store_begin_write(struct cas_store *s, int durable) ARCA_MUST_CHECK;
int cas_store_begin_read(struct cas_store *s) ARCA_MUST_CHECK;
int cas_store_commit(struct cas_store *s) ARCA_MUST_CHECK;
void cas_store_rollback(struct cas_store *s);

struct cas_session_rec {
	uint8_t hash[32];
	char (*owners)[ARCA_FPR_LEN];
	size_t nowners;
	struct arca_buf yaml; /* secret: may carry secret values given by an owner */
};
void cas_session_rec_init(struct cas_session_rec *r);
void cas_session_rec_free(struct cas_session_rec *r);
int cas_session_rec_add_owner(struct cas_session_rec *r, const char *fpr) ARCA_MUST_CHECK;
/* 1 when fpr is one of r's owners; compares every entry in constant time. */
int cas_session_rec_is_owner(const struct cas_session_rec *r, const char *fpr);

/* ARCA_ENOTFOUND when absent. */
int cas_store_session_get(struct cas_store *s, const char *name, struct cas_session_rec *out) ARCA_MUST_CHECK;
/* ARCA_EEXIST when a session of that name exists. */
int cas_store_session_insert(struct cas_store *s, const char *name, const struct cas_session_rec *r) ARCA_MUST_CHECK;
/* ARCA_ENOTFOUND when there is none to replace. */
int cas_store_session_replace(struct cas_store *s, const char *name, const struct cas_session_rec *r) ARCA_MUST_CHECK;
int cas_store_session_count(struct cas_store *s, long long *n) ARCA_MUST_CHECK;

struct cas_secret_rec {
	uint8_t kind;       /* enum arca_secret_kind, or 0 for the session CA */
	uint8_t params[32]; /* digest of what it was generated from */
	struct arca_buf value; /* secret */
};
void cas_secret_rec_init(struct cas_secret_rec *r);
void cas_secret_rec_free(struct cas_secret_rec *r);

int cas_store_secret_get(struct cas_store *s, const char *session, const char *name, struct cas_secret_rec *out) ARCA_MUST_CHECK;
int cas_store_secret_put(struct cas_store *s, const char *session, const char *name, const struct cas_secret_rec *r) ARCA_MUST_CHECK;
int cas_store_secret_delete(struct cas_store *s, const char *session, const char *name) ARCA_MUST_CHECK;

struct cas_names {
	char **v;
	size_t n;
};
int cas_store_secret_names(struct cas_store *s, const char *session, struct cas_names *out) ARCA_MUST_CHECK;
void cas_names_free(struct cas_names *n);

/* Nonces (unix milliseconds). take deletes the nonce whatever its state:
 * 0 when it existed and had not expired, ARCA_ETIMEOUT when it existed but
 * had expired (now >= expiry), ARCA_ENOTFOUND when unknown or used. Each
 * is its own short write transaction; do not call inside one. */
int cas_store_nonce_add(struct cas_store *s, const uint8_t nonce[32], int64_t expiry_ms) ARCA_MUST_CHECK;
int cas_store_nonce_take(struct cas_store *s, const uint8_t nonce[32], int64_t now_ms) ARCA_MUST_CHECK;
int cas_store_nonce_purge(struct cas_store *s, int64_t now_ms, long long *purged) ARCA_MUST_CHECK;

/* The audit log's head (seq and hash of its last record) as CAS last
 * recorded it, so that a log cut short or rewritten is refused at start
 * (events.c). get: ARCA_ENOTFOUND when none was ever recorded. put: inside
 * a write transaction; only moves forward, because the log's writers race
 * to record it and an older head would weaken the check, unless reset is
 * set (an operator accepted a log that does not reach the old head). */
int cas_store_audit_head_get(struct cas_store *s, uint64_t *seq, uint8_t hash[static 32]) ARCA_MUST_CHECK;
int cas_store_audit_head_put(struct cas_store *s, uint64_t seq, const uint8_t hash[static 32], int reset) ARCA_MUST_CHECK;

/* Volumes (docs/VOLUMES.md "Freshness"). A data volume's record holds the
 * key CAS generated for it and the tag of its last commit, per (session,
 * volume name), and outlives session updates. A code volume has no record:
 * its key and tag are in the policy. get: ARCA_ENOTFOUND when there is no
 * record. put and tag_swap need a write transaction. */
struct cas_volume_rec {
	uint8_t key[32];
	int has_tag;
	uint8_t tag[32];
};
void cas_volume_rec_wipe(struct cas_volume_rec *r);
int cas_store_volume_get(struct cas_store *s, const char *session, const char *volume,
			 struct cas_volume_rec *out) ARCA_MUST_CHECK;
int cas_store_volume_put(struct cas_store *s, const char *session, const char *volume,
			 const struct cas_volume_rec *r) ARCA_MUST_CHECK;
/* Compare and swap of the tag: stores tag when previous is what the record
 * holds (has_previous 0: it holds none). When the record already holds tag
 * (a repeat of a swap whose answer was lost), 0 without a change, whatever
 * previous says. ARCA_ESTALE when previous is not what it holds (held then
 * says what the record holds), ARCA_ENOTFOUND without a record. held is
 * filled in every case it could be read; wipe it (it has the key). */
int cas_store_volume_tag_swap(struct cas_store *s, const char *session, const char *volume, int has_previous,
			      const uint8_t previous[32], const uint8_t tag[32],
			      struct cas_volume_rec *held) ARCA_MUST_CHECK;

/* Tokens that let an attested instance record tags of one volume: id is
 * SHA-256 of the token (the token itself never reaches the store). add
 * (in a write transaction) keeps the newest keep ids of (session, volume)
 * and drops older ones; find compares id with every kept one in constant
 * time: 0 when kept, ARCA_ENOTFOUND when not. */
#define CAS_VOLUME_TOKENS_MAX 64
int cas_store_volume_token_add(struct cas_store *s, const char *session, const char *volume, const uint8_t id[32],
			       int64_t now_ms, unsigned keep) ARCA_MUST_CHECK;
int cas_store_volume_token_find(struct cas_store *s, const char *session, const char *volume,
				const uint8_t id[32]) ARCA_MUST_CHECK;

/* Unix time in milliseconds (wall clock: nonces may outlive a restart). */
int64_t cas_now_ms(void);

#endif
