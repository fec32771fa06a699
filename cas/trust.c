/* trust.c: the LAS platform keys CAS trusts (STATE/las-trust).
 *
 * One "SHA256:…" fingerprint per line; '#' starts a comment; blank lines
 * are ignored. The file is stat'ed on every check and reread when its
 * inode, size, mtime or ctime changed, so `arca cas trust-las` takes effect
 * without a restart and a stat costs far less than an attestation. A line
 * that is not a valid fingerprint is skipped with a warning: it can only
 * fail to add trust. A file that cannot be read trusts nothing. */
#include "cas.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#define TRUST_MAX_BYTES (1u << 20)
#define TRUST_MAX_KEYS 4096

int cas_trust_init(struct cas_trust *t, const char *state_dir, struct arca_errbuf *e)
{
	memset(t, 0, sizeof *t);
	if (snprintf(t->path, sizeof t->path, "%s/las-trust", state_dir) >= (int)sizeof t->path)
		return arca_errf(e, ARCA_EINVAL, "state directory path too long");
	if (pthread_mutex_init(&t->mu, NULL) != 0)
		return arca_errf(e, ARCA_ENOMEM, "mutex");
	return 0;
}

void cas_trust_free(struct cas_trust *t)
{
	free(t->fprs);
	t->fprs = NULL;
	t->n = 0;
	pthread_mutex_destroy(&t->mu);
}

static int same_version(const struct cas_trust *t, const struct stat *st)
{
	return t->loaded && t->dev == st->st_dev && t->ino == st->st_ino && t->size == st->st_size &&
	       t->mtime.tv_sec == st->st_mtim.tv_sec && t->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       t->ctime.tv_sec == st->st_ctim.tv_sec && t->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static int parse(struct cas_trust *t, const struct arca_buf *b)
{
	char (*list)[ARCA_FPR_LEN] = NULL;
	size_t n = 0, lineno = 0;
	const char *p = (const char *)b->p, *end = p + b->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *s = p, *q;
		size_t len;

		lineno++;
		p = nl ? nl + 1 : end;
		while (s < le && isspace((unsigned char)*s))
			s++;
		if (s == le || *s == '#')
			continue;
		q = s;
		while (q < le && !isspace((unsigned char)*q) && *q != '#')
			q++;
		len = (size_t)(q - s);
		{
			char fpr[ARCA_FPR_LEN];
			if (len >= ARCA_FPR_LEN) {
				cas_log("warning", "%s:%zu: not a SHA256:… fingerprint; line ignored", t->path, lineno);
				continue;
			}
			memcpy(fpr, s, len);
			fpr[len] = 0;
			if (!arca_fpr_valid(fpr)) {
				cas_log("warning", "%s:%zu: not a SHA256:… fingerprint; line ignored", t->path, lineno);
				continue;
			}
			if (n == TRUST_MAX_KEYS) {
				cas_log("warning", "%s: more than %d keys; the rest ignored", t->path, TRUST_MAX_KEYS);
				break;
			}
			if (n % 16 == 0) {
				void *nl2 = realloc(list, (n + 16) * sizeof *list);
				if (!nl2) {
					free(list);
					return ARCA_ENOMEM;
				}
				list = nl2;
			}
			memset(list[n], 0, ARCA_FPR_LEN);
			memcpy(list[n], fpr, len);
			n++;
		}
	}
	free(t->fprs);
	t->fprs = list;
	t->n = n;
	return 0;
}

/* Whoever can write this file decides which platforms CAS believes, so
 * it must be a regular file that only its owner (us or root) can write;
 * otherwise nothing is trusted. st gets the identity of what was read. */
static int read_checked(struct cas_trust *t, struct stat *st, struct arca_buf *b, struct arca_errbuf *e)
{
	int fd = open(t->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return ARCA_EIO;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return ARCA_EINVAL;
	}
	if ((st->st_mode & 022) || (st->st_uid != geteuid() && st->st_uid != 0)) {
		cas_log("error", "%s: writable by group or others, or owned by another user; trusting no LAS until "
				 "it is fixed (chmod go-w)", t->path);
		close(fd);
		return ARCA_EDENIED;
	}
	rc = arca_read_fd(fd, t->path, TRUST_MAX_BYTES, b, e);
	close(fd);
	return rc;
}

/* Called with t->mu held. */
static int refresh(struct cas_trust *t)
{
	struct stat st;
	struct arca_buf b;
	struct arca_errbuf e;
	int rc;

	if (stat(t->path, &st) != 0) {
		if (errno == ENOENT) {
			/* No file: nothing trusted, and nothing to warn about
			 * more than once. */
			if (t->loaded && t->n)
				cas_log("warning", "%s removed: no LAS is trusted now", t->path);
			free(t->fprs);
			t->fprs = NULL;
			t->n = 0;
			t->loaded = 0;
			return 0;
		}
		return ARCA_EIO;
	}
	if (same_version(t, &st))
		return t->bad ? ARCA_EDENIED : 0;
	arca_buf_init(&b, TRUST_MAX_BYTES, 0);
	rc = read_checked(t, &st, &b, &e);
	free(t->fprs);
	t->fprs = NULL;
	t->n = 0;
	if (rc < 0) {
		/* Said once per version of the file, not once per attestation. */
		if (rc != ARCA_EDENIED)
			cas_log("error", "%s: cannot read (%s): no LAS is trusted until it can be", t->path,
				arca_strerror(rc));
		t->bad = 1;
	} else {
		rc = parse(t, &b);
		t->bad = rc < 0;
	}
	arca_buf_free(&b);
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->size = st.st_size;
	t->mtime = st.st_mtim;
	t->ctime = st.st_ctim;
	t->loaded = 1;
	if (rc == 0)
		cas_log("info", "%s: %zu trusted LAS key(s)", t->path, t->n);
	return rc < 0 ? ARCA_EDENIED : 0;
}

int cas_trust_has(struct cas_trust *t, const char *fpr)
{
	char want[ARCA_FPR_LEN] = {0};
	size_t len = strlen(fpr);
	int found = 0, rc;

	if (len >= ARCA_FPR_LEN)
		return 0;
	memcpy(want, fpr, len);
	pthread_mutex_lock(&t->mu);
	rc = refresh(t);
	if (rc == 0)
		for (size_t i = 0; i < t->n; i++)
			found |= arca_ct_eq(t->fprs[i], want, ARCA_FPR_LEN);
	pthread_mutex_unlock(&t->mu);
	return rc < 0 ? rc : found;
}
