/* main.c: arca-las, the Local Attestation Service (sim mode).
 *
 *   arca-las [--state DIR] [--socket PATH] [--platform sim]
 *
 * A foreground daemon: prints the platform key's fingerprint and a ready
 * line on stdout (CONTRACTS.md), logs on stderr, answers each connection
 * on its own thread. Any local process may ask to be measured, so every
 * client is bounded: a deadline for its request, a cap on connections in
 * total and per uid. SIGTERM/SIGINT stop it cleanly (exit 0). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "las.h"

#define DEFAULT_STATE "/var/lib/arca/las"
#define DEFAULT_SOCKET "/run/arca/las.sock"
#define MAX_CONNS 64
#define MAX_CONNS_PER_UID 8
#define DRAIN_SECONDS 3

struct uid_count {
	uid_t uid;
	int n;
};

/* Connection accounting shared by the accept loop and the threads. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t idle;
	int active;
	struct uid_count per_uid[MAX_CONNS];
} conns = {.mu = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

struct conn_job {
	const struct las_ctx *ctx;
	int fd;
	struct las_peer peer;
};

static int usage(void)
{
	fprintf(stderr, "usage: arca-las [--state DIR] [--socket PATH] [--platform sim]\n"
			"  --state DIR     platform key directory (default " DEFAULT_STATE ")\n"
			"  --socket PATH   Unix socket to listen on (default " DEFAULT_SOCKET ")\n"
			"  --platform sim  evidence kind; only sim in this version\n");
	return 2;
}

static int die(const char *msg)
{
	fprintf(stderr, "arca-las: %s\n", msg);
	return 1;
}

/* Admission: 0 when the connection may proceed, else a reason. */
static const char *admit(uid_t uid)
{
	const char *busy = NULL;
	pthread_mutex_lock(&conns.mu);
	struct uid_count *slot = NULL, *free_slot = NULL;
	for (int i = 0; i < MAX_CONNS; i++) {
		if (conns.per_uid[i].n > 0 && conns.per_uid[i].uid == uid)
			slot = &conns.per_uid[i];
		else if (conns.per_uid[i].n == 0 && free_slot == NULL)
			free_slot = &conns.per_uid[i];
	}
	if (conns.active >= MAX_CONNS)
		busy = "LAS is busy (too many requests in progress); try again";
	else if (slot != NULL && slot->n >= MAX_CONNS_PER_UID)
		busy = "too many requests in progress for this user; try again";
	else {
		if (slot == NULL) {
			slot = free_slot; /* exists: active < MAX_CONNS */
			slot->uid = uid;
		}
		slot->n++;
		conns.active++;
	}
	pthread_mutex_unlock(&conns.mu);
	return busy;
}

static void release(uid_t uid)
{
	pthread_mutex_lock(&conns.mu);
	for (int i = 0; i < MAX_CONNS; i++) {
		if (conns.per_uid[i].n > 0 && conns.per_uid[i].uid == uid) {
			conns.per_uid[i].n--;
			break;
		}
	}
	conns.active--;
	if (conns.active == 0)
		pthread_cond_broadcast(&conns.idle);
	pthread_mutex_unlock(&conns.mu);
}

static void *conn_thread(void *arg)
{
	struct conn_job *job = arg;
	uid_t uid = job->peer.uid;
	las_serve(job->ctx, job->fd, &job->peer);
	las_peer_release(&job->peer);
	close(job->fd);
	free(job);
	release(uid);
	return NULL;
}

static void handle_connection(const struct las_ctx *ctx, int fd, const pthread_attr_t *attr)
{
	struct arca_errbuf e = {{0}};
	struct conn_job *job = calloc(1, sizeof(*job));
	pthread_t t;

	if (job == NULL) {
		las_refuse_now(fd, "LAS is out of memory");
		close(fd);
		return;
	}
	job->ctx = ctx;
	job->fd = fd;
	if (las_peer_cred(fd, &job->peer, &e) < 0) {
		fprintf(stderr, "arca-las: request refused: %s\n", e.msg);
		las_refuse_now(fd, e.msg);
		goto drop;
	}
	const char *busy = admit(job->peer.uid);
	if (busy != NULL) {
		fprintf(stderr, "arca-las: request pid=%d uid=%u measurement=- refused: %s\n", (int)job->peer.pid,
			(unsigned)job->peer.uid, busy);
		las_refuse_now(fd, busy);
		goto drop;
	}
	if (pthread_create(&t, attr, conn_thread, job) != 0) {
		release(job->peer.uid);
		las_refuse_now(fd, "LAS cannot start a thread; try again");
		goto drop;
	}
	return;
drop:
	close(fd);
	free(job);
}

/* Replaces a stale socket file, refuses a live one or anything else. */
static int prepare_socket_path(const char *path, struct sockaddr_un *sa, struct arca_errbuf *e)
{
	struct stat st;
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof sa->sun_path)
		return arca_errf(e, ARCA_EINVAL, "socket path must be 1 to %zu bytes long", sizeof sa->sun_path - 1);
	memcpy(sa->sun_path, path, n);

	char dir[sizeof sa->sun_path];
	memcpy(dir, path, n + 1);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = 0;
		/* Clients of every user must reach the socket. */
		GUARD(arca_mkdirs(dir, 0755, e));
	}
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return arca_errf(e, ARCA_EIO, "cannot stat %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return arca_errf(e, ARCA_EEXIST, "%s exists and is not a socket; remove it or choose another --socket",
				 path);
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return arca_errf(e, ARCA_EIO, "socket: %s", strerror(errno));
	int live = connect(probe, (struct sockaddr *)sa, sizeof(*sa)) == 0;
	int err = errno;
	close(probe);
	if (live)
		return arca_errf(e, ARCA_EEXIST, "another arca-las is already listening on %s", path);
	if (err != ECONNREFUSED && err != ENOENT)
		return arca_errf(e, ARCA_EIO, "cannot tell whether %s is in use: %s", path, strerror(err));
	if (unlink(path) < 0 && errno != ENOENT)
		return arca_errf(e, ARCA_EIO, "cannot remove the stale socket %s: %s", path, strerror(errno));
	return 0;
}

static int listen_on(const char *path, struct stat *bound, struct arca_errbuf *e)
{
	struct sockaddr_un sa;
	GUARD(prepare_socket_path(path, &sa, e));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return arca_errf(e, ARCA_EIO, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int err = errno;
		close(fd);
		return arca_errf(e, ARCA_EIO, "cannot bind %s: %s", path, strerror(err));
	}
	/* 0666: any local process may ask to be measured; LAS decides what
	 * the evidence says, not who may ask. */
	if (chmod(path, 0666) < 0 || lstat(path, bound) < 0 || listen(fd, 128) < 0) {
		int err = errno;
		close(fd);
		unlink(path);
		return arca_errf(e, ARCA_EIO, "cannot set up %s: %s", path, strerror(err));
	}
	char dir[sizeof sa.sun_path];
	struct stat dst;
	memcpy(dir, path, strlen(path) + 1);
	char *slash = strrchr(dir, '/');
	if (slash != NULL)
		*(slash == dir ? slash + 1 : slash) = 0;
	if (stat(slash != NULL ? dir : ".", &dst) == 0 && (dst.st_mode & S_IXOTH) == 0)
		fprintf(stderr, "arca-las: warning: the directory of %s is not accessible to other users; only its "
				"owner and group can ask for evidence\n",
			path);
	return fd;
}

/* Removes the socket only if it is still ours. */
static void remove_socket(const char *path, const struct stat *bound)
{
	struct stat st;
	if (lstat(path, &st) == 0 && st.st_dev == bound->st_dev && st.st_ino == bound->st_ino)
		unlink(path);
}

static int drain(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DRAIN_SECONDS;
	pthread_mutex_lock(&conns.mu);
	while (conns.active > 0)
		if (pthread_cond_timedwait(&conns.idle, &conns.mu, &until) != 0)
			break;
	int left = conns.active;
	pthread_mutex_unlock(&conns.mu);
	return left;
}

int main(int argc, char **argv)
{
	const char *state = DEFAULT_STATE, *sock = DEFAULT_SOCKET, *platform = "sim";
	struct arca_errbuf e = {{0}};
	struct las_key key;
	struct las_caches caches;
	struct stat bound;
	sigset_t sigs;

	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		if (strcmp(argv[i], "--state") == 0)
			dst = &state;
		else if (strcmp(argv[i], "--socket") == 0)
			dst = &sock;
		else if (strcmp(argv[i], "--platform") == 0)
			dst = &platform;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return usage() - 2;
		else
			return usage();
		if (i + 1 >= argc)
			return usage();
		*dst = argv[++i];
	}
	if (strcmp(platform, "sim") != 0) {
		fprintf(stderr, "arca-las: platform \"%s\" refused: hardware evidence (sev-snp, tdx) is not supported "
				"by this version of arca-las; use --platform sim\n",
			platform);
		return 1;
	}

	/* Signals arrive on a signalfd in the accept loop; no thread is
	 * interrupted by them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0)
		return die("cannot block signals");
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0)
		return die("signalfd failed");

	if (las_key_open(state, &key, &e) < 0)
		return die(e.msg);
	fprintf(stderr, "arca-las: platform key %s %s in %s\n", key.fpr, key.created ? "created" : "loaded", state);
	fprintf(stderr, "arca-las: sim mode does not protect against a malicious kernel, kernel module or boot "
			"code: evidence is signed with this host's key and measurements are taken through this "
			"kernel\n");
	if (geteuid() != 0)
		fprintf(stderr, "arca-las: running as uid %u: only processes of this user can be measured\n",
			(unsigned)geteuid());
	if (las_caches_init(&caches) < 0) {
		las_key_close(&key, 1);
		return die("out of memory");
	}
	int lfd = listen_on(sock, &bound, &e);
	if (lfd < 0) {
		las_caches_free(&caches);
		las_key_close(&key, 1);
		return die(e.msg);
	}

	struct las_ctx ctx = {.key = &key, .caches = &caches};
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512u << 10);

	printf("fingerprint %s\n", key.fpr);
	printf("ready socket=%s platform=sim fingerprint=%s\n", sock, key.fpr);
	fflush(stdout);

	for (;;) {
		struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "arca-las: poll: %s\n", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
				fprintf(stderr, "arca-las: signal %u: stopping\n", si.ssi_signo);
			break;
		}
		if (pfd[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0) {
				if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
					fprintf(stderr, "arca-las: accept: %s\n", strerror(errno));
				/* Out of descriptors: give threads a moment to close theirs. */
				if (errno == EMFILE || errno == ENFILE)
					usleep(100000);
				continue;
			}
			handle_connection(&ctx, c, &attr);
		}
	}

	close(lfd);
	remove_socket(sock, &bound);
	int left = drain();
	/* Threads still running may read the key: wipe it but keep it mapped. */
	las_key_close(&key, left == 0);
	if (left == 0)
		las_caches_free(&caches);
	fprintf(stderr, "arca-las: stopped\n");
	fflush(stderr);
	_exit(0);
}
