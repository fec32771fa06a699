/* secmem.c: chunks of secret memory, the list of every secret range in the
 * process, and the private copy a child of fork gets.
 *
 * A memfd_secret file can be sized once and its pages are freed only when
 * the whole file goes, so memory is taken in chunks that are never given
 * back: jemalloc (heap.c) and vm.c reuse them. Each chunk's descriptor is
 * closed as soon as the chunk is mapped, so that no other process can take
 * it (pidfd_getfd) and map the pages itself; the mapping is the only
 * reference left.
 *
 * The range list is append-only and published with a release store of its
 * length, so that a fork at any moment snapshots a consistent list without
 * a lock (a lock here would be taken under jemalloc's locks and so could not
 * be taken in a fork handler that may run before jemalloc's).
 *
 * fork: secret mappings are MAP_SHARED by necessity; were they inherited,
 * parent and child would share them. They are MADV_DONTFORK instead, and
 * the parent copies them for the child (see "fork" below). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "memory.h"
#include "shield.h"

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

#define CHUNK_FIRST ((size_t)16 << 20)
/* Below this locked-memory limit (without CAP_IPC_LOCK) secret memory is
 * reported unavailable: the first chunk, the main stack and a program's
 * data would not fit, and a program that ran out of heap midway would be
 * worse than one refused at the start. scripts/daemons.sh knows it too. */
#define SECMEM_MIN_LOCKED ((rlim_t)32 << 20)
#define CHUNK_MAX ((size_t)1 << 30)
#define CHUNK_ALIGN ((size_t)2 << 20)

static struct shield_mem_ctx *const M = &shield_mem;

void *secmem_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int secmem_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

int secmem_sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static int secret_fd(void)
{
	return (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
}

/* A new secret file of len bytes; -1 with errno (nothing left open). */
static int sized_secret_fd(size_t len)
{
	int fd = secret_fd();
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Every secret mapping stays out of a fork child (secmem.c "fork"). */
static void no_fork(void *p, size_t len)
{
	(void)syscall(SYS_madvise, p, len, MADV_DONTFORK);
}

int secmem_active(void)
{
	return M->active;
}

const struct shield_mem_status *shield_mem_status(void)
{
	return &M->status;
}

/* Publishes [lo, hi) in a free slot (a forgotten one, or a new one: entry
 * first, then the count, with release). A fork child may read the table
 * at any moment: a slot being written has hi <= lo until it is whole (lo
 * is written first and hi last; forgetting clears hi first). */
static int record_range(uintptr_t lo, uintptr_t hi)
{
	pthread_mutex_lock(&M->range_lock);
	size_t n = atomic_load_explicit(&M->nranges, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (M->ranges[i].hi <= M->ranges[i].lo) {
			M->ranges[i].hi = 0;
			__atomic_store_n(&M->ranges[i].lo, lo, __ATOMIC_RELEASE);
			__atomic_store_n(&M->ranges[i].hi, hi, __ATOMIC_RELEASE);
			pthread_mutex_unlock(&M->range_lock);
			return 0;
		}
	if (n >= SHIELD_MEM_MAX_RANGES) {
		pthread_mutex_unlock(&M->range_lock);
		errno = ENOMEM;
		return -1;
	}
	M->ranges[n].lo = lo;
	M->ranges[n].hi = hi;
	atomic_store_explicit(&M->nranges, n + 1, memory_order_release);
	pthread_mutex_unlock(&M->range_lock);
	return 0;
}

void secmem_unrecord(uintptr_t lo, uintptr_t hi)
{
	pthread_mutex_lock(&M->range_lock);
	size_t n = atomic_load_explicit(&M->nranges, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (M->ranges[i].lo == lo && M->ranges[i].hi == hi) {
			__atomic_store_n(&M->ranges[i].hi, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&M->ranges[i].lo, 0, __ATOMIC_RELEASE);
			break;
		}
	pthread_mutex_unlock(&M->range_lock);
}

int shield_mem_is_secret(const void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + len;
	if (!M->active || hi < lo)
		return 0;
	size_t n = atomic_load_explicit(&M->nranges, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (lo >= M->ranges[i].lo && hi <= M->ranges[i].hi)
			return 1;
	return 0;
}

int secmem_overlaps(const void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + len;
	if (!M->active)
		return 0;
	size_t n = atomic_load_explicit(&M->nranges, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (lo < M->ranges[i].hi && hi > M->ranges[i].lo)
			return 1;
	return 0;
}

/* A new chunk of len bytes aligned to CHUNK_ALIGN: a reservation first, its
 * record, then the secret file over it. */
static void *new_chunk(size_t len)
{
	size_t span = len + CHUNK_ALIGN;
	char *res = secmem_sys_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)res + CHUNK_ALIGN - 1) & ~(uintptr_t)(CHUNK_ALIGN - 1);
	char *p = (char *)a;
	if (p > res)
		secmem_sys_munmap(res, (size_t)(p - res));
	if (res + span > p + len)
		secmem_sys_munmap(p + len, (size_t)(res + span - (p + len)));

	if (!M->active) {
		void *q = secmem_sys_mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (q == MAP_FAILED) {
			int e = errno;
			secmem_sys_munmap(p, len);
			errno = e;
			return NULL;
		}
		(void)madvise(p, len, MADV_DONTDUMP);
		return p;
	}
	int fd = sized_secret_fd(len);
	if (fd < 0) {
		int e = errno;
		secmem_sys_munmap(p, len);
		errno = e;
		return NULL;
	}
	if (record_range(a, a + len) != 0) {
		close(fd);
		secmem_sys_munmap(p, len);
		errno = ENOMEM;
		return NULL;
	}
	void *q = secmem_sys_mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	int e = errno;
	close(fd);
	if (q == MAP_FAILED) {
		secmem_sys_munmap(p, len);
		secmem_unrecord(a, a + len);
		errno = e;
		return NULL;
	}
	no_fork(p, len);
	return p;
}

void *secmem_chunk(size_t len, size_t align)
{
	if (len == 0 || align < M->page || (align & (align - 1)) != 0 || len > CHUNK_MAX * 64) {
		errno = EINVAL;
		return NULL;
	}
	len = (len + M->page - 1) & ~(M->page - 1);
	pthread_mutex_lock(&M->chunk_lock);
	uintptr_t at = (M->cur + align - 1) & ~(uintptr_t)(align - 1);
	if (M->cur == 0 || at < M->cur || at + len > M->end || at + len < at) {
		size_t want = len + (align > CHUNK_ALIGN ? align : 0);
		size_t size = M->next_chunk > want ? M->next_chunk : want;
		size = (size + CHUNK_ALIGN - 1) & ~(CHUNK_ALIGN - 1);
		char *c = new_chunk(size);
		if (c == NULL) {
			int e = errno;
			pthread_mutex_unlock(&M->chunk_lock);
			errno = e;
			return NULL;
		}
		if (M->next_chunk < CHUNK_MAX)
			M->next_chunk *= 2;
		M->cur = (uintptr_t)c;
		M->end = (uintptr_t)c + size;
		at = (M->cur + align - 1) & ~(uintptr_t)(align - 1);
	}
	M->cur = at + len;
	M->chunk_bytes += len;
	pthread_mutex_unlock(&M->chunk_lock);
	return (void *)at;
}

void secmem_each_resident(const void *p, size_t len, void (*fn)(size_t off, size_t n, void *arg), void *arg)
{
	unsigned char vec[256];
	size_t page = M->page, win = sizeof vec * page;
	for (size_t off = 0; off < len; off += win) {
		size_t n = len - off < win ? len - off : win;
		if (mincore((char *)p + off, n, vec) != 0) {
			fn(off, n, arg);
			continue;
		}
		for (size_t i = 0; i < (n + page - 1) / page; i++)
			if (vec[i] & 1)
				fn(off + i * page, page, arg);
	}
}

struct copy_to {
	char *dst;
	const char *src;
};

static void copy_piece(size_t off, size_t n, void *arg)
{
	const struct copy_to *c = arg;
	memcpy(c->dst + off, c->src + off, n);
}

int secmem_adopt(void *addr, size_t len, int prot, int sparse)
{
	if (!M->active)
		return 0;
	if (((uintptr_t)addr & (M->page - 1)) != 0 || (len & (M->page - 1)) != 0 || len == 0) {
		errno = EINVAL;
		return -1;
	}
	int fd = sized_secret_fd(len);
	if (fd < 0)
		return -1;
	char *tmp = secmem_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (tmp == MAP_FAILED) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	/* Recorded before the copy: the range may be the shield's own data,
	 * which holds the record, and a write after the copy would be lost. */
	if (record_range((uintptr_t)addr, (uintptr_t)addr + len) != 0) {
		secmem_sys_munmap(tmp, len);
		close(fd);
		return -1;
	}
	if (sparse) {
		/* Anonymous memory: a page that was never touched is zero, as
		 * is the new file's; copying it would fault a secret page in
		 * for nothing (jemalloc's .bss holds a megabyte of mostly
		 * untouched tables). */
		struct copy_to c = {tmp, addr};
		secmem_each_resident(addr, len, copy_piece, &c);
	} else {
		memcpy(tmp, addr, len);
	}
	void *q = secmem_sys_mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
	int e = errno;
	secmem_sys_munmap(tmp, len);
	close(fd);
	if (q == MAP_FAILED) {
		/* MAP_FIXED failing leaves the old mapping in place (the kernel
		 * checks before it unmaps). */
		secmem_unrecord((uintptr_t)addr, (uintptr_t)addr + len);
		errno = e;
		return -1;
	}
	no_fork(addr, len);
	M->adopted_bytes += len;
	return 0;
}

int secmem_place(void *addr, size_t len, int fixed)
{
	if (!M->active || len == 0 || ((uintptr_t)addr & (M->page - 1)) != 0 || (len & (M->page - 1)) != 0 ||
	    (fixed != MAP_FIXED && fixed != MAP_FIXED_NOREPLACE)) {
		errno = EINVAL;
		return -1;
	}
	int fd = sized_secret_fd(len);
	if (fd < 0)
		return -1;
	if (record_range((uintptr_t)addr, (uintptr_t)addr + len) != 0) {
		close(fd);
		return -1;
	}
	void *q = secmem_sys_mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | fixed, fd, 0);
	int e = errno;
	close(fd);
	if (q == MAP_FAILED || q != addr) {
		if (q != MAP_FAILED)
			secmem_sys_munmap(q, len); /* an old kernel took NOREPLACE as a hint */
		/* Forget the record: those addresses are not secret. */
		secmem_unrecord((uintptr_t)addr, (uintptr_t)addr + len);
		errno = q == MAP_FAILED ? e : EEXIST;
		return -1;
	}
	no_fork(addr, len);
	return 0;
}

/* ---- set-up ---- */

static void why(int err, const char *fmt, ...) ARCA_PRINTF(2, 3);
static void why(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(M->status.reason, sizeof M->status.reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		M->status.reason[0] = 0;
	M->status.err = err;
	M->status.secret = 0;
}

static void describe_limit(char *out, size_t cap, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(out, cap, "unlimited");
	else
		snprintf(out, cap, "%llu KiB", (unsigned long long)(v / 1024));
}

static int has_ipc_lock(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return 0;
	return (d[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32)) & 1;
}

/* Probes memfd_secret and maps the first chunk. */
void secmem_setup(void)
{
	struct rlimit rl;
	long ps = sysconf(_SC_PAGESIZE);
	M->page = ps > 0 ? (size_t)ps : 4096;
	M->next_chunk = CHUNK_FIRST;
	M->lock_limit = (size_t)-1;

	/* The whole length of every secret mapping counts as locked memory,
	 * unless the process may lock any amount (CAP_IPC_LOCK). */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_MEMLOCK, &rl);
	}
	if (!has_ipc_lock() && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		if (rl.rlim_cur < SECMEM_MIN_LOCKED) {
			char lim[32];
			describe_limit(lim, sizeof lim, rl.rlim_cur);
			why(EAGAIN,
			    "secret memory needs locked memory and the locked-memory limit (RLIMIT_MEMLOCK) of this "
			    "program is %s, below the %llu MiB the shield needs, and cannot be raised: give arca-las "
			    "the right to raise it (CAP_SYS_RESOURCE; its --memlock sets the value) or raise the hard "
			    "limit of arca-las (`ulimit -H -l`)",
			    lim, (unsigned long long)(SECMEM_MIN_LOCKED >> 20));
			return;
		}
		M->lock_limit = (size_t)rl.rlim_cur;
		size_t first = (M->lock_limit / 4) & ~(CHUNK_ALIGN - 1);
		if (first < CHUNK_FIRST)
			M->next_chunk = first;
	}
	int fd = secret_fd();
	if (fd < 0) {
		int e = errno;
		if (e == ENOSYS)
			why(e, "memfd_secret(2) is not available: this kernel was built without CONFIG_SECRETMEM or "
			       "booted with secretmem.enable=0 (boot it with secretmem.enable=1)");
		else if (e == EPERM || e == EACCES)
			why(e, "memfd_secret(2) is refused here (%s): a seccomp filter or security module forbids it; "
			       "allow the memfd_secret system call for arca-las and its children",
			    strerror(e));
		else if (e == EMFILE || e == ENFILE)
			why(e, "memfd_secret(2) failed: %s (too many open files)", strerror(e));
		else
			why(e, "memfd_secret(2) failed: %s", strerror(e));
		return;
	}
	close(fd);
	M->active = 1;
	size_t first = M->next_chunk;
	void *c = new_chunk(first);
	if (c == NULL) {
		int e = errno;
		char lim[32] = "unknown";
		M->active = 0;
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			describe_limit(lim, sizeof lim, rl.rlim_cur);
		if (e == EAGAIN || e == EPERM || e == ENOMEM)
			why(e, "secret memory needs locked memory and the locked-memory limit (RLIMIT_MEMLOCK) is %s, "
			       "too low for %zu MiB and not raisable: start the program with `arca run` (arca-las raises "
			       "the limit, see its --memlock) or raise `ulimit -l`",
			    lim, first >> 20);
		else
			why(e, "cannot map secret memory: %s", strerror(e));
		/* Its record may exist: no range can be secret now. */
		atomic_store_explicit(&M->nranges, 0, memory_order_release);
		return;
	}
	M->cur = (uintptr_t)c;
	M->end = (uintptr_t)c + first;
	M->first_chunk = (uintptr_t)c;
	M->first_len = first;
	M->next_chunk = first * 2;
	M->status.secret = 1;
	M->status.reason[0] = 0;
}

/* ---- fork ---- */

static void say(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void)r;
}

int secmem_maps_foreach(int (*fn)(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg),
			void *arg)
{
	char buf[4096], line[512];
	size_t ll = 0;
	int rc = 0;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = -1;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r && rc == 0; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof line - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = 0;
			ll = 0;
			uintptr_t lo = 0, hi = 0;
			const char *p = line;
			for (; *p && *p != '-'; p++)
				lo = lo * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10);
			if (*p++ != '-')
				continue;
			for (; *p && *p != ' '; p++)
				hi = hi * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10);
			if (*p++ != ' ' || strlen(p) < 4)
				continue;
			int prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
				   (p[2] == 'x' ? PROT_EXEC : 0);
			/* perms, offset, device, inode, then the name (if any) */
			const char *name = p;
			for (int field = 0; field < 4 && *name; field++) {
				while (*name && *name != ' ')
					name++;
				while (*name == ' ')
					name++;
			}
			rc = fn(lo, hi, prot, p[3] == 's', name, arg);
		}
	}
	close(fd);
	return rc;
}

struct zero_span {
	uintptr_t a, b;
};

static int zero_piece(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg)
{
	const struct zero_span *z = arg;
	uintptr_t a = lo > z->a ? lo : z->a, b = hi < z->b ? hi : z->b;
	if (a >= b)
		return 0;
	if ((prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE)) {
		memset((void *)a, 0, b - a);
		return 0;
	}
	if (secmem_sys_mprotect((void *)a, b - a, PROT_READ | PROT_WRITE) == 0) {
		memset((void *)a, 0, b - a);
		(void)secmem_sys_mprotect((void *)a, b - a, prot);
	}
	return 0;
}

void secmem_zero_range(uintptr_t a, uintptr_t b)
{
	struct zero_span z = {a, b};
	(void)secmem_maps_foreach(zero_piece, &z);
}

/* ---- fork: the child's copy, made by the parent ----
 *
 * Every secret mapping is MADV_DONTFORK (set when it is made, and again
 * here), so the child of fork starts with holes where they were: nothing
 * the child does can write into the parent's memory, not even glibc's own
 * child-side code that runs before any fork handler (it resets locks in
 * libc's data and the loader's, which are secret too). The last prepare
 * handler (ours; jemalloc's and everyone else's have run, so their locks
 * are held) copies the pages that exist of every secret mapping into one
 * new secret file, mapped once, its descriptor closed at once (no
 * descriptor of the copy stays open for root to take with pidfd_getfd).
 * The child inherits that mapping and moves its slices into the holes
 * (mremap) on its first touch of one (a SIGSEGV handler that needs nothing
 * but this plan, which lives in ordinary memory, and raw system calls), or
 * in its first fork handler, whichever comes first. The parent unmaps the
 * copy after the fork and does not wait for the child.
 *
 * What the child gets is the memory as it was when the last prepare handler
 * ran, not at the instant of the system call: a write another thread makes
 * in between is not in the child (the forking thread only takes locks in
 * between, and the child re-initializes every one of those). */
struct fork_entry {
	uintptr_t lo, hi;
	int prot;
	off_t off;
};

struct fork_plan {
	size_t size;  /* of the mapping that holds the plan */
	char *copy;   /* the child's secret memory, every mapping one after another */
	size_t total; /* its length */
	int failed;   /* the copy could not be made: the child must not run */
	pid_t parent;
	int applied;
	struct sigaction old_segv;
	size_t n;
	struct fork_entry e[];
};

#define IE __attribute__((tls_model("initial-exec")))
static __thread struct fork_plan *fork_plan IE;
static __thread int fork_via_vm IE; /* vm.c's fork() runs this fork on a scratch stack */
static __thread sigset_t fork_mask IE;
static __thread int fork_failed IE;	 /* the last fork's child could not get its copy */
static struct sigaction fork_old_segv; /* for other threads' faults during a fork */

/* glibc's lock of its list of FILEs, exported; glibc's fork takes it only
 * after every prepare handler, i.e. after our copy, and a child copied while
 * another thread was changing the list hangs in glibc's reset of it. */
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

/* The fault handler and the plan's application run in the child before its
 * secret memory is back: no libc call that might touch libc's data, no PLT
 * (the shield is linked -z now, so its GOT is read-only and present, but a
 * raw instruction needs neither). */
static long raw_syscall(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#else
	return syscall(n, a, b, c, d, e, f);
#endif
}

static void raw_die(const char *msg, size_t len)
{
	(void)raw_syscall(SYS_write, 2, (long)msg, (long)len, 0, 0, 0);
	(void)raw_syscall(SYS_exit_group, 127, 0, 0, 0, 0, 0);
	for (;;)
		;
}

#define DIE(lit) raw_die(lit, sizeof lit - 1)

static void fork_plan_apply(struct fork_plan *p)
{
	if (p->applied)
		return;
	if (p->failed)
		DIE("arca: cannot give this child of fork a private copy of its secret memory (locked-memory "
		    "limit?); it exits\n");
	for (size_t i = 0; i < p->n; i++) {
		const struct fork_entry *v = &p->e[i];
		long len = (long)(v->hi - v->lo);
		long r = raw_syscall(SYS_mremap, (long)(p->copy + v->off), len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				     (long)v->lo, 0);
		if (r < 0 && r > -4096)
			DIE("arca: cannot map this child of fork's copy of its secret memory; it exits\n");
		if (v->prot != (PROT_READ | PROT_WRITE))
			(void)raw_syscall(SYS_mprotect, (long)v->lo, len, v->prot, 0, 0, 0);
		(void)raw_syscall(SYS_madvise, (long)v->lo, len, MADV_DONTFORK, 0, 0, 0);
	}
	p->applied = 1;
}

/* A fault that is not a fork child's first touch of its holes belongs to
 * the program: its own handler runs as if ours were not there (a garbage
 * collector's write barrier in another thread, say); with no handler the
 * default action is put back and the repeated access takes it. */
static void chain(int sig, siginfo_t *si, void *uc, const struct sigaction *old)
{
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction != NULL) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	sigaction(sig, old, NULL);
}

static void fork_fault(int sig, siginfo_t *si, void *uc)
{
	struct fork_plan *p = fork_plan;
	if (p != NULL && !p->applied && si->si_code > 0 &&
	    raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0) != p->parent) {
		uintptr_t a = (uintptr_t)si->si_addr;
		for (size_t i = 0; i < p->n; i++)
			if (a >= p->e[i].lo && a < p->e[i].hi) {
				fork_plan_apply(p);
				return; /* the access is made again, now into the copy */
			}
		if (p->failed)
			fork_plan_apply(p); /* says why and exits */
	}
	chain(sig, si, uc, p != NULL ? &p->old_segv : &fork_old_segv);
}

/* Lists every secret mapping (a VMA of a memfd_secret file) with its
 * protection. */
static int note_prot(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg)
{
	(void)arg;
	if (!shared || strncmp(name, "/secretmem", 10) != 0)
		return 0;
	if (M->nprot >= SHIELD_MEM_MAX_PROT)
		return -1;
	M->prot[M->nprot].lo = lo;
	M->prot[M->nprot].hi = hi;
	M->prot[M->nprot].prot = prot;
	M->nprot++;
	return 0;
}

static int has_resident(const void *p, size_t len)
{
	unsigned char vec[256];
	size_t page = M->page, win = sizeof vec * page;
	for (size_t off = 0; off < len; off += win) {
		size_t n = len - off < win ? len - off : win;
		if (mincore((char *)p + off, n, vec) != 0)
			return 1;
		for (size_t i = 0; i < (n + page - 1) / page; i++)
			if (vec[i] & 1)
				return 1;
	}
	return 0;
}

/* Copies the pages that exist of one secret mapping to dst. A mapping the
 * program made unreadable (a guard page, say) is made readable for the
 * copy only if it has pages at all. */
static int copy_mapping(const struct shield_mem_prot *v, char *dst)
{
	size_t len = v->hi - v->lo;
	int unreadable = !(v->prot & PROT_READ);
	if (unreadable && !has_resident((const void *)v->lo, len))
		return 0;
	if (unreadable && secmem_sys_mprotect((void *)v->lo, len, v->prot | PROT_READ) != 0)
		return -1;
	struct copy_to c = {dst, (const char *)v->lo};
	secmem_each_resident((const void *)v->lo, len, copy_piece, &c);
	if (unreadable)
		(void)secmem_sys_mprotect((void *)v->lo, len, v->prot);
	return 0;
}

static char *new_copy(size_t total)
{
	int fd = sized_secret_fd(total);
	if (fd < 0)
		return NULL;
	char *c = secmem_sys_mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return c == MAP_FAILED ? NULL : c;
}

static void fork_plan_make(void)
{
	M->nprot = 0;
	int listed = secmem_maps_foreach(note_prot, NULL) == 0;
	size_t n = listed ? M->nprot : 0;
	size_t size = (sizeof(struct fork_plan) + n * sizeof(struct fork_entry) + M->page - 1) & ~(M->page - 1);
	struct fork_plan *p = secmem_sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return; /* the child dies at its first touch of a hole, the parent is unharmed */
	p->size = size;
	p->parent = getpid();
	p->failed = !listed;
	for (size_t i = 0; i < n; i++)
		p->total += M->prot[i].hi - M->prot[i].lo;
	if (!p->failed && p->total > 0 && (p->copy = new_copy(p->total)) == NULL)
		p->failed = 1;
	off_t off = 0;
	for (size_t i = 0; i < n && !p->failed; i++) {
		const struct shield_mem_prot *v = &M->prot[i];
		if (copy_mapping(v, p->copy + off) != 0 ||
		    syscall(SYS_madvise, v->lo, v->hi - v->lo, MADV_DONTFORK) != 0) {
			p->failed = 1;
			break;
		}
		p->e[i] = (struct fork_entry){v->lo, v->hi, v->prot, off};
		p->n = i + 1;
		off += (off_t)(v->hi - v->lo);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fork_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &p->old_segv) != 0) {
		if (p->copy != NULL)
			secmem_sys_munmap(p->copy, p->total);
		secmem_sys_munmap(p, size);
		return;
	}
	fork_old_segv = p->old_segv;
	fork_plan = p;
	fork_failed = p->failed;
}

int secmem_fork_failed(void)
{
	return fork_failed;
}

/* Parent side, and the child once its copy is in place. */
static void fork_plan_end(int in_child)
{
	struct fork_plan *p = fork_plan;
	if (p == NULL)
		return;
	fork_plan = NULL;
	sigaction(SIGSEGV, &p->old_segv, NULL);
	if (!in_child && p->copy != NULL)
		secmem_sys_munmap(p->copy, p->total); /* the child's now */
	secmem_sys_munmap(p, p->size);
}

void secmem_fork_abort(void)
{
	fork_via_vm = 0;
}

int secmem_fork_begin(void)
{
	if (M->active)
		fork_via_vm = 1;
	return 0;
}

/* Closes every memfd_secret descriptor the child inherited: the shield
 * closes its own at once, but another thread of the parent may have held
 * one at the moment of the fork, and a long-lived child must not keep a
 * descriptor through which root could map the parent's secret pages. */
static void close_secret_fds(void)
{
	char buf[2048], path[64], target[64];
	int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return;
	for (;;) {
		long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			const char *name = buf + off + 19; /* struct linux_dirent64: d_name */
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, sizeof reclen);
			off += reclen;
			if (name[0] < '0' || name[0] > '9')
				continue;
			int fd = 0;
			for (const char *c = name; *c >= '0' && *c <= '9'; c++)
				fd = fd * 10 + (*c - '0');
			if (fd == dir)
				continue;
			size_t pl = strlen(name);
			if (pl >= sizeof path - 1)
				continue;
			memcpy(path, name, pl + 1);
			long t = syscall(SYS_readlinkat, dir, path, target, sizeof target - 1);
			if (t > 0) {
				target[t] = 0;
				if (strncmp(target, "/secretmem", 10) == 0)
					close(fd);
			}
		}
	}
	close(dir);
}

static void prepare(void)
{
	sigset_t all;
	sigfillset(&all);
	/* A fault must reach fork_fault in the child (a blocked SIGSEGV
	 * would kill it), and the other synchronous signals are no better
	 * blocked. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGTRAP);
	pthread_sigmask(SIG_SETMASK, &all, &fork_mask);
	shield_vm_fork_prepare();
	fork_failed = 0;
	if (M->active && fork_via_vm) {
		_IO_list_lock();
		fork_failed = 1; /* until a plan says otherwise */
		fork_plan_make();
	}
}

static void parent(void)
{
	if (fork_via_vm && M->active)
		_IO_list_unlock();
	fork_plan_end(0);
	fork_via_vm = 0;
	shield_vm_fork_parent();
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

static void child(void)
{
	struct fork_plan *p = fork_plan;
	if (p != NULL)
		fork_plan_apply(p); /* before anything reads the shield's own data */
	if (M->active && fork_via_vm)
		_IO_list_resetlock(); /* glibc resets it itself only when it saw threads */
	if (M->active) {
		if (!fork_via_vm || p == NULL) {
			/* A fork the shield did not prepare (inside the C library,
			 * or without memory for the plan). */
			say("arca: a fork made inside the C library cannot give its child a private copy of secret "
			    "memory; the child stops\n");
			_exit(127);
		}
		fork_plan_end(1);
		close_secret_fds();
		M->forks_copied++;
		fork_via_vm = 0;
	}
	shield_vm_fork_child();
	pthread_mutex_init(&M->range_lock, NULL);
	pthread_mutex_init(&M->chunk_lock, NULL);
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

void secmem_abandon(const char *reason)
{
	if (!M->active)
		return;
	M->active = 0;
	if (M->first_chunk != 0)
		secmem_sys_munmap((void *)M->first_chunk, M->first_len);
	atomic_store_explicit(&M->nranges, 0, memory_order_release);
	M->cur = M->end = 0;
	why(EINVAL, "%s", reason);
}

void secmem_register_fork(void)
{
	if (pthread_atfork(prepare, parent, child) != 0)
		why(ENOMEM, "cannot register the fork handlers of the memory shield");
}
