/* snp_certs.c: the GHCB certificate table that a host hands an SEV-SNP
 * guest with its report (configfs-tsm's auxblob), read into certificates.
 *
 * The table comes from the host, which the guest does not trust: every
 * offset and length is checked against the blob before anything is read,
 * and nothing taken from it is trusted until arca_snp_chain_verify has
 * tied it to a pinned ARK. */
#include <string.h>

#include "arca/buf.h"
#include "arca/snp.h"
#include "arca/x509.h"

/* GUIDs in RFC 4122 byte order, as the GHCB specification lists them. */
static const uint8_t GUID_ARK[16] = { 0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
				      0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae };
static const uint8_t GUID_ASK[16] = { 0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
				      0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82 };
static const uint8_t GUID_VCEK[16] = { 0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
				       0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd };
static const uint8_t GUID_VLEK[16] = { 0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
				       0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1 };

/* One certificate in PEM or DER is far below this. */
#define CERT_MAX ((size_t)16 << 10)

struct entry {
	const uint8_t *guid;
	uint32_t off, len;
};

void arca_snp_certs_free(struct arca_snp_certs *c)
{
	if (!c)
		return;
	X509_free(c->ark);
	X509_free(c->ask);
	X509_free(c->vcek);
	X509_free(c->vlek);
	memset(c, 0, sizeof *c);
}

static int is_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static int load_entry(const uint8_t *p, const struct entry *en, const char *name, X509 **slot,
		      struct arca_errbuf *e)
{
	if (*slot)
		return arca_errf(e, ARCA_EPARSE, "the certificate table lists the %s twice", name);
	if (en->len == 0 || en->len > CERT_MAX)
		return arca_errf(e, ARCA_EPARSE, "the certificate table's %s entry is %u bytes long", name, en->len);
	if (arca_x509_load(p + en->off, en->len, slot) < 0)
		return arca_errf(e, ARCA_EPARSE, "the certificate table's %s entry is not one PEM or DER certificate",
				 name);
	return 0;
}

int arca_snp_certtable_parse(const uint8_t *p, size_t n, struct arca_snp_certs *out, struct arca_errbuf *e)
{
	memset(out, 0, sizeof *out);
	if (n > ARCA_SNP_CERTTABLE_MAX)
		return arca_errf(e, ARCA_ETOOBIG, "the certificate table is %zu bytes; arca reads at most %zu", n,
				 ARCA_SNP_CERTTABLE_MAX);
	struct arca_cur c;
	arca_cur_init(&c, p, n);
	struct entry ents[ARCA_SNP_CERTTABLE_MAX_ENTRIES];
	size_t count = 0;
	for (;;) {
		const uint8_t *guid;
		uint32_t off, len;
		if (arca_cur_take(&c, 16, &guid) < 0 || arca_cur_u32le(&c, &off) < 0 || arca_cur_u32le(&c, &len) < 0)
			return arca_errf(e, ARCA_EPARSE,
					 "the certificate table ends before its terminating all-zero entry");
		if (is_zero(guid, 16)) {
			if (off != 0 || len != 0)
				return arca_errf(e, ARCA_EPARSE, "the certificate table's terminating entry "
								 "has a nonzero offset or length");
			break;
		}
		if (count == ARCA_SNP_CERTTABLE_MAX_ENTRIES)
			return arca_errf(e, ARCA_ETOOBIG, "the certificate table has more than %d entries",
					 ARCA_SNP_CERTTABLE_MAX_ENTRIES);
		ents[count++] = (struct entry){ guid, off, len };
	}
	size_t table_end = c.off;

	/* Bounds of every entry first, so that a bad table is refused as a
	 * whole rather than half-loaded. Data may not overlap the table. */
	for (size_t i = 0; i < count; i++) {
		if (ents[i].off < table_end || ents[i].off > n || ents[i].len > n - ents[i].off)
			return arca_errf(e, ARCA_EPARSE,
					 "the certificate table's entry %zu (offset %u, length %u) lies "
					 "outside its %zu bytes of data",
					 i, ents[i].off, ents[i].len, n);
	}
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		const struct entry *en = &ents[i];
		if (memcmp(en->guid, GUID_ARK, 16) == 0)
			rc = load_entry(p, en, "ARK", &out->ark, e);
		else if (memcmp(en->guid, GUID_ASK, 16) == 0)
			rc = load_entry(p, en, "ASK", &out->ask, e);
		else if (memcmp(en->guid, GUID_VCEK, 16) == 0)
			rc = load_entry(p, en, "VCEK", &out->vcek, e);
		else if (memcmp(en->guid, GUID_VLEK, 16) == 0)
			rc = load_entry(p, en, "VLEK", &out->vlek, e);
		/* Other GUIDs (a CRL, a vendor's extras) are bounds-checked
		 * above and otherwise not arca's business. */
	}
	if (rc < 0)
		arca_snp_certs_free(out);
	return rc;
}
