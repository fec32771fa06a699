/* memory.h: the memory shield, the part of libarca-shield.so that keeps a
 * protected program's memory in memfd_secret(2) pages, which the kernel
 * removes from its direct map so that /proc/PID/mem, ptrace, process_vm_readv
 * and core dumps cannot read them (docs/CONTRACTS.md "Memory shield").
 *
 * Layers:
 *   secmem.c  chunks of secret memory (one memfd_secret file each, mapped
 *             once, its descriptor closed at once); the list of every secret
 *             range in the process; the private copy a child of fork gets.
 *   heap.c    the malloc family, over Debian's jemalloc, which maps all its
 *             memory with mmap (served from secmem.c chunks), never sbrk, and
 *             never gives pages back to the kernel (a secret page costs ~20
 *             anonymous ones to fault, so pages are reused, not returned).
 *   vm.c      mmap/munmap/mremap/madvise/mprotect for private anonymous
 *             mappings, served as page-aligned jemalloc blocks (or secret
 *             files of their own at fixed addresses); fork.
 *   remap.c   moves what the loader mapped before us (writable segments of
 *             every loaded object, their .bss, the main thread's stack)
 *             into secret memory in place, at the same addresses.
 *   threads.c stacks of threads started with pthread_create: glibc keeps
 *             creating the thread (its descriptor and TLS stay in private
 *             memory: at fork the kernel and glibc write them in the child),
 *             and the start routine runs on a secret stack it switches to
 *             (ucontext), freed by a pthread key destructor. NOT
 *             pthread_attr_setstack (details: /tmp/h1_update.md).
 *   report.c  `arca run --report`: at exit, how much private writable memory
 *             was secret (from /proc/self/smaps) and the page faults.
 *
 * When memfd_secret is unavailable, every layer falls back to ordinary
 * anonymous memory and shield_mem_status() says why; attestation then
 * reports it (arca-las sees no secret mapping) and CAS refuses unless the
 * session tolerates no-secret-memory. Nothing here allocates with the heap
 * while the heap is being set up; nothing here is exported. */
#ifndef ARCA_SHIELD_MEMORY_H
#define ARCA_SHIELD_MEMORY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct shield_mem_status {
	int secret;        /* 1: memory comes from memfd_secret */
	int err;           /* errno of the failed step when !secret */
	char reason[320];  /* when !secret: what failed and how to fix it */
};

/* The memory shield's part of the shield's one global context (state.c).
 * It holds addresses and counters, never secrets, and lives in the shield's
 * own private memory: a child of fork must read a consistent copy of it. */
#define SHIELD_MEM_MAX_RANGES 8192
#define SHIELD_MEM_MAX_PROT 16384
struct shield_mem_range {
	uintptr_t lo, hi;
};
struct shield_mem_prot {
	uintptr_t lo, hi;
	int prot;
};
/* A private anonymous mapping the program made, served from secret memory:
 * either a page-aligned jemalloc block, or (fixed addresses, mremap to a fixed
 * address) a secret file of its own. */
struct shield_vm_region {
	uintptr_t lo, hi; /* a piece the program has mapped; pieces never overlap */
	uintptr_t base;   /* the jemalloc block (or own file) it belongs to */
	size_t len;       /* the block's (file's) length as the program asked (rounded) */
	unsigned flags;   /* SHIELD_VM_* */
};
#define SHIELD_VM_PROT_CHANGED 1u /* some page may not be read/write */
#define SHIELD_VM_SPLIT 2u        /* part of its block was really unmapped */
#define SHIELD_VM_OWNFILE 4u      /* a secret file of its own, not a jemalloc block */
#define SHIELD_VM_LOST 8u         /* its addresses were taken: never back to jemalloc */
#define SHIELD_VM_MAX_WIPE 64
struct shield_mem_ctx {
	_Atomic int init_state; /* 0 not started, 1 in progress, 2 done */
	int active;             /* memfd_secret in use */
	size_t page;
	struct shield_mem_status status;
	pthread_mutex_t chunk_lock;
	pthread_mutex_t range_lock; /* writers of ranges[]; a leaf */
	uintptr_t cur, end; /* bump cursor in the newest chunk */
	uintptr_t first_chunk;
	size_t first_len;
	size_t next_chunk;
	size_t lock_limit; /* RLIMIT_MEMLOCK in bytes; (size_t)-1: none */
	size_t chunk_bytes, adopted_bytes, stack_bytes;
	unsigned long forks_copied;
	_Atomic size_t nranges;
	size_t nprot;
	uintptr_t jemalloc_lo, jemalloc_hi; /* jemalloc's code, to know its mmap calls */
	pthread_mutex_t vm_lock; /* a leaf: nothing under it calls jemalloc */
	struct shield_vm_region *vm; /* pieces, sorted by address */
	size_t vm_n, vm_cap;
	struct shield_mem_range wipe[SHIELD_VM_MAX_WIPE]; /* MADV_WIPEONFORK */
	size_t nwipe;
	uintptr_t stack_lo, stack_hi; /* the main thread's secret stack */
	/* The large tables last, so that the fields above share few pages. */
	struct shield_mem_range ranges[SHIELD_MEM_MAX_RANGES]; /* a slot is reused once forgotten */
	struct shield_mem_prot prot[SHIELD_MEM_MAX_PROT]; /* scratch of the fork prepare handler */
};
extern struct shield_mem_ctx shield_mem;

/* Sets up secret memory once (idempotent, thread-safe): probes
 * memfd_secret, raises RLIMIT_MEMLOCK's soft limit to the hard one, maps
 * the first chunk, installs the heap. Called by the first allocation and by
 * the shield's first constructor, whichever comes first. */
void shield_mem_init(void);
const struct shield_mem_status *shield_mem_status(void);

/* Page-aligned readable and writable memory of len bytes (a multiple of
 * the page size), secret when available, NOT zeroed (stacks need not be);
 * NULL with errno set on failure. shield_pages_free takes the same pointer and length and
 * restores read/write access to the whole range itself (callers may have
 * made guard pages PROT_NONE). Safe to call from any thread after
 * shield_mem_init. */
void *shield_pages_alloc(size_t len);
void shield_pages_free(void *p, size_t len);

/* Whether [p, p+len) lies wholly inside secret memory. */
int shield_mem_is_secret(const void *p, size_t len);

/* ---- secmem.c ---- */
/* A chunk: fresh secret memory (zero), len a multiple of align, align a
 * power of two >= the page size. Never returned to the kernel. NULL with
 * errno on failure; when secret memory is unavailable, anonymous memory. */
void *secmem_chunk(size_t len, size_t align);
/* Replaces [addr, addr+len) (page aligned, currently readable) by secret
 * memory holding the same bytes, at the same address, with protection
 * prot. sparse: the range is anonymous memory, whose untouched pages are
 * zero and are not copied. The caller makes sure nothing else writes the
 * range meanwhile. */
int secmem_adopt(void *addr, size_t len, int prot, int sparse);
/* Calls fn(off, n, arg) for each page of [p, p+len) that exists (mincore),
 * or for a whole window mincore cannot answer for. No heap, no locks: safe
 * in a fork child. */
void secmem_each_resident(const void *p, size_t len, void (*fn)(size_t off, size_t n, void *arg), void *arg);
/* Maps a new secret file of len bytes at addr (fixed: MAP_FIXED or
 * MAP_FIXED_NOREPLACE) and records it; its pages are freed when the
 * program unmaps all of it. 0, or -1 with errno (nothing recorded). */
int secmem_place(void *addr, size_t len, int fixed);
/* Forgets the range [lo, hi) recorded by secmem_place (its file is gone). */
void secmem_unrecord(uintptr_t lo, uintptr_t hi);
/* Whether secret memory is in use (shield_mem_status()->secret). */
int secmem_active(void);
/* Whether [p, p+len) meets a secret range at all. */
int secmem_overlaps(const void *p, size_t len);
/* Gives up secret memory during set-up (nothing secret handed out yet):
 * unmaps the first chunk, forgets every range, records the reason. */
void secmem_abandon(const char *reason);
/* Probes memfd_secret and maps the first chunk (from shield_mem_init). */
void secmem_setup(void);
/* Registers the fork handlers; must come before jemalloc registers its own
 * (so that ours run first in the child and in the parent). */
void secmem_register_fork(void);
/* Called by vm.c's fork() before the real one, on the scratch stack's
 * side: this fork's child gets its copy of secret memory (a fork the
 * shield did not prepare has a child that stops). 0, or -1 on failure. */
int secmem_fork_begin(void);
/* Forgets secmem_fork_begin when no fork happened. */
void secmem_fork_abort(void);
/* Whether the last fork of this thread made a child that could not get its
 * copy of secret memory (it exits 127 at once): fork() reaps it and fails. */
int secmem_fork_failed(void);
/* Calls fn for each line of /proc/self/maps (raw calls, no heap: safe in
 * a fork child); stops at and returns fn's first non-zero answer. */
int secmem_maps_foreach(int (*fn)(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg),
			void *arg);
/* Makes [a, b) read as zero whatever its pages' protection (which stays). */
void secmem_zero_range(uintptr_t a, uintptr_t b);
/* System calls that bypass the shield's own interposers. */
void *secmem_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int secmem_sys_munmap(void *addr, size_t len);
int secmem_sys_mprotect(void *addr, size_t len, int prot);

/* ---- heap.c ---- */
/* Initializes jemalloc (after secmem_setup, so that its first mappings
 * are secret already). */
int shield_heap_setup(void);
/* Page blocks (vm.c, stacks): page aligned, no thread cache; zeroed when
 * zero is set (only the pages that exist are written). */
void *shield_heap_pages(size_t len, int zero);
void shield_heap_pages_free(void *p);
/* Internal allocations of the shield itself (jemalloc, default arena). */
void *shield_heap_alloc(size_t n);
void shield_heap_free(void *p);
/* Whether a return address lies in jemalloc's code. */
int shield_from_jemalloc(const void *ret);

/* ---- vm.c ---- */
void shield_vm_fork_prepare(void);
void shield_vm_fork_parent(void);
void shield_vm_fork_child(void);

/* ---- remap.c ---- */
/* Moves the writable segments of every object loaded so far, their .bss
 * and the main thread's stack into secret memory. Runs once, from the
 * first constructor, while the process has one thread. */
void shield_remap_loaded(void);

/* ---- threads.c ---- */
/* Threads pthread_create refused (EAGAIN) for want of a secret stack. */
unsigned long shield_threads_fallbacks(void);

/* ---- report.c ---- */
/* With ARCA_REPORT set by arca-las (`arca run --report`), prints the
 * coverage report on stderr when the program exits. */
void shield_report_install(int enabled);

#endif
