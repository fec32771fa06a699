/* cas.h: what the parts of arca-cas share.
 *
 * struct cas is the daemon's one context, made by main.c and read by every
 * worker thread; whatever in it changes after start (audit log, trust
 * list, metrics) carries its own lock or uses atomics. struct cas_worker is
 * one thread: its own event loop, HTTP server and store connection, so a
 * request never touches another thread's objects. struct cas_req lives for
 * one request on the worker's stack.
 *
 * Replies go through cas_reply/cas_fail only, so every response is counted
 * and every error body is one of the fixed codes of docs/CONTRACTS.md. */
#ifndef CAS_CAS_H
#define CAS_CAS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/err.h"
#include "arca/x509.h"
#include "policy_cache.h"
#include "store.h"

struct event;
struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_request;
struct arca_audit;
struct cas_req;
struct cas_worker;

#define CAS_DEFAULT_LISTEN "127.0.0.1:8443"
#define CAS_DEFAULT_LAS "/run/arca/las.sock"
#define CAS_DEFAULT_NONCE_TTL 60
#define CAS_MAX_THREADS 16

/* Error codes of docs/CONTRACTS.md, in one table (reply.c). */
enum cas_code {
	CAS_BAD_REQUEST,
	CAS_TOO_LARGE,
	CAS_UNAUTHENTICATED,
	CAS_FORBIDDEN,
	CAS_NOT_FOUND,
	CAS_CONFLICT,
	CAS_STALE_PREDECESSOR,
	CAS_INVALID_POLICY,
	CAS_NONCE_INVALID,
	CAS_NONCE_EXPIRED,
	CAS_EVIDENCE_INVALID,
	CAS_PLATFORM_UNTRUSTED,
	CAS_BINDING_MISMATCH,
	CAS_UNKNOWN_SERVICE,
	CAS_PLATFORM_NOT_ALLOWED,
	CAS_MEASUREMENT_MISMATCH,
	CAS_PLATFORM_UNPROTECTED,
	/* POST /v1/volumes/S/V/tag: two refusals with the wire code
	 * "forbidden" but sentences of their own, and the rollback. */
	CAS_VOLUME_TOKEN,
	CAS_VOLUME_READONLY,
	CAS_VOLUME_ROLLBACK,
	CAS_INTERNAL,
	CAS_NCODES
};
const char *cas_code_name(enum cas_code c);
int cas_code_status(enum cas_code c);
const char *cas_code_sentence(enum cas_code c);

/* Endpoints, for routing and metrics. */
enum cas_endpoint {
	EP_HEALTHZ,
	EP_METRICS,
	EP_SESSION_CREATE,
	EP_SESSION_UPDATE,
	EP_SESSION_READ,
	EP_NONCE,
	EP_ATTEST,
	EP_CAS_EVIDENCE,
	EP_VOLUME_TAG,
	EP_OTHER,
	EP_COUNT
};
const char *cas_endpoint_name(enum cas_endpoint ep);

/* ---- metrics.c ---- */
#define CAS_METRIC_STATUSES 12
struct cas_metrics {
	/* requests[endpoint][status slot]; slots in metrics.c */
	unsigned long long requests[EP_COUNT][CAS_METRIC_STATUSES];
	unsigned long long attest_granted;
	unsigned long long attest_refused[CAS_NCODES];
	unsigned long long volume_tags;      /* tags stored */
	unsigned long long volume_rollbacks; /* 409 volume_rollback */
};
void cas_metrics_count_request(struct cas_metrics *m, enum cas_endpoint ep, int status);
void cas_metrics_count_attest(struct cas_metrics *m, int granted, enum cas_code why);

/* ---- trust.c: STATE/las-trust, reread when it changes ---- */
struct cas_trust {
	pthread_mutex_t mu;
	char path[4096];
	/* identity of the version loaded: a change of any reloads */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int loaded;
	int bad;               /* that version could not be used */
	char (*fprs)[ARCA_FPR_LEN];
	size_t n;
};
int cas_trust_init(struct cas_trust *t, const char *state_dir, struct arca_errbuf *e) ARCA_MUST_CHECK;
void cas_trust_free(struct cas_trust *t);
/* 1 when fpr is listed, 0 when not, negative when the file cannot be read
 * (then nothing is trusted). */
int cas_trust_has(struct cas_trust *t, const char *fpr);

/* ---- events.c: the audit log, shared by the workers ---- */
struct cas_pending;
struct cas_events {
	struct arca_audit *log;
	/* A store connection of its own, for recording the log's head after
	 * writes made outside a session transaction (writer thread, open and
	 * close); store_mu keeps its uses one at a time. */
	struct cas_store *store;
	pthread_mutex_t store_mu;
	/* The writer thread's queue (group commit, see events.c). */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cas_pending *head, *tail;
	int running, stop;
	pthread_t thread;
	unsigned long long records, writes; /* atomics, for /metrics */
};
/* Opens the log at path and takes store (closed by cas_events_close, even
 * when this fails). Refuses (ARCA_ESTALE, message in e) a log that no
 * longer holds the head store recorded: cut short or rewritten. With
 * accept_log such a log is taken anyway, the break is recorded as the
 * log's next record, and the store anchors to the log as it is. */
int cas_events_open(struct cas_events *ev, const char *path, struct cas_store *store, int accept_log,
		    struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Starts the writer thread; until then, and after cas_events_stop,
 * cas_event_then_reply appends synchronously. */
int cas_events_start(struct cas_events *ev) ARCA_MUST_CHECK;
/* Writes what is queued, hands the replies to their workers, joins. */
void cas_events_stop(struct cas_events *ev);
/* After the workers stopped: records the log's head a last time, closes
 * the log and the store connection. */
void cas_events_close(struct cas_events *ev);
/* One record: {"event", "outcome", "session", "service", "caller", "peer",
 * "error", "reason"} plus extra's fields, which must not use the log's own
 * keys (seq, time, prev, hash); extra may be NULL and is not taken. NULL
 * strings are left out. Never pass a secret value. */
struct cas_event {
	const char *event;
	const char *session;
	const char *service;
	const char *caller;
	const char *peer;
	const char *error;   /* a cas_code name for refusals */
	const char *reason;  /* the precise reason, for operators */
	json_t *extra;
};
/* Appends now, waits for the disk and records the log's new head in s,
 * whose write transaction holds the change (session changes). Fails
 * closed: callers refuse (and roll back) what they cannot audit. */
int cas_event(struct cas_events *ev, struct cas_store *s, const struct cas_event *e) ARCA_MUST_CHECK;
/* Queues the record and answers r with (status, body) once the record is
 * on disk. grant = 1 marks a reply that may only go out when the record
 * was written (it is replaced by an internal error otherwise); a refusal
 * (grant = 0) is sent either way. metric: CAS_METRIC_NONE, CAS_METRIC_GRANT
 * or the cas_code of an attestation refusal, counted when the reply goes
 * out. The request must not be touched by the caller afterwards. */
#define CAS_METRIC_NONE (-1)
#define CAS_METRIC_GRANT (-2)
void cas_event_then_reply(struct cas_req *r, const struct cas_event *e, int grant, int metric, int status,
			  const void *body, size_t len);
/* Worker side: answers the requests whose records are written. */
void cas_events_deliver(int fd, short what, void *worker);
/* Frees replies a stopped worker never delivered. */
void cas_events_drop(struct cas_worker *w);

/* ---- the daemon ---- */
struct cas_config {
	const char *state_dir;
	const char *listen;
	const char *key_file; /* NULL: STATE/master.key */
	const char *las_path;
	int nonce_ttl;        /* seconds */
	int threads;
};

struct cas {
	struct cas_config cfg;
	char store_path[4096];
	struct arca_identity id;
	uint8_t *master_key; /* secret memory, CAS_MASTER_KEY_LEN */
	uint8_t spki_sha256[32];
	pthread_mutex_t store_wlock;
	struct cas_events events;
	struct cas_trust trust;
	struct cas_metrics metrics;
	SSL_CTX *ssl;
	int listen_fd;
	char listen_addr[300]; /* HOST:PORT actually bound */
};

struct cas_worker {
	struct cas *cas;
	int index;
	struct event_base *base;
	struct evhttp *http;
	struct event *purge_timer;
	/* Replies whose audit records the writer thread finished. */
	struct event *done_ev;
	pthread_mutex_t done_mu;
	struct cas_pending *done;
	struct evconnlistener *listener;
	struct cas_store *store;
	pthread_t thread;
	/* Per-worker caches of attestation work (attest.c). */
	struct cas_policy_cache policies;
	struct {
		uint8_t pub[32];
		char fpr[ARCA_FPR_LEN];
		int valid;
	} las_fpr[4];
	unsigned las_fpr_next;
};

struct cas_req {
	struct cas_worker *w;
	struct evhttp_request *req;
	enum cas_endpoint ep;
	const char *path_arg;          /* what follows the endpoint prefix */
	int has_caller;                /* a client certificate was presented */
	char caller[ARCA_FPR_LEN];
	char peer[64];                 /* "ADDR:PORT", for the audit log */
	int replied;
};

/* server.c */
int cas_server_init(struct cas *c, struct arca_errbuf *e) ARCA_MUST_CHECK;
int cas_worker_init(struct cas *c, struct cas_worker *w, int index, struct arca_errbuf *e) ARCA_MUST_CHECK;
void cas_worker_free(struct cas_worker *w);
void *cas_worker_run(void *arg);
void cas_server_free(struct cas *c);

/* reply.c */
void cas_reply(struct cas_req *r, int status, const char *content_type, const void *body, size_t len);
/* The same for a request answered later (no struct cas_req any more). */
void cas_send(struct cas_worker *w, struct evhttp_request *req, enum cas_endpoint ep, int status,
	      const char *content_type, const void *body, size_t len);
/* The JSON error body of code; detail as for cas_fail. */
int cas_error_body(enum cas_code code, int authenticated, const char *detail, struct arca_buf *out) ARCA_MUST_CHECK;
/* Error reply. detail replaces the fixed sentence only when the caller is
 * authenticated (has a client certificate); pass NULL otherwise. */
void cas_fail(struct cas_req *r, enum cas_code code, const char *detail);
/* The request body, NUL-terminated in a pulled-up evbuffer; ARCA_ETOOBIG
 * beyond ARCA_MAX_BODY. */
int cas_body(struct cas_req *r, const uint8_t **p, size_t *n) ARCA_MUST_CHECK;
/* Overwrites the request body in libevent's buffer (it may hold secret
 * values given in a policy). */
void cas_body_wipe(struct cas_req *r);

/* Handlers (sessions.c, attest.c, cas_evidence.c, metrics.c, volumes.c). */
void cas_handle_session_create(struct cas_req *r);
void cas_handle_session_update(struct cas_req *r);
void cas_handle_session_read(struct cas_req *r);
void cas_handle_nonce(struct cas_req *r);
void cas_handle_attest(struct cas_req *r);
void cas_handle_cas_evidence(struct cas_req *r);
/* volumes.c: POST /v1/volumes/S/V/tag; r->path_arg is "S/V/tag" decoded. */
void cas_handle_volume_tag(struct cas_req *r);
void cas_handle_metrics(struct cas_req *r);
void cas_handle_healthz(struct cas_req *r);

/* log.c: one line on stderr, "arca-cas: LEVEL: …". Never a secret. */
void cas_log(const char *level, const char *fmt, ...) ARCA_PRINTF(2, 3);

#endif
