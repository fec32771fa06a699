/* mem_malloc.c: arca-bench-malloc, a malloc-heavy multithreaded
 * microbenchmark for the memory shield (bench/mem_run.sh runs it natively
 * and under arca, where every allocation comes from secret memory).
 *
 *   arca-bench-malloc [--threads N] [--ops N] [--slots N]
 *
 * Each of N threads does a fixed number of operations on its own table of
 * slots: empty slots are filled by malloc, calloc or posix_memalign with
 * sizes from 16 B to 64 KiB (mostly small, as real programs allocate),
 * full slots are freed, resized with realloc, or handed to the next thread,
 * which frees them (cross-thread frees are what makes a thread-caching
 * allocator work for its money). Every block is filled with a tag and
 * checked before it is freed or after it is moved, so a heap that hands
 * out overlapping or wrong memory is caught, not just timed.
 *
 * It prints one line and exits 0, or 1 when any check failed:
 *   arca-bench-malloc: threads=4 ops=... wall_ms=... corrupt=0 checksum=... */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define INBOX_CAP 1024

struct slot {
	unsigned char *p;
	size_t size;
	unsigned char tag;
};

/* Blocks another thread gave us to free. */
struct inbox {
	pthread_mutex_t mu;
	struct slot items[INBOX_CAP];
	size_t n;
};

struct worker {
	pthread_t th;
	unsigned idx;
	uint64_t rng;
	struct slot *slots;
	size_t nslots;
	uint64_t ops;
	uint64_t corrupt;
	uint64_t checksum;
	int oom;
};

static struct worker workers[MAX_THREADS];
static struct inbox inboxes[MAX_THREADS];
static unsigned nthreads = 4;
static pthread_barrier_t done_barrier;

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: deterministic per thread, so every run does the same work. */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

/* 70% up to 512 B, 25% up to 8 KiB, 5% up to 64 KiB. */
static size_t pick_size(uint64_t *rng)
{
	uint64_t r = next_rand(rng);
	unsigned cls = (unsigned)(r % 100);
	uint64_t v = r >> 8;
	if (cls < 70)
		return 16 + (size_t)(v % 497);
	if (cls < 95)
		return 513 + (size_t)(v % (8192 - 512));
	return 8193 + (size_t)(v % (65536 - 8192));
}

static void fill(struct slot *s)
{
	memset(s->p, s->tag, s->size);
}

/* Checks the first, middle and last byte of the first n bytes. */
static int intact(const struct slot *s, size_t n)
{
	return n == 0 || (s->p[0] == s->tag && s->p[n / 2] == s->tag && s->p[n - 1] == s->tag);
}

static void release(struct worker *w, struct slot *s)
{
	if (!intact(s, s->size))
		w->corrupt++;
	w->checksum += s->size;
	free(s->p);
	s->p = NULL;
	s->size = 0;
}

static void drain_inbox(struct worker *w)
{
	struct inbox *in = &inboxes[w->idx];
	struct slot local[64];
	for (;;) {
		size_t k = 0;
		pthread_mutex_lock(&in->mu);
		while (in->n > 0 && k < 64)
			local[k++] = in->items[--in->n];
		pthread_mutex_unlock(&in->mu);
		if (k == 0)
			return;
		for (size_t i = 0; i < k; i++)
			release(w, &local[i]);
	}
}

/* Hands s to the next thread; when its inbox is full we free it ourselves. */
static void give_away(struct worker *w, struct slot *s)
{
	struct inbox *in = &inboxes[(w->idx + 1) % nthreads];
	int sent = 0;
	pthread_mutex_lock(&in->mu);
	if (in->n < INBOX_CAP) {
		in->items[in->n++] = *s;
		sent = 1;
	}
	pthread_mutex_unlock(&in->mu);
	if (sent) {
		s->p = NULL;
		s->size = 0;
	} else {
		release(w, s);
	}
}

static int allocate(struct worker *w, struct slot *s, size_t i)
{
	size_t size = pick_size(&w->rng);
	unsigned kind = (unsigned)(next_rand(&w->rng) % 100);
	void *p = NULL;
	if (kind < 70) {
		p = malloc(size);
	} else if (kind < 85) {
		p = calloc(1, size);
		if (p && (((unsigned char *)p)[0] != 0 || ((unsigned char *)p)[size - 1] != 0))
			w->corrupt++;
	} else {
		size_t align = (size_t)64 << (next_rand(&w->rng) % 6); /* 64 B .. 2 KiB */
		if (posix_memalign(&p, align, size) != 0)
			p = NULL;
		else if ((uintptr_t)p % align != 0)
			w->corrupt++;
	}
	if (!p)
		return -1;
	s->p = p;
	s->size = size;
	s->tag = (unsigned char)(i * 31 + (next_rand(&w->rng) >> 56));
	fill(s);
	return 0;
}

static int resize(struct worker *w, struct slot *s)
{
	size_t size = pick_size(&w->rng);
	unsigned char *p = realloc(s->p, size);
	if (!p)
		return -1;
	s->p = p;
	size_t kept = size < s->size ? size : s->size;
	if (!intact(s, kept))
		w->corrupt++;
	if (size > s->size)
		memset(p + s->size, s->tag, size - s->size);
	s->size = size;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (uint64_t op = 0; op < w->ops && !w->oom; op++) {
		size_t i = (size_t)(next_rand(&w->rng) % w->nslots);
		struct slot *s = &w->slots[i];
		if (!s->p) {
			if (allocate(w, s, i) < 0)
				w->oom = 1;
		} else {
			unsigned r = (unsigned)(next_rand(&w->rng) % 100);
			if (r < 50)
				release(w, s);
			else if (r < 80) {
				if (resize(w, s) < 0)
					w->oom = 1;
			} else if (nthreads > 1)
				give_away(w, s);
			else
				release(w, s);
		}
		if ((op & 63) == 0)
			drain_inbox(w);
	}
	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].p)
			release(w, &w->slots[i]);
	/* Nobody gives us anything once everyone is past the barrier. */
	pthread_barrier_wait(&done_barrier);
	drain_inbox(w);
	return NULL;
}

static int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	uint64_t threads = 4, ops = 1500000, slots = 4096;
	for (int i = 1; i < argc; i++) {
		uint64_t *dst = NULL, lo = 1, hi = 0;
		if (strcmp(argv[i], "--threads") == 0)
			dst = &threads, hi = MAX_THREADS;
		else if (strcmp(argv[i], "--ops") == 0)
			dst = &ops, lo = 0, hi = UINT64_C(1) << 40;
		else if (strcmp(argv[i], "--slots") == 0)
			dst = &slots, hi = 1u << 20;
		if (!dst || i + 1 >= argc || parse_count(argv[i + 1], lo, hi, dst) < 0) {
			fprintf(stderr, "usage: arca-bench-malloc [--threads 1..%d] [--ops N] [--slots 1..%u]\n",
				MAX_THREADS, 1u << 20);
			return 2;
		}
		i++;
	}
	nthreads = (unsigned)threads;
	if (pthread_barrier_init(&done_barrier, NULL, nthreads) != 0) {
		fprintf(stderr, "arca-bench-malloc: pthread_barrier_init failed\n");
		return 1;
	}
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_mutex_init(&inboxes[t].mu, NULL);
		workers[t].idx = t;
		workers[t].rng = 0x9e3779b97f4a7c15ull * (t + 1);
		workers[t].nslots = (size_t)slots;
		workers[t].ops = ops;
		workers[t].slots = calloc((size_t)slots, sizeof(struct slot));
		if (!workers[t].slots) {
			fprintf(stderr, "arca-bench-malloc: out of memory for %" PRIu64 " slots\n", slots);
			return 1;
		}
	}
	double t0 = now_ms();
	for (unsigned t = 0; t < nthreads; t++) {
		int rc = pthread_create(&workers[t].th, NULL, worker_main, &workers[t]);
		if (rc != 0) {
			fprintf(stderr, "arca-bench-malloc: pthread_create: %s\n", strerror(rc));
			return 1;
		}
	}
	uint64_t corrupt = 0, checksum = 0;
	int oom = 0;
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(workers[t].th, NULL);
		corrupt += workers[t].corrupt;
		checksum += workers[t].checksum;
		oom |= workers[t].oom;
	}
	double wall = now_ms() - t0;
	for (unsigned t = 0; t < nthreads; t++)
		free(workers[t].slots);
	printf("arca-bench-malloc: threads=%u ops=%" PRIu64 " wall_ms=%.1f corrupt=%" PRIu64 " checksum=%" PRIu64 "%s\n",
	       nthreads, ops, wall, corrupt, checksum, oom ? " out-of-memory" : "");
	return corrupt || oom ? 1 : 0;
}
