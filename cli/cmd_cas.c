/* cmd_cas.c: `arca cas attest|trust-las|audit-verify`, the operator's and
 * owner's dealings with a CAS itself rather than with its sessions.
 *
 * `attest` is the one place where arca talks to a CAS whose key it does not
 * know yet: everything it learns there is checked against what the TLS
 * connection itself showed before a pin is written, because every later
 * command trusts that pin and nothing else. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"
#include "arca/audit.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/http.h"
#include "arca/proto.h"

#define CAS_USAGE                                                                  \
	"arca cas attest [--force] [ADDR]\n"                                       \
	"       arca cas trust-las [--state DIR] FINGERPRINT|FILE\n"               \
	"       arca cas audit-verify FILE"
#define DEFAULT_CAS_STATE "/var/lib/arca/cas"
#define LAS_TRUST_FILE "las-trust"
#define LAS_TRUST_MAX ((size_t)1 << 20)
#define REPLY_MAX ((size_t)256 << 10)
#define CAS_BINDING_LABEL "arca-cas"

/* Text that came over the network or from a file goes to the terminal
 * without control characters, so a hostile CAS cannot forge output lines
 * or send escape sequences. */
static void printable(const char *s, char *out, size_t cap)
{
	size_t j = 0;

	for (size_t i = 0; s[i] != '\0' && j + 1 < cap; i++)
		out[j++] = ((unsigned char)s[i] < ' ' || s[i] == 0x7f) ? ' ' : s[i];
	out[j] = '\0';
}

static int cas_error(const char *addr, int status, const struct arca_buf *resp)
{
	char code[64], detail[256], pcode[64], pdetail[256];

	if (resp->len == 0 || arca_msg_error_decode(resp->p, resp->len, code, detail) < 0)
		return cli_fail("CAS at %s answered HTTP %d without an error code; check that arca and arca-cas "
				"are the same version",
				addr, status);
	printable(code, pcode, sizeof pcode);
	printable(detail, pdetail, sizeof pdetail);
	return cli_fail("CAS refused: %s (%s)", pdetail, pcode);
}

/* The SHA-256 inside a fingerprint, which is the hash of the key's DER
 * SubjectPublicKeyInfo. Either base64 alphabet is accepted so that this
 * does not depend on which one arca_fpr_* settles on. */
static int fpr_digest(const char *fpr, uint8_t out[32])
{
	char b64[48];
	size_t n = 0;

	ENSURE(arca_fpr_valid(fpr) && strlen(fpr) == ARCA_FPR_LEN - 1, ARCA_EINVAL);
	memcpy(b64, fpr + 7, 43);
	b64[43] = '=';
	b64[44] = '\0';
	if (arca_b64_decode(b64, 44, out, 32, &n) == 0 && n == 32)
		return 0;
	if (arca_b64url_decode(fpr + 7, 43, out, 32, &n) == 0 && n == 32)
		return 0;
	return ARCA_EPARSE;
}

/* report data CAS must bind into its own evidence:
 * SHA-512(nonce || SHA-256(DER SPKI of the CAS key) || "arca-cas"). */
static int cas_report_data(const uint8_t nonce[ARCA_NONCE_LEN], const char *cas_fpr, uint8_t out[64])
{
	uint8_t in[ARCA_NONCE_LEN + 32 + sizeof CAS_BINDING_LABEL - 1];

	memcpy(in, nonce, ARCA_NONCE_LEN);
	GUARD(fpr_digest(cas_fpr, in + ARCA_NONCE_LEN));
	memcpy(in + ARCA_NONCE_LEN + 32, CAS_BINDING_LABEL, sizeof CAS_BINDING_LABEL - 1);
	return arca_sha512(in, sizeof in, out);
}

static int json_str(json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		*out = NULL;
		return 0;
	}
	ENSURE(json_is_string(v), ARCA_EPARSE);
	*out = json_string_value(v);
	return 0;
}

/* Checks sim evidence from CAS: signature, and that it binds our nonce and
 * the very key the TLS connection presented. Prints what an operator needs
 * to compare. */
static int check_sim_evidence(const char *addr, const char *b64, const uint8_t nonce[ARCA_NONCE_LEN],
			      const char *server_fpr)
{
	uint8_t *ev = NULL, want[64];
	size_t evlen = 0, cap = strlen(b64);
	struct arca_sim_evidence sim;
	struct arca_errbuf e = {{0}};
	char las_fpr[ARCA_FPR_LEN], meas[ARCA_DIGEST_STR_LEN];
	int rc = 1;

	if (cap == 0 || cap > ARCA_B64_LEN(ARCA_MAX_EVIDENCE))
		return cli_fail("CAS at %s sent evidence of an impossible size; nothing was pinned", addr);
	ev = malloc(cap);
	if (ev == NULL)
		return cli_fail("out of memory");
	if (arca_b64_decode(b64, cap, ev, cap, &evlen) < 0) {
		cli_fail("CAS at %s sent evidence that is not base64; nothing was pinned", addr);
		goto out;
	}
	if (arca_sim_evidence_verify(ev, evlen, &sim, &e) < 0) {
		cli_fail("CAS at %s sent evidence that does not verify (%s); nothing was pinned", addr, e.msg);
		goto out;
	}
	if (cas_report_data(nonce, server_fpr, want) < 0) {
		cli_fail("cannot compute the binding for key %s", server_fpr);
		goto out;
	}
	if (!arca_ct_eq(want, sim.report_data, sizeof want)) {
		cli_fail("the evidence of CAS at %s does not bind this nonce and the key %s that the connection "
			 "presented (replayed or relayed evidence?); nothing was pinned",
			 addr, server_fpr);
		goto out;
	}
	if (arca_fpr_ed25519(sim.las_pub, las_fpr) < 0) {
		cli_fail("cannot take the fingerprint of the LAS key in the evidence");
		goto out;
	}
	arca_digest_format(sim.measurement, meas);
	printf("evidence: platform sim, signed by LAS %s\n", las_fpr);
	printf("CAS measurement %s\n", meas);
	printf("compare %s with the fingerprint arca-las printed on the CAS host;\n", las_fpr);
	printf("sim mode trusts that host's kernel and root: it does not protect against a malicious kernel\n");
	rc = 0;
out:
	free(ev);
	return rc;
}

static int cas_attest(int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"cas", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *usage = "arca cas attest [--force] [ADDR]";
	const char *cas_flag = NULL, *addr, *platform = NULL, *fpr = NULL, *evidence = NULL;
	char host[256], port[16], server_fpr[ARCA_FPR_LEN], old[ARCA_FPR_LEN], path[128];
	char nonce_hex[ARCA_HEX_LEN(ARCA_NONCE_LEN)], pplat[32];
	uint8_t nonce[ARCA_NONCE_LEN];
	struct arca_errbuf e = {{0}};
	struct arca_http *h = NULL;
	struct arca_buf resp;
	json_t *reply = NULL;
	int force = 0, c, status = 0, rc = 1, prc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'c':
			cas_flag = optarg;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return 0;
		default:
			return cli_usage(usage);
		}
	}
	if (argc - optind > 1)
		return cli_usage(usage);
	addr = argc - optind == 1 ? argv[optind] : cli_cas_addr(cas_flag);
	if (arca_hostport_split(addr, host, sizeof host, port, sizeof port) < 0)
		return cli_fail("%s is not a CAS address; give it as HOST:PORT", addr);

	arca_buf_init(&resp, REPLY_MAX, 0);
	/* No pin: this connection is how the key is learnt. Nothing from it
	 * is trusted until the checks below pass. */
	if (arca_http_connect(addr, NULL, NULL, &h, &e) < 0)
		return cli_fail("cannot reach CAS at %s: %s", addr, e.msg);
	snprintf(server_fpr, sizeof server_fpr, "%s", arca_http_server_fpr(h));
	if (!arca_fpr_valid(server_fpr)) {
		cli_fail("could not take the fingerprint of the key CAS at %s presented", addr);
		goto out;
	}
	if (arca_random(nonce, sizeof nonce) < 0) {
		cli_fail("no randomness for a nonce");
		goto out;
	}
	arca_hex_encode(nonce, sizeof nonce, nonce_hex);
	snprintf(path, sizeof path, "/v1/cas/evidence?nonce=%s", nonce_hex);
	if (arca_http_request(h, "GET", path, NULL, 0, &status, &resp, &e) < 0) {
		cli_fail("CAS at %s did not answer: %s", addr, e.msg);
		goto out;
	}
	if (status != 200) {
		cas_error(addr, status, &resp);
		goto out;
	}
	reply = json_loadb((const char *)resp.p, resp.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(reply) || json_str(reply, "platform", &platform) < 0 ||
	    json_str(reply, "fingerprint", &fpr) < 0 || json_str(reply, "evidence", &evidence) < 0 ||
	    platform == NULL || fpr == NULL) {
		cli_fail("CAS at %s sent a reply arca cannot read (want platform and fingerprint); nothing was "
			 "pinned",
			 addr);
		goto out;
	}
	if (strcmp(fpr, server_fpr) != 0) {
		char pf[ARCA_FPR_LEN + 8];
		printable(fpr, pf, sizeof pf);
		cli_fail("CAS at %s says its key is %s but the connection presented %s; the connection may be "
			 "intercepted. Nothing was pinned",
			 addr, pf, server_fpr);
		goto out;
	}
	printf("CAS %s key %s\n", addr, server_fpr);
	if (strcmp(platform, "sim") == 0) {
		if (evidence == NULL) {
			cli_fail("CAS at %s claims platform sim but sent no evidence; nothing was pinned", addr);
			goto out;
		}
		if (check_sim_evidence(addr, evidence, nonce, server_fpr) != 0)
			goto out;
	} else if (strcmp(platform, "none") == 0) {
		if (evidence != NULL) {
			cli_fail("CAS at %s sent evidence with platform none; nothing was pinned", addr);
			goto out;
		}
		printf("CAS presented NO evidence (platform none): this pin is trust on first use.\n");
		printf("compare %s with the fingerprint arca-cas printed at start before you rely on it\n",
		       server_fpr);
	} else {
		printable(platform, pplat, sizeof pplat);
		cli_fail("CAS at %s presents evidence of platform \"%s\", which this version of arca cannot verify; "
			 "nothing was pinned",
			 addr, pplat);
		goto out;
	}

	prc = cli_pin_get(addr, old);
	if (prc < 0 && prc != ARCA_ENOTFOUND)
		goto out;
	if (prc == 0 && strcmp(old, server_fpr) == 0) {
		printf("pinned %s %s (unchanged)\n", addr, server_fpr);
		rc = 0;
		goto out;
	}
	if (prc == 0 && !force) {
		cli_fail("a different key %s is pinned for %s; CAS now presents %s. If the CAS key was replaced on "
			 "purpose, run `arca cas attest --force %s`; otherwise someone may be impersonating it. "
			 "The pin was not changed",
			 old, addr, server_fpr, addr);
		goto out;
	}
	if (cli_pin_set(addr, server_fpr) < 0)
		goto out;
	if (prc == 0)
		printf("replaced the pin %s for %s (--force)\n", old, addr);
	printf("pinned %s %s\n", addr, server_fpr);
	rc = 0;
out:
	json_decref(reply);
	arca_buf_free(&resp);
	arca_http_close(h);
	return rc;
}

/* ---- trust-las ------------------------------------------------------------ */

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Checks every line of an existing las-trust file the way CAS will read it,
 * and says whether fpr is already there. */
static int las_trust_scan(const char *path, const struct arca_buf *text, const char *fpr, int *present)
{
	size_t off = 0, lineno = 0, flen = strlen(fpr);

	*present = 0;
	while (off < text->len) {
		const char *p = (const char *)text->p + off;
		const char *nl = memchr(p, '\n', text->len - off);
		size_t len = nl != NULL ? (size_t)(nl - p) : text->len - off, i = 0, tok;

		lineno++;
		off += len + (nl != NULL ? 1 : 0);
		while (i < len && is_space(p[i]))
			i++;
		if (i == len || p[i] == '#')
			continue;
		tok = i;
		while (i < len && !is_space(p[i]) && p[i] != '#')
			i++;
		{
			char f[ARCA_FPR_LEN];
			size_t n = i - tok;
			if (n != ARCA_FPR_LEN - 1)
				goto bad;
			memcpy(f, p + tok, n);
			f[n] = '\0';
			if (!arca_fpr_valid(f))
				goto bad;
			if (n == flen && memcmp(f, fpr, n) == 0)
				*present = 1;
		}
		while (i < len && is_space(p[i]))
			i++;
		if (i == len || p[i] == '#')
			continue;
	bad:
		return cli_fail("%s:%zu: not a fingerprint line (SHA256:… and an optional # comment); fix it "
				"first, CAS would not accept this file either",
				path, lineno);
	}
	return 0;
}

/* A PEM public key (such as arca-las's platform.pub) → its fingerprint. */
static int pubkey_file_fpr(const char *file, char fpr[ARCA_FPR_LEN])
{
	struct arca_buf pem;
	struct arca_errbuf e = {{0}};
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int rc = 1;

	arca_buf_init(&pem, 64 << 10, 0);
	if (arca_read_file(file, 64 << 10, &pem, &e) < 0) {
		cli_fail("%s is not a fingerprint (SHA256:…) and cannot be read as a file: %s", file, e.msg);
		goto out;
	}
	bio = BIO_new_mem_buf(pem.p, (int)pem.len);
	if (bio != NULL)
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (pk == NULL) {
		cli_fail("%s holds no PEM public key; give arca-las's platform.pub or its fingerprint", file);
		goto out;
	}
	if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		cli_fail("%s is not an Ed25519 key; LAS platform keys are Ed25519 (platform.pub)", file);
		goto out;
	}
	if (arca_fpr_pkey(pk, fpr) < 0) {
		cli_fail("cannot take the fingerprint of the key in %s", file);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pk);
	BIO_free(bio);
	arca_buf_free(&pem);
	return rc;
}

static int cas_trust_las(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *usage = "arca cas trust-las [--state DIR] FINGERPRINT|FILE";
	const char *dir = NULL, *arg;
	char fpr[ARCA_FPR_LEN], path[PATH_MAX];
	struct arca_errbuf e = {{0}};
	struct arca_buf text;
	struct stat st;
	unsigned mode = 0644;
	int c, present = 0, rc = 1;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return 0;
		default:
			return cli_usage(usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage(usage);
	arg = argv[optind];
	if (dir == NULL || dir[0] == '\0')
		dir = getenv("ARCA_CAS_STATE");
	if (dir == NULL || dir[0] == '\0')
		dir = DEFAULT_CAS_STATE;

	if (strncmp(arg, "SHA256:", 7) == 0) {
		if (!arca_fpr_valid(arg))
			return cli_fail("%s is not a valid fingerprint (SHA256: and 43 base64 characters)", arg);
		snprintf(fpr, sizeof fpr, "%s", arg);
	} else if (pubkey_file_fpr(arg, fpr) != 0) {
		return 1;
	}

	if (snprintf(path, sizeof path, "%s/%s", dir, LAS_TRUST_FILE) >= (int)sizeof path)
		return cli_fail("the state directory path %s is too long", dir);
	if (arca_mkdirs(dir, 0700, &e) < 0)
		return cli_fail("cannot create the CAS state directory %s: %s", dir, e.msg);
	arca_buf_init(&text, LAS_TRUST_MAX, 0);
	if (stat(path, &st) == 0) {
		/* Keep the mode the operator gave the file. */
		mode = st.st_mode & 07777;
		if (arca_read_file(path, LAS_TRUST_MAX, &text, &e) < 0) {
			cli_fail("cannot read %s: %s", path, e.msg);
			goto out;
		}
	} else if (errno != ENOENT) {
		cli_fail("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (las_trust_scan(path, &text, fpr, &present) != 0)
		goto out;
	if (present) {
		printf("trusted %s (already in %s)\n", fpr, path);
		rc = 0;
		goto out;
	}
	if ((text.len > 0 && text.p[text.len - 1] != '\n' && arca_buf_appends(&text, "\n") < 0) ||
	    arca_buf_appendf(&text, "%s\n", fpr) < 0) {
		cli_fail("%s would grow too large", path);
		goto out;
	}
	/* Atomic: CAS rereads the file when it changes and must never see
	 * half a line. */
	if (arca_write_file_atomic(path, text.p, text.len, mode, &e) < 0) {
		cli_fail("cannot write %s: %s", path, e.msg);
		goto out;
	}
	printf("trusted %s (%s)\n", fpr, path);
	rc = 0;
out:
	arca_buf_free(&text);
	return rc;
}

/* ---- audit-verify --------------------------------------------------------- */

static int cas_audit_verify(int argc, char **argv)
{
	const char *usage = "arca cas audit-verify FILE";
	struct arca_errbuf e = {{0}};
	size_t n = 0;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: %s\n", usage);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage(usage);
	if (arca_audit_verify_file(argv[1], &n, &e) < 0)
		return cli_fail("audit log does not verify: %s (intact records before it: %zu)",
				e.msg[0] ? e.msg : argv[1], n);
	printf("audit log %s: %zu records, chain intact\n", argv[1], n);
	return 0;
}

int cmd_cas(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(CAS_USAGE);
	if (strcmp(argv[1], "attest") == 0)
		return cas_attest(argc - 1, argv + 1);
	if (strcmp(argv[1], "trust-las") == 0)
		return cas_trust_las(argc - 1, argv + 1);
	if (strcmp(argv[1], "audit-verify") == 0)
		return cas_audit_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		printf("usage: %s\n", CAS_USAGE);
		return 0;
	}
	return cli_usage(CAS_USAGE);
}
