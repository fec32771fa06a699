/* attest.c: the attestation of CONTRACTS.md, run by the shield before main.
 *
 * Every failure ends in shield_refuse with a sentence a person can act on;
 * CAS's error codes are translated here because the CAS detail sent to an
 * unauthenticated caller (which the shield is) is deliberately generic.
 * The ephemeral X25519 private key and the decrypted configuration exist
 * only in mlocked memory (arca_secret_alloc; memfd_secret comes with the
 * memory shield) and are wiped before this returns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shield.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/http.h"
#include "arca/proto.h"

#define CONFIG_CONTEXT "arca/v1/config"
#define NONCE_RESP_MAX 4096
/* base64 of a box holding the largest configuration, plus JSON. */
#define SEALED_RESP_MAX ((size_t)ARCA_MAX_CONFIG * 2)

struct attest_ctx {
	const struct shield_env *env;
	struct arca_http *http;
	uint8_t *priv; /* 32 bytes, arca_secret_alloc */
	uint8_t pub[32];
	struct arca_buf resp;
	struct arca_buf box;
	struct arca_buf plain; /* secret */
	char platform[16];     /* of the evidence sent, for messages */
};

static void cleanup(struct attest_ctx *a)
{
	if (a->priv != NULL)
		arca_secret_free(a->priv, 32);
	a->priv = NULL;
	arca_buf_free(&a->resp);
	arca_buf_free(&a->box);
	arca_buf_free(&a->plain);
	if (a->http != NULL)
		arca_http_close(a->http);
	a->http = NULL;
}

__attribute__((noreturn)) static void fail(struct attest_ctx *a, const char *fmt, ...) ARCA_PRINTF(2, 3);
static void fail(struct attest_ctx *a, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = 0;
	cleanup(a);
	shield_refuse("%s", msg);
}

/* What to tell a person about a CAS refusal. */
static const char *explain(const char *code, const struct shield_env *env, const char *platform, char *buf,
			   size_t cap)
{
	const char *S = env->session, *V = env->service;
	if (strcmp(code, "measurement_mismatch") == 0)
		snprintf(buf, cap,
			 "the program's measurement does not match service %s of session %s; compare `arca measure "
			 "-- CMD` with the session's measurement",
			 V, S);
	else if (strcmp(code, "unknown_service") == 0)
		snprintf(buf, cap, "CAS knows no session %s with a service %s", S, V);
	else if (strcmp(code, "platform_not_allowed") == 0)
		snprintf(buf, cap,
			 "service %s of session %s does not accept this platform (%s evidence), or its platform "
			 "constraints are not met",
			 V, S, platform[0] ? platform : "sim");
	else if (strcmp(code, "platform_untrusted") == 0)
		snprintf(buf, cap,
			 "CAS does not trust this host's arca-las; add its fingerprint with `arca cas trust-las`");
	else if (strcmp(code, "platform_unprotected") == 0)
		snprintf(buf, cap,
			 "this host has no Yama ptrace protection (kernel.yama.ptrace_scope is missing or 0); run "
			 "`sysctl -w kernel.yama.ptrace_scope=1`, or accept the risk in session %s with "
			 "`tolerate: [no-ptrace-protection]`",
			 S);
	else if (strcmp(code, "evidence_invalid") == 0)
		snprintf(buf, cap, "CAS could not verify the evidence from arca-las");
	else if (strcmp(code, "binding_mismatch") == 0)
		snprintf(buf, cap, "the evidence does not bind this attempt's nonce, key and service");
	else if (strcmp(code, "nonce_invalid") == 0 || strcmp(code, "nonce_expired") == 0)
		snprintf(buf, cap,
			 "the attestation nonce was unknown, already used or expired; start the program again");
	else if (strcmp(code, "bad_request") == 0 || strcmp(code, "too_large") == 0)
		snprintf(buf, cap, "CAS could not read the attestation request (a version mismatch?)");
	else if (strcmp(code, "internal") == 0)
		snprintf(buf, cap, "CAS failed internally; see its log");
	else
		snprintf(buf, cap, "CAS answered with an error");
	return buf;
}

__attribute__((noreturn)) static void fail_status(struct attest_ctx *a, const char *step, int status)
{
	char code[64] = "", detail[256] = "", why[400];
	if (arca_msg_error_decode(a->resp.p, a->resp.len, code, detail) < 0)
		fail(a, "CAS at %s answered HTTP %d to %s without an error code", a->env->cas, status, step);
	fail(a, "CAS refused the attestation: %s (%s)", explain(code, a->env, a->platform, why, sizeof why), code);
}

struct arca_config *shield_attest(const struct shield_env *env)
{
	struct attest_ctx a = {.env = env};
	struct arca_errbuf e = {{0}};
	struct arca_msg_nonce nonce;
	struct arca_msg_attest req;
	struct arca_config *cfg = NULL;
	uint8_t rd[64];
	int status = 0;

	arca_buf_init(&a.resp, SEALED_RESP_MAX, 0);
	arca_buf_init(&a.box, SEALED_RESP_MAX, 0);
	arca_buf_init(&a.plain, ARCA_MAX_CONFIG, 1);

	/* 1. nonce, over TLS pinned to the CAS key. */
	if (arca_http_connect(env->cas, env->pin, NULL, &a.http, &e) < 0)
		fail(&a, "cannot reach CAS at %s: %s", env->cas, e.msg);
	a.resp.max = NONCE_RESP_MAX;
	if (arca_http_request(a.http, "POST", "/v1/attest/nonce", NULL, 0, &status, &a.resp, &e) < 0)
		fail(&a, "asking CAS at %s for a nonce failed: %s", env->cas, e.msg);
	if (status != 200)
		fail_status(&a, "the nonce request", status);
	if (arca_msg_nonce_decode(a.resp.p, a.resp.len, &nonce, &e) < 0)
		fail(&a, "CAS sent a malformed nonce: %s", e.msg);

	/* 2. ephemeral key and report data. */
	a.priv = arca_secret_alloc(32);
	if (a.priv == NULL)
		fail(&a, "cannot allocate locked memory for the attestation key");
	if (arca_x25519_keygen(a.pub, a.priv) < 0)
		fail(&a, "cannot generate the attestation key");
	if (arca_report_data(nonce.nonce, a.pub, env->session, env->service, rd) < 0)
		fail(&a, "cannot compute the report data");

	/* 3. evidence from the arca-las that started us, over the channel it
	 * gave us; it measures this process now. One request per launch:
	 * the channel is closed whatever the answer. */
	memset(&req, 0, sizeof req);
	if (arca_las_request_fd(env->las_fd, rd, &req.evidence, &req.evidence_len, &e) < 0)
		fail(&a, "%s", e.msg);

	/* 4. evidence to CAS, configuration back, sealed to our key. */
	snprintf(req.session, sizeof req.session, "%s", env->session);
	snprintf(req.service, sizeof req.service, "%s", env->service);
	/* The kind LAS sent (sim, or the hardware envelope of a confidential
	 * VM); CAS verifies it as that kind and nothing else. */
	const char *plat = arca_evidence_platform(req.evidence, req.evidence_len);
	if (plat == NULL) {
		arca_msg_attest_free(&req);
		fail(&a, "arca-las sent evidence of a kind this shield does not know");
	}
	snprintf(req.platform, sizeof req.platform, "%s", plat);
	snprintf(a.platform, sizeof a.platform, "%s", plat);
	memcpy(req.nonce, nonce.nonce, sizeof req.nonce);
	memcpy(req.pubkey, a.pub, 32);
	struct arca_buf body;
	arca_buf_init(&body, ARCA_MAX_BODY, 0);
	int rc = arca_msg_attest_encode(&req, &body);
	arca_msg_attest_free(&req);
	if (rc < 0) {
		arca_buf_free(&body);
		fail(&a, "cannot encode the attestation request");
	}
	arca_buf_reset(&a.resp);
	a.resp.max = SEALED_RESP_MAX;
	rc = arca_http_request(a.http, "POST", "/v1/attest", body.p, body.len, &status, &a.resp, &e);
	arca_buf_free(&body);
	if (rc < 0)
		fail(&a, "sending the evidence to CAS at %s failed: %s", env->cas, e.msg);
	if (status != 200)
		fail_status(&a, "the attestation", status);
	if (arca_msg_sealed_decode(a.resp.p, a.resp.len, &a.box, &e) < 0)
		fail(&a, "CAS sent a malformed configuration: %s", e.msg);
	if (arca_box_open(a.priv, a.pub, CONFIG_CONTEXT, a.box.p, a.box.len, &a.plain) < 0)
		fail(&a, "the configuration from CAS does not decrypt with this attempt's key");
	arca_secret_free(a.priv, 32);
	a.priv = NULL;
	if (arca_config_decode(a.plain.p, a.plain.len, &cfg, &e) < 0)
		fail(&a, "the configuration from CAS cannot be read: %s", e.msg);
	cleanup(&a);
	return cfg;
}
