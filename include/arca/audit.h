/* audit.h: CAS's append-only audit log.
 *
 * JSON lines. Each record is an object with the caller's fields plus
 * "seq" (from 1), "time" (RFC 3339 UTC), "prev" (hex hash of the previous
 * record, 64 zeros for the first) and "hash" = hex SHA-256 of the record's
 * canonical JSON without "hash" (sorted keys, compact). Appends are one
 * write(2) of a whole line with O_APPEND, then fdatasync. Never pass a
 * secret value in a record. */
#ifndef ARCA_AUDIT_H
#define ARCA_AUDIT_H

#include <stddef.h>
#include <jansson.h>
#include "arca/err.h"

struct arca_audit;

/* Opens (creates 0600) the log, verifies the existing chain and continues
 * it; refuses a log whose chain is broken (message in e). */
int arca_audit_open(const char *path, struct arca_audit **out, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Adds seq/time/prev/hash to rec (which it does not take) and appends. */
int arca_audit_append(struct arca_audit *a, json_t *rec) ARCA_MUST_CHECK;
void arca_audit_close(struct arca_audit *a);

/* Verifies a whole file: ARCA_ECRYPTO / ARCA_EPARSE with the line number of
 * the first bad record in e; *nrecords gets the count of good records. */
int arca_audit_verify_file(const char *path, size_t *nrecords, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
