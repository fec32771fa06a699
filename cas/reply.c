/* reply.c: the only way arca-cas answers a request.
 *
 * The error codes and their fixed sentences live here in one table so that
 * an unauthenticated caller can never get more than code + sentence: the
 * only way to send other text is cas_fail's detail, which is dropped unless
 * the caller presented a client certificate. */
#include "cas.h"

#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "arca/proto.h"

static const struct {
	const char *name;
	int status;
	const char *sentence;
} codes[CAS_NCODES] = {
	[CAS_BAD_REQUEST] = {"bad_request", 400, "The request could not be parsed; check it against the arca protocol."},
	[CAS_TOO_LARGE] = {"too_large", 413, "The request is larger than CAS accepts."},
	[CAS_UNAUTHENTICATED] = {"unauthenticated", 401,
				 "This request needs a client certificate: connect with an arca identity."},
	[CAS_FORBIDDEN] = {"forbidden", 403, "The presented identity is not an owner of this session."},
	[CAS_NOT_FOUND] = {"not_found", 404, "There is no such resource."},
	[CAS_CONFLICT] = {"conflict", 409, "A session with this name already exists; update it instead."},
	[CAS_STALE_PREDECESSOR] = {"stale_predecessor", 409,
				   "The predecessor is not the current hash of this session; read it again and retry."},
	[CAS_INVALID_POLICY] = {"invalid_policy", 400, "The policy is not valid."},
	[CAS_NONCE_INVALID] = {"nonce_invalid", 403, "The nonce is unknown or was already used; request a new one."},
	[CAS_NONCE_EXPIRED] = {"nonce_expired", 403, "The nonce has expired; request a new one."},
	[CAS_EVIDENCE_INVALID] = {"evidence_invalid", 403, "The evidence could not be parsed or verified."},
	[CAS_PLATFORM_UNTRUSTED] = {"platform_untrusted", 403,
				    "The evidence was signed by a platform key this CAS does not trust."},
	[CAS_BINDING_MISMATCH] = {"binding_mismatch", 403,
				  "The evidence's report data does not bind this nonce, key, session and service."},
	[CAS_UNKNOWN_SERVICE] = {"unknown_service", 403, "The session or service is unknown."},
	[CAS_PLATFORM_NOT_ALLOWED] = {"platform_not_allowed", 403, "The service does not accept this platform."},
	[CAS_MEASUREMENT_MISMATCH] = {"measurement_mismatch", 403,
				      "The program's measurement is not the one the service expects."},
	/* One sentence for both causes: the caller is not authenticated, and
	 * the shield knows locally which one it is (it tells the user). */
	[CAS_PLATFORM_UNPROTECTED] = {"platform_unprotected", 403,
				      "This host cannot protect the program as the session requires: either other "
				      "processes of the same user could tamper with it as it starts "
				      "(kernel.yama.ptrace_scope is missing or 0; set it to 1, or tolerate "
				      "no-ptrace-protection in the session), or the program has no secret memory "
				      "(memfd_secret unavailable: root could read its memory; tolerate no-secret-memory "
				      "in the session)."},
	[CAS_VOLUME_TOKEN] = {"forbidden", 403,
			      "The token does not authorize tag updates of this volume; a program gets its token when "
			      "it attests."},
	[CAS_VOLUME_READONLY] = {"forbidden", 403,
				 "The volume is read-only: it is a code volume whose tag is pinned in the session."},
	[CAS_VOLUME_ROLLBACK] = {"volume_rollback", 409,
				 "The previous tag is not the one CAS holds for this volume: the volume was restored "
				 "from an older copy or changed outside arca. CAS has recorded this."},
	[CAS_INTERNAL] = {"internal", 500, "CAS could not complete the request; its log says why."},
};

const char *cas_code_name(enum cas_code c) { return c < CAS_NCODES ? codes[c].name : "internal"; }
int cas_code_status(enum cas_code c) { return c < CAS_NCODES ? codes[c].status : 500; }
const char *cas_code_sentence(enum cas_code c) { return c < CAS_NCODES ? codes[c].sentence : ""; }

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	default: return status >= 500 ? "Internal Server Error" : "Error";
	}
}

void cas_send(struct cas_worker *w, struct evhttp_request *req, enum cas_endpoint ep, int status,
	      const char *content_type, const void *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (len && evbuffer_add(out, body, len) != 0) {
		evbuffer_drain(out, evbuffer_get_length(out));
		status = 500;
	}
	evhttp_send_reply(req, status, reason_phrase(status), NULL);
	cas_metrics_count_request(&w->cas->metrics, ep, status);
}

void cas_reply(struct cas_req *r, int status, const char *content_type, const void *body, size_t len)
{
	if (r->replied)
		return;
	r->replied = 1;
	cas_send(r->w, r->req, r->ep, status, content_type, body, len);
}

int cas_error_body(enum cas_code code, int authenticated, const char *detail, struct arca_buf *out)
{
	if (code >= CAS_NCODES)
		code = CAS_INTERNAL;
	if (!authenticated || !detail || !*detail)
		detail = codes[code].sentence;
	if (arca_msg_error_encode(codes[code].name, detail, out) == 0)
		return 0;
	/* Fall back to the fixed sentence, which always encodes. */
	arca_buf_reset(out);
	return arca_msg_error_encode(codes[code].name, codes[code].sentence, out);
}

void cas_fail(struct cas_req *r, enum cas_code code, const char *detail)
{
	struct arca_buf b;

	if (code >= CAS_NCODES)
		code = CAS_INTERNAL;
	arca_buf_init(&b, 64 << 10, 0);
	if (cas_error_body(code, r->has_caller, detail, &b) < 0)
		arca_buf_reset(&b);
	cas_reply(r, codes[code].status, "application/json", b.p, b.len);
	arca_buf_free(&b);
}

int cas_body(struct cas_req *r, const uint8_t **p, size_t *n)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	unsigned char *q;

	ENSURE(len <= ARCA_MAX_BODY, ARCA_ETOOBIG);
	/* One NUL after the body lets parsers treat it as text; it is not
	 * counted in *n. */
	ENSURE(evbuffer_add(in, "", 1) == 0, ARCA_ENOMEM);
	q = evbuffer_pullup(in, -1);
	ENSURE(q, ARCA_ENOMEM);
	*p = q;
	*n = len;
	return 0;
}

void cas_body_wipe(struct cas_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	unsigned char *q = len ? evbuffer_pullup(in, -1) : NULL;

	if (q)
		arca_wipe(q, len);
	evbuffer_drain(in, len);
}
