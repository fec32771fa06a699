/* volfs_mount.c: the protected volumes of a service, mounted before main,
 * and their tags kept with CAS (docs/VOLUMES.md "Freshness").
 *
 * At start, after attestation, for each volume of the configuration:
 *   - CAS holds a tag: the volume is opened with it. A volume whose tag is
 *     another (restored from an older copy, or changed outside arca) is a
 *     rollback: the shield tells CAS the tag it found (previous = tag =
 *     found, which CAS audits as volume_rollback) and refuses to start.
 *   - CAS holds none (a new data volume): the directory must be absent or
 *     empty; the volume is created there and its first tag is given to CAS
 *     before main runs. A directory that already holds a volume is refused:
 *     CAS cannot vouch for it.
 * Every commit (fsync) of a writable volume then reports its new tag to CAS
 * (previous = the old one: a compare and swap) over a fresh TLS connection
 * pinned to CAS before the new manifest becomes current; when CAS does not
 * record it, the commit fails and fsync returns EIO. At exit the process
 * that mounted the volumes flushes the shield's streams and commits each
 * writable volume once more. The volume handles live as long as the
 * process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "shield.h"
#include "arca/attest_client.h"
#include "arca/crypto.h"
#include "arca/http.h"
#include "arca/volume.h"

/* Tells CAS that the volume's tag went from prev (NULL: none yet) to tag. */
static int post_tag(const char *name, const uint8_t token[32], const uint8_t *prev, const uint8_t tag[32],
		    struct arca_errbuf *e)
{
	struct arca_msg_voltag msg;
	struct arca_http *h = NULL;
	memset(&msg, 0, sizeof msg);
	memcpy(msg.token, token, sizeof msg.token);
	msg.has_previous = prev != NULL;
	if (prev != NULL)
		memcpy(msg.previous, prev, sizeof msg.previous);
	memcpy(msg.tag, tag, sizeof msg.tag);
	int rc = arca_http_connect(shield.volfs.cas, shield.volfs.pin, NULL, &h, e);
	if (rc == 0)
		rc = arca_cas_volume_tag(h, shield.volfs.session, name, &msg, e);
	arca_http_close(h);
	arca_wipe(&msg, sizeof msg);
	return rc;
}

static const char *why_not_recorded(int rc)
{
	switch (rc) {
	case ARCA_ESTALE:
		return "CAS holds another tag for this volume (another copy of it was committed meanwhile?)";
	case ARCA_EDENIED:
		return "CAS refused this instance's token";
	case ARCA_ENET:
		return "CAS is unreachable";
	default:
		return "CAS did not answer as expected";
	}
}

/* The library's hook between writing manifest.new and making it current. */
static int publish(const uint8_t old_tag[ARCA_VOL_TAG_LEN], const uint8_t new_tag[ARCA_VOL_TAG_LEN], void *arg)
{
	struct volfs_mount *m = arg;
	struct arca_errbuf e = {{0}};
	char hex[ARCA_VOL_TAG_HEX];
	if (!shield_volfs_writable() || getpid() != shield.volfs.owner)
		return ARCA_EDENIED; /* a child of fork never commits */
	int rc = post_tag(m->name, m->token, old_tag, new_tag, &e);
	if (rc < 0) {
		arca_vol_tag_hex(new_tag, hex);
		shield_volfs_log("volume %s at %s: CAS did not record the new tag %.16s…, so the commit fails: "
				 "%s (%s)",
				 m->name, m->path, hex, why_not_recorded(rc), e.msg[0] ? e.msg : arca_strerror(rc));
	}
	return rc;
}

static int count_entry(const char *name, const struct arca_vol_stat *st, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void log_line(const char *line, void *arg)
{
	shield_volfs_log("%s", line);
}

static void at_exit(void)
{
	struct arca_errbuf e;
	if (!shield_volfs_writable() || getpid() != shield.volfs.owner)
		return;
	shield_volfs_flush_streams();
	size_t n = __atomic_load_n(&shield.volfs.nmounts, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < n; i++) {
		struct volfs_mount *m = &shield.volfs.mounts[i];
		if (m->readonly)
			continue;
		memset(&e, 0, sizeof e);
		shield_volfs_enter();
		int rc = arca_vol_commit(m->vol, &e);
		shield_volfs_leave();
		if (rc < 0)
			shield_volfs_log("volume %s at %s: the final commit at exit failed, writes since the last "
					 "fsync are lost: %s",
					 m->name, m->path, e.msg[0] ? e.msg : arca_strerror(rc));
	}
}

/* What path holds: 0 nothing (absent or an empty directory), 1 a volume
 * (a manifest), 2 what an interrupted arca_vol_create leaves before its
 * manifest (some of arca-volume.json, lock and an empty d/), -1 anything
 * else (why in *why). */
static int dir_state(const char *path, const char **why)
{
	struct stat st;
	char sub[PATH_MAX + 32];
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		*why = strerror(errno);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = "it is not a directory";
		return -1;
	}
	DIR *d = opendir(path);
	if (d == NULL) {
		*why = strerror(errno);
		return -1;
	}
	struct dirent *de;
	int any = 0, manifest = 0, other = 0, dsub = 0;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		any = 1;
		if (strcmp(n, "manifest") == 0 || strcmp(n, "manifest.new") == 0)
			manifest = 1;
		else if (strcmp(n, "d") == 0)
			dsub = 1;
		else if (strcmp(n, "arca-volume.json") != 0 && strcmp(n, "lock") != 0)
			other = 1;
	}
	closedir(d);
	if (!any)
		return 0;
	if (manifest)
		return 1;
	int dempty = 1;
	if (dsub) {
		snprintf(sub, sizeof sub, "%s/d", path);
		DIR *dd = opendir(sub);
		dempty = dd != NULL;
		while (dd != NULL && (de = readdir(dd)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				dempty = 0;
		if (dd != NULL)
			closedir(dd);
	}
	if (!other && dempty)
		return 2;
	*why = "it is not empty and holds no volume (a new volume needs an absent or empty directory)";
	return -1;
}

/* Removes what arca_vol_create made in path (docs/VOLUMES.md "Layout"),
 * and path itself when it was made for it. */
static void remove_created(const char *path, int made_dir)
{
	static const char *const files[] = {"arca-volume.json", "manifest", "manifest.new", "lock"};
	char p[PATH_MAX + 32], f[2 * PATH_MAX];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", path, files[i]);
		(void)unlink(p);
	}
	snprintf(p, sizeof p, "%s/d", path);
	DIR *d = opendir(p);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(f, sizeof f, "%s/%s", p, de->d_name);
			(void)unlink(f);
		}
		closedir(d);
	}
	(void)rmdir(p);
	if (made_dir)
		(void)rmdir(path);
}

/* A volume in path that no tag of CAS's vouches for may be taken as the
 * new one only when it is what a start killed between creating it and
 * reporting its first tag leaves: it opens with this session's key (which
 * only CAS and attested programs have) and holds nothing. Its tag becomes
 * the first. NULL when it is not such a volume. */
static struct arca_vol *adopt_empty(const struct arca_config_volume *cv, const char *path)
{
	struct arca_errbuf e = {{0}};
	struct arca_vol *v = NULL;
	uint8_t tag[ARCA_VOL_TAG_LEN];
	struct arca_vol_stat root;
	int n = 0;
	if (arca_vol_open(path, cv->key, NULL, 0, &v, &e) < 0)
		return NULL;
	if (arca_vol_mode(v) != (enum arca_vol_mode)cv->mode || arca_vol_stat(v, "", &root) < 0 ||
	    arca_vol_list(v, "", count_entry, &n) < 0 || n != 0) {
		arca_vol_close(v);
		return NULL;
	}
	arca_vol_tag(v, tag);
	int rc = post_tag(cv->name, cv->token, NULL, tag, &e);
	if (rc < 0) {
		arca_vol_close(v);
		shield_refuse("volume %s at %s: CAS did not record the volume's first tag: %s (%s); start the program "
			      "again",
			      cv->name, path, why_not_recorded(rc), e.msg[0] ? e.msg : arca_strerror(rc));
	}
	return v;
}

static struct arca_vol *create_new(const struct arca_config_volume *cv, const char *path)
{
	struct arca_errbuf e = {{0}};
	struct arca_vol *v = NULL;
	uint8_t tag[ARCA_VOL_TAG_LEN];
	const char *why = NULL;

	if (cv->readonly)
		shield_refuse("volume %s at %s: a code volume needs its tag pinned in the session (the tag `arca fs "
			      "seal` printed)",
			      cv->name, path);
	int st = dir_state(path, &why);
	if (st < 0)
		shield_refuse("volume %s at %s: CAS holds no tag for it yet, so a new volume would be made there, but "
			      "%s",
			      cv->name, path, why);
	if (st == 2) /* an interrupted creation: nothing in it yet */
		remove_created(path, 0);
	if (st == 1) {
		v = adopt_empty(cv, path);
		if (v != NULL)
			return v;
		shield_refuse("volume %s at %s: the directory already holds a volume, but CAS holds no tag for it (a "
			      "volume of another session, or CAS's state was reset): CAS cannot vouch that it is "
			      "current; move it away to start a new volume",
			      cv->name, path);
	}
	struct stat sb;
	int made_dir = stat(path, &sb) != 0;
	int rc = arca_vol_create(path, cv->key, (enum arca_vol_mode)cv->mode, tag, &e);
	if (rc < 0)
		shield_refuse("volume %s at %s: cannot create it: %s", cv->name, path,
			      e.msg[0] ? e.msg : arca_strerror(rc));
	rc = post_tag(cv->name, cv->token, NULL, tag, &e);
	if (rc < 0) {
		remove_created(path, made_dir);
		shield_refuse("volume %s at %s: CAS did not record the new volume's first tag: %s (%s); the new "
			      "volume was removed again, start the program again",
			      cv->name, path, why_not_recorded(rc), e.msg[0] ? e.msg : arca_strerror(rc));
	}
	rc = arca_vol_open(path, cv->key, tag, 0, &v, &e);
	if (rc < 0)
		shield_refuse("volume %s at %s: cannot open the volume just created: %s", cv->name, path,
			      e.msg[0] ? e.msg : arca_strerror(rc));
	return v;
}

static struct arca_vol *open_existing(const struct arca_config_volume *cv, const char *path)
{
	struct arca_errbuf e = {{0}}, e2 = {{0}};
	struct arca_vol *v = NULL;
	char want[ARCA_VOL_TAG_HEX], got[ARCA_VOL_TAG_HEX];
	uint8_t found[ARCA_VOL_TAG_LEN];
	unsigned flags = cv->readonly ? ARCA_VOL_RDONLY : 0;
	const char *why = NULL;

	arca_vol_tag_hex(cv->tag, want);
	int rc = arca_vol_open(path, cv->key, cv->tag, flags, &v, &e);
	if (rc == 0)
		return v;
	const char *msg = e.msg[0] ? e.msg : arca_strerror(rc);
	if (rc == ARCA_EDENIED)
		shield_refuse("volume %s at %s: the session's key does not open it (%s)", cv->name, path, msg);
	if (rc == ARCA_EBUSY)
		shield_refuse("volume %s at %s is in use by another process (one process at a time may write a "
			      "volume): %s",
			      cv->name, path, msg);
	if (rc != ARCA_ESTALE) {
		int st = dir_state(path, &why);
		if (st == 0 || st == 2)
			shield_refuse("volume %s at %s: %s %s for it, but the directory holds no volume; restore the "
				      "volume there",
				      cv->name, path, cv->readonly ? "the session pins tag" : "CAS holds tag", want);
		shield_refuse("volume %s at %s: %s", cv->name, path, msg);
	}

	/* Another tag than CAS's: find which, tell CAS, refuse. */
	struct arca_vol *ro = NULL;
	rc = arca_vol_open(path, cv->key, NULL, ARCA_VOL_RDONLY, &ro, &e2);
	if (rc < 0)
		shield_refuse("volume %s at %s: rollback: it is not the volume of tag %s that %s, and it cannot be "
			      "opened to say which it is: %s",
			      cv->name, path, want, cv->readonly ? "the session pins" : "CAS holds",
			      e2.msg[0] ? e2.msg : arca_strerror(rc));
	arca_vol_tag(ro, found);
	arca_vol_close(ro);
	arca_vol_tag_hex(found, got);
	memset(&e2, 0, sizeof e2);
	int told = post_tag(cv->name, cv->token, found, found, &e2);
	if (cv->readonly)
		shield_refuse("volume %s at %s: its tag %s is not the tag the session pins (%s): the code was changed "
			      "or replaced; seal it again with `arca fs seal` and pin the new tag in the session",
			      cv->name, path, got, want);
	if (told == 0) {
		/* CAS agreed that it holds the tag found (its answer to the
		 * attestation was older than another instance's commit). */
		rc = arca_vol_open(path, cv->key, found, flags, &v, &e);
		if (rc == 0)
			return v;
	}
	shield_refuse("volume %s at %s: rollback: its tag %s is not the tag CAS holds (%s): an older copy, or "
		      "changed outside arca; restore the latest copy (%s)",
		      cv->name, path, got, want,
		      told == ARCA_ESTALE ? "CAS has recorded the rollback" : "CAS could not be told of it");
}

/* A volume's path must be its real path: a symbolic link in it would let
 * root move the volume's directory while the program runs, and the
 * program's paths would follow the link while the shield's lexical view
 * of them does not. Checked before anything is created there. */
static void refuse_links(const struct arca_config_volume *cv, const char *path)
{
	char prefix[PATH_MAX], real[PATH_MAX];
	struct stat st;
	size_t len = strlen(path);
	for (size_t i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = 0;
		if (lstat(prefix, &st) != 0) {
			if (errno == ENOENT)
				return; /* nothing further exists: a new volume's directory */
			shield_refuse("volume %s at %s: cannot check %s: %s", cv->name, path, prefix, strerror(errno));
		}
		if (S_ISLNK(st.st_mode)) {
			if (realpath(prefix, real) == NULL)
				shield_refuse("volume %s at %s: %s is a symbolic link (leading nowhere); a volume's "
					      "path may hold none",
					      cv->name, path, prefix);
			shield_refuse("volume %s at %s: %s is a symbolic link; a volume's path may hold none, so "
				      "configure the volume at its real path %s%s",
				      cv->name, path, prefix, real, path + i);
		}
	}
}

void shield_volumes_mount(const struct arca_config *cfg, const struct shield_env *env)
{
	struct arca_errbuf e = {{0}};
	char path[PATH_MAX];

	if (cfg->nvolumes == 0)
		return;
	snprintf(shield.volfs.cas, sizeof shield.volfs.cas, "%s", env->cas);
	snprintf(shield.volfs.pin, sizeof shield.volfs.pin, "%s", env->pin);
	snprintf(shield.volfs.session, sizeof shield.volfs.session, "%s", env->session);
	for (size_t i = 0; i < cfg->nvolumes; i++) {
		const struct arca_config_volume *cv = &cfg->volumes[i];
		if (cv->path[0] != '/' || shield_path_normalize(AT_FDCWD, cv->path, path, sizeof path) < 0 ||
		    strcmp(path, "/") == 0)
			shield_refuse("volume %s: the configuration gives it the path '%.200s', which is not an "
				      "absolute directory other than /",
				      cv->name, cv->path);
		if (cv->mode != ARCA_VOL_ENCRYPTED && cv->mode != ARCA_VOL_AUTHENTICATED)
			shield_refuse("volume %s: unknown mode %d in the configuration", cv->name, cv->mode);
		shield_volfs_enter();
		refuse_links(cv, path);
		struct arca_vol *v = cv->has_tag ? open_existing(cv, path) : create_new(cv, path);
		shield_volfs_leave();
		if (arca_vol_mode(v) != (enum arca_vol_mode)cv->mode) {
			const char *is = arca_vol_mode(v) == ARCA_VOL_ENCRYPTED ? "encrypted" : "authenticated";
			shield_refuse("volume %s at %s is %s, but the session says %s: a volume keeps the mode it was "
				      "made with; make the session say %s",
				      cv->name, path, is, cv->mode == ARCA_VOL_ENCRYPTED ? "encrypted" : "authenticated",
				      is);
		}
		arca_vol_set_log(v, log_line, NULL);
		struct volfs_mount *m = shield_volfs_add(path, cv->name, v, &e);
		if (m == NULL)
			shield_refuse("%s", e.msg);
		memcpy(m->token, cv->token, sizeof m->token);
		if (!m->readonly)
			arca_vol_set_publish(v, publish, m);
	}
	if (atexit(at_exit) != 0)
		shield_refuse("cannot arrange the volumes' final commit at exit (atexit failed)");
}
