/* policy_json.c: the canonical form of a session policy, its hash, and the
 * redacted form owners read back.
 *
 * The session hash (design.md: "SHA-256 of its canonical form") is what an
 * update must name as predecessor, so the canonical form depends only on what
 * a policy means, never on how its YAML was spelled: flow or block style,
 * key order, quoting, comments, a default written out or left implicit
 * (`mode: encrypted`, `size: 32`, `sim: {}` vs `sim:`), hex digits in upper
 * or lower case, or the order of entries in lists whose order means nothing.
 *
 * Canonical form (version 1): the JSON below, dumped by jansson with
 * JSON_SORT_KEYS | JSON_COMPACT (keys of every object in byte order, no
 * whitespace, strings in UTF-8 with JSON escapes), every key always present:
 *
 *   {"access":      null | {"owners": [FPR, ...]},           owners sorted
 *    "name":        NAME,
 *    "predecessor": null | "<64 lower-case hex>",
 *    "secrets":     [SECRET, ...],                           sorted by name
 *    "services":    [SERVICE, ...],                          sorted by name
 *    "tolerate":    [WORD, ...],                             sorted
 *    "version":     1,
 *    "volumes":     [{"mode": "encrypted" | "authenticated",
 *                     "name": NAME,
 *                     "key": NAME, "tag": "<64 lower-case hex>"}, ...]}
 *                                                            sorted by name; key and tag
 *                                                            only for a code volume
 *
 *   SECRET  = {"common_name": null | STRING,                 x509 only
 *              "dns":         null | [HOST, ...],            x509: list as given; others null
 *              "kind":        "ascii" | "binary" | "private-key" | "x509",
 *              "name":        NAME,
 *              "size":        null | INTEGER,                ascii/binary without a value: the
 *                                                            size (default 32); else null
 *              "value":       null | "<lower-case hex of the bytes>" | "<redacted>"}
 *   SERVICE = {"command":     [STRING, ...],                 as given (argv order)
 *              "environment": {NAME: STRING, ...},
 *              "files":       {PATH: STRING, ...},
 *              "measurement": null | "sha256:<64 lower-case hex>",
 *              "name":        NAME,
 *              "platform":    {"sim": {}, "sev-snp": SNP, "tdx": TDX, "sgx": SGX},
 *                             each key present only when listed ({} when none)
 *              "volumes":     [{"name": NAME, "path": PATH}, ...]}  as given
 *   SNP     = {"debug":         true | false,
 *              "host_data":     null | HEX(32),
 *              "id_key_digest": null | HEX(48),
 *              "measurement":   null | HEX(48),
 *              "min_tcb":       {"bootloader": null | 0..255, "microcode": ..., "snp": ..., "tee": ...},
 *              "product":       null | "Milan" | "Genoa" | "Turin"}
 *   TDX     = {"debug": true | false, "min_tcb_status": null | STATUS,
 *              "mrconfigid": null | HEX(48), "mrtd": null | HEX(48),
 *              "rtmr0": null | HEX(48), ..., "rtmr3": null | HEX(48)}
 *                             rtmr: [...] and rtmrN: keys land here alike
 *   SGX     = {"debug": true | false, "isvprodid": null | 0..65535,
 *              "min_isvsvn": null | 0..65535, "min_tcb_status": null | STATUS,
 *              "mrenclave": null | HEX(32), "mrsigner": null | HEX(32)}
 *   HEX(n)  = 2n lower-case hex digits; STATUS = Intel's spelling ("UpToDate")
 *
 * Code volumes (key and tag) came later too: a volume without them has the
 * shape it had before, so older sessions keep their hashes.
 * The hardware constraints came after the first sessions were stored: a
 * policy without them has exactly the canonical form, and so the hash, it
 * had before they existed (version stays 1), and one with them cannot hash
 * like one without, because the platform object then has other keys.
 * Strings (commands, environment values, file contents) are kept with their
 * placeholders unrendered. Lists of named things and of set members are
 * sorted; command, dns and service volumes keep their order, which can
 * matter (argv; the first DNS name of a certificate; mount order). "version"
 * changes whenever this shape does, so that an old and a new shape never
 * hash alike. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/intel.h"
#include "arca/policy.h"

#define CANON_MAX ((size_t)64 << 20)
#define REDACTED "<redacted>"

static const char *const kind_str[] = {NULL, "ascii", "binary", "private-key", "x509"};

/* Takes the reference of v (as json_object_set_new does) and fails closed. */
static int set(json_t *o, const char *k, json_t *v)
{
	if (!v)
		return -1;
	return json_object_set_new(o, k, v);
}

static int append(json_t *a, json_t *v)
{
	if (!v)
		return -1;
	return json_array_append_new(a, v);
}

static json_t *str(const char *s)
{
	return s ? json_string(s) : NULL;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Order of the named entries of an array of structs: indexes sorted by
 * name, stable, so that hand-built structs with equal names stay
 * deterministic too. */
static size_t *order_by_name(const void *base, size_t n, size_t stride, size_t name_off)
{
	size_t *ix = malloc((n ? n : 1) * sizeof *ix);
	if (!ix)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *ni = *(const char *const *)((const char *)base + i * stride + name_off);
		size_t j = i;
		while (j > 0) {
			const char *nj = *(const char *const *)((const char *)base + ix[j - 1] * stride + name_off);
			if (strcmp(nj ? nj : "", ni ? ni : "") <= 0)
				break;
			ix[j] = ix[j - 1];
			j--;
		}
		ix[j] = i;
	}
	return ix;
}

static json_t *sorted_strings(char *const *v, size_t n)
{
	json_t *a = json_array();
	const char **tmp = malloc((n ? n : 1) * sizeof *tmp);
	if (!a || !tmp)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			goto fail;
		tmp[i] = v[i];
	}
	qsort(tmp, n, sizeof *tmp, cmp_str);
	for (size_t i = 0; i < n; i++)
		if (append(a, str(tmp[i])) < 0)
			goto fail;
	free(tmp);
	return a;
fail:
	free(tmp);
	json_decref(a);
	return NULL;
}

static json_t *strings(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (append(a, str(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *kv_object(const struct arca_kv *kv, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++)
		if (!kv[i].key || set(o, kv[i].key, str(kv[i].value)) < 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static json_t *secret_json(const struct arca_secret_def *s, int redact)
{
	json_t *o = json_object();
	int sized = s->kind == ARCA_SECRET_ASCII || s->kind == ARCA_SECRET_BINARY;
	int x509 = s->kind == ARCA_SECRET_X509;
	if (!o || s->kind < ARCA_SECRET_ASCII || s->kind > ARCA_SECRET_X509)
		goto fail;
	if (set(o, "name", str(s->name)) < 0 || set(o, "kind", json_string(kind_str[s->kind])) < 0)
		goto fail;
	/* A given value fixes the size; repeating it would only show the
	 * length of that value in the redacted form. */
	size_t size = s->size ? s->size : 32;
	if (set(o, "size", sized && !s->value ? json_integer((json_int_t)size) : json_null()) < 0)
		goto fail;
	if (set(o, "common_name", x509 ? str_or_null(s->common_name) : json_null()) < 0)
		goto fail;
	if (set(o, "dns", x509 ? strings(s->dns, s->ndns) : json_null()) < 0)
		goto fail;
	json_t *val;
	if (!s->value)
		val = json_null();
	else if (redact)
		val = json_string(REDACTED);
	else {
		char *hex = malloc(ARCA_HEX_LEN(s->value_len));
		if (!hex)
			goto fail;
		arca_hex_encode(s->value, s->value_len, hex);
		val = json_string(hex);
		arca_wipe(hex, ARCA_HEX_LEN(s->value_len));
		free(hex);
	}
	if (set(o, "value", val) < 0)
		goto fail;
	return o;
fail:
	arca_policy_json_free(o);
	return NULL;
}

static json_t *hex_or_null(int has, const uint8_t *p, size_t n)
{
	char hex[ARCA_HEX_LEN(48)];
	if (!has)
		return json_null();
	if (n > 48)
		return NULL;
	arca_hex_encode(p, n, hex);
	return json_string(hex);
}

static json_t *int_or_null(int v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *status_or_null(int v)
{
	if (v < 0)
		return json_null();
	return str(arca_tcb_status_name(v));
}

static json_t *snp_json(const struct arca_snp_policy *p)
{
	static const char *const products[] = {NULL, "Milan", "Genoa", "Turin"};
	static const char *const parts[ARCA_SNP_TCB_NPARTS] = {"bootloader", "tee", "snp", "microcode"};
	json_t *o = json_object(), *tcb = NULL;
	if (!o || p->product < 0 || p->product > 3)
		goto fail;
	if (set(o, "measurement", hex_or_null(p->has_measurement, p->measurement, 48)) < 0 ||
	    set(o, "host_data", hex_or_null(p->has_host_data, p->host_data, 32)) < 0 ||
	    set(o, "id_key_digest", hex_or_null(p->has_id_key_digest, p->id_key_digest, 48)) < 0 ||
	    set(o, "debug", json_boolean(p->debug)) < 0 ||
	    set(o, "product", p->product ? json_string(products[p->product]) : json_null()) < 0 ||
	    set(o, "min_tcb", tcb = json_object()) < 0)
		goto fail;
	for (int i = 0; i < ARCA_SNP_TCB_NPARTS; i++)
		if (set(tcb, parts[i], int_or_null(p->min_tcb[i])) < 0)
			goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *tdx_json(const struct arca_tdx_policy *p)
{
	json_t *o = json_object();
	if (!o || set(o, "mrtd", hex_or_null(p->has_mrtd, p->mrtd, 48)) < 0 ||
	    set(o, "mrconfigid", hex_or_null(p->has_mrconfigid, p->mrconfigid, 48)) < 0 ||
	    set(o, "debug", json_boolean(p->debug)) < 0 || set(o, "min_tcb_status", status_or_null(p->min_tcb_status)) < 0)
		goto fail;
	for (int i = 0; i < 4; i++) {
		char key[8] = "rtmr0";
		key[4] = (char)('0' + i);
		if (set(o, key, hex_or_null(p->has_rtmr[i], p->rtmr[i], 48)) < 0)
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *sgx_json(const struct arca_sgx_policy *p)
{
	json_t *o = json_object();
	if (!o || set(o, "mrenclave", hex_or_null(p->has_mrenclave, p->mrenclave, 32)) < 0 ||
	    set(o, "mrsigner", hex_or_null(p->has_mrsigner, p->mrsigner, 32)) < 0 ||
	    set(o, "isvprodid", int_or_null(p->isvprodid)) < 0 || set(o, "min_isvsvn", int_or_null(p->min_isvsvn)) < 0 ||
	    set(o, "debug", json_boolean(p->debug)) < 0 || set(o, "min_tcb_status", status_or_null(p->min_tcb_status)) < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *service_json(const struct arca_service *s)
{
	json_t *o = json_object(), *plat = NULL, *vols = NULL;
	if (!o || set(o, "name", str(s->name)) < 0 || set(o, "command", strings(s->command, s->ncommand)) < 0 ||
	    set(o, "environment", kv_object(s->env, s->nenv)) < 0 || set(o, "files", kv_object(s->files, s->nfiles)) < 0)
		goto fail;
	if (s->has_measurement) {
		char d[ARCA_DIGEST_STR_LEN];
		arca_digest_format(s->measurement, d);
		if (set(o, "measurement", json_string(d)) < 0)
			goto fail;
	} else if (set(o, "measurement", json_null()) < 0)
		goto fail;
	if (set(o, "platform", plat = json_object()) < 0 || (s->platform_sim && set(plat, "sim", json_object()) < 0) ||
	    (s->platform_snp && set(plat, "sev-snp", snp_json(&s->snp)) < 0) ||
	    (s->platform_tdx && set(plat, "tdx", tdx_json(&s->tdx)) < 0) ||
	    (s->platform_sgx && set(plat, "sgx", sgx_json(&s->sgx)) < 0))
		goto fail;
	if (set(o, "volumes", vols = json_array()) < 0)
		goto fail;
	for (size_t i = 0; i < s->nvolumes; i++) {
		json_t *v = json_object();
		if (append(vols, v) < 0 || set(v, "name", str(s->volumes[i].name)) < 0 ||
		    set(v, "path", str(s->volumes[i].path)) < 0)
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

json_t *arca_policy_to_json(const struct arca_policy *p, int redact)
{
	if (!p || !p->name)
		return NULL;
	json_t *o = json_object(), *a;
	size_t *ix = NULL;
	if (!o || set(o, "version", json_integer(1)) < 0 || set(o, "name", str(p->name)) < 0)
		goto fail;

	if (p->has_predecessor) {
		char hex[ARCA_HEX_LEN(32)];
		arca_hex_encode(p->predecessor, 32, hex);
		if (set(o, "predecessor", json_string(hex)) < 0)
			goto fail;
	} else if (set(o, "predecessor", json_null()) < 0)
		goto fail;

	if (p->has_access) {
		json_t *acc = json_object();
		if (set(o, "access", acc) < 0 || set(acc, "owners", sorted_strings(p->owners, p->nowners)) < 0)
			goto fail;
	} else if (set(o, "access", json_null()) < 0)
		goto fail;

	if (set(o, "secrets", a = json_array()) < 0 ||
	    !(ix = order_by_name(p->secrets, p->nsecrets, sizeof *p->secrets, offsetof(struct arca_secret_def, name))))
		goto fail;
	for (size_t i = 0; i < p->nsecrets; i++)
		if (append(a, secret_json(&p->secrets[ix[i]], redact)) < 0)
			goto fail;
	free(ix);

	if (set(o, "services", a = json_array()) < 0 ||
	    !(ix = order_by_name(p->services, p->nservices, sizeof *p->services, offsetof(struct arca_service, name))))
		goto fail;
	for (size_t i = 0; i < p->nservices; i++)
		if (append(a, service_json(&p->services[ix[i]])) < 0)
			goto fail;
	free(ix);

	if (set(o, "volumes", a = json_array()) < 0 ||
	    !(ix = order_by_name(p->volumes, p->nvolumes, sizeof *p->volumes, offsetof(struct arca_volume_def, name))))
		goto fail;
	for (size_t i = 0; i < p->nvolumes; i++) {
		const struct arca_volume_def *v = &p->volumes[ix[i]];
		json_t *vo = json_object();
		if (append(a, vo) < 0 || set(vo, "name", str(v->name)) < 0 ||
		    set(vo, "mode", json_string(v->authenticated ? "authenticated" : "encrypted")) < 0)
			goto fail;
		if (arca_volume_is_code(v)) {
			char tag[65];
			arca_hex_encode(v->tag, 32, tag);
			if (set(vo, "key", str(v->key)) < 0 || set(vo, "tag", json_string(tag)) < 0)
				goto fail;
		}
	}
	free(ix);
	ix = NULL;

	if (set(o, "tolerate", sorted_strings(p->tolerate, p->ntolerate)) < 0)
		goto fail;
	return o;
fail:
	free(ix);
	arca_policy_json_free(o);
	return NULL;
}

static void wipe_strings(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		json_object_foreach(j, k, v) wipe_strings(v);
		break;
	case JSON_ARRAY:
		json_array_foreach(j, i, v) wipe_strings(v);
		break;
	case JSON_STRING:
		/* jansson keeps the text in its own heap block; this is the only
		 * way to erase it before json_decref hands it back to malloc */
		arca_wipe((char *)json_string_value(j), json_string_length(j));
		break;
	default:
		break;
	}
}

void arca_policy_json_free(json_t *j)
{
	if (!j)
		return;
	if (j->refcount == 1)
		wipe_strings(j);
	json_decref(j);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	return arca_buf_append(data, buffer, size) < 0 ? -1 : 0;
}

int arca_policy_canonical(const struct arca_policy *p, struct arca_buf *out)
{
	ENSURE(p && out, ARCA_EINVAL);
	json_t *j = arca_policy_to_json(p, 0);
	ENSURE(j != NULL, ARCA_EINVAL);
	size_t orig = out->len;
	size_t max = out->max;
	/* jansson calls back in pieces; bound the whole, not each piece */
	if (max - orig > CANON_MAX)
		out->max = orig + CANON_MAX;
	int rc = json_dump_callback(j, dump_cb, out, JSON_SORT_KEYS | JSON_COMPACT) == 0 ? 0 : ARCA_ENOMEM;
	out->max = max;
	arca_policy_json_free(j);
	if (rc < 0 && out->p && out->len > orig) {
		arca_wipe(out->p + orig, out->len - orig);
		out->len = orig;
		out->p[orig] = 0;
	}
	return rc;
}

int arca_policy_hash(const struct arca_policy *p, uint8_t out[32])
{
	struct arca_buf b;
	arca_buf_init(&b, CANON_MAX, 1);
	int rc = arca_policy_canonical(p, &b);
	if (rc == 0)
		rc = arca_sha256(b.p, b.len, out);
	arca_buf_free(&b);
	return rc;
}
