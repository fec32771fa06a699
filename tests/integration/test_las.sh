#!/usr/bin/env bash
# test_las.sh: arca-las as its users see it: the ready line and key files of
# CONTRACTS.md, a fingerprint that survives restarts, evidence that verifies
# for root asking for itself and is refused to anyone else (programs get it
# only through a launch, test_launch.sh), the launch request's refusals and
# the exit status it reports, refusals (exec-able socket, bad request, slow
# client, second daemon, unsupported platform, loose key permissions, no
# root, a shield others could change), the one warning line on a host
# without Yama ptrace protection (and none where it has it), many more
# requests at once than it serves at once (they wait, none is refused), and
# a clean stop on SIGTERM.
set -uo pipefail

B=${ARCA_BUILD:-}
if [[ -z "$B" ]]; then echo "SKIP: ARCA_BUILD is not set"; exit 77; fi
las=$B/bin/arca-las
client=$B/bin/arca-test-las-client
for f in "$las" "$client"; do
  if [[ ! -x $f ]]; then echo "SKIP: $f is not built"; exit 77; fi
done

export ARCA_BUILD=$B
. "${ARCA_SRC:-$(dirname "$0")/../..}/scripts/daemons.sh"
arca_las_preflight || exit $?

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-las-test.XXXXXX")
chmod 755 "$tmp"
las_pid=
cleanup() {
  [[ -n $las_pid ]] && kill -KILL "$las_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

state=$tmp/state
sock=$tmp/run/las.sock

# Starts arca-las in the background; waits for its ready line.
start_las() {
  rm -f "$tmp/out" "$tmp/err" # a ready line from an earlier start must not count
  (arca_las_exec --state "$state" --socket "$sock" "$@") >"$tmp/out" 2>"$tmp/err" &
  las_pid=$!
  for _ in $(seq 100); do
    grep -q '^ready ' "$tmp/out" 2>/dev/null && return 0
    kill -0 "$las_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "arca-las did not become ready; stderr:"; cat "$tmp/err"
  return 1
}

# arca-las in the foreground, as start_las runs it.
las_direct() { (arca_las_exec "$@"); }

stop_las() {
  kill -TERM "$las_pid"
  wait "$las_pid"
  local rc=$?
  las_pid=
  return $rc
}

# --- first start: key created, contract lines printed ---
start_las || { fail "arca-las did not start"; exit 1; }
fpr_line=$(sed -n 1p "$tmp/out")
ready_line=$(sed -n 2p "$tmp/out")
fpr=${fpr_line#fingerprint }
if [[ $fpr_line =~ ^fingerprint\ SHA256:[A-Za-z0-9+/]{43}$ ]]; then pass "fingerprint line"; else fail "fingerprint line: '$fpr_line'"; fi
if [[ $ready_line == "ready socket=$sock platform=sim fingerprint=$fpr" ]]; then pass "ready line"; else fail "ready line: '$ready_line'"; fi
[[ $(stat -c %a "$state/platform.key") == 600 ]] && pass "platform.key is 0600" || fail "platform.key mode $(stat -c %a "$state/platform.key")"
[[ $(stat -c %a "$state") == 700 ]] && pass "state dir is 0700" || fail "state dir mode $(stat -c %a "$state")"
[[ $(stat -c %a "$sock") == 666 ]] && pass "socket is 0666" || fail "socket mode $(stat -c %a "$sock")"
grep -q -- '-----BEGIN PRIVATE KEY-----' "$state/platform.key" && pass "platform.key is PKCS#8 PEM" || fail "platform.key is not PKCS#8 PEM"
grep -q -- '-----BEGIN PUBLIC KEY-----' "$state/platform.pub" && pass "platform.pub is SPKI PEM" || fail "platform.pub is not SPKI PEM"
if command -v openssl >/dev/null; then
  if [[ $(openssl pkey -in "$state/platform.key" -pubout 2>/dev/null) == "$(cat "$state/platform.pub")" ]]; then
    pass "platform.pub is the public half of platform.key"
  else
    fail "platform.pub does not match platform.key"
  fi
  # The fingerprint is SHA-256 over the DER SPKI, unpadded base64.
  calc=$(openssl pkey -pubin -in "$state/platform.pub" -outform DER 2>/dev/null | openssl dgst -sha256 -binary | base64 | tr -d '=')
  [[ "SHA256:$calc" == "$fpr" ]] && pass "fingerprint is over the SPKI" || fail "fingerprint $fpr, computed SHA256:$calc"
fi
grep -q 'does not protect against a malicious kernel' "$tmp/err" && pass "sim mode warning" || fail "no sim mode warning on stderr"
# Without Yama ptrace protection arca-las runs, and says once what that means.
nwarn=$(grep -c 'ptrace' "$tmp/err")
if arca_ptrace_protected; then
  [[ $nwarn -eq 0 ]] && pass "kernel.yama.ptrace_scope >= 1: no ptrace warning" || fail "ptrace warning although ptrace_scope is $(<"$ARCA_YAMA"): $(grep ptrace "$tmp/err")"
else
  if [[ $nwarn -eq 1 ]] && grep -qE '^arca-las: warning: (this kernel has no Yama ptrace protection|kernel.yama.ptrace_scope is 0), so another process of the same user could ptrace or write the memory of a protected program before it protects itself; evidence says so, and CAS refuses it unless the session tolerates no-ptrace-protection' "$tmp/err"; then
    pass "no Yama ptrace protection: arca-las starts and warns in one line"
  else
    fail "ptrace warning ($nwarn lines): $(grep ptrace "$tmp/err")"
  fi
fi

# --- evidence for the asking process ---
out=$("$client" "$sock")
rc=$?
if [[ $rc -eq 0 && $out == verified\ pid=*" las=$fpr self=match" ]]; then pass "evidence verifies: $out"; else fail "evidence (rc $rc): $out"; fi
# LAS did not start the caller: whatever this host's Yama, no ptrace-protected flag.
[[ $out == *" flags=0 "* ]] && pass "evidence for a caller of the socket has flags 0" || fail "flags of the caller's evidence: $out"
cpid=$(sed -n 's/^verified pid=\([0-9]*\).*/\1/p' <<<"$out")
meas=$(sed -n 's/.* measurement=\(sha256:[0-9a-f]*\).*/\1/p' <<<"$out")
grep -q "request pid=$cpid uid=$(id -u) measurement=$meas granted" "$tmp/err" && pass "request logged" || fail "no log line for pid $cpid"

# --- evidence for the caller is root's only (arca-cas attesting itself) ---
if command -v setpriv >/dev/null; then
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$client" "$sock"); rc=$?
  if [[ $rc -ne 0 && $out == *"evidence is only given to programs started through arca run"* ]]; then
    pass "uid 65534 asking for evidence of itself is refused"
  else
    fail "uid 65534 asking for evidence (rc $rc): $out"
  fi
  grep -q "request pid=[0-9]* uid=65534 measurement=- refused: evidence is only given" "$tmp/err" && pass "refusal logged" || fail "no refusal logged"
fi

# --- launch requests: refusals, descriptors, the reported exit status ---
if command -v python3 >/dev/null; then
  nfd0=$(ls "/proc/$las_pid/fd" | wc -l)
  cat >"$tmp/launch.py" <<'PY'
import json, os, socket, struct, sys
sock, what = sys.argv[1], sys.argv[2]
pin = "SHA256:" + "A" * 43
def req(argv, cas="127.0.0.1:1"):
    body = json.dumps({"argv": argv, "session": "s", "service": "v", "cas": cas, "cas_pin": pin}).encode()
    return b"ALL1" + struct.pack("<I", len(body)) + body
def fds(n):
    return [os.open("/dev/null", os.O_RDWR) if i < 3 else os.open(".", os.O_PATH | os.O_DIRECTORY) for i in range(n)][:n]
def send(data, fdlist):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fdlist), *fdlist))] if fdlist else [])
    out = []
    while True:
        hdr = s.recv(3, socket.MSG_WAITALL)
        if len(hdr) < 3:
            break
        n = hdr[1] | hdr[2] << 8
        body = s.recv(n, socket.MSG_WAITALL)
        if hdr[0] == 1:
            out.append("refused: " + body.decode())
            break
        v = struct.unpack("<I", body)[0]
        out.append({2: "started", 3: "exited", 4: "killed"}.get(hdr[0], "?%d" % hdr[0]) + " " + str(v if hdr[0] != 2 else "PID"))
        if hdr[0] != 2:
            break
    print("; ".join(out))
if what == "nofds":
    send(req(["/bin/true"]), [])
elif what == "fivefds":
    send(req(["/bin/true"]), fds(5))
elif what == "relative":
    send(req(["true"]), fds(4))
elif what == "byname":
    send(req(["/bin/true"], cas="localhost:1"), fds(4))
elif what == "garbage":
    send(b"ALL1" + struct.pack("<I", 5) + b"{nope", fds(4))
elif what == "long":
    send(b"ALL1" + struct.pack("<I", 1 << 20), fds(4))
elif what == "alr1fds":
    send(b"ALR1" + bytes(64), fds(4))
elif what == "missing":
    send(req(["/nonexistent/arca-test"]), fds(4))
elif what == "program":
    send(req([sys.argv[3]]), fds(4))
elif what == "program-out":
    f = fds(4)
    f[1] = os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    send(req([sys.argv[3]]), f)
PY
  lcase() {  # lcase NAME EXPECTED ARGS…
    local name=$1 want=$2; shift 2
    out=$(python3 "$tmp/launch.py" "$sock" "$@" 2>&1)
    [[ $out == *"$want"* ]] && pass "launch: $name ($out)" || fail "launch: $name: '$out' (wanted '$want')"
  }
  lcase "no descriptors refused" "refused: a launch request carries exactly 4 descriptors" nofds
  lcase "five descriptors refused" "refused: a launch request carries exactly 4 descriptors" fivefds
  lcase "relative program refused" "absolute path" relative
  lcase "CAS by name refused" "IP:PORT" byname
  lcase "malformed JSON refused" "not valid JSON" garbage
  lcase "oversized request refused" "launch request of 1048576 bytes" long
  lcase "descriptors on an evidence request refused" "refused: an evidence request carries no descriptors" alr1fds
  lcase "missing program refused (checked by LAS, as the caller)" "refused: cannot read /nonexistent/arca-test" missing
  printf '#!/bin/sh\ntrue\n' >"$tmp/script.sh"; chmod 755 "$tmp/script.sh"
  lcase "script refused by LAS" "is a script" program "$tmp/script.sh"
  if command -v cc >/dev/null && printf 'int main(void){return 0;}\n' >"$tmp/st.c" && cc -static -o "$tmp/static" "$tmp/st.c" 2>/dev/null; then
    lcase "static program refused by LAS" "statically linked" program "$tmp/static"
  fi
  # The loader run directly would take a command line of its own
  # (--preload …) that the environment never shows; LAS must refuse it,
  # also behind a symlink the caller could flip between check and exec.
  ldso=$(readlink -f /lib64/ld-linux-x86-64.so.2)
  lcase "the dynamic loader itself refused by LAS" "statically linked" program "$ldso"
  ln -sf "$ldso" "$tmp/ldso-link"
  lcase "the loader behind a symlink refused by LAS" "statically linked" program "$tmp/ldso-link"
  # One evidence per launch: a library of the program asks twice on the
  # channel (its constructor runs before the shield's, so it marks the
  # channel close-on-exec itself, which LAS insists on). The first answer
  # is evidence for this process, then the channel is closed.
  if command -v cc >/dev/null; then
    cat >"$tmp/twice.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
static const char *ask(void)
{
	unsigned char req[68] = "ALR1", hdr[3], body[65536];
	if (send(3, req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req)
		return "cannot send";
	if (recv(3, hdr, 3, MSG_WAITALL) != 3)
		return "nothing";
	size_t n = (size_t)hdr[1] | (size_t)hdr[2] << 8;
	if (recv(3, body, n, MSG_WAITALL) != (ssize_t)n)
		return "a cut answer";
	return hdr[0] == 0 ? "evidence" : "refused";
}
__attribute__((constructor)) static void twice(void)
{
	fcntl(3, F_SETFD, FD_CLOEXEC);
	const char *first = ask();
	printf("first: %s, second: %s\n", first, ask());
	fflush(stdout);
}
void twice_linked(void) {}
C
    printf 'void twice_linked(void);\nint main(void){twice_linked();return 0;}\n' >"$tmp/twice-main.c"
    if ! cc -shared -fPIC -o "$tmp/libtwice.so" "$tmp/twice.c" || ! cc -o "$tmp/twice" "$tmp/twice-main.c" -L"$tmp" -ltwice -Wl,-rpath,"$tmp"; then
      fail "cannot build the test program that asks twice"
    else
      python3 "$tmp/launch.py" "$sock" program-out "$tmp/twice" "$tmp/twice.out" >/dev/null 2>&1
      grep -q '^first: evidence, second: \(nothing\|cannot send\)$' "$tmp/twice.out" && pass "one evidence per launch: $(cat "$tmp/twice.out")" || fail "evidence twice: '$(cat "$tmp/twice.out")'"
    fi
  fi
  # A program that starts: LAS reports started, then its exit status
  # (here the shield's 78: no CAS at 127.0.0.1:1).
  lcase "started, then the exit status" "started PID; exited 78" program /bin/true
  grep -q "launch pid=[0-9]* uid=$(id -u) program=/bin/true ended: exit status 78" "$tmp/err" && pass "launch and end logged" || fail "no launch log line"
  sleep 0.3
  nfd1=$(ls "/proc/$las_pid/fd" | wc -l)
  [[ $nfd1 -le $nfd0 ]] && pass "every descriptor of a refused request closed ($nfd0 before, $nfd1 after)" || fail "LAS holds $nfd1 descriptors, $nfd0 before: $(ls -l "/proc/$las_pid/fd")"
fi

# --- a socket that would survive exec is refused ---
out=$("$client" "$sock" --no-cloexec)
rc=$?
if [[ $rc -eq 0 && $out == *"without close-on-exec"* ]]; then pass "exec-able connection refused"; else fail "exec-able connection (rc $rc): $out"; fi

# --- bad requests and slow clients (need python3) ---
if command -v python3 >/dev/null; then
  out=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"XXXX" + bytes(64))
hdr = s.recv(3, socket.MSG_WAITALL)
n = hdr[1] | hdr[2] << 8
print(hdr[0], s.recv(n, socket.MSG_WAITALL).decode())
PY
)
  [[ $out == "1 "*"bad magic"* ]] && pass "bad magic refused" || fail "bad magic: $out"

  # A client that never sends must not hold up others, and is cut off.
  python3 - "$sock" >"$tmp/slow" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
t = time.time()
hdr = s.recv(3, socket.MSG_WAITALL)
print("cut after %.0f s, status %d" % (time.time() - t, hdr[0] if hdr else -1))
PY
  slow=$!
  sleep 0.3
  start=$(date +%s%N)
  out=$("$client" "$sock")
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  if [[ $out == verified* && $took -lt 3000 ]]; then pass "served during a slow client (${took} ms)"; else fail "slow client blocked others (${took} ms): $out"; fi
  wait "$slow"
  grep -q 'status 1' "$tmp/slow" && grep -q 'no complete request' "$tmp/err" && pass "slow client timed out: $(cat "$tmp/slow")" || fail "slow client: $(cat "$tmp/slow")"

  # More requests than LAS serves at once. First 64 connections hold every
  # thread (they send nothing yet) while 100 clients of this user connect:
  # those wait and are all answered once the 64 send theirs. Then the same
  # with 450 requests instead of the clients: beyond the accept queue they
  # wait in the socket's backlog. (Real clients give up after 5 s, so they
  # are not put behind the 450.)
  out=$(python3 - "$sock" "$client" <<'PY'
import socket, subprocess, sys, time
sock, client = sys.argv[1], sys.argv[2]
req = b"ALR1" + bytes(64)
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock)
    return s
def status(s):
    try:
        hdr = s.recv(3, socket.MSG_WAITALL)
        n = hdr[1] | hdr[2] << 8
        body = s.recv(n, socket.MSG_WAITALL)
        return hdr[0] if len(body) == n else -1
    except (OSError, IndexError):
        return -1
holders = [conn() for _ in range(64)]
time.sleep(0.3)
procs = [subprocess.Popen([client, sock], stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(100)]
time.sleep(1)
for s in holders:
    s.sendall(req)
granted = sum(status(s) == 0 for s in holders)
outs = [p.communicate()[0].decode() for p in procs]
verified = sum(p.returncode == 0 and o.startswith("verified") for p, o in zip(procs, outs))
holders = [conn() for _ in range(64)]
time.sleep(0.3)
eager = []
for _ in range(450):
    s = conn(); s.sendall(req); eager.append(s)
time.sleep(0.5)
for s in holders:
    s.sendall(req)
granted += sum(status(s) == 0 for s in holders + eager)
print("granted=%d/578 clients=%d/100" % (granted, verified))
for o in outs:
    if not o.startswith("verified"):
        print("client: " + o.strip()); break
PY
)
  if [[ $out == "granted=578/578 clients=100/100"* ]]; then pass "164, then 514 requests at once: all answered after waiting ($out)"; else fail "requests beyond the limit: $out"; fi
  grep -q "wait in the socket's backlog" "$tmp/err" && pass "LAS stopped accepting while full" || fail "LAS never stopped accepting while full"

  # Fair turns: every thread but one is held by a silent connection, 20
  # requests of root wait, then one of another user. The one free thread
  # serves them one after the other: the other user's comes next, not last.
  if [[ $(id -u) -eq 0 ]] && id nobody >/dev/null 2>&1; then
    n0=$(wc -l <"$tmp/err")
    out=$(python3 - "$sock" "$(id -u nobody)" "$(id -g nobody)" <<'PY'
import os, socket, sys, time
sock, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
req = b"ALR1" + bytes(64)
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock)
    return s
holders = [conn() for _ in range(64)]
time.sleep(0.3)
eager = []
for _ in range(20):
    s = conn(); s.sendall(req); eager.append(s)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.setgroups([]); os.setgid(gid); os.setuid(uid)
    s = conn(); s.sendall(req)
    os.write(w, b"x")
    hdr = s.recv(3, socket.MSG_WAITALL)
    os._exit(0 if len(hdr) == 3 else 1)
os.close(w)
os.read(r, 1)
time.sleep(0.2)
holders[0].sendall(req)
status = os.WEXITSTATUS(os.waitpid(pid, 0)[1])
for s in holders[1:]:
    s.sendall(req)
for s in holders + eager:
    try: s.recv(4096)
    except OSError: pass
print("answered" if status == 0 else "no answer")
PY
)
    pos=$(tail -n "+$((n0 + 1))" "$tmp/err" | grep 'request pid=' | grep -n "uid=$(id -u nobody) " | cut -d: -f1 | head -n 1)
    # Order is the point here, not the verdict on the other user's request.
    if [[ $out == answered && $pos == 2 ]]; then pass "another user's request served right after the running one, before root's 20 waiting"
    else fail "fairness: request of nobody served as number '${pos}' of 22: $out"; fi
  fi
else
  echo "SKIP (part): python3 not found; bad-request, slow-client and waiting checks not run"
fi

# --- 100 concurrent requests of one user: none refused ---
pids=()
for i in $(seq 100); do
  "$client" "$sock" >"$tmp/many.$i" 2>&1 &
  pids+=($!)
done
nok=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" && grep -q '^verified ' "$tmp/many.$((i + 1))" && nok=$((nok + 1))
done
if [[ $nok -eq 100 ]]; then pass "100 concurrent requests of one user all verified"; else
  fail "100 concurrent requests: $nok verified; e.g. $(grep -hv '^verified' "$tmp"/many.* | head -n 1)"; fi
grep -q 'too many requests\|LAS is busy' "$tmp/err" && fail "LAS refused a request for load" || pass "no request refused for load"

# --- a second daemon is refused while the first runs ---
las_direct --state "$tmp/state2" --socket "$sock" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'already listening' "$tmp/err2" && pass "second daemon on the socket refused" || fail "second daemon on the socket: rc $rc $(cat "$tmp/err2")"
las_direct --state "$state" --socket "$tmp/other.sock" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'another arca-las is using the state directory' "$tmp/err2" && pass "second daemon on the state refused" || fail "second daemon on the state: rc $rc $(cat "$tmp/err2")"

# --- SIGTERM: exit 0, socket gone ---
stop_las
rc=$?
[[ $rc -eq 0 ]] && pass "SIGTERM exits 0" || fail "SIGTERM exit status $rc"
[[ ! -e $sock ]] && pass "socket removed" || fail "socket left behind"

# --- restart keeps the key ---
start_las || { fail "restart"; exit 1; }
[[ $(sed -n 1p "$tmp/out") == "fingerprint $fpr" ]] && pass "restart keeps the fingerprint" || fail "fingerprint changed: $(sed -n 1p "$tmp/out")"
# A daemon killed outright leaves a stale socket, which the next start replaces.
kill -KILL "$las_pid"; wait "$las_pid" 2>/dev/null; las_pid=
[[ -S $sock ]] || fail "expected a stale socket after SIGKILL"
start_las && pass "stale socket replaced" || fail "start over a stale socket"
stop_las

# --- refusals at start ---
if command -v setpriv >/dev/null; then
  setpriv --reuid=65534 --regid=65534 --clear-groups "$las" --state "$tmp/state-nobody" --socket "$tmp/nobody.sock" >"$tmp/out2" 2>"$tmp/err2"
  rc=$?
  [[ $rc -ne 0 ]] && grep -q 'sim mode needs root' "$tmp/err2" && pass "non-root start refused" || fail "non-root start: rc $rc $(cat "$tmp/err2")"
fi
las_direct --state "$state" --socket "$sock" --shield /nonexistent/libarca-shield.so >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -qi 'shield /nonexistent' "$tmp/err2" && pass "missing --shield refused" || fail "missing --shield: rc $rc $(cat "$tmp/err2")"
cp "$B/lib/libarca-shield.so" "$tmp/shield.so" && chmod 664 "$tmp/shield.so"
las_direct --state "$state" --socket "$sock" --shield "$tmp/shield.so" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'chmod go-w' "$tmp/err2" && pass "group-writable shield refused" || fail "group-writable shield: rc $rc $(cat "$tmp/err2")"

# Hardware platforms outside a confidential VM (test_las_tsm.sh has them
# on a fake configfs-tsm); an unknown platform word.
ARCA_TSM_ROOT=$tmp/no-tsm las_direct --state "$state" --socket "$sock" --platform sev-snp >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q "platform sev-snp refused: no configfs-tsm at $tmp/no-tsm" "$tmp/err2" && pass "--platform sev-snp refused without configfs-tsm" || fail "--platform sev-snp: rc $rc $(cat "$tmp/err2")"
las_direct --state "$state" --socket "$sock" --platform sgx >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'platform "sgx" refused: use auto, sim, sev-snp or tdx' "$tmp/err2" && pass "--platform sgx refused" || fail "--platform sgx: rc $rc $(cat "$tmp/err2")"
chmod 644 "$state/platform.key"
las_direct --state "$state" --socket "$sock" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'chmod 600' "$tmp/err2" && pass "world-readable key refused" || fail "world-readable key: rc $rc $(cat "$tmp/err2")"
chmod 600 "$state/platform.key"
[[ ! -e $sock ]] || fail "a refused start left a socket"

if [[ $failures -ne 0 ]]; then
  echo "test_las: $failures check(s) failed"
  exit 1
fi
echo "test_las: all checks passed"
