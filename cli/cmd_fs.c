/* cmd_fs.c: `arca fs seal|verify|ls|unseal`, protected volumes on a trusted
 * machine (docs/VOLUMES.md; the library is include/arca/volume.h).
 *
 * seal makes a code volume from a directory tree: a fresh key, written once
 * to a key file (0600, never overwritten) and never printed, and the tag
 * the owner pins in the session. A tree that holds anything a volume cannot
 * represent (symbolic links, devices, sockets, FIFOs, hard links) is
 * refused, every such path named, before anything is written. seal and
 * unseal remove everything they wrote when they fail or are interrupted,
 * so a failed run leaves nothing half-written behind. unseal writes only
 * what verified: the first block that does not verify stops it.
 *
 * Exit status: 0 done; 1 refused or failed (verify: the volume has
 * problems, including a manifest too damaged to open); 2 usage (verify:
 * the check could not run: no volume, a wrong key, a bad key file).
 *
 * Key files hold the 64 lower-case hex digits of the 32-byte key and a
 * newline. The key lives in locked memory and is wiped on every path out;
 * the copy buffers, which hold plaintext, are wiped before they are freed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/volume.h"

#define FS_USAGE                                                                             \
	"arca fs seal SRC DIR [--mode encrypted|authenticated] [--key-out FILE]\n"           \
	"       arca fs verify DIR --key-file FILE [--tag TAG]\n"                            \
	"       arca fs ls DIR --key-file FILE [--tag TAG] [-l]\n"                           \
	"       arca fs unseal DIR OUT --key-file FILE [--tag TAG]"
#define FS_HELP                                                                              \
	"usage: " FS_USAGE "\n"                                                              \
	"\n"                                                                                 \
	"  seal     make a new volume in DIR (absent or empty) from the tree SRC: regular\n"  \
	"           files and directories with their permission bits and mtimes (no links,\n" \
	"           devices, sockets or FIFOs). A fresh key goes to --key-out (default\n"     \
	"           DIR.key beside DIR; 0600, never overwritten) and is never printed;\n"     \
	"           the tag printed first (`tag <64 hex>`) is what the session pins.\n"       \
	"           --mode encrypted (default) hides contents and names; authenticated\n"    \
	"           only makes changes detectable (for code that may be read).\n"           \
	"  verify   read and check every block, leaf table and the manifest; each problem\n"  \
	"           as `DIR: PATH: WHAT`. Exit 0 intact, 1 problems, 2 could not check.\n"    \
	"  ls       list every entry, parents first (-l: type, mode, size, mtime in UTC).\n"  \
	"  unseal   write the plaintext tree to OUT (absent or empty); stops at the first\n"  \
	"           block that does not verify and removes what it wrote.\n"                  \
	"  --tag    refuse the volume unless its last commit has this tag (the pinned one).\n" \
	"Not kept: uids and gids (unsealed files belong to whoever unseals them), and\n"    \
	"the mode and mtime of SRC itself (a volume's root has none of its own).\n"

#define COPY_CHUNK ((size_t)1 << 20)
#define PROGRESS_BYTES ((uint64_t)64 << 20)
#define PROGRESS_FILES 1000
#define KEY_HEX (2 * ARCA_VOL_KEY_LEN)
/* Commit this often while sealing, so that the library's state for files
 * written since the last commit (descriptors, leaf tables) stays bounded. */
#define SEAL_COMMIT_FILES 256
#define SEAL_COMMIT_BYTES ((uint64_t)1 << 30)
/* Refused entries named one by one before the rest is summed up. */
#define SHOW_REFUSED 50

/* ---- small helpers ------------------------------------------------------ */

/* Writes s with control characters, DEL and backslash as \ooo, so that a
 * name cannot move the cursor or forge a line of output. */
static void put_escaped(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '\\')
			fprintf(f, "\\%03o", c);
		else
			fputc(c, f);
	}
}

/* Same into a buffer (for messages through cli_fail); truncates. */
static const char *esc(const char *s, char *out, size_t cap)
{
	size_t j = 0;

	for (; *s != '\0' && j + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '\\')
			j += (size_t)snprintf(out + j, cap - j, "\\%03o", c);
		else
			out[j++] = (char)c;
	}
	out[j] = '\0';
	return out;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec t;

	t.tv_sec = (time_t)(ns / 1000000000);
	t.tv_nsec = (long)(ns % 1000000000);
	if (t.tv_nsec < 0) {
		t.tv_nsec += 1000000000;
		t.tv_sec--;
	}
	return t;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

/* DIR without trailing slashes (a copy in out); "/" is refused. */
static int trim_dir(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);

	while (n > 1 && in[n - 1] == '/')
		n--;
	if (n == 0 || n >= cap)
		return -1;
	memcpy(out, in, n);
	out[n] = '\0';
	return 0;
}

/* The library's message without its leading "volume DIR: " (and "PATH: "
 * after that, when path is given): the CLI's own words already say both. */
static const char *lib_msg(const char *msg, const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (strncmp(msg, "volume ", 7) != 0 || strncmp(msg + 7, dir, n) != 0 || strncmp(msg + 7 + n, ": ", 2) != 0)
		return msg;
	msg += 7 + n + 2;
	if (path != NULL) {
		n = strlen(path);
		if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
			msg += n + 2;
	}
	return msg;
}

/* ---- signals: an interrupted seal or unseal cleans up ---------------------- */

static volatile sig_atomic_t fs_stop;

static void on_stop(int sig)
{
	fs_stop = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSTOP (sizeof stop_signals / sizeof stop_signals[0])

static void signals_catch(struct sigaction old[NSTOP])
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop; /* no SA_RESTART: a blocked read returns EINTR */
	sigemptyset(&sa.sa_mask);
	fs_stop = 0;
	for (size_t i = 0; i < NSTOP; i++)
		sigaction(stop_signals[i], &sa, &old[i]);
}

static void signals_restore(const struct sigaction old[NSTOP])
{
	for (size_t i = 0; i < NSTOP; i++)
		sigaction(stop_signals[i], &old[i], NULL);
}

/* ---- key files ------------------------------------------------------------- */

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Reads FILE strictly: exactly 64 hex digits and an optional newline.
 * Prints why not and returns -1. */
static int key_read(const char *file, uint8_t key[static ARCA_VOL_KEY_LEN])
{
	char buf[KEY_HEX + 3], ef[512];
	size_t n = 0, hexlen, got = 0;
	struct stat st;
	int fd, rc = -1;

	esc(file, ef, sizeof ef);
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return cli_fail("cannot open the key file %s: %s", ef, strerror(errno)), -1;
	if (fstat(fd, &st) != 0) {
		cli_fail("cannot stat the key file %s: %s", ef, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_fail("the key file %s is not a regular file; give the file arca fs seal wrote (64 hex digits)", ef);
		goto out;
	}
	if (st.st_size > KEY_HEX + 2) {
		cli_fail("the key file %s holds %lld bytes; a key file is exactly 64 hex digits and an optional "
			 "newline (is it the right file?)",
			 ef, (long long)st.st_size);
		goto out;
	}
	while (n < sizeof buf) {
		ssize_t r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_fail("cannot read the key file %s: %s", ef, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n == 0) {
		cli_fail("the key file %s is empty; it must hold the 64 hex digits of a 32-byte key", ef);
		goto out;
	}
	hexlen = n;
	if (buf[hexlen - 1] == '\n')
		hexlen--;
	if (hexlen > 0 && buf[hexlen - 1] == '\r') {
		cli_fail("the key file %s ends in CR LF; keep only the 64 hex digits and an optional LF newline", ef);
		goto out;
	}
	for (size_t i = 0; i < hexlen; i++) {
		if (!is_hex(buf[i])) {
			cli_fail("the key file %s: byte %zu is not a hex digit; a key file holds only the 64 hex "
				 "digits of the key and an optional newline",
				 ef, i + 1);
			goto out;
		}
	}
	if (hexlen != KEY_HEX) {
		cli_fail("the key file %s holds %zu hex digits; a key is exactly 64 (32 bytes)", ef, hexlen);
		goto out;
	}
	if (arca_hex_decode(buf, hexlen, key, ARCA_VOL_KEY_LEN, &got) < 0 || got != ARCA_VOL_KEY_LEN) {
		cli_fail("the key file %s does not hold a valid hex key", ef);
		goto out;
	}
	if ((st.st_mode & 077) != 0)
		fprintf(stderr, "arca: warning: the key file %s can be read by other users (mode %04o); chmod 600 it\n",
			ef, (unsigned)(st.st_mode & 07777));
	rc = 0;
out:
	arca_wipe(buf, sizeof buf);
	close(fd);
	return rc;
}

/* Secret memory for a key; NULL after printing why. */
static uint8_t *key_alloc(void)
{
	uint8_t *k = arca_secret_alloc(ARCA_VOL_KEY_LEN);

	if (k == NULL)
		cli_fail("cannot allocate locked memory for the volume key (check `ulimit -l`)");
	return k;
}

static void key_free(uint8_t *k)
{
	if (k != NULL)
		arca_secret_free(k, ARCA_VOL_KEY_LEN); /* wipes */
}

/* fsync of the directory that holds path, so that a new name is durable. */
static int sync_parent(const char *path)
{
	char d[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == NULL) {
		d[0] = '.';
		d[1] = '\0';
	} else if (slash == path) {
		d[0] = '/';
		d[1] = '\0';
	} else {
		size_t n = (size_t)(slash - path);
		if (n >= sizeof d)
			return -1;
		memcpy(d, path, n);
		d[n] = '\0';
	}
	fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Writes the key (64 lower-case hex + newline) to fd, made by key_reserve. */
static int key_write(int fd, const char *file, const uint8_t key[static ARCA_VOL_KEY_LEN])
{
	char hex[KEY_HEX + 1], ef[512];
	size_t off = 0;
	int rc = 0;

	esc(file, ef, sizeof ef);
	arca_hex_encode(key, ARCA_VOL_KEY_LEN, hex);
	hex[KEY_HEX] = '\n';
	while (off < sizeof hex) {
		ssize_t w = write(fd, hex + off, sizeof hex - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = cli_fail("cannot write the key file %s: %s", ef, w < 0 ? strerror(errno) : "short write");
			break;
		}
		off += (size_t)w;
	}
	arca_wipe(hex, sizeof hex);
	if (rc == 0 && fsync(fd) != 0)
		rc = cli_fail("cannot flush the key file %s: %s", ef, strerror(errno));
	if (rc == 0 && sync_parent(file) != 0)
		rc = cli_fail("cannot flush the directory of the key file %s: %s", ef, strerror(errno));
	return rc == 0 ? 0 : -1;
}

/* ---- progress ------------------------------------------------------------------ */

/* A bar on stderr when it is a terminal and the work is large. */
struct progress {
	int on, drawn;
	const char *what;
	uint64_t total, done;
	double t0, last;
};

static void progress_start(struct progress *p, const char *what, uint64_t total, uint64_t files)
{
	memset(p, 0, sizeof *p);
	p->what = what;
	p->total = total;
	p->on = isatty(STDERR_FILENO) && (total > PROGRESS_BYTES || files > PROGRESS_FILES);
	p->t0 = p->last = now_s();
}

static void progress_draw(struct progress *p, double t)
{
	char bar[25];
	unsigned pct = p->total > 0 ? (unsigned)(p->done * 100 / p->total) : 100;
	double el = t - p->t0;
	size_t fill;

	if (pct > 100)
		pct = 100;
	fill = pct * (sizeof bar - 1) / 100;
	for (size_t i = 0; i < sizeof bar - 1; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[sizeof bar - 1] = '\0';
	fprintf(stderr, "\r%s [%s] %.1f/%.1f MiB %3u%% %.1f MiB/s\033[K", p->what, bar, mib(p->done), mib(p->total),
		pct, el > 0 ? mib(p->done) / el : 0.0);
	p->drawn = 1;
	p->last = t;
}

static void progress_add(struct progress *p, uint64_t n)
{
	double t;

	p->done += n;
	if (!p->on)
		return;
	t = now_s();
	if (t - p->last >= 0.2)
		progress_draw(p, t);
}

/* ok: draw the final state; else just end the line so that a message
 * starts on its own. */
static void progress_end(struct progress *p, int ok)
{
	if (!p->on)
		return;
	if (ok)
		progress_draw(p, now_s());
	if (p->drawn)
		fputc('\n', stderr);
	p->on = 0;
}

/* ---- entry lists ---------------------------------------------------------------- */

struct fent {
	char *path; /* relative to the tree; never "" */
	int dir;
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	dev_t dev; /* seal: the source file, to see it change */
	ino_t ino;
};

struct flist {
	struct fent *e;
	size_t n, cap;
	uint64_t bytes, files, dirs;
};

static void flist_free(struct flist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].path);
	free(l->e);
	memset(l, 0, sizeof *l);
}

static struct fent *flist_add(struct flist *l, const char *path)
{
	struct fent *x;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct fent *ne = realloc(l->e, ncap * sizeof *ne);
		if (ne == NULL)
			return NULL;
		l->e = ne;
		l->cap = ncap;
	}
	x = &l->e[l->n];
	memset(x, 0, sizeof *x);
	x->path = strdup(path);
	if (x->path == NULL)
		return NULL;
	l->n++;
	return x;
}

/* ---- removing what we wrote ----------------------------------------------------- */

/* Removes everything under dirfd (which it closes), not following links. */
static int rm_under(int dirfd)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		close(dirfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -1;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub;
			/* unseal may have made it read-only; if this fails, the
			 * removals below fail and say so. */
			if (fchmodat(dirfd, de->d_name, 0700, 0) != 0)
				rc = -1;
			sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || rm_under(sub) != 0)
				rc = -1;
			if (unlinkat(dirfd, de->d_name, AT_REMOVEDIR) != 0)
				rc = -1;
		} else if (unlinkat(dirfd, de->d_name, 0) != 0) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* Removes what is in path, and path itself when self. */
static int rm_tree(const char *path, int self)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (rm_under(fd) != 0)
		return -1;
	if (self && rmdir(path) != 0)
		return -1;
	return 0;
}

/* 0 absent, 1 an empty directory, -1 otherwise (printed). */
static int dir_state(const char *path, const char *role, const char *cmd)
{
	char ep[512];
	struct stat st;
	DIR *d;
	struct dirent *de;
	int empty = 1;

	esc(path, ep, sizeof ep);
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return cli_fail("cannot stat %s: %s", ep, strerror(errno)), -1;
	}
	if (!S_ISDIR(st.st_mode))
		return cli_fail("%s %s exists and is not a directory; %s writes into an absent or empty directory",
				role, ep, cmd),
		       -1;
	d = opendir(path);
	if (d == NULL)
		return cli_fail("cannot read %s: %s", ep, strerror(errno)), -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	if (!empty)
		return cli_fail("%s %s is not empty; %s writes only into an absent or empty directory, so that "
				"nothing is overwritten",
				role, ep, cmd),
		       -1;
	return 1;
}

/* The absolute, resolved form of path, which need not exist (its parent
 * must). */
static int resolve(const char *path, char *out, size_t cap)
{
	char buf[PATH_MAX], parent[PATH_MAX];
	const char *slash, *base;
	int n;

	if (realpath(path, buf) != NULL) {
		n = snprintf(out, cap, "%s", buf);
		return n < 0 || (size_t)n >= cap ? -1 : 0;
	}
	if (errno != ENOENT)
		return -1;
	slash = strrchr(path, '/');
	if (slash == NULL) {
		n = snprintf(parent, sizeof parent, ".");
		base = path;
	} else {
		n = snprintf(parent, sizeof parent, "%.*s", (int)(slash == path ? 1 : slash - path), path);
		base = slash + 1;
	}
	if (n < 0 || (size_t)n >= sizeof parent || realpath(parent, buf) == NULL)
		return -1;
	n = snprintf(out, cap, "%s/%s", strcmp(buf, "/") == 0 ? "" : buf, base);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* 1 when b is a or below it (both resolved). */
static int path_within(const char *b, const char *a)
{
	size_t n = strlen(a);

	if (strcmp(a, "/") == 0)
		return 1;
	return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

/* ---- seal: scanning the source --------------------------------------------------- */

struct scan {
	const char *src; /* as given, for messages */
	int rootfd;
	struct flist *l;
	size_t refused;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_refuse(struct scan *s, const char *rel, const char *what)
{
	char er[600], es[300];

	if (s->refused++ < SHOW_REFUSED)
		cli_fail("%s/%s %s", esc(s->src, es, sizeof es), esc(rel, er, sizeof er), what);
}

/* Lists dir rel (relative to s->rootfd; "" the root) into s->l, then each
 * subdirectory: parents come before children. -1 on a system error
 * (printed); refused entries are counted in s->refused. */
static int scan_dir(struct scan *s, const char *rel)
{
	char **names = NULL, er[600], es[300];
	size_t n = 0, cap = 0, first = s->l->n;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(s->rootfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cli_fail("cannot open %s/%s: %s", esc(s->src, es, sizeof es), esc(rel, er, sizeof er),
				strerror(errno)),
		       -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return cli_fail("cannot read %s/%s: %s", esc(s->src, es, sizeof es), esc(rel, er, sizeof er),
				strerror(errno)),
		       -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nn = realloc(names, nc * sizeof *nn);
			if (nn == NULL)
				goto oom;
			names = nn;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto oom;
		n++;
		errno = 0;
	}
	if (errno != 0) {
		rc = cli_fail("cannot read %s/%s: %s", esc(s->src, es, sizeof es), esc(rel, er, sizeof er),
			      strerror(errno));
		rc = -1;
		goto out;
	}
	if (n > 0)
		qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t rl = strlen(rel), nl = strlen(names[i]);
		char *child;
		struct stat st;
		struct fent *x;

		if (rl + (rl ? 1 : 0) + nl > ARCA_VOL_PATH_MAX) {
			scan_refuse(s, rel,
				    "has an entry whose path is longer than 4095 bytes, the most a volume holds");
			continue;
		}
		child = malloc(rl + 1 + nl + 1);
		if (child == NULL)
			goto oom;
		memcpy(child, rel, rl);
		if (rl)
			child[rl++] = '/';
		memcpy(child + rl, names[i], nl + 1);
		if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			cli_fail("cannot stat %s/%s: %s", esc(s->src, es, sizeof es), esc(child, er, sizeof er),
				 strerror(errno));
			free(child);
			rc = -1;
			goto out;
		}
		if (S_ISLNK(st.st_mode))
			scan_refuse(s, child, "is a symbolic link; a volume holds only regular files and directories "
					      "(replace it by a copy of its target, or remove it)");
		else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			scan_refuse(s, child, "is a device; a volume holds only regular files and directories");
		else if (S_ISSOCK(st.st_mode))
			scan_refuse(s, child, "is a socket; a volume holds only regular files and directories");
		else if (S_ISFIFO(st.st_mode))
			scan_refuse(s, child, "is a FIFO; a volume holds only regular files and directories");
		else if (S_ISREG(st.st_mode) && st.st_nlink > 1)
			scan_refuse(s, child, "is a hard link (the file has several names); a volume has no hard "
					      "links: make each name a copy of its own");
		else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			scan_refuse(s, child, "is neither a regular file nor a directory");
		else if ((x = flist_add(s->l, child)) == NULL) {
			free(child);
			goto oom;
		} else {
			x->dir = S_ISDIR(st.st_mode);
			x->mode = (uint32_t)(st.st_mode & 07777);
			x->mtime_ns = ts_ns(&st.st_mtim);
			x->size = x->dir ? 0 : (uint64_t)st.st_size;
			x->dev = st.st_dev;
			x->ino = st.st_ino;
			if (x->dir)
				s->l->dirs++;
			else {
				s->l->files++;
				s->l->bytes += x->size;
			}
		}
		free(child);
	}
	closedir(d);
	d = NULL;
	/* Subdirectories after this directory's own entries; s->l->e may move
	 * while recursing, so index it afresh each time. */
	for (size_t i = first, end = s->l->n; i < end && rc == 0; i++) {
		char *sub;
		if (!s->l->e[i].dir)
			continue;
		sub = strdup(s->l->e[i].path);
		if (sub == NULL)
			goto oom;
		rc = scan_dir(s, sub);
		free(sub);
	}
out:
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
oom:
	rc = cli_fail("out of memory while listing %s", esc(s->src, es, sizeof es));
	rc = -1;
	goto out;
}

/* ---- seal: copying -------------------------------------------------------------- */

struct seal {
	const char *src, *dir;
	int rootfd;
	struct arca_vol *v;
	uint8_t *buf; /* COPY_CHUNK, plaintext */
	struct progress pg;
};

static int vol_err(const char *dir, const char *path, const char *doing, int rc)
{
	char ed[512], ep[600];

	return cli_fail("cannot %s %s in the volume %s: %s", doing, esc(path, ep, sizeof ep), esc(dir, ed, sizeof ed),
			arca_strerror(rc));
}

static int changed(const struct seal *s, const char *path)
{
	char es[300], ep[600];

	return cli_fail("%s/%s changed while it was being sealed; seal again when nothing writes to the tree",
			esc(s->src, es, sizeof es), esc(path, ep, sizeof ep));
}

static int same_file(const struct stat *st, const struct fent *x)
{
	return S_ISREG(st->st_mode) && st->st_dev == x->dev && st->st_ino == x->ino && st->st_nlink == 1 &&
	       (uint64_t)st->st_size == x->size && ts_ns(&st->st_mtim) == x->mtime_ns;
}

/* Copies one regular file into the volume. 0, or -1 after printing why. */
static int seal_file(struct seal *s, const struct fent *x)
{
	char es[300], ep[600];
	struct arca_vfile *f = NULL;
	struct stat st;
	uint64_t off = 0;
	int fd, rc;

	fd = openat(s->rootfd, x->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail("cannot open %s/%s: %s", esc(s->src, es, sizeof es), esc(x->path, ep, sizeof ep),
				strerror(errno)),
		       -1;
	if (fstat(fd, &st) != 0 || !same_file(&st, x)) {
		close(fd);
		return changed(s, x->path), -1;
	}
	rc = arca_vfile_open(s->v, x->path, O_WRONLY | O_CREAT | O_EXCL, 0600, &f);
	if (rc < 0) {
		close(fd);
		return vol_err(s->dir, x->path, "create", rc), -1;
	}
	for (;;) {
		ssize_t r;
		size_t done = 0;
		if (fs_stop)
			goto fail;
		r = read(fd, s->buf, COPY_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_fail("cannot read %s/%s: %s", esc(s->src, es, sizeof es), esc(x->path, ep, sizeof ep),
				 strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		if (off + (uint64_t)r > x->size) {
			changed(s, x->path);
			goto fail;
		}
		while (done < (size_t)r) {
			ssize_t w = arca_vfile_pwrite(f, s->buf + done, (size_t)r - done, off + done);
			if (w <= 0) {
				vol_err(s->dir, x->path, "write", w < 0 ? (int)w : ARCA_EIO);
				goto fail;
			}
			done += (size_t)w;
		}
		off += (uint64_t)r;
		progress_add(&s->pg, (uint64_t)r);
	}
	if (off != x->size || fstat(fd, &st) != 0 || !same_file(&st, x)) {
		changed(s, x->path);
		goto fail;
	}
	close(fd);
	arca_vfile_close(f);
	if ((rc = arca_vol_chmod(s->v, x->path, x->mode)) < 0)
		return vol_err(s->dir, x->path, "set the mode of", rc), -1;
	if ((rc = arca_vol_utime(s->v, x->path, x->mtime_ns)) < 0)
		return vol_err(s->dir, x->path, "set the mtime of", rc), -1;
	return 0;
fail:
	close(fd);
	arca_vfile_close(f);
	return -1;
}

/* A name for the volume in the session snippet: DIR's last component,
 * cut to what a policy name allows. */
static void snippet_name(const char *dir, char *out, size_t cap)
{
	const char *b = strrchr(dir, '/');
	size_t j = 0;

	b = b ? b + 1 : dir;
	for (; *b != '\0' && j + 1 < cap && j < 100; b++) {
		char c = *b;
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			 c == '.' || c == '~' || c == '-';
		out[j++] = ok ? c : '-';
	}
	out[j] = '\0';
	if (j == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
		snprintf(out, cap, "code");
}

static int commit(struct seal *s)
{
	struct arca_errbuf e = {{0}};
	char ed[512];

	if (arca_vol_commit(s->v, &e) < 0)
		return cli_fail("cannot commit the volume %s: %s", esc(s->dir, ed, sizeof ed), e.msg), -1;
	return 0;
}

static int fs_seal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"key-out", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char usage[] = "arca fs seal SRC DIR [--mode encrypted|authenticated] [--key-out FILE]";
	char dir[PATH_MAX], keypath[PATH_MAX + 8], rsrc[PATH_MAX], rdir[PATH_MAX], rkey[PATH_MAX];
	char es[300], ed[300], ek[300], taghex[ARCA_VOL_TAG_HEX], name[128];
	const char *src, *keyout = NULL;
	enum arca_vol_mode mode = ARCA_VOL_ENCRYPTED;
	struct sigaction oldsig[NSTOP];
	struct arca_errbuf e = {{0}};
	struct flist l = {0};
	struct scan sc;
	struct seal s;
	uint8_t tag[ARCA_VOL_TAG_LEN];
	uint8_t *key = NULL;
	int c, rc, dir_existed = 1, keyfd = -1, made = 0, created = 0, status = 1;
	size_t since_files = 0;
	uint64_t since_bytes = 0;

	memset(&s, 0, sizeof s);
	s.rootfd = -1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (strcmp(optarg, "encrypted") == 0)
				mode = ARCA_VOL_ENCRYPTED;
			else if (strcmp(optarg, "authenticated") == 0)
				mode = ARCA_VOL_AUTHENTICATED;
			else
				return cli_fail("unknown --mode %s; use encrypted (the default: contents and names "
						"hidden) or authenticated (readable, changes detected)",
						esc(optarg, es, sizeof es)),
				       2;
			break;
		case 'k':
			keyout = optarg;
			break;
		case 'h':
			fputs(FS_HELP, stdout);
			return 0;
		default:
			return cli_usage(usage);
		}
	}
	if (argc - optind != 2)
		return cli_usage(usage);
	src = argv[optind];
	if (trim_dir(argv[optind + 1], dir, sizeof dir) != 0 || strcmp(dir, "/") == 0)
		return cli_fail("%s cannot hold a volume; name a new or empty directory",
				esc(argv[optind + 1], ed, sizeof ed));
	if (keyout != NULL && keyout[0] == '\0')
		return cli_usage(usage);
	if (keyout == NULL)
		snprintf(keypath, sizeof keypath, "%s.key", dir);
	else
		snprintf(keypath, sizeof keypath, "%s", keyout);
	esc(src, es, sizeof es);
	esc(dir, ed, sizeof ed);
	esc(keypath, ek, sizeof ek);
	s.src = src;
	s.dir = dir;

	/* Everything that can be refused is refused before anything is
	 * written: the source, where the volume and the key go, the tree. */
	s.rootfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.rootfd < 0 && errno == ENOTDIR)
		return cli_fail("%s is not a directory; arca fs seal copies a directory tree", es);
	if (s.rootfd < 0)
		return cli_fail("cannot open %s: %s", es, strerror(errno));
	if (resolve(src, rsrc, sizeof rsrc) != 0 || resolve(dir, rdir, sizeof rdir) != 0) {
		cli_fail("cannot resolve %s or %s (does the directory that is to hold %s exist?)", es, ed, ed);
		goto out;
	}
	if (path_within(rdir, rsrc)) {
		cli_fail("%s is inside %s; seal into a directory outside the tree", ed, es);
		goto out;
	}
	if ((dir_existed = dir_state(dir, "the volume directory", "arca fs seal")) < 0)
		goto out;
	if (resolve(keypath, rkey, sizeof rkey) != 0) {
		cli_fail("cannot resolve the key file %s: does its directory exist?", ek);
		goto out;
	}
	if (path_within(rkey, rsrc) || path_within(rkey, rdir)) {
		cli_fail("the key file %s would be inside %s; keep the key outside both the tree and the volume "
			 "(--key-out FILE)",
			 ek, path_within(rkey, rsrc) ? es : ed);
		goto out;
	}
	{
		struct stat kst;
		if (lstat(keypath, &kst) == 0) {
			cli_fail("the key file %s already exists; a key file is never overwritten: move it away or "
				 "give another with --key-out FILE",
				 ek);
			goto out;
		}
	}
	sc.src = src;
	sc.rootfd = s.rootfd;
	sc.l = &l;
	sc.refused = 0;
	if (scan_dir(&sc, "") != 0)
		goto out;
	if (sc.refused > 0) {
		if (sc.refused > SHOW_REFUSED)
			cli_fail("… and %zu more", sc.refused - SHOW_REFUSED);
		cli_fail("%s holds %zu %s a volume cannot hold (above); nothing was written", es, sc.refused,
			 sc.refused == 1 ? "entry" : "entries");
		goto out;
	}

	if ((key = key_alloc()) == NULL)
		goto out;
	if (arca_random(key, ARCA_VOL_KEY_LEN) < 0) {
		cli_fail("cannot get random bytes for the key");
		goto out;
	}
	s.buf = malloc(COPY_CHUNK);
	if (s.buf == NULL) {
		cli_fail("out of memory");
		goto out;
	}
	/* The key file's name is taken first, so that a long copy does not end
	 * in finding it taken. */
	signals_catch(oldsig);
	keyfd = open(keypath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (keyfd < 0) {
		signals_restore(oldsig);
		cli_fail("cannot create the key file %s: %s", ek, strerror(errno));
		goto out;
	}
	made = 1;
	if (fchmod(keyfd, 0600) != 0) {
		cli_fail("cannot make the key file %s 0600: %s", ek, strerror(errno));
		goto out;
	}
	rc = arca_vol_create(dir, key, mode, tag, &e);
	if (rc < 0) {
		cli_fail("cannot create a volume in %s: %s", ed, e.msg);
		/* Someone else's files that appeared since the check stay. */
		created = rc != ARCA_ENOTEMPTY && rc != ARCA_EEXIST;
		goto out;
	}
	created = 1;
	rc = arca_vol_open(dir, key, tag, 0, &s.v, &e);
	if (rc < 0) {
		cli_fail("cannot open the new volume %s: %s", ed, e.msg);
		goto out;
	}
	progress_start(&s.pg, "sealing", l.bytes, l.files);
	for (size_t i = 0; i < l.n; i++) {
		const struct fent *x = &l.e[i];
		if (fs_stop)
			goto out;
		if (x->dir) {
			/* Its own mode and mtime come last: adding entries
			 * changes a directory's mtime. */
			rc = arca_vol_mkdir(s.v, x->path, 0700);
			if (rc < 0) {
				vol_err(dir, x->path, "make the directory", rc);
				goto out;
			}
			continue;
		}
		if (seal_file(&s, x) != 0)
			goto out;
		since_files++;
		since_bytes += x->size;
		if (since_files >= SEAL_COMMIT_FILES || since_bytes >= SEAL_COMMIT_BYTES) {
			if (commit(&s) != 0)
				goto out;
			since_files = 0;
			since_bytes = 0;
		}
	}
	for (size_t i = l.n; i-- > 0;) {
		const struct fent *x = &l.e[i];
		if (!x->dir)
			continue;
		if ((rc = arca_vol_chmod(s.v, x->path, x->mode)) < 0) {
			vol_err(dir, x->path, "set the mode of", rc);
			goto out;
		}
		if ((rc = arca_vol_utime(s.v, x->path, x->mtime_ns)) < 0) {
			vol_err(dir, x->path, "set the mtime of", rc);
			goto out;
		}
	}
	if (fs_stop || commit(&s) != 0)
		goto out;
	arca_vol_tag(s.v, tag);
	arca_vol_close(s.v);
	s.v = NULL;
	if (fs_stop || key_write(keyfd, keypath, key) != 0)
		goto out;
	if (close(keyfd) != 0) {
		keyfd = -1;
		cli_fail("cannot close the key file %s: %s", ek, strerror(errno));
		goto out;
	}
	keyfd = -1;
	progress_end(&s.pg, 1);
	status = 0;

	arca_vol_tag_hex(tag, taghex);
	snippet_name(dir, name, sizeof name);
	printf("tag %s\n", taghex);
	printf("sealed %llu files (%.1f MiB) and %llu directories from %s into %s (%s)\n",
	       (unsigned long long)l.files, mib(l.bytes), (unsigned long long)l.dirs, es, ed,
	       mode == ARCA_VOL_ENCRYPTED ? "encrypted" : "authenticated");
	printf("key: %s (0600; keep it secret and out of any repository; it is not printed)\n", ek);
	printf("Pin the tag in the session and give it the key as a 32-byte binary secret:\n");
	printf("  secrets:\n");
	printf("    - {name: %s_key, kind: binary, value: \"<the 64 hex digits in %s>\"}\n", name, ek);
	printf("  volumes:\n");
	printf("    - {name: %s, mode: %s, key: %s_key, tag: \"%s\"}\n", name,
	       mode == ARCA_VOL_ENCRYPTED ? "encrypted" : "authenticated", name, taghex);
	printf("  and under the service: volumes: [{name: %s, path: /WHERE/THE/PROGRAM/SEES/IT}]\n", name);
out:
	if (status != 0) {
		progress_end(&s.pg, 0);
		arca_vol_close(s.v);
		if (keyfd >= 0)
			close(keyfd);
		if (made) {
			int left = 0;
			if (unlink(keypath) != 0 && errno != ENOENT)
				left = cli_fail("could not remove the key file %s: %s; remove it", ek, strerror(errno));
			if (created && rm_tree(dir, dir_existed == 0) != 0)
				left = cli_fail("could not remove everything in %s; remove it before sealing again",
						ed);
			if (fs_stop)
				cli_fail("interrupted (signal %d)", (int)fs_stop);
			if (!left)
				cli_fail("nothing was kept: %s", created ? "the volume and the key file were removed"
									 : "the key file was removed");
			signals_restore(oldsig);
			if (fs_stop)
				status = 128 + fs_stop;
		}
	} else {
		signals_restore(oldsig);
	}
	if (s.buf != NULL) {
		arca_wipe(s.buf, COPY_CHUNK);
		free(s.buf);
	}
	key_free(key);
	flist_free(&l);
	if (s.rootfd >= 0)
		close(s.rootfd);
	return status;
}

/* ---- opening an existing volume ------------------------------------------------- */

struct ropts {
	const char *dir, *out, *keyfile, *tag;
	int longfmt;
};

/* Parses DIR [OUT] --key-file FILE [--tag TAG] [-l]; returns 0, or the
 * exit status (2 usage, 0 for --help) as a negative number. */
static int parse_ropts(int argc, char **argv, int npos, int allow_l, const char *usage, struct ropts *o)
{
	static const struct option opts[] = {
		{"key-file", required_argument, NULL, 'k'},
		{"tag", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof *o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, allow_l ? "l" : "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o->keyfile = optarg;
			break;
		case 't':
			o->tag = optarg;
			break;
		case 'l':
			o->longfmt = 1;
			break;
		case 'h':
			fputs(FS_HELP, stdout);
			return -0x100;
		default:
			return -cli_usage(usage);
		}
	}
	if (argc - optind != npos || o->keyfile == NULL) {
		if (o->keyfile == NULL && argc - optind == npos)
			fprintf(stderr, "arca: --key-file FILE is required: the file arca fs seal wrote the key to\n");
		return -cli_usage(usage);
	}
	o->dir = argv[optind];
	o->out = npos > 1 ? argv[optind + 1] : NULL;
	return 0;
}

/* Opens o->dir read-only. Returns 0; 1 when the volume is damaged (it
 * exists, the key is right, its header or manifest does not verify), with
 * the reason in damage and nothing printed; 2 for everything else, after
 * printing why. */
static int ropen(const struct ropts *o, struct arca_vol **v, struct arca_errbuf *damage)
{
	struct arca_errbuf e = {{0}};
	uint8_t tag[ARCA_VOL_TAG_LEN], *key;
	char ed[512], ek[512];
	int rc;

	*v = NULL;
	esc(o->dir, ed, sizeof ed);
	esc(o->keyfile, ek, sizeof ek);
	if (o->tag != NULL && (strlen(o->tag) != 2 * ARCA_VOL_TAG_LEN || arca_vol_tag_parse(o->tag, tag) < 0))
		return cli_fail("--tag must be the 64 hex digits arca fs seal printed"), 2;
	if ((key = key_alloc()) == NULL)
		return 2;
	if (key_read(o->keyfile, key) != 0) {
		key_free(key);
		return 2;
	}
	rc = arca_vol_open(o->dir, key, o->tag != NULL ? tag : NULL, ARCA_VOL_RDONLY, v, &e);
	key_free(key);
	switch (rc) {
	case 0:
		return 0;
	case ARCA_EDENIED:
		cli_fail("the key in %s does not open the volume %s: a wrong key, or another volume's; give the key "
			 "file arca fs seal wrote for this volume",
			 ek, ed);
		return 2;
	case ARCA_ESTALE:
		cli_fail("the volume %s is not the one pinned by --tag: %s", ed, lib_msg(e.msg, o->dir, NULL));
		return 2;
	case ARCA_EBUSY:
		cli_fail("the volume %s is being written by another process; try again when it is done (%s)", ed,
			 lib_msg(e.msg, o->dir, NULL));
		return 2;
	case ARCA_ECRYPTO:
	case ARCA_EPARSE:
		snprintf(damage->msg, sizeof damage->msg, "%s", lib_msg(e.msg, o->dir, NULL));
		return 1;
	default:
		cli_fail("cannot open the volume %s: %s", ed,
			 e.msg[0] ? lib_msg(e.msg, o->dir, NULL) : arca_strerror(rc));
		return 2;
	}
}

static int damaged(const char *dir, const char *msg)
{
	char ed[512];

	return cli_fail("the volume %s is damaged and cannot be opened: %s; do not use it: seal it again from its "
			"source (arca fs verify says more)",
			esc(dir, ed, sizeof ed), msg);
}

static int collect_cb(const char *name, const struct arca_vol_stat *st, void *arg)
{
	struct flist *l = arg;
	struct fent *x;

	if (name[0] == '\0')
		return 0; /* the root, if the walk gives it */
	if ((x = flist_add(l, name)) == NULL)
		return ARCA_ENOMEM;
	x->dir = st->type == ARCA_VOL_DIR;
	x->mode = st->mode;
	x->mtime_ns = st->mtime_ns;
	x->size = x->dir ? 0 : st->size;
	if (x->dir)
		l->dirs++;
	else {
		l->files++;
		l->bytes += x->size;
	}
	return 0;
}

static int collect(struct arca_vol *v, const char *dir, struct flist *l)
{
	char ed[512];
	int rc = arca_vol_walk(v, collect_cb, l);

	if (rc < 0)
		return cli_fail("cannot list the volume %s: %s", esc(dir, ed, sizeof ed), arca_strerror(rc)), -1;
	return 0;
}

/* ---- verify ---------------------------------------------------------------------------- */

struct vctx {
	const char *dir;
	unsigned long problems;
	struct progress pg;
	int pg_started;
	uint64_t files;
};

static void verify_problem(const char *path, const char *what, void *arg)
{
	struct vctx *c = arg;

	if (c->pg.on && c->pg.drawn) {
		fputs("\r\033[K", stderr);
		c->pg.drawn = 0;
	}
	c->problems++;
	put_escaped(stdout, c->dir);
	fputs(": ", stdout);
	if (path != NULL && path[0] != '\0') {
		put_escaped(stdout, path);
		fputs(": ", stdout);
	}
	put_escaped(stdout, what);
	fputc('\n', stdout);
	fflush(stdout);
}

static void verify_progress(uint64_t done, uint64_t total, void *arg)
{
	struct vctx *c = arg;

	if (!c->pg_started) {
		progress_start(&c->pg, "verifying", total, c->files);
		c->pg_started = 1;
	}
	c->pg.total = total;
	if (done > c->pg.done)
		progress_add(&c->pg, done - c->pg.done);
}

static int fs_verify(int argc, char **argv)
{
	static const char usage[] = "arca fs verify DIR --key-file FILE [--tag TAG]";
	struct arca_errbuf damage = {{0}};
	struct ropts o;
	struct arca_vol *v;
	struct flist l = {0};
	struct vctx c;
	char taghex[ARCA_VOL_TAG_HEX];
	uint8_t tag[ARCA_VOL_TAG_LEN];
	int rc;

	if ((rc = parse_ropts(argc, argv, 1, 0, usage, &o)) < 0)
		return rc == -0x100 ? 0 : -rc;
	memset(&c, 0, sizeof c);
	c.dir = o.dir;
	rc = ropen(&o, &v, &damage);
	if (rc == 1) {
		/* Damage found before the check could start: that is a problem
		 * of the volume, not of the command line. */
		verify_problem("", damage.msg, &c);
		printf("%s: 1 problem: the volume cannot be opened; do not use it: seal it again from its source\n",
		       o.dir);
		return 1;
	}
	if (rc != 0)
		return rc;
	if (collect(v, o.dir, &l) == 0)
		c.files = l.files;
	rc = arca_vol_verify(v, verify_problem, verify_progress, &c);
	progress_end(&c.pg, rc >= 0 && c.problems == 0);
	arca_vol_tag(v, tag);
	arca_vol_tag_hex(tag, taghex);
	arca_vol_close(v);
	if (rc < 0) {
		char ed[512];
		flist_free(&l);
		if (c.problems > 0) {
			printf("%s: %lu problem%s before the check stopped: %s\n", o.dir, c.problems,
			       c.problems == 1 ? "" : "s", arca_strerror(rc));
			return 1;
		}
		return cli_fail("the check of %s could not run to the end: %s", esc(o.dir, ed, sizeof ed),
				arca_strerror(rc)),
		       2;
	}
	if (rc > 0 || c.problems > 0) {
		unsigned long n = c.problems > (unsigned long)rc ? c.problems : (unsigned long)rc;
		printf("%s: %lu problem%s; do not use this volume: seal it again from its source\n", o.dir, n,
		       n == 1 ? "" : "s");
		flist_free(&l);
		return 1;
	}
	printf("%s: intact: %llu files (%.1f MiB) and %llu directories verified; tag %s\n", o.dir,
	       (unsigned long long)l.files, mib(l.bytes), (unsigned long long)l.dirs, taghex);
	flist_free(&l);
	return 0;
}

/* ---- ls ---------------------------------------------------------------------------------- */

static void mode_string(int dir, uint32_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";

	out[0] = dir ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		out[1 + i] = (m & (0400u >> i)) ? rwx[i] : '-';
	if (m & 04000)
		out[3] = (m & 0100) ? 's' : 'S';
	if (m & 02000)
		out[6] = (m & 0010) ? 's' : 'S';
	if (m & 01000)
		out[9] = (m & 0001) ? 't' : 'T';
	out[10] = '\0';
}

static void time_string(int64_t ns, char *out, size_t cap)
{
	struct timespec t = ns_ts(ns);
	struct tm tm;

	if (gmtime_r(&t.tv_sec, &tm) == NULL) {
		snprintf(out, cap, "%lld ns", (long long)ns);
		return;
	}
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, t.tv_nsec);
}

static int fs_ls(int argc, char **argv)
{
	static const char usage[] = "arca fs ls DIR --key-file FILE [--tag TAG] [-l]";
	struct arca_errbuf damage = {{0}};
	struct ropts o;
	struct arca_vol *v;
	struct flist l = {0};
	int rc;

	if ((rc = parse_ropts(argc, argv, 1, 1, usage, &o)) < 0)
		return rc == -0x100 ? 0 : -rc;
	if ((rc = ropen(&o, &v, &damage)) != 0)
		return rc == 1 ? damaged(o.dir, damage.msg) : 1;
	rc = collect(v, o.dir, &l);
	arca_vol_close(v);
	if (rc != 0) {
		flist_free(&l);
		return 1;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct fent *x = &l.e[i];
		if (o.longfmt) {
			char ms[11], ts[48];
			mode_string(x->dir, x->mode, ms);
			time_string(x->mtime_ns, ts, sizeof ts);
			printf("%s %12llu %s ", ms, (unsigned long long)x->size, ts);
		}
		put_escaped(stdout, x->path);
		fputs(x->dir ? "/\n" : "\n", stdout);
	}
	flist_free(&l);
	if (fflush(stdout) != 0)
		return cli_fail("cannot write the listing: %s", strerror(errno));
	return 0;
}

/* ---- unseal --------------------------------------------------------------------------------- */

struct unseal {
	const char *dir, *out;
	struct arca_vol *v;
	int outfd;
	uint8_t *buf;
	struct progress pg;
	char logline[1024];
};

static void unseal_log(const char *line, void *arg)
{
	struct unseal *u = arg;

	snprintf(u->logline, sizeof u->logline, "%s", line);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int unseal_file(struct unseal *u, const struct fent *x)
{
	char ed[300], ep[600], eo[300], el[1100];
	struct arca_vfile *f = NULL;
	struct timespec ts[2];
	uint64_t off = 0;
	int fd, rc;

	esc(u->dir, ed, sizeof ed);
	esc(x->path, ep, sizeof ep);
	esc(u->out, eo, sizeof eo);
	rc = arca_vfile_open(u->v, x->path, O_RDONLY, 0, &f);
	if (rc < 0)
		return vol_err(u->dir, x->path, "open", rc), -1;
	fd = openat(u->outfd, x->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		arca_vfile_close(f);
		return cli_fail("cannot create %s/%s: %s", eo, ep, strerror(errno)), -1;
	}
	while (off < x->size) {
		size_t want = x->size - off < COPY_CHUNK ? (size_t)(x->size - off) : COPY_CHUNK;
		ssize_t r;
		if (fs_stop)
			goto fail;
		u->logline[0] = '\0';
		r = arca_vfile_pread(f, u->buf, want, off);
		if (r == ARCA_ECRYPTO || r == ARCA_EIO) {
			/* The log line is "volume DIR: PATH: block N: WHAT". */
			const char *why = u->logline[0] ? lib_msg(u->logline, arca_vol_dir(u->v), x->path) : "";
			cli_fail("cannot unseal %s: %s: %s%s(EIO); unseal stops at the first block that does not "
				 "verify",
				 ed, ep, esc(why, el, sizeof el), why[0] ? " " : "");
			goto fail;
		}
		if (r < 0) {
			vol_err(u->dir, x->path, "read", (int)r);
			goto fail;
		}
		if (r == 0) {
			cli_fail("%s: %s: ends at byte %llu, before its size %llu; stopped", ed, ep,
				 (unsigned long long)off, (unsigned long long)x->size);
			goto fail;
		}
		if (write_all(fd, u->buf, (size_t)r) != 0) {
			cli_fail("cannot write %s/%s: %s", eo, ep, strerror(errno));
			goto fail;
		}
		off += (uint64_t)r;
		progress_add(&u->pg, (uint64_t)r);
	}
	arca_vfile_close(f);
	f = NULL;
	ts[0] = ts[1] = ns_ts(x->mtime_ns);
	if (fchmod(fd, x->mode & 07777) != 0 || futimens(fd, ts) != 0) {
		cli_fail("cannot set the mode or mtime of %s/%s: %s", eo, ep, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		cli_fail("cannot write %s/%s: %s", eo, ep, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (f != NULL)
		arca_vfile_close(f);
	return -1;
}

static int fs_unseal(int argc, char **argv)
{
	static const char usage[] = "arca fs unseal DIR OUT --key-file FILE [--tag TAG]";
	struct arca_errbuf damage = {{0}};
	char eo[512], ep[600];
	struct sigaction oldsig[NSTOP];
	struct ropts o;
	struct unseal u;
	struct flist l = {0};
	struct arca_vol_stat root;
	int rc, out_existed, status = 1, made = 0, have_root;

	if ((rc = parse_ropts(argc, argv, 2, 0, usage, &o)) < 0)
		return rc == -0x100 ? 0 : -rc;
	memset(&u, 0, sizeof u);
	u.outfd = -1;
	u.dir = o.dir;
	u.out = o.out;
	esc(o.out, eo, sizeof eo);
	if ((out_existed = dir_state(o.out, "the output directory", "arca fs unseal")) < 0)
		return 1;
	{
		char rd[PATH_MAX], ro[PATH_MAX], ed[512];
		esc(o.dir, ed, sizeof ed);
		if (resolve(o.dir, rd, sizeof rd) != 0 || resolve(o.out, ro, sizeof ro) != 0)
			return cli_fail("cannot resolve %s or %s (does the directory that is to hold %s exist?)", ed,
					eo, eo);
		if (path_within(ro, rd))
			return cli_fail("%s is inside the volume %s; unseal into a directory outside it", eo, ed);
	}
	if ((rc = ropen(&o, &u.v, &damage)) != 0)
		return rc == 1 ? damaged(o.dir, damage.msg) : 1;
	arca_vol_set_log(u.v, unseal_log, &u);
	if (collect(u.v, o.dir, &l) != 0)
		goto out;
	have_root = arca_vol_stat(u.v, "", &root) == 0 && root.type == ARCA_VOL_DIR;
	u.buf = malloc(COPY_CHUNK);
	if (u.buf == NULL) {
		cli_fail("out of memory");
		goto out;
	}
	signals_catch(oldsig);
	made = 1;
	if (!out_existed && mkdir(o.out, 0700) != 0) {
		cli_fail("cannot create %s: %s", eo, strerror(errno));
		goto out;
	}
	u.outfd = open(o.out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (u.outfd < 0) {
		cli_fail("cannot open %s: %s", eo, strerror(errno));
		goto out;
	}
	progress_start(&u.pg, "unsealing", l.bytes, l.files);
	for (size_t i = 0; i < l.n; i++) {
		const struct fent *x = &l.e[i];
		if (fs_stop)
			goto out;
		if (x->dir) {
			if (mkdirat(u.outfd, x->path, 0700) != 0) {
				cli_fail("cannot create %s/%s: %s", eo, esc(x->path, ep, sizeof ep), strerror(errno));
				goto out;
			}
		} else if (unseal_file(&u, x) != 0) {
			goto out;
		}
	}
	for (size_t i = l.n; i-- > 0;) {
		const struct fent *x = &l.e[i];
		struct timespec ts[2];
		if (!x->dir)
			continue;
		ts[0] = ts[1] = ns_ts(x->mtime_ns);
		if (fchmodat(u.outfd, x->path, x->mode & 07777, 0) != 0 ||
		    utimensat(u.outfd, x->path, ts, AT_SYMLINK_NOFOLLOW) != 0) {
			cli_fail("cannot set the mode or mtime of %s/%s: %s", eo, esc(x->path, ep, sizeof ep),
				 strerror(errno));
			goto out;
		}
	}
	if (have_root) {
		struct timespec ts[2];
		ts[0] = ts[1] = ns_ts(root.mtime_ns);
		if (fchmod(u.outfd, root.mode & 07777) != 0 || futimens(u.outfd, ts) != 0) {
			cli_fail("cannot set the mode or mtime of %s: %s", eo, strerror(errno));
			goto out;
		}
	}
	if (syncfs(u.outfd) != 0) {
		cli_fail("cannot flush %s to disk: %s", eo, strerror(errno));
		goto out;
	}
	if (fs_stop)
		goto out;
	progress_end(&u.pg, 1);
	printf("unsealed %llu files (%.1f MiB) and %llu directories from %s into %s\n",
	       (unsigned long long)l.files, mib(l.bytes), (unsigned long long)l.dirs, o.dir, o.out);
	status = 0;
out:
	if (status != 0)
		progress_end(&u.pg, 0);
	if (u.outfd >= 0)
		close(u.outfd);
	arca_vol_close(u.v);
	if (status != 0 && made) {
		if (rm_tree(o.out, out_existed == 0) != 0)
			cli_fail("could not remove everything written to %s; remove it yourself", eo);
		else if (out_existed)
			cli_fail("removed what was written to %s", eo);
		else
			cli_fail("removed %s", eo);
		if (fs_stop) {
			cli_fail("interrupted (signal %d)", (int)fs_stop);
			status = 128 + fs_stop;
		}
	}
	if (made)
		signals_restore(oldsig);
	if (u.buf != NULL) {
		arca_wipe(u.buf, COPY_CHUNK);
		free(u.buf);
	}
	flist_free(&l);
	return status;
}

int cmd_fs(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(FS_USAGE);
	if (strcmp(argv[1], "seal") == 0)
		return fs_seal(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return fs_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "ls") == 0)
		return fs_ls(argc - 1, argv + 1);
	if (strcmp(argv[1], "unseal") == 0)
		return fs_unseal(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(FS_HELP, stdout);
		return 0;
	}
	return cli_usage(FS_USAGE);
}
