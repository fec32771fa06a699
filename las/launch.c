/* launch.c: trusted launch (CONTRACTS.md "Trusted launch"): arca-las
 * starts the program `arca run` asks for, as the asking user, and gives
 * evidence to that program only.
 *
 * A snapshot of a process cannot show what ran in it before it was taken,
 * so evidence is only worth something for a process whose whole life LAS
 * controlled: LAS forks it, gives it exactly the environment of the
 * contract (no LD_LIBRARY_PATH, no second preload, nothing of the
 * caller's), and hands it a private channel (a socketpair end on fd 3).
 * The one evidence request that arrives there is answered for the pid LAS
 * forked, which cannot be reused while LAS has not reaped it, after a
 * check that nobody traces it and that the shield is mapped in it. The
 * channel is then closed: one evidence per launch. The evidence says
 * whether Yama kept other processes of the same user out of the program
 * before its shield made it non-dumpable (ARCA_SIM_FLAG_PTRACE_PROTECTED);
 * whether that is good enough is the session owner's call, made in CAS.
 * Likewise it says whether the program had secret memory when it asked
 * (ARCA_SIM_FLAG_SECRET_MEMORY): its shield, which is measured, maps its
 * heap from memfd_secret(2) before it attests, so a mapping named
 * "/secretmem (deleted)" shows that the kernel gave it some; without one
 * (no memfd_secret here, or a limit too low) root could read its memory.
 *
 * The program's locked-memory limit comes from arca-las too (--memlock):
 * secret memory counts against RLIMIT_MEMLOCK, so the caller's usual
 * limit of a few MiB would leave a protected program without a heap.
 *
 * The request is parsed on the connection's serving thread (serve.c); once
 * the program runs, a thread of its own watches the program, its channel
 * and `arca run`'s connection until the program ends, so that a long-lived
 * program never holds one of the few serving threads. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "las.h"
#include "arca/encode.h"
#include "arca/evidence.h"
#include "arca/exec_check.h"
#include "arca/las_launch.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Programs running at once, in all and per user: each holds a thread and
 * a few descriptors of arca-las. */
#define MAX_LAUNCHES 1024
#define MAX_LAUNCHES_PER_UID 256
/* The descriptor number of the evidence channel in the program. */
#define CHAN_FD 3
/* Above every descriptor the child moves into place, so that no move
 * overwrites one still to be moved. */
#define CHILD_FD_BASE 10
#define START_TIMEOUT_MS 10000
#define REASON_MAX 400
/* The variables of the contract (7), ARCA_REPORT, and the NULL. */
#define ENV_MAX 9

struct launch {
	const struct las_ctx *ctx;
	struct las_peer peer; /* the program: pid, uid, gid, pidfd, start time */
	int conn;             /* to `arca run`; -1 once it went away */
	int chan;             /* evidence channel; -1 once used */
	char program[256];    /* for the log */
	struct launch *next;
};

/* The programs running, for the limits and for a hangup at shutdown. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t idle;
	int n;
	struct launch *list;
} running = {.mu = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

/* Everything the child needs, prepared before fork: after fork in a
 * threaded process it only moves descriptors, changes credentials, checks
 * the program (exec_check.c, which allocates nothing) and execs. */
struct child_plan {
	char **argv;
	char *env[ENV_MAX];
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	int fds[ARCA_LAS_LAUNCH_NFDS]; /* stdin, stdout, stderr, cwd */
	int chan;                      /* child's end of the socketpair */
	int err;                       /* write end of the error pipe */
	int set_memlock;               /* 0: keep the limit arca-las has */
	rlim_t memlock;
};

static void clean_text(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	for (; in[n] != 0 && n + 1 < cap; n++)
		out[n] = (in[n] >= 0x20 && in[n] < 0x7f) ? in[n] : '?';
	out[n] = 0;
}

static void send_msg(int fd, uint8_t type, const void *payload, size_t n)
{
	uint8_t msg[3 + REASON_MAX];
	size_t len = arca_las_reply_encode(type, payload, n, msg), off = 0;
	while (fd >= 0 && off < len) {
		ssize_t w = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

static void send_u32(int fd, uint8_t type, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	send_msg(fd, type, p, sizeof p);
}

static void send_refusal(int fd, const char *reason)
{
	char clean[REASON_MAX + 1];
	clean_text(reason, clean, sizeof clean);
	send_msg(fd, ARCA_LAS_REFUSED, clean, strlen(clean));
}

/* ---- the child, between fork and exec ---- */

__attribute__((noreturn)) static void child_fail(int err, const char *fmt, ...) ARCA_PRINTF(2, 3);
static void child_fail(int err, const char *fmt, ...)
{
	char msg[REASON_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n > 0) {
		size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
		if (write(err, msg, len) < 0) {
			/* The parent then reports an unexplained failure. */
		}
	}
	_exit(127);
}

static void close_from(int lowest)
{
	if (syscall(SYS_close_range, (unsigned)lowest, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	/* Kernels before 5.11: mark them one by one. */
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > (1L << 20))
		max = 1L << 20;
	for (int fd = lowest; fd < max; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

__attribute__((noreturn)) static void child_run(struct child_plan *c)
{
	struct arca_errbuf e = {{0}};
	int moved[ARCA_LAS_LAUNCH_NFDS + 1];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	sigset_t none;

	/* The error pipe first, out of the way of fds 0..3. */
	int err = fcntl(c->err, F_DUPFD_CLOEXEC, CHILD_FD_BASE);
	if (err < 0)
		child_fail(c->err, "cannot prepare the program's descriptors: %s", strerror(errno));
	for (int i = 0; i < ARCA_LAS_LAUNCH_NFDS; i++)
		if ((moved[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, CHILD_FD_BASE)) < 0)
			child_fail(err, "cannot prepare the program's descriptors: %s", strerror(errno));
	if ((moved[ARCA_LAS_LAUNCH_NFDS] = fcntl(c->chan, F_DUPFD_CLOEXEC, CHILD_FD_BASE)) < 0)
		child_fail(err, "cannot prepare the program's descriptors: %s", strerror(errno));

	if (setsid() < 0)
		child_fail(err, "setsid: %s", strerror(errno));
	/* While still root: raising the hard limit needs CAP_SYS_RESOURCE,
	 * and the user must not be able to lower it below what their heap
	 * needs by accident, nor raise it beyond what arca-las allows. */
	if (c->set_memlock) {
		struct rlimit rl = {.rlim_cur = c->memlock, .rlim_max = c->memlock};
		if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
			child_fail(err, "cannot set the program's locked-memory limit (RLIMIT_MEMLOCK): %s",
				   strerror(errno));
	}
	if (setgroups((size_t)c->ngroups, c->groups) < 0 || setresgid(c->gid, c->gid, c->gid) < 0 ||
	    setresuid(c->uid, c->uid, c->uid) < 0)
		child_fail(err, "cannot take the credentials of uid %u gid %u: %s", (unsigned)c->uid, (unsigned)c->gid,
			   strerror(errno));
	/* Not trusting that every call took: a half-changed process must
	 * not run the user's program. */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != c->uid || eu != c->uid ||
	    su != c->uid || rg != c->gid || eg != c->gid || sg != c->gid)
		child_fail(err, "the credentials of uid %u gid %u did not take", (unsigned)c->uid, (unsigned)c->gid);
	if (fchdir(moved[3]) < 0)
		child_fail(err, "cannot enter the working directory as uid %u: %s", (unsigned)c->uid, strerror(errno));
	/* dup2 clears close-on-exec on the copies the program keeps. */
	if (dup2(moved[0], 0) < 0 || dup2(moved[1], 1) < 0 || dup2(moved[2], 2) < 0 ||
	    dup2(moved[ARCA_LAS_LAUNCH_NFDS], CHAN_FD) < 0)
		child_fail(err, "cannot set up the program's descriptors: %s", strerror(errno));
	/* Everything else of arca-las's (the listening socket, other
	 * clients, the key's lock) closes at exec, the error pipe with it. */
	close_from(CHAN_FD + 1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);

	/* As the user: what they may execute, not what root may. This is
	 * the check that counts; arca run's was a courtesy. */
	int prog;
	if (arca_exec_open(c->argv[0], &prog, &e) < 0)
		child_fail(err, "%s", e.msg);
	/* Execute the file just checked, not its name again: the caller owns
	 * the name and could point it at the loader in between, whose command
	 * line (--preload) would load code the environment never shows. */
	fexecve(prog, c->argv, c->env);
	child_fail(err, "cannot execute %s: %s", c->argv[0], strerror(errno));
}

/* ---- preparing and starting ---- */

static int supplementary_groups(uid_t uid, gid_t gid, gid_t **out, int *n, struct arca_errbuf *e)
{
	struct passwd pw, *found = NULL;
	char buf[16384];
	int rc = getpwuid_r(uid, &pw, buf, sizeof buf, &found);

	*out = NULL;
	*n = 0;
	if (rc != 0)
		return arca_errf(e, ARCA_EIO, "cannot look up uid %u: %s", (unsigned)uid, strerror(rc));
	if (found == NULL) {
		/* No passwd entry (a container's uid, a deleted user): the
		 * group the caller runs with is all we know. */
		*out = malloc(sizeof(gid_t));
		if (*out == NULL)
			return arca_errf(e, ARCA_ENOMEM, "out of memory");
		(*out)[0] = gid;
		*n = 1;
		return 0;
	}
	int want = 64;
	for (int tries = 0; tries < 6; tries++) {
		gid_t *g = realloc(*out, (size_t)want * sizeof(gid_t));
		if (g == NULL) {
			free(*out);
			*out = NULL;
			return arca_errf(e, ARCA_ENOMEM, "out of memory");
		}
		*out = g;
		int got = want;
		if (getgrouplist(found->pw_name, gid, g, &got) >= 0) {
			*n = got;
			return 0;
		}
		want = got > want ? got : want * 4;
		if (want > 65536)
			break;
	}
	free(*out);
	*out = NULL;
	return arca_errf(e, ARCA_EIO, "cannot list the groups of uid %u", (unsigned)uid);
}

static int add_env(struct child_plan *c, int *i, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s = malloc(n);
	if (s == NULL || *i >= ENV_MAX - 1) {
		free(s);
		return ARCA_ENOMEM;
	}
	snprintf(s, n, "%s=%s", name, value);
	c->env[(*i)++] = s;
	c->env[*i] = NULL;
	return 0;
}

static void plan_free(struct child_plan *c)
{
	for (int i = 0; i < ENV_MAX && c->env[i] != NULL; i++)
		free(c->env[i]);
	free(c->groups);
}

/* Lists l (its uid set, no pidfd yet) if the limits allow, else says why. */
static const char *reserve(struct launch *l)
{
	const char *why = NULL;
	int mine = 0;
	pthread_mutex_lock(&running.mu);
	for (struct launch *o = running.list; o != NULL; o = o->next)
		if (o->peer.uid == l->peer.uid)
			mine++;
	if (running.n >= MAX_LAUNCHES) {
		why = "arca-las is running as many programs as it may; try again when one ends";
	} else if (mine >= MAX_LAUNCHES_PER_UID) {
		why = "this user runs as many protected programs as arca-las allows one user";
	} else {
		l->next = running.list;
		running.list = l;
		running.n++;
	}
	pthread_mutex_unlock(&running.mu);
	return why;
}

static void unlist(struct launch *l)
{
	pthread_mutex_lock(&running.mu);
	for (struct launch **p = &running.list; *p != NULL; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			running.n--;
			break;
		}
	}
	if (running.n == 0)
		pthread_cond_broadcast(&running.idle);
	pthread_mutex_unlock(&running.mu);
}

static void log_launch(pid_t pid, uid_t uid, const char *program, const char *outcome, const char *reason)
{
	char clean[REASON_MAX + 1];
	clean_text(reason ? reason : "", clean, sizeof clean);
	fprintf(stderr, "arca-las: launch pid=%d uid=%u program=%s %s%s%s\n", (int)pid, (unsigned)uid, program,
		outcome, reason ? ": " : "", reason ? clean : "");
}

/* Waits for the child's exec: EOF on the error pipe means it happened;
 * bytes are the reason it did not. 0, or < 0 with the reason in e. */
static int await_exec(int errfd, struct arca_errbuf *e)
{
	char msg[REASON_MAX + 1];
	size_t got = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = START_TIMEOUT_MS - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return arca_errf(e, ARCA_ETIMEOUT, "the program did not start within %d seconds",
					 START_TIMEOUT_MS / 1000);
		struct pollfd pfd = {.fd = errfd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno != EINTR)
			return arca_errf(e, ARCA_EIO, "poll: %s", strerror(errno));
		if (pr <= 0)
			continue;
		ssize_t r = read(errfd, msg + got, sizeof msg - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return arca_errf(e, ARCA_EIO, "reading the start result: %s", strerror(errno));
		got += (size_t)r;
		if (r > 0 && got < sizeof msg - 1)
			continue;
		/* End of file: exec closed the pipe, or the child said why not. */
		if (got == 0)
			return 0;
		msg[got] = 0;
		char clean[REASON_MAX + 1];
		clean_text(msg, clean, sizeof clean);
		return arca_errf(e, ARCA_EDENIED, "%s", clean);
	}
}

static void *watch(void *arg);

void las_launch(const struct las_ctx *ctx, int conn, uid_t uid, gid_t gid, const uint8_t *body, size_t n,
		int *fds, int nfds)
{
	struct arca_launch_req req;
	struct arca_errbuf e = {{0}};
	struct child_plan plan;
	struct launch *l = NULL;
	char fdnum[16], program[256] = "-";
	int sp[2] = {-1, -1}, errp[2] = {-1, -1}, reserved = 0;
	pid_t pid = -1;

	memset(&plan, 0, sizeof plan);
	memset(&req, 0, sizeof req);
	if (nfds != ARCA_LAS_LAUNCH_NFDS) {
		arca_errf(&e, ARCA_EPARSE,
			  "a launch request carries exactly %d descriptors (stdin, stdout, stderr, working "
			  "directory); it had %d",
			  ARCA_LAS_LAUNCH_NFDS, nfds);
		goto refuse;
	}
	if (arca_launch_req_decode(body, n, &req, &e) < 0)
		goto refuse;
	clean_text(req.argv[0], program, sizeof program);
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		arca_errf(&e, ARCA_ENOMEM, "LAS is out of memory");
		goto refuse;
	}
	l->peer.pidfd = -1;
	l->peer.uid = uid;
	l->chan = l->conn = -1;
	const char *busy = reserve(l);
	if (busy != NULL) {
		arca_errf(&e, ARCA_EDENIED, "%s", busy);
		goto refuse;
	}
	reserved = 1;
	if (supplementary_groups(uid, gid, &plan.groups, &plan.ngroups, &e) < 0)
		goto refuse;
	int k = 0;
	snprintf(fdnum, sizeof fdnum, "%d", CHAN_FD);
	if (add_env(&plan, &k, "LD_PRELOAD", ctx->shield) < 0 || add_env(&plan, &k, "ARCA_SHIELD_MODE", "attest") < 0 ||
	    add_env(&plan, &k, "ARCA_CAS", req.cas) < 0 || add_env(&plan, &k, "ARCA_CAS_PIN", req.cas_pin) < 0 ||
	    add_env(&plan, &k, "ARCA_SESSION", req.session) < 0 ||
	    add_env(&plan, &k, "ARCA_SERVICE", req.service) < 0 || add_env(&plan, &k, "ARCA_LAS_FD", fdnum) < 0 ||
	    (req.report && add_env(&plan, &k, "ARCA_REPORT", "1") < 0)) {
		arca_errf(&e, ARCA_ENOMEM, "LAS is out of memory");
		goto refuse;
	}
	plan.set_memlock = ctx->set_memlock;
	plan.memlock = ctx->memlock;
	plan.argv = req.argv;
	plan.uid = uid;
	plan.gid = gid;
	memcpy(plan.fds, fds, sizeof plan.fds);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		arca_errf(&e, ARCA_EIO, "LAS cannot create the program's channel: %s", strerror(errno));
		goto refuse;
	}
	plan.chan = sp[1];
	plan.err = errp[1];
	pid = fork();
	if (pid < 0) {
		arca_errf(&e, ARCA_EIO, "LAS cannot fork: %s", strerror(errno));
		goto refuse;
	}
	if (pid == 0)
		child_run(&plan);
	close(sp[1]);
	sp[1] = -1;
	close(errp[1]);
	errp[1] = -1;
	/* Ours until waited for: its pid cannot name another process. */
	struct las_peer child;
	if (las_peer_child(pid, uid, gid, &child, &e) < 0 || await_exec(errp[0], &e) < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		las_peer_release(&child);
		goto refuse;
	}
	close(errp[0]);
	errp[0] = -1;

	pthread_mutex_lock(&running.mu); /* las_launch_stop reads the pidfd */
	l->peer = child;
	pthread_mutex_unlock(&running.mu);
	l->ctx = ctx;
	l->chan = sp[0];
	sp[0] = -1;
	l->conn = fcntl(conn, F_DUPFD_CLOEXEC, 0);
	memcpy(l->program, program, sizeof l->program);
	send_u32(conn, ARCA_LAS_STARTED, (uint32_t)pid);
	log_launch(pid, uid, program, "started", NULL);

	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512u << 10);
	int tc = pthread_create(&t, &attr, watch, l);
	pthread_attr_destroy(&attr);
	if (tc != 0) {
		/* The program runs but nobody could watch it: end it rather
		 * than leave a launch no one reports on. */
		fprintf(stderr, "arca-las: cannot start a thread for pid %d; killing it\n", (int)pid);
		kill(pid, SIGKILL);
		watch(l);
	}
	plan_free(&plan);
	arca_launch_req_free(&req);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return;
refuse:
	if (e.msg[0] == 0)
		arca_errf(&e, ARCA_EIO, "internal error");
	send_refusal(conn, e.msg);
	log_launch(pid > 0 ? pid : 0, uid, program, "refused", e.msg);
	if (reserved)
		unlist(l);
	free(l);
	plan_free(&plan);
	arca_launch_req_free(&req);
	for (int i = 0; i < 2; i++) {
		if (sp[i] >= 0)
			close(sp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

/* ---- while the program runs ---- */

/* "TracerPid:\t0" of /proc/PID/status. */
static int traced(pid_t pid, struct arca_errbuf *e)
{
	char buf[4096];
	GUARD(las_proc_read(pid, "status", buf, sizeof buf, e));
	char *t = strstr(buf, "\nTracerPid:\t");
	if (t == NULL)
		return arca_errf(e, ARCA_EPARSE, "cannot read /proc/%d/status", (int)pid);
	t += 12;
	if (t[0] != '0' || t[1] != '\n') {
		char *nl = strchr(t, '\n');
		return arca_errf(e, ARCA_EDENIED, "process %d is being traced (by pid %.*s); no evidence for it",
				 (int)pid, nl != NULL ? (int)(nl - t) : 10, t);
	}
	return 0;
}

int las_ptrace_scope(void)
{
	char buf[8];
	int fd = open(LAS_YAMA_SCOPE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	/* Anything but one digit and a newline counts as no protection. */
	if (n != 2 || buf[0] < '0' || buf[0] > '3' || buf[1] != '\n')
		return -1;
	return buf[0] - '0';
}

int las_has_secret_memory(pid_t pid, struct arca_errbuf *e)
{
	static const char want[] = " /secretmem (deleted)";
	const size_t wn = sizeof want - 1;
	char path[64], buf[4096], tail[sizeof want];
	size_t tn = 0;
	int found = 0;

	/* maps can be far longer than one read; only the end of each line
	 * matters, so a few bytes of it are kept across reads. */
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return arca_errf(e, ARCA_ENOTFOUND, "cannot read the mappings of process %d: %s", (int)pid,
				 strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			return arca_errf(e, ARCA_EIO, "cannot read the mappings of process %d: %s", (int)pid,
					 strerror(err));
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n && !found; i++) {
			if (buf[i] == '\n') {
				found = tn == wn && memcmp(tail, want, wn) == 0;
				tn = 0;
				continue;
			}
			if (tn == wn) {
				memmove(tail, tail + 1, wn - 1);
				tn--;
			}
			tail[tn++] = buf[i];
		}
		if (found)
			break;
	}
	close(fd);
	return found;
}

int las_parse_memlock(const char *s, rlim_t *out)
{
	if (strcmp(s, "unlimited") == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (s[0] < '0' || s[0] > '9')
		return ARCA_EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return ARCA_EINVAL;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift != 0)
		end++;
	if (*end != 0 || v > ((unsigned long long)RLIM_INFINITY - 1) >> shift)
		return ARCA_EINVAL;
	*out = (rlim_t)(v << shift);
	return 0;
}

/* The process's executable must itself pass the launch checks (a
 * dynamically linked program, not the loader run directly with a command
 * line of its own, not setuid): a second line of defence behind fexecve. */
static int exe_is_program(pid_t pid, struct arca_errbuf *e)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return arca_errf(e, ARCA_ENOTFOUND, "cannot open the executable of process %d: %s", (int)pid,
				 strerror(errno));
	int rc = arca_exec_check_fd(fd, path, e);
	close(fd);
	return rc;
}

static int shield_mapped(const struct arca_measurement *m, const char *shield)
{
	for (size_t i = 0; i < m->nobjs; i++)
		if (strcmp(m->objs[i].path, shield) == 0)
			return 1;
	return 0;
}

static void log_evidence(const struct launch *l, const char *meas, const char *outcome, const char *reason)
{
	char clean[REASON_MAX + 1];
	clean_text(reason ? reason : "", clean, sizeof clean);
	fprintf(stderr, "arca-las: evidence pid=%d uid=%u measurement=%s %s%s%s\n", (int)l->peer.pid,
		(unsigned)l->peer.uid, meas, outcome, reason ? ": " : "", reason ? clean : "");
}

/* The one evidence request of this launch; the channel is closed after. */
static void serve_evidence(struct launch *l)
{
	uint8_t req[ARCA_LAS_REQ_LEN], extra;
	struct arca_measurement m = {0};
	struct arca_buf ev;
	struct arca_errbuf e = {{0}};
	char meas[ARCA_DIGEST_STR_LEN] = "-";
	struct timeval tv = {.tv_sec = LAS_IO_TIMEOUT_S, .tv_usec = 0};

	arca_buf_init(&ev, ARCA_LAS_MAX_RESP - 3, 0);
	/* A program that does not read its answer only loses it. */
	(void)setsockopt(l->chan, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	/* A program that ended (or gave up) without asking: nothing to say. */
	if (recv(l->chan, &extra, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		goto out;
	if (las_read_exact(l->chan, req, sizeof req, &e) < 0)
		goto refuse;
	if (memcmp(req, ARCA_LAS_REQ_MAGIC, 4) != 0) {
		arca_errf(&e, ARCA_EPARSE, "not an arca evidence request (bad magic)");
		goto refuse;
	}
	if (recv(l->chan, &extra, 1, MSG_DONTWAIT | MSG_PEEK) > 0) {
		arca_errf(&e, ARCA_EPARSE, "request longer than %d bytes", ARCA_LAS_REQ_LEN);
		goto refuse;
	}
	if (traced(l->peer.pid, &e) < 0)
		goto refuse;
	if (exe_is_program(l->peer.pid, &e) < 0)
		goto refuse;
	if (las_measure(l->ctx->caches, l->peer.pid, &m, &e) < 0)
		goto refuse;
	arca_digest_format(m.digest, meas);
	/* Before the confirmation below, which shows these reads of /proc
	 * by pid still named the process we forked. */
	int secret = las_has_secret_memory(l->peer.pid, &e);
	if (secret < 0)
		goto refuse;
	/* A program the loader started without the shield (swapped for a
	 * static or setuid one after the check) must not look protected. */
	if (!shield_mapped(&m, l->ctx->shield)) {
		arca_errf(&e, ARCA_EDENIED, "the shield %s is not mapped in process %d", l->ctx->shield,
			  (int)l->peer.pid);
		goto refuse;
	}
	/* Still the process we forked, holding its end only close-on-exec,
	 * and nobody attached while we measured. */
	if (las_peer_confirm(l->chan, &l->peer, &e) < 0 || traced(l->peer.pid, &e) < 0)
		goto refuse;

	/* Read now, not at start: the sysctl can change while LAS runs, and
	 * the evidence must say what held for this program. */
	int protected_ = las_ptrace_scope() >= 1;
	unsigned flags = (protected_ ? LAS_EV_PTRACE_PROTECTED : 0) | (secret ? LAS_EV_SECRET_MEMORY : 0);
	if (las_evidence(l->ctx, l->peer.pid, l->peer.uid, flags, m.digest, req + 4, &ev, &e) < 0)
		goto refuse;
	las_reply(l->chan, 0, ev.p, ev.len);
	char outcome[80];
	snprintf(outcome, sizeof outcome, "granted %s %s", protected_ ? "ptrace-protected" : "not-ptrace-protected",
		 secret ? "secret-memory" : "no-secret-memory");
	log_evidence(l, meas, outcome, NULL);
	goto out;
refuse:
	if (e.msg[0] == 0)
		arca_errf(&e, ARCA_EIO, "internal error");
	las_reply_text(l->chan, 1, e.msg);
	log_evidence(l, meas, "refused", e.msg);
out:
	arca_measurement_free(&m);
	arca_buf_free(&ev);
	close(l->chan);
	l->chan = -1;
}

/* arca run went away (or broke the protocol): hang up, as a terminal
 * would, and stop reporting. */
static void hang_up(struct launch *l)
{
	if (l->conn < 0)
		return;
	close(l->conn);
	l->conn = -1;
	(void)syscall(SYS_pidfd_send_signal, l->peer.pidfd, SIGHUP, NULL, 0);
}

static void *watch(void *arg)
{
	struct launch *l = arg;
	int status = 0;

	for (;;) {
		struct pollfd pfd[3] = {{.fd = l->peer.pidfd, .events = POLLIN},
					{.fd = l->chan, .events = POLLIN},
					{.fd = l->conn, .events = POLLIN}};
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "arca-las: watching pid %d: poll: %s\n", (int)l->peer.pid, strerror(errno));
			sleep(1);
			continue;
		}
		if (pfd[0].revents != 0)
			break;
		if (pfd[1].revents != 0)
			serve_evidence(l);
		if (pfd[2].revents != 0) {
			char c;
			ssize_t r = recv(l->conn, &c, 1, MSG_DONTWAIT);
			if (r >= 0 || (errno != EAGAIN && errno != EINTR))
				hang_up(l);
		}
	}
	while (waitpid(l->peer.pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status)) {
		send_u32(l->conn, ARCA_LAS_KILLED, (uint32_t)WTERMSIG(status));
		char why[32];
		snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
		log_launch(l->peer.pid, l->peer.uid, l->program, "ended", why);
	} else {
		send_u32(l->conn, ARCA_LAS_EXITED, (uint32_t)WEXITSTATUS(status));
		char why[32];
		snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
		log_launch(l->peer.pid, l->peer.uid, l->program, "ended", why);
	}

	unlist(l);
	if (l->chan >= 0)
		close(l->chan);
	if (l->conn >= 0)
		close(l->conn);
	las_peer_release(&l->peer);
	free(l);
	return NULL;
}

int las_launch_stop(int seconds)
{
	struct timespec until;

	/* Their supervisors go away with us: hang up, as a terminal would. */
	pthread_mutex_lock(&running.mu);
	for (struct launch *l = running.list; l != NULL; l = l->next)
		if (l->peer.pidfd >= 0)
			(void)syscall(SYS_pidfd_send_signal, l->peer.pidfd, SIGHUP, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	while (running.n > 0)
		if (pthread_cond_timedwait(&running.idle, &running.mu, &until) != 0)
			break;
	int left = running.n;
	pthread_mutex_unlock(&running.mu);
	return left;
}
