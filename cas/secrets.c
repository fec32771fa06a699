/* secrets.c: generation of a session's secrets inside CAS and their
 * rendering into placeholders (see secrets.h).
 *
 * Stored value layouts (inside the sealed secret record):
 *   ascii, binary:  the characters / bytes
 *   private-key:    PKCS#8 PEM
 *   x509:           u32 len || key PEM || u32 len || cert PEM || u32 len || CA cert PEM
 *   session CA:     u32 len || key PEM || u32 len || cert PEM   (name CAS_CA_SECRET) */
#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/x509.h"

#define CA_KIND 0

int cas_secret_is_generated(const struct arca_secret_def *d)
{
	return d->value == NULL;
}

static size_t def_size(const struct arca_secret_def *d)
{
	return d->size ? d->size : CAS_SECRET_DEFAULT_SIZE;
}

/* What a generated value depends on: if this digest is unchanged by an
 * update the old value still fits and is kept. */
static int params_digest(const struct arca_secret_def *d, uint8_t out[32])
{
	struct arca_buf b;
	uint8_t kind = (uint8_t)d->kind;
	int rc;

	arca_buf_init(&b, 64 << 10, 0);
	GUARD_GOTO(arca_buf_appends(&b, "arca-cas/v1/secret-params"), out);
	GUARD_GOTO(arca_buf_append(&b, &kind, 1), out);
	if (d->kind == ARCA_SECRET_ASCII || d->kind == ARCA_SECRET_BINARY)
		GUARD_GOTO(arca_buf_u64le(&b, (uint64_t)def_size(d)), out);
	if (d->kind == ARCA_SECRET_X509) {
		const char *cn = d->common_name ? d->common_name : d->name;
		GUARD_GOTO(arca_buf_append(&b, cn, strlen(cn) + 1), out);
		GUARD_GOTO(arca_buf_u32le(&b, (uint32_t)d->ndns), out);
		for (size_t i = 0; i < d->ndns; i++)
			GUARD_GOTO(arca_buf_append(&b, d->dns[i], strlen(d->dns[i]) + 1), out);
	}
	rc = arca_sha256(b.p, b.len, out);
out:
	arca_buf_free(&b);
	return rc;
}

/* Maps v in [0, 62) to [A-Za-z0-9] without a branch or a table lookup
 * that depends on v. */
static uint8_t alnum_ct(unsigned v)
{
	int c = 'A' + (int)v;
	c += ((25 - (int)v) >> 8) & ('a' - 'A' - 26);
	c += ((51 - (int)v) >> 8) & ('0' - 'a' - 26);
	return (uint8_t)c;
}

/* Uniform over the 62 characters: bytes >= 248 (= 4 × 62) are rejected. */
static int gen_ascii(size_t n, struct arca_buf *out)
{
	uint8_t pool[256];
	size_t have = 0, used = 0;
	int rc = 0;

	GUARD(arca_buf_reserve(out, n));
	while (n) {
		if (used == have) {
			GUARD_GOTO(arca_random(pool, sizeof pool), out);
			have = sizeof pool;
			used = 0;
		}
		uint8_t b = pool[used++];
		if (b >= 248)
			continue;
		out->p[out->len++] = alnum_ct(b % 62u);
		n--;
	}
	out->p[out->len] = 0;
out:
	arca_wipe(pool, sizeof pool);
	return rc;
}

static int gen_binary(size_t n, struct arca_buf *out)
{
	GUARD(arca_buf_reserve(out, n));
	GUARD(arca_random(out->p + out->len, n));
	out->len += n;
	out->p[out->len] = 0;
	return 0;
}

static int put_part(struct arca_buf *out, const struct arca_buf *part)
{
	GUARD(arca_buf_u32le(out, (uint32_t)part->len));
	return arca_buf_append(out, part->p, part->len);
}

/* Splits a value of length-prefixed parts; the parts point into v. */
static int get_parts(const struct arca_buf *v, size_t want, const uint8_t **p, size_t *n)
{
	struct arca_cur c;

	arca_cur_init(&c, v->p, v->len);
	for (size_t i = 0; i < want; i++) {
		uint32_t len;
		GUARD(arca_cur_u32le(&c, &len));
		GUARD(arca_cur_take(&c, len, &p[i]));
		n[i] = len;
	}
	ENSURE(arca_cur_left(&c) == 0, ARCA_EPARSE);
	return 0;
}

/* The session CA: loaded, or created (and stored) on first use. */
static int session_ca(struct cas_store *s, const char *session, struct cas_secret_rec *ca, struct arca_errbuf *e)
{
	struct arca_buf key, cert;
	char cn[64];
	int rc;

	rc = cas_store_secret_get(s, session, CAS_CA_SECRET, ca);
	if (rc != ARCA_ENOTFOUND)
		return rc < 0 ? arca_errf(e, rc, "session CA: cannot load (%s)", arca_strerror(rc)) : 0;
	/* X.509 limits a common name to 64 characters. */
	snprintf(cn, sizeof cn, "arca CA %.50s", session);
	arca_buf_init(&key, 64 << 10, 1);
	arca_buf_init(&cert, 64 << 10, 0);
	rc = arca_ca_create(cn, &key, &cert);
	if (rc == 0) {
		ca->kind = CA_KIND;
		memset(ca->params, 0, sizeof ca->params);
		arca_buf_reset(&ca->value);
		rc = put_part(&ca->value, &key);
		if (rc == 0)
			rc = put_part(&ca->value, &cert);
		if (rc == 0)
			rc = cas_store_secret_put(s, session, CAS_CA_SECRET, ca);
	}
	arca_buf_free(&key);
	arca_buf_free(&cert);
	if (rc < 0)
		return arca_errf(e, rc, "session CA: cannot create (%s)", arca_strerror(rc));
	return 0;
}

static int gen_x509(struct cas_store *s, const char *session, const struct arca_secret_def *d, struct arca_buf *out,
		    struct arca_errbuf *e)
{
	struct cas_secret_rec ca;
	struct arca_buf key, cert, cacert;
	const uint8_t *part[2];
	size_t plen[2];
	int rc;

	cas_secret_rec_init(&ca);
	arca_buf_init(&key, 64 << 10, 1);
	arca_buf_init(&cert, 64 << 10, 0);
	arca_buf_init(&cacert, 64 << 10, 0);
	GUARD_GOTO(session_ca(s, session, &ca, e), out);
	if ((rc = get_parts(&ca.value, 2, part, plen)) < 0) {
		rc = arca_errf(e, rc, "session CA record damaged");
		goto out;
	}
	rc = arca_ca_issue(part[0], plen[0], part[1], plen[1], d->common_name ? d->common_name : d->name,
			   (const char *const *)d->dns, d->ndns, &key, &cert);
	if (rc < 0) {
		rc = arca_errf(e, rc, "secret %s: cannot issue the certificate (%s)", d->name, arca_strerror(rc));
		goto out;
	}
	GUARD_GOTO(arca_buf_append(&cacert, part[1], plen[1]), out);
	GUARD_GOTO(put_part(out, &key), out);
	GUARD_GOTO(put_part(out, &cert), out);
	rc = put_part(out, &cacert);
out:
	arca_buf_free(&key);
	arca_buf_free(&cert);
	arca_buf_free(&cacert);
	cas_secret_rec_free(&ca);
	return rc;
}

static int generate(struct cas_store *s, const char *session, const struct arca_secret_def *d,
		    struct cas_secret_rec *rec, struct arca_errbuf *e)
{
	int rc;

	rec->kind = (uint8_t)d->kind;
	GUARD(params_digest(d, rec->params));
	arca_buf_reset(&rec->value);
	switch (d->kind) {
	case ARCA_SECRET_ASCII:
	case ARCA_SECRET_BINARY:
		if (def_size(d) > CAS_SECRET_MAX_SIZE)
			return arca_errf(e, ARCA_ETOOBIG, "secret %s: size %zu is larger than %d", d->name, def_size(d),
					 CAS_SECRET_MAX_SIZE);
		rc = d->kind == ARCA_SECRET_ASCII ? gen_ascii(def_size(d), &rec->value)
						  : gen_binary(def_size(d), &rec->value);
		break;
	case ARCA_SECRET_PRIVATE_KEY:
		rc = arca_private_key_pem(&rec->value);
		break;
	case ARCA_SECRET_X509:
		return gen_x509(s, session, d, &rec->value, e);
	default:
		return arca_errf(e, ARCA_EUNSUPPORTED, "secret %s: unknown kind", d->name);
	}
	if (rc < 0)
		return arca_errf(e, rc, "secret %s: generation failed (%s)", d->name, arca_strerror(rc));
	return 0;
}

int cas_secrets_sync(struct cas_store *s, const char *session, const struct arca_policy *p, struct arca_errbuf *e)
{
	struct cas_names stored;
	struct cas_secret_rec rec;
	uint8_t want[32];
	int rc = 0;

	if (p->nsecrets > CAS_MAX_SECRETS)
		return arca_errf(e, ARCA_ETOOBIG, "more than %d secrets", CAS_MAX_SECRETS);
	GUARD(cas_store_secret_names(s, session, &stored));
	/* Drop what is stored but no longer generated by the policy. */
	for (size_t i = 0; i < stored.n; i++) {
		const struct arca_secret_def *d;
		if (strcmp(stored.v[i], CAS_CA_SECRET) == 0)
			continue;
		d = arca_policy_secret(p, stored.v[i]);
		if (!d || !cas_secret_is_generated(d))
			GUARD_GOTO(cas_store_secret_delete(s, session, stored.v[i]), out_names);
	}
	rc = 0;
	for (size_t i = 0; i < p->nsecrets && rc == 0; i++) {
		const struct arca_secret_def *d = &p->secrets[i];
		if (!cas_secret_is_generated(d))
			continue;
		GUARD_GOTO(params_digest(d, want), out_names);
		cas_secret_rec_init(&rec);
		rc = cas_store_secret_get(s, session, d->name, &rec);
		if (rc == 0 && rec.kind == (uint8_t)d->kind && arca_ct_eq(rec.params, want, 32)) {
			cas_secret_rec_free(&rec); /* unchanged: keep */
			continue;
		}
		if (rc < 0 && rc != ARCA_ENOTFOUND) {
			rc = arca_errf(e, rc, "secret %s: stored record does not open (%s)", d->name, arca_strerror(rc));
		} else {
			rc = generate(s, session, d, &rec, e);
			if (rc == 0)
				rc = cas_store_secret_put(s, session, d->name, &rec);
		}
		cas_secret_rec_free(&rec);
	}
out_names:
	cas_names_free(&stored);
	return rc;
}

/* ---- rendering ---- */

struct cas_render_slot {
	const struct arca_secret_def *def;
	struct cas_secret_rec rec;
};

void cas_render_init(struct cas_render *r, struct cas_store *s, const char *session, const struct arca_policy *p)
{
	memset(r, 0, sizeof *r);
	r->store = s;
	r->session = session;
	r->policy = p;
}

void cas_render_free(struct cas_render *r)
{
	for (size_t i = 0; i < r->nslots; i++)
		cas_secret_rec_free(&r->slots[i].rec);
	free(r->slots);
	r->slots = NULL;
	r->nslots = 0;
}

static int load(struct cas_render *r, const struct arca_secret_def *d, const struct cas_secret_rec **out)
{
	struct cas_render_slot *ns;
	int rc;

	for (size_t i = 0; i < r->nslots; i++) {
		if (r->slots[i].def == d) {
			*out = &r->slots[i].rec;
			return 0;
		}
	}
	ns = realloc(r->slots, (r->nslots + 1) * sizeof *ns);
	ENSURE(ns, ARCA_ENOMEM);
	r->slots = ns;
	ns[r->nslots].def = d;
	cas_secret_rec_init(&ns[r->nslots].rec);
	rc = cas_store_secret_get(r->store, r->session, d->name, &ns[r->nslots].rec);
	if (rc == 0 && ns[r->nslots].rec.kind != (uint8_t)d->kind)
		rc = ARCA_ESTALE;
	if (rc < 0) {
		cas_secret_rec_free(&ns[r->nslots].rec);
		return rc;
	}
	*out = &ns[r->nslots].rec;
	r->nslots++;
	return 0;
}

static int append_hex(struct arca_buf *out, const uint8_t *p, size_t n)
{
	GUARD(arca_buf_reserve(out, 2 * n + 1));
	arca_hex_encode(p, n, (char *)out->p + out->len);
	out->len += 2 * n;
	return 0;
}

static int append_b64(struct arca_buf *out, const uint8_t *p, size_t n)
{
	size_t m = ARCA_B64_LEN(n);

	GUARD(arca_buf_reserve(out, m));
	arca_b64_encode(p, n, (char *)out->p + out->len);
	out->len += m - 1;
	return 0;
}

int cas_render_lookup(void *ctx, const char *name, const char *format, struct arca_buf *out)
{
	struct cas_render *r = ctx;
	const struct arca_secret_def *d = arca_policy_secret(r->policy, name);
	const struct cas_secret_rec *rec = NULL;
	const uint8_t *val, *part[3];
	size_t vlen, plen[3];

	ENSURE(d, ARCA_ENOTFOUND);
	if (format && !*format)
		format = NULL;
	ENSURE(arca_format_fits(d->kind, format), ARCA_EINVAL);
	if (cas_secret_is_generated(d)) {
		GUARD(load(r, d, &rec));
		val = rec->value.p;
		vlen = rec->value.len;
	} else {
		val = d->value;
		vlen = d->value_len;
	}
	switch (d->kind) {
	case ARCA_SECRET_ASCII:
	case ARCA_SECRET_BINARY:
		if (!format)
			return arca_buf_append(out, val, vlen);
		if (strcmp(format, "hex") == 0)
			return append_hex(out, val, vlen);
		if (strcmp(format, "base64") == 0)
			return append_b64(out, val, vlen);
		return ARCA_EINVAL;
	case ARCA_SECRET_PRIVATE_KEY:
		ENSURE(!format || strcmp(format, "key") == 0, ARCA_EINVAL);
		return arca_buf_append(out, val, vlen);
	case ARCA_SECRET_X509:
		ENSURE(rec, ARCA_EINVAL);
		GUARD(get_parts(&rec->value, 3, part, plen));
		if (!format || strcmp(format, "pem") == 0)
			return arca_buf_append(out, part[1], plen[1]);
		if (strcmp(format, "key") == 0)
			return arca_buf_append(out, part[0], plen[0]);
		if (strcmp(format, "chain") == 0) {
			GUARD(arca_buf_append(out, part[1], plen[1]));
			return arca_buf_append(out, part[2], plen[2]);
		}
		return ARCA_EINVAL;
	}
	return ARCA_EINVAL;
}
