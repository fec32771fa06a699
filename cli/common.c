/* common.c: what every `arca` subcommand shares (cli.h): how failures reach
 * the user, where the CLI keeps its state, and the pinned CAS keys.
 *
 * The pin file is the only thing standing between an owner and a CAS
 * impostor, so it is parsed strictly and a malformed file is refused with
 * its file:line instead of being half-read or silently repaired.
 *
 * Every helper here that can fail prints its own one-line reason (callers
 * then just return 1), except cli_pin_get's ARCA_ENOTFOUND, which each
 * caller words for its own situation. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "arca/buf.h"
#include "arca/crypto.h"
#include "arca/exec_check.h"
#include "arca/http.h"

#define PIN_FILE "cas-pins"
#define PIN_FILE_MAX ((size_t)1 << 20)

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("arca: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_usage(const char *text)
{
	size_t n = strlen(text);

	fflush(stdout);
	fprintf(stderr, "arca: usage: %s%s", text, (n > 0 && text[n - 1] == '\n') ? "" : "\n");
	return 2;
}

int cli_home(char *out, size_t cap)
{
	const char *env = getenv("ARCA_HOME");
	struct arca_errbuf e = {{0}};
	int n;

	if (env != NULL && env[0] != '\0') {
		n = snprintf(out, cap, "%s", env);
	} else {
		const char *home = getenv("HOME");
		if (home == NULL || home[0] == '\0') {
			struct passwd *pw = getpwuid(getuid());
			home = pw != NULL ? pw->pw_dir : NULL;
		}
		if (home == NULL || home[0] == '\0') {
			cli_fail("cannot find a home directory; set ARCA_HOME to a directory for arca's keys");
			return ARCA_ENOTFOUND;
		}
		n = snprintf(out, cap, "%s/.config/arca", home);
	}
	if (n < 0 || (size_t)n >= cap) {
		cli_fail("the path of arca's home directory is too long; set ARCA_HOME to a shorter one");
		return ARCA_ETOOBIG;
	}
	/* 0700: the directory holds the owner's private key. */
	if (arca_mkdirs(out, 0700, &e) < 0) {
		cli_fail("cannot create %s: %s", out, e.msg);
		return ARCA_EIO;
	}
	return 0;
}

const char *cli_cas_addr(const char *flag)
{
	const char *env;

	if (flag != NULL && flag[0] != '\0')
		return flag;
	env = getenv("ARCA_CAS");
	if (env != NULL && env[0] != '\0')
		return env;
	return ARCA_DEFAULT_CAS;
}

const char *cli_las_path(const char *flag)
{
	const char *env;

	if (flag != NULL && flag[0] != '\0')
		return flag;
	env = getenv("ARCA_LAS");
	if (env != NULL && env[0] != '\0')
		return env;
	return ARCA_DEFAULT_LAS;
}

/* ---- pins ---------------------------------------------------------------- */

/* One parsed pin line; addr and fpr point into the file buffer. */
struct pin_line {
	const char *line; /* the whole line, without its newline */
	size_t len;
	const char *addr;
	size_t addrlen;
	const char *fpr;
	size_t fprlen;
	int is_pin;       /* 0 for blank and comment lines, which are kept */
};

static int addr_valid(const char *addr, size_t len)
{
	char tmp[300], host[256], port[16];

	if (len == 0 || len >= sizeof tmp)
		return 0;
	memcpy(tmp, addr, len);
	tmp[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (tmp[i] <= ' ' || tmp[i] > '~')
			return 0;
	return arca_hostport_split(tmp, host, sizeof host, port, sizeof port) == 0;
}

static int fpr_valid_n(const char *s, size_t len)
{
	char tmp[ARCA_FPR_LEN];

	if (len + 1 != ARCA_FPR_LEN)
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return arca_fpr_valid(tmp);
}

/* Splits one line "HOST:PORT SHA256:…" (exactly one space, nothing else);
 * blank lines and lines starting with '#' are kept as they are. */
static int pin_parse_line(const char *p, size_t len, struct pin_line *pl)
{
	const char *sp;

	memset(pl, 0, sizeof *pl);
	pl->line = p;
	pl->len = len;
	if (len == 0 || p[0] == '#') {
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < ' ' && p[i] != '\t')
				return ARCA_EPARSE;
		return 0;
	}
	sp = memchr(p, ' ', len);
	if (sp == NULL)
		return ARCA_EPARSE;
	pl->addr = p;
	pl->addrlen = (size_t)(sp - p);
	pl->fpr = sp + 1;
	pl->fprlen = len - pl->addrlen - 1;
	if (!addr_valid(pl->addr, pl->addrlen) || !fpr_valid_n(pl->fpr, pl->fprlen))
		return ARCA_EPARSE;
	pl->is_pin = 1;
	return 0;
}

struct pin_file {
	char path[PATH_MAX];
	struct arca_buf text;
	struct pin_line *lines;
	size_t n;
};

static void pin_file_free(struct pin_file *pf)
{
	free(pf->lines);
	pf->lines = NULL;
	arca_buf_free(&pf->text);
}

/* Loads and checks the whole pin file. A missing file is an empty one.
 * Prints its own message on failure. */
static int pin_file_load(struct pin_file *pf)
{
	char home[PATH_MAX];
	struct arca_errbuf e = {{0}};
	size_t off = 0, lineno = 0, cap = 0;
	int rc;

	memset(pf, 0, sizeof *pf);
	arca_buf_init(&pf->text, PIN_FILE_MAX, 0);
	GUARD(cli_home(home, sizeof home));
	if (snprintf(pf->path, sizeof pf->path, "%s/%s", home, PIN_FILE) >= (int)sizeof pf->path) {
		cli_fail("the path of the pin file is too long; set ARCA_HOME to a shorter directory");
		return ARCA_ETOOBIG;
	}
	if (access(pf->path, F_OK) != 0 && errno == ENOENT)
		return 0;
	rc = arca_read_file(pf->path, PIN_FILE_MAX, &pf->text, &e);
	if (rc < 0) {
		cli_fail("cannot read %s: %s", pf->path, e.msg);
		return rc;
	}
	while (off < pf->text.len) {
		const char *p = (const char *)pf->text.p + off;
		const char *nl = memchr(p, '\n', pf->text.len - off);
		size_t len = nl != NULL ? (size_t)(nl - p) : pf->text.len - off;
		struct pin_line pl;

		lineno++;
		if (pin_parse_line(p, len, &pl) < 0) {
			cli_fail("%s:%zu: not a pin line (expected \"HOST:PORT SHA256:<43 base64 characters>\"); "
				 "fix or remove the line, then run `arca cas attest HOST:PORT` again",
				 pf->path, lineno);
			pin_file_free(pf);
			return ARCA_EPARSE;
		}
		for (size_t i = 0; pl.is_pin && i < pf->n; i++) {
			if (pf->lines[i].is_pin && pf->lines[i].addrlen == pl.addrlen &&
			    memcmp(pf->lines[i].addr, pl.addr, pl.addrlen) == 0) {
				cli_fail("%s:%zu: a second pin for %.*s; remove one of them", pf->path, lineno,
					 (int)pl.addrlen, pl.addr);
				pin_file_free(pf);
				return ARCA_EPARSE;
			}
		}
		if (pf->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pin_line *nl2 = realloc(pf->lines, ncap * sizeof *nl2);
			if (nl2 == NULL) {
				pin_file_free(pf);
				cli_fail("out of memory reading %s", pf->path);
				return ARCA_ENOMEM;
			}
			pf->lines = nl2;
			cap = ncap;
		}
		pf->lines[pf->n++] = pl;
		off += len + (nl != NULL ? 1 : 0);
	}
	return 0;
}

static struct pin_line *pin_find(struct pin_file *pf, const char *addr)
{
	size_t alen = strlen(addr);

	for (size_t i = 0; i < pf->n; i++)
		if (pf->lines[i].is_pin && pf->lines[i].addrlen == alen && memcmp(pf->lines[i].addr, addr, alen) == 0)
			return &pf->lines[i];
	return NULL;
}

int cli_pin_get(const char *addr, char fpr[ARCA_FPR_LEN])
{
	struct pin_file pf;
	struct pin_line *pl;
	int rc;

	GUARD(pin_file_load(&pf));
	pl = pin_find(&pf, addr);
	if (pl == NULL) {
		rc = ARCA_ENOTFOUND;
	} else {
		memcpy(fpr, pl->fpr, pl->fprlen);
		fpr[pl->fprlen] = '\0';
		rc = 0;
	}
	pin_file_free(&pf);
	return rc;
}

int cli_pin_set(const char *addr, const char *fpr)
{
	struct pin_file pf;
	struct arca_buf out;
	struct arca_errbuf e = {{0}};
	struct pin_line *old;
	int rc = 0;

	if (!addr_valid(addr, strlen(addr))) {
		cli_fail("%s is not a CAS address; give it as HOST:PORT", addr);
		return ARCA_EINVAL;
	}
	if (!arca_fpr_valid(fpr)) {
		cli_fail("%s is not a key fingerprint (SHA256:<43 base64 characters>)", fpr);
		return ARCA_EINVAL;
	}
	GUARD(pin_file_load(&pf));
	arca_buf_init(&out, PIN_FILE_MAX, 0);
	old = pin_find(&pf, addr);
	/* Other lines, comments included, survive in their order; the new pin
	 * takes the place of the old one or goes last. */
	for (size_t i = 0; i < pf.n && rc == 0; i++) {
		if (&pf.lines[i] == old)
			rc = arca_buf_appendf(&out, "%s %s\n", addr, fpr);
		else
			rc = arca_buf_appendf(&out, "%.*s\n", (int)pf.lines[i].len, pf.lines[i].line);
	}
	if (rc == 0 && old == NULL)
		rc = arca_buf_appendf(&out, "%s %s\n", addr, fpr);
	if (rc < 0) {
		cli_fail("the pin file %s would grow too large", pf.path);
		goto out;
	}
	rc = arca_write_file_atomic(pf.path, out.p, out.len, 0600, &e);
	if (rc < 0)
		cli_fail("cannot write %s: %s", pf.path, e.msg);
out:
	arca_buf_free(&out);
	pin_file_free(&pf);
	return rc;
}

/* ---- shield --------------------------------------------------------------- */

int cli_shield_path(char *out, size_t cap)
{
	const char *env = getenv("ARCA_SHIELD");
	struct arca_errbuf e = {{0}};

	/* An explicit choice that does not pass is an error, never a reason
	 * to fall back to another library. */
	if (env != NULL && env[0] != '\0') {
		if (arca_shield_check(env, out, cap, &e) < 0) {
			cli_fail("ARCA_SHIELD=%s: %s; point it at the shield arca-las uses (--shield) or unset it", env,
				 e.msg);
			return ARCA_ENOTFOUND;
		}
		return 0;
	}
	if (arca_shield_default(out, cap, &e) < 0) {
		cli_fail("%s; set ARCA_SHIELD to the shield arca-las uses (its --shield)", e.msg);
		return ARCA_ENOTFOUND;
	}
	return 0;
}
