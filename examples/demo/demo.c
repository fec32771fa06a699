/* demo.c: an ordinary, unmodified program that needs a database password.
 *
 * It reads the password from its environment (DB_PASSWORD) and from a
 * config file (--config PATH, a line "password = …"), and prints only a
 * SHA-256 of each, so that the demo can show that both arrived and match
 * without ever showing the secret. It knows nothing of arca.
 *
 * Options (all optional, for the tests):
 *   --config PATH   the config file to read
 *   --env-names     print the names (never the values) of its environment
 *   --hold SECONDS  wait before exiting, so a test can look at /proc/PID
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void print_hash(const char *label, const char *s)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)s, strlen(s), d);
	printf("%s sha256=", label);
	for (size_t i = 0; i < sizeof d; i++)
		printf("%02x", d[i]);
	printf("\n");
}

/* Returns the value of the first "password = VALUE" line, without the
 * line end, in buf. */
static int read_config_password(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "demo: cannot open %s\n", path);
		return -1;
	}
	char line[1024];
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		const char *key = "password";
		if (strncmp(line, key, strlen(key)) != 0)
			continue;
		char *p = line + strlen(key);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\r\n")] = '\0';
		if (strlen(p) >= cap)
			break;
		memcpy(buf, p, strlen(p) + 1);
		found = 0;
		break;
	}
	fclose(f);
	if (found < 0)
		fprintf(stderr, "demo: no password line in %s\n", path);
	return found;
}

int main(int argc, char **argv)
{
	const char *config = NULL;
	int env_names = 0;
	unsigned hold = 0;

	printf("demo: main started (pid %d)\n", (int)getpid());
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(argv[i], "--env-names") == 0) {
			env_names = 1;
		} else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc) {
			hold = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "demo: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (env_names) {
		for (char **e = environ; *e; e++) {
			size_t n = strcspn(*e, "=");
			printf("env-name %.*s\n", (int)n, *e);
		}
	}

	const char *env_pw = getenv("DB_PASSWORD");
	if (!env_pw) {
		fprintf(stderr, "demo: DB_PASSWORD is not set\n");
		return 1;
	}
	print_hash("demo: password from environment", env_pw);

	int rc = 0;
	if (config) {
		char file_pw[512];
		if (read_config_password(config, file_pw, sizeof file_pw) < 0)
			return 1;
		print_hash("demo: password from config file", file_pw);
		if (strcmp(file_pw, env_pw) == 0) {
			printf("demo: both copies of the password match\n");
		} else {
			printf("demo: the two copies of the password DIFFER\n");
			rc = 1;
		}
		memset(file_pw, 0, sizeof file_pw);
	}
	fflush(stdout);
	if (hold)
		sleep(hold);
	return rc;
}
