/* snp_chain.c: trust in an SEV-SNP signing key: what a VCEK or VLEK says
 * about the chip (AMD's X.509 extensions under 1.3.6.1.4.1.3704.1), and its
 * chain through the ASK or ASVK to the AMD root key pinned here.
 *
 * Each step is checked by hand rather than with X509_verify_cert: AMD's
 * certificates are not a web PKI (serial 0, no key usage on leaves), and a
 * person needs to learn which certificate failed which check. RSA-PSS
 * parameters are read and compared, never left to OpenSSL's defaults, so a
 * certificate signed with SHA-256 or another salt length is refused even if
 * its signature is otherwise good. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/snp.h"

/* SHA-256 of the DER of AMD's ARKs as published by the AMD Key
 * Distribution Service (kdsintf.amd.com/vcek/v1/<product>/cert_chain). */
static const uint8_t ARK_MILAN[32] = {
	0x69, 0xd0, 0x63, 0xb4, 0x53, 0x44, 0xd2, 0x6a, 0x2e, 0x94, 0xe1, 0xf4, 0x21, 0x0d, 0xe4, 0x9e,
	0xf5, 0x55, 0x30, 0x82, 0x87, 0xd4, 0xc1, 0x74, 0x44, 0x5c, 0x95, 0x63, 0x9a, 0x54, 0x0b, 0xcd,
};
static const uint8_t ARK_GENOA[32] = {
	0x4c, 0x65, 0x98, 0xd1, 0x9c, 0x18, 0x71, 0x9c, 0x5d, 0xfd, 0x4a, 0x7d, 0x33, 0x5f, 0x67, 0x4e,
	0x5b, 0xfe, 0x1d, 0x8f, 0x80, 0x0c, 0xea, 0x2c, 0xf2, 0x70, 0xc1, 0x0d, 0x10, 0x3d, 0xb2, 0xf1,
};
static const uint8_t ARK_TURIN[32] = {
	0x1f, 0x08, 0x41, 0x61, 0xa4, 0x4b, 0xb6, 0xd9, 0x37, 0x78, 0xa9, 0x04, 0x87, 0x7d, 0x48, 0x19,
	0xca, 0xfa, 0x5d, 0x05, 0xef, 0x41, 0x93, 0xb2, 0xde, 0xd9, 0xdd, 0x9c, 0x73, 0xdd, 0x3f, 0x6a,
};

const uint8_t *arca_snp_ark_sha256(enum arca_snp_product p)
{
	switch (p) {
	case ARCA_SNP_MILAN: return ARK_MILAN;
	case ARCA_SNP_GENOA: return ARK_GENOA;
	case ARCA_SNP_TURIN: return ARK_TURIN;
	default: return NULL;
	}
}

const char *arca_snp_product_name(enum arca_snp_product p)
{
	switch (p) {
	case ARCA_SNP_MILAN: return "Milan";
	case ARCA_SNP_GENOA: return "Genoa";
	case ARCA_SNP_TURIN: return "Turin";
	default: return "unknown";
	}
}

static int ossl_fail(int code)
{
	ERR_clear_error();
	return code;
}

static const char *kind_name(enum arca_snp_key k)
{
	return k == ARCA_SNP_KEY_VLEK ? "VLEK" : "VCEK";
}

/* ---- the leaf's extensions ---- */

/* DER of the OID arc 1.3.6.1.4.1.3704.1 (3704 is AMD's enterprise number). */
static const uint8_t AMD_ARC[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01 };
#define AMD_PRODUCT 2
#define AMD_HWID 4
#define SPL_BL 1
#define SPL_TEE 2
#define SPL_SNP 3
#define SPL_UCODE 8
#define SPL_FMC 9
#define SPL_MAX 9

/* An SPL is a DER INTEGER 0..255 in minimal encoding, and nothing else. */
static int read_spl(const uint8_t *p, size_t n, unsigned *v)
{
	struct arca_cur c;
	uint8_t tag, len, b0, b1;
	arca_cur_init(&c, p, n);
	GUARD(arca_cur_u8(&c, &tag));
	GUARD(arca_cur_u8(&c, &len));
	ENSURE(tag == 0x02 && (len == 1 || len == 2) && arca_cur_left(&c) == len, ARCA_EPARSE);
	GUARD(arca_cur_u8(&c, &b0));
	if (len == 1) {
		ENSURE(b0 < 0x80, ARCA_EPARSE);
		*v = b0;
		return 0;
	}
	GUARD(arca_cur_u8(&c, &b1));
	ENSURE(b0 == 0 && b1 >= 0x80, ARCA_EPARSE);
	*v = b1;
	return 0;
}

/* The product name is an IA5String such as "Milan-B0"; the part before
 * the stepping names the ARK. */
static int read_product(const uint8_t *p, size_t n, struct arca_snp_leaf *out)
{
	struct arca_cur c;
	uint8_t tag, len;
	const uint8_t *s;
	arca_cur_init(&c, p, n);
	GUARD(arca_cur_u8(&c, &tag));
	GUARD(arca_cur_u8(&c, &len));
	ENSURE(tag == 0x16 && len > 0 && len < sizeof out->product_name && arca_cur_left(&c) == len, ARCA_EPARSE);
	GUARD(arca_cur_take(&c, len, &s));
	for (size_t i = 0; i < len; i++)
		ENSURE(s[i] > 0x20 && s[i] < 0x7f, ARCA_EPARSE);
	memcpy(out->product_name, s, len);
	out->product_name[len] = '\0';
	static const struct {
		const char *name;
		enum arca_snp_product p;
	} known[] = { { "Milan", ARCA_SNP_MILAN }, { "Genoa", ARCA_SNP_GENOA }, { "Turin", ARCA_SNP_TURIN } };
	out->product = ARCA_SNP_PRODUCT_UNKNOWN;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		size_t k = strlen(known[i].name);
		if (len >= k && memcmp(s, known[i].name, k) == 0 && (len == k || s[k] == '-'))
			out->product = known[i].p;
	}
	return 0;
}

static int leaf_kind(X509 *leaf, enum arca_snp_key *kind, struct arca_errbuf *e)
{
	const X509_NAME *subj = X509_get_subject_name(leaf);
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	const ASN1_STRING *cn = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)) : NULL;
	int n = cn ? ASN1_STRING_length(cn) : 0;
	const unsigned char *d = cn ? ASN1_STRING_get0_data(cn) : NULL;
	if (n == 8 && memcmp(d, "SEV-VCEK", 8) == 0)
		*kind = ARCA_SNP_KEY_VCEK;
	else if (n == 8 && memcmp(d, "SEV-VLEK", 8) == 0)
		*kind = ARCA_SNP_KEY_VLEK;
	else
		return arca_errf(e, ARCA_EINVAL,
				 "the certificate given as the report's signing key is neither a VCEK nor a VLEK "
				 "(its CN is not SEV-VCEK or SEV-VLEK)");
	return 0;
}

static int leaf_key_p384(X509 *leaf, enum arca_snp_key kind, struct arca_errbuf *e)
{
	EVP_PKEY *k = X509_get0_pubkey(leaf);
	char group[32] = "";
	size_t glen = 0;
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(k, group, sizeof group, &glen) != 1 || strcmp(group, "secp384r1") != 0)
		return ossl_fail(arca_errf(e, ARCA_EINVAL, "the %s's public key is not an ECDSA P-384 key",
					   kind_name(kind)));
	return 0;
}

int arca_snp_leaf_read(X509 *leaf, struct arca_snp_leaf *out, struct arca_errbuf *e)
{
	memset(out, 0, sizeof *out);
	ENSURE(leaf != NULL, ARCA_EINVAL);
	GUARD(leaf_kind(leaf, &out->kind, e));
	const char *who = kind_name(out->kind);
	GUARD(leaf_key_p384(leaf, out->kind, e));

	unsigned spl[SPL_MAX + 1] = { 0 };
	unsigned seen_spl = 0; /* bit n: SPL .3.n seen */
	int seen_product = 0, seen_hwid = 0;
	int next = X509_get_ext_count(leaf);
	for (int i = 0; i < next; i++) {
		X509_EXTENSION *ext = X509_get_ext(leaf, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
		const unsigned char *oid = OBJ_get0_data(obj);
		size_t olen = OBJ_length(obj);
		if (!oid || olen < sizeof AMD_ARC + 1 || memcmp(oid, AMD_ARC, sizeof AMD_ARC) != 0)
			continue;
		const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
		const uint8_t *vp = ASN1_STRING_get0_data(v);
		size_t vn = (size_t)ASN1_STRING_length(v);
		uint8_t a = oid[sizeof AMD_ARC];
		if (olen == sizeof AMD_ARC + 1 && a == AMD_PRODUCT) {
			if (seen_product++ || read_product(vp, vn, out) < 0)
				return arca_errf(e, ARCA_EPARSE,
						 "the %s's product name extension is malformed or repeated", who);
		} else if (olen == sizeof AMD_ARC + 1 && a == AMD_HWID) {
			if (seen_hwid++)
				return arca_errf(e, ARCA_EPARSE, "the %s has two hwID extensions", who);
			out->hwid_len = vn;
			if (vn <= sizeof out->hwid)
				memcpy(out->hwid, vp, vn);
		} else if (olen == sizeof AMD_ARC + 2 && a == 3) {
			uint8_t n = oid[sizeof AMD_ARC + 1];
			if (n < 1 || n > SPL_MAX)
				continue; /* an SPL this version does not know, and which no TCB layout uses */
			if (seen_spl & (1u << n))
				return arca_errf(e, ARCA_EPARSE,
						 "the %s has two SPL extensions 1.3.6.1.4.1.3704.1.3.%u", who, n);
			seen_spl |= 1u << n;
			if (read_spl(vp, vn, &spl[n]) < 0)
				return arca_errf(e, ARCA_EPARSE,
						 "the %s's SPL extension 1.3.6.1.4.1.3704.1.3.%u is not "
						 "an integer 0..255",
						 who, n);
		}
	}
	if (!seen_product)
		return arca_errf(e, ARCA_EPARSE, "the %s has no product name extension (1.3.6.1.4.1.3704.1.2)", who);
	if (out->product == ARCA_SNP_PRODUCT_UNKNOWN)
		return arca_errf(e, ARCA_EUNSUPPORTED, "the %s is for product %s; arca knows Milan, Genoa and Turin",
				 who, out->product_name);
	if (out->kind == ARCA_SNP_KEY_VCEK && !seen_hwid)
		return arca_errf(e, ARCA_EPARSE, "the VCEK has no hwID extension (1.3.6.1.4.1.3704.1.4)");

	int turin = out->product == ARCA_SNP_TURIN;
	unsigned need = 1u << SPL_BL | 1u << SPL_TEE | 1u << SPL_SNP | 1u << SPL_UCODE | (turin ? 1u << SPL_FMC : 0);
	if ((seen_spl & need) != need)
		return arca_errf(e, ARCA_EPARSE, "the %s lacks one of the SPL extensions its %s TCB needs", who,
				 arca_snp_product_name(out->product));
	/* SPLs 4..7 (and FMC before Turin) name bytes that are reserved in the
	 * TCB layout; anything but zero there is a layout arca does not know. */
	for (unsigned n = 4; n <= (turin ? 7u : 9u); n++) {
		if (n == SPL_UCODE)
			continue;
		if (spl[n] != 0)
			return arca_errf(e, ARCA_EUNSUPPORTED,
					 "the %s's SPL 1.3.6.1.4.1.3704.1.3.%u is %u; "
					 "the %s TCB layout has no place for it",
					 who, n, spl[n], arca_snp_product_name(out->product));
	}
	if (turin)
		out->tcb = (uint64_t)spl[SPL_FMC] | (uint64_t)spl[SPL_BL] << 8 | (uint64_t)spl[SPL_TEE] << 16 |
			   (uint64_t)spl[SPL_SNP] << 24 | (uint64_t)spl[SPL_UCODE] << 56;
	else
		out->tcb = (uint64_t)spl[SPL_BL] | (uint64_t)spl[SPL_TEE] << 8 | (uint64_t)spl[SPL_SNP] << 48 |
			   (uint64_t)spl[SPL_UCODE] << 56;
	return 0;
}

/* ---- the chain ---- */

static void fmt_time(time_t t, char out[32])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "@%lld", (long long)t);
}

static int cert_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, ARCA_EPARSE);
	time_t v = timegm(&tm);
	ENSURE(v != (time_t)-1, ARCA_EPARSE);
	*out = v;
	return 0;
}

static X509 *find_subject(STACK_OF(X509) *chain, const X509_NAME *name)
{
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);
		if (c && X509_NAME_cmp(X509_get_subject_name(c), name) == 0)
			return c;
	}
	return NULL;
}

static int cn_is(X509 *c, const char *prefix, const char *product)
{
	const X509_NAME *subj = X509_get_subject_name(c);
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	const ASN1_STRING *cn = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)) : NULL;
	if (!cn)
		return 0;
	size_t a = strlen(prefix), b = strlen(product);
	size_t n = (size_t)ASN1_STRING_length(cn);
	const unsigned char *d = ASN1_STRING_get0_data(cn);
	return n == a + b && memcmp(d, prefix, a) == 0 && memcmp(d + a, product, b) == 0;
}

/* The one signature scheme of AMD's chain: RSASSA-PSS with SHA-384, MGF1
 * with SHA-384, salt length 48, trailer 1. */
static int check_pss(const X509_ALGOR *alg, const char *who, struct arca_errbuf *e)
{
	const ASN1_OBJECT *obj = NULL;
	int ptype = 0;
	const void *pval = NULL;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_rsassaPss)
		return arca_errf(e, ARCA_ECRYPTO, "the %s is not signed with RSA-PSS as AMD's certificates are", who);
	if (ptype != V_ASN1_SEQUENCE || !pval)
		return arca_errf(e, ARCA_ECRYPTO, "the %s's RSA-PSS signature has no parameters", who);
	const ASN1_STRING *seq = pval;
	const unsigned char *q = ASN1_STRING_get0_data(seq);
	long qn = ASN1_STRING_length(seq);
	const unsigned char *q0 = q;
	RSA_PSS_PARAMS *pss = d2i_RSA_PSS_PARAMS(NULL, &q, qn);
	int rc = 0;
	if (!pss || q - q0 != qn) {
		rc = arca_errf(e, ARCA_ECRYPTO, "the %s's RSA-PSS parameters do not parse", who);
		goto out;
	}
	if (!pss->hashAlgorithm || OBJ_obj2nid(pss->hashAlgorithm->algorithm) != NID_sha384) {
		rc = arca_errf(e, ARCA_ECRYPTO, "the %s's RSA-PSS hash is not SHA-384", who);
		goto out;
	}
	/* The MGF1 hash sits in the mask generator's own parameters. */
	const X509_ALGOR *mgf = pss->maskGenAlgorithm;
	X509_ALGOR *mh = NULL;
	if (mgf && OBJ_obj2nid(mgf->algorithm) == NID_mgf1 && mgf->parameter &&
	    mgf->parameter->type == V_ASN1_SEQUENCE) {
		const ASN1_STRING *ms = mgf->parameter->value.sequence;
		const unsigned char *m = ASN1_STRING_get0_data(ms), *m0 = m;
		long mn = ASN1_STRING_length(ms);
		mh = d2i_X509_ALGOR(NULL, &m, mn);
		if (mh && m - m0 != mn) {
			X509_ALGOR_free(mh);
			mh = NULL;
		}
	}
	int mgf_ok = mh && OBJ_obj2nid(mh->algorithm) == NID_sha384;
	X509_ALGOR_free(mh);
	if (!mgf_ok) {
		rc = arca_errf(e, ARCA_ECRYPTO, "the %s's RSA-PSS mask generation is not MGF1 with SHA-384", who);
		goto out;
	}
	long salt = pss->saltLength ? ASN1_INTEGER_get(pss->saltLength) : 20;
	if (salt != 48) {
		rc = arca_errf(e, ARCA_ECRYPTO, "the %s's RSA-PSS salt length is %ld; AMD's chain uses 48", who, salt);
		goto out;
	}
	if (pss->trailerField && ASN1_INTEGER_get(pss->trailerField) != 1) {
		rc = arca_errf(e, ARCA_ECRYPTO, "the %s's RSA-PSS trailer field is not 1", who);
		goto out;
	}
out:
	RSA_PSS_PARAMS_free(pss);
	return rc < 0 ? ossl_fail(rc) : 0;
}

/* child is signed by parent: both algorithm fields agree and are AMD's PSS,
 * parent holds an RSA key, and the signature verifies. */
static int check_signed(X509 *child, X509 *parent, const char *cname, const char *pname, struct arca_errbuf *e)
{
	char who[64];
	snprintf(who, sizeof who, "%s certificate", cname);
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *outer = NULL;
	X509_get0_signature(&sig, &outer, child);
	const X509_ALGOR *inner = X509_get0_tbs_sigalg(child);
	if (!outer || !inner || X509_ALGOR_cmp(outer, inner) != 0)
		return arca_errf(e, ARCA_ECRYPTO, "the %s names two different signature algorithms", who);
	GUARD(check_pss(outer, who, e));
	EVP_PKEY *k = X509_get0_pubkey(parent);
	int id = k ? EVP_PKEY_get_base_id(k) : 0;
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_RSA_PSS)
		return ossl_fail(arca_errf(e, ARCA_ECRYPTO, "the %s certificate's key is not an RSA key", pname));
	if (X509_verify(child, k) != 1)
		return ossl_fail(arca_errf(e, ARCA_ECRYPTO, "the %s's signature by the %s does not verify", who,
					   pname));
	return 0;
}

static int check_window(const char *name, time_t at, time_t nb, time_t na, struct arca_errbuf *e)
{
	char t[32], now[32];
	fmt_time(at, now);
	if (at < nb) {
		fmt_time(nb, t);
		return arca_errf(e, ARCA_EDENIED, "the %s certificate is not valid before %s (checked at %s)", name, t,
				 now);
	}
	if (at > na) {
		fmt_time(na, t);
		return arca_errf(e, ARCA_EDENIED, "the %s certificate expired on %s (checked at %s)", name, t, now);
	}
	return 0;
}

int arca_snp_chain_verify(X509 *leaf, STACK_OF(X509) *chain, time_t at, struct arca_snp_leaf *info,
			  time_t *valid_from, time_t *valid_until, struct arca_errbuf *e)
{
	struct arca_snp_leaf li;
	if (valid_from)
		*valid_from = 0;
	if (valid_until)
		*valid_until = 0;
	GUARD(arca_snp_leaf_read(leaf, &li, e));
	if (info)
		*info = li;
	int vlek = li.kind == ARCA_SNP_KEY_VLEK;
	const char *lname = kind_name(li.kind), *mname = vlek ? "ASVK" : "ASK";
	const char *product = arca_snp_product_name(li.product);
	char issuer[160];
	X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, sizeof issuer);

	X509 *mid = find_subject(chain, X509_get_issuer_name(leaf));
	if (!mid)
		return arca_errf(e, ARCA_ENOTFOUND,
				 "the chain has no %s for this %s (its issuer is %s); "
				 "pass AMD's %s %s and ARK certificates",
				 mname, lname, issuer, product, mname);
	if (!cn_is(mid, vlek ? "SEV-VLEK-" : "SEV-", product))
		return arca_errf(e, ARCA_ECRYPTO, "the %s's issuer %s is not AMD's %s %s", lname, issuer, product,
				 mname);
	if (X509_check_ca(mid) < 1)
		return ossl_fail(arca_errf(e, ARCA_ECRYPTO, "the %s certificate is not a CA certificate", mname));
	X509 *ark = find_subject(chain, X509_get_issuer_name(mid));
	if (!ark || X509_NAME_cmp(X509_get_subject_name(ark), X509_get_issuer_name(ark)) != 0) {
		X509_NAME_oneline(X509_get_issuer_name(mid), issuer, sizeof issuer);
		return arca_errf(e, ARCA_ENOTFOUND,
				 "the chain has no ARK for the %s (its issuer is %s); pass AMD's %s ARK", mname,
				 issuer, product);
	}

	GUARD(check_signed(leaf, mid, lname, mname, e));
	GUARD(check_signed(mid, ark, mname, "ARK", e));

	/* The ARK is trusted because it is exactly the one AMD publishes; its
	 * self-signature would add nothing to that. */
	uint8_t h[32];
	unsigned hl = 0;
	if (X509_digest(ark, EVP_sha256(), h, &hl) != 1 || hl != sizeof h)
		return ossl_fail(arca_errf(e, ARCA_ECRYPTO, "hashing the ARK failed"));
	if (!arca_ct_eq(h, arca_snp_ark_sha256(li.product), sizeof h)) {
		char hex[ARCA_HEX_LEN(8)];
		arca_hex_encode(h, 8, hex);
		return arca_errf(e, ARCA_ECRYPTO,
				 "the ARK in the chain (SHA-256 %s...) is not AMD's %s ARK pinned in arca", hex,
				 product);
	}

	X509 *certs[3] = { leaf, mid, ark };
	const char *names[3] = { lname, mname, "ARK" };
	time_t nb[3], na[3], from = 0, until = 0;
	for (int i = 0; i < 3; i++) {
		if (cert_time(X509_get0_notBefore(certs[i]), &nb[i]) < 0 ||
		    cert_time(X509_get0_notAfter(certs[i]), &na[i]) < 0)
			return ossl_fail(arca_errf(e, ARCA_EPARSE, "the %s certificate's validity does not parse",
						   names[i]));
		if (i == 0 || nb[i] > from)
			from = nb[i];
		if (i == 0 || na[i] < until)
			until = na[i];
	}
	if (valid_from)
		*valid_from = from;
	if (valid_until)
		*valid_until = until;
	for (int i = 0; i < 3; i++)
		GUARD(check_window(names[i], at, nb[i], na[i], e));
	return 0;
}
