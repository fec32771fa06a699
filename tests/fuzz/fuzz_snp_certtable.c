/* fuzz_snp_certtable.c: libFuzzer harness for the GHCB certificate table
 * (configfs-tsm auxblob), which comes from the untrusted host: every offset
 * and length must be checked before use, and a refused table must leave
 * nothing allocated. Whatever loads is also run through the leaf reader
 * and the chain check, which read the host's certificates next. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arca/snp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_errbuf e;
	struct arca_snp_certs c;
	if (arca_snp_certtable_parse(data, size, &c, &e) != 0) {
		if (c.ark || c.ask || c.vcek || c.vlek)
			abort();
		return 0;
	}
	X509 *leaves[2] = { c.vcek, c.vlek };
	STACK_OF(X509) *chain = sk_X509_new_null();
	if (!chain)
		abort();
	if (c.ask)
		sk_X509_push(chain, c.ask);
	if (c.ark)
		sk_X509_push(chain, c.ark);
	for (int i = 0; i < 2; i++) {
		if (!leaves[i])
			continue;
		struct arca_snp_leaf li;
		(void)arca_snp_leaf_read(leaves[i], &li, &e);
		time_t from, until;
		(void)arca_snp_chain_verify(leaves[i], chain, 1748736000, &li, &from, &until, &e);
	}
	sk_X509_free(chain);
	arca_snp_certs_free(&c);
	return 0;
}
