/* seccomp_exec.c: runs a program on a kernel that, as far as it and its
 * descendants can tell, has no memfd_secret(2): a seccomp filter makes the
 * call fail with ENOSYS (as on a kernel built without it), then execs the
 * arguments. tests/integration/test_no_secretmem.sh starts arca-las under
 * it; every program arca-las launches inherits the filter, so the memory
 * shield's fallback and CAS's no-secret-memory rule can be tested on a
 * host where memfd_secret works.
 *
 *   arca-test-seccomp-exec PROGRAM [ARGS...]
 *
 * Exit status 127 when the filter cannot be installed or PROGRAM cannot
 * be executed. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447 /* x86_64 and the generic table (arm64, riscv) alike */
#endif

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define ARCH AUDIT_ARCH_RISCV64
#else
#error "seccomp_exec.c: unknown architecture"
#endif

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: arca-test-seccomp-exec PROGRAM [ARGS...]\n");
		return 127;
	}
	struct sock_filter code[] = {
		/* Another architecture's calls (a 32-bit program) pass: the
		 * numbers differ there, and arca runs none. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_secret, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};

	/* Root may install a filter without no_new_privs; keeping it unset
	 * leaves arca-las exactly as it runs elsewhere. Others need it. */
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		if (errno != EACCES || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
			fprintf(stderr, "arca-test-seccomp-exec: cannot install the filter: %s\n", strerror(errno));
			return 127;
		}
	}
	/* The filter must hold, or the test would pass for the wrong reason. */
	errno = 0;
	if (syscall(__NR_memfd_secret, 0) >= 0 || errno != ENOSYS) {
		fprintf(stderr, "arca-test-seccomp-exec: memfd_secret still works under the filter\n");
		return 127;
	}
	execv(argv[1], argv + 1);
	fprintf(stderr, "arca-test-seccomp-exec: cannot execute %s: %s\n", argv[1], strerror(errno));
	return 127;
}
