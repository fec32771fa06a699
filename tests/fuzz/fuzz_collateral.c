/* fuzz_collateral.c: libFuzzer harness for DCAP collateral: the bundle and
 * Intel PCS response readers (JSON, the exact signed text, hex CRLs, PEM
 * chains) and TCB matching over whatever they accept.
 *
 * Any input: no read outside it, no leak; a document that loads can be
 * loaded again from the same bytes into the same collateral only as a
 * part given twice (ARCA_EEXIST), and matching it against a few extreme
 * platforms never yields a status outside Intel's list. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/intel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void match(const struct arca_dcap_collateral *c, uint32_t tee, uint8_t fill)
{
	static uint8_t body[ARCA_TDX15_BODY_LEN], qe[ARCA_SGX_REPORT_LEN];
	struct arca_intel_quote q;
	struct arca_pck_ext pck;
	struct arca_dcap_tcb t;
	struct arca_errbuf e;
	memset(body, fill, sizeof body);
	memset(qe, fill, sizeof qe);
	memset(&q, 0, sizeof q);
	memset(&pck, fill, sizeof pck);
	q.tee_type = tee;
	q.body_type = tee == ARCA_INTEL_TEE_TDX ? ARCA_INTEL_BODY_TDX15 : ARCA_INTEL_BODY_SGX;
	q.body = body;
	q.body_len = tee == ARCA_INTEL_TEE_TDX ? ARCA_TDX15_BODY_LEN : ARCA_SGX_REPORT_LEN;
	q.qe_report = qe;
	int rc = arca_dcap_tcb_evaluate(c, &q, &pck, &t, &e);
	if (rc == 0 && !arca_tcb_status_name(t.status))
		abort();
	if (rc != 0 && t.status != -1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_dcap_collateral *c = NULL;
	struct arca_errbuf e;
	if (arca_dcap_collateral_load(data, size, &c, &e) != 0) {
		if (c)
			abort();
		return 0;
	}
	int rc = arca_dcap_collateral_add(c, data, size, &e);
	if (rc != ARCA_EEXIST && rc != 0)
		abort();
	for (int fill = 0; fill < 3; fill++) {
		uint8_t f = fill == 0 ? 0x00 : fill == 1 ? 0xff : 0x05;
		match(c, ARCA_INTEL_TEE_SGX, f);
		match(c, ARCA_INTEL_TEE_TDX, f);
	}
	arca_dcap_collateral_free(c);
	return 0;
}
