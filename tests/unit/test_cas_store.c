/* test_cas_store.c: CAS's sealed SQLite store (cas/store.c) and master key
 * file (cas/masterkey.c): records round trip, a record moved to another
 * row or with its hash edited does not open, a wrong key is refused at
 * open, transactions roll back, nonces are used once and expired ones are
 * told apart from unknown ones. */
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
