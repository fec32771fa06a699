/* audit.h: CAS's append-only audit log.
 *
 * JSON lines, one record per line, always: each record is an object with
 * the caller's fields plus "seq" (from 1), "time" (RFC 3339 UTC), "prev"
 * (hex hash of the previous record, 64 zeros for the first) and "hash" =
 * hex SHA-256 of the record's canonical JSON without "hash" (sorted keys,
 * compact). An append of one or of many records is one write(2) of whole
 * lines with O_APPEND, then one fdatasync: all of them are in the log, or
 * none (a short write is cut off again; after a failed fdatasync the state
 * of the file is unknown and every later append fails with ARCA_EIO).
 * Records are not taken: the caller keeps and frees them. Never pass a
 * secret value in a record.
 *
 * The chain shows an edited, removed or reordered line, but not lines cut
 * off the end, nor a log rewritten from some line on: for that the writer
 * keeps the head (arca_audit_head) somewhere the log's readers cannot
 * change, and opens the log with arca_audit_open_anchored. */
#ifndef ARCA_AUDIT_H
#define ARCA_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "arca/err.h"

/* Longest line, and most bytes one arca_audit_append_many may write. */
#define ARCA_AUDIT_MAX_LINE ((size_t)1 << 20)
#define ARCA_AUDIT_MAX_APPEND ((size_t)16 << 20)

struct arca_audit;

/* Opens (creates 0600) the log, verifies the existing chain and continues
 * it; refuses a log whose chain is broken (message in e). */
int arca_audit_open(const char *path, struct arca_audit **out, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* The same, and refuses with ARCA_ESTALE a log that does not hold record
 * seq with this hash (a head recorded earlier): one that ends before seq
 * was cut short, one whose record seq differs was rewritten from there on.
 * Records after seq are accepted (written after the head was recorded).
 * seq 0 is the empty log's head and checks nothing. */
int arca_audit_open_anchored(const char *path, uint64_t seq, const uint8_t hash[static 32], struct arca_audit **out,
			     struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Adds seq/time/prev/hash to rec (which it does not take) and appends. */
int arca_audit_append(struct arca_audit *a, json_t *rec) ARCA_MUST_CHECK;
/* Appends recs[0..n) in that order, chained one after the other, each its
 * own line, with one write and one fdatasync. ARCA_EINVAL when any record
 * is not an object or uses a reserved key, ARCA_ETOOBIG beyond
 * ARCA_AUDIT_MAX_LINE per line or ARCA_AUDIT_MAX_APPEND in all: then
 * nothing is written. n = 0 writes nothing and succeeds. */
int arca_audit_append_many(struct arca_audit *a, json_t *const *recs, size_t n) ARCA_MUST_CHECK;
/* The last record in the log (written and fdatasynced): its seq and hash;
 * seq 0 and 32 zero bytes for an empty log. */
int arca_audit_head(const struct arca_audit *a, uint64_t *seq, uint8_t hash[static 32]) ARCA_MUST_CHECK;
void arca_audit_close(struct arca_audit *a);

/* Verifies a whole file: ARCA_ECRYPTO / ARCA_EPARSE with the line number of
 * the first bad record in e; *nrecords gets the count of good records. */
int arca_audit_verify_file(const char *path, size_t *nrecords, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
