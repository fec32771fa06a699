/* memtest-where: for each kind of memory a program uses, whether it lies
 * in secret memory, i.e. in a mapping that /proc/self/maps names
 * "/secretmem (deleted)" (a memfd_secret(2) mapping).
 *
 *   memtest-where [--expect-secret | --expect-plain]
 *
 * Prints one line per kind: "KIND ADDRESS secret|plain MAPPING". With
 * --expect-secret it exits 1 if any kind is plain, with --expect-plain if
 * any is secret (natively nothing is); "FAIL" lines say which. Thread-local
 * variables are shown but not judged: the shield keeps glibc's thread
 * descriptors and static TLS in ordinary memory by design (shield/threads.c),
 * and this program should say so, not fail for it. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define SECRET_NAME "/secretmem (deleted)"

/* Whether addr lies in a secret mapping; the mapping's name (or
 * "[anonymous]", or "unmapped") goes to name. */
static int lookup(uintptr_t addr, char *name, size_t cap)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int secret = 0;

	snprintf(name, cap, "unmapped");
	if (f == NULL) {
		snprintf(name, cap, "cannot read /proc/self/maps: %s", strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		uintptr_t lo, hi;
		int off = 0;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %*s %*s%n", &lo, &hi, &off) < 2 || off == 0)
			continue;
		if (addr < lo || addr >= hi)
			continue;
		const char *n = line + off;
		while (*n == ' ')
			n++;
		size_t len = strcspn(n, "\n");
		if (len == 0)
			snprintf(name, cap, "[anonymous]");
		else
			snprintf(name, cap, "%.*s", (int)len, n);
		secret = len == strlen(SECRET_NAME) && memcmp(n, SECRET_NAME, len) == 0;
		break;
	}
	fclose(f);
	return secret;
}

static int expect; /* 0 none, 1 secret, -1 plain */
static int wrong;

/* judged: whether an unexpected answer is a failure. */
static void show(const char *kind, const volatile void *p, int judged)
{
	char name[512];
	int secret = lookup((uintptr_t)p, name, sizeof name);
	printf("%-20s %#14" PRIxPTR " %-6s %s%s\n", kind, (uintptr_t)p, secret ? "secret" : "plain", name,
	       judged ? "" : "  (shown, not judged)");
	if (judged && ((expect == 1 && !secret) || (expect == -1 && secret))) {
		printf("FAIL %s is %s\n", kind, secret ? "secret" : "plain");
		wrong++;
	}
}

static void report(const char *kind, const volatile void *p)
{
	show(kind, p, 1);
}

static int data_global = 1; /* .data */
static int bss_global;      /* .bss */
static __thread int tls_global = 1;

struct probe {
	uintptr_t stack, tls;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

static void *probe_thread(void *arg)
{
	struct probe *p = arg;
	volatile int here = 1;
	pthread_mutex_lock(&p->lock);
	p->stack = (uintptr_t)&here;
	p->tls = (uintptr_t)&tls_global;
	/* Reported while the thread is alive: a detached one's stack is
	 * not ours to look at afterwards. */
	report(p->done == 2 ? "detached-stack" : "thread-stack", (void *)p->stack);
	show(p->done == 2 ? "detached-tls" : "thread-tls", (void *)p->tls, 0);
	p->done = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int run_probe(int detached)
{
	struct probe p = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .done = detached ? 2 : 0};
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	if (detached)
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &a, probe_thread, &p);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		printf("FAIL pthread_create: %s\n", strerror(rc));
		return -1;
	}
	pthread_mutex_lock(&p.lock);
	while (p.done != 1)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	if (!detached)
		pthread_join(t, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	volatile int on_stack = 1;

	if (argc == 2 && strcmp(argv[1], "--expect-secret") == 0) {
		expect = 1;
	} else if (argc == 2 && strcmp(argv[1], "--expect-plain") == 0) {
		expect = -1;
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [--expect-secret | --expect-plain]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	char *small = malloc(64);
	char *large = malloc(64 << 20);
	char *zeroed = calloc(1000, 4);
	char *map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (small == NULL || large == NULL || zeroed == NULL || map == MAP_FAILED) {
		printf("FAIL allocation failed\n");
		return 1;
	}
	/* Touched, so that each is backed by memory, not just reserved. */
	small[0] = large[0] = large[(64 << 20) - 1] = zeroed[0] = map[0] = 1;

	report("malloc", small);
	report("malloc-64MiB", large);
	report("malloc-64MiB-end", large + (64 << 20) - 1);
	report("calloc", zeroed);
	report("mmap-anonymous", map);
	report("data", &data_global);
	report("bss", &bss_global);
	report("main-stack", &on_stack);
	show("main-tls", &tls_global, 0);
	report("environ", environ[0] != NULL ? (void *)environ[0] : (void *)environ);
	/* The C library's own data: stdout's FILE and random()'s state live there. */
	report("libc-data", (const void *)stdout);
	if (run_probe(0) != 0 || run_probe(1) != 0)
		wrong++;

	free(small);
	free(large);
	free(zeroed);
	munmap(map, 1 << 20);
	return wrong == 0 ? 0 : 1;
}
