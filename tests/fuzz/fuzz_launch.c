/* fuzz_launch.c: libFuzzer harness for the launch request arca-las decodes
 * from any local user (las_launch.h), as root.
 *
 * Any input goes to the decoder; whatever it accepts must encode again and
 * decode to exactly the same request, and must satisfy the rules arca-las
 * relies on before it forks (absolute program path, bounded arguments). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/las_launch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                  \
	do {                      \
		if (!(c))         \
			abort();  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_launch_req r, again;
	struct arca_errbuf e;
	struct arca_buf b;

	if (arca_launch_req_decode(data, size, &r, &e) < 0)
		return 0;
	CHECK(r.argc >= 1 && r.argc <= ARCA_LAS_LAUNCH_MAX_ARGS && r.argv[r.argc] == NULL);
	CHECK(r.argv[0][0] == '/');
	arca_buf_init(&b, 0, 0);
	CHECK(arca_launch_req_encode(&r, &b) == 0);
	CHECK(b.len > ARCA_LAS_LAUNCH_HDR_LEN && memcmp(b.p, ARCA_LAS_LAUNCH_MAGIC, 4) == 0);
	CHECK(arca_launch_req_decode(b.p + ARCA_LAS_LAUNCH_HDR_LEN, b.len - ARCA_LAS_LAUNCH_HDR_LEN, &again, &e) == 0);
	CHECK(again.argc == r.argc);
	for (size_t i = 0; i < r.argc; i++)
		CHECK(strcmp(again.argv[i], r.argv[i]) == 0);
	CHECK(strcmp(again.session, r.session) == 0 && strcmp(again.service, r.service) == 0 &&
	      strcmp(again.cas, r.cas) == 0 && strcmp(again.cas_pin, r.cas_pin) == 0);
	arca_launch_req_free(&again);
	arca_launch_req_free(&r);
	arca_buf_free(&b);
	return 0;
}
