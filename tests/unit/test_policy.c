/* test_policy.c: session policies as a user meets them: what parses, every
 * refusal with its exact line, column and advice, the canonical form and
 * hash that updates depend on, redaction, and placeholder rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/policy.h"

#define MEAS "sha256:a172cedcae47474b615c54d510a5d84a8dea3032e958587430b413538be3f333"
#define MEAS_UPPER "sha256:A172CEDCAE47474B615C54D510A5D84A8DEA3032E958587430B413538BE3F333"
#define FPR_A "SHA256:K9gGyX8OAK8aH8Myj6djqSaXI8jbj6xPk69x2xhtbpA"
#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FPR_B "SHA256:gbY32PzSxtpjWeaWMROhFw3nleS3JbhNHgtM/Z7FjOk"

/* 48-, 32-byte values as hex, for hardware constraints. */
#define H48 "7699e6ac12ccdfd1dfac70e649ce1f046cb2afbb003438f4cdddfe2ccbe182fa5ffbe8dcdb930454324e10c52c788980"
#define H48B "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
#define H48C "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
#define H32 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H32B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
/* A service head with its platform left open: append "    platform: ...\n". */
#define SVC_NOPLAT "services:\n  - name: api\n    command: [/bin/true]\n    measurement: " MEAS "\n"

/* A service that is valid on its own, for cases about something else. */
#define SVC_HEAD "services:\n  - name: api\n    command: [/bin/true]\n    measurement: " MEAS "\n    platform: {sim: {}}\n"

static struct arca_policy *parse_ok(const char *yaml)
{
	struct arca_diags ds;
	struct arca_policy *p = NULL;
	arca_diags_init(&ds, "t.yaml");
	int rc = arca_policy_parse(yaml, strlen(yaml), &ds, &p);
	if (rc != 0 || ds.n != 0) {
		struct arca_buf b;
		arca_buf_init(&b, 0, 0);
		if (arca_diags_format(&ds, &b) == 0 && b.p)
			fprintf(stderr, "unexpected diagnostics (rc %d):\n%s", rc, (char *)b.p);
		arca_buf_free(&b);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(ds.n, 0);
	assert_non_null(p);
	return p;
}

static void hash_of(const char *yaml, uint8_t h[32])
{
	struct arca_policy *p = parse_ok(yaml);
	assert_int_equal(arca_policy_hash(p, h), 0);
	arca_policy_free(p);
}

/* ---- the design.md example ---- */

static const char design_example[] =
	"name: payroll                  # [A-Za-z0-9_.~/-]{1,128}\n"
	"access:\n"
	"  owners: [" FPR_A "]\n"
	"services:\n"
	"  - name: api\n"
	"    command: [/usr/bin/python3, /app/server.py]\n"
	"    measurement: " MEAS "\n"
	"    platform:\n"
	"      sim: {}\n"
	"    environment:\n"
	"      DB_PASSWORD: $$arca:db_password$$\n"
	"    files:\n"
	"      /etc/app/app.ini: |\n"
	"        password = $$arca:db_password$$\n"
	"    volumes: [{name: data, path: /var/lib/app}]\n"
	"secrets:\n"
	"  - {name: db_password, kind: ascii, size: 32}        # generated inside CAS, never shown\n"
	"  - {name: api_key, kind: binary, value: \"00ff\"}      # given by the owner\n"
	"  - {name: tls, kind: x509, common_name: api.example, dns: [api.example]}\n"
	"volumes:\n"
	"  - {name: data, mode: encrypted}                      # or: authenticated\n";

static void test_design_example(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok(design_example);
	assert_string_equal(p->name, "payroll");
	assert_false(p->has_predecessor);
	assert_true(p->has_access);
	assert_int_equal(p->nowners, 1);
	assert_string_equal(p->owners[0], FPR_A);

	assert_int_equal(p->nservices, 1);
	const struct arca_service *s = arca_policy_service(p, "api");
	assert_non_null(s);
	assert_null(arca_policy_service(p, "nope"));
	assert_int_equal(s->ncommand, 2);
	assert_string_equal(s->command[0], "/usr/bin/python3");
	assert_string_equal(s->command[1], "/app/server.py");
	assert_true(s->has_measurement);
	uint8_t m[32];
	assert_int_equal(arca_digest_parse(MEAS, m), 0);
	assert_memory_equal(s->measurement, m, 32);
	assert_true(s->platform_sim);
	assert_int_equal(s->nenv, 1);
	assert_string_equal(s->env[0].key, "DB_PASSWORD");
	assert_string_equal(s->env[0].value, "$$arca:db_password$$");
	assert_int_equal(s->env[0].line, 11);
	assert_int_equal(s->env[0].col, 7);
	assert_int_equal(s->nfiles, 1);
	assert_string_equal(s->files[0].key, "/etc/app/app.ini");
	assert_string_equal(s->files[0].value, "password = $$arca:db_password$$\n");
	assert_int_equal(s->nvolumes, 1);
	assert_string_equal(s->volumes[0].name, "data");
	assert_string_equal(s->volumes[0].path, "/var/lib/app");
	assert_int_equal(s->line, 5);
	assert_int_equal(s->col, 5);

	assert_int_equal(p->nsecrets, 3);
	const struct arca_secret_def *d = arca_policy_secret(p, "db_password");
	assert_non_null(d);
	assert_int_equal(d->kind, ARCA_SECRET_ASCII);
	assert_int_equal(d->size, 32);
	assert_null(d->value);
	d = arca_policy_secret(p, "api_key");
	assert_non_null(d);
	assert_int_equal(d->kind, ARCA_SECRET_BINARY);
	assert_int_equal(d->value_len, 2);
	assert_int_equal(d->value[0], 0x00);
	assert_int_equal(d->value[1], 0xff);
	assert_int_equal(d->size, 2);
	d = arca_policy_secret(p, "tls");
	assert_non_null(d);
	assert_int_equal(d->kind, ARCA_SECRET_X509);
	assert_string_equal(d->common_name, "api.example");
	assert_int_equal(d->ndns, 1);
	assert_string_equal(d->dns[0], "api.example");
	assert_int_equal(d->line, 19);
	assert_int_equal(d->col, 5);

	assert_int_equal(p->nvolumes, 1);
	assert_string_equal(p->volumes[0].name, "data");
	assert_false(p->volumes[0].authenticated);
	assert_int_equal(p->ntolerate, 0);
	arca_policy_free(p);
}

static void test_accepts_edge_forms(void **state)
{
	(void)state;
	/* defaults, plain numbers as strings, literal '$', every format that fits */
	static const char y[] =
		"name: a/b.c~d-e_f\n"
		"predecessor: 6F1C2A0E9B8D7C6F5E4D3C2B1A09F8E7D6C5B4A39281706F5E4D3C2B1A09F8E7\n"
		"tolerate: [no-secret-memory]\n"
		"secrets:\n"
		"  - {name: b, kind: binary}\n"
		"  - {name: pk, kind: private-key}\n"
		"  - {name: c, kind: x509}\n"
		"  - {name: a, kind: ascii, value: 'it''s'}\n"
		"volumes: [{name: v}]\n"
		"services:\n"
		"  - name: api\n"
		"    command: [/bin/app, \"\", --hex=$$arca:b:hex$$, $$arca:b:base64$$, 8080]\n"
		"    measurement: " MEAS "\n"
		"    platform: {sim: }\n"
		"    environment: {PORT: 8080, DEBUG: yes, PRICE: \"$$5 $$HOME $\", KEY: $$arca:pk$$, K2: $$arca:c:key$$}\n"
		"    files:\n"
		"      /raw: $$arca:b$$\n"
		"      /c.pem: $$arca:c:chain$$$$arca:c:pem$$\n"
		"      /empty: \"\"\n"
		"      /a: \"$$$arca:a$$\"\n"
		"    volumes: [{name: v, path: /v}]\n";
	struct arca_policy *p = parse_ok(y);
	assert_string_equal(p->name, "a/b.c~d-e_f");
	assert_true(p->has_predecessor);
	assert_int_equal(p->predecessor[0], 0x6f);
	assert_int_equal(p->predecessor[31], 0xe7);
	const struct arca_secret_def *b = arca_policy_secret(p, "b");
	assert_int_equal(b->size, 32);
	assert_int_equal(arca_policy_secret(p, "pk")->size, 0);
	assert_int_equal(arca_policy_secret(p, "a")->value_len, 4);
	assert_memory_equal(arca_policy_secret(p, "a")->value, "it's", 5);
	assert_false(p->volumes[0].authenticated);
	const struct arca_service *s = &p->services[0];
	assert_int_equal(s->ncommand, 5);
	assert_string_equal(s->command[1], "");
	assert_string_equal(s->command[4], "8080");
	assert_true(s->platform_sim);
	assert_string_equal(s->env[0].value, "8080");
	assert_string_equal(s->env[1].value, "yes");
	assert_string_equal(s->env[2].value, "$$5 $$HOME $");
	assert_int_equal(p->ntolerate, 1);
	arca_policy_free(p);
}

static void test_full_example_file(void **state)
{
	(void)state;
	const char *src = getenv("ARCA_SRC");
	if (!src || !*src)
		skip();
	char path[1024];
	snprintf(path, sizeof path, "%s/examples/policies/full.yaml", src);
	struct arca_buf b;
	struct arca_errbuf e;
	arca_buf_init(&b, 0, 0);
	assert_int_equal(arca_read_file(path, ARCA_POLICY_MAX_BYTES, &b, &e), 0);
	struct arca_policy *p = parse_ok((const char *)b.p);
	assert_int_equal(p->nservices, 2);
	assert_int_equal(p->nsecrets, 6);
	assert_int_equal(p->nvolumes, 2);
	assert_int_equal(p->ntolerate, 1);
	assert_true(p->has_predecessor);
	assert_int_equal(p->nowners, 2);
	assert_true(arca_policy_service(p, "worker")->platform_sim);
	const struct arca_service *api = arca_policy_service(p, "api");
	assert_true(api->platform_sim && api->platform_snp && api->platform_tdx && !api->platform_sgx);
	assert_int_equal(api->snp.product, 2);
	assert_int_equal(api->snp.min_tcb[ARCA_SNP_TCB_SNP], 23);
	assert_true(api->tdx.has_rtmr[0] && api->tdx.has_rtmr[1] && !api->tdx.has_rtmr[2]);
	assert_int_equal(api->tdx.min_tcb_status, 0);
	const struct arca_service *worker = arca_policy_service(p, "worker");
	assert_true(worker->platform_tdx && worker->platform_sgx && !worker->platform_snp);
	assert_true(worker->tdx.has_rtmr[2] && !worker->tdx.has_rtmr[0]);
	assert_int_equal(worker->sgx.min_isvsvn, 3);
	arca_policy_free(p);
	arca_buf_free(&b);
}

/* ---- hardware platform constraints ---- */

static const char hw_all[] =
	"name: hw\n"
	"services:\n"
	"  - name: api\n"
	"    command: [/bin/api]\n"
	"    measurement: " MEAS "\n"
	"    platform:\n"
	"      sim: {}\n"
	"      sev-snp:\n"
	"        measurement: " H48 "\n"
	"        host_data: " H32 "\n"
	"        id_key_digest: " H48B "\n"
	"        min_tcb: {bootloader: 3, tee: 0, snp: 8, microcode: 115}\n"
	"        debug: true\n"
	"        product: Genoa\n"
	"      tdx:\n"
	"        mrtd: " H48 "\n"
	"        rtmr0: " H48B "\n"
	"        rtmr3: " H48C "\n"
	"        mrconfigid: " H48C "\n"
	"        debug: false\n"
	"        min_tcb_status: SWHardeningNeeded\n"
	"      sgx:\n"
	"        mrenclave: " H32 "\n"
	"        mrsigner: " H32B "\n"
	"        isvprodid: 65535\n"
	"        min_isvsvn: 0\n"
	"        debug: true\n"
	"        min_tcb_status: OutOfDate\n";

static void unhex(const char *h, uint8_t *out, size_t n)
{
	size_t got = 0;
	assert_int_equal(arca_hex_decode(h, strlen(h), out, n, &got), 0);
	assert_int_equal(got, n);
}

static void test_hw_constraints_parse(void **state)
{
	(void)state;
	uint8_t a48[48], b48[48], c48[48], a32[32], b32[32];
	unhex(H48, a48, 48);
	unhex(H48B, b48, 48);
	unhex(H48C, c48, 48);
	unhex(H32, a32, 32);
	unhex(H32B, b32, 32);
	struct arca_policy *p = parse_ok(hw_all);
	const struct arca_service *s = &p->services[0];
	assert_true(s->platform_sim);
	assert_true(s->platform_snp);
	assert_true(s->platform_tdx);
	assert_true(s->platform_sgx);

	assert_true(s->snp.has_measurement);
	assert_memory_equal(s->snp.measurement, a48, 48);
	assert_true(s->snp.has_host_data);
	assert_memory_equal(s->snp.host_data, a32, 32);
	assert_true(s->snp.has_id_key_digest);
	assert_memory_equal(s->snp.id_key_digest, b48, 48);
	assert_int_equal(s->snp.min_tcb[ARCA_SNP_TCB_BOOTLOADER], 3);
	assert_int_equal(s->snp.min_tcb[ARCA_SNP_TCB_TEE], 0);
	assert_int_equal(s->snp.min_tcb[ARCA_SNP_TCB_SNP], 8);
	assert_int_equal(s->snp.min_tcb[ARCA_SNP_TCB_MICROCODE], 115);
	assert_int_equal(s->snp.debug, 1);
	assert_int_equal(s->snp.product, 2); /* Genoa */

	assert_true(s->tdx.has_mrtd);
	assert_memory_equal(s->tdx.mrtd, a48, 48);
	assert_true(s->tdx.has_rtmr[0]);
	assert_memory_equal(s->tdx.rtmr[0], b48, 48);
	assert_false(s->tdx.has_rtmr[1]);
	assert_false(s->tdx.has_rtmr[2]);
	assert_true(s->tdx.has_rtmr[3]);
	assert_memory_equal(s->tdx.rtmr[3], c48, 48);
	assert_true(s->tdx.has_mrconfigid);
	assert_memory_equal(s->tdx.mrconfigid, c48, 48);
	assert_int_equal(s->tdx.debug, 0);
	assert_int_equal(s->tdx.min_tcb_status, 1); /* SWHardeningNeeded */

	assert_true(s->sgx.has_mrenclave);
	assert_memory_equal(s->sgx.mrenclave, a32, 32);
	assert_true(s->sgx.has_mrsigner);
	assert_memory_equal(s->sgx.mrsigner, b32, 32);
	assert_int_equal(s->sgx.isvprodid, 65535);
	assert_int_equal(s->sgx.min_isvsvn, 0);
	assert_int_equal(s->sgx.debug, 1);
	assert_int_equal(s->sgx.min_tcb_status, 4); /* OutOfDate */
	arca_policy_free(p);
}

static void test_hw_constraint_defaults(void **state)
{
	(void)state;
	/* only what is required: everything else unconstrained, debug refused */
	struct arca_policy *p = parse_ok("name: d\n" SVC_NOPLAT "    platform:\n"
					 "      sev-snp: {measurement: " H48 "}\n"
					 "      tdx: {mrtd: " H48 "}\n"
					 "      sgx: {mrsigner: " H32 ", isvprodid: 0, min_isvsvn: 2}\n");
	const struct arca_service *s = &p->services[0];
	assert_false(s->platform_sim);
	assert_true(s->platform_snp && s->platform_tdx && s->platform_sgx);
	assert_false(s->snp.has_host_data || s->snp.has_id_key_digest);
	for (int i = 0; i < ARCA_SNP_TCB_NPARTS; i++)
		assert_int_equal(s->snp.min_tcb[i], -1);
	assert_int_equal(s->snp.debug, 0);
	assert_int_equal(s->snp.product, 0);
	for (int i = 0; i < 4; i++)
		assert_false(s->tdx.has_rtmr[i]);
	assert_false(s->tdx.has_mrconfigid);
	assert_int_equal(s->tdx.debug, 0);
	assert_int_equal(s->tdx.min_tcb_status, -1);
	assert_false(s->sgx.has_mrenclave);
	assert_int_equal(s->sgx.isvprodid, 0);
	assert_int_equal(s->sgx.min_isvsvn, 2);
	assert_int_equal(s->sgx.debug, 0);
	assert_int_equal(s->sgx.min_tcb_status, -1);
	arca_policy_free(p);

	/* min_tcb with a subset, upper-case hex */
	p = parse_ok("name: d\n" SVC_NOPLAT "    platform: {sev-snp: {measurement: \"7699E6AC12CCDFD1DFAC70E649CE1F046CB2AFBB003438F4CDDDFE2CCBE182FA5FFBE8DCDB930454324E10C52C788980\", min_tcb: {snp: 22}}}\n");
	uint8_t a48[48];
	unhex(H48, a48, 48);
	assert_memory_equal(p->services[0].snp.measurement, a48, 48);
	assert_int_equal(p->services[0].snp.min_tcb[ARCA_SNP_TCB_SNP], 22);
	assert_int_equal(p->services[0].snp.min_tcb[ARCA_SNP_TCB_BOOTLOADER], -1);
	arca_policy_free(p);
}

/* design.md's own example, with real values where it shows "…". */
static const char design_hw[] = "name: payroll\n"
				"services:\n"
				"  - name: api\n"
				"    command: [/usr/bin/python3, /app/server.py]\n"
				"    measurement: " MEAS "\n"
				"    platform:                  # evidence this service may present; any one listed\n"
				"      sim: {}\n"
				"      sev-snp: {measurement: \"" H48 "\", min_tcb: {bootloader: 3, tee: 0, snp: 8, microcode: 115}, debug: false}\n"
				"      tdx: {mrtd: \"" H48B "\", rtmr: [\"" H48C "\", \"" H48 "\"]}\n";

static const char design_hw_keys[] = "name: payroll\n"
				     "services:\n"
				     "  - name: api\n"
				     "    command: [/usr/bin/python3, /app/server.py]\n"
				     "    measurement: " MEAS "\n"
				     "    platform:\n"
				     "      tdx:\n"
				     "        rtmr1: " H48 "\n"
				     "        rtmr0: " H48C "\n"
				     "        mrtd: " H48B "\n"
				     "        debug: false\n"
				     "      sev-snp:\n"
				     "        min_tcb: {microcode: 115, snp: 8, tee: 0, bootloader: 3}\n"
				     "        measurement: " H48 "\n"
				     "      sim:\n";

static void test_hw_design_example_spellings(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok(design_hw);
	const struct arca_service *s = &p->services[0];
	uint8_t a48[48], c48[48];
	unhex(H48, a48, 48);
	unhex(H48C, c48, 48);
	assert_true(s->platform_sim && s->platform_snp && s->platform_tdx);
	assert_true(s->tdx.has_rtmr[0] && s->tdx.has_rtmr[1]);
	assert_false(s->tdx.has_rtmr[2] || s->tdx.has_rtmr[3]);
	assert_memory_equal(s->tdx.rtmr[0], c48, 48);
	assert_memory_equal(s->tdx.rtmr[1], a48, 48);
	arca_policy_free(p);

	/* the list and the keys mean the same, and hash alike */
	uint8_t h1[32], h2[32];
	hash_of(design_hw, h1);
	hash_of(design_hw_keys, h2);
	assert_memory_equal(h1, h2, 32);
}

/* The canonical form of a policy with every hardware field; the hash was
 * computed independently (Python hashlib over this string). */
static const char hw_kat_canonical[] =
	"{\"access\":null,\"name\":\"hw\",\"predecessor\":null,\"secrets\":[],\"services\":[{\"command\":[\"/bin/api\"],"
	"\"environment\":{},\"files\":{},\"measurement\":\"" MEAS "\",\"name\":\"api\",\"platform\":{"
	"\"sev-snp\":{\"debug\":true,\"host_data\":\"" H32 "\",\"id_key_digest\":\"" H48B "\",\"measurement\":\"" H48 "\","
	"\"min_tcb\":{\"bootloader\":3,\"microcode\":115,\"snp\":8,\"tee\":0},\"product\":\"Genoa\"},"
	"\"sgx\":{\"debug\":true,\"isvprodid\":65535,\"min_isvsvn\":0,\"min_tcb_status\":\"OutOfDate\",\"mrenclave\":\"" H32 "\","
	"\"mrsigner\":\"" H32B "\"},"
	"\"sim\":{},"
	"\"tdx\":{\"debug\":false,\"min_tcb_status\":\"SWHardeningNeeded\",\"mrconfigid\":\"" H48C "\",\"mrtd\":\"" H48 "\","
	"\"rtmr0\":\"" H48B "\",\"rtmr1\":null,\"rtmr2\":null,\"rtmr3\":\"" H48C "\"}},"
	"\"volumes\":[]}],\"tolerate\":[],\"version\":1,\"volumes\":[]}";
static const char hw_kat_hash[] = "0f142bb8c6d4aad7c7d34c6f015054aefcfb850e0dbc18ff9f3a0a11d3940682";

static void test_hw_canonical_known_answer(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok(hw_all);
	struct arca_buf b;
	arca_buf_init(&b, 0, 1);
	assert_int_equal(arca_policy_canonical(p, &b), 0);
	assert_string_equal((char *)b.p, hw_kat_canonical);
	uint8_t h[32];
	char hex[65];
	assert_int_equal(arca_policy_hash(p, h), 0);
	arca_hex_encode(h, 32, hex);
	assert_string_equal(hex, hw_kat_hash);
	arca_buf_free(&b);
	arca_policy_free(p);
}

/* Every hardware field changes the hash, and no two changes hash alike. */
static void test_hw_hash_changes_with_every_field(void **state)
{
	(void)state;
	static const struct {
		const char *from, *to;
	} edits[] = {
		{"      sim: {}\n", ""},
		{"        measurement: " H48 "\n        host", "        measurement: " H48C "\n        host"},
		{"host_data: " H32, "host_data: " H32B},
		{"id_key_digest: " H48B, "id_key_digest: " H48C},
		{"bootloader: 3", "bootloader: 4"},
		{"tee: 0", "tee: 1"},
		{"snp: 8", "snp: 9"},
		{"microcode: 115", "microcode: 116"},
		{"min_tcb: {bootloader: 3, tee: 0, snp: 8, microcode: 115}", "min_tcb: {bootloader: 3, tee: 0, snp: 8}"},
		{"        debug: true\n        product", "        debug: false\n        product"},
		{"product: Genoa", "product: Milan"},
		{"        product: Genoa\n", ""},
		{"        mrtd: " H48, "        mrtd: " H48B},
		{"rtmr0: " H48B, "rtmr1: " H48B},
		{"rtmr3: " H48C, "rtmr3: " H48},
		{"mrconfigid: " H48C, "mrconfigid: " H48B},
		{"        debug: false\n", "        debug: true\n"},
		{"min_tcb_status: SWHardeningNeeded", "min_tcb_status: UpToDate"},
		{"        mrenclave: " H32 "\n", ""},
		{"mrsigner: " H32B, "mrsigner: " H32},
		{"isvprodid: 65535", "isvprodid: 65534"},
		{"min_isvsvn: 0", "min_isvsvn: 1"},
		{"        debug: true\n        min_tcb_status: OutOfDate", "        min_tcb_status: OutOfDate"},
		{"min_tcb_status: OutOfDate", "min_tcb_status: ConfigurationNeeded"},
	};
	enum { NE = sizeof edits / sizeof edits[0] };
	uint8_t base[32], h[NE][32];
	hash_of(hw_all, base);
	for (size_t i = 0; i < NE; i++) {
		const char *at = strstr(hw_all, edits[i].from);
		if (!at)
			fail_msg("edit %zu: '%s' not found", i, edits[i].from);
		char y[4096];
		size_t pre = (size_t)(at - hw_all);
		snprintf(y, sizeof y, "%.*s%s%s", (int)pre, hw_all, edits[i].to, at + strlen(edits[i].from));
		hash_of(y, h[i]);
		if (memcmp(h[i], base, 32) == 0)
			fail_msg("edit '%s' -> '%s' did not change the hash", edits[i].from, edits[i].to);
		for (size_t j = 0; j < i; j++)
			if (memcmp(h[i], h[j], 32) == 0)
				fail_msg("edits %zu and %zu hash alike", i, j);
	}
}

/* ---- refusals ---- */

struct bad {
	const char *what;
	const char *yaml;
	int line, col;
	const char *msg;
};

static const struct bad bads[] = {
	{"unknown top-level key", "name: s\ncolour: blue\n", 2, 1, "unknown key 'colour' in the policy"},
	{"unknown service key", "name: s\n" SVC_HEAD "    cmd: x\n", 7, 5, "unknown key 'cmd' in a service"},
	{"unknown secret key", "name: s\nsecrets: [{name: k, kind: ascii, lenght: 3}]\n", 2, 34,
	 "unknown key 'lenght' in a secret"},
	{"bad name chars", "name: \"pay roll\"\n", 1, 7, "session name contains a character other than"},
	{"name too long", "name: " A64 A64 "a\n",
	 1, 7, "longer than 128 characters"},
	{"name with .. segment", "name: a/../b\n", 1, 7, "'.' or '..' segment"},
	{"service name with slash", "name: s\nservices:\n  - name: a/b\n", 3, 11, "contains '/', which only a session name"},
	{"no name", "predecessor: 6f1c2a0e9b8d7c6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7\n", 1, 1,
	 "the policy has no name"},
	{"null name", "name:\n", 1, 6, "the session name is empty"},
	{"NUL escape in name", "name: \"a\\0b\"\n", 1, 7, "NUL character"},
	{"bad measurement",
	 "name: s\nservices:\n  - name: api\n    command: [/bin/true]\n    measurement: sha256:xyz\n    platform: {sim: {}}\n", 5,
	 18, "must be sha256: followed by 64 hex digits"},
	{"missing measurement", "name: s\nservices:\n  - name: api\n    command: [/bin/true]\n    platform: {sim: {}}\n", 3, 5,
	 "service 'api' has no measurement"},
	{"duplicate key", "name: a\nname: b\n", 2, 1, "duplicate key 'name' in the policy (first at line 1, column 1)"},
	{"duplicate key quoted", "name: s\nsecrets:\n  - {name: k, kind: ascii, \"kind\": binary}\n", 3, 28,
	 "duplicate key 'kind' in a secret (first at line 3, column 15)"},
	{"duplicate secret name", "name: s\nsecrets:\n  - {name: k, kind: ascii}\n  - {name: k, kind: binary}\n", 4, 5,
	 "secret 'k' is declared twice (first at line 3, column 5)"},
	{"duplicate service name", "name: s\n" SVC_HEAD "  - {name: api, command: [/x], measurement: " MEAS ", platform: {sim: {}}}\n", 7, 5,
	 "service 'api' is declared twice (first at line 3, column 5)"},
	{"duplicate volume name", "name: s\nvolumes: [{name: v}, {name: v, mode: authenticated}]\n", 2, 22,
	 "volume 'v' is declared twice"},
	{"duplicate env var", "name: s\n" SVC_HEAD "    environment:\n      A: x\n      A: y\n", 9, 7,
	 "environment variable 'A' is declared twice (first at line 8, column 7)"},
	{"alias", "name: s\nsecrets:\n  - &x {name: k, kind: ascii}\n  - *x\n", 4, 5, "aliases (*name) are not allowed"},
	{"anchor", "name: &n s\n", 1, 7, "anchors (&name) are not allowed"},
	{"tag", "name: !!str s\n", 1, 7, "YAML tags (!...) are not allowed"},
	{"wrong type: mapping for list", "name: s\nservices: {name: api}\n", 2, 11, "services must be a list"},
	{"wrong type: string for list", "name: s\nservices:\n  - name: api\n    command: /bin/true\n", 4, 14,
	 "command must be a list, e.g. command: [/usr/bin/app, --flag], not a single value"},
	{"wrong type: mapping for string", "name: {first: a}\n", 1, 7, "the session name must be a string, not a mapping"},
	{"wrong type: number for list", "name: s\ntolerate: 3\n", 2, 11, "tolerate must be a list"},
	{"wrong type: list item", "name: s\n" SVC_HEAD "    environment: [A, B]\n", 7, 18,
	 "environment of service 'api' must be a mapping"},
	{"unknown secret in placeholder", "name: s\n" SVC_HEAD "    environment:\n      PW: $$arca:nope$$\n", 8, 11,
	 "placeholder names secret 'nope', which is not declared"},
	{"bad format for kind",
	 "name: s\nsecrets: [{name: k, kind: ascii}]\nservices:\n  - name: api\n    command: [/bin/app, \"--pw=$$arca:k:pem$$\"]\n", 5,
	 31, "format ':pem' does not fit ascii secret 'k'"},
	{"unknown format", "name: s\nsecrets: [{name: k, kind: ascii}]\n" SVC_HEAD "    environment: {A: $$arca:k:rot13$$}\n", 8,
	 22, "unknown format"},
	{"unterminated placeholder", "name: s\nsecrets: [{name: k, kind: ascii}]\n" SVC_HEAD "    environment: {PW: \"x $$arca:k\"}\n",
	 8, 26, "is not closed; end it with $$"},
	{"empty placeholder", "name: s\n" SVC_HEAD "    files: {/f: \"a $$arca:$$ b\"}\n", 7, 20,
	 "placeholder '$$arca:$$' names no secret"},
	{"placeholder with space", "name: s\n" SVC_HEAD "    files: {/f: \"$$arca:a b$$\"}\n", 7, 18,
	 "' ' stands where $$ should"},
	{"placeholder in block scalar",
	 "name: s\nsecrets: [{name: k, kind: ascii}]\n" SVC_HEAD "    files:\n      /etc/x: |\n        a = $$arca:k$$\n        b = "
	 "$$arca:q:hex$$\n",
	 11, 13, "placeholder names secret 'q'"},
	{"raw binary in environment", "name: s\nsecrets: [{name: b, kind: binary}]\n" SVC_HEAD "    environment:\n      B: $$arca:b$$\n", 9,
	 10, "binary secret 'b' cannot be used raw in environment or command"},
	{"raw binary in command", "name: s\nsecrets: [{name: b, kind: binary}]\nservices:\n  - name: api\n    command: [/x, $$arca:b$$]\n",
	 5, 19, "write $$arca:b:hex$$ or $$arca:b:base64$$"},
	{"relative file path", "name: s\n" SVC_HEAD "    files:\n      etc/app.ini: hi\n", 8, 7,
	 "file path 'etc/app.ini' of service 'api' is not absolute"},
	{"file path with ..", "name: s\n" SVC_HEAD "    files: {/etc/../x: hi}\n", 7, 13, "'.' or '..' segment"},
	{"unknown volume", "name: s\n" SVC_HEAD "    volumes: [{name: nope, path: /data}]\n", 7, 22,
	 "mounts volume 'nope', which is not declared"},
	{"relative volume path", "name: s\nvolumes: [{name: v}]\n" SVC_HEAD "    volumes: [{name: v, path: data}]\n", 8, 31,
	 "is not absolute"},
	{"bad volume mode", "name: s\nvolumes: [{name: v, mode: plain}]\n", 2, 27, "unknown mode 'plain'"},
	{"volume key without tag", "name: s\nsecrets: [{name: k, kind: binary, size: 32}]\nvolumes: [{name: v, key: k}]\n", 3,
	 21, "volume 'v' has a key but no tag; a volume with a key is a code volume sealed with arca fs seal: add tag:"},
	{"volume tag without key", "name: s\nvolumes: [{name: v, tag: \"" H32 "\"}]\n", 2, 21,
	 "volume 'v' has a tag but no key; a code volume needs both: add key:"},
	{"volume tag bad hex", "name: s\nsecrets: [{name: k, kind: binary, size: 32}]\nvolumes: [{name: v, key: k, tag: \"xyz\"}]\n",
	 3, 34, "tag of volume 'v' must be the 64 lower-case hex digits arca fs seal printed"},
	{"volume tag upper case",
	 "name: s\nsecrets: [{name: k, kind: binary, size: 32}]\nvolumes: [{name: v, key: k, tag: \"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"}]\n",
	 3, 34, "tag of volume 'v' must be the 64 lower-case hex digits"},
	{"volume tag too short", "name: s\nsecrets: [{name: k, kind: binary, size: 32}]\nvolumes: [{name: v, key: k, tag: \"0123\"}]\n",
	 3, 34, "tag of volume 'v' must be the 64 lower-case hex digits"},
	{"volume key not binary", "name: s\nsecrets: [{name: k, kind: ascii}]\nvolumes: [{name: v, key: k, tag: " H32 "}]\n", 3,
	 26, "key of volume 'v' names secret 'k' of kind ascii; a volume key must be a secret of kind binary with 32 bytes"},
	{"volume key x509", "name: s\nsecrets: [{name: k, kind: x509}]\nvolumes: [{name: v, key: k, tag: " H32 "}]\n", 3, 26,
	 "names secret 'k' of kind x509"},
	{"volume key wrong size", "name: s\nsecrets: [{name: k, kind: binary, size: 16}]\nvolumes: [{name: v, key: k, tag: " H32 "}]\n",
	 3, 26, "key of volume 'v' names secret 'k' of 16 bytes; a volume key is exactly 32 bytes"},
	{"volume key given value of wrong size",
	 "name: s\nsecrets: [{name: k, kind: binary, value: \"00ff\"}]\nvolumes: [{name: v, key: k, tag: " H32 "}]\n", 3, 26,
	 "names secret 'k' of 2 bytes; a volume key is exactly 32 bytes"},
	{"volume key unknown secret", "name: s\nvolumes: [{name: v, key: nope, tag: " H32 "}]\n", 2, 26,
	 "key of volume 'v' names secret 'nope', which is not declared; add it under secrets:"},
	{"volume key bad name", "name: s\nvolumes: [{name: v, key: a/b, tag: " H32 "}]\n", 2, 26,
	 "key of volume 'v' must name a secret; 'a/b' contains '/'"},
	{"volume unknown field", "name: s\nvolumes: [{name: v, owner: me}]\n", 2, 21,
	 "unknown key 'owner' in a volume; the keys of a volume are name, mode, key, tag"},
	{"sev-snp measurement too short", "name: s\nservices:\n  - name: api\n    platform:\n      sev-snp: {measurement: \"00\"}\n", 5,
	 30, "measurement of the sev-snp constraint of service 'api' must be 96 hex digits (48 bytes)"},
	{"tdx without mrtd", "name: s\nservices:\n  - name: api\n    platform: {sim: {}, tdx: {}}\n", 4, 30,
	 "the tdx constraint of service 'api' has no mrtd"},
	{"sgx names no enclave", "name: s\nservices:\n  - name: api\n    platform: {sgx: {}}\n", 4, 21,
	 "the sgx constraint of service 'api' names no enclave"},
	{"unknown platform", "name: s\nservices:\n  - name: api\n    platform: {azure: {}}\n", 4, 16, "unknown platform 'azure'"},
	/* hardware constraints: every field and every error */
	{"sev-snp unknown field", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        vmpl: 0\n",
	 9, 9, "unknown key 'vmpl' in the sev-snp constraint; the keys of the sev-snp constraint are measurement, host_data"},
	{"sev-snp unknown field (flow)", "name: s\n" SVC_NOPLAT "    platform: {sev-snp: {measurement: " H48 ", policy: 0}}\n", 6,
	 137, "unknown key 'policy' in the sev-snp constraint"},
	{"sev-snp missing measurement", "name: s\n" SVC_NOPLAT "    platform: {sev-snp: {debug: false}}\n", 6, 25,
	 "the sev-snp constraint of service 'api' has no measurement"},
	{"sev-snp empty value", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n", 7, 7,
	 "the sev-snp constraint of service 'api' has no measurement"},
	{"sev-snp not a mapping", "name: s\n" SVC_NOPLAT "    platform: {sev-snp: [" H48 "]}\n", 6, 25,
	 "the sev-snp constraint must be a mapping with the keys measurement"},
	{"sev-snp measurement not hex", "name: s\n" SVC_NOPLAT "    platform: {sev-snp: {measurement: " H32 H32 "zz" "}}\n", 6, 39,
	 "must be 96 hex digits (48 bytes)"},
	{"sev-snp measurement 97 digits", "name: s\n" SVC_NOPLAT "    platform: {sev-snp: {measurement: " H48 "0}}\n", 6, 39,
	 "must be 96 hex digits"},
	{"sev-snp host_data wrong length", "name: s\n" SVC_NOPLAT "    platform: {sev-snp: {measurement: " H48 ", host_data: " H48 "}}\n", 6,
	 148, "host_data of the sev-snp constraint of service 'api' must be 64 hex digits (32 bytes)"},
	{"sev-snp id_key_digest wrong length", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        id_key_digest: " H32 "\n",
	 9, 24, "id_key_digest of the sev-snp constraint of service 'api' must be 96 hex digits"},
	{"sev-snp min_tcb unknown part", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        min_tcb: {bootloader: 3, fmc: 1}\n",
	 9, 34, "unknown key 'fmc' in min_tcb of the sev-snp constraint; the keys of min_tcb of the sev-snp constraint are bootloader, tee, snp, microcode"},
	{"sev-snp min_tcb too big", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        min_tcb: {microcode: 256}\n",
	 9, 30, "microcode of the sev-snp min_tcb constraint of service 'api' must be a whole number from 0 to 255"},
	{"sev-snp min_tcb negative", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        min_tcb: {snp: -1}\n",
	 9, 24, "snp of the sev-snp min_tcb constraint of service 'api' must be a whole number from 0 to 255"},
	{"sev-snp min_tcb leading zero", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        min_tcb: {tee: 08}\n",
	 9, 24, "must be a whole number from 0 to 255"},
	{"sev-snp min_tcb quoted", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        min_tcb: {tee: \"8\"}\n",
	 9, 24, "tee of the sev-snp min_tcb constraint of service 'api' is a quoted string"},
	{"sev-snp min_tcb not a mapping", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        min_tcb: 3\n",
	 9, 18, "min_tcb of the sev-snp constraint must be a mapping with the keys bootloader, tee, snp, microcode"},
	{"sev-snp debug yes", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        debug: yes\n",
	 9, 16, "debug of the sev-snp constraint of service 'api' must be true or false"},
	{"sev-snp debug quoted", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        debug: \"false\"\n",
	 9, 16, "must be true or false (unquoted)"},
	{"sev-snp unknown product", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        product: Rome\n",
	 9, 18, "product 'Rome' of the sev-snp constraint of service 'api' is unknown; use Milan, Genoa or Turin"},
	{"sev-snp product wrong case", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        product: genoa\n",
	 9, 18, "product 'genoa'"},
	{"duplicate sev-snp", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp: {measurement: " H48 "}\n      sev-snp: {measurement: " H48 "}\n",
	 8, 7, "duplicate key 'sev-snp' in platform (first at line 7, column 7)"},
	{"sev-snp duplicate field", "name: s\n" SVC_NOPLAT "    platform:\n      sev-snp:\n        measurement: " H48 "\n        measurement: " H48B "\n",
	 9, 9, "duplicate key 'measurement' in the sev-snp constraint (first at line 8, column 9)"},
	{"tdx unknown field", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        mrseam: " H48 "\n",
	 9, 9, "unknown key 'mrseam' in the tdx constraint; the keys of the tdx constraint are mrtd, rtmr (a list of up to 4)"},
	{"tdx rtmr9", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr4: " H48 "\n",
	 9, 9, "unknown key 'rtmr4' in the tdx constraint"},
	{"tdx mrtd short", "name: s\n" SVC_NOPLAT "    platform:\n      tdx: {mrtd: " H32 "}\n", 7, 19,
	 "mrtd of the tdx constraint of service 'api' must be 96 hex digits (48 bytes)"},
	{"tdx rtmr2 short", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr2: abc\n",
	 9, 16, "rtmr2 of the tdx constraint of service 'api' must be 96 hex digits"},
	{"tdx rtmr list item short", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr:\n          - " H48 "\n          - " H32 "\n",
	 11, 13, "rtmr1 of the tdx constraint of service 'api' must be 96 hex digits"},
	{"tdx rtmr list too long", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr: [" H48 ", " H48 ", " H48 ", " H48 ", " H48 "]\n",
	 9, 15, "rtmr of the tdx constraint of service 'api' lists 5 values; give 1 to 4"},
	{"tdx rtmr list empty", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr: []\n",
	 9, 15, "lists 0 values"},
	{"tdx rtmr not a list", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr: " H48 "\n",
	 9, 15, "rtmr of the tdx constraint of service 'api' must be a list of up to 4 values (rtmr0 first), not a single value"},
	{"tdx rtmr and rtmr1", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        rtmr: [" H48 "]\n        rtmr1: " H48 "\n",
	 10, 9, "has both rtmr and rtmr1; use the list rtmr: [...] or the keys rtmr0 to rtmr3, not both"},
	{"tdx mrconfigid short", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        mrconfigid: 00\n",
	 9, 21, "mrconfigid of the tdx constraint of service 'api' must be 96 hex digits"},
	{"tdx debug 1", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        debug: 1\n",
	 9, 16, "debug of the tdx constraint of service 'api' must be true or false"},
	{"tdx unknown status", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        min_tcb_status: Fine\n",
	 9, 25, "min_tcb_status 'Fine' of the tdx constraint of service 'api' is not a status to accept"},
	{"tdx status Revoked", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        min_tcb_status: Revoked\n",
	 9, 25, "min_tcb_status 'Revoked'"},
	{"tdx status wrong case", "name: s\n" SVC_NOPLAT "    platform:\n      tdx:\n        mrtd: " H48 "\n        min_tcb_status: uptodate\n",
	 9, 25, "min_tcb_status 'uptodate'"},
	{"sgx unknown field", "name: s\n" SVC_NOPLAT "    platform:\n      sgx:\n        mrenclave: " H32 "\n        isvsvn: 3\n",
	 9, 9, "unknown key 'isvsvn' in the sgx constraint; the keys of the sgx constraint are mrenclave, mrsigner, isvprodid, min_isvsvn, debug, min_tcb_status"},
	{"sgx mrenclave long", "name: s\n" SVC_NOPLAT "    platform:\n      sgx: {mrenclave: " H48 "}\n", 7, 24,
	 "mrenclave of the sgx constraint of service 'api' must be 64 hex digits (32 bytes)"},
	{"sgx mrsigner alone", "name: s\n" SVC_NOPLAT "    platform:\n      sgx:\n        mrsigner: " H32 "\n        isvprodid: 1\n",
	 8, 9, "mrsigner of the sgx constraint of service 'api' needs isvprodid: and min_isvsvn: too"},
	{"sgx isvprodid without mrsigner", "name: s\n" SVC_NOPLAT "    platform:\n      sgx:\n        mrenclave: " H32 "\n        isvprodid: 1\n",
	 9, 9, "isvprodid of the sgx constraint of service 'api' means something only with mrsigner"},
	{"sgx min_isvsvn without mrsigner", "name: s\n" SVC_NOPLAT "    platform:\n      sgx:\n        mrenclave: " H32 "\n        min_isvsvn: 1\n",
	 9, 9, "min_isvsvn of the sgx constraint of service 'api' means something only with mrsigner"},
	{"sgx isvprodid too big", "name: s\n" SVC_NOPLAT "    platform:\n      sgx:\n        mrsigner: " H32 "\n        isvprodid: 65536\n        min_isvsvn: 0\n",
	 9, 20, "isvprodid of the sgx constraint of service 'api' must be a whole number from 0 to 65535"},
	{"sgx min_isvsvn text", "name: s\n" SVC_NOPLAT "    platform:\n      sgx:\n        mrsigner: " H32 "\n        isvprodid: 1\n        min_isvsvn: two\n",
	 10, 21, "min_isvsvn of the sgx constraint of service 'api' must be a whole number from 0 to 65535"},
	{"sgx debug on", "name: s\n" SVC_NOPLAT "    platform:\n      sgx: {mrenclave: " H32 ", debug: on}\n", 7, 97,
	 "debug of the sgx constraint of service 'api' must be true or false"},
	{"sgx status", "name: s\n" SVC_NOPLAT "    platform:\n      sgx: {mrenclave: " H32 ", min_tcb_status: Good}\n", 7, 106,
	 "min_tcb_status 'Good' of the sgx constraint"},
	{"empty platform", "name: s\nservices:\n  - name: api\n    platform: {}\n", 4, 15, "lists no platform"},
	{"sim with options", "name: s\nservices:\n  - name: api\n    platform: {sim: {debug: true}}\n", 4, 21, "sim takes no options"},
	{"bad kind", "name: s\nsecrets:\n  - {name: k, kind: password}\n", 3, 21, "unknown kind 'password'"},
	{"missing kind", "name: s\nsecrets:\n  - {name: k}\n", 3, 5, "secret 'k' has no kind"},
	{"size on x509", "name: s\nsecrets:\n  - name: t\n    kind: x509\n    size: 32\n", 5, 5,
	 "size applies only to ascii and binary secrets"},
	{"value on private-key", "name: s\nsecrets:\n  - {name: t, kind: private-key, value: abc}\n", 3, 34,
	 "always generated by CAS"},
	{"dns on ascii", "name: s\nsecrets:\n  - {name: t, kind: ascii, dns: [a.example]}\n", 3, 28,
	 "dns applies only to x509 secrets"},
	{"bad dns name", "name: s\nsecrets:\n  - {name: t, kind: x509, dns: [ok.example, -bad.example]}\n", 3, 45,
	 "'-bad.example' in dns of secret 't' is not a host name"},
	{"size quoted", "name: s\nsecrets:\n  - {name: k, kind: ascii, size: \"32\"}\n", 3, 34, "is a quoted string"},
	{"size zero", "name: s\nsecrets:\n  - {name: k, kind: ascii, size: 0}\n", 3, 34, "whole number from 1 to 4096"},
	{"size too big", "name: s\nsecrets:\n  - {name: k, kind: binary, size: 4097}\n", 3, 35, "whole number from 1 to 4096 (bytes)"},
	{"size and value", "name: s\nsecrets:\n  - {name: k, kind: ascii, size: 10, value: abc}\n", 3, 28, "has both size and value"},
	{"binary value not hex", "name: s\nsecrets:\n  - {name: b, kind: binary, value: \"zz\"}\n", 3, 36,
	 "must be hex digits (two per byte"},
	{"binary value odd length", "name: s\nsecrets:\n  - {name: b, kind: binary, value: abc}\n", 3, 36, "must be hex digits"},
	{"ascii value not ascii", "name: s\nsecrets:\n  - {name: k, kind: ascii, value: \"caf\xc3\xa9\"}\n", 3, 35,
	 "1 to 4096 printable ASCII characters"},
	{"bad owner fingerprint", "name: s\naccess:\n  owners: [SHA256:abc]\n", 3, 12, "owner 'SHA256:abc' is not a fingerprint"},
	{"duplicate owner", "name: s\naccess:\n  owners: [" FPR_A ", " FPR_A "]\n", 3, 64,
	 "owner '" FPR_A "' is declared twice (first at line 3, column 12)"},
	{"empty owners", "name: s\naccess: {owners: []}\n", 2, 18, "owners is empty"},
	{"bad predecessor", "name: s\npredecessor: 1234\n", 2, 14, "predecessor must be the 64 hex digits"},
	{"unknown tolerate word", "name: s\ntolerate: [no-secret-memory, no-encryption]\n", 2, 30,
	 "'no-encryption', which arca does not know; the words known are no-secret-memory and no-ptrace-protection"},
	{"misspelt tolerate word", "name: s\ntolerate: [no-ptrace-protections]\n", 2, 12,
	 "'no-ptrace-protections', which arca does not know"},
	{"duplicate tolerate word", "name: s\ntolerate: [no-ptrace-protection, no-secret-memory, no-ptrace-protection]\n", 2,
	 52, "tolerated word 'no-ptrace-protection' is declared twice (first at line 2, column 12)"},
	{"bad env name", "name: s\n" SVC_HEAD "    environment: {1BAD: x}\n", 7, 19, "'1BAD' is not a valid environment variable name"},
	{"null env value", "name: s\n" SVC_HEAD "    environment: {A: ~}\n", 7, 22, "environment variable 'A' is empty"},
	{"empty command", "name: s\nservices:\n  - name: api\n    command: []\n", 4, 14, "command of service 'api' is empty"},
	{"YAML syntax error", "name: s\nservices: [\n", 3, 1, "YAML syntax error: did not find expected node content"},
	{"YAML syntax error: tab", "name: s\n\t bad: tab\n", 2, 1, "YAML syntax error: found a tab character"},
	{"YAML syntax error: bad indentation", "name: s\nsecrets:\n  - name: k\n   kind: ascii\n", 4, 4,
	 "YAML syntax error: did not find expected '-' indicator"},
	{"empty document", "", 1, 1, "the policy is empty"},
	{"comment only", "# nothing here\n", 1, 1, "the policy is empty"},
	{"bare document marker", "---\n", 1, 1, "the policy is empty"},
	{"top level is a list", "- name: s\n", 1, 1, "the policy must be a mapping"},
	{"two documents", "name: a\n---\nname: b\n", 2, 1, "a second YAML document starts here"},
	{"non-UTF-8", "name: s\nsecrets: [{name: \xff}]\n", 2, 18, "not valid UTF-8"},
	{"overlong UTF-8", "name: \xc0\xaf\n", 1, 7, "not valid UTF-8"},
	{"UTF-16 BOM", "\xff\xfen\0a\0", 1, 1, "not valid UTF-8"},
	{"deep nesting", "name: s\nx: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]\n", 2, 19, "nests deeper than 16 levels"},
	{"position after multibyte", "name: s\nsecrets: [{name: \"\xc3\xa9\xc3\xa9\", kind: ascii}]\n", 2, 18, "the secret name"},
	{"position after CRLF", "name: s\r\n\r\nsecrets: [{name: k, kind: x}]\r\n", 3, 27, "unknown kind 'x'"},
	{"placeholder after multibyte", "name: s\n" SVC_HEAD "    environment: {A: \"\xc3\xa9\xe2\x82\xac $$arca:x$$\"}\n", 7, 26,
	 "secret 'x', which is not declared"},
	{"placeholder in escaped string", "name: s\n" SVC_HEAD "    environment: {A: \"\\x41 $$arca:x$$\"}\n", 7, 28,
	 "secret 'x', which is not declared"},
	{"placeholder when escapes hide the prefix", "name: s\n" SVC_HEAD "    environment: {A: \"\\x24$arca:x$$\"}\n", 7, 22,
	 "secret 'x', which is not declared"},
	{"too many secrets", NULL, 2, 10, "more than the limit of 1024"},
};

static int has_diag(const struct arca_diags *ds, int line, int col, const char *msg)
{
	for (size_t i = 0; i < ds->n; i++)
		if (ds->d[i].line == line && ds->d[i].col == col && strstr(ds->d[i].msg, msg))
			return 1;
	return 0;
}

static void test_refusals(void **state)
{
	(void)state;
	assert_true(sizeof bads / sizeof bads[0] >= 20);
	int failed = 0;
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		const struct bad *b = &bads[i];
		struct arca_diags ds;
		struct arca_policy *p = (struct arca_policy *)1;
		arca_diags_init(&ds, "t.yaml");
		struct arca_buf gen;
		arca_buf_init(&gen, 0, 0);
		const char *yaml = b->yaml;
		if (!yaml) { /* too many secrets */
			assert_int_equal(arca_buf_appends(&gen, "name: s\nsecrets: ["), 0);
			for (int k = 0; k < 1025; k++)
				assert_int_equal(arca_buf_appendf(&gen, "%s{name: s%d, kind: ascii}", k ? ", " : "", k), 0);
			assert_int_equal(arca_buf_appends(&gen, "]\n"), 0);
			yaml = (const char *)gen.p;
		}
		/* the UTF-16 case has NUL bytes: pass its real length */
		size_t len = strcmp(b->what, "UTF-16 BOM") == 0 ? 6 : strlen(yaml);
		int rc = arca_policy_parse(yaml, len, &ds, &p);
		arca_buf_free(&gen);
		if (rc == 0 || p != NULL || ds.n == 0 || !has_diag(&ds, b->line, b->col, b->msg)) {
			fprintf(stderr, "case '%s': rc %d, want %d:%d '%s', got:\n", b->what, rc, b->line, b->col, b->msg);
			for (size_t k = 0; k < ds.n; k++)
				fprintf(stderr, "  %d:%d: %s\n", ds.d[k].line, ds.d[k].col, ds.d[k].msg);
			failed++;
		}
		arca_policy_free(rc == 0 ? p : NULL);
	}
	assert_int_equal(failed, 0);
}


/* A configuration carries at most 256 volumes: a service mounting more is
 * refused in the policy, not at attestation. */
static void service_mounting(size_t n, struct arca_buf *y)
{
	arca_buf_init(y, 0, 0);
	assert_int_equal(arca_buf_appends(y, "name: s\nvolumes:\n"), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(arca_buf_appendf(y, "  - {name: v%zu}\n", i), 0);
	assert_int_equal(arca_buf_appends(y, SVC_HEAD "    volumes:\n"), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(arca_buf_appendf(y, "      - {name: v%zu, path: /v/%zu}\n", i, i), 0);
}

static void test_volume_count_limit(void **state)
{
	(void)state;
	struct arca_buf y;
	service_mounting(256, &y);
	struct arca_policy *p = parse_ok((const char *)y.p);
	assert_int_equal(p->services[0].nvolumes, 256);
	arca_policy_free(p);
	arca_buf_free(&y);

	service_mounting(257, &y);
	struct arca_diags ds;
	arca_diags_init(&ds, "t.yaml");
	p = (struct arca_policy *)1;
	assert_int_not_equal(arca_policy_parse((const char *)y.p, y.len, &ds, &p), 0);
	assert_null(p);
	/* the list starts on the line after "    volumes:" (line 265) */
	assert_true(has_diag(&ds, 2 + 257 + 7, 7, "service 'api' mounts 257 volumes, more than the limit of 256"));
	arca_buf_free(&y);
}

static void test_many_problems_at_once(void **state)
{
	(void)state;
	static const char y[] = "name: s\n"
				"services:\n"
				"  - command: /bin/true\n"
				"    platform: {tdx: {mrtd: 00}}\n"
				"secrets:\n"
				"  - {kind: binary, value: zz}\n";
	struct arca_diags ds;
	struct arca_policy *p;
	arca_diags_init(&ds, "t.yaml");
	assert_int_equal(arca_policy_parse(y, strlen(y), &ds, &p), ARCA_EPARSE);
	assert_null(p);
	assert_true(has_diag(&ds, 3, 5, "this service has no name"));
	assert_true(has_diag(&ds, 3, 14, "command must be a list"));
	assert_true(has_diag(&ds, 4, 28, "mrtd of the tdx constraint of service '(unnamed)' must be 96 hex digits"));
	assert_true(has_diag(&ds, 6, 5, "this secret has no name"));
	assert_true(has_diag(&ds, 6, 27, "must be hex digits"));
	/* reported in the order of the file */
	for (size_t i = 1; i < ds.n; i++)
		assert_true(ds.d[i - 1].line < ds.d[i].line ||
			    (ds.d[i - 1].line == ds.d[i].line && ds.d[i - 1].col <= ds.d[i].col));
}

/* One line of almost ARCA_POLICY_MAX_BYTES in flow style, non-ASCII near its
 * start and a bad placeholder at its end: the column must count characters,
 * and finding it must not walk the line once per placeholder (ctest's
 * timeout catches that; no time is asserted here). */
static void test_long_line_positions(void **state)
{
	(void)state;
	struct arca_buf y;
	arca_buf_init(&y, 0, 0);
	assert_int_equal(arca_buf_appends(&y, "{name: s, secrets: [{name: k, kind: ascii}], services: [{name: a, "
					      "command: [/x\xc3\xa9], measurement: " MEAS ", platform: {sim: {}}, "
					      "environment: {"),
			 0);
	int i = 0;
	while (y.len < ARCA_POLICY_MAX_BYTES - 100)
		assert_int_equal(arca_buf_appendf(&y, "E%d: $$arca:k$$, ", i++), 0);
	size_t bad_at = y.len + 6; /* byte offset of the last placeholder */
	assert_int_equal(arca_buf_appends(&y, "LAST: $$arca:nope$$}}]}\n"), 0);
	struct arca_diags ds;
	struct arca_policy *p;
	arca_diags_init(&ds, "t.yaml");
	assert_int_equal(arca_policy_parse((const char *)y.p, y.len, &ds, &p), ARCA_EPARSE);
	assert_int_equal(ds.n, 1);
	assert_int_equal(ds.d[0].line, 1);
	assert_int_equal(ds.d[0].col, (int)bad_at); /* one 2-byte character: col = offset - 1 + 1 */
	assert_non_null(strstr(ds.d[0].msg, "'nope'"));

	/* and with the bad one fixed, all of it is accepted */
	memcpy(y.p + bad_at + 7, "k$$}}]}\n\0", 10);
	y.len = bad_at + 7 + 8; /* "k$$}}]}\n" */
	arca_diags_init(&ds, "t.yaml");
	assert_int_equal(arca_policy_parse((const char *)y.p, y.len, &ds, &p), 0);
	assert_int_equal(p->services[0].nenv, (size_t)i + 1);
	arca_policy_free(p);
	arca_buf_free(&y);
}

static void test_diag_cap_and_format(void **state)
{
	(void)state;
	struct arca_buf y;
	arca_buf_init(&y, 0, 0);
	assert_int_equal(arca_buf_appends(&y, "name: s\n"), 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(arca_buf_appendf(&y, "k%d: v\n", i), 0);
	struct arca_diags ds;
	struct arca_policy *p;
	arca_diags_init(&ds, "dir/p.yaml");
	assert_int_equal(arca_policy_parse((const char *)y.p, y.len, &ds, &p), ARCA_EPARSE);
	assert_int_equal(ds.n, 32);
	assert_int_equal(ds.dropped, 8);
	struct arca_buf out;
	arca_buf_init(&out, 0, 0);
	assert_int_equal(arca_diags_format(&ds, &out), 0);
	assert_non_null(strstr((char *)out.p, "dir/p.yaml:2:1: unknown key 'k0' in the policy; the keys of the policy are name,"));
	assert_non_null(strstr((char *)out.p, "\ndir/p.yaml: 8 more problems not shown"));
	arca_buf_free(&out);
	arca_buf_free(&y);
}

static void test_too_big(void **state)
{
	(void)state;
	size_t n = ARCA_POLICY_MAX_BYTES + 1;
	char *t = malloc(n);
	assert_non_null(t);
	memset(t, ' ', n);
	memcpy(t, "name: s\n", 8);
	struct arca_diags ds;
	struct arca_policy *p;
	arca_diags_init(&ds, NULL);
	assert_int_equal(arca_policy_parse(t, n, &ds, &p), ARCA_ETOOBIG);
	assert_null(p);
	assert_true(has_diag(&ds, 1, 1, "more than the limit of 1048576"));
	assert_string_equal(ds.file, "policy");
	free(t);
}

static void test_name_valid(void **state)
{
	(void)state;
	assert_true(arca_name_valid("payroll"));
	assert_true(arca_name_valid("a/b.c~d-e_f"));
	assert_false(arca_name_valid(""));
	assert_false(arca_name_valid("a b"));
	assert_false(arca_name_valid("a:b"));
	assert_false(arca_name_valid(NULL));
	char n[130];
	memset(n, 'a', sizeof n);
	n[128] = '\0';
	assert_true(arca_name_valid(n));
	n[128] = 'a';
	n[129] = '\0';
	assert_false(arca_name_valid(n));
}

/* ---- canonical form and hash ---- */

static const char spelling_a[] = "name: eq\n"
				 "services:\n"
				 "  - name: a\n"
				 "    command: [/bin/a, x]\n"
				 "    measurement: " MEAS "\n"
				 "    platform: {sim: {}}\n"
				 "    environment: {X: \"1\", Y: $$arca:s$$}\n"
				 "  - name: b\n"
				 "    command: [/bin/b]\n"
				 "    measurement: " MEAS "\n"
				 "    platform: {sim: {}}\n"
				 "secrets:\n"
				 "  - {name: s, kind: ascii}\n"
				 "  - {name: h, kind: binary, value: \"abcd\"}\n"
				 "volumes: [{name: v}]\n"
				 "access: {owners: [" FPR_A ", " FPR_B "]}\n";

/* The same policy: other key order, block vs flow, quoting, defaults
 * written out, upper-case hex, lists of named things reordered. */
static const char spelling_b[] = "# the same session, spelled differently\n"
				 "\"volumes\":\n"
				 "  - mode: encrypted\n"
				 "    'name': v\n"
				 "access:\n"
				 "  owners:\n"
				 "    - \"" FPR_B "\"\n"
				 "    - " FPR_A "\n"
				 "secrets: [{kind: binary, value: ABCD, name: h}, {size: 32, name: s, kind: 'ascii'}]\n"
				 "services:\n"
				 "- platform:\n"
				 "    sim:\n"
				 "  name: b\n"
				 "  command:\n"
				 "  - /bin/b\n"
				 "  measurement: \"" MEAS_UPPER "\"\n"
				 "- {name: a, measurement: " MEAS ", command: ['/bin/a', \"x\"],\n"
				 "   platform: {sim: {}}, environment: {Y: \"$$arca:s$$\", X: 1}}\n"
				 "name: \"eq\"\n";

static void test_hash_same_for_two_spellings(void **state)
{
	(void)state;
	uint8_t a[32], b[32];
	hash_of(spelling_a, a);
	hash_of(spelling_b, b);
	assert_memory_equal(a, b, 32);
}

/* Each differs from spelling_a in one thing a user would care about. */
static const char *const variants[] = {
	"name: eq2\n",
	"predecessor: 6f1c2a0e9b8d7c6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7\n",
	"access: {owners: [" FPR_A "]}\n",
	"command: [/bin/a, y]\n",
	"command: [x, /bin/a]\n",
	"environment: {X: \"2\", Y: $$arca:s$$}\n",
	"environment: {Z: \"1\", Y: $$arca:s$$}\n",
	"environment: {X: \"1\", Y: $$arca:s:hex$$}\n",
	"files: {/f: \"\"}\n",
	"measurement: sha256:b172cedcae47474b615c54d510a5d84a8dea3032e958587430b413538be3f333\n",
	"volumes: [{name: v, path: /v}]\n",
	"volmode: authenticated\n",
	"secret-kind: private-key\n",
	"secret-size: 33\n",
	"secret-value: \"abce\"\n",
	"tolerate: [no-secret-memory]\n",
	"tolerate: [no-ptrace-protection]\n",
	"tolerate: [no-ptrace-protection, no-secret-memory]\n",
	"service-name: c\n",
	"drop-service\n",
};

/* Applies one variant to spelling_a by line surgery, keeping it valid. */
static char *apply_variant(const char *v)
{
	char *y = malloc(4096);
	assert_non_null(y);
	char *o = y;
	const char *line = spelling_a;
	int in_a = 0, dropping = 0;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t n = (size_t)(nl - line) + 1;
		char cur[512];
		memcpy(cur, line, n);
		cur[n] = '\0';
		line += n;
		const char *repl = NULL;
		char tmp[1200];
		if (cur[0] != ' ')
			in_a = dropping = 0;
		if (strncmp(cur, "  - name: ", 10) == 0) {
			in_a = cur[10] == 'a';
			dropping = strcmp(v, "drop-service\n") == 0 && cur[10] == 'b';
		}
		if (!strncmp(v, "name:", 5) && !strncmp(cur, "name:", 5))
			repl = v;
		else if (!strncmp(v, "access:", 7) && !strncmp(cur, "access:", 7))
			repl = v;
		else if (in_a && !strncmp(v, "command:", 8) && !strncmp(cur, "    command:", 12))
			repl = (snprintf(tmp, sizeof tmp, "    %s", v), tmp);
		else if (in_a && !strncmp(v, "environment:", 12) && !strncmp(cur, "    environment:", 16))
			repl = (snprintf(tmp, sizeof tmp, "    %s", v), tmp);
		else if (in_a && !strncmp(v, "measurement:", 12) && !strncmp(cur, "    measurement:", 16))
			repl = (snprintf(tmp, sizeof tmp, "    %s", v), tmp);
		else if (in_a && (!strncmp(v, "files:", 6) || !strncmp(v, "volumes:", 8)) &&
			 !strncmp(cur, "    environment:", 16))
			repl = (snprintf(tmp, sizeof tmp, "%s    %s", cur, v), tmp);
		else if (!strncmp(v, "service-name: ", 14) && !strcmp(cur, "  - name: b\n"))
			repl = (snprintf(tmp, sizeof tmp, "  - name: %s", v + 14), tmp);
		else if (!strcmp(v, "volmode: authenticated\n") && !strncmp(cur, "volumes:", 8))
			repl = "volumes: [{name: v, mode: authenticated}]\n";
		else if (!strcmp(v, "secret-kind: private-key\n") && !strncmp(cur, "  - {name: s,", 13))
			repl = "  - {name: s, kind: private-key}\n";
		else if (!strcmp(v, "secret-size: 33\n") && !strncmp(cur, "  - {name: s,", 13))
			repl = "  - {name: s, kind: ascii, size: 33}\n";
		else if (!strcmp(v, "secret-value: \"abce\"\n") && !strncmp(cur, "  - {name: h,", 13))
			repl = "  - {name: h, kind: binary, value: \"abce\"}\n";
		if (dropping)
			continue;
		const char *w = repl ? repl : cur;
		size_t wl = strlen(w);
		memcpy(o, w, wl);
		o += wl;
	}
	if (!strncmp(v, "predecessor:", 12) || !strncmp(v, "tolerate:", 9)) {
		size_t wl = strlen(v);
		memcpy(o, v, wl);
		o += wl;
	}
	*o = '\0';
	return y;
}

static void test_hash_changes_with_every_field(void **state)
{
	(void)state;
	enum { NV = sizeof variants / sizeof variants[0] };
	uint8_t base[32], h[NV][32];
	hash_of(spelling_a, base);
	for (size_t i = 0; i < NV; i++) {
		char *y = apply_variant(variants[i]);
		assert_string_not_equal(y, spelling_a);
		hash_of(y, h[i]);
		if (memcmp(h[i], base, 32) == 0)
			fail_msg("variant '%s' did not change the hash", variants[i]);
		for (size_t j = 0; j < i; j++)
			if (memcmp(h[i], h[j], 32) == 0)
				fail_msg("variants '%s' and '%s' hash alike", variants[i], variants[j]);
		free(y);
	}
}

static const char kat_yaml[] = "name: kat\n"
			       "access: {owners: [" FPR_A "]}\n"
			       "services:\n"
			       "  - name: web\n"
			       "    command: [/bin/web, \"--key=$$arca:k:hex$$\"]\n"
			       "    measurement: " MEAS "\n"
			       "    platform: {sim: {}}\n"
			       "    environment: {PW: $$arca:pw$$}\n"
			       "    files: {/etc/web.conf: \"x=1\\n\"}\n"
			       "    volumes: [{name: v, path: /data}]\n"
			       "secrets:\n"
			       "  - {name: pw, kind: ascii}\n"
			       "  - {name: k, kind: binary, value: \"0A0b\"}\n"
			       "  - {name: c, kind: x509, common_name: web.example, dns: [web.example]}\n"
			       "volumes: [{name: v, mode: authenticated}]\n"
			       "tolerate: [no-secret-memory]\n";

static const char kat_canonical[] =
	"{\"access\":{\"owners\":[\"" FPR_A "\"]},\"name\":\"kat\",\"predecessor\":null,"
	"\"secrets\":["
	"{\"common_name\":\"web.example\",\"dns\":[\"web.example\"],\"kind\":\"x509\",\"name\":\"c\",\"size\":null,\"value\":null},"
	"{\"common_name\":null,\"dns\":null,\"kind\":\"binary\",\"name\":\"k\",\"size\":null,\"value\":\"0a0b\"},"
	"{\"common_name\":null,\"dns\":null,\"kind\":\"ascii\",\"name\":\"pw\",\"size\":32,\"value\":null}],"
	"\"services\":[{\"command\":[\"/bin/web\",\"--key=$$arca:k:hex$$\"],\"environment\":{\"PW\":\"$$arca:pw$$\"},"
	"\"files\":{\"/etc/web.conf\":\"x=1\\n\"},\"measurement\":\"" MEAS "\",\"name\":\"web\",\"platform\":{\"sim\":{}},"
	"\"volumes\":[{\"name\":\"v\",\"path\":\"/data\"}]}],"
	"\"tolerate\":[\"no-secret-memory\"],\"version\":1,"
	"\"volumes\":[{\"mode\":\"authenticated\",\"name\":\"v\"}]}";

/* SHA-256 of kat_canonical, computed independently (Python hashlib). */
static const char kat_hash[] = "21360746c300bd4c3c9a1d01a287cb5c6445afca1e554ce1bc7e51e82a127698";


/* Code volumes: key (a 32-byte binary secret, given or generated) and tag
 * pinned; data volumes have neither. Both kinds reach the canonical form
 * and the hash, and a data volume keeps the shape it always had. */
#define CODE_TAG "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
static const char code_volumes_yaml[] =
	"name: vols\n"
	"services:\n"
	"  - name: app\n"
	"    command: [/bin/app]\n"
	"    measurement: " MEAS "\n"
	"    platform: {sim: {}}\n"
	"    volumes: [{name: code, path: /opt/app}, {name: data, path: /var/lib/app}]\n"
	"secrets:\n"
	"  - {name: codekey, kind: binary, value: \"" H32 "\"}\n"
	"  - {name: genkey, kind: binary, size: 32}\n"
	"  - {name: defkey, kind: binary}\n"
	"volumes:\n"
	"  - {name: code, mode: authenticated, key: codekey, tag: \"" CODE_TAG "\"}\n"
	"  - {name: code2, key: genkey, tag: " CODE_TAG "}\n"
	"  - {name: code3, key: defkey, tag: " CODE_TAG "}\n"
	"  - {name: data}\n";

static void test_code_volumes(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok(code_volumes_yaml);
	uint8_t tag[32];
	size_t n;
	assert_int_equal(arca_hex_decode(CODE_TAG, 64, tag, sizeof tag, &n), 0);
	assert_int_equal(p->nvolumes, 4);
	const struct arca_volume_def *c = arca_policy_volume(p, "code"), *d = arca_policy_volume(p, "data");
	assert_non_null(c);
	assert_non_null(d);
	assert_null(arca_policy_volume(p, "nope"));
	assert_true(arca_volume_is_code(c));
	assert_true(c->authenticated);
	assert_string_equal(c->key, "codekey");
	assert_int_equal(c->has_tag, 1);
	assert_memory_equal(c->tag, tag, 32);
	assert_true(arca_volume_is_code(arca_policy_volume(p, "code2")));
	assert_string_equal(arca_policy_volume(p, "code3")->key, "defkey");
	assert_false(arca_volume_is_code(d));
	assert_null(d->key);
	assert_int_equal(d->has_tag, 0);

	struct arca_buf b;
	arca_buf_init(&b, 0, 1);
	assert_int_equal(arca_policy_canonical(p, &b), 0);
	assert_non_null(strstr((char *)b.p, "\"volumes\":[{\"key\":\"codekey\",\"mode\":\"authenticated\",\"name\":\"code\","
					    "\"tag\":\"" CODE_TAG "\"},"));
	assert_non_null(strstr((char *)b.p, "{\"mode\":\"encrypted\",\"name\":\"data\"}]"));
	arca_buf_free(&b);
	/* The redacted form (what owners read back) shows key name and tag. */
	json_t *j = arca_policy_to_json(p, 1);
	assert_non_null(j);
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(strstr(t, "\"key\":\"codekey\""));
	assert_non_null(strstr(t, "\"tag\":\"" CODE_TAG "\""));
	free(t);
	arca_policy_json_free(j);

	/* The pinned tag and the key's name are part of the hash. */
	uint8_t h1[32], h2[32], h3[32];
	assert_int_equal(arca_policy_hash(p, h1), 0);
	arca_policy_free(p);
	char other[sizeof code_volumes_yaml];
	memcpy(other, code_volumes_yaml, sizeof other);
	char *at = strstr(other, "tag: \"" CODE_TAG);
	assert_non_null(at);
	at[6] = '0';
	hash_of(other, h2);
	assert_memory_not_equal(h1, h2, 32);
	memcpy(other, code_volumes_yaml, sizeof other);
	at = strstr(other, "code, mode: authenticated, key: codekey");
	assert_non_null(at);
	memcpy(at + strlen("code, mode: authenticated, key: "), "genkey ", 7);
	hash_of(other, h3);
	assert_memory_not_equal(h1, h3, 32);
}

static void test_canonical_known_answer(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok(kat_yaml);
	struct arca_buf b;
	arca_buf_init(&b, 0, 1);
	assert_int_equal(arca_buf_appends(&b, "prefix|"), 0);
	assert_int_equal(arca_policy_canonical(p, &b), 0);
	assert_memory_equal(b.p, "prefix|", 7); /* canonical appends */
	assert_string_equal((char *)b.p + 7, kat_canonical);
	uint8_t h[32];
	char hex[65];
	assert_int_equal(arca_policy_hash(p, h), 0);
	arca_hex_encode(h, 32, hex);
	assert_string_equal(hex, kat_hash);
	uint8_t h2[32];
	assert_int_equal(arca_sha256(kat_canonical, strlen(kat_canonical), h2), 0);
	assert_memory_equal(h, h2, 32);
	arca_buf_free(&b);
	arca_policy_free(p);
}

/* no-ptrace-protection (CAS: accept sim evidence from a host without Yama
 * ptrace protection) is a tolerate word like no-secret-memory: parsed,
 * kept, and in the canonical form as a sorted list of strings. */
static void test_tolerate_no_ptrace_protection(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok("name: t\ntolerate: [no-secret-memory, no-ptrace-protection]\n");
	assert_int_equal(p->ntolerate, 2);
	assert_string_equal(p->tolerate[1], "no-ptrace-protection");
	struct arca_buf b;
	arca_buf_init(&b, 0, 1);
	assert_int_equal(arca_policy_canonical(p, &b), 0);
	assert_string_equal((char *)b.p,
			    "{\"access\":null,\"name\":\"t\",\"predecessor\":null,\"secrets\":[],\"services\":[],"
			    "\"tolerate\":[\"no-ptrace-protection\",\"no-secret-memory\"],\"version\":1,\"volumes\":[]}");
	uint8_t both[32], one[32], none[32];
	assert_int_equal(arca_policy_hash(p, both), 0);
	arca_buf_free(&b);
	arca_policy_free(p);

	p = parse_ok("name: t\ntolerate: [no-ptrace-protection]\n");
	assert_int_equal(p->ntolerate, 1);
	assert_string_equal(p->tolerate[0], "no-ptrace-protection");
	assert_int_equal(arca_policy_hash(p, one), 0);
	arca_policy_free(p);
	p = parse_ok("name: t\n");
	assert_int_equal(p->ntolerate, 0);
	assert_int_equal(arca_policy_hash(p, none), 0);
	arca_policy_free(p);
	/* Tolerating it is part of what the owner signed: it changes the hash. */
	assert_memory_not_equal(one, none, 32);
	assert_memory_not_equal(one, both, 32);
}

static void test_redaction(void **state)
{
	(void)state;
	struct arca_policy *p = parse_ok(kat_yaml);
	uint8_t before[32], after[32];
	assert_int_equal(arca_policy_hash(p, before), 0);

	json_t *r = arca_policy_to_json(p, 1);
	assert_non_null(r);
	char *s = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
	assert_non_null(s);
	assert_null(strstr(s, "0a0b"));
	assert_non_null(strstr(s, "\"name\":\"k\",\"size\":null,\"value\":\"<redacted>\""));
	/* generated secrets have no value to hide */
	assert_non_null(strstr(s, "\"name\":\"pw\",\"size\":32,\"value\":null"));
	assert_string_not_equal(s, kat_canonical);
	free(s);
	json_decref(r);

	json_t *u = arca_policy_to_json(p, 0);
	assert_non_null(u);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(u, "secrets"), 1), "value")),
			    "0a0b");
	arca_policy_json_free(u);

	assert_int_equal(arca_policy_hash(p, after), 0);
	assert_memory_equal(before, after, 32);
	arca_policy_free(p);
}

/* ---- placeholders ---- */

struct fake_secret {
	const char *name;
	enum arca_secret_kind kind;
	const uint8_t *v;
	size_t n;
};

static const uint8_t bin2[] = {0x00, 0xff, 0x10};
static const struct fake_secret fakes[] = {
	{"pw", ARCA_SECRET_ASCII, (const uint8_t *)"hunter2", 7},
	{"bin", ARCA_SECRET_BINARY, bin2, 3},
	{"c.e~r-t_1", ARCA_SECRET_X509, (const uint8_t *)"-----CERT-----\n", 15},
};

static int fake_lookup(void *ctx, const char *name, const char *format, struct arca_buf *out)
{
	int *calls = ctx;
	(*calls)++;
	for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; i++) {
		const struct fake_secret *f = &fakes[i];
		if (strcmp(name, f->name) != 0)
			continue;
		if (!arca_format_fits(f->kind, format))
			return ARCA_EINVAL;
		if (!format)
			return arca_buf_append(out, f->v, f->n);
		char tmp[64];
		if (strcmp(format, "hex") == 0)
			arca_hex_encode(f->v, f->n, tmp);
		else if (strcmp(format, "base64") == 0)
			arca_b64_encode(f->v, f->n, tmp);
		else
			return arca_buf_append(out, f->v, f->n);
		return arca_buf_appends(out, tmp);
	}
	return ARCA_ENOTFOUND;
}

static void expect_subst(const char *in, const char *want)
{
	struct arca_buf out;
	struct arca_errbuf e;
	int calls = 0;
	arca_buf_init(&out, 0, 1);
	int rc = arca_subst(in, strlen(in), fake_lookup, &calls, &out, &e);
	if (rc != 0)
		fail_msg("arca_subst('%s') failed: %s", in, e.msg);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.p, want, out.len);
	arca_buf_free(&out);
}

static void expect_subst_fails(const char *in, int code, const char *msg)
{
	struct arca_buf out;
	struct arca_errbuf e;
	int calls = 0;
	e.msg[0] = '\0';
	arca_buf_init(&out, 0, 1);
	assert_int_equal(arca_buf_appends(&out, "keep"), 0);
	int rc = arca_subst(in, strlen(in), fake_lookup, &calls, &out, &e);
	if (rc != code || !strstr(e.msg, msg))
		fail_msg("arca_subst('%s'): rc %d msg '%s', want %d '%s'", in, rc, e.msg, code, msg);
	/* nothing of a failed rendering stays behind */
	assert_int_equal(out.len, 4);
	assert_string_equal((char *)out.p, "keep");
	arca_buf_free(&out);
}

static void test_subst_renders(void **state)
{
	(void)state;
	expect_subst("", "");
	expect_subst("no placeholders", "no placeholders");
	expect_subst("pw=$$arca:pw$$;", "pw=hunter2;");
	expect_subst("$$arca:pw:hex$$", "68756e74657232");
	expect_subst("$$arca:pw:base64$$", "aHVudGVyMg==");
	expect_subst("$$arca:bin:hex$$|$$arca:bin:base64$$", "00ff10|AP8Q");
	expect_subst("$$arca:c.e~r-t_1:pem$$", "-----CERT-----\n");
	expect_subst("$$arca:pw$$$$arca:pw$$", "hunter2hunter2");
	/* binary default is the raw bytes, NUL included */
	struct arca_buf out;
	struct arca_errbuf e;
	int calls = 0;
	arca_buf_init(&out, 0, 1);
	assert_int_equal(arca_subst("[$$arca:bin$$]", 14, fake_lookup, &calls, &out, &e), 0);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.p, "[\x00\xff\x10]", 5);
	assert_int_equal(calls, 1);
	arca_buf_free(&out);
}

static void test_subst_literal_dollars(void **state)
{
	(void)state;
	/* "$$" not followed by "arca:" is literal text */
	expect_subst("$$", "$$");
	expect_subst("$", "$");
	expect_subst("cost: $$5, home: $$HOME, $$$", "cost: $$5, home: $$HOME, $$$");
	expect_subst("$$ARCA:pw$$", "$$ARCA:pw$$");
	expect_subst("$$arca", "$$arca");
	expect_subst("$$$arca:pw$$", "$hunter2");
	expect_subst("$$arca:pw$$$", "hunter2$");
}

static void test_subst_refuses(void **state)
{
	(void)state;
	expect_subst_fails("$$arca:nope$$", ARCA_ENOTFOUND, "names secret 'nope', which does not exist");
	expect_subst_fails("$$arca:pw:pem$$", ARCA_EINVAL, "secret 'pw' cannot be rendered as pem");
	expect_subst_fails("x $$arca:$$", ARCA_EPARSE, "names no secret");
	expect_subst_fails("$$arca::hex$$", ARCA_EPARSE, "names no secret");
	expect_subst_fails("$$arca:", ARCA_EPARSE, "is not closed");
	expect_subst_fails("a $$arca:pw", ARCA_EPARSE, "'$$arca:pw' is not closed");
	expect_subst_fails("$$arca:pw$", ARCA_EPARSE, "is not closed");
	expect_subst_fails("$$arca:pw:hex", ARCA_EPARSE, "is not closed");
	expect_subst_fails("$$arca:pw:$$", ARCA_EPARSE, "empty format");
	expect_subst_fails("$$arca:pw:HEX$$", ARCA_EPARSE, "unknown format");
	expect_subst_fails("$$arca:pw:rot13$$", ARCA_EPARSE, "unknown format");
	expect_subst_fails("$$arca:a/b$$", ARCA_EPARSE, "'/' stands where $$ should");
	expect_subst_fails("$$arca:p w$$", ARCA_EPARSE, "' ' stands where $$ should");
	expect_subst_fails("$$arca:pw:hex:x$$", ARCA_EPARSE, "':' stands where $$ should");
	expect_subst_fails("$$arca:pw\n$$", ARCA_EPARSE, "0x0a stands where $$ should");
	/* the first error stops rendering, even after good placeholders */
	expect_subst_fails("$$arca:pw$$ $$arca:nope$$", ARCA_ENOTFOUND, "nope");
	char longname[200] = "$$arca:";
	memset(longname + 7, 'a', 129);
	memcpy(longname + 136, "$$", 3);
	expect_subst_fails(longname, ARCA_EPARSE, "longer than 128");

	struct arca_buf out;
	struct arca_errbuf e;
	arca_buf_init(&out, 0, 0);
	assert_int_equal(arca_subst("x", 1, NULL, NULL, &out, &e), ARCA_EINVAL);
	arca_buf_free(&out);
}

static void test_format_fits(void **state)
{
	(void)state;
	const char *fmts[] = {NULL, "", "hex", "base64", "pem", "key", "chain", "bogus"};
	/* rows: ascii, binary, private-key, x509 */
	static const int want[4][8] = {
		{1, 1, 1, 1, 0, 0, 0, 0},
		{1, 1, 1, 1, 0, 0, 0, 0},
		{1, 1, 0, 0, 0, 1, 0, 0},
		{1, 1, 0, 0, 1, 1, 1, 0},
	};
	for (int k = 0; k < 4; k++)
		for (int f = 0; f < 8; f++)
			if (arca_format_fits((enum arca_secret_kind)(k + 1), fmts[f]) != want[k][f])
				fail_msg("arca_format_fits(%d, %s) != %d", k + 1, fmts[f] ? fmts[f] : "NULL", want[k][f]);
	assert_false(arca_format_fits((enum arca_secret_kind)0, NULL));
	assert_false(arca_format_fits((enum arca_secret_kind)9, "hex"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_accepts_edge_forms),
		cmocka_unit_test(test_full_example_file),
		cmocka_unit_test(test_hw_constraints_parse),
		cmocka_unit_test(test_hw_constraint_defaults),
		cmocka_unit_test(test_hw_design_example_spellings),
		cmocka_unit_test(test_hw_canonical_known_answer),
		cmocka_unit_test(test_hw_hash_changes_with_every_field),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_many_problems_at_once),
		cmocka_unit_test(test_long_line_positions),
		cmocka_unit_test(test_diag_cap_and_format),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_hash_same_for_two_spellings),
		cmocka_unit_test(test_hash_changes_with_every_field),
		cmocka_unit_test(test_canonical_known_answer),
		cmocka_unit_test(test_code_volumes),
		cmocka_unit_test(test_volume_count_limit),
		cmocka_unit_test(test_tolerate_no_ptrace_protection),
		cmocka_unit_test(test_redaction),
		cmocka_unit_test(test_subst_renders),
		cmocka_unit_test(test_subst_literal_dollars),
		cmocka_unit_test(test_subst_refuses),
		cmocka_unit_test(test_format_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
