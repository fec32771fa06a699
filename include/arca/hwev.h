/* hwev.h: what every hardware evidence verifier (SEV-SNP, TDX, SGX)
 * returns, so that the CLI, CAS and the tests treat them alike.
 *
 * A verifier fills struct arca_hw_result: the evidence's fields as a JSON
 * object named exactly as ../shared/vectors/expected.json names them (hex
 * strings lower case, integers as numbers, policy and TCB values as "0x…"
 * strings), the verdict, and the first check that failed in words a person
 * can act on. result->fields is owned by the result (arca_hw_result_free). */
#ifndef ARCA_HWEV_H
#define ARCA_HWEV_H

#include <stdint.h>
#include <time.h>
#include <jansson.h>
#include "arca/err.h"

struct arca_hw_result {
	int verified;          /* 1 only when every check passed at the given time */
	char reason[512];      /* when not verified: the first failed check */
	json_t *fields;        /* parsed fields; present even when not verified, if parsing got that far */
	time_t valid_from;     /* intersection of the validity windows of the chain, 0 when unknown */
	time_t valid_until;
	char tcb_status[48];   /* Intel, with collateral: "UpToDate", "OutOfDate", …; "" without */
	uint8_t report_data[64];
};

void arca_hw_result_init(struct arca_hw_result *r);
void arca_hw_result_free(struct arca_hw_result *r);

#endif
