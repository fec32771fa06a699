/* attest_client.c: nonce, ephemeral key, evidence, attest, and the sealed
 * configuration opened with the ephemeral key; the volume tag call
 * (attest_client.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/attest_client.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/evidence_hw.h"
#include "arca/encode.h"
#include "arca/http.h"
#include "arca/policy.h"

#define NONCE_RESP_MAX 4096
/* base64 of a box holding the largest configuration, plus JSON. */
#define SEALED_RESP_MAX ((size_t)ARCA_MAX_CONFIG * 2)

/* Puts "PREFIX: <what e said>" into e (the inner message is copied first:
 * e->msg cannot be both source and destination of a format). */
static int wrapf(struct arca_errbuf *e, int rc, const char *fmt, ...) ARCA_PRINTF(3, 4);
static int wrapf(struct arca_errbuf *e, int rc, const char *fmt, ...)
{
	char prefix[256], inner[sizeof e->msg];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	if (n < 0)
		prefix[0] = 0;
	memcpy(inner, e->msg, sizeof inner);
	inner[sizeof inner - 1] = 0;
	return arca_errf(e, rc, "%s: %s", prefix, inner);
}

/* A non-200 answer: CAS's code when it sent one. */
static int refused(const struct arca_buf *resp, const char *cas, const char *step, int status,
		   struct arca_attest_outcome *o, struct arca_errbuf *e)
{
	char detail[256] = "";
	if (arca_msg_error_decode(resp->p, resp->len, o->code, detail) < 0) {
		o->code[0] = 0;
		return arca_errf(e, ARCA_ENET, "CAS at %s answered HTTP %d to %s without an error code", cas, status,
				 step);
	}
	return arca_errf(e, ARCA_EDENIED, "CAS refused %s: %s (%s)", step, detail, o->code);
}

int arca_attest_exchange(struct arca_http *h, const char *cas, const char *session, const char *service,
			 arca_evidence_fn get_evidence, void *ctx, struct arca_config **cfg,
			 struct arca_attest_outcome *o, struct arca_errbuf *e)
{
	struct arca_buf resp, body, box, plain;
	struct arca_msg_nonce nonce;
	struct arca_msg_attest req;
	uint8_t pub[32], rd[64];
	uint8_t *priv = NULL;
	int status = 0, rc;

	*cfg = NULL;
	memset(o, 0, sizeof *o);
	memset(&req, 0, sizeof req);
	arca_buf_init(&resp, NONCE_RESP_MAX, 0);
	arca_buf_init(&body, ARCA_MAX_BODY, 0);
	arca_buf_init(&box, SEALED_RESP_MAX, 0);
	arca_buf_init(&plain, ARCA_MAX_CONFIG, 1);

	/* 1. nonce */
	rc = arca_http_request(h, "POST", "/v1/attest/nonce", NULL, 0, &status, &resp, e);
	if (rc < 0) {
		wrapf(e, rc, "asking CAS at %s for a nonce failed", cas);
		goto out;
	}
	if (status != 200) {
		rc = refused(&resp, cas, "the nonce request", status, o, e);
		goto out;
	}
	if ((rc = arca_msg_nonce_decode(resp.p, resp.len, &nonce, e)) < 0) {
		wrapf(e, rc, "CAS sent a malformed nonce");
		goto out;
	}

	/* 2. ephemeral key and report data */
	priv = arca_secret_alloc(32);
	ENSURE_GOTO(priv != NULL, arca_errf(e, ARCA_ENOMEM, "cannot allocate locked memory for the attestation key"),
		    out);
	ENSURE_GOTO(arca_x25519_keygen(pub, priv) == 0,
		    arca_errf(e, ARCA_ECRYPTO, "cannot generate the attestation key"), out);
	ENSURE_GOTO(arca_report_data(nonce.nonce, pub, session, service, rd) == 0,
		    arca_errf(e, ARCA_EINVAL, "cannot compute the report data"), out);

	/* 3. evidence */
	GUARD_GOTO(get_evidence(ctx, rd, &req.evidence, &req.evidence_len, e), out);
	/* The kind LAS sent (sim, or the hardware envelope of a confidential
	 * VM); CAS verifies it as that kind and nothing else. */
	const char *plat = arca_evidence_platform(req.evidence, req.evidence_len);
	ENSURE_GOTO(plat != NULL, arca_errf(e, ARCA_EPARSE, "arca-las sent evidence of a kind this client does not know"),
		    out);
	snprintf(o->platform, sizeof o->platform, "%s", plat);

	/* 4. evidence to CAS, configuration back, sealed to our key */
	snprintf(req.session, sizeof req.session, "%s", session);
	snprintf(req.service, sizeof req.service, "%s", service);
	snprintf(req.platform, sizeof req.platform, "%s", plat);
	memcpy(req.nonce, nonce.nonce, sizeof req.nonce);
	memcpy(req.pubkey, pub, sizeof pub);
	ENSURE_GOTO(arca_msg_attest_encode(&req, &body) == 0,
		    arca_errf(e, ARCA_EINVAL, "cannot encode the attestation request"), out);
	arca_buf_reset(&resp);
	resp.max = SEALED_RESP_MAX;
	rc = arca_http_request(h, "POST", "/v1/attest", body.p, body.len, &status, &resp, e);
	if (rc < 0) {
		wrapf(e, rc, "sending the evidence to CAS at %s failed", cas);
		goto out;
	}
	if (status != 200) {
		rc = refused(&resp, cas, "the attestation", status, o, e);
		goto out;
	}
	if ((rc = arca_msg_sealed_decode(resp.p, resp.len, &box, e)) < 0) {
		wrapf(e, rc, "CAS sent a malformed configuration");
		goto out;
	}
	ENSURE_GOTO(arca_box_open(priv, pub, ARCA_CONFIG_CONTEXT, box.p, box.len, &plain) == 0,
		    arca_errf(e, ARCA_ECRYPTO, "the configuration from CAS does not decrypt with this attempt's key"),
		    out);
	if ((rc = arca_config_decode(plain.p, plain.len, cfg, e)) < 0) {
		wrapf(e, rc, "the configuration from CAS cannot be read");
		goto out;
	}
	rc = 0;
out:
	if (priv != NULL)
		arca_secret_free(priv, 32);
	arca_msg_attest_free(&req);
	arca_buf_free(&resp);
	arca_buf_free(&body);
	arca_buf_free(&box);
	arca_buf_free(&plain);
	return rc;
}

/* ---- volume tags ---- */

#define VOLTAG_RESP_MAX 4096
/* A request that failed in transit is sent again on a new connection
 * (arca_http_request drops a failed one and opens another): CAS answers a
 * repeat of a swap it made with the same 200, so whether the first one
 * arrived does not matter. Once more only: the caller holds the volume
 * locked, and each try may wait for the HTTP timeouts. A failure after the
 * last try leaves the outcome unknown (ARCA_ENET); the volume library then
 * offers the same tag again at the next commit. */
#define VOLTAG_ATTEMPTS 2

static int volume_name_ok(const char *v)
{
	return arca_name_valid(v) && strchr(v, '/') == NULL && strcmp(v, ".") != 0 && strcmp(v, "..") != 0;
}

int arca_cas_volume_tag(struct arca_http *h, const char *session, const char *volume,
			const struct arca_msg_voltag *m, struct arca_errbuf *e)
{
	struct arca_buf body, resp;
	char path[2 * ARCA_NAME_MAX + 32], hex[65], want[80], code[64] = "", detail[256] = "";
	int status = 0, rc, n;

	if (h == NULL || m == NULL || session == NULL || volume == NULL)
		return arca_errf(e, ARCA_EINVAL, "volume tag: missing argument");
	if (!arca_name_valid(session) || !volume_name_ok(volume))
		return arca_errf(e, ARCA_EINVAL, "volume tag: the session or volume name is not a name arca accepts "
						 "([A-Za-z0-9_.~/-], no '/' in a volume name)");
	n = snprintf(path, sizeof path, "/v1/volumes/%s/%s/tag", session, volume);
	if (n < 0 || (size_t)n >= sizeof path)
		return arca_errf(e, ARCA_EINVAL, "volume tag: names too long");
	/* The body holds the token: a secret buffer, wiped when freed. */
	arca_buf_init(&body, 4096, 1);
	arca_buf_init(&resp, VOLTAG_RESP_MAX, 0);
	rc = arca_msg_voltag_encode(m, &body);
	if (rc < 0) {
		rc = arca_errf(e, ARCA_EINVAL, "volume tag: cannot encode the request (%s)", arca_strerror(rc));
		goto out;
	}
	for (int attempt = 1;; attempt++) {
		rc = arca_http_request(h, "POST", path, body.p, body.len, &status, &resp, e);
		if (rc == 0 || (rc != ARCA_ENET && rc != ARCA_ETIMEOUT) || attempt == VOLTAG_ATTEMPTS)
			break;
		/* The connection is dropped; the next request makes a new one. */
		arca_buf_reset(&resp);
	}
	if (rc < 0) {
		if (e != NULL)
			wrapf(e, ARCA_ENET, "recording the tag of volume %s of session %s at CAS failed", volume,
			      session);
		rc = ARCA_ENET;
		goto out;
	}
	if (status == 200) {
		/* CAS answers exactly {"tag":"<the tag stored>"}. */
		arca_hex_encode(m->tag, 32, hex);
		n = snprintf(want, sizeof want, "{\"tag\":\"%s\"}", hex);
		if (n > 0 && resp.len == (size_t)n && memcmp(resp.p, want, (size_t)n) == 0) {
			rc = 0;
		} else {
			rc = arca_errf(e, ARCA_ENET,
				       "CAS answered the tag of volume %s of session %s with 200 but not with the tag "
				       "sent; the tag is not known to be stored",
				       volume, session);
		}
		goto out;
	}
	if (arca_msg_error_decode(resp.p, resp.len, code, detail) < 0) {
		rc = arca_errf(e, ARCA_ENET, "CAS answered HTTP %d to the tag of volume %s of session %s without an "
					     "error code",
			       status, volume, session);
		goto out;
	}
	if (status == 409 && strcmp(code, "volume_rollback") == 0)
		rc = arca_errf(e, ARCA_ESTALE,
			       "CAS refused the tag of volume %s of session %s as a rollback: the tag it holds is not "
			       "the previous one, so the volume was restored from an older copy or changed outside arca "
			       "(CAS has recorded it in its audit log)",
			       volume, session);
	else if (status == 403)
		rc = arca_errf(e, ARCA_EDENIED, "CAS refused to record the tag of volume %s of session %s: %s (%s)", volume,
			       session, detail, code);
	else
		rc = arca_errf(e, ARCA_ENET, "CAS answered HTTP %d to the tag of volume %s of session %s: %s (%s)",
			       status, volume, session, detail, code);
out:
	arca_buf_free(&body);
	arca_buf_free(&resp);
	return rc;
}
