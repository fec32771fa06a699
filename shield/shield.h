/* shield.h: the parts of libarca-shield.so, the runtime preloaded into a
 * protected program.
 *
 * guard.c runs first (a constructor of the highest priority): it makes an
 * attesting process non-dumpable and checks how it was started; start.c
 * takes over __libc_start_main, reads the shield's environment and runs
 * one of two modes before main; attest.c talks to CAS and LAS;
 * files.c serves injected files from memory; state.c holds the one global
 * context (design: the shield is the exception to "no global state") and
 * the real libc functions the interposers forward to. Nothing here is
 * exported but the interposed libc symbols. */
#ifndef ARCA_SHIELD_H
#define ARCA_SHIELD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "arca/crypto.h"
#include "arca/err.h"
#include "arca/policy.h"
#include "arca/proto.h"

#define SHIELD_API __attribute__((visibility("default")))

/* The refusal of CONTRACTS.md: one line, exit status 78, main never runs. */
#define SHIELD_REFUSED_STATUS 78
__attribute__((noreturn)) void shield_refuse(const char *fmt, ...) ARCA_PRINTF(1, 2);

/* What arca-las (attest) or `arca measure` told the shield (CONTRACTS.md). */
struct shield_env {
	char mode[16];
	char cas[300];
	char pin[ARCA_FPR_LEN];
	int las_fd; /* the launch channel to arca-las, close-on-exec */
	char session[ARCA_NAME_MAX + 1];
	char service[ARCA_NAME_MAX + 1];
	int measure_fd;
};

/* Loads what both modes load before the measurement is taken, so that
 * `arca measure` and an attesting start map the same objects. */
void shield_prepare_libraries(void);

/* Runs the attestation of CONTRACTS.md; refuses (never returns) on any
 * failure. The configuration is the caller's (arca_config_free). */
struct arca_config *shield_attest(const struct shield_env *env);

/* ---- injected files (files.c) ---- */
struct shield_file {
	char *path;      /* normalized absolute path */
	uint8_t *data;   /* arca_secret_alloc: mlocked, guarded, not dumped */
	size_t len;
	struct timespec time;
};

/* Takes copies of the configuration's files; refuses on a bad path. */
void shield_files_install(const struct arca_config *cfg);
/* Normalizes path (relative to dirfd, or cwd for AT_FDCWD) lexically:
 * "." and ".." removed, no repeated or trailing '/'. 0 or ARCA_E*. */
int shield_path_normalize(int dirfd, const char *path, char *out, size_t cap);

/* ---- the one global context (state.c) ---- */
struct shield_real {
	int (*open)(const char *, int, ...);
	int (*open64)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*openat64)(int, const char *, int, ...);
	int (*open_2)(const char *, int);
	int (*open64_2)(const char *, int);
	int (*openat_2)(int, const char *, int);
	int (*openat64_2)(int, const char *, int);
	int (*creat)(const char *, mode_t);
	int (*creat64)(const char *, mode_t);
	FILE *(*fopen)(const char *, const char *);
	FILE *(*fopen64)(const char *, const char *);
	int (*stat)(const char *, struct stat *);
	int (*stat64)(const char *, struct stat64 *);
	int (*lstat)(const char *, struct stat *);
	int (*lstat64)(const char *, struct stat64 *);
	int (*fstatat)(int, const char *, struct stat *, int);
	int (*fstatat64)(int, const char *, struct stat64 *, int);
	int (*xstat)(int, const char *, struct stat *);
	int (*xstat64)(int, const char *, struct stat64 *);
	int (*lxstat)(int, const char *, struct stat *);
	int (*lxstat64)(int, const char *, struct stat64 *);
	int (*fxstatat)(int, int, const char *, struct stat *, int);
	int (*fxstatat64)(int, int, const char *, struct stat64 *, int);
	int (*statx)(int, const char *, int, unsigned, struct statx *);
	int (*access)(const char *, int);
	int (*faccessat)(int, const char *, int, int);
};

struct shield_state {
	struct shield_real real;
	int real_ready;
	struct shield_file *files; /* set once before main, read-only after */
	size_t nfiles;
	int las_fd; /* ARCA_LAS_FD, checked by guard.c; -1 outside attest mode */
};

extern struct shield_state shield;

/* getenv over environ itself: the program may define its own getenv
 * (bash does), which knows nothing of ours before its main. */
const char *shield_getenv(const char *name);
/* Resolves every real function once (dlsym RTLD_NEXT); safe to call again. */
void shield_resolve_real(void);
/* The injected file at path (as opened relative to dirfd), or NULL. */
const struct shield_file *shield_file_lookup(int dirfd, const char *path);

#endif
