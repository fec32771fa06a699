/* vm.c: the program's private anonymous memory, and fork.
 *
 * mmap of private anonymous read/write memory (CPython's object arenas,
 * allocators bundled in programs, buffers) is served from jemalloc's page
 * arena over secret memory; munmap, mremap, madvise and mprotect keep the
 * semantics a program relies on for such memory:
 *   - a fresh mapping reads as zero (MALLOCX_ZERO);
 *   - MADV_DONTNEED and MADV_REMOVE make pages read as zero (the kernel
 *     refuses both on secret memory, and allocators count on the zeroing),
 *     MADV_FREE may keep contents and does, MADV_WIPEONFORK is kept by the
 *     fork child handler;
 *   - munmap of part of a mapping makes that part inaccessible (PROT_NONE)
 *     until the rest goes too; munmap of all of it returns the block to
 *     jemalloc;
 *   - mremap grows in place when the block has room, else moves (with
 *     MREMAP_MAYMOVE) by copying.
 * Not served from secret memory (they go to the kernel unchanged): shared,
 * file-backed, fixed-address, PROT_NONE reservations and executable
 * mappings, huge pages, grows-down stacks. The kernel cannot execute secret
 * pages, so mprotect(PROT_EXEC) on secret memory fails as the kernel
 * answers it (EACCES). `arca run --report` shows what stayed uncovered.
 *
 * fork: runs the real fork on a private scratch stack (the caller's stack
 * is secret, hence shared with the child until its copy is made, and both
 * sides would otherwise write their frames into it at once); secmem.c's
 * handlers make the copy while the parent's forking thread waits. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "memory.h"
#include "shield.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

static struct shield_mem_ctx *const M = &shield_mem;

static int ready(void)
{
	return atomic_load_explicit(&M->init_state, memory_order_acquire) == 2;
}

static size_t round_page(size_t n)
{
	return (n + M->page - 1) & ~(M->page - 1);
}

/* ---- the region table (pieces sorted by address; vm_lock held) ---- */

/* Index of the piece containing a, or of the first piece after a. */
static size_t vm_find(uintptr_t a, int *found)
{
	size_t lo = 0, hi = M->vm_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct shield_vm_region *r = &M->vm[mid];
		if (a < r->lo)
			hi = mid;
		else if (a >= r->hi)
			lo = mid + 1;
		else {
			*found = 1;
			return mid;
		}
	}
	*found = 0;
	return lo;
}

/* Makes room for two more pieces and returns with vm_lock held. The
 * table grows outside the lock: jemalloc is never called under it. */
static int vm_reserve(void)
{
	for (;;) {
		pthread_mutex_lock(&M->vm_lock);
		if (M->vm_n + 2 <= M->vm_cap)
			return 0;
		size_t cap = M->vm_cap ? M->vm_cap * 2 : 256;
		size_t have = M->vm_cap;
		pthread_mutex_unlock(&M->vm_lock);
		struct shield_vm_region *t = shield_heap_alloc(cap * sizeof *t);
		if (t == NULL)
			return -1;
		pthread_mutex_lock(&M->vm_lock);
		if (M->vm_cap != have) { /* someone else grew it */
			pthread_mutex_unlock(&M->vm_lock);
			shield_heap_free(t);
			continue;
		}
		if (M->vm_n)
			memcpy(t, M->vm, M->vm_n * sizeof *t);
		struct shield_vm_region *old = M->vm;
		M->vm = t;
		M->vm_cap = cap;
		pthread_mutex_unlock(&M->vm_lock);
		shield_heap_free(old);
	}
}

static void vm_insert(const struct shield_vm_region *r)
{
	int found;
	size_t i = vm_find(r->lo, &found);
	memmove(&M->vm[i + 1], &M->vm[i], (M->vm_n - i) * sizeof M->vm[0]);
	M->vm[i] = *r;
	M->vm_n++;
}

static void vm_remove(size_t i)
{
	memmove(&M->vm[i], &M->vm[i + 1], (M->vm_n - i - 1) * sizeof M->vm[0]);
	M->vm_n--;
}

/* Registers a piece; the memory is already mapped. -1: no room. */
static int vm_register(uintptr_t lo, size_t n, uintptr_t base, unsigned flags)
{
	if (vm_reserve() != 0)
		return -1;
	vm_insert(&(struct shield_vm_region){.lo = lo, .hi = lo + n, .base = base, .len = n, .flags = flags});
	pthread_mutex_unlock(&M->vm_lock);
	return 0;
}

static void *vm_alloc(size_t len)
{
	size_t n = round_page(len);
	if (n < len || n == 0) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = shield_heap_pages(n);
	if (p == NULL) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (vm_register((uintptr_t)p, n, (uintptr_t)p, 0) != 0) {
		shield_heap_pages_free(p);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return p;
}

/* A secret file of its own at a fixed address. */
static void *vm_place(void *addr, size_t len, int fixed)
{
	size_t n = round_page(len);
	if (n < len || n == 0) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (secmem_place(addr, n, fixed) != 0)
		return MAP_FAILED;
	if (vm_register((uintptr_t)addr, n, 0, 0) != 0) {
		secmem_sys_munmap(addr, n);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return addr;
}

/* What to do with a block once vm_lock is dropped. */
struct vm_release {
	uintptr_t base;
	size_t len;
	int restore; /* its pages were really unmapped: map a secret file back first */
};

static int block_in_use(uintptr_t base)
{
	for (size_t i = 0; i < M->vm_n; i++)
		if (M->vm[i].base == base)
			return 1;
	return 0;
}

/* Unmaps [a, b), which lies in secret memory. A block the program unmaps
 * whole goes back to jemalloc. A part of a block is really unmapped (so
 * the addresses are free, as natively) and the rest stays a piece; when the
 * last piece of a block goes, a new secret file is mapped over the block
 * (if nothing else took its addresses meanwhile) and the block goes back
 * to jemalloc. Secret memory that is not the program's mmap (the heap,
 * stacks, data) is left alone. */
static void vm_unmap(uintptr_t a, uintptr_t b)
{
	struct vm_release rel[16];
	size_t nrel = 0;
	pthread_mutex_lock(&M->vm_lock);
	for (uintptr_t at = a; at < b && nrel < sizeof rel / sizeof rel[0];) {
		int found;
		size_t i = vm_find(at, &found);
		if (!found) {
			if (i >= M->vm_n || M->vm[i].lo >= b)
				break;
			at = M->vm[i].lo;
			continue;
		}
		struct shield_vm_region r = M->vm[i];
		uintptr_t lo = a > r.lo ? a : r.lo, hi = b < r.hi ? b : r.hi;
		at = r.hi;
		if (r.base != 0 && !(r.flags & SHIELD_VM_SPLIT) && lo == r.lo && hi == r.hi) {
			if (r.flags & SHIELD_VM_PROT_CHANGED)
				(void)secmem_sys_mprotect((void *)r.lo, r.hi - r.lo, PROT_READ | PROT_WRITE);
			vm_remove(i);
			rel[nrel++] = (struct vm_release){r.base, r.len, 0};
			continue;
		}
		if (M->vm_n + 1 > M->vm_cap && lo > r.lo && hi < r.hi) {
			/* No room to split (the table cannot grow under the
			 * lock): make the middle inaccessible instead. */
			(void)secmem_sys_mprotect((void *)lo, hi - lo, PROT_NONE);
			M->vm[i].flags |= SHIELD_VM_PROT_CHANGED;
			continue;
		}
		(void)secmem_sys_munmap((void *)lo, hi - lo);
		vm_remove(i);
		r.flags |= SHIELD_VM_SPLIT;
		if (lo > r.lo)
			vm_insert(&(struct shield_vm_region){r.lo, lo, r.base, r.len, r.flags});
		if (hi < r.hi)
			vm_insert(&(struct shield_vm_region){hi, r.hi, r.base, r.len, r.flags});
		if (r.base != 0 && !block_in_use(r.base))
			rel[nrel++] = (struct vm_release){r.base, r.len, 1};
	}
	pthread_mutex_unlock(&M->vm_lock);
	for (size_t k = 0; k < nrel; k++) {
		if (rel[k].restore && secmem_place((void *)rel[k].base, rel[k].len, MAP_FIXED_NOREPLACE) != 0)
			continue; /* something else lives there now: the block is lost */
		shield_heap_pages_free((void *)rel[k].base);
	}
}

/* Calls fn on each piece of [a, b) with whether it is secret. */
static int split_secret(uintptr_t a, uintptr_t b, int (*fn)(uintptr_t, uintptr_t, int, void *), void *arg)
{
	size_t n = atomic_load_explicit(&M->nranges, memory_order_acquire);
	while (a < b) {
		uintptr_t next = b;
		int secret = 0;
		for (size_t i = 0; i < n; i++) {
			const struct shield_mem_range *r = &M->ranges[i];
			if (a >= r->lo && a < r->hi) {
				secret = 1;
				next = r->hi < b ? r->hi : b;
				break;
			}
			if (r->lo > a && r->lo < next)
				next = r->lo;
		}
		int rc = fn(a, next, secret, arg);
		if (rc != 0)
			return rc;
		a = next;
	}
	return 0;
}

/* ---- interposers ---- */

static int eligible(size_t len, int prot, int flags, int fd)
{
	if (len == 0 || !(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE)
		return 0;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_HUGETLB | MAP_GROWSDOWN | MAP_32BIT))
		return 0;
	return prot == (PROT_READ | PROT_WRITE);
}

/* A private anonymous read/write mapping at a fixed address, outside
 * memory the shield itself manages (heap chunks, data, stacks). */
static int fixed_eligible(void *addr, size_t len, int prot, int flags)
{
	if (len == 0 || !(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE)
		return 0;
	if (!(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) || (flags & (MAP_HUGETLB | MAP_GROWSDOWN)))
		return 0;
	if (((uintptr_t)addr & (M->page - 1)) != 0 || prot != (PROT_READ | PROT_WRITE))
		return 0;
	return !secmem_overlaps(addr, len);
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, const void *ret)
{
	if (M->active && (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE && len != 0 &&
	    shield_from_jemalloc(ret) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) {
		/* jemalloc's own metadata. A hint means "here or not at all". */
		if (addr != NULL) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
		void *p = secmem_chunk(len, M->page);
		return p != NULL ? p : MAP_FAILED;
	}
	if (M->active && ready() && eligible(len, prot, flags, fd))
		return vm_alloc(len);
	if ((flags & MAP_FIXED) && M->active && secmem_overlaps(addr, len)) {
		/* The program maps over secret memory of its own mmap: those
		 * pieces are unmapped first, as the kernel would. */
		vm_unmap((uintptr_t)addr, (uintptr_t)addr + round_page(len));
	}
	if (M->active && ready() && fixed_eligible(addr, len, prot, flags)) {
		void *p = vm_place(addr, len, (flags & MAP_FIXED_NOREPLACE) ? MAP_FIXED_NOREPLACE : MAP_FIXED);
		if (p != MAP_FAILED || errno == EEXIST)
			return p;
	}
	return secmem_sys_mmap(addr, len, prot, flags, fd, off);
}

SHIELD_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

SHIELD_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

static int unmap_piece(uintptr_t a, uintptr_t b, int secret, void *arg)
{
	if (secret) {
		vm_unmap(a, b);
		return 0;
	}
	return secmem_sys_munmap((void *)a, b - a);
}

SHIELD_API int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	if (!M->active || len == 0 || (a & (M->page - 1)) != 0 || !secmem_overlaps(addr, len))
		return secmem_sys_munmap(addr, len);
	/* jemalloc trimming memory it got from us: keep it. */
	if (shield_from_jemalloc(__builtin_return_address(0)))
		return 0;
	size_t n = round_page(len);
	if (n < len) {
		errno = EINVAL;
		return -1;
	}
	return split_secret(a, a + n, unmap_piece, NULL);
}

/* Zeroes [a, b) of secret memory, whatever its pages' protection. */
static void zero_secret(uintptr_t a, uintptr_t b)
{
	int plain = 1;
	pthread_mutex_lock(&M->vm_lock);
	for (size_t i = 0; i < M->vm_n; i++) {
		const struct shield_vm_region *r = &M->vm[i];
		if (r->lo < b && r->hi > a && (r->flags & SHIELD_VM_PROT_CHANGED))
			plain = 0;
	}
	pthread_mutex_unlock(&M->vm_lock);
	if (plain) {
		memset((void *)a, 0, b - a);
		return;
	}
	secmem_zero_range(a, b);
}

struct advice {
	int advice;
};

static int advise_piece(uintptr_t a, uintptr_t b, int secret, void *arg)
{
	const struct advice *ad = arg;
	if (!secret)
		return (int)syscall(SYS_madvise, (void *)a, b - a, ad->advice);
	switch (ad->advice) {
	case MADV_DONTNEED:
	case MADV_DONTNEED_LOCKED:
	case MADV_REMOVE:
		zero_secret(a, b);
		return 0;
	case MADV_FREE:
	case MADV_KEEPONFORK:
		return 0;
	case MADV_WIPEONFORK:
		pthread_mutex_lock(&M->vm_lock);
		if (M->nwipe >= SHIELD_VM_MAX_WIPE) {
			pthread_mutex_unlock(&M->vm_lock);
			errno = ENOMEM;
			return -1;
		}
		M->wipe[M->nwipe].lo = a;
		M->wipe[M->nwipe].hi = b;
		M->nwipe++;
		pthread_mutex_unlock(&M->vm_lock);
		return 0;
	case MADV_POPULATE_READ:
	case MADV_POPULATE_WRITE:
		for (uintptr_t p = a; p < b; p += M->page)
			__atomic_fetch_add((volatile unsigned char *)p, 0, __ATOMIC_RELAXED);
		return 0;
	default:
		/* A hint; secret memory may not take it, which changes nothing
		 * the program can see. */
		(void)syscall(SYS_madvise, (void *)a, b - a, ad->advice);
		return 0;
	}
}

SHIELD_API int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;
	if (!M->active || len == 0 || (a & (M->page - 1)) != 0 || !secmem_overlaps(addr, len))
		return (int)syscall(SYS_madvise, addr, len, advice);
	size_t n = round_page(len);
	struct advice ad = {advice};
	return split_secret(a, a + n, advise_piece, &ad);
}

SHIELD_API int posix_madvise(void *addr, size_t len, int advice)
{
	if (advice == POSIX_MADV_DONTNEED)
		return 0; /* POSIX: a hint that may not discard contents */
	int saved = errno;
	int rc = madvise(addr, len, advice);
	int e = errno;
	errno = saved;
	return rc == 0 ? 0 : e;
}

SHIELD_API int mprotect(void *addr, size_t len, int prot)
{
	if (!M->active || len == 0 || !secmem_overlaps(addr, len))
		return secmem_sys_mprotect(addr, len, prot);
	int rc = secmem_sys_mprotect(addr, len, prot);
	if (rc == 0 && prot != (PROT_READ | PROT_WRITE)) {
		uintptr_t a = (uintptr_t)addr, b = a + len;
		pthread_mutex_lock(&M->vm_lock);
		for (size_t i = 0; i < M->vm_n; i++)
			if (M->vm[i].lo < b && M->vm[i].hi > a)
				M->vm[i].flags |= SHIELD_VM_PROT_CHANGED;
		pthread_mutex_unlock(&M->vm_lock);
	}
	return rc;
}

SHIELD_API void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	void *fixed = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		fixed = va_arg(ap, void *);
		va_end(ap);
	}
	if (!M->active || !secmem_overlaps(old, oldlen ? oldlen : 1))
		return (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, fixed);
	uintptr_t o = (uintptr_t)old;
	size_t on = round_page(oldlen), nn = round_page(newlen);
	if ((o & (M->page - 1)) != 0 || newlen == 0 || nn < newlen || (flags & MREMAP_DONTUNMAP) ||
	    ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE))) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	pthread_mutex_lock(&M->vm_lock);
	int found;
	size_t i = vm_find(o, &found);
	int ok = found && o + on <= M->vm[i].hi;
	pthread_mutex_unlock(&M->vm_lock);
	if (!ok) {
		errno = EFAULT; /* not all of it is memory the program mapped with mmap */
		return MAP_FAILED;
	}
	if (!(flags & MREMAP_FIXED) && nn <= on) {
		if (nn < on)
			vm_unmap(o + nn, o + on);
		return old;
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM; /* growing in place is not offered */
		return MAP_FAILED;
	}
	void *n;
	if (flags & MREMAP_FIXED) {
		uintptr_t f = (uintptr_t)fixed;
		if ((f & (M->page - 1)) != 0 || (f < o + on && f + nn > o)) {
			errno = EINVAL;
			return MAP_FAILED;
		}
		if (secmem_overlaps(fixed, nn))
			vm_unmap(f, f + nn);
		n = vm_place(fixed, nn, MAP_FIXED);
	} else {
		n = vm_alloc(nn);
	}
	if (n == MAP_FAILED)
		return MAP_FAILED;
	memcpy(n, old, on < nn ? on : nn);
	vm_unmap(o, o + on);
	return n;
}

/* ---- fork ---- */

void shield_vm_fork_prepare(void)
{
	pthread_mutex_lock(&M->vm_lock);
}

void shield_vm_fork_parent(void)
{
	pthread_mutex_unlock(&M->vm_lock);
}

void shield_vm_fork_child(void)
{
	for (size_t i = 0; i < M->nwipe; i++)
		secmem_zero_range(M->wipe[i].lo, M->wipe[i].hi);
	pthread_mutex_init(&M->vm_lock, NULL);
}

typedef pid_t (*fork_fn)(void);
static __thread pid_t fork_pid;
static __thread int fork_errno;
static __thread fork_fn fork_real;

static void fork_on_scratch(void)
{
	fork_pid = fork_real();
	fork_errno = errno;
}

SHIELD_API pid_t fork(void)
{
	if (fork_real == NULL)
		fork_real = (fork_fn)dlsym(RTLD_NEXT, "fork");
	if (fork_real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (!M->active)
		return fork_real();
	const size_t scratch = 256 * 1024;
	char *stk = secmem_sys_mmap(NULL, scratch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stk == MAP_FAILED) {
		errno = EAGAIN;
		return -1;
	}
	if (secmem_fork_begin() != 0) {
		secmem_sys_munmap(stk, scratch);
		errno = EAGAIN;
		return -1;
	}
	ucontext_t back, on;
	if (getcontext(&on) != 0) {
		secmem_fork_abort();
		secmem_sys_munmap(stk, scratch);
		errno = EAGAIN;
		return -1;
	}
	on.uc_stack.ss_sp = stk;
	on.uc_stack.ss_size = scratch;
	on.uc_link = &back;
	makecontext(&on, fork_on_scratch, 0);
	if (swapcontext(&back, &on) != 0) {
		secmem_fork_abort();
		secmem_sys_munmap(stk, scratch);
		errno = EAGAIN;
		return -1;
	}
	pid_t pid = fork_pid;
	int e = fork_errno;
	secmem_sys_munmap(stk, scratch);
	errno = e;
	return pid;
}
