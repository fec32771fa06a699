/* key.c: arca-las's platform key (Ed25519), the key CAS trusts by its
 * fingerprint.
 *
 * Files as in CONTRACTS.md: platform.key (PKCS#8 PEM, 0600) and
 * platform.pub (SubjectPublicKeyInfo PEM). The fingerprint must survive
 * restarts, so an existing key is always loaded, never regenerated; a key
 * file others could read or replace is refused rather than trusted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "las.h"
#include "arca/buf.h"

#define KEY_FILE_MAX 16384

static int join(char *out, size_t cap, const char *dir, const char *name, struct arca_errbuf *e)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return arca_errf(e, ARCA_ETOOBIG, "state directory path too long: %s", dir);
	return 0;
}

/* Never prompt for a passphrase: the daemon has no terminal to ask on. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static int check_private(const char *what, const struct stat *st, int want_dir, struct arca_errbuf *e)
{
	if (want_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		return arca_errf(e, ARCA_EINVAL, "%s is not a %s", what, want_dir ? "directory" : "regular file");
	if (st->st_uid != geteuid())
		return arca_errf(e, ARCA_EDENIED, "%s belongs to uid %u, not to the uid arca-las runs as (%u)", what,
				 (unsigned)st->st_uid, (unsigned)geteuid());
	if ((st->st_mode & 077) != 0)
		return arca_errf(e, ARCA_EDENIED,
				 "%s has mode %04o: other users could read or replace the platform key; run chmod %s %s",
				 what, (unsigned)(st->st_mode & 07777), want_dir ? "700" : "600", what);
	return 0;
}

static int pem_from_bio(BIO *bio, struct arca_buf *out)
{
	BUF_MEM *bm = NULL;
	int rc;
	BIO_get_mem_ptr(bio, &bm);
	if (bm == NULL)
		return ARCA_ECRYPTO;
	rc = arca_buf_append(out, bm->data, bm->length);
	arca_wipe(bm->data, bm->length);
	return rc;
}

static int write_private_pem(const char *path, const uint8_t priv[32], struct arca_errbuf *e)
{
	struct arca_buf pem;
	int rc = ARCA_ECRYPTO;
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
	BIO *bio = BIO_new(BIO_s_mem());

	arca_buf_init(&pem, KEY_FILE_MAX, 1);
	if (pk == NULL || bio == NULL || PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    pem_from_bio(bio, &pem) < 0) {
		rc = arca_errf(e, ARCA_ECRYPTO, "cannot encode the platform key");
		goto out;
	}
	rc = arca_write_file_atomic(path, pem.p, pem.len, 0600, e);
out:
	arca_buf_free(&pem);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return rc;
}

static int public_pem(const uint8_t pub[32], struct arca_buf *out)
{
	int rc = ARCA_ECRYPTO;
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	BIO *bio = BIO_new(BIO_s_mem());
	if (pk != NULL && bio != NULL && PEM_write_bio_PUBKEY(bio, pk) == 1)
		rc = pem_from_bio(bio, out);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return rc;
}

static int load_private(const char *path, uint8_t priv[32], struct arca_errbuf *e)
{
	struct arca_buf pem;
	struct stat st;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	size_t len = 32;
	int rc;

	arca_buf_init(&pem, KEY_FILE_MAX, 1);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = arca_errf(e, ARCA_EIO, "cannot stat %s: %s", path, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	GUARD_GOTO(check_private(path, &st, 0, e), out);
	GUARD_GOTO(arca_read_file(path, KEY_FILE_MAX, &pem, e), out);
	bio = BIO_new_mem_buf(pem.p, (int)pem.len);
	ENSURE_GOTO(bio != NULL, arca_errf(e, ARCA_ENOMEM, "out of memory"), out);
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	ENSURE_GOTO(pk != NULL && EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519,
		    arca_errf(e, ARCA_EPARSE, "%s is not an unencrypted Ed25519 private key in PEM", path), out);
	ENSURE_GOTO(EVP_PKEY_get_raw_private_key(pk, priv, &len) == 1 && len == 32,
		    arca_errf(e, ARCA_ECRYPTO, "cannot read the Ed25519 key in %s", path), out);
	rc = 0;
out:
	EVP_PKEY_free(pk);
	BIO_free(bio);
	arca_buf_free(&pem);
	return rc;
}

/* platform.pub is derived data: rewritten when absent or not matching. */
static int sync_public(const char *path, const uint8_t pub[32], struct arca_errbuf *e)
{
	struct arca_buf want, have;
	int rc;

	arca_buf_init(&want, KEY_FILE_MAX, 0);
	arca_buf_init(&have, KEY_FILE_MAX, 0);
	ENSURE_GOTO(public_pem(pub, &want) == 0, arca_errf(e, ARCA_ECRYPTO, "cannot encode the platform public key"),
		    out);
	if (arca_read_file(path, KEY_FILE_MAX, &have, NULL) == 0 && have.len == want.len &&
	    memcmp(have.p, want.p, want.len) == 0) {
		rc = 0;
		goto out;
	}
	rc = arca_write_file_atomic(path, want.p, want.len, 0644, e);
out:
	arca_buf_free(&want);
	arca_buf_free(&have);
	return rc;
}

int las_key_open(const char *dir, struct las_key *k, struct arca_errbuf *e)
{
	char keypath[PATH_MAX], pubpath[PATH_MAX], lockpath[PATH_MAX];
	struct stat st;
	int rc;

	memset(k, 0, sizeof(*k));
	k->lockfd = -1;
	GUARD(join(keypath, sizeof keypath, dir, "platform.key", e));
	GUARD(join(pubpath, sizeof pubpath, dir, "platform.pub", e));
	GUARD(join(lockpath, sizeof lockpath, dir, "lock", e));
	GUARD(arca_mkdirs(dir, 0700, e));
	if (lstat(dir, &st) < 0)
		return arca_errf(e, ARCA_EIO, "cannot stat %s: %s", dir, strerror(errno));
	GUARD(check_private(dir, &st, 1, e));

	k->lockfd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (k->lockfd < 0)
		return arca_errf(e, ARCA_EIO, "cannot open %s: %s", lockpath, strerror(errno));
	if (flock(k->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = arca_errf(e, ARCA_EEXIST, "another arca-las is using the state directory %s", dir);
		goto fail;
	}

	k->priv = arca_secret_alloc(32);
	ENSURE_GOTO(k->priv != NULL, arca_errf(e, ARCA_ENOMEM, "cannot allocate locked memory for the key"), fail);
	/* arca-las forks the programs it launches: their copy of this page
	 * reads as zeros, whatever happens between fork and exec. */
	long ps = sysconf(_SC_PAGESIZE);
	uintptr_t page = (uintptr_t)k->priv & ~(uintptr_t)((ps > 0 ? ps : 4096) - 1);
	ENSURE_GOTO(madvise((void *)page, (size_t)(ps > 0 ? ps : 4096), MADV_WIPEONFORK) == 0,
		    arca_errf(e, ARCA_EIO, "madvise(MADV_WIPEONFORK) on the key's page failed: %s", strerror(errno)),
		    fail);
	if (lstat(keypath, &st) == 0) {
		GUARD_GOTO(load_private(keypath, k->priv, e), fail);
		ENSURE_GOTO(arca_ed25519_public(k->priv, k->pub) == 0,
			    arca_errf(e, ARCA_ECRYPTO, "cannot derive the public key from %s", keypath), fail);
	} else if (errno == ENOENT) {
		ENSURE_GOTO(arca_ed25519_keygen(k->pub, k->priv) == 0,
			    arca_errf(e, ARCA_ECRYPTO, "cannot generate the platform key"), fail);
		GUARD_GOTO(write_private_pem(keypath, k->priv, e), fail);
		k->created = 1;
	} else {
		rc = arca_errf(e, ARCA_EIO, "cannot stat %s: %s", keypath, strerror(errno));
		goto fail;
	}
	GUARD_GOTO(sync_public(pubpath, k->pub, e), fail);
	ENSURE_GOTO(arca_fpr_ed25519(k->pub, k->fpr) == 0,
		    arca_errf(e, ARCA_ECRYPTO, "cannot compute the key's fingerprint"), fail);
	return 0;
fail:
	las_key_close(k, 1);
	return rc;
}

void las_key_close(struct las_key *k, int release_memory)
{
	if (k->priv != NULL) {
		if (release_memory) {
			arca_secret_free(k->priv, 32);
			k->priv = NULL;
		} else {
			arca_wipe(k->priv, 32);
		}
	}
	if (k->lockfd >= 0 && release_memory) {
		close(k->lockfd);
		k->lockfd = -1;
	}
}
