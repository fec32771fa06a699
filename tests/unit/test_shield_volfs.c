/* test_shield_volfs.c: files in protected volumes as a program sees them
 * through libc, with the shield's interposers linked in (files.c and
 * volfs*.c but volfs_mount.c, which talks to CAS). Volumes are made with
 * the library and mounted with shield_volfs_add; every check goes through
 * the ordinary calls a program makes (open, read, stat, fopen, opendir,
 * fcntl, dup2, fork, …), and what lands on disk is read with the real
 * functions, around the interposers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "shield.h"
#include "arca/volume.h"

/* start.c is not linked: a refusal would land here. */
void shield_refuse(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

static char root[PATH_MAX];	/* the test's directory */
static char data[PATH_MAX + 16]; /* a writable volume, mounted */
static char code[PATH_MAX + 16]; /* a read-only volume, mounted */
static char plain[PATH_MAX + 16]; /* an ordinary directory */
static struct arca_vol *vdata, *vcode;
static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const char marker[] = "plaintext-marker-7d1c0a";

static void log_to_stderr(const char *line, void *arg)
{
	shield_volfs_log("%s", line);
}

static char *P(const char *dir, const char *name)
{
	static char buf[4][PATH_MAX * 2];
	static int k;
	char *b = buf[k++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", dir, name);
	return b;
}

static void mount_vol(const char *dir, const char *name, unsigned flags, struct arca_vol **out)
{
	struct arca_errbuf e = {{0}};
	uint8_t tag[32];
	struct arca_vol *v;
	if (flags & ARCA_VOL_RDONLY) {
		/* A code volume: made and filled first, then opened read-only. */
		struct arca_vfile *f;
		assert_int_equal(arca_vol_create(dir, key, ARCA_VOL_ENCRYPTED, tag, &e), 0);
		shield_volfs_enter();
		assert_int_equal(arca_vol_open(dir, key, tag, 0, &v, &e), 0);
		assert_int_equal(arca_vol_mkdir(v, "lib", 0755), 0);
		assert_int_equal(arca_vfile_open(v, "lib/app.py", O_WRONLY | O_CREAT, 0644, &f), 0);
		assert_int_equal(arca_vfile_pwrite(f, "print('hi')\n", 12, 0), 12);
		arca_vfile_close(f);
		assert_int_equal(arca_vol_commit(v, &e), 0);
		arca_vol_tag(v, tag);
		arca_vol_close(v);
		assert_int_equal(arca_vol_open(dir, key, tag, ARCA_VOL_RDONLY, &v, &e), 0);
		shield_volfs_leave();
	} else {
		assert_int_equal(arca_vol_create(dir, key, ARCA_VOL_ENCRYPTED, tag, &e), 0);
		shield_volfs_enter();
		assert_int_equal(arca_vol_open(dir, key, tag, 0, &v, &e), 0);
		shield_volfs_leave();
	}
	arca_vol_set_log(v, log_to_stderr, NULL);
	assert_non_null(shield_volfs_add(dir, name, v, &e));
	*out = v;
}

static int setup(void **state)
{
	snprintf(root, sizeof root, "%s/arca-volfs-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(data, sizeof data, "%s/data", root);
	snprintf(code, sizeof code, "%s/code", root);
	snprintf(plain, sizeof plain, "%s/plain", root);
	shield_resolve_real();
	umask(022);
	mount_vol(data, "data", 0, &vdata);
	mount_vol(code, "code", ARCA_VOL_RDONLY, &vcode);
	if (VREAL(mkdir)(plain, 0700) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* What the disk holds under dir (real calls): 1 when marker appears in
 * any file, 0 when not. */
static int disk_has(const char *dir, const char *what)
{
	char cmd[PATH_MAX + 128];
	snprintf(cmd, sizeof cmd, "grep -rqF '%s' '%s'", what, dir);
	shield_volfs_enter();
	int rc = system(cmd);
	shield_volfs_leave();
	return WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

static void test_roundtrip(void **state)
{
	char buf[64];
	struct stat st, st2;
	int fd = open(P(data, "a.txt"), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_true(shield_volfs_owns_fd(fd));
	assert_int_equal(write(fd, marker, strlen(marker)), strlen(marker));
	assert_int_equal(lseek(fd, 0, SEEK_CUR), strlen(marker));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	memset(buf, 0, sizeof buf);
	assert_int_equal(read(fd, buf, sizeof buf), strlen(marker));
	assert_string_equal(buf, marker);
	assert_int_equal(read(fd, buf, sizeof buf), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(st.st_size, strlen(marker));
	assert_int_equal(stat(P(data, "a.txt"), &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_dev, st2.st_dev);
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(close(fd), 0);
	assert_false(shield_volfs_owns_fd(fd));

	/* The name is nowhere on disk and neither is the text. */
	shield_volfs_enter();
	assert_int_equal(stat(P(data, "a.txt"), &st), -1);
	assert_int_equal(errno, ENOENT);
	shield_volfs_leave();
	assert_false(disk_has(data, marker));
	assert_false(disk_has(data, "a.txt"));
	/* …while the plain directory would show it (the check can fail). */
	FILE *f = fopen(P(plain, "m"), "w");
	fputs(marker, f);
	fclose(f);
	assert_true(disk_has(plain, marker));
}

static void test_positions(void **state)
{
	char buf[64];
	struct stat st;
	int fd = open(P(data, "pos"), O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "0123456789", 10, 0), 10);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0); /* pwrite leaves the position */
	assert_int_equal(pread(fd, buf, 4, 3), 4);
	assert_memory_equal(buf, "3456", 4);
	/* A hole past the end reads as zeros. */
	assert_int_equal(pwrite(fd, "X", 1, 10000), 1);
	assert_int_equal(pread(fd, buf, 3, 4999), 3);
	assert_memory_equal(buf, "\0\0\0", 3);
	assert_int_equal(lseek(fd, 0, SEEK_END), 10001);
	assert_int_equal(lseek(fd, 5, SEEK_DATA), 5);
	assert_int_equal(lseek(fd, 5, SEEK_HOLE), 10001);
	assert_int_equal(lseek(fd, 20000, SEEK_DATA), -1);
	assert_int_equal(errno, ENXIO);
	assert_int_equal(lseek(fd, -1, SEEK_SET), -1);
	assert_int_equal(errno, EINVAL);
	/* readv/writev at the position. */
	struct iovec w[2] = {{"ab", 2}, {"cd", 2}}, r[2] = {{buf, 1}, {buf + 1, 3}};
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(writev(fd, w, 2), 4);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 4);
	assert_int_equal(preadv(fd, r, 2, 0), 4);
	assert_memory_equal(buf, "abcd", 4);
	/* ftruncate, fallocate. */
	assert_int_equal(ftruncate(fd, 3), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(fallocate(fd, 0, 0, 8192), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 8192);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(posix_fallocate(fd, 0, 9000), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 9000);
	close(fd);

	/* O_APPEND: every write at the end. */
	fd = open(P(data, "log"), O_CREAT | O_WRONLY | O_APPEND, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "one\n", 4), 4);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(write(fd, "two\n", 4), 4);
	assert_int_equal(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
	assert_int_equal(read(fd, buf, 1), -1); /* write-only */
	assert_int_equal(errno, EBADF);
	close(fd);
	fd = open(P(data, "log"), O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof buf), 8);
	assert_memory_equal(buf, "one\ntwo\n", 8);
	assert_int_equal(write(fd, "x", 1), -1); /* read-only */
	assert_int_equal(errno, EBADF);
	close(fd);
}

static void test_dup_fcntl(void **state)
{
	char buf[8];
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(P(data, "dup"), O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abcdef", 6), 6);
	int d = dup(fd);
	assert_true(d >= 0 && d != fd);
	assert_int_equal(lseek(d, 1, SEEK_SET), 1); /* one description, one position */
	assert_int_equal(read(fd, buf, 2), 2);
	assert_memory_equal(buf, "bc", 2);
	assert_int_equal(fcntl(d, F_GETFD), 0);
	assert_int_equal(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
	assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
	assert_int_equal(VREAL(fcntl)(d, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC); /* the kernel's always */
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	assert_true(hi >= 100);
	assert_int_equal(fcntl(hi, F_GETFD), FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_SETLK, &fl), 0);
	assert_int_equal(fcntl(fd, F_GETLK, &fl), 0);
	assert_int_equal(fl.l_type, F_UNLCK);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	/* dup2 over an ordinary descriptor, and back over a volume one. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	int rd = dup(p[0]);
	assert_int_equal(dup2(fd, p[0]), p[0]);
	assert_true(shield_volfs_owns_fd(p[0]));
	assert_int_equal(pread(p[0], buf, 3, 3), 3);
	assert_memory_equal(buf, "def", 3);
	assert_int_equal(dup2(p[1], p[0]), p[0]);
	assert_false(shield_volfs_owns_fd(p[0]));
	assert_int_equal(write(p[0], "z", 1), 1); /* the pipe's write end now */
	assert_int_equal(read(rd, buf, 1), 1);
	assert_int_equal(buf[0], 'z');
	close(p[0]);
	close(p[1]);
	close(rd);
	assert_int_equal(dup3(fd, d, O_CLOEXEC), d);
	assert_int_equal(fcntl(d, F_GETFD), FD_CLOEXEC);
	close(fd);
	assert_int_equal(pread(d, buf, 1, 0), 1); /* still open through d */
	close(d);
	close(hi);
	/* Copying shortcuts refuse, so that callers fall back to read/write. */
	fd = open(P(data, "dup"), O_RDONLY);
	int out = open(P(plain, "copy"), O_CREAT | O_WRONLY, 0600);
	assert_int_equal(copy_file_range(fd, NULL, out, NULL, 6, 0), -1);
	assert_int_equal(errno, EXDEV);
	assert_int_equal(sendfile(out, fd, NULL, 6), -1);
	assert_int_equal(errno, EINVAL);
	close(out);
	close(fd);
}

static void test_namespace(void **state)
{
	struct stat st;
	char real[PATH_MAX];
	assert_int_equal(mkdir(P(data, "dir"), 0755), 0);
	assert_int_equal(mkdir(P(data, "dir"), 0755), -1);
	assert_int_equal(errno, EEXIST);
	int fd = open(P(data, "dir/x"), O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(open(P(data, "dir/x/y"), O_RDONLY), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(open(P(data, "dir"), O_WRONLY), -1);
	assert_int_equal(errno, EISDIR);
	assert_int_equal(open(P(data, "dir/x"), O_RDONLY | O_DIRECTORY), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(open(P(data, "dir/x"), O_CREAT | O_EXCL | O_WRONLY, 0600), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(stat(P(data, "dir"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(stat(data, &st), 0); /* the root */
	assert_true(S_ISDIR(st.st_mode));
	/* ".", ".." and "//" fold before the volume is asked. */
	assert_int_equal(stat(P(data, "dir/.././/dir/x"), &st), 0);
	assert_int_equal(st.st_size, 1);
	assert_int_equal(access(P(data, "dir/x"), R_OK | W_OK), 0);
	assert_int_equal(access(P(data, "nope"), F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(rename(P(data, "dir/x"), P(data, "dir/y")), 0);
	assert_int_equal(stat(P(data, "dir/x"), &st), -1);
	assert_int_equal(stat(P(data, "dir/y"), &st), 0);
	assert_int_equal(rename(P(data, "dir/y"), P(plain, "y")), -1);
	assert_int_equal(errno, EXDEV);
	assert_int_equal(rmdir(P(data, "dir")), -1);
	assert_int_equal(errno, ENOTEMPTY);
	assert_int_equal(link(P(data, "dir/y"), P(data, "dir/z")), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(symlink("y", P(data, "dir/z")), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(readlink(P(data, "dir/y"), real, sizeof real), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(realpath(P(data, "dir/../dir/y"), real));
	assert_string_equal(real, P(data, "dir/y"));
	assert_int_equal(chmod(P(data, "dir/y"), 0400), 0);
	assert_int_equal(stat(P(data, "dir/y"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0400);
	struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000000, 5}};
	assert_int_equal(utimensat(AT_FDCWD, P(data, "dir/y"), ts, 0), 0);
	assert_int_equal(stat(P(data, "dir/y"), &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(truncate(P(data, "dir/y"), 5000), 0);
	assert_int_equal(stat(P(data, "dir/y"), &st), 0);
	assert_int_equal(st.st_size, 5000);

	/* Relative paths: against a volume directory descriptor, and the
	 * working directory at the volume's root. */
	int dfd = open(P(data, "dir"), O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(fstatat(dfd, "y", &st, 0), 0);
	assert_int_equal(st.st_size, 5000);
	fd = openat(dfd, "../top", O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fstatat(dfd, "", &st, AT_EMPTY_PATH), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(unlinkat(dfd, "y", 0), 0);
	assert_int_equal(fchdir(dfd), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	close(dfd);
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(data), 0);
	assert_int_equal(stat("top", &st), 0);
	assert_int_equal(chdir("dir"), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rmdir(P(data, "dir")), 0);
	assert_int_equal(rmdir(data), -1);
	assert_int_equal(errno, EBUSY);
}

static int names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_directories(void **state)
{
	char *names[16];
	size_t n = 0;
	assert_int_equal(mkdir(P(data, "ls"), 0700), 0);
	assert_int_equal(mkdir(P(data, "ls/sub"), 0700), 0);
	close(open(P(data, "ls/b"), O_CREAT | O_WRONLY, 0600));
	close(open(P(data, "ls/a"), O_CREAT | O_WRONLY, 0600));
	DIR *d = opendir(P(data, "ls"));
	assert_non_null(d);
	assert_true(shield_volfs_owns_fd(dirfd(d)));
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 16) {
		names[n++] = strdup(e->d_name);
		if (strcmp(e->d_name, "sub") == 0)
			assert_int_equal(e->d_type, DT_DIR);
		if (strcmp(e->d_name, "a") == 0)
			assert_int_equal(e->d_type, DT_REG);
	}
	assert_int_equal(n, 5);
	qsort(names, n, sizeof *names, names_cmp);
	assert_string_equal(names[0], ".");
	assert_string_equal(names[1], "..");
	assert_string_equal(names[2], "a");
	assert_string_equal(names[3], "b");
	assert_string_equal(names[4], "sub");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	long at = telldir(d);
	rewinddir(d);
	assert_non_null(readdir(d));
	seekdir(d, at);
	assert_null(readdir(d));
	assert_int_equal(closedir(d), 0);

	struct dirent **list;
	int k = scandir(P(data, "ls"), &list, NULL, alphasort);
	assert_int_equal(k, 5);
	assert_string_equal(list[2]->d_name, "a");
	assert_string_equal(list[4]->d_name, "sub");
	for (int i = 0; i < k; i++)
		free(list[i]);
	free(list);
	/* fdopendir over a descriptor; a plain directory still works. */
	int fd = open(P(data, "ls/sub"), O_RDONLY | O_DIRECTORY);
	d = fdopendir(fd);
	assert_non_null(d);
	assert_int_equal(dirfd(d), fd);
	assert_non_null(readdir(d));
	closedir(d);
	assert_false(shield_volfs_owns_fd(fd));
	d = opendir(plain);
	assert_non_null(d);
	assert_false(shield_volfs_owns_fd(dirfd(d)));
	closedir(d);
	assert_null(opendir(P(data, "ls/a")));
	assert_int_equal(errno, ENOTDIR);
}

static void test_stdio(void **state)
{
	char line[64];
	FILE *f = fopen(P(data, "s.txt"), "w");
	assert_non_null(f);
	int fd = fileno(f);
	assert_true(shield_volfs_owns_fd(fd));
	fprintf(f, "%s %d\n", "line", 1);
	fputs("line 2\n", f);
	assert_int_equal(fclose(f), 0);
	assert_false(shield_volfs_owns_fd(fd));
	f = fopen(P(data, "s.txt"), "a+");
	fputs("line 3\n", f);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	assert_non_null(fgets(line, sizeof line, f));
	assert_string_equal(line, "line 1\n");
	fclose(f);
	f = fopen(P(data, "s.txt"), "r");
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(fgets(line, sizeof line, f));
	assert_string_equal(line, "line 3\n");
	assert_null(fgets(line, sizeof line, f));
	assert_true(feof(f));
	assert_int_equal(ftell(f), 21);
	/* freopen of our own stream onto another volume file. */
	assert_ptr_equal(freopen(P(data, "t.txt"), "w", f), f);
	fputs("tee", f);
	fclose(f);
	fd = open(P(data, "t.txt"), O_RDONLY);
	assert_int_equal(read(fd, line, sizeof line), 3);
	f = fdopen(fd, "r");
	assert_non_null(f);
	assert_int_equal(fileno(f), fd);
	rewind(f);
	assert_int_equal(fgetc(f), 't');
	fclose(f);
	assert_false(shield_volfs_owns_fd(fd));
	assert_null(fopen(P(data, "missing"), "r"));
	assert_int_equal(errno, ENOENT);
	assert_null(fopen(P(data, "t.txt"), "wx"));
	assert_int_equal(errno, EEXIST);
}

static void test_readonly_volume(void **state)
{
	char buf[32];
	int fd = open(P(code, "lib/app.py"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 12);
	assert_memory_equal(buf, "print('hi')\n", 12);
	assert_int_equal(fsync(fd), 0); /* nothing to commit */
	close(fd);
	assert_int_equal(open(P(code, "lib/app.py"), O_RDWR), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(open(P(code, "new"), O_CREAT | O_WRONLY, 0600), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(mkdir(P(code, "d"), 0700), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(unlink(P(code, "lib/app.py")), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(access(P(code, "lib/app.py"), W_OK), -1);
	assert_int_equal(errno, EROFS);
	assert_null(fopen(P(code, "lib/app.py"), "a"));
	assert_int_equal(errno, EROFS);
}

static void test_commit_and_tag(void **state)
{
	uint8_t t0[32], t1[32], t2[32];
	arca_vol_tag(vdata, t0);
	int fd = open(P(data, "c"), O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "1", 1), 1);
	assert_int_equal(fdatasync(fd), 0);
	arca_vol_tag(vdata, t1);
	assert_memory_not_equal(t0, t1, 32);
	assert_int_equal(fsync(fd), 0); /* nothing new: the same tag */
	arca_vol_tag(vdata, t2);
	assert_memory_equal(t1, t2, 32);
	close(fd);
	/* O_SYNC commits every write. */
	fd = open(P(data, "c"), O_WRONLY | O_SYNC);
	assert_int_equal(write(fd, "2", 1), 1);
	arca_vol_tag(vdata, t2);
	assert_memory_not_equal(t1, t2, 32);
	close(fd);
}

static void test_mmap(void **state)
{
	char big[3 * 4096];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 26);
	int fd = open(P(data, "map"), O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_int_equal(write(fd, big, sizeof big), sizeof big);
	char *p = shield_volfs_mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
	assert_true(p != MAP_FAILED);
	assert_memory_equal(p, big + 4096, 8192);
	munmap(p, 8192);
	/* Beyond the end: zeros. */
	p = shield_volfs_mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 8192);
	assert_true(p != MAP_FAILED);
	assert_memory_equal(p, big + 8192, 4096);
	assert_int_equal(p[4096], 0);
	munmap(p, 8192);
	assert_true(shield_volfs_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
	assert_int_equal(errno, EACCES);
	assert_true(shield_volfs_mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED);
	assert_int_equal(errno, ENODEV);
	assert_true(shield_volfs_mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED);
	assert_int_equal(errno, EINVAL);
	close(fd);
	fd = open(P(code, "lib/app.py"), O_RDONLY);
	p = shield_volfs_mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_memory_equal(p, "print('hi')\n", 12);
	munmap(p, 4096);
	close(fd);
}

static void test_fork_child_reads_only(void **state)
{
	int fd = open(P(data, "fork"), O_CREAT | O_RDWR, 0600);
	assert_int_equal(write(fd, "parent", 6), 6);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[8];
		int ok = pread(fd, buf, 6, 0) == 6 && memcmp(buf, "parent", 6) == 0;
		ok = ok && write(fd, "child", 5) == -1 && errno == EROFS;
		ok = ok && open(P(data, "fork2"), O_CREAT | O_WRONLY, 0600) == -1 && errno == EROFS;
		ok = ok && fsync(fd) == 0;
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(write(fd, "!", 1), 1); /* the parent still writes */
	close(fd);
}

/* A volume descriptor closed behind the shield's back (a raw system call)
 * must not make the next file with that number read from the volume. */
static void test_stale_descriptor(void **state)
{
	char buf[32];
	int fd = open(P(data, "stale"), O_CREAT | O_RDWR, 0600);
	assert_int_equal(write(fd, "volume", 6), 6);
	assert_int_equal(syscall(SYS_close, fd), 0);
	assert_true(shield_volfs_owns_fd(fd)); /* the table does not know yet */
	FILE *f = fopen(P(plain, "real"), "w");
	fputs("realfile", f);
	fclose(f);
	int fd2 = open(P(plain, "real"), O_RDONLY);
	assert_int_equal(fd2, fd);
	assert_false(shield_volfs_owns_fd(fd2));
	assert_int_equal(read(fd2, buf, sizeof buf), 8);
	assert_memory_equal(buf, "realfile", 8);
	close(fd2);
	/* close_range and closefrom forget what they close. */
	int a = open(P(data, "stale"), O_RDONLY), b = open(P(data, "stale"), O_RDONLY);
	assert_true(shield_volfs_owns_fd(a) && shield_volfs_owns_fd(b));
	assert_int_equal(close_range((unsigned)a, (unsigned)a, 0), 0);
	assert_false(shield_volfs_owns_fd(a));
	closefrom(b);
	assert_false(shield_volfs_owns_fd(b));
}

/* A block changed on disk: the read fails with EIO, names the file and
 * block on stderr, and never returns the changed data. */
static void test_tampered_block(void **state)
{
	struct arca_errbuf e = {{0}};
	char dir[PATH_MAX + 16], buf[4096], fid[64] = "";
	uint8_t tag[32];
	struct arca_vol *v;
	struct arca_vfile *f;
	snprintf(dir, sizeof dir, "%s/t", root);
	shield_volfs_enter();
	assert_int_equal(arca_vol_create(dir, key, ARCA_VOL_ENCRYPTED, tag, &e), 0);
	assert_int_equal(arca_vol_open(dir, key, tag, 0, &v, &e), 0);
	assert_int_equal(arca_vfile_open(v, "f", O_RDWR | O_CREAT, 0600, &f), 0);
	memset(buf, 'q', sizeof buf);
	for (int i = 0; i < 3; i++)
		assert_int_equal(arca_vfile_pwrite(f, buf, sizeof buf, (uint64_t)i * 4096), 4096);
	arca_vfile_close(f);
	assert_int_equal(arca_vol_commit(v, &e), 0);
	arca_vol_tag(v, tag);
	arca_vol_close(v);
	/* Flip one byte of block 1's record in both slots (one is current). */
	DIR *d = opendir(P(dir, "d"));
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strlen(de->d_name) == 34 && strcmp(de->d_name + 32, ".0") == 0)
			memcpy(fid, de->d_name, 33);
	closedir(d);
	assert_int_equal(strlen(fid), 33);
	for (int s = 0; s < 2; s++) {
		char rec[PATH_MAX * 2];
		snprintf(rec, sizeof rec, "%s/d/%s%d", dir, fid, s);
		int rfd = open(rec, O_RDWR);
		if (rfd < 0)
			continue;
		uint8_t c;
		assert_int_equal(pread(rfd, &c, 1, ARCA_VOL_RECORD + 100), 1);
		c ^= 0x10;
		assert_int_equal(pwrite(rfd, &c, 1, ARCA_VOL_RECORD + 100), 1);
		close(rfd);
	}
	assert_int_equal(arca_vol_open(dir, key, tag, 0, &v, &e), 0);
	shield_volfs_leave();
	arca_vol_set_log(v, log_to_stderr, NULL);
	assert_non_null(shield_volfs_add(dir, "t", v, &e));

	/* stderr to a file, to read the log line. */
	char errpath[PATH_MAX + 16];
	snprintf(errpath, sizeof errpath, "%s/stderr", root);
	int saved = dup(2), efd = open(errpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
	int fd = open(P(dir, "f"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 4096, 0), 4096); /* block 0 is intact */
	assert_int_equal(buf[0], 'q');
	memset(buf, 0, sizeof buf);
	dup2(efd, 2);
	ssize_t r1 = pread(fd, buf, 4096, 4096);
	int e1 = errno;
	lseek(fd, 4000, SEEK_SET); /* across blocks 0 and 1 */
	ssize_t r2 = read(fd, buf + 1, sizeof buf - 1);
	int e2 = errno;
	void *m = shield_volfs_mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	int e3 = errno;
	dup2(saved, 2);
	close(saved);
	close(fd);
	assert_int_equal(r1, -1);
	assert_int_equal(e1, EIO);
	assert_int_equal(buf[0], 0); /* nothing of the changed block */
	assert_int_equal(r2, -1);
	assert_int_equal(e2, EIO);
	assert_true(m == MAP_FAILED);
	assert_int_equal(e3, EIO);
	char log[2048] = "";
	assert_true(pread(efd, log, sizeof log - 1, 0) > 0);
	close(efd);
	assert_non_null(strstr(log, "arca: "));
	assert_non_null(strstr(log, ": f: block 1"));
	print_message("log line: %s", log);
}

/* chdir into a volume's root: the kernel's working directory is the
 * volume's directory (by descriptor), relative paths and getcwd name the
 * volume's path, and both hold when root renames the directory away and
 * puts an empty one at the path: a relative write still goes into the
 * volume, never to disk in plaintext. */
static void test_cwd_in_volume(void **state)
{
	char cwd[PATH_MAX], got[PATH_MAX], moved[PATH_MAX + 16], kernel[PATH_MAX + 16];
	struct stat st, vst;
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(data), 0);
	assert_non_null(getcwd(got, sizeof got));
	assert_string_equal(got, data);
	char *g = get_current_dir_name();
	assert_non_null(g);
	assert_string_equal(g, data);
	free(g);
	g = getcwd(NULL, 0);
	assert_non_null(g);
	assert_string_equal(g, data);
	free(g);
	assert_null(getcwd(got, strlen(data))); /* one byte short */
	assert_int_equal(errno, ERANGE);
	assert_int_equal(shield.real.stat(".", &st), 0); /* the kernel's is the volume's directory */
	assert_int_equal(shield.real.stat(data, &vst), 0);
	assert_true(st.st_ino == vst.st_ino && st.st_dev == vst.st_dev);

	/* Root moves the directory away and makes an empty one at the path. */
	snprintf(moved, sizeof moved, "%s.moved", data);
	assert_int_equal(VREAL(rename)(data, moved), 0);
	assert_int_equal(VREAL(mkdir)(data, 0755), 0);
	assert_non_null(VREAL(getcwd)(kernel, sizeof kernel));
	assert_string_equal(kernel, moved);
	assert_non_null(getcwd(got, sizeof got));
	assert_string_equal(got, data); /* the program's view does not move */
	int fd = open("late.txt", O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_true(shield_volfs_owns_fd(fd));
	assert_int_equal(write(fd, marker, strlen(marker)), strlen(marker));
	assert_int_equal(close(fd), 0);
	snprintf(kernel, sizeof kernel, "%s/late2.txt", got);
	FILE *f = fopen(kernel, "w"); /* a path built from getcwd */
	assert_non_null(f);
	fputs(marker, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(stat("late.txt", &st), 0);
	assert_int_equal(st.st_size, strlen(marker));
	assert_true(st.st_dev != vst.st_dev); /* a volume file's, not the disk's */
	assert_false(disk_has(moved, marker));
	assert_false(disk_has(data, marker));
	shield_volfs_enter();
	assert_int_equal(stat(P(data, "late.txt"), &st), -1); /* nothing at the path on disk */
	shield_volfs_leave();
	/* The directory moved away is still the volume's: writing into it
	 * through its new name is refused. */
	assert_int_equal(open(P(moved, "leak"), O_CREAT | O_WRONLY, 0600), -1);
	assert_int_equal(errno, EACCES);

	/* chdir elsewhere: the kernel's again. */
	assert_int_equal(chdir(cwd), 0);
	assert_non_null(getcwd(got, sizeof got));
	assert_string_equal(got, cwd);
	assert_int_equal(VREAL(rmdir)(data), 0);
	assert_int_equal(VREAL(rename)(moved, data), 0);
	fd = open(P(data, "late.txt"), O_RDONLY);
	assert_true(fd >= 0);
	memset(got, 0, sizeof got);
	assert_int_equal(read(fd, got, sizeof got), strlen(marker));
	assert_string_equal(got, marker);
	close(fd);
	/* fchdir of a volume root descriptor, then of another directory. */
	int dfd = open(data, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	int pfd = open(plain, O_RDONLY | O_DIRECTORY);
	assert_true(pfd >= 0);
	assert_int_equal(fchdir(dfd), 0);
	assert_non_null(getcwd(got, sizeof got));
	assert_string_equal(got, data);
	assert_int_equal(fchdir(pfd), 0);
	assert_non_null(getcwd(got, sizeof got));
	assert_string_equal(got, plain);
	close(dfd);
	close(pfd);
	assert_int_equal(chdir(cwd), 0);
}

/* What libc would write into a volume's directory or its d/ (here
 * through a host symbolic link that leads there) is refused; reading the
 * stored records that way still works, and so does writing elsewhere. */
static void test_backstop(void **state)
{
	char alias[PATH_MAX + 16], tmpl[PATH_MAX + 32];
	struct stat st;
	snprintf(alias, sizeof alias, "%s/alias", root);
	assert_int_equal(symlink(data, alias), 0);
	assert_int_equal(open(P(alias, "leak"), O_CREAT | O_WRONLY, 0600), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(openat(AT_FDCWD, P(alias, "leak"), O_CREAT | O_RDWR, 0600), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(open(P(alias, "d/leak"), O_CREAT | O_WRONLY, 0600), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(open(P(alias, "manifest"), O_WRONLY), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(creat(P(alias, "leak"), 0600), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(open(alias, O_TMPFILE | O_RDWR, 0600), -1);
	assert_int_equal(errno, EACCES);
	assert_null(fopen(P(alias, "leak"), "w"));
	assert_int_equal(errno, EACCES);
	assert_int_equal(mkdir(P(alias, "sub"), 0700), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(mkdirat(AT_FDCWD, P(alias, "sub"), 0700), -1);
	assert_int_equal(errno, EACCES);
	int out = open(P(plain, "moveme"), O_CREAT | O_WRONLY, 0600);
	assert_true(out >= 0);
	assert_int_equal(write(out, marker, strlen(marker)), strlen(marker));
	close(out);
	assert_int_equal(rename(P(plain, "moveme"), P(alias, "moved")), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(link(P(plain, "moveme"), P(alias, "linked")), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(symlink("x", P(alias, "sym")), -1);
	assert_int_equal(errno, EACCES);
	assert_int_equal(mkfifo(P(alias, "fifo"), 0600), -1);
	assert_int_equal(errno, EACCES);
	snprintf(tmpl, sizeof tmpl, "%s/tXXXXXX", alias);
	assert_int_equal(mkstemp(tmpl), -1);
	assert_int_equal(errno, EACCES);
	snprintf(tmpl, sizeof tmpl, "%s/tXXXXXX", alias);
	assert_null(mkdtemp(tmpl));
	assert_int_equal(errno, EACCES);
	/* A descriptor of the volume's directory that is not the shield's:
	 * a name relative to it is the volume's (by the directory's path). */
	shield_volfs_enter();
	int dfd = open(data, O_RDONLY | O_DIRECTORY);
	shield_volfs_leave();
	assert_true(dfd >= 0 && !shield_volfs_owns_fd(dfd));
	int fd = openat(dfd, "viafd", O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0 && shield_volfs_owns_fd(fd));
	close(fd);
	close(dfd);
	assert_int_equal(unlink(P(data, "viafd")), 0);
	assert_false(disk_has(data, marker));
	shield_volfs_enter();
	assert_int_equal(stat(P(data, "leak"), &st), -1);
	shield_volfs_leave();
	/* Reads pass (records only); other directories are untouched. */
	fd = open(P(alias, "arca-volume.json"), O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rename(P(plain, "moveme"), P(plain, "moved")), 0);
	fd = open(P(plain, "new/"), O_CREAT | O_WRONLY, 0600); /* as the kernel: a name with a '/' after it */
	assert_int_equal(fd, -1);
	assert_int_equal(errno, EISDIR);
	fd = open(P(plain, "new"), O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open(P(root, "nodir/x"), O_CREAT | O_WRONLY, 0600), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(unlink(alias), 0);
}

/* mkstemp and co. of a template in a volume make the file in the volume
 * (glibc's would be a plaintext file in the volume's directory). */
static void test_mkstemp(void **state)
{
	char tmpl[PATH_MAX + 32], buf[64];
	struct stat st;
	snprintf(tmpl, sizeof tmpl, "%s/sedXXXXXX", data);
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_true(shield_volfs_owns_fd(fd));
	assert_int_equal(strncmp(tmpl, data, strlen(data)), 0);
	assert_null(strstr(tmpl, "XXXXXX"));
	assert_int_equal(write(fd, marker, strlen(marker)), strlen(marker));
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* What sed copies next (an ACL made from the mode) is not kept, and
	 * does not reach the volume's directory. */
	struct stat before, after;
	char acl[64];
	static const char acl_mode[28] = {2, 0, 0, 0, 1, 0, 6, 0, -1, -1, -1, -1, 4, 0, 4, 0,
					  -1, -1, -1, -1, 32, 0, 4, 0, -1, -1, -1, -1};
	assert_int_equal(shield.real.stat(data, &before), 0);
	assert_int_equal(fgetxattr(fd, "system.posix_acl_access", acl, sizeof acl), -1);
	assert_int_equal(errno, ENODATA);
	assert_int_equal(fsetxattr(fd, "system.posix_acl_access", acl_mode, sizeof acl_mode, 0), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_int_equal(flistxattr(fd, acl, sizeof acl), 0);
	assert_int_equal(setxattr(data, "user.x", "1", 1, 0), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_int_equal(getxattr(tmpl, "user.x", acl, sizeof acl), -1);
	assert_int_equal(errno, ENODATA);
	assert_int_equal(shield.real.stat(data, &after), 0);
	assert_int_equal(before.st_mode, after.st_mode);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmpl, P(data, "edited")), 0);
	fd = open(P(data, "edited"), O_RDONLY);
	memset(buf, 0, sizeof buf);
	assert_int_equal(read(fd, buf, sizeof buf), strlen(marker));
	assert_string_equal(buf, marker);
	close(fd);
	snprintf(tmpl, sizeof tmpl, "%s/pXXXXXX.txt", data);
	fd = mkostemps(tmpl, 4, O_CLOEXEC | O_APPEND);
	assert_true(fd >= 0 && shield_volfs_owns_fd(fd));
	assert_int_equal(strcmp(tmpl + strlen(tmpl) - 4, ".txt"), 0);
	assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	assert_true((fcntl(fd, F_GETFL) & O_APPEND) != 0);
	close(fd);
	assert_int_equal(unlink(tmpl), 0);
	snprintf(tmpl, sizeof tmpl, "%s/dXXXXXX", data);
	assert_ptr_equal(mkdtemp(tmpl), tmpl);
	assert_int_equal(stat(tmpl, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(rmdir(tmpl), 0);
	snprintf(tmpl, sizeof tmpl, "%s/badXXXXX", data);
	assert_int_equal(mkstemp(tmpl), -1);
	assert_int_equal(errno, EINVAL);
	/* Relative to a volume working directory. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(data), 0);
	snprintf(tmpl, sizeof tmpl, "relXXXXXX");
	fd = mkstemp(tmpl);
	assert_true(fd >= 0 && shield_volfs_owns_fd(fd));
	close(fd);
	assert_int_equal(unlink(tmpl), 0);
	assert_int_equal(chdir(cwd), 0);
	/* Elsewhere, glibc's. */
	snprintf(tmpl, sizeof tmpl, "%s/plainXXXXXX", plain);
	fd = mkstemp(tmpl);
	assert_true(fd >= 0 && !shield_volfs_owns_fd(fd));
	close(fd);
	assert_int_equal(shield.real.stat(tmpl, &st), 0);
	assert_false(disk_has(data, marker));
	/* No stray temporary file beside the records. */
	shield_volfs_enter();
	DIR *d = opendir(data);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		assert_true(strncmp(de->d_name, "sed", 3) != 0 && strncmp(de->d_name, "rel", 3) != 0);
	closedir(d);
	shield_volfs_leave();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_dup_fcntl),
		cmocka_unit_test(test_namespace),
		cmocka_unit_test(test_directories),
		cmocka_unit_test(test_stdio),
		cmocka_unit_test(test_readonly_volume),
		cmocka_unit_test(test_commit_and_tag),
		cmocka_unit_test(test_mmap),
		cmocka_unit_test(test_fork_child_reads_only),
		cmocka_unit_test(test_stale_descriptor),
		cmocka_unit_test(test_tampered_block),
		cmocka_unit_test(test_cwd_in_volume),
		cmocka_unit_test(test_backstop),
		cmocka_unit_test(test_mkstemp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
