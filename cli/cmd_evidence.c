/* cmd_evidence.c: `arca evidence verify|show`, hardware evidence (AMD
 * SEV-SNP reports, Intel TDX and SGX DCAP quotes) checked or read out by
 * the same library verifiers CAS uses, so that an operator can see for
 * themselves what CAS would accept, and why it would refuse.
 *
 * Output decisions:
 * - A verdict is the command's output, not an error: "verified: …" or
 *   "NOT verified: <reason>" goes to stdout (human form) or into the JSON
 *   object, and the exit status says which (0 only when everything
 *   verified at the given time, 1 otherwise). stderr is kept for failures
 *   to run at all (an unreadable file, a leaf that is not a certificate),
 *   which exit 1, and usage errors, which exit 2.
 * - --json prints the library's fields (named as in expected.json) plus
 *   "verified", "reason" when not verified, "valid_from"/"valid_until" (the
 *   chain's common window, RFC 3339 UTC) whenever the verifier got that
 *   far, and "tcb_status" only when --collateral was given. Without
 *   collateral the key is absent: a TCB status that nobody evaluated must
 *   not be readable as one (and never as "UpToDate"); the human form says
 *   "TCB status: unknown (no collateral given)". With collateral that
 *   could not be evaluated (the quote failed earlier) it is "unknown".
 * - Options that cannot apply to the evidence found (--leaf/--chain for a
 *   quote, --collateral for an SEV-SNP report) are usage errors rather
 *   than silently ignored: someone who passed them believed they mattered.
 * - `show` parses only and prints no verdict. For Intel quotes the fields
 *   come from the library's verifier (the one place that names them); its
 *   verdict is discarded. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli.h"
#include "arca/buf.h"
#include "arca/hwev.h"
#include "arca/intel.h"
#include "arca/snp.h"
#include "arca/x509.h"

#define EVIDENCE_USAGE                                                                              \
	"arca evidence verify [--type auto|sev-snp|tdx|sgx] [--leaf FILE] [--chain FILE]\n"        \
	"                           [--collateral FILE]... [--at RFC3339] [--json] FILE\n"         \
	"       arca evidence show [--type auto|sev-snp|tdx|sgx] [--json] FILE"

#define EVIDENCE_MAX ((size_t)1 << 20)   /* an SEV-SNP capture's limit; quotes are a few KiB */
#define CERT_FILE_MAX ((size_t)1 << 20)
#define COLLATERAL_MAX ((size_t)16 << 20) /* TCB info, QE identity and CRLs */
#define COLLATERAL_FILES_MAX 16
#define CHAIN_CERTS_MAX 16
#define TIME_STR_LEN 21 /* "YYYY-MM-DDTHH:MM:SSZ" */

enum ev_kind {
	EV_AUTO = 0,
	EV_SNP,
	EV_TDX,
	EV_SGX,
};

struct opts {
	int verify; /* 0: show */
	enum ev_kind type;
	const char *leaf, *chain;
	const char *coll[COLLATERAL_FILES_MAX];
	size_t ncoll;
	time_t at;
	int json;
	const char *file;
};

static const char *kind_name(enum ev_kind k)
{
	switch (k) {
	case EV_SNP:
		return "SEV-SNP";
	case EV_TDX:
		return "TDX";
	case EV_SGX:
		return "SGX";
	default:
		return "auto";
	}
}

/* ---- time ---------------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339 date-time: YYYY-MM-DD('T'|'t'|' ')HH:MM:SS[.frac]('Z'|'z'|±HH:MM).
 * Fractions are dropped: certificate times have whole seconds. A leap
 * second (:60) is refused rather than guessed at. */
static int parse_rfc3339(const char *s, time_t *out)
{
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	size_t n = strlen(s), i = 19;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 || digits(s + 8, 2, &d) < 0 ||
	    digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 || digits(s + 17, 2, &se) < 0)
		return -1;
	if (s[i] == '.') {
		size_t f = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return -1;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		if (n - i != 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) < 0 || digits(s + i + 4, 2, &om) < 0 ||
		    oh > 23 || om > 59)
			return -1;
		i += 6;
	} else {
		return -1;
	}
	if (i != n)
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	/* 12:00+02:00 is 10:00Z: the offset is subtracted. */
	*out = t - sign * (time_t)(oh * 3600 + om * 60);
	return 0;
}

static void format_time(time_t t, char out[TIME_STR_LEN])
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(out, TIME_STR_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, TIME_STR_LEN, "(unrepresentable)");
}

/* ---- options ------------------------------------------------------------- */

static int parse_type(const char *s, enum ev_kind *k)
{
	static const struct {
		const char *name;
		enum ev_kind kind;
	} types[] = { { "auto", EV_AUTO }, { "sev-snp", EV_SNP }, { "tdx", EV_TDX }, { "sgx", EV_SGX } };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		if (strcmp(s, types[i].name) == 0) {
			*k = types[i].kind;
			return 0;
		}
	}
	return -1;
}

/* Returns 0 to go on, or an exit status (-1: --help printed, exit 0). */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "type", required_argument, NULL, 't' }, { "leaf", required_argument, NULL, 'l' },
		{ "chain", required_argument, NULL, 'c' }, { "collateral", required_argument, NULL, 'C' },
		{ "at", required_argument, NULL, 'a' },   { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	int c, have_at = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		/* show reads the evidence only: options about trust have no place. */
		if (!o->verify && c != 't' && c != 'j' && c != 'h')
			return cli_usage(EVIDENCE_USAGE);
		switch (c) {
		case 't':
			if (parse_type(optarg, &o->type) < 0) {
				cli_fail("--type %s: expected auto, sev-snp, tdx or sgx", optarg);
				return 2;
			}
			break;
		case 'l':
			if (o->leaf) {
				cli_fail("--leaf is given once: the VCEK or VLEK that signed the report");
				return 2;
			}
			o->leaf = optarg;
			break;
		case 'c':
			if (o->chain) {
				cli_fail("--chain is given once; put ASK, ARK (and ASVK) in one PEM file");
				return 2;
			}
			o->chain = optarg;
			break;
		case 'C':
			if (o->ncoll == COLLATERAL_FILES_MAX) {
				cli_fail("at most %d --collateral files", COLLATERAL_FILES_MAX);
				return 2;
			}
			o->coll[o->ncoll++] = optarg;
			break;
		case 'a':
			if (parse_rfc3339(optarg, &o->at) < 0) {
				cli_fail("--at %s: expected an RFC 3339 time such as 2025-07-01T00:00:00Z", optarg);
				return 2;
			}
			have_at = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			printf("usage: %s\n", EVIDENCE_USAGE);
			return -1;
		default:
			return cli_usage(EVIDENCE_USAGE);
		}
	}
	if (argc - optind != 1)
		return cli_usage(EVIDENCE_USAGE);
	o->file = argv[optind];
	if (!have_at)
		o->at = time(NULL);
	return 0;
}

/* ---- reading ------------------------------------------------------------- */

static int read_input(const char *path, size_t max, const char *what, struct arca_buf *out)
{
	struct arca_errbuf e = { { 0 } };
	arca_buf_init(out, max, 0);
	int rc = arca_read_file(path, max, out, &e);
	if (rc == ARCA_ETOOBIG)
		return cli_fail("%s %s is larger than %zu bytes; it is not %s", what, path, max, what);
	if (rc < 0)
		return cli_fail("cannot read %s %s: %s", what, path, e.msg[0] ? e.msg : arca_strerror(rc));
	return 0;
}

static int load_leaf(const char *path, X509 **out)
{
	struct arca_buf b;
	*out = NULL;
	if (read_input(path, CERT_FILE_MAX, "the certificate", &b) != 0)
		return 1;
	int rc = arca_x509_load(b.p, b.len, out);
	arca_buf_free(&b);
	ERR_clear_error();
	if (rc < 0)
		return cli_fail("%s is not a certificate (DER, or PEM \"BEGIN CERTIFICATE\"); pass the VCEK or VLEK", path);
	return 0;
}

/* Every certificate of a PEM file, or the one of a DER file. A PEM file
 * with a block that does not parse is refused whole: a chain read in part
 * would fail later with a misleading reason. */
static int load_chain(const char *path, STACK_OF(X509) **out)
{
	struct arca_buf b;
	*out = NULL;
	if (read_input(path, CERT_FILE_MAX, "the chain", &b) != 0)
		return 1;
	STACK_OF(X509) *sk = sk_X509_new_null();
	int rc = 1;
	if (sk == NULL) {
		cli_fail("out of memory");
		goto out;
	}
	if (strstr(arca_buf_str(&b), "-----BEGIN") != NULL) {
		BIO *bio = BIO_new_mem_buf(b.p, (int)b.len);
		X509 *x;
		if (bio == NULL) {
			cli_fail("out of memory");
			goto out;
		}
		ERR_clear_error();
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			if (sk_X509_num(sk) == CHAIN_CERTS_MAX || !sk_X509_push(sk, x)) {
				X509_free(x);
				BIO_free(bio);
				cli_fail("%s holds more than %d certificates; an AMD chain is ASK, ARK and ASVK", path,
					 CHAIN_CERTS_MAX);
				goto out;
			}
		}
		unsigned long err = ERR_peek_last_error();
		BIO_free(bio);
		if (err != 0 && !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
			cli_fail("%s holds a PEM certificate that does not parse", path);
			goto out;
		}
	} else {
		X509 *x = NULL;
		if (arca_x509_load(b.p, b.len, &x) == 0 && !sk_X509_push(sk, x)) {
			X509_free(x);
			cli_fail("out of memory");
			goto out;
		}
	}
	if (sk_X509_num(sk) == 0) {
		cli_fail("%s holds no certificate (PEM or DER); pass AMD's ASK and ARK (and ASVK for a VLEK)", path);
		goto out;
	}
	*out = sk;
	sk = NULL;
	rc = 0;
out:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	arca_buf_free(&b);
	return rc;
}

static int load_collateral(const struct opts *o, struct arca_dcap_collateral **out)
{
	*out = NULL;
	for (size_t i = 0; i < o->ncoll; i++) {
		struct arca_buf b;
		struct arca_errbuf e = { { 0 } };
		int rc;
		if (read_input(o->coll[i], COLLATERAL_MAX, "the collateral", &b) != 0)
			goto fail;
		if (*out == NULL)
			rc = arca_dcap_collateral_load(b.p, b.len, out, &e);
		else
			rc = arca_dcap_collateral_add(*out, b.p, b.len, &e);
		arca_buf_free(&b);
		if (rc < 0) {
			cli_fail("collateral %s: %s", o->coll[i], e.msg[0] ? e.msg : arca_strerror(rc));
			goto fail;
		}
	}
	return 0;
fail:
	arca_dcap_collateral_free(*out);
	*out = NULL;
	return 1;
}

/* ---- detection ----------------------------------------------------------- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An Intel quote header: version, attestation key type, TEE type. An
 * SEV-SNP report cannot look like this: its first word (its version) is 2
 * or 3, where a quote's is 0x0002000v. */
static enum ev_kind intel_kind(const uint8_t *p, size_t n)
{
	if (n < ARCA_INTEL_HEADER_LEN)
		return EV_AUTO;
	unsigned ver = (unsigned)(p[0] | p[1] << 8), akt = (unsigned)(p[2] | p[3] << 8);
	uint32_t tee = le32(p + 4);
	if (akt != ARCA_INTEL_AK_ECDSA_P256)
		return EV_AUTO;
	if (ver == 3 && tee == ARCA_INTEL_TEE_SGX)
		return EV_SGX;
	if ((ver == 4 || ver == 5) && tee == ARCA_INTEL_TEE_TDX)
		return EV_TDX;
	return EV_AUTO;
}

static int is_hexdigit(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static enum ev_kind detect(const uint8_t *p, size_t n)
{
	enum ev_kind k = intel_kind(p, n);
	if (k != EV_AUTO)
		return k;
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < n && p[i] == '{')
		return EV_SNP; /* a configfs-tsm capture; the loader checks the provider */
	size_t h = 0;
	while (h < n && h < 2 * ARCA_SNP_REPORT_LEN && is_hexdigit(p[h]))
		h++;
	if (h == 2 * ARCA_SNP_REPORT_LEN)
		return EV_SNP;
	/* Raw: version 2 or 3, VMPL 0..3, signature algorithm 1 (ECDSA P-384). */
	if (n >= ARCA_SNP_REPORT_LEN && (le32(p) == 2 || le32(p) == 3) && le32(p + 0x30) <= 3 && le32(p + 0x34) == 1)
		return EV_SNP;
	return EV_AUTO;
}

/* ---- output -------------------------------------------------------------- */

/* Strings from evidence may hold anything (provider is "sev_guest\n"). */
static void print_escaped(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void print_fields(json_t *fields)
{
	const char *keys[64];
	size_t n = 0, width = 0;
	const char *k;
	json_t *v;

	if (fields == NULL)
		return;
	json_object_foreach(fields, k, v) {
		if (n == sizeof keys / sizeof keys[0])
			break; /* the verifiers name about twenty; --json prints every one */
		keys[n++] = k;
	}
	/* A stable order, the one --json's JSON_SORT_KEYS gives. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		if (strlen(keys[i]) > width)
			width = strlen(keys[i]);
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(fields, keys[i]);
		printf("  %-*s  ", (int)width, keys[i]);
		if (json_is_string(v))
			print_escaped(json_string_value(v));
		else if (json_is_integer(v))
			printf("%lld", (long long)json_integer_value(v));
		else if (json_is_true(v) || json_is_false(v))
			fputs(json_is_true(v) ? "true" : "false", stdout);
		else
			fputs("(not a scalar)", stdout);
		putchar('\n');
	}
}

/* A reason may quote a file name in any encoding, or end in a character
 * snprintf cut in half; JSON strings must be UTF-8, so such bytes become
 * '?' rather than costing the user the reason. */
static const char *ascii(char *s)
{
	for (char *c = s; *c; c++)
		if ((unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20)
			*c = '?';
	return s;
}

static int set_time(json_t *o, const char *k, time_t t)
{
	char s[TIME_STR_LEN];
	format_time(t, s);
	return json_object_set_new(o, k, json_string(s));
}

/* o is consumed. */
static int print_json(json_t *o)
{
	char *text = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(o);
	if (text == NULL)
		return cli_fail("cannot build the JSON output");
	puts(text);
	free(text);
	return fflush(stdout) == 0 ? 0 : cli_fail("cannot write the output");
}

/* What the verdict line says about the evidence and who signed it. */
struct describe {
	enum ev_kind kind;
	unsigned version;
	char body[32];               /* " (TDX 1.5 body)" */
	const char *signer;          /* "VCEK", "VLEK", "Intel's quoting enclave" */
	char detail[96];             /* " (Milan)" */
	char chain_name[128];        /* "chain", "PCK chain (Intel SGX PCK Platform CA)" */
};

static void describe_snp(const struct arca_snp_evidence *ev, X509 *leaf, struct describe *d)
{
	struct arca_snp_leaf li;
	struct arca_errbuf e = { { 0 } };
	d->kind = EV_SNP;
	d->version = ev->report.version;
	d->signer = ev->report.signing_key == ARCA_SNP_KEY_VLEK ? "VLEK" : "VCEK";
	if (!leaf)
		leaf = ev->report.signing_key == ARCA_SNP_KEY_VLEK ? ev->certs.vlek : ev->certs.vcek;
	if (leaf && arca_snp_leaf_read(leaf, &li, &e) == 0)
		snprintf(d->detail, sizeof d->detail, " (%s)", arca_snp_product_name(li.product));
	ERR_clear_error();
	snprintf(d->chain_name, sizeof d->chain_name, "chain");
}

static void describe_intel(const struct arca_hw_result *r, enum ev_kind k, struct describe *d)
{
	json_t *v = json_object_get(r->fields, "version");
	json_t *bt = json_object_get(r->fields, "body_type");
	json_t *iss = json_object_get(r->fields, "pck_issuer");
	d->kind = k;
	d->version = json_is_integer(v) ? (unsigned)json_integer_value(v) : 0;
	d->signer = "Intel's quoting enclave";
	if (json_is_integer(bt))
		snprintf(d->body, sizeof d->body, " (TDX %s body)",
			 json_integer_value(bt) == ARCA_INTEL_BODY_TDX15 ? "1.5" : "1.0");
	if (json_is_string(iss)) {
		/* The CN reads better than the whole RFC 2253 name. */
		const char *s = json_string_value(iss), *cn = strstr(s, "CN=");
		snprintf(d->chain_name, sizeof d->chain_name, "PCK chain (%s)", cn ? cn + 3 : s);
	} else {
		snprintf(d->chain_name, sizeof d->chain_name, "PCK chain");
	}
}

static int report(const struct opts *o, struct arca_hw_result *r, const struct describe *d, int is_intel)
{
	char from[TIME_STR_LEN], until[TIME_STR_LEN];
	int have_window = r->valid_from != 0 || r->valid_until != 0;
	const char *what = d->kind == EV_SNP ? "report" : "quote";

	format_time(r->valid_from, from);
	format_time(r->valid_until, until);
	if (o->json) {
		json_t *out = r->fields ? json_deep_copy(r->fields) : json_object();
		int bad = out == NULL;
		if (!bad) {
			bad |= json_object_set_new(out, "verified", json_boolean(r->verified));
			if (!r->verified)
				bad |= json_object_set_new(out, "reason", json_string(ascii(r->reason)));
			if (have_window) {
				bad |= set_time(out, "valid_from", r->valid_from);
				bad |= set_time(out, "valid_until", r->valid_until);
			}
			if (is_intel && o->ncoll > 0)
				bad |= json_object_set_new(out, "tcb_status",
							   json_string(r->tcb_status[0] ? r->tcb_status : "unknown"));
		}
		if (bad) {
			json_decref(out);
			return cli_fail("cannot build the JSON output");
		}
		int rc = print_json(out);
		return rc != 0 ? rc : (r->verified ? 0 : 1);
	}
	if (r->verified)
		printf("verified: %s %s v%u%s signed by %s%s, %s valid %s to %s\n", kind_name(d->kind), what,
		       d->version, d->body, d->signer, d->detail, d->chain_name, from, until);
	else
		printf("NOT verified: %s\n", r->reason);
	if (!r->verified) {
		char at[TIME_STR_LEN];
		format_time(o->at, at);
		printf("checked at %s", at);
		if (have_window)
			printf(" (%s valid %s to %s)", d->chain_name, from, until);
		putchar('\n');
	}
	if (is_intel) {
		if (o->ncoll == 0)
			printf("TCB status: unknown (no collateral given)\n");
		else
			printf("TCB status: %s\n", r->tcb_status[0] ? r->tcb_status : "unknown (collateral not evaluated)");
	}
	print_fields(r->fields);
	if (fflush(stdout) != 0)
		return cli_fail("cannot write the output");
	return r->verified ? 0 : 1;
}

/* The evidence could not be read as what it claims or seems to be: for
 * verify that is a verdict like any other; show has nothing to show. */
static int unreadable(const struct opts *o, const char *reason)
{
	struct arca_hw_result r;
	struct describe d;
	if (!o->verify)
		return cli_fail("%s", reason);
	arca_hw_result_init(&r);
	memset(&d, 0, sizeof d);
	snprintf(r.reason, sizeof r.reason, "%s", reason);
	d.kind = o->type == EV_AUTO ? EV_SNP : o->type;
	int rc = report(o, &r, &d, 0);
	arca_hw_result_free(&r);
	return rc;
}

/* ---- the two kinds ------------------------------------------------------- */

/* The verdict is "verified" only when the verifier says so both ways: a
 * disagreement between its return code and res->verified is a bug to fail
 * closed on, not to choose between. */
static void settle(struct arca_hw_result *r, int rc)
{
	if (rc == 0 && r->verified)
		return;
	r->verified = 0;
	if (r->reason[0] == '\0')
		snprintf(r->reason, sizeof r->reason, "the verifier refused the evidence (%s) without saying why",
			 arca_strerror(rc < 0 ? rc : ARCA_EINVAL));
}

static int do_snp(const struct opts *o, const uint8_t *p, size_t n)
{
	struct arca_snp_evidence ev;
	struct arca_errbuf e = { { 0 } };
	struct arca_hw_result r;
	struct describe d;
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	int rc;

	if (o->ncoll > 0) {
		cli_fail("--collateral applies to Intel quotes; an SEV-SNP report is checked against its VCEK or "
			 "VLEK (--leaf) and AMD's chain (--chain)");
		return 2;
	}
	if (arca_snp_load_any(p, n, &ev, &e) < 0) {
		char why[sizeof e.msg + 128];
		snprintf(why, sizeof why, "%s is not an SEV-SNP report arca can read: %s", o->file, e.msg);
		return unreadable(o, why);
	}
	arca_hw_result_init(&r);
	memset(&d, 0, sizeof d);
	if (!o->verify) {
		if (arca_snp_fields(&ev, &r.fields) < 0) {
			rc = cli_fail("out of memory");
			goto out;
		}
		if (o->json) {
			rc = print_json(json_incref(r.fields));
			goto out;
		}
		printf("SEV-SNP report v%u, %s form%s (parsed only, not verified)\n", ev.report.version,
		       ev.form == ARCA_SNP_FORM_TSM ? "configfs-tsm" : ev.form == ARCA_SNP_FORM_HEX ? "hex" : "raw",
		       ev.trailing ? ", with trailing bytes after the report" : "");
		print_fields(r.fields);
		rc = fflush(stdout) == 0 ? 0 : cli_fail("cannot write the output");
		goto out;
	}
	if ((o->leaf && (rc = load_leaf(o->leaf, &leaf)) != 0) || (o->chain && (rc = load_chain(o->chain, &chain)) != 0))
		goto out;
	settle(&r, arca_snp_verify(&ev, leaf, chain, o->at, NULL, &r));
	describe_snp(&ev, leaf, &d);
	rc = report(o, &r, &d, 0);
out:
	arca_hw_result_free(&r);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	arca_snp_evidence_free(&ev);
	return rc;
}

static int do_intel(const struct opts *o, const uint8_t *p, size_t n, enum ev_kind k)
{
	struct arca_intel_quote q;
	struct arca_errbuf e = { { 0 } };
	struct arca_dcap_collateral *coll = NULL;
	struct arca_hw_result r;
	struct describe d;
	int rc;

	if (o->leaf || o->chain) {
		cli_fail("--leaf and --chain apply to SEV-SNP reports; an Intel quote carries its own PCK chain "
			 "(--collateral FILE adds TCB info, QE identity and CRLs)");
		return 2;
	}
	if (arca_intel_quote_parse(p, n, &q, &e) < 0) {
		char why[sizeof e.msg + 128];
		snprintf(why, sizeof why, "%s is not an Intel quote arca can read: %s", o->file, e.msg);
		return unreadable(o, why);
	}
	enum ev_kind got = q.tee_type == ARCA_INTEL_TEE_TDX ? EV_TDX : EV_SGX;
	if (k != got) {
		char why[256];
		snprintf(why, sizeof why, "%s is %s %s quote, not the %s quote --type names", o->file,
			 got == EV_SGX ? "an" : "a", kind_name(got), kind_name(k));
		return unreadable(o, why);
	}
	if (o->ncoll > 0 && load_collateral(o, &coll) != 0)
		return 1;
	struct arca_intel_opts io = { .collateral = coll };
	arca_hw_result_init(&r);
	memset(&d, 0, sizeof d);
	settle(&r, arca_intel_quote_verify_opts(p, n, o->at, &io, &r));
	if (!o->verify) {
		if (r.fields == NULL) {
			rc = cli_fail("%s: %s", o->file, r.reason);
		} else if (o->json) {
			rc = print_json(json_incref(r.fields));
		} else {
			printf("%s quote v%u%s (parsed only, not verified)\n", kind_name(got), q.version,
			       q.trailing_bytes ? ", with trailing bytes after the signature data" : "");
			print_fields(r.fields);
			rc = fflush(stdout) == 0 ? 0 : cli_fail("cannot write the output");
		}
		goto out;
	}
	describe_intel(&r, got, &d);
	rc = report(o, &r, &d, 1);
out:
	arca_hw_result_free(&r);
	arca_dcap_collateral_free(coll);
	return rc;
}

static int run(int argc, char **argv, int verify)
{
	struct opts o;
	struct arca_buf b;
	int rc;

	memset(&o, 0, sizeof o);
	o.verify = verify;
	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc < 0 ? 0 : rc;
	if (read_input(o.file, EVIDENCE_MAX, "the evidence", &b) != 0)
		return 1;
	enum ev_kind k = o.type;
	if (k == EV_AUTO)
		k = detect(b.p, b.len);
	if (k == EV_AUTO) {
		char why[256];
		snprintf(why, sizeof why, "%s is neither an SEV-SNP report (raw, hex or configfs-tsm JSON) nor an "
			 "Intel quote (SGX v3, TDX v4/v5); if it is one, name it with --type", o.file);
		rc = unreadable(&o, why);
	}
	else if (k == EV_SNP)
		rc = do_snp(&o, b.p, b.len);
	else
		rc = do_intel(&o, b.p, b.len, k);
	arca_buf_free(&b);
	return rc;
}

int cmd_evidence(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(EVIDENCE_USAGE);
	if (strcmp(argv[1], "verify") == 0)
		return run(argc - 1, argv + 1, 1);
	if (strcmp(argv[1], "show") == 0)
		return run(argc - 1, argv + 1, 0);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", EVIDENCE_USAGE);
		return 0;
	}
	return cli_usage(EVIDENCE_USAGE);
}
