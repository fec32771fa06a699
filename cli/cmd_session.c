/* cmd_session.c: `arca session check|create|update|show`, the owner's view
 * of session policies.
 *
 * A policy is always checked locally before it is sent, so that mistakes are
 * reported against the user's own file and lines. Policy text may hold
 * secret values given by the owner: it lives in secret buffers and is wiped
 * on every path out; what CAS returns is redacted, and redacted again here
 * in case a CAS ever forgets. */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/http.h"
#include "arca/policy.h"
#include "arca/proto.h"
#include "arca/x509.h"

#define SESSION_USAGE                                                     \
	"arca session check FILE\n"                                       \
	"       arca session create [--cas ADDR] FILE\n"                  \
	"       arca session update [--cas ADDR] FILE\n"                  \
	"       arca session show [--cas ADDR] [--json] NAME"
#define REPLY_MAX ((size_t)4 << 20)
#define HASH_HEX_LEN 64
#define REDACTED "<redacted>"

struct opts {
	const char *cas;
	int json;
	const char *arg; /* the one positional argument */
};

static int parse_opts(int argc, char **argv, int allow_json, const char *usage, struct opts *o)
{
	static const struct option lopts[] = {
		{"cas", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof *o);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->cas = optarg;
			break;
		case 'j':
			if (!allow_json)
				return cli_usage(usage);
			o->json = 1;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return -1;
		default:
			return cli_usage(usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage(usage);
	o->arg = argv[optind];
	return 0;
}

/* ---- local policy --------------------------------------------------------- */

struct local_policy {
	struct arca_buf text;     /* the file as read; may hold secret values */
	struct arca_policy *pol;
	uint8_t hash[32];
};

static void local_policy_free(struct local_policy *lp)
{
	arca_policy_free(lp->pol);
	lp->pol = NULL;
	arca_buf_free(&lp->text);
}

static int print_diags(const struct arca_diags *ds)
{
	struct arca_buf out;

	arca_buf_init(&out, 64 << 10, 0);
	if (arca_diags_format(ds, &out) == 0) {
		fflush(stdout);
		fwrite(out.p, 1, out.len, stderr);
		if (out.len > 0 && out.p[out.len - 1] != '\n')
			fputc('\n', stderr);
	} else {
		for (size_t i = 0; i < ds->n; i++)
			fprintf(stderr, "%s:%d:%d: %s\n", ds->file, ds->d[i].line, ds->d[i].col, ds->d[i].msg);
	}
	arca_buf_free(&out);
	return 1;
}

/* Parses text as the policy in file. Prints diagnostics; returns 0 or 1. */
static int parse_policy(const char *file, const uint8_t *text, size_t len, struct arca_policy **pol)
{
	struct arca_diags ds;
	int rc;

	arca_diags_init(&ds, file);
	*pol = NULL;
	rc = arca_policy_parse((const char *)text, len, &ds, pol);
	if (rc < 0 || *pol == NULL || ds.n > 0) {
		arca_policy_free(*pol);
		*pol = NULL;
		if (ds.n > 0)
			return print_diags(&ds);
		return cli_fail("%s: cannot be parsed (%s)", file, arca_strerror(rc));
	}
	return 0;
}

static int load_policy(const char *file, struct local_policy *lp)
{
	struct arca_errbuf e = {{0}};
	int rc;

	memset(lp, 0, sizeof *lp);
	arca_buf_init(&lp->text, ARCA_POLICY_MAX_BYTES, 1);
	rc = arca_read_file(file, ARCA_POLICY_MAX_BYTES, &lp->text, &e);
	if (rc == ARCA_ETOOBIG)
		return cli_fail("%s is larger than a policy may be (%u bytes)", file, ARCA_POLICY_MAX_BYTES);
	if (rc < 0)
		return cli_fail("cannot read %s: %s", file, e.msg);
	if (parse_policy(file, lp->text.p, lp->text.len, &lp->pol) != 0)
		return 1;
	if (arca_policy_hash(lp->pol, lp->hash) < 0)
		return cli_fail("%s: cannot compute the policy's hash", file);
	return 0;
}

/* ---- talking to CAS ------------------------------------------------------- */

struct cas {
	const char *addr;
	struct arca_identity id;
	int have_id;
	struct arca_http *h;
};

static void cas_close(struct cas *c)
{
	arca_http_close(c->h);
	c->h = NULL;
	if (c->have_id)
		arca_identity_free(&c->id);
	c->have_id = 0;
}

/* Connects with the owner's identity to the pinned CAS. */
static int cas_open(const char *flag, struct cas *c)
{
	char home[PATH_MAX], pin[ARCA_FPR_LEN];
	struct arca_errbuf e = {{0}};
	int rc;

	memset(c, 0, sizeof *c);
	c->addr = cli_cas_addr(flag);
	if (cli_home(home, sizeof home) < 0)
		return 1;
	rc = arca_identity_load(home, &c->id, &e);
	if (rc == ARCA_ENOTFOUND)
		return cli_fail("no identity in %s; run `arca identity create` first", home);
	if (rc < 0)
		return cli_fail("cannot load your identity from %s: %s", home, e.msg);
	c->have_id = 1;
	rc = cli_pin_get(c->addr, pin);
	if (rc == ARCA_ENOTFOUND)
		return cli_fail("no pinned key for CAS %s; run `arca cas attest %s` first", c->addr, c->addr);
	if (rc < 0)
		return 1;
	if (arca_http_connect(c->addr, pin, &c->id, &c->h, &e) < 0)
		return cli_fail("cannot connect to CAS %s (pinned key %s): %s", c->addr, pin, e.msg);
	return 0;
}

static void printable(const char *s, char *out, size_t cap)
{
	size_t j = 0;

	for (size_t i = 0; s[i] != '\0' && j + 1 < cap; i++)
		out[j++] = ((unsigned char)s[i] < ' ' || s[i] == 0x7f) ? ' ' : s[i];
	out[j] = '\0';
}

/* What a person can do about each refusal (CONTRACTS.md error codes). */
static void advice(const char *code, const char *name, const char *fpr, char *out, size_t cap)
{
	const char *n = name != NULL ? name : "NAME";

	out[0] = '\0';
	if (strcmp(code, "stale_predecessor") == 0)
		snprintf(out, cap,
			 "the session changed since you read it; run `arca session show %s` and update again", n);
	else if (strcmp(code, "conflict") == 0)
		snprintf(out, cap, "a session named %s already exists; change it with `arca session update FILE`",
			 n);
	else if (strcmp(code, "forbidden") == 0)
		snprintf(out, cap,
			 "your identity %s is not an owner of session %s; an owner must add it to access.owners", fpr,
			 n);
	else if (strcmp(code, "unauthenticated") == 0)
		snprintf(out, cap, "CAS did not accept your identity; check `arca identity show`");
	else if (strcmp(code, "not_found") == 0)
		snprintf(out, cap, "there is no session %s on this CAS; check the name, or create it with "
				   "`arca session create FILE`", n);
	else if (strcmp(code, "invalid_policy") == 0)
		snprintf(out, cap, "fix the policy and check it with `arca session check FILE`");
	else if (strcmp(code, "too_large") == 0)
		snprintf(out, cap, "the request is larger than CAS accepts; make the policy smaller");
	else if (strcmp(code, "bad_request") == 0)
		snprintf(out, cap, "CAS could not read the request; check that arca and arca-cas are the same "
				   "version");
	else if (strcmp(code, "internal") == 0)
		snprintf(out, cap, "CAS failed internally; its operator will find the cause in its log");
	else if (strcmp(code, "nonce_invalid") == 0 || strcmp(code, "nonce_expired") == 0)
		snprintf(out, cap, "the attestation took too long or was replayed; try again");
	else if (strcmp(code, "platform_untrusted") == 0)
		snprintf(out, cap, "CAS does not trust this host's LAS; on the CAS host run "
				   "`arca cas trust-las PLATFORM.PUB`");
	else if (strcmp(code, "platform_unprotected") == 0)
		snprintf(out, cap, "set kernel.yama.ptrace_scope=1 on the host (sysctl -w), or add "
				   "`tolerate: [no-ptrace-protection]` to session %s",
			 n);
	else if (strcmp(code, "measurement_mismatch") == 0)
		snprintf(out, cap, "the program is not the one the session names; compare `arca measure` with "
				   "the session's measurement");
}

/* Prints a CAS refusal as one line (invalid_policy diagnostics, which CAS
 * sends only to an owner, come first, one per line). */
static int cas_refused(const struct cas *c, int status, const struct arca_buf *resp, const char *name)
{
	char code[64], detail[256], pcode[64], pdetail[256], adv[300];

	if (resp->len == 0 || arca_msg_error_decode(resp->p, resp->len, code, detail) < 0)
		return cli_fail("CAS %s answered HTTP %d without an error code; check that arca and arca-cas are "
				"the same version",
				c->addr, status);
	printable(code, pcode, sizeof pcode);
	if (strcmp(code, "invalid_policy") == 0 && strchr(detail, '\n') != NULL) {
		const char *p = detail;
		fflush(stdout);
		while (*p != '\0') {
			const char *nl = strchr(p, '\n');
			size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
			char line[256], pl[256];
			snprintf(line, sizeof line, "%.*s", (int)len, p);
			printable(line, pl, sizeof pl);
			if (pl[0] != '\0')
				fprintf(stderr, "%s\n", pl);
			p += len + (nl != NULL ? 1 : 0);
		}
		snprintf(pdetail, sizeof pdetail, "the policy is invalid");
	} else {
		printable(detail, pdetail, sizeof pdetail);
	}
	advice(code, name, c->have_id ? c->id.fpr : "", adv, sizeof adv);
	return cli_fail("CAS refused: %s (%s)%s%s", pdetail, pcode, adv[0] ? "; " : "", adv);
}

/* One request; on a 2xx the JSON object reply is returned in *reply. */
static int cas_call(struct cas *c, const char *method, const char *path, const struct arca_buf *body,
		    const char *name, json_t **reply)
{
	struct arca_errbuf e = {{0}};
	struct arca_buf resp;
	int status = 0, rc = 1;

	*reply = NULL;
	arca_buf_init(&resp, REPLY_MAX, 0);
	if (arca_http_request(c->h, method, path, body != NULL ? body->p : NULL, body != NULL ? body->len : 0,
			      &status, &resp, &e) < 0) {
		cli_fail("request to CAS %s failed: %s", c->addr, e.msg);
		goto out;
	}
	if (status < 200 || status > 299) {
		cas_refused(c, status, &resp, name);
		goto out;
	}
	*reply = json_loadb((const char *)resp.p, resp.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		cli_fail("CAS %s sent a reply arca cannot read; check that arca and arca-cas are the same version",
			 c->addr);
		goto out;
	}
	rc = 0;
out:
	arca_buf_free(&resp);
	return rc;
}

/* {"name": …, "hash": "<64 hex>"}: the hash is copied to hex. */
static int reply_hash(const struct cas *c, json_t *reply, char hex[HASH_HEX_LEN + 1])
{
	const char *h = json_string_value(json_object_get(reply, "hash"));
	uint8_t raw[32];
	size_t n = 0;

	if (h == NULL || strlen(h) != HASH_HEX_LEN || arca_hex_decode(h, HASH_HEX_LEN, raw, sizeof raw, &n) < 0 ||
	    n != sizeof raw)
		return cli_fail("CAS %s sent no valid session hash; check that arca and arca-cas are the same "
				"version",
				c->addr);
	arca_hex_encode(raw, sizeof raw, hex);
	return 0;
}

static int session_path(const char *name, char *out, size_t cap)
{
	if (!arca_name_valid(name))
		return cli_fail("%s is not a session name ([A-Za-z0-9_.~/-], 1 to 128 characters)", name);
	snprintf(out, cap, "/v1/sessions/%s", name);
	return 0;
}

/* An owner who leaves themselves out of access.owners can never read or
 * update the session again; say so while it can still be fixed. */
static void warn_not_owner(const struct arca_policy *pol, const char *fpr)
{
	if (!pol->has_access)
		return;
	for (size_t i = 0; i < pol->nowners; i++)
		if (strcmp(pol->owners[i], fpr) == 0)
			return;
	fprintf(stderr,
		"arca: warning: your identity %s is not in access.owners of %s; you will not be able to read or "
		"update it\n",
		fpr, pol->name);
}

/* ---- commands ------------------------------------------------------------- */

static int session_check(int argc, char **argv)
{
	struct local_policy lp;
	char hex[ARCA_HEX_LEN(32)];
	struct opts o;
	int rc;

	if ((rc = parse_opts(argc, argv, 0, "arca session check FILE", &o)) != 0)
		return rc < 0 ? 0 : rc;
	rc = load_policy(o.arg, &lp);
	if (rc == 0) {
		arca_hex_encode(lp.hash, sizeof lp.hash, hex);
		printf("ok %s hash %s\n", lp.pol->name, hex);
	}
	local_policy_free(&lp);
	return rc;
}

static int session_create(int argc, char **argv)
{
	struct local_policy lp;
	struct arca_buf body;
	struct cas c;
	struct opts o;
	char path[64], hex[HASH_HEX_LEN + 1], local_hex[ARCA_HEX_LEN(32)];
	json_t *reply = NULL;
	int rc;

	if ((rc = parse_opts(argc, argv, 0, "arca session create [--cas ADDR] FILE", &o)) != 0)
		return rc < 0 ? 0 : rc;
	memset(&c, 0, sizeof c);
	arca_buf_init(&body, ARCA_MAX_BODY, 1);
	rc = load_policy(o.arg, &lp);
	if (rc != 0)
		goto out;
	rc = 1;
	if (lp.pol->has_predecessor) {
		cli_fail("%s names a predecessor, so it replaces a session; use `arca session update %s`", o.arg,
			 o.arg);
		goto out;
	}
	if (cas_open(o.cas, &c) != 0)
		goto out;
	warn_not_owner(lp.pol, c.id.fpr);
	if (arca_msg_policy_encode((const char *)lp.text.p, lp.text.len, &body) < 0) {
		cli_fail("%s is too large to send", o.arg);
		goto out;
	}
	snprintf(path, sizeof path, "/v1/sessions");
	if (cas_call(&c, "POST", path, &body, lp.pol->name, &reply) != 0 || reply_hash(&c, reply, hex) != 0)
		goto out;
	arca_hex_encode(lp.hash, sizeof lp.hash, local_hex);
	if (strcmp(hex, local_hex) != 0)
		fprintf(stderr, "arca: warning: CAS computed hash %s, this arca %s; the two disagree on the "
				"policy's canonical form\n",
			hex, local_hex);
	printf("created %s hash %s\n", lp.pol->name, hex);
	rc = 0;
out:
	json_decref(reply);
	cas_close(&c);
	arca_buf_free(&body);
	local_policy_free(&lp);
	return rc;
}

/* Appends "predecessor: HEX" as a last top-level line, so that line numbers
 * of the user's file stay valid in any diagnostic, and proves by parsing
 * that the result is the user's policy with that predecessor. */
static int add_predecessor(const char *file, const struct local_policy *lp, const char *old_hex,
			   struct arca_buf *out)
{
	struct arca_policy *pol = NULL;
	struct arca_diags ds;
	uint8_t want[32];
	size_t n = 0;
	int ok;

	if (arca_buf_append(out, lp->text.p, lp->text.len) < 0 ||
	    (lp->text.len > 0 && lp->text.p[lp->text.len - 1] != '\n' && arca_buf_appends(out, "\n") < 0) ||
	    arca_buf_appendf(out, "predecessor: %s\n", old_hex) < 0)
		return cli_fail("%s is too large to send", file);
	if (arca_hex_decode(old_hex, strlen(old_hex), want, sizeof want, &n) < 0 || n != sizeof want)
		return cli_fail("bad session hash %s", old_hex);
	arca_diags_init(&ds, file);
	ok = arca_policy_parse((const char *)out->p, out->len, &ds, &pol) == 0 && ds.n == 0 &&
	     pol != NULL && pol->has_predecessor && memcmp(pol->predecessor, want, sizeof want) == 0 &&
	     strcmp(pol->name, lp->pol->name) == 0;
	arca_policy_free(pol);
	if (!ok)
		return cli_fail("cannot add the predecessor to %s automatically (is its top level a block "
				"mapping?); add the line `predecessor: %s` to it yourself",
				file, old_hex);
	return 0;
}

static int session_update(int argc, char **argv)
{
	struct local_policy lp;
	struct arca_buf text, body;
	struct cas c;
	struct opts o;
	char path[ARCA_NAME_MAX + 32], hex[HASH_HEX_LEN + 1], old_hex[HASH_HEX_LEN + 1];
	json_t *reply = NULL;
	int rc;

	if ((rc = parse_opts(argc, argv, 0, "arca session update [--cas ADDR] FILE", &o)) != 0)
		return rc < 0 ? 0 : rc;
	memset(&c, 0, sizeof c);
	arca_buf_init(&text, ARCA_POLICY_MAX_BYTES + 128, 1);
	arca_buf_init(&body, ARCA_MAX_BODY, 1);
	rc = load_policy(o.arg, &lp);
	if (rc != 0)
		goto out;
	rc = 1;
	if (session_path(lp.pol->name, path, sizeof path) != 0 || cas_open(o.cas, &c) != 0)
		goto out;
	warn_not_owner(lp.pol, c.id.fpr);
	if (lp.pol->has_predecessor) {
		arca_hex_encode(lp.pol->predecessor, sizeof lp.pol->predecessor, old_hex);
		if (arca_buf_append(&text, lp.text.p, lp.text.len) < 0) {
			cli_fail("%s is too large to send", o.arg);
			goto out;
		}
	} else {
		/* The user's file is left as it is; only the text sent names
		 * the session it replaces. */
		if (cas_call(&c, "GET", path, NULL, lp.pol->name, &reply) != 0 || reply_hash(&c, reply, old_hex) != 0)
			goto out;
		json_decref(reply);
		reply = NULL;
		if (add_predecessor(o.arg, &lp, old_hex, &text) != 0)
			goto out;
	}
	if (arca_msg_policy_encode((const char *)text.p, text.len, &body) < 0) {
		cli_fail("%s is too large to send", o.arg);
		goto out;
	}
	if (cas_call(&c, "PUT", path, &body, lp.pol->name, &reply) != 0 || reply_hash(&c, reply, hex) != 0)
		goto out;
	printf("updated %s hash %s (was %s)\n", lp.pol->name, hex, old_hex);
	rc = 0;
out:
	json_decref(reply);
	cas_close(&c);
	arca_buf_free(&body);
	arca_buf_free(&text);
	local_policy_free(&lp);
	return rc;
}

/* Replaces every secret "value" under "secrets" that is not already
 * redacted; returns how many it had to replace. */
static size_t redact_secrets(json_t *v)
{
	size_t n = 0, i;
	const char *key;
	json_t *child, *item;

	if (json_is_object(v)) {
		json_t *secrets = json_object_get(v, "secrets");
		if (json_is_array(secrets)) {
			json_array_foreach(secrets, i, item) {
				json_t *val = json_object_get(item, "value");
				if (val != NULL && !json_is_null(val) &&
				    !(json_is_string(val) && strcmp(json_string_value(val), REDACTED) == 0)) {
					json_object_set_new(item, "value", json_string(REDACTED));
					n++;
				}
			}
		}
		json_object_foreach(v, key, child) {
			if (strcmp(key, "secrets") != 0)
				n += redact_secrets(child);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) n += redact_secrets(item);
	}
	return n;
}

/* CAS lists each secret's name, kind and whether it made the value itself;
 * values are never part of it. */
static void print_secret_summary(json_t *secrets)
{
	size_t i;
	json_t *item;

	if (!json_is_array(secrets))
		return;
	json_array_foreach(secrets, i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));
		const char *kind = json_string_value(json_object_get(item, "kind"));
		json_t *gen = json_object_get(item, "generated");
		char pn[ARCA_NAME_MAX + 1], pk[32];

		if (name == NULL || kind == NULL)
			continue;
		printable(name, pn, sizeof pn);
		printable(kind, pk, sizeof pk);
		printf("secret %s %s, %s\n", pn, pk,
		       json_is_true(gen) ? "generated inside CAS" : "given by an owner (value not shown)");
	}
}

static int session_show(int argc, char **argv)
{
	struct cas c;
	struct opts o;
	char path[ARCA_NAME_MAX + 32], hex[HASH_HEX_LEN + 1];
	json_t *reply = NULL, *policy;
	char *text = NULL;
	int rc;

	if ((rc = parse_opts(argc, argv, 1, "arca session show [--cas ADDR] [--json] NAME", &o)) != 0)
		return rc < 0 ? 0 : rc;
	memset(&c, 0, sizeof c);
	rc = 1;
	if (session_path(o.arg, path, sizeof path) != 0 || cas_open(o.cas, &c) != 0)
		goto out;
	if (cas_call(&c, "GET", path, NULL, o.arg, &reply) != 0 || reply_hash(&c, reply, hex) != 0)
		goto out;
	if (redact_secrets(reply) > 0)
		fprintf(stderr, "arca: warning: CAS %s returned secret values; arca did not show them (report this "
				"CAS bug)\n",
			c.addr);
	policy = json_object_get(reply, "policy");
	if (o.json || policy == NULL) {
		text = json_dumps(reply, JSON_INDENT(2) | JSON_SORT_KEYS);
	} else {
		text = json_dumps(policy, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		printf("session %s\nhash %s\n", o.arg, hex);
		print_secret_summary(json_object_get(reply, "secrets"));
	}
	if (text == NULL) {
		cli_fail("cannot print the session");
		goto out;
	}
	printf("%s\n", text);
	rc = 0;
out:
	free(text);
	json_decref(reply);
	cas_close(&c);
	return rc;
}

int cmd_session(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(SESSION_USAGE);
	if (strcmp(argv[1], "check") == 0)
		return session_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "create") == 0)
		return session_create(argc - 1, argv + 1);
	if (strcmp(argv[1], "update") == 0)
		return session_update(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return session_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", SESSION_USAGE);
		return 0;
	}
	return cli_usage(SESSION_USAGE);
}
