/* fuzz_quote.c: libFuzzer harness for the Intel quote parser and verifier
 * (SGX v3, TDX v4/v5) and the PCK certificate's SGX extension parser.
 *
 * Any input: no read outside it, no leak, and answers that agree with
 * each other: a parse points only inside the input and its lengths add up;
 * a verify returns 0 exactly when it says verified, with a reason
 * otherwise. The seeds are real quotes, so the verified path runs too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/hwev.h"
#include "arca/intel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2026-06-01T00:00:00Z: inside the PCK chain window of every seed. */
#define AT ((time_t)1780272000)

static int inside(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
	return p >= data && n <= size && (size_t)(p - data) <= size - n;
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct arca_intel_quote q;
	struct arca_errbuf e;
	if (arca_intel_quote_parse(data, size, &q, &e) != 0)
		return;
	if (!inside(data, size, q.header, ARCA_INTEL_HEADER_LEN) || !inside(data, size, q.body, q.body_len) ||
	    !inside(data, size, q.sig, 64) || !inside(data, size, q.att_key, 64) ||
	    !inside(data, size, q.qe_report, ARCA_SGX_REPORT_LEN) || !inside(data, size, q.qe_report_sig, 64) ||
	    !inside(data, size, q.qe_auth, q.qe_auth_len) || !inside(data, size, q.pck_pem, q.pck_pem_len) ||
	    !inside(data, size, q.qe_cert_data, q.qe_cert_data_len))
		abort();
	if (q.quote_len + q.trailing_bytes != size || q.signed_len > q.quote_len || q.signed_data != data)
		abort();
	if (q.body_len != (q.body_type == ARCA_INTEL_BODY_SGX     ? ARCA_SGX_REPORT_LEN
			   : q.body_type == ARCA_INTEL_BODY_TDX10 ? ARCA_TDX10_BODY_LEN
								  : ARCA_TDX15_BODY_LEN))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);

	struct arca_hw_result r;
	arca_hw_result_init(&r);
	int rc = arca_intel_quote_verify(data, size, NULL, AT, &r);
	if ((rc == 0) != (r.verified == 1) || (rc != 0 && r.reason[0] == '\0') || r.tcb_status[0] != '\0')
		abort();
	arca_hw_result_free(&r);

	/* The same bytes as an SGX extension, and through the chain cache. */
	struct arca_pck_ext x;
	struct arca_errbuf e;
	(void)arca_pck_ext_parse(data, size, &x, &e);

	struct arca_intel_chain_cache cache;
	arca_intel_chain_cache_init(&cache);
	struct arca_intel_opts o = { .cache = &cache };
	for (int i = 0; i < 2; i++) {
		arca_hw_result_init(&r);
		int again = arca_intel_quote_verify_opts(data, size, AT, &o, &r);
		if (again != rc)
			abort(); /* the cache must not change a verdict */
		arca_hw_result_free(&r);
	}
	arca_intel_chain_cache_free(&cache);
	return 0;
}
