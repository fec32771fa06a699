/* test_buf.c: the cursor's bounds, the buffer's maximum and NUL, and the
 * file helpers (including what an interrupted atomic write leaves). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "arca/buf.h"

static void test_cursor(void **state)
{
	const uint8_t data[] = { 0x01, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0xef, 0xcd, 0xab, 0x89,
				 0x67, 0x45, 0x23, 0x01, 'x', 'y' };
	struct arca_cur c;
	arca_cur_init(&c, data, sizeof data);
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	assert_int_equal(arca_cur_u8(&c, &u8), 0);
	assert_int_equal(u8, 0x01);
	assert_int_equal(arca_cur_u16le(&c, &u16), 0);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(arca_cur_u32le(&c, &u32), 0);
	assert_int_equal(u32, 0x12345678);
	assert_int_equal(arca_cur_u64le(&c, &u64), 0);
	assert_true(u64 == 0x0123456789abcdefULL);
	assert_int_equal(arca_cur_left(&c), 2);

	/* Asking for more than is left fails and consumes nothing. */
	assert_int_equal(arca_cur_u32le(&c, &u32), ARCA_EPARSE);
	assert_int_equal(arca_cur_u64le(&c, &u64), ARCA_EPARSE);
	assert_int_equal(arca_cur_skip(&c, 3), ARCA_EPARSE);
	uint8_t two[3] = { 0 };
	assert_int_equal(arca_cur_copy(&c, two, 3), ARCA_EPARSE);
	assert_int_equal(two[0], 0);
	assert_int_equal(arca_cur_left(&c), 2);
	const uint8_t *p;
	assert_int_equal(arca_cur_take(&c, SIZE_MAX, &p), ARCA_EPARSE);
	assert_int_equal(arca_cur_left(&c), 2);

	assert_int_equal(arca_cur_copy(&c, two, 2), 0);
	assert_memory_equal(two, "xy", 2);
	assert_int_equal(arca_cur_left(&c), 0);
	assert_int_equal(arca_cur_u8(&c, &u8), ARCA_EPARSE);
	assert_int_equal(arca_cur_take(&c, 0, &p), 0);

	struct arca_cur e;
	arca_cur_init(&e, NULL, 0);
	assert_int_equal(arca_cur_u8(&e, &u8), ARCA_EPARSE);
	assert_int_equal(arca_cur_u16le(&e, &u16), ARCA_EPARSE);
}

static void test_buf_max(void **state)
{
	struct arca_buf b;
	arca_buf_init(&b, 10, 0);
	assert_int_equal(arca_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(b.p[10], 0);
	assert_int_equal(arca_buf_append(&b, "x", 1), ARCA_ENOMEM);
	assert_int_equal(arca_buf_appends(&b, "x"), ARCA_ENOMEM);
	assert_int_equal(arca_buf_appendf(&b, "%d", 1), ARCA_ENOMEM);
	assert_int_equal(arca_buf_u16le(&b, 1), ARCA_ENOMEM);
	assert_int_equal(arca_buf_reserve(&b, SIZE_MAX), ARCA_ENOMEM);
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.p, "0123456789");
	arca_buf_free(&b);

	/* appendf that would cross max leaves the buffer as it was. */
	arca_buf_init(&b, 8, 0);
	assert_int_equal(arca_buf_appendf(&b, "ab%s", "cd"), 0);
	assert_int_equal(arca_buf_appendf(&b, "%s", "efghi"), ARCA_ENOMEM);
	assert_int_equal(b.len, 4);
	assert_string_equal((char *)b.p, "abcd");
	assert_int_equal(arca_buf_appendf(&b, "%03d", 7), 0);
	assert_string_equal(arca_buf_str(&b), "abcd007");
	arca_buf_free(&b);
	assert_null(b.p);
	assert_string_equal(arca_buf_str(&b), "");
}

static void test_buf_growth_and_nul(void **state)
{
	struct arca_buf b;
	arca_buf_init(&b, 0, 1); /* 0: the default maximum */
	assert_int_equal(b.max, ARCA_BUF_DEFAULT_MAX);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(arca_buf_appendf(&b, "%04d,", i), 0);
	assert_int_equal(b.len, 5000);
	assert_int_equal(b.p[b.len], 0);
	assert_memory_equal(b.p, "0000,0001,", 10);
	assert_memory_equal(b.p + 4995, "0999,", 5);

	/* A long formatted string that needs the second vsnprintf. */
	char big[3000];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = 0;
	arca_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.p[0], 0);
	assert_int_equal(arca_buf_appendf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 3001);
	assert_int_equal(b.p[0], '<');
	assert_int_equal(b.p[3000], '>');
	assert_int_equal(b.p[3001], 0);

	arca_buf_reset(&b);
	assert_int_equal(arca_buf_u16le(&b, 0x0102), 0);
	assert_int_equal(arca_buf_u32le(&b, 0x03040506), 0);
	assert_int_equal(arca_buf_u64le(&b, 0x0708090a0b0c0d0eULL), 0);
	const uint8_t want[] = { 2, 1, 6, 5, 4, 3, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7 };
	assert_int_equal(b.len, sizeof want);
	assert_memory_equal(b.p, want, sizeof want);

	arca_buf_truncate(&b, 2);
	assert_int_equal(b.len, 2);
	assert_int_equal(b.p[2], 0);

	size_t len = 0;
	uint8_t *p = arca_buf_steal(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 2);
	assert_int_equal(p[0], 2);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	free(p);

	/* An empty buffer still steals as a valid empty string. */
	p = arca_buf_steal(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	assert_int_equal(p[0], 0);
	free(p);

	/* A zeroed struct behaves like one initialised with the default. */
	struct arca_buf z = { 0 };
	assert_int_equal(arca_buf_appends(&z, "ok"), 0);
	assert_string_equal((char *)z.p, "ok");
	arca_buf_free(&z);
	arca_buf_free(&b);
}

static char tmpdir[256];

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/arca-test-buf-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t cap, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", tmpdir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_read_file(void **state)
{
	char path[300];
	struct arca_errbuf e = { { 0 } };
	struct arca_buf b;
	arca_buf_init(&b, 0, 0);

	path_in(path, sizeof path, "missing");
	assert_int_equal(arca_read_file(path, 100, &b, &e), ARCA_ENOTFOUND);
	assert_non_null(strstr(e.msg, path));

	path_in(path, sizeof path, "ten");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("0123456789", f);
	fclose(f);

	assert_int_equal(arca_buf_appends(&b, "keep"), 0);
	assert_int_equal(arca_read_file(path, 9, &b, &e), ARCA_ETOOBIG);
	assert_non_null(strstr(e.msg, "too large"));
	assert_string_equal((char *)b.p, "keep"); /* untouched on failure */
	assert_int_equal(arca_read_file(path, 10, &b, &e), 0);
	assert_string_equal((char *)b.p, "keep0123456789"); /* appends */

	/* A file whose size stat does not know is still bounded. */
	arca_buf_reset(&b);
	assert_int_equal(arca_read_file("/proc/self/status", 1 << 20, &b, &e), 0);
	assert_non_null(strstr((char *)b.p, "Name:"));
	arca_buf_reset(&b);
	assert_int_equal(arca_read_file("/proc/self/status", 10, &b, &e), ARCA_ETOOBIG);
	assert_int_equal(b.len, 0);

	assert_int_equal(arca_read_file(tmpdir, 100, &b, &e), ARCA_EINVAL);

	/* The buffer's own max applies too. */
	struct arca_buf small;
	arca_buf_init(&small, 5, 0);
	path_in(path, sizeof path, "ten");
	assert_int_equal(arca_read_file(path, 100, &small, &e), ARCA_ETOOBIG);
	assert_int_equal(small.len, 0);
	arca_buf_free(&small);

	/* Buffer max equal to the file limit: a file of exactly that size fits,
	 * one byte more does not, also when stat cannot tell the size. */
	arca_buf_init(&small, 10, 1);
	assert_int_equal(arca_read_file(path, 10, &small, &e), 0);
	assert_string_equal((char *)small.p, "0123456789");
	arca_buf_free(&small);
	arca_buf_init(&small, 9, 1);
	assert_int_equal(arca_read_file(path, 9, &small, &e), ARCA_ETOOBIG);
	assert_int_equal(small.len, 0);
	arca_buf_free(&small);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "0123456789", 10), 10);
	close(fds[1]);
	arca_buf_init(&small, 10, 0);
	assert_int_equal(arca_read_fd(fds[0], "pipe", 10, &small, &e), 0);
	assert_int_equal(small.len, 10);
	close(fds[0]);
	arca_buf_free(&small);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "0123456789", 10), 10);
	close(fds[1]);
	arca_buf_init(&small, 20, 0);
	assert_int_equal(arca_read_fd(fds[0], "pipe", 9, &small, &e), ARCA_ETOOBIG);
	assert_non_null(strstr(e.msg, "pipe"));
	assert_int_equal(small.len, 0);
	close(fds[0]);
	arca_buf_free(&small);
	arca_buf_init(&small, 9, 0); /* buffer is the tighter limit */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "0123456789", 10), 10);
	close(fds[1]);
	assert_int_equal(arca_read_fd(fds[0], "pipe", 100, &small, &e), ARCA_ETOOBIG);
	close(fds[0]);
	arca_buf_free(&small);
	arca_buf_free(&b);
}

static void test_write_atomic(void **state)
{
	char path[300];
	struct arca_errbuf e = { { 0 } };
	struct arca_buf b;
	arca_buf_init(&b, 0, 0);
	mode_t old = umask(022);

	path_in(path, sizeof path, "out");
	assert_int_equal(arca_write_file_atomic(path, "first", 5, 0640, &e), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(arca_read_file(path, 100, &b, &e), 0);
	assert_string_equal((char *)b.p, "first");

	assert_int_equal(arca_write_file_atomic(path, "second", 6, 0600, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	arca_buf_reset(&b);
	assert_int_equal(arca_read_file(path, 100, &b, &e), 0);
	assert_string_equal((char *)b.p, "second");
	assert_int_equal(arca_write_file_atomic(path, "", 0, 0600, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	umask(old);

	/* Failure at the last step (rename onto a non-empty directory): the
	 * directory is intact and no temporary file is left behind. */
	char sub[300], inner[340];
	path_in(sub, sizeof sub, "occupied");
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(inner, sizeof inner, "%s/x", sub);
	assert_int_equal(arca_write_file_atomic(inner, "x", 1, 0600, &e), 0);
	size_t before = count_entries(tmpdir);
	assert_true(arca_write_file_atomic(sub, "new", 3, 0600, &e) < 0);
	assert_non_null(strstr(e.msg, sub));
	assert_int_equal(count_entries(tmpdir), before);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	arca_buf_reset(&b);
	assert_int_equal(arca_read_file(inner, 100, &b, &e), 0);
	assert_string_equal((char *)b.p, "x");

	/* A missing directory: nothing is created. */
	path_in(path, sizeof path, "nodir/out");
	assert_int_equal(arca_write_file_atomic(path, "x", 1, 0600, &e), ARCA_ENOTFOUND);
	assert_int_equal(count_entries(tmpdir), before);
	arca_buf_free(&b);
}

static void test_mkdirs(void **state)
{
	char path[300];
	struct arca_errbuf e = { { 0 } };
	struct stat st;
	mode_t old = umask(0);
	path_in(path, sizeof path, "a/b//c/");
	assert_int_equal(arca_mkdirs(path, 0700, &e), 0);
	path_in(path, sizeof path, "a/b/c");
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(arca_mkdirs(path, 0700, &e), 0); /* already there */
	umask(old);

	path_in(path, sizeof path, "a/file");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	path_in(path, sizeof path, "a/file/sub");
	assert_int_equal(arca_mkdirs(path, 0700, &e), ARCA_EEXIST);
	assert_non_null(strstr(e.msg, "a/file"));
	assert_int_equal(arca_mkdirs("", 0700, &e), ARCA_EINVAL);
}

static void test_errors(void **state)
{
	struct arca_errbuf e;
	assert_int_equal(arca_errf(&e, ARCA_EIO, "disk %s at %d", "sda", 3), ARCA_EIO);
	assert_string_equal(e.msg, "disk sda at 3");
	assert_int_equal(arca_errf(NULL, ARCA_EPARSE, "x"), ARCA_EPARSE);
	char big[1000];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_int_equal(arca_errf(&e, ARCA_EINVAL, "%s", big), ARCA_EINVAL);
	assert_int_equal(strlen(e.msg), sizeof e.msg - 1); /* truncated, terminated */
	assert_string_equal(arca_strerror(ARCA_ECRYPTO), "cryptographic check failed");
	assert_string_equal(arca_strerror(12345), "unknown error");
	for (int c = ARCA_OK; c >= ARCA_ETIMEOUT; c--)
		assert_string_not_equal(arca_strerror(c), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_buf_growth_and_nul),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_mkdirs),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
