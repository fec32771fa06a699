/* masterkey.c: the software-mode master key file that seals CAS's store.
 *
 * The key is read straight into secret memory and never copied elsewhere.
 * A key file that others can read is refused rather than "fixed": if it was
 * readable, the key may already be known, and only the operator can judge
 * that. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_exact(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return ARCA_EIO;
		got += (size_t)r;
	}
	return 0;
}

static int write_exact(int fd, const uint8_t *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, p + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return ARCA_EIO;
		done += (size_t)r;
	}
	return 0;
}

/* The directory entry must reach the disk too, or a crash right after the
 * first start could lose the key while keeping records sealed under it. */
static void sync_dir_of(const char *path)
{
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
		return;
	fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static int create_key(const char *path, uint8_t *key, struct arca_errbuf *e)
{
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "master key %s: cannot create: %s", path, strerror(errno));
	rc = arca_random(key, CAS_MASTER_KEY_LEN);
	if (rc == 0)
		rc = write_exact(fd, key, CAS_MASTER_KEY_LEN);
	if (rc == 0 && fsync(fd) != 0)
		rc = ARCA_EIO;
	close(fd);
	if (rc < 0) {
		unlink(path);
		return arca_errf(e, rc, "master key %s: cannot write: %s", path, strerror(errno));
	}
	sync_dir_of(path);
	return 0;
}

int cas_master_key_load(const char *path, uint8_t **key, int *created, struct arca_errbuf *e)
{
	struct stat st;
	uint8_t *k;
	int fd, rc;

	*key = NULL;
	*created = 0;
	k = arca_secret_alloc(CAS_MASTER_KEY_LEN);
	if (!k)
		return arca_errf(e, ARCA_ENOMEM, "master key: no secret memory");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		rc = create_key(path, k, e);
		if (rc < 0)
			goto fail;
		*created = 1;
		*key = k;
		return 0;
	}
	if (fd < 0) {
		rc = arca_errf(e, ARCA_EIO, "master key %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = arca_errf(e, ARCA_EINVAL, "master key %s: not a regular file", path);
		goto fail_fd;
	}
	if (st.st_mode & 077) {
		rc = arca_errf(e, ARCA_EDENIED,
			       "master key %s: mode %03o lets group or others access it; the key may be known "
			       "to others: replace it only if you are sure, otherwise chmod 600",
			       path, (unsigned)(st.st_mode & 0777));
		goto fail_fd;
	}
	if (st.st_uid != geteuid()) {
		rc = arca_errf(e, ARCA_EDENIED, "master key %s: owned by uid %u, not by this user", path,
			       (unsigned)st.st_uid);
		goto fail_fd;
	}
	if (st.st_size != CAS_MASTER_KEY_LEN) {
		rc = arca_errf(e, ARCA_EINVAL, "master key %s: %lld bytes, expected exactly %d", path,
			       (long long)st.st_size, CAS_MASTER_KEY_LEN);
		goto fail_fd;
	}
	rc = read_exact(fd, k, CAS_MASTER_KEY_LEN);
	if (rc < 0) {
		rc = arca_errf(e, ARCA_EIO, "master key %s: read failed", path);
		goto fail_fd;
	}
	close(fd);
	*key = k;
	return 0;
fail_fd:
	close(fd);
fail:
	arca_secret_free(k, CAS_MASTER_KEY_LEN);
	return rc;
}
