/* remap.c: moves the writable data of the objects the loader mapped before
 * the shield ran (.data, .bss and the anonymous pages after them) into
 * secret memory, in place: same addresses, same bytes, so the program sees
 * no difference. CPython keeps more than a megabyte of interpreter state
 * in its .data; without this it would stay readable by root.
 *
 * That includes libc's and the loader's data (glibc's child-side fork code
 * writes them before any fork handler runs: secmem.c's fork keeps secret
 * mappings out of the child until its own copy is in place) and the
 * shield's own.
 *
 * Left out, on purpose: the vDSO; thread descriptors and static TLS (the
 * kernel writes the child's tid there at fork; see threads.c), and RELRO
 * pages (read-only by then).
 * Objects loaded later with dlopen keep their data in ordinary memory; the
 * coverage report (`arca run --report`) shows how much that is. */
#include <dirent.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "memory.h"
#include "shield.h"

static struct shield_mem_ctx *const M = &shield_mem;

#define MAX_SPANS 512

struct spans {
	struct shield_mem_range s[MAX_SPANS];
	size_t n;
};

static int basename_is(const char *path, const char *prefix)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;
	return strncmp(b, prefix, strlen(prefix)) == 0;
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct spans *sp = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	uintptr_t relro_lo = 0, relro_hi = 0, page = M->page;

	if (basename_is(name, "linux-vdso"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (ph->p_type == PT_GNU_RELRO) {
			relro_lo = lo & ~(page - 1);
			relro_hi = (hi + page - 1) & ~(page - 1);
		}
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz == 0)
			continue;
		uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
		if (relro_hi > relro_lo && relro_lo <= lo && relro_hi > lo)
			lo = relro_hi < hi ? relro_hi : hi;
		if (lo < hi && sp->n < MAX_SPANS) {
			sp->s[sp->n].lo = lo;
			sp->s[sp->n].hi = hi;
			sp->n++;
		}
	}
	return 0;
}

struct pieces {
	const struct spans *sp;
	uintptr_t tls;	/* an address in the main thread's static TLS */
	int loader;	/* also take the loader's own anonymous allocations */
	struct shield_mem_range p[MAX_SPANS * 2];
	unsigned char anon[MAX_SPANS * 2]; /* no file behind it: copy only touched pages */
	size_t n;
};

/* The private writable parts of the collected spans, mapping by mapping as
 * /proc/self/maps lists them (a .bss may continue in an anonymous mapping
 * after the file's). Listed first, adopted after: adopting changes the
 * listing being read. */
static int note_piece(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg)
{
	struct pieces *pc = arg;
	if (shared || prot != (PROT_READ | PROT_WRITE))
		return 0;
	int inside = 0;
	for (size_t i = 0; i < pc->sp->n; i++) {
		uintptr_t a = lo > pc->sp->s[i].lo ? lo : pc->sp->s[i].lo;
		uintptr_t b = hi < pc->sp->s[i].hi ? hi : pc->sp->s[i].hi;
		if (a < b && pc->n < sizeof pc->p / sizeof pc->p[0]) {
			pc->p[pc->n].lo = a;
			pc->p[pc->n].hi = b;
			pc->anon[pc->n] = name[0] == 0;
			pc->n++;
			inside = 1;
		}
	}
	/* Anonymous memory outside every object: the loader's allocations
	 * (link maps, search paths, scope lists). Not the mapping of the main
	 * thread's descriptor and static TLS: at fork the kernel writes the
	 * child's thread id there and keeps its rseq area there, which must
	 * be in place before the child can take a fault. */
	if (!inside && pc->loader && (name[0] == 0 || strcmp(name, "[heap]") == 0) &&
	    !(pc->tls >= lo && pc->tls < hi) && pc->n < sizeof pc->p / sizeof pc->p[0]) {
		pc->p[pc->n].lo = lo;
		pc->p[pc->n].hi = hi;
		pc->anon[pc->n] = 1;
		pc->n++;
	}
	return 0;
}

/* Other threads' stacks are anonymous memory too, and are written while
 * they run: the loader's allocations are taken only while there is one. */
static int single_threaded(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n == 1;
}

static __thread char tls_probe __attribute__((tls_model("initial-exec")));

void shield_remap_loaded(void)
{
	sigset_t all, old;

	shield_mem_init();
	if (!secmem_active())
		return;
	/* Scratch on the (secret) heap, not in the shield's own data. */
	struct spans *sp = shield_heap_alloc(sizeof *sp);
	struct pieces *pc = shield_heap_alloc(sizeof *pc);
	if (sp == NULL || pc == NULL)
		shield_refuse("out of memory while moving the program's data into secret memory");
	sp->n = 0;
	dl_iterate_phdr(collect, sp);
	pc->sp = sp;
	pc->n = 0;
	pc->tls = (uintptr_t)&tls_probe;
	pc->loader = single_threaded();
	if (secmem_maps_foreach(note_piece, pc) != 0)
		shield_refuse("cannot read /proc/self/maps to move the program's data into secret memory");
	/* Nothing may write these pages between the copy and the remap. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	size_t failed = 0;
	for (size_t i = 0; i < pc->n; i++)
		if (secmem_adopt((void *)pc->p[i].lo, pc->p[i].hi - pc->p[i].lo, PROT_READ | PROT_WRITE, pc->anon[i]) != 0)
			failed++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	shield_heap_free(pc);
	shield_heap_free(sp);
	/* Fail closed: data that should be secret and is not (a locked-memory
	 * limit reached, say) is not something to run with quietly. */
	if (failed)
		shield_refuse("could not move %zu of the program's data segments into secret memory: %s", failed,
			      strerror(errno));
}
