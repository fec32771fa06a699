/* attest.c: the attestation of CONTRACTS.md, run by the shield before main.
 *
 * Every failure ends in shield_refuse with a sentence a person can act on;
 * CAS's error codes are translated here because the CAS detail sent to an
 * unauthenticated caller (which the shield is) is deliberately generic.
 * The exchange itself is lib/attest_client.c: the ephemeral X25519 private
 * key and the decrypted configuration text exist only in mlocked memory
 * (arca_secret_alloc; memfd_secret comes with the memory shield) and are
 * wiped before it returns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shield.h"
#include "memory.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/evidence.h"
#include "arca/attest_client.h"
#include "arca/http.h"
#include "arca/proto.h"


__attribute__((noreturn)) static void fail(const char *fmt, ...) ARCA_PRINTF(1, 2);
static void fail(const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = 0;
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

/* Whether this host lacks Yama's ptrace protection (the other cause of
 * platform_unprotected), as arca-las reads it. */
static int yama_missing(void)
{
	char buf[8];
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (f == NULL)
		return 1;
	int ok = fgets(buf, sizeof buf, f) != NULL && buf[0] >= '1' && buf[0] <= '3';
	fclose(f);
	return !ok;
}

/* platform_unprotected while this process has no secret memory: CAS's
 * sentence covers two causes, and only we know that ours is this one
 * (and why memfd_secret failed here). CAS checks ptrace protection first,
 * and we do not know what the session tolerates, so a host that lacks
 * both hears of both. */
__attribute__((noreturn)) static void refuse_no_secret_memory(const struct shield_env *env,
							       const struct shield_mem_status *ms)
{
	/* The code first and the rest short: shield_refuse's line has room
	 * for about 600 bytes, and the reason may take 320 of them. */
	fail("CAS refused the attestation (platform_unprotected): no secret memory (memfd_secret) for this program, "
	     "so root could read its memory: %s; fix that, or add `tolerate: [no-secret-memory]` to session %s%s",
	     ms->reason[0] ? ms->reason : "memfd_secret is unavailable", env->session,
	     yama_missing() ? "; no Yama ptrace protection either: set kernel.yama.ptrace_scope to 1 or tolerate "
			      "no-ptrace-protection"
			    : "");
}

/* Evidence from the arca-las that started us, over the channel it gave
 * us; it measures this process now. One request per launch: the channel
 * is closed whatever the answer. */
static int las_evidence(void *ctx, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
			struct arca_errbuf *e)
{
	const struct shield_env *env = ctx;
	return arca_las_request_fd(env->las_fd, report_data, ev, evlen, e);
}

struct arca_config *shield_attest(const struct shield_env *env)
{
	struct arca_errbuf e = {{0}};
	struct arca_attest_outcome o;
	struct arca_config *cfg = NULL;
	struct arca_http *http = NULL;
	char why[400];

	/* TLS pinned to the CAS key arca run was given. */
	if (arca_http_connect(env->cas, env->pin, NULL, &http, &e) < 0)
		fail("cannot reach CAS at %s: %s", env->cas, e.msg);
	int rc = arca_attest_exchange(http, env->cas, env->session, env->service, las_evidence, (void *)env, &cfg,
				      &o, &e);
	arca_http_close(http);
	if (rc < 0 && strcmp(o.code, "platform_unprotected") == 0) {
		const struct shield_mem_status *ms = shield_mem_status();
		if (ms != NULL && !ms->secret)
			refuse_no_secret_memory(env, ms);
	}
	if (rc < 0 && o.code[0] != 0)
		fail("CAS refused the attestation: %s (%s)", explain(o.code, env, o.platform, why, sizeof why),
		     o.code);
	if (rc < 0)
		fail("%s", e.msg);
	return cfg;
}
