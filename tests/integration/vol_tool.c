/* vol_tool.c: arca-test-vol, a writer of protected volumes for
 * tests/integration/test_fs_cli.sh, which needs a second commit (an older
 * generation of a file's leaf table to put back) and arca fs writes a
 * volume only once.
 *
 *   arca-test-vol write DIR KEYFILE PATH OFFSET TEXT
 *
 * opens the volume with the key in KEYFILE (64 hex digits), writes TEXT at
 * OFFSET of the existing file PATH, commits and prints the new tag. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/encode.h"
#include "arca/volume.h"

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "arca-test-vol: %s: %s\n", what, detail);
	return 1;
}

int main(int argc, char **argv)
{
	struct arca_errbuf e = {{0}};
	struct arca_buf kb;
	struct arca_vol *v = NULL;
	struct arca_vfile *f = NULL;
	uint8_t key[ARCA_VOL_KEY_LEN], tag[ARCA_VOL_TAG_LEN];
	char hex[ARCA_VOL_TAG_HEX], *end;
	size_t got = 0, len;
	unsigned long long off;
	ssize_t w;
	int rc;

	if (argc != 7 || strcmp(argv[1], "write") != 0)
		return fail("usage", "arca-test-vol write DIR KEYFILE PATH OFFSET TEXT");
	off = strtoull(argv[5], &end, 10);
	if (*argv[5] == '\0' || *end != '\0')
		return fail("OFFSET", "not a number");
	arca_buf_init(&kb, 128, 1);
	if (arca_read_file(argv[3], 128, &kb, &e) < 0)
		return fail(argv[3], e.msg);
	len = kb.len;
	if (len > 0 && kb.p[len - 1] == '\n')
		len--;
	if (arca_hex_decode((const char *)kb.p, len, key, sizeof key, &got) < 0 || got != sizeof key)
		return fail(argv[3], "not 64 hex digits");
	arca_buf_free(&kb);
	rc = arca_vol_open(argv[2], key, NULL, 0, &v, &e);
	arca_wipe(key, sizeof key);
	if (rc < 0)
		return fail(argv[2], e.msg);
	rc = arca_vfile_open(v, argv[4], O_RDWR, 0, &f);
	if (rc < 0)
		return fail(argv[4], arca_strerror(rc));
	w = arca_vfile_pwrite(f, argv[6], strlen(argv[6]), off);
	if (w != (ssize_t)strlen(argv[6]))
		return fail(argv[4], w < 0 ? arca_strerror((int)w) : "short write");
	arca_vfile_close(f);
	if (arca_vol_commit(v, &e) < 0)
		return fail("commit", e.msg);
	arca_vol_tag(v, tag);
	arca_vol_tag_hex(tag, hex);
	arca_vol_close(v);
	printf("tag %s\n", hex);
	return 0;
}
