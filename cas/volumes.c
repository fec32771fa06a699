/* volumes.c: POST /v1/volumes/S/V/tag, how an attested instance records
 * the tag of its volume's last commit (docs/VOLUMES.md "Freshness").
 *
 * The caller is not authenticated by TLS (the shield has no client
 * certificate) but by the token CAS put in its configuration: CAS keeps
 * SHA-256 of each token for (session, volume) (attest.c, store.c) and
 * compares the hash of the presented one with every kept one in constant
 * time. An unknown token, or one for another volume, gets 403 with a fixed
 * sentence and nothing else, and is not audited (anyone can send one).
 *
 * With a good token, in one durable write transaction: a volume that is
 * not a data volume of the session's current policy is refused (a code
 * volume as read-only, audited: a shield only sends that when it found its
 * code volume changed); then the presented previous tag must be the one
 * CAS holds (no previous when CAS holds none): the new tag is stored and
 * 200 {"tag": "<hex>"} answered. A request whose new tag CAS already holds
 * is a repeat of a swap whose answer was lost: the same 200, nothing
 * stored, nothing audited, so that a shield can retry a commit whose
 * outcome it does not know (docs/VOLUMES.md "Commit"). Otherwise 409
 * volume_rollback, audited with both tags. Tags answered 200 are counted
 * in /metrics, not audited one by one: a busy program commits at every
 * fsync. */
#include "cas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/encode.h"
#include "arca/policy.h"
#include "arca/proto.h"

#define TAG_SUFFIX "/tag"

/* "S/V/tag" -> S and V, both valid names (V without '/'). */
static int split_path(const char *arg, char session[ARCA_NAME_MAX + 1], char volume[ARCA_NAME_MAX + 1])
{
	size_t n = strlen(arg), sl = sizeof TAG_SUFFIX - 1, sn, vn;
	const char *v;

	if (n <= sl || memcmp(arg + n - sl, TAG_SUFFIX, sl) != 0)
		return ARCA_ENOTFOUND;
	n -= sl;
	for (v = arg + n; v > arg && v[-1] != '/'; v--)
		;
	if (v == arg)
		return ARCA_ENOTFOUND;
	sn = (size_t)(v - 1 - arg);
	vn = (size_t)(arg + n - v);
	if (sn == 0 || sn > ARCA_NAME_MAX || vn == 0 || vn > ARCA_NAME_MAX)
		return ARCA_ENOTFOUND;
	memcpy(session, arg, sn);
	session[sn] = 0;
	memcpy(volume, v, vn);
	volume[vn] = 0;
	if (!arca_name_valid(session) || !arca_name_valid(volume) || strcmp(volume, ".") == 0 ||
	    strcmp(volume, "..") == 0)
		return ARCA_ENOTFOUND;
	return 0;
}

static json_t *tag_or_null(int has, const uint8_t tag[32])
{
	char hex[65];

	if (!has)
		return json_null();
	arca_hex_encode(tag, 32, hex);
	return json_string(hex);
}

/* A refusal that is audited: the reply waits for its record. */
static void refuse_audited(struct cas_req *r, enum cas_code code, const char *event, const char *session,
			   const char *volume, const struct arca_msg_voltag *m, const struct cas_volume_rec *held,
			   const char *reason)
{
	struct cas_event ev;
	struct arca_buf body;

	memset(&ev, 0, sizeof ev);
	ev.event = event;
	ev.session = session;
	ev.caller = r->has_caller ? r->caller : NULL;
	ev.peer = r->peer;
	ev.error = cas_code_name(code);
	ev.reason = reason;
	ev.extra = json_pack("{s:s,s:o,s:o,s:o}", "volume", volume, "presented_previous",
			     tag_or_null(m->has_previous, m->previous), "presented_tag", tag_or_null(1, m->tag),
			     "held_tag", held ? tag_or_null(held->has_tag, held->tag) : json_null());
	cas_log("info", "volume tag of %s/%s refused (%s): %s", session, volume, cas_code_name(code), reason);
	arca_buf_init(&body, 4096, 0);
	if (cas_error_body(code, 0, NULL, &body) < 0)
		arca_buf_reset(&body);
	/* cas_event_then_reply fails closed (internal) without a record. */
	cas_event_then_reply(r, &ev, 0, CAS_METRIC_NONE, cas_code_status(code), body.p, body.len);
	arca_buf_free(&body);
	json_decref(ev.extra);
}

/* The current policy of session, from the worker's cache or parsed.
 * ARCA_ENOTFOUND when the session is gone. Inside the caller's
 * transaction; *p stays valid until the next use of the cache. */
static int current_policy(struct cas_worker *w, const char *session, const struct arca_policy **p)
{
	struct cas_session_rec rec;
	struct arca_diags *ds = NULL;
	struct arca_policy *parsed = NULL;
	int rc;

	cas_session_rec_init(&rec);
	rc = cas_store_session_get(w->store, session, &rec);
	if (rc < 0)
		goto out;
	*p = cas_policy_cache_get(&w->policies, session, rec.hash);
	if (*p)
		goto out;
	ds = calloc(1, sizeof *ds);
	if (!ds) {
		rc = ARCA_ENOMEM;
		goto out;
	}
	arca_diags_init(ds, "<session>");
	if (arca_policy_parse((const char *)rec.yaml.p, rec.yaml.len, ds, &parsed) < 0 || !parsed) {
		rc = ARCA_EPARSE;
		goto out;
	}
	cas_policy_cache_put(&w->policies, session, rec.hash, parsed);
	*p = parsed;
out:
	free(ds);
	cas_session_rec_free(&rec);
	return rc;
}

void cas_handle_volume_tag(struct cas_req *r)
{
	struct cas_store *s = r->w->store;
	struct cas_metrics *mt = &r->w->cas->metrics;
	char session[ARCA_NAME_MAX + 1], volume[ARCA_NAME_MAX + 1], why[700], hex[65], prev[65];
	struct arca_errbuf e = {{0}};
	struct arca_msg_voltag m;
	struct cas_volume_rec held;
	const struct arca_policy *p = NULL;
	const struct arca_volume_def *d;
	const uint8_t *body;
	uint8_t id[32];
	size_t n;
	int rc;

	memset(&m, 0, sizeof m);
	memset(&held, 0, sizeof held);
	if (split_path(r->path_arg ? r->path_arg : "", session, volume) < 0) {
		cas_fail(r, CAS_NOT_FOUND, NULL);
		return;
	}
	rc = cas_body(r, &body, &n);
	if (rc < 0) {
		cas_fail(r, rc == ARCA_ETOOBIG ? CAS_TOO_LARGE : CAS_INTERNAL, NULL);
		return;
	}
	if (arca_msg_voltag_decode(body, n, &m, &e) < 0) {
		cas_fail(r, CAS_BAD_REQUEST, e.msg);
		goto out;
	}
	if (arca_sha256(m.token, sizeof m.token, id) < 0) {
		cas_fail(r, CAS_INTERNAL, NULL);
		goto out;
	}
	if (cas_store_begin_write(s, 1) < 0) {
		cas_log("error", "volume tag of %s/%s: store busy or failing", session, volume);
		cas_fail(r, CAS_INTERNAL, NULL);
		goto out;
	}
	rc = cas_store_volume_token_find(s, session, volume, id);
	if (rc == ARCA_ENOTFOUND) {
		cas_store_rollback(s);
		cas_log("info", "volume tag of %s/%s refused: the token is not one CAS gave for this volume", session,
			volume);
		cas_fail(r, CAS_VOLUME_TOKEN, NULL);
		goto out;
	}
	if (rc < 0) {
		cas_store_rollback(s);
		cas_log("error", "volume tag of %s/%s: stored tokens cannot be read (%s)", session, volume,
			arca_strerror(rc));
		cas_fail(r, CAS_INTERNAL, NULL);
		goto out;
	}
	rc = current_policy(r->w, session, &p);
	d = rc == 0 ? arca_policy_volume(p, volume) : NULL;
	if (rc == ARCA_ENOTFOUND || (rc == 0 && !d)) {
		/* The token was good for a volume the session no longer has. */
		cas_store_rollback(s);
		cas_log("info", "volume tag of %s/%s refused: the session no longer declares that volume", session,
			volume);
		cas_fail(r, CAS_VOLUME_TOKEN, NULL);
		goto out;
	}
	if (rc < 0) {
		cas_store_rollback(s);
		cas_log("error", "volume tag of %s/%s: the stored session cannot be read (%s)", session, volume,
			arca_strerror(rc));
		cas_fail(r, CAS_INTERNAL, NULL);
		goto out;
	}
	if (arca_volume_is_code(d)) {
		cas_store_rollback(s);
		arca_hex_encode(d->tag, 32, hex);
		snprintf(why, sizeof why,
			 "volume %s of session %s is a code volume (tag %s pinned in the session); its tag cannot be "
			 "recorded",
			 volume, session, hex);
		refuse_audited(r, CAS_VOLUME_READONLY, "volume_tag_refused", session, volume, &m, NULL, why);
		goto out;
	}
	rc = cas_store_volume_tag_swap(s, session, volume, m.has_previous, m.previous, m.tag, &held);
	if (rc == ARCA_ESTALE) {
		cas_store_rollback(s);
		__atomic_fetch_add(&mt->volume_rollbacks, 1, __ATOMIC_RELAXED);
		if (held.has_tag)
			arca_hex_encode(held.tag, 32, hex);
		if (m.has_previous)
			arca_hex_encode(m.previous, 32, prev);
		snprintf(why, sizeof why,
			 "the previous tag presented (%s) is not the tag CAS holds (%s): the volume was restored from an "
			 "older copy or changed outside arca",
			 m.has_previous ? prev : "none", held.has_tag ? hex : "none");
		refuse_audited(r, CAS_VOLUME_ROLLBACK, "volume_rollback", session, volume, &m, &held, why);
		goto out;
	}
	if (rc < 0) {
		cas_store_rollback(s);
		/* A token without a record: attest.c stores both in one
		 * transaction, so the store is damaged or was edited. */
		cas_log("error", "volume tag of %s/%s: the volume's record %s (%s)", session, volume,
			rc == ARCA_ENOTFOUND ? "is missing although a token for it is kept" : "cannot be used",
			arca_strerror(rc));
		cas_fail(r, CAS_INTERNAL, NULL);
		goto out;
	}
	rc = cas_store_commit(s);
	if (rc < 0) {
		cas_log("error", "volume tag of %s/%s: store commit failed (%s)", session, volume, arca_strerror(rc));
		cas_fail(r, CAS_INTERNAL, NULL);
		goto out;
	}
	__atomic_fetch_add(&mt->volume_tags, 1, __ATOMIC_RELAXED);
	{
		/* The same bytes every time ({"tag":"<hex>"}): the client
		 * compares them with what it sent. */
		char reply[80];
		arca_hex_encode(m.tag, 32, hex);
		int len = snprintf(reply, sizeof reply, "{\"tag\":\"%s\"}", hex);
		cas_reply(r, 200, "application/json", reply, (size_t)len);
	}
out:
	/* The body held the token. */
	cas_body_wipe(r);
	cas_volume_rec_wipe(&held);
	arca_wipe(&m, sizeof m);
	arca_wipe(id, sizeof id);
}
