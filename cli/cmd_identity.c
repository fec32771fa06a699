/* cmd_identity.c: `arca identity create|show`, the owner's key pair.
 *
 * The fingerprint goes alone on the first line of stdout so that scripts
 * can take it (`arca identity show | head -n1`) and put it under
 * access.owners of a policy. */
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "arca/x509.h"

#define IDENTITY_USAGE "arca identity create [--name CN] | arca identity show"

static int default_cn(char *out, size_t cap)
{
	struct passwd *pw = getpwuid(getuid());
	char host[256] = "localhost";

	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	/* X.509 limits a common name to 64 characters. */
	snprintf(out, cap, "%.31s@%.32s", pw != NULL ? pw->pw_name : "owner", host);
	return 0;
}

static int identity_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char home[PATH_MAX], cn[256], keypath[PATH_MAX + 16];
	const char *name = NULL;
	struct arca_errbuf e = {{0}};
	struct arca_identity id;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'h':
			printf("usage: arca identity create [--name CN]\n");
			return 0;
		default:
			return cli_usage("arca identity create [--name CN]");
		}
	}
	if (optind != argc)
		return cli_usage("arca identity create [--name CN]");
	if (name != NULL) {
		size_t n = strlen(name);
		if (n == 0 || n > 64)
			return cli_fail("--name must have 1 to 64 characters");
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)name[i] < ' ' || name[i] == 0x7f)
				return cli_fail("--name must not contain control characters");
	} else {
		default_cn(cn, sizeof cn);
		name = cn;
	}
	if (cli_home(home, sizeof home) < 0)
		return 1;
	snprintf(keypath, sizeof keypath, "%s/identity.key", home);
	/* Replacing the key would lock its owner out of every session that
	 * names it; make that a deliberate act outside arca. */
	if (access(keypath, F_OK) == 0)
		return cli_fail("an identity already exists in %s; it is not replaced (remove identity.key and "
				"identity.crt yourself only if no session names its fingerprint)",
				home);
	rc = arca_identity_create(home, name, &e);
	if (rc == ARCA_EEXIST)
		return cli_fail("an identity already exists in %s; it is not replaced", home);
	if (rc < 0)
		return cli_fail("cannot create an identity in %s: %s", home, e.msg);
	if (arca_identity_load(home, &id, &e) < 0)
		return cli_fail("created an identity in %s but cannot load it back: %s", home, e.msg);
	printf("%s\n", id.fpr);
	printf("created identity %s in %s (identity.key, identity.crt)\n", name, home);
	arca_identity_free(&id);
	return 0;
}

static int identity_show(int argc, char **argv)
{
	char home[PATH_MAX];
	struct arca_errbuf e = {{0}};
	struct arca_identity id;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: arca identity show\n");
		return 0;
	}
	if (argc != 1)
		return cli_usage("arca identity show");
	if (cli_home(home, sizeof home) < 0)
		return 1;
	rc = arca_identity_load(home, &id, &e);
	if (rc == ARCA_ENOTFOUND)
		return cli_fail("no identity in %s; run `arca identity create` first", home);
	if (rc < 0)
		return cli_fail("cannot load the identity in %s: %s", home, e.msg);
	printf("%s\n", id.fpr);
	printf("certificate %s/identity.crt\n", home);
	arca_identity_free(&id);
	return 0;
}

int cmd_identity(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(IDENTITY_USAGE);
	if (strcmp(argv[1], "create") == 0)
		return identity_create(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return identity_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", IDENTITY_USAGE);
		return 0;
	}
	return cli_usage(IDENTITY_USAGE);
}
