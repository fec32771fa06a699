/* heap.c: the malloc family of a protected program, over Debian's jemalloc
 * (libjemalloc.so.2, a dependency of the shield), with every arena taking
 * its memory from secmem.c.
 *
 * jemalloc exports malloc itself, but as a dependency of a preloaded
 * library it comes after libc in the lookup order, so the shield exports
 * the malloc family and forwards each call to jemalloc's non-standard API
 * (mallocx and friends), which only jemalloc defines. Programs that call
 * jemalloc directly (redis-server links it: mallctl, nallocx, C++ new) reach
 * the same jemalloc and the same arenas.
 *
 * Where jemalloc's memory comes from: jemalloc maps all its memory, its
 * extents and its own metadata, with mmap, which vm.c serves from
 * secmem_chunk whenever the caller is jemalloc's code; never from sbrk
 * (dss:disabled), so that running out of secret memory fails the
 * allocation instead of falling back to ordinary memory. It keeps what it
 * mapped (retain) and does not purge (decay off): a secret page costs about
 * twenty anonymous ones to fault, so pages are reused, never handed back to
 * the kernel page by page. (Per-arena extent hooks would do the same but
 * set up every arena at once, about 80 KiB of secret pages each, at
 * start.) */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <jemalloc/jemalloc.h>

#include "memory.h"
#include "shield.h"

static struct shield_mem_ctx *const M = &shield_mem;

/* Read by jemalloc when it initializes (the program's own definition, if
 * it has one, comes first and wins). */
SHIELD_API const char *malloc_conf = "dss:disabled,retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1";

static int find_jemalloc(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t probe = (uintptr_t)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (probe >= lo && probe < hi) {
			M->jemalloc_lo = lo;
			M->jemalloc_hi = hi;
			return 1;
		}
	}
	return 0;
}

int shield_from_jemalloc(const void *ret)
{
	uintptr_t a = (uintptr_t)ret;
	return a >= M->jemalloc_lo && a < M->jemalloc_hi;
}

int shield_heap_setup(void)
{
	/* Initializes jemalloc (arena 0 only; the others come lazily, as
	 * usual), whose every mapping now comes from secret chunks. */
	unsigned n = 0;
	size_t sz = sizeof n;
	return mallctl("opt.narenas", &n, &sz, NULL, 0) == 0 ? 0 : -1;
}

static __thread int initializing;

void shield_mem_init(void)
{
	int s = atomic_load_explicit(&M->init_state, memory_order_acquire);
	if (s == 2 || initializing)
		return;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&M->init_state, &expected, 1)) {
		while (atomic_load_explicit(&M->init_state, memory_order_acquire) != 2)
			sched_yield();
		return;
	}
	initializing = 1;
	/* Before jemalloc initializes: its mmap calls must be recognized,
	 * and our fork handlers must come before its own. */
	dl_iterate_phdr(find_jemalloc, (void *)(uintptr_t)mallocx);
	secmem_register_fork();
	secmem_setup();
	if (shield_heap_setup() != 0)
		secmem_abandon("jemalloc did not start over secret memory (mallctl failed)");
	initializing = 0;
	atomic_store_explicit(&M->init_state, 2, memory_order_release);
}

static inline void ready(void)
{
	if (__builtin_expect(atomic_load_explicit(&M->init_state, memory_order_acquire) != 2, 0))
		shield_mem_init();
}

static void zero_piece(size_t off, size_t n, void *arg)
{
	memset((char *)arg + off, 0, n);
}

void *shield_heap_pages(size_t len, int zero)
{
	ready();
	void *p = mallocx(len, MALLOCX_ALIGN(M->page) | MALLOCX_TCACHE_NONE);
	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	/* Zeroes only the pages that exist: a page of a secret file that was
	 * never touched reads as zero already, and writing it would fault it
	 * in (the cost this shield works to avoid) for nothing. jemalloc's
	 * own MALLOCX_ZERO would write every page of a reused block. */
	if (zero)
		secmem_each_resident(p, len, zero_piece, p);
	return p;
}

void shield_heap_pages_free(void *p)
{
	if (p != NULL)
		dallocx(p, MALLOCX_TCACHE_NONE);
}

void *shield_heap_alloc(size_t n)
{
	ready();
	return mallocx(n ? n : 1, 0);
}

void shield_heap_free(void *p)
{
	if (p != NULL)
		dallocx(p, 0);
}

void *shield_pages_alloc(size_t len)
{
	if (len == 0 || (len & (M->page - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return shield_heap_pages(len, 0);
}

void shield_pages_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	(void)secmem_sys_mprotect(p, len, PROT_READ | PROT_WRITE);
	shield_heap_pages_free(p);
}

/* ---- the malloc family ---- */

SHIELD_API void *malloc(size_t n)
{
	ready();
	void *p = mallocx(n ? n : 1, 0);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

SHIELD_API void free(void *p)
{
	if (p != NULL)
		dallocx(p, 0);
}

SHIELD_API void *calloc(size_t a, size_t b)
{
	size_t n;
	ready();
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = mallocx(n ? n : 1, MALLOCX_ZERO);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

SHIELD_API void *realloc(void *p, size_t n)
{
	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		dallocx(p, 0);
		return NULL;
	}
	void *q = rallocx(p, n, 0);
	if (q == NULL)
		errno = ENOMEM;
	return q;
}

SHIELD_API void *reallocarray(void *p, size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

static void *aligned(size_t align, size_t n)
{
	ready();
	void *p = mallocx(n ? n : 1, MALLOCX_ALIGN(align));
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

SHIELD_API int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	int saved = errno;
	void *p = aligned(align, n);
	if (p == NULL) {
		errno = saved;
		return ENOMEM;
	}
	*out = p;
	return 0;
}

SHIELD_API void *aligned_alloc(size_t align, size_t n)
{
	if (align == 0 || (align & (align - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, n);
}

SHIELD_API void *memalign(size_t align, size_t n)
{
	size_t a = sizeof(void *);
	/* glibc rounds an alignment that is not a power of two up to one. */
	while (a < align && a <= SIZE_MAX / 2)
		a <<= 1;
	return aligned(a, n);
}

SHIELD_API void *valloc(size_t n)
{
	ready();
	return aligned(M->page, n);
}

void *pvalloc(size_t n);
SHIELD_API void *pvalloc(size_t n)
{
	ready();
	size_t r = (n + M->page - 1) & ~(M->page - 1);
	if (r < n) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned(M->page, r ? r : M->page);
}

SHIELD_API size_t malloc_usable_size(void *p)
{
	return p != NULL ? sallocx(p, 0) : 0;
}
