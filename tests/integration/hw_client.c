/* hw_client.c: a test client of arca-las in hardware mode
 * (tests/integration/test_las_tsm.sh).
 *
 *   arca-test-hw-client SOCKET [PLATFORM]
 *
 * Asks for evidence with fresh report data and checks what a CAS relies
 * on: the answer is a well-formed hardware envelope (of PLATFORM when
 * given), it names this process (pid, uid) and carries the report data
 * sent, its measurement equals the one this process gets measuring itself,
 * and its hardware report's report data is the envelope's binding. The
 * fake configfs-tsm returns a recorded report, which cannot carry the
 * binding: that check must come out "refused", and arca_hw_evidence_verify
 * must refuse the envelope for the binding. Prints one line of facts; exit
 * 0 when everything is as expected, 1 when not, 3 when LAS refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/measure.h"

int main(int argc, char **argv)
{
	uint8_t rd[64], *ev = NULL;
	size_t evlen = 0;
	struct arca_errbuf e = {{0}};
	struct arca_hw_envelope env;
	struct arca_measurement self;
	char meas[ARCA_DIGEST_STR_LEN];

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s SOCKET [sev-snp|tdx]\n", argv[0]);
		return 2;
	}
	if (arca_random(rd, sizeof rd) < 0)
		return 2;
	if (arca_las_request(argv[1], rd, &ev, &evlen, &e) < 0) {
		printf("refused: %s\n", e.msg);
		return 3;
	}
	if (arca_hw_envelope_parse(ev, evlen, &env, &e) < 0) {
		printf("bad envelope (%s evidence?): %s\n",
		       arca_evidence_platform(ev, evlen) ? arca_evidence_platform(ev, evlen) : "unknown", e.msg);
		return 1;
	}
	const char *plat = arca_hw_platform_name(env.platform);
	if (argc == 3 && strcmp(argv[2], plat) != 0) {
		printf("bad envelope: platform %s, want %s\n", plat, argv[2]);
		return 1;
	}
	if (env.pid != (uint32_t)getpid() || env.uid != (uint32_t)geteuid()) {
		printf("bad envelope: names pid %u uid %u\n", env.pid, env.uid);
		return 1;
	}
	if (memcmp(env.report_data, rd, 64) != 0) {
		printf("bad envelope: report data differs\n");
		return 1;
	}
	if (arca_measure_pid(getpid(), NULL, &self, &e) < 0) {
		printf("cannot measure myself: %s\n", e.msg);
		return 1;
	}
	int same = memcmp(self.digest, env.measurement, 32) == 0;
	arca_measurement_free(&self);
	arca_digest_format(env.measurement, meas);

	struct arca_hw_result res;
	struct arca_hw_facts f;
	enum arca_hw_failure failed;
	arca_hw_result_init(&res);
	int rc = arca_hw_evidence_verify(ev, evlen, time(NULL), NULL, NULL, &f, &failed, &res, &e);
	const char *binding = rc == 0 ? "verified" : failed == ARCA_HW_BAD_BINDING ? "refused" : "other";
	printf("envelope platform=%s pid=%u uid=%u measurement=%s self=%s report=%zu auxblob=%zu provider=%.*s "
	       "binding=%s\n",
	       plat, env.pid, env.uid, meas, same ? "match" : "differ", env.report_len, env.aux_len,
	       (int)strcspn((const char *)env.provider, "\n") < (int)env.provider_len
		       ? (int)strcspn((const char *)env.provider, "\n")
		       : (int)env.provider_len,
	       (const char *)env.provider, binding);
	if (rc != 0 && failed != ARCA_HW_BAD_BINDING)
		printf("reason: %s\n", res.reason);
	arca_hw_result_free(&res);
	free(ev);
	return same && failed == ARCA_HW_BAD_BINDING ? 0 : 1;
}
