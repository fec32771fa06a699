/* las_launch.h: the launch request of CONTRACTS.md "Trusted launch": how
 * `arca run` asks arca-las to start a protected program, and how arca-las
 * reports on it.
 *
 * Request, on the public LAS socket, one per connection:
 *   "ALL1" || u32le n || n bytes of JSON
 *   {"argv": [ABSOLUTE PATH, ARG…], "session": S, "service": V,
 *    "cas": "IP:PORT" or "[IPv6]:PORT", "cas_pin": "SHA256:…",
 *    "report": true}
 * sent in one sendmsg(2) carrying SCM_RIGHTS with exactly four
 * descriptors: stdin, stdout, stderr and a directory fd of the working
 * directory. n is at most ARCA_LAS_LAUNCH_MAX; argv has 1 to
 * ARCA_LAS_LAUNCH_MAX_ARGS strings without NUL. Every key but "report" is
 * required and no other is allowed. "report" (a JSON boolean, optional,
 * false when absent; the encoder writes it only when true) asks for the
 * coverage report of `arca run --report`: arca-las puts ARCA_REPORT=1 in
 * the program's environment.
 *
 * Replies, arca-las → arca run, each one message
 *   type u8 || u16le length || payload
 * with the same framing as the answer to "ALR1" (evidence.h):
 *   ARCA_LAS_REFUSED (1)  payload: the reason, printable text; then close
 *   ARCA_LAS_STARTED (2)  payload: u32le pid of the program
 *   ARCA_LAS_EXITED  (3)  payload: u32le exit status (0..255); then close
 *   ARCA_LAS_KILLED  (4)  payload: u32le signal number; then close
 * A launch that is not refused gets STARTED, then exactly one of EXITED or
 * KILLED when the program ends. When `arca run` closes its end first,
 * arca-las sends the program SIGHUP (a terminal hangup) and reports
 * nothing more.
 *
 * struct arca_launch_req and its strings belong to the caller
 * (arca_launch_req_free). */
#ifndef ARCA_LAS_LAUNCH_H
#define ARCA_LAS_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/err.h"

#define ARCA_LAS_LAUNCH_MAGIC "ALL1"
#define ARCA_LAS_LAUNCH_HDR_LEN 8
#define ARCA_LAS_LAUNCH_MAX (64u << 10)
#define ARCA_LAS_LAUNCH_MAX_ARGS 4096
#define ARCA_LAS_LAUNCH_NFDS 4

#define ARCA_LAS_REFUSED 1
#define ARCA_LAS_STARTED 2
#define ARCA_LAS_EXITED 3
#define ARCA_LAS_KILLED 4

struct arca_launch_req {
	char **argv; /* argc strings, then NULL */
	size_t argc;
	char session[129];
	char service[129];
	char cas[300];
	char cas_pin[ARCA_FPR_LEN];
	int report; /* 1: `arca run --report` */
};

/* The whole request: header and JSON. Refuses what the decoder would. */
int arca_launch_req_encode(const struct arca_launch_req *r, struct arca_buf *out) ARCA_MUST_CHECK;
/* The JSON body (after the 8-byte header) into r; strict, see above. */
int arca_launch_req_decode(const uint8_t *p, size_t n, struct arca_launch_req *r,
			   struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_launch_req_free(struct arca_launch_req *r);

/* A reply message as sent on the wire (3 + n bytes into out, n <= 400). */
size_t arca_las_reply_encode(uint8_t type, const void *payload, size_t n, uint8_t out[3 + 400]);

/* Client: connects to socket_path, sends r with fds[4] attached, and
 * waits (up to timeout_s) for STARTED or REFUSED. Returns the connection
 * (close-on-exec) and the pid; a refusal is ARCA_EDENIED with LAS's reason
 * in e. */
int arca_las_launch(const char *socket_path, const struct arca_launch_req *r, const int fds[ARCA_LAS_LAUNCH_NFDS],
		    int timeout_s, uint32_t *pid, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Reads one whole reply message from fd, waiting as long as the socket's
 * receive timeout allows (none: until it comes). type and value are set
 * for STARTED, EXITED and KILLED; a REFUSED reason is ARCA_EDENIED with
 * the reason in e; ARCA_ENET when LAS closed the connection first. */
int arca_las_reply_read(int fd, uint8_t *type, uint32_t *value, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
