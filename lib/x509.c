/* x509.c: identities (Ed25519 key + self-signed certificate on disk), the
 * per-session CAs that issue TLS certificates to services, and certificate
 * loading for the verifiers.
 *
 * Failures clear OpenSSL's error queue: a stale entry left there makes a
 * later, unrelated SSL_get_error() on the same thread report a failure. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "arca/x509.h"

#define KEY_FILE "identity.key"
#define CERT_FILE "identity.crt"
#define PEM_MAX (64u << 10)
#define CN_MAX ARCA_CN_MAX

static int ossl_fail(int code)
{
	ERR_clear_error();
	return code;
}

/* ---- PEM in and out of memory ---- */

/* Appends what bio holds to out. */
static int bio_drain(BIO *bio, struct arca_buf *out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	ENSURE(n >= 0 && data != NULL, ARCA_ECRYPTO);
	return arca_buf_append(out, data, (size_t)n);
}

static int key_to_pem(EVP_PKEY *k, struct arca_buf *out)
{
	/* secmem: OpenSSL wipes it on free. */
	BIO *bio = BIO_new(BIO_s_secmem());
	ENSURE(bio != NULL, ARCA_ENOMEM);
	out->secret = 1;
	int rc = PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) == 1 ? bio_drain(bio, out)
										       : ARCA_ECRYPTO;
	BIO_free(bio);
	return rc < 0 ? ossl_fail(rc) : 0;
}

static int key_from_pem(const uint8_t *p, size_t n, EVP_PKEY **out)
{
	ENSURE(n <= INT_MAX, ARCA_ETOOBIG);
	BIO *bio = BIO_new_mem_buf(p, (int)n);
	ENSURE(bio != NULL, ARCA_ENOMEM);
	*out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return *out ? 0 : ossl_fail(ARCA_EPARSE);
}

int arca_x509_pem(X509 *c, struct arca_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	ENSURE(bio != NULL, ARCA_ENOMEM);
	int rc = PEM_write_bio_X509(bio, c) == 1 ? bio_drain(bio, out) : ARCA_ECRYPTO;
	BIO_free(bio);
	return rc < 0 ? ossl_fail(rc) : 0;
}

int arca_x509_load(const uint8_t *p, size_t n, X509 **out)
{
	*out = NULL;
	ENSURE(p != NULL && n > 0, ARCA_EPARSE);
	ENSURE(n <= INT_MAX, ARCA_ETOOBIG);
	static const char pem[] = "-----BEGIN";
	const uint8_t *q = p;
	while ((size_t)(q - p) < n && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
		q++;
	if ((size_t)(n - (size_t)(q - p)) >= sizeof pem - 1 && memcmp(q, pem, sizeof pem - 1) == 0) {
		BIO *bio = BIO_new_mem_buf(p, (int)n);
		ENSURE(bio != NULL, ARCA_ENOMEM);
		*out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		return *out ? 0 : ossl_fail(ARCA_EPARSE);
	}
	/* DER: exactly one certificate, nothing after it. d2i does not judge
	 * the serial number, so the AMD VCEKs with serial 0 load. */
	const unsigned char *d = p;
	X509 *x = d2i_X509(NULL, &d, (long)n);
	if (!x)
		return ossl_fail(ARCA_EPARSE);
	if ((size_t)(d - p) != n) {
		X509_free(x);
		return ARCA_EPARSE;
	}
	*out = x;
	return 0;
}

/* ---- building certificates ---- */

static int set_serial(X509 *x)
{
	/* 127 random bits: positive, nonzero with overwhelming likelihood, and
	 * within the 20 octets RFC 5280 allows. */
	uint8_t r[16];
	GUARD(arca_random(r, sizeof r));
	r[0] &= 0x7f;
	r[0] |= 0x01;
	BIGNUM *bn = BN_bin2bn(r, sizeof r, NULL);
	ENSURE(bn != NULL, ARCA_ENOMEM);
	int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : ARCA_ECRYPTO;
}

static int cn_valid(const char *cn)
{
	size_t n = cn ? strnlen(cn, CN_MAX + 1) : 0;
	return n >= 1 && n <= CN_MAX;
}

int arca_dns_name_valid(const char *s)
{
	if (!s)
		return 0;
	size_t n = strnlen(s, 254);
	if (n == 0 || n > 253)
		return 0;
	size_t i = 0;
	if (n > 2 && s[0] == '*' && s[1] == '.')
		i = 2;
	/* Each label: letters, digits and '-', 1..63, not starting or ending
	 * with '-' (RFC 1123). */
	size_t label = 0;
	char prev = '.';
	for (; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
		prev = c;
	}
	return label > 0 && prev != '-';
}

static X509_NAME *name_cn(const char *cn)
{
	X509_NAME *nm = X509_NAME_new();
	if (nm && X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1) {
		X509_NAME_free(nm);
		nm = NULL;
	}
	return nm;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ENSURE(ext != NULL, ARCA_ECRYPTO);
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : ARCA_ECRYPTO;
}

/* SAN built as GENERAL_NAMEs, not from a config string, so that a name
 * cannot smuggle "IP:" or "," syntax into the extension. */
static int add_san(X509 *x, const char *const *dns, size_t ndns)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	ENSURE(gens != NULL, ARCA_ENOMEM);
	int rc = 0;
	for (size_t i = 0; i < ndns && rc == 0; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
		if (!g || !ia5 || ASN1_STRING_set(ia5, dns[i], (int)strlen(dns[i])) != 1) {
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(ia5);
			rc = ARCA_ENOMEM;
			break;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
		if (sk_GENERAL_NAME_push(gens, g) <= 0) {
			GENERAL_NAME_free(g);
			rc = ARCA_ENOMEM;
		}
	}
	if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		rc = ARCA_ECRYPTO;
	GENERAL_NAMES_free(gens);
	return rc;
}

/* Fills version, serial, names, validity and key; extensions are the
 * caller's. issuer NULL means self-signed. days_valid from now, backdated
 * an hour for clocks that lag. */
static int cert_base(X509 *x, EVP_PKEY *key, const char *cn, X509 *issuer, long days_valid)
{
	ENSURE(X509_set_version(x, X509_VERSION_3) == 1, ARCA_ECRYPTO);
	GUARD(set_serial(x));
	X509_NAME *subj = name_cn(cn);
	ENSURE(subj != NULL, ARCA_ECRYPTO);
	int ok = X509_set_subject_name(x, subj) == 1 &&
		 X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) == 1;
	X509_NAME_free(subj);
	ENSURE(ok, ARCA_ECRYPTO);
	ENSURE(X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL, ARCA_ECRYPTO);
	ENSURE(X509_time_adj_ex(X509_getm_notAfter(x), (int)days_valid, 0, NULL) != NULL, ARCA_ECRYPTO);
	/* A leaf that outlives its CA would stop verifying early anyway; say so
	 * in the certificate instead. */
	if (issuer && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0)
		ENSURE(X509_set1_notAfter(x, X509_get0_notAfter(issuer)) == 1, ARCA_ECRYPTO);
	ENSURE(X509_set_pubkey(x, key) == 1, ARCA_ECRYPTO);
	return 0;
}

static EVP_PKEY *p256_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* ---- identities ---- */

static int join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= cap) ? ARCA_ETOOBIG : 0;
}

static int self_signed_identity(const char *cn, EVP_PKEY **key, X509 **cert)
{
	*key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	*cert = X509_new();
	int rc;
	ENSURE_GOTO(*key && *cert, ARCA_ENOMEM, fail);
	GUARD_GOTO(cert_base(*cert, *key, cn, NULL, 20L * 365 + 5), fail);
	/* Used for TLS in both directions and pinned, never as a CA. */
	GUARD_GOTO(add_ext(*cert, *cert, NID_basic_constraints, "critical,CA:FALSE"), fail);
	GUARD_GOTO(add_ext(*cert, *cert, NID_key_usage, "critical,digitalSignature"), fail);
	GUARD_GOTO(add_ext(*cert, *cert, NID_ext_key_usage, "serverAuth,clientAuth"), fail);
	GUARD_GOTO(add_ext(*cert, *cert, NID_subject_key_identifier, "hash"), fail);
	/* Ed25519 signs the message itself: no digest. */
	ENSURE_GOTO(X509_sign(*cert, *key, NULL) > 0, ARCA_ECRYPTO, fail);
	return 0;
fail:
	EVP_PKEY_free(*key);
	X509_free(*cert);
	*key = NULL;
	*cert = NULL;
	return ossl_fail(rc);
}

int arca_identity_create(const char *dir, const char *common_name, struct arca_errbuf *e)
{
	char kpath[PATH_MAX], cpath[PATH_MAX];
	if (join(kpath, sizeof kpath, dir, KEY_FILE) < 0 || join(cpath, sizeof cpath, dir, CERT_FILE) < 0)
		return arca_errf(e, ARCA_ETOOBIG, "directory path too long: %s", dir);
	if (!cn_valid(common_name))
		return arca_errf(e, ARCA_EINVAL, "identity name must be 1 to %d characters", CN_MAX);
	GUARD(arca_mkdirs(dir, 0700, e));

	struct stat st;
	if (lstat(kpath, &st) == 0)
		return arca_errf(e, ARCA_EEXIST,
				 "an identity already exists in %s (%s); remove it first if you really mean to "
				 "replace it", dir, kpath);

	EVP_PKEY *key;
	X509 *cert;
	int rc = self_signed_identity(common_name, &key, &cert);
	if (rc < 0)
		return arca_errf(e, rc, "cannot create an identity key and certificate");

	struct arca_buf kpem, cpem;
	arca_buf_init(&kpem, PEM_MAX, 1);
	arca_buf_init(&cpem, PEM_MAX, 0);
	GUARD_GOTO(key_to_pem(key, &kpem), pem_fail);
	GUARD_GOTO(arca_x509_pem(cert, &cpem), pem_fail);
	/* Certificate first, key last: the key's presence is what makes an
	 * identity exist, so a crash in between leaves none. */
	GUARD_GOTO(arca_write_file_atomic(cpath, cpem.p, cpem.len, 0644, e), out);
	GUARD_GOTO(arca_write_file_atomic(kpath, kpem.p, kpem.len, 0600, e), out);
	goto out;
pem_fail:
	rc = arca_errf(e, rc, "cannot encode the new identity");
out:
	arca_buf_free(&kpem);
	arca_buf_free(&cpem);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

void arca_identity_free(struct arca_identity *id)
{
	if (!id)
		return;
	EVP_PKEY_free(id->key);
	X509_free(id->cert);
	id->key = NULL;
	id->cert = NULL;
	memset(id->fpr, 0, sizeof id->fpr);
}

static int load_key(const char *kpath, EVP_PKEY **key, struct arca_errbuf *e)
{
	int fd = open(kpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err == ENOENT)
			return arca_errf(e, ARCA_ENOTFOUND,
					 "no identity key at %s; create one with `arca identity create`", kpath);
		return arca_errf(e, err == EACCES ? ARCA_EDENIED : ARCA_EIO, "cannot open %s: %s", kpath,
				 strerror(err));
	}
	/* Checked on the open fd, so the file read is the file judged. */
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return arca_errf(e, ARCA_EIO, "cannot stat %s", kpath);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return arca_errf(e, ARCA_EINVAL, "%s is not a regular file", kpath);
	}
	if (st.st_mode & 077) {
		close(fd);
		return arca_errf(e, ARCA_EDENIED,
				 "%s is accessible by group or others (mode %04o); the private key must be "
				 "private: run `chmod 600 %s`", kpath, (unsigned)(st.st_mode & 07777), kpath);
	}
	struct arca_buf pem;
	arca_buf_init(&pem, PEM_MAX, 1);
	int rc = arca_read_fd(fd, kpath, PEM_MAX, &pem, e);
	close(fd);
	if (rc == 0 && key_from_pem(pem.p, pem.len, key) < 0)
		rc = arca_errf(e, ARCA_EPARSE, "%s is not a PEM private key", kpath);
	arca_buf_free(&pem);
	if (rc == 0 && EVP_PKEY_get_id(*key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(*key);
		*key = NULL;
		rc = arca_errf(e, ARCA_EUNSUPPORTED, "%s is not an Ed25519 key; an identity must be Ed25519", kpath);
	}
	return rc;
}

int arca_identity_load(const char *dir, struct arca_identity *id, struct arca_errbuf *e)
{
	memset(id, 0, sizeof *id);
	char kpath[PATH_MAX], cpath[PATH_MAX];
	if (join(kpath, sizeof kpath, dir, KEY_FILE) < 0 || join(cpath, sizeof cpath, dir, CERT_FILE) < 0)
		return arca_errf(e, ARCA_ETOOBIG, "directory path too long: %s", dir);

	int rc;
	struct arca_buf pem;
	arca_buf_init(&pem, PEM_MAX, 0);
	GUARD_GOTO(load_key(kpath, &id->key, e), fail);
	rc = arca_read_file(cpath, PEM_MAX, &pem, e);
	if (rc == ARCA_ENOTFOUND) {
		rc = arca_errf(e, rc, "no identity certificate at %s although %s exists; restore it, or remove "
				      "both and create a new identity", cpath, kpath);
		goto fail;
	}
	if (rc < 0)
		goto fail;
	if (arca_x509_load(pem.p, pem.len, &id->cert) < 0) {
		rc = arca_errf(e, ARCA_EPARSE, "%s is not a certificate", cpath);
		goto fail;
	}
	if (X509_check_private_key(id->cert, id->key) != 1) {
		rc = arca_errf(e, ARCA_ECRYPTO, "%s does not belong to the key in %s; restore the matching pair",
			       cpath, kpath);
		goto fail;
	}
	rc = arca_fpr_pkey(id->key, id->fpr);
	if (rc < 0) {
		rc = arca_errf(e, rc, "cannot compute the fingerprint of %s", kpath);
		goto fail;
	}
	arca_buf_free(&pem);
	return 0;
fail:
	arca_buf_free(&pem);
	arca_identity_free(id);
	ERR_clear_error();
	return rc;
}

int arca_identity_load_or_create(const char *dir, const char *common_name, struct arca_identity *id,
				 struct arca_errbuf *e)
{
	char kpath[PATH_MAX];
	if (join(kpath, sizeof kpath, dir, KEY_FILE) < 0)
		return arca_errf(e, ARCA_ETOOBIG, "directory path too long: %s", dir);
	struct stat st;
	if (lstat(kpath, &st) < 0 && errno == ENOENT) {
		int rc = arca_identity_create(dir, common_name, e);
		/* Another process may have won the race; then load its identity. */
		if (rc < 0 && rc != ARCA_EEXIST)
			return rc;
	}
	return arca_identity_load(dir, id, e);
}

/* ---- per-session CA ---- */

int arca_ca_create(const char *common_name, struct arca_buf *key_pem, struct arca_buf *cert_pem)
{
	ENSURE(cn_valid(common_name), ARCA_EINVAL);
	EVP_PKEY *key = p256_keygen();
	X509 *x = X509_new();
	size_t klen = key_pem->len, clen = cert_pem->len;
	int rc;
	ENSURE_GOTO(key && x, ARCA_ENOMEM, out);
	GUARD_GOTO(cert_base(x, key, common_name, NULL, 10L * 365 + 3), out);
	/* pathlen 0: a session CA signs service leaves, never other CAs. */
	GUARD_GOTO(add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"), out);
	GUARD_GOTO(add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign"), out);
	GUARD_GOTO(add_ext(x, x, NID_subject_key_identifier, "hash"), out);
	GUARD_GOTO(add_ext(x, x, NID_authority_key_identifier, "keyid:always"), out);
	ENSURE_GOTO(X509_sign(x, key, EVP_sha256()) > 0, ARCA_ECRYPTO, out);
	GUARD_GOTO(key_to_pem(key, key_pem), out);
	GUARD_GOTO(arca_x509_pem(x, cert_pem), out);
out:
	if (rc < 0) {
		arca_buf_truncate(key_pem, klen);
		arca_buf_truncate(cert_pem, clen);
		ERR_clear_error();
	}
	EVP_PKEY_free(key);
	X509_free(x);
	return rc;
}

int arca_ca_issue(const uint8_t *ca_key_pem, size_t ca_key_len, const uint8_t *ca_cert_pem, size_t ca_cert_len,
		  const char *common_name, const char *const *dns, size_t ndns, struct arca_buf *key_pem,
		  struct arca_buf *cert_pem)
{
	ENSURE(cn_valid(common_name), ARCA_EINVAL);
	ENSURE(ndns <= 100 && (ndns == 0 || dns != NULL), ARCA_EINVAL);
	for (size_t i = 0; i < ndns; i++)
		ENSURE(arca_dns_name_valid(dns[i]), ARCA_EINVAL);

	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	size_t klen = key_pem->len, clen = cert_pem->len;
	int rc;
	GUARD_GOTO(key_from_pem(ca_key_pem, ca_key_len, &ca_key), out);
	GUARD_GOTO(arca_x509_load(ca_cert_pem, ca_cert_len, &ca), out);
	ENSURE_GOTO(X509_check_private_key(ca, ca_key) == 1, ARCA_EINVAL, out);
	ENSURE_GOTO(X509_check_ca(ca) >= 1, ARCA_EINVAL, out);

	key = p256_keygen();
	x = X509_new();
	ENSURE_GOTO(key && x, ARCA_ENOMEM, out);
	GUARD_GOTO(cert_base(x, key, common_name, ca, 365), out);
	GUARD_GOTO(add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE"), out);
	GUARD_GOTO(add_ext(x, ca, NID_key_usage, "critical,digitalSignature"), out);
	GUARD_GOTO(add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth"), out);
	GUARD_GOTO(add_ext(x, ca, NID_subject_key_identifier, "hash"), out);
	GUARD_GOTO(add_ext(x, ca, NID_authority_key_identifier, "keyid:always"), out);
	if (ndns > 0)
		GUARD_GOTO(add_san(x, dns, ndns), out);
	ENSURE_GOTO(X509_sign(x, ca_key, EVP_sha256()) > 0, ARCA_ECRYPTO, out);
	GUARD_GOTO(key_to_pem(key, key_pem), out);
	GUARD_GOTO(arca_x509_pem(x, cert_pem), out);
out:
	if (rc < 0) {
		arca_buf_truncate(key_pem, klen);
		arca_buf_truncate(cert_pem, clen);
		ERR_clear_error();
	}
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(x);
	return rc;
}

int arca_private_key_pem(struct arca_buf *key_pem)
{
	EVP_PKEY *key = p256_keygen();
	if (!key)
		return ossl_fail(ARCA_ECRYPTO);
	int rc = key_to_pem(key, key_pem);
	EVP_PKEY_free(key);
	return rc;
}
