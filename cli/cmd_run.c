/* cmd_run.c: `arca run [--cas ADDR] [--las PATH] --session S --service V
 * [--] [CMD [ARGS]]`, which execs CMD with the shield preloaded in attest
 * mode (CONTRACTS.md, "The shield's environment").
 *
 * arca run never sees a secret: the shield attests and receives the
 * configuration inside the program. All it does is check that CMD can
 * carry the shield and hand over where CAS and LAS are. Without CMD, the
 * service's command is read from the session with the owner's identity
 * (GET /v1/sessions/S, policy JSON of lib/policy_json.c). */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
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
#include "arca/http.h"
#include "arca/policy.h"
#include "arca/proto.h"
#include "arca/x509.h"

#define SESSION_REPLY_MAX ((size_t)4 << 20)

static const char usage_text[] =
	"arca run [--cas HOST:PORT] [--las PATH] --session S --service V [--] [CMD [ARGS...]]";

struct run_opts {
	const char *cas, *las, *session, *service;
	char **cmd; /* NULL-terminated, or NULL when omitted */
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

/* The shield connects from the program's working directory: pass an
 * absolute path that fits a Unix socket address. */
static int absolute_las(const char *las, char *out, size_t cap)
{
	char cwd[PATH_MAX];
	int n;
	if (las[0] == '/') {
		n = snprintf(out, cap, "%s", las);
	} else {
		if (getcwd(cwd, sizeof cwd) == NULL)
			return cli_fail("cannot find the current directory: %s", strerror(errno));
		n = snprintf(out, cap, "%s/%s", cwd, las);
	}
	if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cli_fail("LAS socket path %s is too long for a Unix socket", las);
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

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	char pin[ARCA_FPR_LEN], cas[300], las[PATH_MAX], path[PATH_MAX], shield[PATH_MAX];
	struct launch_env le;

	if (parse(argc, argv, &o) < 0)
		return cli_usage(usage_text);
	if (!arca_name_valid(o.session) || !arca_name_valid(o.service))
		return cli_fail("session and service names are 1 to 128 characters of A-Z a-z 0-9 _ . ~ / -");
	/* A given CMD is checked first: the cheapest refusal, and the one
	 * that matters most (a static program would run unprotected). */
	if (o.cmd != NULL && launch_resolve(o.cmd[0], path, sizeof path) < 0)
		return 1;
	const char *addr = cli_cas_addr(o.cas);
	int rc = cli_pin_get(addr, pin);
	if (rc == ARCA_ENOTFOUND)
		return cli_fail("no pinned key for CAS %s; run arca cas attest %s first", addr, addr);
	if (rc < 0)
		return 1;
	if (absolute_las(cli_las_path(o.las), las, sizeof las) != 0)
		return 1;
	char **cmd = o.cmd;
	if (cmd == NULL) {
		if (session_command(addr, pin, o.session, o.service, &cmd) != 0)
			return 1;
		if (launch_resolve(cmd[0], path, sizeof path) < 0)
			return 1;
	}
	if (numeric_cas(addr, cas, sizeof cas) != 0)
		return 1;
	if (cli_shield_path(shield, sizeof shield) < 0)
		return 1;
	if (launch_env_init(&le, shield, "attest") < 0 || launch_env_add(&le, "ARCA_CAS", cas) < 0 ||
	    launch_env_add(&le, "ARCA_CAS_PIN", pin) < 0 || launch_env_add(&le, "ARCA_LAS", las) < 0 ||
	    launch_env_add(&le, "ARCA_SESSION", o.session) < 0 || launch_env_add(&le, "ARCA_SERVICE", o.service) < 0)
		return cli_fail("the shield's environment does not fit");
	fflush(NULL);
	launch_exec(path, cmd, &le);
	return 1;
}
