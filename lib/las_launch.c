/* las_launch.c: the launch request and its replies (las_launch.h), both
 * ends.
 *
 * arca-las runs as root and decodes this from any local user, so the
 * decoder is strict about every key, type and size, and refuses anything
 * that would make the launched program differ from what `arca measure`
 * saw: a relative program path, a CAS given by name (the shield would load
 * name-service modules before it is measured). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <jansson.h>

#include "arca/las_launch.h"
#include "arca/evidence.h"
#include "arca/http.h"
#include "arca/policy.h"

#define WHAT "launch request"
#define ARG_MAX_LEN (128u << 10) /* MAX_ARG_STRLEN */
#define PATH_MAX_LEN 4095
#define REASON_MAX 400

static void put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A CAS address the shield can use without resolving a name. */
static int numeric_hostport(const char *s)
{
	char host[256], port[16];
	struct in6_addr a6;
	struct in_addr a4;

	if (arca_hostport_split(s, host, sizeof host, port, sizeof port) < 0)
		return 0;
	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

static int check_fields(const struct arca_launch_req *r, struct arca_errbuf *e)
{
	if (r->argc == 0 || r->argv == NULL || r->argv[0] == NULL)
		return arca_errf(e, ARCA_EPARSE, WHAT ": \"argv\" must not be empty");
	if (r->argc > ARCA_LAS_LAUNCH_MAX_ARGS)
		return arca_errf(e, ARCA_ETOOBIG, WHAT ": more than %d arguments", ARCA_LAS_LAUNCH_MAX_ARGS);
	for (size_t i = 0; i < r->argc; i++)
		if (r->argv[i] == NULL || strlen(r->argv[i]) >= ARG_MAX_LEN)
			return arca_errf(e, ARCA_EPARSE, WHAT ": argument %zu is missing or longer than %u bytes", i,
					 ARG_MAX_LEN - 1);
	size_t n0 = strlen(r->argv[0]);
	if (r->argv[0][0] != '/' || n0 > PATH_MAX_LEN)
		return arca_errf(e, ARCA_EPARSE, WHAT ": the program (argv[0]) must be an absolute path");
	if (!arca_name_valid(r->session) || !arca_name_valid(r->service))
		return arca_errf(e, ARCA_EPARSE,
				 WHAT ": session and service must be names of 1 to 128 characters from [A-Za-z0-9_.~/-]");
	if (!numeric_hostport(r->cas))
		return arca_errf(e, ARCA_EPARSE, WHAT ": \"cas\" must be IP:PORT or [IPv6]:PORT");
	if (!arca_fpr_valid(r->cas_pin))
		return arca_errf(e, ARCA_EPARSE, WHAT ": \"cas_pin\" must be a key fingerprint (SHA256:...)");
	return 0;
}

int arca_launch_req_encode(const struct arca_launch_req *r, struct arca_buf *out)
{
	json_t *argv = NULL, *o = NULL;
	int rc = ARCA_ENOMEM;

	GUARD(check_fields(r, NULL));
	argv = json_array();
	if (argv == NULL)
		goto out;
	for (size_t i = 0; i < r->argc; i++) {
		json_t *s = json_string(r->argv[i]);
		if (s == NULL) { /* not UTF-8 */
			rc = ARCA_EINVAL;
			goto out;
		}
		if (json_array_append_new(argv, s) != 0)
			goto out;
	}
	o = json_pack("{s:O,s:s,s:s,s:s,s:s}", "argv", argv, "session", r->session, "service", r->service, "cas",
		      r->cas, "cas_pin", r->cas_pin);
	if (o == NULL)
		goto out;
	/* Only when asked for: a request without it is what an arca-las
	 * that predates the report accepts. */
	if (r->report && json_object_set_new(o, "report", json_true()) != 0)
		goto out;
	size_t need = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
	if (need == 0)
		goto out;
	if (need > ARCA_LAS_LAUNCH_MAX) {
		rc = ARCA_ETOOBIG;
		goto out;
	}
	uint8_t hdr[ARCA_LAS_LAUNCH_HDR_LEN];
	memcpy(hdr, ARCA_LAS_LAUNCH_MAGIC, 4);
	put_u32le(hdr + 4, (uint32_t)need);
	GUARD_GOTO(arca_buf_append(out, hdr, sizeof hdr), out);
	GUARD_GOTO(arca_buf_reserve(out, need), out);
	if (json_dumpb(o, (char *)out->p + out->len, need, JSON_COMPACT | JSON_SORT_KEYS) != need) {
		rc = ARCA_EINVAL;
		goto out;
	}
	out->len += need;
	out->p[out->len] = 0;
	rc = 0;
out:
	json_decref(o);
	json_decref(argv);
	return rc;
}

static int copy_string(json_t *o, const char *key, char *out, size_t cap, struct arca_errbuf *e)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return arca_errf(e, ARCA_EPARSE, WHAT ": \"%s\" must be a string", key);
	size_t n = json_string_length(v);
	if (n >= cap || memchr(json_string_value(v), 0, n) != NULL)
		return arca_errf(e, ARCA_EPARSE, WHAT ": \"%s\" is too long or contains a NUL character", key);
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

void arca_launch_req_free(struct arca_launch_req *r)
{
	if (r == NULL)
		return;
	if (r->argv != NULL)
		for (size_t i = 0; i < r->argc; i++)
			free(r->argv[i]);
	free(r->argv);
	memset(r, 0, sizeof(*r));
}

int arca_launch_req_decode(const uint8_t *p, size_t n, struct arca_launch_req *r, struct arca_errbuf *e)
{
	static const char *const keys[] = {"argv", "session", "service", "cas", "cas_pin", "report"};
	json_error_t jerr;
	const char *k;
	json_t *o = NULL, *v;
	int rc;

	memset(r, 0, sizeof(*r));
	if (p == NULL || n == 0)
		return arca_errf(e, ARCA_EPARSE, WHAT ": empty");
	if (n > ARCA_LAS_LAUNCH_MAX)
		return arca_errf(e, ARCA_ETOOBIG, WHAT ": %zu bytes, more than the limit of %u", n,
				 ARCA_LAS_LAUNCH_MAX);
	/* Without JSON_ALLOW_NUL jansson refuses \u0000 in strings and keys. */
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL)
		return arca_errf(e, ARCA_EPARSE, WHAT ": not valid JSON (line %d, column %d)", jerr.line, jerr.column);
	ENSURE_GOTO(json_is_object(o), arca_errf(e, ARCA_EPARSE, WHAT ": expected a JSON object"), out);
	json_object_foreach(o, k, v) {
		size_t i;
		for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		ENSURE_GOTO(i < sizeof keys / sizeof keys[0], arca_errf(e, ARCA_EPARSE, WHAT ": unknown key"), out);
	}
	json_t *argv = json_object_get(o, "argv");
	ENSURE_GOTO(json_is_array(argv) && json_array_size(argv) > 0,
		    arca_errf(e, ARCA_EPARSE, WHAT ": \"argv\" must be a non-empty array of strings"), out);
	size_t argc = json_array_size(argv);
	ENSURE_GOTO(argc <= ARCA_LAS_LAUNCH_MAX_ARGS,
		    arca_errf(e, ARCA_ETOOBIG, WHAT ": more than %d arguments", ARCA_LAS_LAUNCH_MAX_ARGS), out);
	r->argv = calloc(argc + 1, sizeof(char *));
	ENSURE_GOTO(r->argv != NULL, arca_errf(e, ARCA_ENOMEM, "out of memory"), out);
	for (size_t i = 0; i < argc; i++) {
		json_t *s = json_array_get(argv, i);
		ENSURE_GOTO(json_is_string(s), arca_errf(e, ARCA_EPARSE, WHAT ": argument %zu is not a string", i),
			    out);
		size_t len = json_string_length(s);
		ENSURE_GOTO(memchr(json_string_value(s), 0, len) == NULL,
			    arca_errf(e, ARCA_EPARSE, WHAT ": argument %zu contains a NUL character", i), out);
		r->argv[i] = strndup(json_string_value(s), len);
		ENSURE_GOTO(r->argv[i] != NULL, arca_errf(e, ARCA_ENOMEM, "out of memory"), out);
		r->argc = i + 1;
	}
	GUARD_GOTO(copy_string(o, "session", r->session, sizeof r->session, e), out);
	GUARD_GOTO(copy_string(o, "service", r->service, sizeof r->service, e), out);
	GUARD_GOTO(copy_string(o, "cas", r->cas, sizeof r->cas, e), out);
	GUARD_GOTO(copy_string(o, "cas_pin", r->cas_pin, sizeof r->cas_pin, e), out);
	json_t *report = json_object_get(o, "report");
	ENSURE_GOTO(report == NULL || json_is_boolean(report),
		    arca_errf(e, ARCA_EPARSE, WHAT ": \"report\" must be true or false"), out);
	r->report = json_is_true(report);
	GUARD_GOTO(check_fields(r, e), out);
	rc = 0;
out:
	json_decref(o);
	if (rc < 0)
		arca_launch_req_free(r);
	return rc;
}

size_t arca_las_reply_encode(uint8_t type, const void *payload, size_t n, uint8_t out[3 + REASON_MAX])
{
	if (n > REASON_MAX)
		n = REASON_MAX;
	out[0] = type;
	out[1] = (uint8_t)n;
	out[2] = (uint8_t)(n >> 8);
	if (n > 0)
		memcpy(out + 3, payload, n);
	return n + 3;
}

/* ---- client ---- */

static int recv_exact(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? ARCA_ETIMEOUT : ARCA_EIO;
		if (r == 0)
			return ARCA_ENET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int arca_las_reply_read(int fd, uint8_t *type, uint32_t *value, struct arca_errbuf *e)
{
	uint8_t hdr[3], payload[REASON_MAX + 1];
	int rc;

	*type = 0;
	*value = 0;
	rc = recv_exact(fd, hdr, sizeof hdr);
	if (rc == ARCA_ENET)
		return arca_errf(e, rc, "arca-las closed the connection");
	if (rc < 0)
		return arca_errf(e, rc, "reading from arca-las failed: %s",
				 rc == ARCA_ETIMEOUT ? "no answer in time" : strerror(errno));
	size_t n = (size_t)hdr[1] | (size_t)hdr[2] << 8;
	if (n > REASON_MAX)
		return arca_errf(e, ARCA_ENET, "arca-las sent a reply of %zu bytes (at most %d expected)", n, REASON_MAX);
	rc = recv_exact(fd, payload, n);
	if (rc < 0)
		return arca_errf(e, rc == ARCA_ENET ? ARCA_ENET : rc, "arca-las closed the connection in a reply");
	if (hdr[0] == ARCA_LAS_REFUSED) {
		for (size_t i = 0; i < n; i++)
			if (payload[i] < 0x20 || payload[i] >= 0x7f)
				payload[i] = '?';
		payload[n] = 0;
		*type = hdr[0];
		return arca_errf(e, ARCA_EDENIED, "%s", n > 0 ? (const char *)payload : "(no reason given)");
	}
	if ((hdr[0] != ARCA_LAS_STARTED && hdr[0] != ARCA_LAS_EXITED && hdr[0] != ARCA_LAS_KILLED) || n != 4)
		return arca_errf(e, ARCA_ENET, "arca-las sent an unknown reply (type %u, %zu bytes)", hdr[0], n);
	*type = hdr[0];
	*value = (uint32_t)payload[0] | (uint32_t)payload[1] << 8 | (uint32_t)payload[2] << 16 |
		 (uint32_t)payload[3] << 24;
	return 0;
}

int arca_las_launch(const char *socket_path, const struct arca_launch_req *r, const int fds[ARCA_LAS_LAUNCH_NFDS],
		    int timeout_s, uint32_t *pid, struct arca_errbuf *e)
{
	struct arca_buf msg;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * ARCA_LAS_LAUNCH_NFDS)];
	} ctl;
	uint8_t type;
	int fd = -1, rc;

	*pid = 0;
	arca_buf_init(&msg, ARCA_LAS_LAUNCH_MAX + ARCA_LAS_LAUNCH_HDR_LEN, 0);
	rc = arca_launch_req_encode(r, &msg);
	if (rc == ARCA_ETOOBIG) {
		rc = arca_errf(e, rc, "the command line is longer than arca-las accepts (%u bytes)", ARCA_LAS_LAUNCH_MAX);
		goto out;
	}
	if (rc < 0) {
		rc = arca_errf(e, rc, "cannot encode the launch request (arguments must be UTF-8 text)");
		goto out;
	}
	fd = arca_las_connect(socket_path, timeout_s, e);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	/* The descriptors ride on the first byte; everything goes in one
	 * message so that LAS finds them with the header. */
	struct iovec iov = {.iov_base = msg.p, .iov_len = msg.len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	memset(ctl.buf, 0, sizeof ctl.buf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * ARCA_LAS_LAUNCH_NFDS);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * ARCA_LAS_LAUNCH_NFDS);
	ssize_t w;
	while ((w = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (w < 0) {
		rc = arca_errf(e, ARCA_ENET, "sending the launch request to arca-las at %s failed: %s", socket_path,
			       strerror(errno));
		goto out;
	}
	/* The rest of a long request, without descriptors. */
	size_t off = (size_t)w;
	while (off < msg.len) {
		w = send(fd, msg.p + off, msg.len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = arca_errf(e, ARCA_ENET, "sending the launch request to arca-las at %s failed: %s",
				       socket_path, w < 0 ? strerror(errno) : "short write");
			goto out;
		}
		off += (size_t)w;
	}
	uint32_t v;
	rc = arca_las_reply_read(fd, &type, &v, e);
	if (rc < 0)
		goto out;
	if (type != ARCA_LAS_STARTED || v == 0) {
		rc = arca_errf(e, ARCA_ENET, "arca-las answered the launch request out of order (reply type %u)", type);
		goto out;
	}
	/* From here on the program runs for as long as it likes. */
	struct timeval none = {0, 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
	*pid = v;
	rc = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	arca_buf_free(&msg);
	return rc;
}
