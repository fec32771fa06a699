/* evidence_hw.c: the hardware envelope arca-las sends from a confidential
 * VM (layout in include/arca/evidence_hw.h and docs/CONTRACTS.md), its
 * binding, and its verification up to a service's platform constraints.
 *
 * The envelope is outside input to CAS: it is parsed through a cursor with
 * every length bounded and checked exactly, and nothing in it is used
 * before the part that vouches for it has been checked. The report's own
 * verification is the verifiers' (evidence_snp.c, quote_intel.c); this
 * file only decides what is handed to them and what their verdict must
 * cover. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/evidence_hw.h"
#include "arca/proto.h"

#define LABEL_LEN (sizeof ARCA_HW_BINDING_LABEL - 1)
#define SNP_DEBUG_BIT (1ull << 19)
#define TDX_DEBUG_BIT 1ull
#define SGX_DEBUG_BIT 2ull

_Static_assert(ARCA_HW_ENVELOPE_MAX <= ARCA_LAS_MAX_RESP - 3 && ARCA_HW_ENVELOPE_MAX <= ARCA_MAX_EVIDENCE,
	       "an envelope must fit one LAS answer and one attest request");

/* policy.h keeps the product as a plain number; these are the same. */
_Static_assert(ARCA_SNP_MILAN == 1 && ARCA_SNP_GENOA == 2 && ARCA_SNP_TURIN == 3,
	       "policy.h numbers SEV-SNP products as enum arca_snp_product");

const char *arca_hw_platform_name(uint32_t platform)
{
	switch (platform) {
	case ARCA_HW_PLATFORM_SEV_SNP:
		return "sev-snp";
	case ARCA_HW_PLATFORM_TDX:
		return "tdx";
	case ARCA_HW_PLATFORM_SGX:
		return "sgx";
	default:
		return NULL;
	}
}

uint32_t arca_hw_platform_parse(const char *name)
{
	if (!name)
		return 0;
	if (strcmp(name, "sev-snp") == 0)
		return ARCA_HW_PLATFORM_SEV_SNP;
	if (strcmp(name, "tdx") == 0)
		return ARCA_HW_PLATFORM_TDX;
	return 0;
}

/* ---- the envelope ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The provider file's content as the kernel writes it: the name and one
 * newline; accepted without the newline too (a capture may have been
 * trimmed), nothing else. */
static int provider_is(const uint8_t *p, size_t n, const char *want)
{
	size_t wl = strlen(want);
	if (n == wl + 1 && p[wl] == '\n')
		n = wl;
	return n == wl && memcmp(p, want, wl) == 0;
}

/* What the envelope's parts must be, for both directions. */
static int check_parts(const struct arca_hw_envelope *env, struct arca_errbuf *e)
{
	const char *want;
	if (env->platform == ARCA_HW_PLATFORM_SEV_SNP)
		want = "sev_guest";
	else if (env->platform == ARCA_HW_PLATFORM_TDX)
		want = "tdx_guest";
	else
		return arca_errf(e, ARCA_EPARSE, "envelope platform %u is neither 2 (sev-snp) nor 3 (tdx)",
				 env->platform);
	if (env->report_len == 0 || env->report_len > ARCA_HW_REPORT_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "the hardware report is %zu bytes; 1 to %zu are accepted",
				 env->report_len, ARCA_HW_REPORT_MAX);
	if (env->platform == ARCA_HW_PLATFORM_SEV_SNP && env->report_len != ARCA_SNP_REPORT_LEN)
		return arca_errf(e, ARCA_EPARSE, "an SEV-SNP report in an envelope is %d bytes, not %zu",
				 ARCA_SNP_REPORT_LEN, env->report_len);
	if (env->aux_len > ARCA_HW_AUX_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "the auxblob is %zu bytes; at most %zu are accepted", env->aux_len,
				 ARCA_HW_AUX_MAX);
	/* TDX has nothing in auxblob that anything would verify. */
	if (env->platform == ARCA_HW_PLATFORM_TDX && env->aux_len != 0)
		return arca_errf(e, ARCA_EPARSE, "a TDX envelope carries no auxblob, but this one has %zu bytes",
				 env->aux_len);
	if (env->provider_len == 0 || env->provider_len > ARCA_HW_PROVIDER_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "the provider is %zu bytes; 1 to %d are accepted",
				 env->provider_len, ARCA_HW_PROVIDER_MAX);
	if (!provider_is(env->provider, env->provider_len, want))
		return arca_errf(e, ARCA_EPARSE, "the provider of a %s envelope must be %s",
				 arca_hw_platform_name(env->platform), want);
	return 0;
}

int arca_hw_header_encode(const struct arca_hw_envelope *env, uint8_t out[static ARCA_HW_HEADER_LEN])
{
	ENSURE(env && out, ARCA_EINVAL);
	ENSURE(env->platform == ARCA_HW_PLATFORM_SEV_SNP || env->platform == ARCA_HW_PLATFORM_TDX, ARCA_EINVAL);
	memcpy(out, ARCA_HW_MAGIC, 8);
	ENSURE((env->flags & ~ARCA_HW_FLAGS_KNOWN) == 0, ARCA_EINVAL);
	put32(out + 8, env->platform);
	put32(out + 12, env->flags);
	put64(out + 16, env->timestamp);
	put32(out + 24, env->pid);
	put32(out + 28, env->uid);
	memcpy(out + 32, env->measurement, 32);
	memcpy(out + 64, env->report_data, 64);
	return 0;
}

int arca_hw_binding(const uint8_t header[static ARCA_HW_HEADER_LEN], uint8_t out[static 64])
{
	uint8_t m[LABEL_LEN + ARCA_HW_HEADER_LEN];
	ENSURE(header && out, ARCA_EINVAL);
	memcpy(m, ARCA_HW_BINDING_LABEL, LABEL_LEN);
	memcpy(m + LABEL_LEN, header, ARCA_HW_HEADER_LEN);
	return arca_sha512(m, sizeof m, out);
}

int arca_hw_envelope_encode(const struct arca_hw_envelope *env, struct arca_buf *out, struct arca_errbuf *e)
{
	uint8_t hdr[ARCA_HW_HEADER_LEN];
	ENSURE(env && out && env->report && env->provider && (env->aux || env->aux_len == 0), ARCA_EINVAL);
	if (check_parts(env, e) < 0)
		return ARCA_EINVAL;
	if (arca_hw_header_encode(env, hdr) < 0)
		return arca_errf(e, ARCA_EINVAL, "the envelope's flags 0x%08x hold an unknown bit", env->flags);
	size_t orig = out->len;
	int rc = arca_buf_append(out, hdr, sizeof hdr);
	if (rc == 0)
		rc = arca_buf_u32le(out, (uint32_t)env->report_len);
	if (rc == 0)
		rc = arca_buf_append(out, env->report, env->report_len);
	if (rc == 0)
		rc = arca_buf_u32le(out, (uint32_t)env->aux_len);
	if (rc == 0 && env->aux_len)
		rc = arca_buf_append(out, env->aux, env->aux_len);
	if (rc == 0)
		rc = arca_buf_u32le(out, (uint32_t)env->provider_len);
	if (rc == 0)
		rc = arca_buf_append(out, env->provider, env->provider_len);
	if (rc < 0) {
		arca_buf_truncate(out, orig);
		return arca_errf(e, rc, "the envelope does not fit its buffer");
	}
	return 0;
}

/* A u32 length, bounded before anything is taken. */
static int take_part(struct arca_cur *c, size_t max, const char *what, const uint8_t **p, size_t *len,
		     struct arca_errbuf *e)
{
	uint32_t l;
	if (arca_cur_u32le(c, &l) < 0)
		return arca_errf(e, ARCA_EPARSE, "the envelope ends before the length of its %s", what);
	if (l > max)
		return arca_errf(e, ARCA_ETOOBIG, "the envelope's %s is %u bytes; at most %zu are accepted", what, l,
				 max);
	if (arca_cur_take(c, l, p) < 0)
		return arca_errf(e, ARCA_EPARSE, "the envelope ends inside its %s (%u bytes announced, %zu left)", what,
				 l, arca_cur_left(c));
	*len = l;
	return 0;
}

int arca_hw_envelope_parse(const uint8_t *p, size_t n, struct arca_hw_envelope *out, struct arca_errbuf *e)
{
	struct arca_cur c;
	const uint8_t *magic;

	ENSURE(out, ARCA_EINVAL);
	memset(out, 0, sizeof *out);
	if (!p || n < ARCA_HW_HEADER_LEN + 12)
		return arca_errf(e, ARCA_EPARSE, "the envelope is %zu bytes, shorter than its fixed part", p ? n : 0);
	if (n > ARCA_HW_ENVELOPE_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "the envelope is %zu bytes; at most %zu are accepted", n,
				 (size_t)ARCA_HW_ENVELOPE_MAX);
	arca_cur_init(&c, p, n);
	GUARD(arca_cur_take(&c, 8, &magic));
	if (memcmp(magic, ARCA_HW_MAGIC, 8) != 0)
		return arca_errf(e, ARCA_EPARSE, "not a hardware evidence envelope (magic is not " ARCA_HW_MAGIC ")");
	GUARD(arca_cur_u32le(&c, &out->platform));
	GUARD(arca_cur_u32le(&c, &out->flags));
	if (out->flags & ~ARCA_HW_FLAGS_KNOWN)
		return arca_errf(e, ARCA_EPARSE, "the envelope's flags 0x%08x hold a bit this version does not know",
				 out->flags);
	GUARD(arca_cur_u64le(&c, &out->timestamp));
	GUARD(arca_cur_u32le(&c, &out->pid));
	GUARD(arca_cur_u32le(&c, &out->uid));
	GUARD(arca_cur_copy(&c, out->measurement, 32));
	GUARD(arca_cur_copy(&c, out->report_data, 64));
	GUARD(take_part(&c, ARCA_HW_REPORT_MAX, "hardware report", &out->report, &out->report_len, e));
	GUARD(take_part(&c, ARCA_HW_AUX_MAX, "auxblob", &out->aux, &out->aux_len, e));
	GUARD(take_part(&c, ARCA_HW_PROVIDER_MAX, "provider", &out->provider, &out->provider_len, e));
	if (arca_cur_left(&c) != 0)
		return arca_errf(e, ARCA_EPARSE, "%zu bytes follow the envelope's provider; nothing may",
				 arca_cur_left(&c));
	int rc = check_parts(out, e);
	if (rc < 0) {
		memset(out, 0, sizeof *out);
		return rc == ARCA_ETOOBIG ? rc : ARCA_EPARSE;
	}
	return 0;
}

/* ---- facts ---- */

void arca_hw_facts_from_snp(const struct arca_snp_report *r, enum arca_snp_product product, struct arca_hw_facts *f)
{
	f->platform = ARCA_HW_PLATFORM_SEV_SNP;
	f->snp_policy = r->policy;
	memcpy(f->snp_measurement, r->measurement, 48);
	memcpy(f->host_data, r->host_data, 32);
	memcpy(f->id_key_digest, r->id_key_digest, 48);
	f->reported_tcb = r->reported_tcb;
	f->product = product;
	f->tcb_status = -1;
}

int arca_hw_facts_from_quote(const struct arca_intel_quote *q, int tcb_status, struct arca_hw_facts *f)
{
	ENSURE(q && f && q->body, ARCA_EINVAL);
	f->tcb_status = tcb_status;
	if (q->tee_type == ARCA_INTEL_TEE_TDX) {
		ENSURE(q->body_len >= ARCA_TDX10_BODY_LEN, ARCA_EINVAL);
		f->platform = ARCA_HW_PLATFORM_TDX;
		f->td_attributes = get64(q->body + ARCA_TDX_OFF_TDATTR);
		memcpy(f->mrtd, q->body + ARCA_TDX_OFF_MRTD, 48);
		memcpy(f->mrconfigid, q->body + ARCA_TDX_OFF_MRCONFIGID, 48);
		for (int i = 0; i < 4; i++)
			memcpy(f->rtmr[i], q->body + ARCA_TDX_OFF_RTMR0 + 48 * i, 48);
		return 0;
	}
	ENSURE(q->tee_type == ARCA_INTEL_TEE_SGX && q->body_len >= ARCA_SGX_REPORT_LEN, ARCA_EINVAL);
	f->platform = ARCA_HW_PLATFORM_SGX;
	f->sgx_attributes = get64(q->body + ARCA_SGX_OFF_ATTRIBUTES);
	memcpy(f->mrenclave, q->body + ARCA_SGX_OFF_MRENCLAVE, 32);
	memcpy(f->mrsigner, q->body + ARCA_SGX_OFF_MRSIGNER, 32);
	f->isvprodid = get16(q->body + ARCA_SGX_OFF_ISVPRODID);
	f->isvsvn = get16(q->body + ARCA_SGX_OFF_ISVSVN);
	return 0;
}

/* ---- constraints ---- */

static int hex_differs(const char *what, const uint8_t *seen, const uint8_t *want, size_t n, struct arca_errbuf *e)
{
	char hs[ARCA_HEX_LEN(48)], hw[ARCA_HEX_LEN(48)];
	if (n > 48 || arca_ct_eq(seen, want, n))
		return 0;
	arca_hex_encode(seen, n, hs);
	arca_hex_encode(want, n, hw);
	return arca_errf(e, ARCA_EDENIED, "%s %s does not match the service's %s", what, hs, hw);
}

static int tcb_status_ok(int seen, int min, struct arca_errbuf *e)
{
	if (min < 0)
		return 0;
	if (seen < 0)
		return arca_errf(e, ARCA_EDENIED,
				 "TCB status unknown: no collateral, so min_tcb_status %s cannot be shown to hold",
				 arca_tcb_status_name(min));
	if (seen == ARCA_TCB_REVOKED || seen > min)
		return arca_errf(e, ARCA_EDENIED, "TCB status %s is worse than the service's min_tcb_status %s",
				 arca_tcb_status_name(seen) ? arca_tcb_status_name(seen) : "?",
				 arca_tcb_status_name(min));
	return 0;
}

/* The byte of each component in TCB_VERSION (snp.h, arca_snp_leaf_read). */
static int tcb_byte(enum arca_snp_product p, int part)
{
	static const int milan_genoa[ARCA_SNP_TCB_NPARTS] = {0, 1, 6, 7};
	static const int turin[ARCA_SNP_TCB_NPARTS] = {1, 2, 3, 7};
	return p == ARCA_SNP_TURIN ? turin[part] : milan_genoa[part];
}

static int check_snp(const struct arca_hw_facts *f, const struct arca_snp_policy *c, struct arca_errbuf *e)
{
	static const char *const parts[ARCA_SNP_TCB_NPARTS] = {"boot loader", "TEE", "SNP firmware", "microcode"};
	if (c->has_measurement)
		GUARD(hex_differs("launch measurement", f->snp_measurement, c->measurement, 48, e));
	if (c->has_host_data)
		GUARD(hex_differs("host_data", f->host_data, c->host_data, 32, e));
	if (c->has_id_key_digest)
		GUARD(hex_differs("id_key_digest", f->id_key_digest, c->id_key_digest, 48, e));
	for (int i = 0; i < ARCA_SNP_TCB_NPARTS; i++) {
		if (c->min_tcb[i] < 0)
			continue;
		unsigned seen = (unsigned)(f->reported_tcb >> (8 * tcb_byte(f->product, i))) & 0xff;
		if (seen < (unsigned)c->min_tcb[i])
			return arca_errf(e, ARCA_EDENIED,
					 "reported TCB has %s SVN %u, below the service's min_tcb of %d (reported_tcb "
					 "0x%016llx)",
					 parts[i], seen, c->min_tcb[i], (unsigned long long)f->reported_tcb);
	}
	if (!c->debug && (f->snp_policy & SNP_DEBUG_BIT))
		return arca_errf(e, ARCA_EDENIED,
				 "the guest policy 0x%llx allows debugging (bit 19), so the host can read the VM's "
				 "memory; the service does not allow debug",
				 (unsigned long long)f->snp_policy);
	if (c->product && (int)f->product != c->product)
		return arca_errf(e, ARCA_EDENIED, "the report was signed by a %s key; the service requires %s",
				 arca_snp_product_name(f->product), arca_snp_product_name((enum arca_snp_product)c->product));
	return 0;
}

static int check_tdx(const struct arca_hw_facts *f, const struct arca_tdx_policy *c, struct arca_errbuf *e)
{
	if (c->has_mrtd)
		GUARD(hex_differs("MRTD", f->mrtd, c->mrtd, 48, e));
	for (int i = 0; i < 4; i++) {
		char what[8] = "RTMR0";
		what[4] = (char)('0' + i);
		if (c->has_rtmr[i])
			GUARD(hex_differs(what, f->rtmr[i], c->rtmr[i], 48, e));
	}
	if (c->has_mrconfigid)
		GUARD(hex_differs("MRCONFIGID", f->mrconfigid, c->mrconfigid, 48, e));
	if (!c->debug && (f->td_attributes & TDX_DEBUG_BIT))
		return arca_errf(e, ARCA_EDENIED,
				 "the TD's attributes 0x%016llx say DEBUG (bit 0), so the host can read the TD's "
				 "memory; the service does not allow debug",
				 (unsigned long long)f->td_attributes);
	return tcb_status_ok(f->tcb_status, c->min_tcb_status, e);
}

static int check_sgx(const struct arca_hw_facts *f, const struct arca_sgx_policy *c, struct arca_errbuf *e)
{
	if (c->has_mrenclave)
		GUARD(hex_differs("MRENCLAVE", f->mrenclave, c->mrenclave, 32, e));
	if (c->has_mrsigner) {
		GUARD(hex_differs("MRSIGNER", f->mrsigner, c->mrsigner, 32, e));
		/* The parser requires both with mrsigner; a hand-built policy
		 * without them is refused rather than read as "any". */
		if (c->isvprodid < 0 || c->min_isvsvn < 0)
			return arca_errf(e, ARCA_EDENIED, "the service names mrsigner without isvprodid and min_isvsvn");
		if (f->isvprodid != c->isvprodid)
			return arca_errf(e, ARCA_EDENIED, "ISVPRODID %u is not the service's %d", f->isvprodid,
					 c->isvprodid);
		if (f->isvsvn < c->min_isvsvn)
			return arca_errf(e, ARCA_EDENIED, "ISVSVN %u is below the service's min_isvsvn %d", f->isvsvn,
					 c->min_isvsvn);
	}
	if (!c->debug && (f->sgx_attributes & SGX_DEBUG_BIT))
		return arca_errf(e, ARCA_EDENIED,
				 "the enclave's attributes 0x%016llx say DEBUG (bit 1), so its memory can be read; the "
				 "service does not allow debug",
				 (unsigned long long)f->sgx_attributes);
	return tcb_status_ok(f->tcb_status, c->min_tcb_status, e);
}

int arca_hw_platform_listed(const struct arca_hw_facts *f, const struct arca_service *svc)
{
	if (!f || !svc)
		return 0;
	switch (f->platform) {
	case ARCA_HW_PLATFORM_SEV_SNP:
		return svc->platform_snp;
	case ARCA_HW_PLATFORM_TDX:
		return svc->platform_tdx;
	case ARCA_HW_PLATFORM_SGX:
		return svc->platform_sgx;
	default:
		return 0;
	}
}

int arca_hw_check_constraints(const struct arca_hw_facts *f, const struct arca_service *svc, struct arca_errbuf *e)
{
	ENSURE(f && svc, ARCA_EINVAL);
	if (!arca_hw_platform_listed(f, svc))
		return arca_errf(e, ARCA_EDENIED, "service '%s' does not list %s under platform",
				 svc->name ? svc->name : "?",
				 arca_hw_platform_name(f->platform) ? arca_hw_platform_name(f->platform) : "this platform");
	switch (f->platform) {
	case ARCA_HW_PLATFORM_SEV_SNP:
		return check_snp(f, &svc->snp, e);
	case ARCA_HW_PLATFORM_TDX:
		return check_tdx(f, &svc->tdx, e);
	default:
		return check_sgx(f, &svc->sgx, e);
	}
}

/* ---- verification ---- */

static int refuse(struct arca_hw_result *res, enum arca_hw_failure *failed, enum arca_hw_failure why, int rc,
		  const struct arca_errbuf *src, struct arca_errbuf *e)
{
	if (failed)
		*failed = why;
	res->verified = 0;
	snprintf(res->reason, sizeof res->reason, "%s", src->msg[0] ? src->msg : arca_strerror(rc));
	if (e && e != src)
		snprintf(e->msg, sizeof e->msg, "%s", res->reason);
	return rc < 0 ? rc : ARCA_EDENIED;
}

static int binding_matches(const struct arca_hw_envelope *env, const uint8_t *hdr_bytes, const uint8_t seen[64],
			   struct arca_errbuf *e)
{
	uint8_t want[64];
	char hs[ARCA_HEX_LEN(64)];
	GUARD(arca_hw_binding(hdr_bytes, want));
	if (arca_ct_eq(want, seen, 64))
		return 0;
	arca_hex_encode(seen, 64, hs);
	return arca_errf(e, ARCA_EDENIED,
			 "binding: the %s report's report data %s is not SHA-512(\"" ARCA_HW_BINDING_LABEL
			 "\" || envelope bytes 0..127), so the hardware does not vouch for the measurement and report "
			 "data arca-las put in the envelope",
			 arca_hw_platform_name(env->platform), hs);
}

static int verify_snp(const struct arca_hw_envelope *env, const uint8_t *p, time_t now,
		      const struct arca_hw_opts *o, struct arca_hw_facts *facts, enum arca_hw_failure *failed,
		      struct arca_hw_result *res, struct arca_errbuf *e)
{
	struct arca_snp_evidence ev;
	struct arca_errbuf pe = {{0}};
	int rc;

	memset(&ev, 0, sizeof ev);
	ev.form = ARCA_SNP_FORM_RAW;
	rc = arca_snp_parse(env->report, env->report_len, &ev.report, &pe);
	if (rc < 0)
		return refuse(res, failed, ARCA_HW_BAD_ENVELOPE, rc, &pe, e);
	if (env->aux_len > 0 && (rc = arca_snp_certtable_parse(env->aux, env->aux_len, &ev.certs, &pe)) < 0)
		return refuse(res, failed, ARCA_HW_BAD_ENVELOPE, rc, &pe, e);
	memcpy(res->report_data, ev.report.report_data, 64);
	if ((rc = binding_matches(env, p, ev.report.report_data, &pe)) < 0) {
		rc = refuse(res, failed, ARCA_HW_BAD_BINDING, rc, &pe, e);
		goto out;
	}
	/* Only the auxblob's certificates: a VM's own table is the chain,
	 * and the ARK in it must be one pinned in the library. */
	rc = arca_snp_verify(&ev, NULL, NULL, now, o ? o->snp_cache : NULL, res);
	if (rc < 0 || !res->verified) {
		struct arca_errbuf ve;
		snprintf(ve.msg, sizeof ve.msg, "%s", res->reason);
		rc = refuse(res, failed, ARCA_HW_BAD_REPORT, rc, &ve, e);
		goto out;
	}
	/* The chain verified, so the leaf reads; its product is what the
	 * product constraint is about. */
	struct arca_snp_leaf li;
	X509 *leaf = ev.report.signing_key == ARCA_SNP_KEY_VLEK ? ev.certs.vlek : ev.certs.vcek;
	if ((rc = arca_snp_leaf_read(leaf, &li, &pe)) < 0) {
		rc = refuse(res, failed, ARCA_HW_BAD_REPORT, rc, &pe, e);
		goto out;
	}
	arca_hw_facts_from_snp(&ev.report, li.product, facts);
	rc = 0;
out:
	arca_snp_evidence_free(&ev);
	return rc;
}

static int verify_tdx(const struct arca_hw_envelope *env, const uint8_t *p, time_t now,
		      const struct arca_hw_opts *o, struct arca_hw_facts *facts, enum arca_hw_failure *failed,
		      struct arca_hw_result *res, struct arca_errbuf *e)
{
	struct arca_intel_quote q;
	struct arca_errbuf pe = {{0}};
	int rc = arca_intel_quote_parse(env->report, env->report_len, &q, &pe);
	if (rc < 0)
		return refuse(res, failed, ARCA_HW_BAD_ENVELOPE, rc, &pe, e);
	if (q.tee_type != ARCA_INTEL_TEE_TDX) {
		arca_errf(&pe, ARCA_EPARSE, "a TDX envelope holds a quote of another TEE (type 0x%x)", q.tee_type);
		return refuse(res, failed, ARCA_HW_BAD_ENVELOPE, ARCA_EPARSE, &pe, e);
	}
	memcpy(res->report_data, q.body + ARCA_TDX_OFF_REPORTDATA, 64);
	if ((rc = binding_matches(env, p, q.body + ARCA_TDX_OFF_REPORTDATA, &pe)) < 0)
		return refuse(res, failed, ARCA_HW_BAD_BINDING, rc, &pe, e);
	struct arca_intel_opts io = {
		.collateral = o ? o->collateral : NULL,
		.cache = o ? o->intel_cache : NULL,
		.root = o ? o->intel_root : NULL,
	};
	rc = arca_intel_quote_verify_opts(env->report, env->report_len, now, &io, res);
	if (rc < 0 || !res->verified) {
		struct arca_errbuf ve;
		snprintf(ve.msg, sizeof ve.msg, "%s", res->reason);
		return refuse(res, failed, ARCA_HW_BAD_REPORT, rc, &ve, e);
	}
	int status = res->tcb_status[0] ? arca_tcb_status_parse(res->tcb_status, strlen(res->tcb_status)) : -1;
	return arca_hw_facts_from_quote(&q, status, facts);
}

int arca_hw_evidence_verify(const uint8_t *p, size_t n, time_t now, const struct arca_service *svc,
			    const struct arca_hw_opts *opts, struct arca_hw_facts *facts, enum arca_hw_failure *failed,
			    struct arca_hw_result *res, struct arca_errbuf *e)
{
	struct arca_hw_envelope env;
	struct arca_errbuf pe = {{0}};
	int rc;

	ENSURE(res && facts, ARCA_EINVAL);
	memset(facts, 0, sizeof *facts);
	if (failed)
		*failed = ARCA_HW_OK;
	arca_hw_result_free(res);

	if ((rc = arca_hw_envelope_parse(p, n, &env, &pe)) < 0)
		return refuse(res, failed, ARCA_HW_BAD_ENVELOPE, rc, &pe, e);
	if (env.platform == ARCA_HW_PLATFORM_SEV_SNP)
		rc = verify_snp(&env, p, now, opts, facts, failed, res, e);
	else
		rc = verify_tdx(&env, p, now, opts, facts, failed, res, e);
	if (rc < 0)
		return rc;
	facts->flags = env.flags;
	facts->timestamp = env.timestamp;
	facts->pid = env.pid;
	facts->uid = env.uid;
	memcpy(facts->measurement, env.measurement, 32);
	memcpy(facts->report_data, env.report_data, 64);

	if (svc) {
		if (!arca_hw_platform_listed(facts, svc)) {
			arca_errf(&pe, ARCA_EDENIED, "service '%s' does not list %s under platform",
				  svc->name ? svc->name : "?", arca_hw_platform_name(facts->platform));
			return refuse(res, failed, ARCA_HW_NOT_LISTED, ARCA_EDENIED, &pe, e);
		}
		if ((rc = arca_hw_check_constraints(facts, svc, &pe)) < 0)
			return refuse(res, failed, ARCA_HW_CONSTRAINT, rc, &pe, e);
	}
	res->verified = 1;
	return 0;
}
