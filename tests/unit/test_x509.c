/* test_x509.c: identities on disk, certificate loading (DER, PEM, serial 0)
 * and the per-session CA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "arca/x509.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/arca-test-x509-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void sub(char *out, size_t cap, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", tmpdir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static void test_identity_round_trip(void **state)
{
	char dir[300], kpath[340], cpath[340];
	struct arca_errbuf e = { { 0 } };
	sub(dir, sizeof dir, "home/nested");
	snprintf(kpath, sizeof kpath, "%s/identity.key", dir);
	snprintf(cpath, sizeof cpath, "%s/identity.crt", dir);

	assert_int_equal(arca_identity_create(dir, "alice", &e), 0);
	struct stat st;
	assert_int_equal(stat(kpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(cpath, &st), 0);

	struct arca_buf pem;
	arca_buf_init(&pem, 0, 1);
	assert_int_equal(arca_read_file(kpath, 1 << 16, &pem, &e), 0);
	assert_non_null(strstr((char *)pem.p, "-----BEGIN PRIVATE KEY-----"));
	arca_buf_free(&pem);

	struct arca_identity id;
	assert_int_equal(arca_identity_load(dir, &id, &e), 0);
	assert_non_null(id.key);
	assert_non_null(id.cert);
	assert_int_equal(EVP_PKEY_get_id(id.key), EVP_PKEY_ED25519);
	assert_true(arca_fpr_valid(id.fpr));

	/* The fingerprint is the key's, whether taken from key or certificate. */
	char fpr[ARCA_FPR_LEN];
	assert_int_equal(arca_fpr_pkey(X509_get0_pubkey(id.cert), fpr), 0);
	assert_string_equal(fpr, id.fpr);
	uint8_t raw[32];
	size_t rawlen = 32;
	assert_int_equal(EVP_PKEY_get_raw_public_key(id.key, raw, &rawlen), 1);
	assert_int_equal(arca_fpr_ed25519(raw, fpr), 0);
	assert_string_equal(fpr, id.fpr);

	/* Self-signed, v3, CN as asked, not a CA, nonzero serial. */
	assert_int_equal(X509_verify(id.cert, id.key), 1);
	assert_int_equal(X509_get_version(id.cert), X509_VERSION_3);
	char cn[64];
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(id.cert), NID_commonName, cn, sizeof cn) > 0);
	assert_string_equal(cn, "alice");
	assert_int_equal(X509_check_ca(id.cert), 0);
	BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id.cert), NULL);
	assert_non_null(serial);
	assert_false(BN_is_zero(serial));
	assert_false(BN_is_negative(serial));
	BN_free(serial);
	/* Valid now and for well over 19 years. */
	assert_true(X509_cmp_current_time(X509_get0_notBefore(id.cert)) < 0);
	time_t t19 = time(NULL) + (time_t)19 * 366 * 86400;
	assert_true(X509_cmp_time(X509_get0_notAfter(id.cert), &t19) > 0);

	/* Loading again gives the same identity; creating again is refused. */
	struct arca_identity id2;
	assert_int_equal(arca_identity_load(dir, &id2, &e), 0);
	assert_string_equal(id2.fpr, id.fpr);
	assert_int_equal(X509_cmp(id.cert, id2.cert), 0);
	arca_identity_free(&id2);
	assert_int_equal(arca_identity_create(dir, "mallory", &e), ARCA_EEXIST);
	assert_non_null(strstr(e.msg, dir));
	struct arca_identity id3;
	assert_int_equal(arca_identity_load_or_create(dir, "other", &id3, &e), 0);
	assert_string_equal(id3.fpr, id.fpr);
	arca_identity_free(&id3);

	arca_identity_free(&id);
	assert_null(id.key);
	assert_null(id.cert);
}

static void test_identity_refusals(void **state)
{
	char dir[300], kpath[340], cpath[340];
	struct arca_errbuf e = { { 0 } };
	struct arca_identity id;

	sub(dir, sizeof dir, "absent");
	assert_int_equal(arca_identity_load(dir, &id, &e), ARCA_ENOTFOUND);
	assert_non_null(strstr(e.msg, "absent/identity.key"));
	assert_null(id.key);

	sub(dir, sizeof dir, "perm");
	snprintf(kpath, sizeof kpath, "%s/identity.key", dir);
	snprintf(cpath, sizeof cpath, "%s/identity.crt", dir);
	assert_int_equal(arca_identity_create(dir, "bob", &e), 0);
	static const mode_t loose[] = { 0644, 0640, 0604, 0660, 0602 };
	for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
		assert_int_equal(chmod(kpath, loose[i]), 0);
		memset(&e, 0, sizeof e);
		assert_int_equal(arca_identity_load(dir, &id, &e), ARCA_EDENIED);
		assert_non_null(strstr(e.msg, kpath));
		assert_non_null(strstr(e.msg, "chmod 600"));
		assert_null(id.key);
		assert_null(id.cert);
	}
	assert_int_equal(chmod(kpath, 0400), 0);
	assert_int_equal(arca_identity_load(dir, &id, &e), 0);
	arca_identity_free(&id);

	/* A certificate that belongs to another key is refused. */
	char dir2[300], cpath2[340];
	sub(dir2, sizeof dir2, "other");
	snprintf(cpath2, sizeof cpath2, "%s/identity.crt", dir2);
	assert_int_equal(arca_identity_create(dir2, "carol", &e), 0);
	assert_int_equal(rename(cpath2, cpath), 0);
	assert_int_equal(arca_identity_load(dir, &id, &e), ARCA_ECRYPTO);
	assert_non_null(strstr(e.msg, cpath));
	assert_null(id.key);

	/* Key without certificate: says which file is missing. */
	assert_int_equal(unlink(cpath), 0);
	assert_int_equal(arca_identity_load(dir, &id, &e), ARCA_ENOTFOUND);
	assert_non_null(strstr(e.msg, cpath));

	/* A key file that is not a key. */
	assert_int_equal(arca_write_file_atomic(kpath, "junk\n", 5, 0600, &e), 0);
	assert_int_equal(arca_identity_load(dir, &id, &e), ARCA_EPARSE);
	assert_non_null(strstr(e.msg, kpath));
	assert_int_equal(ERR_peek_error(), 0); /* no stale OpenSSL errors */

	/* An identity must be Ed25519. */
	struct arca_buf p256;
	arca_buf_init(&p256, 0, 1);
	assert_int_equal(arca_private_key_pem(&p256), 0);
	assert_int_equal(arca_write_file_atomic(kpath, p256.p, p256.len, 0600, &e), 0);
	arca_buf_free(&p256);
	assert_int_equal(arca_identity_load(dir, &id, &e), ARCA_EUNSUPPORTED);

	/* load_or_create creates where nothing is. */
	sub(dir, sizeof dir, "fresh");
	assert_int_equal(arca_identity_load_or_create(dir, "daemon", &id, &e), 0);
	assert_true(arca_fpr_valid(id.fpr));
	arca_identity_free(&id);

	assert_int_equal(arca_identity_create(dir, "", &e), ARCA_EINVAL);
}

/* A certificate with serial number 0, like AMD's VCEKs. */
static X509 *serial_zero_cert(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *x = X509_new();
	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0), 1);
	X509_NAME *n = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"zero", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, NULL) > 0);
	EVP_PKEY_free(k);
	return x;
}

static void test_x509_load(void **state)
{
	X509 *orig = serial_zero_cert();
	unsigned char *der = NULL;
	int dlen = i2d_X509(orig, &der);
	assert_true(dlen > 0);

	X509 *x = NULL;
	assert_int_equal(arca_x509_load(der, (size_t)dlen, &x), 0);
	assert_int_equal(X509_cmp(x, orig), 0);
	assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 0);
	X509_free(x);

	struct arca_buf pem;
	arca_buf_init(&pem, 0, 0);
	assert_int_equal(arca_x509_pem(orig, &pem), 0);
	assert_int_equal(strncmp((char *)pem.p, "-----BEGIN CERTIFICATE-----\n", 28), 0);
	assert_int_equal(arca_x509_load(pem.p, pem.len, &x), 0);
	assert_int_equal(X509_cmp(x, orig), 0);
	X509_free(x);

	/* Refusals: trailing byte after DER, truncated DER, garbage, empty,
	 * damaged PEM. No stale OpenSSL error remains. */
	uint8_t *longer = malloc((size_t)dlen + 1);
	assert_non_null(longer);
	memcpy(longer, der, (size_t)dlen);
	longer[dlen] = 0;
	assert_int_equal(arca_x509_load(longer, (size_t)dlen + 1, &x), ARCA_EPARSE);
	assert_null(x);
	assert_int_equal(arca_x509_load(der, (size_t)dlen - 1, &x), ARCA_EPARSE);
	assert_int_equal(arca_x509_load((const uint8_t *)"hello", 5, &x), ARCA_EPARSE);
	assert_int_equal(arca_x509_load((const uint8_t *)"", 0, &x), ARCA_EPARSE);
	pem.p[40] ^= 0x01;
	assert_int_equal(arca_x509_load(pem.p, pem.len, &x), ARCA_EPARSE);
	assert_null(x);
	assert_int_equal(ERR_peek_error(), 0);
	free(longer);
	arca_buf_free(&pem);
	OPENSSL_free(der);
	X509_free(orig);

	/* The real AMD VCEK with serial 0, when the vectors are present. */
	const char *vec = getenv("ARCA_VECTORS");
	char path[512];
	if (vec && *vec) {
		snprintf(path, sizeof path, "%s/sev-snp/gsg-milan-vcek.der", vec);
		struct arca_buf b;
		struct arca_errbuf e;
		arca_buf_init(&b, 0, 0);
		if (arca_read_file(path, 1 << 16, &b, &e) == 0) {
			assert_int_equal(arca_x509_load(b.p, b.len, &x), 0);
			assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 0);
			char cn[64];
			assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0);
			assert_string_equal(cn, "SEV-VCEK");
			X509_free(x);
		} else {
			print_message("note: %s not readable, real VCEK not checked\n", path);
		}
		arca_buf_free(&b);
	}
}

static int has_dns(X509 *x, const char *name)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(name) &&
		    memcmp(ASN1_STRING_get0_data(g->d.dNSName), name, strlen(name)) == 0)
			found = 1;
	}
	int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
	GENERAL_NAMES_free(gens);
	return found ? n : 0;
}

static int verify_chain(X509 *leaf, X509 *ca)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	int ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

static void test_ca(void **state)
{
	struct arca_buf cakey, cacert, key, cert;
	arca_buf_init(&cakey, 0, 0);
	arca_buf_init(&cacert, 0, 0);
	arca_buf_init(&key, 0, 0);
	arca_buf_init(&cert, 0, 0);
	assert_int_equal(arca_ca_create("payroll CA", &cakey, &cacert), 0);
	assert_true(cakey.secret); /* private keys come back in secret buffers */
	assert_non_null(strstr((char *)cakey.p, "BEGIN PRIVATE KEY"));

	X509 *ca = NULL;
	assert_int_equal(arca_x509_load(cacert.p, cacert.len, &ca), 0);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	assert_int_equal(X509_get_pathlen(ca), 0);
	assert_int_equal(X509_verify(ca, X509_get0_pubkey(ca)), 1);
	EVP_PKEY *capub = X509_get0_pubkey(ca);
	assert_int_equal(EVP_PKEY_get_base_id(capub), EVP_PKEY_EC);
	char group[32];
	assert_int_equal(EVP_PKEY_get_group_name(capub, group, sizeof group, NULL), 1);
	assert_string_equal(group, "prime256v1");

	const char *dns[] = { "api.example", "*.svc.example" };
	assert_int_equal(arca_ca_issue(cakey.p, cakey.len, cacert.p, cacert.len, "api.example", dns, 2, &key, &cert), 0);
	assert_true(key.secret);
	X509 *leaf = NULL;
	assert_int_equal(arca_x509_load(cert.p, cert.len, &leaf), 0);

	/* Signed by the CA, chains to it for TLS server use, carries the SANs. */
	assert_int_equal(X509_verify(leaf, capub), 1);
	assert_int_equal(X509_check_issued(ca, leaf), X509_V_OK);
	assert_int_equal(verify_chain(leaf, ca), 1);
	assert_int_equal(has_dns(leaf, "api.example"), 2);
	assert_int_equal(has_dns(leaf, "*.svc.example"), 2);
	assert_int_equal(X509_check_host(leaf, "api.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(leaf, "db.svc.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(leaf, "evil.example", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ca(leaf), 0);
	assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
	assert_false(X509_get_key_usage(leaf) & KU_KEY_CERT_SIGN);

	/* The returned key is the leaf's. */
	BIO *bio = BIO_new_mem_buf(key.p, (int)key.len);
	EVP_PKEY *lk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(lk);
	assert_int_equal(X509_check_private_key(leaf, lk), 1);
	EVP_PKEY_free(lk);

	/* Another CA's leaf does not verify against this one. */
	struct arca_buf k2, c2, lk2, lc2;
	arca_buf_init(&k2, 0, 0);
	arca_buf_init(&c2, 0, 0);
	arca_buf_init(&lk2, 0, 0);
	arca_buf_init(&lc2, 0, 0);
	assert_int_equal(arca_ca_create("other CA", &k2, &c2), 0);
	assert_int_equal(arca_ca_issue(k2.p, k2.len, c2.p, c2.len, "api.example", dns, 1, &lk2, &lc2), 0);
	X509 *foreign = NULL;
	assert_int_equal(arca_x509_load(lc2.p, lc2.len, &foreign), 0);
	assert_int_equal(X509_verify(foreign, capub), 0);
	ERR_clear_error();
	assert_int_equal(verify_chain(foreign, ca), 0);
	assert_int_equal(has_dns(foreign, "*.svc.example"), 0);
	X509_free(foreign);

	/* Mismatched CA key and certificate; names that are not DNS names;
	 * outputs untouched on refusal. */
	size_t before = lc2.len;
	assert_int_equal(arca_ca_issue(k2.p, k2.len, cacert.p, cacert.len, "x", dns, 1, &lk2, &lc2), ARCA_EINVAL);
	const char *bad[][1] = { { "a,IP:1.2.3.4" }, { "" }, { "a..b" }, { "a b" }, { "foo.*" }, { ".a" } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(arca_ca_issue(cakey.p, cakey.len, cacert.p, cacert.len, "x", bad[i], 1, &lk2, &lc2),
				 ARCA_EINVAL);
	assert_int_equal(lc2.len, before);
	assert_int_equal(arca_ca_issue(cakey.p, cakey.len, cacert.p, cacert.len, "", dns, 1, &lk2, &lc2),
			 ARCA_EINVAL);
	assert_int_equal(ERR_peek_error(), 0);

	/* A leaf without DNS names is still a valid leaf. */
	arca_buf_reset(&lc2);
	assert_int_equal(arca_ca_issue(cakey.p, cakey.len, cacert.p, cacert.len, "client", NULL, 0, &lk2, &lc2), 0);
	X509 *client = NULL;
	assert_int_equal(arca_x509_load(lc2.p, lc2.len, &client), 0);
	assert_int_equal(X509_verify(client, capub), 1);
	X509_free(client);

	arca_buf_free(&k2);
	arca_buf_free(&c2);
	arca_buf_free(&lk2);
	arca_buf_free(&lc2);
	X509_free(leaf);
	X509_free(ca);
	arca_buf_free(&cakey);
	arca_buf_free(&cacert);
	arca_buf_free(&key);
	arca_buf_free(&cert);
}

static void test_dns_names(void **state)
{
	static const char *good[] = { "a", "api.example", "*.svc.example", "A-1.b-2.example", "xn--bcher-kva.example" };
	static const char *bad[] = { "", ".", "a.", ".a", "a..b", "a b", "a_b", "*", "*.", "a.*.b", "foo*.b", "a/b",
				     "a,IP:1.2.3.4", "-", "-a.b", "a-.b", "a.b-" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(arca_dns_name_valid(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (arca_dns_name_valid(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(arca_dns_name_valid(NULL));
	char label[70], name[300];
	memset(label, 'a', 63);
	label[63] = 0;
	assert_true(arca_dns_name_valid(label));
	memset(label, 'a', 64);
	label[64] = 0;
	assert_false(arca_dns_name_valid(label));
	/* 4 labels of 63 + 3 dots = 255 > 253 */
	snprintf(name, sizeof name, "%.63s.%.63s.%.63s.%.63s", label, label, label, label);
	assert_false(arca_dns_name_valid(name));
	snprintf(name, sizeof name, "%.63s.%.63s.%.63s.%.61s", label, label, label, label);
	assert_int_equal(strlen(name), 253);
	assert_true(arca_dns_name_valid(name));
}

static void test_private_key_pem(void **state)
{
	struct arca_buf a, b;
	arca_buf_init(&a, 0, 0);
	arca_buf_init(&b, 0, 0);
	assert_int_equal(arca_private_key_pem(&a), 0);
	assert_int_equal(arca_private_key_pem(&b), 0);
	assert_true(a.secret);
	assert_string_not_equal((char *)a.p, (char *)b.p);
	BIO *bio = BIO_new_mem_buf(a.p, (int)a.len);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	EVP_PKEY_free(k);
	arca_buf_free(&a);
	arca_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_round_trip),
		cmocka_unit_test(test_identity_refusals),
		cmocka_unit_test(test_x509_load),
		cmocka_unit_test(test_ca),
		cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_private_key_pem),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
