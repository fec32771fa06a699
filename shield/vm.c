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
 * is secret, hence a hole in the child until its copy is in place: the
 * child needs a stack that exists to take that first fault on); secmem.c's
 * handlers make the copy (secmem.c "fork"). */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include <fcntl.h>
#include <pty.h>
#include <utmp.h>

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
	void *p = shield_heap_pages(n, 1);
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
	if (vm_register((uintptr_t)addr, n, (uintptr_t)addr, SHIELD_VM_OWNFILE) != 0) {
		secmem_sys_munmap(addr, n);
		secmem_unrecord((uintptr_t)addr, (uintptr_t)addr + n);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return addr;
}

/* What to do with a block once vm_lock is dropped. */
struct vm_release {
	uintptr_t base;
	size_t len;
	unsigned flags;
	int restore; /* its pages were really unmapped: map a secret file back first */
};

static int block_in_use(uintptr_t base)
{
	for (size_t i = 0; i < M->vm_n; i++)
		if (M->vm[i].base == base)
			return 1;
	return 0;
}

/* Unmaps the program's pieces in [a, b). A block the program unmaps whole
 * goes back to jemalloc. A part of a block is really unmapped (so the
 * addresses are free, as natively) and the rest stays a piece; when the
 * last piece of a block goes, a new secret file is mapped over the block
 * (unless something else took its addresses meanwhile: then the block is
 * lost, never reused) and the block goes back to jemalloc. A secret file
 * of its own is forgotten when its last piece goes. With take (the
 * program maps something else there), every piece is really unmapped and
 * no block goes back: its addresses are about to be taken. */
static void vm_unmap_ex(uintptr_t a, uintptr_t b, int take)
{
	struct vm_release rel[16];
	uintptr_t at = a;
	while (at < b) {
		size_t nrel = 0;
		pthread_mutex_lock(&M->vm_lock);
		while (at < b && nrel < sizeof rel / sizeof rel[0]) {
			int found;
			size_t i = vm_find(at, &found);
			if (!found) {
				if (i >= M->vm_n || M->vm[i].lo >= b) {
					at = b;
					break;
				}
				at = M->vm[i].lo;
				continue;
			}
			struct shield_vm_region r = M->vm[i];
			uintptr_t lo = a > r.lo ? a : r.lo, hi = b < r.hi ? b : r.hi;
			at = r.hi;
			if (!take && !(r.flags & (SHIELD_VM_SPLIT | SHIELD_VM_OWNFILE)) && lo == r.lo && hi == r.hi) {
				if (r.flags & SHIELD_VM_PROT_CHANGED)
					(void)secmem_sys_mprotect((void *)r.lo, r.hi - r.lo, PROT_READ | PROT_WRITE);
				vm_remove(i);
				rel[nrel++] = (struct vm_release){r.base, r.len, r.flags, 0};
				continue;
			}
			if (M->vm_n + 1 > M->vm_cap && lo > r.lo && hi < r.hi) {
				/* No room to split (the table cannot grow under
				 * the lock): the middle becomes inaccessible. */
				(void)secmem_sys_mprotect((void *)lo, hi - lo, PROT_NONE);
				M->vm[i].flags |= SHIELD_VM_PROT_CHANGED;
				continue;
			}
			(void)secmem_sys_munmap((void *)lo, hi - lo);
			vm_remove(i);
			r.flags |= SHIELD_VM_SPLIT;
			if (take)
				r.flags |= SHIELD_VM_LOST;
			if (lo > r.lo)
				vm_insert(&(struct shield_vm_region){r.lo, lo, r.base, r.len, r.flags});
			if (hi < r.hi)
				vm_insert(&(struct shield_vm_region){hi, r.hi, r.base, r.len, r.flags});
			if (!block_in_use(r.base))
				rel[nrel++] = (struct vm_release){r.base, r.len, r.flags, 1};
		}
		pthread_mutex_unlock(&M->vm_lock);
		for (size_t k = 0; k < nrel; k++) {
			const struct vm_release *v = &rel[k];
			if (v->flags & SHIELD_VM_OWNFILE) {
				secmem_unrecord(v->base, v->base + v->len);
				continue;
			}
			if (v->flags & SHIELD_VM_LOST)
				continue;
			if (v->restore && secmem_place((void *)v->base, v->len, MAP_FIXED_NOREPLACE) != 0)
				continue; /* something else lives there now: the block is lost */
			shield_heap_pages_free((void *)v->base);
		}
	}
}

static void vm_unmap(uintptr_t a, uintptr_t b)
{
	vm_unmap_ex(a, b, 0);
}

/* Whether [a, b) is wholly the program's own pieces. */
static int covered_by_pieces(uintptr_t a, uintptr_t b)
{
	int all = 1;
	pthread_mutex_lock(&M->vm_lock);
	for (uintptr_t at = a; at < b;) {
		int found;
		size_t i = vm_find(at, &found);
		if (!found) {
			all = 0;
			break;
		}
		at = M->vm[i].hi;
	}
	pthread_mutex_unlock(&M->vm_lock);
	return all;
}

enum { K_PIECE, K_SHIELD, K_OTHER };

#define MAX_VMAS 128
struct vmas {
	uintptr_t a, b;
	struct {
		uintptr_t lo, hi;
		int secret;
	} v[MAX_VMAS];
	size_t n;
};

static int note_vma(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg)
{
	struct vmas *vs = arg;
	if (hi <= vs->a || lo >= vs->b)
		return 0;
	if (vs->n >= MAX_VMAS)
		return 1;
	vs->v[vs->n].lo = lo;
	vs->v[vs->n].hi = hi;
	vs->v[vs->n].secret = shared && strncmp(name, "/secretmem", 10) == 0;
	vs->n++;
	return 0;
}

/* Calls fn on each part of [a, b) with what it is: a piece the program
 * mapped (K_PIECE), other secret memory of the shield's (K_SHIELD: heap,
 * stacks, data) or anything else, mapped or not (K_OTHER). What a part is
 * comes from the piece table and /proc/self/maps, never from the recorded
 * ranges alone (a range may have holes the program reused). */
static int classify(uintptr_t a, uintptr_t b, int (*fn)(uintptr_t, uintptr_t, int, void *), void *arg)
{
	if (!secmem_overlaps((void *)a, b - a))
		return fn(a, b, K_OTHER, arg);
	if (covered_by_pieces(a, b))
		return fn(a, b, K_PIECE, arg);
	struct vmas vs;
	while (a < b) {
		vs.a = a;
		vs.b = b;
		vs.n = 0;
		if (secmem_maps_foreach(note_vma, &vs) < 0) {
			errno = ENOMEM;
			return -1;
		}
		uintptr_t end = vs.n == MAX_VMAS ? vs.v[MAX_VMAS - 1].hi : b;
		if (end > b)
			end = b;
		for (size_t k = 0; k <= vs.n && a < end; k++) {
			uintptr_t lo = k < vs.n ? (vs.v[k].lo > a ? vs.v[k].lo : a) : end;
			if (a < lo) { /* a gap: nothing mapped */
				int rc = fn(a, lo < end ? lo : end, K_OTHER, arg);
				if (rc != 0)
					return rc;
				a = lo < end ? lo : end;
			}
			if (k == vs.n || a >= end)
				break;
			uintptr_t hi = vs.v[k].hi < end ? vs.v[k].hi : end;
			if (!vs.v[k].secret) {
				int rc = fn(a, hi, K_OTHER, arg);
				if (rc != 0)
					return rc;
				a = hi;
				continue;
			}
			/* Secret: pieces of the program's, the rest the shield's. */
			while (a < hi) {
				int found;
				pthread_mutex_lock(&M->vm_lock);
				size_t i = vm_find(a, &found);
				uintptr_t next = found ? M->vm[i].hi : (i < M->vm_n ? M->vm[i].lo : hi);
				pthread_mutex_unlock(&M->vm_lock);
				if (next > hi)
					next = hi;
				int rc = fn(a, next, found ? K_PIECE : K_SHIELD, arg);
				if (rc != 0)
					return rc;
				a = next;
			}
		}
		a = end;
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

/* A private anonymous read/write mapping at a fixed address: a secret
 * file of its own (pieces it replaces were taken first). */
static int fixed_eligible(void *addr, size_t len, int prot, int flags)
{
	if (len == 0 || !(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE)
		return 0;
	if (!(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) || (flags & (MAP_HUGETLB | MAP_GROWSDOWN)))
		return 0;
	return ((uintptr_t)addr & (M->page - 1)) == 0 && prot == (PROT_READ | PROT_WRITE);
}

static int take_part(uintptr_t a, uintptr_t b, int kind, void *arg)
{
	if (kind == K_PIECE)
		vm_unmap_ex(a, b, 1);
	else if (kind == K_SHIELD)
		*(int *)arg = 1;
	return 0;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, const void *ret)
{
	if (fd >= 0 && shield_volfs_owns_fd(fd))
		return shield_volfs_mmap(addr, len, prot, flags, fd, off);
	if (M->active && (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE && len != 0 &&
	    shield_from_jemalloc(ret) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) {
		/* jemalloc's own metadata. A hint means "here or not at all". */
		if (addr != NULL) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
		/* jemalloc aligns its own blocks to 2 MiB and would otherwise
		 * map more and trim (which we cannot give back). */
		void *p = secmem_chunk(len, len >= ((size_t)2 << 20) ? (size_t)2 << 20 : M->page);
		return p != NULL ? p : MAP_FAILED;
	}
	if (M->active && ready() && eligible(len, prot, flags, fd))
		return vm_alloc(len);
	if ((flags & MAP_FIXED) && M->active && secmem_overlaps(addr, len)) {
		/* Over the program's own pieces: they go, as the kernel would
		 * take them. Over the shield's own memory (heap, stacks,
		 * data): refused, it is not the program's to replace. */
		int shield_mem_hit = 0;
		uintptr_t a = (uintptr_t)addr, b = a + round_page(len);
		if (((a & (M->page - 1)) != 0) || classify(a, b, take_part, &shield_mem_hit) != 0 || shield_mem_hit) {
			errno = EINVAL;
			return MAP_FAILED;
		}
	}
	if (M->active && ready() && fixed_eligible(addr, len, prot, flags))
		return vm_place(addr, len, (flags & MAP_FIXED_NOREPLACE) ? MAP_FIXED_NOREPLACE : MAP_FIXED);
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

static int unmap_part(uintptr_t a, uintptr_t b, int kind, void *arg)
{
	if (kind == K_PIECE)
		vm_unmap(a, b);
	else if (kind == K_OTHER)
		return secmem_sys_munmap((void *)a, b - a);
	/* K_SHIELD: heap, stacks or data the program did not map itself;
	 * they stay (freeing them is the allocator's business). */
	return 0;
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
	return classify(a, a + n, unmap_part, NULL);
}

/* Zeroes [a, b) of secret memory, whatever its pages' protection. */
static void zero_secret(uintptr_t a, uintptr_t b)
{
	int plain = 1;
	pthread_mutex_lock(&M->vm_lock);
	int found;
	for (size_t i = vm_find(a, &found); i < M->vm_n && M->vm[i].lo < b; i++)
		if (M->vm[i].flags & SHIELD_VM_PROT_CHANGED)
			plain = 0;
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

static int advise_part(uintptr_t a, uintptr_t b, int kind, void *arg)
{
	const struct advice *ad = arg;
	if (kind == K_OTHER)
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
	if (shield_from_jemalloc(__builtin_return_address(0))) {
		/* jemalloc purging its own pages: declined, so that it keeps
		 * them as they are (not assumed zero) and reuses them; its
		 * other advice (huge pages, dumping) does not apply. */
		if (advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
		    advice == MADV_DONTNEED_LOCKED) {
			errno = EINVAL;
			return -1;
		}
		return 0;
	}
	size_t n = round_page(len);
	struct advice ad = {advice};
	return classify(a, a + n, advise_part, &ad);
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
	/* Under vm_lock, which a fork holds while it copies secret memory for
	 * the child: a page must not become unreadable midway through. */
	pthread_mutex_lock(&M->vm_lock);
	int rc = secmem_sys_mprotect(addr, len, prot);
	if (rc == 0 && prot != (PROT_READ | PROT_WRITE)) {
		uintptr_t a = (uintptr_t)addr, b = a + len;
		int found;
		for (size_t i = vm_find(a, &found); i < M->vm_n && M->vm[i].lo < b; i++)
			M->vm[i].flags |= SHIELD_VM_PROT_CHANGED;
	}
	int e = errno;
	pthread_mutex_unlock(&M->vm_lock);
	errno = e;
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
	if (pid > 0 && secmem_fork_failed()) {
		/* The child had no copy of secret memory to run with (the
		 * locked-memory limit, most likely: the copy needs as much again
		 * as the secret memory there is) and stops at once. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = EAGAIN;
		return -1;
	}
	errno = e;
	return pid;
}

/* Forks the C library makes itself (forkpty, daemon) would not come
 * through fork() above, so they are made here with it. */
SHIELD_API int forkpty(int *amaster, char *name, const struct termios *termp, const struct winsize *winp)
{
	int master, slave;
	if (openpty(&master, &slave, name, termp, winp) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(master);
		close(slave);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		close(master);
		if (login_tty(slave) != 0)
			_exit(1);
		return 0;
	}
	close(slave);
	*amaster = master;
	return pid;
}

SHIELD_API int daemon(int nochdir, int noclose)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if (!nochdir && chdir("/") != 0)
		return -1;
	if (!noclose) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			return -1;
		if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
			close(fd);
			return -1;
		}
		if (fd > 2)
			close(fd);
	}
	return 0;
}
