/* start.c: the shield's entry, __libc_start_main, which runs after the
 * loader has mapped every object and run the libraries' constructors and
 * before the program's own initializers and main.
 *
 * The host controls argv and the environment we are started with, so none
 * of it reaches main: in attest mode main gets the session's argv and
 * environment, built in one heap block after attestation; in measure mode
 * main never runs at all. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <ucontext.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "memory.h"
#include "shield.h"

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);

SHIELD_API int __libc_start_main(main_fn main_, int argc, char **argv, void (*init)(void), void (*fini)(void),
				 void (*rtld_fini)(void), void *stack_end);

void shield_refuse(const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = 0;
	/* One line, whatever the reason contained. */
	for (char *p = msg; *p != 0; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "arca: refused: %s\n", msg);
	fflush(stderr);
	_exit(SHIELD_REFUSED_STATUS);
}

void shield_prepare_libraries(void)
{
	/* OpenSSL reads its configuration once, on first use, and that may
	 * load provider modules. Doing it here, first, in both modes makes
	 * any such module part of what `arca measure` and LAS both see. */
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		shield_refuse("cannot initialize OpenSSL");
}

/* Copies NAME's value into out and removes NAME from the environment. */
static void take_var(const char *name, char *out, size_t cap, int required)
{
	const char *v = shield_getenv(name);
	if (v == NULL || v[0] == 0) {
		if (required)
			shield_refuse("%s is not set; start protected programs with `arca run`", name);
		out[0] = 0;
		return;
	}
	size_t n = strlen(v);
	if (n >= cap)
		shield_refuse("%s is longer than %zu bytes", name, cap - 1);
	memcpy(out, v, n + 1);
}

/* Every ARCA_* variable and LD_PRELOAD go, so that neither the program
 * nor anything it starts sees them. Removed from environ in place, not with
 * unsetenv: a program may define its own (bash does, for its variables). */
static void scrub_environment(void)
{
	if (environ == NULL)
		return;
	char **out = environ;
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "ARCA_", 5) != 0 && strncmp(*e, "LD_PRELOAD=", 11) != 0)
			*out++ = *e;
	*out = NULL;
}

/* Returns whether ARCA_REPORT asks for the coverage report. */
static int read_env(struct shield_env *env)
{
	char fd[16], report[4];
	memset(env, 0, sizeof(*env));
	/* Optional, "1" or absent (arca-las sets it for `arca run --report`);
	 * anything else is not what arca-las sends. */
	take_var("ARCA_REPORT", report, sizeof report, 0);
	if (report[0] != 0 && strcmp(report, "1") != 0)
		shield_refuse("ARCA_REPORT=%s: expected 1 or nothing (arca-las sets it for `arca run --report`)", report);
	env->measure_fd = -1;
	env->las_fd = -1;
	take_var("ARCA_SHIELD_MODE", env->mode, sizeof env->mode, 1);
	if (strcmp(env->mode, "measure") == 0) {
		take_var("ARCA_MEASURE_FD", fd, sizeof fd, 1);
		char *end;
		errno = 0;
		long v = strtol(fd, &end, 10);
		if (errno != 0 || *end != 0 || end == fd || v < 0 || v > INT_MAX)
			shield_refuse("ARCA_MEASURE_FD is not a descriptor number");
		env->measure_fd = (int)v;
	} else if (strcmp(env->mode, "attest") == 0) {
		take_var("ARCA_CAS", env->cas, sizeof env->cas, 1);
		take_var("ARCA_CAS_PIN", env->pin, sizeof env->pin, 1);
		/* guard.c checked the channel and made it close-on-exec. */
		env->las_fd = shield.las_fd;
		if (env->las_fd < 0)
			shield_refuse("ARCA_LAS_FD is not set; protected programs are started by arca-las: use `arca run`");
		take_var("ARCA_SESSION", env->session, sizeof env->session, 1);
		take_var("ARCA_SERVICE", env->service, sizeof env->service, 1);
		if (!arca_fpr_valid(env->pin))
			shield_refuse("ARCA_CAS_PIN is not a key fingerprint (SHA256:…)");
		if (!arca_name_valid(env->session) || !arca_name_valid(env->service))
			shield_refuse("ARCA_SESSION and ARCA_SERVICE must be names of [A-Za-z0-9_.~/-], "
				      "1 to 128 characters");
	} else {
		shield_refuse("ARCA_SHIELD_MODE=%.20s: expected attest or measure", env->mode);
	}
	scrub_environment();
	return report[0] == '1';
}

/* Measure mode: the parent (`arca measure`) measures us from outside once
 * we say that everything is mapped, then kills us. */
__attribute__((noreturn)) static void measure_mode(int fd)
{
	char c = 'm';
	ssize_t r;
	while ((r = write(fd, &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		shield_refuse("cannot signal readiness on ARCA_MEASURE_FD: %s", strerror(errno));
	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		/* The parent is done (or gone): never run main. */
		_exit(0);
	}
}

/* [argv…, NULL, env…, NULL] and the strings, in one heap block that lives
 * as long as the program. glibc's main gets environ, which points into it. */
static char **build_vector(const struct arca_config *cfg)
{
	size_t nptr = cfg->argc + 1 + cfg->nenv + 1, bytes = 0;
	for (size_t i = 0; i < cfg->argc; i++)
		bytes += strlen(cfg->argv[i]) + 1;
	for (size_t i = 0; i < cfg->nenv; i++)
		bytes += strlen(cfg->env[i]) + 1;
	if (nptr > SIZE_MAX / sizeof(char *) || bytes > SIZE_MAX - nptr * sizeof(char *))
		shield_refuse("the session's configuration is too large");
	char **v = malloc(nptr * sizeof(char *) + bytes);
	if (v == NULL)
		shield_refuse("out of memory while installing the session's configuration");
	char *s = (char *)(v + nptr);
	size_t k = 0;
	for (size_t i = 0; i < cfg->argc; i++) {
		size_t n = strlen(cfg->argv[i]) + 1;
		memcpy(s, cfg->argv[i], n);
		v[k++] = s;
		s += n;
	}
	v[k++] = NULL;
	for (size_t i = 0; i < cfg->nenv; i++) {
		size_t n = strlen(cfg->env[i]) + 1;
		memcpy(s, cfg->env[i], n);
		v[k++] = s;
		s += n;
	}
	v[k] = NULL;
	return v;
}

/* What __libc_start_main was called with, for the code that runs on the
 * secret stack. */
static struct {
	start_fn real;
	main_fn main_;
	int argc;
	char **argv;
	void (*init)(void);
	void (*fini)(void);
	void (*rtld_fini)(void);
	void *stack_end;
} boot;

/* The original stack below argc holds only the frames of what ran before
 * the switch (the loader, libc's start, ours), never returned to: its
 * pages are given back so that they neither linger nor count as memory the
 * shield left uncovered. argc, argv, the environment and auxv (above) stay. */
static int find_stack(uintptr_t lo, uintptr_t hi, int prot, int shared, const char *name, void *arg)
{
	uintptr_t *r = arg;
	if (r[0] >= lo && r[0] < hi) {
		r[1] = lo;
		return 1;
	}
	return 0;
}

static void drop_original_stack(void)
{
	uintptr_t r[2] = {(uintptr_t)boot.argv, 0};
	uintptr_t top = ((uintptr_t)boot.argv - sizeof(long)) & ~(uintptr_t)(shield_mem.page - 1);
	if (secmem_maps_foreach(find_stack, r) == 1 && r[1] != 0 && r[1] < top)
		(void)madvise((void *)r[1], top - r[1], MADV_DONTNEED);
}

__attribute__((noreturn)) static void start(void)
{
	struct shield_env env;

	if (secmem_active())
		drop_original_stack();
	shield_report_install(read_env(&env));
	shield_prepare_libraries();

	if (env.measure_fd >= 0)
		measure_mode(env.measure_fd);

	struct arca_config *cfg = shield_attest(&env);
	char **v = build_vector(cfg);
	shield_files_install(cfg);
	/* Before main, with the keys still in the configuration: the
	 * volumes are opened (checked against CAS's tags) or created. */
	shield_volumes_mount(cfg, &env);
	int nargc = (int)cfg->argc;
	arca_config_free(cfg); /* wipes the decrypted copies */

	environ = v + nargc + 1;
	program_invocation_name = v[0];
	const char *slash = strrchr(v[0], '/');
	program_invocation_short_name = (char *)(slash ? slash + 1 : v[0]);
	exit(boot.real(boot.main_, nargc, v, boot.init, boot.fini, boot.rtld_fini, boot.stack_end));
}

/* The size of the main thread's secret stack: what RLIMIT_STACK would let
 * the original one grow to, within reason. */
static size_t main_stack_size(void)
{
	struct rlimit rl;
	size_t page = shield_mem.page, n = (size_t)8 << 20;
	if (getrlimit(RLIMIT_STACK, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY)
			n = (size_t)64 << 20;
		else if (rl.rlim_cur >= (rlim_t)(256 << 10))
			n = rl.rlim_cur < ((rlim_t)1 << 30) ? (size_t)rl.rlim_cur : (size_t)1 << 30;
	}
	/* Under a locked-memory limit, leave most of it to the heap. */
	if (shield_mem.lock_limit != (size_t)-1 && n > shield_mem.lock_limit / 4)
		n = shield_mem.lock_limit / 4;
	return (n + page - 1) & ~(page - 1);
}

int __libc_start_main(main_fn main_, int argc, char **argv, void (*init)(void), void (*fini)(void),
		      void (*rtld_fini)(void), void *stack_end)
{
	ucontext_t ctx; /* read by setcontext once, never again */

	boot.real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
	if (boot.real == NULL)
		shield_refuse("cannot find the C library's __libc_start_main (is this a glibc program?)");
	boot.main_ = main_;
	boot.argc = argc;
	boot.argv = argv;
	boot.init = init;
	boot.fini = fini;
	boot.rtld_fini = rtld_fini;
	boot.stack_end = stack_end;
	shield_resolve_real();
	shield_mem_init();
	if (!secmem_active())
		start();

	/* Everything from here on, attestation included, runs on a stack in
	 * secret memory; the original stack keeps only what the kernel and
	 * the loader put there (the host's argv, environment and auxv). */
	size_t page = shield_mem.page, size = main_stack_size();
	char *stk = shield_pages_alloc(size + page);
	if (stk == NULL)
		shield_refuse("cannot allocate the main thread's stack in secret memory (%zu MiB): %s", size >> 20,
			      strerror(errno));
	if (secmem_sys_mprotect(stk, page, PROT_NONE) != 0)
		shield_refuse("cannot protect the guard page of the secret stack: %s", strerror(errno));
	shield_mem.stack_lo = (uintptr_t)stk + page;
	shield_mem.stack_hi = (uintptr_t)stk + page + size;
	if (getcontext(&ctx) != 0)
		shield_refuse("getcontext failed: %s", strerror(errno));
	ctx.uc_stack.ss_sp = stk + page;
	ctx.uc_stack.ss_size = size;
	ctx.uc_link = NULL;
	makecontext(&ctx, (void (*)(void))start, 0);
	setcontext(&ctx);
	shield_refuse("cannot switch to the secret stack: %s", strerror(errno));
}
