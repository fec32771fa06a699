/* fuzz_evidence.c: libFuzzer harness for sim evidence verification, the
 * first thing CAS runs on bytes an attesting program sends.
 *
 * Input starting with 'S' is a recipe (LAS key and fields): it is signed
 * and must verify to exactly the same fields, and any one byte changed must
 * then be refused. Any other input goes straight to the verifier. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/evidence.h"
#include "arca/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                  \
	do {                      \
		if (!(c))         \
			abort();  \
	} while (0)

#define RECIPE_LEN (1 + 32 + 8 + 4 + 4 + 32 + 64 + 2)

static void recipe(const uint8_t *d)
{
	struct arca_sim_evidence ev, got;
	uint8_t priv[32], out[ARCA_SIM_EVIDENCE_LEN];
	struct arca_errbuf e;
	size_t at;

	memset(&ev, 0, sizeof(ev));
	d++;
	memcpy(priv, d, 32);
	d += 32;
	memcpy(&ev.timestamp, d, 8);
	d += 8;
	memcpy(&ev.pid, d, 4);
	d += 4;
	memcpy(&ev.uid, d, 4);
	d += 4;
	memcpy(ev.measurement, d, 32);
	d += 32;
	memcpy(ev.report_data, d, 64);
	d += 64;
	CHECK(arca_ed25519_public(priv, ev.las_pub) == 0);
	CHECK(arca_sim_evidence_sign(&ev, priv, out) == 0);
	CHECK(arca_sim_evidence_verify(out, sizeof(out), &got, &e) == 0);
	CHECK(memcmp(&got, &ev, sizeof(ev)) == 0);
	at = ((size_t)d[0] | (size_t)d[1] << 8) % ARCA_SIM_EVIDENCE_LEN;
	out[at] ^= (uint8_t)(d[1] | 1);
	CHECK(arca_sim_evidence_verify(out, sizeof(out), &got, &e) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_sim_evidence got;
	struct arca_errbuf e;

	if (size == RECIPE_LEN && data[0] == 'S') {
		recipe(data);
		return 0;
	}
	if (arca_sim_evidence_verify(data, size, &got, &e) == 0)
		CHECK(size == ARCA_SIM_EVIDENCE_LEN && memcmp(got.las_pub, data + 128, 32) == 0 &&
		      memcmp(got.report_data, data + 64, 64) == 0);
	return 0;
}
