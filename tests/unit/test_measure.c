/* test_measure.c: the measurement of a running process (measure.h): that it
 * is stable, that it follows file contents, and that every kind of code it
 * cannot vouch for is refused. Child processes stand in for the programs a
 * LAS would measure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/measure.h"

/* A program that reports on stdout once main runs (so every library is
 * mapped) and then waits. The tag lets a copy be patched by one byte. */
static const char helper_src[] =
	"#include <unistd.h>\n"
	"const char arca_tag[] = \"arca-measure-helper-A\";\n"
	"int main(void) {\n"
	"  if (write(1, arca_tag, 1) != 1) return 1;\n"
	"  for (;;) pause();\n"
	"}\n";

static char tmpdir[PATH_MAX];

static void path_in_tmp(char *out, size_t cap, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", tmpdir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static int setup_tmp(void **state)
{
	const char *base = getenv("TMPDIR");
	int n = snprintf(tmpdir, sizeof tmpdir, "%s/arca-measure-XXXXXX", base && *base ? base : "/tmp");
	if (n < 0 || (size_t)n >= sizeof tmpdir || mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int teardown_tmp(void **state)
{
	char cmd[PATH_MAX + 16];
	int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (n > 0 && (size_t)n < sizeof cmd && system(cmd) != 0)
		return -1;
	return 0;
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static uint8_t *read_whole(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *p = malloc((size_t)st.st_size);
	assert_non_null(p);
	assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return p;
}

/* Builds the helper at tmpdir/NAME; 0 when no C compiler is available. */
static int build_helper(const char *name)
{
	char src[PATH_MAX], out[PATH_MAX], cmd[3 * PATH_MAX];
	path_in_tmp(src, sizeof src, "helper.c");
	path_in_tmp(out, sizeof out, name);
	write_file(src, helper_src, sizeof helper_src - 1, 0644);
	int n = snprintf(cmd, sizeof cmd, "cc -O0 -o '%s' '%s' 2>/dev/null", out, src);
	assert_true(n > 0 && (size_t)n < sizeof cmd);
	return system(cmd) == 0;
}

/* Writes a copy of `from` to `to` with the helper's tag letter changed. */
static void write_patched_copy(const char *from, const char *to, char letter)
{
	size_t n;
	uint8_t *p = read_whole(from, &n);
	static const char needle[] = "arca-measure-helper-";
	size_t nl = sizeof needle - 1;
	int patched = 0;
	for (size_t i = 0; i + nl < n; i++) {
		if (memcmp(p + i, needle, nl) == 0) {
			p[i + nl] = (uint8_t)letter;
			patched = 1;
			break;
		}
	}
	assert_true(patched);
	write_file(to, p, n, 0755);
	free(p);
}

/* Starts path with stdout on a pipe and waits until its main has run. */
static pid_t start_program(const char *path)
{
	int p[2];
	char c;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	ssize_t r = read(p[0], &c, 1);
	close(p[0]);
	if (r != 1) {
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* Runs fn in a child that reports readiness and then waits to be measured. */
static pid_t start_child(int (*fn)(void *), void *arg)
{
	int p[2];
	char c = 0;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (fn(arg) != 0)
			_exit(1);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	ssize_t r = read(p[0], &c, 1);
	close(p[0]);
	if (r != 1) {
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static const struct arca_measure_obj *find_obj(const struct arca_measurement *m, const char *path)
{
	for (size_t i = 0; i < m->nobjs; i++)
		if (strcmp(m->objs[i].path, path) == 0)
			return &m->objs[i];
	return NULL;
}

static void test_self_is_stable(void **state)
{
	struct arca_measurement a, b;
	struct arca_errbuf e = {{0}};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	assert_true(n > 0);
	exe[n] = 0;

	assert_int_equal(arca_measure_pid(getpid(), NULL, &a, &e), 0);
	struct arca_hash_cache *c = arca_hash_cache_new(64);
	assert_non_null(c);
	assert_int_equal(arca_measure_pid(getpid(), c, &b, &e), 0);
	assert_memory_equal(a.digest, b.digest, 32);
	assert_int_equal(a.nobjs, b.nobjs);
	/* exe, loader, libc at least; sorted; never the vdso. */
	assert_true(a.nobjs >= 3);
	assert_non_null(find_obj(&a, exe));
	for (size_t i = 0; i < a.nobjs; i++) {
		assert_true(a.objs[i].path[0] == '/');
		if (i > 0)
			assert_true(strcmp(a.objs[i - 1].path, a.objs[i].path) < 0);
	}
	/* The object hash is the file's SHA-256. */
	const struct arca_measure_obj *o = find_obj(&a, exe);
	int fd = open(exe, O_RDONLY | O_CLOEXEC);
	uint8_t want[32];
	assert_true(fd >= 0);
	assert_int_equal(arca_sha256_fd(fd, want), 0);
	close(fd);
	assert_memory_equal(o->sha256, want, 32);
	/* And the digest is recomputable from the list. */
	uint8_t d[32];
	memcpy(d, a.digest, 32);
	assert_int_equal(arca_measurement_digest(&a), 0);
	assert_memory_equal(d, a.digest, 32);

	/* A third run served from the cache still agrees. */
	struct arca_measurement c3;
	assert_int_equal(arca_measure_pid(getpid(), c, &c3, &e), 0);
	assert_memory_equal(a.digest, c3.digest, 32);
	arca_measurement_free(&c3);
	arca_hash_cache_free(c);
	arca_measurement_free(&a);
	arca_measurement_free(&b);
}

static void test_digest_known_answer(void **state)
{
	struct arca_measure_obj objs[3];
	struct arca_measurement m = {.objs = objs, .nobjs = 3};
	char p0[] = "/usr/lib/libz.so.1", p1[] = "/bin/prog", p2[] = "/lib64/ld-linux-x86-64.so.2";
	char hex[ARCA_DIGEST_STR_LEN];

	objs[0].path = p0;
	memset(objs[0].sha256, 0x11, 32);
	objs[1].path = p1;
	memset(objs[1].sha256, 0x22, 32);
	objs[2].path = p2;
	memset(objs[2].sha256, 0x33, 32);
	assert_int_equal(arca_measurement_digest(&m), 0);
	/* SHA-256 over path || NUL || sha256 of each, sorted by path bytes
	 * (computed independently with Python's hashlib). */
	arca_digest_format(m.digest, hex);
	assert_string_equal(hex, "sha256:a9d247cc6de938900362c82455815f120bf70be42b08e35e1066f3e7f3d5efdf");
	assert_string_equal(objs[0].path, "/bin/prog");
	assert_string_equal(objs[1].path, "/lib64/ld-linux-x86-64.so.2");
	assert_string_equal(objs[2].path, "/usr/lib/libz.so.1");

	/* The empty list is SHA-256 of nothing. */
	struct arca_measurement empty = {0};
	assert_int_equal(arca_measurement_digest(&empty), 0);
	arca_digest_format(empty.digest, hex);
	assert_string_equal(hex, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* One name twice is ambiguous and refused. */
	objs[2].path = p1;
	assert_int_equal(arca_measurement_digest(&m), ARCA_EINVAL);
}

static int map_anon_exec(void *arg)
{
	int prot = *(int *)arg;
	void *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -1 : 0;
}

static void expect_refused(pid_t pid, const char *why)
{
	struct arca_measurement m;
	struct arca_errbuf e = {{0}};
	int rc = arca_measure_pid(pid, NULL, &m, &e);
	stop(pid);
	assert_int_equal(rc, ARCA_EDENIED);
	if (strstr(e.msg, why) == NULL)
		fail_msg("refusal \"%s\" does not say \"%s\"", e.msg, why);
	assert_null(m.objs);
}

static void test_anonymous_exec_refused(void **state)
{
	int prot = PROT_READ | PROT_EXEC;
	pid_t pid = start_child(map_anon_exec, &prot);
	assert_true(pid > 0);
	expect_refused(pid, "anonymous executable memory");
}

static void test_writable_exec_refused(void **state)
{
	int prot = PROT_READ | PROT_WRITE | PROT_EXEC;
	pid_t pid = start_child(map_anon_exec, &prot);
	if (pid < 0)
		skip(); /* a hardened kernel may forbid W+X outright */
	expect_refused(pid, "writable and executable");
}

static void test_content_changes_digest(void **state)
{
	char prog[PATH_MAX], next[PATH_MAX];
	struct arca_measurement a, b;
	struct arca_errbuf e = {{0}};

	if (!build_helper("prog"))
		skip();
	path_in_tmp(prog, sizeof prog, "prog");
	path_in_tmp(next, sizeof next, "prog.next");

	pid_t pid = start_program(prog);
	if (pid < 0)
		skip(); /* tmp mounted noexec */
	int rc = arca_measure_pid(pid, NULL, &a, &e);
	stop(pid);
	assert_int_equal(rc, 0);

	/* Same path, one byte different. */
	write_patched_copy(prog, next, 'B');
	assert_int_equal(rename(next, prog), 0);
	pid = start_program(prog);
	assert_true(pid > 0);
	rc = arca_measure_pid(pid, NULL, &b, &e);
	stop(pid);
	assert_int_equal(rc, 0);

	assert_memory_not_equal(a.digest, b.digest, 32);
	assert_int_equal(a.nobjs, b.nobjs);
	for (size_t i = 0; i < a.nobjs; i++) {
		assert_string_equal(a.objs[i].path, b.objs[i].path);
		if (strcmp(a.objs[i].path, prog) == 0)
			assert_memory_not_equal(a.objs[i].sha256, b.objs[i].sha256, 32);
		else
			assert_memory_equal(a.objs[i].sha256, b.objs[i].sha256, 32);
	}
	arca_measurement_free(&a);
	arca_measurement_free(&b);
}

static void test_deleted_refused(void **state)
{
	char prog[PATH_MAX];
	if (!build_helper("gone"))
		skip();
	path_in_tmp(prog, sizeof prog, "gone");
	pid_t pid = start_program(prog);
	if (pid < 0)
		skip();
	assert_int_equal(unlink(prog), 0);
	expect_refused(pid, "deleted or replaced");
}

/* A file bind-mounted over the mapped one keeps the name in the maps but
 * is another file: the device/inode check must catch it. Needs a private
 * mount namespace, so root; the whole check runs in a child. */
static void test_swapped_file_refused(void **state)
{
	char prog[PATH_MAX], other[PATH_MAX];
	if (!build_helper("swapped"))
		skip();
	path_in_tmp(prog, sizeof prog, "swapped");
	path_in_tmp(other, sizeof other, "other");
	write_patched_copy(prog, other, 'C');

	pid_t tester = fork();
	assert_true(tester >= 0);
	if (tester == 0) {
		if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
			_exit(77);
		int p[2];
		char c;
		if (pipe(p) != 0)
			_exit(1);
		pid_t pid = fork();
		if (pid == 0) {
			dup2(p[1], 1);
			execl(prog, prog, (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		if (pid < 0 || read(p[0], &c, 1) != 1)
			_exit(77);
		if (mount(other, prog, NULL, MS_BIND, NULL) != 0) {
			kill(pid, SIGKILL);
			_exit(77);
		}
		struct arca_measurement m;
		struct arca_errbuf e = {{0}};
		int rc = arca_measure_pid(pid, NULL, &m, &e);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (rc == ARCA_EDENIED && strstr(e.msg, "is not the file") != NULL)
			_exit(0);
		fprintf(stderr, "swapped file: rc %d: %s\n", rc, e.msg);
		_exit(1);
	}
	int status;
	assert_int_equal(waitpid(tester, &status, 0), tester);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

struct blob_arg {
	const char *path;
};

static int map_blob_exec(void *arg)
{
	const struct blob_arg *b = arg;
	int fd = open(b->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? -1 : 0;
}

/* The cache must never answer for a file whose content changed in place. */
static void test_cache_follows_changes(void **state)
{
	char blob[PATH_MAX];
	uint8_t data[4096], want[32];
	struct arca_measurement m;
	struct arca_errbuf e = {{0}};

	path_in_tmp(blob, sizeof blob, "blob");
	memset(data, 0xc3, sizeof data); /* ret, ret, … */
	write_file(blob, data, sizeof data, 0644);
	struct blob_arg arg = {.path = blob};
	pid_t pid = start_child(map_blob_exec, &arg);
	if (pid < 0)
		skip();

	struct arca_hash_cache *c = arca_hash_cache_new(8);
	assert_non_null(c);
	assert_int_equal(arca_measure_pid(pid, c, &m, &e), 0);
	const struct arca_measure_obj *o = find_obj(&m, blob);
	assert_non_null(o);
	assert_int_equal(arca_sha256(data, sizeof data, want), 0);
	assert_memory_equal(o->sha256, want, 32);
	arca_measurement_free(&m);

	data[100] = 0x90;
	int fd = open(blob, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, sizeof data, 0), (ssize_t)sizeof data);
	close(fd);
	assert_int_equal(arca_measure_pid(pid, c, &m, &e), 0);
	stop(pid);
	o = find_obj(&m, blob);
	assert_non_null(o);
	assert_int_equal(arca_sha256(data, sizeof data, want), 0);
	assert_memory_equal(o->sha256, want, 32);
	arca_measurement_free(&m);
	arca_hash_cache_free(c);
}

static void test_no_such_process(void **state)
{
	struct arca_measurement m;
	struct arca_errbuf e = {{0}};
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	assert_true(arca_measure_pid(pid, NULL, &m, &e) < 0);
	assert_true(e.msg[0] != 0);
	assert_null(arca_hash_cache_new(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_is_stable),
		cmocka_unit_test(test_digest_known_answer),
		cmocka_unit_test(test_anonymous_exec_refused),
		cmocka_unit_test(test_writable_exec_refused),
		cmocka_unit_test(test_content_changes_digest),
		cmocka_unit_test(test_deleted_refused),
		cmocka_unit_test(test_swapped_file_refused),
		cmocka_unit_test(test_cache_follows_changes),
		cmocka_unit_test(test_no_such_process),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
