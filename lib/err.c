/* err.c: names for arca's error codes and the one way to fill an errbuf. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "arca/err.h"

const char *arca_strerror(int err)
{
	switch (err) {
	case ARCA_OK: return "success";
	case ARCA_EINVAL: return "invalid argument or malformed input";
	case ARCA_ENOMEM: return "out of memory or size limit reached";
	case ARCA_EIO: return "input/output error";
	case ARCA_ECRYPTO: return "cryptographic check failed";
	case ARCA_EPARSE: return "input could not be parsed";
	case ARCA_ETOOBIG: return "input too large";
	case ARCA_ENOTFOUND: return "not found";
	case ARCA_EDENIED: return "denied by policy";
	case ARCA_EEXIST: return "already exists";
	case ARCA_ESTALE: return "stale: does not match the current state";
	case ARCA_EUNSUPPORTED: return "not supported";
	case ARCA_ENET: return "connection or protocol failure";
	case ARCA_ETIMEOUT: return "timed out";
	case ARCA_ENOTDIR: return "not a directory";
	case ARCA_EISDIR: return "is a directory";
	case ARCA_ENOTEMPTY: return "directory not empty";
	case ARCA_EROFS: return "read-only";
	case ARCA_EBUSY: return "in use by another process";
	default: return "unknown error";
	}
}

int arca_err_errno(int code)
{
	switch (code) {
	case ARCA_OK: return 0;
	case ARCA_EINVAL: return EINVAL;
	case ARCA_ENOMEM: return ENOMEM;
	case ARCA_ENOTFOUND: return ENOENT;
	case ARCA_EDENIED: return EACCES;
	case ARCA_EEXIST: return EEXIST;
	case ARCA_ESTALE: return ESTALE;
	case ARCA_ETOOBIG: return EFBIG;
	case ARCA_EUNSUPPORTED: return EOPNOTSUPP;
	case ARCA_ETIMEOUT: return ETIMEDOUT;
	case ARCA_ENOTDIR: return ENOTDIR;
	case ARCA_EISDIR: return EISDIR;
	case ARCA_ENOTEMPTY: return ENOTEMPTY;
	case ARCA_EROFS: return EROFS;
	case ARCA_EBUSY: return EBUSY;
	default: return EIO; /* ARCA_EIO, ARCA_ECRYPTO, ARCA_EPARSE, ARCA_ENET */
	}
}

int arca_errf(struct arca_errbuf *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		/* vsnprintf truncates; a cut message beats an overflow. */
		int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		if (n < 0)
			e->msg[0] = '\0';
	}
	return code;
}
