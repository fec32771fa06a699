/* err.c: names for arca's error codes and the one way to fill an errbuf. */
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
	default: return "unknown error";
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
