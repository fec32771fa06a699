/* main.c: the `arca` command: global options, then one subcommand.
 *
 * Commands the design names but this version does not ship (bench)
 * say so and exit 2 rather than pretending to work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef ARCA_VERSION
#define ARCA_VERSION "0.1.0"
#endif

static const char usage_text[] =
	"usage: arca [--cas HOST:PORT] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  identity create|show     your owner identity (key and certificate in $ARCA_HOME)\n"
	"  cas attest|trust-las|audit-verify\n"
	"                           check and pin a CAS, trust a host's LAS, verify CAS's audit log\n"
	"  session check|create|update|show\n"
	"                           validate a policy offline; create, update or read it in CAS\n"
	"  measure -- CMD [ARGS]    print the measurement of CMD, object by object\n"
	"  run --session S --service V -- CMD [ARGS]\n"
	"                           run CMD protected, with its configuration from CAS\n"
	"  evidence verify|show FILE\n"
	"                           check (or just read) an SEV-SNP report or a TDX/SGX quote\n"
	"  fs seal|verify|ls|unseal protected volumes: seal a tree into one, check, list, unseal\n"
	"  help                     this text\n"
	"  --version                the version of arca\n"
	"\n"
	"--cas HOST:PORT (or $ARCA_CAS; default " ARCA_DEFAULT_CAS ") names the CAS.\n"
	"$ARCA_HOME (default ~/.config/arca) holds your identity and the pinned CAS keys.\n"
	"\n"
	"Software mode (sim, the default) trusts this host's kernel: it keeps secrets\n"
	"out of the program's files, arguments and environment block and refuses\n"
	"changed code, but does NOT protect against a malicious kernel or kernel\n"
	"module, firmware, side channels or physical attacks, nor (in this version)\n"
	"against root reading the program's memory.\n";

static int print_usage(FILE *f)
{
	fputs(usage_text, f);
	return f == stdout ? 0 : 2;
}

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{"identity", cmd_identity},
	{"session", cmd_session},
	{"cas", cmd_cas},
	{"measure", cmd_measure},
	{"run", cmd_run},
	{"evidence", cmd_evidence},
	{"fs", cmd_fs},
};

/* Named in the design, not shipped in this version. */
static const char *const unavailable[] = {"bench"};

int main(int argc, char **argv)
{
	int i = 1;

	/* Global options precede the command; --cas travels to the
	 * subcommand through ARCA_CAS, which every subcommand consults. */
	while (i < argc && argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2] != '\0') {
		const char *opt = argv[i];
		if (strcmp(opt, "--version") == 0) {
			printf("arca %s\n", ARCA_VERSION);
			return 0;
		}
		if (strcmp(opt, "--help") == 0)
			return print_usage(stdout);
		if (strcmp(opt, "--cas") == 0 || strncmp(opt, "--cas=", 6) == 0) {
			const char *v = opt[5] == '=' ? opt + 6 : (i + 1 < argc ? argv[++i] : NULL);
			if (v == NULL || v[0] == '\0')
				return cli_usage("arca --cas HOST:PORT COMMAND …");
			if (setenv("ARCA_CAS", v, 1) != 0)
				return cli_fail("cannot set ARCA_CAS");
			i++;
			continue;
		}
		fprintf(stderr, "arca: unknown option %s\n", opt);
		return print_usage(stderr);
	}
	if (i >= argc)
		return print_usage(stderr); /* nothing asked: a usage error for scripts */
	if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "-h") == 0)
		return print_usage(stdout);
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].fn(argc - i, argv + i);
	for (size_t k = 0; k < sizeof unavailable / sizeof unavailable[0]; k++) {
		if (strcmp(argv[i], unavailable[k]) == 0) {
			fprintf(stderr, "arca: `arca %s` is not available in this version\n", argv[i]);
			return 2;
		}
	}
	fprintf(stderr, "arca: unknown command %s\n", argv[i]);
	return print_usage(stderr);
}
