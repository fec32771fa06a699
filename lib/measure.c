/* measure.c: the measurement of a running process, taken from outside
 * (measure.h).
 *
 * The process may be hostile (LAS measures whoever connects), so
 * /proc/PID/maps is read with a size limit and parsed strictly: a line that
 * does not have exactly the kernel's shape stops the measurement rather
 * than being skipped. Everything that could make the digest describe code
 * other than what runs is refused, with the object and the reason. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "arca/measure.h"
#include "arca/buf.h"
#include "arca/crypto.h"

/* A large program (a JVM, a browser) has tens of thousands of mappings at
 * about 100 bytes each; anything far beyond that is not a real process. */
#define MAPS_MAX_BYTES ((size_t)16 << 20)
#define MAPS_MAX_LINE (PATH_MAX + 128)
#define MEASURE_MAX_OBJECTS 4096
#define CACHE_MAX_ENTRIES ((size_t)1 << 16)

struct cache_ent {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
	uint8_t sha256[32];
};

struct arca_hash_cache {
	struct cache_ent *ents;
	size_t n, max;
	size_t next; /* replaced next when full: oldest first */
};

/* One executable object as found in the maps, before hashing. */
struct map_obj {
	char *path;
	dev_t dev;
	ino_t ino;
	uint64_t start, end; /* one mapping of it, for /proc/PID/map_files */
	dev_t disk_dev;      /* as stat(2) reports the file opened by name */
	ino_t disk_ino;
};

struct obj_list {
	struct map_obj *v;
	size_t n, cap;
};

struct arca_hash_cache *arca_hash_cache_new(size_t max_entries)
{
	if (max_entries == 0 || max_entries > CACHE_MAX_ENTRIES)
		return NULL;
	struct arca_hash_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ents = calloc(max_entries, sizeof(*c->ents));
	if (c->ents == NULL) {
		free(c);
		return NULL;
	}
	c->max = max_entries;
	return c;
}

void arca_hash_cache_free(struct arca_hash_cache *c)
{
	if (c == NULL)
		return;
	free(c->ents);
	free(c);
}

static int ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static int same_version(const struct cache_ent *ce, const struct stat *st)
{
	return ce->dev == st->st_dev && ce->ino == st->st_ino && ce->size == st->st_size &&
	       ts_eq(&ce->mtim, &st->st_mtim) && ts_eq(&ce->ctim, &st->st_ctim);
}

static const struct cache_ent *cache_find(const struct arca_hash_cache *c, const struct stat *st)
{
	for (size_t i = 0; i < c->n; i++)
		if (same_version(&c->ents[i], st))
			return &c->ents[i];
	return NULL;
}

static void cache_put(struct arca_hash_cache *c, const struct stat *st, const uint8_t sha256[32])
{
	struct cache_ent *ce;
	/* A newer version of the same file replaces the old entry, so a file
	 * that keeps changing cannot push everything else out. */
	for (size_t i = 0; i < c->n; i++) {
		if (c->ents[i].dev == st->st_dev && c->ents[i].ino == st->st_ino) {
			ce = &c->ents[i];
			goto fill;
		}
	}
	if (c->n < c->max) {
		ce = &c->ents[c->n++];
	} else {
		ce = &c->ents[c->next];
		c->next = (c->next + 1) % c->max;
	}
fill:
	ce->dev = st->st_dev;
	ce->ino = st->st_ino;
	ce->size = st->st_size;
	ce->mtim = st->st_mtim;
	ce->ctim = st->st_ctim;
	memcpy(ce->sha256, sha256, 32);
}

static void obj_list_free(struct obj_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ---- /proc/PID/maps ---- */

static int read_proc_file(pid_t pid, const char *name, struct arca_buf *out, struct arca_errbuf *e)
{
	char path[64];
	uint8_t chunk[65536];
	int fd, rc = 0;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err == ENOENT)
			return arca_errf(e, ARCA_ENOTFOUND, "process %d does not exist (any more)", (int)pid);
		return arca_errf(e, err == EACCES || err == EPERM ? ARCA_EDENIED : ARCA_EIO,
				 "cannot read %s: %s", path, strerror(err));
	}
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = arca_errf(e, errno == ESRCH ? ARCA_ENOTFOUND : ARCA_EIO, "cannot read %s: %s", path,
				       strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (arca_buf_append(out, chunk, (size_t)r) < 0) {
			rc = arca_errf(e, ARCA_ETOOBIG, "%s is larger than %zu bytes; refusing to measure", path,
				       out->max);
			break;
		}
	}
	close(fd);
	return rc;
}

/* Fixed-width fields of a maps line. Each parser advances *p within [*p, end). */
static int parse_hex(const char **p, const char *end, unsigned maxdigits, uint64_t *v)
{
	uint64_t x = 0;
	unsigned n = 0;
	while (*p < end && n < maxdigits) {
		char ch = **p;
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else
			break;
		x = (x << 4) | d;
		(*p)++;
		n++;
	}
	if (n == 0 || (*p < end && n == maxdigits && isxdigit((unsigned char)**p)))
		return ARCA_EPARSE;
	*v = x;
	return 0;
}

static int parse_dec(const char **p, const char *end, uint64_t *v)
{
	uint64_t x = 0;
	unsigned n = 0;
	while (*p < end && **p >= '0' && **p <= '9') {
		unsigned d = (unsigned)(**p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return ARCA_EPARSE;
		x = x * 10 + d;
		(*p)++;
		n++;
	}
	if (n == 0)
		return ARCA_EPARSE;
	*v = x;
	return 0;
}

static int expect(const char **p, const char *end, char ch)
{
	if (*p >= end || **p != ch)
		return ARCA_EPARSE;
	(*p)++;
	return 0;
}

struct maps_line {
	uint64_t start, end;
	char perms[4];
	uint64_t major, minor, ino;
	const char *name; /* not NUL-terminated */
	size_t namelen;
};

/* "start-end perms offset major:minor inode [padding name]" */
static int parse_maps_line(const char *p, const char *end, struct maps_line *ml)
{
	uint64_t off;
	GUARD(parse_hex(&p, end, 16, &ml->start));
	GUARD(expect(&p, end, '-'));
	GUARD(parse_hex(&p, end, 16, &ml->end));
	GUARD(expect(&p, end, ' '));
	ENSURE(end - p >= 4, ARCA_EPARSE);
	memcpy(ml->perms, p, 4);
	ENSURE(ml->perms[0] == 'r' || ml->perms[0] == '-', ARCA_EPARSE);
	ENSURE(ml->perms[1] == 'w' || ml->perms[1] == '-', ARCA_EPARSE);
	ENSURE(ml->perms[2] == 'x' || ml->perms[2] == '-', ARCA_EPARSE);
	ENSURE(ml->perms[3] == 'p' || ml->perms[3] == 's', ARCA_EPARSE);
	p += 4;
	GUARD(expect(&p, end, ' '));
	GUARD(parse_hex(&p, end, 16, &off));
	GUARD(expect(&p, end, ' '));
	GUARD(parse_hex(&p, end, 8, &ml->major));
	GUARD(expect(&p, end, ':'));
	GUARD(parse_hex(&p, end, 8, &ml->minor));
	GUARD(expect(&p, end, ' '));
	GUARD(parse_dec(&p, end, &ml->ino));
	ENSURE(ml->start < ml->end, ARCA_EPARSE);
	if (p == end) {
		ml->name = p;
		ml->namelen = 0;
		return 0;
	}
	GUARD(expect(&p, end, ' '));
	while (p < end && *p == ' ')
		p++;
	ml->name = p;
	ml->namelen = (size_t)(end - p);
	return 0;
}

static int name_is(const struct maps_line *ml, const char *s)
{
	size_t n = strlen(s);
	return ml->namelen == n && memcmp(ml->name, s, n) == 0;
}

static int name_ends_with(const struct maps_line *ml, const char *s)
{
	size_t n = strlen(s);
	return ml->namelen >= n && memcmp(ml->name + ml->namelen - n, s, n) == 0;
}

static int add_object(struct obj_list *l, const struct maps_line *ml, pid_t pid, struct arca_errbuf *e)
{
	dev_t dev = makedev((unsigned)ml->major, (unsigned)ml->minor);
	ino_t ino = (ino_t)ml->ino;

	for (size_t i = 0; i < l->n; i++) {
		if (strlen(l->v[i].path) != ml->namelen || memcmp(l->v[i].path, ml->name, ml->namelen) != 0)
			continue;
		if (l->v[i].dev != dev || l->v[i].ino != ino)
			return arca_errf(e, ARCA_EDENIED,
					 "process %d maps two different files under the name %s; it cannot be measured",
					 (int)pid, l->v[i].path);
		return 0;
	}
	if (l->n == MEASURE_MAX_OBJECTS)
		return arca_errf(e, ARCA_ETOOBIG, "process %d maps more than %d executable files; refusing to measure",
				 (int)pid, MEASURE_MAX_OBJECTS);
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		struct map_obj *nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return arca_errf(e, ARCA_ENOMEM, "out of memory");
		l->v = nv;
		l->cap = ncap;
	}
	char *path = strndup(ml->name, ml->namelen);
	if (path == NULL)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	l->v[l->n].path = path;
	l->v[l->n].dev = dev;
	l->v[l->n].ino = ino;
	l->v[l->n].start = ml->start;
	l->v[l->n].end = ml->end;
	l->n++;
	return 0;
}

/* Applies the rules of measure.h to one mapping. */
static int check_mapping(struct obj_list *l, const struct maps_line *ml, pid_t pid, struct arca_errbuf *e)
{
	int w = ml->perms[1] == 'w', x = ml->perms[2] == 'x';
	int nl = ml->namelen > 200 ? 200 : (int)ml->namelen;

	if (!x)
		return 0;
	if (w)
		return arca_errf(e, ARCA_EDENIED,
				 "process %d has a writable and executable mapping at %" PRIx64 "-%" PRIx64
				 " (%.*s); code that can change itself cannot be measured",
				 (int)pid, ml->start, ml->end, nl > 0 ? nl : 9, nl > 0 ? ml->name : "anonymous");
	if (ml->namelen == 0)
		return arca_errf(e, ARCA_EDENIED,
				 "process %d has anonymous executable memory at %" PRIx64 "-%" PRIx64
				 " (generated code, e.g. a JIT); it cannot be measured",
				 (int)pid, ml->start, ml->end);
	if (name_is(ml, "[vdso]") || name_is(ml, "[vsyscall]"))
		return 0;
	if (ml->name[0] != '/')
		return arca_errf(e, ARCA_EDENIED,
				 "process %d has executable memory at %" PRIx64 "-%" PRIx64
				 " that is not backed by a file (%.*s); it cannot be measured",
				 (int)pid, ml->start, ml->end, nl, ml->name);
	if (name_ends_with(ml, " (deleted)"))
		return arca_errf(e, ARCA_EDENIED,
				 "process %d runs code from %.*s, which was deleted or replaced after it was mapped; "
				 "restart the program",
				 (int)pid, nl, ml->name);
	/* The kernel escapes only a newline (as \012) in these names, so a
	 * name with a backslash has two readings. */
	if (memchr(ml->name, '\\', ml->namelen) != NULL || ml->namelen >= PATH_MAX)
		return arca_errf(e, ARCA_EDENIED,
				 "process %d maps a file whose name cannot be read unambiguously (%.*s); rename it",
				 (int)pid, nl, ml->name);
	return add_object(l, ml, pid, e);
}

static int collect_objects(pid_t pid, struct obj_list *l, struct arca_errbuf *e)
{
	struct arca_buf maps;
	int rc;

	arca_buf_init(&maps, MAPS_MAX_BYTES, 0);
	GUARD_GOTO(read_proc_file(pid, "maps", &maps, e), out);
	const char *p = (const char *)maps.p, *end = p + maps.len;
	size_t lineno = 0;
	ENSURE_GOTO(maps.len > 0, arca_errf(e, ARCA_ENOTFOUND, "process %d has no mappings (a zombie?)", (int)pid),
		    out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct maps_line ml;
		lineno++;
		ENSURE_GOTO(nl != NULL && nl - p <= MAPS_MAX_LINE,
			    arca_errf(e, ARCA_EPARSE, "/proc/%d/maps line %zu is unterminated or too long", (int)pid,
				      lineno),
			    out);
		ENSURE_GOTO(parse_maps_line(p, nl, &ml) == 0,
			    arca_errf(e, ARCA_EPARSE, "/proc/%d/maps line %zu cannot be parsed", (int)pid, lineno),
			    out);
		GUARD_GOTO(check_mapping(l, &ml, pid, e), out);
		p = nl + 1;
	}
	rc = 0;
out:
	arca_buf_free(&maps);
	return rc;
}

/* ---- hashing ---- */

/* Whether the file opened by name is the one mapped. The maps line names
 * the superblock's device, which on btrfs and some overlayfs setups is not
 * the st_dev stat reports; then the mapping itself (map_files, readable by
 * a privileged measurer such as arca-las) decides. */
static int same_file(const struct map_obj *o, pid_t pid, const struct stat *st)
{
	char mf[96];
	struct stat ms;

	if (st->st_ino != o->ino)
		return 0;
	if (st->st_dev == o->dev)
		return 1;
	snprintf(mf, sizeof mf, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, o->start, o->end);
	return stat(mf, &ms) == 0 && ms.st_dev == st->st_dev && ms.st_ino == st->st_ino;
}

static int hash_object(struct map_obj *o, pid_t pid, struct arca_hash_cache *cache, uint8_t out[32],
		       struct arca_errbuf *e)
{
	struct stat st, st2;
	char reopen[48];
	int rc = 0, fd = -1;
	/* O_PATH first: whatever now sits at the name (a device, a FIFO, a
	 * file of another user reached through a swapped directory) is not
	 * opened for reading, which for a device could have side effects,
	 * until it is known to be the very file that is mapped. */
	int pfd = open(o->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0) {
		int err = errno;
		return arca_errf(e, err == EACCES || err == EPERM ? ARCA_EDENIED : ARCA_EIO,
				 "cannot open %s (mapped by process %d) to measure it: %s", o->path, (int)pid,
				 err == ELOOP ? "it is now a symbolic link" : strerror(err));
	}
	if (fstat(pfd, &st) < 0) {
		rc = arca_errf(e, ARCA_EIO, "cannot stat %s: %s", o->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || !same_file(o, pid, &st)) {
		rc = arca_errf(e, ARCA_EDENIED,
			       "%s is not the file process %d has mapped (device %u:%u inode %ju mapped, %u:%u inode "
			       "%ju on disk): it was replaced after it was mapped, or the process sees another "
			       "file system",
			       o->path, (int)pid, major(o->dev), minor(o->dev), (uintmax_t)o->ino, major(st.st_dev),
			       minor(st.st_dev), (uintmax_t)st.st_ino);
		goto out;
	}
	o->disk_dev = st.st_dev;
	o->disk_ino = st.st_ino;
	const struct cache_ent *ce = cache ? cache_find(cache, &st) : NULL;
	if (ce != NULL) {
		memcpy(out, ce->sha256, 32);
		goto out;
	}
	snprintf(reopen, sizeof reopen, "/proc/self/fd/%d", pfd);
	fd = open(reopen, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int err = errno;
		rc = arca_errf(e, err == EACCES || err == EPERM ? ARCA_EDENIED : ARCA_EIO,
			       "cannot read %s (mapped by process %d) to measure it: %s", o->path, (int)pid,
			       strerror(err));
		goto out;
	}
	rc = arca_sha256_fd(fd, out);
	if (rc < 0) {
		rc = arca_errf(e, rc, "cannot read %s to measure it: %s", o->path, strerror(errno));
		goto out;
	}
	/* A hash of a file that changed under us describes neither version. */
	if (fstat(fd, &st2) < 0 || st2.st_size != st.st_size || !ts_eq(&st2.st_mtim, &st.st_mtim) ||
	    !ts_eq(&st2.st_ctim, &st.st_ctim)) {
		rc = arca_errf(e, ARCA_EDENIED, "%s changed while it was being measured", o->path);
		goto out;
	}
	if (cache != NULL)
		cache_put(cache, &st, out);
out:
	if (fd >= 0)
		close(fd);
	close(pfd);
	return rc;
}

/* The executable must be one of the measured objects, or the digest could
 * describe libraries while the code that runs comes from elsewhere. Runs
 * after hashing, when each object's identity as stat(2) sees it is known
 * (the same view stat of /proc/PID/exe gives). */
static int check_exe(pid_t pid, const struct obj_list *l, struct arca_errbuf *e)
{
	char link[64], target[PATH_MAX + 1];
	struct stat st;

	snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, target, sizeof target);
	if (n < 0)
		return arca_errf(e, errno == ENOENT ? ARCA_ENOTFOUND : ARCA_EDENIED,
				 "cannot read the executable of process %d: %s", (int)pid, strerror(errno));
	if ((size_t)n >= sizeof target)
		return arca_errf(e, ARCA_ETOOBIG, "the executable path of process %d is too long", (int)pid);
	target[n] = 0;
	if (stat(link, &st) < 0)
		return arca_errf(e, ARCA_EDENIED, "cannot stat the executable of process %d (%s): %s", (int)pid,
				 target, strerror(errno));
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, target) == 0 && l->v[i].disk_dev == st.st_dev && l->v[i].disk_ino == st.st_ino)
			return 0;
	return arca_errf(e, ARCA_EDENIED,
			 "the executable of process %d (%s) is not among its executable mappings; it cannot be "
			 "measured",
			 (int)pid, target);
}

static int cmp_obj(const void *a, const void *b)
{
	const struct arca_measure_obj *x = a, *y = b;
	return strcmp(x->path, y->path); /* strcmp orders as unsigned bytes */
}

int arca_measurement_digest(struct arca_measurement *m)
{
	struct arca_sha256 h;
	int rc;

	ENSURE(m != NULL && (m->objs != NULL || m->nobjs == 0), ARCA_EINVAL);
	for (size_t i = 0; i < m->nobjs; i++)
		ENSURE(m->objs[i].path != NULL, ARCA_EINVAL);
	if (m->nobjs > 1)
		qsort(m->objs, m->nobjs, sizeof(*m->objs), cmp_obj);
	/* Two entries under one name would make the list ambiguous. */
	for (size_t i = 1; i < m->nobjs; i++)
		ENSURE(strcmp(m->objs[i - 1].path, m->objs[i].path) != 0, ARCA_EINVAL);
	GUARD(arca_sha256_begin(&h));
	for (size_t i = 0; i < m->nobjs; i++) {
		GUARD_GOTO(arca_sha256_update(&h, m->objs[i].path, strlen(m->objs[i].path) + 1), fail);
		GUARD_GOTO(arca_sha256_update(&h, m->objs[i].sha256, 32), fail);
	}
	return arca_sha256_end(&h, m->digest);
fail:
	arca_sha256_abort(&h);
	return rc;
}

void arca_measurement_free(struct arca_measurement *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nobjs; i++)
		free(m->objs[i].path);
	free(m->objs);
	m->objs = NULL;
	m->nobjs = 0;
}

int arca_measure_pid(pid_t pid, struct arca_hash_cache *cache, struct arca_measurement *out,
		     struct arca_errbuf *e)
{
	struct obj_list l = {0};
	struct arca_measurement m = {0};
	int rc;

	if (out == NULL || pid <= 0)
		return arca_errf(e, ARCA_EINVAL, "no process to measure");
	memset(out, 0, sizeof(*out));
	GUARD_GOTO(collect_objects(pid, &l, e), out);
	m.objs = calloc(l.n, sizeof(*m.objs));
	ENSURE_GOTO(m.objs != NULL, arca_errf(e, ARCA_ENOMEM, "out of memory"), out);
	for (size_t i = 0; i < l.n; i++)
		GUARD_GOTO(hash_object(&l.v[i], pid, cache, m.objs[i].sha256, e), out);
	GUARD_GOTO(check_exe(pid, &l, e), out);
	for (size_t i = 0; i < l.n; i++) {
		m.objs[i].path = l.v[i].path;
		l.v[i].path = NULL;
		m.nobjs++;
	}
	GUARD_GOTO(arca_measurement_digest(&m), out);
	*out = m;
	memset(&m, 0, sizeof(m));
	rc = 0;
out:
	arca_measurement_free(&m);
	obj_list_free(&l);
	return rc;
}
