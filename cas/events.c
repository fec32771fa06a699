/* events.c: what CAS writes to its audit log, and when it answers.
 *
 * Every record is on disk (arca_audit_append fdatasyncs) before the reply
 * it accounts for leaves CAS: a configuration is never released, a refusal
 * never reported, a session never changed without its record. Records
 * carry names, fingerprints, codes and reasons only, never a secret value.
 *
 * Group commit. An fdatasync costs far more than an attestation's CPU
 * work (0.25 to 1 ms here against about 0.4 ms), so attestations do not
 * append themselves: they queue their record with the reply it unlocks,
 * and the worker goes on serving. One writer thread takes everything
 * queued at that moment and appends it as one record, so one fdatasync
 * covers all of it; then each reply goes back to the worker that owns its
 * connection (event_active), which sends it. Under light load the queue
 * holds one record at a time and the log looks as without batching; under
 * load a line holds {"event": "batch", "count": N, "events": [record, …]}
 * with the records in the order they were queued. Each record inside is
 * the same object a lone record would be; the chain covers them all.
 * Session changes append synchronously inside their store transaction
 * (cas_event), because the transaction must not outlive the request. */
#include "cas.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "arca/audit.h"

/* One line stays far below the audit log's 1 MiB line limit. */
#define CAS_AUDIT_MAX_BATCH 256

struct cas_pending {
	struct cas_pending *next;
	json_t *rec;
	struct cas_worker *w;
	struct evhttp_request *req;
	enum cas_endpoint ep;
	int grant, metric, status, rc;
	uint8_t *body;
	size_t len;
};

int cas_events_open(struct cas_events *ev, const char *path, struct arca_errbuf *e)
{
	memset(ev, 0, sizeof *ev);
	if (pthread_mutex_init(&ev->mu, NULL) != 0 || pthread_cond_init(&ev->cv, NULL) != 0)
		return arca_errf(e, ARCA_ENOMEM, "audit: cannot create a lock");
	return arca_audit_open(path, &ev->log, e);
}

void cas_events_close(struct cas_events *ev)
{
	cas_events_stop(ev);
	if (ev->log)
		arca_audit_close(ev->log);
	ev->log = NULL;
	pthread_cond_destroy(&ev->cv);
	pthread_mutex_destroy(&ev->mu);
}

static int set_str(json_t *o, const char *k, const char *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, k, json_string(v)) == 0 ? 0 : ARCA_ENOMEM;
}

static json_t *event_json(const struct cas_event *e)
{
	json_t *o = json_object();
	const char *outcome;
	int rc = 0;

	if (!o)
		return NULL;
	if (strstr(e->event, "refused"))
		outcome = "refused";
	else if (strcmp(e->event, "attest_granted") == 0)
		outcome = "granted";
	else
		outcome = "ok";
	rc |= set_str(o, "event", e->event);
	rc |= set_str(o, "outcome", outcome);
	rc |= set_str(o, "session", e->session);
	rc |= set_str(o, "service", e->service);
	rc |= set_str(o, "caller", e->caller);
	rc |= set_str(o, "peer", e->peer);
	rc |= set_str(o, "error", e->error);
	rc |= set_str(o, "reason", e->reason);
	if (e->extra && json_object_update(o, e->extra) != 0)
		rc = ARCA_ENOMEM;
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int append(struct cas_events *ev, json_t *rec, size_t nrecords)
{
	int rc = ev->log ? arca_audit_append(ev->log, rec) : ARCA_EIO;

	if (rc == 0) {
		__atomic_fetch_add(&ev->records, nrecords, __ATOMIC_RELAXED);
		__atomic_fetch_add(&ev->writes, 1, __ATOMIC_RELAXED);
	} else {
		cas_log("error", "audit log append failed (%s); refusing what it should record", arca_strerror(rc));
	}
	return rc;
}

int cas_event(struct cas_events *ev, const struct cas_event *e)
{
	json_t *o = event_json(e);
	int rc;

	ENSURE(o, ARCA_ENOMEM);
	rc = append(ev, o, 1);
	json_decref(o);
	return rc;
}

/* ---- delivery on the worker ---- */

static void pending_free(struct cas_pending *p)
{
	json_decref(p->rec);
	free(p->body);
	free(p);
}

static void send_pending(struct cas_pending *p)
{
	struct cas_metrics *m = &p->w->cas->metrics;
	struct arca_buf b;

	if (p->rc < 0 && p->grant) {
		arca_buf_init(&b, 4096, 0);
		if (cas_error_body(CAS_INTERNAL, 0, NULL, &b) < 0)
			arca_buf_reset(&b);
		cas_send(p->w, p->req, p->ep, cas_code_status(CAS_INTERNAL), "application/json", b.p, b.len);
		arca_buf_free(&b);
		if (p->metric != CAS_METRIC_NONE)
			cas_metrics_count_attest(m, 0, CAS_INTERNAL);
		return;
	}
	cas_send(p->w, p->req, p->ep, p->status, "application/json", p->body, p->len);
	if (p->metric == CAS_METRIC_GRANT)
		cas_metrics_count_attest(m, 1, CAS_INTERNAL);
	else if (p->metric >= 0)
		cas_metrics_count_attest(m, 0, (enum cas_code)p->metric);
}

void cas_events_deliver(int fd, short what, void *arg)
{
	struct cas_worker *w = arg;
	struct cas_pending *list, *p, *rev = NULL;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->done_mu);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->done_mu);
	/* The list was built by pushing; answer in queue order. */
	while (list) {
		p = list->next;
		list->next = rev;
		rev = list;
		list = p;
	}
	while (rev) {
		p = rev->next;
		send_pending(rev);
		pending_free(rev);
		rev = p;
	}
}

void cas_events_drop(struct cas_worker *w)
{
	struct cas_pending *p;

	if (!w->done_ev)
		return;
	pthread_mutex_lock(&w->done_mu);
	while ((p = w->done)) {
		w->done = p->next;
		pending_free(p);
	}
	pthread_mutex_unlock(&w->done_mu);
}

/* ---- the writer thread ---- */

static void complete(struct cas_pending *first, size_t n, int rc)
{
	struct cas_worker *woken[CAS_MAX_THREADS];
	size_t nwoken = 0;

	for (size_t i = 0; i < n && first; i++) {
		struct cas_pending *p = first, *q = first->next;
		size_t k;
		p->rc = rc;
		pthread_mutex_lock(&p->w->done_mu);
		p->next = p->w->done;
		p->w->done = p;
		pthread_mutex_unlock(&p->w->done_mu);
		for (k = 0; k < nwoken && woken[k] != p->w; k++)
			;
		if (k == nwoken && nwoken < CAS_MAX_THREADS)
			woken[nwoken++] = p->w;
		first = q;
	}
	for (size_t k = 0; k < nwoken; k++)
		event_active(woken[k]->done_ev, EV_TIMEOUT, 0);
}

static int write_chunk(struct cas_events *ev, struct cas_pending *first, size_t n)
{
	json_t *batch, *arr;
	struct cas_pending *p = first;
	int rc;

	if (n == 1)
		return append(ev, first->rec, 1);
	batch = json_object();
	arr = json_array();
	if (!batch || !arr || json_object_set_new(batch, "event", json_string("batch")) != 0 ||
	    json_object_set_new(batch, "count", json_integer((json_int_t)n)) != 0 ||
	    json_object_set(batch, "events", arr) != 0) {
		json_decref(batch);
		json_decref(arr);
		return ARCA_ENOMEM;
	}
	json_decref(arr); /* batch holds it now */
	for (size_t i = 0; i < n; i++, p = p->next) {
		if (json_array_append(arr, p->rec) != 0) {
			json_decref(batch);
			return ARCA_ENOMEM;
		}
	}
	rc = append(ev, batch, n);
	json_decref(batch);
	return rc;
}

static void *writer(void *arg)
{
	struct cas_events *ev = arg;

	for (;;) {
		struct cas_pending *list;
		int stop;

		pthread_mutex_lock(&ev->mu);
		while (!ev->head && !ev->stop)
			pthread_cond_wait(&ev->cv, &ev->mu);
		list = ev->head;
		ev->head = ev->tail = NULL;
		stop = ev->stop;
		pthread_mutex_unlock(&ev->mu);
		while (list) {
			struct cas_pending *rest = list;
			size_t n = 0;
			while (rest && n < CAS_AUDIT_MAX_BATCH) {
				rest = rest->next;
				n++;
			}
			complete(list, n, write_chunk(ev, list, n));
			list = rest;
		}
		if (stop)
			return NULL;
	}
}

int cas_events_start(struct cas_events *ev)
{
	int rc = 0;

	pthread_mutex_lock(&ev->mu);
	if (ev->running) {
		rc = ARCA_EINVAL;
	} else {
		ev->stop = 0;
		if (pthread_create(&ev->thread, NULL, writer, ev) != 0)
			rc = ARCA_EIO;
		else
			ev->running = 1;
	}
	pthread_mutex_unlock(&ev->mu);
	return rc;
}


void cas_events_stop(struct cas_events *ev)
{
	pthread_mutex_lock(&ev->mu);
	if (!ev->running || ev->stop) {
		pthread_mutex_unlock(&ev->mu);
		return;
	}
	ev->stop = 1;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->mu);
	pthread_join(ev->thread, NULL);
	pthread_mutex_lock(&ev->mu);
	ev->running = 0;
	pthread_mutex_unlock(&ev->mu);
}

void cas_event_then_reply(struct cas_req *r, const struct cas_event *e, int grant, int metric, int status,
			  const void *body, size_t len)
{
	struct cas_events *ev = &r->w->cas->events;
	struct cas_pending *p = calloc(1, sizeof *p);
	int queued = 0;

	r->replied = 1;
	if (p) {
		p->rec = event_json(e);
		p->body = len ? malloc(len) : NULL;
	}
	if (!p || !p->rec || (len && !p->body)) {
		/* Cannot even build the record: fail closed. */
		if (p)
			pending_free(p);
		r->replied = 0;
		if (metric != CAS_METRIC_NONE)
			cas_metrics_count_attest(&r->w->cas->metrics, 0, CAS_INTERNAL);
		cas_fail(r, CAS_INTERNAL, NULL);
		return;
	}
	if (len)
		memcpy(p->body, body, len);
	p->len = len;
	p->w = r->w;
	p->req = r->req;
	p->ep = r->ep;
	p->grant = grant;
	p->metric = metric;
	p->status = status;
	pthread_mutex_lock(&ev->mu);
	if (ev->running && !ev->stop) {
		if (ev->tail)
			ev->tail->next = p;
		else
			ev->head = p;
		ev->tail = p;
		queued = 1;
		pthread_cond_signal(&ev->cv);
	}
	pthread_mutex_unlock(&ev->mu);
	if (!queued) {
		p->rc = append(ev, p->rec, 1);
		send_pending(p);
		pending_free(p);
	}
}
