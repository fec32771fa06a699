/* serve.c: one request on the public LAS socket: a launch request
 * ("ALL1", las_launch.h), handed to launch.c, or an evidence request for
 * the caller itself ("ALR1", evidence.h), from the 68 request bytes to the
 * signed answer.
 *
 * Evidence for the caller is only for root (arca-cas attesting itself):
 * for anyone else, what LAS could measure now says nothing about what ran
 * in the process before (CONTRACTS.md "Trusted launch").
 *
 * Runs on its own thread per connection, so the only shared state is the
 * read-only key and the hash caches, each taken by one thread at a time.
 * Descriptors can come with any request; each is taken with
 * MSG_CMSG_CLOEXEC, so none can leak into a program LAS starts, and closed
 * unless a launch takes it. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "las.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/las_launch.h"

#define REFUSED 1
#define REASON_MAX 400
/* More than a launch carries, so that a request with too many is seen as
 * such rather than cut to four. */
#define MAX_FDS 8

int las_caches_init(struct las_caches *cs)
{
	for (int i = 0; i < LAS_NCACHES; i++) {
		cs->c[i] = arca_hash_cache_new(LAS_CACHE_ENTRIES);
		if (cs->c[i] == NULL || pthread_mutex_init(&cs->mu[i], NULL) != 0) {
			arca_hash_cache_free(cs->c[i]);
			cs->c[i] = NULL;
			for (int j = 0; j < i; j++) {
				arca_hash_cache_free(cs->c[j]);
				pthread_mutex_destroy(&cs->mu[j]);
			}
			return ARCA_ENOMEM;
		}
	}
	return 0;
}

void las_caches_free(struct las_caches *cs)
{
	for (int i = 0; i < LAS_NCACHES; i++) {
		arca_hash_cache_free(cs->c[i]);
		cs->c[i] = NULL;
		pthread_mutex_destroy(&cs->mu[i]);
	}
}

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Exactly n bytes before the deadline; a slow client only costs its own
 * thread. */
static int read_exact(int fd, uint8_t *p, size_t n, const struct timespec *deadline, struct arca_errbuf *e)
{
	while (n > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long left = ms_left(deadline);
		if (left == 0)
			return arca_errf(e, ARCA_ETIMEOUT, "no complete request within %d seconds", LAS_IO_TIMEOUT_S);
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return arca_errf(e, ARCA_EIO, "reading the request: %s", strerror(errno));
		if (r == 0)
			return arca_errf(e, ARCA_ENET, "the client closed the connection before a complete request");
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int las_read_exact(int fd, uint8_t *p, size_t n, struct arca_errbuf *e)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += LAS_IO_TIMEOUT_S;
	return read_exact(fd, p, n, &deadline, e);
}

struct fds {
	int v[MAX_FDS];
	int n;
	int lost; /* more than MAX_FDS, or cut by the kernel (MSG_CTRUNC) */
};

static void fds_close(struct fds *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->v[i]);
	f->n = 0;
}

/* read_exact that also takes the descriptors sent with the bytes. */
static int read_with_fds(int fd, uint8_t *p, size_t n, struct fds *f, const struct timespec *deadline,
			 struct arca_errbuf *e)
{
	while (n > 0) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		} ctl;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long left = ms_left(deadline);
		if (left == 0)
			return arca_errf(e, ARCA_ETIMEOUT, "no complete request within %d seconds", LAS_IO_TIMEOUT_S);
		int pr = poll(&pfd, 1, (int)left);
		if (pr <= 0)
			continue;
		struct iovec iov = {.iov_base = p, .iov_len = n};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				    .msg_controllen = sizeof ctl.buf};
		ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return arca_errf(e, ARCA_EIO, "reading the request: %s", strerror(errno));
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int got;
				memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
				if (f->n < MAX_FDS) {
					f->v[f->n++] = got;
				} else {
					close(got);
					f->lost = 1;
				}
			}
		}
		if (mh.msg_flags & MSG_CTRUNC)
			f->lost = 1;
		if (r == 0)
			return arca_errf(e, ARCA_ENET, "the client closed the connection before a complete request");
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void send_reply(int fd, uint8_t status, const void *payload, size_t n)
{
	uint8_t msg[ARCA_LAS_MAX_RESP];
	if (n > sizeof msg - 3)
		n = sizeof msg - 3;
	msg[0] = status;
	msg[1] = (uint8_t)n;
	msg[2] = (uint8_t)(n >> 8);
	memcpy(msg + 3, payload, n);
	/* The answer fits the socket buffer; a client that does not read it
	 * only loses its own answer (SO_SNDTIMEO bounds the rest). */
	size_t off = 0, len = n + 3;
	while (off < len) {
		ssize_t w = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

/* Reasons are shown to the person running the program: printable ASCII. */
static size_t clean_reason(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	for (; in[n] != 0 && n + 1 < cap && n < REASON_MAX; n++)
		out[n] = (in[n] >= 0x20 && in[n] < 0x7f) ? in[n] : '?';
	out[n] = 0;
	return n;
}

void las_reply(int fd, uint8_t status, const void *payload, size_t n)
{
	send_reply(fd, status, payload, n);
}

void las_reply_text(int fd, uint8_t status, const char *text)
{
	char clean[REASON_MAX + 1];
	size_t n = clean_reason(text, clean, sizeof clean);
	send_reply(fd, status, clean, n);
}

void las_refuse_now(int conn, const char *reason)
{
	char clean[REASON_MAX + 1];
	size_t n = clean_reason(reason, clean, sizeof clean);
	uint8_t msg[REASON_MAX + 3];
	msg[0] = REFUSED;
	msg[1] = (uint8_t)n;
	msg[2] = (uint8_t)(n >> 8);
	memcpy(msg + 3, clean, n);
	(void)send(conn, msg, n + 3, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int measure_with_cache(struct las_caches *cs, pid_t pid, struct arca_measurement *m, struct arca_errbuf *e)
{
	for (int i = 0; i < LAS_NCACHES; i++) {
		if (pthread_mutex_trylock(&cs->mu[i]) != 0)
			continue;
		int rc = arca_measure_pid(pid, cs->c[i], m, e);
		pthread_mutex_unlock(&cs->mu[i]);
		return rc;
	}
	return arca_measure_pid(pid, NULL, m, e);
}

int las_measure(struct las_caches *cs, pid_t pid, struct arca_measurement *m, struct arca_errbuf *e)
{
	return measure_with_cache(cs, pid, m, e);
}

int las_evidence(const struct las_ctx *ctx, pid_t pid, uid_t uid, unsigned flags, const uint8_t measurement[32],
		 const uint8_t report_data[64], struct arca_buf *out, struct arca_errbuf *e)
{
	if (ctx->tsm != NULL && ctx->tsm->platform != 0) {
		struct arca_hw_envelope env;
		memset(&env, 0, sizeof env);
		env.flags = ((flags & LAS_EV_PTRACE_PROTECTED) ? ARCA_HW_FLAG_PTRACE_PROTECTED : 0) |
			    ((flags & LAS_EV_SECRET_MEMORY) ? ARCA_HW_FLAG_SECRET_MEMORY : 0);
		env.timestamp = (uint64_t)time(NULL);
		env.pid = (uint32_t)pid;
		env.uid = (uint32_t)uid;
		memcpy(env.measurement, measurement, 32);
		memcpy(env.report_data, report_data, 64);
		return las_tsm_envelope(ctx->tsm, &env, out, e);
	}
	struct arca_sim_evidence ev;
	uint8_t bytes[ARCA_SIM_EVIDENCE_LEN];
	memset(&ev, 0, sizeof ev);
	ev.timestamp = (uint64_t)time(NULL);
	ev.pid = (uint32_t)pid;
	ev.uid = (uint32_t)uid;
	ev.flags = ((flags & LAS_EV_PTRACE_PROTECTED) ? ARCA_SIM_FLAG_PTRACE_PROTECTED : 0) |
		   ((flags & LAS_EV_SECRET_MEMORY) ? ARCA_SIM_FLAG_SECRET_MEMORY : 0);
	memcpy(ev.measurement, measurement, 32);
	memcpy(ev.report_data, report_data, 64);
	memcpy(ev.las_pub, ctx->key->pub, 32);
	if (arca_sim_evidence_sign(&ev, ctx->key->priv, bytes) < 0)
		return arca_errf(e, ARCA_ECRYPTO, "internal error: signing failed");
	if (arca_buf_append(out, bytes, sizeof bytes) < 0)
		return arca_errf(e, ARCA_ENOMEM, "LAS is out of memory");
	return 0;
}

static void log_line(const struct las_peer *p, const char *meas, const char *outcome, const char *reason)
{
	char clean[REASON_MAX + 1];
	clean_reason(reason ? reason : "", clean, sizeof clean);
	/* One fprintf per line: stdio locks the stream, so lines of
	 * concurrent requests never interleave. */
	fprintf(stderr, "arca-las: request pid=%d uid=%u measurement=%s %s%s%s\n", (int)p->pid, (unsigned)p->uid,
		meas, outcome, reason ? ": " : "", reason ? clean : "");
}

/* The rest of a launch request after its magic; launch.c does the rest. */
static void serve_launch(const struct las_ctx *ctx, int conn, const struct las_peer *p, struct fds *fds,
			 const struct timespec *deadline)
{
	struct arca_errbuf e = {{0}};
	uint8_t len[4], extra, *body = NULL;

	if (read_with_fds(conn, len, sizeof len, fds, deadline, &e) < 0)
		goto refuse;
	size_t n = (size_t)len[0] | (size_t)len[1] << 8 | (size_t)len[2] << 16 | (size_t)len[3] << 24;
	if (n == 0 || n > ARCA_LAS_LAUNCH_MAX) {
		arca_errf(&e, ARCA_ETOOBIG, "launch request of %zu bytes (1 to %u allowed)", n, ARCA_LAS_LAUNCH_MAX);
		goto refuse;
	}
	body = malloc(n);
	if (body == NULL) {
		arca_errf(&e, ARCA_ENOMEM, "LAS is out of memory");
		goto refuse;
	}
	if (read_with_fds(conn, body, n, fds, deadline, &e) < 0)
		goto refuse;
	if (recv(conn, &extra, 1, MSG_DONTWAIT | MSG_PEEK) > 0) {
		arca_errf(&e, ARCA_EPARSE, "launch request longer than the %zu bytes it announced", n);
		goto refuse;
	}
	if (fds->lost) {
		arca_errf(&e, ARCA_EPARSE, "a launch request carries exactly %d descriptors; it had more",
			  ARCA_LAS_LAUNCH_NFDS);
		goto refuse;
	}
	las_launch(ctx, conn, p->uid, p->gid, body, n, fds->v, fds->n);
	fds->n = 0; /* taken */
	free(body);
	return;
refuse:
	fds_close(fds);
	free(body);
	las_reply_text(conn, REFUSED, e.msg);
	char clean[REASON_MAX + 1];
	clean_reason(e.msg, clean, sizeof clean);
	fprintf(stderr, "arca-las: launch for pid=%d uid=%u refused: %s\n", (int)p->pid, (unsigned)p->uid, clean);
}

void las_serve(const struct las_ctx *ctx, int conn, struct las_peer *p)
{
	uint8_t req[ARCA_LAS_REQ_LEN], extra;
	struct arca_measurement m = {0};
	struct arca_buf ev;
	struct arca_errbuf e = {{0}};
	struct timespec deadline;
	char meas[ARCA_DIGEST_STR_LEN] = "-";
	struct timeval tv = {.tv_sec = LAS_IO_TIMEOUT_S, .tv_usec = 0};

	arca_buf_init(&ev, ARCA_LAS_MAX_RESP - 3, 0);
	(void)setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += LAS_IO_TIMEOUT_S;

	struct fds fds = {.n = 0};
	if (read_with_fds(conn, req, 4, &fds, &deadline, &e) < 0) {
		fds_close(&fds);
		goto refuse;
	}
	if (memcmp(req, ARCA_LAS_LAUNCH_MAGIC, 4) == 0) {
		serve_launch(ctx, conn, p, &fds, &deadline);
		return;
	}
	if (memcmp(req, ARCA_LAS_REQ_MAGIC, 4) != 0) {
		fds_close(&fds);
		arca_errf(&e, ARCA_EPARSE, "not an arca LAS request (bad magic)");
		goto refuse;
	}
	int rc = read_with_fds(conn, req + 4, sizeof req - 4, &fds, &deadline, &e);
	int had_fds = fds.n > 0 || fds.lost;
	fds_close(&fds);
	if (rc < 0)
		goto refuse;
	if (had_fds) {
		arca_errf(&e, ARCA_EPARSE, "an evidence request carries no descriptors");
		goto refuse;
	}
	if (p->uid != 0) {
		arca_errf(&e, ARCA_EDENIED, "evidence is only given to programs started through arca run");
		goto refuse;
	}
	/* One request per connection, exactly ARCA_LAS_REQ_LEN bytes. */
	if (recv(conn, &extra, 1, MSG_DONTWAIT | MSG_PEEK) > 0) {
		arca_errf(&e, ARCA_EPARSE, "request longer than %d bytes", ARCA_LAS_REQ_LEN);
		goto refuse;
	}
	if (las_peer_pin(conn, p, &e) < 0)
		goto refuse;
	if (measure_with_cache(ctx->caches, p->pid, &m, &e) < 0)
		goto refuse;
	arca_digest_format(m.digest, meas);
	if (las_peer_confirm(conn, p, &e) < 0)
		goto refuse;

	/* No flags: not ptrace-protected (LAS did not start this process, so
	 * nothing kept others out of it before now), and not marked as having
	 * secret memory (arca-cas, the only caller here, runs no shield). */
	if (las_evidence(ctx, p->pid, p->uid, 0, m.digest, req + 4, &ev, &e) < 0)
		goto refuse;
	send_reply(conn, 0, ev.p, ev.len);
	log_line(p, meas, "granted", NULL);
	arca_measurement_free(&m);
	arca_buf_free(&ev);
	return;
refuse:
	if (e.msg[0] == 0)
		arca_errf(&e, ARCA_EIO, "internal error");
	{
		char clean[REASON_MAX + 1];
		size_t n = clean_reason(e.msg, clean, sizeof clean);
		send_reply(conn, REFUSED, clean, n);
	}
	log_line(p, meas, "refused", e.msg);
	arca_measurement_free(&m);
	arca_buf_free(&ev);
}
