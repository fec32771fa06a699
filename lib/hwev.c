/* hwev.c: life cycle of the result every hardware evidence verifier fills,
 * so that a result can be freed whichever verifier (or none) touched it. */
#include <string.h>

#include "arca/hwev.h"

void arca_hw_result_init(struct arca_hw_result *r)
{
	memset(r, 0, sizeof *r);
}

void arca_hw_result_free(struct arca_hw_result *r)
{
	if (!r)
		return;
	json_decref(r->fields);
	/* Leaves a result that can be freed again or reused without init. */
	arca_hw_result_init(r);
}
