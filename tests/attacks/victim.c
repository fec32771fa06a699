/* victim: the program of the classic confidential-computing demonstration,
 * for the attack tests. It prints its pid, asks for a secret, hashes it
 * and waits so that an attacker can look for the secret in its memory.
 *
 *   attack-victim            reads the secret from stdin, the way any
 *                            program would (getline into a heap buffer);
 *                            nothing is done to help or hinder an attacker
 *   attack-victim --env NAME takes the secret from the environment variable
 *                            NAME (given by CAS under arca) and also keeps
 *                            copies on its stack, in .data/.bss and on the
 *                            heap, so that every kind of memory holds it
 *   attack-victim --arg SECRET  the same with the secret on the command
 *                            line (a session's command may carry one)
 *
 * Output: "victim: pid N", "Enter a secret: ", then "sha256 HEX" and
 * "victim: waiting". It then reads further lines from stdin: "exit" ends
 * it; at the end of stdin it waits for a signal (SIGTERM ends it, SIGABRT
 * dumps core where cores are enabled). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define COPY_MAX 4096

/* .bss and .data copies for --env: a global array, and a pointer in .data
 * (initialized, so it is not in .bss) to a heap copy. */
static char bss_copy[COPY_MAX];
static char *data_heap_copy = (char *)1;

static int print_hash(const char *s, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "victim: SHA-256 failed\n");
		return -1;
	}
	printf("sha256 ");
	for (unsigned int i = 0; i < mdlen; i++)
		printf("%02x", md[i]);
	printf("\n");
	return 0;
}

static void wait_for_end(void)
{
	printf("victim: waiting\n");
	fflush(stdout);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) >= 0)
		if (n >= 4 && strncmp(line, "exit", 4) == 0) {
			free(line);
			exit(0);
		}
	free(line);
	for (;;)
		pause();
}

static int from_stdin(void)
{
	printf("Enter a secret: ");
	fflush(stdout);
	char *secret = NULL;
	size_t cap = 0;
	ssize_t n = getline(&secret, &cap, stdin);
	if (n < 0) {
		fprintf(stderr, "victim: no secret on stdin\n");
		return 1;
	}
	if (n > 0 && secret[n - 1] == '\n')
		secret[--n] = 0;
	printf("\n");
	if (print_hash(secret, (size_t)n) != 0)
		return 1;
	wait_for_end();
	return 0;
}

/* v: the secret from the environment or argv; how: which, for the output */
static int from_value(const char *v, const char *how)
{
	/* the stack copy lives in main's caller chain for as long as we wait */
	char stack_copy[COPY_MAX];
	if (v == NULL) {
		fprintf(stderr, "victim: no secret in %s\n", how);
		return 1;
	}
	size_t n = strlen(v);
	if (n >= COPY_MAX) {
		fprintf(stderr, "victim: %s is longer than %d bytes\n", how, COPY_MAX - 1);
		return 1;
	}
	memcpy(stack_copy, v, n + 1);
	memcpy(bss_copy, v, n + 1);
	data_heap_copy = strdup(v);
	if (data_heap_copy == NULL)
		return 1;
	printf("victim: secret from %s\n", how);
	/* Hash every copy, so that none of them is optimized away. */
	if (print_hash(stack_copy, n) != 0 || print_hash(bss_copy, n) != 0 || print_hash(data_heap_copy, n) != 0)
		return 1;
	wait_for_end();
	/* not reached; keeps stack_copy alive in the compiler's eyes */
	return stack_copy[0] == 0;
}

int main(int argc, char **argv)
{
	printf("victim: pid %d\n", (int)getpid());
	fflush(stdout);
	if (argc == 3 && strcmp(argv[1], "--env") == 0)
		return from_value(getenv(argv[2]), "the environment");
	if (argc == 3 && strcmp(argv[1], "--arg") == 0)
		return from_value(argv[2], "the command line");
	if (argc == 1)
		return from_stdin();
	fprintf(stderr, "usage: attack-victim [--env NAME | --arg SECRET]\n");
	return 2;
}
