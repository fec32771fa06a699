/* test_cas_store.c: CAS's sealed SQLite store (cas/store.c) and master key
 * file (cas/masterkey.c): records round trip, a record moved to another
 * row or with its hash edited does not open, a wrong key is refused at
 * open, transactions roll back, nonces are used once and expired ones are
 * told apart from unknown ones; volume records keep key and tag across a
 * reopen, the tag changes only by compare and swap, and tokens are found
 * only for their own volume and only the newest are kept. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include "arca/crypto.h"
#include "store.h"

struct fx {
	char dir[64];
	char db[128];
	uint8_t key[32];
	struct cas_store *s;
};

static const char *const OWNER_A = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
static const char *const OWNER_B = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct arca_errbuf e;

	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_cas_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
	assert_int_equal(arca_random(f->key, sizeof f->key), 0);
	assert_int_equal(cas_store_open(f->db, f->key, NULL, &f->s, &e), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	cas_store_close(f->s);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void make_session(struct cas_session_rec *r, const char *yaml, uint8_t fill)
{
	cas_session_rec_init(r);
	memset(r->hash, fill, sizeof r->hash);
	assert_int_equal(cas_session_rec_add_owner(r, OWNER_A), 0);
	assert_int_equal(arca_buf_appends(&r->yaml, yaml), 0);
}

static void put_session(struct cas_store *s, const char *name, const char *yaml, uint8_t fill)
{
	struct cas_session_rec r;

	make_session(&r, yaml, fill);
	assert_int_equal(cas_store_begin_write(s, 1), 0);
	assert_int_equal(cas_store_session_insert(s, name, &r), 0);
	assert_int_equal(cas_store_commit(s), 0);
	cas_session_rec_free(&r);
}

static void raw_sql(const char *db, const char *sql)
{
	sqlite3 *h;
	char *err = NULL;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 2000);
	if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
	sqlite3_close(h);
}

static void test_session_round_trip(void **state)
{
	struct fx *f = *state;
	struct cas_session_rec r;

	put_session(f->s, "payroll", "name: payroll\n", 0x5a);
	cas_session_rec_init(&r);
	assert_int_equal(cas_store_session_get(f->s, "payroll", &r), 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(r.hash[i], 0x5a);
	assert_int_equal(r.nowners, 1);
	assert_string_equal(r.owners[0], OWNER_A);
	assert_true(cas_session_rec_is_owner(&r, OWNER_A));
	assert_false(cas_session_rec_is_owner(&r, OWNER_B));
	assert_int_equal(r.yaml.len, strlen("name: payroll\n"));
	assert_memory_equal(r.yaml.p, "name: payroll\n", r.yaml.len);
	cas_session_rec_free(&r);

	cas_session_rec_init(&r);
	assert_int_equal(cas_store_session_get(f->s, "nosuch", &r), ARCA_ENOTFOUND);
	cas_session_rec_free(&r);
}

static void test_session_insert_replace_rules(void **state)
{
	struct fx *f = *state;
	struct cas_session_rec r, got;
	long long n = -1;

	put_session(f->s, "a", "one", 1);
	make_session(&r, "two", 2);
	assert_int_equal(cas_store_begin_write(f->s, 1), 0);
	assert_int_equal(cas_store_session_insert(f->s, "a", &r), ARCA_EEXIST);
	assert_int_equal(cas_store_session_replace(f->s, "b", &r), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_session_replace(f->s, "a", &r), 0);
	assert_int_equal(cas_store_commit(f->s), 0);
	cas_session_rec_init(&got);
	assert_int_equal(cas_store_session_get(f->s, "a", &got), 0);
	assert_memory_equal(got.yaml.p, "two", 3);
	assert_int_equal(got.hash[0], 2);
	cas_session_rec_free(&got);
	cas_session_rec_free(&r);
	assert_int_equal(cas_store_session_count(f->s, &n), 0);
	assert_int_equal(n, 1);
}

static void test_rollback_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct cas_session_rec r;
	struct cas_secret_rec sr;

	make_session(&r, "x", 7);
	cas_secret_rec_init(&sr);
	sr.kind = 1;
	assert_int_equal(arca_buf_appends(&sr.value, "topsecret"), 0);
	assert_int_equal(cas_store_begin_write(f->s, 1), 0);
	assert_int_equal(cas_store_session_insert(f->s, "gone", &r), 0);
	assert_int_equal(cas_store_secret_put(f->s, "gone", "pw", &sr), 0);
	cas_store_rollback(f->s);
	cas_session_rec_free(&r);
	cas_secret_rec_free(&sr);

	cas_session_rec_init(&r);
	assert_int_equal(cas_store_session_get(f->s, "gone", &r), ARCA_ENOTFOUND);
	cas_session_rec_free(&r);
	cas_secret_rec_init(&sr);
	assert_int_equal(cas_store_secret_get(f->s, "gone", "pw", &sr), ARCA_ENOTFOUND);
	cas_secret_rec_free(&sr);
	/* Writes outside a transaction are refused, not auto-committed. */
	cas_secret_rec_init(&sr);
	assert_int_equal(cas_store_secret_put(f->s, "gone", "pw", &sr), ARCA_EINVAL);
	cas_secret_rec_free(&sr);
}

static void test_session_copied_to_other_name_does_not_open(void **state)
{
	struct fx *f = *state;
	struct cas_session_rec r;

	put_session(f->s, "alice", "name: alice\n", 3);
	raw_sql(f->db, "INSERT INTO sessions(name, hash, record) SELECT 'mallory', hash, record FROM sessions "
		       "WHERE name = 'alice'");
	cas_session_rec_init(&r);
	assert_int_equal(cas_store_session_get(f->s, "mallory", &r), ARCA_ECRYPTO);
	cas_session_rec_free(&r);
	/* The original still opens. */
	cas_session_rec_init(&r);
	assert_int_equal(cas_store_session_get(f->s, "alice", &r), 0);
	cas_session_rec_free(&r);
}

static void test_session_hash_edited_does_not_open(void **state)
{
	struct fx *f = *state;
	struct cas_session_rec r;

	put_session(f->s, "alice", "name: alice\n", 3);
	raw_sql(f->db, "UPDATE sessions SET hash = zeroblob(32) WHERE name = 'alice'");
	cas_session_rec_init(&r);
	assert_int_equal(cas_store_session_get(f->s, "alice", &r), ARCA_ECRYPTO);
	cas_session_rec_free(&r);
}

static void test_secret_round_trip_and_swap(void **state)
{
	struct fx *f = *state;
	struct cas_secret_rec sr, got;
	struct cas_names names;

	cas_secret_rec_init(&sr);
	sr.kind = 2;
	memset(sr.params, 0x11, sizeof sr.params);
	assert_int_equal(arca_buf_append(&sr.value, "\x00\x01\x02\xff", 4), 0);
	assert_int_equal(cas_store_begin_write(f->s, 1), 0);
	assert_int_equal(cas_store_secret_put(f->s, "s1", "key", &sr), 0);
	assert_int_equal(cas_store_secret_put(f->s, "s1", "other", &sr), 0);
	assert_int_equal(cas_store_commit(f->s), 0);

	cas_secret_rec_init(&got);
	assert_int_equal(cas_store_secret_get(f->s, "s1", "key", &got), 0);
	assert_int_equal(got.kind, 2);
	assert_memory_equal(got.params, sr.params, 32);
	assert_int_equal(got.value.len, 4);
	assert_memory_equal(got.value.p, "\x00\x01\x02\xff", 4);
	cas_secret_rec_free(&got);

	assert_int_equal(cas_store_secret_names(f->s, "s1", &names), 0);
	assert_int_equal(names.n, 2);
	assert_string_equal(names.v[0], "key");
	assert_string_equal(names.v[1], "other");
	cas_names_free(&names);

	/* Another session's, or another name's, record does not open here. */
	raw_sql(f->db, "INSERT INTO secrets(session, name, record) SELECT 's2', name, record FROM secrets "
		       "WHERE session = 's1' AND name = 'key'");
	raw_sql(f->db, "UPDATE secrets SET record = (SELECT record FROM secrets WHERE session = 's1' AND name = 'key') "
		       "WHERE session = 's1' AND name = 'other'");
	cas_secret_rec_init(&got);
	assert_int_equal(cas_store_secret_get(f->s, "s2", "key", &got), ARCA_ECRYPTO);
	assert_int_equal(cas_store_secret_get(f->s, "s1", "other", &got), ARCA_ECRYPTO);
	cas_secret_rec_free(&got);

	assert_int_equal(cas_store_begin_write(f->s, 1), 0);
	assert_int_equal(cas_store_secret_delete(f->s, "s1", "key"), 0);
	assert_int_equal(cas_store_commit(f->s), 0);
	cas_secret_rec_init(&got);
	assert_int_equal(cas_store_secret_get(f->s, "s1", "key", &got), ARCA_ENOTFOUND);
	cas_secret_rec_free(&got);
	cas_secret_rec_free(&sr);
}

static void test_store_never_holds_clear_text(void **state)
{
	struct fx *f = *state;
	struct cas_secret_rec sr;
	char cmd[300];

	cas_secret_rec_init(&sr);
	sr.kind = 1;
	assert_int_equal(arca_buf_appends(&sr.value, "Zq8UNIQUEsecretVALUEx"), 0);
	assert_int_equal(cas_store_begin_write(f->s, 1), 0);
	assert_int_equal(cas_store_secret_put(f->s, "s", "pw", &sr), 0);
	assert_int_equal(cas_store_commit(f->s), 0);
	cas_secret_rec_free(&sr);
	put_session(f->s, "s", "password: Zq8UNIQUEpolicyVALUEx\n", 9);
	snprintf(cmd, sizeof cmd, "cat '%s'/store.db* | grep -qa -e Zq8UNIQUEsecret -e Zq8UNIQUEpolicy", f->dir);
	assert_int_not_equal(system(cmd), 0);
}

static void test_wrong_key_refused_at_open(void **state)
{
	struct fx *f = *state;
	struct cas_store *s2 = NULL;
	struct arca_errbuf e = {{0}};
	uint8_t other[32];

	put_session(f->s, "x", "y", 1);
	memcpy(other, f->key, 32);
	other[0] ^= 1;
	assert_int_equal(cas_store_open(f->db, other, NULL, &s2, &e), ARCA_ECRYPTO);
	assert_null(s2);
	assert_non_null(strstr(e.msg, "master key"));
	assert_int_equal(cas_store_open(f->db, f->key, NULL, &s2, &e), 0);
	cas_store_close(s2);
}

static void test_nonce_used_once(void **state)
{
	struct fx *f = *state;
	uint8_t n[32];
	int64_t now = cas_now_ms();

	assert_int_equal(arca_random(n, sizeof n), 0);
	assert_int_equal(cas_store_nonce_add(f->s, n, now + 60000), 0);
	assert_int_equal(cas_store_nonce_add(f->s, n, now + 60000), ARCA_EEXIST);
	assert_int_equal(cas_store_nonce_take(f->s, n, now), 0);
	assert_int_equal(cas_store_nonce_take(f->s, n, now), ARCA_ENOTFOUND);
	n[0] ^= 1;
	assert_int_equal(cas_store_nonce_take(f->s, n, now), ARCA_ENOTFOUND);
}

static void test_nonce_expired_told_apart(void **state)
{
	struct fx *f = *state;
	uint8_t a[32], b[32];
	int64_t now = cas_now_ms();
	long long purged = -1;

	assert_int_equal(arca_random(a, sizeof a), 0);
	assert_int_equal(arca_random(b, sizeof b), 0);
	assert_int_equal(cas_store_nonce_add(f->s, a, now + 1000), 0);
	assert_int_equal(cas_store_nonce_add(f->s, b, now + 1000), 0);
	/* Expiry is exclusive: at the expiry instant the nonce is expired. */
	assert_int_equal(cas_store_nonce_take(f->s, a, now + 1000), ARCA_ETIMEOUT);
	/* ...and consumed by that attempt. */
	assert_int_equal(cas_store_nonce_take(f->s, a, now), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_nonce_purge(f->s, now + 999, &purged), 0);
	assert_int_equal(purged, 0);
	assert_int_equal(cas_store_nonce_purge(f->s, now + 1000, &purged), 0);
	assert_int_equal(purged, 1);
	assert_int_equal(cas_store_nonce_take(f->s, b, now), ARCA_ENOTFOUND);
}


/* ---- volumes ---- */

static void put_volume(struct cas_store *s, const char *session, const char *volume, uint8_t keyfill)
{
	struct cas_volume_rec r;

	memset(&r, 0, sizeof r);
	memset(r.key, keyfill, sizeof r.key);
	assert_int_equal(cas_store_begin_write(s, 1), 0);
	assert_int_equal(cas_store_volume_put(s, session, volume, &r), 0);
	assert_int_equal(cas_store_commit(s), 0);
}

static int swap(struct cas_store *s, const char *session, const char *volume, const uint8_t *prev, const uint8_t *tag,
		struct cas_volume_rec *held)
{
	uint8_t none[32] = {0};
	int rc;

	assert_int_equal(cas_store_begin_write(s, 1), 0);
	rc = cas_store_volume_tag_swap(s, session, volume, prev != NULL, prev ? prev : none, tag, held);
	if (rc == 0)
		assert_int_equal(cas_store_commit(s), 0);
	else
		cas_store_rollback(s);
	return rc;
}

static void test_volume_tags_survive_reopen(void **state)
{
	struct fx *f = *state;
	struct cas_volume_rec got, held;
	struct arca_errbuf e;
	uint8_t a[32], key[32];

	memset(a, 0xa1, sizeof a);
	memset(key, 0x42, sizeof key);
	put_volume(f->s, "team/s", "data", 0x42);
	assert_int_equal(cas_store_volume_get(f->s, "team/s", "data", &got), 0);
	assert_memory_equal(got.key, key, 32);
	assert_int_equal(got.has_tag, 0);
	assert_int_equal(cas_store_volume_get(f->s, "team/s", "other", &got), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_volume_get(f->s, "team", "data", &got), ARCA_ENOTFOUND);

	assert_int_equal(swap(f->s, "team/s", "data", NULL, a, &held), 0);
	cas_store_close(f->s);
	f->s = NULL;
	assert_int_equal(cas_store_open(f->db, f->key, NULL, &f->s, &e), 0);
	assert_int_equal(cas_store_volume_get(f->s, "team/s", "data", &got), 0);
	assert_memory_equal(got.key, key, 32);
	assert_int_equal(got.has_tag, 1);
	assert_memory_equal(got.tag, a, 32);
	cas_volume_rec_wipe(&got);

	/* Nothing of the key is in the file in clear. */
	char cmd[300];
	snprintf(cmd, sizeof cmd, "cat '%s'/store.db* | grep -qaF 'BBBBBBBBBBBBBBBB'", f->dir);
	assert_int_not_equal(system(cmd), 0);
}

static void test_volume_tag_compare_and_swap(void **state)
{
	struct fx *f = *state;
	struct cas_volume_rec held, got;
	uint8_t a[32], b[32], c[32];

	memset(a, 0xa1, sizeof a);
	memset(b, 0xb2, sizeof b);
	memset(c, 0xc3, sizeof c);
	put_volume(f->s, "s", "data", 7);
	/* CAS holds none: only "no previous" is accepted. */
	assert_int_equal(swap(f->s, "s", "data", a, b, &held), ARCA_ESTALE);
	assert_int_equal(held.has_tag, 0);
	assert_int_equal(swap(f->s, "s", "data", NULL, a, &held), 0);
	/* CAS holds a: no previous, or another one, is a rollback. */
	assert_int_equal(swap(f->s, "s", "data", NULL, c, &held), ARCA_ESTALE);
	assert_int_equal(held.has_tag, 1);
	assert_memory_equal(held.tag, a, 32);
	assert_int_equal(swap(f->s, "s", "data", b, c, &held), ARCA_ESTALE);
	assert_memory_equal(held.tag, a, 32);
	assert_int_equal(cas_store_volume_get(f->s, "s", "data", &got), 0);
	assert_memory_equal(got.tag, a, 32);
	/* The right previous moves it on, and the key stays. */
	assert_int_equal(swap(f->s, "s", "data", a, c, &held), 0);
	assert_int_equal(cas_store_volume_get(f->s, "s", "data", &got), 0);
	assert_memory_equal(got.tag, c, 32);
	assert_int_equal(got.key[0], 7);
	assert_int_equal(swap(f->s, "s", "data", a, b, &held), ARCA_ESTALE);
	/* A repeat of the swap that happened (its answer was lost) succeeds
	 * and changes nothing, whatever previous it names. */
	assert_int_equal(swap(f->s, "s", "data", a, c, &held), 0);
	assert_int_equal(swap(f->s, "s", "data", NULL, c, &held), 0);
	assert_int_equal(cas_store_volume_get(f->s, "s", "data", &got), 0);
	assert_memory_equal(got.tag, c, 32);
	assert_int_equal(got.key[0], 7);
	/* What a shield sends to report a rollback (previous = tag = what it
	 * found) is still refused while CAS holds something else. */
	assert_int_equal(swap(f->s, "s", "data", b, b, &held), ARCA_ESTALE);
	assert_memory_equal(held.tag, c, 32);
	/* No record, no transaction. */
	assert_int_equal(swap(f->s, "s", "nosuch", NULL, a, &held), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_volume_tag_swap(f->s, "s", "data", 1, c, a, &held), ARCA_EINVAL);
	assert_int_equal(cas_store_volume_put(f->s, "s", "data", &got), ARCA_EINVAL);
	cas_volume_rec_wipe(&got);
	cas_volume_rec_wipe(&held);

	/* A record moved to another volume or session does not open. */
	raw_sql(f->db, "INSERT INTO volumes(session, name, record) SELECT 's', 'copy', record FROM volumes "
		       "WHERE session = 's' AND name = 'data'");
	raw_sql(f->db, "INSERT INTO volumes(session, name, record) SELECT 's2', 'data', record FROM volumes "
		       "WHERE session = 's' AND name = 'data'");
	assert_int_equal(cas_store_volume_get(f->s, "s", "copy", &got), ARCA_ECRYPTO);
	assert_int_equal(cas_store_volume_get(f->s, "s2", "data", &got), ARCA_ECRYPTO);
	assert_int_equal(swap(f->s, "s", "copy", c, a, &held), ARCA_ECRYPTO);
}

static void add_token(struct cas_store *s, const char *session, const char *volume, const uint8_t id[32])
{
	assert_int_equal(cas_store_begin_write(s, 1), 0);
	assert_int_equal(cas_store_volume_token_add(s, session, volume, id, cas_now_ms(), CAS_VOLUME_TOKENS_MAX), 0);
	assert_int_equal(cas_store_commit(s), 0);
}

static void test_volume_tokens(void **state)
{
	struct fx *f = *state;
	uint8_t ids[CAS_VOLUME_TOKENS_MAX + 6][32], other[32];

	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		assert_int_equal(arca_random(ids[i], 32), 0);
	memcpy(other, ids[1], 32);
	other[31] ^= 1;
	add_token(f->s, "s", "data", ids[0]);
	add_token(f->s, "s", "data", ids[1]);
	add_token(f->s, "s", "code", ids[2]);
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "data", ids[0]), 0);
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "data", ids[1]), 0);
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "code", ids[2]), 0);
	/* only for its own session and volume; one bit off is another id */
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "code", ids[0]), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "data", ids[2]), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_volume_token_find(f->s, "t", "data", ids[0]), ARCA_ENOTFOUND);
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "data", other), ARCA_ENOTFOUND);

	/* The newest CAS_VOLUME_TOKENS_MAX are kept, the oldest go. */
	for (size_t i = 2; i < sizeof ids / sizeof ids[0]; i++)
		add_token(f->s, "s", "data", ids[i]);
	/* data now has every id, oldest first */
	size_t dropped = sizeof ids / sizeof ids[0] - CAS_VOLUME_TOKENS_MAX;
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		int want = i < dropped ? ARCA_ENOTFOUND : 0;
		if (cas_store_volume_token_find(f->s, "s", "data", ids[i]) != want)
			fail_msg("token %zu: want %d", i, want);
	}
	/* the other volume's token is untouched by data's trimming */
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "code", ids[2]), 0);

	/* An id written into the table by hand, or moved to another volume,
	 * has no record CAS sealed for it there. */
	raw_sql(f->db, "UPDATE volume_tokens SET volume = 'moved' WHERE volume = 'code'");
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "moved", ids[2]), ARCA_ECRYPTO);
	raw_sql(f->db, "INSERT INTO volume_tokens(session, volume, id, record) VALUES ('s', 'x', zeroblob(32), x'00')");
	memset(other, 0, sizeof other);
	assert_int_equal(cas_store_volume_token_find(f->s, "s", "x", other), ARCA_ECRYPTO);

	/* add needs a transaction and a sane bound */
	assert_int_equal(cas_store_volume_token_add(f->s, "s", "data", ids[0], 1, 1), ARCA_EINVAL);
	assert_int_equal(cas_store_begin_write(f->s, 1), 0);
	assert_int_equal(cas_store_volume_token_add(f->s, "s", "data", ids[0], 1, 0), ARCA_EINVAL);
	assert_int_equal(cas_store_volume_token_add(f->s, "s", "data", ids[0], 1, CAS_VOLUME_TOKENS_MAX + 1), ARCA_EINVAL);
	cas_store_rollback(f->s);
}

static void test_master_key_file(void **state)
{
	struct fx *f = *state;
	struct arca_errbuf e = {{0}};
	char path[160];
	uint8_t *k1 = NULL, *k2 = NULL;
	int created = 0;
	struct stat st;
	FILE *fp;

	snprintf(path, sizeof path, "%s/master.key", f->dir);
	assert_int_equal(cas_master_key_load(path, &k1, &created, &e), 0);
	assert_true(created);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(cas_master_key_load(path, &k2, &created, &e), 0);
	assert_false(created);
	assert_memory_equal(k1, k2, 32);
	arca_secret_free(k2, 32);

	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(cas_master_key_load(path, &k2, &created, &e), ARCA_EDENIED);
	assert_null(k2);
	assert_int_equal(chmod(path, 0600), 0);

	fp = fopen(path, "ab");
	assert_non_null(fp);
	fputc('x', fp);
	fclose(fp);
	assert_int_equal(cas_master_key_load(path, &k2, &created, &e), ARCA_EINVAL);
	assert_null(k2);
	arca_secret_free(k1, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_insert_replace_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_copied_to_other_name_does_not_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_hash_edited_does_not_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_round_trip_and_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_never_holds_clear_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key_refused_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_used_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_expired_told_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_tags_survive_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_tag_compare_and_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_tokens, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
