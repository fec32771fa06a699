#!/usr/bin/env bash
# test_launch.sh: trusted launch (CONTRACTS.md "Trusted launch") against the
# real daemons, as the security review's attacks would try it: a local user
# asking the public LAS socket for evidence; a protected program started by
# hand with a second preloaded library; reading or tracing a protected
# program as its own (non-root) user; host variables handed to `arca run`;
# and what `arca run` owes its caller: the program's exit status, signals
# passed on, a hangup when it goes away, LAS's refusals in one line.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
demo=$ARCA_BUILD/bin/arca-demo
client=$ARCA_BUILD/bin/arca-test-las-client
shield=$(readlink -f "$ARCA_BUILD/lib/libarca-shield.so")
for b in "$arca" "$demo" "$client" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$shield"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
for c in python3 setpriv cc; do
  command -v $c >/dev/null || { echo "SKIP: $c is needed"; exit 77; }
done
# uid 65534 cannot use a python3 that lives in root's home (pyenv).
py=/usr/bin/python3
[[ -x $py ]] || { echo "SKIP: $py is needed (a python3 any user can run)"; exit 77; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (arca-las runs as root; the checks switch to uid 65534)"; exit 77; }
nob_uid=65534 nob_gid=65534
as_nobody() { setpriv --reuid=$nob_uid --regid=$nob_gid --clear-groups "$@"; }

tmp=$(mktemp -d /tmp/arca-launch.XXXXXX)
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
bg=()
cleanup() {
  for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; done
  arca_stop_all; rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
pin=$(awk '{print $2}' "$ARCA_HOME/cas-pins")
# uid 65534 runs arca run with a home of its own holding the same pin.
nhome=$tmp/nobody-home
mkdir -p "$nhome" && cp "$ARCA_HOME/cas-pins" "$nhome/" && chown -R $nob_uid:$nob_gid "$nhome" && chmod 700 "$nhome"

measure() { "$arca" measure -- "$1" | sed -n 's/^measurement //p'; }
sh_bin=$(readlink -f /bin/sh)
sleep_bin=$(readlink -f "$(type -P sleep)")
m_demo=$(measure "$demo") m_sh=$(measure "$sh_bin") m_sleep=$(measure "$sleep_bin")
[[ $m_demo == sha256:* && $m_sh == sha256:* && $m_sleep == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }
cat >"$tmp/s.yaml" <<YAML
name: launch
services:
  - name: hold
    command: ["$demo", --config, /etc/demo/app.ini, --env-names, --hold, "30"]
    measurement: "$m_demo"
    platform: {sim: {}}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
    files: {/etc/demo/app.ini: "password = \$\$arca:pw\$\$\n"}
  - name: three
    command: ["$sh_bin", -c, "exit 3"]
    measurement: "$m_sh"
    platform: {sim: {}}
  - name: sleep
    command: ["$sleep_bin", "30"]
    measurement: "$m_sleep"
    platform: {sim: {}}
secrets:
  - {name: pw, kind: ascii, size: 16}
$(arca_host_tolerate --user)
YAML
"$arca" session create "$tmp/s.yaml" >/dev/null || exit 1
las_log=$tmp/las.out.err

# launched_pid OUTFILE: the pid arca-las started for the arca run whose
# output goes to OUTFILE, once its main printed "main started" (demo) or
# its launch was logged (others, by program path in $2).
wait_main() {
  local out=$1 i pid
  for ((i = 0; i < 100; i++)); do
    pid=$(sed -n 's/^demo: main started (pid \([0-9]*\)).*/\1/p' "$out" 2>/dev/null)
    [[ -n $pid ]] && { echo "$pid"; return 0; }
    sleep 0.1
  done
  return 1
}
wait_launch() {  # wait_launch PROGRAM SKIP: the pid of the launch of PROGRAM after the first SKIP log lines
  local prog=$1 skip=$2 i pid
  for ((i = 0; i < 100; i++)); do
    pid=$(tail -n "+$((skip + 1))" "$las_log" | sed -n "s|^arca-las: launch pid=\([0-9]*\) uid=[0-9]* program=$prog started|\1|p" | head -n 1)
    [[ -n $pid ]] && { echo "$pid"; return 0; }
    sleep 0.1
  done
  return 1
}
gone() { local i; for ((i = 0; i < 50; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

# --- (a) the public socket gives evidence to root (arca-cas) only ---
out=$(as_nobody "$client" "$ARCA_LAS"); rc=$?
if [[ $rc -ne 0 && $out == *"evidence is only given to programs started through arca run"* ]]; then
  pass "uid 65534 asking the public socket for evidence is refused"
else
  fail "uid 65534 on the public socket (rc $rc): $out"
fi
out=$("$client" "$ARCA_LAS"); rc=$?
[[ $rc -eq 0 && $out == verified* ]] && pass "root on the public socket still gets evidence (arca-cas attests itself)" || fail "root on the public socket (rc $rc): $out"
# LAS did not start that caller: its evidence never claims ptrace protection.
[[ $out == *" flags=0 "* ]] && pass "evidence for a caller of the socket is not marked ptrace-protected" || fail "flags of root's evidence: $out"

# --- (b) started by hand with a second preloaded library: no evidence ---
cat >"$tmp/evil.c" <<'C'
/* The review's attacker: runs first, asks LAS for evidence of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
static void ask(FILE *out, const char *what, int fd)
{
	unsigned char req[68] = "ALR1", hdr[3];
	char reason[512] = "";
	if (fd < 0 || write(fd, req, sizeof req) != (ssize_t)sizeof req || recv(fd, hdr, 3, MSG_WAITALL) != 3) {
		fprintf(out, "%s: no answer\n", what);
		return;
	}
	size_t n = hdr[1] | hdr[2] << 8;
	if (hdr[0] == 0) {
		fprintf(out, "%s: EVIDENCE GRANTED\n", what);
		return;
	}
	if (n >= sizeof reason) n = sizeof reason - 1;
	recv(fd, reason, n, MSG_WAITALL);
	fprintf(out, "%s: refused: %s\n", what, reason);
}
__attribute__((constructor)) static void evil(void)
{
	FILE *out = fopen(getenv("EVIL_OUT"), "w");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strncpy(sa.sun_path, getenv("EVIL_SOCK"), sizeof sa.sun_path - 1);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	ask(out, "public socket", connect(s, (struct sockaddr *)&sa, sizeof sa) == 0 ? s : -1);
	const char *fd = getenv("ARCA_LAS_FD");
	ask(out, "ARCA_LAS_FD", fd ? (int)strtol(fd, NULL, 10) : -1);
	fclose(out);
}
C
cc -shared -fPIC -o "$tmp/evil.so" "$tmp/evil.c" || { echo "FAIL: cannot build evil.so"; exit 1; }
chmod 755 "$tmp/evil.so"
# by_hand OUT ERR ENV…: the demo started as uid 65534 without arca-las,
# with fd 3 connected to the public LAS socket (the only LAS it can reach).
by_hand() {
  local out=$1 err=$2; shift 2
  as_nobody "$py" - "$ARCA_LAS" "$demo" "$@" >"$out" 2>"$err" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)  # dup2 onto itself keeps the socket's close-on-exec
env = dict(a.split("=", 1) for a in sys.argv[3:])
os.execve(sys.argv[2], [sys.argv[2], "--hold", "0"], env)
PY
}
common=(ARCA_SHIELD_MODE=attest "ARCA_CAS=$ARCA_CAS" "ARCA_CAS_PIN=$pin" ARCA_SESSION=launch ARCA_SERVICE=hold
        ARCA_LAS_FD=3 "EVIL_SOCK=$ARCA_LAS" "EVIL_OUT=$tmp/evil.out")
rm -f "$tmp/evil.out"; touch "$tmp/evil.out"; chmod 666 "$tmp/evil.out"
by_hand "$tmp/b.out" "$tmp/b.err" "LD_PRELOAD=$shield $tmp/evil.so" "${common[@]}"; rc=$?
if [[ $rc -eq 78 ]] && ! grep -q 'main started' "$tmp/b.out" && grep -q 'LD_PRELOAD must name only the shield' "$tmp/b.err"; then
  pass "shield + evil.so by hand: the shield refuses (78) before main"
else
  fail "shield + evil.so by hand: rc $rc out '$(cat "$tmp/b.out")' err '$(cat "$tmp/b.err")'"
fi
if grep -q 'public socket: refused: .*started through arca run' "$tmp/evil.out" && ! grep -q GRANTED "$tmp/evil.out"; then
  pass "evil.so got no evidence: $(tr '\n' ';' <"$tmp/evil.out")"
else
  fail "evil.so: $(cat "$tmp/evil.out")"
fi
by_hand "$tmp/b.out" "$tmp/b.err" "LD_PRELOAD=$shield" LD_LIBRARY_PATH=/nonexistent "${common[@]}"; rc=$?
[[ $rc -eq 78 ]] && grep -q 'loader variable LD_LIBRARY_PATH' "$tmp/b.err" && pass "LD_LIBRARY_PATH by hand refused" || fail "LD_LIBRARY_PATH by hand: rc $rc $(cat "$tmp/b.err")"
by_hand "$tmp/b.out" "$tmp/b.err" "LD_PRELOAD=$shield" "${common[@]}"; rc=$?
if [[ $rc -eq 78 ]] && ! grep -q 'main started' "$tmp/b.out" && grep -q 'started through arca run' "$tmp/b.err"; then
  pass "clean start by hand (fd 3 on the public socket) gets no evidence: $(head -n1 "$tmp/b.err")"
else
  fail "clean start by hand: rc $rc out '$(cat "$tmp/b.out")' err '$(cat "$tmp/b.err")'"
fi

# --- (c) a launched program is not readable or traceable by its own user ---
n0=$(wc -l <"$las_log")
(cd "$tmp" && exec setpriv --reuid=$nob_uid --regid=$nob_gid --clear-groups env ARCA_HOME="$nhome" \
  "$arca" run --session launch --service hold -- "$demo") >"$tmp/c.out" 2>"$tmp/c.err" &
run_pid=$!; bg+=($run_pid)
if pid=$(wait_main "$tmp/c.out"); then
  [[ $(awk '/^Uid:/ {print $2}' "/proc/$pid/status") == "$nob_uid" ]] && pass "the program runs as the caller (uid $nob_uid)" || fail "uid of pid $pid: $(grep Uid "/proc/$pid/status")"
  out=$(as_nobody "$py" - "$pid" <<'PY'
import ctypes, errno, os, sys
pid = int(sys.argv[1])
res = []
try:
    with open("/proc/%d/mem" % pid, "rb") as f:
        f.seek(0x400000); f.read(16)
    res.append("mem:READ")
except OSError as e:
    res.append("mem:" + errno.errorcode.get(e.errno, str(e.errno)))
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
    res.append("ptrace:ATTACHED")
    libc.ptrace(PTRACE_DETACH, pid, None, None)
else:
    res.append("ptrace:" + errno.errorcode.get(ctypes.get_errno(), "?"))
try:
    open("/proc/%d/environ" % pid, "rb").read()
    res.append("environ:READ")
except OSError as e:
    res.append("environ:" + errno.errorcode.get(e.errno, str(e.errno)))
print(" ".join(res))
PY
)
  if [[ $out =~ ^mem:(EACCES|EPERM)\ ptrace:(EPERM|EACCES)\ environ:(EACCES|EPERM)$ ]]; then
    pass "uid $nob_uid cannot read /proc/PID/mem, ptrace or read the environment of its protected program ($out)"
  else
    fail "same-uid access to pid $pid: $out"
  fi
  [[ $(awk '/^TracerPid:/ {print $2}' "/proc/$pid/status") == 0 ]] && pass "nobody traces it" || fail "TracerPid of $pid"
  [[ $(awk '/^PPid:/ {print $2}' "/proc/$pid/status") == "$LAS_PID" ]] && pass "its parent is arca-las" || fail "parent of $pid: $(grep PPid "/proc/$pid/status")"
  [[ $(awk '{print $6}' "/proc/$pid/stat") == "$pid" ]] && pass "it leads a session of its own (setsid)" || fail "session of $pid: $(cat "/proc/$pid/stat")"
  # The evidence channel was used once and closed; nothing else of
  # arca-las's leaked into the program.
  fds=$(ls "/proc/$pid/fd" | sort -n | tr '\n' ' ')
  ! ls -l "/proc/$pid/fd" | grep -q 'socket:' && pass "no socket left in the program (fds: $fds)" || fail "descriptors of $pid: $(ls -l "/proc/$pid/fd")"
  grep -q "evidence pid=$pid uid=$nob_uid measurement=$m_demo granted" "$las_log" && pass "LAS gave evidence for that pid, with the demo's measurement" || fail "no evidence line for $pid"
  # The launched program's evidence says what this host's Yama did for it.
  if arca_ptrace_protected; then want=ptrace-protected; else want=not-ptrace-protected; fi
  grep -qE "evidence pid=$pid uid=$nob_uid measurement=$m_demo granted $want (no-)?secret-memory\$" "$las_log" && pass "its evidence is marked $want, as this host's kernel.yama.ptrace_scope says" || fail "evidence mark for $pid (want $want): $(grep "evidence pid=$pid" "$las_log")"
  kill -TERM "$run_pid"; wait "$run_pid"; rc=$?
  [[ $rc -eq 143 ]] && gone "$pid" && pass "SIGTERM to arca run ends the program; arca run exits 143" || fail "SIGTERM: rc $rc, $pid $(gone "$pid" && echo gone || echo alive)"
else
  fail "the held program did not start: $(cat "$tmp/c.out" "$tmp/c.err")"
fi

# --- (d) host variables never reach the program ---
(cd "$tmp" && FOO=bar PYTHONPATH=/tmp/evil LD_LIBRARY_PATH=/nonexistent LD_AUDIT=/nonexistent \
  "$arca" run --session launch --service hold -- "$demo") >"$tmp/d.out" 2>"$tmp/d.err" &
run_pid=$!; bg+=($run_pid)
if pid=$(wait_main "$tmp/d.out"); then
  names=$(tr '\0' '\n' <"/proc/$pid/environ" | cut -d= -f1 | sort | tr '\n' ' ')
  want="ARCA_CAS ARCA_CAS_PIN ARCA_LAS_FD ARCA_SERVICE ARCA_SESSION ARCA_SHIELD_MODE LD_PRELOAD "
  [[ $names == "$want" ]] && pass "the program was started with exactly: $names" || fail "exec environment of $pid: $names"
  tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "LD_PRELOAD=$shield" && pass "LD_PRELOAD is LAS's shield" || fail "LD_PRELOAD of $pid: $(tr '\0' '\n' <"/proc/$pid/environ" | grep LD_PRELOAD)"
  sleep 0.3
  if grep -q '^env-name DB_PASSWORD' "$tmp/d.out" && ! grep -qE '^env-name (FOO|PYTHONPATH|LD_|ARCA_)' "$tmp/d.out"; then
    pass "main's environment is the session's only"
  else
    fail "main's environment: $(grep env-name "$tmp/d.out" | tr '\n' ' ')"
  fi
  kill -INT "$run_pid"; wait "$run_pid"; rc=$?
  [[ $rc -eq 130 ]] && gone "$pid" && pass "SIGINT passed on; arca run exits 130" || fail "SIGINT: rc $rc"
else
  fail "the held program did not start: $(cat "$tmp/d.out" "$tmp/d.err")"
fi

# --- (e) exit status, signals, hangup ---
"$arca" run --session launch --service three -- "$sh_bin" >"$tmp/e.out" 2>"$tmp/e.err"; rc=$?
[[ $rc -eq 3 && ! -s $tmp/e.out && ! -s $tmp/e.err ]] && pass "exit status 3 passed through, nothing printed" || fail "exit 3: rc $rc $(cat "$tmp/e.out" "$tmp/e.err")"
n0=$(wc -l <"$las_log")
"$arca" run --session launch --service sleep -- "$sleep_bin" >"$tmp/s.out" 2>"$tmp/s.err" &
run_pid=$!; bg+=($run_pid)
if pid=$(wait_launch "$sleep_bin" "$n0"); then
  sleep 0.5
  kill -QUIT "$run_pid"; wait "$run_pid"; rc=$?
  [[ $rc -eq 131 ]] && gone "$pid" && pass "SIGQUIT passed on; arca run exits 131" || fail "SIGQUIT: rc $rc"
else
  fail "sleep was not launched: $(cat "$tmp/s.err")"
fi
n0=$(wc -l <"$las_log")
"$arca" run --session launch --service sleep -- "$sleep_bin" >"$tmp/s.out" 2>"$tmp/s.err" &
run_pid=$!; bg+=($run_pid)
if pid=$(wait_launch "$sleep_bin" "$n0"); then
  sleep 0.5
  kill -KILL "$run_pid"; wait "$run_pid" 2>/dev/null
  if gone "$pid" && sleep 0.2 && grep -q "launch pid=$pid .* ended: killed by signal 1" "$las_log"; then
    pass "arca run killed: LAS hangs up the program (SIGHUP)"
  else
    fail "after arca run died, pid $pid: $(tail -n 3 "$las_log")"
  fi
else
  fail "sleep was not launched: $(cat "$tmp/s.err")"
fi

# --- LAS's refusal reaches the caller in one line ---
mkdir -p "$tmp/locked" && chown $nob_uid:$nob_gid "$tmp/locked"
# arca run passes its directory on without entering it; LAS's child, as
# uid 65534, may not enter a directory of mode 000.
(cd "$tmp/locked" && chmod 000 . && exec setpriv --reuid=$nob_uid --regid=$nob_gid --clear-groups \
  env ARCA_HOME="$nhome" "$arca" run --session launch --service three -- "$sh_bin") >"$tmp/r.out" 2>"$tmp/r.err"; rc=$?
if [[ $rc -eq 1 && $(wc -l <"$tmp/r.err") -eq 1 ]] && grep -q '^arca: LAS refused to start the program: cannot enter the working directory' "$tmp/r.err"; then
  pass "refusal by LAS: $(cat "$tmp/r.err")"
else
  fail "refusal by LAS: rc $rc '$(cat "$tmp/r.err")'"
fi

if [[ $failures -ne 0 ]]; then
  echo "test_launch: $failures check(s) failed"
  exit 1
fi
echo "test_launch: all checks passed"
