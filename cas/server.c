/* server.c: TLS 1.3 + HTTP for arca-cas over libevent, and the routing of
 * requests to their handlers.
 *
 * Threading: N workers, each with its own event_base, evhttp and store
 * connection, accept from one shared listening socket (each through its
 * own dup of the descriptor). A connection lives its whole life on the
 * worker that accepted it, so no libevent object is shared; what workers
 * share (SSL_CTX, audit log, trust list, metrics, store write lock) is
 * thread-safe by itself. While one worker waits in fdatasync for the audit
 * log, the others keep serving.
 *
 * TLS: the server presents CAS's Ed25519 identity; it requests a client
 * certificate and accepts any (callers are authorized by the fingerprint
 * of the key they proved, not by a CA) but requires none, so shields attest
 * without one. Resumption is off: nothing here needs it and every
 * connection then proves its key afresh. */
#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "arca/proto.h"

#define CAS_IDLE_TIMEOUT_S 10
#define CAS_MAX_HEADERS (16u << 10)
#define CAS_PURGE_INTERVAL_S 30
#define CAS_LISTEN_BACKLOG 4096

/* Authorization is by fingerprint, so every chain is acceptable here: the
 * TLS handshake has already proven that the client holds the key. */
static int verify_any(int preverify_ok, X509_STORE_CTX *x)
{
	(void)preverify_ok;
	(void)x;
	return 1;
}

static int ssl_fail(struct arca_errbuf *e, const char *what)
{
	unsigned long err = ERR_get_error();
	char buf[256];

	ERR_error_string_n(err, buf, sizeof buf);
	ERR_clear_error();
	return arca_errf(e, ARCA_ECRYPTO, "TLS setup: %s: %s", what, err ? buf : "failed");
}

static int make_ssl_ctx(struct cas *c, struct arca_errbuf *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return ssl_fail(e, "SSL_CTX_new");
	c->ssl = ctx;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		return ssl_fail(e, "TLS 1.3 only");
	if (SSL_CTX_use_certificate(ctx, c->id.cert) != 1 || SSL_CTX_use_PrivateKey(ctx, c->id.key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return ssl_fail(e, "identity");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_any);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!SSL_CTX_set_num_tickets(ctx, 0))
		return ssl_fail(e, "tickets");
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	/* Writes may be retried from another buffer position by libevent;
	 * idle connections give their TLS buffers back (no measurable cost
	 * per attestation, much less memory for hundreds of idle clients). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(out, cap, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
	} else {
		snprintf(out, cap, "?");
	}
}

/* HOST:PORT or [V6]:PORT. Unlike arca_hostport_split (a client's view)
 * this accepts port 0, so that tests can let the kernel pick a free port;
 * the ready line reports the port actually bound. */
static int split_listen(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon, *h = s, *hend;
	size_t hl, pl;

	if (*s == '[') {
		hend = strchr(s, ']');
		if (!hend || hend[1] != ':')
			return ARCA_EINVAL;
		h = s + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return ARCA_EINVAL;
		hend = colon;
	}
	hl = (size_t)(hend - h);
	pl = strlen(colon + 1);
	if (hl == 0 || hl >= hcap || pl == 0 || pl > 5 || pl >= pcap || strspn(colon + 1, "0123456789") != pl)
		return ARCA_EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	memcpy(port, colon + 1, pl + 1);
	return strtol(port, NULL, 10) <= 65535 ? 0 : ARCA_EINVAL;
}

static int make_listener(struct cas *c, struct arca_errbuf *e)
{
	char host[256], port[32];
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = -1, one = 1, gai;

	if (split_listen(c->cfg.listen, host, sizeof host, port, sizeof port) < 0)
		return arca_errf(e, ARCA_EINVAL, "--listen %s: expected HOST:PORT (IPv6 as [ADDR]:PORT)", c->cfg.listen);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0)
		return arca_errf(e, ARCA_EINVAL, "--listen %s: %s", c->cfg.listen, gai_strerror(gai));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		/* Accepted sockets inherit it: evhttp writes a reply's head and
		 * body separately, and Nagle plus delayed ACKs would hold the
		 * body back for tens of milliseconds. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, CAS_LISTEN_BACKLOG) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "--listen %s: cannot listen: %s", c->cfg.listen, strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		close(fd);
		return arca_errf(e, ARCA_EIO, "getsockname: %s", strerror(errno));
	}
	format_addr((struct sockaddr *)&ss, c->listen_addr, sizeof c->listen_addr);
	c->listen_fd = fd;
	return 0;
}

int cas_server_init(struct cas *c, struct arca_errbuf *e)
{
	c->listen_fd = -1;
	GUARD(make_ssl_ctx(c, e));
	return make_listener(c, e);
}

void cas_server_free(struct cas *c)
{
	if (c->ssl)
		SSL_CTX_free(c->ssl);
	c->ssl = NULL;
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	c->listen_fd = -1;
}

/* ---- per connection ---- */

/* evhttp falls back to a plain socket when this returns NULL, so dispatch
 * refuses any request that did not arrive over TLS. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct cas_worker *w = arg;
	SSL *ssl = SSL_new(w->cas->ssl);
	struct bufferevent *bev;

	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void accept_again(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

/* Out of descriptors or memory: pause this listener's accepts briefly
 * instead of spinning on a socket that stays readable; connections being
 * served go on. (The callback's own argument is evhttp's, so the timer
 * carries the listener.) */
static void accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	cas_log("warning", "accept: %s; pausing new connections for 100 ms", evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	if (event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, accept_again, l, &tv) != 0)
		evconnlistener_enable(l);
}

static void purge_nonces(evutil_socket_t fd, short what, void *arg)
{
	struct cas_worker *w = arg;
	long long n = 0;

	(void)fd;
	(void)what;
	if (cas_store_nonce_purge(w->store, cas_now_ms(), &n) < 0)
		cas_log("warning", "purging expired nonces failed");
}

/* ---- routing ---- */

static int path_is(const char *path, const char *want)
{
	return strcmp(path, want) == 0;
}

static void route(struct cas_req *r, const char *path, enum evhttp_cmd_type m, char **decoded)
{
	static const char sess_prefix[] = "/v1/sessions/";
	static const char vol_prefix[] = "/v1/volumes/";

	if (path_is(path, "/healthz") && m == EVHTTP_REQ_GET) {
		r->ep = EP_HEALTHZ;
		cas_handle_healthz(r);
	} else if (path_is(path, "/metrics") && m == EVHTTP_REQ_GET) {
		r->ep = EP_METRICS;
		cas_handle_metrics(r);
	} else if (path_is(path, "/v1/sessions") && m == EVHTTP_REQ_POST) {
		r->ep = EP_SESSION_CREATE;
		cas_handle_session_create(r);
	} else if (strncmp(path, sess_prefix, sizeof sess_prefix - 1) == 0 &&
		   (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_PUT)) {
		size_t len = 0;
		r->ep = m == EVHTTP_REQ_GET ? EP_SESSION_READ : EP_SESSION_UPDATE;
		*decoded = evhttp_uridecode(path + sizeof sess_prefix - 1, 0, &len);
		/* A %00 would cut the name short in C; such a name is invalid
		 * anyway, so the handlers answer not_found. */
		r->path_arg = *decoded && strlen(*decoded) == len ? *decoded : "";
		if (m == EVHTTP_REQ_GET)
			cas_handle_session_read(r);
		else
			cas_handle_session_update(r);
	} else if (path_is(path, "/v1/attest/nonce") && m == EVHTTP_REQ_POST) {
		r->ep = EP_NONCE;
		cas_handle_nonce(r);
	} else if (path_is(path, "/v1/attest") && m == EVHTTP_REQ_POST) {
		r->ep = EP_ATTEST;
		cas_handle_attest(r);
	} else if (strncmp(path, vol_prefix, sizeof vol_prefix - 1) == 0 && m == EVHTTP_REQ_POST) {
		size_t len = 0;
		r->ep = EP_VOLUME_TAG;
		/* Session names may hold '/', raw or as %2F: the handler splits
		 * the decoded "S/V/tag" at its last two slashes (a volume name
		 * has none). */
		*decoded = evhttp_uridecode(path + sizeof vol_prefix - 1, 0, &len);
		r->path_arg = *decoded && strlen(*decoded) == len ? *decoded : "";
		cas_handle_volume_tag(r);
	} else if (path_is(path, "/v1/cas/evidence") && m == EVHTTP_REQ_GET) {
		r->ep = EP_CAS_EVIDENCE;
		cas_handle_cas_evidence(r);
	} else {
		cas_fail(r, CAS_NOT_FOUND, NULL);
	}
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct cas_worker *w = arg;
	struct cas_req r;
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	char *decoded = NULL, *addr = NULL;
	ev_uint16_t port = 0;
	X509 *cert;

	if (!ssl) {
		/* Only after an allocation failure in make_bev: answer
		 * nothing useful over a connection that is not TLS. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		evhttp_send_error(req, 500, NULL);
		return;
	}
	memset(&r, 0, sizeof r);
	r.w = w;
	r.req = req;
	r.ep = EP_OTHER;
	evhttp_connection_get_peer(conn, &addr, &port);
	snprintf(r.peer, sizeof r.peer, "%s:%u", addr ? addr : "?", (unsigned)port);
	cert = SSL_get0_peer_certificate(ssl);
	if (cert) {
		EVP_PKEY *pk = X509_get0_pubkey(cert);
		if (pk && arca_fpr_pkey(pk, r.caller) == 0)
			r.has_caller = 1;
	}
	if (!path || !*path)
		cas_fail(&r, CAS_NOT_FOUND, NULL);
	else
		route(&r, path, evhttp_request_get_command(req), &decoded);
	if (!r.replied)
		cas_fail(&r, CAS_INTERNAL, NULL);
	free(decoded);
}

/* ---- workers ---- */

int cas_worker_init(struct cas *c, struct cas_worker *w, int index, struct arca_errbuf *e)
{
	struct evhttp_bound_socket *bs;
	int fd;

	memset(w, 0, sizeof *w);
	w->cas = c;
	w->index = index;
	w->base = event_base_new();
	if (!w->base)
		return arca_errf(e, ARCA_ENOMEM, "event_base_new failed");
	w->http = evhttp_new(w->base);
	if (!w->http)
		return arca_errf(e, ARCA_ENOMEM, "evhttp_new failed");
	evhttp_set_bevcb(w->http, make_bev, w);
	evhttp_set_gencb(w->http, dispatch, w);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
	evhttp_set_max_body_size(w->http, ARCA_MAX_BODY);
	evhttp_set_max_headers_size(w->http, CAS_MAX_HEADERS);
	evhttp_set_timeout(w->http, CAS_IDLE_TIMEOUT_S);
	fd = fcntl(c->listen_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "dup: %s", strerror(errno));
	bs = evhttp_accept_socket_with_handle(w->http, fd);
	if (!bs) {
		close(fd);
		return arca_errf(e, ARCA_EIO, "evhttp cannot accept on the listening socket");
	}
	w->listener = evhttp_bound_socket_get_listener(bs);
	evconnlistener_set_error_cb(w->listener, accept_error);
	if (pthread_mutex_init(&w->done_mu, NULL) != 0)
		return arca_errf(e, ARCA_ENOMEM, "mutex");
	w->done_ev = event_new(w->base, -1, 0, cas_events_deliver, w);
	if (!w->done_ev)
		return arca_errf(e, ARCA_ENOMEM, "event_new failed");
	GUARD(cas_store_open(c->store_path, c->master_key, &c->store_wlock, &w->store, e));
	if (index == 0) {
		struct timeval tv = {.tv_sec = CAS_PURGE_INTERVAL_S, .tv_usec = 0};
		w->purge_timer = event_new(w->base, -1, EV_PERSIST, purge_nonces, w);
		if (!w->purge_timer || event_add(w->purge_timer, &tv) != 0)
			return arca_errf(e, ARCA_ENOMEM, "nonce purge timer");
	}
	return 0;
}

void cas_worker_free(struct cas_worker *w)
{
	/* Replies never delivered: their requests go with evhttp_free. */
	cas_events_drop(w);
	if (w->done_ev) {
		event_free(w->done_ev);
		pthread_mutex_destroy(&w->done_mu);
	}
	if (w->purge_timer)
		event_free(w->purge_timer);
	if (w->http)
		evhttp_free(w->http);
	if (w->base)
		event_base_free(w->base);
	cas_store_close(w->store);
	cas_policy_cache_free(&w->policies);
	memset(w, 0, sizeof *w);
}

void *cas_worker_run(void *arg)
{
	struct cas_worker *w = arg;

	if (event_base_dispatch(w->base) < 0)
		cas_log("error", "worker %d: event loop failed", w->index);
	return NULL;
}
