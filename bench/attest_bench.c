/* attest_bench.c: attestation throughput and latency against a real CAS
 * and LAS on loopback.
 *
 *   arca-bench-attest --measure              prints this program's measurement
 *   arca-bench-attest --clients N --seconds S --session S --service V
 *
 * Each client thread runs the shield's exchange (arca_attest_exchange) in a
 * loop on one kept-alive TLS connection: nonce, X25519 key, LAS evidence,
 * attest, open the sealed configuration. Environment: ARCA_CAS, ARCA_CAS_PIN, ARCA_LAS. It prints
 * one line: clients, attestations per second, p50 and p99 latency (ms). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arca/attest_client.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/http.h"
#include "arca/measure.h"
#include "arca/proto.h"

struct client {
	pthread_t th;
	const char *cas, *pin, *las, *session, *service;
	double deadline;
	double *lat;
	size_t nlat, caplat;
	size_t fail;
	char err[512];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int las_socket_evidence(void *ctx, const uint8_t report_data[64], uint8_t **ev, size_t *evlen,
			       struct arca_errbuf *e)
{
	const struct client *c = ctx;
	return arca_las_request(c->las, report_data, ev, evlen, e);
}

/* The shield's exchange (lib/attest_client.c), evidence from the LAS socket. */
static int attest_once(struct client *c, struct arca_http *h, struct arca_errbuf *e)
{
	struct arca_config *cfg = NULL;
	struct arca_attest_outcome o;
	int rc = arca_attest_exchange(h, c->cas, c->session, c->service, las_socket_evidence, c, &cfg, &o, e);
	arca_config_free(cfg);
	return rc;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct arca_errbuf e = {{0}};
	struct arca_http *h = NULL;

	while (now() < c->deadline) {
		if (!h && arca_http_connect(c->cas, c->pin, NULL, &h, &e) < 0) {
			snprintf(c->err, sizeof c->err, "%s", e.msg);
			c->fail++;
			usleep(10000);
			continue;
		}
		double t0 = now();
		if (attest_once(c, h, &e) < 0) {
			snprintf(c->err, sizeof c->err, "%s", e.msg);
			c->fail++;
			arca_http_close(h);
			h = NULL;
			continue;
		}
		if (c->nlat == c->caplat) {
			size_t ncap = c->caplat ? c->caplat * 2 : 4096;
			double *n = realloc(c->lat, ncap * sizeof *n);
			if (!n)
				break;
			c->lat = n;
			c->caplat = ncap;
		}
		c->lat[c->nlat++] = (now() - t0) * 1000.0;
	}
	if (h)
		arca_http_close(h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int clients = 1;
	double seconds = 5;
	const char *session = NULL, *service = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--measure") == 0) {
			struct arca_measurement m;
			struct arca_errbuf e = {{0}};
			char d[ARCA_DIGEST_STR_LEN];
			if (arca_measure_pid(getpid(), NULL, &m, &e) < 0) {
				fprintf(stderr, "arca-bench-attest: %s\n", e.msg);
				return 1;
			}
			arca_digest_format(m.digest, d);
			printf("%s\n", d);
			arca_measurement_free(&m);
			return 0;
		} else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
			clients = (int)strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], NULL);
		} else if (strcmp(argv[i], "--session") == 0 && i + 1 < argc) {
			session = argv[++i];
		} else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc) {
			service = argv[++i];
		} else {
			fprintf(stderr, "arca-bench-attest: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	const char *cas = getenv("ARCA_CAS"), *pin = getenv("ARCA_CAS_PIN"), *las = getenv("ARCA_LAS");
	if (!cas || !pin || !las || !session || !service || clients < 1 || clients > 1024) {
		fprintf(stderr, "arca-bench-attest: need ARCA_CAS, ARCA_CAS_PIN, ARCA_LAS, --session, --service\n");
		return 2;
	}
	struct client *cs = calloc((size_t)clients, sizeof *cs);
	if (!cs)
		return 1;
	double start = now();
	for (int i = 0; i < clients; i++) {
		cs[i] = (struct client){.cas = cas, .pin = pin, .las = las, .session = session, .service = service,
					.deadline = start + seconds};
		if (pthread_create(&cs[i].th, NULL, client_main, &cs[i]) != 0) {
			fprintf(stderr, "arca-bench-attest: cannot start thread %d\n", i);
			return 1;
		}
	}
	size_t total = 0, fails = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(cs[i].th, NULL);
		total += cs[i].nlat;
		fails += cs[i].fail;
	}
	double elapsed = now() - start;
	double *all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		return 1;
	size_t k = 0;
	for (int i = 0; i < clients; i++) {
		memcpy(all + k, cs[i].lat, cs[i].nlat * sizeof *all);
		k += cs[i].nlat;
	}
	qsort(all, total, sizeof *all, cmp_double);
	double p50 = total ? all[total / 2] : 0, p99 = total ? all[(total * 99) / 100] : 0;
	printf("clients=%d attestations=%zu failures=%zu per_second=%.0f p50_ms=%.2f p99_ms=%.2f\n", clients, total,
	       fails, (double)total / elapsed, p50, p99);
	for (int i = 0; i < clients && fails; i++)
		if (cs[i].err[0]) {
			fprintf(stderr, "arca-bench-attest: last error: %s\n", cs[i].err);
			break;
		}
	return (total > 0 && fails == 0) ? 0 : 1;
}
