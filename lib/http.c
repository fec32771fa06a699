/* http.c: the blocking HTTPS/1.1 client of the CLI and the shield, and its
 * response parser.
 *
 * There is no CA: the server is whoever holds the key whose fingerprint is
 * pinned. TLS 1.3 makes the server prove possession of that key in
 * CertificateVerify, which OpenSSL checks whatever the verify mode, so
 * comparing the fingerprint of the certificate's key is enough. The pin is
 * checked as soon as the certificate arrives (before a client certificate
 * would go to an impostor) and again after the handshake.
 *
 * The shield runs this inside someone else's program, so nothing here may
 * touch process-wide state: SIGPIPE is avoided with MSG_NOSIGNAL through a
 * small socket BIO of our own instead of ignoring the signal, and every
 * wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "arca/http.h"
#include "arca/x509.h"

#define HTTP_MAX_HEAD 16384
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_PATH 4096
#define HTTP_TIMEOUT_S 10          /* connect, handshake, and each read or write */
#define HTTP_REQUEST_DEADLINE_S 120 /* a whole exchange, against a server that drips */
#define HTTP_READ_CHUNK 16384
#define HOST_MAX 253
/* Nothing arca receives over HTTP is larger than a sealed configuration. */
#define HTTP_MAX_RESPONSE ((size_t)64 << 20)

/* Our BIO reports itself as a descriptor BIO so SSL_get_fd works. */
#define ARCA_BIO_TYPE (0x7a | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR)

struct arca_http {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO_METHOD *bm;
	int fd;
	char host[HOST_MAX + 1];
	char port[6];
	char hostport[HOST_MAX + 10];
	char pin[ARCA_FPR_LEN];   /* given, or learned on the first connection */
	int have_pin;
	char fpr[ARCA_FPR_LEN];   /* what the server presented */
	int pin_mismatch;
	int io_errno;             /* errno of the last failed socket call */
	int timed_out;
	int probing;              /* non-blocking liveness check of a kept-alive connection */
	int broken;               /* a TLS call failed: no close_notify (OpenSSL forbids it) */
	struct timespec deadline;
};

/* ---- response parser ---- */

static int tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value and reason phrase bytes: VCHAR, obs-text, SP, HTAB. */
static int vchar(uint8_t c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static int name_is(const uint8_t *p, size_t n, const char *lc)
{
	size_t i;

	if (strlen(lc) != n)
		return 0;
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)lc[i])
			return 0;
	}
	return 1;
}

/* Calls fn for each header line of a complete, CRLF-terminated head. */
typedef int (*header_fn)(void *ctx, const uint8_t *name, size_t nlen, const uint8_t *val, size_t vlen);

static int for_each_header(const uint8_t *p, size_t head_len, header_fn fn, void *ctx)
{
	size_t ls, le, i, nheaders = 0;
	const uint8_t *cr;
	int rc;

	cr = memchr(p, '\r', head_len);
	if (cr == NULL)
		return ARCA_EPARSE;
	ls = (size_t)(cr - p) + 2;
	for (;;) {
		cr = memchr(p + ls, '\r', head_len - ls);
		if (cr == NULL)
			return ARCA_EPARSE;
		le = (size_t)(cr - p);
		if (le == ls)
			return 0; /* the empty line */
		if (++nheaders > HTTP_MAX_HEADERS)
			return ARCA_ETOOBIG;
		/* A name ends at the colon with no space before it (RFC 9112
		 * 5.1); a leading space would be obsolete line folding. */
		for (i = ls; i < le && tchar(p[i]); i++)
			;
		if (i == ls || i == le || p[i] != ':')
			return ARCA_EPARSE;
		{
			size_t ns = ls, nl = i - ls, vs = i + 1, ve = le;

			while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
				vs++;
			while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
				ve--;
			for (i = vs; i < ve; i++)
				if (!vchar(p[i]))
					return ARCA_EPARSE;
			if (fn != NULL) {
				rc = fn(ctx, p + ns, nl, p + vs, ve - vs);
				if (rc < 0)
					return rc;
			}
		}
		ls = le + 2;
	}
}

struct parse_ctx {
	size_t max_body;
	size_t content_length;
	int have_cl;
};

static int parse_header(void *vctx, const uint8_t *name, size_t nlen, const uint8_t *val, size_t vlen)
{
	struct parse_ctx *pc = vctx;
	size_t i, v = 0;

	if (name_is(name, nlen, "transfer-encoding"))
		return ARCA_EUNSUPPORTED;
	if (!name_is(name, nlen, "content-length"))
		return 0;
	/* Two lengths (even equal ones) are how responses get smuggled. */
	if (pc->have_cl || vlen == 0)
		return ARCA_EPARSE;
	for (i = 0; i < vlen; i++) {
		if (val[i] < '0' || val[i] > '9')
			return ARCA_EPARSE;
		if (v > (SIZE_MAX - 9) / 10)
			return ARCA_ETOOBIG;
		v = v * 10 + (size_t)(val[i] - '0');
	}
	if (v > pc->max_body)
		return ARCA_ETOOBIG;
	pc->content_length = v;
	pc->have_cl = 1;
	return 0;
}

long arca_http_parse_response(const uint8_t *p, size_t n, size_t max_body, int *status, size_t *body_off,
			      size_t *body_len)
{
	static const char ver[] = "HTTP/1.1 ";
	struct parse_ctx pc = {.max_body = max_body};
	size_t i, lim, head_len = 0;
	int code, rc;

	if (n == 0)
		return 0;
	if (p == NULL)
		return ARCA_EINVAL;
	/* Refuse a non-HTTP answer at once rather than after 16 KiB. */
	lim = n < sizeof(ver) - 1 ? n : sizeof(ver) - 1;
	if (memcmp(p, ver, lim) != 0)
		return ARCA_EPARSE;
	lim = n < HTTP_MAX_HEAD ? n : HTTP_MAX_HEAD;
	for (i = 0; i < lim; i++) {
		if (p[i] == '\r') {
			if (i + 1 < n && p[i + 1] != '\n')
				return ARCA_EPARSE;
		} else if (p[i] == '\n') {
			/* Bare LF is refused: CRLF only, as we send it. */
			if (i == 0 || p[i - 1] != '\r')
				return ARCA_EPARSE;
			if (i >= 3 && p[i - 2] == '\n') {
				head_len = i + 1;
				break;
			}
		} else if (p[i] == 0) {
			return ARCA_EPARSE;
		}
	}
	if (head_len == 0)
		return n >= HTTP_MAX_HEAD ? ARCA_ETOOBIG : 0;

	/* Status line: "HTTP/1.1 NNN" then CRLF or SP and a reason phrase. */
	if (head_len < 16 || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return ARCA_EPARSE;
	code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	/* We never send Expect or Upgrade, so an interim answer is an error. */
	if (code < 200)
		return ARCA_EPARSE;
	if (p[12] == ' ') {
		for (i = 13; p[i] != '\r'; i++)
			if (!vchar(p[i]))
				return ARCA_EPARSE;
	} else if (p[12] != '\r') {
		return ARCA_EPARSE;
	}

	rc = for_each_header(p, head_len, parse_header, &pc);
	if (rc < 0)
		return rc;
	if (!pc.have_cl)
		return ARCA_EPARSE;
	if (pc.content_length > (size_t)LONG_MAX - head_len)
		return ARCA_ETOOBIG;
	if (n - head_len < pc.content_length)
		return 0;
	if (status != NULL)
		*status = code;
	if (body_off != NULL)
		*body_off = head_len;
	if (body_len != NULL)
		*body_len = pc.content_length;
	return (long)(head_len + pc.content_length);
}

/* ---- host:port ---- */

static int hostname_valid(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > HOST_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

int arca_hostport_split(const char *hostport, char *host, size_t hostcap, char *port, size_t portcap)
{
	const char *h, *colon, *ps;
	size_t hlen, plen, i;
	unsigned long v = 0;
	char tmp[64];
	struct in6_addr a6;

	if (hostport == NULL || host == NULL || port == NULL || hostcap == 0 || portcap == 0)
		return ARCA_EINVAL;
	host[0] = 0;
	port[0] = 0;
	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');

		if (close == NULL || close[1] != ':')
			return ARCA_EINVAL;
		h = hostport + 1;
		hlen = (size_t)(close - h);
		if (hlen == 0 || hlen >= sizeof(tmp))
			return ARCA_EINVAL;
		memcpy(tmp, h, hlen);
		tmp[hlen] = 0;
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return ARCA_EINVAL;
		ps = close + 2;
	} else {
		colon = strrchr(hostport, ':');
		if (colon == NULL)
			return ARCA_EINVAL;
		h = hostport;
		hlen = (size_t)(colon - h);
		/* A bare IPv6 address would be ambiguous: brackets are required. */
		if (memchr(h, ':', hlen) != NULL || !hostname_valid(h, hlen))
			return ARCA_EINVAL;
		ps = colon + 1;
	}
	plen = strlen(ps);
	/* Decimal 1..65535, no sign, no leading zero. */
	if (plen == 0 || plen > 5 || ps[0] == '0')
		return ARCA_EINVAL;
	for (i = 0; i < plen; i++) {
		if (ps[i] < '0' || ps[i] > '9')
			return ARCA_EINVAL;
		v = v * 10 + (unsigned long)(ps[i] - '0');
	}
	if (v < 1 || v > 65535)
		return ARCA_EINVAL;
	if (hlen + 1 > hostcap || plen + 1 > portcap)
		return ARCA_ETOOBIG;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	memcpy(port, ps, plen + 1);
	return 0;
}

/* ---- the socket BIO ---- */

static int deadline_passed(const struct timespec *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

static void set_deadline(struct arca_http *h, int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, &h->deadline);
	h->deadline.tv_sec += seconds;
}

static int bio_write(BIO *b, const char *in, int inl)
{
	struct arca_http *h = BIO_get_data(b);
	ssize_t w;

	BIO_clear_retry_flags(b);
	for (;;) {
		if (deadline_passed(&h->deadline)) {
			h->timed_out = 1;
			return -1;
		}
		w = send(h->fd, in, (size_t)inl, MSG_NOSIGNAL);
		if (w >= 0)
			return (int)w;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			h->timed_out = 1;
		h->io_errno = errno;
		return -1;
	}
}

static int bio_read(BIO *b, char *out, int outl)
{
	struct arca_http *h = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	for (;;) {
		if (!h->probing && deadline_passed(&h->deadline)) {
			h->timed_out = 1;
			return -1;
		}
		r = recv(h->fd, out, (size_t)outl, h->probing ? MSG_DONTWAIT : 0);
		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (h->probing) {
				BIO_set_retry_read(b);
				return -1;
			}
			h->timed_out = 1;
		}
		h->io_errno = errno;
		return -1;
	}
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct arca_http *h = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = h->fd;
		return h->fd;
	default:
		return 0;
	}
}

/* ---- connection ---- */

static void http_drop(struct arca_http *h)
{
	if (h->ssl != NULL) {
		/* close_notify, best effort; we do not wait for the answer. */
		if (!h->broken) {
			h->probing = 1;
			(void)SSL_shutdown(h->ssl);
			h->probing = 0;
		}
		SSL_free(h->ssl);
		h->ssl = NULL;
	}
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
	ERR_clear_error();
}

static int verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct arca_http *h = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	X509 *cert;
	char fpr[ARCA_FPR_LEN];

	(void)ok; /* no CA: chain errors do not matter, the pin does */
	if (h == NULL)
		return 0;
	if (X509_STORE_CTX_get_error_depth(store) != 0)
		return 1;
	cert = X509_STORE_CTX_get_current_cert(store);
	if (cert == NULL || arca_fpr_pkey(X509_get0_pubkey(cert), fpr) < 0)
		return 0;
	memcpy(h->fpr, fpr, sizeof(fpr));
	if (h->have_pin && !arca_ct_eq(fpr, h->pin, ARCA_FPR_LEN - 1)) {
		h->pin_mismatch = 1;
		return 0;
	}
	return 1;
}

static int tcp_connect(struct arca_http *h, struct arca_errbuf *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct timeval tv = {.tv_sec = HTTP_TIMEOUT_S, .tv_usec = 0};
	int fd = -1, rc, err = 0, one = 1, left;
	socklen_t elen;
	struct pollfd pfd;
	struct timespec now;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(h->host, h->port, &hints, &res);
	if (rc != 0)
		return arca_errf(e, ARCA_ENET, "cannot resolve %s: %s", h->host, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			for (;;) {
				clock_gettime(CLOCK_MONOTONIC, &now);
				left = (int)((h->deadline.tv_sec - now.tv_sec) * 1000 +
					     (h->deadline.tv_nsec - now.tv_nsec) / 1000000);
				if (left <= 0) {
					rc = 0;
					break;
				}
				rc = poll(&pfd, 1, left);
				if (rc >= 0 || errno != EINTR)
					break;
			}
			if (rc == 0) {
				err = ETIMEDOUT;
			} else if (rc > 0) {
				elen = sizeof(err);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
					err = errno;
				if (err == 0)
					break;
			} else {
				err = errno;
			}
		} else {
			err = errno;
		}
		close(fd);
		fd = -1;
		if (err == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return arca_errf(e, err == ETIMEDOUT ? ARCA_ETIMEOUT : ARCA_ENET, "cannot connect to %s: %s",
				 h->hostport, strerror(err));
	/* Blocking from here on, each read and write bounded by the timeouts. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		rc = arca_errf(e, ARCA_EIO, "%s: socket options: %s", h->hostport, strerror(errno));
		close(fd);
		return rc;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h->fd = fd;
	return 0;
}

static int is_ip_literal(const char *s)
{
	uint8_t a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static const char *io_why(const struct arca_http *h)
{
	if (h->timed_out)
		return "timed out";
	if (h->io_errno != 0)
		return strerror(h->io_errno);
	return "the connection was closed";
}

static int http_open(struct arca_http *h, struct arca_errbuf *e)
{
	X509 *peer;
	char fpr[ARCA_FPR_LEN];
	BIO *bio;
	int rc;

	h->pin_mismatch = 0;
	h->broken = 0;
	h->io_errno = 0;
	h->timed_out = 0;
	h->fpr[0] = 0;
	set_deadline(h, HTTP_TIMEOUT_S);
	GUARD(tcp_connect(h, e));
	h->ssl = SSL_new(h->ctx);
	bio = BIO_new(h->bm);
	if (h->ssl == NULL || bio == NULL) {
		BIO_free(bio);
		rc = arca_errf(e, ARCA_ENOMEM, "%s: cannot set up TLS", h->hostport);
		goto fail;
	}
	BIO_set_data(bio, h);
	BIO_set_init(bio, 1);
	SSL_set_bio(h->ssl, bio, bio);
	SSL_set_app_data(h->ssl, h);
	if (!is_ip_literal(h->host) && SSL_set_tlsext_host_name(h->ssl, h->host) != 1) {
		rc = arca_errf(e, ARCA_ENOMEM, "%s: cannot set up TLS", h->hostport);
		goto fail;
	}
	if (SSL_connect(h->ssl) != 1) {
		unsigned long ossl = ERR_peek_last_error();

		h->broken = 1;
		if (h->pin_mismatch)
			rc = arca_errf(e, ARCA_EDENIED,
				       "%s presented key %s, which is not the pinned %s: refusing to talk to it",
				       h->hostport, h->fpr, h->pin);
		else if (h->timed_out || h->io_errno != 0)
			rc = arca_errf(e, h->timed_out ? ARCA_ETIMEOUT : ARCA_ENET, "TLS handshake with %s: %s",
				       h->hostport, io_why(h));
		else if (ossl != 0)
			rc = arca_errf(e, ARCA_ENET, "TLS 1.3 handshake with %s failed: %s", h->hostport,
				       ERR_reason_error_string(ossl) != NULL ? ERR_reason_error_string(ossl)
									      : "unknown error");
		else
			rc = arca_errf(e, ARCA_ENET, "TLS handshake with %s failed: %s", h->hostport, io_why(h));
		goto fail;
	}
	/* Checked again here: the verify callback is the early exit, this is
	 * the decision. */
	peer = SSL_get0_peer_certificate(h->ssl);
	if (SSL_version(h->ssl) != TLS1_3_VERSION || peer == NULL ||
	    arca_fpr_pkey(X509_get0_pubkey(peer), fpr) < 0) {
		rc = arca_errf(e, ARCA_ENET, "%s: no TLS 1.3 server certificate", h->hostport);
		goto fail;
	}
	memcpy(h->fpr, fpr, sizeof(fpr));
	if (h->have_pin && !arca_ct_eq(fpr, h->pin, ARCA_FPR_LEN - 1)) {
		rc = arca_errf(e, ARCA_EDENIED, "%s presented key %s, which is not the pinned %s: refusing to talk to it",
			       h->hostport, fpr, h->pin);
		goto fail;
	}
	/* Without a pin, later reconnects must still reach the same server. */
	if (!h->have_pin) {
		memcpy(h->pin, fpr, sizeof(fpr));
		h->have_pin = 1;
	}
	return 0;
fail:
	http_drop(h);
	return rc;
}

int arca_http_connect(const char *hostport, const char *pin, const struct arca_identity *id, struct arca_http **out,
		      struct arca_errbuf *e)
{
	struct arca_http *h;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (hostport == NULL || out == NULL)
		return arca_errf(e, ARCA_EINVAL, "HTTPS: no server given");
	if (pin != NULL && !arca_fpr_valid(pin))
		return arca_errf(e, ARCA_EINVAL, "\"%.80s\" is not a key fingerprint (SHA256:… as arca prints it)", pin);
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return arca_errf(e, ARCA_ENOMEM, "HTTPS: out of memory");
	h->fd = -1;
	if (arca_hostport_split(hostport, h->host, sizeof(h->host), h->port, sizeof(h->port)) < 0) {
		rc = arca_errf(e, ARCA_EINVAL, "\"%.120s\" is not HOST:PORT (IPv6 as [ADDR]:PORT)", hostport);
		goto fail;
	}
	snprintf(h->hostport, sizeof(h->hostport), "%s", hostport);
	if (pin != NULL) {
		memcpy(h->pin, pin, ARCA_FPR_LEN - 1);
		h->pin[ARCA_FPR_LEN - 1] = 0;
		h->have_pin = 1;
	}
	h->ctx = SSL_CTX_new(TLS_client_method());
	h->bm = BIO_meth_new(ARCA_BIO_TYPE, "arca socket");
	if (h->ctx == NULL || h->bm == NULL || BIO_meth_set_write(h->bm, bio_write) != 1 ||
	    BIO_meth_set_read(h->bm, bio_read) != 1 || BIO_meth_set_ctrl(h->bm, bio_ctrl) != 1 ||
	    SSL_CTX_set_min_proto_version(h->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(h->ctx, TLS1_3_VERSION) != 1) {
		rc = arca_errf(e, ARCA_ENOMEM, "HTTPS: cannot set up TLS");
		goto fail;
	}
	SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, verify_cb);
	/* Tickets would only be useful for resumption, which we do not use. */
	SSL_CTX_set_session_cache_mode(h->ctx, SSL_SESS_CACHE_OFF);
	if (id != NULL) {
		if (id->key == NULL || id->cert == NULL || SSL_CTX_use_certificate(h->ctx, id->cert) != 1 ||
		    SSL_CTX_use_PrivateKey(h->ctx, id->key) != 1 || SSL_CTX_check_private_key(h->ctx) != 1) {
			rc = arca_errf(e, ARCA_EINVAL, "HTTPS: the client identity's key and certificate do not fit");
			goto fail;
		}
	}
	rc = http_open(h, e);
	if (rc < 0)
		goto fail;
	*out = h;
	return 0;
fail:
	arca_http_close(h);
	ERR_clear_error();
	return rc;
}

const char *arca_http_server_fpr(const struct arca_http *h)
{
	return h != NULL ? h->fpr : "";
}

/* A kept-alive connection may have been closed by the server while idle;
 * find out without blocking, before anything is sent (after sending we
 * could not tell whether a POST was acted on, so we never retry then). */
static int still_open(struct arca_http *h)
{
	char c;
	int n, err;

	h->probing = 1;
	n = SSL_peek(h->ssl, &c, 1);
	err = SSL_get_error(h->ssl, n);
	h->probing = 0;
	ERR_clear_error();
	if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL)
		h->broken = 1;
	/* Data nobody asked for is as bad as a close. */
	return n <= 0 && err == SSL_ERROR_WANT_READ;
}

static int request_valid(const char *method, const char *path)
{
	size_t i, n;

	n = strlen(method);
	if (n == 0 || n > 16)
		return 0;
	for (i = 0; i < n; i++)
		if (method[i] < 'A' || method[i] > 'Z')
			return 0;
	/* HEAD answers carry a Content-Length without a body. */
	if (strcmp(method, "HEAD") == 0)
		return 0;
	n = strlen(path);
	if (n == 0 || n > HTTP_MAX_PATH || path[0] != '/')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f)
			return 0;
	return 1;
}

static int conn_close_header(void *ctx, const uint8_t *name, size_t nlen, const uint8_t *val, size_t vlen)
{
	size_t i, s;

	if (!name_is(name, nlen, "connection"))
		return 0;
	for (i = 0; i <= vlen; i = s + 1) {
		size_t a, b;

		for (s = i; s < vlen && val[s] != ','; s++)
			;
		for (a = i; a < s && (val[a] == ' ' || val[a] == '\t'); a++)
			;
		for (b = s; b > a && (val[b - 1] == ' ' || val[b - 1] == '\t'); b--)
			;
		if (name_is(val + a, b - a, "close"))
			*(int *)ctx = 1;
	}
	return 0;
}

static const char *parse_why(long rc)
{
	switch (rc) {
	case ARCA_ETOOBIG:
		return "the answer is larger than allowed";
	case ARCA_EUNSUPPORTED:
		return "the answer uses Transfer-Encoding, which arca does not accept";
	default:
		return "the answer is not well-formed HTTP/1.1 with a Content-Length";
	}
}

int arca_http_request(struct arca_http *h, const char *method, const char *path, const void *body, size_t bodylen,
		      int *status, struct arca_buf *resp, struct arca_errbuf *e)
{
	uint8_t chunk[HTTP_READ_CHUNK];
	struct arca_buf req, in;
	size_t max_body, body_off = 0, body_len = 0;
	long used = 0;
	int rc, n, code = 0, close_after = 0;

	if (status != NULL)
		*status = 0;
	if (h == NULL || method == NULL || path == NULL || status == NULL || resp == NULL || (body == NULL && bodylen > 0))
		return arca_errf(e, ARCA_EINVAL, "HTTPS request: missing argument");
	if (!request_valid(method, path))
		return arca_errf(e, ARCA_EINVAL, "HTTPS request: bad method or path");
	max_body = resp->max > resp->len ? resp->max - resp->len : 0;
	if (resp->max == 0)
		max_body = ARCA_BUF_DEFAULT_MAX - resp->len;
	if (max_body > HTTP_MAX_RESPONSE)
		max_body = HTTP_MAX_RESPONSE;
	arca_buf_init(&req, HTTP_MAX_HEAD + bodylen, resp->secret);
	arca_buf_init(&in, HTTP_MAX_HEAD + max_body + 1, resp->secret);

	if (h->ssl != NULL && !still_open(h))
		http_drop(h);
	if (h->ssl == NULL)
		GUARD_GOTO(http_open(h, e), done);

	GUARD_GOTO(arca_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: arca/1\r\n"
				    "Accept: application/json\r\n",
				    method, path, h->hostport),
		   done);
	if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0)
		GUARD_GOTO(arca_buf_appendf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", bodylen),
			   done);
	GUARD_GOTO(arca_buf_appends(&req, "\r\n"), done);
	if (bodylen > 0)
		GUARD_GOTO(arca_buf_append(&req, body, bodylen), done);
	if (req.len > INT_MAX) {
		rc = arca_errf(e, ARCA_ETOOBIG, "HTTPS request: body too large");
		goto done;
	}

	h->io_errno = 0;
	h->timed_out = 0;
	set_deadline(h, HTTP_REQUEST_DEADLINE_S);
	n = SSL_write(h->ssl, req.p, (int)req.len);
	if (n <= 0 || (size_t)n != req.len) {
		h->broken = 1;
		rc = arca_errf(e, h->timed_out ? ARCA_ETIMEOUT : ARCA_ENET, "sending to %s failed: %s", h->hostport,
			       io_why(h));
		http_drop(h);
		goto done;
	}

	for (;;) {
		size_t want = in.max - in.len;

		if (want == 0) {
			rc = arca_errf(e, ARCA_ETOOBIG, "%s: %s", h->hostport, parse_why(ARCA_ETOOBIG));
			http_drop(h);
			goto done;
		}
		if (want > sizeof(chunk))
			want = sizeof(chunk);
		n = SSL_read(h->ssl, chunk, (int)want);
		if (n <= 0) {
			if (SSL_get_error(h->ssl, n) != SSL_ERROR_ZERO_RETURN)
				h->broken = 1;
			rc = arca_errf(e, h->timed_out ? ARCA_ETIMEOUT : ARCA_ENET,
				       "%s: no complete answer (%s)", h->hostport, io_why(h));
			http_drop(h);
			goto done;
		}
		rc = arca_buf_append(&in, chunk, (size_t)n);
		if (rc < 0) {
			rc = arca_errf(e, rc, "%s: %s", h->hostport, parse_why(ARCA_ETOOBIG));
			http_drop(h);
			goto done;
		}
		used = arca_http_parse_response(in.p, in.len, max_body, &code, &body_off, &body_len);
		if (used < 0) {
			rc = arca_errf(e, used == ARCA_ETOOBIG ? ARCA_ETOOBIG : ARCA_ENET, "%s: %s", h->hostport,
				       parse_why(used));
			http_drop(h);
			goto done;
		}
		if (used > 0)
			break;
	}
	(void)for_each_header(in.p, body_off, conn_close_header, &close_after);
	/* We never pipeline, so anything after the answer is a broken server. */
	if ((size_t)used != in.len)
		close_after = 1;
	rc = arca_buf_append(resp, in.p + body_off, body_len);
	if (rc < 0) {
		rc = arca_errf(e, rc, "%s: %s", h->hostport, parse_why(ARCA_ETOOBIG));
		goto done;
	}
	*status = code;
	if (close_after)
		http_drop(h);
	rc = 0;
done:
	arca_wipe(chunk, sizeof(chunk));
	arca_buf_free(&req);
	arca_buf_free(&in);
	ERR_clear_error();
	return rc;
}

void arca_http_close(struct arca_http *h)
{
	if (h == NULL)
		return;
	http_drop(h);
	SSL_CTX_free(h->ctx);
	BIO_meth_free(h->bm);
	free(h);
}
