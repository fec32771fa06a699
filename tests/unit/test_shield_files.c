/* test_shield_files.c: the shield's injected files as a program sees them
 * through libc: every interposed call on an injected path (contents,
 * modes, refused writes, relative and "../" spellings) and untouched
 * behaviour for every other path. The shield's file sources are linked into
 * this test, so its own open/stat/… calls are the interposed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "shield.h"

/* start.c (which owns __libc_start_main) is not linked: refusals land here. */
static jmp_buf refuse_jmp;
static char refuse_msg[600];
void shield_refuse(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(refuse_msg, sizeof refuse_msg, fmt, ap);
	va_end(ap);
	longjmp(refuse_jmp, 1);
}

int __open_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);

#define DIR_ "/nonexistent-arca-test/etc"
#define APP DIR_ "/app.ini"
#define EMPTY DIR_ "/empty"
static const char app_text[] = "password = s3cret\n";

static int install(void **state)
{
	static char p0[] = APP, p1[] = EMPTY;
	static uint8_t d0[] = "password = s3cret\n", d1[1];
	static struct arca_file_entry files[2];
	static struct arca_config cfg;
	files[0] = (struct arca_file_entry){.path = p0, .data = d0, .len = sizeof d0 - 1};
	files[1] = (struct arca_file_entry){.path = p1, .data = d1, .len = 0};
	cfg.files = files;
	cfg.nfiles = 2;
	if (setjmp(refuse_jmp) != 0)
		return -1;
	shield_files_install(&cfg);
	return 0;
}

static void read_all(int fd, char *buf, size_t cap, size_t *n)
{
	*n = 0;
	ssize_t r;
	while ((r = read(fd, buf + *n, cap - *n)) > 0)
		*n += (size_t)r;
	assert_int_equal(r, 0);
}

static void test_open_serves_memory(void **state)
{
	char buf[128];
	size_t n;
	struct stat st;

	/* Not on disk: libc itself does not find it. */
	shield_resolve_real();
	assert_int_equal(shield.real.stat(APP, &st), -1);

	int fd = open(APP, O_RDONLY);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof buf, &n);
	assert_int_equal(n, strlen(app_text));
	assert_memory_equal(buf, app_text, n);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(st.st_size, (off_t)strlen(app_text));
	/* Sealed: nobody changes it, not even through this descriptor. */
	int seals = fcntl(fd, F_GET_SEALS);
	assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
			 F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	/* Each open is a fresh copy with its own position. */
	int fd2 = open64(APP, O_RDONLY | O_CLOEXEC);
	assert_true(fd2 >= 0);
	assert_int_equal(lseek(fd2, 0, SEEK_CUR), 0);
	close(fd2);
	close(fd);

	fd = __open_2(APP, O_RDONLY);
	assert_true(fd >= 0);
	close(fd);

	fd = open(EMPTY, O_RDONLY);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof buf, &n);
	assert_int_equal(n, 0);
	close(fd);
}

static void test_writes_refused(void **state)
{
	errno = 0;
	assert_int_equal(open(APP, O_WRONLY), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(open(APP, O_RDWR), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(open(APP, O_RDONLY | O_TRUNC), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(open(APP, O_WRONLY | O_CREAT | O_EXCL, 0600), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(open(APP, O_RDONLY | O_DIRECTORY), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(creat(APP, 0600), -1);
	assert_int_equal(errno, EROFS);
	assert_null(fopen(APP, "w"));
	assert_int_equal(errno, EROFS);
	assert_null(fopen(APP, "r+"));
	assert_int_equal(errno, EROFS);
	assert_null(fopen(APP, "a"));
	assert_int_equal(errno, EROFS);
}

static void test_fopen_reads(void **state)
{
	char line[128];
	FILE *f = fopen(APP, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	assert_string_equal(line, app_text);
	assert_null(fgets(line, sizeof line, f));
	fclose(f);
	f = fopen64(APP, "re");
	assert_non_null(f);
	fclose(f);
}

static void test_stat_and_access(void **state)
{
	struct stat st;
	struct stat64 st64;
	struct statx stx;

	memset(&st, 0xff, sizeof st);
	assert_int_equal(stat(APP, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0400);
	assert_int_equal(st.st_size, (off_t)strlen(app_text));
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_uid, getuid());
	assert_int_equal(lstat(APP, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0400);
	assert_int_equal(stat64(APP, &st64), 0);
	assert_int_equal(st64.st_size, (off_t)strlen(app_text));
	assert_int_equal(lstat64(EMPTY, &st64), 0);
	assert_int_equal(st64.st_size, 0);
	assert_int_equal(fstatat(AT_FDCWD, APP, &st, 0), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0400);
	assert_int_equal(statx(AT_FDCWD, APP, 0, STATX_BASIC_STATS, &stx), 0);
	assert_int_equal(stx.stx_mode, S_IFREG | 0400);
	assert_int_equal(stx.stx_size, strlen(app_text));

	assert_int_equal(access(APP, R_OK), 0);
	assert_int_equal(access(APP, F_OK), 0);
	assert_int_equal(access(APP, W_OK), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(access(APP, X_OK), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(faccessat(AT_FDCWD, APP, R_OK, 0), 0);
	assert_int_equal(faccessat(AT_FDCWD, APP, W_OK, 0), -1);
	assert_int_equal(errno, EROFS);
}

static void test_other_spellings(void **state)
{
	char cwd[PATH_MAX], buf[128];
	size_t n;
	assert_non_null(getcwd(cwd, sizeof cwd));

	int fd = open("/nonexistent-arca-test//etc/./sub/../app.ini", O_RDONLY);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof buf, &n);
	assert_memory_equal(buf, app_text, n);
	close(fd);

	/* Relative to the working directory, and to a directory descriptor. */
	assert_int_equal(chdir("/"), 0);
	fd = open("nonexistent-arca-test/etc/app.ini", O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(access("./nonexistent-arca-test/etc/../etc/app.ini", R_OK), 0);
	int dir = open("/", O_RDONLY | O_DIRECTORY);
	assert_true(dir >= 0);
	fd = openat(dir, "nonexistent-arca-test/etc/app.ini", O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	fd = __openat_2(dir, "nonexistent-arca-test/etc/app.ini", O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	struct stat st;
	assert_int_equal(fstatat(dir, "nonexistent-arca-test/etc/empty", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_size, 0);
	close(dir);
	assert_int_equal(chdir(cwd), 0);

	/* Near misses are not injected. */
	errno = 0;
	assert_int_equal(open(DIR_ "/app.ini.bak", O_RDONLY), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(open(DIR_ "/APP.INI", O_RDONLY), -1);
	assert_int_equal(stat(DIR_, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_other_paths_untouched(void **state)
{
	char tmpl[] = "/tmp/arca-shield-files-XXXXXX";
	struct stat st;
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);

	fd = open(tmpl, O_RDWR | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "d", 1), 1);
	close(fd);
	assert_int_equal(stat(tmpl, &st), 0);
	assert_int_equal(st.st_size, 4);
	FILE *f = fopen(tmpl, "a");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(access(tmpl, W_OK), 0);
	fd = open(tmpl, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(unlink(tmpl), 0);
	/* errno of a failing call is libc's, not disturbed by the lookup. */
	assert_int_equal(stat(tmpl, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_normalize(void **state)
{
	char out[PATH_MAX];
	assert_int_equal(shield_path_normalize(AT_FDCWD, "/a/b/../c/./d//", out, sizeof out), 0);
	assert_string_equal(out, "/a/c/d");
	assert_int_equal(shield_path_normalize(AT_FDCWD, "/../..", out, sizeof out), 0);
	assert_string_equal(out, "/");
	assert_int_equal(shield_path_normalize(AT_FDCWD, "", out, sizeof out), ARCA_EINVAL);
	assert_int_equal(shield_path_normalize(AT_FDCWD, "/abcdef", out, 4), ARCA_ETOOBIG);
}

static void test_duplicate_refused(void **state)
{
	static char p0[] = "/x/a", p1[] = "/x/./a";
	static uint8_t d[] = "1";
	struct arca_file_entry files[2] = {{.path = p0, .data = d, .len = 1}, {.path = p1, .data = d, .len = 1}};
	struct arca_config cfg = {.files = files, .nfiles = 2};
	struct shield_file *before = shield.files;
	size_t nbefore = shield.nfiles;
	refuse_msg[0] = 0;
	if (setjmp(refuse_jmp) == 0) {
		shield_files_install(&cfg);
		fail_msg("a configuration naming one file twice was accepted");
	}
	assert_non_null(strstr(refuse_msg, "twice"));
	assert_ptr_equal(shield.files, before);
	assert_int_equal(shield.nfiles, nbefore);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_open_serves_memory),
		cmocka_unit_test(test_writes_refused),
		cmocka_unit_test(test_fopen_reads),
		cmocka_unit_test(test_stat_and_access),
		cmocka_unit_test(test_other_spellings),
		cmocka_unit_test(test_other_paths_untouched),
		cmocka_unit_test(test_duplicate_refused),
	};
	return cmocka_run_group_tests(tests, install, NULL);
}
