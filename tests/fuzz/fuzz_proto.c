/* fuzz_proto.c: libFuzzer harness for every protocol decoder (include/arca/proto.h).
 *
 * The first byte picks the decoder, the rest is the message. Beyond "no
 * crash, no leak", whatever a decoder accepts must encode and decode again
 * to the same value: a decoder that accepts something its encoder cannot
 * reproduce is accepting more than the protocol says. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/proto.h"
#include "arca/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                  \
	do {                      \
		if (!(c))         \
			abort();  \
	} while (0)

static void fuzz_nonce(const uint8_t *p, size_t n)
{
	struct arca_msg_nonce m, m2;
	struct arca_errbuf e;
	struct arca_buf b;

	if (arca_msg_nonce_decode(p, n, &m, &e) < 0)
		return;
	arca_buf_init(&b, 4096, 0);
	CHECK(arca_msg_nonce_encode(&m, &b) == 0);
	CHECK(arca_msg_nonce_decode(b.p, b.len, &m2, &e) == 0);
	CHECK(memcmp(&m, &m2, sizeof(m)) == 0);
	arca_buf_free(&b);
}

static void fuzz_attest(const uint8_t *p, size_t n)
{
	struct arca_msg_attest m, m2;
	struct arca_errbuf e;
	struct arca_buf b;

	if (arca_msg_attest_decode(p, n, &m, &e) < 0)
		return;
	CHECK(m.evidence != NULL && m.evidence_len > 0 && m.evidence_len <= ARCA_MAX_EVIDENCE);
	arca_buf_init(&b, ARCA_MAX_BODY, 0);
	CHECK(arca_msg_attest_encode(&m, &b) == 0);
	CHECK(arca_msg_attest_decode(b.p, b.len, &m2, &e) == 0);
	CHECK(strcmp(m.session, m2.session) == 0 && strcmp(m.service, m2.service) == 0 &&
	      strcmp(m.platform, m2.platform) == 0 && memcmp(m.nonce, m2.nonce, 32) == 0 &&
	      memcmp(m.pubkey, m2.pubkey, 32) == 0 && m.evidence_len == m2.evidence_len &&
	      memcmp(m.evidence, m2.evidence, m.evidence_len) == 0);
	arca_msg_attest_free(&m);
	arca_msg_attest_free(&m2);
	arca_buf_free(&b);
}

static void fuzz_sealed(const uint8_t *p, size_t n)
{
	struct arca_buf box, b, box2;
	struct arca_errbuf e;

	arca_buf_init(&box, (size_t)ARCA_MAX_CONFIG + 128, 0);
	if (arca_msg_sealed_decode(p, n, &box, &e) == 0) {
		arca_buf_init(&b, ARCA_BUF_DEFAULT_MAX, 0);
		arca_buf_init(&box2, (size_t)ARCA_MAX_CONFIG + 128, 0);
		CHECK(arca_msg_sealed_encode(box.p, box.len, &b) == 0);
		CHECK(arca_msg_sealed_decode(b.p, b.len, &box2, &e) == 0);
		CHECK(box.len == box2.len && memcmp(box.p, box2.p, box.len) == 0);
		arca_buf_free(&b);
		arca_buf_free(&box2);
	}
	arca_buf_free(&box);
}

static void fuzz_error(const uint8_t *p, size_t n)
{
	char code[64], detail[256];
	size_t i;

	memset(code, 'x', sizeof(code));
	memset(detail, 'x', sizeof(detail));
	if (arca_msg_error_decode(p, n, code, detail) < 0) {
		CHECK(code[0] == 0 && detail[0] == 0);
		return;
	}
	CHECK(memchr(code, 0, sizeof(code)) != NULL && memchr(detail, 0, sizeof(detail)) != NULL);
	/* Nothing that could steer a terminal gets through. */
	for (i = 0; detail[i]; i++) {
		unsigned char c = (unsigned char)detail[i];
		CHECK((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t');
		CHECK(!(c == 0xc2 && (unsigned char)detail[i + 1] >= 0x80 && (unsigned char)detail[i + 1] <= 0x9f));
	}
}

static void fuzz_policy(const uint8_t *p, size_t n)
{
	struct arca_buf y, b, y2;
	struct arca_errbuf e;

	arca_buf_init(&y, 2u << 20, 1);
	if (arca_msg_policy_decode(p, n, &y, &e) == 0) {
		CHECK(y.len > 0 && memchr(y.p, 0, y.len) == NULL);
		arca_buf_init(&b, 8u << 20, 1);
		arca_buf_init(&y2, 2u << 20, 1);
		CHECK(arca_msg_policy_encode((const char *)y.p, y.len, &b) == 0);
		CHECK(arca_msg_policy_decode(b.p, b.len, &y2, &e) == 0);
		CHECK(y.len == y2.len && memcmp(y.p, y2.p, y.len) == 0);
		arca_buf_free(&b);
		arca_buf_free(&y2);
	}
	arca_buf_free(&y);
}

static void fuzz_config(const uint8_t *p, size_t n)
{
	struct arca_config *c = NULL, *c2 = NULL;
	struct arca_errbuf e;
	struct arca_buf b;
	size_t i;

	if (arca_config_decode(p, n, &c, &e) < 0) {
		CHECK(c == NULL);
		return;
	}
	CHECK(c->argc >= 1 && c->argv[c->argc] == NULL && c->env[c->nenv] == NULL);
	for (i = 0; i < c->nenv; i++)
		CHECK(strchr(c->env[i], '=') != NULL && c->env[i][0] != '=');
	for (i = 0; i < c->nfiles; i++)
		CHECK(c->files[i].path[0] == '/' && c->files[i].data != NULL);
	arca_buf_init(&b, ARCA_MAX_CONFIG, 1);
	CHECK(arca_config_encode(c, &b) == 0);
	CHECK(arca_config_decode(b.p, b.len, &c2, &e) == 0);
	CHECK(c->argc == c2->argc && c->nenv == c2->nenv && c->nfiles == c2->nfiles);
	for (i = 0; i < c->argc; i++)
		CHECK(strcmp(c->argv[i], c2->argv[i]) == 0);
	for (i = 0; i < c->nenv; i++)
		CHECK(strcmp(c->env[i], c2->env[i]) == 0);
	for (i = 0; i < c->nfiles; i++)
		CHECK(strcmp(c->files[i].path, c2->files[i].path) == 0 && c->files[i].len == c2->files[i].len &&
		      memcmp(c->files[i].data, c2->files[i].data, c->files[i].len) == 0);
	CHECK(c->nvolumes == c2->nvolumes);
	for (i = 0; i < c->nvolumes; i++) {
		const struct arca_config_volume *v = &c->volumes[i], *v2 = &c2->volumes[i];
		/* a read-only volume always has the tag it is pinned to */
		CHECK(v->path[0] == '/' && strchr(v->name, '/') == NULL && (v->mode == 1 || v->mode == 2) &&
		      (!v->readonly || v->has_tag));
		CHECK(strcmp(v->name, v2->name) == 0 && strcmp(v->path, v2->path) == 0 && v->mode == v2->mode &&
		      memcmp(v->key, v2->key, 32) == 0 && v->has_tag == v2->has_tag &&
		      (!v->has_tag || memcmp(v->tag, v2->tag, 32) == 0) && v->readonly == v2->readonly &&
		      memcmp(v->token, v2->token, 32) == 0);
	}
	arca_config_free(c);
	arca_config_free(c2);
	arca_buf_free(&b);
}

static void fuzz_voltag(const uint8_t *p, size_t n)
{
	struct arca_msg_voltag m, m2;
	struct arca_errbuf e;
	struct arca_buf b;

	if (arca_msg_voltag_decode(p, n, &m, &e) < 0)
		return;
	CHECK(m.has_previous == 0 || m.has_previous == 1);
	arca_buf_init(&b, 4096, 1);
	CHECK(arca_msg_voltag_encode(&m, &b) == 0);
	CHECK(arca_msg_voltag_decode(b.p, b.len, &m2, &e) == 0);
	CHECK(memcmp(&m, &m2, sizeof(m)) == 0);
	arca_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 7) {
	case 0:
		fuzz_nonce(data + 1, size - 1);
		break;
	case 1:
		fuzz_attest(data + 1, size - 1);
		break;
	case 2:
		fuzz_sealed(data + 1, size - 1);
		break;
	case 3:
		fuzz_error(data + 1, size - 1);
		break;
	case 4:
		fuzz_policy(data + 1, size - 1);
		break;
	case 5:
		fuzz_config(data + 1, size - 1);
		break;
	case 6:
		fuzz_voltag(data + 1, size - 1);
		break;
	}
	return 0;
}
