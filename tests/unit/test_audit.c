/* test_audit.c: the audit log's chain: the hash definition checked from
 * the outside, continuation across reopen, and that an edited, removed,
 * swapped, damaged or cut-off line is found at the right line number;
 * many records appended at once are still one line each and all or
 * nothing; a log cut short or rewritten behind its recorded head (anchor)
 * is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>
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

/* ---- many records in one append ---- */

static json_t *rec_n(int i)
{
	return json_pack("{s:s,s:i,s:s}", "event", "attest", "n", i, "who", "alice");
}

static void append_many_n(const char *path, int first, int n)
{
	struct arca_audit *a;
	struct arca_errbuf e = {{0}};
	json_t *recs[32];

	assert_true(n <= 32);
	if (arca_audit_open(path, &a, &e) < 0)
		fail_msg("open: %s", e.msg);
	for (int i = 0; i < n; i++)
		recs[i] = rec_n(first + i);
	assert_int_equal(arca_audit_append_many(a, recs, (size_t)n), 0);
	for (int i = 0; i < n; i++) {
		/* Not taken, not changed. */
		assert_int_equal(json_object_size(recs[i]), 3);
		json_decref(recs[i]);
	}
	arca_audit_close(a);
}

static void hash_of_line(const char *line, uint8_t out[32])
{
	json_t *j = json_loads(line, 0, NULL);
	size_t got = 0;

	assert_non_null(j);
	assert_int_equal(arca_hex_decode(json_string_value(json_object_get(j, "hash")), 64, out, 32, &got), 0);
	assert_int_equal(got, 32);
	json_decref(j);
}

static void test_append_many_chains(void **state)
{
	struct tmp *t = *state;
	struct lines ls;
	struct arca_errbuf e;
	size_t n;

	append_n(t->path, 1, 2);
	append_many_n(t->path, 3, 5);
	append_n(t->path, 8, 1);
	if (arca_audit_verify_file(t->path, &n, &e) < 0)
		fail_msg("%s", e.msg);
	assert_int_equal(n, 8);

	/* Each record its own line, in order, each naming the one before. */
	read_lines(t->path, &ls);
	assert_int_equal(ls.n, 8);
	char prev[65];
	memset(prev, '0', 64);
	prev[64] = 0;
	for (size_t i = 0; i < ls.n; i++) {
		json_t *j = json_loads(ls.l[i], 0, NULL);
		assert_non_null(j);
		assert_null(json_object_get(j, "events"));
		assert_string_equal(json_string_value(json_object_get(j, "event")), "attest");
		assert_int_equal(json_integer_value(json_object_get(j, "seq")), (json_int_t)i + 1);
		assert_int_equal(json_integer_value(json_object_get(j, "n")), (json_int_t)i + 1);
		assert_string_equal(json_string_value(json_object_get(j, "prev")), prev);
		snprintf(prev, sizeof(prev), "%s", json_string_value(json_object_get(j, "hash")));
		json_decref(j);
	}
	free_lines(&ls);
}

static void test_append_many_rules(void **state)
{
	struct tmp *t = *state;
	struct arca_audit *a;
	struct arca_errbuf e;
	struct stat st;
	json_t *recs[3];
	size_t n;
	off_t before;

	append_n(t->path, 1, 2);
	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	assert_int_equal(stat(t->path, &st), 0);
	before = st.st_size;

	/* Nothing to write is no write. */
	assert_int_equal(arca_audit_append_many(a, NULL, 0), 0);
	assert_int_equal(arca_audit_append_many(a, NULL, 2), ARCA_EINVAL);
	assert_int_equal(arca_audit_append_many(NULL, recs, 0), ARCA_EINVAL);

	/* One bad record in the middle: none of the three is written. */
	recs[0] = rec_n(3);
	recs[1] = json_pack("{s:s,s:i}", "event", "x", "seq", 9);
	recs[2] = rec_n(4);
	assert_int_equal(arca_audit_append_many(a, recs, 3), ARCA_EINVAL);
	json_decref(recs[1]);
	recs[1] = json_array();
	assert_int_equal(arca_audit_append_many(a, recs, 3), ARCA_EINVAL);
	json_decref(recs[1]);
	recs[1] = NULL;
	assert_int_equal(arca_audit_append_many(a, recs, 3), ARCA_EINVAL);
	/* A line over the limit: ARCA_ETOOBIG, nothing written. */
	char *big = malloc(ARCA_AUDIT_MAX_LINE + 1);
	assert_non_null(big);
	memset(big, 'x', ARCA_AUDIT_MAX_LINE);
	big[ARCA_AUDIT_MAX_LINE] = 0;
	recs[1] = json_pack("{s:s,s:s}", "event", "big", "blob", big);
	free(big);
	assert_int_equal(arca_audit_append_many(a, recs, 3), ARCA_ETOOBIG);
	json_decref(recs[1]);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_size, before);

	/* The chain goes on from where it was. */
	recs[1] = rec_n(99);
	assert_int_equal(arca_audit_append_many(a, recs, 3), 0);
	for (int i = 0; i < 3; i++)
		json_decref(recs[i]);
	arca_audit_close(a);
	assert_int_equal(arca_audit_verify_file(t->path, &n, &e), 0);
	assert_int_equal(n, 5);
}

/* The file size limit makes write(2) stop half way through the lines:
 * the part written is cut off again and the log stays usable. */
static void test_append_many_short_write(void **state)
{
	struct tmp *t = *state;
	struct arca_audit *a;
	struct arca_errbuf e;
	struct rlimit old, lim;
	struct stat st;
	json_t *recs[20];
	size_t n;
	uint64_t seq;
	uint8_t hash[32], hash_before[32];

	append_n(t->path, 1, 2);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	assert_int_equal(arca_audit_head(a, &seq, hash_before), 0);
	for (int i = 0; i < 20; i++)
		recs[i] = rec_n(3 + i);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 1000; /* room for a few of the 20 lines */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = arca_audit_append_many(a, recs, 20);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, ARCA_EIO);
	struct stat st2;
	assert_int_equal(stat(t->path, &st2), 0);
	assert_int_equal(st2.st_size, st.st_size);
	assert_int_equal(arca_audit_head(a, &seq, hash), 0);
	assert_int_equal(seq, 2);
	assert_memory_equal(hash, hash_before, 32);

	assert_int_equal(arca_audit_append_many(a, recs, 20), 0);
	for (int i = 0; i < 20; i++)
		json_decref(recs[i]);
	arca_audit_close(a);
	if (arca_audit_verify_file(t->path, &n, &e) < 0)
		fail_msg("%s", e.msg);
	assert_int_equal(n, 22);
}

static void test_append_many_edit_in_batch(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	/* Lines 2 to 6 were one append; line 4 is edited. */
	append_n(t->path, 1, 1);
	append_many_n(t->path, 2, 5);
	read_lines(t->path, &ls);
	assert_int_equal(ls.n, 6);
	char *w = strstr(ls.l[3], "alice");
	assert_non_null(w);
	memcpy(w, "mallo", 5);
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 3, "audit.log:4:", "was edited");
}

static void test_append_many_removed_in_batch(void **state)
{
	struct tmp *t = *state;
	struct lines ls;

	append_many_n(t->path, 1, 6);
	read_lines(t->path, &ls);
	free(ls.l[2]);
	memmove(&ls.l[2], &ls.l[3], 3 * sizeof(char *));
	ls.n--;
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_bad(t->path, ARCA_ECRYPTO, 2, "audit.log:3:", "removed");
}

/* ---- the head, and opening against it ---- */

static void test_head(void **state)
{
	struct tmp *t = *state;
	struct arca_audit *a;
	struct arca_errbuf e;
	struct lines ls;
	uint8_t hash[32], want[32], zero[32] = {0};
	uint64_t seq = 99;

	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	assert_int_equal(arca_audit_head(a, &seq, hash), 0);
	assert_int_equal(seq, 0);
	assert_memory_equal(hash, zero, 32);
	json_t *recs[3] = {rec_n(1), rec_n(2), rec_n(3)};
	assert_int_equal(arca_audit_append_many(a, recs, 3), 0);
	for (int i = 0; i < 3; i++)
		json_decref(recs[i]);
	assert_int_equal(arca_audit_head(a, &seq, hash), 0);
	arca_audit_close(a);
	read_lines(t->path, &ls);
	hash_of_line(ls.l[2], want);
	free_lines(&ls);
	assert_int_equal(seq, 3);
	assert_memory_equal(hash, want, 32);
	/* The same after reopening. */
	assert_int_equal(arca_audit_open(t->path, &a, &e), 0);
	assert_int_equal(arca_audit_head(a, &seq, hash), 0);
	arca_audit_close(a);
	assert_int_equal(seq, 3);
	assert_memory_equal(hash, want, 32);
	assert_int_equal(arca_audit_head(NULL, &seq, hash), ARCA_EINVAL);
}

static void expect_anchor(const char *path, uint64_t seq, const uint8_t hash[32], int rc, const char *msg)
{
	struct arca_audit *a = (struct arca_audit *)1;
	struct arca_errbuf e = {{0}};
	int r = arca_audit_open_anchored(path, seq, hash, &a, &e);

	if (r != rc || (msg != NULL && strstr(e.msg, msg) == NULL))
		fail_msg("anchor %llu: rc %d (want %d) \"%s\", want \"%s\"", (unsigned long long)seq, r, rc, e.msg,
			 msg ? msg : "");
	if (rc == 0) {
		assert_non_null(a);
		arca_audit_close(a);
	} else {
		assert_null(a);
	}
}

static void test_anchor(void **state)
{
	struct tmp *t = *state;
	struct lines ls;
	uint8_t h3[32], h5[32], zero[32] = {0};

	append_n(t->path, 1, 5);
	read_lines(t->path, &ls);
	hash_of_line(ls.l[2], h3);
	hash_of_line(ls.l[4], h5);

	/* The head itself, an earlier record (the log went on after it was
	 * recorded), and no anchor at all. */
	expect_anchor(t->path, 5, h5, 0, NULL);
	expect_anchor(t->path, 3, h3, 0, NULL);
	expect_anchor(t->path, 0, zero, 0, NULL);
	/* A head the log never reached, or a record that is not the one. */
	expect_anchor(t->path, 6, h5, ARCA_ESTALE, "ends at record 5 but the store recorded 6");
	expect_anchor(t->path, 5, h3, ARCA_ESTALE, "record 5 is not the one the store recorded");

	/* Last two lines cut off: the chain is whole, the anchor catches it. */
	ls.n = 3;
	write_lines(t->path, &ls);
	expect_anchor(t->path, 5, h5, ARCA_ESTALE,
		      "ends at record 3 but the store recorded 5: the log was truncated or rewritten; restore it from backup");
	expect_anchor(t->path, 3, h3, 0, NULL);

	/* Emptied. */
	ls.n = 0;
	write_lines(t->path, &ls);
	expect_anchor(t->path, 3, h3, ARCA_ESTALE, "ends at record 0 but the store recorded 3");
	ls.n = 5;
	free_lines(&ls);

	/* Rewritten from line 3 on with a consistent chain: verifies as a
	 * file, but record 3 is not the recorded one. */
	unlink(t->path);
	append_n(t->path, 1, 2);
	append_n(t->path, 103, 3);
	struct arca_errbuf e;
	size_t n;
	assert_int_equal(arca_audit_verify_file(t->path, &n, &e), 0);
	assert_int_equal(n, 5);
	expect_anchor(t->path, 3, h3, ARCA_ESTALE, "record 3 is not the one the store recorded");
	expect_anchor(t->path, 5, h5, ARCA_ESTALE, "truncated or rewritten");

	/* A broken chain is reported as such, before any anchor. */
	read_lines(t->path, &ls);
	memcpy(strstr(ls.l[1], "alice"), "mallo", 5);
	write_lines(t->path, &ls);
	free_lines(&ls);
	expect_anchor(t->path, 5, h5, ARCA_ECRYPTO, "audit.log:2:");
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
		cmocka_unit_test_setup_teardown(test_append_many_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_many_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_many_short_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_many_edit_in_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_many_removed_in_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_anchor, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
