/* cli.h: the subcommands of the `arca` command and what they share.
 *
 * Each cmd_* gets the arguments after its own name (argv[0] is the
 * subcommand name) and returns the process exit status: 0 success, 1
 * refused or failed (one line on stderr, starting "arca: "), 2 usage. */
#ifndef ARCA_CLI_H
#define ARCA_CLI_H

#include <stddef.h>
#include "arca/err.h"
#include "arca/crypto.h"

int cmd_identity(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_cas(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_evidence(int argc, char **argv);
int cmd_fs(int argc, char **argv);

/* Prints "arca: " + message + newline on stderr; returns 1. */
int cli_fail(const char *fmt, ...) ARCA_PRINTF(1, 2);
/* Prints "arca: usage: " + text; returns 2. */
int cli_usage(const char *text);

/* $ARCA_HOME, else $HOME/.config/arca (created 0700 on first use). */
int cli_home(char *out, size_t cap) ARCA_MUST_CHECK;
/* $ARCA_CAS, else 127.0.0.1:8443. */
const char *cli_cas_addr(const char *flag);
/* $ARCA_LAS, else /run/arca/las.sock. */
const char *cli_las_path(const char *flag);

/* Pinned CAS keys live in $ARCA_HOME/cas-pins, one "HOST:PORT SHA256:…"
 * line each. */
int cli_pin_get(const char *addr, char fpr[ARCA_FPR_LEN]) ARCA_MUST_CHECK; /* ARCA_ENOTFOUND when absent */
int cli_pin_set(const char *addr, const char *fpr) ARCA_MUST_CHECK;

/* The shield `arca measure` preloads: $ARCA_SHIELD, else the rule arca-las
 * uses for its default (exec_check.h: <dir of the binary>/../lib). The
 * shield's path is part of the measurement, so it must be the one arca-las
 * preloads. */
int cli_shield_path(char *out, size_t cap) ARCA_MUST_CHECK;

#define ARCA_DEFAULT_CAS "127.0.0.1:8443"
#define ARCA_DEFAULT_LAS "/run/arca/las.sock"

#endif
