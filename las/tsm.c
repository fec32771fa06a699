/* tsm.c: hardware reports through configfs-tsm (Linux's
 * /sys/kernel/config/tsm/report; ARCA_TSM_ROOT elsewhere, for tests), and
 * the hardware envelope arca-las answers with in a confidential VM
 * (include/arca/evidence_hw.h).
 *
 * One report is one fresh entry: mkdir, read provider and generation,
 * write inblob (the binding), read outblob and auxblob, read generation
 * again, rmdir. The kernel counts every write to an entry in generation;
 * if it moved by more than our one write, someone else wrote inblob
 * between our write and our reads, and the outblob may answer their
 * inblob: the attempt is dropped and made again in a new entry, a bounded
 * number of times. Entries are made one at a time (t->mu): the firmware
 * serializes reports anyway, and one entry at a time bounds what a burst
 * of requests leaves in configfs if arca-las dies mid-way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "las.h"
#include "arca/evidence_hw.h"

#define TSM_DEFAULT_ROOT "/sys/kernel/config/tsm/report"
#define TSM_ATTEMPTS 3
/* configfs makes an entry's attributes with the entry; a tree that is not
 * configfs (the tests' fake) makes them a moment later. */
#define TSM_ATTR_WAIT_MS 1000
#define GEN_MAX 32

static int read_attr(const char *dir, const char *attr, size_t max, struct arca_buf *out, int *missing,
		     struct arca_errbuf *e)
{
	char path[PATH_MAX];
	uint8_t chunk[4096];
	if (missing)
		*missing = 0;
	if (snprintf(path, sizeof path, "%s/%s", dir, attr) >= (int)sizeof path)
		return arca_errf(e, ARCA_EINVAL, "configfs-tsm path too long");
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT && missing) {
			*missing = 1;
			return 0;
		}
		return arca_errf(e, ARCA_EIO, "cannot open %s: %s", path, strerror(errno));
	}
	/* Read to EOF: configfs answers a binary attribute in pieces. */
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			close(fd);
			return arca_errf(e, ARCA_EIO, "reading %s failed: %s", path, strerror(err));
		}
		if (r == 0)
			break;
		if (out->len + (size_t)r > max) {
			close(fd);
			return arca_errf(e, ARCA_ETOOBIG, "%s is larger than %zu bytes", path, max);
		}
		if (arca_buf_append(out, chunk, (size_t)r) < 0) {
			close(fd);
			return arca_errf(e, ARCA_ENOMEM, "out of memory reading %s", path);
		}
	}
	close(fd);
	return 0;
}

static int write_attr(const char *dir, const char *attr, const uint8_t *p, size_t n, struct arca_errbuf *e)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", dir, attr) >= (int)sizeof path)
		return arca_errf(e, ARCA_EINVAL, "configfs-tsm path too long");
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "cannot open %s: %s", path, strerror(errno));
	ssize_t w;
	do
		w = write(fd, p, n);
	while (w < 0 && errno == EINTR);
	int err = errno;
	int rc = close(fd);
	if (w < 0 || (size_t)w != n || rc < 0)
		return arca_errf(e, ARCA_EIO, "writing %zu bytes to %s failed: %s", n, path,
				 w < 0 || rc < 0 ? strerror(err) : "short write");
	return 0;
}

/* generation is a decimal count and a newline. */
static int read_generation(const char *dir, unsigned long long *g, struct arca_errbuf *e)
{
	struct arca_buf b;
	arca_buf_init(&b, GEN_MAX, 0);
	int rc = read_attr(dir, "generation", GEN_MAX, &b, NULL, e);
	if (rc == 0) {
		size_t n = b.len;
		if (n > 0 && b.p[n - 1] == '\n')
			n--;
		unsigned long long v = 0;
		int ok = n > 0 && n <= 19;
		for (size_t i = 0; ok && i < n; i++) {
			if (b.p[i] < '0' || b.p[i] > '9')
				ok = 0;
			else
				v = v * 10 + (unsigned)(b.p[i] - '0');
		}
		if (!ok)
			rc = arca_errf(e, ARCA_EPARSE, "%s/generation is not a count", dir);
		*g = v;
	}
	arca_buf_free(&b);
	return rc;
}

static const char *provider_of(uint32_t platform)
{
	return platform == ARCA_HW_PLATFORM_SEV_SNP ? "sev_guest" : platform == ARCA_HW_PLATFORM_TDX ? "tdx_guest" : "";
}

/* The platform a provider names, 0 for one arca does not know. */
static uint32_t platform_of(const struct arca_buf *prov)
{
	size_t n = prov->len;
	if (n > 0 && prov->p[n - 1] == '\n')
		n--;
	if (n == 9 && memcmp(prov->p, "sev_guest", 9) == 0)
		return ARCA_HW_PLATFORM_SEV_SNP;
	if (n == 9 && memcmp(prov->p, "tdx_guest", 9) == 0)
		return ARCA_HW_PLATFORM_TDX;
	return 0;
}

static void show_provider(const struct arca_buf *prov, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < prov->len && o + 1 < cap; i++)
		if (prov->p[i] != '\n')
			out[o++] = prov->p[i] >= 0x20 && prov->p[i] < 0x7f ? (char)prov->p[i] : '?';
	out[o] = 0;
}

static int wait_for(const char *dir, const char *attr)
{
	char path[PATH_MAX];
	struct timespec pause = {0, 2 * 1000 * 1000};
	if (snprintf(path, sizeof path, "%s/%s", dir, attr) >= (int)sizeof path)
		return -1;
	for (int waited = 0; waited <= TSM_ATTR_WAIT_MS; waited += 2) {
		if (access(path, F_OK) == 0)
			return 0;
		if (errno != ENOENT)
			return -1;
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* What one report returns. */
struct tsm_report {
	struct arca_buf out, aux, provider;
	uint32_t platform; /* as the provider says */
};

static void report_init(struct tsm_report *r)
{
	arca_buf_init(&r->out, ARCA_HW_REPORT_MAX + 4096, 0);
	arca_buf_init(&r->aux, ARCA_HW_AUX_MAX, 0);
	arca_buf_init(&r->provider, ARCA_HW_PROVIDER_MAX, 0);
	r->platform = 0;
}

static void report_reset(struct tsm_report *r)
{
	arca_buf_reset(&r->out);
	arca_buf_reset(&r->aux);
	arca_buf_reset(&r->provider);
	r->platform = 0;
}

static void report_free(struct tsm_report *r)
{
	arca_buf_free(&r->out);
	arca_buf_free(&r->aux);
	arca_buf_free(&r->provider);
}

/* One attempt in a fresh entry. Returns 1 when another writer raced (gen
 * moved by more than one), 0 on success, negative on failure. want: the
 * platform the provider must name, 0 for any (auto). */
static int attempt(struct las_tsm *t, const uint8_t inblob[64], uint32_t want, struct tsm_report *r,
		   unsigned long long *g0, unsigned long long *g1, struct arca_errbuf *e)
{
	char dir[PATH_MAX];
	int rc, missing;

	/* A name left over by an earlier arca-las with the same pid is
	 * skipped, not reused: a fresh entry is one nobody else wrote. */
	int made = 0, err = 0;
	for (int k = 0; k < 16 && !made; k++) {
		if (snprintf(dir, sizeof dir, "%s/arca-las-%ld-%lu", t->root, (long)getpid(), ++t->counter) >=
		    (int)sizeof dir)
			return arca_errf(e, ARCA_EINVAL, "ARCA_TSM_ROOT is too long");
		made = mkdir(dir, 0700) == 0;
		err = errno;
		if (!made && err != EEXIST)
			break;
	}
	if (!made) {
		return arca_errf(e, err == ENXIO || err == ENODEV || err == ENOENT ? ARCA_EUNSUPPORTED : ARCA_EIO,
				 "cannot create a configfs-tsm report entry in %s: %s%s", t->root, strerror(err),
				 err == ENXIO || err == ENODEV ? " (no attestation provider is registered)" : "");
	}
	/* provider first: no report is asked for from hardware we would not
	 * use; it appears last on a fake tree, so everything is there then */
	if (wait_for(dir, "provider") < 0) {
		rc = arca_errf(e, ARCA_EUNSUPPORTED, "configfs-tsm at %s offers no provider: no attestation "
						     "hardware is behind it",
			       t->root);
		goto out;
	}
	GUARD_GOTO(read_attr(dir, "provider", ARCA_HW_PROVIDER_MAX, &r->provider, NULL, e), out);
	r->platform = platform_of(&r->provider);
	if (r->platform == 0 || (want && r->platform != want)) {
		char shown[ARCA_HW_PROVIDER_MAX + 1];
		show_provider(&r->provider, shown, sizeof shown);
		rc = arca_errf(e, ARCA_EUNSUPPORTED, "configfs-tsm at %s offers provider \"%s\"%s%s", t->root, shown,
			       want ? ", not " : ", which arca does not know", want ? provider_of(want) : "");
		goto out;
	}
	GUARD_GOTO(read_generation(dir, g0, e), out);
	GUARD_GOTO(write_attr(dir, "inblob", inblob, 64, e), out);
	GUARD_GOTO(read_attr(dir, "outblob", r->out.max, &r->out, NULL, e), out);
	GUARD_GOTO(read_attr(dir, "auxblob", ARCA_HW_AUX_MAX, &r->aux, &missing, e), out);
	GUARD_GOTO(read_generation(dir, g1, e), out);
	rc = *g1 == *g0 + 1 ? 0 : 1;
	if (rc == 0 && r->out.len == 0)
		rc = arca_errf(e, ARCA_EIO, "configfs-tsm at %s gave an empty report", t->root);
out:
	/* configfs removes the attributes with the entry */
	if (rmdir(dir) < 0)
		fprintf(stderr, "arca-las: warning: cannot remove the configfs-tsm entry %s: %s\n", dir,
			strerror(errno));
	return rc;
}

/* A report for inblob, retried in fresh entries while another writer races. */
static int get_report(struct las_tsm *t, const uint8_t inblob[64], uint32_t want, struct tsm_report *r,
		      struct arca_errbuf *e)
{
	unsigned long long g0 = 0, g1 = 0;
	for (int i = 1; i <= TSM_ATTEMPTS; i++) {
		report_reset(r);
		int rc = attempt(t, inblob, want, r, &g0, &g1, e);
		if (rc <= 0)
			return rc;
		fprintf(stderr,
			"arca-las: configfs-tsm generation moved from %llu to %llu over one write (attempt %d of %d): "
			"another writer; %s\n",
			g0, g1, i, TSM_ATTEMPTS, i < TSM_ATTEMPTS ? "asking again" : "giving up");
	}
	return arca_errf(e, ARCA_ESTALE,
			 "configfs-tsm report entries at %s were written by someone else during %d attempts in a "
			 "row, so no report can be trusted to answer our inblob; find what else writes there",
			 t->root, TSM_ATTEMPTS);
}

/* The report as the envelope carries it: an SEV-SNP outblob may hold
 * bytes after the 1184-byte report, which are not part of it. */
static int shape_report(uint32_t platform, struct tsm_report *r, struct arca_errbuf *e)
{
	struct arca_errbuf pe = {{0}};
	if (platform == ARCA_HW_PLATFORM_SEV_SNP) {
		struct arca_snp_report rep;
		if (r->out.len < ARCA_SNP_REPORT_LEN)
			return arca_errf(e, ARCA_EPARSE, "configfs-tsm gave a %zu-byte SEV-SNP report; one is %d bytes",
					 r->out.len, ARCA_SNP_REPORT_LEN);
		arca_buf_truncate(&r->out, ARCA_SNP_REPORT_LEN);
		if (arca_snp_parse(r->out.p, r->out.len, &rep, &pe) < 0)
			return arca_errf(e, ARCA_EPARSE, "configfs-tsm gave an SEV-SNP report arca cannot read: %s",
					 pe.msg);
		return 0;
	}
	struct arca_intel_quote q;
	if (r->out.len > ARCA_HW_REPORT_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "configfs-tsm gave a %zu-byte quote; at most %zu are carried",
				 r->out.len, ARCA_HW_REPORT_MAX);
	if (arca_intel_quote_parse(r->out.p, r->out.len, &q, &pe) < 0)
		return arca_errf(e, ARCA_EPARSE, "configfs-tsm gave a TDX quote arca cannot read: %s", pe.msg);
	if (r->aux.len != 0) {
		fprintf(stderr, "arca-las: configfs-tsm gave %zu auxblob bytes with a TDX quote; they are not sent\n",
			r->aux.len);
		arca_buf_reset(&r->aux);
	}
	return 0;
}

int las_tsm_open(struct las_tsm *t, const char *want, uint32_t *platform, struct arca_errbuf *e)
{
	const char *root = getenv("ARCA_TSM_ROOT");
	struct stat st;
	uint32_t w;
	int is_auto = strcmp(want, "auto") == 0;

	memset(t, 0, sizeof *t);
	*platform = 0;
	if (strcmp(want, "sim") == 0)
		return 0;
	if (is_auto)
		w = 0;
	else if ((w = arca_hw_platform_parse(want)) == 0)
		return arca_errf(e, ARCA_EINVAL, "unknown platform \"%s\"; use auto, sim, sev-snp or tdx", want);
	snprintf(t->root, sizeof t->root, "%s", root && *root ? root : TSM_DEFAULT_ROOT);
	if (pthread_mutex_init(&t->mu, NULL) != 0)
		return arca_errf(e, ARCA_ENOMEM, "cannot make a lock");
	t->inited = 1;
	if (stat(t->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (is_auto) {
			fprintf(stderr, "arca-las: platform auto: no configfs-tsm at %s (not a confidential VM, or "
					"the kernel has no TSM reports): using sim\n",
				t->root);
			return 0;
		}
		return arca_errf(e, ARCA_EUNSUPPORTED, "platform %s refused: no configfs-tsm at %s (%s); this is not "
						       "a confidential VM with attestation reports",
				 want, t->root, strerror(errno));
	}
	/* One report now: a platform that cannot deliver refuses at start,
	 * not at the first program. */
	uint8_t probe[64] = {0};
	struct tsm_report r;
	report_init(&r);
	int rc = get_report(t, probe, w, &r, e);
	if (rc == 0)
		rc = shape_report(r.platform, &r, e);
	if (rc < 0) {
		report_free(&r);
		if (is_auto && rc == ARCA_EUNSUPPORTED) {
			fprintf(stderr, "arca-las: platform auto: %s: using sim\n", e->msg);
			return 0;
		}
		if (is_auto)
			return arca_errf(e, rc, "platform auto refused: %.400s", e->msg);
		return rc;
	}
	t->platform = r.platform;
	*platform = r.platform;
	char shown[ARCA_HW_PROVIDER_MAX + 1];
	show_provider(&r.provider, shown, sizeof shown);
	fprintf(stderr, "arca-las: %sconfigfs-tsm at %s: provider %s, report %zu bytes, auxblob %zu bytes: using %s\n",
		is_auto ? "platform auto: " : "", t->root, shown, r.out.len, r.aux.len,
		arca_hw_platform_name(r.platform));
	report_free(&r);
	return 0;
}

void las_tsm_close(struct las_tsm *t)
{
	if (t->inited)
		pthread_mutex_destroy(&t->mu);
	t->inited = 0;
}

int las_tsm_envelope(struct las_tsm *t, const struct arca_hw_envelope *hdr, struct arca_buf *out,
		     struct arca_errbuf *e)
{
	uint8_t head[ARCA_HW_HEADER_LEN], binding[64];
	struct arca_hw_envelope env = *hdr;
	struct tsm_report r;
	int rc;

	env.platform = t->platform;
	GUARD(arca_hw_header_encode(&env, head));
	GUARD(arca_hw_binding(head, binding));
	report_init(&r);
	pthread_mutex_lock(&t->mu);
	rc = get_report(t, binding, t->platform, &r, e);
	pthread_mutex_unlock(&t->mu);
	if (rc == 0)
		rc = shape_report(t->platform, &r, e);
	if (rc == 0) {
		env.report = r.out.p;
		env.report_len = r.out.len;
		env.aux = r.aux.p;
		env.aux_len = r.aux.len;
		env.provider = r.provider.p;
		env.provider_len = r.provider.len;
		rc = arca_hw_envelope_encode(&env, out, e);
	}
	report_free(&r);
	return rc;
}
