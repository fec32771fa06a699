/* main.c: arca-las, the Local Attestation Service.
 *
 *   arca-las [--state DIR] [--socket PATH] [--platform auto|sim|sev-snp|tdx] [--shield PATH]
 *            [--memlock SIZE|unlimited|0]
 *
 * A foreground daemon: prints the platform key's fingerprint and a ready
 * line on stdout (CONTRACTS.md), logs on stderr, answers each connection
 * on a thread of its own. Any local process may ask to be measured, so
 * every client is bounded: a deadline for its request, and a cap on the
 * requests served at once. Requests beyond the cap wait rather than fail
 * (a host may start many protected programs at once), shared fairly among
 * users. SIGTERM/SIGINT stop it cleanly (exit 0).
 *
 * Evidence goes to programs arca-las starts itself (launch.c) and to root;
 * that only means something if nobody else can reach into a launched
 * program before its shield makes it non-dumpable, so sim mode needs root
 * (to start programs as their users, to measure non-dumpable processes)
 * and refuses to start without it. Yama's ptrace_scope >= 1 closes the
 * same-user window at start; without it arca-las warns once and marks
 * each evidence as not ptrace-protected (the session decides). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "las.h"
#include "arca/evidence_hw.h"
#include "arca/exec_check.h"

#define DEFAULT_STATE "/var/lib/arca/las"
#define DEFAULT_SOCKET "/run/arca/las.sock"
/* Requests served at once (one thread each), requests accepted and
 * waiting for one of those threads, and connections the kernel holds for
 * us beyond that; a blocked connect(2) waits for room after those too. */
#define MAX_SERVED 64
#define MAX_WAITING 448
#define LISTEN_BACKLOG 512
#define DRAIN_SECONDS 3

struct conn_job {
	const struct las_ctx *ctx;
	int fd;
	struct las_peer peer;
	struct conn_job *next;
	unsigned long long arrival;
};

/* The users with requests served or waiting, each with its own queue. */
struct uid_slot {
	uid_t uid;
	int served, waiting;
	struct conn_job *head, *tail;
};

/* Scheduling shared by the accept loop and the threads. No request is
 * refused for load: beyond MAX_SERVED it waits, and when a thread is done
 * it takes next a request of the user with the fewest requests in service
 * (the oldest of theirs, and on a tie the oldest of all), so that one
 * user's burst delays another user's request by at most a turn. The accept
 * loop stops accepting while MAX_SERVED + MAX_WAITING are in, and the rest
 * wait in the listen backlog, in order of arrival. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t idle;
	int served, waiting;
	int paused;     /* the accept loop waits for room (wake_fd) */
	int stopping;   /* threads take no more waiting requests */
	int wake_fd;    /* eventfd: room again */
	unsigned long long arrivals;
	struct uid_slot users[MAX_SERVED + MAX_WAITING];
} conns = {.mu = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER, .wake_fd = -1};

static int usage(void)
{
	fprintf(stderr, "usage: arca-las [--state DIR] [--socket PATH] [--platform auto|sim|sev-snp|tdx]\n"
			"                [--shield PATH] [--memlock SIZE]\n"
			"  --state DIR     platform key directory (default " DEFAULT_STATE ")\n"
			"  --socket PATH   Unix socket to listen on (default " DEFAULT_SOCKET ")\n"
			"  --platform P    evidence kind: sim (default; signed with the platform key), sev-snp or\n"
			"                  tdx (hardware reports through configfs-tsm, in a confidential VM), or\n"
			"                  auto (hardware when configfs-tsm offers it, else sim; says which)\n"
			"  --shield PATH   the shield launched programs preload (default: beside this binary,\n"
			"                  ../lib/" ARCA_SHIELD_NAME "); `arca measure` must use the same\n"
			"  --memlock SIZE  locked-memory limit (RLIMIT_MEMLOCK, soft and hard) of launched\n"
			"                  programs: bytes with K, M or G, or unlimited (default); 0 leaves them\n"
			"                  the limit arca-las has. A protected program's whole heap is secret memory,\n"
			"                  which counts as locked memory, so a low limit starves it; anyone who\n"
			"                  may use arca-las can lock up to this much memory per program\n");
	return 2;
}

static int die(const char *msg)
{
	fprintf(stderr, "arca-las: %s\n", msg);
	return 1;
}

/* The limit launched programs can get: a child can only lower the hard
 * limit it inherits unless it has CAP_SYS_RESOURCE, so arca-las raises its
 * own first (harmless: it locks its key anyway). Where it cannot (no
 * CAP_SYS_RESOURCE, as in some containers), programs get the hard limit
 * it has, and it says so once. */
static rlim_t memlock_reachable(rlim_t want)
{
	struct rlimit rl;
	if (want == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    (want != RLIM_INFINITY && want <= rl.rlim_max))
		return want;
	struct rlimit up = {.rlim_cur = rl.rlim_cur, .rlim_max = want};
	if (setrlimit(RLIMIT_MEMLOCK, &up) == 0)
		return want;
	fprintf(stderr,
		"arca-las: warning: cannot raise the locked-memory limit to %s (%s); launched programs get %llu KiB, "
		"and a protected program's secret memory cannot grow beyond it: give arca-las CAP_SYS_RESOURCE or a "
		"higher hard limit (ulimit -Hl)\n",
		want == RLIM_INFINITY ? "unlimited" : "the --memlock size", strerror(errno),
		(unsigned long long)rl.rlim_max >> 10);
	return rl.rlim_max;
}

/* Sim mode's promise against other processes of the same user holds only
 * if none of them can ptrace or write the memory of a launched program in
 * the moment before its shield makes it non-dumpable. Without Yama (or at
 * scope 0) arca-las still runs: the evidence it signs says so, and the
 * session's owner decides in CAS whether to accept that. */
static void warn_ptrace_scope(void)
{
	int scope = las_ptrace_scope();
	if (scope >= 1)
		return;
	fprintf(stderr,
		"arca-las: warning: %s, so another process of the same user could ptrace or write the memory of "
		"a protected program before it protects itself; evidence says so, and CAS refuses it unless the "
		"session tolerates no-ptrace-protection (raise it with sysctl -w kernel.yama.ptrace_scope=1)\n",
		scope == 0 ? "kernel.yama.ptrace_scope is 0" : "this kernel has no Yama ptrace protection");
}

/* Callers hold conns.mu. A slot exists for every user with a request in,
 * and there are never more requests in than slots. */
static struct uid_slot *user_slot(uid_t uid)
{
	struct uid_slot *free_slot = NULL;

	for (size_t i = 0; i < sizeof conns.users / sizeof conns.users[0]; i++) {
		struct uid_slot *u = &conns.users[i];
		if (u->served + u->waiting > 0 && u->uid == uid)
			return u;
		if (u->served + u->waiting == 0 && free_slot == NULL)
			free_slot = u;
	}
	if (free_slot != NULL) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->uid = uid;
	}
	return free_slot;
}

static int has_room(void)
{
	return conns.served + conns.waiting < MAX_SERVED + MAX_WAITING;
}

/* Callers hold conns.mu: the waiting request to serve next, moved from
 * waiting to served, or NULL. */
static struct conn_job *take_next(void)
{
	struct uid_slot *best = NULL;

	if (conns.stopping)
		return NULL;
	for (size_t i = 0; i < sizeof conns.users / sizeof conns.users[0]; i++) {
		struct uid_slot *u = &conns.users[i];
		if (u->waiting == 0)
			continue;
		if (best == NULL || u->served < best->served ||
		    (u->served == best->served && u->head->arrival < best->head->arrival))
			best = u;
	}
	if (best == NULL)
		return NULL;
	struct conn_job *job = best->head;
	best->head = job->next;
	if (best->head == NULL)
		best->tail = NULL;
	job->next = NULL;
	best->waiting--;
	best->served++;
	conns.waiting--;
	conns.served++;
	return job;
}

/* Callers hold conns.mu: a request left (served or dropped). */
static void wake_accept_loop(void)
{
	if (conns.paused && has_room()) {
		uint64_t one = 1;
		conns.paused = 0;
		if (write(conns.wake_fd, &one, sizeof one) < 0) {
			/* The counter is full, so the loop is awake anyway. */
		}
	}
}

static void job_free(struct conn_job *job)
{
	las_peer_release(&job->peer);
	close(job->fd);
	free(job);
}

/* Serves its request, then whatever is waiting, until nothing is. */
static void *conn_thread(void *arg)
{
	struct conn_job *job = arg;

	while (job != NULL) {
		uid_t uid = job->peer.uid;
		las_serve(job->ctx, job->fd, &job->peer);
		job_free(job);
		pthread_mutex_lock(&conns.mu);
		struct uid_slot *u = user_slot(uid); /* exists: it has this request */
		u->served--;
		conns.served--;
		job = take_next();
		if (job == NULL && conns.served == 0)
			pthread_cond_broadcast(&conns.idle);
		wake_accept_loop();
		pthread_mutex_unlock(&conns.mu);
	}
	return NULL;
}

static void handle_connection(const struct las_ctx *ctx, int fd, const pthread_attr_t *attr)
{
	struct arca_errbuf e = {{0}};
	struct conn_job *job = calloc(1, sizeof(*job));
	struct uid_slot *u;
	pthread_t t;
	int start = 0;

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
		close(fd);
		free(job);
		return;
	}
	pthread_mutex_lock(&conns.mu);
	/* The loop accepts only while there is room, so a slot exists. */
	u = user_slot(job->peer.uid);
	if (u == NULL) {
		pthread_mutex_unlock(&conns.mu);
		las_refuse_now(fd, "LAS is busy; try again");
		job_free(job);
		return;
	}
	job->arrival = conns.arrivals++;
	if (conns.served < MAX_SERVED) {
		u->served++;
		conns.served++;
		start = 1;
	} else {
		if (u->tail != NULL)
			u->tail->next = job;
		else
			u->head = job;
		u->tail = job;
		u->waiting++;
		conns.waiting++;
	}
	pthread_mutex_unlock(&conns.mu);
	if (!start)
		return;
	if (pthread_create(&t, attr, conn_thread, job) != 0) {
		/* Not load but a broken system: say so rather than wait. */
		pthread_mutex_lock(&conns.mu);
		u->served--;
		conns.served--;
		if (conns.served == 0)
			pthread_cond_broadcast(&conns.idle);
		pthread_mutex_unlock(&conns.mu);
		las_refuse_now(fd, "LAS cannot start a thread; try again");
		job_free(job);
	}
}

/* At shutdown: requests still waiting get a refusal instead of silence. */
static void drop_waiting(void)
{
	struct conn_job *list = NULL;

	pthread_mutex_lock(&conns.mu);
	conns.stopping = 1;
	for (size_t i = 0; i < sizeof conns.users / sizeof conns.users[0]; i++) {
		struct uid_slot *u = &conns.users[i];
		if (u->tail != NULL) {
			u->tail->next = list;
			list = u->head;
		}
		conns.waiting -= u->waiting;
		u->waiting = 0;
		u->head = u->tail = NULL;
	}
	pthread_mutex_unlock(&conns.mu);
	while (list != NULL) {
		struct conn_job *next = list->next;
		las_refuse_now(list->fd, "arca-las is stopping; try again");
		job_free(list);
		list = next;
	}
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
	if (chmod(path, 0666) < 0 || lstat(path, bound) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
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
	while (conns.served > 0)
		if (pthread_cond_timedwait(&conns.idle, &conns.mu, &until) != 0)
			break;
	int left = conns.served;
	pthread_mutex_unlock(&conns.mu);
	return left;
}

int main(int argc, char **argv)
{
	const char *state = DEFAULT_STATE, *sock = DEFAULT_SOCKET, *platform = "sim", *shield_arg = NULL;
	const char *memlock = "unlimited";
	char shield[PATH_MAX];
	struct arca_errbuf e = {{0}};
	struct las_key key;
	struct las_tsm tsm;
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
		else if (strcmp(argv[i], "--shield") == 0)
			dst = &shield_arg;
		else if (strcmp(argv[i], "--memlock") == 0)
			dst = &memlock;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return usage() - 2;
		else
			return usage();
		if (i + 1 >= argc)
			return usage();
		*dst = argv[++i];
	}
	if (strcmp(platform, "sim") != 0 && strcmp(platform, "auto") != 0 && strcmp(platform, "sev-snp") != 0 &&
	    strcmp(platform, "tdx") != 0) {
		fprintf(stderr, "arca-las: platform \"%s\" refused: use auto, sim, sev-snp or tdx\n", platform);
		return 1;
	}

	rlim_t memlock_v = 0;
	if (las_parse_memlock(memlock, &memlock_v) < 0) {
		fprintf(stderr, "arca-las: --memlock \"%s\" refused: give bytes with an optional K, M or G, "
				"unlimited, or 0 to leave programs the limit arca-las has\n",
			memlock);
		return 1;
	}

	if (geteuid() != 0)
		return die("sim mode needs root: arca-las starts each protected program as the user who asks, and "
			   "measures it after it has made itself non-dumpable");
	if ((shield_arg != NULL ? arca_shield_check(shield_arg, shield, sizeof shield, &e)
				: arca_shield_default(shield, sizeof shield, &e)) < 0) {
		fprintf(stderr, "arca-las: %s%s\n", e.msg,
			shield_arg != NULL ? "" : "; give the shield's path with --shield");
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

	/* Before anything else is set up: a hardware platform that cannot
	 * deliver refuses to start (it obtains one report to find out). */
	uint32_t hw = 0;
	if (las_tsm_open(&tsm, platform, &hw, &e) < 0)
		return die(e.msg);
	const char *chosen = hw ? arca_hw_platform_name(hw) : "sim";
	if (las_key_open(state, &key, &e) < 0)
		return die(e.msg);
	fprintf(stderr, "arca-las: platform key %s %s in %s\n", key.fpr, key.created ? "created" : "loaded", state);
	if (hw)
		fprintf(stderr, "arca-las: %s mode: evidence is a hardware report signed by the CPU vendor's key that "
				"binds the measurement taken here; it protects against the host and hypervisor, not "
				"against this VM's own kernel\n",
			chosen);
	else
		fprintf(stderr, "arca-las: sim mode does not protect against a malicious kernel, kernel module or boot "
				"code: evidence is signed with this host's key and measurements are taken through this "
				"kernel\n");
	fprintf(stderr, "arca-las: launched programs preload %s\n", shield);
	memlock_v = memlock_reachable(memlock_v);
	if (memlock_v == 0)
		fprintf(stderr, "arca-las: launched programs keep the locked-memory limit arca-las has (--memlock 0); "
				"secret memory counts against it\n");
	else if (memlock_v == RLIM_INFINITY)
		fprintf(stderr, "arca-las: launched programs may lock unlimited memory (secret memory is locked "
				"memory; --memlock SIZE bounds it)\n");
	else
		fprintf(stderr, "arca-las: launched programs may lock %llu KiB (--memlock; secret memory is locked "
				"memory)\n",
			(unsigned long long)memlock_v >> 10);
	warn_ptrace_scope();
	if (las_caches_init(&caches) < 0) {
		las_key_close(&key, 1);
		return die("out of memory");
	}
	conns.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (conns.wake_fd < 0) {
		las_caches_free(&caches);
		las_key_close(&key, 1);
		return die("eventfd failed");
	}
	int lfd = listen_on(sock, &bound, &e);
	if (lfd < 0) {
		las_caches_free(&caches);
		las_key_close(&key, 1);
		return die(e.msg);
	}

	struct las_ctx ctx = {.key = &key, .caches = &caches, .shield = shield, .tsm = &tsm,
			      .set_memlock = memlock_v != 0, .memlock = memlock_v};
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512u << 10);

	printf("fingerprint %s\n", key.fpr);
	printf("ready socket=%s platform=%s fingerprint=%s\n", sock, chosen, key.fpr);
	fflush(stdout);

	int logged_full = 0;
	for (;;) {
		pthread_mutex_lock(&conns.mu);
		int room = has_room();
		conns.paused = !room;
		int served = conns.served, waiting = conns.waiting;
		pthread_mutex_unlock(&conns.mu);
		if (!room && !logged_full)
			fprintf(stderr, "arca-las: %d requests in service and %d waiting; new connections wait in the "
					"socket's backlog\n",
				served, waiting);
		logged_full = !room;
		/* A negative fd is skipped by poll: full, the loop only listens
		 * for room and for signals. */
		struct pollfd pfd[3] = {{.fd = room ? lfd : -1, .events = POLLIN},
					{.fd = sfd, .events = POLLIN},
					{.fd = conns.wake_fd, .events = POLLIN}};
		if (poll(pfd, 3, -1) < 0) {
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
		if (pfd[2].revents & POLLIN) {
			uint64_t n;
			if (read(conns.wake_fd, &n, sizeof n) < 0) {
				/* EAGAIN: another wake-up already consumed it. */
			}
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

	drop_waiting();
	close(lfd);
	remove_socket(sock, &bound);
	int left = drain();
	left += las_launch_stop(DRAIN_SECONDS);
	/* Threads still running may read the key: wipe it but keep it mapped. */
	las_key_close(&key, left == 0);
	if (left == 0) {
		las_caches_free(&caches);
		las_tsm_close(&tsm);
	}
	fprintf(stderr, "arca-las: stopped\n");
	fflush(stderr);
	_exit(0);
}
