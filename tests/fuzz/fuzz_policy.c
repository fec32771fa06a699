/* fuzz_policy.c: libFuzzer harness for the session policy parser and for
 * placeholder substitution.
 *
 * Any input: arca_policy_parse must fail with at least one diagnostic and no
 * policy, or succeed with none. A policy that parses must canonicalize, hash
 * to SHA-256 of its canonical bytes, redact every given value (and only
 * that: the hash stays the same),
 * and render every command, environment value and file through arca_subst
 * (the validator and the renderer share one grammar, so a policy that was
 * accepted must never fail to render). arca_subst also runs over the raw
 * input, where it must either succeed or leave its output untouched. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Renders any declared secret whose kind fits the format as one byte. */
static int policy_lookup(void *ctx, const char *name, const char *format, struct arca_buf *out)
{
	const struct arca_secret_def *d = arca_policy_secret(ctx, name);
	if (!d)
		return ARCA_ENOTFOUND;
	if (!arca_format_fits(d->kind, format))
		return ARCA_EINVAL;
	return arca_buf_append(out, "S", 1);
}

/* Knows every name; refuses the format "key" to exercise the error path. */
static int any_lookup(void *ctx, const char *name, const char *format, struct arca_buf *out)
{
	(void)ctx;
	if (format && strcmp(format, "key") == 0)
		return ARCA_EINVAL;
	return arca_buf_appends(out, name);
}

static void render(const struct arca_policy *p, const char *s)
{
	struct arca_buf out;
	struct arca_errbuf e;
	arca_buf_init(&out, 0, 1);
	if (arca_subst(s, strlen(s), policy_lookup, (void *)p, &out, &e) != 0)
		abort(); /* accepted by the validator, refused by the renderer */
	arca_buf_free(&out);
}

static void check_policy(const struct arca_policy *p)
{
	struct arca_buf canon;
	uint8_t h[32], h2[32];
	arca_buf_init(&canon, 0, 1);
	if (arca_policy_canonical(p, &canon) != 0 || arca_policy_hash(p, h) != 0 ||
	    arca_sha256(canon.p, canon.len, h2) != 0 || memcmp(h, h2, 32) != 0)
		abort();

	/* every value in the redacted form is either absent or hidden */
	json_t *r = arca_policy_to_json(p, 1);
	json_t *secrets = json_object_get(r, "secrets"), *sec;
	size_t i;
	if (!r || json_array_size(secrets) != p->nsecrets)
		abort();
	json_array_foreach(secrets, i, sec) {
		json_t *v = json_object_get(sec, "value");
		if (!v || (!json_is_null(v) && strcmp(json_string_value(v) ? json_string_value(v) : "", "<redacted>") != 0))
			abort();
	}
	json_decref(r);
	if (arca_policy_hash(p, h2) != 0 || memcmp(h, h2, 32) != 0)
		abort(); /* redaction must not touch what is hashed */

	for (i = 0; i < p->nservices; i++) {
		const struct arca_service *s = &p->services[i];
		if (arca_policy_service(p, s->name) == NULL)
			abort();
		for (size_t j = 0; j < s->ncommand; j++)
			render(p, s->command[j]);
		for (size_t j = 0; j < s->nenv; j++)
			render(p, s->env[j].value);
		for (size_t j = 0; j < s->nfiles; j++)
			render(p, s->files[j].value);
	}
	arca_buf_free(&canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arca_diags ds;
	struct arca_policy *p = NULL;
	arca_diags_init(&ds, "fuzz.yaml");
	int rc = arca_policy_parse((const char *)data, size, &ds, &p);
	if (rc == 0) {
		if (!p || ds.n != 0 || ds.dropped != 0)
			abort();
		check_policy(p);
		arca_policy_free(p);
	} else {
		if (p || ds.n == 0)
			abort(); /* every refusal says why */
		for (size_t i = 0; i < ds.n; i++)
			if (ds.d[i].line < 1 || ds.d[i].col < 1)
				abort();
	}
	struct arca_buf msg;
	arca_buf_init(&msg, 0, 0);
	if (arca_diags_format(&ds, &msg) != 0)
		abort();
	arca_buf_free(&msg);

	struct arca_buf out;
	struct arca_errbuf e;
	arca_buf_init(&out, 0, 1);
	if (arca_buf_appends(&out, "x") != 0)
		abort();
	if (arca_subst((const char *)data, size, any_lookup, NULL, &out, &e) != 0 && out.len != 1)
		abort(); /* a failed rendering leaves nothing behind */
	arca_buf_free(&out);
	return 0;
}
