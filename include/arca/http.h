/* http.h: the HTTPS client used by the CLI and the shield (blocking,
 * TLS 1.3 only, HTTP/1.1 with keep-alive), and its response parser.
 *
 * The server is authenticated by pinning: the fingerprint (arca_fpr_pkey)
 * of its certificate's public key must equal pin; there is no CA. With
 * pin == NULL the connection is unauthenticated and is only for
 * `arca cas attest`, which reports the fingerprint it saw (server_fpr).
 * A client identity (struct arca_identity) is presented when given. */
#ifndef ARCA_HTTP_H
#define ARCA_HTTP_H

#include <stddef.h>
#include "arca/err.h"
#include "arca/buf.h"
#include "arca/crypto.h"

struct arca_identity;
struct arca_http;

int arca_http_connect(const char *hostport, const char *pin, const struct arca_identity *id,
		      struct arca_http **out, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Fingerprint of the key the server presented. */
const char *arca_http_server_fpr(const struct arca_http *h);
/* body may be NULL. The response body is appended to resp (bounded by
 * resp->max). */
int arca_http_request(struct arca_http *h, const char *method, const char *path, const void *body, size_t bodylen,
		      int *status, struct arca_buf *resp, struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_http_close(struct arca_http *h);

/* Parses one complete response head + Content-Length body from p[0..n).
 * Returns the number of bytes consumed (> 0), 0 when more bytes are needed,
 * or a negative error for a malformed or oversized response. Chunked
 * encoding is refused. */
long arca_http_parse_response(const uint8_t *p, size_t n, size_t max_body, int *status, size_t *body_off,
			      size_t *body_len);

/* "HOST:PORT" → host and port; IPv6 as "[::1]:PORT". */
int arca_hostport_split(const char *hostport, char *host, size_t hostcap, char *port, size_t portcap) ARCA_MUST_CHECK;

#endif
