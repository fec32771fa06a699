/* cas_test_helper.c: plays LAS and shield for tests/integration/test_cas_api.sh,
 * so that CAS's attestation path can be tested (and loaded) without a real
 * LAS or shield.
 *
 *   cas-test-helper las-key FILE          new LAS platform key (raw, 0600);
 *                                         prints its fingerprint
 *   cas-test-helper keypair               X25519 pair: "PRIV_B64 PUB_B64"
 *   cas-test-helper evidence --las-key FILE --measurement sha256:… --nonce B64
 *          --pub B64 --session S --service V [--bind-session S2] [--flags N]
 *          [--no-secret-memory]
 *                                         signed sim evidence, base64; with
 *                                         --bind-session the report data
 *                                         names S2 instead (binding test);
 *                                         flags default to 3 (PTRACE_PROTECTED
 *                                         and SECRET_MEMORY, as from a launch
 *                                         on a Yama host with memfd_secret);
 *                                         --no-secret-memory clears bit 1
 *   cas-test-helper open --priv B64 --pub B64 < reply.json
 *                                         opens {"config": …}; prints the
 *                                         config JSON
 *   cas-test-helper las-serve SOCKET KEYFILE N
 *                                         answers N LAS requests on SOCKET
 *                                         with evidence signed by KEYFILE
 *                                         (measurement all zero), then exits
 *   cas-test-helper audit-verify FILE     prints "ok N" or the error; exit 1
 *   cas-test-helper attest-once --cas HOST:PORT --pin FPR --las-key FILE
 *          --measurement M --session S --service V [--flags N]
 *                                         one attestation as the shield makes
 *                                         it, with evidence of flags N (default
 *                                         3); prints "granted" or "refused CODE"
 *   cas-test-helper attest-volumes --cas HOST:PORT --pin FPR --las-key FILE
 *          --measurement M --session S --service V --tokens FILE
 *                                         one attestation; prints "granted" and
 *                                         per volume of the configuration one
 *                                         line "volume NAME path=P mode=M
 *                                         readonly=0|1 tag=HEX|none
 *                                         key_sha256=HEX" (the key itself is
 *                                         never printed), and writes
 *                                         "NAME TOKEN_B64" lines to FILE (0600);
 *                                         or prints "refused CODE"
 *   cas-test-helper volume-tag --cas HOST:PORT --pin FPR --session S
 *          --volume V --tokens FILE --previous HEX|none --tag HEX
 *                                         POST /v1/volumes/S/V/tag through
 *                                         arca_cas_volume_tag with V's token
 *                                         from FILE (--token-b64 B64 instead
 *                                         sends that token); prints "stored",
 *                                         "rollback" (ARCA_ESTALE), "denied"
 *                                         (ARCA_EDENIED) or "error: …" (exit 1)
 *   cas-test-helper load --cas HOST:PORT --pin FPR --las-key FILE
 *          --measurement M --session S --service V --clients N --seconds T
 *          [--reconnect]                  attestations per second (one TLS
 *                                         connection per client, or per
 *                                         attestation with --reconnect)
 *
 * Exit status: 0 ok, 1 failed, 2 usage. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "arca/audit.h"
#include "arca/attest_client.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/http.h"
#include "arca/proto.h"

static int usage(void)
{
	fprintf(stderr, "cas-test-helper: see the comment at the top of cas_test_helper.c\n");
	return 2;
}

static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int flag(int argc, char **argv, const char *name)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

static int b64_fixed(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;

	if (!s || arca_b64_decode(s, strlen(s), out, n, &got) < 0 || got != n)
		return ARCA_EPARSE;
	return 0;
}

static int load_las_key(const char *path, uint8_t priv[32], uint8_t pub[32])
{
	struct arca_buf b;
	struct arca_errbuf e;
	int rc;

	arca_buf_init(&b, 64, 1);
	rc = arca_read_file(path, 64, &b, &e);
	if (rc == 0 && b.len != 32)
		rc = ARCA_EPARSE;
	if (rc == 0) {
		memcpy(priv, b.p, 32);
		rc = arca_ed25519_public(priv, pub);
	}
	arca_buf_free(&b);
	return rc;
}

static int cmd_las_key(const char *path)
{
	uint8_t pub[32], priv[32];
	char fpr[ARCA_FPR_LEN];
	struct arca_errbuf e;

	if (arca_ed25519_keygen(pub, priv) < 0 || arca_fpr_ed25519(pub, fpr) < 0 ||
	    arca_write_file_atomic(path, priv, 32, 0600, &e) < 0) {
		fprintf(stderr, "cas-test-helper: cannot make a LAS key\n");
		return 1;
	}
	arca_wipe(priv, sizeof priv);
	printf("%s\n", fpr);
	return 0;
}

static int cmd_keypair(void)
{
	uint8_t pub[32], priv[32];
	char a[ARCA_B64_LEN(32)], b[ARCA_B64_LEN(32)];

	if (arca_x25519_keygen(pub, priv) < 0)
		return 1;
	arca_b64_encode(priv, 32, a);
	arca_b64_encode(pub, 32, b);
	printf("%s %s\n", a, b);
	return 0;
}

static int make_evidence(const uint8_t las_priv[32], const uint8_t las_pub[32], const uint8_t meas[32],
			 const uint8_t nonce[32], const uint8_t pub[32], const char *session, const char *service,
			 uint32_t flags, uint8_t out[ARCA_SIM_EVIDENCE_LEN])
{
	struct arca_sim_evidence ev;

	memset(&ev, 0, sizeof ev);
	ev.flags = flags;
	ev.timestamp = (uint64_t)time(NULL);
	ev.pid = (uint32_t)getpid();
	ev.uid = (uint32_t)getuid();
	memcpy(ev.measurement, meas, 32);
	memcpy(ev.las_pub, las_pub, 32);
	GUARD(arca_report_data(nonce, pub, session, service, ev.report_data));
	return arca_sim_evidence_sign(&ev, las_priv, out);
}

static int cmd_evidence(int argc, char **argv)
{
	const char *key = opt(argc, argv, "--las-key"), *m = opt(argc, argv, "--measurement");
	const char *session = opt(argc, argv, "--session"), *service = opt(argc, argv, "--service");
	const char *bind = opt(argc, argv, "--bind-session"), *fl = opt(argc, argv, "--flags");
	uint32_t flags = fl ? (uint32_t)strtoul(fl, NULL, 0)
			    : ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY;
	if (flag(argc, argv, "--no-secret-memory"))
		flags &= ~ARCA_SIM_FLAG_SECRET_MEMORY;
	uint8_t priv[32], lpub[32], meas[32], nonce[32], pub[32], ev[ARCA_SIM_EVIDENCE_LEN];
	char out[ARCA_B64_LEN(ARCA_SIM_EVIDENCE_LEN)];

	if (!key || !m || !session || !service)
		return usage();
	if (load_las_key(key, priv, lpub) < 0 || arca_digest_parse(m, meas) < 0 ||
	    b64_fixed(opt(argc, argv, "--nonce"), nonce, 32) < 0 || b64_fixed(opt(argc, argv, "--pub"), pub, 32) < 0) {
		fprintf(stderr, "cas-test-helper: bad key, measurement, nonce or pub\n");
		return 1;
	}
	if (make_evidence(priv, lpub, meas, nonce, pub, bind ? bind : session, service, flags, ev) < 0) {
		fprintf(stderr, "cas-test-helper: cannot sign evidence\n");
		return 1;
	}
	arca_wipe(priv, sizeof priv);
	arca_b64_encode(ev, sizeof ev, out);
	printf("%s\n", out);
	return 0;
}

static int cmd_open(int argc, char **argv)
{
	uint8_t priv[32], pub[32];
	struct arca_buf in, box, plain;
	struct arca_errbuf e = {{0}};
	int rc = 1;

	if (b64_fixed(opt(argc, argv, "--priv"), priv, 32) < 0 || b64_fixed(opt(argc, argv, "--pub"), pub, 32) < 0)
		return usage();
	arca_buf_init(&in, 16 << 20, 0);
	arca_buf_init(&box, 16 << 20, 0);
	arca_buf_init(&plain, 16 << 20, 1);
	for (;;) {
		if (arca_buf_reserve(&in, 65536) < 0)
			goto out;
		ssize_t n = read(0, in.p + in.len, 65536);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		in.len += (size_t)n;
	}
	if (arca_msg_sealed_decode(in.p, in.len, &box, &e) < 0) {
		fprintf(stderr, "cas-test-helper: reply: %s\n", e.msg);
		goto out;
	}
	if (arca_box_open(priv, pub, "arca/v1/config", box.p, box.len, &plain) < 0) {
		fprintf(stderr, "cas-test-helper: the box does not open with this key\n");
		goto out;
	}
	fwrite(plain.p, 1, plain.len, stdout);
	printf("\n");
	rc = 0;
out:
	arca_wipe(priv, sizeof priv);
	arca_buf_free(&in);
	arca_buf_free(&box);
	arca_buf_free(&plain);
	return rc;
}

static int cmd_audit_verify(const char *path)
{
	struct arca_errbuf e = {{0}};
	size_t n = 0;

	if (arca_audit_verify_file(path, &n, &e) < 0) {
		printf("bad %zu %s\n", n, e.msg);
		return 1;
	}
	printf("ok %zu\n", n);
	return 0;
}

static int las_serve(const char *path, const char *keyfile, int n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t priv[32], pub[32], req[ARCA_LAS_REQ_LEN], resp[3 + ARCA_SIM_EVIDENCE_LEN];
	struct arca_sim_evidence ev;
	int fd, c;

	if (strlen(path) >= sizeof sa.sun_path || load_las_key(keyfile, priv, pub) < 0)
		return 1;
	memcpy(sa.sun_path, path, strlen(path));
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0)
		return 1;
	printf("listening\n");
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		size_t got = 0;
		c = accept(fd, NULL, NULL);
		if (c < 0)
			return 1;
		while (got < sizeof req) {
			ssize_t r = read(c, req + got, sizeof req - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got == sizeof req && memcmp(req, ARCA_LAS_REQ_MAGIC, 4) == 0) {
			memset(&ev, 0, sizeof ev);
			ev.timestamp = (uint64_t)time(NULL);
			ev.pid = 1;
			memcpy(ev.report_data, req + 4, 64);
			memcpy(ev.las_pub, pub, 32);
			resp[0] = 0;
			resp[1] = ARCA_SIM_EVIDENCE_LEN & 0xff;
			resp[2] = ARCA_SIM_EVIDENCE_LEN >> 8;
			if (arca_sim_evidence_sign(&ev, priv, resp + 3) == 0)
				(void)!write(c, resp, sizeof resp);
		}
		close(c);
	}
	close(fd);
	unlink(path);
	arca_wipe(priv, sizeof priv);
	return 0;
}

/* ---- load ---- */

struct loader {
	pthread_t th;
	const char *cas, *pin, *session, *service;
	const uint8_t *las_priv, *las_pub, *meas;
	int reconnect;
	uint32_t flags; /* of the evidence signed */
	double deadline;
	unsigned long ok, fail;
	double *lat;
	size_t nlat, caplat;
	char err[600];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Evidence signed with the test's own LAS key, for the report data the
 * exchange asks for. */
static int signed_evidence(void *ctx, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
			   struct arca_errbuf *e)
{
	const struct loader *l = ctx;
	struct arca_sim_evidence s;

	memset(&s, 0, sizeof s);
	s.flags = l->flags;
	s.timestamp = (uint64_t)time(NULL);
	s.pid = (uint32_t)getpid();
	s.uid = (uint32_t)getuid();
	memcpy(s.measurement, l->meas, 32);
	memcpy(s.las_pub, l->las_pub, 32);
	memcpy(s.report_data, report_data, 64);
	*ev = malloc(ARCA_SIM_EVIDENCE_LEN);
	if (*ev == NULL)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	*evlen = ARCA_SIM_EVIDENCE_LEN;
	return arca_sim_evidence_sign(&s, l->las_priv, *ev);
}

/* One attestation through the shield's own exchange (lib/attest_client.c). */
static int attest_once(struct loader *l, struct arca_http *h, struct arca_errbuf *e)
{
	struct arca_config *cfg = NULL;
	struct arca_attest_outcome o;
	int rc = arca_attest_exchange(h, l->cas, l->session, l->service, signed_evidence, l, &cfg, &o, e);
	arca_config_free(cfg);
	return rc;
}

static void *load_thread(void *arg)
{
	struct loader *l = arg;
	struct arca_http *h = NULL;
	struct arca_errbuf e = {{0}};

	while (now() < l->deadline) {
		double t0 = now();
		if (!h && arca_http_connect(l->cas, l->pin, NULL, &h, &e) < 0) {
			l->fail++;
			snprintf(l->err, sizeof l->err, "%s", e.msg);
			h = NULL;
			continue;
		}
		if (attest_once(l, h, &e) < 0) {
			l->fail++;
			snprintf(l->err, sizeof l->err, "%s", e.msg);
			arca_http_close(h);
			h = NULL;
			continue;
		}
		if (l->reconnect) {
			arca_http_close(h);
			h = NULL;
		}
		l->ok++;
		if (l->nlat == l->caplat) {
			size_t cap = l->caplat ? 2 * l->caplat : 4096;
			double *nl = realloc(l->lat, cap * sizeof *nl);
			if (!nl)
				continue;
			l->lat = nl;
			l->caplat = cap;
		}
		l->lat[l->nlat++] = now() - t0;
	}
	if (h)
		arca_http_close(h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmd_load(int argc, char **argv)
{
	const char *key = opt(argc, argv, "--las-key"), *m = opt(argc, argv, "--measurement");
	const char *nc = opt(argc, argv, "--clients"), *ns = opt(argc, argv, "--seconds");
	uint8_t priv[32], lpub[32], meas[32];
	struct loader *ls;
	int clients, secs;
	unsigned long ok = 0, fail = 0;
	size_t nlat = 0;
	double *all, t0, el;
	const char *err = "";

	if (!key || !m || !nc || !ns || !opt(argc, argv, "--cas") || !opt(argc, argv, "--pin") ||
	    !opt(argc, argv, "--session") || !opt(argc, argv, "--service"))
		return usage();
	clients = (int)strtol(nc, NULL, 10);
	secs = (int)strtol(ns, NULL, 10);
	if (clients < 1 || clients > 512 || secs < 1 || secs > 600)
		return usage();
	if (load_las_key(key, priv, lpub) < 0 || arca_digest_parse(m, meas) < 0)
		return 1;
	ls = calloc((size_t)clients, sizeof *ls);
	if (!ls)
		return 1;
	t0 = now();
	for (int i = 0; i < clients; i++) {
		ls[i].cas = opt(argc, argv, "--cas");
		ls[i].pin = opt(argc, argv, "--pin");
		ls[i].session = opt(argc, argv, "--session");
		ls[i].service = opt(argc, argv, "--service");
		ls[i].las_priv = priv;
		ls[i].las_pub = lpub;
		ls[i].meas = meas;
		ls[i].reconnect = flag(argc, argv, "--reconnect");
		ls[i].flags = ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY;
		ls[i].deadline = t0 + secs;
		pthread_create(&ls[i].th, NULL, load_thread, &ls[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(ls[i].th, NULL);
		ok += ls[i].ok;
		fail += ls[i].fail;
		nlat += ls[i].nlat;
		if (ls[i].err[0])
			err = ls[i].err;
	}
	el = now() - t0;
	all = calloc(nlat ? nlat : 1, sizeof *all);
	nlat = 0;
	for (int i = 0; i < clients; i++) {
		if (all)
			memcpy(all + nlat, ls[i].lat, ls[i].nlat * sizeof *all);
		nlat += ls[i].nlat;
		free(ls[i].lat);
	}
	if (all && nlat)
		qsort(all, nlat, sizeof *all, cmp_double);
	printf("clients=%d reconnect=%d attestations=%lu failed=%lu seconds=%.1f rate=%.0f/s p50=%.2fms p99=%.2fms\n",
	       clients, flag(argc, argv, "--reconnect"), ok, fail, el, (double)ok / el,
	       all && nlat ? all[nlat / 2] * 1e3 : 0.0, all && nlat ? all[nlat * 99 / 100] * 1e3 : 0.0);
	if (fail)
		fprintf(stderr, "cas-test-helper: last failure: %s\n", err);
	arca_wipe(priv, sizeof priv);
	free(all);
	free(ls);
	return fail && !ok ? 1 : 0;
}

static int cmd_attest_once(int argc, char **argv)
{
	const char *key = opt(argc, argv, "--las-key"), *m = opt(argc, argv, "--measurement");
	const char *fl = opt(argc, argv, "--flags");
	uint8_t priv[32], lpub[32], meas[32];
	struct arca_errbuf e = {{0}};
	struct arca_http *h = NULL;
	struct arca_config *cfg = NULL;
	struct arca_attest_outcome o;
	struct loader l;

	memset(&l, 0, sizeof l);
	l.cas = opt(argc, argv, "--cas");
	l.pin = opt(argc, argv, "--pin");
	l.session = opt(argc, argv, "--session");
	l.service = opt(argc, argv, "--service");
	if (!key || !m || !l.cas || !l.pin || !l.session || !l.service)
		return usage();
	l.flags = fl ? (uint32_t)strtoul(fl, NULL, 0) : ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY;
	if (load_las_key(key, priv, lpub) < 0 || arca_digest_parse(m, meas) < 0)
		return 1;
	l.las_priv = priv;
	l.las_pub = lpub;
	l.meas = meas;
	if (arca_http_connect(l.cas, l.pin, NULL, &h, &e) < 0) {
		fprintf(stderr, "cas-test-helper: %s\n", e.msg);
		return 1;
	}
	memset(&o, 0, sizeof o);
	int rc = arca_attest_exchange(h, l.cas, l.session, l.service, signed_evidence, &l, &cfg, &o, &e);
	arca_http_close(h);
	arca_config_free(cfg);
	arca_wipe(priv, sizeof priv);
	if (rc == 0) {
		printf("granted\n");
		return 0;
	}
	if (o.code[0]) {
		printf("refused %s\n", o.code);
		return 0;
	}
	fprintf(stderr, "cas-test-helper: %s\n", e.msg);
	return 1;
}

/* ---- volumes ---- */

static int cmd_attest_volumes(int argc, char **argv)
{
	const char *key = opt(argc, argv, "--las-key"), *m = opt(argc, argv, "--measurement");
	const char *tokens = opt(argc, argv, "--tokens");
	uint8_t priv[32], lpub[32], meas[32], digest[32];
	char hex[65], tag[65], b64[ARCA_B64_LEN(32)];
	struct arca_errbuf e = {{0}};
	struct arca_http *h = NULL;
	struct arca_config *cfg = NULL;
	struct arca_attest_outcome o;
	struct arca_buf out;
	struct loader l;
	int rc;

	memset(&l, 0, sizeof l);
	l.cas = opt(argc, argv, "--cas");
	l.pin = opt(argc, argv, "--pin");
	l.session = opt(argc, argv, "--session");
	l.service = opt(argc, argv, "--service");
	if (!key || !m || !tokens || !l.cas || !l.pin || !l.session || !l.service)
		return usage();
	l.flags = ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY;
	if (load_las_key(key, priv, lpub) < 0 || arca_digest_parse(m, meas) < 0)
		return 1;
	l.las_priv = priv;
	l.las_pub = lpub;
	l.meas = meas;
	if (arca_http_connect(l.cas, l.pin, NULL, &h, &e) < 0) {
		fprintf(stderr, "cas-test-helper: %s\n", e.msg);
		return 1;
	}
	memset(&o, 0, sizeof o);
	rc = arca_attest_exchange(h, l.cas, l.session, l.service, signed_evidence, &l, &cfg, &o, &e);
	arca_http_close(h);
	arca_wipe(priv, sizeof priv);
	if (rc < 0) {
		if (o.code[0]) {
			printf("refused %s\n", o.code);
			return 0;
		}
		fprintf(stderr, "cas-test-helper: %s\n", e.msg);
		return 1;
	}
	printf("granted\n");
	arca_buf_init(&out, 64 << 10, 1);
	rc = 0;
	for (size_t i = 0; i < cfg->nvolumes && rc == 0; i++) {
		const struct arca_config_volume *v = &cfg->volumes[i];
		if (arca_sha256(v->key, sizeof v->key, digest) < 0) {
			rc = 1;
			break;
		}
		arca_hex_encode(digest, 32, hex);
		arca_hex_encode(v->tag, 32, tag);
		printf("volume %s path=%s mode=%s readonly=%d tag=%s key_sha256=%s\n", v->name, v->path,
		       v->mode == 2 ? "authenticated" : "encrypted", v->readonly, v->has_tag ? tag : "none", hex);
		arca_b64_encode(v->token, sizeof v->token, b64);
		if (arca_buf_appendf(&out, "%s %s\n", v->name, b64) < 0)
			rc = 1;
	}
	arca_wipe(b64, sizeof b64);
	if (rc == 0 && arca_write_file_atomic(tokens, out.p, out.len, 0600, &e) < 0) {
		fprintf(stderr, "cas-test-helper: %s\n", e.msg);
		rc = 1;
	}
	arca_buf_free(&out);
	arca_config_free(cfg);
	return rc;
}

static int hex32(const char *s, uint8_t out[32])
{
	size_t got = 0;

	if (strlen(s) != 64 || arca_hex_decode(s, 64, out, 32, &got) < 0 || got != 32)
		return ARCA_EPARSE;
	return 0;
}

/* V's token from a file of "NAME TOKEN_B64" lines. */
static int token_from_file(const char *path, const char *volume, uint8_t token[32])
{
	struct arca_buf b;
	struct arca_errbuf e;
	size_t vl = strlen(volume);
	int rc = ARCA_ENOTFOUND;

	arca_buf_init(&b, 1 << 20, 1);
	if (arca_read_file(path, 1 << 20, &b, &e) == 0) {
		const char *p = (const char *)b.p, *end = p + b.len;
		while (p < end && rc == ARCA_ENOTFOUND) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
			size_t got = 0;
			if (ll > vl + 1 && memcmp(p, volume, vl) == 0 && p[vl] == ' ')
				rc = arca_b64_decode(p + vl + 1, ll - vl - 1, token, 32, &got) == 0 && got == 32
					     ? 0
					     : ARCA_EPARSE;
			p += ll + 1;
		}
	}
	arca_buf_free(&b);
	return rc;
}

static int cmd_volume_tag(int argc, char **argv)
{
	const char *cas = opt(argc, argv, "--cas"), *pin = opt(argc, argv, "--pin");
	const char *session = opt(argc, argv, "--session"), *volume = opt(argc, argv, "--volume");
	const char *tokens = opt(argc, argv, "--tokens"), *tb64 = opt(argc, argv, "--token-b64");
	const char *prev = opt(argc, argv, "--previous"), *tag = opt(argc, argv, "--tag");
	struct arca_msg_voltag m;
	struct arca_errbuf e = {{0}};
	struct arca_http *h = NULL;
	int rc;

	if (!cas || !pin || !session || !volume || (!tokens && !tb64) || !prev || !tag)
		return usage();
	memset(&m, 0, sizeof m);
	if (tb64 ? b64_fixed(tb64, m.token, 32) < 0 : token_from_file(tokens, volume, m.token) < 0) {
		fprintf(stderr, "cas-test-helper: no token for volume %s\n", volume);
		return 1;
	}
	m.has_previous = strcmp(prev, "none") != 0;
	if ((m.has_previous && hex32(prev, m.previous) < 0) || hex32(tag, m.tag) < 0) {
		fprintf(stderr, "cas-test-helper: --previous and --tag take 64 hex digits (or none)\n");
		return 2;
	}
	if (arca_http_connect(cas, pin, NULL, &h, &e) < 0) {
		fprintf(stderr, "cas-test-helper: %s\n", e.msg);
		return 1;
	}
	rc = arca_cas_volume_tag(h, session, volume, &m, &e);
	arca_http_close(h);
	arca_wipe(&m, sizeof m);
	if (rc == 0)
		printf("stored\n");
	else if (rc == ARCA_ESTALE)
		printf("rollback\n");
	else if (rc == ARCA_EDENIED)
		printf("denied\n");
	else
		printf("error: %s\n", e.msg);
	if (rc != 0)
		fprintf(stderr, "cas-test-helper: %s\n", e.msg);
	return rc == 0 || rc == ARCA_ESTALE || rc == ARCA_EDENIED ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "las-key") == 0 && argc == 3)
		return cmd_las_key(argv[2]);
	if (strcmp(argv[1], "keypair") == 0)
		return cmd_keypair();
	if (strcmp(argv[1], "evidence") == 0)
		return cmd_evidence(argc - 2, argv + 2);
	if (strcmp(argv[1], "open") == 0)
		return cmd_open(argc - 2, argv + 2);
	if (strcmp(argv[1], "las-serve") == 0 && argc == 5)
		return las_serve(argv[2], argv[3], (int)strtol(argv[4], NULL, 10));
	if (strcmp(argv[1], "audit-verify") == 0 && argc == 3)
		return cmd_audit_verify(argv[2]);
	if (strcmp(argv[1], "load") == 0)
		return cmd_load(argc - 2, argv + 2);
	if (strcmp(argv[1], "attest-once") == 0)
		return cmd_attest_once(argc - 2, argv + 2);
	if (strcmp(argv[1], "attest-volumes") == 0)
		return cmd_attest_volumes(argc - 2, argv + 2);
	if (strcmp(argv[1], "volume-tag") == 0)
		return cmd_volume_tag(argc - 2, argv + 2);
	return usage();
}
