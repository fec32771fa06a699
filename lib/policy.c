/* policy.c: parses and validates a session policy (design.md "Session
 * policy (YAML)") into a struct arca_policy, reporting every problem found
 * (up to the cap of struct arca_diags) with line, column and what to do.
 *
 * Two passes over the text. libyaml's event parser runs first because the
 * document API silently resolves what a policy must not contain: anchors and
 * aliases (an alias can even make a node contain itself, and aliases are how
 * "billion laughs" documents explode), explicit tags, and a second document.
 * Only text that passes that scan is loaded with yaml_parser_load, whose
 * nodes keep their start marks, and the tree is checked against the schema.
 *
 * Scalars. Where a string is expected any scalar is taken as the text it was
 * written as: `PORT: 8080` and `PORT: "8080"` are the same string "8080", and
 * no YAML 1.1 resolution is done (`yes` stays "yes", `010` stays "010"). A
 * null (`~`, `null`, `Null`, `NULL` or nothing, unquoted) is refused where a
 * value is expected; write "" for an empty string and quote the word null.
 * The one exception is the options of a platform, where `sim:` means the
 * same as `sim: {}`. Where a number is expected (size) only an unquoted
 * decimal integer is accepted: `size: "32"` is refused as a string, so that
 * a number is never guessed out of text.
 *
 * Decisions where design.md is silent:
 * - names of services, secrets and volumes are stricter than session names:
 *   no '/' (the pair "session/service" is how evidence and URLs name a
 *   service), and no name (session names included) may have an empty, "." or
 *   ".." segment between slashes, so a name is never a path trick;
 * - name is required; every list section is optional (absent = empty);
 * - a service needs command, measurement and platform; platform lists at
 *   least one platform;
 * - hardware constraints (platform: sev-snp, tdx, sgx) accept exactly the
 *   fields of include/arca/policy.h; hex values have their exact length in
 *   either case, numbers are unquoted decimals, debug is true or false
 *   (default false: debuggable guests and enclaves are refused);
 * - sev-snp requires measurement and tdx requires mrtd, and sgx requires
 *   mrenclave or mrsigner (with isvprodid and min_isvsvn): the in-guest
 *   measurement CAS checks is only as good as the arca-las that reports it,
 *   so the code that runs it must be pinned too; min_tcb may name any of its
 *   four components;
 * - tdx RTMRs can be written as the list of design.md, rtmr: [r0, r1, ...]
 *   (1 to 4 values, RTMR0 first; a list cannot skip one), or as the keys
 *   rtmr0..rtmr3 (any subset), never both; both spellings mean, and hash,
 *   the same;
 * - min_tcb_status names the worst status still accepted in Intel's order
 *   (UpToDate best, OutOfDateConfigurationNeeded worst); Revoked cannot be
 *   named;
 * - access, when present, lists at least one owner, each once;
 * - a secret needs name and kind; size and value exclude each other (size
 *   says how much to generate); a given ascii value is printable ASCII
 *   (0x20..0x7e), 1..4096 characters; a binary value is hex, 1..4096 bytes;
 *   common_name (1..64 characters) and dns (host names, '*.' allowed as the
 *   first label) are optional for x509;
 * - a volume's mode defaults to encrypted, the stronger protection; a
 *   volume with key (a binary secret of exactly 32 bytes) and tag (64
 *   lower-case hex digits, as arca fs seal prints it) is a code volume,
 *   read-only to programs; one of the two without the other is refused;
 * - environment names are [A-Za-z_][A-Za-z0-9_]*, at most 255 characters;
 * - file and volume paths are absolute, normalised (no empty, "." or ".."
 *   segment, no trailing '/') and at most 4095 bytes, so one file has one
 *   spelling; a service mounts a volume, and uses a path, at most once;
 * - placeholders are substituted in command, environment values and file
 *   contents only; "$$arca:" in a path or common_name is refused;
 * - at most 1024 secrets (each given value takes its own guarded mapping);
 *   a service mounts at most 256 volumes (what a configuration carries);
 * - nesting deeper than 16 levels is refused before loading. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/intel.h"
#include "arca/policy.h"

#define MAX_DEPTH 16
#define SECRET_SIZE_MAX 4096
#define SECRET_SIZE_DEFAULT 32
#define ENV_NAME_MAX 255
#define PATH_MAX_LEN 4095
#define CN_MAX 64
/* each given value lives in its own guarded secret mapping */
#define MAX_SECRETS 1024
/* what one configuration carries (lib/proto.c) */
#define MAX_SERVICE_VOLUMES 256

/* ---- diagnostics ---- */

void arca_diags_init(struct arca_diags *ds, const char *file)
{
	memset(ds, 0, sizeof *ds);
	snprintf(ds->file, sizeof ds->file, "%s", file ? file : "policy");
}

__attribute__((format(printf, 4, 0))) static void diags_vadd(struct arca_diags *ds, int line, int col,
							      const char *fmt, va_list ap)
{
	if (ds->n >= sizeof ds->d / sizeof ds->d[0]) {
		ds->dropped++;
		return;
	}
	struct arca_diag *d = &ds->d[ds->n++];
	d->line = line;
	d->col = col;
	if (vsnprintf(d->msg, sizeof d->msg, fmt, ap) < 0)
		d->msg[0] = '\0';
}

void arca_diags_add(struct arca_diags *ds, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diags_vadd(ds, line, col, fmt, ap);
	va_end(ap);
}

int arca_diags_format(const struct arca_diags *ds, struct arca_buf *out)
{
	for (size_t i = 0; i < ds->n; i++) {
		const struct arca_diag *d = &ds->d[i];
		if (d->line > 0)
			GUARD(arca_buf_appendf(out, "%s:%d:%d: %s\n", ds->file, d->line, d->col, d->msg));
		else
			GUARD(arca_buf_appendf(out, "%s: %s\n", ds->file, d->msg));
	}
	if (ds->dropped)
		GUARD(arca_buf_appendf(out, "%s: %zu more problem%s not shown; fix the ones above first\n", ds->file,
				       ds->dropped, ds->dropped == 1 ? "" : "s"));
	return 0;
}

/* Earlier lines first, whatever order the checks ran in. */
static void diags_sort(struct arca_diags *ds, size_t from)
{
	for (size_t i = from + 1; i < ds->n; i++) {
		struct arca_diag t = ds->d[i];
		size_t j = i;
		while (j > from && (ds->d[j - 1].line > t.line ||
				    (ds->d[j - 1].line == t.line && ds->d[j - 1].col > t.col))) {
			ds->d[j] = ds->d[j - 1];
			j--;
		}
		ds->d[j] = t;
	}
}

/* ---- names ---- */

static int name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '.' || ch == '~' || ch == '-' || ch == '/';
}

int arca_name_valid(const char *s)
{
	if (s == NULL)
		return 0;
	size_t n = strnlen(s, ARCA_NAME_MAX + 1);
	if (n == 0 || n > ARCA_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!name_char((unsigned char)s[i]))
			return 0;
	return 1;
}

/* NULL when s[0..n) is a good name; else what is wrong with it. */
static const char *name_problem(const char *s, size_t n, int allow_slash)
{
	if (n == 0)
		return "is empty";
	if (n > ARCA_NAME_MAX)
		return "is longer than 128 characters";
	for (size_t i = 0; i < n; i++) {
		if (!name_char((unsigned char)s[i]))
			return "contains a character other than A-Z a-z 0-9 _ . ~ - /";
		if (s[i] == '/' && !allow_slash)
			return "contains '/', which only a session name may contain";
	}
	for (size_t a = 0; a <= n;) {
		size_t b = a;
		while (b < n && s[b] != '/')
			b++;
		size_t seg = b - a;
		if (seg == 0 || (seg == 1 && s[a] == '.') || (seg == 2 && s[a] == '.' && s[a + 1] == '.'))
			return "has an empty, '.' or '..' segment between slashes";
		a = b + 1;
	}
	return NULL;
}

static const char *path_problem(const char *s, size_t n)
{
	if (n == 0 || s[0] != '/')
		return "is not absolute; write the full path starting with '/'";
	if (n > PATH_MAX_LEN)
		return "is longer than 4095 bytes";
	if (n == 1)
		return "is the root directory; name a file or directory below '/'";
	for (size_t a = 1; a <= n;) {
		size_t b = a;
		while (b < n && s[b] != '/')
			b++;
		size_t seg = b - a;
		if (seg == 0 || (seg == 1 && s[a] == '.') || (seg == 2 && s[a] == '.' && s[a + 1] == '.'))
			return "has an empty, '.' or '..' segment (or a trailing '/'); write it in its plain form";
		a = b + 1;
	}
	if (memmem(s, n, "$$arca:", 7))
		return "contains a placeholder; placeholders are only substituted in command, environment values "
		       "and file contents";
	return NULL;
}

static int env_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ENV_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		if (!alpha && !(i > 0 && ch >= '0' && ch <= '9'))
			return 0;
	}
	return 1;
}

static int hostname_ok(const char *s, size_t n)
{
	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > 253)
		return 0;
	for (size_t a = 0; a <= n;) {
		size_t b = a;
		while (b < n && s[b] != '.')
			b++;
		size_t seg = b - a;
		if (seg == 0 || seg > 63 || s[a] == '-' || s[b - 1] == '-')
			return 0;
		for (size_t i = a; i < b; i++) {
			unsigned char ch = (unsigned char)s[i];
			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			      ch == '-'))
				return 0;
		}
		a = b + 1;
	}
	return 1;
}

/* ---- UTF-8 and positions ---- */

/* Length of the strictly valid UTF-8 sequence at s (no overlong forms, no
 * surrogates, nothing above U+10FFFF), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* ---- the parsing context ---- */

struct named {
	const char *name;
	int line, col;
	size_t idx;
};

struct pctx {
	const unsigned char *text;
	size_t len;
	/* libyaml marks count characters, diagnostics need lines and columns,
	 * placeholders are found by byte offset: these tables convert between
	 * them in constant or logarithmic time (a walk from the line start
	 * would be quadratic on a long flow-style line). Line breaks are
	 * counted the way libyaml counts them. */
	size_t *ls;  /* byte offset where each line starts */
	size_t *lc;  /* character index where each line starts */
	size_t nls, lcap;
	size_t *cp;  /* byte offset of every CP_STEP-th character */
	size_t ncp, cpcap;
	yaml_document_t *doc;
	struct arca_diags *ds;
	size_t errors;
	int oom;
	struct arca_policy *p;
	struct named *sidx; /* secrets by name, for placeholder checks */
	size_t nsidx;
	struct named *vidx; /* volumes by name */
	size_t nvidx;
};

__attribute__((format(printf, 4, 5))) static void diag_lc(struct pctx *c, int line, int col, const char *fmt, ...)
{
	c->errors++;
	if (!c->ds)
		return;
	va_list ap;
	va_start(ap, fmt);
	diags_vadd(c->ds, line, col, fmt, ap);
	va_end(ap);
}

#define LC(m) (int)((m).line + 1), (int)((m).column + 1)
#define AT(c, node, ...) diag_lc((c), LC((node)->start_mark), __VA_ARGS__)

static void oom(struct pctx *c)
{
	if (!c->oom)
		diag_lc(c, 1, 1, "out of memory while reading the policy");
	c->oom = 1;
}

#define CP_STEP 64

static int push(struct pctx *c, size_t **v, size_t **v2, size_t *n, size_t *cap, size_t x, size_t x2)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		size_t *a = realloc(*v, ncap * sizeof *a);
		if (a)
			*v = a;
		size_t *b = v2 ? realloc(*v2, ncap * sizeof *b) : NULL;
		if (b)
			*v2 = b;
		if (!a || (v2 && !b)) {
			oom(c);
			return -1;
		}
		*cap = ncap;
	}
	(*v)[*n] = x;
	if (v2)
		(*v2)[*n] = x2;
	(*n)++;
	return 0;
}

/* Builds the position tables and checks the text is UTF-8 without NUL
 * bytes (libyaml reports encoding errors only as a byte offset, so they are
 * caught here, where a line and column can be given). */
static int prescan(struct pctx *c)
{
	const unsigned char *t = c->text;
	size_t n = c->len, i = 0, col = 0, ci = 0;
	if (n >= 3 && t[0] == 0xef && t[1] == 0xbb && t[2] == 0xbf)
		i = 3; /* libyaml skips a BOM without counting it */
	if (push(c, &c->ls, &c->lc, &c->nls, &c->lcap, i, 0) < 0)
		return -1;
	while (i < n) {
		size_t k = utf8_seq(t + i, n - i);
		if (k == 0) {
			diag_lc(c, (int)c->nls, (int)col + 1,
				"the policy is not valid UTF-8 here; save the file as UTF-8");
			return -1;
		}
		if (t[i] == 0) {
			diag_lc(c, (int)c->nls, (int)col + 1,
				"the policy contains a NUL byte; a policy is text, remove it");
			return -1;
		}
		if (ci % CP_STEP == 0 && push(c, &c->cp, NULL, &c->ncp, &c->cpcap, i, 0) < 0)
			return -1;
		int brk = t[i] == '\n' || t[i] == '\r' || (k == 2 && t[i] == 0xc2 && t[i + 1] == 0x85) ||
			  (k == 3 && t[i] == 0xe2 && t[i + 1] == 0x80 && (t[i + 2] == 0xa8 || t[i + 2] == 0xa9));
		if (t[i] == '\r' && i + 1 < n && t[i + 1] == '\n') {
			/* one line break, but two characters for libyaml */
			i++;
			ci++;
			if (ci % CP_STEP == 0 && push(c, &c->cp, NULL, &c->ncp, &c->cpcap, i, 0) < 0)
				return -1;
		}
		i += k;
		ci++;
		col++;
		if (brk) {
			if (push(c, &c->ls, &c->lc, &c->nls, &c->lcap, i, ci) < 0)
				return -1;
			col = 0;
		}
	}
	return 0;
}

static size_t step(const struct pctx *c, size_t o)
{
	size_t w = utf8_seq(c->text + o, c->len - o);
	return o + (w ? w : 1);
}

/* Byte offset of character index ci (counted from after a BOM). */
static size_t char_off(const struct pctx *c, size_t ci)
{
	if (c->ncp == 0)
		return c->len;
	size_t k = ci / CP_STEP;
	if (k >= c->ncp)
		k = c->ncp - 1;
	size_t o = c->cp[k];
	for (size_t left = ci - k * CP_STEP; left > 0 && o < c->len; left--)
		o = step(c, o);
	return o;
}

/* Character index of byte offset off (which starts a character). */
static size_t off_char(const struct pctx *c, size_t off)
{
	size_t lo = 0, hi = c->ncp;
	if (hi == 0)
		return 0;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->cp[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	size_t o = c->cp[lo], ci = lo * CP_STEP;
	while (o < off && o < c->len) {
		o = step(c, o);
		ci++;
	}
	return ci;
}

/* Byte offset of a libyaml mark, from its line and column (characters),
 * which do not depend on how a libyaml version counts index. */
static size_t mark_off(const struct pctx *c, const yaml_mark_t *m)
{
	if (m->line >= c->nls)
		return c->len;
	return char_off(c, c->lc[m->line] + m->column);
}

static void off_lc(const struct pctx *c, size_t off, int *line, int *col)
{
	size_t lo = 0, hi = c->nls;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->ls[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	*line = (int)lo + 1;
	*col = (int)(off_char(c, off) - c->lc[lo]) + 1;
}

/* ---- first pass: events ---- */

/* Anything the parser held may have been secret text of the policy. */
static void wipe_parser(yaml_parser_t *ps)
{
	if (ps->buffer.start && ps->buffer.end > ps->buffer.start)
		arca_wipe(ps->buffer.start, (size_t)(ps->buffer.end - ps->buffer.start));
	if (ps->raw_buffer.start && ps->raw_buffer.end > ps->raw_buffer.start)
		arca_wipe(ps->raw_buffer.start, (size_t)(ps->raw_buffer.end - ps->raw_buffer.start));
	yaml_parser_delete(ps);
}

static void syntax_error(struct pctx *c, const yaml_parser_t *ps)
{
	if (ps->error == YAML_MEMORY_ERROR) {
		oom(c);
		return;
	}
	int line, col;
	if (ps->error == YAML_READER_ERROR)
		off_lc(c, ps->problem_offset, &line, &col);
	else {
		line = (int)ps->problem_mark.line + 1;
		col = (int)ps->problem_mark.column + 1;
	}
	const char *problem = ps->problem ? ps->problem : "unknown problem";
	if (ps->context && ps->error != YAML_READER_ERROR)
		diag_lc(c, line, col,
			"YAML syntax error: %s (%s that starts at line %d, column %d); fix the indentation, "
			"quotes or brackets",
			problem, ps->context, (int)ps->context_mark.line + 1, (int)ps->context_mark.column + 1);
	else
		diag_lc(c, line, col, "YAML syntax error: %s; fix the indentation, quotes or brackets", problem);
}

static int scan_events(struct pctx *c)
{
	yaml_parser_t ps;
	if (!yaml_parser_initialize(&ps)) {
		oom(c);
		return -1;
	}
	yaml_parser_set_input_string(&ps, c->text, c->len);
	yaml_parser_set_encoding(&ps, YAML_UTF8_ENCODING);
	size_t before = c->errors;
	int docs = 0, depth = 0, done = 0;
	while (!done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&ps, &ev)) {
			syntax_error(c, &ps);
			break;
		}
		const yaml_char_t *anchor = NULL, *tag = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				diag_lc(c, LC(ev.start_mark),
					"a second YAML document starts here; a policy is one document, so remove "
					"everything from this '---' on");
				done = 1;
			} else if (ev.data.document_start.tag_directives.start !=
				   ev.data.document_start.tag_directives.end) {
				diag_lc(c, LC(ev.start_mark),
					"%%TAG directives are not allowed in a policy; remove them");
			}
			break;
		case YAML_ALIAS_EVENT:
			diag_lc(c, LC(ev.start_mark),
				"aliases (*name) are not allowed in a policy; write the value out in full");
			break;
		case YAML_SCALAR_EVENT:
			anchor = ev.data.scalar.anchor;
			tag = ev.data.scalar.tag;
			if (ev.data.scalar.value)
				arca_wipe(ev.data.scalar.value, ev.data.scalar.length);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (ev.type == YAML_SEQUENCE_START_EVENT) {
				anchor = ev.data.sequence_start.anchor;
				tag = ev.data.sequence_start.tag;
			} else {
				anchor = ev.data.mapping_start.anchor;
				tag = ev.data.mapping_start.tag;
			}
			if (++depth > MAX_DEPTH) {
				diag_lc(c, LC(ev.start_mark),
					"the policy nests deeper than %d levels here; a policy never needs that, "
					"flatten it",
					MAX_DEPTH);
				done = 1;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		if (anchor)
			diag_lc(c, LC(ev.start_mark),
				"anchors (&name) are not allowed in a policy; remove the anchor and write values out "
				"in full");
		if (tag)
			diag_lc(c, LC(ev.start_mark),
				"YAML tags (!...) are not allowed in a policy; remove the tag (quote the value if it "
				"must be a string)");
		yaml_event_delete(&ev);
	}
	wipe_parser(&ps);
	if (c->errors != before)
		return -1;
	if (docs == 0) {
		diag_lc(c, 1, 1, "the policy is empty; it must be a mapping with at least name:");
		return -1;
	}
	return 0;
}

/* ---- node helpers ---- */

static yaml_node_t *node(struct pctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static int is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	return l == 0 || (l == 1 && v[0] == '~') ||
	       (l == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

static const char *what_is(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		return is_null(n) ? "an empty value" : "a single value";
	default:
		return "nothing";
	}
}

static int is_map(const yaml_node_t *n) { return n->type == YAML_MAPPING_NODE; }
static int is_seq(const yaml_node_t *n) { return n->type == YAML_SEQUENCE_NODE; }
static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}
static size_t map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* A user string quoted for a message: short, printable ASCII, no quotes. */
struct shown {
	char s[96];
};
static const char *show(struct shown *b, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (o + 8 >= sizeof b->s || i >= 64) {
			memcpy(b->s + o, "...", 4);
			return b->s;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'')
			b->s[o++] = (char)ch;
		else
			o += (size_t)snprintf(b->s + o, sizeof b->s - o, "\\x%02x", ch);
	}
	b->s[o] = '\0';
	return b->s;
}

static const char *node_show(struct shown *b, const yaml_node_t *n)
{
	return show(b, (const char *)n->data.scalar.value, n->data.scalar.length);
}

/* The text of a scalar where a string is expected; NULL (and a diagnostic)
 * otherwise. what is a noun phrase such as "the name of a service". */
static const char *get_str(struct pctx *c, const yaml_node_t *n, const char *what, size_t *len)
{
	if (n->type != YAML_SCALAR_NODE) {
		AT(c, n, "%s must be a string, not %s", what, what_is(n));
		return NULL;
	}
	if (is_null(n)) {
		AT(c, n, "%s is empty; give a value (write \"\" for an empty string)", what);
		return NULL;
	}
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	if (memchr(v, 0, l)) {
		AT(c, n, "%s contains a NUL character (\\0), which arca cannot pass on; remove it", what);
		return NULL;
	}
	if (!utf8_valid((const unsigned char *)v, l)) {
		AT(c, n, "%s is not valid UTF-8; write it as UTF-8 text", what);
		return NULL;
	}
	if (len)
		*len = l;
	return v;
}

static char *dupn(struct pctx *c, const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d) {
		oom(c);
		return NULL;
	}
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* The known keys of a mapping with a fixed schema, matched once each. */
struct field {
	const char *key;
	yaml_node_t *k, *v;
};

static int get_fields(struct pctx *c, yaml_node_t *map, struct field *f, size_t nf, const char *what,
		      const char *keys)
{
	for (size_t i = 0; i < nf; i++)
		f[i].k = f[i].v = NULL;
	if (!is_map(map)) {
		AT(c, map, "%s must be a mapping with the keys %s, not %s", what, keys, what_is(map));
		return -1;
	}
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
		struct shown sh;
		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE || is_null(k)) {
			AT(c, k, "a key in %s is %s; keys are plain words such as %s", what, what_is(k), keys);
			continue;
		}
		size_t i;
		for (i = 0; i < nf; i++)
			if (strlen(f[i].key) == k->data.scalar.length && !strcmp(f[i].key, (const char *)k->data.scalar.value))
				break;
		if (i == nf) {
			AT(c, k, "unknown key '%s' in %s; the keys of %s are %s", node_show(&sh, k), what, what, keys);
			continue;
		}
		if (f[i].k) {
			AT(c, k, "duplicate key '%s' in %s (first at line %d, column %d); remove one", f[i].key, what,
			   LC(f[i].k->start_mark));
			continue;
		}
		f[i].k = k;
		f[i].v = v;
	}
	return 0;
}

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	if (r)
		return r;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

/* Sorts v by name and reports each name seen more than once. */
static void dup_check(struct pctx *c, struct named *v, size_t n, const char *what)
{
	if (n > 1)
		qsort(v, n, sizeof *v, named_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t first = i - 1;
		while (i < n && strcmp(v[first].name, v[i].name) == 0) {
			struct shown sh;
			diag_lc(c, v[i].line, v[i].col,
				"%s '%s' is declared twice (first at line %d, column %d); rename or remove one", what,
				show(&sh, v[i].name, strlen(v[i].name)), v[first].line, v[first].col);
			i++;
		}
	}
}

static const struct named *named_find(const struct named *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(v[mid].name, name);
		if (r == 0) {
			/* the first of equal names is the one that counts */
			while (mid > 0 && strcmp(v[mid - 1].name, name) == 0)
				mid--;
			return &v[mid];
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A list of strings. nodes (freed by the caller) gets the node of each
 * string kept, for the positions of later checks. */
static char **get_str_list(struct pctx *c, yaml_node_t *n, const char *what, const char *example, size_t *count,
			   const yaml_node_t ***nodes)
{
	*count = 0;
	*nodes = NULL;
	if (!is_seq(n)) {
		AT(c, n, "%s must be a list, e.g. %s, not %s", what, example, what_is(n));
		return NULL;
	}
	size_t cnt = seq_len(n);
	char **v = calloc(cnt ? cnt : 1, sizeof *v);
	*nodes = calloc(cnt ? cnt : 1, sizeof **nodes);
	if (!v || !*nodes) {
		free(v);
		free(*nodes);
		*nodes = NULL;
		oom(c);
		return NULL;
	}
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		size_t l;
		char item[96];
		snprintf(item, sizeof item, "item %zu of %s", i + 1, what);
		const char *s = it ? get_str(c, it, item, &l) : NULL;
		if (s && (v[*count] = dupn(c, s, l)) != NULL)
			(*nodes)[(*count)++] = it;
	}
	return v;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const yaml_node_t *seq_item(struct pctx *c, const yaml_node_t *n, size_t i)
{
	return node(c, n->data.sequence.items.start[i]);
}

/* ---- sections ---- */

static void parse_name(struct pctx *c, yaml_node_t *n)
{
	size_t l;
	const char *s = get_str(c, n, "the session name", &l);
	if (!s)
		return;
	const char *why = name_problem(s, l, 1);
	if (why) {
		AT(c, n, "the session name %s; use 1 to 128 of A-Z a-z 0-9 _ . ~ - / (no empty, '.' or '..' "
			 "segments)",
		   why);
		return;
	}
	c->p->name = dupn(c, s, l);
}

static void parse_predecessor(struct pctx *c, yaml_node_t *n)
{
	size_t l, got = 0;
	const char *s = get_str(c, n, "predecessor", &l);
	if (!s)
		return;
	if (l != 64 || arca_hex_decode(s, l, c->p->predecessor, sizeof c->p->predecessor, &got) < 0 || got != 32) {
		AT(c, n, "predecessor must be the 64 hex digits of the current session's hash (as printed when "
			 "it was created or last updated)");
		return;
	}
	c->p->has_predecessor = 1;
}

static void parse_access(struct pctx *c, yaml_node_t *n)
{
	struct field f[] = {{"owners", NULL, NULL}};
	if (get_fields(c, n, f, 1, "access", "owners") < 0)
		return;
	c->p->has_access = 1;
	if (!f[0].v) {
		AT(c, n, "access has no owners; list at least one fingerprint (arca identity show), e.g. "
			 "owners: [SHA256:...]");
		return;
	}
	const yaml_node_t *lst = f[0].v, **nodes;
	c->p->owners = get_str_list(c, f[0].v, "owners", "owners: [SHA256:...]", &c->p->nowners, &nodes);
	if (!c->p->owners)
		return;
	struct named *nv = calloc(c->p->nowners ? c->p->nowners : 1, sizeof *nv);
	if (seq_len(lst) == 0)
		AT(c, lst, "owners is empty; list at least one fingerprint (arca identity show), or remove access "
			   "to make the creator the owner");
	if (!nv)
		oom(c);
	size_t k = 0;
	for (; nv && k < c->p->nowners; k++) {
		if (!arca_fpr_valid(c->p->owners[k])) {
			struct shown sh;
			AT(c, nodes[k], "owner '%s' is not a fingerprint; write SHA256: followed by 43 base64 "
					"characters, as printed by arca identity show",
			   node_show(&sh, nodes[k]));
		}
		nv[k] = (struct named){c->p->owners[k], LC(nodes[k]->start_mark), k};
	}
	dup_check(c, nv, k, "owner");
	free(nv);
	free(nodes);
}

static const char *kind_names[] = {NULL, "ascii", "binary", "private-key", "x509"};

static void free_secret(struct arca_secret_def *s)
{
	free(s->name);
	if (s->value)
		arca_secret_free(s->value, s->value_len + 1);
	free(s->common_name);
	free_strv(s->dns, s->ndns);
	memset(s, 0, sizeof *s);
}


static void parse_secret_body(struct pctx *c, yaml_node_t *n, struct arca_secret_def *s, struct field *f,
			      const char *nm)
{
	enum { NAME, KIND, SIZE, VALUE, CN, DNS };
	size_t l;
	const char *v;
	struct shown sh;

	if (!f[KIND].v) {
		AT(c, n, "secret '%s' has no kind; add kind: ascii, binary, private-key or x509", nm);
	} else if ((v = get_str(c, f[KIND].v, "kind", &l))) {
		for (int k = ARCA_SECRET_ASCII; k <= ARCA_SECRET_X509; k++)
			if (strlen(kind_names[k]) == l && !memcmp(kind_names[k], v, l))
				s->kind = (enum arca_secret_kind)k;
		if (!s->kind)
			AT(c, f[KIND].v, "secret '%s' has unknown kind '%s'; use ascii, binary, private-key or x509",
			   nm, show(&sh, v, l));
	}
	int sized = s->kind == ARCA_SECRET_ASCII || s->kind == ARCA_SECRET_BINARY;

	if (f[SIZE].v && s->kind && !sized)
		AT(c, f[SIZE].k, "size applies only to ascii and binary secrets; remove it from secret '%s'", nm);
	else if (f[SIZE].v && f[VALUE].v)
		AT(c, f[SIZE].k, "secret '%s' has both size and value; size says how much to generate, so "
				 "remove it when you give the value",
		   nm);
	else if (f[SIZE].v) {
		const yaml_node_t *sz = f[SIZE].v;
		int scalar = sz->type == YAML_SCALAR_NODE;
		const char *t = scalar ? (const char *)sz->data.scalar.value : "";
		size_t tl = scalar ? sz->data.scalar.length : 0, val = 0;
		/* at most 4 digits and no leading zero: no octal guess, no overflow */
		int ok = scalar && tl > 0 && tl <= 4 && t[0] != '0';
		for (size_t i = 0; ok && i < tl; i++) {
			if (t[i] < '0' || t[i] > '9')
				ok = 0;
			else
				val = val * 10 + (size_t)(t[i] - '0');
		}
		if (scalar && sz->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			AT(c, sz, "size of secret '%s' is a quoted string; write the number without quotes, e.g. "
				  "size: 32",
			   nm);
		else if (!ok || val < 1 || val > SECRET_SIZE_MAX)
			AT(c, sz, "size of secret '%s' must be a whole number from 1 to %d (%s)", nm, SECRET_SIZE_MAX,
			   s->kind == ARCA_SECRET_BINARY ? "bytes" : "characters");
		else
			s->size = val;
	}

	if (f[VALUE].v && s->kind && !sized) {
		AT(c, f[VALUE].k, "secrets of kind %s are always generated by CAS; remove value from secret '%s'",
		   kind_names[s->kind], nm);
	} else if (f[VALUE].v && s->kind) {
		const yaml_node_t *vn = f[VALUE].v;
		/* Never quote the value itself in a message: it is a secret. */
		if ((v = get_str(c, vn, "the value of a secret", &l))) {
			if (s->kind == ARCA_SECRET_ASCII) {
				size_t i = 0;
				while (i < l && v[i] >= 0x20 && v[i] < 0x7f)
					i++;
				if (l == 0 || l > SECRET_SIZE_MAX || i != l)
					AT(c, vn, "the value of ascii secret '%s' must be 1 to %d printable ASCII "
						  "characters; for other bytes use kind: binary with a hex value",
					   nm, SECRET_SIZE_MAX);
				else if ((s->value = arca_secret_alloc(l + 1))) {
					memcpy(s->value, v, l);
					s->value[l] = 0;
					s->value_len = s->size = l;
				} else
					oom(c);
			} else {
				size_t got = 0;
				uint8_t *b = l % 2 == 0 && l > 0 && l / 2 <= SECRET_SIZE_MAX ? arca_secret_alloc(l / 2 + 1) : NULL;
				if (b && arca_hex_decode(v, l, b, l / 2, &got) == 0 && got == l / 2) {
					b[got] = 0;
					s->value = b;
					s->value_len = s->size = got;
				} else {
					if (b)
						arca_secret_free(b, l / 2 + 1);
					AT(c, vn, "the value of binary secret '%s' must be hex digits (two per byte, 1 "
						  "to %d bytes), e.g. value: \"00ff...\"",
					   nm, SECRET_SIZE_MAX);
				}
			}
		}
	}
	if (sized && !s->size)
		s->size = SECRET_SIZE_DEFAULT;

	if ((f[CN].v || f[DNS].v) && s->kind && s->kind != ARCA_SECRET_X509) {
		const yaml_node_t *k = f[CN].v ? f[CN].k : f[DNS].k;
		AT(c, k, "%s applies only to x509 secrets; remove it from secret '%s'",
		   f[CN].v ? "common_name" : "dns", nm);
		return;
	}
	if (f[CN].v && (v = get_str(c, f[CN].v, "common_name", &l))) {
		size_t i = 0;
		while (i < l && (unsigned char)v[i] >= 0x20 && v[i] != 0x7f)
			i++;
		if (l == 0 || l > CN_MAX || i != l || memmem(v, l, "$$arca:", 7))
			AT(c, f[CN].v, "common_name of secret '%s' must be 1 to %d characters of text without control "
				       "characters or placeholders",
			   nm, CN_MAX);
		else
			s->common_name = dupn(c, v, l);
	}
	if (f[DNS].v) {
		const yaml_node_t **nodes;
		s->dns = get_str_list(c, f[DNS].v, "dns", "dns: [api.example]", &s->ndns, &nodes);
		if (!s->dns)
			return;
		struct named *nv = calloc(s->ndns ? s->ndns : 1, sizeof *nv);
		if (!nv) {
			free(nodes);
			oom(c);
			return;
		}
		size_t k = 0;
		for (; k < s->ndns; k++) {
			if (!hostname_ok(s->dns[k], strlen(s->dns[k])))
				AT(c, nodes[k], "'%s' in dns of secret '%s' is not a host name; use labels of A-Z a-z "
						"0-9 - separated by dots (optionally starting with *.)",
				   show(&sh, s->dns[k], strlen(s->dns[k])), nm);
			nv[k] = (struct named){s->dns[k], LC(nodes[k]->start_mark), k};
		}
		dup_check(c, nv, k, "dns name");
		free(nv);
		free(nodes);
	}
}

static void parse_secret(struct pctx *c, yaml_node_t *n)
{
	static const char keys[] = "name, kind, size, value, common_name, dns";
	struct field f[] = {{"name", 0, 0},  {"kind", 0, 0},	    {"size", 0, 0},
			    {"value", 0, 0}, {"common_name", 0, 0}, {"dns", 0, 0}};
	enum { NAME };
	if (get_fields(c, n, f, 6, "a secret", keys) < 0)
		return;

	struct arca_secret_def *s = &c->p->secrets[c->p->nsecrets];
	s->line = (int)n->start_mark.line + 1;
	s->col = (int)n->start_mark.column + 1;
	size_t l;
	const char *v = NULL;
	struct shown sh;

	const char *why = NULL;
	if (!f[NAME].v)
		AT(c, n, "this secret has no name; add name: (A-Z a-z 0-9 _ . ~ -)");
	else if ((v = get_str(c, f[NAME].v, "the name of a secret", &l)) && (why = name_problem(v, l, 0)))
		AT(c, f[NAME].v, "the secret name '%s' %s; use 1 to 128 of A-Z a-z 0-9 _ . ~ -", show(&sh, v, l), why);
	else if (v)
		s->name = dupn(c, v, l);
	/* A secret with a good name counts as declared even with other errors,
	 * so that its placeholders do not cause a second, misleading
	 * diagnostic. One without is still checked, then dropped. */
	int declared = s->name != NULL;
	const char *nm = declared ? s->name : "(unnamed)";
	parse_secret_body(c, n, s, f, nm);
	if (declared)
		c->p->nsecrets++;
	else
		free_secret(s);
}

static void parse_secrets(struct pctx *c, yaml_node_t *n)
{
	if (!is_seq(n)) {
		AT(c, n, "secrets must be a list, e.g. secrets: [{name: db_password, kind: ascii}], not %s",
		   what_is(n));
		return;
	}
	size_t cnt = seq_len(n);
	if (cnt > MAX_SECRETS) {
		AT(c, n, "the policy declares %zu secrets, more than the limit of %d; split it into several sessions",
		   cnt, MAX_SECRETS);
		return;
	}
	c->p->secrets = calloc(cnt ? cnt : 1, sizeof *c->p->secrets);
	c->sidx = calloc(cnt ? cnt : 1, sizeof *c->sidx);
	if (!c->p->secrets || !c->sidx) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < cnt && !c->oom; i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		if (it)
			parse_secret(c, it);
	}
	for (size_t i = 0; i < c->p->nsecrets; i++) {
		const struct arca_secret_def *s = &c->p->secrets[i];
		c->sidx[i] = (struct named){s->name, s->line, s->col, i};
	}
	c->nsidx = c->p->nsecrets;
	dup_check(c, c->sidx, c->nsidx, "secret");
}

/* A code volume's key: a declared binary secret of exactly the volume key's
 * size (a given value of 32 bytes, or size: 32 to have CAS generate it). */
static void parse_volume_key(struct pctx *c, struct arca_volume_def *vd, const yaml_node_t *kn)
{
	struct shown sh;
	size_t l;
	const char *v = get_str(c, kn, "the key of a volume", &l);
	if (!v)
		return;
	const char *why = name_problem(v, l, 0);
	if (why) {
		AT(c, kn, "key of volume '%s' must name a secret; '%s' %s", vd->name, show(&sh, v, l), why);
		return;
	}
	char *nm = dupn(c, v, l);
	if (!nm)
		return;
	const struct named *nd = named_find(c->sidx, c->nsidx, nm);
	const struct arca_secret_def *sd = nd ? &c->p->secrets[nd->idx] : NULL;
	if (!sd)
		AT(c, kn, "key of volume '%s' names secret '%s', which is not declared; add it under secrets: as "
			  "{name: %s, kind: binary, value: \"<64 hex>\"} (the key arca fs seal used) or fix the name",
		   vd->name, show(&sh, v, l), show(&sh, v, l));
	else if (sd->kind && sd->kind != ARCA_SECRET_BINARY)
		AT(c, kn, "key of volume '%s' names secret '%s' of kind %s; a volume key must be a secret of kind "
			  "binary with 32 bytes",
		   vd->name, sd->name, kind_names[sd->kind]);
	else if (sd->kind && sd->size != ARCA_VOLUME_KEY_BYTES)
		AT(c, kn, "key of volume '%s' names secret '%s' of %zu bytes; a volume key is exactly %d bytes "
			  "(value: 64 hex digits, or size: %d)",
		   vd->name, sd->name, sd->size, ARCA_VOLUME_KEY_BYTES, ARCA_VOLUME_KEY_BYTES);
	vd->key = nm;
}

/* A code volume's pinned tag: the 64 lower-case hex digits arca fs seal
 * prints (the form CAS keeps and compares). */
static void parse_volume_tag(struct pctx *c, struct arca_volume_def *vd, const yaml_node_t *tn)
{
	size_t l, got = 0, i = 0;
	const char *v = get_str(c, tn, "the tag of a volume", &l);
	if (!v)
		return;
	while (i < l && ((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
		i++;
	if (l != 64 || i != l || arca_hex_decode(v, l, vd->tag, sizeof vd->tag, &got) < 0 || got != 32) {
		AT(c, tn, "tag of volume '%s' must be the 64 lower-case hex digits arca fs seal printed, e.g. "
			  "tag: \"9f86...\"",
		   vd->name);
		return;
	}
	vd->has_tag = 1;
}

static void parse_volumes(struct pctx *c, yaml_node_t *n)
{
	static const char keys[] = "name, mode, key, tag";
	enum { NAME, MODE, KEY, TAG };
	if (!is_seq(n)) {
		AT(c, n, "volumes must be a list, e.g. volumes: [{name: data, mode: encrypted}], not %s", what_is(n));
		return;
	}
	size_t cnt = seq_len(n);
	struct arca_policy *p = c->p;
	p->volumes = calloc(cnt ? cnt : 1, sizeof *p->volumes);
	c->vidx = calloc(cnt ? cnt : 1, sizeof *c->vidx);
	if (!p->volumes || !c->vidx) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < cnt && !c->oom; i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		struct field f[] = {{"name", 0, 0}, {"mode", 0, 0}, {"key", 0, 0}, {"tag", 0, 0}};
		struct shown sh;
		size_t l;
		const char *v;
		if (!it || get_fields(c, it, f, 4, "a volume", keys) < 0)
			continue;
		if (!f[NAME].v) {
			AT(c, it, "this volume has no name; add name: (A-Z a-z 0-9 _ . ~ -)");
			continue;
		}
		if (!(v = get_str(c, f[NAME].v, "the name of a volume", &l)))
			continue;
		const char *why = name_problem(v, l, 0);
		if (why) {
			AT(c, f[NAME].v, "the volume name '%s' %s; use 1 to 128 of A-Z a-z 0-9 _ . ~ -", show(&sh, v, l),
			   why);
			continue;
		}
		struct arca_volume_def *vd = &p->volumes[p->nvolumes];
		if (!(vd->name = dupn(c, v, l)))
			continue;
		vd->line = (int)it->start_mark.line + 1;
		vd->col = (int)it->start_mark.column + 1;
		p->nvolumes++;
		if (f[MODE].v && (v = get_str(c, f[MODE].v, "mode", &l))) {
			if (l == 13 && !memcmp(v, "authenticated", 13))
				vd->authenticated = 1;
			else if (!(l == 9 && !memcmp(v, "encrypted", 9)))
				AT(c, f[MODE].v, "volume '%s' has unknown mode '%s'; use encrypted or authenticated",
				   vd->name, show(&sh, v, l));
		}
		/* key and tag together make a code volume (sealed by its owner);
		 * one without the other is a mistake, not a data volume. */
		if (f[KEY].v && !f[TAG].v)
			AT(c, f[KEY].k, "volume '%s' has a key but no tag; a volume with a key is a code volume sealed "
					"with arca fs seal: add tag: \"<64 hex>\" (the tag arca fs seal printed), or "
					"remove key to make it a data volume whose key CAS generates",
			   vd->name);
		else if (f[TAG].v && !f[KEY].v)
			AT(c, f[TAG].k, "volume '%s' has a tag but no key; a code volume needs both: add key: naming "
					"the binary secret (32 bytes) it was sealed with, or remove tag to make it a "
					"data volume",
			   vd->name);
		if (f[KEY].v)
			parse_volume_key(c, vd, f[KEY].v);
		if (f[TAG].v)
			parse_volume_tag(c, vd, f[TAG].v);
	}
	for (size_t i = 0; i < p->nvolumes; i++)
		c->vidx[i] = (struct named){p->volumes[i].name, p->volumes[i].line, p->volumes[i].col, i};
	c->nvidx = p->nvolumes;
	dup_check(c, c->vidx, c->nvidx, "volume");
}

static void parse_tolerate(struct pctx *c, yaml_node_t *n)
{
	/* no-ptrace-protection: accept sim evidence from a host where other
	 * processes of the same user could reach into the program as it
	 * starts (no Yama, or ptrace_scope 0); CAS checks it (attest.c). */
	static const char *const known[] = {"no-secret-memory", "no-ptrace-protection"};
	struct arca_policy *p = c->p;
	const yaml_node_t **nodes;
	p->tolerate = get_str_list(c, n, "tolerate", "tolerate: [no-secret-memory]", &p->ntolerate, &nodes);
	if (!p->tolerate)
		return;
	struct named *nv = calloc(p->ntolerate ? p->ntolerate : 1, sizeof *nv);
	if (!nv) {
		free(nodes);
		oom(c);
		return;
	}
	size_t k = 0;
	for (; k < p->ntolerate; k++) {
		int ok = 0;
		for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
			ok |= strcmp(p->tolerate[k], known[j]) == 0;
		if (!ok) {
			struct shown sh;
			AT(c, nodes[k], "tolerate lists '%s', which arca does not know; the words known are "
					"no-secret-memory and no-ptrace-protection",
			   node_show(&sh, nodes[k]));
		}
		nv[k] = (struct named){p->tolerate[k], LC(nodes[k]->start_mark), k};
	}
	dup_check(c, nv, k, "tolerated word");
	free(nv);
	free(nodes);
}

/* ---- services ---- */

struct ph_check {
	struct pctx *c;
	int text_ctx; /* environment or command: no raw binary */
	char msg[256];
};

static int ph_lookup(void *ctx, const char *name, const char *format, struct arca_buf *out)
{
	struct ph_check *ph = ctx;
	const struct named *nd = named_find(ph->c->sidx, ph->c->nsidx, name);
	if (!nd) {
		snprintf(ph->msg, sizeof ph->msg,
			 "placeholder names secret '%s', which is not declared; add it under secrets: or fix the "
			 "name",
			 name);
		return ARCA_ENOTFOUND;
	}
	enum arca_secret_kind kind = ph->c->p->secrets[nd->idx].kind;
	if (!kind) /* already reported with the secret */
		return 0;
	if (!arca_format_fits(kind, format)) {
		const char *fits = kind == ARCA_SECRET_X509	     ? ":pem, :key or :chain"
				   : kind == ARCA_SECRET_PRIVATE_KEY ? ":key"
								     : ":hex or :base64";
		snprintf(ph->msg, sizeof ph->msg,
			 "format ':%s' does not fit %s secret '%s'; use %s, or no format for the default", format,
			 kind_names[kind], name, fits);
		return ARCA_EINVAL;
	}
	if (ph->text_ctx && kind == ARCA_SECRET_BINARY && !format) {
		snprintf(ph->msg, sizeof ph->msg,
			 "binary secret '%s' cannot be used raw in environment or command (its bytes could contain "
			 "NUL); write $$arca:%s:hex$$ or $$arca:%s:base64$$",
			 name, name, name);
		return ARCA_EINVAL;
	}
	return 0;
}

static size_t count_prefix(const char *s, size_t n)
{
	size_t k = 0;
	const char *q;
	while (n >= 7 && (q = memmem(s, n, "$$arca:", 7))) {
		k++;
		n -= (size_t)(q - s) + 7;
		s = q + 7;
	}
	return k;
}

/* Checks every placeholder of the string value of n. Positions point at the
 * placeholder itself when the source text shows it literally (the common
 * case), else at the start of the value. */
static void check_placeholders(struct pctx *c, const yaml_node_t *n, const char *s, size_t len, int text_ctx)
{
	if (!memmem(s, len, "$$arca:", 7))
		return;
	size_t r0 = mark_off(c, &n->start_mark), r1 = mark_off(c, &n->end_mark);
	const char *raw = (const char *)c->text + r0;
	size_t rawlen = r1 > r0 ? r1 - r0 : 0;
	int mapped = count_prefix(raw, rawlen) == count_prefix(s, len);
	size_t pos = 0, rawpos = 0;
	while (pos < len) {
		const char *hit = memmem(s + pos, len - pos, "$$arca:", 7);
		if (!hit)
			break;
		size_t i = (size_t)(hit - s);
		const char *rhit = mapped ? memmem(raw + rawpos, rawlen - rawpos, "$$arca:", 7) : NULL;
		/* the end of a well-formed placeholder is the first "$$" after
		 * the prefix: names and formats contain no '$' */
		const char *end = i + 7 < len ? memmem(s + i + 7, len - i - 7, "$$", 2) : NULL;
		size_t seg = end ? (size_t)(end - s) + 2 - i : len - i;

		struct ph_check ph = {c, text_ctx, ""};
		struct arca_buf out;
		struct arca_errbuf e;
		arca_buf_init(&out, 1024, 0);
		e.msg[0] = '\0';
		int rc = arca_subst(s + i, seg, ph_lookup, &ph, &out, &e);
		arca_buf_free(&out);
		if (rc == ARCA_ENOMEM) {
			oom(c);
		} else if (rc < 0) {
			int line = (int)n->start_mark.line + 1, col = (int)n->start_mark.column + 1;
			if (rhit)
				off_lc(c, (size_t)(rhit - (const char *)c->text), &line, &col);
			diag_lc(c, line, col, "%s", ph.msg[0] ? ph.msg : e.msg);
		}
		/* a malformed segment may swallow more than one prefix: move the
		 * raw cursor past as many as the value's cursor moves */
		size_t skipped = count_prefix(s + i, seg);
		for (size_t k = 0; mapped && k < skipped; k++) {
			const char *q = memmem(raw + rawpos, rawlen - rawpos, "$$arca:", 7);
			if (!q)
				mapped = 0;
			else
				rawpos = (size_t)(q - raw) + 7;
		}
		pos = i + seg;
	}
}

/* ---- platform constraints ---- */

/* Where a constraint's field is, for messages: "host_data of the sev-snp
 * constraint of service 'api'". */
struct cwhere {
	const char *plat;
	const char *svc;
};

/* Exactly 2*nbytes hex digits, either case. 1 when *out was filled. */
static int get_hex_field(struct pctx *c, const yaml_node_t *n, const struct cwhere *w, const char *key,
			 size_t nbytes, uint8_t *out)
{
	char what[96];
	size_t l, got = 0;
	snprintf(what, sizeof what, "%s of the %s constraint", key, w->plat);
	const char *s = get_str(c, n, what, &l);
	if (!s)
		return 0;
	if (l != 2 * nbytes || arca_hex_decode(s, l, out, nbytes, &got) < 0 || got != nbytes) {
		AT(c, n, "%s of the %s constraint of service '%s' must be %zu hex digits (%zu bytes), as the hardware "
			 "reports it",
		   key, w->plat, w->svc, 2 * nbytes, nbytes);
		return 0;
	}
	return 1;
}

/* An unquoted decimal integer 0..max without leading zeros (no octal
 * guess); -1 and a diagnostic otherwise. */
static long get_uint_field(struct pctx *c, const yaml_node_t *n, const struct cwhere *w, const char *key, long max)
{
	int scalar = n->type == YAML_SCALAR_NODE;
	const char *t = scalar ? (const char *)n->data.scalar.value : "";
	size_t tl = scalar ? n->data.scalar.length : 0;
	long val = 0;
	int ok = scalar && tl > 0 && tl <= 5 && (t[0] != '0' || tl == 1);
	for (size_t i = 0; ok && i < tl; i++) {
		if (t[i] < '0' || t[i] > '9')
			ok = 0;
		else
			val = val * 10 + (t[i] - '0');
	}
	if (scalar && n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		AT(c, n, "%s of the %s constraint of service '%s' is a quoted string; write the number without "
			 "quotes",
		   key, w->plat, w->svc);
		return -1;
	}
	if (!ok || val > max) {
		AT(c, n, "%s of the %s constraint of service '%s' must be a whole number from 0 to %ld", key, w->plat,
		   w->svc, max);
		return -1;
	}
	return val;
}

/* true or false, unquoted; YAML 1.1 spellings (yes, on, True) are refused
 * so that a boolean is never guessed. -1 and a diagnostic otherwise. */
static int get_bool_field(struct pctx *c, const yaml_node_t *n, const struct cwhere *w, const char *key)
{
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		const char *t = (const char *)n->data.scalar.value;
		size_t tl = n->data.scalar.length;
		if (tl == 4 && !memcmp(t, "true", 4))
			return 1;
		if (tl == 5 && !memcmp(t, "false", 5))
			return 0;
	}
	AT(c, n, "%s of the %s constraint of service '%s' must be true or false (unquoted)", key, w->plat, w->svc);
	return -1;
}

/* One of Intel's TCB status words; Revoked is never acceptable. */
static int get_tcb_status_field(struct pctx *c, const yaml_node_t *n, const struct cwhere *w)
{
	char what[96];
	size_t l;
	snprintf(what, sizeof what, "min_tcb_status of the %s constraint", w->plat);
	const char *s = get_str(c, n, what, &l);
	if (!s)
		return -1;
	int st = arca_tcb_status_parse(s, l);
	if (st < 0 || st == ARCA_TCB_REVOKED) {
		struct shown sh;
		AT(c, n, "min_tcb_status '%s' of the %s constraint of service '%s' is not a status to accept; use "
			 "UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, "
			 "OutOfDate or OutOfDateConfigurationNeeded",
		   show(&sh, s, l), w->plat, w->svc);
		return -1;
	}
	return st;
}

/* An empty value (sev-snp:) means the same as {}. */
static int constraint_fields(struct pctx *c, yaml_node_t *v, struct field *f, size_t nf, const struct cwhere *w,
			     const char *keys)
{
	char what[96];
	snprintf(what, sizeof what, "the %s constraint", w->plat);
	if (is_null(v)) {
		for (size_t i = 0; i < nf; i++)
			f[i].k = f[i].v = NULL;
		return 0;
	}
	return get_fields(c, v, f, nf, what, keys);
}

static void parse_snp(struct pctx *c, struct arca_service *sv, yaml_node_t *k, yaml_node_t *v)
{
	static const char keys[] = "measurement, host_data, id_key_digest, min_tcb, debug, product";
	static const char tcb_keys[] = "bootloader, tee, snp, microcode";
	static const char *const products[] = {NULL, "Milan", "Genoa", "Turin"};
	struct field f[] = {{"measurement", 0, 0}, {"host_data", 0, 0}, {"id_key_digest", 0, 0},
			    {"min_tcb", 0, 0},	   {"debug", 0, 0},	{"product", 0, 0}};
	enum { MEAS, HOST, IDKEY, TCB, DEBUG, PRODUCT };
	struct arca_snp_policy *sp = &sv->snp;
	const struct cwhere w = {"sev-snp", sv->name};
	size_t errors = c->errors;

	memset(sp, 0, sizeof *sp);
	for (int i = 0; i < ARCA_SNP_TCB_NPARTS; i++)
		sp->min_tcb[i] = -1;
	if (constraint_fields(c, v, f, 6, &w, keys) < 0)
		return;
	if (!f[MEAS].v)
		AT(c, is_null(v) ? k : v,
		   "the sev-snp constraint of service '%s' has no measurement; add measurement: (96 hex digits, the "
		   "launch measurement of the VM image), since without it any VM, with any arca-las in it, would be "
		   "accepted",
		   sv->name);
	else
		sp->has_measurement = get_hex_field(c, f[MEAS].v, &w, "measurement", 48, sp->measurement);
	if (f[HOST].v)
		sp->has_host_data = get_hex_field(c, f[HOST].v, &w, "host_data", 32, sp->host_data);
	if (f[IDKEY].v)
		sp->has_id_key_digest = get_hex_field(c, f[IDKEY].v, &w, "id_key_digest", 48, sp->id_key_digest);
	if (f[TCB].v) {
		struct field t[] = {{"bootloader", 0, 0}, {"tee", 0, 0}, {"snp", 0, 0}, {"microcode", 0, 0}};
		const struct cwhere wt = {"sev-snp min_tcb", sv->name};
		if (get_fields(c, f[TCB].v, t, 4, "min_tcb of the sev-snp constraint", tcb_keys) == 0)
			for (int i = 0; i < ARCA_SNP_TCB_NPARTS; i++)
				if (t[i].v)
					sp->min_tcb[i] = (int)get_uint_field(c, t[i].v, &wt, t[i].key, 255);
	}
	if (f[DEBUG].v)
		sp->debug = get_bool_field(c, f[DEBUG].v, &w, "debug");
	if (f[PRODUCT].v) {
		size_t l;
		const char *s = get_str(c, f[PRODUCT].v, "product of the sev-snp constraint", &l);
		for (int i = 1; s && i <= 3; i++)
			if (strlen(products[i]) == l && !memcmp(products[i], s, l))
				sp->product = i;
		if (s && !sp->product) {
			struct shown sh;
			AT(c, f[PRODUCT].v, "product '%s' of the sev-snp constraint of service '%s' is unknown; use "
					    "Milan, Genoa or Turin",
			   show(&sh, s, l), sv->name);
		}
	}
	sv->platform_snp = c->errors == errors;
}

static void parse_tdx(struct pctx *c, struct arca_service *sv, yaml_node_t *k, yaml_node_t *v)
{
	static const char keys[] =
		"mrtd, rtmr (a list of up to 4) or rtmr0, rtmr1, rtmr2, rtmr3, mrconfigid, debug, min_tcb_status";
	struct field f[] = {{"mrtd", 0, 0},  {"rtmr", 0, 0},	   {"rtmr0", 0, 0}, {"rtmr1", 0, 0},
			    {"rtmr2", 0, 0}, {"rtmr3", 0, 0},	   {"mrconfigid", 0, 0},
			    {"debug", 0, 0}, {"min_tcb_status", 0, 0}};
	enum { MRTD, RTMR, RTMR0, MRCONFIGID = 6, DEBUG, TCBSTATUS };
	struct arca_tdx_policy *tp = &sv->tdx;
	const struct cwhere w = {"tdx", sv->name};
	size_t errors = c->errors;

	memset(tp, 0, sizeof *tp);
	tp->min_tcb_status = -1;
	if (constraint_fields(c, v, f, 9, &w, keys) < 0)
		return;
	if (!f[MRTD].v)
		AT(c, is_null(v) ? k : v,
		   "the tdx constraint of service '%s' has no mrtd; add mrtd: (96 hex digits, the measurement of the "
		   "TD's firmware), since without it any TD, with any arca-las in it, would be accepted",
		   sv->name);
	else
		tp->has_mrtd = get_hex_field(c, f[MRTD].v, &w, "mrtd", 48, tp->mrtd);
	if (f[RTMR].v) {
		const yaml_node_t *lst = f[RTMR].v;
		int named = 0;
		for (int i = 0; i < 4; i++)
			if (f[RTMR0 + i].k && !named) {
				named = 1;
				AT(c, f[RTMR0 + i].k, "the tdx constraint of service '%s' has both rtmr and %s; use the list "
						      "rtmr: [...] or the keys rtmr0 to rtmr3, not both",
				   sv->name, f[RTMR0 + i].key);
			}
		if (!is_seq(lst))
			AT(c, lst, "rtmr of the tdx constraint of service '%s' must be a list of up to 4 values (rtmr0 "
				   "first), not %s",
			   sv->name, what_is(lst));
		else if (seq_len(lst) == 0 || seq_len(lst) > 4)
			AT(c, lst, "rtmr of the tdx constraint of service '%s' lists %zu values; give 1 to 4 (rtmr0 "
				   "first), or use the keys rtmr0 to rtmr3",
			   sv->name, seq_len(lst));
		else
			for (size_t i = 0; i < seq_len(lst); i++) {
				const yaml_node_t *it = seq_item(c, lst, i);
				char key[32];
				snprintf(key, sizeof key, "rtmr%zu", i);
				if (it)
					tp->has_rtmr[i] = get_hex_field(c, it, &w, key, 48, tp->rtmr[i]);
			}
	}
	for (int i = 0; i < 4; i++)
		if (f[RTMR0 + i].v && !f[RTMR].v)
			tp->has_rtmr[i] = get_hex_field(c, f[RTMR0 + i].v, &w, f[RTMR0 + i].key, 48, tp->rtmr[i]);
	if (f[MRCONFIGID].v)
		tp->has_mrconfigid = get_hex_field(c, f[MRCONFIGID].v, &w, "mrconfigid", 48, tp->mrconfigid);
	if (f[DEBUG].v)
		tp->debug = get_bool_field(c, f[DEBUG].v, &w, "debug");
	if (f[TCBSTATUS].v)
		tp->min_tcb_status = get_tcb_status_field(c, f[TCBSTATUS].v, &w);
	sv->platform_tdx = c->errors == errors;
}

static void parse_sgx(struct pctx *c, struct arca_service *sv, yaml_node_t *k, yaml_node_t *v)
{
	static const char keys[] = "mrenclave, mrsigner, isvprodid, min_isvsvn, debug, min_tcb_status";
	struct field f[] = {{"mrenclave", 0, 0},  {"mrsigner", 0, 0}, {"isvprodid", 0, 0},
			    {"min_isvsvn", 0, 0}, {"debug", 0, 0},    {"min_tcb_status", 0, 0}};
	enum { MRENCLAVE, MRSIGNER, PRODID, ISVSVN, DEBUG, TCBSTATUS };
	struct arca_sgx_policy *gp = &sv->sgx;
	const struct cwhere w = {"sgx", sv->name};
	size_t errors = c->errors;

	memset(gp, 0, sizeof *gp);
	gp->isvprodid = gp->min_isvsvn = gp->min_tcb_status = -1;
	if (constraint_fields(c, v, f, 6, &w, keys) < 0)
		return;
	if (!f[MRENCLAVE].v && !f[MRSIGNER].v)
		AT(c, is_null(v) ? k : v,
		   "the sgx constraint of service '%s' names no enclave; add mrenclave: (64 hex digits), or mrsigner: "
		   "with isvprodid: and min_isvsvn:",
		   sv->name);
	if (f[MRENCLAVE].v)
		gp->has_mrenclave = get_hex_field(c, f[MRENCLAVE].v, &w, "mrenclave", 32, gp->mrenclave);
	if (f[MRSIGNER].v) {
		gp->has_mrsigner = get_hex_field(c, f[MRSIGNER].v, &w, "mrsigner", 32, gp->mrsigner);
		/* A signer signs many enclaves and every version of each. */
		if (!f[PRODID].v || !f[ISVSVN].v)
			AT(c, f[MRSIGNER].k, "mrsigner of the sgx constraint of service '%s' needs isvprodid: and "
					     "min_isvsvn: too, or any enclave of that signer, old versions included, "
					     "would be accepted",
			   sv->name);
	} else if (f[PRODID].v || f[ISVSVN].v) {
		const yaml_node_t *key = f[PRODID].v ? f[PRODID].k : f[ISVSVN].k;
		AT(c, key, "%s of the sgx constraint of service '%s' means something only with mrsigner; add "
			   "mrsigner: or remove it",
		   f[PRODID].v ? "isvprodid" : "min_isvsvn", sv->name);
	}
	if (f[PRODID].v)
		gp->isvprodid = (int)get_uint_field(c, f[PRODID].v, &w, "isvprodid", 65535);
	if (f[ISVSVN].v)
		gp->min_isvsvn = (int)get_uint_field(c, f[ISVSVN].v, &w, "min_isvsvn", 65535);
	if (f[DEBUG].v)
		gp->debug = get_bool_field(c, f[DEBUG].v, &w, "debug");
	if (f[TCBSTATUS].v)
		gp->min_tcb_status = get_tcb_status_field(c, f[TCBSTATUS].v, &w);
	sv->platform_sgx = c->errors == errors;
}

static void parse_platform(struct pctx *c, struct arca_service *sv, yaml_node_t *n)
{
	static const char *const names[] = {"sim", "sev-snp", "tdx", "sgx"};
	if (!is_map(n)) {
		AT(c, n, "platform of service '%s' must be a mapping such as platform: {sim: {}}, not %s", sv->name,
		   what_is(n));
		return;
	}
	if (map_len(n) == 0) {
		AT(c, n, "platform of service '%s' lists no platform, so it could never attest; add sim: {}",
		   sv->name);
		return;
	}
	const yaml_node_t *first[4] = {NULL, NULL, NULL, NULL};
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
		struct shown sh;
		size_t l;
		const char *name;
		int which = -1;
		if (!k || !v || !(name = get_str(c, k, "a platform name", &l)))
			continue;
		for (int i = 0; i < 4; i++)
			if (strlen(names[i]) == l && !memcmp(name, names[i], l))
				which = i;
		if (which < 0) {
			AT(c, k, "unknown platform '%s' in service '%s'; the platforms are sim, sev-snp, tdx and sgx",
			   show(&sh, name, l), sv->name);
			continue;
		}
		if (first[which]) {
			AT(c, k, "duplicate key '%s' in platform (first at line %d, column %d); remove one", names[which],
			   LC(first[which]->start_mark));
			continue;
		}
		first[which] = k;
		switch (which) {
		case 0:
			if (!is_null(v) && !(is_map(v) && map_len(v) == 0))
				AT(c, v, "sim takes no options in this version; write sim: {}");
			else
				sv->platform_sim = 1;
			break;
		case 1:
			parse_snp(c, sv, k, v);
			break;
		case 2:
			parse_tdx(c, sv, k, v);
			break;
		default:
			parse_sgx(c, sv, k, v);
			break;
		}
	}
}

/* environment or files: a mapping from user keys to strings, with
 * duplicate keys found by sorting (libyaml keeps duplicates). */
static struct arca_kv *parse_kv(struct pctx *c, struct arca_service *sv, yaml_node_t *n, int files, size_t *count)
{
	const char *what = files ? "files" : "environment";
	*count = 0;
	if (!is_map(n)) {
		AT(c, n, "%s of service '%s' must be a mapping, e.g. %s, not %s", what, sv->name,
		   files ? "files: {/etc/app.ini: \"...\"}" : "environment: {NAME: value}", what_is(n));
		return NULL;
	}
	size_t cnt = map_len(n);
	struct arca_kv *kv = calloc(cnt ? cnt : 1, sizeof *kv);
	struct named *nv = calloc(cnt ? cnt : 1, sizeof *nv);
	if (!kv || !nv) {
		free(kv);
		free(nv);
		oom(c);
		return NULL;
	}
	for (size_t i = 0; i < cnt && !c->oom; i++) {
		yaml_node_pair_t *pr = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
		struct shown sh;
		size_t kl, vl;
		const char *ks, *vs;
		if (!k || !v || !(ks = get_str(c, k, files ? "a file path" : "an environment variable name", &kl)))
			continue;
		if (files) {
			const char *why = path_problem(ks, kl);
			if (why) {
				AT(c, k, "file path '%s' of service '%s' %s", show(&sh, ks, kl), sv->name, why);
				continue;
			}
		} else if (!env_name_ok(ks, kl)) {
			AT(c, k, "'%s' is not a valid environment variable name; use letters, digits and _, not "
				 "starting with a digit",
			   show(&sh, ks, kl));
			continue;
		}
		char vwhat[96];
		snprintf(vwhat, sizeof vwhat, "%s '%s'", files ? "the content of file" : "environment variable",
			 show(&sh, ks, kl));
		if (!(vs = get_str(c, v, vwhat, &vl)))
			continue;
		struct arca_kv *e = &kv[*count];
		e->key = dupn(c, ks, kl);
		e->value = dupn(c, vs, vl);
		e->line = (int)k->start_mark.line + 1;
		e->col = (int)k->start_mark.column + 1;
		if (!e->key || !e->value) {
			free(e->key);
			free(e->value);
			e->key = e->value = NULL;
			continue;
		}
		nv[*count] = (struct named){e->key, e->line, e->col, *count};
		(*count)++;
		check_placeholders(c, v, vs, vl, !files);
	}
	dup_check(c, nv, *count, files ? "file" : "environment variable");
	free(nv);
	return kv;
}

static void parse_service_volumes(struct pctx *c, struct arca_service *sv, yaml_node_t *n)
{
	if (!is_seq(n)) {
		AT(c, n, "volumes of service '%s' must be a list, e.g. volumes: [{name: data, path: /data}], not %s",
		   sv->name, what_is(n));
		return;
	}
	size_t cnt = seq_len(n);
	if (cnt > MAX_SERVICE_VOLUMES) {
		AT(c, n, "service '%s' mounts %zu volumes, more than the limit of %d", sv->name, cnt,
		   MAX_SERVICE_VOLUMES);
		return;
	}
	sv->volumes = calloc(cnt ? cnt : 1, sizeof *sv->volumes);
	struct named *byname = calloc(cnt ? cnt : 1, sizeof *byname);
	struct named *bypath = calloc(cnt ? cnt : 1, sizeof *bypath);
	if (!sv->volumes || !byname || !bypath) {
		free(byname);
		free(bypath);
		oom(c);
		return;
	}
	for (size_t i = 0; i < cnt && !c->oom; i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		struct field f[] = {{"name", 0, 0}, {"path", 0, 0}};
		struct shown sh;
		size_t nl, pl;
		const char *nm = NULL, *pa = NULL;
		if (!it || get_fields(c, it, f, 2, "a service volume", "name, path") < 0)
			continue;
		if (!f[0].v)
			AT(c, it, "this volume of service '%s' has no name; add name: naming one of the volumes:",
			   sv->name);
		else if ((nm = get_str(c, f[0].v, "the name of a volume", &nl))) {
			char tmp[ARCA_NAME_MAX + 1];
			int known = 0;
			if (nl <= ARCA_NAME_MAX) {
				memcpy(tmp, nm, nl);
				tmp[nl] = '\0';
				known = named_find(c->vidx, c->nvidx, tmp) != NULL;
			}
			if (!known) {
				AT(c, f[0].v, "service '%s' mounts volume '%s', which is not declared; add it under "
					      "volumes: at the top level or fix the name",
				   sv->name, show(&sh, nm, nl));
				nm = NULL;
			}
		}
		if (!f[1].v)
			AT(c, it, "this volume of service '%s' has no path; add path: (an absolute directory)", sv->name);
		else if ((pa = get_str(c, f[1].v, "the path of a volume", &pl))) {
			const char *why = path_problem(pa, pl);
			if (why) {
				AT(c, f[1].v, "volume path '%s' of service '%s' %s", show(&sh, pa, pl), sv->name, why);
				pa = NULL;
			}
		}
		if (!nm || !pa)
			continue;
		struct arca_volume_ref *r = &sv->volumes[sv->nvolumes];
		r->name = dupn(c, nm, nl);
		r->path = dupn(c, pa, pl);
		r->line = (int)it->start_mark.line + 1;
		r->col = (int)it->start_mark.column + 1;
		if (!r->name || !r->path) {
			free(r->name);
			free(r->path);
			r->name = r->path = NULL;
			continue;
		}
		byname[sv->nvolumes] = (struct named){r->name, LC(f[0].v->start_mark), sv->nvolumes};
		bypath[sv->nvolumes] = (struct named){r->path, LC(f[1].v->start_mark), sv->nvolumes};
		sv->nvolumes++;
	}
	dup_check(c, byname, sv->nvolumes, "mounted volume");
	dup_check(c, bypath, sv->nvolumes, "volume path");
	free(byname);
	free(bypath);
}

static void free_kv(struct arca_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static void free_service(struct arca_service *s)
{
	free(s->name);
	free_strv(s->command, s->ncommand);
	free_kv(s->env, s->nenv);
	free_kv(s->files, s->nfiles);
	for (size_t j = 0; j < s->nvolumes; j++) {
		free(s->volumes[j].name);
		free(s->volumes[j].path);
	}
	free(s->volumes);
	memset(s, 0, sizeof *s);
}

static void parse_service_body(struct pctx *c, yaml_node_t *n, struct arca_service *sv, struct field *f)
{
	enum { NAME, CMD, MEAS, PLAT, ENV, FILES, VOLS };
	size_t l;
	const char *v;

	if (!f[CMD].v)
		AT(c, n, "service '%s' has no command; add command: [/path/to/program, args...]", sv->name);
	else {
		const yaml_node_t *lst = f[CMD].v, **nodes;
		sv->command = get_str_list(c, f[CMD].v, "command", "command: [/usr/bin/app, --flag]", &sv->ncommand,
					   &nodes);
		if (sv->command && seq_len(lst) == 0)
			AT(c, lst, "command of service '%s' is empty; give at least the program to run", sv->name);
		else if (sv->command && sv->ncommand > 0 && nodes[0] == seq_item(c, lst, 0) && sv->command[0][0] == '\0')
			AT(c, nodes[0], "the program (first item of command) of service '%s' is empty", sv->name);
		for (size_t k = 0; sv->command && k < sv->ncommand; k++)
			check_placeholders(c, nodes[k], sv->command[k], strlen(sv->command[k]), 1);
		free(nodes);
	}

	if (!f[MEAS].v)
		AT(c, n, "service '%s' has no measurement; add measurement: sha256:... as printed by arca measure",
		   sv->name);
	else if ((v = get_str(c, f[MEAS].v, "measurement", &l))) {
		if (l != ARCA_DIGEST_STR_LEN - 1 || arca_digest_parse(v, sv->measurement) < 0)
			AT(c, f[MEAS].v, "measurement of service '%s' must be sha256: followed by 64 hex digits, as "
					 "printed by arca measure",
			   sv->name);
		else
			sv->has_measurement = 1;
	}

	if (!f[PLAT].v)
		AT(c, n, "service '%s' has no platform; add platform: {sim: {}}", sv->name);
	else
		parse_platform(c, sv, f[PLAT].v);

	if (f[ENV].v)
		sv->env = parse_kv(c, sv, f[ENV].v, 0, &sv->nenv);
	if (f[FILES].v)
		sv->files = parse_kv(c, sv, f[FILES].v, 1, &sv->nfiles);
	if (f[VOLS].v)
		parse_service_volumes(c, sv, f[VOLS].v);
}

static void parse_service(struct pctx *c, yaml_node_t *n)
{
	static const char keys[] = "name, command, measurement, platform, environment, files, volumes";
	struct field f[] = {{"name", 0, 0},	   {"command", 0, 0},	  {"measurement", 0, 0}, {"platform", 0, 0},
			    {"environment", 0, 0}, {"files", 0, 0}, {"volumes", 0, 0}};
	enum { NAME };
	if (get_fields(c, n, f, 7, "a service", keys) < 0)
		return;
	struct arca_service *sv = &c->p->services[c->p->nservices];
	sv->line = (int)n->start_mark.line + 1;
	sv->col = (int)n->start_mark.column + 1;
	struct shown sh;
	size_t l;
	const char *v = NULL;

	const char *why = NULL;
	if (!f[NAME].v)
		AT(c, n, "this service has no name; add name: (A-Z a-z 0-9 _ . ~ -)");
	else if ((v = get_str(c, f[NAME].v, "the name of a service", &l)) && (why = name_problem(v, l, 0)))
		AT(c, f[NAME].v, "the service name '%s' %s; use 1 to 128 of A-Z a-z 0-9 _ . ~ -", show(&sh, v, l), why);
	else if (v)
		sv->name = dupn(c, v, l);
	/* One without a good name is still checked (for more diagnostics in
	 * one go), under a stand-in name, then dropped. */
	int named = sv->name != NULL;
	if (!named && !(sv->name = dupn(c, "(unnamed)", 9)))
		return;
	parse_service_body(c, n, sv, f);
	if (named)
		c->p->nservices++;
	else
		free_service(sv);
}

static void parse_services(struct pctx *c, yaml_node_t *n)
{
	if (!is_seq(n)) {
		AT(c, n, "services must be a list, e.g. services: [{name: api, command: [...], ...}], not %s",
		   what_is(n));
		return;
	}
	size_t cnt = seq_len(n);
	c->p->services = calloc(cnt ? cnt : 1, sizeof *c->p->services);
	struct named *nv = calloc(cnt ? cnt : 1, sizeof *nv);
	if (!c->p->services || !nv) {
		free(nv);
		oom(c);
		return;
	}
	for (size_t i = 0; i < cnt && !c->oom; i++) {
		yaml_node_t *it = node(c, n->data.sequence.items.start[i]);
		if (it)
			parse_service(c, it);
	}
	for (size_t i = 0; i < c->p->nservices; i++) {
		const struct arca_service *s = &c->p->services[i];
		nv[i] = (struct named){s->name, s->line, s->col, i};
	}
	dup_check(c, nv, c->p->nservices, "service");
	free(nv);
}

static void parse_root(struct pctx *c, yaml_node_t *root)
{
	static const char keys[] = "name, predecessor, access, services, secrets, volumes, tolerate";
	struct field f[] = {{"name", 0, 0},    {"predecessor", 0, 0}, {"access", 0, 0},  {"services", 0, 0},
			    {"secrets", 0, 0}, {"volumes", 0, 0},     {"tolerate", 0, 0}};
	enum { NAME, PRED, ACCESS, SERVICES, SECRETS, VOLUMES, TOLERATE };
	if (get_fields(c, root, f, 7, "the policy", keys) < 0)
		return;
	if (!f[NAME].v)
		AT(c, root, "the policy has no name; add name: (the session name)");
	else
		parse_name(c, f[NAME].v);
	if (f[PRED].v)
		parse_predecessor(c, f[PRED].v);
	if (f[ACCESS].v)
		parse_access(c, f[ACCESS].v);
	/* secrets and volumes first: services refer to them */
	if (f[SECRETS].v)
		parse_secrets(c, f[SECRETS].v);
	if (f[VOLUMES].v && !c->oom)
		parse_volumes(c, f[VOLUMES].v);
	if (f[TOLERATE].v && !c->oom)
		parse_tolerate(c, f[TOLERATE].v);
	if (f[SERVICES].v && !c->oom)
		parse_services(c, f[SERVICES].v);
}

/* ---- entry points ---- */

static void wipe_document(yaml_document_t *doc)
{
	for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
			arca_wipe(n->data.scalar.value, n->data.scalar.length);
	yaml_document_delete(doc);
}

int arca_policy_parse(const char *text, size_t len, struct arca_diags *ds, struct arca_policy **out)
{
	if (out)
		*out = NULL;
	if (!out || (!text && len))
		return ARCA_EINVAL;

	struct pctx c;
	memset(&c, 0, sizeof c);
	c.text = (const unsigned char *)(text ? text : "");
	c.len = len;
	c.ds = ds;
	size_t first = ds ? ds->n : 0;
	int rc = ARCA_EPARSE;

	if (len > ARCA_POLICY_MAX_BYTES) {
		diag_lc(&c, 1, 1, "the policy is %zu bytes, more than the limit of %u; make it smaller", len,
			ARCA_POLICY_MAX_BYTES);
		return ARCA_ETOOBIG;
	}
	if (prescan(&c) < 0 || scan_events(&c) < 0)
		goto done;

	yaml_parser_t ps;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&ps)) {
		oom(&c);
		goto done;
	}
	yaml_parser_set_input_string(&ps, c.text, c.len);
	yaml_parser_set_encoding(&ps, YAML_UTF8_ENCODING);
	if (!yaml_parser_load(&ps, &doc)) {
		syntax_error(&c, &ps); /* the event pass accepted it; only memory can fail here */
		wipe_parser(&ps);
		goto done;
	}
	wipe_parser(&ps);
	c.doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root || is_null(root)) {
		diag_lc(&c, 1, 1, "the policy is empty; it must be a mapping with at least name:");
	} else if ((c.p = calloc(1, sizeof *c.p)) == NULL) {
		oom(&c);
	} else {
		parse_root(&c, root);
	}
	wipe_document(&doc);

	if (c.errors == 0 && c.p) {
		*out = c.p;
		c.p = NULL;
		rc = 0;
	}
done:
	if (c.oom)
		rc = ARCA_ENOMEM;
	arca_policy_free(c.p);
	free(c.ls);
	free(c.lc);
	free(c.cp);
	free(c.sidx);
	free(c.vidx);
	if (ds)
		diags_sort(ds, first);
	return rc;
}

void arca_policy_free(struct arca_policy *p)
{
	if (!p)
		return;
	free(p->name);
	free_strv(p->owners, p->nowners);
	for (size_t i = 0; i < p->nservices; i++)
		free_service(&p->services[i]);
	free(p->services);
	for (size_t i = 0; i < p->nsecrets; i++)
		free_secret(&p->secrets[i]);
	free(p->secrets);
	for (size_t i = 0; i < p->nvolumes; i++) {
		free(p->volumes[i].name);
		free(p->volumes[i].key);
	}
	free(p->volumes);
	free_strv(p->tolerate, p->ntolerate);
	arca_wipe(p, sizeof *p);
	free(p);
}

const struct arca_service *arca_policy_service(const struct arca_policy *p, const char *name)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->nservices; i++)
		if (p->services[i].name && strcmp(p->services[i].name, name) == 0)
			return &p->services[i];
	return NULL;
}

const struct arca_secret_def *arca_policy_secret(const struct arca_policy *p, const char *name)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->nsecrets; i++)
		if (p->secrets[i].name && strcmp(p->secrets[i].name, name) == 0)
			return &p->secrets[i];
	return NULL;
}

const struct arca_volume_def *arca_policy_volume(const struct arca_policy *p, const char *name)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->nvolumes; i++)
		if (p->volumes[i].name && strcmp(p->volumes[i].name, name) == 0)
			return &p->volumes[i];
	return NULL;
}
