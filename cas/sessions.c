/* sessions.c: POST /v1/sessions, PUT /v1/sessions/NAME, GET /v1/sessions/NAME.
 *
 * Who may do what (docs/CONTRACTS.md): every call needs a client
 * certificate (401 otherwise); create is open to any identity, which
 * becomes the owner unless the policy lists owners under `access`; update
 * and read need an owner of the session as it is now (403 otherwise).
 * The order of checks is chosen so that a non-owner learns nothing from the
 * body it sent: ownership is decided before any diagnostic goes back.
 *
 * Every change runs in one durable store transaction together with its
 * audit record and the log's new head: a refused or failed request leaves
 * the store as it was, and no change is committed without its record in
 * the log. */
#include "cas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/encode.h"
#include "arca/policy.h"
#include "arca/proto.h"
#include "secrets.h"

static const char *kind_name(enum arca_secret_kind k)
{
	switch (k) {
	case ARCA_SECRET_ASCII: return "ascii";
	case ARCA_SECRET_BINARY: return "binary";
	case ARCA_SECRET_PRIVATE_KEY: return "private-key";
	case ARCA_SECRET_X509: return "x509";
	}
	return "unknown";
}

static void audit_ok(struct cas_req *r, const char *event, const char *session, json_t *extra, int *ok)
{
	struct cas_event ev = {
		.event = event,
		.session = session,
		.caller = r->has_caller ? r->caller : NULL,
		.peer = r->peer,
		.extra = extra,
	};
	*ok = cas_event(&r->w->cas->events, r->w->store, &ev) == 0;
}

/* Audits and answers a refusal. session is only recorded when it is a
 * valid name, so that nothing arbitrary from an unauthenticated caller
 * reaches the log. */
static void refuse(struct cas_req *r, enum cas_code code, const char *session, const char *reason, const char *detail)
{
	struct cas_event ev = {
		.event = "session_refused",
		.session = session && arca_name_valid(session) ? session : NULL,
		.caller = r->has_caller ? r->caller : NULL,
		.peer = r->peer,
		.error = cas_code_name(code),
		.reason = reason,
	};
	json_t *ep = json_pack("{s:s}", "request", cas_endpoint_name(r->ep));
	struct arca_buf body;

	ev.extra = ep;
	cas_log("info", "%s refused (%s): %s", cas_endpoint_name(r->ep), cas_code_name(code), reason);
	arca_buf_init(&body, 64 << 10, 0);
	if (cas_error_body(code, r->has_caller, detail, &body) < 0)
		arca_buf_reset(&body);
	/* No store transaction is open here, so the record can wait for the
	 * writer thread; the refusal goes out once it is on disk. */
	cas_event_then_reply(r, &ev, 0, CAS_METRIC_NONE, cas_code_status(code), body.p, body.len);
	arca_buf_free(&body);
	json_decref(ep);
}

static void reply_name_hash(struct cas_req *r, const char *name, const uint8_t hash[32])
{
	char hex[65];
	json_t *j;
	char *s;

	arca_hex_encode(hash, 32, hex);
	j = json_pack("{s:s,s:s}", "name", name, "hash", hex);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		cas_fail(r, CAS_INTERNAL, NULL);
		return;
	}
	cas_reply(r, 200, "application/json", s, strlen(s));
	free(s);
}

/* What the body said: a policy, or why there is none. Parsing happens
 * before the store is locked, and its outcome is reported only after the
 * caller's right to act has been checked. */
struct parsed {
	struct arca_buf yaml;      /* secret */
	struct arca_policy *policy;
	enum cas_code code;        /* when policy == NULL */
	struct arca_buf detail;    /* message for the (authenticated) caller */
	char reason[300];          /* for the audit log: never policy text */
};

static void parsed_free(struct parsed *pp)
{
	arca_buf_free(&pp->yaml);
	arca_buf_free(&pp->detail);
	if (pp->policy)
		arca_policy_free(pp->policy);
	pp->policy = NULL;
}

static void parse_body(struct cas_req *r, struct parsed *pp)
{
	struct arca_errbuf e = {{0}};
	struct arca_diags *ds;
	const uint8_t *body;
	size_t n;
	int rc;

	memset(pp, 0, sizeof *pp);
	arca_buf_init(&pp->yaml, ARCA_POLICY_MAX_BYTES, 1);
	arca_buf_init(&pp->detail, 64 << 10, 0);
	rc = cas_body(r, &body, &n);
	if (rc < 0) {
		pp->code = rc == ARCA_ETOOBIG ? CAS_TOO_LARGE : CAS_INTERNAL;
		snprintf(pp->reason, sizeof pp->reason, "request body unreadable (%s)", arca_strerror(rc));
		return;
	}
	rc = arca_msg_policy_decode(body, n, &pp->yaml, &e);
	if (rc < 0) {
		pp->code = CAS_BAD_REQUEST;
		snprintf(pp->reason, sizeof pp->reason, "body is not a policy upload");
		if (arca_buf_appends(&pp->detail, e.msg[0] ? e.msg : "the body must be {\"policy\": \"<YAML>\"}") < 0)
			arca_buf_reset(&pp->detail);
		return;
	}
	ds = calloc(1, sizeof *ds);
	if (!ds) {
		pp->code = CAS_INTERNAL;
		snprintf(pp->reason, sizeof pp->reason, "out of memory");
		return;
	}
	arca_diags_init(ds, "<session>");
	rc = arca_policy_parse((const char *)pp->yaml.p, pp->yaml.len, ds, &pp->policy);
	if (rc < 0 || !pp->policy) {
		pp->policy = NULL;
		pp->code = CAS_INVALID_POLICY;
		/* The diagnostics could quote the policy, and the policy can
		 * hold secret values: the log gets only their number. */
		snprintf(pp->reason, sizeof pp->reason, "invalid policy (%zu diagnostics)", ds->n + ds->dropped);
		if (ds->n == 0 || arca_diags_format(ds, &pp->detail) < 0) {
			arca_buf_reset(&pp->detail);
			if (arca_buf_appends(&pp->detail, "<session>: the policy could not be parsed") < 0)
				arca_buf_reset(&pp->detail);
		}
	}
	free(ds);
}

static const char *detail_of(const struct parsed *pp)
{
	return pp->detail.len ? (const char *)pp->detail.p : NULL;
}

/* Owners of a new version: those listed under access, else keep. */
static int owners_from_policy(const struct arca_policy *p, struct cas_session_rec *rec, char *why, size_t cap)
{
	if (!p->has_access)
		return 0;
	free(rec->owners);
	rec->owners = NULL;
	rec->nowners = 0;
	for (size_t i = 0; i < p->nowners; i++) {
		if (cas_session_rec_add_owner(rec, p->owners[i]) < 0) {
			snprintf(why, cap, "<session>: access.owners entry %zu is not a usable fingerprint "
					   "(SHA256:…, at most %d owners)", i + 1, CAS_MAX_OWNERS);
			return ARCA_EINVAL;
		}
	}
	if (rec->nowners == 0) {
		snprintf(why, cap, "<session>: access.owners lists no owner; nobody could update or read the session");
		return ARCA_EINVAL;
	}
	return 0;
}

/* Runs after the write transaction holds the final state of rec: syncs the
 * secrets, writes the session, audits, commits. Returns the code to refuse
 * with, or -1 on success. */
static int finish_write(struct cas_req *r, const char *name, const struct arca_policy *p,
			struct cas_session_rec *rec, int create, const uint8_t *old_hash, char *why, size_t cap)
{
	struct cas_store *s = r->w->store;
	struct arca_errbuf e = {{0}};
	char hex[65], oldhex[65];
	json_t *extra;
	int rc, ok;

	rc = cas_secrets_sync(s, name, p, &e);
	if (rc < 0) {
		snprintf(why, cap, "secrets: %.300s", e.msg);
		return rc == ARCA_ETOOBIG ? CAS_INVALID_POLICY : CAS_INTERNAL;
	}
	rc = create ? cas_store_session_insert(s, name, rec) : cas_store_session_replace(s, name, rec);
	if (rc == ARCA_EEXIST) {
		snprintf(why, cap, "a session named %s exists", name);
		return CAS_CONFLICT;
	}
	if (rc < 0) {
		snprintf(why, cap, "store write failed (%s)", arca_strerror(rc));
		return CAS_INTERNAL;
	}
	arca_hex_encode(rec->hash, 32, hex);
	extra = json_pack("{s:s}", "session_hash", hex);
	if (extra && old_hash) {
		arca_hex_encode(old_hash, 32, oldhex);
		json_object_set_new(extra, "predecessor", json_string(oldhex));
	}
	audit_ok(r, create ? "session_create" : "session_update", name, extra, &ok);
	json_decref(extra);
	if (!ok) {
		snprintf(why, cap, "the audit log could not record the change");
		return CAS_INTERNAL;
	}
	rc = cas_store_commit(s);
	if (rc < 0) {
		/* The log says the change happened; say that it did not. */
		snprintf(why, cap, "store commit failed (%s); the change above was not made", arca_strerror(rc));
		return CAS_INTERNAL;
	}
	return -1;
}

void cas_handle_session_create(struct cas_req *r)
{
	struct cas_store *s = r->w->store;
	struct cas_session_rec rec, cur;
	struct parsed pp;
	char why[400];
	int rc, code;

	if (!r->has_caller) {
		refuse(r, CAS_UNAUTHENTICATED, NULL, "no client certificate", NULL);
		return;
	}
	parse_body(r, &pp);
	cas_session_rec_init(&rec);
	if (!pp.policy) {
		refuse(r, pp.code, NULL, pp.reason, detail_of(&pp));
		goto out;
	}
	if (pp.policy->has_predecessor) {
		refuse(r, CAS_INVALID_POLICY, pp.policy->name, "predecessor given on create",
		       "<session>: a new session has no predecessor; remove it, or update the existing session");
		goto out;
	}
	if (owners_from_policy(pp.policy, &rec, why, sizeof why) < 0) {
		refuse(r, CAS_INVALID_POLICY, pp.policy->name, "unusable access.owners", why);
		goto out;
	}
	if (!pp.policy->has_access && cas_session_rec_add_owner(&rec, r->caller) < 0) {
		refuse(r, CAS_INTERNAL, pp.policy->name, "caller fingerprint unusable", NULL);
		goto out;
	}
	if (arca_policy_hash(pp.policy, rec.hash) < 0 || arca_buf_append(&rec.yaml, pp.yaml.p, pp.yaml.len) < 0) {
		refuse(r, CAS_INTERNAL, pp.policy->name, "cannot hash or copy the policy", NULL);
		goto out;
	}
	if (cas_store_begin_write(s, 1) < 0) {
		refuse(r, CAS_INTERNAL, pp.policy->name, "store busy or failing", NULL);
		goto out;
	}
	cas_session_rec_init(&cur);
	rc = cas_store_session_get(s, pp.policy->name, &cur);
	cas_session_rec_free(&cur);
	if (rc != ARCA_ENOTFOUND) {
		cas_store_rollback(s);
		if (rc == 0)
			refuse(r, CAS_CONFLICT, pp.policy->name, "session exists", NULL);
		else
			refuse(r, CAS_INTERNAL, pp.policy->name, "store read failed", NULL);
		goto out;
	}
	code = finish_write(r, pp.policy->name, pp.policy, &rec, 1, NULL, why, sizeof why);
	if (code >= 0) {
		cas_store_rollback(s);
		refuse(r, (enum cas_code)code, pp.policy->name, why, code == CAS_INVALID_POLICY ? why : NULL);
		goto out;
	}
	cas_log("info", "session %s created by %s", pp.policy->name, r->caller);
	reply_name_hash(r, pp.policy->name, rec.hash);
out:
	cas_session_rec_free(&rec);
	parsed_free(&pp);
	cas_body_wipe(r);
}

void cas_handle_session_update(struct cas_req *r)
{
	struct cas_store *s = r->w->store;
	const char *name = r->path_arg;
	struct cas_session_rec cur;
	struct parsed pp;
	uint8_t old_hash[32];
	char why[400], hex[65];
	int rc, code;

	if (!r->has_caller) {
		refuse(r, CAS_UNAUTHENTICATED, name, "no client certificate", NULL);
		return;
	}
	if (!arca_name_valid(name)) {
		refuse(r, CAS_NOT_FOUND, NULL, "not a session name", NULL);
		return;
	}
	parse_body(r, &pp);
	cas_session_rec_init(&cur);
	if (cas_store_begin_write(s, 1) < 0) {
		refuse(r, CAS_INTERNAL, name, "store busy or failing", NULL);
		goto out;
	}
	rc = cas_store_session_get(s, name, &cur);
	if (rc < 0) {
		cas_store_rollback(s);
		if (rc == ARCA_ENOTFOUND)
			refuse(r, CAS_NOT_FOUND, name, "no such session", NULL);
		else
			refuse(r, CAS_INTERNAL, name, "stored session does not open", NULL);
		goto out;
	}
	if (!cas_session_rec_is_owner(&cur, r->caller)) {
		cas_store_rollback(s);
		refuse(r, CAS_FORBIDDEN, name, "caller is not an owner", NULL);
		goto out;
	}
	if (!pp.policy) {
		cas_store_rollback(s);
		refuse(r, pp.code, name, pp.reason, detail_of(&pp));
		goto out;
	}
	if (strcmp(pp.policy->name, name) != 0) {
		cas_store_rollback(s);
		snprintf(why, sizeof why, "<session>: the policy is named '%s' but updates session '%s'; the name "
					  "cannot change", pp.policy->name, name);
		refuse(r, CAS_INVALID_POLICY, name, "policy name differs from the session's", why);
		goto out;
	}
	memcpy(old_hash, cur.hash, 32);
	if (!pp.policy->has_predecessor || !arca_ct_eq(pp.policy->predecessor, cur.hash, 32)) {
		cas_store_rollback(s);
		arca_hex_encode(cur.hash, 32, hex);
		snprintf(why, sizeof why, "%s; the current hash is %s",
			 pp.policy->has_predecessor ? "the predecessor is not the current hash"
						    : "an update must name the current hash as predecessor",
			 hex);
		refuse(r, CAS_STALE_PREDECESSOR, name,
		       pp.policy->has_predecessor ? "stale predecessor" : "no predecessor", why);
		goto out;
	}
	if (owners_from_policy(pp.policy, &cur, why, sizeof why) < 0) {
		cas_store_rollback(s);
		refuse(r, CAS_INVALID_POLICY, name, "unusable access.owners", why);
		goto out;
	}
	arca_buf_reset(&cur.yaml);
	if (arca_policy_hash(pp.policy, cur.hash) < 0 || arca_buf_append(&cur.yaml, pp.yaml.p, pp.yaml.len) < 0) {
		cas_store_rollback(s);
		refuse(r, CAS_INTERNAL, name, "cannot hash or copy the policy", NULL);
		goto out;
	}
	code = finish_write(r, name, pp.policy, &cur, 0, old_hash, why, sizeof why);
	if (code >= 0) {
		cas_store_rollback(s);
		refuse(r, (enum cas_code)code, name, why, code == CAS_INVALID_POLICY ? why : NULL);
		goto out;
	}
	cas_log("info", "session %s updated by %s", name, r->caller);
	reply_name_hash(r, name, cur.hash);
out:
	cas_session_rec_free(&cur);
	parsed_free(&pp);
	cas_body_wipe(r);
}

static json_t *secrets_json(const struct arca_policy *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->nsecrets; i++) {
		const struct arca_secret_def *d = &p->secrets[i];
		json_t *o = json_pack("{s:s,s:s,s:b}", "name", d->name, "kind", kind_name(d->kind), "generated",
				      cas_secret_is_generated(d));
		if (!o || json_array_append_new(a, o) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

void cas_handle_session_read(struct cas_req *r)
{
	struct cas_store *s = r->w->store;
	const char *name = r->path_arg;
	struct cas_session_rec cur;
	struct arca_diags *ds = NULL;
	struct arca_policy *p = NULL;
	json_t *reply = NULL, *pj, *sj;
	char hex[65], *text = NULL;
	int rc;

	if (!r->has_caller) {
		refuse(r, CAS_UNAUTHENTICATED, name, "no client certificate", NULL);
		return;
	}
	if (!arca_name_valid(name)) {
		refuse(r, CAS_NOT_FOUND, NULL, "not a session name", NULL);
		return;
	}
	cas_session_rec_init(&cur);
	if (cas_store_begin_read(s) < 0) {
		refuse(r, CAS_INTERNAL, name, "store busy or failing", NULL);
		goto out;
	}
	rc = cas_store_session_get(s, name, &cur);
	cas_store_rollback(s);
	if (rc < 0) {
		if (rc == ARCA_ENOTFOUND)
			refuse(r, CAS_NOT_FOUND, name, "no such session", NULL);
		else
			refuse(r, CAS_INTERNAL, name, "stored session does not open", NULL);
		goto out;
	}
	if (!cas_session_rec_is_owner(&cur, r->caller)) {
		refuse(r, CAS_FORBIDDEN, name, "caller is not an owner", NULL);
		goto out;
	}
	ds = calloc(1, sizeof *ds);
	if (ds)
		arca_diags_init(ds, "<session>");
	if (!ds || arca_policy_parse((const char *)cur.yaml.p, cur.yaml.len, ds, &p) < 0 || !p) {
		p = NULL;
		refuse(r, CAS_INTERNAL, name, "stored policy no longer parses", NULL);
		goto out;
	}
	arca_hex_encode(cur.hash, 32, hex);
	pj = arca_policy_to_json(p, 1);
	sj = secrets_json(p);
	reply = pj && sj ? json_pack("{s:s,s:s,s:o,s:o}", "name", name, "hash", hex, "policy", pj, "secrets", sj) : NULL;
	if (!reply) {
		json_decref(pj);
		json_decref(sj);
		refuse(r, CAS_INTERNAL, name, "cannot build the reply", NULL);
		goto out;
	}
	text = json_dumps(reply, JSON_COMPACT);
	if (!text) {
		refuse(r, CAS_INTERNAL, name, "cannot build the reply", NULL);
		goto out;
	}
	{
		struct cas_event ev = {
			.event = "session_read",
			.session = name,
			.caller = r->caller,
			.peer = r->peer,
		};
		cas_event_then_reply(r, &ev, 1, CAS_METRIC_NONE, 200, text, strlen(text));
	}
out:
	free(text);
	json_decref(reply);
	if (p)
		arca_policy_free(p);
	free(ds);
	cas_session_rec_free(&cur);
}
