/* test_http.c: the HTTP response parser and host:port splitter on good and
 * hostile input, and the HTTPS client against a real TLS server in a thread:
 * the pin, TLS 1.3 only, the client certificate, keep-alive and reconnects,
 * and the timeouts that keep the shield from hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "arca/http.h"
#include "arca/x509.h"

/* ---- parser ---- */

static long parse(const char *s, size_t max_body, int *status, size_t *off, size_t *len)
{
	return arca_http_parse_response((const uint8_t *)s, strlen(s), max_body, status, off, len);
}

static void test_parse_good(void **state)
{
	int st = 0;
	size_t off = 0, len = 0;
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

	assert_int_equal(parse(r1, 100, &st, &off, &len), (long)strlen(r1));
	assert_int_equal(st, 200);
	assert_int_equal(len, 2);
	assert_memory_equal(r1 + off, "{}", 2);

	/* Trailing bytes are not consumed (the next response). */
	const char *r2 = "HTTP/1.1 404 Not Found\r\ncontent-length:   3  \r\nX-A: \r\n\r\nabcHTTP/1.1";
	assert_int_equal(parse(r2, 100, &st, &off, &len), (long)strlen(r2) - 8);
	assert_int_equal(st, 404);
	assert_int_equal(len, 3);
	assert_memory_equal(r2 + off, "abc", 3);

	/* No reason phrase; zero length; leading zeros. */
	assert_int_equal(parse("HTTP/1.1 204\r\nContent-Length: 0\r\n\r\n", 0, &st, &off, &len), 35);
	assert_int_equal(st, 204);
	assert_int_equal(len, 0);
	assert_true(parse("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 007\r\n\r\n1234567", 7, &st, &off,
			  &len) > 0);
	assert_int_equal(len, 7);
	/* Body exactly max_body. */
	assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 5, &st, &off, &len) > 0);
	/* obs-text in the reason phrase is allowed. */
	assert_true(parse("HTTP/1.1 200 \xc3\xa9\r\nContent-Length: 0\r\n\r\n", 5, &st, &off, &len) > 0);
}

static void test_parse_partial(void **state)
{
	const char *full = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 10\r\n\r\n0123456789";
	int st = -1;
	size_t off = 0, len = 0;

	/* Every proper prefix asks for more, and sets nothing. */
	for (size_t n = 0; n < strlen(full); n++) {
		long r = arca_http_parse_response((const uint8_t *)full, n, 100, &st, &off, &len);
		if (r != 0)
			fail_msg("prefix of %zu bytes: %ld", n, r);
		assert_int_equal(st, -1);
	}
	assert_int_equal(arca_http_parse_response((const uint8_t *)full, strlen(full), 100, &st, &off, &len),
			 (long)strlen(full));
	assert_int_equal(arca_http_parse_response(NULL, 0, 100, &st, &off, &len), 0);
}

static void test_parse_refusals(void **state)
{
	int st;
	size_t off, len;
	struct {
		const char *r;
		long rc;
	} bad[] = {
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\nabc", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", ARCA_ETOOBIG},
		{"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", ARCA_ETOOBIG},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ARCA_EUNSUPPORTED},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", ARCA_EUNSUPPORTED},
		{"HTTP/1.1 200 OK\r\n\r\n", ARCA_EPARSE}, /* no length */
		{"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/2 200\r\n\r\n", ARCA_EPARSE},
		{"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\nContent-Length: 0\n\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nX-Bad: a\x7f\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"HTTP/1.1 200 OK\r\nX(: a\r\nContent-Length: 0\r\n\r\n", ARCA_EPARSE},
		{"GARBAGE", ARCA_EPARSE},
		{"<html>", ARCA_EPARSE},
		{"\r\n\r\n", ARCA_EPARSE},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = -1;
		long r = parse(bad[i].r, 100, &st, &off, &len);
		if (r != bad[i].rc)
			fail_msg("case %zu: %ld, want %ld", i, r, bad[i].rc);
		assert_int_equal(st, -1);
	}

	/* NUL inside the head. */
	const uint8_t nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(arca_http_parse_response(nul, sizeof(nul) - 1, 100, &st, &off, &len), ARCA_EPARSE);

	/* A head that never ends is cut off at 16 KiB. */
	size_t big = 20000;
	char *h = malloc(big + 1);
	memset(h, 'a', big);
	memcpy(h, "HTTP/1.1 200 OK\r\n", 17);
	/* Long header lines, few enough not to hit the header count. */
	for (size_t i = 17; i + 1000 <= big; i += 1000)
		memcpy(h + i + 998, "\r\n", 2), memcpy(h + i, "X-Pad: ", 7);
	h[big] = 0;
	assert_int_equal(arca_http_parse_response((uint8_t *)h, 16000, 100, &st, &off, &len), 0);
	assert_int_equal(arca_http_parse_response((uint8_t *)h, 16384, 100, &st, &off, &len), ARCA_ETOOBIG);
	free(h);

	/* Too many headers. */
	char many[4096];
	size_t o = (size_t)snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 101; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "X%d: y\r\n", i);
	snprintf(many + o, sizeof(many) - o, "Content-Length: 0\r\n\r\n");
	assert_true(parse(many, 100, &st, &off, &len) < 0);
}

/* ---- host:port ---- */

static void test_hostport(void **state)
{
	char host[256], port[6];
	struct {
		const char *in, *host, *port;
	} good[] = {
		{"cas.example:8443", "cas.example", "8443"},
		{"127.0.0.1:1", "127.0.0.1", "1"},
		{"localhost:65535", "localhost", "65535"},
		{"[::1]:443", "::1", "443"},
		{"[2001:db8::5]:8080", "2001:db8::5", "8080"},
		{"a-b_c.d:80", "a-b_c.d", "80"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (arca_hostport_split(good[i].in, host, sizeof(host), port, sizeof(port)) != 0)
			fail_msg("%s refused", good[i].in);
		assert_string_equal(host, good[i].host);
		assert_string_equal(port, good[i].port);
	}
	const char *bad[] = {
		"cas.example", "cas.example:", ":8443", "cas.example:0", "cas.example:65536", "cas.example:080",
		"cas.example:+80", "cas.example:8a", "cas.example:123456", "::1:443", "[::1]443", "[::1]:", "[]:443",
		"[nothost]:443", "[::1:443", "a b:80", "a..b:80", ".a:80", "a.:80", "a/b:80", "[fe80::1%eth0]:80",
		"", "host:80\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (arca_hostport_split(bad[i], host, sizeof(host), port, sizeof(port)) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
	/* The caller's capacities hold. */
	assert_int_equal(arca_hostport_split("cas.example:8443", host, 5, port, sizeof(port)), ARCA_ETOOBIG);
	assert_int_equal(arca_hostport_split("cas.example:8443", host, sizeof(host), port, 4), ARCA_ETOOBIG);
}

/* ---- a TLS server in a thread ---- */

enum srv_mode {
	SRV_SERVE,        /* answer every request, keep the connection */
	SRV_CLOSE_HEADER, /* answer with Connection: close, then close */
	SRV_IDLE_CLOSE,   /* answer one request, then close without saying so */
	SRV_GARBAGE,      /* answer with something that is not HTTP */
	SRV_NO_TLS,       /* accept TCP and never speak */
	SRV_SLAM,         /* read a little of the request, then close hard */
	SRV_IDLE_RESET,   /* answer one request, then reset the connection */
};

struct srv {
	struct arca_identity id;
	SSL_CTX *ctx;
	int lfd;
	char hostport[64];
	enum srv_mode mode;
	int tls12_only;
	int ask_client_cert;
	int nconn;          /* connections to serve */
	/* what the server saw */
	int conns, requests;
	char client_fpr[ARCA_FPR_LEN];
	char last_head[2048];
	char last_body[256];
	pthread_t thr;
};

static struct arca_identity client_id;
static char tmpdir[64];

static int accept_any(int ok, X509_STORE_CTX *st)
{
	return 1;
}

static int read_request(SSL *ssl, struct srv *s)
{
	char buf[8192];
	size_t n = 0;
	char *end;

	for (;;) {
		int r = SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n));
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = 0;
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	size_t head = (size_t)(end - buf) + 4, cl = 0;
	snprintf(s->last_head, sizeof(s->last_head), "%.*s", (int)head, buf);
	char *p = strstr(s->last_head, "Content-Length: ");
	if (p != NULL)
		cl = strtoul(p + 16, NULL, 10);
	while (n < head + cl) {
		int r = SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n));
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	snprintf(s->last_body, sizeof(s->last_body), "%.*s", (int)cl, buf + head);
	s->requests++;
	return 0;
}

static void write_str(SSL *ssl, const char *str)
{
	if (SSL_write(ssl, str, (int)strlen(str)) <= 0)
		ERR_clear_error();
}

static void *srv_thread(void *arg)
{
	struct srv *s = arg;

	for (int k = 0; k < s->nconn; k++) {
		struct pollfd p = {.fd = s->lfd, .events = POLLIN};
		if (poll(&p, 1, 30000) <= 0)
			break;
		int c = accept(s->lfd, NULL, NULL);
		if (c < 0)
			break;
		s->conns++;
		if (s->mode == SRV_NO_TLS) {
			char b;
			while (read(c, &b, 1) > 0)
				;
			close(c);
			continue;
		}
		SSL *ssl = SSL_new(s->ctx);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) == 1) {
			X509 *pc = SSL_get0_peer_certificate(ssl);
			if (pc != NULL && arca_fpr_pkey(X509_get0_pubkey(pc), s->client_fpr) < 0)
				s->client_fpr[0] = 0;
			if (s->mode == SRV_SLAM) {
				char b[512];
				if (SSL_read(ssl, b, sizeof(b)) <= 0)
					ERR_clear_error();
				SSL_free(ssl);
				close(c);
				continue;
			}
			while (read_request(ssl, s) == 0) {
				char resp[512];
				if (s->mode == SRV_GARBAGE) {
					write_str(ssl, "HELLO THERE\r\n\r\n");
					break;
				}
				char body[32];
				snprintf(body, sizeof(body), "{\"n\":%d}", s->requests);
				snprintf(resp, sizeof(resp),
					 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s"
					 "Content-Length: %zu\r\n\r\n%s",
					 s->mode == SRV_CLOSE_HEADER ? "Connection: close\r\n" : "", strlen(body), body);
				write_str(ssl, resp);
				if (s->mode != SRV_SERVE)
					break;
			}
			if (s->mode == SRV_IDLE_RESET) {
				/* A reset throws away unsent data: let the answer go first. */
				struct linger lg = {.l_onoff = 1, .l_linger = 0};
				usleep(50000);
				setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			} else {
				SSL_shutdown(ssl);
			}
		}
		ERR_clear_error();
		SSL_free(ssl);
		close(c);
	}
	return NULL;
}

static void srv_start_af(struct srv *s, enum srv_mode mode, int nconn, int v6)
{
	struct arca_errbuf e;
	struct sockaddr_in sa;
	struct sockaddr_in6 sa6;
	socklen_t sl;
	char dir[128];
	static int counter;

	memset(s, 0, sizeof(*s));
	snprintf(dir, sizeof(dir), "%s/server%d", tmpdir, counter++);
	if (arca_identity_create(dir, "test-server", &e) < 0 || arca_identity_load(dir, &s->id, &e) < 0)
		fail_msg("server identity: %s", e.msg);
	s->mode = mode;
	s->nconn = nconn;
	s->lfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (v6) {
		memset(&sa6, 0, sizeof(sa6));
		sa6.sin6_family = AF_INET6;
		sa6.sin6_addr = in6addr_loopback;
		sl = sizeof(sa6);
		assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa6, sizeof(sa6)), 0);
		assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa6, &sl), 0);
		snprintf(s->hostport, sizeof(s->hostport), "[::1]:%u", ntohs(sa6.sin6_port));
	} else {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(sa);
		assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
		snprintf(s->hostport, sizeof(s->hostport), "127.0.0.1:%u", ntohs(sa.sin_port));
	}
	assert_int_equal(listen(s->lfd, 8), 0);
}

static void srv_start(struct srv *s, enum srv_mode mode, int nconn)
{
	srv_start_af(s, mode, nconn, 0);
}

static void srv_run(struct srv *s)
{
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(s->ctx);
	assert_int_equal(SSL_CTX_use_certificate(s->ctx, s->id.cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, s->id.key), 1);
	if (s->tls12_only)
		assert_int_equal(SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION), 1);
	if (s->ask_client_cert)
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, accept_any);
	assert_int_equal(pthread_create(&s->thr, NULL, srv_thread, s), 0);
}

static void srv_stop(struct srv *s)
{
	pthread_join(s->thr, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	arca_identity_free(&s->id);
}

static int group_setup(void **state)
{
	struct arca_errbuf e;
	char dir[128];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/arca-test-http-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s/client", tmpdir);
	if (arca_identity_create(dir, "test-owner", &e) < 0 || arca_identity_load(dir, &client_id, &e) < 0) {
		fprintf(stderr, "client identity: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	arca_identity_free(&client_id);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_pin_match_and_keepalive(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status = 0;

	srv_start(&s, SRV_SERVE, 1);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	assert_string_equal(arca_http_server_fpr(h), s.id.fpr);

	arca_buf_init(&resp, 1 << 20, 0);
	assert_int_equal(arca_http_request(h, "POST", "/v1/attest/nonce", NULL, 0, &status, &resp, &e), 0);
	assert_int_equal(status, 200);
	assert_string_equal((char *)resp.p, "{\"n\":1}");
	assert_non_null(strstr(s.last_head, "POST /v1/attest/nonce HTTP/1.1\r\n"));
	char hosthdr[80];
	snprintf(hosthdr, sizeof(hosthdr), "\r\nHost: %s\r\n", s.hostport);
	assert_non_null(strstr(s.last_head, hosthdr));
	assert_non_null(strstr(s.last_head, "\r\nContent-Length: 0\r\n"));

	/* Same connection, with a body; the response is appended. */
	arca_buf_reset(&resp);
	assert_int_equal(arca_http_request(h, "PUT", "/v1/sessions/payroll", "{\"a\":1}", 7, &status, &resp, &e), 0);
	assert_string_equal((char *)resp.p, "{\"n\":2}");
	assert_string_equal(s.last_body, "{\"a\":1}");
	arca_buf_reset(&resp);
	assert_int_equal(arca_http_request(h, "GET", "/healthz", NULL, 0, &status, &resp, &e), 0);
	assert_null(strstr(s.last_head, "Content-Length"));

	/* Bad method or path never reaches the wire. */
	assert_int_equal(arca_http_request(h, "GET", "/a b", NULL, 0, &status, &resp, &e), ARCA_EINVAL);
	assert_int_equal(arca_http_request(h, "GET", "/a\r\nX: y", NULL, 0, &status, &resp, &e), ARCA_EINVAL);
	assert_int_equal(arca_http_request(h, "get", "/", NULL, 0, &status, &resp, &e), ARCA_EINVAL);
	assert_int_equal(arca_http_request(h, "GET", "x", NULL, 0, &status, &resp, &e), ARCA_EINVAL);
	assert_int_equal(arca_http_request(h, "HEAD", "/", NULL, 0, &status, &resp, &e), ARCA_EINVAL);

	/* A response bigger than the caller allows. */
	struct arca_buf tiny;
	arca_buf_init(&tiny, 3, 0);
	assert_true(arca_http_request(h, "GET", "/x", NULL, 0, &status, &tiny, &e) < 0);
	assert_non_null(strstr(e.msg, "larger than allowed"));
	arca_buf_free(&tiny);

	arca_http_close(h);
	srv_stop(&s);
	assert_int_equal(s.conns, 1);
	assert_int_equal(s.requests, 4);
	/* No identity given: no client certificate. */
	assert_string_equal(s.client_fpr, "");
	arca_buf_free(&resp);
}

static void test_wrong_pin(void **state)
{
	struct srv s;
	struct arca_http *h = (struct arca_http *)1;
	struct arca_errbuf e = {{0}};

	srv_start(&s, SRV_SERVE, 1);
	s.ask_client_cert = 1;
	srv_run(&s);
	/* The client identity's fingerprint: valid syntax, wrong key. */
	int rc = arca_http_connect(s.hostport, client_id.fpr, &client_id, &h, &e);
	srv_stop(&s);
	assert_int_equal(rc, ARCA_EDENIED);
	assert_null(h);
	assert_non_null(strstr(e.msg, "not the pinned"));
	assert_non_null(strstr(e.msg, s.id.fpr));
	/* Refused before our certificate went to the impostor. */
	assert_string_equal(s.client_fpr, "");
	assert_int_equal(s.requests, 0);

	assert_int_equal(arca_http_connect(s.hostport, "SHA256:nope", NULL, &h, &e), ARCA_EINVAL);
	assert_int_equal(arca_http_connect("no-port", NULL, NULL, &h, &e), ARCA_EINVAL);
}

static void test_no_pin_records_fpr(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};

	srv_start(&s, SRV_SERVE, 1);
	srv_run(&s);
	if (arca_http_connect(s.hostport, NULL, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	assert_string_equal(arca_http_server_fpr(h), s.id.fpr);
	arca_http_close(h);
	srv_stop(&s);
}

static void test_ipv6(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status;
	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};

	if (probe < 0 || bind(probe, (struct sockaddr *)&sa6, sizeof(sa6)) < 0) {
		if (probe >= 0)
			close(probe);
		skip(); /* no IPv6 loopback here */
	}
	close(probe);
	srv_start_af(&s, SRV_SERVE, 1, 1);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	arca_buf_init(&resp, 1024, 0);
	assert_int_equal(arca_http_request(h, "GET", "/healthz", NULL, 0, &status, &resp, &e), 0);
	char hosthdr[80];
	snprintf(hosthdr, sizeof(hosthdr), "\r\nHost: %s\r\n", s.hostport);
	assert_non_null(strstr(s.last_head, hosthdr));
	arca_http_close(h);
	srv_stop(&s);
	arca_buf_free(&resp);
}

static void test_tls12_refused(void **state)
{
	struct srv s;
	struct arca_http *h = (struct arca_http *)1;
	struct arca_errbuf e = {{0}};

	srv_start(&s, SRV_SERVE, 1);
	s.tls12_only = 1;
	srv_run(&s);
	int rc = arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e);
	srv_stop(&s);
	assert_int_equal(rc, ARCA_ENET);
	assert_null(h);
	assert_non_null(strstr(e.msg, "handshake"));
	assert_int_equal(s.requests, 0);
}

static void test_client_cert(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status;

	srv_start(&s, SRV_SERVE, 1);
	s.ask_client_cert = 1;
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, &client_id, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	arca_buf_init(&resp, 1024, 0);
	assert_int_equal(arca_http_request(h, "GET", "/v1/sessions/payroll", NULL, 0, &status, &resp, &e), 0);
	arca_http_close(h);
	srv_stop(&s);
	assert_string_equal(s.client_fpr, client_id.fpr);
	arca_buf_free(&resp);
}

static void test_reconnects(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status, rc;

	/* The server says Connection: close: the next request reconnects. */
	srv_start(&s, SRV_CLOSE_HEADER, 2);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	arca_buf_init(&resp, 1024, 0);
	assert_int_equal(arca_http_request(h, "GET", "/a", NULL, 0, &status, &resp, &e), 0);
	if (arca_http_request(h, "GET", "/b", NULL, 0, &status, &resp, &e) < 0)
		fail_msg("second request: %s", e.msg);
	arca_http_close(h);
	srv_stop(&s);
	assert_int_equal(s.conns, 2);
	assert_int_equal(s.requests, 2);

	/* The server drops an idle connection without a word. */
	srv_start(&s, SRV_IDLE_CLOSE, 2);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	assert_int_equal(arca_http_request(h, "GET", "/a", NULL, 0, &status, &resp, &e), 0);
	usleep(200000);
	if (arca_http_request(h, "GET", "/b", NULL, 0, &status, &resp, &e) < 0)
		fail_msg("second request: %s", e.msg);
	arca_http_close(h);
	srv_stop(&s);
	assert_int_equal(s.conns, 2);

	/* The server resets an idle connection. */
	srv_start(&s, SRV_IDLE_RESET, 2);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	assert_int_equal(arca_http_request(h, "GET", "/a", NULL, 0, &status, &resp, &e), 0);
	usleep(300000);
	signal(SIGPIPE, SIG_DFL);
	rc = arca_http_request(h, "GET", "/b", NULL, 0, &status, &resp, &e);
	signal(SIGPIPE, SIG_IGN);
	if (rc < 0)
		fail_msg("request after a reset: %s", e.msg);
	arca_http_close(h);
	srv_stop(&s);
	assert_int_equal(s.conns, 2);
	arca_buf_free(&resp);
}

static void test_garbage_answer(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status = 7;

	srv_start(&s, SRV_GARBAGE, 1);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	arca_buf_init(&resp, 1024, 0);
	assert_int_equal(arca_http_request(h, "GET", "/", NULL, 0, &status, &resp, &e), ARCA_ENET);
	assert_non_null(strstr(e.msg, "not well-formed"));
	assert_int_equal(status, 0);
	assert_int_equal(resp.len, 0);
	arca_http_close(h);
	srv_stop(&s);
	arca_buf_free(&resp);
}

static void test_handshake_timeout(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	time_t t0 = time(NULL);

	srv_start(&s, SRV_NO_TLS, 1);
	srv_run(&s);
	assert_int_equal(arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e), ARCA_ETIMEOUT);
	assert_true(time(NULL) - t0 >= 9 && time(NULL) - t0 <= 20);
	assert_non_null(strstr(e.msg, "timed out"));
	srv_stop(&s);
}

static void test_hangup_mid_request(void **state)
{
	struct srv s;
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status;
	size_t big = 8u << 20;
	char *body = malloc(big);

	/* The server hangs up while a large body is on its way: an error for
	 * the caller (never a signal: SIGPIPE stays at its default here). */
	memset(body, 'x', big);
	srv_start(&s, SRV_SLAM, 1);
	srv_run(&s);
	if (arca_http_connect(s.hostport, s.id.fpr, NULL, &h, &e) < 0)
		fail_msg("connect: %s", e.msg);
	arca_buf_init(&resp, 1024, 0);
	signal(SIGPIPE, SIG_DFL);
	int rc = arca_http_request(h, "POST", "/v1/attest", body, big, &status, &resp, &e);
	arca_http_close(h);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(rc, ARCA_ENET);
	srv_stop(&s);
	arca_buf_free(&resp);
	free(body);
}

static void test_connect_refused(void **state)
{
	struct arca_http *h;
	struct arca_errbuf e = {{0}};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	char hp[64];

	/* A port that was just free. */
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(hp, sizeof(hp), "127.0.0.1:%u", ntohs(sa.sin_port));
	close(fd);
	assert_int_equal(arca_http_connect(hp, NULL, NULL, &h, &e), ARCA_ENET);
	assert_non_null(strstr(e.msg, "cannot connect"));
}

int main(void)
{
	/* The test server writes with plain OpenSSL socket BIOs; the client
	 * under test needs no such help (it sends with MSG_NOSIGNAL). */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_partial),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_pin_match_and_keepalive),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_no_pin_records_fpr),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_tls12_refused),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_reconnects),
		cmocka_unit_test(test_garbage_answer),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_hangup_mid_request),
		cmocka_unit_test(test_connect_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
