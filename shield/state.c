/* state.c: the shield's one global context, and the real libc functions
 * behind every interposed one.
 *
 * The real functions are found with dlsym(RTLD_NEXT, …): the next
 * definition after this library in the lookup order, i.e. libc's (or that
 * of a library preloaded after us). They are resolved in the constructor,
 * and on first use when another library's constructor opens a file before
 * ours has run; resolving twice stores the same values. */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "memory.h"
#include "shield.h"

struct shield_state shield;

#define RESOLVE(field, name) \
	(r.field = (__typeof__(r.field))dlsym(RTLD_NEXT, name))
/* The __xstat family is only a compatibility symbol since glibc 2.33,
 * which plain dlsym does not return. */
#define RESOLVE_COMPAT(field, name)                                                   \
	do {                                                                          \
		r.field = (__typeof__(r.field))dlvsym(RTLD_NEXT, name, "GLIBC_2.2.5"); \
		if (r.field == NULL)                                                  \
			RESOLVE(field, name);                                         \
	} while (0)

void shield_resolve_real(void)
{
	struct shield_real r;

	if (__atomic_load_n(&shield.real_ready, __ATOMIC_ACQUIRE))
		return;
	RESOLVE(open, "open");
	RESOLVE(open64, "open64");
	RESOLVE(openat, "openat");
	RESOLVE(openat64, "openat64");
	RESOLVE(open_2, "__open_2");
	RESOLVE(open64_2, "__open64_2");
	RESOLVE(openat_2, "__openat_2");
	RESOLVE(openat64_2, "__openat64_2");
	RESOLVE(creat, "creat");
	RESOLVE(creat64, "creat64");
	RESOLVE(fopen, "fopen");
	RESOLVE(fopen64, "fopen64");
	RESOLVE(stat, "stat");
	RESOLVE(stat64, "stat64");
	RESOLVE(lstat, "lstat");
	RESOLVE(lstat64, "lstat64");
	RESOLVE(fstatat, "fstatat");
	RESOLVE(fstatat64, "fstatat64");
	RESOLVE_COMPAT(xstat, "__xstat");
	RESOLVE_COMPAT(xstat64, "__xstat64");
	RESOLVE_COMPAT(lxstat, "__lxstat");
	RESOLVE_COMPAT(lxstat64, "__lxstat64");
	RESOLVE_COMPAT(fxstatat, "__fxstatat");
	RESOLVE_COMPAT(fxstatat64, "__fxstatat64");
	RESOLVE(statx, "statx");
	RESOLVE(access, "access");
	RESOLVE(faccessat, "faccessat");
	shield.real = r;
	__atomic_store_n(&shield.real_ready, 1, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void shield_init(void)
{
	shield_resolve_real();
}

struct shield_mem_ctx shield_mem = {.chunk_lock = PTHREAD_MUTEX_INITIALIZER,
				     .range_lock = PTHREAD_MUTEX_INITIALIZER, .vm_lock = PTHREAD_MUTEX_INITIALIZER};

const char *shield_getenv(const char *name)
{
	size_t n = strlen(name);
	for (char **e = environ; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}
