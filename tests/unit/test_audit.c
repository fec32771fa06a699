/* test_audit.c: the audit log's chain: the hash definition checked from
 * the outside, continuation across reopen, and that an edited, removed,
 * swapped, damaged or cut-off line is found at the right line number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "arca/audit.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"

struct tmp {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/arca-test-audit-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/audit.log", t->dir);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	unlink(t->path);
	rmdir(t->dir);
	free(t);
	return 0;
}

static void append_n(const char *path, int first, int n)
{
	struct arca_audit *a;
	struct arca_errbuf e = {{0}};

	if (arca_audit_open(path, &a, &e) < 0)
		fail_msg("open: %s", e.msg);
	for (int i = first; i < first + n; i++) {
		json_t *r = json_pack("{s:s,s:i,s:s}", "event", "attest", "n", i, "who", "alice");
		assert_int_equal(arca_audit_append(a, r), 0);
		json_decref(r);
	}
	arca_audit_close(a);
}

/* The file as lines, and back. */
struct lines {
	char *l[64];
	size_t n;
};

static void read_lines(const char *path, struct lines *ls)
{
	struct arca_buf b;
	struct arca_errbuf e;

	arca_buf_init(&b, 1 << 20, 0);
	assert_int_equal(arca_read_file(path, 1 << 20, &b, &e), 0);
	ls->n = 0;
	char *p = (char *)b.p, *end = p + b.len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);
		ls->l[ls->n++] = strndup(p, (size_t)(nl - p));
		p = nl + 1;
	}
	arca_buf_free(&b);
}

static void write_lines(const char *path, struct lines *ls)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < ls->n; i++)
		fprintf(f, "%s\n", ls->l[i]);
	fclose(f);
}

static void free_lines(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->l[i]);
	ls->n = 0;
}

static void expect_bad(const char *path, int rc, size_t good, const char *lineref, const char *why)
{
	struct arca_errbuf e = {{0}};
	size_t n = 999;
	int r = arca_audit_verify_file(path, &n, &e);

	if (r != rc || strstr(e.msg, lineref) == NULL || strstr(e.msg, why) == NULL)
		fail_msg("rc %d (want %d) \"%s\", want \"%s\" and \"%s\"", r, rc, e.msg, lineref, why);
	assert_int_equal(n, good);
	/* CAS must refuse to continue a broken chain. */
	struct arca_audit *a = (struct arca_audit *)1;
	assert_int_equal(arca_audit_open(path, &a, &e), r);
	assert_null(a);
	assert_non_null(strstr(e.msg, "broken audit chain"));
}

static void test_chain_definition(void **state)
{
	struct tmp *t = *state;
	struct lines ls;
	struct arca_errbuf e;
	struct stat st;
	size_t n;

	append_n(t->path, 1, 3);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(arca_audit_verify_file(t->path, &n, &e), 0);
	assert_int_equal(n, 3);

	read_lines(t->path, &ls);
	assert_int_equal(ls.n, 3);
	char prev[65];
	memset(prev, '0', 64);
	prev[64] = 0;
	for (size_t i = 0; i < ls.n; i++) {
		json_error_t jerr;
		json_t *j = json_loads(ls.l[i], 0, &jerr);
		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(j, "seq")), (json_int_t)i + 1);
		assert_string_equal(json_string_value(json_object_get(j, "prev")), prev);
		assert_string_equal(json_string_value(json_object_get(j, "who")), "alice");
		const char *tm = json_string_value(json_object_get(j, "time"));
		assert_int_equal(strlen(tm), 20);
		assert_int_equal(tm[10], 'T');
		assert_int_equal(tm[19], 'Z');
		/* hash = SHA-256 of the line without its "hash" member: with sorted
		 * keys that is the line with `"hash":"…",` cut out. */
		char hash[65];
		snprintf(hash, sizeof(hash), "%s", json_string_value(json_object_get(j, "hash")));
		char *at = strstr(ls.l[i], "\"hash\":\"");
		assert_non_null(at);
		char cut[1024];
		size_t pre = (size_t)(at - ls.l[i]);
		snprintf(cut, sizeof(cut), "%.*s%s", (int)pre, ls.l[i], at + 8 + 64 + 2);
		uint8_t d[32];
		char hex[65];
		assert_int_equal(arca_sha256(cut, strlen(cut), d), 0);
		arca_hex_encode(d, 32, hex);
		assert_string_equal(hex, hash);
		memcpy(prev, hash, 65);
		json_decref(j);
	}
	free_lines(&ls);

	/* Reopening continues the chain. */
	append_n(t->path, 4, 2);
	assert_int_equal(arca_audit_verify_file(t->path, &n, &e), 0);
	assert_int_equal(n, 5);
}

static void test_append_rules(void **state)
{
	struct tmp *t = *state;
	struct arca_audit *a, *b;
	struct arca_errbuf e;
	size_t n;

	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	/* Only one writer: a second would fork the chain. */
	assert_int_equal(arca_audit_open(t->path, &b, &e), ARCA_EEXIST);
	const char *reserved[] = {"seq", "time", "prev", "hash"};
	for (size_t i = 0; i < 4; i++) {
		json_t *r = json_pack("{s:s,s:i}", "event", "x", reserved[i], 1);
		assert_int_equal(arca_audit_append(a, r), ARCA_EINVAL);
		json_decref(r);
	}
	json_t *arr = json_array();
	assert_int_equal(arca_audit_append(a, arr), ARCA_EINVAL);
	json_decref(arr);
	assert_int_equal(arca_audit_append(a, NULL), ARCA_EINVAL);

	/* The caller's record is left as it was. */
	json_t *r = json_pack("{s:s,s:s}", "event", "session.create", "detail", "caf\xc3\xa9 \"q\" \\ \n");
	assert_int_equal(arca_audit_append(a, r), 0);
	assert_int_equal(json_object_size(r), 2);
	json_decref(r);
	arca_audit_close(a);
	assert_int_equal(arca_audit_verify_file(t->path, &n, &e), 0);
	assert_int_equal(n, 1);

	/* An empty file is a valid log of no records. */
	unlink(t->path);
	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	arca_audit_close(a);
	assert_int_equal(arca_audit_verify_file(t->path, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(arca_audit_verify_file("/nonexistent/audit.log", &n, &e), ARCA_ENOTFOUND);
}

static void test_edited_line(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 4);
	read_lines(t->path, &ls);
	char *w = strstr(ls.l[1], "alice");
	assert_non_null(w);
	memcpy(w, "mallo", 5);
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 1, "audit.log:2:", "was edited");
}

static void test_edited_line_rehashed(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	/* Someone who edits line 2 and fixes its hash still breaks line 3. */
	append_n(t->path, 1, 4);
	read_lines(t->path, &ls);
	json_t *j = json_loads(ls.l[1], 0, NULL);
	json_object_set_new(j, "who", json_string("mallory"));
	json_object_del(j, "hash");
	char *c = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t d[32];
	char hex[65];
	assert_int_equal(arca_sha256(c, strlen(c), d), 0);
	arca_hex_encode(d, 32, hex);
	json_object_set_new(j, "hash", json_string(hex));
	free(c);
	free(ls.l[1]);
	ls.l[1] = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 2, "audit.log:3:", "prev does not match");
}

static void test_whitespace_edit(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 3);
	read_lines(t->path, &ls);
	char *sp = malloc(strlen(ls.l[2]) + 2);
	sp[0] = '{';
	sp[1] = ' ';
	memcpy(sp + 2, ls.l[2] + 1, strlen(ls.l[2]));
	free(ls.l[2]);
	ls.l[2] = sp;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 2, "audit.log:3:", "canonical");
}

static void test_removed_line(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 5);
	read_lines(t->path, &ls);
	free(ls.l[2]);
	memmove(&ls.l[2], &ls.l[3], 2 * sizeof(char *));
	ls.n--;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 2, "audit.log:3:", "removed");
}

static void test_removed_first_line(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 3);
	read_lines(t->path, &ls);
	free(ls.l[0]);
	memmove(&ls.l[0], &ls.l[1], 2 * sizeof(char *));
	ls.n--;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 0, "audit.log:1:", "removed");
}

static void test_swapped_lines(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 5);
	read_lines(t->path, &ls);
	char *tmp = ls.l[1];
	ls.l[1] = ls.l[2];
	ls.l[2] = tmp;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 1, "audit.log:2:", "reordered");
}

static void test_swapped_last_lines(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 3);
	read_lines(t->path, &ls);
	char *tmp = ls.l[1];
	ls.l[1] = ls.l[2];
	ls.l[2] = tmp;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 1, "audit.log:2:", "reordered");
}

static void test_repeated_line(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 3);
	read_lines(t->path, &ls);
	ls.l[3] = strdup(ls.l[1]);
	ls.n = 4;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 3, "audit.log:4:", "reordered or repeated");
}

static void test_bad_json(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_n(t->path, 1, 4);
	read_lines(t->path, &ls);
	ls.l[2][5] = '\x01';
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_EPARSE, 2, "audit.log:3:", "not a JSON object");
}

static void test_missing_fields(void **state)
{
	struct tmp *t = *state;
	FILE *f = fopen(t->path, "w");
	fprintf(f, "{\"event\":\"x\"}\n");
	fclose(f);
	expect_bad(t->path, ARCA_EPARSE, 0, "audit.log:1:", "missing or malformed");
}

static void test_cut_last_line(void **state)
{
	struct tmp *t = *state;
	struct stat st;

	append_n(t->path, 1, 3);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(truncate(t->path, st.st_size - 10), 0);
	expect_bad(t->path, ARCA_EPARSE, 2, "audit.log:3:", "incomplete");
}

struct thr_arg {
	struct arca_audit *a;
	int id;
};

static void *appender(void *p)
{
	struct thr_arg *ta = p;
	for (int i = 0; i < 50; i++) {
		json_t *r = json_pack("{s:s,s:i,s:i}", "event", "thread", "thread", ta->id, "i", i);
		if (arca_audit_append(ta->a, r) < 0)
			abort();
		json_decref(r);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct tmp *t = *state;
	struct arca_audit *a;
	struct arca_errbuf e;
	pthread_t th[4];
	struct thr_arg args[4];
	size_t n;

	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thr_arg){a, i};
		assert_int_equal(pthread_create(&th[i], NULL, appender, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	arca_audit_close(a);
	if (arca_audit_verify_file(t->path, &n, &e) < 0)
		fail_msg("%s", e.msg);
	assert_int_equal(n, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_definition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edited_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edited_line_rehashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whitespace_edit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_first_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swapped_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swapped_last_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeated_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_last_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
