/* evidence_bench.c: how many pieces of real hardware evidence (an SEV-SNP
 * report, a TDX v4 quote, an SGX v3 quote) one core verifies per second,
 * with the certificate chain checked every time and with a cached,
 * already-verified chain, set beside the raw ECDSA verify rate of the same
 * curve that bench/run.sh measured with `openssl speed` in the same run.
 *
 * The ratio to that rate is the point: a verification with a cached chain
 * is one ECDSA signature check plus hashing, so it shows how much the
 * verifier adds around the one operation it cannot avoid. Rates are CPU
 * time (CLOCK_PROCESS_CPUTIME_ID), like openssl speed's default, so that
 * other work on the machine slows neither side. Every verification must
 * succeed (a benchmark of refusals would measure the wrong thing); nothing
 * here judges a timing. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "arca/buf.h"
#include "arca/hwev.h"
#include "arca/intel.h"
#include "arca/snp.h"
#include "arca/x509.h"

#define FILE_MAX ((size_t)1 << 20)

static const char usage_text[] =
	"usage: arca-bench-evidence --vectors DIR [--seconds S] [--p256-verify RATE] [--p384-verify RATE]\n"
	"  DIR holds expected.json and the evidence (../shared/vectors);\n"
	"  RATE: openssl speed's ECDSA verify/s for the curve, to print the ratio to it.\n";

static const char *vectors;

static int slurp(const char *rel, struct arca_buf *b)
{
	char path[4096];
	struct arca_errbuf e = { { 0 } };
	if (snprintf(path, sizeof path, "%s/%s", vectors, rel) >= (int)sizeof path) {
		fprintf(stderr, "arca-bench-evidence: path too long: %s/%s\n", vectors, rel);
		return -1;
	}
	arca_buf_init(b, FILE_MAX, 0);
	if (arca_read_file(path, FILE_MAX, b, &e) < 0) {
		fprintf(stderr, "arca-bench-evidence: cannot read %s: %s\n", path, e.msg);
		return -1;
	}
	return 0;
}

/* One day into the window expected.json gives the vector: certificates
 * expire, so "now" would make the benchmark measure refusals one day. */
static int inside_window(json_t *expected, const char *name, time_t *at)
{
	json_t *v = json_object_get(json_object_get(expected, name), "valid_from");
	if (!json_is_string(v) || arca_intel_time_parse(json_string_value(v), at) < 0) {
		fprintf(stderr, "arca-bench-evidence: expected.json has no valid_from for %s\n", name);
		return -1;
	}
	*at += 86400;
	return 0;
}

static double cpu_seconds(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the cases ----------------------------------------------------------- */

struct snp_case {
	struct arca_snp_evidence ev;
	X509 *leaf;
	STACK_OF(X509) *chain;
	struct arca_snp_chain_cache *cache; /* NULL: the chain every time */
	time_t at;
};

struct intel_case {
	struct arca_buf quote;
	struct arca_intel_chain_cache *cache;
	time_t at;
};

struct bench_case {
	const char *name;
	const char *chain_mode;
	const char *curve;
	double openssl_rate; /* 0: not measured */
	int (*verify)(void *ctx, struct arca_hw_result *r);
	void *ctx;
};

static int snp_once(void *ctx, struct arca_hw_result *r)
{
	struct snp_case *c = ctx;
	int rc = arca_snp_verify(&c->ev, c->leaf, c->chain, c->at, c->cache, r);
	return rc == 0 && r->verified ? 0 : -1;
}

static int intel_once(void *ctx, struct arca_hw_result *r)
{
	struct intel_case *c = ctx;
	struct arca_intel_opts o = { .cache = c->cache };
	int rc = arca_intel_quote_verify_opts(c->quote.p, c->quote.len, c->at, &o, r);
	return rc == 0 && r->verified ? 0 : -1;
}

static int load_snp(json_t *expected, const char *report, const char *leaf, const char *chain, struct snp_case *c)
{
	struct arca_buf b;
	struct arca_errbuf e = { { 0 } };
	memset(c, 0, sizeof *c);
	if (inside_window(expected, report, &c->at) < 0 || slurp(report, &b) < 0)
		return -1;
	int rc = arca_snp_load_any(b.p, b.len, &c->ev, &e);
	arca_buf_free(&b);
	if (rc < 0) {
		fprintf(stderr, "arca-bench-evidence: %s: %s\n", report, e.msg);
		return -1;
	}
	if (slurp(leaf, &b) < 0)
		return -1;
	rc = arca_x509_load(b.p, b.len, &c->leaf);
	arca_buf_free(&b);
	if (rc < 0 || slurp(chain, &b) < 0) {
		fprintf(stderr, "arca-bench-evidence: cannot load %s and %s\n", leaf, chain);
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(b.p, (int)b.len);
	X509 *x;
	c->chain = sk_X509_new_null();
	while (bio && c->chain && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(c->chain, x))
			X509_free(x);
	BIO_free(bio);
	arca_buf_free(&b);
	ERR_clear_error();
	if (!c->chain || sk_X509_num(c->chain) == 0) {
		fprintf(stderr, "arca-bench-evidence: %s holds no certificate\n", chain);
		return -1;
	}
	return 0;
}

static void free_snp(struct snp_case *c)
{
	arca_snp_evidence_free(&c->ev);
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
}

static int load_intel(json_t *expected, const char *name, struct intel_case *c)
{
	memset(c, 0, sizeof *c);
	if (inside_window(expected, name, &c->at) < 0 || slurp(name, &c->quote) < 0)
		return -1;
	return 0;
}

/* Runs one case for about secs of CPU time; *rate is verifications per
 * CPU second. The first call is left out: it fills the cache. */
static int measure(const struct bench_case *bc, double secs, double *rate, unsigned long *count)
{
	struct arca_hw_result r;
	arca_hw_result_init(&r);
	int rc = bc->verify(bc->ctx, &r);
	unsigned long n = 0;
	double t0 = cpu_seconds(), t = t0;
	while (rc == 0 && t - t0 < secs) {
		/* Reading the CPU clock is a system call; a few verifications
		 * between readings keep it out of the figure. */
		for (int k = 0; k < 8 && rc == 0; k++, n++)
			rc = bc->verify(bc->ctx, &r);
		t = cpu_seconds();
	}
	if (rc != 0)
		fprintf(stderr, "arca-bench-evidence: %s (%s) did not verify: %s\n", bc->name, bc->chain_mode,
			r.reason);
	arca_hw_result_free(&r);
	*count = n;
	*rate = t > t0 ? (double)n / (t - t0) : 0;
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "vectors", required_argument, NULL, 'v' },     { "seconds", required_argument, NULL, 's' },
		{ "p256-verify", required_argument, NULL, '2' }, { "p384-verify", required_argument, NULL, '3' },
		{ "help", no_argument, NULL, 'h' },              { NULL, 0, NULL, 0 },
	};
	double secs = 2, p256 = 0, p384 = 0;
	char *end;
	int c;

	vectors = getenv("ARCA_VECTORS");
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		double *target = c == 's' ? &secs : c == '2' ? &p256 : c == '3' ? &p384 : NULL;
		if (c == 'v') {
			vectors = optarg;
		} else if (target) {
			*target = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || *target < 0) {
				fprintf(stderr, "arca-bench-evidence: %s is not a number\n", optarg);
				return 2;
			}
		} else {
			fputs(usage_text, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!vectors || optind != argc || secs <= 0) {
		fputs(usage_text, stderr);
		return 2;
	}

	struct arca_buf eb;
	if (slurp("expected.json", &eb) < 0)
		return 1;
	json_t *expected = json_loadb((const char *)eb.p, eb.len, 0, NULL);
	arca_buf_free(&eb);
	if (!expected) {
		fprintf(stderr, "arca-bench-evidence: %s/expected.json is not JSON\n", vectors);
		return 1;
	}

	struct snp_case snp_full, snp_cached;
	struct intel_case tdx_full, tdx_cached, sgx_full, sgx_cached;
	struct arca_snp_chain_cache snp_cache;
	struct arca_intel_chain_cache tdx_cache, sgx_cache;
	static const char *const snp[3] = { "sev-snp/gsg-milan-report.bin", "sev-snp/gsg-milan-vcek.der",
					    "roots/amd-milan-ask-ark.pem" };
	static const char tdx[] = "tdx/gtg-spr-e4-quote-v4-trailing.dat", sgx[] = "sgx/trustee-occlum-quote-v3.dat";
	int rc = 1;

	arca_intel_chain_cache_init(&tdx_cache);
	arca_intel_chain_cache_init(&sgx_cache);
	memset(&snp_full, 0, sizeof snp_full);
	memset(&snp_cached, 0, sizeof snp_cached);
	memset(&tdx_full, 0, sizeof tdx_full);
	memset(&tdx_cached, 0, sizeof tdx_cached);
	memset(&sgx_full, 0, sizeof sgx_full);
	memset(&sgx_cached, 0, sizeof sgx_cached);
	if (arca_snp_chain_cache_init(&snp_cache) < 0) {
		fprintf(stderr, "arca-bench-evidence: cannot set up the SEV-SNP chain cache\n");
		goto out_json;
	}
	if (load_snp(expected, snp[0], snp[1], snp[2], &snp_full) < 0 ||
	    load_snp(expected, snp[0], snp[1], snp[2], &snp_cached) < 0 || load_intel(expected, tdx, &tdx_full) < 0 ||
	    load_intel(expected, tdx, &tdx_cached) < 0 || load_intel(expected, sgx, &sgx_full) < 0 ||
	    load_intel(expected, sgx, &sgx_cached) < 0)
		goto out;
	snp_cached.cache = &snp_cache;
	tdx_cached.cache = &tdx_cache;
	sgx_cached.cache = &sgx_cache;

	const struct bench_case cases[] = {
		{ "SEV-SNP v2 report, Milan VCEK", "every time", "P-384", p384, snp_once, &snp_full },
		{ "SEV-SNP v2 report, Milan VCEK", "cached", "P-384", p384, snp_once, &snp_cached },
		{ "TDX v4 quote", "every time", "P-256", p256, intel_once, &tdx_full },
		{ "TDX v4 quote", "cached", "P-256", p256, intel_once, &tdx_cached },
		{ "SGX v3 quote", "every time", "P-256", p256, intel_once, &sgx_full },
		{ "SGX v3 quote", "cached", "P-256", p256, intel_once, &sgx_cached },
	};
	printf("== hardware evidence verification: CPU time, ~%.1f s per row, one thread\n", secs);
	printf("%-31s %-11s %10s   %-5s %16s %7s\n", "evidence", "chain", "verify/s", "curve", "openssl verify/s",
	       "ratio");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct bench_case *bc = &cases[i];
		double rate;
		unsigned long n;
		if (measure(bc, secs, &rate, &n) != 0)
			goto out;
		printf("%-31s %-11s %10.1f   %-5s", bc->name, bc->chain_mode, rate, bc->curve);
		if (bc->openssl_rate > 0)
			printf(" %16.1f %6.0f%%\n", bc->openssl_rate, 100.0 * rate / bc->openssl_rate);
		else
			printf(" %16s %7s\n", "n/a", "n/a");
		fflush(stdout);
	}
	/* A "cached" row that missed the cache would be mislabelled. */
	printf("chain cache: SEV-SNP %lu hits / %lu misses, TDX %lu / %lu, SGX %lu / %lu\n", snp_cache.hits,
	       snp_cache.misses, tdx_cache.hits, tdx_cache.misses, sgx_cache.hits, sgx_cache.misses);
	if (snp_cache.misses != 1 || tdx_cache.misses != 1 || sgx_cache.misses != 1) {
		fprintf(stderr, "arca-bench-evidence: a cached row verified its chain more than once\n");
		goto out;
	}
	printf("ratio: evidence verifications per second over openssl speed's raw ECDSA verify/s for the\n"
	       "curve of the evidence's last signature (SEV-SNP: the VCEK's P-384; Intel: the attestation\n"
	       "key's P-256). Each verification also checks every other signature and binding unless cached.\n");
	rc = 0;
out:
	free_snp(&snp_full);
	free_snp(&snp_cached);
	arca_buf_free(&tdx_full.quote);
	arca_buf_free(&tdx_cached.quote);
	arca_buf_free(&sgx_full.quote);
	arca_buf_free(&sgx_cached.quote);
	arca_snp_chain_cache_free(&snp_cache);
out_json:
	arca_intel_chain_cache_free(&tdx_cache);
	arca_intel_chain_cache_free(&sgx_cache);
	json_decref(expected);
	return rc;
}
