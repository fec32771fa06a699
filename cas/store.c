/* store.c: CAS's SQLite store (see store.h for the contract).
 *
 * Layout of the sealed plaintexts (little endian):
 *   session: u8 version(1) || u16 nowners || nowners × (u8 len || fpr)
 *            || u32 yaml_len || yaml
 *   secret:  u8 version(1) || u8 kind || params(32) || u32 len || value
 *   meta "audit-head": u8 version(1) || u64 seq || hash(32)
 *   volume:  u8 version(1) || key(32) || u8 has_tag || tag(32)
 *   volume token: u8 version(1) || u64 created_ms; the row's id column is
 *            SHA-256 of the token and is part of the associated data
 * Associated data: "arca-cas/v1/<table>" NUL key NUL … so that no record
 * opens under another name, another session or another hash. */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arca/crypto.h"

enum {
	ST_SESS_GET,
	ST_SESS_INS,
	ST_SESS_UPD,
	ST_SESS_COUNT,
	ST_SEC_GET,
	ST_SEC_PUT,
	ST_SEC_DEL,
	ST_SEC_LIST,
	ST_NONCE_ADD,
	ST_NONCE_TAKE,
	ST_NONCE_PURGE,
	ST_META_GET,
	ST_META_PUT,
	ST_VOL_GET,
	ST_VOL_PUT,
	ST_TOK_ADD,
	ST_TOK_TRIM,
	ST_TOK_LIST,
	ST_COUNT
};

static const char *const sql_text[ST_COUNT] = {
	[ST_SESS_GET] = "SELECT hash, record FROM sessions WHERE name = ?1",
	[ST_SESS_INS] = "INSERT INTO sessions(name, hash, record) VALUES (?1, ?2, ?3)",
	[ST_SESS_UPD] = "UPDATE sessions SET hash = ?2, record = ?3 WHERE name = ?1",
	[ST_SESS_COUNT] = "SELECT count(*) FROM sessions",
	[ST_SEC_GET] = "SELECT record FROM secrets WHERE session = ?1 AND name = ?2",
	[ST_SEC_PUT] = "INSERT OR REPLACE INTO secrets(session, name, record) VALUES (?1, ?2, ?3)",
	[ST_SEC_DEL] = "DELETE FROM secrets WHERE session = ?1 AND name = ?2",
	[ST_SEC_LIST] = "SELECT name FROM secrets WHERE session = ?1 ORDER BY name",
	[ST_NONCE_ADD] = "INSERT INTO nonces(nonce, expiry) VALUES (?1, ?2)",
	[ST_NONCE_TAKE] = "DELETE FROM nonces WHERE nonce = ?1 RETURNING expiry",
	[ST_NONCE_PURGE] = "DELETE FROM nonces WHERE expiry <= ?1",
	[ST_META_GET] = "SELECT v FROM meta WHERE k = ?1",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta(k, v) VALUES (?1, ?2)",
	[ST_VOL_GET] = "SELECT record FROM volumes WHERE session = ?1 AND name = ?2",
	[ST_VOL_PUT] = "INSERT OR REPLACE INTO volumes(session, name, record) VALUES (?1, ?2, ?3)",
	[ST_TOK_ADD] = "INSERT INTO volume_tokens(session, volume, id, record) VALUES (?1, ?2, ?3, ?4)",
	[ST_TOK_TRIM] = "DELETE FROM volume_tokens WHERE session = ?1 AND volume = ?2 AND seq NOT IN"
			" (SELECT seq FROM volume_tokens WHERE session = ?1 AND volume = ?2 ORDER BY seq DESC LIMIT ?3)",
	[ST_TOK_LIST] = "SELECT id, record FROM volume_tokens WHERE session = ?1 AND volume = ?2 ORDER BY seq DESC"
			" LIMIT ?3",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sessions (name TEXT PRIMARY KEY, hash BLOB NOT NULL, record BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS secrets (session TEXT NOT NULL, name TEXT NOT NULL, record BLOB NOT NULL,"
	" PRIMARY KEY (session, name));"
	"CREATE TABLE IF NOT EXISTS nonces (nonce BLOB PRIMARY KEY, expiry INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces(expiry);"
	"CREATE TABLE IF NOT EXISTS volumes (session TEXT NOT NULL, name TEXT NOT NULL, record BLOB NOT NULL,"
	" PRIMARY KEY (session, name));"
	"CREATE TABLE IF NOT EXISTS volume_tokens (seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL,"
	" volume TEXT NOT NULL, id BLOB NOT NULL, record BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS volume_tokens_sv ON volume_tokens(session, volume, seq);";

/* A fixed plaintext sealed once per store: opening it at start tells a
 * wrong master key apart from a damaged record. */
static const char key_check_pt[] = "arca-cas master key check v1";

struct cas_store {
	sqlite3 *db;
	const uint8_t *key;
	pthread_mutex_t *wlock;
	int locked;
	int in_txn;
	int sync_full; /* current PRAGMA synchronous: 1 FULL, 0 NORMAL */
	sqlite3_stmt *st[ST_COUNT];
};

int64_t cas_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_fail(struct arca_errbuf *e, sqlite3 *db, const char *what)
{
	return arca_errf(e, ARCA_EIO, "store: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec(struct cas_store *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ARCA_EIO;
}

static sqlite3_stmt *stmt(struct cas_store *s, int i)
{
	sqlite3_stmt *st = s->st[i];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Builds "arca-cas/v1/<table>" NUL a NUL b NUL [hash]: the NULs keep
 * ("ab","c") apart from ("a","bc"); names never contain NUL. */
static int make_aad(struct arca_buf *aad, const char *table, const char *a, const char *b, const uint8_t *hash)
{
	arca_buf_init(aad, 4096, 0);
	GUARD(arca_buf_appends(aad, "arca-cas/v1/"));
	GUARD(arca_buf_append(aad, table, strlen(table) + 1));
	GUARD(arca_buf_append(aad, a, strlen(a) + 1));
	if (b)
		GUARD(arca_buf_append(aad, b, strlen(b) + 1));
	if (hash)
		GUARD(arca_buf_append(aad, hash, 32));
	return 0;
}

static int seal(struct cas_store *s, const struct arca_buf *aad, const struct arca_buf *pt, struct arca_buf *out)
{
	int rc;

	arca_buf_init(out, pt->len + ARCA_AEAD_OVERHEAD + 16, 0);
	rc = arca_aead_seal(s->key, aad->p, aad->len, pt->p, pt->len, out);
	if (rc < 0)
		arca_buf_free(out);
	return rc;
}

static int unseal(struct cas_store *s, const struct arca_buf *aad, const void *ct, size_t n, struct arca_buf *pt)
{
	int rc;

	ENSURE(ct && n >= ARCA_AEAD_OVERHEAD, ARCA_ECRYPTO);
	arca_buf_init(pt, n, 1);
	rc = arca_aead_open(s->key, aad->p, aad->len, ct, n, pt);
	if (rc < 0)
		arca_buf_free(pt);
	return rc;
}

/* Seals pt under AAD (table, k1[, k2]) and writes it with statement
 * `which`, whose parameters are k1, [k2,] then the sealed blob. */
static int seal_put(struct cas_store *s, int which, const char *table, const char *k1, const char *k2,
		    const struct arca_buf *pt)
{
	struct arca_buf aad, ct;
	int rc = make_aad(&aad, table, k1, k2, NULL);
	if (rc == 0)
		rc = seal(s, &aad, pt, &ct);
	arca_buf_free(&aad);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = stmt(s, which);
	int i = 1;
	sqlite3_bind_text(st, i++, k1, -1, SQLITE_STATIC);
	if (k2 != NULL)
		sqlite3_bind_text(st, i++, k2, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, i, ct.p, (int)ct.len, SQLITE_STATIC);
	int step = sqlite3_step(st);
	sqlite3_reset(st);
	arca_buf_free(&ct);
	return step == SQLITE_DONE ? 0 : ARCA_EIO;
}


/* ---- transactions ---- */

static void unlock(struct cas_store *s)
{
	if (s->locked) {
		s->locked = 0;
		pthread_mutex_unlock(s->wlock);
	}
}

int cas_store_begin_write(struct cas_store *s, int durable)
{
	ENSURE(!s->in_txn, ARCA_EINVAL);
	if (s->wlock) {
		pthread_mutex_lock(s->wlock);
		s->locked = 1;
	}
	/* synchronous cannot change inside a transaction, so set it first. */
	if (durable != s->sync_full) {
		if (exec(s, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") < 0) {
			unlock(s);
			return ARCA_EIO;
		}
		s->sync_full = durable;
	}
	if (exec(s, "BEGIN IMMEDIATE") < 0) {
		unlock(s);
		return ARCA_EIO;
	}
	s->in_txn = 1;
	return 0;
}

int cas_store_begin_read(struct cas_store *s)
{
	ENSURE(!s->in_txn, ARCA_EINVAL);
	GUARD(exec(s, "BEGIN DEFERRED"));
	s->in_txn = 1;
	return 0;
}

int cas_store_commit(struct cas_store *s)
{
	int rc;

	ENSURE(s->in_txn, ARCA_EINVAL);
	rc = exec(s, "COMMIT");
	if (rc < 0)
		(void)exec(s, "ROLLBACK");
	s->in_txn = 0;
	unlock(s);
	return rc;
}

void cas_store_rollback(struct cas_store *s)
{
	if (s->in_txn) {
		(void)exec(s, "ROLLBACK");
		s->in_txn = 0;
	}
	unlock(s);
}

/* ---- open / close ---- */

static int key_check(struct cas_store *s, struct arca_errbuf *e)
{
	struct arca_buf aad, ct, pt;
	sqlite3_stmt *st;
	int rc, step;

	GUARD(make_aad(&aad, "meta", "key-check", NULL, NULL));
	GUARD_GOTO(cas_store_begin_write(s, 1), out_aad);
	st = stmt(s, ST_META_GET);
	sqlite3_bind_text(st, 1, "key-check", -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		rc = unseal(s, &aad, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &pt);
		sqlite3_reset(st);
		if (rc == 0 && (pt.len != sizeof key_check_pt - 1 || memcmp(pt.p, key_check_pt, pt.len) != 0))
			rc = ARCA_ECRYPTO;
		arca_buf_free(&pt);
		cas_store_rollback(s);
		if (rc < 0)
			rc = arca_errf(e, ARCA_ECRYPTO,
				       "store: the master key does not open this store (wrong --key-file?)");
		goto out_aad;
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		cas_store_rollback(s);
		rc = db_fail(e, s->db, "reading the key check");
		goto out_aad;
	}
	/* A new store, or one written before the check existed: refuse the
	 * latter, since we cannot tell whether the key is right. */
	st = stmt(s, ST_SESS_COUNT);
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != 0) {
		sqlite3_reset(st);
		cas_store_rollback(s);
		rc = arca_errf(e, ARCA_ECRYPTO, "store: sessions present but no key check record; store damaged");
		goto out_aad;
	}
	sqlite3_reset(st);
	arca_buf_init(&pt, sizeof key_check_pt, 0);
	GUARD_GOTO(arca_buf_append(&pt, key_check_pt, sizeof key_check_pt - 1), out_pt);
	GUARD_GOTO(seal(s, &aad, &pt, &ct), out_pt);
	st = stmt(s, ST_META_PUT);
	sqlite3_bind_text(st, 1, "key-check", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, ct.p, (int)ct.len, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	arca_buf_free(&ct);
	if (step != SQLITE_DONE) {
		rc = db_fail(e, s->db, "writing the key check");
		cas_store_rollback(s);
		goto out_pt;
	}
	rc = cas_store_commit(s);
	if (rc < 0)
		rc = db_fail(e, s->db, "commit");
out_pt:
	arca_buf_free(&pt);
	if (rc < 0 && s->in_txn)
		cas_store_rollback(s);
out_aad:
	arca_buf_free(&aad);
	return rc;
}

int cas_store_open(const char *path, const uint8_t key[CAS_MASTER_KEY_LEN], pthread_mutex_t *write_lock,
		   struct cas_store **out, struct arca_errbuf *e)
{
	struct cas_store *s;
	int rc = 0;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return arca_errf(e, ARCA_ENOMEM, "store: out of memory");
	s->key = key;
	s->wlock = write_lock;
	s->sync_full = -1;
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			    NULL) != SQLITE_OK) {
		rc = db_fail(e, s->db, path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* Deleted pages are zeroed so sealed records of old versions do not
	 * linger in free pages (they are ciphertext, but rollback material). */
	if (exec(s, "PRAGMA journal_mode=WAL") < 0 || exec(s, "PRAGMA secure_delete=ON") < 0 ||
	    exec(s, "PRAGMA trusted_schema=OFF") < 0) {
		rc = db_fail(e, s->db, "pragmas");
		goto fail;
	}
	if (s->wlock)
		pthread_mutex_lock(s->wlock);
	rc = exec(s, schema);
	if (s->wlock)
		pthread_mutex_unlock(s->wlock);
	if (rc < 0) {
		rc = db_fail(e, s->db, "schema");
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
		    SQLITE_OK) {
			rc = db_fail(e, s->db, "prepare");
			goto fail;
		}
	}
	rc = key_check(s, e);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	cas_store_close(s);
	return rc;
}

void cas_store_close(struct cas_store *s)
{
	if (!s)
		return;
	cas_store_rollback(s);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

/* ---- sessions ---- */

void cas_session_rec_init(struct cas_session_rec *r)
{
	memset(r, 0, sizeof *r);
	arca_buf_init(&r->yaml, ARCA_POLICY_MAX_BYTES, 1);
}

void cas_session_rec_free(struct cas_session_rec *r)
{
	free(r->owners);
	r->owners = NULL;
	r->nowners = 0;
	arca_buf_free(&r->yaml);
}

int cas_session_rec_add_owner(struct cas_session_rec *r, const char *fpr)
{
	char (*n)[ARCA_FPR_LEN];

	ENSURE(arca_fpr_valid(fpr), ARCA_EINVAL);
	ENSURE(r->nowners < CAS_MAX_OWNERS, ARCA_ETOOBIG);
	for (size_t i = 0; i < r->nowners; i++)
		if (strcmp(r->owners[i], fpr) == 0)
			return 0; /* listed twice: one owner */
	n = realloc(r->owners, (r->nowners + 1) * sizeof *n);
	ENSURE(n, ARCA_ENOMEM);
	r->owners = n;
	memset(n[r->nowners], 0, ARCA_FPR_LEN);
	memcpy(n[r->nowners], fpr, strlen(fpr));
	r->nowners++;
	return 0;
}

int cas_session_rec_is_owner(const struct cas_session_rec *r, const char *fpr)
{
	char want[ARCA_FPR_LEN] = {0};
	size_t n = strlen(fpr);
	int found = 0;

	if (n >= ARCA_FPR_LEN)
		return 0;
	memcpy(want, fpr, n);
	for (size_t i = 0; i < r->nowners; i++)
		found |= arca_ct_eq(r->owners[i], want, ARCA_FPR_LEN);
	return found;
}

static int session_encode(const struct cas_session_rec *r, struct arca_buf *pt)
{
	uint8_t v = 1;

	arca_buf_init(pt, ARCA_POLICY_MAX_BYTES + CAS_MAX_OWNERS * ARCA_FPR_LEN + 64, 1);
	ENSURE(r->nowners <= CAS_MAX_OWNERS, ARCA_ETOOBIG);
	GUARD(arca_buf_append(pt, &v, 1));
	GUARD(arca_buf_u16le(pt, (uint16_t)r->nowners));
	for (size_t i = 0; i < r->nowners; i++) {
		uint8_t l = (uint8_t)strlen(r->owners[i]);
		GUARD(arca_buf_append(pt, &l, 1));
		GUARD(arca_buf_append(pt, r->owners[i], l));
	}
	GUARD(arca_buf_u32le(pt, (uint32_t)r->yaml.len));
	GUARD(arca_buf_append(pt, r->yaml.p, r->yaml.len));
	return 0;
}

static int session_decode(const struct arca_buf *pt, struct cas_session_rec *r)
{
	struct arca_cur c;
	uint8_t v, l;
	uint16_t n;
	uint32_t ylen;
	const uint8_t *p;
	char fpr[ARCA_FPR_LEN];

	arca_cur_init(&c, pt->p, pt->len);
	GUARD(arca_cur_u8(&c, &v));
	ENSURE(v == 1, ARCA_EPARSE);
	GUARD(arca_cur_u16le(&c, &n));
	ENSURE(n <= CAS_MAX_OWNERS, ARCA_EPARSE);
	for (uint16_t i = 0; i < n; i++) {
		GUARD(arca_cur_u8(&c, &l));
		ENSURE(l < ARCA_FPR_LEN, ARCA_EPARSE);
		GUARD(arca_cur_take(&c, l, &p));
		memcpy(fpr, p, l);
		fpr[l] = 0;
		GUARD(cas_session_rec_add_owner(r, fpr));
	}
	GUARD(arca_cur_u32le(&c, &ylen));
	GUARD(arca_cur_take(&c, ylen, &p));
	ENSURE(arca_cur_left(&c) == 0, ARCA_EPARSE);
	arca_buf_reset(&r->yaml);
	return arca_buf_append(&r->yaml, p, ylen);
}

int cas_store_session_get(struct cas_store *s, const char *name, struct cas_session_rec *out)
{
	struct arca_buf aad, pt;
	sqlite3_stmt *st = stmt(s, ST_SESS_GET);
	int rc, step;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		sqlite3_reset(st);
		return ARCA_ENOTFOUND;
	}
	if (step != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32) {
		sqlite3_reset(st);
		return ARCA_EIO;
	}
	memcpy(out->hash, sqlite3_column_blob(st, 0), 32);
	rc = make_aad(&aad, "sessions", name, NULL, out->hash);
	if (rc == 0)
		rc = unseal(s, &aad, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &pt);
	sqlite3_reset(st);
	arca_buf_free(&aad);
	if (rc < 0)
		return rc;
	rc = session_decode(&pt, out);
	arca_buf_free(&pt);
	return rc;
}

static int session_write(struct cas_store *s, int which, const char *name, const struct cas_session_rec *r)
{
	struct arca_buf aad, pt, ct;
	sqlite3_stmt *st;
	int rc, step;

	ENSURE(s->in_txn, ARCA_EINVAL);
	GUARD(session_encode(r, &pt));
	rc = make_aad(&aad, "sessions", name, NULL, r->hash);
	if (rc == 0)
		rc = seal(s, &aad, &pt, &ct);
	arca_buf_free(&pt);
	arca_buf_free(&aad);
	if (rc < 0)
		return rc;
	st = stmt(s, which);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, r->hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, ct.p, (int)ct.len, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	arca_buf_free(&ct);
	if (step == SQLITE_CONSTRAINT_PRIMARYKEY)
		return ARCA_EEXIST;
	if (step != SQLITE_DONE)
		return ARCA_EIO;
	if (which == ST_SESS_UPD && sqlite3_changes(s->db) != 1)
		return ARCA_ENOTFOUND;
	return 0;
}

int cas_store_session_insert(struct cas_store *s, const char *name, const struct cas_session_rec *r)
{
	return session_write(s, ST_SESS_INS, name, r);
}

int cas_store_session_replace(struct cas_store *s, const char *name, const struct cas_session_rec *r)
{
	return session_write(s, ST_SESS_UPD, name, r);
}

int cas_store_session_count(struct cas_store *s, long long *n)
{
	sqlite3_stmt *st = stmt(s, ST_SESS_COUNT);
	int step = sqlite3_step(st);

	if (step == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return step == SQLITE_ROW ? 0 : ARCA_EIO;
}

/* ---- secrets ---- */

void cas_secret_rec_init(struct cas_secret_rec *r)
{
	memset(r, 0, sizeof *r);
	arca_buf_init(&r->value, (size_t)1 << 20, 1);
}

void cas_secret_rec_free(struct cas_secret_rec *r)
{
	arca_buf_free(&r->value);
	arca_wipe(r->params, sizeof r->params);
	r->kind = 0;
}

int cas_store_secret_get(struct cas_store *s, const char *session, const char *name, struct cas_secret_rec *out)
{
	struct arca_buf aad, pt;
	struct arca_cur c;
	sqlite3_stmt *st = stmt(s, ST_SEC_GET);
	const uint8_t *p;
	uint8_t v;
	uint32_t len;
	int rc, step;

	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		sqlite3_reset(st);
		return ARCA_ENOTFOUND;
	}
	if (step != SQLITE_ROW) {
		sqlite3_reset(st);
		return ARCA_EIO;
	}
	rc = make_aad(&aad, "secrets", session, name, NULL);
	if (rc == 0)
		rc = unseal(s, &aad, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &pt);
	sqlite3_reset(st);
	arca_buf_free(&aad);
	if (rc < 0)
		return rc;
	arca_cur_init(&c, pt.p, pt.len);
	GUARD_GOTO(arca_cur_u8(&c, &v), out);
	ENSURE_GOTO(v == 1, ARCA_EPARSE, out);
	GUARD_GOTO(arca_cur_u8(&c, &out->kind), out);
	GUARD_GOTO(arca_cur_copy(&c, out->params, 32), out);
	GUARD_GOTO(arca_cur_u32le(&c, &len), out);
	GUARD_GOTO(arca_cur_take(&c, len, &p), out);
	ENSURE_GOTO(arca_cur_left(&c) == 0, ARCA_EPARSE, out);
	arca_buf_reset(&out->value);
	rc = arca_buf_append(&out->value, p, len);
out:
	arca_buf_free(&pt);
	return rc;
}

int cas_store_secret_put(struct cas_store *s, const char *session, const char *name, const struct cas_secret_rec *r)
{
	struct arca_buf pt;
	uint8_t v = 1;
	int rc;

	ENSURE(s->in_txn, ARCA_EINVAL);
	arca_buf_init(&pt, r->value.len + 64, 1);
	GUARD_GOTO(arca_buf_append(&pt, &v, 1), out_pt);
	GUARD_GOTO(arca_buf_append(&pt, &r->kind, 1), out_pt);
	GUARD_GOTO(arca_buf_append(&pt, r->params, 32), out_pt);
	GUARD_GOTO(arca_buf_u32le(&pt, (uint32_t)r->value.len), out_pt);
	GUARD_GOTO(arca_buf_append(&pt, r->value.p, r->value.len), out_pt);
	rc = seal_put(s, ST_SEC_PUT, "secrets", session, name, &pt);
out_pt:
	arca_buf_free(&pt);
	return rc;
}

int cas_store_secret_delete(struct cas_store *s, const char *session, const char *name)
{
	sqlite3_stmt *st;
	int step;

	ENSURE(s->in_txn, ARCA_EINVAL);
	st = stmt(s, ST_SEC_DEL);
	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	return step == SQLITE_DONE ? 0 : ARCA_EIO;
}

void cas_names_free(struct cas_names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
	n->v = NULL;
	n->n = 0;
}

int cas_store_secret_names(struct cas_store *s, const char *session, struct cas_names *out)
{
	sqlite3_stmt *st = stmt(s, ST_SEC_LIST);
	int step, rc = 0;

	out->v = NULL;
	out->n = 0;
	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		char **nv;
		ENSURE_GOTO(name && out->n < CAS_MAX_SECRETS + 1, ARCA_ETOOBIG, fail);
		nv = realloc(out->v, (out->n + 1) * sizeof *nv);
		ENSURE_GOTO(nv, ARCA_ENOMEM, fail);
		out->v = nv;
		out->v[out->n] = strdup(name);
		ENSURE_GOTO(out->v[out->n], ARCA_ENOMEM, fail);
		out->n++;
	}
	ENSURE_GOTO(step == SQLITE_DONE, ARCA_EIO, fail);
	sqlite3_reset(st);
	return 0;
fail:
	sqlite3_reset(st);
	cas_names_free(out);
	return rc;
}

/* ---- nonces ---- */

/* Nonces are not made durable at commit (see cas_store_begin_write): a
 * nonce lost in a power failure is only unknown afterwards, and a consumed
 * one brought back can only yield a configuration sealed to the key its
 * evidence binds, which the replayer does not hold. */
static int nonce_exec(struct cas_store *s, int which, const uint8_t *nonce, int64_t t, int64_t *ret, long long *changes)
{
	sqlite3_stmt *st;
	int rc = 0, step, row = 0;

	GUARD(cas_store_begin_write(s, 0));
	st = stmt(s, which);
	if (nonce) {
		sqlite3_bind_blob(st, 1, nonce, 32, SQLITE_STATIC);
		if (which == ST_NONCE_ADD)
			sqlite3_bind_int64(st, 2, t);
	} else {
		sqlite3_bind_int64(st, 1, t);
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (ret)
			*ret = sqlite3_column_int64(st, 0);
		row = 1;
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		cas_store_rollback(s);
		return step == SQLITE_CONSTRAINT_PRIMARYKEY ? ARCA_EEXIST : ARCA_EIO;
	}
	if (changes)
		*changes = sqlite3_changes(s->db);
	GUARD(cas_store_commit(s));
	if (which == ST_NONCE_TAKE && !row)
		rc = ARCA_ENOTFOUND;
	return rc;
}

int cas_store_nonce_add(struct cas_store *s, const uint8_t nonce[32], int64_t expiry_ms)
{
	return nonce_exec(s, ST_NONCE_ADD, nonce, expiry_ms, NULL, NULL);
}

int cas_store_nonce_take(struct cas_store *s, const uint8_t nonce[32], int64_t now_ms)
{
	int64_t expiry = 0;

	GUARD(nonce_exec(s, ST_NONCE_TAKE, nonce, 0, &expiry, NULL));
	return now_ms >= expiry ? ARCA_ETIMEOUT : 0;
}

int cas_store_nonce_purge(struct cas_store *s, int64_t now_ms, long long *purged)
{
	long long n = 0;

	GUARD(nonce_exec(s, ST_NONCE_PURGE, NULL, now_ms, NULL, &n));
	if (purged)
		*purged = n;
	return 0;
}

/* ---- the audit log's head ---- */

#define AUDIT_HEAD_KEY "audit-head"

int cas_store_audit_head_get(struct cas_store *s, uint64_t *seq, uint8_t hash[static 32])
{
	struct arca_buf aad, pt;
	struct arca_cur c;
	sqlite3_stmt *st;
	uint8_t v;
	int rc, step;

	GUARD(make_aad(&aad, "meta", AUDIT_HEAD_KEY, NULL, NULL));
	st = stmt(s, ST_META_GET);
	sqlite3_bind_text(st, 1, AUDIT_HEAD_KEY, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		sqlite3_reset(st);
		arca_buf_free(&aad);
		return step == SQLITE_DONE ? ARCA_ENOTFOUND : ARCA_EIO;
	}
	rc = unseal(s, &aad, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &pt);
	sqlite3_reset(st);
	arca_buf_free(&aad);
	if (rc < 0)
		return rc;
	arca_cur_init(&c, pt.p, pt.len);
	GUARD_GOTO(arca_cur_u8(&c, &v), out);
	ENSURE_GOTO(v == 1, ARCA_EPARSE, out);
	GUARD_GOTO(arca_cur_u64le(&c, seq), out);
	GUARD_GOTO(arca_cur_copy(&c, hash, 32), out);
	ENSURE_GOTO(arca_cur_left(&c) == 0, ARCA_EPARSE, out);
out:
	arca_buf_free(&pt);
	return rc;
}

int cas_store_audit_head_put(struct cas_store *s, uint64_t seq, const uint8_t hash[static 32], int reset)
{
	struct arca_buf pt;
	uint8_t old_hash[32], v = 1;
	uint64_t old_seq = 0;
	int rc;

	ENSURE(s->in_txn, ARCA_EINVAL);
	if (!reset) {
		rc = cas_store_audit_head_get(s, &old_seq, old_hash);
		if (rc == 0 && old_seq >= seq)
			return 0;
		if (rc < 0 && rc != ARCA_ENOTFOUND)
			return rc;
	}
	arca_buf_init(&pt, 64, 0);
	GUARD_GOTO(arca_buf_append(&pt, &v, 1), out_pt);
	GUARD_GOTO(arca_buf_u64le(&pt, seq), out_pt);
	GUARD_GOTO(arca_buf_append(&pt, hash, 32), out_pt);
	rc = seal_put(s, ST_META_PUT, "meta", AUDIT_HEAD_KEY, NULL, &pt);
out_pt:
	arca_buf_free(&pt);
	return rc;
}

/* ---- volumes ---- */

void cas_volume_rec_wipe(struct cas_volume_rec *r)
{
	arca_wipe(r, sizeof *r);
}

int cas_store_volume_get(struct cas_store *s, const char *session, const char *volume, struct cas_volume_rec *out)
{
	struct arca_buf aad, pt;
	struct arca_cur c;
	sqlite3_stmt *st = stmt(s, ST_VOL_GET);
	uint8_t v, has;
	int rc, step;

	memset(out, 0, sizeof *out);
	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, volume, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		sqlite3_reset(st);
		return step == SQLITE_DONE ? ARCA_ENOTFOUND : ARCA_EIO;
	}
	rc = make_aad(&aad, "volumes", session, volume, NULL);
	if (rc == 0)
		rc = unseal(s, &aad, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &pt);
	sqlite3_reset(st);
	arca_buf_free(&aad);
	if (rc < 0)
		return rc;
	arca_cur_init(&c, pt.p, pt.len);
	GUARD_GOTO(arca_cur_u8(&c, &v), out);
	ENSURE_GOTO(v == 1, ARCA_EPARSE, out);
	GUARD_GOTO(arca_cur_copy(&c, out->key, sizeof out->key), out);
	GUARD_GOTO(arca_cur_u8(&c, &has), out);
	ENSURE_GOTO(has <= 1, ARCA_EPARSE, out);
	out->has_tag = has;
	GUARD_GOTO(arca_cur_copy(&c, out->tag, sizeof out->tag), out);
	ENSURE_GOTO(arca_cur_left(&c) == 0, ARCA_EPARSE, out);
out:
	if (rc < 0)
		cas_volume_rec_wipe(out);
	arca_buf_free(&pt);
	return rc;
}

int cas_store_volume_put(struct cas_store *s, const char *session, const char *volume, const struct cas_volume_rec *r)
{
	struct arca_buf pt;
	uint8_t v = 1, has = r->has_tag ? 1 : 0;
	int rc;

	ENSURE(s->in_txn, ARCA_EINVAL);
	arca_buf_init(&pt, 128, 1);
	GUARD_GOTO(arca_buf_append(&pt, &v, 1), out);
	GUARD_GOTO(arca_buf_append(&pt, r->key, sizeof r->key), out);
	GUARD_GOTO(arca_buf_append(&pt, &has, 1), out);
	GUARD_GOTO(arca_buf_append(&pt, r->tag, sizeof r->tag), out);
	rc = seal_put(s, ST_VOL_PUT, "volumes", session, volume, &pt);
out:
	arca_buf_free(&pt);
	return rc;
}

int cas_store_volume_tag_swap(struct cas_store *s, const char *session, const char *volume, int has_previous,
			      const uint8_t previous[32], const uint8_t tag[32], struct cas_volume_rec *held)
{
	int same;

	ENSURE(s->in_txn, ARCA_EINVAL);
	GUARD(cas_store_volume_get(s, session, volume, held));
	/* A repeat of a swap that happened (its answer was lost): nothing
	 * changes and the client learns that its tag is held. */
	if (held->has_tag && arca_ct_eq(held->tag, tag, 32))
		return 0;
	/* Absent on both sides, or present on both and equal. */
	same = (held->has_tag == 0 && !has_previous) ||
	       (held->has_tag && has_previous && arca_ct_eq(held->tag, previous, 32));
	if (!same)
		return ARCA_ESTALE;
	held->has_tag = 1;
	memcpy(held->tag, tag, 32);
	return cas_store_volume_put(s, session, volume, held);
}

int cas_store_volume_token_add(struct cas_store *s, const char *session, const char *volume, const uint8_t id[32],
			       int64_t now_ms, unsigned keep)
{
	struct arca_buf aad, pt, ct;
	sqlite3_stmt *st;
	uint8_t v = 1;
	int rc, step;

	ENSURE(s->in_txn && keep > 0 && keep <= CAS_VOLUME_TOKENS_MAX, ARCA_EINVAL);
	arca_buf_init(&pt, 32, 0);
	GUARD_GOTO(arca_buf_append(&pt, &v, 1), out_pt);
	GUARD_GOTO(arca_buf_u64le(&pt, (uint64_t)now_ms), out_pt);
	GUARD_GOTO(make_aad(&aad, "volume_tokens", session, volume, id), out_aad);
	GUARD_GOTO(seal(s, &aad, &pt, &ct), out_aad);
	st = stmt(s, ST_TOK_ADD);
	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, volume, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, id, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, ct.p, (int)ct.len, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	arca_buf_free(&ct);
	ENSURE_GOTO(step == SQLITE_DONE, ARCA_EIO, out_aad);
	/* The oldest beyond keep go: instances attested long ago and replaced
	 * since lose their right to record tags, the newest keep theirs. */
	st = stmt(s, ST_TOK_TRIM);
	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, volume, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)keep);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	rc = step == SQLITE_DONE ? 0 : ARCA_EIO;
out_aad:
	arca_buf_free(&aad);
out_pt:
	arca_buf_free(&pt);
	return rc;
}

int cas_store_volume_token_find(struct cas_store *s, const char *session, const char *volume, const uint8_t id[32])
{
	struct arca_buf aad, pt, match;
	sqlite3_stmt *st = stmt(s, ST_TOK_LIST);
	int found = 0, rc, step;

	arca_buf_init(&match, 4096, 0);
	sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, volume, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, CAS_VOLUME_TOKENS_MAX);
	/* Every row is compared, in constant time, whether or not one matched
	 * already: how long this takes says nothing about which id is kept. */
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const void *rid = sqlite3_column_blob(st, 0);
		int eq;
		if (sqlite3_column_bytes(st, 0) != 32 || rid == NULL)
			continue;
		eq = arca_ct_eq(rid, id, 32);
		if (eq && !found) {
			found = 1;
			if (arca_buf_append(&match, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)) < 0)
				found = -1;
		}
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE || found < 0) {
		arca_buf_free(&match);
		return ARCA_EIO;
	}
	if (!found) {
		arca_buf_free(&match);
		return ARCA_ENOTFOUND;
	}
	/* The id is only an index; the sealed record proves that CAS itself
	 * stored this id for this session and volume. */
	rc = make_aad(&aad, "volume_tokens", session, volume, id);
	if (rc == 0)
		rc = unseal(s, &aad, match.p, match.len, &pt);
	arca_buf_free(&aad);
	arca_buf_free(&match);
	if (rc < 0)
		return rc;
	rc = pt.len == 9 && pt.p[0] == 1 ? 0 : ARCA_EPARSE;
	arca_buf_free(&pt);
	return rc;
}
