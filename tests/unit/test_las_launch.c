/* test_las_launch.c: the launch request of las_launch.h, both ends: the
 * exact bytes on the wire, a refusal for every field arca-las must not
 * accept, the client against a scripted fake arca-las (descriptors
 * carried, replies read, a refusal's reason made printable), and the
 * evidence request over an already connected channel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "arca/evidence.h"
#include "arca/las_launch.h"

#define PIN "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static char *args3[] = {"/usr/bin/prog", "--flag", "x y", NULL};

static void fill(struct arca_launch_req *r)
{
	memset(r, 0, sizeof(*r));
	r->argv = args3;
	r->argc = 3;
	snprintf(r->session, sizeof r->session, "sess");
	snprintf(r->service, sizeof r->service, "svc");
	snprintf(r->cas, sizeof r->cas, "127.0.0.1:8443");
	snprintf(r->cas_pin, sizeof r->cas_pin, PIN);
}

static void test_encode_known(void **state)
{
	struct arca_launch_req r;
	struct arca_buf b;
	const char *json = "{\"argv\":[\"/usr/bin/prog\",\"--flag\",\"x y\"],\"cas\":\"127.0.0.1:8443\",\"cas_pin\":\"" PIN
			   "\",\"service\":\"svc\",\"session\":\"sess\"}";

	fill(&r);
	arca_buf_init(&b, 0, 0);
	assert_int_equal(arca_launch_req_encode(&r, &b), 0);
	assert_int_equal(b.len, 8 + strlen(json));
	assert_memory_equal(b.p, "ALL1", 4);
	size_t n = (size_t)b.p[4] | (size_t)b.p[5] << 8 | (size_t)b.p[6] << 16 | (size_t)b.p[7] << 24;
	assert_int_equal(n, strlen(json));
	assert_memory_equal(b.p + 8, json, n);

	struct arca_launch_req got;
	struct arca_errbuf e = {{0}};
	assert_int_equal(arca_launch_req_decode(b.p + 8, n, &got, &e), 0);
	assert_int_equal(got.argc, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(got.argv[i], args3[i]);
	assert_null(got.argv[3]);
	assert_string_equal(got.session, "sess");
	assert_string_equal(got.service, "svc");
	assert_string_equal(got.cas, "127.0.0.1:8443");
	assert_string_equal(got.cas_pin, PIN);
	assert_int_equal(got.report, 0);
	arca_launch_req_free(&got);
	arca_buf_free(&b);

	/* --report: the one optional key, written only when asked for. */
	const char *json_report = "{\"argv\":[\"/usr/bin/prog\",\"--flag\",\"x y\"],\"cas\":\"127.0.0.1:8443\",\"cas_pin\":\""
				  PIN "\",\"report\":true,\"service\":\"svc\",\"session\":\"sess\"}";
	r.report = 1;
	arca_buf_init(&b, 0, 0);
	assert_int_equal(arca_launch_req_encode(&r, &b), 0);
	assert_int_equal(b.len, 8 + strlen(json_report));
	assert_memory_equal(b.p + 8, json_report, strlen(json_report));
	assert_int_equal(arca_launch_req_decode(b.p + 8, b.len - 8, &got, &e), 0);
	assert_int_equal(got.report, 1);
	arca_launch_req_free(&got);
	arca_buf_free(&b);
	const char *json_false = "{\"argv\":[\"/bin/true\"],\"cas\":\"127.0.0.1:1\",\"cas_pin\":\"" PIN
				 "\",\"report\":false,\"service\":\"v\",\"session\":\"s\"}";
	assert_int_equal(arca_launch_req_decode((const uint8_t *)json_false, strlen(json_false), &got, &e), 0);
	assert_int_equal(got.report, 0);
	arca_launch_req_free(&got);
}

static void refused(const char *json, const char *needle)
{
	struct arca_launch_req r;
	struct arca_errbuf e = {{0}};
	int rc = arca_launch_req_decode((const uint8_t *)json, strlen(json), &r, &e);
	if (rc >= 0 || strstr(e.msg, needle) == NULL)
		fail_msg("%s: rc %d, \"%s\" (wanted \"%s\")", json, rc, e.msg, needle);
	assert_null(r.argv);
}

#define REST ",\"cas\":\"127.0.0.1:1\",\"cas_pin\":\"" PIN "\",\"service\":\"v\",\"session\":\"s\"}"

static void test_decode_refusals(void **state)
{
	refused("", "empty");
	refused("[]", "expected a JSON object");
	refused("{\"argv\":[\"/bin/true\"]" REST "x", "not valid JSON");
	refused("{\"argv\":[\"/bin/true\"],\"env\":[]" REST, "unknown key");
	refused("{\"argv\":[\"/bin/true\"],\"reports\":true" REST, "unknown key");
	refused("{\"argv\":[\"/bin/true\"],\"report\":1" REST, "\"report\" must be true or false");
	refused("{\"argv\":[\"/bin/true\"],\"report\":\"yes\"" REST, "\"report\" must be true or false");
	refused("{\"argv\":[\"/bin/true\"],\"report\":null" REST, "\"report\" must be true or false");
	refused("{\"argv\":[\"/bin/true\"],\"report\":true,\"report\":true" REST, "not valid JSON");
	refused("{\"argv\":[\"/bin/true\"],\"argv\":[\"/bin/false\"]" REST, "not valid JSON");
	refused("{\"argv\":[]" REST, "non-empty array");
	refused("{\"argv\":\"/bin/true\"" REST, "non-empty array");
	refused("{\"argv\":[1]" REST, "not a string");
	refused("{\"argv\":[\"true\"]" REST, "absolute path");
	refused("{\"argv\":[\"./true\"]" REST, "absolute path");
	refused("{\"argv\":[\"/bin/true\",\"a\\u0000b\"]" REST, "not valid JSON");
	refused("{\"argv\":[\"/bin/true\"],\"cas\":\"localhost:1\",\"cas_pin\":\"" PIN
		"\",\"service\":\"v\",\"session\":\"s\"}",
		"IP:PORT");
	refused("{\"argv\":[\"/bin/true\"],\"cas\":\"127.0.0.1\",\"cas_pin\":\"" PIN
		"\",\"service\":\"v\",\"session\":\"s\"}",
		"IP:PORT");
	refused("{\"argv\":[\"/bin/true\"],\"cas\":\"127.0.0.1:1\",\"cas_pin\":\"SHA256:x\",\"service\":\"v\","
		"\"session\":\"s\"}",
		"fingerprint");
	refused("{\"argv\":[\"/bin/true\"],\"cas\":\"127.0.0.1:1\",\"cas_pin\":\"" PIN
		"\",\"service\":\"v w\",\"session\":\"s\"}",
		"names of 1 to 128");
	refused("{\"argv\":[\"/bin/true\"],\"cas\":\"127.0.0.1:1\",\"cas_pin\":\"" PIN "\",\"service\":\"v\"}",
		"must be a string");
	refused("{\"argv\":[\"/bin/true\"],\"cas\":\"127.0.0.1:1\",\"cas_pin\":\"" PIN
		"\",\"service\":\"v\",\"session\":7}",
		"must be a string");

	/* Sizes: more arguments than allowed, a body beyond the limit. */
	size_t cap = ARCA_LAS_LAUNCH_MAX + 4096;
	char *big = malloc(cap);
	assert_non_null(big);
	size_t n = (size_t)snprintf(big, cap, "{\"argv\":[\"/bin/true\"");
	for (int i = 0; i < ARCA_LAS_LAUNCH_MAX_ARGS; i++)
		n += (size_t)snprintf(big + n, cap - n, ",\"\"");
	snprintf(big + n, cap - n, "]" REST);
	refused(big, "more than 4096 arguments");
	memset(big, ' ', ARCA_LAS_LAUNCH_MAX + 1);
	big[ARCA_LAS_LAUNCH_MAX + 1] = 0;
	refused(big, "more than the limit");
	free(big);

	/* IPv6 is fine when bracketed. */
	const char *v6 = "{\"argv\":[\"/bin/true\"],\"cas\":\"[::1]:8443\",\"cas_pin\":\"" PIN
			 "\",\"service\":\"v\",\"session\":\"s\"}";
	struct arca_launch_req r;
	struct arca_errbuf e = {{0}};
	assert_int_equal(arca_launch_req_decode((const uint8_t *)v6, strlen(v6), &r, &e), 0);
	arca_launch_req_free(&r);
}

static void test_encode_refuses(void **state)
{
	struct arca_launch_req r;
	struct arca_buf b;
	char *rel[] = {"prog", NULL};

	arca_buf_init(&b, 0, 0);
	fill(&r);
	r.argv = rel;
	r.argc = 1;
	assert_true(arca_launch_req_encode(&r, &b) < 0);
	fill(&r);
	snprintf(r.cas, sizeof r.cas, "cas.example:443");
	assert_true(arca_launch_req_encode(&r, &b) < 0);
	assert_int_equal(b.len, 0);
	arca_buf_free(&b);
}

/* ---- the client against a fake arca-las ---- */

enum fake_mode { FAKE_RUN, FAKE_REFUSE, FAKE_KILLED };

struct fake {
	char dir[64], path[128];
	int lfd;
	enum fake_mode mode;
	pthread_t t;
	/* what it saw */
	uint8_t got[1024];
	size_t got_len;
	int nfds;
	int fd_kinds_ok;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	int c = accept(f->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	struct iovec iov = {.iov_base = f->got, .iov_len = sizeof f->got};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	ssize_t r = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
	f->got_len = r > 0 ? (size_t)r : 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int fds[8];
		int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)n);
		f->nfds = n;
		struct stat st;
		/* The fourth is the working directory. */
		f->fd_kinds_ok = n == 4 && fstat(fds[3], &st) == 0 && S_ISDIR(st.st_mode);
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
	uint8_t msg[3 + 400];
	size_t len;
	if (f->mode == FAKE_REFUSE) {
		static const char why[] = "no such \x1b[2J program";
		len = arca_las_reply_encode(ARCA_LAS_REFUSED, why, sizeof why - 1, msg);
		(void)!write(c, msg, len);
	} else {
		uint8_t pid[4] = {0x92, 0x10, 0, 0}; /* 4242 */
		len = arca_las_reply_encode(ARCA_LAS_STARTED, pid, 4, msg);
		(void)!write(c, msg, len);
		uint8_t v[4] = {f->mode == FAKE_KILLED ? 15 : 3, 0, 0, 0};
		len = arca_las_reply_encode(f->mode == FAKE_KILLED ? ARCA_LAS_KILLED : ARCA_LAS_EXITED, v, 4, msg);
		(void)!write(c, msg, len);
	}
	close(c);
	return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	snprintf(f->dir, sizeof f->dir, "/tmp/arca-test-launch.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/las.sock", f->dir);
	memcpy(sa.sun_path, f->path, strlen(f->path));
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->t, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->t, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

static void launch_fds(int fds[4])
{
	fds[0] = 0;
	fds[1] = 1;
	fds[2] = 2;
	fds[3] = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fds[3] >= 0);
}

static void test_client_run(void **state)
{
	struct arca_launch_req r;
	struct arca_errbuf e = {{0}};
	struct fake f;
	int fds[4];
	uint32_t pid = 0, v;
	uint8_t type;

	fill(&r);
	launch_fds(fds);
	fake_start(&f, FAKE_RUN);
	int c = arca_las_launch(f.path, &r, fds, 5, &pid, &e);
	assert_true(c >= 0);
	assert_int_equal(pid, 4242);
	assert_int_equal(arca_las_reply_read(c, &type, &v, &e), 0);
	assert_int_equal(type, ARCA_LAS_EXITED);
	assert_int_equal(v, 3);
	/* Then LAS closes. */
	assert_int_equal(arca_las_reply_read(c, &type, &v, &e), ARCA_ENET);
	close(c);
	fake_stop(&f);
	assert_int_equal(f.nfds, 4);
	assert_true(f.fd_kinds_ok);
	assert_memory_equal(f.got, "ALL1", 4);
	assert_true(f.got_len > 8);

	fake_start(&f, FAKE_KILLED);
	c = arca_las_launch(f.path, &r, fds, 5, &pid, &e);
	assert_true(c >= 0);
	assert_int_equal(arca_las_reply_read(c, &type, &v, &e), 0);
	assert_int_equal(type, ARCA_LAS_KILLED);
	assert_int_equal(v, 15);
	close(c);
	fake_stop(&f);
	close(fds[3]);
}

static void test_client_refused(void **state)
{
	struct arca_launch_req r;
	struct arca_errbuf e = {{0}};
	struct fake f;
	int fds[4];
	uint32_t pid = 99;

	fill(&r);
	launch_fds(fds);
	fake_start(&f, FAKE_REFUSE);
	assert_int_equal(arca_las_launch(f.path, &r, fds, 5, &pid, &e), ARCA_EDENIED);
	fake_stop(&f);
	assert_int_equal(pid, 0);
	assert_string_equal(e.msg, "no such ?[2J program");
	assert_int_equal(arca_las_launch("/nonexistent/arca/las.sock", &r, fds, 5, &pid, &e), ARCA_ENET);
	close(fds[3]);
}

/* ---- evidence over the launch channel ---- */

static void *channel_peer(void *arg)
{
	int fd = *(int *)arg;
	uint8_t req[ARCA_LAS_REQ_LEN], ev[3 + ARCA_SIM_EVIDENCE_LEN];
	if (recv(fd, req, sizeof req, MSG_WAITALL) != (ssize_t)sizeof req || memcmp(req, "ALR1", 4) != 0)
		return NULL;
	ev[0] = 0;
	ev[1] = (uint8_t)ARCA_SIM_EVIDENCE_LEN;
	ev[2] = (uint8_t)(ARCA_SIM_EVIDENCE_LEN >> 8);
	memset(ev + 3, req[4], ARCA_SIM_EVIDENCE_LEN);
	(void)!write(fd, ev, sizeof ev);
	return NULL;
}

static void test_request_fd(void **state)
{
	int sp[2];
	uint8_t rd[64], *ev = NULL;
	size_t evlen = 0;
	struct arca_errbuf e = {{0}};
	pthread_t t;

	memset(rd, 0x5a, sizeof rd);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pthread_create(&t, NULL, channel_peer, &sp[1]), 0);
	assert_int_equal(arca_las_request_fd(sp[0], rd, &ev, &evlen, &e), 0);
	pthread_join(t, NULL);
	assert_int_equal(evlen, ARCA_SIM_EVIDENCE_LEN);
	assert_int_equal(ev[0], 0x5a);
	free(ev);
	/* The channel is used up: closed by the call. */
	assert_int_equal(fcntl(sp[0], F_GETFD), -1);
	close(sp[1]);

	/* A descriptor that is no socket is refused, and closed too. */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(arca_las_request_fd(fd, rd, &ev, &evlen, &e) < 0);
	assert_non_null(strstr(e.msg, "arca run"));
	assert_int_equal(fcntl(fd, F_GETFD), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_known),     cmocka_unit_test(test_decode_refusals),
		cmocka_unit_test(test_encode_refuses),   cmocka_unit_test(test_client_run),
		cmocka_unit_test(test_client_refused),   cmocka_unit_test(test_request_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
