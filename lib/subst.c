/* subst.c: $$arca:NAME[:FORMAT]$$ placeholders and which formats fit which
 * kind of secret.
 *
 * This is the one grammar of placeholders: the policy validator runs every
 * placeholder of a policy through arca_subst (with a lookup that only
 * checks), and CAS renders through it, so a policy that was accepted renders
 * and nothing renders that was not validated.
 *
 *   placeholder = "$$arca:" NAME [ ":" FORMAT ] "$$"
 *   NAME        = 1*128 ( ALPHA / DIGIT / "_" / "." / "~" / "-" )
 *   FORMAT      = "hex" / "base64" / "pem" / "key" / "chain"
 *
 * The exact bytes "$$arca:" start a placeholder wherever they appear; there
 * is no escape for them. Every other '$' is literal text, so "$$HOME",
 * "cost: $$5" and a lone "$" pass through unchanged, and "$$$arca:x$$" is a
 * literal "$" followed by a placeholder. NAME has no '/' (unlike a session
 * name): secret names are refused with '/' by the policy parser. */
#include <stdio.h>
#include <string.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/err.h"
#include "arca/policy.h"

#define PH_PREFIX "$$arca:"
#define PH_PREFIX_LEN 7
#define FORMAT_MAX 16

static const char *const formats[] = {"hex", "base64", "pem", "key", "chain"};

static int ph_name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '.' || ch == '~' || ch == '-';
}

static int format_known(const char *f)
{
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
		if (strcmp(f, formats[i]) == 0)
			return 1;
	return 0;
}

int arca_format_fits(enum arca_secret_kind kind, const char *format)
{
	int text = kind == ARCA_SECRET_ASCII || kind == ARCA_SECRET_BINARY;
	if (kind != ARCA_SECRET_ASCII && kind != ARCA_SECRET_BINARY && kind != ARCA_SECRET_PRIVATE_KEY &&
	    kind != ARCA_SECRET_X509)
		return 0;
	if (format == NULL || format[0] == '\0')
		return 1;
	if (strcmp(format, "hex") == 0 || strcmp(format, "base64") == 0)
		return text;
	if (strcmp(format, "pem") == 0 || strcmp(format, "chain") == 0)
		return kind == ARCA_SECRET_X509;
	if (strcmp(format, "key") == 0)
		return kind == ARCA_SECRET_X509 || kind == ARCA_SECRET_PRIVATE_KEY;
	return 0;
}

/* Shows the start of a placeholder in a message. Placeholders come from the
 * policy text, never from secret values, so quoting them leaks nothing;
 * non-printable bytes are escaped so a message cannot drive a terminal. */
static const char *show(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i >= 40) {
			o += (size_t)snprintf(dst + o, cap - o, "...");
			break;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
	}
	dst[o] = '\0';
	return dst;
}

static int closes_at(const char *in, size_t len, size_t i)
{
	return i + 1 < len && in[i] == '$' && in[i + 1] == '$';
}

/* Parses the placeholder at in[0..len) (which starts with the prefix).
 * On success *used is its length and name/format are filled. */
static int parse_placeholder(const char *in, size_t len, char name[ARCA_NAME_MAX + 1], char format[FORMAT_MAX + 1],
			     size_t *used, struct arca_errbuf *e)
{
	char shown[64];
	size_t i = PH_PREFIX_LEN, n0 = i;
	while (i < len && ph_name_char((unsigned char)in[i]))
		i++;
	size_t nlen = i - n0;
	format[0] = '\0';

	if (nlen == 0 && (closes_at(in, len, i) || (i < len && in[i] == ':')))
		return arca_errf(e, ARCA_EPARSE,
				 "placeholder '%s' names no secret; write $$arca:NAME$$ or $$arca:NAME:FORMAT$$",
				 show(shown, sizeof shown, in, closes_at(in, len, i) ? i + 2 : i + 1));
	if (nlen > ARCA_NAME_MAX)
		return arca_errf(e, ARCA_EPARSE,
				 "placeholder '%s' has a secret name longer than %d characters; use a shorter name",
				 show(shown, sizeof shown, in, i), ARCA_NAME_MAX);
	if (nlen > 0 && i < len && in[i] == ':') {
		size_t f0 = ++i;
		while (i < len && ph_name_char((unsigned char)in[i]))
			i++;
		size_t flen = i - f0;
		if (closes_at(in, len, i)) {
			if (flen == 0)
				return arca_errf(e, ARCA_EPARSE,
						 "placeholder '%s' has an empty format after ':'; use hex, base64, "
						 "pem, key or chain, or drop the ':'",
						 show(shown, sizeof shown, in, i + 2));
			if (flen <= FORMAT_MAX) {
				memcpy(format, in + f0, flen);
				format[flen] = '\0';
			}
			if (flen > FORMAT_MAX || !format_known(format))
				return arca_errf(e, ARCA_EPARSE,
						 "placeholder '%s' has an unknown format; use hex, base64, pem, key or "
						 "chain",
						 show(shown, sizeof shown, in, i + 2));
		}
	}
	if (i >= len || (i + 1 == len && in[i] == '$'))
		return arca_errf(e, ARCA_EPARSE, "placeholder '%s' is not closed; end it with $$",
				 show(shown, sizeof shown, in, len));
	if (!closes_at(in, len, i)) {
		unsigned char ch = (unsigned char)in[i];
		char c[8];
		if (ch >= 0x20 && ch < 0x7f)
			snprintf(c, sizeof c, "'%c'", ch);
		else
			snprintf(c, sizeof c, "0x%02x", ch);
		return arca_errf(e, ARCA_EPARSE,
				 "placeholder '%s' is not closed: %s stands where $$ should; write $$arca:NAME$$ or "
				 "$$arca:NAME:FORMAT$$ (a name uses only A-Z a-z 0-9 _ . ~ -)",
				 show(shown, sizeof shown, in, i), c);
	}
	memcpy(name, in + n0, nlen);
	name[nlen] = '\0';
	*used = i + 2;
	return 0;
}

static const char *find_prefix(const char *s, size_t len)
{
	return memmem(s, len, PH_PREFIX, PH_PREFIX_LEN);
}

int arca_subst(const char *in, size_t len, arca_secret_lookup_fn lookup, void *ctx, struct arca_buf *out,
	       struct arca_errbuf *e)
{
	if ((in == NULL && len > 0) || out == NULL || lookup == NULL)
		return arca_errf(e, ARCA_EINVAL, "arca_subst: missing argument");

	/* On failure nothing is left appended: a half-rendered value must not
	 * be mistaken for a whole one, and may hold secret bytes. */
	size_t orig = out->len;
	size_t pos = 0;
	int rc = 0;
	while (pos < len) {
		const char *hit = find_prefix(in + pos, len - pos);
		size_t lit = hit ? (size_t)(hit - (in + pos)) : len - pos;
		GUARD_GOTO(arca_buf_append(out, in + pos, lit), fail);
		pos += lit;
		if (!hit)
			break;

		char name[ARCA_NAME_MAX + 1], format[FORMAT_MAX + 1];
		size_t used = 0;
		GUARD_GOTO(parse_placeholder(in + pos, len - pos, name, format, &used, e), fail);
		rc = lookup(ctx, name, format[0] ? format : NULL, out);
		if (rc < 0) {
			if (rc == ARCA_ENOTFOUND)
				arca_errf(e, rc, "placeholder names secret '%s', which does not exist", name);
			else
				arca_errf(e, rc, "secret '%s' cannot be rendered%s%s: %s", name,
					  format[0] ? " as " : "", format, arca_strerror(rc));
			goto fail;
		}
		pos += used;
	}
	return 0;

fail:
	if (out->p && out->len > orig) {
		arca_wipe(out->p + orig, out->len - orig);
		out->len = orig;
		out->p[orig] = 0;
	}
	if (rc == ARCA_ENOMEM)
		arca_errf(e, rc, "the rendered value is larger than allowed");
	return rc;
}
