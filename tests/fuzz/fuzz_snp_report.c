/* fuzz_snp_report.c: libFuzzer harness for SEV-SNP evidence: the form
 * detection and the raw, hex and configfs-tsm loaders, the report parser,
 * the fields, and verification of whatever loads (with the certificates a
 * capture carries).
 *
 * Invariants beyond "no crash, no leak": a loaded report re-parses from its
 * own bytes to the same result, its fields always build, and nothing made
 * up by the fuzzer verifies against the pinned AMD roots. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/hwev.h"
#include "arca/snp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2025-06-01T00:00:00Z: inside the windows of the seed captures' chains. */
#define AT ((time_t)1748736000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_errbuf e;
	struct arca_snp_report r;
	if (size >= ARCA_SNP_REPORT_LEN)
		(void)arca_snp_parse(data, ARCA_SNP_REPORT_LEN, &r, &e);

	struct arca_snp_evidence ev;
	if (arca_snp_load_any(data, size, &ev, &e) != 0)
		return 0;
	struct arca_snp_report again;
	if (arca_snp_parse(ev.report.raw, ARCA_SNP_REPORT_LEN, &again, &e) != 0 ||
	    memcmp(again.raw, ev.report.raw, sizeof again.raw) != 0 || again.version != ev.report.version ||
	    again.signing_key != ev.report.signing_key || again.reported_tcb != ev.report.reported_tcb ||
	    memcmp(again.chip_id, ev.report.chip_id, sizeof again.chip_id) != 0)
		abort();
	json_t *fields = NULL;
	if (arca_snp_fields(&ev, &fields) != 0 || !fields)
		abort();
	json_decref(fields);

	struct arca_hw_result res;
	arca_hw_result_init(&res);
	int rc = arca_snp_verify(&ev, NULL, NULL, AT, NULL, &res);
	if ((rc == 0) != (res.verified == 1) || (rc != 0 && res.reason[0] == '\0') || !res.fields)
		abort();
	arca_hw_result_free(&res);
	arca_snp_evidence_free(&ev);
	return 0;
}
