/* las_client.c: a test client of arca-las (tests/integration/test_las.sh).
 *
 *   arca-test-las-client SOCKET            ask for evidence and check it
 *   arca-test-las-client SOCKET --no-cloexec
 *       the same request on a socket that would survive exec; LAS must
 *       refuse it (exit 0 when refused, 1 when evidence was given)
 *
 * Checking evidence means: the signature verifies, it names this process
 * (pid, uid), carries the report data sent, and its measurement equals the
 * one this process gets measuring itself. Prints one line of facts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/measure.h"

static int no_cloexec_request(const char *path, const uint8_t rd[64])
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t req[ARCA_LAS_REQ_LEN], hdr[3], reason[ARCA_LAS_MAX_RESP];
	if (strlen(path) >= sizeof sa.sun_path)
		return 2;
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* deliberately without SOCK_CLOEXEC */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("connect");
		return 2;
	}
	memcpy(req, ARCA_LAS_REQ_MAGIC, 4);
	memcpy(req + 4, rd, 64);
	if (write(fd, req, sizeof req) != (ssize_t)sizeof req || recv(fd, hdr, 3, MSG_WAITALL) != 3)
		return 2;
	size_t n = (size_t)hdr[1] | (size_t)hdr[2] << 8;
	if (n >= sizeof reason || (n > 0 && recv(fd, reason, n, MSG_WAITALL) != (ssize_t)n))
		return 2;
	reason[n] = 0;
	if (hdr[0] == 0) {
		printf("granted\n");
		return 1;
	}
	printf("refused: %s\n", (char *)reason);
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t rd[64], *ev = NULL;
	size_t evlen = 0;
	struct arca_errbuf e = {{0}};
	struct arca_sim_evidence sim;
	struct arca_measurement self;
	char meas[ARCA_DIGEST_STR_LEN], fpr[ARCA_FPR_LEN];

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s SOCKET [--no-cloexec]\n", argv[0]);
		return 2;
	}
	if (arca_random(rd, sizeof rd) < 0)
		return 2;
	if (argc == 3) {
		if (strcmp(argv[2], "--no-cloexec") != 0)
			return 2;
		return no_cloexec_request(argv[1], rd);
	}
	if (arca_las_request(argv[1], rd, &ev, &evlen, &e) < 0) {
		printf("refused: %s\n", e.msg);
		return 1;
	}
	if (arca_sim_evidence_verify(ev, evlen, &sim, &e) < 0) {
		printf("bad evidence: %s\n", e.msg);
		return 1;
	}
	free(ev);
	if (sim.pid != (uint32_t)getpid() || sim.uid != (uint32_t)geteuid()) {
		printf("bad evidence: names pid %u uid %u\n", sim.pid, sim.uid);
		return 1;
	}
	if (memcmp(sim.report_data, rd, 64) != 0) {
		printf("bad evidence: report data differs\n");
		return 1;
	}
	if (arca_measure_pid(getpid(), NULL, &self, &e) < 0) {
		printf("cannot measure myself: %s\n", e.msg);
		return 1;
	}
	int same = memcmp(self.digest, sim.measurement, 32) == 0;
	arca_measurement_free(&self);
	arca_digest_format(sim.measurement, meas);
	if (arca_fpr_ed25519(sim.las_pub, fpr) < 0)
		return 1;
	printf("verified pid=%u uid=%u flags=%u measurement=%s las=%s self=%s\n", sim.pid, sim.uid, sim.flags, meas,
	       fpr, same ? "match" : "differ");
	return same ? 0 : 1;
}
