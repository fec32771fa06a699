/* test_crypto.c: known answers from the RFCs for every primitive, and the
 * refusals that matter (flipped bits, wrong keys, wrong context). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "arca/crypto.h"
#include "arca/encode.h"

/* Decodes a hex literal of a test vector; fails the test if malformed. */
static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	assert_int_equal(arca_hex_decode(h, strlen(h), out, cap, &n), 0);
	return n;
}

static void assert_hex(const uint8_t *got, size_t n, const char *want)
{
	char s[1024];
	assert_true(ARCA_HEX_LEN(n) <= sizeof s);
	arca_hex_encode(got, n, s);
	assert_string_equal(s, want);
}

static void test_sha(void **state)
{
	uint8_t d[64];
	assert_int_equal(arca_sha256("abc", 3, d), 0);
	assert_hex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(arca_sha256(NULL, 0, d), 0);
	assert_hex(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_int_equal(arca_sha256(m2, strlen(m2), d), 0);
	assert_hex(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(arca_sha512("abc", 3, d), 0);
	assert_hex(d, 64, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
			  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

static void test_sha256_incremental_and_fd(void **state)
{
	const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	struct arca_sha256 h;
	uint8_t d[32];
	assert_int_equal(arca_sha256_begin(&h), 0);
	for (size_t i = 0; i < strlen(m2); i += 5)
		assert_int_equal(arca_sha256_update(&h, m2 + i, strlen(m2) - i < 5 ? strlen(m2) - i : 5), 0);
	assert_int_equal(arca_sha256_end(&h, d), 0);
	assert_hex(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_null(h.md_ctx);

	assert_int_equal(arca_sha256_begin(&h), 0);
	assert_int_equal(arca_sha256_update(&h, "x", 1), 0);
	arca_sha256_abort(&h);
	assert_null(h.md_ctx);

	/* One million 'a' (FIPS 180-2), through a file bigger than the read
	 * buffer so the loop runs many times. */
	char path[] = "/tmp/arca-test-sha-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	char *a = malloc(1000000);
	assert_non_null(a);
	memset(a, 'a', 1000000);
	assert_int_equal(write(fd, a, 1000000), 1000000);
	free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(arca_sha256_fd(fd, d), 0);
	assert_hex(d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	close(fd);
	assert_int_equal(arca_sha256_fd(-1, d), ARCA_EIO);
}

static void test_hmac_rfc4231(void **state)
{
	uint8_t key[131], out[32];
	memset(key, 0x0b, 20);
	assert_int_equal(arca_hmac_sha256(key, 20, "Hi There", 8, out), 0);
	assert_hex(out, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	const char *d2 = "what do ya want for nothing?";
	assert_int_equal(arca_hmac_sha256((const uint8_t *)"Jefe", 4, d2, strlen(d2), out), 0);
	assert_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	/* Test case 6: a key longer than the block size is hashed first. */
	memset(key, 0xaa, 131);
	const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
	assert_int_equal(arca_hmac_sha256(key, 131, d6, strlen(d6), out), 0);
	assert_hex(out, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_hkdf_rfc5869(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42];
	memset(ikm, 0x0b, sizeof ikm);
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(arca_hkdf_sha256(ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, okm, 42), 0);
	assert_hex(okm, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");

	/* Test case 3: no salt, no info. */
	assert_int_equal(arca_hkdf_sha256(ikm, sizeof ikm, NULL, 0, NULL, 0, okm, 42), 0);
	assert_hex(okm, 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");

	assert_int_equal(arca_hkdf_sha256(ikm, sizeof ikm, NULL, 0, NULL, 0, okm, 0), ARCA_EINVAL);
}

static void test_ed25519_rfc8032(void **state)
{
	uint8_t priv[32], pub[32], want_pub[32], sig[64], want_sig[64], msg[1];

	/* Test 1: empty message. */
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", priv, 32);
	unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", want_pub, 32);
	unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
	      "d25bf5f0595bbe24655141438e7a100b", want_sig, 64);
	assert_int_equal(arca_ed25519_public(priv, pub), 0);
	assert_memory_equal(pub, want_pub, 32);
	assert_int_equal(arca_ed25519_sign(priv, "", 0, sig), 0);
	assert_memory_equal(sig, want_sig, 64);
	assert_int_equal(arca_ed25519_verify(pub, "", 0, sig), 0);

	/* Test 2: one byte 0x72. */
	unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", priv, 32);
	unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", want_pub, 32);
	unhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
	      "387b2eaeb4302aeeb00d291612bb0c00", want_sig, 64);
	msg[0] = 0x72;
	assert_int_equal(arca_ed25519_public(priv, pub), 0);
	assert_memory_equal(pub, want_pub, 32);
	assert_int_equal(arca_ed25519_sign(priv, msg, 1, sig), 0);
	assert_memory_equal(sig, want_sig, 64);
	assert_int_equal(arca_ed25519_verify(pub, msg, 1, sig), 0);

	/* Refusals: another message, a flipped signature bit, another key. */
	msg[0] = 0x73;
	assert_int_equal(arca_ed25519_verify(pub, msg, 1, sig), ARCA_ECRYPTO);
	msg[0] = 0x72;
	sig[10] ^= 0x01;
	assert_int_equal(arca_ed25519_verify(pub, msg, 1, sig), ARCA_ECRYPTO);
	sig[10] ^= 0x01;
	assert_int_equal(arca_ed25519_verify(want_pub, msg, 1, sig), 0);
	uint8_t other_pub[32], other_priv[32];
	assert_int_equal(arca_ed25519_keygen(other_pub, other_priv), 0);
	assert_int_equal(arca_ed25519_verify(other_pub, msg, 1, sig), ARCA_ECRYPTO);

	/* A fresh key signs and verifies, and keygen's pub matches its priv. */
	uint8_t derived[32];
	assert_int_equal(arca_ed25519_public(other_priv, derived), 0);
	assert_memory_equal(derived, other_pub, 32);
	assert_int_equal(arca_ed25519_sign(other_priv, "hello", 5, sig), 0);
	assert_int_equal(arca_ed25519_verify(other_pub, "hello", 5, sig), 0);
}

static void test_x25519_rfc7748(void **state)
{
	uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], k[32], want[32];
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv, 32);
	unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_priv, 32);
	unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", a_pub, 32);
	unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", b_pub, 32);
	unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", want, 32);
	assert_int_equal(arca_x25519(k, a_priv, b_pub), 0);
	assert_memory_equal(k, want, 32);
	assert_int_equal(arca_x25519(k, b_priv, a_pub), 0);
	assert_memory_equal(k, want, 32);

	/* A low-order point (here: zero) yields the all-zero secret: refused. */
	uint8_t zero[32] = { 0 };
	assert_int_equal(arca_x25519(k, a_priv, zero), ARCA_ECRYPTO);

	uint8_t p1[32], s1[32], p2[32], s2[32], k1[32], k2[32];
	assert_int_equal(arca_x25519_keygen(p1, s1), 0);
	assert_int_equal(arca_x25519_keygen(p2, s2), 0);
	assert_int_equal(arca_x25519(k1, s1, p2), 0);
	assert_int_equal(arca_x25519(k2, s2, p1), 0);
	assert_memory_equal(k1, k2, 32);
}

static void test_aead(void **state)
{
	uint8_t key[32], key2[32];
	assert_int_equal(arca_random(key, sizeof key), 0);
	memcpy(key2, key, 32);
	key2[31] ^= 0x80;
	const char *pt = "attack at dawn";
	const char *aad = "header";
	struct arca_buf sealed, opened;
	arca_buf_init(&sealed, 0, 0);
	arca_buf_init(&opened, 0, 1);

	assert_int_equal(arca_buf_append(&sealed, "XY", 2), 0); /* seal appends */
	assert_int_equal(arca_aead_seal(key, aad, strlen(aad), pt, strlen(pt), &sealed), 0);
	assert_int_equal(sealed.len, 2 + ARCA_AEAD_OVERHEAD + strlen(pt));
	assert_memory_equal(sealed.p, "XY", 2);
	const uint8_t *s = sealed.p + 2;
	size_t slen = sealed.len - 2;
	assert_memory_not_equal(s + ARCA_AEAD_NONCE_LEN, pt, strlen(pt));

	assert_int_equal(arca_aead_open(key, aad, strlen(aad), s, slen, &opened), 0);
	assert_int_equal(opened.len, strlen(pt));
	assert_memory_equal(opened.p, pt, strlen(pt));
	arca_buf_reset(&opened);

	/* Every single flipped bit — nonce, ciphertext, tag — is refused and
	 * appends nothing. */
	uint8_t *copy = malloc(slen);
	assert_non_null(copy);
	for (size_t i = 0; i < slen; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, s, slen);
			copy[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(arca_aead_open(key, aad, strlen(aad), copy, slen, &opened), ARCA_ECRYPTO);
			assert_int_equal(opened.len, 0);
		}
	}
	free(copy);
	/* Flipped AAD, missing AAD, wrong key, truncation. */
	assert_int_equal(arca_aead_open(key, "headeR", 6, s, slen, &opened), ARCA_ECRYPTO);
	assert_int_equal(arca_aead_open(key, NULL, 0, s, slen, &opened), ARCA_ECRYPTO);
	assert_int_equal(arca_aead_open(key2, aad, strlen(aad), s, slen, &opened), ARCA_ECRYPTO);
	assert_int_equal(arca_aead_open(key, aad, strlen(aad), s, slen - 1, &opened), ARCA_ECRYPTO);
	assert_int_equal(arca_aead_open(key, aad, strlen(aad), s, ARCA_AEAD_OVERHEAD - 1, &opened), ARCA_ECRYPTO);
	assert_int_equal(opened.len, 0);

	/* Empty plaintext, no AAD; and two seals of the same input differ
	 * (random nonce). */
	struct arca_buf e1, e2;
	arca_buf_init(&e1, 0, 0);
	arca_buf_init(&e2, 0, 0);
	assert_int_equal(arca_aead_seal(key, NULL, 0, NULL, 0, &e1), 0);
	assert_int_equal(e1.len, ARCA_AEAD_OVERHEAD);
	assert_int_equal(arca_aead_open(key, NULL, 0, e1.p, e1.len, &opened), 0);
	assert_int_equal(opened.len, 0);
	assert_int_equal(arca_aead_seal(key, NULL, 0, NULL, 0, &e2), 0);
	assert_memory_not_equal(e1.p, e2.p, ARCA_AEAD_OVERHEAD);

	/* The output buffer's max is respected. */
	struct arca_buf small;
	arca_buf_init(&small, ARCA_AEAD_OVERHEAD + 3, 0);
	assert_int_equal(arca_aead_seal(key, NULL, 0, "abcd", 4, &small), ARCA_ENOMEM);
	assert_int_equal(small.len, 0);
	assert_int_equal(arca_aead_seal(key, NULL, 0, "abc", 3, &small), 0);

	arca_buf_free(&small);
	arca_buf_free(&e1);
	arca_buf_free(&e2);
	arca_buf_free(&sealed);
	arca_buf_free(&opened);
}

static void test_box(void **state)
{
	uint8_t pub[32], priv[32], pub2[32], priv2[32];
	assert_int_equal(arca_x25519_keygen(pub, priv), 0);
	assert_int_equal(arca_x25519_keygen(pub2, priv2), 0);
	const char *msg = "{\"argv\":[\"/bin/true\"]}";
	struct arca_buf box, out;
	arca_buf_init(&box, 0, 0);
	arca_buf_init(&out, 0, 1);
	assert_int_equal(arca_box_seal(pub, "arca/v1/config", msg, strlen(msg), &box), 0);
	assert_int_equal(box.len, 32 + ARCA_AEAD_OVERHEAD + strlen(msg));

	assert_int_equal(arca_box_open(priv, pub, "arca/v1/config", box.p, box.len, &out), 0);
	assert_int_equal(out.len, strlen(msg));
	assert_memory_equal(out.p, msg, strlen(msg));
	arca_buf_reset(&out);

	/* Another recipient, another context, a changed epk, truncation. */
	assert_int_equal(arca_box_open(priv2, pub2, "arca/v1/config", box.p, box.len, &out), ARCA_ECRYPTO);
	assert_int_equal(arca_box_open(priv, pub, "arca/v1/other", box.p, box.len, &out), ARCA_ECRYPTO);
	assert_int_equal(arca_box_open(priv, pub, "", box.p, box.len, &out), ARCA_ECRYPTO);
	box.p[0] ^= 1;
	assert_int_equal(arca_box_open(priv, pub, "arca/v1/config", box.p, box.len, &out), ARCA_ECRYPTO);
	box.p[0] ^= 1;
	box.p[box.len - 1] ^= 1;
	assert_int_equal(arca_box_open(priv, pub, "arca/v1/config", box.p, box.len, &out), ARCA_ECRYPTO);
	box.p[box.len - 1] ^= 1;
	assert_int_equal(arca_box_open(priv, pub, "arca/v1/config", box.p, 32 + ARCA_AEAD_OVERHEAD - 1, &out),
			 ARCA_ECRYPTO);
	/* A public key that is not priv's is a caller bug, refused. */
	assert_int_equal(arca_box_open(priv, pub2, "arca/v1/config", box.p, box.len, &out), ARCA_EINVAL);
	assert_int_equal(out.len, 0);
	assert_int_equal(arca_box_open(priv, pub, "arca/v1/config", box.p, box.len, &out), 0);

	/* Sealing twice gives different boxes (fresh ephemeral key). */
	struct arca_buf box2;
	arca_buf_init(&box2, 0, 0);
	assert_int_equal(arca_box_seal(pub, "arca/v1/config", msg, strlen(msg), &box2), 0);
	assert_memory_not_equal(box.p, box2.p, 32);

	arca_buf_free(&box);
	arca_buf_free(&box2);
	arca_buf_free(&out);
}

static void test_fingerprint(void **state)
{
	uint8_t pub[32];
	char fpr[ARCA_FPR_LEN];
	/* RFC 8032 test 1 key; expected value from
	 * `openssl dgst -sha256 -binary spki.der | base64` over its SPKI. */
	unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub, 32);
	assert_int_equal(arca_fpr_ed25519(pub, fpr), 0);
	assert_string_equal(fpr, "SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L6k");
	assert_int_equal(strlen(fpr), ARCA_FPR_LEN - 1);
	assert_true(arca_fpr_valid(fpr));

	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	assert_non_null(k);
	char fpr2[ARCA_FPR_LEN];
	assert_int_equal(arca_fpr_pkey(k, fpr2), 0);
	assert_string_equal(fpr, fpr2);
	EVP_PKEY_free(k);

	pub[0] ^= 1;
	assert_int_equal(arca_fpr_ed25519(pub, fpr2), 0);
	assert_string_not_equal(fpr, fpr2);

	assert_false(arca_fpr_valid(NULL));
	assert_false(arca_fpr_valid(""));
	assert_false(arca_fpr_valid("SHA256:"));
	assert_false(arca_fpr_valid("SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L6k="));
	assert_false(arca_fpr_valid("SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L6"));
	assert_false(arca_fpr_valid("sha256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L6k"));
	assert_false(arca_fpr_valid("SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L6l")); /* trailing bits */
	assert_false(arca_fpr_valid("SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L-k")); /* url alphabet */
	assert_false(arca_fpr_valid("SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L k"));
	assert_false(arca_fpr_valid(" SHA256:BuP9j9opu2CrWVV95h7bCuzbIxE0vjDnW0Vfjht5L6k"));
}

static void test_ct_eq_random_secret(void **state)
{
	assert_true(arca_ct_eq("abc", "abc", 3));
	assert_false(arca_ct_eq("abc", "abd", 3));
	assert_false(arca_ct_eq("abc", "bbc", 3));
	assert_true(arca_ct_eq("a", "b", 0));

	uint8_t r1[32], r2[32], zero[32] = { 0 };
	assert_int_equal(arca_random(r1, 32), 0);
	assert_int_equal(arca_random(r2, 32), 0);
	assert_memory_not_equal(r1, r2, 32);
	assert_memory_not_equal(r1, zero, 32);

	/* Secret memory: usable to the last byte, wiped and unmapped on free. */
	for (size_t n = 1; n < 10000; n = n * 3 + 1) {
		uint8_t *p = arca_secret_alloc(n);
		assert_non_null(p);
		assert_int_equal(((uintptr_t)p) % 16, 0);
		memset(p, 0x5a, n);
		assert_int_equal(p[n - 1], 0x5a);
		arca_secret_free(p, n);
	}
	assert_null(arca_secret_alloc(0));

	/* Writing one byte past a page-sized secret hits the guard page. */
	uint8_t *g = arca_secret_alloc(4096);
	assert_non_null(g);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handler would catch the fault and carry on testing. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		volatile uint8_t *v = g;
		v[4096] = 1;
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	arca_secret_free(g, 4096);
	arca_secret_free(NULL, 10);

	uint8_t w[8];
	memset(w, 0xff, sizeof w);
	arca_wipe(w, sizeof w);
	uint8_t z8[8] = { 0 };
	assert_memory_equal(w, z8, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha),
		cmocka_unit_test(test_sha256_incremental_and_fd),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_ed25519_rfc8032),
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_aead),
		cmocka_unit_test(test_box),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_ct_eq_random_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
