/* events.c: what CAS writes to its audit log, and the lock around it.
 *
 * The log is a hash chain, so appends are serialised across workers by one
 * mutex. Each append is durable (arca_audit_append fdatasyncs) before the
 * caller replies or commits: an attestation is never granted, nor a session
 * changed, without its record on disk. Records carry names, fingerprints,
 * codes and reasons only; no secret value ever reaches this file, and the
 * only free text is the reason the caller composes from non-secret facts. */
#include "cas.h"

#include <string.h>

#include "arca/audit.h"

int cas_events_open(struct cas_events *ev, const char *path, struct arca_errbuf *e)
{
	memset(ev, 0, sizeof *ev);
	if (pthread_mutex_init(&ev->mu, NULL) != 0)
		return arca_errf(e, ARCA_ENOMEM, "mutex");
	return arca_audit_open(path, &ev->log, e);
}

void cas_events_close(struct cas_events *ev)
{
	if (ev->log)
		arca_audit_close(ev->log);
	ev->log = NULL;
	pthread_mutex_destroy(&ev->mu);
}

static int set_str(json_t *o, const char *k, const char *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, k, json_string(v)) == 0 ? 0 : ARCA_ENOMEM;
}

int cas_event(struct cas_events *ev, const struct cas_event *e)
{
	json_t *o = json_object();
	int rc = 0;
	const char *outcome = NULL;

	ENSURE(o, ARCA_ENOMEM);
	if (strstr(e->event, "refused"))
		outcome = "refused";
	else if (strcmp(e->event, "attest_granted") == 0)
		outcome = "granted";
	else
		outcome = "ok";
	GUARD_GOTO(set_str(o, "event", e->event), out);
	GUARD_GOTO(set_str(o, "outcome", outcome), out);
	GUARD_GOTO(set_str(o, "session", e->session), out);
	GUARD_GOTO(set_str(o, "service", e->service), out);
	GUARD_GOTO(set_str(o, "caller", e->caller), out);
	GUARD_GOTO(set_str(o, "peer", e->peer), out);
	GUARD_GOTO(set_str(o, "error", e->error), out);
	GUARD_GOTO(set_str(o, "reason", e->reason), out);
	if (e->extra)
		ENSURE_GOTO(json_object_update(o, e->extra) == 0, ARCA_ENOMEM, out);
	pthread_mutex_lock(&ev->mu);
	rc = ev->log ? arca_audit_append(ev->log, o) : ARCA_EIO;
	pthread_mutex_unlock(&ev->mu);
	if (rc < 0)
		cas_log("error", "audit log append failed (%s); refusing the request", arca_strerror(rc));
out:
	json_decref(o);
	return rc;
}
