/* path.c: paths made absolute and folded, as the file shield matches them.
 *
 * Matching is lexical: the path is made absolute (against the working
 * directory or the directory of dirfd) and "." and ".." are folded without
 * asking the file system, because the injected file does not exist there.
 * Kept apart from the interposers so that the compiler cannot assume the
 * nonnull promises libc's prototypes make about their arguments: a NULL
 * path must reach libc (EFAULT), not crash here. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shield.h"

int shield_path_fold(char *out, size_t cap, size_t *len, const char *s)
{
	while (*s != 0) {
		while (*s == '/')
			s++;
		const char *end = strchrnul(s, '/');
		size_t n = (size_t)(end - s);
		if (n == 0 || (n == 1 && s[0] == '.')) {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			while (*len > 0 && out[*len - 1] != '/')
				(*len)--;
			if (*len > 0)
				(*len)--; /* the '/' before the dropped component */
		} else {
			if (*len + 1 + n + 1 > cap)
				return ARCA_ETOOBIG;
			out[(*len)++] = '/';
			memcpy(out + *len, s, n);
			*len += n;
		}
		s = end;
	}
	out[*len] = 0;
	return 0;
}

int shield_path_normalize(int dirfd, const char *path, char *out, size_t cap)
{
	char base[PATH_MAX];
	size_t len = 0;

	if (path == NULL || path[0] == 0 || cap < 2)
		return ARCA_EINVAL;
	if (path[0] != '/') {
		if (dirfd == AT_FDCWD) {
			if (getcwd(base, sizeof base) == NULL)
				return ARCA_EIO;
		} else {
			char link[48];
			snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
			ssize_t n = readlink(link, base, sizeof base - 1);
			if (n <= 0)
				return ARCA_EIO;
			base[n] = 0;
		}
		if (base[0] != '/')
			return ARCA_EIO; /* "(unreachable)" and the like */
		GUARD(shield_path_fold(out, cap, &len, base));
	}
	GUARD(shield_path_fold(out, cap, &len, path));
	if (len == 0)
		out[len++] = '/';
	out[len] = 0;
	return 0;
}
