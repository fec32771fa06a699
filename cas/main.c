/* main.c: arca-cas, the Configuration and Attestation Service.
 *
 *   arca-cas [--state DIR] [--listen HOST:PORT] [--key-file FILE]
 *            [--nonce-ttl SECONDS] [--las PATH] [--threads N]
 *            [--accept-audit-log]
 *
 * Runs in the foreground and logs to stderr. When it serves it prints
 * `ready listen=HOST:PORT fingerprint=SHA256:…` on stdout (and flushes);
 * SIGTERM or SIGINT stop it cleanly with status 0. Status 1 means it could
 * not start (the reason is on stderr), 2 a usage error. It does not start
 * over an audit log that was cut short or rewritten (events.c) unless an
 * operator who cannot restore it says --accept-audit-log. */
#include "cas.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/x509.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/x509.h"

#define CAS_DEFAULT_STATE "/var/lib/arca/cas"
#define CAS_DEFAULT_THREADS 2

static int usage(void)
{
	fprintf(stderr, "usage: arca-cas [--state DIR] [--listen HOST:PORT] [--key-file FILE] [--nonce-ttl SECONDS]\n"
			"                [--las PATH] [--threads N] [--accept-audit-log]\n"
			"  --state DIR        state directory (default $ARCA_CAS_STATE, else " CAS_DEFAULT_STATE ")\n"
			"  --listen HOST:PORT address to serve TLS on (default " CAS_DEFAULT_LISTEN ")\n"
			"  --key-file FILE    master key (default DIR/master.key; keep it on another volume)\n"
			"  --nonce-ttl S      seconds a nonce stays valid (default 60; 0 expires it at once, for tests)\n"
			"  --las PATH         LAS socket for CAS's own evidence (default $ARCA_LAS, else " CAS_DEFAULT_LAS ")\n"
			"  --threads N        worker threads (default %d)\n"
			"  --accept-audit-log start although DIR/audit.log no longer reaches the record the store\n"
			"                     recorded (cut short, rewritten or lost, and no backup to restore);\n"
			"                     the break is recorded as the log's next record\n",
		CAS_DEFAULT_THREADS);
	return 2;
}

static int parse_int(const char *s, long min, long max, int *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return ARCA_EINVAL;
	*out = (int)v;
	return 0;
}

/* Idle connections each hold a descriptor; the soft limit is often far
 * below what the system allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			cas_log("warning", "cannot raise the descriptor limit: %s", strerror(errno));
	}
}

static int spki_digest(EVP_PKEY *pk, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);
	int rc;

	if (n <= 0)
		return ARCA_ECRYPTO;
	rc = arca_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return rc;
}

static int same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int key_file_dir(const char *key_file, char *out, size_t cap)
{
	const char *slash = strrchr(key_file, '/');

	if (!slash)
		return snprintf(out, cap, ".") < (int)cap ? 0 : ARCA_EINVAL;
	if (slash == key_file)
		return snprintf(out, cap, "/") < (int)cap ? 0 : ARCA_EINVAL;
	return snprintf(out, cap, "%.*s", (int)(slash - key_file), key_file) < (int)cap ? 0 : ARCA_EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},     {"listen", required_argument, NULL, 'l'},
		{"key-file", required_argument, NULL, 'k'},  {"nonce-ttl", required_argument, NULL, 't'},
		{"las", required_argument, NULL, 'a'},       {"threads", required_argument, NULL, 'n'},
		{"accept-audit-log", no_argument, NULL, 'A'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cas c;
	struct cas_worker workers[CAS_MAX_THREADS];
	struct arca_errbuf e = {{0}};
	struct cas_store *events_store = NULL;
	char key_path[4096], audit_path[4096], kdir[4096];
	sigset_t sigs;
	int opt, started = 0, nworkers = 0, sig = 0, created = 0, status = 1, accept_log = 0, events_opened = 0;

	/* Signals wait until the workers run and main sits in sigwait; the
	 * workers inherit the mask and never see them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&c, 0, sizeof c);
	memset(workers, 0, sizeof workers);
	c.listen_fd = -1;
	c.cfg.state_dir = getenv("ARCA_CAS_STATE") ? getenv("ARCA_CAS_STATE") : CAS_DEFAULT_STATE;
	c.cfg.listen = CAS_DEFAULT_LISTEN;
	c.cfg.las_path = getenv("ARCA_LAS") ? getenv("ARCA_LAS") : CAS_DEFAULT_LAS;
	c.cfg.nonce_ttl = CAS_DEFAULT_NONCE_TTL;
	c.cfg.threads = CAS_DEFAULT_THREADS;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': c.cfg.state_dir = optarg; break;
		case 'l': c.cfg.listen = optarg; break;
		case 'k': c.cfg.key_file = optarg; break;
		case 'a': c.cfg.las_path = optarg; break;
		case 't':
			if (parse_int(optarg, 0, 86400, &c.cfg.nonce_ttl) < 0) {
				fprintf(stderr, "arca-cas: --nonce-ttl takes whole seconds from 0 to 86400\n");
				return 2;
			}
			break;
		case 'n':
			if (parse_int(optarg, 1, CAS_MAX_THREADS, &c.cfg.threads) < 0) {
				fprintf(stderr, "arca-cas: --threads takes a number from 1 to %d\n", CAS_MAX_THREADS);
				return 2;
			}
			break;
		case 'A': accept_log = 1; break;
		case 'h': usage(); return 0;
		default: return usage();
		}
	}
	if (optind != argc || !*c.cfg.state_dir)
		return usage();

	raise_nofile();
	if (evthread_use_pthreads() != 0) {
		cas_log("error", "libevent has no thread support");
		return 1;
	}
	if (pthread_mutex_init(&c.store_wlock, NULL) != 0)
		return 1;

	if (arca_mkdirs(c.cfg.state_dir, 0700, &e) < 0) {
		cas_log("error", "state directory %s: %s", c.cfg.state_dir, e.msg);
		goto out;
	}
	if (arca_identity_load_or_create(c.cfg.state_dir, "arca-cas", &c.id, &e) < 0) {
		cas_log("error", "identity: %s", e.msg);
		goto out;
	}
	if (spki_digest(c.id.key, c.spki_sha256) < 0) {
		cas_log("error", "identity: cannot encode the public key");
		goto out;
	}
	if (snprintf(key_path, sizeof key_path, "%s/master.key", c.cfg.state_dir) >= (int)sizeof key_path ||
	    snprintf(c.store_path, sizeof c.store_path, "%s/store.db", c.cfg.state_dir) >= (int)sizeof c.store_path ||
	    snprintf(audit_path, sizeof audit_path, "%s/audit.log", c.cfg.state_dir) >= (int)sizeof audit_path) {
		cas_log("error", "state directory path too long");
		goto out;
	}
	if (c.cfg.key_file) {
		if (snprintf(key_path, sizeof key_path, "%s", c.cfg.key_file) >= (int)sizeof key_path) {
			cas_log("error", "--key-file path too long");
			goto out;
		}
	}
	if (cas_master_key_load(key_path, &c.master_key, &created, &e) < 0) {
		cas_log("error", "%s", e.msg);
		goto out;
	}
	if (created)
		cas_log("info", "created master key %s", key_path);
	if (key_file_dir(key_path, kdir, sizeof kdir) == 0 && same_dir(kdir, c.cfg.state_dir))
		cas_log("warning", "the master key %s is in the same directory as store.db; anyone who copies the "
				   "directory has both (use --key-file on another volume)",
			key_path);

	/* The store first: the audit log is checked against the head it
	 * recorded. This connection is the audit writer's from here on. */
	if (cas_store_open(c.store_path, c.master_key, &c.store_wlock, &events_store, &e) < 0) {
		cas_log("error", "%s", e.msg);
		goto out;
	}
	events_opened = 1;
	if (cas_events_open(&c.events, audit_path, events_store, accept_log, &e) < 0) {
		cas_log("error", "%s", e.msg);
		goto out;
	}
	if (cas_trust_init(&c.trust, c.cfg.state_dir, &e) < 0) {
		cas_log("error", "%s", e.msg);
		goto out;
	}
	(void)cas_trust_has(&c.trust, ""); /* loads and reports the list once */
	if (cas_server_init(&c, &e) < 0) {
		cas_log("error", "%s", e.msg);
		goto out;
	}
	for (nworkers = 0; nworkers < c.cfg.threads; nworkers++) {
		if (cas_worker_init(&c, &workers[nworkers], nworkers, &e) < 0) {
			cas_log("error", "worker %d: %s", nworkers, e.msg);
			nworkers++;
			goto out;
		}
	}
	if (cas_events_start(&c.events) < 0) {
		cas_log("error", "cannot start the audit writer thread");
		goto out;
	}
	for (started = 0; started < nworkers; started++) {
		if (pthread_create(&workers[started].thread, NULL, cas_worker_run, &workers[started]) != 0) {
			cas_log("error", "cannot start worker thread %d", started);
			goto out;
		}
	}
	cas_log("info", "serving on %s with %d worker(s), state %s, nonce ttl %d s, las %s", c.listen_addr, nworkers,
		c.cfg.state_dir, c.cfg.nonce_ttl, c.cfg.las_path);
	printf("ready listen=%s fingerprint=%s\n", c.listen_addr, c.id.fpr);
	fflush(stdout);

	while (sigwait(&sigs, &sig) != 0)
		;
	cas_log("info", "signal %d: stopping", sig);
	status = 0;
out:
	/* Records still queued are written and their replies handed to the
	 * workers, which send them in their last loop iteration. */
	cas_events_stop(&c.events);
	for (int i = 0; i < started; i++)
		event_base_loopexit(workers[i].base, NULL);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	for (int i = 0; i < nworkers; i++)
		cas_worker_free(&workers[i]);
	cas_server_free(&c);
	cas_trust_free(&c.trust);
	if (events_opened)
		cas_events_close(&c.events);
	if (c.master_key)
		arca_secret_free(c.master_key, CAS_MASTER_KEY_LEN);
	arca_identity_free(&c.id);
	pthread_mutex_destroy(&c.store_wlock);
	return status;
}
