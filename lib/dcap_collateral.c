/* dcap_collateral.c: Intel DCAP collateral (TCB info, QE identity, root CA
 * and PCK CRLs with their issuer chains): reading it, checking it against
 * the pinned root, and computing a quote's TCB status from it.
 *
 * Intel signs the exact bytes of the tcbInfo / enclaveIdentity object, so
 * those bytes are kept as they arrived and the fields are read from them
 * alone; a reformatted or re-serialised copy would not verify, and fields
 * read from anywhere else would not be the signed ones. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "arca/buf.h"
#include "arca/encode.h"
#include "arca/intel.h"

#define DOC_MAX (1u << 20)
#define LEVELS_MAX 128
#define MODULE_IDS_MAX 16
#define CRL_MAX (1u << 20)
#define CHAIN_MAX (64u << 10)
#define JSON_DEPTH_MAX 32

/* ---- statuses ---- */

static const char *const status_names[] = {
	[ARCA_TCB_UP_TO_DATE] = "UpToDate",
	[ARCA_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
	[ARCA_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
	[ARCA_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
	[ARCA_TCB_OUT_OF_DATE] = "OutOfDate",
	[ARCA_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
	[ARCA_TCB_REVOKED] = "Revoked",
};
#define NSTATUS ((int)(sizeof status_names / sizeof status_names[0]))

const char *arca_tcb_status_name(int status)
{
	return status >= 0 && status < NSTATUS ? status_names[status] : NULL;
}

int arca_tcb_status_parse(const char *s, size_t n)
{
	for (int i = 0; s && i < NSTATUS; i++)
		if (strlen(status_names[i]) == n && memcmp(status_names[i], s, n) == 0)
			return i;
	return -1;
}

/* ---- the parsed collateral ---- */

struct isv_level {
	uint16_t isvsvn;
	int status;
};

struct tcb_level {
	uint8_t sgx[16];
	uint16_t pcesvn;
	uint8_t tdx[16];
	int status;
	time_t date;
};

struct module_id {
	char id[16];
	uint8_t mrsigner[48], attr[8], mask[8];
	struct isv_level *levels;
	size_t nlevels;
};

struct tcb_info {
	int tdx;
	time_t issue, next;
	uint8_t fmspc[6], pceid[2];
	int have_module;
	uint8_t mod_mrsigner[48], mod_attr[8], mod_mask[8];
	struct module_id *ids;
	size_t nids;
	struct tcb_level *levels;
	size_t nlevels;
};

struct qe_identity {
	int tdx;
	time_t issue, next;
	uint32_t misc, misc_mask;
	uint8_t attr[16], attr_mask[16], mrsigner[32];
	uint16_t prodid;
	struct isv_level *levels;
	size_t nlevels;
};

struct signed_doc {
	int have;
	uint8_t *text; /* the signed bytes, exactly */
	size_t len;
	uint8_t sig[64];
};

struct arca_dcap_collateral {
	struct signed_doc tcb_doc, qe_doc;
	struct tcb_info tcb;
	struct qe_identity qe;
	struct arca_buf tcb_chain, qe_chain, pck_crl_chain; /* PEM; len 0 = absent */
	X509_CRL *root_crl, *pck_crl;
};

static void tcb_info_free(struct tcb_info *t)
{
	for (size_t i = 0; i < t->nids; i++)
		free(t->ids[i].levels);
	free(t->ids);
	free(t->levels);
	memset(t, 0, sizeof *t);
}

static void coll_clear(struct arca_dcap_collateral *c)
{
	free(c->tcb_doc.text);
	free(c->qe_doc.text);
	tcb_info_free(&c->tcb);
	free(c->qe.levels);
	arca_buf_free(&c->tcb_chain);
	arca_buf_free(&c->qe_chain);
	arca_buf_free(&c->pck_crl_chain);
	X509_CRL_free(c->root_crl);
	X509_CRL_free(c->pck_crl);
	memset(c, 0, sizeof *c);
	arca_buf_init(&c->tcb_chain, CHAIN_MAX, 0);
	arca_buf_init(&c->qe_chain, CHAIN_MAX, 0);
	arca_buf_init(&c->pck_crl_chain, CHAIN_MAX, 0);
}

void arca_dcap_collateral_free(struct arca_dcap_collateral *c)
{
	if (!c)
		return;
	coll_clear(c);
	free(c);
}

/* ---- JSON field readers (what names the field in the message) ---- */

static int bad(struct arca_errbuf *e, const char *what, const char *key, const char *want)
{
	return arca_errf(e, ARCA_EPARSE, "%s: '%s' is missing or is not %s", what, key, want);
}

static int j_str(json_t *o, const char *k, const char **s, size_t *n, const char *what, struct arca_errbuf *e)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		return bad(e, what, k, "a string");
	*s = json_string_value(v);
	*n = json_string_length(v);
	return 0;
}

static int j_hex(json_t *o, const char *k, uint8_t *out, size_t n, const char *what, struct arca_errbuf *e)
{
	const char *s;
	size_t sl, got = 0;
	GUARD(j_str(o, k, &s, &sl, what, e));
	if (sl != 2 * n || arca_hex_decode(s, sl, out, n, &got) < 0 || got != n) {
		char want[48];
		snprintf(want, sizeof want, "%zu hex digits", 2 * n);
		return bad(e, what, k, want);
	}
	return 0;
}

static int j_int(json_t *o, const char *k, json_int_t min, json_int_t max, json_int_t *out, const char *what,
		 struct arca_errbuf *e)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		char want[64];
		snprintf(want, sizeof want, "an integer in %lld..%lld", (long long)min, (long long)max);
		return bad(e, what, k, want);
	}
	*out = json_integer_value(v);
	return 0;
}

static int j_time(json_t *o, const char *k, time_t *t, const char *what, struct arca_errbuf *e)
{
	const char *s;
	size_t n;
	GUARD(j_str(o, k, &s, &n, what, e));
	if (arca_intel_time_parse(s, t) < 0)
		return bad(e, what, k, "a date like 2025-06-19T10:16:03Z");
	return 0;
}

static int j_status(json_t *o, int *st, const char *what, struct arca_errbuf *e)
{
	const char *s;
	size_t n;
	GUARD(j_str(o, "tcbStatus", &s, &n, what, e));
	*st = arca_tcb_status_parse(s, n);
	if (*st < 0)
		return bad(e, what, "tcbStatus", "a TCB status Intel defines");
	return 0;
}

static json_t *j_array(json_t *o, const char *k, size_t min, size_t max)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_array(v) || json_array_size(v) < min || json_array_size(v) > max)
		return NULL;
	return v;
}

/* 16 components {"svn": 0..255, …} */
static int j_components(json_t *tcb, const char *k, uint8_t out[16], const char *what, struct arca_errbuf *e)
{
	json_t *a = j_array(tcb, k, 16, 16);
	if (!a)
		return bad(e, what, k, "an array of 16 components");
	for (size_t i = 0; i < 16; i++) {
		json_int_t svn;
		json_t *c = json_array_get(a, i);
		if (!json_is_object(c))
			return bad(e, what, k, "an array of 16 objects");
		GUARD(j_int(c, "svn", 0, 255, &svn, what, e));
		out[i] = (uint8_t)svn;
	}
	return 0;
}

/* [{"tcb": {"isvsvn": n}, "tcbDate": …, "tcbStatus": …}, …] */
static int j_isv_levels(json_t *o, json_int_t max_svn, struct isv_level **out, size_t *n, const char *what,
			struct arca_errbuf *e)
{
	json_t *a = j_array(o, "tcbLevels", 1, LEVELS_MAX);
	if (!a)
		return bad(e, what, "tcbLevels", "an array of 1 to 128 levels");
	*n = json_array_size(a);
	*out = calloc(*n, sizeof **out);
	if (!*out)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < *n; i++) {
		json_t *l = json_array_get(a, i), *t = json_object_get(l, "tcb");
		json_int_t svn;
		time_t date;
		if (!json_is_object(l) || !json_is_object(t))
			return bad(e, what, "tcbLevels[].tcb", "an object");
		GUARD(j_int(t, "isvsvn", 0, max_svn, &svn, what, e));
		GUARD(j_time(l, "tcbDate", &date, what, e));
		GUARD(j_status(l, &(*out)[i].status, what, e));
		(*out)[i].isvsvn = (uint16_t)svn;
	}
	return 0;
}

static int load_text(const uint8_t *p, size_t n, json_t **out, const char *what, struct arca_errbuf *e)
{
	json_error_t jerr;
	*out = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return arca_errf(e, ARCA_EPARSE, "%s is not JSON (line %d: %s)", what, jerr.line, jerr.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return arca_errf(e, ARCA_EPARSE, "%s is not a JSON object", what);
	}
	return 0;
}

/* ---- TCB info (version 3, "SGX" or "TDX") ---- */

static int parse_module_ids(json_t *o, struct tcb_info *t, struct arca_errbuf *e)
{
	static const char what[] = "TCB info tdxModuleIdentities";
	json_t *a = json_object_get(o, "tdxModuleIdentities");
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > MODULE_IDS_MAX)
		return bad(e, "TCB info", "tdxModuleIdentities", "an array of at most 16 identities");
	t->nids = json_array_size(a);
	t->ids = calloc(t->nids ? t->nids : 1, sizeof *t->ids);
	if (!t->ids)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nids; i++) {
		struct module_id *m = &t->ids[i];
		json_t *mi = json_array_get(a, i);
		const char *id;
		size_t idl;
		if (!json_is_object(mi))
			return bad(e, what, "[]", "an object");
		GUARD(j_str(mi, "id", &id, &idl, what, e));
		if (idl == 0 || idl >= sizeof m->id)
			return bad(e, what, "id", "a short name like TDX_03");
		memcpy(m->id, id, idl);
		GUARD(j_hex(mi, "mrsigner", m->mrsigner, 48, what, e));
		GUARD(j_hex(mi, "attributes", m->attr, 8, what, e));
		GUARD(j_hex(mi, "attributesMask", m->mask, 8, what, e));
		GUARD(j_isv_levels(mi, 255, &m->levels, &m->nlevels, what, e));
	}
	return 0;
}

static int parse_tcb_info(const uint8_t *p, size_t n, struct tcb_info *t, struct arca_errbuf *e)
{
	static const char what[] = "TCB info";
	json_t *o = NULL, *levels;
	json_int_t ver, type, num;
	const char *id;
	size_t idl;
	int rc;
	memset(t, 0, sizeof *t);
	GUARD(load_text(p, n, &o, what, e));
	GUARD_GOTO(j_str(o, "id", &id, &idl, what, e), out);
	if (idl == 3 && memcmp(id, "SGX", 3) == 0)
		t->tdx = 0;
	else if (idl == 3 && memcmp(id, "TDX", 3) == 0)
		t->tdx = 1;
	else {
		rc = bad(e, what, "id", "\"SGX\" or \"TDX\"");
		goto out;
	}
	json_t *v = json_object_get(o, "version");
	if (!json_is_integer(v) || json_integer_value(v) != 3) {
		rc = arca_errf(e, ARCA_EUNSUPPORTED, "TCB info version %lld is not supported; fetch version 3 "
				 "(Intel PCS API v4)", json_is_integer(v) ? (long long)json_integer_value(v) : -1LL);
		goto out;
	}
	ver = 3;
	(void)ver;
	GUARD_GOTO(j_time(o, "issueDate", &t->issue, what, e), out);
	GUARD_GOTO(j_time(o, "nextUpdate", &t->next, what, e), out);
	GUARD_GOTO(j_hex(o, "fmspc", t->fmspc, sizeof t->fmspc, what, e), out);
	GUARD_GOTO(j_hex(o, "pceId", t->pceid, sizeof t->pceid, what, e), out);
	GUARD_GOTO(j_int(o, "tcbType", 0, 0, &type, what, e), out);
	GUARD_GOTO(j_int(o, "tcbEvaluationDataNumber", 0, INT_MAX, &num, what, e), out);
	if (t->tdx) {
		json_t *m = json_object_get(o, "tdxModule");
		if (!json_is_object(m)) {
			rc = bad(e, what, "tdxModule", "an object");
			goto out;
		}
		GUARD_GOTO(j_hex(m, "mrsigner", t->mod_mrsigner, 48, "TCB info tdxModule", e), out);
		GUARD_GOTO(j_hex(m, "attributes", t->mod_attr, 8, "TCB info tdxModule", e), out);
		GUARD_GOTO(j_hex(m, "attributesMask", t->mod_mask, 8, "TCB info tdxModule", e), out);
		t->have_module = 1;
		GUARD_GOTO(parse_module_ids(o, t, e), out);
	}
	levels = j_array(o, "tcbLevels", 1, LEVELS_MAX);
	if (!levels) {
		rc = bad(e, what, "tcbLevels", "an array of 1 to 128 levels");
		goto out;
	}
	t->nlevels = json_array_size(levels);
	t->levels = calloc(t->nlevels, sizeof *t->levels);
	if (!t->levels) {
		rc = arca_errf(e, ARCA_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < t->nlevels; i++) {
		struct tcb_level *l = &t->levels[i];
		json_t *lv = json_array_get(levels, i), *tcb = json_object_get(lv, "tcb");
		json_int_t pcesvn;
		if (!json_is_object(lv) || !json_is_object(tcb)) {
			rc = bad(e, what, "tcbLevels[].tcb", "an object");
			goto out;
		}
		GUARD_GOTO(j_components(tcb, "sgxtcbcomponents", l->sgx, what, e), out);
		GUARD_GOTO(j_int(tcb, "pcesvn", 0, 65535, &pcesvn, what, e), out);
		l->pcesvn = (uint16_t)pcesvn;
		if (t->tdx)
			GUARD_GOTO(j_components(tcb, "tdxtcbcomponents", l->tdx, what, e), out);
		GUARD_GOTO(j_time(lv, "tcbDate", &l->date, what, e), out);
		GUARD_GOTO(j_status(lv, &l->status, what, e), out);
	}
	rc = 0;
out:
	json_decref(o);
	if (rc < 0)
		tcb_info_free(t);
	return rc;
}

/* ---- QE identity (version 2, "QE" or "TD_QE") ---- */

static int parse_qe_identity(const uint8_t *p, size_t n, struct qe_identity *q, struct arca_errbuf *e)
{
	static const char what[] = "QE identity";
	json_t *o = NULL;
	const char *id;
	size_t idl;
	json_int_t num, prodid;
	uint8_t m[4];
	int rc;
	memset(q, 0, sizeof *q);
	GUARD(load_text(p, n, &o, what, e));
	GUARD_GOTO(j_str(o, "id", &id, &idl, what, e), out);
	if (idl == 2 && memcmp(id, "QE", 2) == 0)
		q->tdx = 0;
	else if (idl == 5 && memcmp(id, "TD_QE", 5) == 0)
		q->tdx = 1;
	else {
		rc = bad(e, what, "id", "\"QE\" or \"TD_QE\" (a quoting enclave's identity)");
		goto out;
	}
	json_t *v = json_object_get(o, "version");
	if (!json_is_integer(v) || json_integer_value(v) != 2) {
		rc = arca_errf(e, ARCA_EUNSUPPORTED, "QE identity version %lld is not supported; fetch version 2",
			       json_is_integer(v) ? (long long)json_integer_value(v) : -1LL);
		goto out;
	}
	GUARD_GOTO(j_time(o, "issueDate", &q->issue, what, e), out);
	GUARD_GOTO(j_time(o, "nextUpdate", &q->next, what, e), out);
	GUARD_GOTO(j_int(o, "tcbEvaluationDataNumber", 0, INT_MAX, &num, what, e), out);
	/* Intel writes MISCSELECT as a number in hex; the report holds it
	 * little endian. */
	GUARD_GOTO(j_hex(o, "miscselect", m, 4, what, e), out);
	q->misc = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
	GUARD_GOTO(j_hex(o, "miscselectMask", m, 4, what, e), out);
	q->misc_mask = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
	GUARD_GOTO(j_hex(o, "attributes", q->attr, 16, what, e), out);
	GUARD_GOTO(j_hex(o, "attributesMask", q->attr_mask, 16, what, e), out);
	GUARD_GOTO(j_hex(o, "mrsigner", q->mrsigner, 32, what, e), out);
	GUARD_GOTO(j_int(o, "isvprodid", 0, 65535, &prodid, what, e), out);
	q->prodid = (uint16_t)prodid;
	GUARD_GOTO(j_isv_levels(o, 65535, &q->levels, &q->nlevels, what, e), out);
	rc = 0;
out:
	json_decref(o);
	if (rc < 0) {
		free(q->levels);
		memset(q, 0, sizeof *q);
	}
	return rc;
}

/* ---- raw JSON spans (for PCS responses) ---- */

static size_t ws(const uint8_t *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

static int skip_string(const uint8_t *s, size_t n, size_t *i)
{
	ENSURE(*i < n && s[*i] == '"', ARCA_EPARSE);
	for (size_t k = *i + 1; k < n; k++) {
		if (s[k] == '"') {
			*i = k + 1;
			return 0;
		}
		if (s[k] == '\\')
			k++;
		else if (s[k] < 0x20)
			return ARCA_EPARSE;
	}
	return ARCA_EPARSE;
}

/* Skips one value; jansson has already judged the document, this only has
 * to find where each value starts and ends. */
static int skip_value(const uint8_t *s, size_t n, size_t *i, int depth)
{
	ENSURE(depth < JSON_DEPTH_MAX && *i < n, ARCA_EPARSE);
	uint8_t open = s[*i];
	if (open == '"')
		return skip_string(s, n, i);
	if (open != '{' && open != '[') {
		size_t k = *i;
		while (k < n && s[k] != ',' && s[k] != '}' && s[k] != ']' && s[k] != ' ' && s[k] != '\t' &&
		       s[k] != '\r' && s[k] != '\n')
			k++;
		ENSURE(k > *i, ARCA_EPARSE);
		*i = k;
		return 0;
	}
	uint8_t close = open == '{' ? '}' : ']';
	size_t k = ws(s, n, *i + 1);
	if (k < n && s[k] == close) {
		*i = k + 1;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			GUARD(skip_string(s, n, &k));
			k = ws(s, n, k);
			ENSURE(k < n && s[k] == ':', ARCA_EPARSE);
			k = ws(s, n, k + 1);
		}
		GUARD(skip_value(s, n, &k, depth + 1));
		k = ws(s, n, k);
		ENSURE(k < n, ARCA_EPARSE);
		if (s[k] == close) {
			*i = k + 1;
			return 0;
		}
		ENSURE(s[k] == ',', ARCA_EPARSE);
		k = ws(s, n, k + 1);
	}
}

/* The bytes of the value of top-level key `key` in object document s. */
static int member_span(const uint8_t *s, size_t n, const char *key, size_t *from, size_t *to)
{
	size_t kl = strlen(key);
	size_t i = ws(s, n, 0);
	ENSURE(i < n && s[i] == '{', ARCA_EPARSE);
	i = ws(s, n, i + 1);
	while (i < n && s[i] != '}') {
		size_t ks = i;
		GUARD(skip_string(s, n, &i));
		/* Keys are compared as written: an escaped spelling of the key
		 * is not found here, and jansson's view is cross-checked. */
		int hit = i - ks == kl + 2 && memcmp(s + ks + 1, key, kl) == 0;
		i = ws(s, n, i);
		ENSURE(i < n && s[i] == ':', ARCA_EPARSE);
		i = ws(s, n, i + 1);
		size_t vs = i;
		GUARD(skip_value(s, n, &i, 1));
		if (hit) {
			*from = vs;
			*to = i;
			return 0;
		}
		i = ws(s, n, i);
		if (i < n && s[i] == ',')
			i = ws(s, n, i + 1);
	}
	return ARCA_ENOTFOUND;
}

/* ---- documents ---- */

static int hex_sig(const char *s, size_t n, uint8_t sig[64])
{
	size_t got = 0;
	ENSURE(n == 128 && arca_hex_decode(s, n, sig, 64, &got) == 0 && got == 64, ARCA_EPARSE);
	return 0;
}

static int keep_text(struct signed_doc *d, const uint8_t *p, size_t n)
{
	d->text = malloc(n ? n : 1);
	ENSURE(d->text != NULL, ARCA_ENOMEM);
	memcpy(d->text, p, n);
	d->len = n;
	d->have = 1;
	return 0;
}

/* {"tcbInfo": {…}, "signature": "…"} or {"enclaveIdentity": …}: the object
 * is signed exactly as it stands in the document. */
static int load_pcs_response(const uint8_t *p, size_t n, json_t *doc, const char *key,
			     struct arca_dcap_collateral *c, struct arca_errbuf *e)
{
	const char *what = strcmp(key, "tcbInfo") == 0 ? "TCB info response" : "QE identity response";
	struct signed_doc *d = strcmp(key, "tcbInfo") == 0 ? &c->tcb_doc : &c->qe_doc;
	const char *sig;
	size_t sl, from = 0, to = 0;
	if (json_object_size(doc) != 2)
		return arca_errf(e, ARCA_EPARSE, "%s: expected exactly '%s' and 'signature'", what, key);
	GUARD(j_str(doc, "signature", &sig, &sl, what, e));
	if (hex_sig(sig, sl, d->sig) < 0)
		return bad(e, what, "signature", "128 hex digits");
	if (member_span(p, n, key, &from, &to) < 0)
		return arca_errf(e, ARCA_EPARSE, "%s: cannot locate the signed '%s' text", what, key);
	/* What is signed must be what jansson read. */
	json_t *again = json_loadb((const char *)p + from, to - from, JSON_REJECT_DUPLICATES, NULL);
	int same = again && json_equal(again, json_object_get(doc, key));
	json_decref(again);
	if (!same)
		return arca_errf(e, ARCA_EPARSE, "%s: the signed '%s' text is ambiguous", what, key);
	GUARD(keep_text(d, p + from, to - from));
	if (d == &c->tcb_doc)
		return parse_tcb_info(d->text, d->len, &c->tcb, e);
	return parse_qe_identity(d->text, d->len, &c->qe, e);
}

static int load_crl(const char *hex, size_t n, X509_CRL **out, const char *key, struct arca_errbuf *e)
{
	uint8_t *der = malloc(n / 2 + 1);
	size_t dl = 0;
	int rc = 0;
	if (!der)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	if (n > 2 * CRL_MAX || arca_hex_decode(hex, n, der, n / 2 + 1, &dl) < 0) {
		rc = bad(e, "collateral", key, "a hex DER CRL");
		goto out;
	}
	const unsigned char *q = der;
	*out = d2i_X509_CRL(NULL, &q, (long)dl);
	if (!*out || (size_t)(q - der) != dl) {
		X509_CRL_free(*out);
		*out = NULL;
		ERR_clear_error();
		rc = bad(e, "collateral", key, "one DER CRL");
	}
out:
	free(der);
	return rc;
}

static int keep_chain(struct arca_buf *b, const char *pem, size_t n, const char *key, struct arca_errbuf *e)
{
	X509 *certs[4];
	size_t k = 0;
	struct arca_errbuf why = { { 0 } };
	if (arca_intel_pem_certs((const uint8_t *)pem, n, certs, 4, &k, &why) < 0)
		return arca_errf(e, ARCA_EPARSE, "collateral: '%s' is not a PEM certificate chain: %s", key, why.msg);
	while (k > 0)
		X509_free(certs[--k]);
	if (n == 0 || arca_buf_append(b, pem, n) < 0)
		return arca_errf(e, ARCA_ETOOBIG, "collateral: '%s' is too large", key);
	return 0;
}

static int load_bundle(json_t *doc, struct arca_dcap_collateral *c, struct arca_errbuf *e)
{
	const char *key;
	json_t *v;
	const char *tcb_sig = NULL, *qe_sig = NULL;
	size_t tcb_sig_len = 0, qe_sig_len = 0;
	json_object_foreach(doc, key, v) {
		if (!json_is_string(v))
			return bad(e, "collateral", key, "a string");
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		if (strcmp(key, "tcb_info") == 0) {
			GUARD(keep_text(&c->tcb_doc, (const uint8_t *)s, n));
			GUARD(parse_tcb_info(c->tcb_doc.text, n, &c->tcb, e));
		} else if (strcmp(key, "qe_identity") == 0) {
			GUARD(keep_text(&c->qe_doc, (const uint8_t *)s, n));
			GUARD(parse_qe_identity(c->qe_doc.text, n, &c->qe, e));
		} else if (strcmp(key, "tcb_info_signature") == 0) {
			tcb_sig = s;
			tcb_sig_len = n;
		} else if (strcmp(key, "qe_identity_signature") == 0) {
			qe_sig = s;
			qe_sig_len = n;
		} else if (strcmp(key, "tcb_info_issuer_chain") == 0) {
			GUARD(keep_chain(&c->tcb_chain, s, n, key, e));
		} else if (strcmp(key, "qe_identity_issuer_chain") == 0) {
			GUARD(keep_chain(&c->qe_chain, s, n, key, e));
		} else if (strcmp(key, "pck_crl_issuer_chain") == 0) {
			GUARD(keep_chain(&c->pck_crl_chain, s, n, key, e));
		} else if (strcmp(key, "root_ca_crl") == 0) {
			GUARD(load_crl(s, n, &c->root_crl, key, e));
		} else if (strcmp(key, "pck_crl") == 0) {
			GUARD(load_crl(s, n, &c->pck_crl, key, e));
		} else {
			return arca_errf(e, ARCA_EPARSE, "collateral: unknown key '%s'", key);
		}
	}
	/* A signature belongs with the text it signs, in the same document. */
	if (c->tcb_doc.have != (tcb_sig != NULL) || c->qe_doc.have != (qe_sig != NULL))
		return arca_errf(e, ARCA_EPARSE,
				 "collateral: tcb_info and qe_identity must each come with their _signature");
	if (tcb_sig && hex_sig(tcb_sig, tcb_sig_len, c->tcb_doc.sig) < 0)
		return bad(e, "collateral", "tcb_info_signature", "128 hex digits");
	if (qe_sig && hex_sig(qe_sig, qe_sig_len, c->qe_doc.sig) < 0)
		return bad(e, "collateral", "qe_identity_signature", "128 hex digits");
	return 0;
}

#define TAKE(field, have_dst, have_src)                                                             \
	do {                                                                                        \
		if ((have_dst) && (have_src))                                                       \
			return arca_errf(e, ARCA_EEXIST, "collateral: %s is given twice", #field);  \
	} while (0)

/* Moves what src holds into c, refusing (before moving anything) a part
 * both already have. */
static int merge(struct arca_dcap_collateral *c, struct arca_dcap_collateral *src, struct arca_errbuf *e)
{
	TAKE(tcb_info, c->tcb_doc.have, src->tcb_doc.have);
	TAKE(qe_identity, c->qe_doc.have, src->qe_doc.have);
	TAKE(tcb_info_issuer_chain, c->tcb_chain.len, src->tcb_chain.len);
	TAKE(qe_identity_issuer_chain, c->qe_chain.len, src->qe_chain.len);
	TAKE(pck_crl_issuer_chain, c->pck_crl_chain.len, src->pck_crl_chain.len);
	TAKE(root_ca_crl, c->root_crl, src->root_crl);
	TAKE(pck_crl, c->pck_crl, src->pck_crl);
	struct arca_buf tmp;
	if (src->tcb_doc.have) {
		c->tcb_doc = src->tcb_doc;
		c->tcb = src->tcb;
		memset(&src->tcb_doc, 0, sizeof src->tcb_doc);
		memset(&src->tcb, 0, sizeof src->tcb);
	}
	if (src->qe_doc.have) {
		c->qe_doc = src->qe_doc;
		c->qe = src->qe;
		memset(&src->qe_doc, 0, sizeof src->qe_doc);
		memset(&src->qe, 0, sizeof src->qe);
	}
#define SWAP_BUF(f)                \
	if (src->f.len) {          \
		tmp = c->f;        \
		c->f = src->f;     \
		src->f = tmp;      \
	}
	SWAP_BUF(tcb_chain);
	SWAP_BUF(qe_chain);
	SWAP_BUF(pck_crl_chain);
#undef SWAP_BUF
	if (src->root_crl) {
		c->root_crl = src->root_crl;
		src->root_crl = NULL;
	}
	if (src->pck_crl) {
		c->pck_crl = src->pck_crl;
		src->pck_crl = NULL;
	}
	return 0;
}

int arca_dcap_collateral_add(struct arca_dcap_collateral *c, const uint8_t *p, size_t n, struct arca_errbuf *e)
{
	if (!c || !p)
		return arca_errf(e, ARCA_EINVAL, "no collateral");
	if (n > DOC_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "collateral larger than %u bytes", DOC_MAX);
	json_t *doc = NULL;
	struct arca_dcap_collateral part;
	memset(&part, 0, sizeof part);
	coll_clear(&part);
	int rc = load_text(p, n, &doc, "collateral", e);
	if (rc < 0)
		goto out;
	if (json_object_get(doc, "tcbInfo"))
		rc = load_pcs_response(p, n, doc, "tcbInfo", &part, e);
	else if (json_object_get(doc, "enclaveIdentity"))
		rc = load_pcs_response(p, n, doc, "enclaveIdentity", &part, e);
	else
		rc = load_bundle(doc, &part, e);
	if (rc == 0)
		rc = merge(c, &part, e);
out:
	json_decref(doc);
	coll_clear(&part);
	return rc;
}

int arca_dcap_collateral_load(const uint8_t *p, size_t n, struct arca_dcap_collateral **out, struct arca_errbuf *e)
{
	*out = NULL;
	struct arca_dcap_collateral *c = calloc(1, sizeof *c);
	if (!c)
		return arca_errf(e, ARCA_ENOMEM, "out of memory");
	coll_clear(c);
	int rc = arca_dcap_collateral_add(c, p, n, e);
	if (rc < 0) {
		arca_dcap_collateral_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- TCB status ---- */

/* Folds the status of a part that has its own TCB (the QE, the TDX module)
 * into the platform's, the way Intel's verification library does. */
static int converge(int platform, int part)
{
	if (part == ARCA_TCB_REVOKED)
		return ARCA_TCB_REVOKED;
	if (part == ARCA_TCB_OUT_OF_DATE) {
		if (platform == ARCA_TCB_UP_TO_DATE || platform == ARCA_TCB_SW_HARDENING_NEEDED)
			return ARCA_TCB_OUT_OF_DATE;
		if (platform == ARCA_TCB_CONFIGURATION_NEEDED ||
		    platform == ARCA_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
			return ARCA_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	}
	return platform;
}

/* Levels are listed best first: the first one a SVN reaches is its. */
static int isv_status(const struct isv_level *l, size_t n, unsigned svn)
{
	for (size_t i = 0; i < n; i++)
		if (svn >= l[i].isvsvn)
			return l[i].status;
	return -1;
}

static int tdx_reaches(const uint8_t tee_tcb_svn[16], const struct tcb_level *l)
{
	/* With a TDX module identity (version byte > 0) the first two bytes
	 * are the module's, judged by the identity instead. */
	for (size_t i = tee_tcb_svn[1] > 0 ? 2 : 0; i < 16; i++)
		if (tee_tcb_svn[i] < l->tdx[i])
			return 0;
	return 1;
}

static int sgx_reaches(const struct arca_pck_ext *pck, const struct tcb_level *l)
{
	for (size_t i = 0; i < 16; i++)
		if (pck->comp_svn[i] < l->sgx[i])
			return 0;
	return pck->pcesvn >= l->pcesvn;
}

static const char *tee_name(int tdx)
{
	return tdx ? "TDX" : "SGX";
}

static int check_qe(const struct qe_identity *id, const uint8_t *r, int *status, struct arca_errbuf *e)
{
	uint32_t misc = (uint32_t)r[ARCA_SGX_OFF_MISCSELECT] | (uint32_t)r[ARCA_SGX_OFF_MISCSELECT + 1] << 8 |
			(uint32_t)r[ARCA_SGX_OFF_MISCSELECT + 2] << 16 | (uint32_t)r[ARCA_SGX_OFF_MISCSELECT + 3] << 24;
	if ((misc & id->misc_mask) != id->misc)
		return arca_errf(e, ARCA_EDENIED, "the QE's MISCSELECT does not match the QE identity");
	for (size_t i = 0; i < 16; i++)
		if ((r[ARCA_SGX_OFF_ATTRIBUTES + i] & id->attr_mask[i]) != id->attr[i])
			return arca_errf(e, ARCA_EDENIED, "the QE's attributes do not match the QE identity");
	if (memcmp(r + ARCA_SGX_OFF_MRSIGNER, id->mrsigner, 32) != 0)
		return arca_errf(e, ARCA_EDENIED, "the QE's MRSIGNER is not the QE identity's: not Intel's quoting enclave");
	unsigned prodid = (unsigned)(r[ARCA_SGX_OFF_ISVPRODID] | r[ARCA_SGX_OFF_ISVPRODID + 1] << 8);
	if (prodid != id->prodid)
		return arca_errf(e, ARCA_EDENIED, "the QE's ISVPRODID %u is not the QE identity's %u", prodid,
				 (unsigned)id->prodid);
	unsigned svn = (unsigned)(r[ARCA_SGX_OFF_ISVSVN] | r[ARCA_SGX_OFF_ISVSVN + 1] << 8);
	*status = isv_status(id->levels, id->nlevels, svn);
	if (*status < 0)
		*status = ARCA_TCB_REVOKED; /* below every level Intel lists */
	return 0;
}

static int check_module(const struct tcb_info *t, const uint8_t *body, int *status, struct arca_errbuf *e)
{
	const uint8_t *tee = body + ARCA_TDX_OFF_TEE_TCB_SVN;
	const uint8_t *mrsigner = t->mod_mrsigner, *attr = t->mod_attr, *mask = t->mod_mask;
	*status = -1;
	if (tee[1] > 0) {
		char want[16];
		const struct module_id *m = NULL;
		snprintf(want, sizeof want, "TDX_%02X", tee[1]);
		for (size_t i = 0; i < t->nids && !m; i++)
			if (strcasecmp(t->ids[i].id, want) == 0)
				m = &t->ids[i];
		if (!m)
			return arca_errf(e, ARCA_EDENIED, "the TCB info has no identity %s for this TDX module", want);
		mrsigner = m->mrsigner;
		attr = m->attr;
		mask = m->mask;
		*status = isv_status(m->levels, m->nlevels, tee[0]);
		if (*status < 0)
			return arca_errf(e, ARCA_EDENIED, "TDX module %s SVN %u is below every level of the TCB info",
					 want, tee[0]);
	}
	if (memcmp(body + ARCA_TDX_OFF_MRSIGNERSEAM, mrsigner, 48) != 0)
		return arca_errf(e, ARCA_EDENIED, "the TDX module's MRSIGNERSEAM is not the TCB info's");
	for (size_t i = 0; i < 8; i++)
		if ((body[ARCA_TDX_OFF_SEAMATTR + i] & mask[i]) != attr[i])
			return arca_errf(e, ARCA_EDENIED, "the TDX module's SEAM attributes are not the TCB info's");
	return 0;
}

int arca_dcap_tcb_evaluate(const struct arca_dcap_collateral *c, const struct arca_intel_quote *q,
			   const struct arca_pck_ext *pck, struct arca_dcap_tcb *out, struct arca_errbuf *e)
{
	memset(out, 0, sizeof *out);
	out->status = out->platform_status = out->module_status = out->qe_status = -1;
	if (!c || !c->tcb_doc.have || !c->qe_doc.have)
		return arca_errf(e, ARCA_EINVAL, "TCB info and QE identity are both needed for a TCB status");
	int tdx = q->tee_type == ARCA_INTEL_TEE_TDX;
	if (c->tcb.tdx != tdx)
		return arca_errf(e, ARCA_EDENIED, "the TCB info is for %s, the quote is %s", tee_name(c->tcb.tdx),
				 tee_name(tdx));
	if (c->qe.tdx != tdx)
		return arca_errf(e, ARCA_EDENIED, "the QE identity is for %s, the quote is %s", tee_name(c->qe.tdx),
				 tee_name(tdx));
	GUARD(check_qe(&c->qe, q->qe_report, &out->qe_status, e));

	const struct tcb_level *sgx = NULL, *match = NULL;
	const uint8_t *tee = tdx ? q->body + ARCA_TDX_OFF_TEE_TCB_SVN : NULL;
	for (size_t i = 0; i < c->tcb.nlevels && !match; i++) {
		const struct tcb_level *l = &c->tcb.levels[i];
		if (!sgx_reaches(pck, l))
			continue;
		if (!sgx)
			sgx = l;
		if (!tdx || tdx_reaches(tee, l))
			match = l;
	}
	if (!sgx)
		return arca_errf(e, ARCA_EDENIED,
				 "TCB not supported: the platform's SGX TCB (PCK certificate) is below every level of "
				 "the TCB info");
	if (!match)
		return arca_errf(e, ARCA_EDENIED,
				 "TCB not supported: the TD's TEE TCB SVN is below every level of the TCB info");
	out->platform_status = match->status;
	out->tcb_date = match->date;
	int status = match->status;
	if (tdx) {
		GUARD(check_module(&c->tcb, q->body, &out->module_status, e));
		if (out->module_status >= 0)
			status = converge(status, out->module_status);
	}
	out->status = converge(status, out->qe_status);
	return 0;
}

/* ---- checks against the root ---- */

static void name_cn(X509_NAME *n, char *out, size_t cap)
{
	int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
	const ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)) : NULL;
	size_t j = 0;
	if (s) {
		const unsigned char *d = ASN1_STRING_get0_data(s);
		for (int k = 0; k < ASN1_STRING_length(s) && j + 1 < cap; k++)
			out[j++] = d[k] >= 0x20 && d[k] < 0x7f ? (char)d[k] : '?';
	}
	out[j] = '\0';
}

static int check_date(const char *what, time_t from, time_t until, time_t at, const char *from_name,
		      const char *until_name, struct arca_errbuf *e)
{
	char when[ARCA_INTEL_TIME_LEN];
	if (at < from) {
		arca_intel_time_format(from, when);
		return arca_errf(e, ARCA_EDENIED, "the %s is not valid before %s (%s); check the verification time",
				 what, when, from_name);
	}
	if (at > until) {
		arca_intel_time_format(until, when);
		return arca_errf(e, ARCA_EDENIED, "the %s expired on %s (%s); fetch fresh collateral from Intel PCS",
				 what, when, until_name);
	}
	return 0;
}

static int check_crl(X509_CRL *crl, X509 *issuer, const char *what, time_t at, struct arca_errbuf *e)
{
	char have[128], want[128];
	time_t last, next;
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0) {
		name_cn(X509_CRL_get_issuer(crl), have, sizeof have);
		arca_intel_cert_name(issuer, want, sizeof want);
		return arca_errf(e, ARCA_EDENIED,
				 "the %s is issued by '%s', not by '%s' of this quote; give the collateral of this "
				 "platform",
				 what, have, want);
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
		ERR_clear_error();
		return arca_errf(e, ARCA_ECRYPTO, "the signature of the %s does not verify", what);
	}
	if (!X509_CRL_get0_nextUpdate(crl) || arca_intel_asn1_time(X509_CRL_get0_lastUpdate(crl), &last) < 0 ||
	    arca_intel_asn1_time(X509_CRL_get0_nextUpdate(crl), &next) < 0)
		return arca_errf(e, ARCA_EPARSE, "the %s has no readable thisUpdate/nextUpdate", what);
	return check_date(what, last, next, at, "thisUpdate", "nextUpdate", e);
}

static int not_revoked(X509_CRL *crl, X509 *cert, const char *what, struct arca_errbuf *e)
{
	X509_REVOKED *r = NULL;
	if (X509_CRL_get0_by_cert(crl, &r, cert) == 1) {
		char name[128];
		arca_intel_cert_name(cert, name, sizeof name);
		return arca_errf(e, ARCA_EDENIED, "certificate '%s' is revoked by the %s", name, what);
	}
	return 0;
}

/* An issuer chain of TCB info or QE identity: signer, then root. */
static int signing_chain(const struct arca_buf *pem, X509 *root, X509_CRL *root_crl, time_t at, const char *what,
			 X509 **signer, struct arca_errbuf *e)
{
	X509 *certs[3];
	size_t k = 0;
	struct arca_errbuf why = { { 0 } };
	int rc;
	*signer = NULL;
	if (arca_intel_pem_certs(pem->p, pem->len, certs, 3, &k, &why) < 0)
		return arca_errf(e, ARCA_EPARSE, "the %s is malformed: %s", what, why.msg);
	if (k != 2) {
		rc = arca_errf(e, ARCA_EPARSE, "the %s holds %zu certificates; expected signer and root", what, k);
		goto out;
	}
	if (!arca_intel_cert_equal(certs[1], root)) {
		rc = arca_errf(e, ARCA_EDENIED, "the %s does not end in the pinned Intel SGX Root CA", what);
		goto out;
	}
	rc = arca_intel_cert_current(certs[0], "TCB signing certificate", at, &why);
	if (rc == 0)
		rc = arca_intel_verify_path(certs[0], NULL, root, &why);
	if (rc < 0) {
		rc = arca_errf(e, rc, "%s: %s", what, why.msg);
		goto out;
	}
	GUARD_GOTO(not_revoked(root_crl, certs[0], "root CA CRL", e), out);
	*signer = certs[0];
	certs[0] = NULL;
	rc = 0;
out:
	while (k > 0)
		X509_free(certs[--k]);
	return rc;
}

static int check_signed(const struct signed_doc *d, X509 *signer, const char *what, struct arca_errbuf *e)
{
	if (arca_intel_ecdsa_verify(X509_get0_pubkey(signer), d->text, d->len, d->sig) < 0)
		return arca_errf(e, ARCA_ECRYPTO,
				 "the signature of the %s does not verify: it was changed or belongs to other text",
				 what);
	return 0;
}

static int complete(const struct arca_dcap_collateral *c, struct arca_errbuf *e)
{
	const char *miss = !c->tcb_doc.have	   ? "the TCB info"
			   : !c->qe_doc.have	   ? "the QE identity"
			   : !c->tcb_chain.len	   ? "the TCB info issuer chain"
			   : !c->qe_chain.len	   ? "the QE identity issuer chain"
			   : !c->root_crl	   ? "the root CA CRL"
			   : !c->pck_crl	   ? "the PCK CRL"
						   : NULL;
	if (miss)
		return arca_errf(e, ARCA_EINVAL,
				 "collateral lacks %s; without it the TCB status is unknown (give Intel PCS's TCB info, "
				 "QE identity, their issuer chain and both CRLs)",
				 miss);
	return 0;
}

int arca_dcap_verify(const struct arca_dcap_collateral *c, const struct arca_intel_quote *q, X509 *pck_leaf,
		     X509 *pck_ca, X509 *root, time_t at, struct arca_dcap_tcb *out, struct arca_errbuf *e)
{
	X509 *tcb_signer = NULL, *qe_signer = NULL;
	struct arca_pck_ext pck;
	int rc;
	memset(out, 0, sizeof *out);
	out->status = out->platform_status = out->module_status = out->qe_status = -1;
	if (!c)
		return arca_errf(e, ARCA_EINVAL, "no collateral");
	GUARD(complete(c, e));

	/* Revocation first: nothing a revoked key signed counts. */
	GUARD(check_crl(c->root_crl, root, "root CA CRL", at, e));
	GUARD(check_crl(c->pck_crl, pck_ca, "PCK CRL", at, e));
	if (c->pck_crl_chain.len) {
		X509 *certs[3];
		size_t k = 0;
		int same = arca_intel_pem_certs(c->pck_crl_chain.p, c->pck_crl_chain.len, certs, 3, &k, NULL) == 0 &&
			   k >= 1 && arca_intel_cert_equal(certs[0], pck_ca);
		while (k > 0)
			X509_free(certs[--k]);
		if (!same)
			return arca_errf(e, ARCA_EDENIED,
					 "the PCK CRL issuer chain is not for this quote's PCK CA; give the collateral "
					 "of this platform");
	}
	if (not_revoked(c->root_crl, pck_ca, "root CA CRL", e) < 0 ||
	    not_revoked(c->pck_crl, pck_leaf, "PCK CRL", e) < 0) {
		out->status = ARCA_TCB_REVOKED;
		return ARCA_EDENIED;
	}

	GUARD(signing_chain(&c->tcb_chain, root, c->root_crl, at, "TCB info issuer chain", &tcb_signer, e));
	GUARD_GOTO(check_signed(&c->tcb_doc, tcb_signer, "TCB info", e), out);
	GUARD_GOTO(check_date("TCB info", c->tcb.issue, c->tcb.next, at, "issueDate", "nextUpdate", e), out);
	GUARD_GOTO(signing_chain(&c->qe_chain, root, c->root_crl, at, "QE identity issuer chain", &qe_signer, e),
		   out);
	GUARD_GOTO(check_signed(&c->qe_doc, qe_signer, "QE identity", e), out);
	GUARD_GOTO(check_date("QE identity", c->qe.issue, c->qe.next, at, "issueDate", "nextUpdate", e), out);

	GUARD_GOTO(arca_pck_ext_from_cert(pck_leaf, &pck, e), out);
	if (memcmp(pck.fmspc, c->tcb.fmspc, 6) != 0) {
		char have[13], want[13];
		arca_hex_encode(pck.fmspc, 6, have);
		arca_hex_encode(c->tcb.fmspc, 6, want);
		rc = arca_errf(e, ARCA_EDENIED,
			       "the TCB info is for FMSPC %s, the PCK certificate's is %s; give the TCB info of this "
			       "platform",
			       want, have);
		goto out;
	}
	if (memcmp(pck.pceid, c->tcb.pceid, 2) != 0) {
		rc = arca_errf(e, ARCA_EDENIED, "the TCB info's PCE ID is not the PCK certificate's");
		goto out;
	}
	GUARD_GOTO(arca_dcap_tcb_evaluate(c, q, &pck, out, e), out);
	if (out->status == ARCA_TCB_REVOKED) {
		rc = arca_errf(e, ARCA_EDENIED, "the TCB status is Revoked: Intel no longer vouches for this platform");
		goto out;
	}
	rc = 0;
out:
	X509_free(tcb_signer);
	X509_free(qe_signer);
	return rc;
}
