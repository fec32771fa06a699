/* launch.h: how `arca measure` starts a program under the shield, and the
 * checks `arca run` and `arca measure` make before a program is started.
 *
 * `arca run` does not start the program itself: arca-las does (CONTRACTS.md
 * "Trusted launch"), with LD_PRELOAD=<its shield> and nothing else of the
 * loader's. `arca measure` starts it here the same way (launch_exec: only
 * LD_PRELOAD and ARCA_* variables) with the shield found by the same rule
 * (exec_check.h, arca_shield_default), which is what makes it print the
 * measurement LAS will later take. */
#ifndef ARCA_CLI_LAUNCH_H
#define ARCA_CLI_LAUNCH_H

#include <stddef.h>

#include "arca/err.h"

/* Resolves cmd through $PATH as execvp would (a name with '/' is taken as
 * is) and checks that the result can carry the shield (arca_exec_check).
 * On refusal prints one "arca: " line and returns < 0. */
int launch_resolve(const char *cmd, char *out, size_t cap) ARCA_MUST_CHECK;

/* The environment for the program: exactly LD_PRELOAD=shield,
 * ARCA_SHIELD_MODE=mode and the given "NAME=value" entries; nothing of the
 * caller's environment (the shield would discard it before main anyway,
 * and loader variables would change what is mapped). */
struct launch_env {
	char *v[16];
	size_t n;
	char buf[4096];
	size_t used;
};
int launch_env_init(struct launch_env *le, const char *shield, const char *mode) ARCA_MUST_CHECK;
int launch_env_add(struct launch_env *le, const char *name, const char *value) ARCA_MUST_CHECK;

/* execve(path, argv, le). Returns only on failure (prints the reason). */
int launch_exec(const char *path, char *const argv[], struct launch_env *le);

#endif
