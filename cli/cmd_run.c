/* cmd_run.c: `arca run [--cas ADDR] [--las PATH] [--report] --session S
 * --service V [--] [CMD [ARGS]]`, which asks arca-las to start CMD protected
 * (CONTRACTS.md, "Trusted launch") and then stands in for it: its exit
 * status is the program's (128+N when killed by signal N) and SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT are passed on to it.
 *
 * arca-las, not arca run, starts the program, with an environment of its
 * own making: whoever runs arca run controls everything about arca run,
 * so nothing it could set (LD_PRELOAD, LD_LIBRARY_PATH, …) may reach the
 * program. arca run never sees a secret either: the shield attests and
 * receives the configuration inside the program. What arca run adds is
 * early, readable refusals (a static CMD, an unknown CAS) and the CAS
 * address as an IP, so that the shield resolves no name before it is
 * measured. Without CMD, the service's command is read from the session
 * with the owner's identity (GET /v1/sessions/S, policy JSON of
 * lib/policy_json.c). --report asks arca-las to have the shield print,
 * when the program exits, how much of its private writable memory was
 * secret memory (CONTRACTS.md "Coverage report"). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

#include "cli.h"
#include "launch.h"
#include "arca/buf.h"
#include "arca/evidence.h"
#include "arca/http.h"
#include "arca/las_launch.h"
#include "arca/policy.h"
#include "arca/proto.h"
#include "arca/x509.h"

#define SESSION_REPLY_MAX ((size_t)4 << 20)
/* From the request to "started": LAS checks and starts the program. */
#define LAUNCH_TIMEOUT_S 30

static const char usage_text[] =
	"arca run [--cas HOST:PORT] [--las PATH] [--report] --session S --service V [--] [CMD [ARGS...]]\n"
	"  --report   when the program exits, print on its stderr how much of its private writable\n"
	"             memory was secret memory, and its page faults";

struct run_opts {
	const char *cas, *las, *session, *service;
	char **cmd; /* NULL-terminated, or NULL when omitted */
	int report;
};

/* "--name VALUE" or "--name=VALUE"; 1 when argv[*i] is this option. */
static int take_opt(char **argv, int argc, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != 0 || *i + 1 >= argc)
		return 0;
	*out = argv[++*i];
	return 1;
}

static int parse(int argc, char **argv, struct run_opts *o)
{
	memset(o, 0, sizeof(*o));
	int i = 1;
	for (; i < argc; i++) {
		if (take_opt(argv, argc, &i, "--cas", &o->cas) || take_opt(argv, argc, &i, "--las", &o->las) ||
		    take_opt(argv, argc, &i, "--session", &o->session) ||
		    take_opt(argv, argc, &i, "--service", &o->service))
			continue;
		if (strcmp(argv[i], "--report") == 0) {
			o->report = 1;
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] == '-')
			return -1;
		break;
	}
	if (o->session == NULL || o->service == NULL)
		return -1;
	o->cmd = i < argc ? argv + i : NULL;
	return 0;
}

/* Whether a TCP connection to ai succeeds within a few seconds. */
static int reachable(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ok = 0;
	if (fd < 0)
		return 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		ok = 1;
	} else if (errno == EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof err;
		ok = poll(&pfd, 1, 3000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
	}
	close(fd);
	return ok;
}

/* The shield resolves nothing itself: a host name would make libc load
 * name-service modules before LAS measures, and those would then be part
 * of the measurement (and differ from `arca measure`'s). When the name has
 * several addresses (localhost: ::1 and 127.0.0.1), the first one that
 * accepts a connection is handed on, as a client trying them in turn
 * would end up using. */
static int numeric_cas(const char *addr, char *out, size_t cap)
{
	char host[256], port[16], ip[INET6_ADDRSTRLEN];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai, *pick = NULL;

	if (arca_hostport_split(addr, host, sizeof host, port, sizeof port) < 0)
		return cli_fail("%s is not a CAS address; give it as HOST:PORT", addr);
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL)
		return cli_fail("cannot resolve CAS host %s: %s", host, gai_strerror(rc));
	for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			pick = ai;
	if (pick != NULL && pick->ai_next != NULL) {
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && reachable(ai)) {
				pick = ai;
				break;
			}
		}
	}
	int fam = pick != NULL ? pick->ai_family : AF_UNSPEC;
	const void *a = fam == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr
		      : fam == AF_INET  ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
					: NULL;
	int ok = a != NULL && inet_ntop(fam, a, ip, sizeof ip) != NULL;
	freeaddrinfo(res);
	if (!ok)
		return cli_fail("cannot resolve CAS host %s to an IP address", host);
	int n = fam == AF_INET6 ? snprintf(out, cap, "[%s]:%s", ip, port) : snprintf(out, cap, "%s:%s", ip, port);
	if (n < 0 || (size_t)n >= cap)
		return cli_fail("CAS address too long");
	return 0;
}

static int session_error(const char *addr, const char *session, int status, const struct arca_buf *resp)
{
	char code[64] = "", detail[256] = "";
	if (arca_msg_error_decode(resp->p, resp->len, code, detail) < 0)
		return cli_fail("CAS %s answered HTTP %d to reading session %s", addr, status, session);
	if (strcmp(code, "forbidden") == 0 || strcmp(code, "unauthenticated") == 0)
		return cli_fail("only an owner of session %s can read its command; give CMD after --", session);
	if (strcmp(code, "not_found") == 0)
		return cli_fail("CAS %s has no session %s", addr, session);
	return cli_fail("CAS %s refused to read session %s (%s)", addr, session, code);
}

/* The service's command from the session: a NULL-terminated heap vector. */
static int session_command(const char *addr, const char *pin, const char *session, const char *service,
			   char ***out)
{
	char home[PATH_MAX], path[32 + ARCA_NAME_MAX];
	struct arca_identity id = {0};
	struct arca_errbuf e = {{0}};
	struct arca_http *h = NULL;
	struct arca_buf resp;
	json_t *root = NULL;
	int status = 0, rc = 1;

	arca_buf_init(&resp, SESSION_REPLY_MAX, 0);
	if (cli_home(home, sizeof home) < 0)
		return 1;
	int lr = arca_identity_load(home, &id, &e);
	if (lr == ARCA_ENOTFOUND)
		return cli_fail("no CMD given, and no identity in %s to read it from the session; give CMD after --",
				home);
	if (lr < 0)
		return cli_fail("cannot load your identity from %s: %s", home, e.msg);
	if (arca_http_connect(addr, pin, &id, &h, &e) < 0) {
		cli_fail("cannot connect to CAS %s: %s", addr, e.msg);
		goto out;
	}
	snprintf(path, sizeof path, "/v1/sessions/%s", session);
	if (arca_http_request(h, "GET", path, NULL, 0, &status, &resp, &e) < 0) {
		cli_fail("reading session %s from CAS %s failed: %s", session, addr, e.msg);
		goto out;
	}
	if (status != 200) {
		session_error(addr, session, status, &resp);
		goto out;
	}
	root = json_loadb((const char *)resp.p, resp.len, JSON_REJECT_DUPLICATES, NULL);
	json_t *services = json_object_get(json_object_get(root, "policy"), "services"), *svc, *cmd = NULL;
	size_t i;
	if (!json_is_array(services)) {
		cli_fail("CAS %s sent a session reply without a list of services", addr);
		goto out;
	}
	json_array_foreach(services, i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));
		if (name != NULL && strcmp(name, service) == 0) {
			cmd = json_object_get(svc, "command");
			break;
		}
	}
	if (cmd == NULL) {
		cli_fail("session %s has no service %s", session, service);
		goto out;
	}
	size_t n = json_array_size(cmd);
	if (!json_is_array(cmd) || n == 0) {
		cli_fail("service %s of session %s has no command; give CMD after --", service, session);
		goto out;
	}
	char **v = calloc(n + 1, sizeof(char *));
	if (v == NULL) {
		cli_fail("out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(cmd, i));
		v[i] = s != NULL ? strdup(s) : NULL;
		if (v[i] == NULL) {
			cli_fail("service %s of session %s has a malformed command", service, session);
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			goto out;
		}
	}
	/* argv[0] names the program to exec; a placeholder there would be a
	 * secret we do not have (and must not have). */
	if (strstr(v[0], "$$arca:") != NULL) {
		cli_fail("the command of service %s names its program through a secret; give CMD after --", service);
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
		goto out;
	}
	*out = v;
	rc = 0;
out:
	json_decref(root);
	arca_buf_free(&resp);
	if (h != NULL)
		arca_http_close(h);
	arca_identity_free(&id);
	return rc;
}

/* The program's path as LAS needs it: absolute (LAS checks and execs it
 * from the same directory, but the contract wants no ambiguity). */
static int absolute_path(const char *path, char *out, size_t cap)
{
	char cwd[PATH_MAX];
	int n;
	if (path[0] == '/') {
		n = snprintf(out, cap, "%s", path);
	} else {
		if (getcwd(cwd, sizeof cwd) == NULL)
			return cli_fail("cannot find the current directory: %s", strerror(errno));
		n = snprintf(out, cap, "%s/%s", cwd, path);
	}
	if (n < 0 || (size_t)n >= cap)
		return cli_fail("the path of %s is too long", path);
	return 0;
}

/* The descriptors the program gets: ours, with /dev/null for a closed
 * one (SCM_RIGHTS cannot carry a closed descriptor), and our directory,
 * as O_PATH through /proc/self/cwd (which needs no permission on the
 * directory itself): whether the program may enter it is for the kernel
 * to decide when LAS's child, as our user, tries. */
static int launch_fds(int fds[ARCA_LAS_LAUNCH_NFDS])
{
	for (int i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) >= 0) {
			fds[i] = i;
			continue;
		}
		fds[i] = open("/dev/null", i == 0 ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CLOEXEC);
		if (fds[i] < 0)
			return cli_fail("cannot open /dev/null: %s", strerror(errno));
	}
	fds[3] = open("/proc/self/cwd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[3] < 0)
		fds[3] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[3] < 0)
		return cli_fail("cannot open the current directory: %s", strerror(errno));
	return 0;
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])
static volatile sig_atomic_t pending[NFORWARDED];

static void note_signal(int sig)
{
	for (size_t i = 0; i < NFORWARDED; i++)
		if (forwarded[i] == sig)
			pending[i] = 1;
}

/* Waits for LAS to report the program's end, passing our signals on to it
 * meanwhile; returns our exit status. Signals are blocked except inside
 * ppoll, so none is lost between a check and the wait. */
static int supervise(int conn, pid_t pid, const sigset_t *waitmask)
{
	struct arca_errbuf e = {{0}};
	for (;;) {
		struct pollfd pfd = {.fd = conn, .events = POLLIN};
		int pr = ppoll(&pfd, 1, NULL, waitmask);
		for (size_t i = 0; i < NFORWARDED; i++) {
			if (pending[i]) {
				pending[i] = 0;
				/* Same uid: kill(2) needs no help from LAS. ESRCH is
				 * a program that just ended; LAS reports that next. */
				(void)kill(pid, forwarded[i]);
			}
		}
		if (pr < 0 && errno != EINTR)
			return cli_fail("waiting for arca-las: %s", strerror(errno));
		if (pr <= 0)
			continue;
		uint8_t type;
		uint32_t v;
		if (arca_las_reply_read(conn, &type, &v, &e) < 0)
			return cli_fail("lost arca-las while the program (pid %d) ran: %s; it may still be running",
					(int)pid, e.msg);
		if (type == ARCA_LAS_EXITED && v <= 255)
			return (int)v;
		if (type == ARCA_LAS_KILLED && v > 0 && v < 128)
			return 128 + (int)v;
		return cli_fail("arca-las sent an unexpected report about pid %d (type %u)", (int)pid, type);
	}
}

static void free_vec(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct arca_launch_req req;
	struct arca_errbuf e = {{0}};
	char pin[ARCA_FPR_LEN], cas[300], path[PATH_MAX], abspath[PATH_MAX];
	int fds[ARCA_LAS_LAUNCH_NFDS] = {-1, -1, -1, -1};
	char **from_session = NULL;
	sigset_t block, waitmask;
	int rc = 1;

	memset(&req, 0, sizeof req);
	if (parse(argc, argv, &o) < 0)
		return cli_usage(usage_text);
	if (!arca_name_valid(o.session) || !arca_name_valid(o.service))
		return cli_fail("session and service names are 1 to 128 characters of A-Z a-z 0-9 _ . ~ / -");
	/* A given CMD is checked first: the cheapest refusal, and the one
	 * that matters most (a static program would run unprotected). */
	if (o.cmd != NULL && launch_resolve(o.cmd[0], path, sizeof path) < 0)
		return 1;
	const char *addr = cli_cas_addr(o.cas);
	int pr = cli_pin_get(addr, pin);
	if (pr == ARCA_ENOTFOUND)
		return cli_fail("no pinned key for CAS %s; run arca cas attest %s first", addr, addr);
	if (pr < 0)
		return 1;
	char **cmd = o.cmd;
	if (cmd == NULL) {
		if (session_command(addr, pin, o.session, o.service, &from_session) != 0)
			return 1;
		cmd = from_session;
		if (launch_resolve(cmd[0], path, sizeof path) < 0)
			goto out;
	}
	if (numeric_cas(addr, cas, sizeof cas) != 0 || absolute_path(path, abspath, sizeof abspath) != 0)
		goto out;

	size_t n = 0;
	while (cmd[n] != NULL)
		n++;
	req.argc = n;
	req.argv = calloc(n + 1, sizeof(char *));
	if (req.argv == NULL) {
		cli_fail("out of memory");
		goto out;
	}
	req.argv[0] = abspath;
	for (size_t i = 1; i < n; i++)
		req.argv[i] = cmd[i];
	snprintf(req.session, sizeof req.session, "%s", o.session);
	snprintf(req.service, sizeof req.service, "%s", o.service);
	snprintf(req.cas, sizeof req.cas, "%s", cas);
	memcpy(req.cas_pin, pin, sizeof req.cas_pin);
	req.report = o.report;
	if (launch_fds(fds) != 0)
		goto out;

	/* Blocked from before the launch: a Ctrl-C while LAS starts the
	 * program waits and is passed on once its pid is known. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = note_signal;
	sigemptyset(&block);
	for (size_t i = 0; i < NFORWARDED; i++) {
		sigaddset(&block, forwarded[i]);
		sigaction(forwarded[i], &sa, NULL);
	}
	if (sigprocmask(SIG_BLOCK, &block, &waitmask) != 0) {
		cli_fail("cannot block signals: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < NFORWARDED; i++)
		sigdelset(&waitmask, forwarded[i]);

	uint32_t pid = 0;
	fflush(NULL);
	int conn = arca_las_launch(cli_las_path(o.las), &req, fds, LAUNCH_TIMEOUT_S, &pid, &e);
	if (conn == ARCA_EDENIED) {
		cli_fail("LAS refused to start the program: %s", e.msg);
		goto out;
	}
	if (conn < 0) {
		cli_fail("%s", e.msg);
		goto out;
	}
	/* The program has its own copies now. */
	for (int i = 0; i < ARCA_LAS_LAUNCH_NFDS; i++) {
		if (fds[i] > 2)
			close(fds[i]);
		fds[i] = -1;
	}
	rc = supervise(conn, (pid_t)pid, &waitmask);
	close(conn);
out:
	for (int i = 0; i < ARCA_LAS_LAUNCH_NFDS; i++)
		if (fds[i] > 2)
			close(fds[i]);
	free(req.argv);
	free_vec(from_session);
	return rc;
}
