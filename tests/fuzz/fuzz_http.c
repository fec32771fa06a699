/* fuzz_http.c: libFuzzer harness for arca_http_parse_response (what a
 * server, or whoever sits in its place before the pin is checked, can send)
 * and arca_hostport_split (what a user types).
 *
 * Properties: an accepted response lies within the input, its body ends
 * where the parser says it consumed, and every shorter prefix only asks for
 * more bytes; a split host and port join back to the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                  \
	do {                      \
		if (!(c))         \
			abort();  \
	} while (0)

static void fuzz_parse(const uint8_t *data, size_t size, size_t max_body)
{
	int status = -1;
	size_t off = 0, len = 0;
	long r = arca_http_parse_response(data, size, max_body, &status, &off, &len);

	if (r <= 0) {
		CHECK(status == -1);
		return;
	}
	CHECK((size_t)r <= size && off + len == (size_t)r && len <= max_body);
	CHECK(status >= 200 && status <= 599 && off >= 16 && off <= 16384);
	CHECK(memcmp(data + off - 4, "\r\n\r\n", 4) == 0);
	/* The answer is complete only at r: a prefix needs more. */
	size_t head = off, body = len;
	CHECK(arca_http_parse_response(data, (size_t)r - 1, max_body, &status, &off, &len) == 0);
	CHECK(arca_http_parse_response(data, head, max_body, &status, &off, &len) == (body == 0 ? (long)head : 0));
}

static void fuzz_hostport(const uint8_t *data, size_t size)
{
	char in[512], host[256], port[6], joined[600];

	if (size >= sizeof(in))
		return;
	memcpy(in, data, size);
	in[size] = 0;
	if (arca_hostport_split(in, host, sizeof(host), port, sizeof(port)) != 0)
		return;
	CHECK(host[0] != 0 && port[0] != 0 && port[0] != '0' && strtoul(port, NULL, 10) <= 65535);
	snprintf(joined, sizeof(joined), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
	CHECK(strcmp(joined, in) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size, 4096);
	fuzz_parse(data, size, 0);
	fuzz_parse(data, size, SIZE_MAX);
	fuzz_hostport(data, size);
	return 0;
}
