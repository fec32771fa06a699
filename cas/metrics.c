/* metrics.c: GET /metrics (Prometheus text format 0.0.4) and GET /healthz.
 *
 * Counters are relaxed atomics in struct cas so the hot path never takes a
 * lock for them; a scrape may see two counters a request apart, which
 * Prometheus tolerates. Nothing here names a session or a caller: the
 * endpoint is unauthenticated. */
#include "cas.h"

#include <stdio.h>
#include <string.h>

static const int status_slots[CAS_METRIC_STATUSES - 1] = {200, 400, 401, 403, 404, 405, 409, 413, 500, 503, 504};

static int slot_of(int status)
{
	for (int i = 0; i < CAS_METRIC_STATUSES - 1; i++)
		if (status_slots[i] == status)
			return i;
	return CAS_METRIC_STATUSES - 1; /* "other" */
}

static const char *const endpoint_names[EP_COUNT] = {
	[EP_HEALTHZ] = "healthz",
	[EP_METRICS] = "metrics",
	[EP_SESSION_CREATE] = "session_create",
	[EP_SESSION_UPDATE] = "session_update",
	[EP_SESSION_READ] = "session_read",
	[EP_NONCE] = "attest_nonce",
	[EP_ATTEST] = "attest",
	[EP_CAS_EVIDENCE] = "cas_evidence",
	[EP_VOLUME_TAG] = "volume_tag",
	[EP_OTHER] = "other",
};

const char *cas_endpoint_name(enum cas_endpoint ep) { return ep < EP_COUNT ? endpoint_names[ep] : "other"; }

void cas_metrics_count_request(struct cas_metrics *m, enum cas_endpoint ep, int status)
{
	if (ep >= EP_COUNT)
		ep = EP_OTHER;
	__atomic_fetch_add(&m->requests[ep][slot_of(status)], 1, __ATOMIC_RELAXED);
}

void cas_metrics_count_attest(struct cas_metrics *m, int granted, enum cas_code why)
{
	if (granted)
		__atomic_fetch_add(&m->attest_granted, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&m->attest_refused[why < CAS_NCODES ? why : CAS_INTERNAL], 1, __ATOMIC_RELAXED);
}

/* The refusals an attestation can end in, always exported (also at 0) so
 * that rate() works from the first scrape. */
static const enum cas_code attest_reasons[] = {
	CAS_BAD_REQUEST,       CAS_NONCE_INVALID,        CAS_NONCE_EXPIRED,        CAS_EVIDENCE_INVALID,
	CAS_PLATFORM_UNTRUSTED, CAS_BINDING_MISMATCH,    CAS_UNKNOWN_SERVICE,      CAS_PLATFORM_NOT_ALLOWED,
	CAS_MEASUREMENT_MISMATCH, CAS_PLATFORM_UNPROTECTED, CAS_TOO_LARGE,     CAS_INTERNAL,
};

void cas_handle_metrics(struct cas_req *r)
{
	struct cas_metrics *m = &r->w->cas->metrics;
	struct arca_buf b;
	long long sessions = -1;
	int rc = 0;

	arca_buf_init(&b, 256 << 10, 0);
	if (cas_store_session_count(r->w->store, &sessions) < 0)
		sessions = -1;
	rc |= arca_buf_appends(&b, "# HELP arca_cas_requests_total Requests answered, by endpoint and HTTP status.\n"
				   "# TYPE arca_cas_requests_total counter\n");
	for (int ep = 0; ep < EP_COUNT; ep++) {
		for (int s = 0; s < CAS_METRIC_STATUSES; s++) {
			unsigned long long v = __atomic_load_n(&m->requests[ep][s], __ATOMIC_RELAXED);
			char st[8];
			if (!v)
				continue;
			if (s < CAS_METRIC_STATUSES - 1)
				snprintf(st, sizeof st, "%d", status_slots[s]);
			else
				snprintf(st, sizeof st, "other");
			rc |= arca_buf_appendf(&b, "arca_cas_requests_total{endpoint=\"%s\",status=\"%s\"} %llu\n",
					       endpoint_names[ep], st, v);
		}
	}
	rc |= arca_buf_appendf(&b,
			       "# HELP arca_cas_attestations_granted_total Configurations released to attested programs.\n"
			       "# TYPE arca_cas_attestations_granted_total counter\n"
			       "arca_cas_attestations_granted_total %llu\n"
			       "# HELP arca_cas_attestations_refused_total Attestations refused, by reason.\n"
			       "# TYPE arca_cas_attestations_refused_total counter\n",
			       __atomic_load_n(&m->attest_granted, __ATOMIC_RELAXED));
	for (size_t i = 0; i < sizeof attest_reasons / sizeof attest_reasons[0]; i++)
		rc |= arca_buf_appendf(&b, "arca_cas_attestations_refused_total{reason=\"%s\"} %llu\n",
				       cas_code_name(attest_reasons[i]),
				       __atomic_load_n(&m->attest_refused[attest_reasons[i]], __ATOMIC_RELAXED));
	rc |= arca_buf_appendf(&b,
			       "# HELP arca_cas_audit_records_total Records written to the audit log.\n"
			       "# TYPE arca_cas_audit_records_total counter\n"
			       "arca_cas_audit_records_total %llu\n"
			       "# HELP arca_cas_audit_writes_total Audit log appends, one fdatasync each (group commit "
			       "puts several records in one).\n"
			       "# TYPE arca_cas_audit_writes_total counter\n"
			       "arca_cas_audit_writes_total %llu\n",
			       __atomic_load_n(&r->w->cas->events.records, __ATOMIC_RELAXED),
			       __atomic_load_n(&r->w->cas->events.writes, __ATOMIC_RELAXED));
	rc |= arca_buf_appendf(&b,
			       "# HELP arca_cas_volume_tags_total Volume tags stored (one per commit of a data volume).\n"
			       "# TYPE arca_cas_volume_tags_total counter\n"
			       "arca_cas_volume_tags_total %llu\n"
			       "# HELP arca_cas_volume_rollbacks_total Tag updates refused as rollback (volume_rollback).\n"
			       "# TYPE arca_cas_volume_rollbacks_total counter\n"
			       "arca_cas_volume_rollbacks_total %llu\n",
			       __atomic_load_n(&m->volume_tags, __ATOMIC_RELAXED),
			       __atomic_load_n(&m->volume_rollbacks, __ATOMIC_RELAXED));
	if (sessions >= 0)
		rc |= arca_buf_appendf(&b,
				       "# HELP arca_cas_sessions Sessions in the store.\n"
				       "# TYPE arca_cas_sessions gauge\n"
				       "arca_cas_sessions %lld\n",
				       sessions);
	if (rc)
		cas_fail(r, CAS_INTERNAL, NULL);
	else
		cas_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	arca_buf_free(&b);
}

void cas_handle_healthz(struct cas_req *r)
{
	static const char ok[] = "{\"status\":\"ok\"}";

	cas_reply(r, 200, "application/json", ok, sizeof ok - 1);
}
