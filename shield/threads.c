/* threads.c: the stacks threads of a protected program run on, in secret
 * memory (memory.h: shield_pages_alloc).
 *
 * glibc still creates every thread with the program's attributes, on a
 * stack it maps itself: that stack holds the thread's descriptor and static
 * TLS, which must stay in ordinary private memory (at fork the kernel and
 * glibc write the child's tid into the descriptor, before the child has a
 * private copy of secret memory; and the kernel cannot wait on or wake the
 * shared futex on the descriptor's tid that pthread_join uses if it lies in
 * secret memory: EFAULT). What we wrap is the start routine: on glibc's
 * stack it takes a secret stack, switches to it (ucontext), runs the
 * program's routine there, and switches back to return its value. So the
 * program's frames -- its locals, its buffers -- are secret; glibc's stack
 * keeps a few frames of glibc's and ours (pointers), the descriptor, and
 * thread-local variables, which are therefore NOT secret.
 *
 * The secret stack has the size the thread's attributes ask for (0, or no
 * attributes: glibc's default, which follows RLIMIT_STACK or
 * pthread_setattr_default_np), rounded up to pages, and one PROT_NONE guard
 * page below it. A thread whose attributes give a stack of the program's
 * own (pthread_attr_setstack) runs there: the program manages that memory;
 * if it lies in secret memory (the program mmapped it), glibc is given the
 * same attributes without the stack and the routine switches to the
 * program's stack, for the descriptor's sake.
 * When secret memory is not in use the routine runs on glibc's stack, as
 * without us. When it is in use and a secret stack cannot be had (a
 * locked-memory limit, say), pthread_create fails with EAGAIN, as it does
 * natively when resources run out: a protected routine never runs on an
 * ordinary stack (fail closed). Such refusals are counted
 * (shield_threads_fallbacks) for the coverage report. Threads glibc starts
 * internally (SIGEV_THREAD timers, mq_notify, the AIO helpers) do not go
 * through the exported pthread_create and run on glibc's stacks.
 *
 * Ways out of the routine: a return switches back (uc_link) and the stack
 * is put back at once. pthread_exit and cancellation unwind the secret
 * stack -- glibc's unwinder runs the cleanup handlers and destructors of
 * every frame on it, then reaches the end of the switched-to stack and
 * jumps to glibc's own exit path on its own stack -- and the stack is put
 * back by a pthread key destructor, which glibc runs there. Consequences
 * for programs: pthread_getattr_np inside such a thread describes glibc's
 * stack, not the one the routine runs on (a conservative garbage collector
 * that scans thread stacks from it would miss the routine's frames); and we
 * use one pthread key of the program's PTHREAD_KEYS_MAX.
 *
 * Stacks put back go to a small cache (at most CACHE_MAX bytes, as glibc
 * caches its own) and are reused for the same size without being zeroed
 * again: zeroing megabytes of secret memory per thread would cost more than
 * the thread, and a stack held nothing but this process's own data. The
 * rest goes back through shield_pages_free. The cache's lock is held
 * across fork (pthread_atfork) so that a child can start threads. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/mman.h>

#include "memory.h"
#include "shield.h"

SHIELD_API int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

/* Threads whose routine ran on glibc's stack because we could not give it
 * a secret one (not counted: user-provided stacks, no secret memory). */

/* Stacks kept for reuse, in bytes (glibc keeps 40 MiB of its own). */
#define CACHE_MAX (40UL << 20)

struct secret_stack {
	struct secret_stack *next; /* in the cache */
	char *base;                /* guard page, then the stack */
	size_t len;                /* guard included */
};

/* What pthread_create hands the new thread (heap, freed by the thread). */
struct start {
	void *(*fn)(void *);
	void *arg;
	size_t size; /* stack bytes, a multiple of the page size */
	char *user_stack; /* the program's own stack to run on, or NULL */
	struct secret_stack *stack; /* ours, taken by pthread_create */
};

/* The routine's run, in the wrapper's frame on glibc's stack. */
struct run {
	void *(*fn)(void *);
	void *arg;
	void *ret;
};

static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct secret_stack *cache;
static size_t cache_bytes;
static unsigned long fallbacks;
static pthread_key_t stack_key;
static int stack_key_ok;

/* ---- the stacks ---- */

static void stack_put(struct secret_stack *s)
{
	pthread_mutex_lock(&cache_lock);
	if (s->len <= CACHE_MAX - cache_bytes) {
		s->next = cache;
		cache = s;
		cache_bytes += s->len;
		s = NULL;
	}
	pthread_mutex_unlock(&cache_lock);
	if (s != NULL) {
		shield_pages_free(s->base, s->len);
		free(s);
	}
}

/* A stack of size bytes above a PROT_NONE guard page, or NULL. */
static struct secret_stack *stack_get(size_t size)
{
	size_t page = shield_mem.page, len = size + page;
	struct secret_stack *s, **pp;

	if (size == 0 || size > SIZE_MAX - page)
		return NULL;
	pthread_mutex_lock(&cache_lock);
	for (pp = &cache; *pp != NULL && (*pp)->len != len; pp = &(*pp)->next)
		;
	s = *pp;
	if (s != NULL) {
		*pp = s->next;
		cache_bytes -= s->len;
	}
	pthread_mutex_unlock(&cache_lock);
	if (s != NULL)
		return s;
	s = malloc(sizeof *s);
	if (s == NULL)
		return NULL;
	s->base = shield_pages_alloc(len);
	if (s->base == NULL) {
		free(s);
		return NULL;
	}
	s->len = len;
	if (secmem_sys_mprotect(s->base, page, PROT_NONE) != 0) {
		shield_pages_free(s->base, len);
		free(s);
		return NULL;
	}
	return s;
}

/* The key destructor: the routine left through pthread_exit or
 * cancellation, and glibc has unwound back to its own stack. */
static void stack_orphaned(void *p)
{
	stack_put(p);
}

/* ---- set-up ---- */

static void atfork_prepare(void)
{
	pthread_mutex_lock(&cache_lock);
}

static void atfork_release(void)
{
	pthread_mutex_unlock(&cache_lock);
}

/* dlsym may allocate, so this runs once, from our constructor or from the
 * first pthread_create of another library's constructor, whichever is
 * first. */
static void threads_init(void)
{
	real_create = (__typeof__(real_create))dlsym(RTLD_NEXT, "pthread_create");
	stack_key_ok = pthread_key_create(&stack_key, stack_orphaned) == 0;
	(void)pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

__attribute__((constructor)) static void threads_ctor(void)
{
	(void)pthread_once(&init_once, threads_init);
}

unsigned long shield_threads_fallbacks(void)
{
	return __atomic_load_n(&fallbacks, __ATOMIC_RELAXED);
}

/* ---- the thread ---- */

/* First code on the secret stack. makecontext passes ints, so the pointer
 * comes in two halves. */
static void on_secret_stack(unsigned hi, unsigned lo)
{
	struct run *r = (struct run *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
	r->ret = r->fn(r->arg);
}

/* The routine must not run on glibc's ordinary stack when secret memory is
 * in use (fail closed); these calls cannot fail with valid arguments. */
__attribute__((noreturn)) static void never_plain(void)
{
	static const char msg[] = "arca: cannot switch a new thread to its secret stack; the program stops\n";
	(void)!write(2, msg, sizeof msg - 1);
	abort();
}

/* The thread's first code, on glibc's stack. */
static void *thread_start(void *p)
{
	struct start st = *(struct start *)p;
	struct run run = {st.fn, st.arg, NULL};
	ucontext_t back, ctx;

	free(p);
	if (st.user_stack != NULL) {
		if (getcontext(&ctx) != 0)
			never_plain();
		ctx.uc_stack.ss_sp = st.user_stack;
		ctx.uc_stack.ss_size = st.size;
		ctx.uc_link = &back;
		makecontext(&ctx, (void (*)(void))on_secret_stack, 2, (unsigned)((uintptr_t)&run >> 32),
			    (unsigned)(uintptr_t)&run);
		if (swapcontext(&back, &ctx) != 0)
			never_plain();
		return run.ret;
	}
	/* volatile: getcontext returns twice as far as the compiler knows. */
	struct secret_stack *volatile s = st.stack;
	if (getcontext(&ctx) != 0)
		never_plain();
	ctx.uc_stack.ss_sp = s->base + shield_mem.page;
	ctx.uc_stack.ss_size = s->len - shield_mem.page;
	ctx.uc_link = &back;
	makecontext(&ctx, (void (*)(void))on_secret_stack, 2, (unsigned)((uintptr_t)&run >> 32),
		    (unsigned)(uintptr_t)&run);
	/* For pthread_exit and cancellation, which never come back here. Our
	 * key is one of the first 32 unless another library's constructor
	 * made many; setting it cannot fail then. */
	if (pthread_setspecific(stack_key, s) != 0 || swapcontext(&back, &ctx) != 0)
		never_plain();
	(void)pthread_setspecific(stack_key, NULL);
	stack_put(s);
	return run.ret;
}

/* The stack the program's attributes carry, if any. glibc keeps the
 * stack's top, NULL when none was given, and pthread_attr_getstack reports
 * top minus size: "no stack" reads back as an address that ends at 0
 * (older glibc: NULL). */
static int attr_stack(const pthread_attr_t *attr, void **addr, size_t *size)
{
	*addr = NULL;
	*size = 0;
	if (attr == NULL)
		return 0;
	if (pthread_attr_getstack(attr, addr, size) != 0)
		return 0;
	return *addr != NULL && (uintptr_t)*addr + *size != 0;
}

/* Copies into *to every attribute of *from that glibc lets us read back,
 * except the stack (glibc's default size then). 0 or an errno value. */
static int copy_attr(pthread_attr_t *to, const pthread_attr_t *from)
{
	int v, rc;
	size_t sz;
	struct sched_param sp;
	sigset_t mask;

	if ((rc = pthread_attr_init(to)) != 0)
		return rc;
	if ((rc = pthread_attr_getdetachstate(from, &v)) != 0 || (rc = pthread_attr_setdetachstate(to, v)) != 0)
		goto fail;
	if ((rc = pthread_attr_getguardsize(from, &sz)) != 0 || (rc = pthread_attr_setguardsize(to, sz)) != 0)
		goto fail;
	if ((rc = pthread_attr_getscope(from, &v)) != 0 || (rc = pthread_attr_setscope(to, v)) != 0)
		goto fail;
	if ((rc = pthread_attr_getinheritsched(from, &v)) != 0 || (rc = pthread_attr_setinheritsched(to, v)) != 0)
		goto fail;
	/* Set on the copy only when they matter: glibc fills in the creator's
	 * values for whichever of the two an explicit-scheduling attribute
	 * leaves unset, and we cannot tell which the program set. */
	if (v == PTHREAD_EXPLICIT_SCHED) {
		if ((rc = pthread_attr_getschedpolicy(from, &v)) != 0 || (rc = pthread_attr_setschedpolicy(to, v)) != 0)
			goto fail;
		if ((rc = pthread_attr_getschedparam(from, &sp)) != 0 || (rc = pthread_attr_setschedparam(to, &sp)) != 0)
			goto fail;
	}
	rc = pthread_attr_getsigmask_np(from, &mask);
	if (rc == 0) {
		if ((rc = pthread_attr_setsigmask_np(to, &mask)) != 0)
			goto fail;
	} else if (rc != PTHREAD_ATTR_NO_SIGMASK_NP) {
		goto fail;
	}
	/* The affinity set is as large as the program made it; glibc refuses
	 * a buffer smaller than the set's highest CPU. */
	for (size_t ncpu = 1024; ncpu <= (1u << 20); ncpu *= 4) {
		cpu_set_t *set = CPU_ALLOC(ncpu);
		size_t setsize = CPU_ALLOC_SIZE(ncpu);
		if (set == NULL) {
			rc = ENOMEM;
			goto fail;
		}
		rc = pthread_attr_getaffinity_np(from, setsize, set);
		if (rc == 0) {
			/* glibc reads back "no set given" as every CPU; giving
			 * that explicitly would stop the thread from inheriting
			 * a restricted affinity of its creator's. */
			if (CPU_COUNT_S(setsize, set) < (int)ncpu)
				rc = pthread_attr_setaffinity_np(to, setsize, set);
			CPU_FREE(set);
			if (rc != 0)
				goto fail;
			return 0;
		}
		CPU_FREE(set);
		if (rc != EINVAL)
			goto fail;
	}
	rc = EINVAL;
fail:
	pthread_attr_destroy(to);
	return rc;
}

/* The stack size the thread asks for, rounded up to pages; 0 if unknown. */
static size_t wanted_size(const pthread_attr_t *attr)
{
	pthread_attr_t def;
	size_t size = 0, page = shield_mem.page;

	if (attr != NULL) {
		if (pthread_attr_getstacksize(attr, &size) != 0)
			return 0;
	} else {
		if (pthread_getattr_default_np(&def) != 0)
			return 0;
		int rc = pthread_attr_getstacksize(&def, &size);
		pthread_attr_destroy(&def);
		if (rc != 0)
			return 0;
	}
	if (size == 0 || size > SIZE_MAX - page)
		return 0;
	return (size + page - 1) & ~(page - 1);
}

/* When no secret stack can be had (a locked-memory limit, say), thread
 * creation fails as it does natively when resources run out: a routine of
 * a protected program never runs on an ordinary stack. Counted for the
 * coverage report. */
static int fall_back(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	__atomic_add_fetch(&fallbacks, 1, __ATOMIC_RELAXED);
	return EAGAIN;
}

/* A stack of the program's own: it runs there as it asked. But when that
 * memory is secret (the program mapped it, and mmap serves secret memory)
 * glibc's descriptor must not go there with it (see the top): glibc gets
 * the same attributes without the stack, and the routine switches to the
 * program's stack as to one of ours. Not ours to free. */
static int create_on_user_stack(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg,
				void *stack, size_t size)
{
	pthread_attr_t a;
	struct start *st;

	if (!secmem_overlaps(stack, size))
		return real_create(thread, attr, fn, arg);
	/* Failing that, as the program asked (a join of it may then fail). */
	if (copy_attr(&a, attr) != 0)
		return fall_back(thread, attr, fn, arg);
	st = malloc(sizeof *st);
	if (st == NULL) {
		pthread_attr_destroy(&a);
		return fall_back(thread, attr, fn, arg);
	}
	*st = (struct start){.fn = fn, .arg = arg, .size = size, .user_stack = stack};
	int rc = real_create(thread, &a, thread_start, st);
	pthread_attr_destroy(&a);
	if (rc != 0)
		free(st);
	return rc;
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	(void)pthread_once(&init_once, threads_init);
	if (real_create == NULL)
		return EAGAIN;
	shield_mem_init();
	if (!secmem_active())
		return real_create(thread, attr, fn, arg);
	void *ustack;
	size_t usize;
	if (attr_stack(attr, &ustack, &usize))
		return create_on_user_stack(thread, attr, fn, arg, ustack, usize);
	struct start *st = malloc(sizeof *st);
	size_t size = wanted_size(attr);
	if (st == NULL || size == 0 || !stack_key_ok) {
		free(st);
		return fall_back(thread, attr, fn, arg);
	}
	st->fn = fn;
	st->arg = arg;
	st->size = size;
	st->user_stack = NULL;
	st->stack = stack_get(size);
	if (st->stack == NULL) {
		free(st);
		return fall_back(thread, attr, fn, arg);
	}
	int rc = real_create(thread, attr, thread_start, st);
	if (rc != 0) {
		stack_put(st->stack);
		free(st);
	}
	return rc;
}
