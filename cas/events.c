/* events.c: what CAS writes to its audit log, and when it answers.
 *
 * Every record is on disk (the append fdatasyncs) before the reply it
 * accounts for leaves CAS: a configuration is never released, a refusal
 * never reported, a session never changed without its record. Records
 * carry names, fingerprints, codes and reasons only, never a secret value.
 * Each record is its own line, whatever the load.
 *
 * Group commit. An fdatasync costs far more than an attestation's CPU
 * work (0.25 to 1 ms here against about 0.4 ms), so attestations do not
 * append themselves: they queue their record with the reply it unlocks,
 * and the worker goes on serving. One writer thread takes everything
 * queued at that moment and appends it with arca_audit_append_many, one
 * line per record in queue order but one write and one fdatasync for all;
 * then each reply goes back to the worker that owns its connection
 * (event_active), which sends it. Session changes append synchronously
 * inside their store transaction (cas_event), because the transaction
 * must not outlive the request.
 *
 * Anchoring. The chain cannot show lines cut off the end of the log, nor
 * a log rewritten from some line on, so the sealed store keeps the log's
 * head (seq and hash of its last record): a session change records it in
 * its own transaction, the writer thread after each batch's fdatasync.
 * The writer's update is not made durable by itself (that would be a
 * second sync per batch): a power failure can lose it, which leaves the
 * store behind the log. So at start the log must still hold the recorded
 * record with the recorded hash, and records after it are accepted;
 * those (normally at most the last batch) are the ones that could be cut
 * off unnoticed. */
#include "cas.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "arca/audit.h"
#include "arca/encode.h"

/* Records per write: a few hundred bytes each, far below the audit log's
 * limit on one append, and a bound on the writer's stack array. */
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

static int events_init(struct cas_events *ev, struct cas_store *store, struct arca_errbuf *e)
{
	memset(ev, 0, sizeof *ev);
	ev->store = store;
	if (pthread_mutex_init(&ev->mu, NULL) != 0 || pthread_cond_init(&ev->cv, NULL) != 0 ||
	    pthread_mutex_init(&ev->store_mu, NULL) != 0)
		return arca_errf(e, ARCA_ENOMEM, "audit: cannot create a lock");
	return 0;
}

/* The log's head into the events' own store connection. A failure only
 * widens the window of records a truncation could remove unnoticed, so it
 * is logged and the records it follows stand. */
static int record_head(struct cas_events *ev, int reset)
{
	uint8_t hash[32];
	uint64_t seq = 0;
	int rc;

	if (!ev->log || !ev->store)
		return ARCA_EINVAL;
	pthread_mutex_lock(&ev->store_mu);
	/* Read under store_mu: two threads recording in turn never store an
	 * older head after a newer one (the store refuses to go back anyway). */
	rc = arca_audit_head(ev->log, &seq, hash);
	if (rc == 0)
		rc = cas_store_begin_write(ev->store, 0);
	if (rc == 0) {
		rc = cas_store_audit_head_put(ev->store, seq, hash, reset);
		if (rc == 0)
			rc = cas_store_commit(ev->store);
		else
			cas_store_rollback(ev->store);
	}
	pthread_mutex_unlock(&ev->store_mu);
	if (rc < 0)
		cas_log("warning", "cannot record the audit log's head (record %llu) in the store: %s",
			(unsigned long long)seq, arca_strerror(rc));
	return rc;
}

static int accept_broken(struct cas_events *ev, const char *path, uint64_t seq, const uint8_t hash[32],
			 struct arca_errbuf *e)
{
	char hex[65];
	json_t *rec;
	uint64_t log_seq;
	uint8_t log_hash[32];
	int rc;

	rc = arca_audit_open(path, &ev->log, e);
	if (rc < 0)
		return rc;
	arca_hex_encode(hash, 32, hex);
	if (arca_audit_head(ev->log, &log_seq, log_hash) < 0)
		return arca_errf(e, ARCA_EIO, "audit log %s: cannot read its head", path);
	cas_log("warning", "audit log %s accepted with --accept-audit-log: it ends at record %llu and does not hold "
			   "record %llu the store recorded; continuing from here and recording the break in the log",
		path, (unsigned long long)log_seq, (unsigned long long)seq);
	rec = json_pack("{s:s,s:s,s:s,s:I,s:s}", "event", "audit_log_accepted", "outcome", "ok", "reason",
			"the log did not hold the record the store recorded (cut short, rewritten or lost); an "
			"operator started arca-cas with --accept-audit-log",
			"store_seq", (json_int_t)seq, "store_hash", hex);
	if (!rec)
		return arca_errf(e, ARCA_ENOMEM, "audit: out of memory");
	rc = arca_audit_append(ev->log, rec);
	json_decref(rec);
	if (rc < 0)
		return arca_errf(e, rc, "audit log %s: cannot record the break: %s", path, arca_strerror(rc));
	return record_head(ev, 1) < 0 ? arca_errf(e, ARCA_EIO, "store: cannot record the audit log's head") : 0;
}

int cas_events_open(struct cas_events *ev, const char *path, struct cas_store *store, int accept_log,
		    struct arca_errbuf *e)
{
	uint8_t hash[32];
	uint64_t seq = 0;
	int rc;

	GUARD(events_init(ev, store, e));
	if (!store)
		return arca_errf(e, ARCA_EINVAL, "audit: no store to anchor the log in");
	rc = cas_store_audit_head_get(store, &seq, hash);
	if (rc == ARCA_ENOTFOUND) {
		/* A new store, or one from before anchoring: anchor from now on. */
		seq = 0;
		memset(hash, 0, sizeof hash);
	} else if (rc < 0) {
		return arca_errf(e, rc, "store: the audit log's recorded head does not open (%s)", arca_strerror(rc));
	}
	rc = arca_audit_open_anchored(path, seq, hash, &ev->log, e);
	if (rc == ARCA_ESTALE && accept_log)
		return accept_broken(ev, path, seq, hash, e);
	if (rc == ARCA_ESTALE && e != NULL) {
		size_t l = strlen(e->msg);
		if (l + 1 < sizeof e->msg)
			snprintf(e->msg + l, sizeof e->msg - l,
				 " (if it cannot be restored, start once with --accept-audit-log to continue from the "
				 "log as it is; the break is then recorded in it)");
	}
	if (rc < 0)
		return rc;
	if (accept_log)
		cas_log("info", "--accept-audit-log given, but the audit log is intact; nothing to accept");
	/* Catch up with records written after the last recorded head. */
	return record_head(ev, 0) < 0 ? arca_errf(e, ARCA_EIO, "store: cannot record the audit log's head") : 0;
}

void cas_events_close(struct cas_events *ev)
{
	cas_events_stop(ev);
	/* The workers have stopped: records they appended without the writer
	 * thread get their anchor now, so a clean stop leaves none unanchored. */
	if (ev->log && ev->store)
		(void)record_head(ev, 0);
	if (ev->log)
		arca_audit_close(ev->log);
	ev->log = NULL;
	cas_store_close(ev->store);
	ev->store = NULL;
	pthread_cond_destroy(&ev->cv);
	pthread_mutex_destroy(&ev->mu);
	pthread_mutex_destroy(&ev->store_mu);
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
	if (strstr(e->event, "refused") || strcmp(e->event, "volume_rollback") == 0)
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

static void count(struct cas_events *ev, size_t nrecords)
{
	__atomic_fetch_add(&ev->records, nrecords, __ATOMIC_RELAXED);
	__atomic_fetch_add(&ev->writes, 1, __ATOMIC_RELAXED);
}

static int append(struct cas_events *ev, json_t *rec)
{
	int rc = ev->log ? arca_audit_append(ev->log, rec) : ARCA_EIO;

	if (rc == 0)
		count(ev, 1);
	else
		cas_log("error", "audit log append failed (%s); refusing what it should record", arca_strerror(rc));
	return rc;
}

int cas_event(struct cas_events *ev, struct cas_store *s, const struct cas_event *e)
{
	json_t *o = event_json(e);
	uint8_t hash[32];
	uint64_t seq;
	int rc;

	ENSURE(o, ARCA_ENOMEM);
	rc = append(ev, o);
	json_decref(o);
	GUARD(rc);
	/* The head may already be a later record of another thread: it is on
	 * disk as well, and the store only moves forward. */
	GUARD(arca_audit_head(ev->log, &seq, hash));
	rc = cas_store_audit_head_put(s, seq, hash, 0);
	if (rc < 0)
		cas_log("error", "cannot record the audit log's head in the store (%s); refusing the change",
			arca_strerror(rc));
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

/* Hands n replies, whose rc is set, back to their workers. */
static void complete(struct cas_pending *first, size_t n)
{
	struct cas_worker *woken[CAS_MAX_THREADS];
	size_t nwoken = 0;

	for (size_t i = 0; i < n && first; i++) {
		struct cas_pending *p = first, *q = first->next;
		size_t k;
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

/* Appends the records of n queued replies, one line each, in one write,
 * and sets each reply's rc. */
static void write_chunk(struct cas_events *ev, struct cas_pending *first, size_t n)
{
	json_t *recs[CAS_AUDIT_MAX_BATCH];
	struct cas_pending *p;
	size_t i;
	int rc;

	for (i = 0, p = first; i < n; i++, p = p->next)
		recs[i] = p->rec;
	rc = ev->log ? arca_audit_append_many(ev->log, recs, n) : ARCA_EIO;
	if (rc == 0) {
		count(ev, n);
	} else if (n > 1 && (rc == ARCA_EINVAL || rc == ARCA_ETOOBIG)) {
		/* Nothing was written and the log is fine, but one record (or
		 * their sum) did not fit: one record must not cost the others
		 * their replies, so each goes alone. */
		for (i = 0, p = first; i < n; i++, p = p->next)
			p->rc = append(ev, p->rec);
		return;
	} else {
		cas_log("error", "audit log append of %zu record(s) failed (%s); refusing what they should record", n,
			arca_strerror(rc));
	}
	for (i = 0, p = first; i < n; i++, p = p->next)
		p->rc = rc;
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
		if (list) {
			while (list) {
				struct cas_pending *rest = list;
				size_t n = 0;
				while (rest && n < CAS_AUDIT_MAX_BATCH) {
					rest = rest->next;
					n++;
				}
				write_chunk(ev, list, n);
				complete(list, n);
				list = rest;
			}
			/* After the replies: they wait for the disk, not for the
			 * anchor, which may lag (see the top of this file). */
			(void)record_head(ev, 0);
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
		/* The head is recorded when the events close: this worker may
		 * not take the store's write lock here (see cas_events_close). */
		p->rc = append(ev, p->rec);
		send_pending(p);
		pending_free(p);
	}
}
