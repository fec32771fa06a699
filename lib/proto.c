/* proto.c: the JSON messages between CAS, the shield and the CLI, and the
 * configuration CAS seals to an attested service.
 *
 * Every decoder here reads outside input, so each one checks the exact set
 * of keys, their types and their sizes before anything is used, and names
 * the offending field in e. Configurations carry secrets: the JSON text and
 * jansson's copies of its strings are wiped before they are freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arca/proto.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/policy.h"

/* Sorted and compact, so that the same message always has the same bytes. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* Limits of one configuration. MAX_ARG_STRLEN on Linux is 128 KiB, so no
 * single argv or env string larger than that can ever be used. */
#define CONFIG_MAX_ARGS 4096
#define CONFIG_MAX_ENV 4096
#define CONFIG_MAX_FILES 1024
#define CONFIG_MAX_STRING (128u << 10)
#define CONFIG_MAX_PATH 4095
#define CONFIG_MAX_VOLUMES 256
#define VOL_KEY_LEN 32
#define VOL_TAG_LEN 32

#define NONCE_MAX_EXPIRES 86400

#define BOX_MIN (32 + ARCA_AEAD_OVERHEAD)
#define BOX_MAX ((size_t)ARCA_MAX_CONFIG + BOX_MIN)
/* {"config":"<b64>"} */
#define SEALED_MAX_JSON (ARCA_B64_LEN(BOX_MAX) + 64)

/* Wiping jansson's string values before the tree is freed is the only way
 * to keep secrets from lingering in freed heap (jansson's free is not ours). */
static void json_wipe(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (j == NULL)
		return;
	switch (json_typeof(j)) {
	case JSON_STRING:
		arca_wipe((char *)json_string_value(j), json_string_length(j));
		break;
	case JSON_OBJECT:
		json_object_foreach(j, k, v)
			json_wipe(v);
		break;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
			json_wipe(v);
		break;
	default:
		break;
	}
}

static void json_wipe_decref(json_t *j)
{
	if (j == NULL)
		return;
	if (j->refcount == 1)
		json_wipe(j);
	json_decref(j);
}

/* Appends the canonical text of j to out straight from jansson's dump
 * callback: no intermediate heap copy of a possibly secret text. limit is
 * what the matching decoder accepts: never send what the peer must refuse. */
static int dump_append(const json_t *j, size_t limit, struct arca_buf *out)
{
	size_t need, got;

	need = json_dumpb(j, NULL, 0, DUMP_FLAGS);
	if (need == 0)
		return ARCA_EINVAL;
	if (need > limit)
		return ARCA_ETOOBIG;
	GUARD(arca_buf_reserve(out, need));
	got = json_dumpb(j, (char *)out->p + out->len, need, DUMP_FLAGS);
	if (got != need) {
		arca_wipe(out->p + out->len, need);
		return ARCA_EINVAL;
	}
	out->len += need;
	out->p[out->len] = 0;
	return 0;
}

/* Outside text shown in a message: bounded, printable ASCII only, so that
 * a hostile key cannot write escape sequences to a terminal or a log. */
static void sanitize(char *dst, size_t cap, const char *src, size_t len)
{
	size_t i, o = 0;

	if (cap == 0)
		return;
	for (i = 0; i < len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[o] = 0;
}

static int load_object(const uint8_t *p, size_t n, size_t max, const char *what, json_t **out,
		       struct arca_errbuf *e)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (p == NULL && n > 0)
		return arca_errf(e, ARCA_EINVAL, "%s: no input", what);
	if (n > max)
		return arca_errf(e, ARCA_ETOOBIG, "%s: message of %zu bytes is larger than the limit of %zu", what,
				 n, max);
	/* Without JSON_ALLOW_NUL jansson refuses \u0000 in strings and keys. */
	j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		return arca_errf(e, ARCA_EPARSE, "%s: not valid JSON (line %d, column %d)", what, jerr.line,
				 jerr.column);
	if (!json_is_object(j)) {
		json_wipe_decref(j);
		return arca_errf(e, ARCA_EPARSE, "%s: expected a JSON object", what);
	}
	*out = j;
	return 0;
}

/* Exactly the keys listed: an unknown key or a missing one is refused. */
static int check_keys(json_t *o, const char *what, const char *const *keys, size_t nkeys, struct arca_errbuf *e)
{
	const char *k;
	json_t *v;
	size_t i;
	char safe[48];

	json_object_foreach(o, k, v) {
		for (i = 0; i < nkeys; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == nkeys) {
			sanitize(safe, sizeof(safe), k, strlen(k));
			return arca_errf(e, ARCA_EPARSE, "%s: unknown key \"%s\"", what, safe);
		}
	}
	for (i = 0; i < nkeys; i++)
		if (json_object_get(o, keys[i]) == NULL)
			return arca_errf(e, ARCA_EPARSE, "%s: missing key \"%s\"", what, keys[i]);
	return 0;
}

static int get_string(json_t *o, const char *what, const char *key, const char **s, size_t *len,
		      struct arca_errbuf *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return arca_errf(e, ARCA_EPARSE, "%s: \"%s\" must be a string", what, key);
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (memchr(*s, 0, *len) != NULL)
		return arca_errf(e, ARCA_EPARSE, "%s: \"%s\" contains a NUL character", what, key);
	return 0;
}

/* A binary field of exactly n bytes. */
static int get_b64_fixed(json_t *o, const char *what, const char *key, uint8_t *out, size_t n,
			 struct arca_errbuf *e)
{
	const char *s;
	size_t len, got = 0;

	GUARD(get_string(o, what, key, &s, &len, e));
	if (len != ARCA_B64_LEN(n) - 1 || arca_b64_decode(s, len, out, n, &got) < 0 || got != n) {
		arca_wipe(out, n);
		return arca_errf(e, ARCA_EPARSE, "%s: \"%s\" must be base64 of exactly %zu bytes", what, key, n);
	}
	return 0;
}

/* Decodes base64 of min..max bytes and appends it to out. The exact size
 * follows from the padding, so the limit is checked before decoding. */
static int b64_append(const char *s, size_t len, size_t min, size_t max, struct arca_buf *out)
{
	size_t want, got = 0;
	int rc;

	if (len % 4 != 0)
		return ARCA_EPARSE;
	want = len / 4 * 3;
	if (len > 0 && s[len - 1] == '=')
		want -= (s[len - 2] == '=') ? 2 : 1;
	if (want < min || want > max)
		return ARCA_EPARSE;
	if (want == 0)
		return 0;
	rc = arca_buf_reserve(out, want);
	if (rc < 0)
		return rc;
	rc = arca_b64_decode(s, len, out->p + out->len, want, &got);
	if (rc < 0 || got != want) {
		arca_wipe(out->p + out->len, want);
		return rc < 0 ? rc : ARCA_EPARSE;
	}
	out->len += got;
	out->p[out->len] = 0;
	return 0;
}

/* The values CAS stores and compares against are names of design.md. */
static int name_field(json_t *o, const char *what, const char *key, char *out, size_t cap, struct arca_errbuf *e)
{
	const char *s;
	size_t len;

	GUARD(get_string(o, what, key, &s, &len, e));
	if (len >= cap || !arca_name_valid(s))
		return arca_errf(e, ARCA_EPARSE, "%s: \"%s\" must be a name of 1 to 128 characters from [A-Za-z0-9_.~/-]",
				 what, key);
	memcpy(out, s, len + 1);
	return 0;
}

/* Platform words are lower-case: "sim", "sev-snp", "tdx". Which ones are
 * accepted is CAS's policy decision, not the decoder's. */
static int platform_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= sizeof(((struct arca_msg_attest *)0)->platform))
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* Error codes are the snake_case words of docs/CONTRACTS.md. */
static int code_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 63)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* A volume's name: a name of design.md without '/' (the pair "S/V" names
 * a volume in URLs, as it names a service in evidence), never "." or "..". */
static int volume_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > ARCA_NAME_MAX || memchr(s, '/', len) != NULL || !arca_name_valid(s))
		return 0;
	return !(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.');
}

/* Absolute and normalised, as the policy requires of volume paths: no
 * empty, "." or ".." segment, no trailing '/', not "/" itself. */
static int vol_path_valid(const char *s, size_t n)
{
	size_t a, b, seg;

	if (n < 2 || n > CONFIG_MAX_PATH || s[0] != '/' || memchr(s, 0, n) != NULL)
		return 0;
	for (a = 1; a <= n; a = b + 1) {
		for (b = a; b < n && s[b] != '/'; b++)
			;
		seg = b - a;
		if (seg == 0 || (seg == 1 && s[a] == '.') || (seg == 2 && s[a] == '.' && s[a + 1] == '.'))
			return 0;
	}
	return 1;
}

/* A volume tag on the wire: exactly 64 lower-case hex digits (the one
 * spelling CAS keeps and compares). */
static int tag_parse(const char *s, size_t len, uint8_t out[VOL_TAG_LEN])
{
	size_t i, got = 0;

	if (len != 2 * VOL_TAG_LEN)
		return ARCA_EPARSE;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return ARCA_EPARSE;
	if (arca_hex_decode(s, len, out, VOL_TAG_LEN, &got) < 0 || got != VOL_TAG_LEN)
		return ARCA_EPARSE;
	return 0;
}

/* A tag field: 64 lower-case hex digits, or null where allow_null. */
static int get_tag(json_t *o, const char *what, const char *key, int allow_null, int *has, uint8_t out[VOL_TAG_LEN],
		   struct arca_errbuf *e)
{
	json_t *v = json_object_get(o, key);

	*has = 0;
	if (allow_null && json_is_null(v))
		return 0;
	if (!json_is_string(v) || tag_parse(json_string_value(v), json_string_length(v), out) < 0)
		return arca_errf(e, ARCA_EPARSE, "%s: \"%s\" must be 64 lower-case hex digits%s", what, key,
				 allow_null ? " or null" : "");
	*has = 1;
	return 0;
}

int arca_report_data(const uint8_t nonce[32], const uint8_t pub[32], const char *session, const char *service,
		     uint8_t out[64])
{
	struct arca_buf b;
	int rc;

	if (nonce == NULL || pub == NULL || session == NULL || service == NULL || out == NULL)
		return ARCA_EINVAL;
	if (!arca_name_valid(session) || !arca_name_valid(service))
		return ARCA_EINVAL;
	arca_buf_init(&b, 64 + 2 * ARCA_NAME_MAX + 1, 0);
	GUARD_GOTO(arca_buf_append(&b, nonce, ARCA_NONCE_LEN), done);
	GUARD_GOTO(arca_buf_append(&b, pub, 32), done);
	GUARD_GOTO(arca_buf_appends(&b, session), done);
	GUARD_GOTO(arca_buf_appends(&b, "/"), done);
	GUARD_GOTO(arca_buf_appends(&b, service), done);
	rc = arca_sha512(b.p, b.len, out);
done:
	arca_buf_free(&b);
	return rc;
}

/* ---- nonce ---- */

int arca_msg_nonce_encode(const struct arca_msg_nonce *m, struct arca_buf *out)
{
	char b64[ARCA_B64_LEN(ARCA_NONCE_LEN)];
	json_t *j;
	int rc;

	if (m == NULL || out == NULL || m->expires_in < 1 || m->expires_in > NONCE_MAX_EXPIRES)
		return ARCA_EINVAL;
	arca_b64_encode(m->nonce, ARCA_NONCE_LEN, b64);
	j = json_pack("{s:s,s:i}", "nonce", b64, "expires_in", m->expires_in);
	if (j == NULL)
		return ARCA_ENOMEM;
	rc = dump_append(j, ARCA_MAX_BODY, out);
	json_decref(j);
	return rc;
}

int arca_msg_nonce_decode(const uint8_t *p, size_t n, struct arca_msg_nonce *m, struct arca_errbuf *e)
{
	static const char *const keys[] = {"nonce", "expires_in"};
	const char *what = "nonce reply";
	json_t *j, *v;
	json_int_t x;
	int rc;

	if (m == NULL)
		return ARCA_EINVAL;
	memset(m, 0, sizeof(*m));
	GUARD(load_object(p, n, ARCA_MAX_BODY, what, &j, e));
	GUARD_GOTO(check_keys(j, what, keys, 2, e), out);
	GUARD_GOTO(get_b64_fixed(j, what, "nonce", m->nonce, ARCA_NONCE_LEN, e), out);
	v = json_object_get(j, "expires_in");
	ENSURE_GOTO(json_is_integer(v), arca_errf(e, ARCA_EPARSE, "%s: \"expires_in\" must be an integer", what), out);
	x = json_integer_value(v);
	ENSURE_GOTO(x >= 1 && x <= NONCE_MAX_EXPIRES,
		    arca_errf(e, ARCA_EPARSE, "%s: \"expires_in\" must be 1 to %d seconds", what, NONCE_MAX_EXPIRES),
		    out);
	m->expires_in = (int)x;
	rc = 0;
out:
	if (rc < 0)
		memset(m, 0, sizeof(*m));
	json_decref(j);
	return rc;
}

/* ---- attest ---- */

int arca_msg_attest_encode(const struct arca_msg_attest *m, struct arca_buf *out)
{
	char nonce[ARCA_B64_LEN(ARCA_NONCE_LEN)], pub[ARCA_B64_LEN(32)];
	char *ev = NULL;
	json_t *j = NULL;
	int rc;

	if (m == NULL || out == NULL || m->evidence == NULL || m->evidence_len == 0 ||
	    m->evidence_len > ARCA_MAX_EVIDENCE)
		return ARCA_EINVAL;
	if (memchr(m->session, 0, sizeof(m->session)) == NULL || memchr(m->service, 0, sizeof(m->service)) == NULL ||
	    memchr(m->platform, 0, sizeof(m->platform)) == NULL)
		return ARCA_EINVAL;
	if (!arca_name_valid(m->session) || !arca_name_valid(m->service) ||
	    !platform_valid(m->platform, strlen(m->platform)))
		return ARCA_EINVAL;
	ev = malloc(ARCA_B64_LEN(m->evidence_len));
	if (ev == NULL)
		return ARCA_ENOMEM;
	arca_b64_encode(m->nonce, ARCA_NONCE_LEN, nonce);
	arca_b64_encode(m->pubkey, 32, pub);
	arca_b64_encode(m->evidence, m->evidence_len, ev);
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "session", m->session, "service", m->service, "platform",
		      m->platform, "nonce", nonce, "pubkey", pub, "evidence", ev);
	ENSURE_GOTO(j != NULL, ARCA_ENOMEM, done);
	rc = dump_append(j, ARCA_MAX_BODY, out);
done:
	json_decref(j);
	free(ev);
	return rc;
}

int arca_msg_attest_decode(const uint8_t *p, size_t n, struct arca_msg_attest *m, struct arca_errbuf *e)
{
	static const char *const keys[] = {"session", "service", "platform", "nonce", "pubkey", "evidence"};
	const char *what = "attest request", *s;
	struct arca_buf ev;
	size_t len;
	json_t *j;
	int rc;

	if (m == NULL)
		return ARCA_EINVAL;
	memset(m, 0, sizeof(*m));
	GUARD(load_object(p, n, ARCA_MAX_BODY, what, &j, e));
	arca_buf_init(&ev, ARCA_MAX_EVIDENCE, 0);
	GUARD_GOTO(check_keys(j, what, keys, 6, e), out);
	GUARD_GOTO(name_field(j, what, "session", m->session, sizeof(m->session), e), out);
	GUARD_GOTO(name_field(j, what, "service", m->service, sizeof(m->service), e), out);
	GUARD_GOTO(get_string(j, what, "platform", &s, &len, e), out);
	ENSURE_GOTO(platform_valid(s, len),
		    arca_errf(e, ARCA_EPARSE, "%s: \"platform\" must be a platform word such as \"sim\"", what), out);
	memcpy(m->platform, s, len + 1);
	GUARD_GOTO(get_b64_fixed(j, what, "nonce", m->nonce, ARCA_NONCE_LEN, e), out);
	GUARD_GOTO(get_b64_fixed(j, what, "pubkey", m->pubkey, 32, e), out);
	GUARD_GOTO(get_string(j, what, "evidence", &s, &len, e), out);
	rc = b64_append(s, len, 1, ARCA_MAX_EVIDENCE, &ev);
	ENSURE_GOTO(rc >= 0,
		    arca_errf(e, rc == ARCA_ENOMEM ? ARCA_ENOMEM : ARCA_EPARSE,
			      "%s: \"evidence\" must be base64 of 1 to %u bytes", what, ARCA_MAX_EVIDENCE),
		    out);
	m->evidence = arca_buf_steal(&ev, &m->evidence_len);
	ENSURE_GOTO(m->evidence != NULL, ARCA_ENOMEM, out);
	rc = 0;
out:
	arca_buf_free(&ev);
	if (rc < 0)
		arca_msg_attest_free(m);
	json_decref(j);
	return rc;
}

void arca_msg_attest_free(struct arca_msg_attest *m)
{
	if (m == NULL)
		return;
	free(m->evidence);
	memset(m, 0, sizeof(*m));
}

/* ---- sealed configuration ---- */

int arca_msg_sealed_encode(const uint8_t *box, size_t n, struct arca_buf *out)
{
	struct arca_buf b64;
	json_t *j = NULL, *s;
	int rc;

	if (box == NULL || out == NULL || n < BOX_MIN || n > BOX_MAX)
		return ARCA_EINVAL;
	arca_buf_init(&b64, ARCA_B64_LEN(n), 0);
	GUARD_GOTO(arca_buf_reserve(&b64, ARCA_B64_LEN(n)), done);
	arca_b64_encode(box, n, (char *)b64.p);
	s = json_stringn_nocheck((const char *)b64.p, ARCA_B64_LEN(n) - 1);
	ENSURE_GOTO(s != NULL, ARCA_ENOMEM, done);
	j = json_object();
	ENSURE_GOTO(j != NULL && json_object_set_new(j, "config", s) == 0, ARCA_ENOMEM, done);
	rc = dump_append(j, SEALED_MAX_JSON, out);
done:
	json_decref(j);
	arca_buf_free(&b64);
	return rc;
}

int arca_msg_sealed_decode(const uint8_t *p, size_t n, struct arca_buf *box, struct arca_errbuf *e)
{
	static const char *const keys[] = {"config"};
	const char *what = "configuration reply", *s;
	size_t len;
	json_t *j;
	int rc;

	if (box == NULL)
		return ARCA_EINVAL;
	GUARD(load_object(p, n, SEALED_MAX_JSON, what, &j, e));
	GUARD_GOTO(check_keys(j, what, keys, 1, e), out);
	GUARD_GOTO(get_string(j, what, "config", &s, &len, e), out);
	rc = b64_append(s, len, BOX_MIN, BOX_MAX, box);
	if (rc == ARCA_ENOMEM || rc == ARCA_ETOOBIG)
		rc = arca_errf(e, rc, "%s: \"config\" does not fit in the buffer", what);
	else if (rc < 0)
		rc = arca_errf(e, ARCA_EPARSE, "%s: \"config\" must be base64 of a sealed box of %d to %zu bytes",
			       what, BOX_MIN, BOX_MAX);
out:
	json_decref(j);
	return rc;
}

/* ---- errors ---- */

int arca_msg_error_encode(const char *code, const char *detail, struct arca_buf *out)
{
	json_t *j;
	int rc;

	if (code == NULL || detail == NULL || out == NULL || !code_valid(code, strlen(code)))
		return ARCA_EINVAL;
	/* json_pack refuses a detail that is not UTF-8. */
	j = json_pack("{s:s,s:s}", "error", code, "detail", detail);
	if (j == NULL)
		return ARCA_EINVAL;
	rc = dump_append(j, ARCA_MAX_BODY, out);
	json_decref(j);
	return rc;
}

/* The detail is shown to a person: it keeps line breaks and tabs (policy
 * diagnostics are several lines) but no other control character, and is
 * cut at a character boundary when it does not fit. */
int arca_msg_error_decode(const uint8_t *p, size_t n, char code[64], char detail[256])
{
	static const char *const keys[] = {"error", "detail"};
	const char *s;
	size_t len, i, o;
	json_t *j;
	int rc;

	if (code == NULL || detail == NULL)
		return ARCA_EINVAL;
	code[0] = 0;
	detail[0] = 0;
	GUARD(load_object(p, n, ARCA_MAX_BODY, "error reply", &j, NULL));
	GUARD_GOTO(check_keys(j, "error reply", keys, 2, NULL), out);
	GUARD_GOTO(get_string(j, "error reply", "error", &s, &len, NULL), out);
	ENSURE_GOTO(code_valid(s, len), ARCA_EPARSE, out);
	memcpy(code, s, len + 1);
	GUARD_GOTO(get_string(j, "error reply", "detail", &s, &len, NULL), out);
	o = len < 255 ? len : 255;
	/* Back up over UTF-8 continuation bytes so no character is split. */
	if (o < len)
		while (o > 0 && ((unsigned char)s[o] & 0xc0) == 0x80)
			o--;
	for (i = 0; i < o; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
			detail[i] = '?';
		} else if (c == 0xc2 && i + 1 < o && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
			/* U+0080..U+009F: C1 controls, which some terminals obey. */
			detail[i] = '?';
			detail[++i] = '?';
		} else {
			detail[i] = (char)c;
		}
	}
	detail[o] = 0;
	rc = 0;
out:
	if (rc < 0) {
		code[0] = 0;
		detail[0] = 0;
	}
	json_decref(j);
	return rc;
}

/* ---- policy upload ---- */

int arca_msg_policy_encode(const char *yaml, size_t len, struct arca_buf *out)
{
	json_t *j, *s;
	int rc;

	if (yaml == NULL || out == NULL || len == 0 || len > ARCA_POLICY_MAX_BYTES || memchr(yaml, 0, len) != NULL)
		return ARCA_EINVAL;
	/* A policy may hold secret values given by the owner. */
	s = json_stringn(yaml, len);
	if (s == NULL)
		return ARCA_EINVAL;
	j = json_object();
	if (j == NULL) {
		json_wipe_decref(s);
		return ARCA_ENOMEM;
	}
	if (json_object_set_new(j, "policy", s) != 0) {
		json_decref(j);
		return ARCA_ENOMEM;
	}
	rc = dump_append(j, ARCA_MAX_BODY, out);
	json_wipe_decref(j);
	return rc;
}

int arca_msg_policy_decode(const uint8_t *p, size_t n, struct arca_buf *yaml, struct arca_errbuf *e)
{
	static const char *const keys[] = {"policy"};
	const char *what = "policy upload", *s;
	size_t len;
	json_t *j;
	int rc;

	if (yaml == NULL)
		return ARCA_EINVAL;
	GUARD(load_object(p, n, ARCA_MAX_BODY, what, &j, e));
	GUARD_GOTO(check_keys(j, what, keys, 1, e), out);
	GUARD_GOTO(get_string(j, what, "policy", &s, &len, e), out);
	ENSURE_GOTO(len > 0 && len <= ARCA_POLICY_MAX_BYTES,
		    arca_errf(e, ARCA_EPARSE, "%s: \"policy\" must be 1 to %u bytes of YAML", what,
			      ARCA_POLICY_MAX_BYTES),
		    out);
	rc = arca_buf_append(yaml, s, len);
	if (rc < 0)
		rc = arca_errf(e, rc, "%s: \"policy\" does not fit in the buffer", what);
out:
	json_wipe_decref(j);
	return rc;
}

/* ---- configuration ---- */

static int env_valid(const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);

	return eq != NULL && eq != s;
}

static int config_check(const struct arca_config *c)
{
	size_t i, len;

	if (c->argc == 0 || c->argc > CONFIG_MAX_ARGS || c->argv == NULL || c->nenv > CONFIG_MAX_ENV ||
	    (c->nenv > 0 && c->env == NULL) || c->nfiles > CONFIG_MAX_FILES || (c->nfiles > 0 && c->files == NULL))
		return ARCA_EINVAL;
	for (i = 0; i < c->argc; i++)
		if (c->argv[i] == NULL || strlen(c->argv[i]) > CONFIG_MAX_STRING)
			return ARCA_EINVAL;
	for (i = 0; i < c->nenv; i++) {
		if (c->env[i] == NULL)
			return ARCA_EINVAL;
		len = strlen(c->env[i]);
		if (len > CONFIG_MAX_STRING || !env_valid(c->env[i], len))
			return ARCA_EINVAL;
	}
	for (i = 0; i < c->nfiles; i++) {
		const struct arca_file_entry *f = &c->files[i];

		if (f->path == NULL || f->path[0] != '/' || strlen(f->path) > CONFIG_MAX_PATH ||
		    (f->data == NULL && f->len > 0) || f->len > ARCA_MAX_CONFIG)
			return ARCA_EINVAL;
	}
	if (c->nvolumes > CONFIG_MAX_VOLUMES || (c->nvolumes > 0 && c->volumes == NULL))
		return ARCA_EINVAL;
	for (i = 0; i < c->nvolumes; i++) {
		const struct arca_config_volume *v = &c->volumes[i];
		size_t nl = strnlen(v->name, sizeof v->name), pl = strnlen(v->path, sizeof v->path);

		if (nl == sizeof v->name || pl == sizeof v->path || !volume_name_valid(v->name, nl) ||
		    !vol_path_valid(v->path, pl) || (v->mode != 1 && v->mode != 2) || (v->has_tag != 0 && v->has_tag != 1) ||
		    (v->readonly != 0 && v->readonly != 1) || (v->readonly && !v->has_tag))
			return ARCA_EINVAL;
		for (len = 0; len < i; len++)
			if (strcmp(c->volumes[len].name, v->name) == 0 || strcmp(c->volumes[len].path, v->path) == 0)
				return ARCA_EINVAL;
	}
	return 0;
}

static int append_string(json_t *arr, const char *s)
{
	/* json_string refuses text that is not UTF-8: binary secrets must be
	 * rendered as hex or base64 before they reach argv or env. */
	json_t *v = json_string(s);

	if (v == NULL)
		return ARCA_EINVAL;
	if (json_array_append_new(arr, v) != 0)
		return ARCA_ENOMEM;
	return 0;
}

static int file_json(const struct arca_file_entry *f, json_t *files)
{
	struct arca_buf b64;
	json_t *o = NULL, *v;
	int rc;

	arca_buf_init(&b64, ARCA_B64_LEN(f->len), 1);
	GUARD_GOTO(arca_buf_reserve(&b64, ARCA_B64_LEN(f->len)), done);
	arca_b64_encode(f->data, f->len, (char *)b64.p);
	o = json_object();
	ENSURE_GOTO(o != NULL, ARCA_ENOMEM, done);
	v = json_string(f->path);
	ENSURE_GOTO(v != NULL, ARCA_EINVAL, done);
	ENSURE_GOTO(json_object_set_new(o, "path", v) == 0, ARCA_ENOMEM, done);
	v = json_stringn_nocheck((const char *)b64.p, ARCA_B64_LEN(f->len) - 1);
	ENSURE_GOTO(v != NULL, ARCA_ENOMEM, done);
	ENSURE_GOTO(json_object_set_new(o, "data", v) == 0, ARCA_ENOMEM, done);
	ENSURE_GOTO(json_array_append(files, o) == 0, ARCA_ENOMEM, done);
	rc = 0;
done:
	json_wipe_decref(o);
	arca_buf_free(&b64);
	return rc;
}

/* One volume of a configuration; the key and token are secret, so every
 * copy of their text is wiped with the tree. */
static int volume_json(const struct arca_config_volume *v, json_t *vols)
{
	char key[ARCA_B64_LEN(VOL_KEY_LEN)], token[ARCA_B64_LEN(32)], tag[2 * VOL_TAG_LEN + 1];
	json_t *o = NULL, *x;
	int rc;

	arca_b64_encode(v->key, VOL_KEY_LEN, key);
	arca_b64_encode(v->token, sizeof v->token, token);
	arca_hex_encode(v->tag, VOL_TAG_LEN, tag);
	o = json_object();
	ENSURE_GOTO(o != NULL, ARCA_ENOMEM, done);
	x = json_string(v->name);
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "name", x) == 0, ARCA_ENOMEM, done);
	x = json_string(v->path);
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "path", x) == 0, ARCA_EINVAL, done);
	x = json_string(v->mode == 2 ? "authenticated" : "encrypted");
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "mode", x) == 0, ARCA_ENOMEM, done);
	x = json_string(key);
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "key", x) == 0, ARCA_ENOMEM, done);
	x = v->has_tag ? json_string(tag) : json_null();
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "tag", x) == 0, ARCA_ENOMEM, done);
	x = json_boolean(v->readonly);
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "readonly", x) == 0, ARCA_ENOMEM, done);
	x = json_string(token);
	ENSURE_GOTO(x != NULL && json_object_set_new(o, "token", x) == 0, ARCA_ENOMEM, done);
	ENSURE_GOTO(json_array_append(vols, o) == 0, ARCA_ENOMEM, done);
	rc = 0;
done:
	json_wipe_decref(o);
	arca_wipe(key, sizeof key);
	arca_wipe(token, sizeof token);
	return rc;
}

int arca_config_encode(const struct arca_config *c, struct arca_buf *out)
{
	json_t *j = NULL, *argv, *env, *files, *vols;
	size_t i;
	int rc;

	if (c == NULL || out == NULL)
		return ARCA_EINVAL;
	GUARD(config_check(c));
	j = json_object();
	ENSURE_GOTO(j != NULL, ARCA_ENOMEM, done);
	/* json_object_set_new consumes the value even when it fails. */
	argv = json_array();
	ENSURE_GOTO(argv != NULL && json_object_set_new(j, "argv", argv) == 0, ARCA_ENOMEM, done);
	env = json_array();
	ENSURE_GOTO(env != NULL && json_object_set_new(j, "env", env) == 0, ARCA_ENOMEM, done);
	files = json_array();
	ENSURE_GOTO(files != NULL && json_object_set_new(j, "files", files) == 0, ARCA_ENOMEM, done);
	for (i = 0; i < c->argc; i++)
		GUARD_GOTO(append_string(argv, c->argv[i]), done);
	for (i = 0; i < c->nenv; i++)
		GUARD_GOTO(append_string(env, c->env[i]), done);
	for (i = 0; i < c->nfiles; i++)
		GUARD_GOTO(file_json(&c->files[i], files), done);
	if (c->nvolumes > 0) {
		/* Absent when there are none: a configuration without volumes
		 * keeps the shape it had before volumes existed. */
		vols = json_array();
		ENSURE_GOTO(vols != NULL && json_object_set_new(j, "volumes", vols) == 0, ARCA_ENOMEM, done);
		for (i = 0; i < c->nvolumes; i++)
			GUARD_GOTO(volume_json(&c->volumes[i], vols), done);
	}
	rc = dump_append(j, ARCA_MAX_CONFIG, out);
done:
	json_wipe_decref(j);
	return rc;
}

static char *dup_text(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = 0;
	}
	return d;
}

/* Reads an array of strings into a NULL-terminated vector (argv and env are
 * handed to execve-like code, which wants the terminator). */
static int string_vector(json_t *j, const char *key, size_t min, size_t max, int need_eq, char ***out, size_t *nout,
			 struct arca_errbuf *e)
{
	json_t *arr = json_object_get(j, key), *v;
	size_t i, n, len;
	const char *s;

	if (!json_is_array(arr))
		return arca_errf(e, ARCA_EPARSE, "config: \"%s\" must be an array of strings", key);
	n = json_array_size(arr);
	if (n < min || n > max)
		return arca_errf(e, ARCA_EPARSE, "config: \"%s\" must have %zu to %zu entries", key, min, max);
	*out = calloc(n + 1, sizeof(char *));
	if (*out == NULL)
		return ARCA_ENOMEM;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return arca_errf(e, ARCA_EPARSE, "config: \"%s\"[%zu] must be a string", key, i);
		s = json_string_value(v);
		len = json_string_length(v);
		if (memchr(s, 0, len) != NULL)
			return arca_errf(e, ARCA_EPARSE, "config: \"%s\"[%zu] contains a NUL character", key, i);
		if (len > CONFIG_MAX_STRING)
			return arca_errf(e, ARCA_EPARSE, "config: \"%s\"[%zu] is longer than %u bytes", key, i,
					 CONFIG_MAX_STRING);
		if (need_eq && !env_valid(s, len))
			return arca_errf(e, ARCA_EPARSE, "config: \"%s\"[%zu] must have the form NAME=VALUE", key, i);
		(*out)[i] = dup_text(s, len);
		if ((*out)[i] == NULL)
			return ARCA_ENOMEM;
		*nout = i + 1;
	}
	return 0;
}

static int config_files(json_t *j, struct arca_config *c, struct arca_errbuf *e)
{
	static const char *const keys[] = {"path", "data"};
	json_t *arr = json_object_get(j, "files"), *v;
	struct arca_buf data;
	char what[40];
	const char *s;
	size_t i, n, len;
	int rc;

	if (!json_is_array(arr))
		return arca_errf(e, ARCA_EPARSE, "config: \"files\" must be an array of objects");
	n = json_array_size(arr);
	if (n > CONFIG_MAX_FILES)
		return arca_errf(e, ARCA_EPARSE, "config: \"files\" has more than %d entries", CONFIG_MAX_FILES);
	c->files = calloc(n + 1, sizeof(*c->files));
	if (c->files == NULL)
		return ARCA_ENOMEM;
	json_array_foreach(arr, i, v) {
		struct arca_file_entry *f = &c->files[i];

		snprintf(what, sizeof(what), "config: \"files\"[%zu]", i);
		if (!json_is_object(v))
			return arca_errf(e, ARCA_EPARSE, "%s must be an object", what);
		GUARD(check_keys(v, what, keys, 2, e));
		GUARD(get_string(v, what, "path", &s, &len, e));
		if (len == 0 || s[0] != '/' || len > CONFIG_MAX_PATH)
			return arca_errf(e, ARCA_EPARSE, "%s: \"path\" must be an absolute path", what);
		f->path = dup_text(s, len);
		if (f->path == NULL)
			return ARCA_ENOMEM;
		c->nfiles = i + 1;
		GUARD(get_string(v, what, "data", &s, &len, e));
		arca_buf_init(&data, ARCA_MAX_CONFIG, 1);
		rc = b64_append(s, len, 0, ARCA_MAX_CONFIG, &data);
		if (rc < 0) {
			arca_buf_free(&data);
			return arca_errf(e, rc == ARCA_ENOMEM ? rc : ARCA_EPARSE, "%s: \"data\" must be base64", what);
		}
		if (data.len == 0) {
			/* Keep data non-NULL so that users need not special-case empty files. */
			arca_buf_free(&data);
			f->data = calloc(1, 1);
		} else {
			f->data = arca_buf_steal(&data, &f->len);
		}
		if (f->data == NULL)
			return ARCA_ENOMEM;
	}
	return 0;
}

static int config_volumes(json_t *j, struct arca_config *c, struct arca_errbuf *e)
{
	static const char *const keys[] = {"name", "path", "mode", "key", "tag", "readonly", "token"};
	json_t *arr = json_object_get(j, "volumes"), *v, *x;
	char what[48];
	const char *s;
	size_t i, k, n, len;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr))
		return arca_errf(e, ARCA_EPARSE, "config: \"volumes\" must be an array of objects");
	n = json_array_size(arr);
	if (n > CONFIG_MAX_VOLUMES)
		return arca_errf(e, ARCA_EPARSE, "config: \"volumes\" has more than %d entries", CONFIG_MAX_VOLUMES);
	/* calloc, and counted at once: a partly decoded array is wiped and
	 * freed whole by arca_config_free. */
	c->volumes = calloc(n + 1, sizeof(*c->volumes));
	if (c->volumes == NULL)
		return ARCA_ENOMEM;
	c->nvolumes = n;
	json_array_foreach(arr, i, v) {
		struct arca_config_volume *cv = &c->volumes[i];

		snprintf(what, sizeof(what), "config: \"volumes\"[%zu]", i);
		if (!json_is_object(v))
			return arca_errf(e, ARCA_EPARSE, "%s must be an object", what);
		GUARD(check_keys(v, what, keys, 7, e));
		GUARD(get_string(v, what, "name", &s, &len, e));
		if (len >= sizeof(cv->name) || !volume_name_valid(s, len))
			return arca_errf(e, ARCA_EPARSE,
					 "%s: \"name\" must be a volume name of 1 to 128 characters from [A-Za-z0-9_.~-]",
					 what);
		memcpy(cv->name, s, len + 1);
		GUARD(get_string(v, what, "path", &s, &len, e));
		if (len >= sizeof(cv->path) || !vol_path_valid(s, len))
			return arca_errf(e, ARCA_EPARSE,
					 "%s: \"path\" must be an absolute, normalised directory path other than /", what);
		memcpy(cv->path, s, len + 1);
		GUARD(get_string(v, what, "mode", &s, &len, e));
		if (len == 9 && memcmp(s, "encrypted", 9) == 0)
			cv->mode = 1;
		else if (len == 13 && memcmp(s, "authenticated", 13) == 0)
			cv->mode = 2;
		else
			return arca_errf(e, ARCA_EPARSE, "%s: \"mode\" must be \"encrypted\" or \"authenticated\"", what);
		GUARD(get_b64_fixed(v, what, "key", cv->key, VOL_KEY_LEN, e));
		GUARD(get_tag(v, what, "tag", 1, &cv->has_tag, cv->tag, e));
		x = json_object_get(v, "readonly");
		if (!json_is_boolean(x))
			return arca_errf(e, ARCA_EPARSE, "%s: \"readonly\" must be true or false", what);
		cv->readonly = json_is_true(x);
		if (cv->readonly && !cv->has_tag)
			return arca_errf(e, ARCA_EPARSE, "%s: a read-only (code) volume must have a tag", what);
		GUARD(get_b64_fixed(v, what, "token", cv->token, sizeof(cv->token), e));
		for (k = 0; k < i; k++) {
			if (strcmp(c->volumes[k].name, cv->name) == 0)
				return arca_errf(e, ARCA_EPARSE, "%s: volume name given twice", what);
			if (strcmp(c->volumes[k].path, cv->path) == 0)
				return arca_errf(e, ARCA_EPARSE, "%s: path given twice", what);
		}
	}
	return 0;
}

int arca_config_decode(const uint8_t *p, size_t n, struct arca_config **out, struct arca_errbuf *e)
{
	/* "volumes" last: check_keys takes the first three when it is absent. */
	static const char *const keys[] = {"argv", "env", "files", "volumes"};
	struct arca_config *c = NULL;
	json_t *j;
	int rc;

	if (out == NULL)
		return ARCA_EINVAL;
	*out = NULL;
	GUARD(load_object(p, n, ARCA_MAX_CONFIG, "config", &j, e));
	c = calloc(1, sizeof(*c));
	ENSURE_GOTO(c != NULL, ARCA_ENOMEM, done);
	/* "volumes" is optional: absent means none. */
	GUARD_GOTO(check_keys(j, "config", keys, json_object_get(j, "volumes") != NULL ? 4 : 3, e), done);
	GUARD_GOTO(string_vector(j, "argv", 1, CONFIG_MAX_ARGS, 0, &c->argv, &c->argc, e), done);
	GUARD_GOTO(string_vector(j, "env", 0, CONFIG_MAX_ENV, 1, &c->env, &c->nenv, e), done);
	GUARD_GOTO(config_files(j, c, e), done);
	GUARD_GOTO(config_volumes(j, c, e), done);
	*out = c;
	c = NULL;
	rc = 0;
done:
	arca_config_free(c);
	json_wipe_decref(j);
	return rc;
}

static void free_strings(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (v[i] != NULL) {
			arca_wipe(v[i], strlen(v[i]));
			free(v[i]);
		}
	}
	free(v);
}

void arca_config_free(struct arca_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free_strings(c->argv, c->argc);
	free_strings(c->env, c->nenv);
	if (c->files != NULL) {
		for (i = 0; i < c->nfiles; i++) {
			struct arca_file_entry *f = &c->files[i];

			if (f->path != NULL) {
				arca_wipe(f->path, strlen(f->path));
				free(f->path);
			}
			if (f->data != NULL) {
				arca_wipe(f->data, f->len);
				free(f->data);
			}
		}
		free(c->files);
	}
	if (c->volumes != NULL) {
		arca_wipe(c->volumes, c->nvolumes * sizeof(*c->volumes));
		free(c->volumes);
	}
	arca_wipe(c, sizeof(*c));
	free(c);
}

/* ---- volume tags ---- */

int arca_msg_voltag_encode(const struct arca_msg_voltag *m, struct arca_buf *out)
{
	char token[ARCA_B64_LEN(32)], prev[2 * VOL_TAG_LEN + 1], tag[2 * VOL_TAG_LEN + 1];
	json_t *j;
	int rc;

	if (m == NULL || out == NULL || (m->has_previous != 0 && m->has_previous != 1))
		return ARCA_EINVAL;
	arca_b64_encode(m->token, sizeof(m->token), token);
	arca_hex_encode(m->previous, VOL_TAG_LEN, prev);
	arca_hex_encode(m->tag, VOL_TAG_LEN, tag);
	/* "o" takes the reference, also when json_pack fails. */
	j = json_pack("{s:s,s:o,s:s}", "token", token, "previous", m->has_previous ? json_string(prev) : json_null(),
		      "tag", tag);
	arca_wipe(token, sizeof(token));
	if (j == NULL)
		return ARCA_ENOMEM;
	rc = dump_append(j, ARCA_MAX_BODY, out);
	json_wipe_decref(j);
	return rc;
}

int arca_msg_voltag_decode(const uint8_t *p, size_t n, struct arca_msg_voltag *m, struct arca_errbuf *e)
{
	static const char *const keys[] = {"token", "previous", "tag"};
	const char *what = "volume tag request";
	int has, rc;
	json_t *j;

	if (m == NULL)
		return ARCA_EINVAL;
	memset(m, 0, sizeof(*m));
	GUARD(load_object(p, n, ARCA_MAX_BODY, what, &j, e));
	GUARD_GOTO(check_keys(j, what, keys, 3, e), out);
	GUARD_GOTO(get_b64_fixed(j, what, "token", m->token, sizeof(m->token), e), out);
	GUARD_GOTO(get_tag(j, what, "previous", 1, &m->has_previous, m->previous, e), out);
	GUARD_GOTO(get_tag(j, what, "tag", 0, &has, m->tag, e), out);
	rc = 0;
out:
	if (rc < 0)
		arca_wipe(m, sizeof(*m));
	json_wipe_decref(j);
	return rc;
}
