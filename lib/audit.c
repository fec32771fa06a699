/* audit.c: CAS's hash-chained, append-only audit log (JSON lines).
 *
 * Each line carries the hash of the line before it, so an edited, removed,
 * inserted or reordered record breaks the chain at a line we can name. The
 * chain is not keyed: by itself it shows tampering by someone who did not
 * also rewrite every later line, and it cannot show the last lines being
 * cut off. The anchor closes that gap: the writer keeps the head (seq and
 * hash of the last record) where the log's tamperer cannot change it (CAS:
 * its sealed store) and opening checks the log still holds that record.
 * Records appended after the anchor was last taken remain unprotected, and
 * anyone can append well-chained records of their own.
 * Many records go out in one write and one fdatasync (group commit) but
 * each stays its own line, so readers never see a difference.
 * One writer per file (flock) because two writers would fork the chain. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "arca/audit.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"

#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)
#define HASH_HEX_LEN 64
#define TIME_LEN 20 /* 2006-01-02T15:04:05Z */

struct arca_audit {
	pthread_mutex_t mu;
	int fd;
	int failed;    /* a write went wrong: refuse appends rather than fork the chain */
	uint64_t seq;  /* of the last record */
	off_t size;    /* of the file after the last good record */
	char prev[HASH_HEX_LEN + 1];
};

static const char *const reserved_keys[] = {"seq", "time", "prev", "hash"};

/* ---- verification, shared by open and verify_file ---- */

struct chain {
	uint64_t seq;
	char prev[HASH_HEX_LEN + 1];
};

/* A record the log must still hold, and what the scan found of it. */
struct anchor {
	uint64_t seq;
	char hash[HASH_HEX_LEN + 1];
	int seen;
	int same;
};

static int hex64_valid(const char *s, size_t len)
{
	size_t i;

	if (len != HASH_HEX_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int time_valid(const char *s, size_t len)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t i;

	if (len != TIME_LEN)
		return 0;
	for (i = 0; i < len; i++) {
		if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
			return 0;
	}
	return 1;
}

/* Canonical text of j, hashed and hex-encoded. */
static int canon_hash(const json_t *j, char hex[HASH_HEX_LEN + 1])
{
	uint8_t d[32];
	char *text;
	int rc;

	text = json_dumps(j, CANON_FLAGS);
	if (text == NULL)
		return ARCA_ENOMEM;
	rc = arca_sha256(text, strlen(text), d);
	free(text);
	if (rc < 0)
		return rc;
	arca_hex_encode(d, 32, hex);
	return 0;
}

/* Checks one line (without its newline) against the chain so far. */
static int check_line(const char *line, size_t len, struct chain *ch, const char **why)
{
	json_error_t jerr;
	json_t *j = NULL, *v, *seq, *tm, *prev, *hash;
	char want[HASH_HEX_LEN + 1];
	char *canon = NULL;
	json_int_t s;
	int rc;

	*why = NULL;
	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		*why = "not a JSON object (the line was damaged or edited)";
		rc = ARCA_EPARSE;
		goto done;
	}
	seq = json_object_get(j, "seq");
	tm = json_object_get(j, "time");
	prev = json_object_get(j, "prev");
	hash = json_object_get(j, "hash");
	if (!json_is_integer(seq) || !json_is_string(tm) || !json_is_string(prev) || !json_is_string(hash) ||
	    !time_valid(json_string_value(tm), json_string_length(tm)) ||
	    !hex64_valid(json_string_value(prev), json_string_length(prev)) ||
	    !hex64_valid(json_string_value(hash), json_string_length(hash))) {
		*why = "seq, time, prev or hash is missing or malformed (the line was edited)";
		rc = ARCA_EPARSE;
		goto done;
	}
	/* The line must be byte for byte what the writer produced. */
	canon = json_dumps(j, CANON_FLAGS);
	if (canon == NULL) {
		rc = ARCA_ENOMEM;
		goto done;
	}
	if (strlen(canon) != len || memcmp(canon, line, len) != 0) {
		*why = "the line is not in canonical form (it was edited)";
		rc = ARCA_ECRYPTO;
		goto done;
	}
	s = json_integer_value(seq);
	if (s > 0 && (uint64_t)s > ch->seq + 1) {
		/* Removed or swapped: the caller looks at the next line to say which. */
		*why = "a record before this line was removed, or lines were reordered";
		rc = ARCA_ESTALE;
		goto done;
	}
	if (s < 1 || (uint64_t)s != ch->seq + 1) {
		*why = "seq goes back: lines were reordered or repeated";
		rc = ARCA_ECRYPTO;
		goto done;
	}
	if (strcmp(json_string_value(prev), ch->prev) != 0) {
		*why = "prev does not match the hash of the line before: a record was removed, replaced or reordered";
		rc = ARCA_ECRYPTO;
		goto done;
	}
	v = json_copy(j);
	if (v == NULL || json_object_del(v, "hash") != 0) {
		json_decref(v);
		rc = ARCA_ENOMEM;
		goto done;
	}
	rc = canon_hash(v, want);
	json_decref(v);
	if (rc < 0)
		goto done;
	if (!arca_ct_eq(want, json_string_value(hash), HASH_HEX_LEN)) {
		*why = "hash does not match the record's content: the record was edited";
		rc = ARCA_ECRYPTO;
		goto done;
	}
	ch->seq = (uint64_t)s;
	memcpy(ch->prev, want, sizeof(want));
	rc = 0;
done:
	free(canon);
	json_decref(j);
	return rc;
}

/* seq of a line that failed with "skips ahead", to tell a removed record
 * from two swapped ones by looking at the line after it. */
static int line_seq(const char *line, size_t len, json_int_t *seq)
{
	json_t *j = json_loadb(line, len, 0, NULL), *v;
	int rc = ARCA_EPARSE;

	v = json_object_get(j, "seq");
	if (json_is_integer(v)) {
		*seq = json_integer_value(v);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* Streams the file from offset 0 through check_line. *good_size is the
 * offset just after the last good line. */
static int scan(int fd, const char *path, struct chain *ch, size_t *nrec, off_t *good_size, struct anchor *an,
		struct arca_errbuf *e)
{
	uint8_t chunk[65536];
	struct arca_buf line;
	const char *why = NULL;
	size_t lineno = 0, i, seg, bad_line = 0;
	json_int_t next_seq = 0;
	uint8_t *nl;
	off_t off = 0;
	ssize_t r;
	int rc = 0, bad_rc = 0;

	memset(ch, 0, sizeof(*ch));
	memset(ch->prev, '0', HASH_HEX_LEN);
	*nrec = 0;
	*good_size = 0;
	arca_buf_init(&line, ARCA_AUDIT_MAX_LINE, 0);
	for (;;) {
		r = pread(fd, chunk, sizeof(chunk), off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = arca_errf(e, ARCA_EIO, "%s: read: %s", path, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		off += r;
		for (i = 0; i < (size_t)r; i += seg + 1) {
			nl = memchr(chunk + i, '\n', (size_t)r - i);
			seg = nl != NULL ? (size_t)(nl - (chunk + i)) : (size_t)r - i;
			if (arca_buf_append(&line, chunk + i, seg) < 0) {
				rc = arca_errf(e, ARCA_EPARSE, "%s:%zu: line longer than %zu bytes", path, lineno + 1,
					       ARCA_AUDIT_MAX_LINE);
				goto done;
			}
			if (nl == NULL)
				break;
			lineno++;
			if (bad_line != 0) {
				/* Only here to explain the line before. */
				if (line_seq((const char *)line.p, line.len, &next_seq) == 0 &&
				    next_seq >= 1 && (uint64_t)next_seq == ch->seq + 1)
					why = "lines were reordered (the record that belongs here comes later)";
				else
					why = "a record before this line was removed";
				goto report;
			}
			rc = check_line((const char *)line.p, line.len, ch, &why);
			if (rc == ARCA_ESTALE) {
				bad_line = lineno;
				bad_rc = ARCA_ECRYPTO;
				arca_buf_reset(&line);
				continue;
			}
			if (rc < 0) {
				bad_line = lineno;
				bad_rc = rc;
				goto report;
			}
			if (an != NULL && ch->seq == an->seq) {
				an->seen = 1;
				an->same = strcmp(ch->prev, an->hash) == 0;
			}
			*nrec = lineno;
			*good_size += (off_t)line.len + 1;
			arca_buf_reset(&line);
		}
	}
	if (bad_line != 0) {
		why = "a record before this line was removed";
		goto report;
	}
	if (line.len > 0)
		rc = arca_errf(e, ARCA_EPARSE, "%s:%zu: the last line is incomplete (no newline): a write was cut short",
			       path, lineno + 1);
	goto done;
report:
	if (why != NULL)
		rc = arca_errf(e, bad_rc, "%s:%zu: %s", path, bad_line, why);
	else
		rc = arca_errf(e, bad_rc, "%s:%zu: cannot check the record: %s", path, bad_line, arca_strerror(bad_rc));
done:
	arca_buf_free(&line);
	return rc;
}

int arca_audit_verify_file(const char *path, size_t *nrecords, struct arca_errbuf *e)
{
	struct chain ch;
	size_t n = 0;
	off_t size;
	int fd, rc;

	if (nrecords != NULL)
		*nrecords = 0;
	if (path == NULL)
		return arca_errf(e, ARCA_EINVAL, "audit log: no path given");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return arca_errf(e, errno == ENOENT ? ARCA_ENOTFOUND : ARCA_EIO, "%s: %s", path, strerror(errno));
	rc = scan(fd, path, &ch, &n, &size, NULL, e);
	close(fd);
	if (nrecords != NULL)
		*nrecords = n;
	return rc;
}

/* ---- writing ---- */

static int open_log(const char *path, struct anchor *an, struct arca_audit **out, struct arca_errbuf *e)
{
	struct arca_audit *a;
	struct chain ch;
	struct stat st;
	size_t n;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL)
		return arca_errf(e, ARCA_EINVAL, "audit log: no path given");
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return arca_errf(e, ARCA_ENOMEM, "audit log: out of memory");
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		rc = arca_errf(e, ARCA_EIO, "cannot open audit log %s: %s", path, strerror(errno));
		free(a);
		return rc;
	}
	if (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = arca_errf(e, ARCA_EIO, "audit log %s is not a regular file", path);
		goto fail;
	}
	if (flock(a->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = arca_errf(e, errno == EWOULDBLOCK ? ARCA_EEXIST : ARCA_EIO,
			       "audit log %s is in use by another process (%s); only one CAS may write it", path,
			       strerror(errno));
		goto fail;
	}
	rc = scan(a->fd, path, &ch, &n, &a->size, an, e);
	if (rc < 0) {
		/* The message already names the line; say what to do. */
		size_t l = strlen(e != NULL ? e->msg : "");
		if (e != NULL && l + 80 < sizeof(e->msg))
			snprintf(e->msg + l, sizeof(e->msg) - l,
				 "; refusing to extend a broken audit chain (move the file aside to start a new one)");
		goto fail;
	}
	/* The chain is whole; now whether it still reaches the anchor. */
	if (an != NULL && an->seq > 0 && !an->seen) {
		rc = arca_errf(e, ARCA_ESTALE,
			       "audit log %s ends at record %llu but the store recorded %llu: the log was truncated or "
			       "rewritten; restore it from backup",
			       path, (unsigned long long)ch.seq, (unsigned long long)an->seq);
		goto fail;
	}
	if (an != NULL && an->seq > 0 && !an->same) {
		rc = arca_errf(e, ARCA_ESTALE,
			       "audit log %s ends at record %llu but its record %llu is not the one the store recorded "
			       "(hash %.16s…): the log was truncated or rewritten; restore it from backup",
			       path, (unsigned long long)ch.seq, (unsigned long long)an->seq, an->hash);
		goto fail;
	}
	if (pthread_mutex_init(&a->mu, NULL) != 0) {
		rc = arca_errf(e, ARCA_ENOMEM, "audit log: cannot create a mutex");
		goto fail;
	}
	a->seq = ch.seq;
	memcpy(a->prev, ch.prev, sizeof(a->prev));
	*out = a;
	return 0;
fail:
	close(a->fd);
	free(a);
	return rc;
}

int arca_audit_open(const char *path, struct arca_audit **out, struct arca_errbuf *e)
{
	return open_log(path, NULL, out, e);
}

int arca_audit_open_anchored(const char *path, uint64_t seq, const uint8_t hash[static 32], struct arca_audit **out,
			     struct arca_errbuf *e)
{
	struct anchor an = {.seq = seq};

	arca_hex_encode(hash, 32, an.hash);
	return open_log(path, &an, out, e);
}

static int now_rfc3339(char out[TIME_LEN + 1])
{
	struct tm tm;
	time_t t = time(NULL);

	if (gmtime_r(&t, &tm) == NULL || strftime(out, TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != TIME_LEN)
		return ARCA_EIO;
	return 0;
}

/* Appends the line of rec as the record after ch to out, and advances ch
 * to it. Checks the line with the same code the verifier runs, so the
 * writer can never produce a line that fails. */
static int build_line(struct chain *ch, const char *tm, json_t *rec, struct arca_buf *out)
{
	char hash[HASH_HEX_LEN + 1];
	struct chain next;
	const char *why;
	json_t *r = NULL;
	char *text = NULL;
	size_t i, len;
	int rc;

	if (!json_is_object(rec))
		return ARCA_EINVAL;
	for (i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++)
		if (json_object_get(rec, reserved_keys[i]) != NULL)
			return ARCA_EINVAL;
	/* A shallow copy: the caller's record is not changed. */
	r = json_copy(rec);
	ENSURE_GOTO(r != NULL, ARCA_ENOMEM, done);
	ENSURE_GOTO(json_object_set_new(r, "seq", json_integer((json_int_t)(ch->seq + 1))) == 0 &&
			    json_object_set_new(r, "time", json_string(tm)) == 0 &&
			    json_object_set_new(r, "prev", json_string(ch->prev)) == 0,
		    ARCA_ENOMEM, done);
	GUARD_GOTO(canon_hash(r, hash), done);
	ENSURE_GOTO(json_object_set_new(r, "hash", json_string(hash)) == 0, ARCA_ENOMEM, done);
	text = json_dumps(r, CANON_FLAGS);
	ENSURE_GOTO(text != NULL, ARCA_EINVAL, done);
	len = strlen(text);
	ENSURE_GOTO(len + 1 <= ARCA_AUDIT_MAX_LINE, ARCA_ETOOBIG, done);
	ENSURE_GOTO(len + 1 <= out->max - out->len, ARCA_ETOOBIG, done);
	next = *ch;
	/* E.g. a real number that does not survive a round trip. */
	ENSURE_GOTO(check_line(text, len, &next, &why) == 0, ARCA_EINVAL, done);
	GUARD_GOTO(arca_buf_append(out, text, len), done);
	GUARD_GOTO(arca_buf_append(out, "\n", 1), done);
	*ch = next;
	rc = 0;
done:
	free(text);
	json_decref(r);
	return rc;
}

int arca_audit_append_many(struct arca_audit *a, json_t *const *recs, size_t n)
{
	char tm[TIME_LEN + 1];
	struct arca_buf lines;
	struct chain ch;
	ssize_t w;
	size_t i;
	int rc;

	if (a == NULL || (recs == NULL && n > 0))
		return ARCA_EINVAL;
	arca_buf_init(&lines, ARCA_AUDIT_MAX_APPEND, 0);
	pthread_mutex_lock(&a->mu);
	ENSURE_GOTO(!a->failed, ARCA_EIO, done);
	/* Under the lock, so that time never goes back from one line to the next. */
	GUARD_GOTO(now_rfc3339(tm), done);
	ch.seq = a->seq;
	memcpy(ch.prev, a->prev, sizeof(ch.prev));
	for (i = 0; i < n; i++)
		GUARD_GOTO(build_line(&ch, tm, recs[i], &lines), done);
	rc = 0;
	if (n == 0)
		goto done;
	do {
		w = write(a->fd, lines.p, lines.len);
	} while (w < 0 && errno == EINTR);
	if (w != (ssize_t)lines.len) {
		/* Cut a partial write off again so that the chain stays whole
		 * and none of the records is in the log; if even that fails,
		 * stop appending rather than fork the chain. */
		if (ftruncate(a->fd, a->size) < 0)
			a->failed = 1;
		rc = ARCA_EIO;
		goto done;
	}
	if (fdatasync(a->fd) < 0) {
		/* The lines may or may not be on disk: the state is unknown. */
		a->failed = 1;
		rc = ARCA_EIO;
		goto done;
	}
	a->seq = ch.seq;
	a->size += (off_t)lines.len;
	memcpy(a->prev, ch.prev, sizeof(a->prev));
done:
	pthread_mutex_unlock(&a->mu);
	arca_buf_free(&lines);
	return rc;
}

int arca_audit_append(struct arca_audit *a, json_t *rec)
{
	if (rec == NULL)
		return ARCA_EINVAL;
	return arca_audit_append_many(a, &rec, 1);
}

int arca_audit_head(const struct arca_audit *a, uint64_t *seq, uint8_t hash[static 32])
{
	pthread_mutex_t *mu;
	size_t got = 0;
	int rc;

	if (a == NULL || seq == NULL)
		return ARCA_EINVAL;
	/* The lock guards the struct, not the caller's const view of it. */
	mu = (pthread_mutex_t *)&a->mu;
	pthread_mutex_lock(mu);
	*seq = a->seq;
	rc = arca_hex_decode(a->prev, HASH_HEX_LEN, hash, 32, &got);
	pthread_mutex_unlock(mu);
	return rc < 0 || got != 32 ? ARCA_EINVAL : 0;
}

void arca_audit_close(struct arca_audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->mu);
	close(a->fd);
	free(a);
}
