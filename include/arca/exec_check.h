/* exec_check.h: whether a program can carry the shield, and where the
 * shield is. One implementation for the CLI (`arca run` checks before it
 * asks LAS, `arca measure` before it starts the program) and arca-las
 * (which checks again in the child, as the caller's user, just before
 * exec: the caller's check is only a courtesy, LAS's is the one that
 * counts).
 *
 * Nothing here prints; every refusal is one sentence in e.
 * arca_exec_check allocates nothing and takes no lock, so arca-las can run
 * it in a child forked from its threads, between fork and exec. */
#ifndef ARCA_EXEC_CHECK_H
#define ARCA_EXEC_CHECK_H

#include <stddef.h>
#include "arca/err.h"

#define ARCA_SHIELD_NAME "libarca-shield.so"

/* Resolves cmd through $PATH as execvp would (a name with '/' is taken as
 * it is, relative names stay relative). ARCA_ENOTFOUND when no PATH entry
 * holds an executable file of that name. */
int arca_exec_resolve(const char *cmd, char *out, size_t cap, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* 0 when path can carry the shield: a regular file the real uid may
 * execute, not setuid/setgid, without file capabilities (the loader
 * ignores LD_PRELOAD for those), a dynamically linked (PT_INTERP) 64-bit
 * ELF executable of this machine, not a script (the measurement would
 * cover its interpreter only). ARCA_EINVAL/ARCA_EIO with the reason. */
int arca_exec_check(const char *path, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* The same checks on an open file (path only names it in messages). */
int arca_exec_check_fd(int fd, const char *path, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Opens path (O_RDONLY | O_CLOEXEC) and checks the open file; *fd is the
 * file to execute with fexecve, so that what runs is what was checked
 * (the name could be swapped between a check and execve). */
int arca_exec_open(const char *path, int *fd, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* The shield beside the installed binaries: the real path of
 * <directory of /proc/self/exe>/../lib/libarca-shield.so. arca-las (its
 * default for --shield) and `arca measure` use this one rule, because the
 * shield's path is part of the measurement. */
int arca_shield_default(char *out, size_t cap, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Resolves path (realpath) into out and checks that it is a regular file
 * that neither group nor others can write, owned by root or by the
 * effective uid: anyone who could change it would change every protected
 * program. */
int arca_shield_check(const char *path, char *out, size_t cap, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
