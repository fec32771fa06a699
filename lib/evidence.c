/* evidence.c: sim evidence (signed by arca-las) and the client side of the
 * LAS socket protocol.
 *
 * The verifier is the gate CAS puts in front of every attestation, so it
 * parses through a cursor, insists on the exact length and on every fixed
 * field, and only then checks the signature. The LAS client is used by the
 * shield before main (over the channel arca-las gave it at launch) and by
 * arca-cas (on the socket): it must never hang its caller, hence the
 * timeouts on every socket operation and an overall deadline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "arca/evidence.h"
#include "arca/buf.h"
#include "arca/crypto.h"

#define EV_MAGIC "ARCAEV01"
#define EV_MAGIC_LEN 8
#define EV_SIGNED_LEN (ARCA_SIM_EVIDENCE_LEN - ARCA_ED25519_SIG_LEN)
#define LAS_TIMEOUT_S 5
#define LAS_HDR_LEN 3

static void put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_u64le(uint8_t *p, uint64_t v)
{
	put_u32le(p, (uint32_t)v);
	put_u32le(p + 4, (uint32_t)(v >> 32));
}

int arca_sim_evidence_sign(const struct arca_sim_evidence *ev, const uint8_t las_priv[32],
			   uint8_t out[ARCA_SIM_EVIDENCE_LEN])
{
	uint8_t pub[32];
	int rc;

	if (ev == NULL || las_priv == NULL || out == NULL)
		return ARCA_EINVAL;
	/* Evidence naming a key other than the signer's could never verify;
	 * catching it here points at the LAS's key handling, not at CAS. */
	GUARD(arca_ed25519_public(las_priv, pub));
	if (!arca_ct_eq(pub, ev->las_pub, 32))
		return ARCA_EINVAL;
	/* A bit no verifier knows would make the evidence unusable. */
	if ((ev->flags & ~ARCA_SIM_FLAGS_KNOWN) != 0)
		return ARCA_EINVAL;
	memcpy(out, EV_MAGIC, EV_MAGIC_LEN);
	put_u32le(out + 8, ARCA_SIM_PLATFORM);
	put_u32le(out + 12, ev->flags);
	put_u64le(out + 16, ev->timestamp);
	put_u32le(out + 24, ev->pid);
	put_u32le(out + 28, ev->uid);
	memcpy(out + 32, ev->measurement, 32);
	memcpy(out + 64, ev->report_data, 64);
	memcpy(out + 128, ev->las_pub, 32);
	rc = arca_ed25519_sign(las_priv, out, EV_SIGNED_LEN, out + EV_SIGNED_LEN);
	if (rc < 0)
		arca_wipe(out, ARCA_SIM_EVIDENCE_LEN);
	return rc;
}

int arca_sim_evidence_verify(const uint8_t *in, size_t len, struct arca_sim_evidence *out, struct arca_errbuf *e)
{
	struct arca_sim_evidence ev;
	const uint8_t *magic, *sig;
	uint32_t platform;
	struct arca_cur c;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (in == NULL)
		return arca_errf(e, ARCA_EINVAL, "sim evidence: none given");
	if (len != ARCA_SIM_EVIDENCE_LEN)
		return arca_errf(e, ARCA_EPARSE, "sim evidence: %zu bytes where exactly %d are expected", len,
				 ARCA_SIM_EVIDENCE_LEN);
	memset(&ev, 0, sizeof(ev));
	arca_cur_init(&c, in, len);
	if (arca_cur_take(&c, EV_MAGIC_LEN, &magic) < 0 || memcmp(magic, EV_MAGIC, EV_MAGIC_LEN) != 0)
		return arca_errf(e, ARCA_EPARSE, "sim evidence: bad magic (not evidence from arca-las)");
	if (arca_cur_u32le(&c, &platform) < 0 || platform != ARCA_SIM_PLATFORM)
		return arca_errf(e, ARCA_EPARSE, "sim evidence: platform %u where %d (sim) is expected", platform,
				 ARCA_SIM_PLATFORM);
	/* A flag this version does not know may promise something it cannot
	 * check: refuse rather than ignore it. */
	if (arca_cur_u32le(&c, &ev.flags) < 0 || (ev.flags & ~ARCA_SIM_FLAGS_KNOWN) != 0)
		return arca_errf(e, ARCA_EPARSE, "sim evidence: unknown flags 0x%x (this verifier knows 0x%x)",
				 ev.flags & ~ARCA_SIM_FLAGS_KNOWN, ARCA_SIM_FLAGS_KNOWN);
	if (arca_cur_u64le(&c, &ev.timestamp) < 0 || arca_cur_u32le(&c, &ev.pid) < 0 ||
	    arca_cur_u32le(&c, &ev.uid) < 0 || arca_cur_copy(&c, ev.measurement, 32) < 0 ||
	    arca_cur_copy(&c, ev.report_data, 64) < 0 || arca_cur_copy(&c, ev.las_pub, 32) < 0 ||
	    arca_cur_take(&c, ARCA_ED25519_SIG_LEN, &sig) < 0 || arca_cur_left(&c) != 0)
		return arca_errf(e, ARCA_EPARSE, "sim evidence: truncated");
	if (arca_ed25519_verify(ev.las_pub, in, EV_SIGNED_LEN, sig) < 0)
		return arca_errf(e, ARCA_ECRYPTO, "sim evidence: the signature does not verify");
	if (out != NULL)
		memcpy(out, &ev, sizeof ev); /* padding included: ev was zeroed */
	return 0;
}

/* ---- LAS client ---- */

static int deadline_left_ms(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

static int send_all(int fd, const uint8_t *p, size_t n, const struct timespec *deadline)
{
	ssize_t w;

	while (n > 0) {
		if (deadline_left_ms(deadline) == 0)
			return ARCA_ETIMEOUT;
		/* MSG_NOSIGNAL: a LAS that went away must not kill the program. */
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? ARCA_ETIMEOUT : ARCA_EIO;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly n bytes; ARCA_ENET when the LAS closes early. */
static int recv_all(int fd, uint8_t *p, size_t n, const struct timespec *deadline)
{
	ssize_t r;

	while (n > 0) {
		if (deadline_left_ms(deadline) == 0)
			return ARCA_ETIMEOUT;
		r = recv(fd, p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? ARCA_ETIMEOUT : ARCA_EIO;
		}
		if (r == 0)
			return ARCA_ENET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static const char *io_reason(int rc)
{
	switch (rc) {
	case ARCA_ETIMEOUT:
		return "no answer within 5 seconds";
	case ARCA_ENET:
		return "the connection was closed before a complete answer";
	default:
		return strerror(errno);
	}
}

int arca_las_connect(const char *socket_path, int timeout_s, struct arca_errbuf *e)
{
	struct sockaddr_un sa;
	struct timeval tv = {.tv_sec = timeout_s, .tv_usec = 0};
	int fd, rc;

	if (socket_path == NULL)
		return arca_errf(e, ARCA_EINVAL, "LAS: no socket path");
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (socket_path[0] == 0 || strlen(socket_path) >= sizeof(sa.sun_path))
		return arca_errf(e, ARCA_EINVAL, "LAS socket path \"%.120s\" is empty or longer than %zu bytes",
				 socket_path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, socket_path, strlen(socket_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "LAS: socket: %s", strerror(errno));
	/* On a Unix socket SO_SNDTIMEO also bounds connect(2). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		rc = arca_errf(e, ARCA_EIO, "LAS: setsockopt: %s", strerror(errno));
		close(fd);
		return rc;
	}
	while ((rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		rc = arca_errf(e, errno == EAGAIN ? ARCA_ETIMEOUT : ARCA_ENET,
			       "cannot connect to arca-las at %s: %s (is arca-las running, and is ARCA_LAS right?)",
			       socket_path, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

/* One "ALR1" exchange on a connected fd; where names the LAS in messages. */
static int evidence_exchange(int fd, const char *where, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
			     struct arca_errbuf *e)
{
	uint8_t req[ARCA_LAS_REQ_LEN], hdr[LAS_HDR_LEN], *payload = NULL;
	struct timespec deadline;
	size_t plen, i;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += LAS_TIMEOUT_S;
	memcpy(req, ARCA_LAS_REQ_MAGIC, 4);
	memcpy(req + 4, report_data, 64);
	rc = send_all(fd, req, sizeof(req), &deadline);
	if (rc < 0)
		return arca_errf(e, rc, "LAS %s: sending the request failed: %s", where, io_reason(rc));
	rc = recv_all(fd, hdr, sizeof(hdr), &deadline);
	if (rc < 0)
		return arca_errf(e, rc, "LAS %s: reading the answer failed: %s", where, io_reason(rc));
	plen = (size_t)hdr[1] | ((size_t)hdr[2] << 8);
	if (plen > ARCA_LAS_MAX_RESP - LAS_HDR_LEN || (hdr[0] == 0 && plen == 0))
		return arca_errf(e, ARCA_ENET, "LAS %s: answer with a bad length (%zu bytes)", where, plen);
	payload = malloc(plen + 1);
	if (payload == NULL)
		return arca_errf(e, ARCA_ENOMEM, "LAS: out of memory");
	rc = recv_all(fd, payload, plen, &deadline);
	if (rc < 0) {
		rc = arca_errf(e, rc, "LAS %s: reading the answer failed: %s", where, io_reason(rc));
		goto done;
	}
	if (hdr[0] != 0) {
		/* The reason is shown on the shield's one refusal line: keep it
		 * printable so a LAS cannot write control sequences there. */
		for (i = 0; i < plen; i++)
			if (payload[i] < 0x20 || payload[i] >= 0x7f)
				payload[i] = '?';
		payload[plen] = 0;
		rc = arca_errf(e, ARCA_EDENIED, "arca-las refused to give evidence: %.400s",
			       plen > 0 ? (const char *)payload : "(no reason given)");
		goto done;
	}
	*ev = payload;
	*evlen = plen;
	payload = NULL;
	rc = 0;
done:
	free(payload);
	return rc;
}

int arca_las_request(const char *socket_path, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
		     struct arca_errbuf *e)
{
	char where[140];
	int fd, rc;

	if (ev != NULL)
		*ev = NULL;
	if (evlen != NULL)
		*evlen = 0;
	if (socket_path == NULL || report_data == NULL || ev == NULL || evlen == NULL)
		return arca_errf(e, ARCA_EINVAL, "LAS request: missing argument");
	fd = arca_las_connect(socket_path, LAS_TIMEOUT_S, e);
	if (fd < 0)
		return fd;
	snprintf(where, sizeof where, "at %.120s", socket_path);
	rc = evidence_exchange(fd, where, report_data, ev, evlen, e);
	close(fd);
	return rc;
}

int arca_las_request_fd(int fd, const uint8_t report_data[64], uint8_t **ev, size_t *evlen, struct arca_errbuf *e)
{
	struct timeval tv = {.tv_sec = LAS_TIMEOUT_S, .tv_usec = 0};
	int rc;

	if (ev != NULL)
		*ev = NULL;
	if (evlen != NULL)
		*evlen = 0;
	if (fd < 0 || report_data == NULL || ev == NULL || evlen == NULL) {
		if (fd >= 0)
			close(fd);
		return arca_errf(e, ARCA_EINVAL, "LAS request: missing argument");
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		rc = arca_errf(e, ARCA_EIO,
			       "the channel to arca-las (descriptor %d) is not a socket: %s; start protected programs "
			       "with `arca run`",
			       fd, strerror(errno));
		close(fd);
		return rc;
	}
	rc = evidence_exchange(fd, "(launch channel)", report_data, ev, evlen, e);
	close(fd);
	return rc;
}
