/* cas_evidence.c: GET /v1/cas/evidence?nonce=HEX — CAS attests itself.
 *
 * The caller (arca cas attest) gets evidence from this host's LAS whose
 * report data binds its nonce to the key of the TLS connection it is on:
 * SHA-512(nonce || SHA-256(DER SPKI of the CAS key) || "arca-cas"). When no
 * LAS answers, the reply says platform "none" and the client treats its
 * pin as trust on first use; it never gets evidence of something else.
 *
 * The LAS call blocks this worker (at most arca_las_request's own timeout,
 * a few seconds when a LAS accepts but does not answer; microseconds when
 * none listens). The LAS is a local daemon of the same operator and this
 * endpoint is called once per pin, so a simple blocking call is kept. */
#include "cas.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/proto.h"

#define CAS_BINDING_LABEL "arca-cas"

static int query_nonce(struct evhttp_request *req, uint8_t nonce[ARCA_NONCE_LEN])
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq kv;
	const char *hex;
	size_t got = 0;
	int rc = ARCA_EPARSE;

	if (!q)
		return ARCA_EPARSE;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(q, &kv) != 0)
		goto out;
	hex = evhttp_find_header(&kv, "nonce");
	if (!hex || strlen(hex) != 2 * ARCA_NONCE_LEN)
		goto out;
	if (arca_hex_decode(hex, strlen(hex), nonce, ARCA_NONCE_LEN, &got) == 0 && got == ARCA_NONCE_LEN)
		rc = 0;
out:
	evhttp_clear_headers(&kv);
	return rc;
}

void cas_handle_cas_evidence(struct cas_req *r)
{
	struct cas *c = r->w->cas;
	uint8_t nonce[ARCA_NONCE_LEN], in[ARCA_NONCE_LEN + 32 + sizeof CAS_BINDING_LABEL - 1], rd[64];
	uint8_t *ev = NULL;
	size_t evlen = 0;
	struct arca_errbuf e = {{0}};
	json_t *j = NULL;
	char *b64 = NULL, *text = NULL;

	if (query_nonce(r->req, nonce) < 0) {
		cas_fail(r, CAS_BAD_REQUEST, NULL);
		return;
	}
	memcpy(in, nonce, ARCA_NONCE_LEN);
	memcpy(in + ARCA_NONCE_LEN, c->spki_sha256, 32);
	memcpy(in + ARCA_NONCE_LEN + 32, CAS_BINDING_LABEL, sizeof CAS_BINDING_LABEL - 1);
	if (arca_sha512(in, sizeof in, rd) < 0) {
		cas_fail(r, CAS_INTERNAL, NULL);
		return;
	}
	/* The platform is what LAS sent (sim, or the hardware envelope of a
	 * confidential VM), never assumed: the client verifies it as that. */
	const char *plat = NULL;
	if (arca_las_request(c->cfg.las_path, rd, &ev, &evlen, &e) == 0 && evlen > 0 && evlen <= ARCA_MAX_EVIDENCE &&
	    (plat = arca_evidence_platform(ev, evlen)) != NULL) {
		b64 = malloc(ARCA_B64_LEN(evlen));
		if (b64) {
			arca_b64_encode(ev, evlen, b64);
			j = json_pack("{s:s,s:s,s:s}", "fingerprint", c->id.fpr, "platform", plat, "evidence", b64);
		}
	} else {
		cas_log("info", "no evidence for CAS itself (%s); answering platform none",
			e.msg[0] ? e.msg : ev ? "LAS gave evidence of no kind arca knows" : "LAS gave nothing");
		j = json_pack("{s:s,s:s}", "fingerprint", c->id.fpr, "platform", "none");
	}
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (text)
		cas_reply(r, 200, "application/json", text, strlen(text));
	else
		cas_fail(r, CAS_INTERNAL, NULL);
	free(text);
	json_decref(j);
	free(b64);
	free(ev);
}
