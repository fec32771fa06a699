/* secrets.h: secrets CAS generates and keeps for a session, and how they
 * are rendered into a service's configuration.
 *
 * Generated values exist only sealed in the store and, while a request
 * needs them, in secret (wiped) buffers; nothing here logs or returns them
 * except to the renderer that fills a configuration about to be sealed to
 * an attested program. Everything that writes the store runs inside the
 * caller's write transaction. */
#ifndef CAS_SECRETS_H
#define CAS_SECRETS_H

#include <stddef.h>
#include <stdint.h>
#include "arca/buf.h"
#include "arca/err.h"
#include "arca/policy.h"
#include "store.h"

#define CAS_SECRET_DEFAULT_SIZE 32
#define CAS_SECRET_MAX_SIZE 65536

/* 1 when CAS generates this secret (no value given by the owner). */
int cas_secret_is_generated(const struct arca_secret_def *d);

/* Makes the stored secrets of session match policy p: a generated secret
 * whose kind and parameters (size; common name and DNS names for x509) are
 * unchanged is kept, a new or changed one is generated, one no longer
 * generated is deleted. The session CA is created on the first x509 secret
 * and kept. Needs an open write transaction. e says which secret failed,
 * never its value. */
int cas_secrets_sync(struct cas_store *s, const char *session, const struct arca_policy *p,
		     struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Renderer for arca_subst over one session in one read snapshot. */
struct cas_render_slot;
struct cas_render {
	struct cas_store *store;
	const char *session;
	const struct arca_policy *policy;
	struct cas_render_slot *slots; /* records loaded so far */
	size_t nslots;
};
void cas_render_init(struct cas_render *r, struct cas_store *s, const char *session, const struct arca_policy *p);
void cas_render_free(struct cas_render *r); /* wipes what was loaded */
/* arca_secret_lookup_fn; ctx is a struct cas_render. */
int cas_render_lookup(void *ctx, const char *name, const char *format, struct arca_buf *out);

#endif
