/* attest.c: POST /v1/attest/nonce and POST /v1/attest.
 *
 * The checks run in the order docs/CONTRACTS.md fixes, and the nonce is
 * consumed by any attempt that names it, so a refused attempt cannot be
 * retried with the same evidence. Callers are unauthenticated: a refusal
 * tells them the code and its fixed sentence only, while the audit log
 * and stderr get the precise reason (what was seen against what was
 * expected). A configuration is released only after its grant is on disk
 * in the audit log.
 *
 * Sim evidence without ARCA_SIM_FLAG_PTRACE_PROTECTED comes from a host
 * where another process of the same user could have changed the program
 * before its shield protected it (no Yama, or ptrace_scope 0). Whether that
 * is acceptable is the session owner's decision: such evidence is refused
 * (platform_unprotected) unless the session tolerates no-ptrace-protection,
 * and a grant that relied on the toleration says so in its audit record.
 * Evidence without ARCA_SIM_FLAG_SECRET_MEMORY (ARCA_HW_FLAG_SECRET_MEMORY
 * for hardware) comes from a program that had no memfd_secret memory on
 * its host when it attested (an old kernel, secretmem.enable=0, a
 * locked-memory limit too low): root there could read its heap and every
 * secret CAS sends it. That too is refused (platform_unprotected) unless
 * the session tolerates no-secret-memory, and recorded when tolerated.
 *
 * Hardware evidence ("platform": "sev-snp" or "tdx", the envelope of
 * include/arca/evidence_hw.h from an arca-las in a confidential VM) takes
 * the place of the signature and las-trust checks: the envelope parses,
 * its hardware report's report data is the envelope's binding (checked
 * first: cheap, and its verdict does not depend on certificate dates), and
 * the report verifies to the vendor's pinned root at the time of the
 * request. No LAS key is trusted for it: what vouches for the arca-las in
 * the VM is the service's constraint on the VM's launch measurement. The
 * rest is as for sim: report data, session and service, the service lists
 * the platform, then its platform constraints (platform_not_allowed, the
 * audit reason names the field), measurement, ptrace protection.
 *
 * Volumes (docs/VOLUMES.md "Freshness"). A service that mounts protected
 * volumes gets, for each, its key, the tag it must have and a fresh token
 * that lets this instance record new tags (volumes.c). That stores
 * something at every grant (the token's hash; a data volume's key the
 * first time), so such a service is evaluated again inside one durable
 * write transaction, which commits before the configuration leaves: a
 * released key or token is always one CAS still holds after a crash. A
 * grant that created a data volume's key appends its audit record inside
 * that transaction (as session changes do), so that no key exists without
 * the record of its creation; other grants go through the group commit. */
#include "cas.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/policy.h"
#include "arca/proto.h"
#include "secrets.h"

void cas_handle_nonce(struct cas_req *r)
{
	struct cas *c = r->w->cas;
	struct arca_msg_nonce m;
	struct arca_buf b;
	int rc;

	memset(&m, 0, sizeof m);
	/* The protocol cannot say 0; --nonce-ttl 0 (for tests) still makes
	 * the nonce expire at once, whatever the reply says. */
	m.expires_in = c->cfg.nonce_ttl > 0 ? c->cfg.nonce_ttl : 1;
	arca_buf_init(&b, 4096, 0);
	rc = arca_random(m.nonce, sizeof m.nonce);
	if (rc == 0)
		rc = cas_store_nonce_add(r->w->store, m.nonce, cas_now_ms() + (int64_t)c->cfg.nonce_ttl * 1000);
	if (rc == 0)
		rc = arca_msg_nonce_encode(&m, &b);
	if (rc < 0) {
		cas_log("error", "cannot issue a nonce: %s", arca_strerror(rc));
		cas_fail(r, CAS_INTERNAL, NULL);
	} else {
		cas_reply(r, 200, "application/json", b.p, b.len);
	}
	arca_buf_free(&b);
}

/* What one attestation has established so far, for the audit record. */
struct attempt {
	struct arca_msg_attest m;
	int decoded;
	/* sim evidence, or what hardware evidence says in the same terms
	 * (pid, uid, measurement, report data, the ptrace flag) */
	struct arca_sim_evidence ev;
	int verified;
	uint32_t hw;                /* 0: sim; else ARCA_HW_PLATFORM_* */
	struct arca_hw_facts facts; /* hardware evidence, once verified */
	json_t *hw_fields;          /* its report's fields, for the audit record */
	unsigned tolerated; /* bit i: granted although the evidence lacks protections[i] */
	char las[ARCA_FPR_LEN];
	int in_write;       /* evaluated in a write transaction, still open */
	json_t *created;    /* names of data volumes whose key this grant made */
};

#define TOLERATE_PTRACE "no-ptrace-protection"
#define TOLERATE_SECRET "no-secret-memory"

/* What the evidence must say of the host and the program, and the
 * session's word that accepts its absence; bit i of attempt.tolerated is
 * protections[i]. A hardware envelope's flags are translated to these
 * sim flags when it is verified. */
static const struct protection {
	uint32_t flag;
	const char *word;
	const char *lacking; /* completes "the evidence from LAS X ..." */
} protections[] = {
	{ARCA_SIM_FLAG_PTRACE_PROTECTED, TOLERATE_PTRACE,
	 "is not ptrace-protected (kernel.yama.ptrace_scope missing or 0 on that host, or the program was not "
	 "started through arca run)"},
	{ARCA_SIM_FLAG_SECRET_MEMORY, TOLERATE_SECRET,
	 "says the program has no secret memory on that host (memfd_secret unavailable: root could read its "
	 "memory)"},
};
#define TOLERATED_PTRACE 1u
#define TOLERATED_SECRET 2u

static int tolerates(const struct arca_policy *p, const char *word)
{
	for (size_t i = 0; i < p->ntolerate; i++)
		if (strcmp(p->tolerate[i], word) == 0)
			return 1;
	return 0;
}

/* granted: only a grant lists what it tolerated; a refusal that came
 * after one toleration was used did not rely on it. */
static json_t *attempt_extra(const struct attempt *a, int granted)
{
	json_t *o = json_object();
	char digest[ARCA_DIGEST_STR_LEN];

	if (!o)
		return NULL;
	if (a->decoded)
		json_object_set_new(o, "platform", json_string(a->m.platform));
	if (a->verified) {
		arca_digest_format(a->ev.measurement, digest);
		if (!a->hw)
			json_object_set_new(o, "las", json_string(a->las));
		else if (a->hw_fields)
			json_object_set(o, "hardware", a->hw_fields);
		json_object_set_new(o, "measurement", json_string(digest));
		json_object_set_new(o, "pid", json_integer(a->ev.pid));
		json_object_set_new(o, "uid", json_integer(a->ev.uid));
	}
	if (granted && a->tolerated) {
		json_t *t = json_array();
		for (size_t i = 0; t && i < sizeof protections / sizeof protections[0]; i++)
			if (a->tolerated & (1u << i))
				json_array_append_new(t, json_string(protections[i].word));
		json_object_set_new(o, "tolerated", t);
	}
	if (granted && a->created && json_array_size(a->created) > 0)
		json_object_set(o, "volumes_created", a->created);
	return o;
}

static void fill_event(struct cas_req *r, const struct attempt *a, struct cas_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->session = a->decoded && arca_name_valid(a->m.session) ? a->m.session : NULL;
	ev->service = a->decoded && arca_name_valid(a->m.service) ? a->m.service : NULL;
	ev->caller = r->has_caller ? r->caller : NULL;
	ev->peer = r->peer;
}

static void refuse(struct cas_req *r, const struct attempt *a, enum cas_code code, const char *fmt, ...)
	ARCA_PRINTF(4, 5);

/* The refusal goes out once its record is written (or could not be). The
 * caller is not authenticated: the body is the code's fixed sentence. */
static void refuse(struct cas_req *r, const struct attempt *a, enum cas_code code, const char *fmt, ...)
{
	struct cas_event ev;
	struct arca_buf body;
	char reason[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	cas_log("info", "attestation refused (%s): %s", cas_code_name(code), reason);
	fill_event(r, a, &ev);
	ev.event = "attest_refused";
	ev.error = cas_code_name(code);
	ev.reason = reason;
	ev.extra = attempt_extra(a, 0);
	arca_buf_init(&body, 4096, 0);
	if (cas_error_body(code, 0, NULL, &body) < 0)
		arca_buf_reset(&body);
	cas_event_then_reply(r, &ev, 0, (int)code, cas_code_status(code), body.p, body.len);
	arca_buf_free(&body);
	json_decref(ev.extra);
}

/* Fingerprinting a key goes through OpenSSL's encoder and was a tenth of
 * an attestation; the few LAS keys a CAS sees are remembered per worker. */
static int las_fpr(struct cas_worker *w, const uint8_t pub[32], char out[ARCA_FPR_LEN])
{
	unsigned i;

	for (i = 0; i < sizeof w->las_fpr / sizeof w->las_fpr[0]; i++) {
		if (w->las_fpr[i].valid && memcmp(w->las_fpr[i].pub, pub, 32) == 0) {
			memcpy(out, w->las_fpr[i].fpr, ARCA_FPR_LEN);
			return 0;
		}
	}
	GUARD(arca_fpr_ed25519(pub, out));
	i = w->las_fpr_next++ % (sizeof w->las_fpr / sizeof w->las_fpr[0]);
	memcpy(w->las_fpr[i].pub, pub, 32);
	memcpy(w->las_fpr[i].fpr, out, ARCA_FPR_LEN);
	w->las_fpr[i].valid = 1;
	return 0;
}

/* The key of code volume d: its secret's bytes, exactly 32 of them. */
static int code_volume_key(struct cas_render *rr, const struct arca_volume_def *d, uint8_t key[32],
			   struct arca_errbuf *e)
{
	struct arca_buf b;
	int rc;

	arca_buf_init(&b, 4096, 1);
	rc = cas_render_lookup(rr, d->key, NULL, &b);
	if (rc < 0)
		rc = arca_errf(e, rc, "volume %s: its key, secret %s, cannot be loaded (%s)", d->name, d->key,
			       arca_strerror(rc));
	else if (b.len != ARCA_VOLUME_KEY_BYTES)
		rc = arca_errf(e, ARCA_EINVAL, "volume %s: its key, secret %s, has %zu bytes instead of %d", d->name,
			       d->key, b.len, ARCA_VOLUME_KEY_BYTES);
	else
		memcpy(key, b.p, ARCA_VOLUME_KEY_BYTES);
	arca_buf_free(&b);
	return rc;
}

/* Every volume svc mounts, into cfg: key, tag, read-only flag and a fresh
 * token whose hash is kept for (session, volume). Runs in the caller's
 * write transaction; names of data volumes given their key now are added
 * to created. */
static int render_volumes(struct cas_render *rr, const struct arca_service *svc, struct arca_config *cfg,
			  json_t *created, struct arca_errbuf *e)
{
	struct cas_volume_rec rec;
	uint8_t id[32];
	int rc = 0;

	if (svc->nvolumes == 0)
		return 0;
	cfg->volumes = calloc(svc->nvolumes, sizeof *cfg->volumes);
	ENSURE(cfg->volumes, ARCA_ENOMEM);
	for (size_t i = 0; i < svc->nvolumes; i++) {
		const struct arca_volume_ref *ref = &svc->volumes[i];
		const struct arca_volume_def *d = arca_policy_volume(rr->policy, ref->name);
		struct arca_config_volume *cv = &cfg->volumes[cfg->nvolumes];

		ENSURE_GOTO(d && strlen(ref->name) < sizeof cv->name && strlen(ref->path) < sizeof cv->path,
			    arca_errf(e, ARCA_EINVAL, "volume %s of service %s is not declared in the policy", ref->name,
				      svc->name),
			    out);
		cfg->nvolumes++;
		memcpy(cv->name, ref->name, strlen(ref->name) + 1);
		memcpy(cv->path, ref->path, strlen(ref->path) + 1);
		cv->mode = d->authenticated ? 2 : 1;
		if (arca_volume_is_code(d)) {
			GUARD_GOTO(code_volume_key(rr, d, cv->key, e), out);
			cv->has_tag = 1;
			memcpy(cv->tag, d->tag, 32);
			cv->readonly = 1;
		} else {
			rc = cas_store_volume_get(rr->store, rr->session, d->name, &rec);
			if (rc == ARCA_ENOTFOUND) {
				/* First use: the key is made here, once, and kept
				 * across session updates. */
				memset(&rec, 0, sizeof rec);
				rc = arca_random(rec.key, sizeof rec.key);
				if (rc == 0)
					rc = cas_store_volume_put(rr->store, rr->session, d->name, &rec);
				if (rc == 0 && json_array_append_new(created, json_string(d->name)) != 0)
					rc = ARCA_ENOMEM;
			}
			if (rc == 0) {
				memcpy(cv->key, rec.key, 32);
				cv->has_tag = rec.has_tag;
				memcpy(cv->tag, rec.tag, 32);
			}
			cas_volume_rec_wipe(&rec);
			if (rc < 0) {
				rc = arca_errf(e, rc, "volume %s: its stored key cannot be read or made (%s)", d->name,
					       arca_strerror(rc));
				goto out;
			}
		}
		rc = arca_random(cv->token, sizeof cv->token);
		if (rc == 0)
			rc = arca_sha256(cv->token, sizeof cv->token, id);
		if (rc == 0)
			rc = cas_store_volume_token_add(rr->store, rr->session, d->name, id, cas_now_ms(),
							CAS_VOLUME_TOKENS_MAX);
		if (rc < 0) {
			rc = arca_errf(e, rc, "volume %s: cannot store this instance's token (%s)", d->name,
				       arca_strerror(rc));
			goto out;
		}
	}
	rc = 0;
out:
	arca_wipe(id, sizeof id);
	return rc;
}

/* argv, environment, files and volumes of svc with every placeholder
 * rendered, as the JSON of struct arca_config in a secret buffer. */
static int render(struct cas_render *rr, const struct arca_service *svc, json_t *created, struct arca_buf *out,
		  struct arca_errbuf *e)
{
	struct arca_config *cfg = calloc(1, sizeof *cfg);
	struct arca_buf b;
	int rc = 0;

	ENSURE(cfg, ARCA_ENOMEM);
	arca_buf_init(&b, ARCA_MAX_CONFIG, 1);
	cfg->argv = calloc(svc->ncommand + 1, sizeof *cfg->argv);
	cfg->env = calloc(svc->nenv + 1, sizeof *cfg->env);
	cfg->files = calloc(svc->nfiles + 1, sizeof *cfg->files);
	ENSURE_GOTO(cfg->argv && cfg->env && cfg->files, ARCA_ENOMEM, out);
	for (size_t i = 0; i < svc->ncommand; i++) {
		arca_buf_reset(&b);
		GUARD_GOTO(arca_subst(svc->command[i], strlen(svc->command[i]), cas_render_lookup, rr, &b, e), out);
		GUARD_GOTO(arca_buf_append(&b, "", 1), out); /* never empty, so steal gives memory */
		ENSURE_GOTO(strlen((char *)b.p) == b.len - 1,
			    arca_errf(e, ARCA_EINVAL, "argument %zu renders a NUL byte; use :hex or :base64", i), out);
		cfg->argv[cfg->argc++] = (char *)arca_buf_steal(&b, NULL);
	}
	for (size_t i = 0; i < svc->nenv; i++) {
		arca_buf_reset(&b);
		GUARD_GOTO(arca_buf_appends(&b, svc->env[i].key), out);
		GUARD_GOTO(arca_buf_append(&b, "=", 1), out);
		GUARD_GOTO(arca_subst(svc->env[i].value, strlen(svc->env[i].value), cas_render_lookup, rr, &b, e), out);
		ENSURE_GOTO(strlen((char *)b.p) == b.len,
			    arca_errf(e, ARCA_EINVAL, "variable %s renders a NUL byte; use :hex or :base64",
				      svc->env[i].key),
			    out);
		cfg->env[cfg->nenv++] = (char *)arca_buf_steal(&b, NULL);
	}
	for (size_t i = 0; i < svc->nfiles; i++) {
		struct arca_file_entry *f = &cfg->files[cfg->nfiles];
		arca_buf_reset(&b);
		GUARD_GOTO(arca_subst(svc->files[i].value, strlen(svc->files[i].value), cas_render_lookup, rr, &b, e),
			   out);
		f->path = strdup(svc->files[i].key);
		ENSURE_GOTO(f->path, ARCA_ENOMEM, out);
		f->len = b.len;
		f->data = b.len ? arca_buf_steal(&b, NULL) : NULL;
		cfg->nfiles++;
	}
	GUARD_GOTO(render_volumes(rr, svc, cfg, created, e), out);
	rc = arca_config_encode(cfg, out);
	if (rc < 0)
		rc = arca_errf(e, rc, "the configuration cannot be encoded (%s)", arca_strerror(rc));
out:
	arca_buf_free(&b);
	arca_config_free(cfg);
	return rc;
}

/* evaluate's answers besides a refusal code. */
#define EVAL_GRANTED (-1)
#define EVAL_NEED_WRITE (-2)

/* Loads the session, finds the service and checks platform and
 * measurement; on success seals the rendered configuration into *box.
 * Returns the refusal code, EVAL_GRANTED, or (with write 0) EVAL_NEED_WRITE
 * when the service mounts volumes: then the caller evaluates again with
 * write 1, in a durable write transaction that stays open on EVAL_GRANTED
 * (a->in_write) for the caller to commit. */
static int evaluate(struct cas_req *r, struct attempt *a, int write, struct arca_buf *box, char *why, size_t cap)
{
	struct cas_store *s = r->w->store;
	struct cas_session_rec rec;
	struct arca_diags *ds = NULL;
	const struct arca_policy *p = NULL;
	const struct arca_service *svc;
	struct cas_render rr;
	struct arca_errbuf e = {{0}};
	struct arca_buf cfg;
	char seen[ARCA_DIGEST_STR_LEN], want[ARCA_DIGEST_STR_LEN];
	int code = -1, rc;

	cas_session_rec_init(&rec);
	arca_buf_init(&cfg, ARCA_MAX_CONFIG, 1);
	cas_render_init(&rr, s, a->m.session, NULL);
	/* One snapshot: the policy and the secrets it renders belong to
	 * the same version even when an update commits meanwhile. */
	if ((write ? cas_store_begin_write(s, 1) : cas_store_begin_read(s)) < 0) {
		snprintf(why, cap, "store unavailable");
		code = CAS_INTERNAL;
		goto out;
	}
	rc = cas_store_session_get(s, a->m.session, &rec);
	if (rc == ARCA_ENOTFOUND) {
		snprintf(why, cap, "no such session '%s'", a->m.session);
		code = CAS_UNKNOWN_SERVICE;
		goto out;
	}
	if (rc < 0) {
		snprintf(why, cap, "stored session '%s' does not open (%s)", a->m.session, arca_strerror(rc));
		code = CAS_INTERNAL;
		goto out;
	}
	p = cas_policy_cache_get(&r->w->policies, a->m.session, rec.hash);
	if (!p) {
		struct arca_policy *parsed = NULL;
		ds = calloc(1, sizeof *ds);
		if (ds)
			arca_diags_init(ds, "<session>");
		if (!ds || arca_policy_parse((const char *)rec.yaml.p, rec.yaml.len, ds, &parsed) < 0 || !parsed) {
			snprintf(why, cap, "stored policy of session '%s' no longer parses", a->m.session);
			code = CAS_INTERNAL;
			goto out;
		}
		cas_policy_cache_put(&r->w->policies, a->m.session, rec.hash, parsed);
		p = parsed;
	}
	svc = arca_policy_service(p, a->m.service);
	if (!svc) {
		snprintf(why, cap, "no such service '%s' in session '%s'", a->m.service, a->m.session);
		code = CAS_UNKNOWN_SERVICE;
		goto out;
	}
	if (!a->hw && !svc->platform_sim) {
		snprintf(why, cap, "service '%s' does not list sim under platform", a->m.service);
		code = CAS_PLATFORM_NOT_ALLOWED;
		goto out;
	}
	if (a->hw) {
		if (!arca_hw_platform_listed(&a->facts, svc)) {
			snprintf(why, cap, "service '%s' does not list %s under platform", a->m.service,
				 arca_hw_platform_name(a->hw));
			code = CAS_PLATFORM_NOT_ALLOWED;
			goto out;
		}
		if (arca_hw_check_constraints(&a->facts, svc, &e) < 0) {
			snprintf(why, cap, "service '%s': %s constraint not met: %.400s", a->m.service,
				 arca_hw_platform_name(a->hw), e.msg);
			code = CAS_PLATFORM_NOT_ALLOWED;
			goto out;
		}
	}
	arca_digest_format(a->ev.measurement, seen);
	if (!svc->has_measurement) {
		snprintf(why, cap, "measurement %s seen, but service '%s' names no measurement", seen, a->m.service);
		code = CAS_MEASUREMENT_MISMATCH;
		goto out;
	}
	if (!arca_ct_eq(svc->measurement, a->ev.measurement, 32)) {
		arca_digest_format(svc->measurement, want);
		snprintf(why, cap, "measurement %s seen, service '%s' expects %s", seen, a->m.service, want);
		code = CAS_MEASUREMENT_MISMATCH;
		goto out;
	}
	for (size_t i = 0; i < sizeof protections / sizeof protections[0]; i++) {
		if (a->ev.flags & protections[i].flag)
			continue;
		if (!tolerates(p, protections[i].word)) {
			snprintf(why, cap, "the evidence from %s%s %s, and session '%s' does not tolerate %s",
				 a->hw ? "the arca-las in the confidential VM" : "LAS ", a->hw ? "" : a->las,
				 protections[i].lacking, a->m.session, protections[i].word);
			code = CAS_PLATFORM_UNPROTECTED;
			goto out;
		}
		a->tolerated |= 1u << i;
	}
	if (!write && svc->nvolumes > 0) {
		code = EVAL_NEED_WRITE;
		goto out;
	}
	rr.policy = p;
	rc = render(&rr, svc, a->created, &cfg, &e);
	if (!write)
		cas_store_rollback(s);
	if (rc < 0) {
		snprintf(why, cap, "rendering the configuration failed: %s", e.msg[0] ? e.msg : arca_strerror(rc));
		code = CAS_INTERNAL;
		goto out;
	}
	rc = arca_box_seal(a->m.pubkey, "arca/v1/config", cfg.p, cfg.len, box);
	if (rc < 0) {
		snprintf(why, cap, "sealing the configuration failed (%s)", arca_strerror(rc));
		code = CAS_INTERNAL;
	}
	if (write && code == -1) {
		a->in_write = 1;
		goto keep;
	}
out:
	cas_store_rollback(s);
keep:
	cas_render_free(&rr);
	arca_buf_free(&cfg);
	free(ds);
	cas_session_rec_free(&rec);
	return code;
}

/* Hardware evidence up to its report (see the top of this file); on
 * success a->ev says what it says in sim evidence's terms. Refuses (and
 * returns -1) otherwise. */
static int verify_hw(struct cas_req *r, struct attempt *a)
{
	struct arca_hw_result res;
	struct arca_errbuf e = {{0}};
	enum arca_hw_failure failed = ARCA_HW_OK;
	const char *sent = arca_evidence_platform(a->m.evidence, a->m.evidence_len);

	if (!sent || strcmp(sent, a->m.platform) != 0) {
		refuse(r, a, CAS_EVIDENCE_INVALID, "the request says platform '%s' but the evidence is %s",
		       a->m.platform, sent ? sent : "of no kind arca knows");
		return -1;
	}
	arca_hw_result_init(&res);
	int rc = arca_hw_evidence_verify(a->m.evidence, a->m.evidence_len, time(NULL), NULL, NULL, &a->facts,
					 &failed, &res, &e);
	if (res.fields)
		a->hw_fields = json_incref(res.fields);
	arca_hw_result_free(&res);
	if (rc < 0) {
		refuse(r, a, failed == ARCA_HW_BAD_BINDING ? CAS_BINDING_MISMATCH : CAS_EVIDENCE_INVALID, "%s",
		       e.msg[0] ? e.msg : arca_strerror(rc));
		return -1;
	}
	memset(&a->ev, 0, sizeof a->ev);
	a->ev.timestamp = a->facts.timestamp;
	a->ev.pid = a->facts.pid;
	a->ev.uid = a->facts.uid;
	a->ev.flags = ((a->facts.flags & ARCA_HW_FLAG_PTRACE_PROTECTED) ? ARCA_SIM_FLAG_PTRACE_PROTECTED : 0) |
		      ((a->facts.flags & ARCA_HW_FLAG_SECRET_MEMORY) ? ARCA_SIM_FLAG_SECRET_MEMORY : 0);
	memcpy(a->ev.measurement, a->facts.measurement, 32);
	memcpy(a->ev.report_data, a->facts.report_data, 64);
	a->verified = 1;
	return 0;
}

void cas_handle_attest(struct cas_req *r)
{
	struct cas *c = r->w->cas;
	struct attempt a;
	struct arca_errbuf e = {{0}};
	struct arca_buf box, reply;
	struct cas_event ev;
	const uint8_t *body;
	uint8_t rd[64];
	char why[600];
	size_t n;
	int rc, code;

	memset(&a, 0, sizeof a);
	arca_buf_init(&box, ARCA_MAX_CONFIG + 4096, 0);
	arca_buf_init(&reply, 2 * ARCA_MAX_CONFIG, 0);
	rc = cas_body(r, &body, &n);
	if (rc < 0) {
		refuse(r, &a, rc == ARCA_ETOOBIG ? CAS_TOO_LARGE : CAS_INTERNAL, "request body unreadable (%s)",
		       arca_strerror(rc));
		goto out;
	}
	if (arca_msg_attest_decode(body, n, &a.m, &e) < 0) {
		refuse(r, &a, CAS_BAD_REQUEST, "body: %s", e.msg);
		goto out;
	}
	a.decoded = 1;

	rc = cas_store_nonce_take(r->w->store, a.m.nonce, cas_now_ms());
	if (rc == ARCA_ENOTFOUND) {
		refuse(r, &a, CAS_NONCE_INVALID, "nonce unknown or already used");
		goto out;
	}
	if (rc == ARCA_ETIMEOUT) {
		refuse(r, &a, CAS_NONCE_EXPIRED, "nonce expired (time to live %d s)", c->cfg.nonce_ttl);
		goto out;
	}
	if (rc < 0) {
		refuse(r, &a, CAS_INTERNAL, "nonce store failed (%s)", arca_strerror(rc));
		goto out;
	}

	a.hw = arca_hw_platform_parse(a.m.platform);
	if (a.hw) {
		if (verify_hw(r, &a) < 0)
			goto out;
	} else if (strcmp(a.m.platform, "sim") != 0) {
		refuse(r, &a, CAS_EVIDENCE_INVALID, "evidence of platform '%s' cannot be verified by this CAS",
		       a.m.platform);
		goto out;
	} else {
		if (arca_sim_evidence_verify(a.m.evidence, a.m.evidence_len, &a.ev, &e) < 0) {
			refuse(r, &a, CAS_EVIDENCE_INVALID, "%s", e.msg);
			goto out;
		}
		if (las_fpr(r->w, a.ev.las_pub, a.las) < 0) {
			refuse(r, &a, CAS_INTERNAL, "cannot fingerprint the LAS key");
			goto out;
		}
		a.verified = 1;

		rc = cas_trust_has(&c->trust, a.las);
		if (rc <= 0) {
			refuse(r, &a, CAS_PLATFORM_UNTRUSTED,
			       rc < 0 ? "LAS key %s not trusted: %s/las-trust cannot be read"
				      : "LAS key %s is not trusted (not in %s/las-trust)",
			       a.las, c->cfg.state_dir);
			goto out;
		}
	}

	if (arca_report_data(a.m.nonce, a.m.pubkey, a.m.session, a.m.service, rd) < 0) {
		refuse(r, &a, CAS_INTERNAL, "cannot compute the report data");
		goto out;
	}
	if (!arca_ct_eq(rd, a.ev.report_data, 64)) {
		refuse(r, &a, CAS_BINDING_MISMATCH,
		       "report data does not bind this nonce, key and %s/%s", a.m.session, a.m.service);
		goto out;
	}

	a.created = json_array();
	if (!a.created) {
		refuse(r, &a, CAS_INTERNAL, "out of memory");
		goto out;
	}
	code = evaluate(r, &a, 0, &box, why, sizeof why);
	if (code == EVAL_NEED_WRITE)
		code = evaluate(r, &a, 1, &box, why, sizeof why);
	if (code >= 0) {
		refuse(r, &a, (enum cas_code)code, "%s", why);
		goto out;
	}
	if (arca_msg_sealed_encode(box.p, box.len, &reply) < 0) {
		if (a.in_write)
			cas_store_rollback(r->w->store);
		refuse(r, &a, CAS_INTERNAL, "cannot encode the reply");
		goto out;
	}
	fill_event(r, &a, &ev);
	ev.event = "attest_granted";
	ev.reason = a.tolerated == (TOLERATED_PTRACE | TOLERATED_SECRET)
			    ? "evidence verified and measurement matches; the host's missing ptrace protection and "
			      "the program's missing secret memory are tolerated by the session"
		    : a.tolerated == TOLERATED_PTRACE ? "evidence verified and measurement matches; the host's missing ptrace "
					   "protection is tolerated by the session"
		    : a.tolerated == TOLERATED_SECRET ? "evidence verified and measurement matches; the program's missing secret "
					   "memory is tolerated by the session"
					 : "evidence verified and measurement matches";
	ev.extra = attempt_extra(&a, 1);
	if (a.in_write && json_array_size(a.created) > 0) {
		/* A key was made: its record is written inside the transaction
		 * that stores it (see the top of this file). */
		rc = ev.extra ? cas_event(&c->events, r->w->store, &ev) : ARCA_ENOMEM;
		if (rc < 0) {
			cas_store_rollback(r->w->store);
			json_decref(ev.extra);
			refuse(r, &a, CAS_INTERNAL,
			       "the grant that makes a volume key could not be recorded in the audit log and the store; "
			       "no key was kept and no configuration was released");
			goto out;
		}
		rc = cas_store_commit(r->w->store);
		json_decref(ev.extra);
		if (rc < 0) {
			refuse(r, &a, CAS_INTERNAL,
			       "store commit failed (%s); the grant recorded above was not made and no configuration was "
			       "released",
			       arca_strerror(rc));
			goto out;
		}
		cas_metrics_count_attest(&c->metrics, 1, CAS_INTERNAL);
		cas_reply(r, 200, "application/json", reply.p, reply.len);
		goto out;
	}
	if (a.in_write && (rc = cas_store_commit(r->w->store)) < 0) {
		json_decref(ev.extra);
		refuse(r, &a, CAS_INTERNAL, "store commit of the volume tokens failed (%s)", arca_strerror(rc));
		goto out;
	}
	/* grant = 1: the configuration leaves only once the grant is on disk. */
	cas_event_then_reply(r, &ev, 1, CAS_METRIC_GRANT, 200, reply.p, reply.len);
	json_decref(ev.extra);
out:
	arca_wipe(rd, sizeof rd);
	if (a.decoded)
		arca_msg_attest_free(&a.m);
	json_decref(a.hw_fields);
	json_decref(a.created);
	arca_buf_free(&box);
	arca_buf_free(&reply);
}
