/* peer.c: which process is asking, and is it still that process after it
 * was measured.
 *
 * Evidence names a process by what LAS measured; it is only worth
 * something if the code measured is the code that asked and that will read
 * the answer. Two races threaten that:
 *  - pid reuse: the asker exits and its pid names another process by the
 *    time LAS reads /proc. A pidfd (from SO_PEERPIDFD, else pidfd_open)
 *    pins the process: while it is alive, even as a zombie, its pid and
 *    /proc entry cannot be given to another; the start time is checked too.
 *  - exec: a process connects and sends report data binding a key it
 *    knows, hands a copy of the socket to a helper, then execs a program
 *    that measures well. LAS would sign the good measurement and the helper
 *    would read it. So after measuring, LAS requires that the process
 *    itself still holds the client end of the connection and only through
 *    close-on-exec descriptors (arca_las_request opens it SOCK_CLOEXEC):
 *    an exec since connecting would have closed them. The client end is
 *    found through sock_diag (its inode, as the peer of ours). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "las.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

int las_peer_cred(int conn, struct las_peer *p, struct arca_errbuf *e)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	memset(p, 0, sizeof(*p));
	p->pidfd = -1;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred)
		return arca_errf(e, ARCA_EIO, "cannot get the peer's credentials: %s", strerror(errno));
	if (cred.pid <= 0)
		return arca_errf(e, ARCA_EDENIED,
				 "the peer is not a process this LAS can see (another pid namespace?)");
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	return 0;
}

/* Reads /proc/PID/FILE (one read: these files are generated whole) into
 * buf as a NUL-terminated string; a process that is gone is ARCA_ENOTFOUND. */
int las_proc_read(pid_t pid, const char *file, char *buf, size_t cap, struct arca_errbuf *e)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return arca_errf(e, ARCA_ENOTFOUND, "process %d exited", (int)pid);
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return arca_errf(e, ARCA_ENOTFOUND, "process %d exited", (int)pid);
	buf[n] = 0;
	return 0;
}

/* Field 22 of /proc/PID/stat; the command name (field 2) may contain
 * spaces and parentheses, so fields are counted from its last ')'. */
static int read_starttime(pid_t pid, unsigned long long *out, struct arca_errbuf *e)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	GUARD(las_proc_read(pid, "stat", buf, sizeof buf, e));
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return arca_errf(e, ARCA_EPARSE, "cannot parse %s", path);
	p++;
	/* After ')' come fields 3 (state) … 22 (starttime). */
	for (int field = 3; field <= 22; field++) {
		if (*p != ' ')
			return arca_errf(e, ARCA_EPARSE, "cannot parse %s", path);
		p++;
		char *start = p;
		while (*p != ' ' && *p != 0 && *p != '\n')
			p++;
		if (p == start)
			return arca_errf(e, ARCA_EPARSE, "cannot parse %s", path);
		if (field == 22) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(start, &end, 10);
			if (errno != 0 || end != p)
				return arca_errf(e, ARCA_EPARSE, "cannot parse %s", path);
			*out = v;
		}
	}
	return 0;
}

int las_peer_child(pid_t pid, uid_t uid, gid_t gid, struct las_peer *p, struct arca_errbuf *e)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->uid = uid;
	p->gid = gid;
	/* pidfd_open's descriptor is close-on-exec. */
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->pidfd < 0)
		return arca_errf(e, ARCA_EIO, "cannot pin process %d: %s", (int)pid, strerror(errno));
	return read_starttime(pid, &p->starttime, e);
}

int las_peer_pin(int conn, struct las_peer *p, struct arca_errbuf *e)
{
	socklen_t len = sizeof p->pidfd;
	/* SO_PEERPIDFD names the process that connected even if its pid has
	 * been reused since; pidfd_open(pid) is the fallback for older kernels. */
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &p->pidfd, &len) < 0 || len != sizeof p->pidfd) {
		p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
		if (p->pidfd < 0)
			return arca_errf(e, errno == ESRCH ? ARCA_ENOTFOUND : ARCA_EIO,
					 "cannot pin process %d: %s", (int)p->pid, strerror(errno));
		if (fcntl(p->pidfd, F_SETFD, FD_CLOEXEC) < 0)
			return arca_errf(e, ARCA_EIO, "fcntl: %s", strerror(errno));
	}
	GUARD(read_starttime(p->pid, &p->starttime, e));
	return 0;
}

void las_peer_release(struct las_peer *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

/* The inode of the client end of conn. */
static int peer_socket_inode(int conn, uint32_t *peer, struct arca_errbuf *e)
{
	struct stat st;
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} q;
	union {
		struct nlmsghdr nlh;
		uint8_t raw[8192];
	} r;
	struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
	int rc = ARCA_EIO;

	if (fstat(conn, &st) < 0)
		return arca_errf(e, ARCA_EIO, "fstat: %s", strerror(errno));
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return arca_errf(e, ARCA_EIO, "cannot open sock_diag: %s", strerror(errno));
	(void)setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

	memset(&q, 0, sizeof q);
	q.nlh.nlmsg_len = sizeof q;
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST;
	q.nlh.nlmsg_seq = 1;
	q.req.sdiag_family = AF_UNIX;
	q.req.udiag_states = ~0u;
	q.req.udiag_ino = (uint32_t)st.st_ino;
	q.req.udiag_show = UDIAG_SHOW_PEER;
	q.req.udiag_cookie[0] = q.req.udiag_cookie[1] = ~0u; /* no cookie */
	if (send(nl, &q, sizeof q, 0) != (ssize_t)sizeof q) {
		rc = arca_errf(e, ARCA_EIO, "sock_diag request failed: %s", strerror(errno));
		goto out;
	}
	ssize_t n = recv(nl, &r, sizeof r, 0);
	if (n < (ssize_t)sizeof(struct nlmsghdr) || !NLMSG_OK(&r.nlh, (size_t)n)) {
		rc = arca_errf(e, ARCA_EIO, "no sock_diag answer (is unix_diag available?)");
		goto out;
	}
	if (r.nlh.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = NLMSG_DATA(&r.nlh);
		rc = arca_errf(e, ARCA_EIO, "sock_diag: %s",
			       r.nlh.nlmsg_len >= NLMSG_LENGTH(sizeof *err) ? strerror(-err->error) : "error");
		goto out;
	}
	if (r.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY || r.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg))) {
		rc = arca_errf(e, ARCA_EIO, "sock_diag: unexpected answer");
		goto out;
	}
	const struct unix_diag_msg *m = NLMSG_DATA(&r.nlh);
	if (m->udiag_ino != (uint32_t)st.st_ino) {
		rc = arca_errf(e, ARCA_EIO, "sock_diag answered for another socket");
		goto out;
	}
	int alen = (int)(r.nlh.nlmsg_len - NLMSG_LENGTH(sizeof *m));
	for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
		if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
			memcpy(peer, RTA_DATA(a), sizeof *peer);
			rc = 0;
			goto out;
		}
	}
	rc = arca_errf(e, ARCA_ENOTFOUND, "the client closed its end of the connection");
out:
	close(nl);
	return rc;
}

/* "flags:\t0NNN" of /proc/PID/fdinfo/FD, which includes O_CLOEXEC. */
static int fd_is_cloexec(int fdinfo_dir, const char *fdname, int *cloexec)
{
	char buf[512];
	int fd = openat(fdinfo_dir, fdname, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ARCA_EIO;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return ARCA_EIO;
	buf[n] = 0;
	char *f = strstr(buf, "\nflags:\t");
	if (f == NULL)
		return ARCA_EPARSE;
	char *end;
	errno = 0;
	unsigned long v = strtoul(f + 8, &end, 8);
	if (errno != 0 || end == f + 8 || *end != '\n')
		return ARCA_EPARSE;
	*cloexec = (v & O_CLOEXEC) != 0;
	return 0;
}

static int all_digits(const char *s)
{
	size_t n = 0;
	for (; s[n] != 0; n++)
		if (s[n] < '0' || s[n] > '9' || n > 10)
			return 0;
	return n > 0;
}

/* Whether pid holds socket inode ino, and only with close-on-exec. */
static int holds_cloexec(pid_t pid, uint32_t ino, struct arca_errbuf *e)
{
	char path[64], want[48], target[64];
	int found = 0, rc = 0;

	snprintf(want, sizeof want, "socket:[%" PRIu32 "]", ino);
	snprintf(path, sizeof path, "/proc/%d/fdinfo", (int)pid);
	int info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = info >= 0 ? opendir(path) : NULL;
	if (d == NULL) {
		rc = arca_errf(e, ARCA_EDENIED, "cannot list the descriptors of process %d: %s", (int)pid,
			       strerror(errno));
		if (info >= 0)
			close(info);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!all_digits(de->d_name))
			continue;
		ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, want) != 0)
			continue;
		int cloexec = 0;
		if (fd_is_cloexec(info, de->d_name, &cloexec) < 0) {
			rc = arca_errf(e, ARCA_EDENIED, "cannot read the flags of descriptor %s of process %d",
				       de->d_name, (int)pid);
			break;
		}
		if (!cloexec) {
			rc = arca_errf(e, ARCA_EDENIED,
				       "process %d holds its connection to LAS on descriptor %s without close-on-exec; "
				       "a program it execs could read the evidence",
				       (int)pid, de->d_name);
			break;
		}
		found = 1;
	}
	closedir(d);
	close(info);
	if (rc == 0 && !found)
		rc = arca_errf(e, ARCA_EDENIED,
			       "process %d no longer holds the connection it asked on (did it exec or hand it on?)",
			       (int)pid);
	return rc;
}

int las_peer_confirm(int conn, const struct las_peer *p, struct arca_errbuf *e)
{
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	unsigned long long st2;
	uint32_t peer_ino;

	/* A pidfd turns readable when its process exits. */
	if (poll(&pfd, 1, 0) != 0)
		return arca_errf(e, ARCA_ENOTFOUND, "process %d exited while it was being measured", (int)p->pid);
	GUARD(read_starttime(p->pid, &st2, e));
	if (st2 != p->starttime)
		return arca_errf(e, ARCA_EDENIED, "process %d was replaced while it was being measured", (int)p->pid);
	GUARD(peer_socket_inode(conn, &peer_ino, e));
	GUARD(holds_cloexec(p->pid, peer_ino, e));
	/* The checks above read /proc by pid; the pidfd shows it still named
	 * the pinned process throughout. */
	if (poll(&pfd, 1, 0) != 0)
		return arca_errf(e, ARCA_ENOTFOUND, "process %d exited while it was being measured", (int)p->pid);
	return 0;
}
