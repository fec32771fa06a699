/* buf.c: bounded buffers, the read cursor, and whole-file I/O.
 *
 * Every growth goes through arca_buf_reserve so that the max of a buffer is
 * enforced in one place, and a secret buffer never leaves a copy behind in
 * memory handed back to malloc. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arca/buf.h"
#include "arca/crypto.h"

/* ---- cursor ---- */

int arca_cur_take(struct arca_cur *c, size_t n, const uint8_t **out)
{
	ENSURE(n <= arca_cur_left(c), ARCA_EPARSE);
	*out = c->p + c->off;
	c->off += n;
	return 0;
}

int arca_cur_copy(struct arca_cur *c, void *out, size_t n)
{
	const uint8_t *p;
	GUARD(arca_cur_take(c, n, &p));
	if (n)
		memcpy(out, p, n);
	return 0;
}

int arca_cur_u8(struct arca_cur *c, uint8_t *v)
{
	const uint8_t *p;
	GUARD(arca_cur_take(c, 1, &p));
	*v = p[0];
	return 0;
}

int arca_cur_u16le(struct arca_cur *c, uint16_t *v)
{
	const uint8_t *p;
	GUARD(arca_cur_take(c, 2, &p));
	*v = (uint16_t)(p[0] | (uint16_t)p[1] << 8);
	return 0;
}

int arca_cur_u32le(struct arca_cur *c, uint32_t *v)
{
	const uint8_t *p;
	GUARD(arca_cur_take(c, 4, &p));
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return 0;
}

int arca_cur_u64le(struct arca_cur *c, uint64_t *v)
{
	const uint8_t *p;
	GUARD(arca_cur_take(c, 8, &p));
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	*v = x;
	return 0;
}

int arca_cur_skip(struct arca_cur *c, size_t n)
{
	const uint8_t *p;
	return arca_cur_take(c, n, &p);
}

/* ---- growable buffer ---- */

void arca_buf_init(struct arca_buf *b, size_t max, int secret)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	/* 0 means "no particular limit": the default, never unbounded. */
	b->max = max ? max : ARCA_BUF_DEFAULT_MAX;
	b->secret = secret ? 1 : 0;
}

int arca_buf_reserve(struct arca_buf *b, size_t extra)
{
	if (b->max == 0)
		b->max = ARCA_BUF_DEFAULT_MAX;
	ENSURE(b->len <= b->max && extra <= b->max - b->len, ARCA_ENOMEM);
	size_t need = b->len + extra + 1; /* + the NUL after the data */
	if (b->p && need <= b->cap)
		return 0;

	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	if (ncap < need)
		ncap = need;

	uint8_t *np;
	if (b->secret) {
		/* realloc may free the old block without wiping it. */
		np = malloc(ncap);
		ENSURE(np != NULL, ARCA_ENOMEM);
		if (b->p) {
			memcpy(np, b->p, b->len);
			arca_wipe(b->p, b->cap);
			free(b->p);
		}
	} else {
		np = realloc(b->p, ncap);
		ENSURE(np != NULL, ARCA_ENOMEM);
	}
	b->p = np;
	b->cap = ncap;
	b->p[b->len] = 0;
	return 0;
}

int arca_buf_append(struct arca_buf *b, const void *p, size_t n)
{
	GUARD(arca_buf_reserve(b, n));
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

int arca_buf_appends(struct arca_buf *b, const char *s)
{
	return arca_buf_append(b, s, strlen(s));
}

int arca_buf_appendf(struct arca_buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	GUARD(arca_buf_reserve(b, 0));
	va_start(ap, fmt);
	va_copy(ap2, ap);
	size_t room = b->cap - b->len;
	int n = vsnprintf((char *)b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		b->p[b->len] = 0;
		return ARCA_EINVAL;
	}
	if ((size_t)n >= room) {
		int rc = arca_buf_reserve(b, (size_t)n);
		if (rc < 0) {
			va_end(ap2);
			b->p[b->len] = 0;
			return rc;
		}
		n = vsnprintf((char *)b->p + b->len, b->cap - b->len, fmt, ap2);
	}
	va_end(ap2);
	if (n < 0) {
		b->p[b->len] = 0;
		return ARCA_EINVAL;
	}
	b->len += (size_t)n;
	b->p[b->len] = 0;
	return 0;
}

int arca_buf_u16le(struct arca_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	return arca_buf_append(b, x, sizeof x);
}

int arca_buf_u32le(struct arca_buf *b, uint32_t v)
{
	uint8_t x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	return arca_buf_append(b, x, sizeof x);
}

int arca_buf_u64le(struct arca_buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	return arca_buf_append(b, x, sizeof x);
}

void arca_buf_reset(struct arca_buf *b)
{
	if (!b->p)
		return;
	if (b->secret)
		arca_wipe(b->p, b->cap);
	b->len = 0;
	b->p[0] = 0;
}

void arca_buf_free(struct arca_buf *b)
{
	if (b->p) {
		if (b->secret)
			arca_wipe(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

uint8_t *arca_buf_steal(struct arca_buf *b, size_t *len)
{
	/* Never hand out NULL for an empty buffer: callers take NULL as failure. */
	if (!b->p && arca_buf_reserve(b, 0) < 0) {
		if (len)
			*len = 0;
		return NULL;
	}
	uint8_t *p = b->p;
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

const char *arca_buf_str(const struct arca_buf *b)
{
	return b->p ? (const char *)b->p : "";
}

void arca_buf_truncate(struct arca_buf *b, size_t len)
{
	if (!b->p || len >= b->len)
		return;
	if (b->secret)
		arca_wipe(b->p + len, b->len - len);
	b->len = len;
	b->p[len] = 0;
}

/* ---- files ---- */

static int sys_err(struct arca_errbuf *e, int err, const char *what, const char *path)
{
	char tmp[128];
	const char *msg = strerror_r(err, tmp, sizeof tmp);
	if (err == ENOENT)
		return arca_errf(e, ARCA_ENOTFOUND, "%s %s: %s", what, path, msg);
	if (err == EACCES || err == EPERM)
		return arca_errf(e, ARCA_EDENIED, "%s %s: %s (check its owner and permissions)", what, path, msg);
	if (err == ENOMEM)
		return arca_errf(e, ARCA_ENOMEM, "%s %s: %s", what, path, msg);
	return arca_errf(e, ARCA_EIO, "%s %s: %s", what, path, msg);
}

int arca_read_fd(int fd, const char *name, size_t max, struct arca_buf *out, struct arca_errbuf *e)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sys_err(e, errno, "cannot stat", name);
	if (S_ISDIR(st.st_mode))
		return arca_errf(e, ARCA_EINVAL, "cannot read %s: it is a directory, not a file", name);
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > (uintmax_t)max)
		return arca_errf(e, ARCA_ETOOBIG, "%s is too large (%jd bytes, at most %zu allowed)", name,
				 (intmax_t)st.st_size, max);

	GUARD(arca_buf_reserve(out, 0)); /* settles out->max for a zeroed struct */
	size_t start = out->len;
	size_t got = 0;
	int rc = 0;
	for (;;) {
		/* The tighter of the two limits: the caller's max and what the
		 * buffer may still hold. Never reserve past either, so a buffer whose
		 * max equals the file limit works. */
		size_t limit = max - got;
		if (out->max - out->len < limit)
			limit = out->max - out->len;
		uint8_t probe;
		uint8_t *dst = &probe;
		size_t want = 1;
		if (limit > 0) {
			want = limit < 16384 ? limit : 16384;
			rc = arca_buf_reserve(out, want);
			if (rc < 0) {
				rc = arca_errf(e, rc, "cannot read %s: out of memory", name);
				break;
			}
			dst = out->p + out->len;
		}
		ssize_t n = read(fd, dst, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = sys_err(e, errno, "cannot read", name);
			break;
		}
		if (n == 0)
			break;
		if (limit == 0) {
			/* A byte past the limit: the file is too large. */
			rc = arca_errf(e, ARCA_ETOOBIG, "%s is too large (at most %zu bytes allowed)", name,
				       got < max ? got : max);
			break;
		}
		out->len += (size_t)n;
		out->p[out->len] = 0;
		got += (size_t)n;
	}
	if (rc < 0)
		arca_buf_truncate(out, start);
	return rc;
}

int arca_read_file(const char *path, size_t max, struct arca_buf *out, struct arca_errbuf *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sys_err(e, errno, "cannot open", path);
	int rc = arca_read_fd(fd, path, max, out, e);
	close(fd);
	return rc;
}

static int split_dir(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	int n;
	if (!slash)
		n = snprintf(dir, cap, ".");
	else if (slash == path)
		n = snprintf(dir, cap, "/");
	else
		n = snprintf(dir, cap, "%.*s", (int)(slash - path), path);
	return (n < 0 || (size_t)n >= cap) ? ARCA_ETOOBIG : 0;
}

int arca_write_file_atomic(const char *path, const void *p, size_t n, unsigned mode, struct arca_errbuf *e)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	if (split_dir(path, dir, sizeof dir) < 0)
		return arca_errf(e, ARCA_ETOOBIG, "path too long: %s", path);
	int m = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
	if (m < 0 || (size_t)m >= sizeof tmp)
		return arca_errf(e, ARCA_ETOOBIG, "path too long: %s", path);

	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return sys_err(e, errno, "cannot create a temporary file next to", path);

	int rc = 0;
	/* fchmod, not the umask-affected create mode, so the mode is exact. */
	if (fchmod(fd, (mode_t)(mode & 07777)) < 0) {
		rc = sys_err(e, errno, "cannot set the mode of", tmp);
		goto fail;
	}
	const uint8_t *q = p;
	size_t left = n;
	while (left > 0) {
		ssize_t w = write(fd, q, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = sys_err(e, errno, "cannot write", tmp);
			goto fail;
		}
		q += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		rc = sys_err(e, errno, "cannot flush", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = sys_err(e, errno, "cannot close", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = sys_err(e, errno, "cannot replace", path);
		goto fail;
	}
	/* The rename is durable only once the directory is. */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sys_err(e, errno, "cannot open directory", dir);
	if (fsync(dfd) < 0 && errno != EINVAL) {
		int err = errno;
		close(dfd);
		return sys_err(e, err, "cannot flush directory", dir);
	}
	close(dfd);
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int arca_mkdirs(const char *path, unsigned mode, struct arca_errbuf *e)
{
	char p[PATH_MAX];
	int n = snprintf(p, sizeof p, "%s", path);
	if (n < 0 || (size_t)n >= sizeof p)
		return arca_errf(e, ARCA_ETOOBIG, "path too long: %s", path);
	if (n == 0)
		return arca_errf(e, ARCA_EINVAL, "empty directory path");

	/* Walk each prefix ending before a '/', then the whole path. */
	for (size_t i = 1; i <= (size_t)n; i++) {
		if (i < (size_t)n && p[i] != '/')
			continue;
		char save = p[i];
		p[i] = '\0';
		if (mkdir(p, (mode_t)(mode & 07777)) < 0) {
			int err = errno;
			struct stat st;
			if (err != EEXIST)
				return sys_err(e, err, "cannot create directory", p);
			if (stat(p, &st) < 0)
				return sys_err(e, errno, "cannot stat", p);
			if (!S_ISDIR(st.st_mode))
				return arca_errf(e, ARCA_EEXIST, "%s exists and is not a directory; move it away", p);
		}
		p[i] = save;
	}
	return 0;
}
