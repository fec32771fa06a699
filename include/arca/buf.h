/* buf.h: bounded buffers and a read cursor.
 *
 * struct arca_cur reads from memory it does not own and never past len.
 * struct arca_buf owns a growable heap buffer that never grows past max;
 * a buffer marked secret is wiped before every free and realloc.
 * arca_buf_free wipes (if secret) and frees; the struct may be reused after
 * arca_buf_init. The data is always followed by a NUL byte (not counted in
 * len) so that text can be used as a C string. */
#ifndef ARCA_BUF_H
#define ARCA_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "arca/err.h"

struct arca_cur {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static inline void arca_cur_init(struct arca_cur *c, const void *p, size_t len)
{
	c->p = (const uint8_t *)p;
	c->len = len;
	c->off = 0;
}

static inline size_t arca_cur_left(const struct arca_cur *c) { return c->len - c->off; }

/* Each returns ARCA_EPARSE (and consumes nothing) when fewer bytes remain. */
int arca_cur_take(struct arca_cur *c, size_t n, const uint8_t **out) ARCA_MUST_CHECK;
int arca_cur_copy(struct arca_cur *c, void *out, size_t n) ARCA_MUST_CHECK;
int arca_cur_u8(struct arca_cur *c, uint8_t *v) ARCA_MUST_CHECK;
int arca_cur_u16le(struct arca_cur *c, uint16_t *v) ARCA_MUST_CHECK;
int arca_cur_u32le(struct arca_cur *c, uint32_t *v) ARCA_MUST_CHECK;
int arca_cur_u64le(struct arca_cur *c, uint64_t *v) ARCA_MUST_CHECK;
int arca_cur_skip(struct arca_cur *c, size_t n) ARCA_MUST_CHECK;

struct arca_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max;   /* hard limit on len */
	int secret;   /* wipe on free/realloc */
};

#define ARCA_BUF_DEFAULT_MAX ((size_t)16 << 20)

/* max 0 means ARCA_BUF_DEFAULT_MAX (so does a zeroed struct). */
void arca_buf_init(struct arca_buf *b, size_t max, int secret);
int arca_buf_reserve(struct arca_buf *b, size_t extra) ARCA_MUST_CHECK;
int arca_buf_append(struct arca_buf *b, const void *p, size_t n) ARCA_MUST_CHECK;
int arca_buf_appends(struct arca_buf *b, const char *s) ARCA_MUST_CHECK;
int arca_buf_appendf(struct arca_buf *b, const char *fmt, ...) ARCA_PRINTF(2, 3) ARCA_MUST_CHECK;
int arca_buf_u16le(struct arca_buf *b, uint16_t v) ARCA_MUST_CHECK;
int arca_buf_u32le(struct arca_buf *b, uint32_t v) ARCA_MUST_CHECK;
int arca_buf_u64le(struct arca_buf *b, uint64_t v) ARCA_MUST_CHECK;
void arca_buf_reset(struct arca_buf *b); /* len = 0, wipes if secret */
void arca_buf_free(struct arca_buf *b);
/* Hands the data to the caller (who frees it with free(), after arca_wipe if
 * secret) and leaves b empty. */
uint8_t *arca_buf_steal(struct arca_buf *b, size_t *len);
/* The data as a C string; "" for a buffer that never held anything. */
const char *arca_buf_str(const struct arca_buf *b);
/* Shortens to len (no-op if already shorter), wiping the cut part if secret. */
void arca_buf_truncate(struct arca_buf *b, size_t len);

/* Reads a whole file, appending it to out, refusing files larger than max
 * (ARCA_ETOOBIG; out is left as it was on any failure). A missing file is
 * ARCA_ENOTFOUND. */
int arca_read_file(const char *path, size_t max, struct arca_buf *out, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Same from an open fd (from its offset); name is used in messages. Lets a
 * caller check the fd (fstat: owner, mode) and read the very same file. */
int arca_read_fd(int fd, const char *name, size_t max, struct arca_buf *out, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Writes a file atomically (temp file in the same directory, fsync, rename)
 * with the given mode; nothing is left half-written on failure. */
int arca_write_file_atomic(const char *path, const void *p, size_t n, unsigned mode, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* mkdir -p with mode for created directories. */
int arca_mkdirs(const char *path, unsigned mode, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
