/* fake_tsm.c: a stand-in for the kernel's configfs-tsm report tree
 * (/sys/kernel/config/tsm/report), for tests of arca-las in hardware mode
 * on a machine that is not a confidential VM.
 *
 *   arca-test-fake-tsm ROOT (--capture JSON | --outblob FILE [--auxblob FILE])
 *                      [--provider NAME] [--no-provider] [--race N] [--from N]
 *
 * A plain directory does not behave like configfs: mkdir makes no
 * attributes, writing inblob makes no report, rmdir refuses a directory
 * with files. So this watches ROOT (inotify) and, for each entry directory
 * that appears, makes its attributes as named pipes and serves them the way
 * the kernel answers reads and writes:
 *  - provider: NAME and a newline (--provider, default: the capture's);
 *  - generation: the entry's write count, "0\n" until inblob is written;
 *  - inblob: takes what is written (the kernel takes at most 64 bytes) and
 *    then counts one write, or two with --race (as if another writer wrote
 *    inblob in between: what arca-las must detect);
 *  - outblob, auxblob: the capture's, once inblob was written (auxblob only
 *    when there is one: the kernel may not offer it either).
 * Each pipe is opened by the reader before it is served, and removed just
 * before its last answer is written, so that once arca-las has read
 * generation the second time the entry is empty and its rmdir succeeds,
 * as it does on configfs; an entry arca-las leaves unfinished stays behind
 * and shows in the test. generation, read twice, is a new pipe for the
 * second read (a pipe pairs a writer with whichever reader holds it).
 * Attributes are served in parallel, in any order.
 * With --no-provider an entry gets no attributes at all (a kernel without
 * a provider). --race N and --no-provider apply to N entries (race) or
 * all entries from the --from'th on (counting from 1 in creation order).
 *
 * One line per event on stderr ("entry 2 NAME: inblob 64 bytes, generation
 * 0 -> 1"), "ready" on stdout once it watches. Runs until killed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <jansson.h>

#include "arca/buf.h"
#include "arca/encode.h"

#define BLOB_MAX ((size_t)64 << 10)

static struct {
	char root[PATH_MAX];
	struct arca_buf out, aux;
	int have_aux;
	char provider[64];
	int no_provider;
	int races_left;
	int from;
	pthread_mutex_t mu;
	int entries;
} g = {.from = 1, .mu = PTHREAD_MUTEX_INITIALIZER};

struct entry {
	char dir[PATH_MAX + NAME_MAX + 2];
	char name[NAME_MAX + 1];
	int index;
	int race;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long long generation;
	int written;  /* inblob taken and counted */
	int pending;  /* servers still running */
};

struct server {
	struct entry *en;
	const char *attr;
	void *(*fn)(void *);
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "fake-tsm: %s\n", line);
}

static void path_of(const struct entry *en, const char *attr, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", en->dir, attr);
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the reader went away */
		b += w;
		n -= (size_t)w;
	}
}

static void wait_written(struct entry *en)
{
	pthread_mutex_lock(&en->mu);
	while (!en->written)
		pthread_cond_wait(&en->cv, &en->mu);
	pthread_mutex_unlock(&en->mu);
}

/* Opens attr for writing, which waits for a reader, then (after wait_for
 * inblob, if asked) removes it when last is set and answers. */
static void serve(struct entry *en, const char *attr, int wait_for_inblob, int last, const void *p, size_t n)
{
	char path[PATH_MAX + NAME_MAX + 40];
	path_of(en, attr, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		logf_("entry %d %s: cannot open %s: %s", en->index, en->name, attr, strerror(errno));
		return;
	}
	if (wait_for_inblob)
		wait_written(en);
	if (last)
		unlink(path);
	write_all(fd, p, n);
	close(fd);
}

static void *serve_provider(void *arg)
{
	struct entry *en = arg;
	char line[80];
	int n = snprintf(line, sizeof line, "%s\n", g.provider);
	serve(en, "provider", 0, 1, line, (size_t)n);
	return NULL;
}

static void *serve_generation(void *arg)
{
	struct entry *en = arg;
	for (int k = 0; k < 2; k++) {
		char path[PATH_MAX + NAME_MAX + 40], line[32];
		path_of(en, "generation", path, sizeof path);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return NULL;
		if (k == 0) {
			/* Before the first answer: a new pipe under the same
			 * name, so that the next read cannot open this one
			 * (whose reader may still hold it) and wait forever. */
			char tmp[PATH_MAX + NAME_MAX + 40];
			path_of(en, ".generation.next", tmp, sizeof tmp);
			if (mkfifo(tmp, 0600) < 0 || rename(tmp, path) < 0) {
				logf_("entry %d %s: cannot renew generation: %s", en->index, en->name, strerror(errno));
				close(fd);
				return NULL;
			}
		} else {
			/* the second read comes after the report: answer with
			 * the count that includes the write */
			wait_written(en);
			unlink(path);
		}
		pthread_mutex_lock(&en->mu);
		int n = snprintf(line, sizeof line, "%llu\n", en->generation);
		pthread_mutex_unlock(&en->mu);
		write_all(fd, line, (size_t)n);
		close(fd);
	}
	return NULL;
}

static void *serve_inblob(void *arg)
{
	struct entry *en = arg;
	char path[PATH_MAX + NAME_MAX + 40];
	uint8_t buf[256];
	size_t got = 0;
	path_of(en, "inblob", path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t r = read(fd, buf + (got < sizeof buf ? got : 0), got < sizeof buf ? sizeof buf - got : sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	unlink(path);
	pthread_mutex_lock(&en->mu);
	unsigned long long before = en->generation;
	en->generation += en->race ? 2 : 1;
	en->written = 1;
	pthread_cond_broadcast(&en->cv);
	unsigned long long after = en->generation;
	pthread_mutex_unlock(&en->mu);
	logf_("entry %d %s: inblob %zu bytes, generation %llu -> %llu%s", en->index, en->name, got, before, after,
	      en->race ? " (a racing writer)" : "");
	return NULL;
}

static void *serve_outblob(void *arg)
{
	struct entry *en = arg;
	serve(en, "outblob", 1, 1, g.out.p, g.out.len);
	return NULL;
}

static void *serve_auxblob(void *arg)
{
	struct entry *en = arg;
	serve(en, "auxblob", 1, 1, g.aux.p, g.aux.len);
	return NULL;
}

static void *run_entry(void *arg)
{
	struct entry *en = arg;
	static const char *const fifos[] = {"generation", "inblob", "outblob", "auxblob"};
	struct server sv[] = {
		{en, "generation", serve_generation}, {en, "inblob", serve_inblob}, {en, "outblob", serve_outblob},
		{en, "auxblob", serve_auxblob},	      {en, "provider", serve_provider},
	};
	pthread_t t[5];
	int nt = 0;

	pthread_mutex_lock(&g.mu);
	int broken = g.no_provider && en->index >= g.from;
	en->race = en->index >= g.from && g.races_left > 0;
	if (en->race)
		g.races_left--;
	pthread_mutex_unlock(&g.mu);
	if (broken) {
		logf_("entry %d %s: no provider, no attributes", en->index, en->name);
		goto out;
	}
	/* provider last: once it is there, everything is */
	for (size_t i = 0; i < sizeof fifos / sizeof fifos[0]; i++) {
		char path[PATH_MAX + NAME_MAX + 40];
		if (i == 3 && !g.have_aux)
			continue;
		path_of(en, fifos[i], path, sizeof path);
		if (mkfifo(path, 0600) < 0) {
			logf_("entry %d %s: mkfifo %s: %s", en->index, en->name, fifos[i], strerror(errno));
			goto out;
		}
	}
	char ppath[PATH_MAX + NAME_MAX + 40];
	path_of(en, "provider", ppath, sizeof ppath);
	if (mkfifo(ppath, 0600) < 0) {
		logf_("entry %d %s: mkfifo provider: %s", en->index, en->name, strerror(errno));
		goto out;
	}
	logf_("entry %d %s: created", en->index, en->name);
	for (size_t i = 0; i < sizeof sv / sizeof sv[0]; i++) {
		if (i == 3 && !g.have_aux)
			continue;
		if (pthread_create(&t[nt], NULL, sv[i].fn, en) == 0)
			nt++;
	}
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	logf_("entry %d %s: served", en->index, en->name);
out:
	pthread_mutex_destroy(&en->mu);
	pthread_cond_destroy(&en->cv);
	free(en);
	return NULL;
}

static void new_entry(const char *name)
{
	struct entry *en = calloc(1, sizeof *en);
	pthread_t t;
	if (!en)
		return;
	snprintf(en->dir, sizeof en->dir, "%s/%s", g.root, name);
	snprintf(en->name, sizeof en->name, "%s", name);
	pthread_mutex_init(&en->mu, NULL);
	pthread_cond_init(&en->cv, NULL);
	pthread_mutex_lock(&g.mu);
	en->index = ++g.entries;
	pthread_mutex_unlock(&g.mu);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, run_entry, en) != 0)
		free(en);
	pthread_attr_destroy(&at);
}

static int load(const char *path, struct arca_buf *b)
{
	struct arca_errbuf e = {{0}};
	arca_buf_init(b, BLOB_MAX, 0);
	if (arca_read_file(path, BLOB_MAX, b, &e) < 0) {
		fprintf(stderr, "fake-tsm: %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* configfs-tsm capture form: {"outblob", "auxblob", "provider"}, base64url. */
static int load_capture(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j) {
		fprintf(stderr, "fake-tsm: %s: %s\n", path, je.text);
		return -1;
	}
	const char *names[] = {"outblob", "auxblob"};
	struct arca_buf *dst[] = {&g.out, &g.aux};
	for (int i = 0; i < 2; i++) {
		const char *s = json_string_value(json_object_get(j, names[i]));
		size_t got = 0;
		arca_buf_init(dst[i], BLOB_MAX, 0);
		if (!s) {
			if (i == 0)
				goto bad;
			continue;
		}
		if (arca_buf_reserve(dst[i], strlen(s)) < 0 ||
		    arca_b64url_decode(s, strlen(s), dst[i]->p, strlen(s), &got) < 0)
			goto bad;
		dst[i]->len = got;
		if (i == 1)
			g.have_aux = 1;
	}
	const char *prov = json_string_value(json_object_get(j, "provider"));
	if (prov && !g.provider[0]) {
		snprintf(g.provider, sizeof g.provider, "%s", prov);
		g.provider[strcspn(g.provider, "\n")] = 0;
	}
	json_decref(j);
	return 0;
bad:
	fprintf(stderr, "fake-tsm: %s is not a configfs-tsm capture\n", path);
	json_decref(j);
	return -1;
}

static int usage(void)
{
	fprintf(stderr, "usage: arca-test-fake-tsm ROOT (--capture JSON | --outblob FILE [--auxblob FILE])\n"
			"                          [--provider NAME] [--no-provider] [--race N] [--from N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *capture = NULL, *outblob = NULL, *auxblob = NULL, *provider = NULL;
	if (argc < 2)
		return usage();
	snprintf(g.root, sizeof g.root, "%s", argv[1]);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--no-provider") == 0) {
			g.no_provider = 1;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--capture") == 0)
			capture = v;
		else if (strcmp(a, "--outblob") == 0)
			outblob = v;
		else if (strcmp(a, "--auxblob") == 0)
			auxblob = v;
		else if (strcmp(a, "--provider") == 0)
			provider = v;
		else if (strcmp(a, "--race") == 0)
			g.races_left = (int)strtol(v, NULL, 10);
		else if (strcmp(a, "--from") == 0)
			g.from = (int)strtol(v, NULL, 10);
		else
			return usage();
	}
	if (provider)
		snprintf(g.provider, sizeof g.provider, "%s", provider);
	if (capture ? load_capture(capture) < 0 : !outblob || load(outblob, &g.out) < 0)
		return usage();
	if (auxblob) {
		arca_buf_free(&g.aux);
		if (load(auxblob, &g.aux) < 0)
			return 1;
		g.have_aux = 1;
	}
	if (!g.provider[0]) {
		fprintf(stderr, "fake-tsm: give --provider (the capture names none)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(g.root, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fake-tsm: mkdir %s: %s\n", g.root, strerror(errno));
		return 1;
	}
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, g.root, IN_CREATE | IN_ONLYDIR) < 0) {
		fprintf(stderr, "fake-tsm: inotify on %s: %s\n", g.root, strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR) && ev->len > 0)
				new_entry(ev->name);
			p += sizeof *ev + ev->len;
		}
	}
}
