/* fuzz_evidence_hw.c: libFuzzer harness for the hardware envelope arca-las
 * sends from a confidential VM: the strict parser, the encoder, and the
 * whole verification CAS runs on it (binding, report, chain).
 *
 * Invariants beyond "no crash, no leak": whatever parses encodes back to
 * exactly the same bytes; whatever the encoder refuses the parser refused;
 * nothing made up by the fuzzer passes verification (no report in it can
 * carry a binding under a chain to the pinned roots), and a refusal always
 * says why and of which kind. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/evidence_hw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2026-01-01T00:00:00Z: inside the windows of the seed reports' chains. */
#define AT ((time_t)1767225600)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_errbuf e = {{0}};
	struct arca_hw_envelope env;
	(void)arca_evidence_platform(data, size);

	if (arca_hw_envelope_parse(data, size, &env, &e) == 0) {
		struct arca_buf again;
		arca_buf_init(&again, 0, 0);
		if (arca_hw_envelope_encode(&env, &again, &e) != 0 || again.len != size ||
		    memcmp(again.p, data, size) != 0)
			abort();
		arca_buf_free(&again);
		const char *name = arca_evidence_platform(data, size);
		if (!name || strcmp(name, arca_hw_platform_name(env.platform)) != 0)
			abort();
	}

	struct arca_hw_result res;
	struct arca_hw_facts f;
	enum arca_hw_failure failed = ARCA_HW_OK;
	arca_hw_result_init(&res);
	int rc = arca_hw_evidence_verify(data, size, AT, NULL, NULL, &f, &failed, &res, &e);
	if (rc == 0 || res.verified || failed == ARCA_HW_OK || res.reason[0] == '\0')
		abort();
	arca_hw_result_free(&res);
	return 0;
}
