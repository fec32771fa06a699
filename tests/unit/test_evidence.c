/* test_evidence.c: sim evidence against known answers made with another
 * Ed25519 implementation (Python cryptography), with and without the
 * ptrace-protected flag and with both flags (ptrace-protected and secret
 * memory), a refusal for every field, every flipped bit and every unknown
 * flag bit, and the LAS client against a scripted fake LAS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "arca/evidence.h"
#include "arca/crypto.h"
#include "arca/encode.h"

/* priv = 00 01 .. 1f; timestamp 1700000000, pid 4242, uid 1000,
 * measurement aa.., report data 00 01 .. 3f, flags 0. */
static const char kat_hex[] =
	"4152434145563031010000000000000000f153650000000092100000e8030000"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	"0412e34eac99f4e71b4c3cb97128dfec7c32292f91ad067b7a1b0d0ba13c108b"
	"2b4dfeb35db0b4965df7ae31fee24d57649b23d7f5f10e3fe5eca70a4c6e8503";

/* The same with flags = 1 (ARCA_SIM_FLAG_PTRACE_PROTECTED) at offset 12. */
static const char kat_protected_hex[] =
	"4152434145563031010000000100000000f153650000000092100000e8030000"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	"19523e69125bd96b536b631d394b7a198d4366f32bb9c4e04c6933f5d9f9ad14"
	"5783ddc6960af0841df6d47f5adcaa44fc106dbda41f30a68788adfaac6f3c09";

/* The same with flags = 3 (PTRACE_PROTECTED | SECRET_MEMORY). */
static const char kat_both_hex[] =
	"4152434145563031010000000300000000f153650000000092100000e8030000"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	"4f22f77c09d408156fdcfdcbb53bf68999450f2497263d5164cf1e7045d18c86"
	"8b46ebfb6e334a51505194e680ef1b2d6d77d10b8297bb3746e206a442cbed0b";

static void kat_input(struct arca_sim_evidence *ev, uint8_t priv[32])
{
	memset(ev, 0, sizeof(*ev));
	for (int i = 0; i < 32; i++)
		priv[i] = (uint8_t)i;
	ev->timestamp = 1700000000;
	ev->pid = 4242;
	ev->uid = 1000;
	memset(ev->measurement, 0xaa, 32);
	for (int i = 0; i < 64; i++)
		ev->report_data[i] = (uint8_t)i;
	assert_int_equal(arca_ed25519_public(priv, ev->las_pub), 0);
}

static void hex_bytes(const char *hex, uint8_t out[ARCA_SIM_EVIDENCE_LEN])
{
	size_t n;
	assert_int_equal(arca_hex_decode(hex, strlen(hex), out, ARCA_SIM_EVIDENCE_LEN, &n), 0);
	assert_int_equal(n, ARCA_SIM_EVIDENCE_LEN);
}

static void kat_bytes(uint8_t out[ARCA_SIM_EVIDENCE_LEN])
{
	hex_bytes(kat_hex, out);
}

static void test_sign_kat(void **state)
{
	struct arca_sim_evidence ev, got;
	uint8_t priv[32], out[ARCA_SIM_EVIDENCE_LEN], want[ARCA_SIM_EVIDENCE_LEN];
	struct arca_errbuf e;

	kat_input(&ev, priv);
	kat_bytes(want);
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), 0);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(arca_sim_evidence_verify(want, sizeof(want), &got, &e), 0);
	assert_true(got.timestamp == 1700000000);
	assert_int_equal(got.pid, 4242);
	assert_int_equal(got.uid, 1000);
	assert_memory_equal(got.measurement, ev.measurement, 32);
	assert_memory_equal(got.report_data, ev.report_data, 64);
	assert_memory_equal(got.las_pub, ev.las_pub, 32);
	assert_int_equal(got.flags, 0);

	/* Signing with a key other than the one the evidence names is a bug. */
	priv[0] ^= 1;
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), ARCA_EINVAL);
}

static void test_sign_kat_ptrace_protected(void **state)
{
	struct arca_sim_evidence ev, got;
	uint8_t priv[32], out[ARCA_SIM_EVIDENCE_LEN], want[ARCA_SIM_EVIDENCE_LEN], plain[ARCA_SIM_EVIDENCE_LEN];
	struct arca_errbuf e;

	kat_input(&ev, priv);
	ev.flags = ARCA_SIM_FLAG_PTRACE_PROTECTED;
	hex_bytes(kat_protected_hex, want);
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), 0);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(out[12], 1);
	assert_int_equal(arca_sim_evidence_verify(want, sizeof(want), &got, &e), 0);
	assert_int_equal(got.flags, ARCA_SIM_FLAG_PTRACE_PROTECTED);
	assert_int_equal(got.pid, 4242);

	/* The flag is signed: clearing it in protected evidence (or setting
	 * it in plain evidence) breaks the signature. */
	want[12] = 0;
	struct arca_sim_evidence none;
	memset(&none, 0x77, sizeof(none));
	assert_int_equal(arca_sim_evidence_verify(want, sizeof(want), &none, &e), ARCA_ECRYPTO);
	assert_non_null(strstr(e.msg, "signature"));
	kat_bytes(plain);
	plain[12] = 1;
	assert_int_equal(arca_sim_evidence_verify(plain, sizeof(plain), NULL, &e), ARCA_ECRYPTO);
}

/* Secret memory is bit 1, signed like the other: a LAS that saw none
 * cannot have its evidence upgraded, nor a protected one downgraded. */
static void test_sign_kat_secret_memory(void **state)
{
	struct arca_sim_evidence ev, got;
	uint8_t priv[32], out[ARCA_SIM_EVIDENCE_LEN], want[ARCA_SIM_EVIDENCE_LEN];
	struct arca_errbuf e;

	kat_input(&ev, priv);
	ev.flags = ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY;
	hex_bytes(kat_both_hex, want);
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), 0);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(out[12], 3);
	assert_int_equal(arca_sim_evidence_verify(want, sizeof(want), &got, &e), 0);
	assert_int_equal(got.flags, ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY);

	want[12] = ARCA_SIM_FLAG_PTRACE_PROTECTED;
	assert_int_equal(arca_sim_evidence_verify(want, sizeof(want), NULL, &e), ARCA_ECRYPTO);
	hex_bytes(kat_protected_hex, want);
	want[12] |= ARCA_SIM_FLAG_SECRET_MEMORY;
	assert_int_equal(arca_sim_evidence_verify(want, sizeof(want), NULL, &e), ARCA_ECRYPTO);
	assert_non_null(strstr(e.msg, "signature"));
}

static void expect_refused(const uint8_t *p, size_t n, int rc, const char *needle)
{
	struct arca_sim_evidence got;
	struct arca_errbuf e = {{0}};

	memset(&got, 0x77, sizeof(got));
	int r = arca_sim_evidence_verify(p, n, &got, &e);
	if (r != rc || strstr(e.msg, needle) == NULL)
		fail_msg("rc %d (want %d), \"%s\" (want \"%s\")", r, rc, e.msg, needle);
	/* A refused evidence leaves nothing usable behind. */
	uint8_t zero[sizeof(got)];
	memset(zero, 0, sizeof(zero));
	assert_memory_equal(&got, zero, sizeof(got));
}

static void test_every_bit_counts(void **state)
{
	uint8_t ev[ARCA_SIM_EVIDENCE_LEN];
	struct arca_errbuf e;

	kat_bytes(ev);
	/* Every single flipped bit is refused: by a field check or by the signature. */
	for (size_t i = 0; i < sizeof(ev) * 8; i++) {
		ev[i / 8] ^= (uint8_t)(1u << (i % 8));
		int rc = arca_sim_evidence_verify(ev, sizeof(ev), NULL, &e);
		if (rc >= 0)
			fail_msg("bit %zu flipped and still accepted", i);
		ev[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	assert_int_equal(arca_sim_evidence_verify(ev, sizeof(ev), NULL, &e), 0);
}

static void test_field_refusals(void **state)
{
	uint8_t ev[ARCA_SIM_EVIDENCE_LEN + 1];

	kat_bytes(ev);
	ev[0] = 'X';
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_EPARSE, "bad magic");
	kat_bytes(ev);
	ev[8] = 2;
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_EPARSE, "platform 2");
	/* Flag bits this version does not know are refused before the
	 * signature is even looked at, whichever bit it is. */
	for (int bit = 2; bit < 32; bit++) {
		kat_bytes(ev);
		ev[12 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_EPARSE, "unknown flags");
		hex_bytes(kat_protected_hex, ev);
		ev[12 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_EPARSE, "unknown flags");
	}
	kat_bytes(ev);
	ev[16] ^= 1; /* timestamp */
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_ECRYPTO, "signature");
	kat_bytes(ev);
	ev[100] ^= 0x40; /* report data */
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_ECRYPTO, "signature");
	kat_bytes(ev);
	ev[223] ^= 0x80; /* signature */
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_ECRYPTO, "signature");

	/* Another LAS key embedded: the signature no longer fits it. */
	kat_bytes(ev);
	uint8_t pub[32], priv[32];
	assert_int_equal(arca_ed25519_keygen(pub, priv), 0);
	memcpy(ev + 128, pub, 32);
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN, ARCA_ECRYPTO, "signature");

	/* Truncated, extended, empty. */
	kat_bytes(ev);
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN - 1, ARCA_EPARSE, "223 bytes");
	ev[ARCA_SIM_EVIDENCE_LEN] = 0;
	expect_refused(ev, ARCA_SIM_EVIDENCE_LEN + 1, ARCA_EPARSE, "225 bytes");
	expect_refused(ev, 0, ARCA_EPARSE, "0 bytes");
	expect_refused(NULL, 0, ARCA_EINVAL, "none");
}

static void test_roundtrip_random(void **state)
{
	struct arca_sim_evidence ev, got;
	uint8_t priv[32], out[ARCA_SIM_EVIDENCE_LEN];
	struct arca_errbuf e;

	memset(&ev, 0, sizeof(ev));
	assert_int_equal(arca_ed25519_keygen(ev.las_pub, priv), 0);
	ev.timestamp = UINT64_MAX;
	ev.pid = UINT32_MAX;
	ev.uid = 0;
	assert_int_equal(arca_random(ev.measurement, 32), 0);
	assert_int_equal(arca_random(ev.report_data, 64), 0);
	ev.flags = ARCA_SIM_FLAG_PTRACE_PROTECTED | ARCA_SIM_FLAG_SECRET_MEMORY;
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), 0);
	assert_int_equal(arca_sim_evidence_verify(out, sizeof(out), &got, &e), 0);
	assert_memory_equal(&got, &ev, sizeof(ev));
}

/* The signer refuses to produce evidence no verifier would accept. */
static void test_sign_refuses_unknown_flags(void **state)
{
	struct arca_sim_evidence ev;
	uint8_t priv[32], out[ARCA_SIM_EVIDENCE_LEN];

	kat_input(&ev, priv);
	ev.flags = 0x4;
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), ARCA_EINVAL);
	ev.flags = ARCA_SIM_FLAG_PTRACE_PROTECTED | 0x80000000u;
	assert_int_equal(arca_sim_evidence_sign(&ev, priv, out), ARCA_EINVAL);
}

/* ---- a fake LAS ---- */

enum las_mode {
	LAS_OK,
	LAS_REFUSE,
	LAS_BAD_LENGTH,
	LAS_EMPTY_OK,
	LAS_SHORT,
	LAS_CLOSE,
	LAS_SILENT,
};

struct fake_las {
	char dir[64];
	char path[108];
	int lfd;
	enum las_mode mode;
	uint8_t got[ARCA_LAS_REQ_LEN + 8];
	ssize_t got_len;
	pthread_t thr;
};

static void *las_thread(void *arg)
{
	struct fake_las *f = arg;
	uint8_t resp[ARCA_LAS_MAX_RESP + 16];
	size_t n = 0;
	int c = accept(f->lfd, NULL, NULL);

	if (c < 0)
		return NULL;
	f->got_len = 0;
	while (f->got_len < ARCA_LAS_REQ_LEN) {
		ssize_t r = read(c, f->got + f->got_len, sizeof(f->got) - (size_t)f->got_len);
		if (r <= 0)
			break;
		f->got_len += r;
	}
	switch (f->mode) {
	case LAS_OK:
		resp[0] = 0;
		resp[1] = ARCA_SIM_EVIDENCE_LEN & 0xff;
		resp[2] = ARCA_SIM_EVIDENCE_LEN >> 8;
		memset(resp + 3, 0xee, ARCA_SIM_EVIDENCE_LEN);
		n = 3 + ARCA_SIM_EVIDENCE_LEN;
		break;
	case LAS_REFUSE: {
		const char reason[] = "process 77 cannot be measured:\x1b[2J writable+exec mapping";
		resp[0] = 1;
		resp[1] = sizeof(reason) - 1;
		resp[2] = 0;
		memcpy(resp + 3, reason, sizeof(reason) - 1);
		n = 3 + sizeof(reason) - 1;
		break;
	}
	case LAS_BAD_LENGTH:
		resp[0] = 0;
		resp[1] = 0xff;
		resp[2] = 0xff;
		n = 3;
		break;
	case LAS_EMPTY_OK:
		resp[0] = 0;
		resp[1] = 0;
		resp[2] = 0;
		n = 3;
		break;
	case LAS_SHORT:
		resp[0] = 0;
		resp[1] = ARCA_SIM_EVIDENCE_LEN & 0xff;
		resp[2] = ARCA_SIM_EVIDENCE_LEN >> 8;
		n = 3 + 100;
		memset(resp + 3, 1, 100);
		break;
	case LAS_CLOSE:
		n = 0;
		break;
	case LAS_SILENT: {
		/* Until the client gives up and closes. */
		uint8_t b;
		while (read(c, &b, 1) > 0)
			;
		break;
	}
	}
	if (n > 0 && write(c, resp, n) != (ssize_t)n)
		n = 0;
	close(c);
	return NULL;
}

static void las_start(struct fake_las *f, enum las_mode mode)
{
	struct sockaddr_un sa;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/arca-test-las-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/las.sock", f->dir);
	f->mode = mode;
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->thr, NULL, las_thread, f), 0);
}

static void las_stop(struct fake_las *f)
{
	pthread_join(f->thr, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

static void test_las_ok(void **state)
{
	struct fake_las f;
	uint8_t rd[64], *ev = NULL;
	size_t evlen = 0;
	struct arca_errbuf e = {{0}};

	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)(200 - i);
	las_start(&f, LAS_OK);
	assert_int_equal(arca_las_request(f.path, rd, &ev, &evlen, &e), 0);
	las_stop(&f);
	/* Exactly "ALR1" || report data on the wire. */
	assert_int_equal(f.got_len, ARCA_LAS_REQ_LEN);
	assert_memory_equal(f.got, "ALR1", 4);
	assert_memory_equal(f.got + 4, rd, 64);
	assert_int_equal(evlen, ARCA_SIM_EVIDENCE_LEN);
	assert_non_null(ev);
	assert_int_equal(ev[0], 0xee);
	assert_int_equal(ev[ARCA_SIM_EVIDENCE_LEN - 1], 0xee);
	free(ev);
}

static void expect_las(enum las_mode mode, int want, const char *needle)
{
	struct fake_las f;
	uint8_t rd[64] = {0}, *ev = (uint8_t *)1;
	size_t evlen = 99;
	struct arca_errbuf e = {{0}};

	las_start(&f, mode);
	int rc = arca_las_request(f.path, rd, &ev, &evlen, &e);
	las_stop(&f);
	if (rc != want || strstr(e.msg, needle) == NULL)
		fail_msg("mode %d: rc %d (want %d), \"%s\"", mode, rc, want, e.msg);
	assert_null(ev);
	assert_int_equal(evlen, 0);
}

static void test_las_refusals(void **state)
{
	/* The reason reaches the user, made printable. */
	expect_las(LAS_REFUSE, ARCA_EDENIED, "refused to give evidence: process 77 cannot be measured:?[2J writable");
	expect_las(LAS_BAD_LENGTH, ARCA_ENET, "bad length");
	expect_las(LAS_EMPTY_OK, ARCA_ENET, "bad length");
	expect_las(LAS_SHORT, ARCA_ENET, "closed before a complete answer");
	expect_las(LAS_CLOSE, ARCA_ENET, "closed before a complete answer");
}

static void test_las_timeout(void **state)
{
	time_t t0 = time(NULL);
	expect_las(LAS_SILENT, ARCA_ETIMEOUT, "no answer within 5 seconds");
	assert_true(time(NULL) - t0 >= 4);
}

static void test_las_no_socket(void **state)
{
	uint8_t rd[64] = {0}, *ev;
	size_t evlen;
	struct arca_errbuf e = {{0}};

	assert_int_equal(arca_las_request("/nonexistent/arca/las.sock", rd, &ev, &evlen, &e), ARCA_ENET);
	assert_non_null(strstr(e.msg, "is arca-las running"));
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(arca_las_request(longpath, rd, &ev, &evlen, &e), ARCA_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_kat),
		cmocka_unit_test(test_sign_kat_ptrace_protected),
		cmocka_unit_test(test_sign_kat_secret_memory),
		cmocka_unit_test(test_sign_refuses_unknown_flags),
		cmocka_unit_test(test_every_bit_counts),
		cmocka_unit_test(test_field_refusals),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_las_ok),
		cmocka_unit_test(test_las_refusals),
		cmocka_unit_test(test_las_timeout),
		cmocka_unit_test(test_las_no_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
