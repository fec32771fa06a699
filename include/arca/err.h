/* err.h: the one error idiom of arca.
 *
 * Functions that can fail return int: 0 on success or a negative ARCA_E*
 * code. Callers propagate with GUARD/ENSURE. A human-readable reason goes
 * into a caller-owned struct arca_errbuf, never into a global. */
#ifndef ARCA_ERR_H
#define ARCA_ERR_H

#include <stddef.h>

#define ARCA_MUST_CHECK __attribute__((warn_unused_result))
#define ARCA_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum arca_err {
	ARCA_OK = 0,
	ARCA_EINVAL = -1,      /* bad argument or malformed input */
	ARCA_ENOMEM = -2,      /* allocation failed or a maximum size was hit */
	ARCA_EIO = -3,         /* read/write/system call failed */
	ARCA_ECRYPTO = -4,     /* signature, MAC or tag did not verify; crypto failure */
	ARCA_EPARSE = -5,      /* input could not be fully parsed */
	ARCA_ETOOBIG = -6,     /* input larger than allowed */
	ARCA_ENOTFOUND = -7,   /* no such object */
	ARCA_EDENIED = -8,     /* refused by policy */
	ARCA_EEXIST = -9,      /* already exists */
	ARCA_ESTALE = -10,     /* predecessor/nonce/tag does not match current state */
	ARCA_EUNSUPPORTED = -11,
	ARCA_ENET = -12,       /* connection or protocol failure */
	ARCA_ETIMEOUT = -13,
	ARCA_ENOTDIR = -14,    /* a path component is not a directory */
	ARCA_EISDIR = -15,     /* a directory where a file is needed */
	ARCA_ENOTEMPTY = -16,  /* directory not empty */
	ARCA_EROFS = -17,      /* read-only (a code volume, a read-only open) */
	ARCA_EBUSY = -18,      /* in use by another process */
};

const char *arca_strerror(int err);
/* The errno a system call answers for code (EIO for unknown codes). */
int arca_err_errno(int code);

/* A caller-owned message buffer for errors that reach a user. */
struct arca_errbuf {
	char msg[512];
};

/* Formats into e (if e is non-NULL) and returns code, so that
 * `return arca_errf(e, ARCA_EINVAL, "…", …);` reads naturally. */
int arca_errf(struct arca_errbuf *e, int code, const char *fmt, ...) ARCA_PRINTF(3, 4);

#define GUARD(expr)                                     \
	do {                                            \
		int guard_rc_ = (expr);                 \
		if (guard_rc_ < 0)                      \
			return guard_rc_;               \
	} while (0)

#define ENSURE(cond, code)                              \
	do {                                            \
		if (!(cond))                            \
			return (code);                  \
	} while (0)

/* Requires `int rc;` and a cleanup label in scope. */
#define GUARD_GOTO(expr, label)                         \
	do {                                            \
		rc = (expr);                            \
		if (rc < 0)                             \
			goto label;                     \
	} while (0)

#define ENSURE_GOTO(cond, code, label)                  \
	do {                                            \
		if (!(cond)) {                          \
			rc = (code);                    \
			goto label;                     \
		}                                       \
	} while (0)

#endif
