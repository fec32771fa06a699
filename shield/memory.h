/* memory.h: the memory shield, the part of libarca-shield.so that keeps a
 * protected program's memory in memfd_secret(2) pages, which the kernel
 * removes from its direct map so that /proc/PID/mem, ptrace, process_vm_readv
 * and core dumps cannot read them (docs/CONTRACTS.md "Memory shield").
 *
 * Layers:
 *   secmem.c  chunks of secret memory (one memfd_secret file each, mapped
 *             once, its descriptor closed at once); the list of every secret
 *             range in the process; the private copy a child of fork gets.
 *   heap.c    the malloc family, over Debian's jemalloc, whose arenas get
 *             their extents from secmem.c (extent hooks) and never give pages
 *             back to the kernel (a secret page costs ~20 anonymous ones to
 *             fault, so pages are reused, not returned).
 *   vm.c      mmap/munmap/mremap/madvise/mprotect for private anonymous
 *             mappings, served from a jemalloc arena of page-aligned
 *             secret blocks.
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

#include <stddef.h>
#include <stdint.h>

struct shield_mem_status {
	int secret;        /* 1: memory comes from memfd_secret */
	int err;           /* errno of the failed step when !secret */
	char reason[320];  /* when !secret: what failed and how to fix it */
};

/* Sets up secret memory once (idempotent, thread-safe): probes
 * memfd_secret, raises RLIMIT_MEMLOCK's soft limit to the hard one, maps
 * the first chunk, installs the heap. Called by the first allocation and by
 * the shield's first constructor, whichever comes first. */
void shield_mem_init(void);
const struct shield_mem_status *shield_mem_status(void);

/* Page-aligned, zeroed, readable and writable memory of len bytes (a
 * multiple of the page size), secret when available; NULL with errno set
 * on failure. shield_pages_free takes the same pointer and length and
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
 * prot. The caller makes sure nothing else writes the range meanwhile. */
int secmem_adopt(void *addr, size_t len, int prot);
/* Whether secret memory is in use (shield_mem_status()->secret). */
int secmem_active(void);

/* ---- remap.c ---- */
/* Moves the writable segments of every object loaded so far, their .bss
 * and the main thread's stack into secret memory. Runs once, from the
 * first constructor, while the process has one thread. */
void shield_remap_loaded(void);

/* ---- report.c ---- */
/* With ARCA_REPORT set by arca-las (`arca run --report`), prints the
 * coverage report on stderr when the program exits. */
void shield_report_install(int enabled);

#endif
