/* volume.h: protected volumes (docs/VOLUMES.md is the format).
 *
 * A struct arca_vol is one open volume directory; a struct arca_vfile is one
 * open of a file in it (several opens of one path share the file's state,
 * as descriptors of one inode do). All functions are safe to call from
 * several threads (one lock per volume). Errors are ARCA_E* codes; for the
 * file interface (everything a system call of the program ends in) they map
 * to errno with arca_err_errno(): ARCA_ENOTFOUND ENOENT, ARCA_EEXIST EEXIST,
 * ARCA_ENOTDIR, ARCA_EISDIR, ARCA_ENOTEMPTY, ARCA_EROFS, ARCA_EBUSY as
 * named, ARCA_ECRYPTO and ARCA_EIO EIO, ARCA_EINVAL EINVAL, ARCA_ENOMEM
 * ENOMEM, ARCA_ETOOBIG EFBIG, ARCA_EUNSUPPORTED EOPNOTSUPP.
 *
 * Paths given to the volume are relative to its root and normalised by the
 * caller ("a/b", never "/a", "a//b", "./a" or "a/.."); "" is the root.
 * Memory: every buffer the library keeps (decrypted blocks, the leaf tables,
 * keys) comes from malloc and is wiped before it is freed; under the shield
 * malloc is secret memory. Keys given to arca_vol_create/open are copied. */
#ifndef ARCA_VOLUME_H
#define ARCA_VOLUME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arca/err.h"

#define ARCA_VOL_BLOCK 4096
#define ARCA_VOL_RECORD (12 + ARCA_VOL_BLOCK + 16)
#define ARCA_VOL_KEY_LEN 32
#define ARCA_VOL_TAG_LEN 32
#define ARCA_VOL_TAG_HEX (2 * ARCA_VOL_TAG_LEN + 1)
#define ARCA_VOL_PATH_MAX 4095

enum arca_vol_mode { ARCA_VOL_ENCRYPTED = 1, ARCA_VOL_AUTHENTICATED = 2 };
enum arca_vol_type { ARCA_VOL_FILE = 1, ARCA_VOL_DIR = 2 };

struct arca_vol;
struct arca_vfile;

struct arca_vol_stat {
	enum arca_vol_type type;
	uint32_t mode;	  /* permission bits only */
	int64_t mtime_ns; /* also given as ctime and atime */
	uint64_t size;	  /* bytes; 0 for a directory */
	uint64_t ino;	  /* stable for the life of the file: from its FID */
	uint32_t nlink;
};

/* Flags of arca_vol_open. */
#define ARCA_VOL_RDONLY 1u /* no write of any kind; shared lock */

/* Makes an empty volume in dir (created 0700 if absent; an existing one must
 * be empty) and returns its first tag. */
int arca_vol_create(const char *dir, const uint8_t key[static ARCA_VOL_KEY_LEN], enum arca_vol_mode mode,
		    uint8_t tag[static ARCA_VOL_TAG_LEN], struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Opens dir. expected_tag (may be NULL, for a trusted machine without CAS)
 * chooses the commit, as docs/VOLUMES.md "Commit" says; a volume without a
 * commit of that tag fails with ARCA_ESTALE and a message that says
 * rollback and gives both tags. A wrong key is ARCA_EDENIED ("the key does
 * not open this volume"); damage is ARCA_ECRYPTO or ARCA_EPARSE naming the
 * file; a writer already holding it is ARCA_EBUSY. */
int arca_vol_open(const char *dir, const uint8_t key[static ARCA_VOL_KEY_LEN], const uint8_t *expected_tag,
		  unsigned flags, struct arca_vol **out, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* Closes without committing (a writer commits first); open vfiles of it
 * must be closed before. NULL is ignored. */
void arca_vol_close(struct arca_vol *v);

enum arca_vol_mode arca_vol_mode(const struct arca_vol *v);
int arca_vol_readonly(const struct arca_vol *v);
const char *arca_vol_dir(const struct arca_vol *v);
/* The tag of the last commit (the one CAS must hold). */
void arca_vol_tag(const struct arca_vol *v, uint8_t tag[static ARCA_VOL_TAG_LEN]);
void arca_vol_tag_hex(const uint8_t tag[static ARCA_VOL_TAG_LEN], char out[static ARCA_VOL_TAG_HEX]);
int arca_vol_tag_parse(const char *hex, uint8_t tag[static ARCA_VOL_TAG_LEN]) ARCA_MUST_CHECK;

/* Called by arca_vol_commit between writing manifest.new and making it
 * current (step 3); nonzero fails the commit. Nonzero may mean that the
 * tag was recorded but the answer lost: the library then treats the
 * outcome as unknown (arca_vol_commit below), so the hook must not
 * assume a failure left CAS unchanged, and CAS must accept the same swap
 * again. It runs with the volume locked, so it must not call into the
 * volume; the same holds for the log hook and for arca_vol_verify's
 * callbacks. */
typedef int (*arca_vol_publish_fn)(const uint8_t old_tag[ARCA_VOL_TAG_LEN], const uint8_t new_tag[ARCA_VOL_TAG_LEN],
				   void *arg);
void arca_vol_set_publish(struct arca_vol *v, arca_vol_publish_fn fn, void *arg);

/* Receives one line (no newline) for every verification failure a read
 * meets: "volume DIR: PATH: block N: WHAT". Default: none. */
typedef void (*arca_vol_log_fn)(const char *line, void *arg);
void arca_vol_set_log(struct arca_vol *v, arca_vol_log_fn fn, void *arg);

/* Bytes of decrypted blocks kept (default 8 MiB); at least 64 blocks. */
void arca_vol_set_cache(struct arca_vol *v, size_t bytes);

/* Call in the child of fork(), before anything else touches v (it may be
 * called from a pthread_atfork child handler: it takes no lock, allocates
 * nothing, makes no system call and reinitialises the volume lock, which
 * another thread of the parent may have held at the fork). From then on
 * this process never writes, renames or removes a file of the volume:
 * writes, truncates, namespace changes and commits fail with ARCA_EROFS
 * (and arca_vol_readonly is 1); blocks written but not yet sealed by the
 * parent stay in the cache (never evicted, so the child's reads of them
 * stay correct; when the cache is full of them, other blocks are read
 * around the cache); no file is removed; the volume's lock is neither
 * released nor taken (arca_vol_close in the child closes its descriptors
 * only, the parent's flock stays). The child sees the volume as it was at
 * the fork; a record the parent rewrites later reads as ARCA_ECRYPTO in
 * the child. If another thread was inside a call on v at the fork, the
 * child's copy of that call's state is half done: keep the child's use of
 * v to what it needs (or make sure, in the prepare handler, that no other
 * thread is inside the library). The parent is unaffected. NULL is
 * ignored. */
void arca_vol_fork_child(struct arca_vol *v);

/* Makes every write so far durable and current (docs/VOLUMES.md "Commit").
 * Nothing changed since the last commit: returns 0 at once. A commit that
 * fails after manifest.new was written leaves it unsettled: when the
 * publish hook failed (CAS may or may not hold the new tag), or when it
 * succeeded but manifest.new could not be renamed (arca_vol_tag then
 * already gives the new tag), the error is ARCA_EIO and, until a later
 * commit settles it (offering the same tag to the hook again, or retrying
 * the rename, before anything new), every change (write, truncate, create,
 * namespace change, chmod, utime) fails with ARCA_EIO; reads work. */
int arca_vol_commit(struct arca_vol *v, struct arca_errbuf *e) ARCA_MUST_CHECK;

/* ---- namespace ---- */
int arca_vol_stat(struct arca_vol *v, const char *path, struct arca_vol_stat *st) ARCA_MUST_CHECK;
int arca_vol_mkdir(struct arca_vol *v, const char *path, uint32_t mode) ARCA_MUST_CHECK;
int arca_vol_rmdir(struct arca_vol *v, const char *path) ARCA_MUST_CHECK;
/* An open file that is unlinked stays readable and writable through its
 * vfiles until the last is closed, as on a POSIX file system. */
int arca_vol_unlink(struct arca_vol *v, const char *path) ARCA_MUST_CHECK;
/* rename(2) semantics: replaces a file, or an empty directory with a
 * directory; a directory moves with everything under it. */
int arca_vol_rename(struct arca_vol *v, const char *from, const char *to) ARCA_MUST_CHECK;
int arca_vol_chmod(struct arca_vol *v, const char *path, uint32_t mode) ARCA_MUST_CHECK;
int arca_vol_utime(struct arca_vol *v, const char *path, int64_t mtime_ns) ARCA_MUST_CHECK;
/* Calls fn for each entry directly under dir (name without the dir part),
 * in name order; a nonzero return of fn stops and is returned. */
typedef int (*arca_vol_list_fn)(const char *name, const struct arca_vol_stat *st, void *arg);
int arca_vol_list(struct arca_vol *v, const char *dir, arca_vol_list_fn fn, void *arg) ARCA_MUST_CHECK;
/* Every entry of the volume, parents before children (for arca fs). */
int arca_vol_walk(struct arca_vol *v, arca_vol_list_fn fn, void *arg) ARCA_MUST_CHECK;

/* ---- files ---- */
/* oflags: O_RDONLY, O_WRONLY or O_RDWR, with O_CREAT, O_EXCL, O_TRUNC
 * (others are the caller's: O_APPEND and the position live in the
 * shield's descriptor). */
int arca_vfile_open(struct arca_vol *v, const char *path, int oflags, uint32_t mode, struct arca_vfile **out)
	ARCA_MUST_CHECK;
/* Return bytes (short only at end of file) or an ARCA_E* code. A block
 * that fails verification is ARCA_ECRYPTO and one log line. */
ssize_t arca_vfile_pread(struct arca_vfile *f, void *buf, size_t n, uint64_t off) ARCA_MUST_CHECK;
ssize_t arca_vfile_pwrite(struct arca_vfile *f, const void *buf, size_t n, uint64_t off) ARCA_MUST_CHECK;
int arca_vfile_truncate(struct arca_vfile *f, uint64_t size) ARCA_MUST_CHECK;
int arca_vfile_stat(struct arca_vfile *f, struct arca_vol_stat *st) ARCA_MUST_CHECK;
struct arca_vol *arca_vfile_vol(struct arca_vfile *f);
void arca_vfile_close(struct arca_vfile *f);

/* ---- checking (arca fs verify) ---- */
/* Reads and checks every block of every file, every leaf table and the
 * manifest; calls problem once per fault found ("PATH: block N: WHAT", or
 * about the volume as a whole with path ""); progress (may be NULL) gets
 * bytes done and total. Returns the number of problems (>= 0) or an
 * ARCA_E* code when the check could not run. */
typedef void (*arca_vol_problem_fn)(const char *path, const char *what, void *arg);
typedef void (*arca_vol_progress_fn)(uint64_t done, uint64_t total, void *arg);
int arca_vol_verify(struct arca_vol *v, arca_vol_problem_fn problem, arca_vol_progress_fn progress, void *arg);

/* ---- parsers, exposed for the fuzz target and the tests ---- */
/* Checks a decrypted manifest plaintext completely (docs/VOLUMES.md
 * "Manifest"); returns the number of entries or ARCA_EPARSE with e. */
int arca_vol_manifest_check(const uint8_t *pt, size_t len, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Checks a leaf table file's bytes: header, count; returns the count. */
int64_t arca_vol_leaves_check(const uint8_t *d, size_t len, struct arca_errbuf *e) ARCA_MUST_CHECK;
/* Checks a header file's bytes (arca-volume.json). */
int arca_vol_header_check(const char *d, size_t len, struct arca_errbuf *e) ARCA_MUST_CHECK;

#endif
