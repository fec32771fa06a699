#!/usr/bin/env bash
# test_las.sh: arca-las as its users see it: the ready line and key files of
# CONTRACTS.md, a fingerprint that survives restarts, evidence that verifies
# for the asking process, refusals (exec-able socket, bad request, slow
# client, second daemon, unsupported platform, loose key permissions), and
# a clean stop on SIGTERM.
set -uo pipefail

B=${ARCA_BUILD:-}
if [[ -z "$B" ]]; then echo "SKIP: ARCA_BUILD is not set"; exit 77; fi
las=$B/bin/arca-las
client=$B/bin/arca-test-las-client
for f in "$las" "$client"; do
  if [[ ! -x $f ]]; then echo "SKIP: $f is not built"; exit 77; fi
done

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
  "$las" --state "$state" --socket "$sock" "$@" >"$tmp/out" 2>"$tmp/err" &
  las_pid=$!
  for _ in $(seq 100); do
    grep -q '^ready ' "$tmp/out" 2>/dev/null && return 0
    kill -0 "$las_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "arca-las did not become ready; stderr:"; cat "$tmp/err"
  return 1
}

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

# --- evidence for the asking process ---
out=$("$client" "$sock")
rc=$?
if [[ $rc -eq 0 && $out == verified\ pid=*" las=$fpr self=match" ]]; then pass "evidence verifies: $out"; else fail "evidence (rc $rc): $out"; fi
cpid=$(sed -n 's/^verified pid=\([0-9]*\).*/\1/p' <<<"$out")
meas=$(sed -n 's/.* measurement=\(sha256:[0-9a-f]*\).*/\1/p' <<<"$out")
grep -q "request pid=$cpid uid=$(id -u) measurement=$meas granted" "$tmp/err" && pass "request logged" || fail "no log line for pid $cpid"

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
else
  echo "SKIP (part): python3 not found; bad-request and slow-client checks not run"
fi

# --- a second daemon is refused while the first runs ---
"$las" --state "$tmp/state2" --socket "$sock" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'already listening' "$tmp/err2" && pass "second daemon on the socket refused" || fail "second daemon on the socket: rc $rc $(cat "$tmp/err2")"
"$las" --state "$state" --socket "$tmp/other.sock" >"$tmp/out2" 2>"$tmp/err2"
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
"$las" --state "$state" --socket "$sock" --platform sev-snp >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'not supported' "$tmp/err2" && pass "--platform sev-snp refused" || fail "--platform sev-snp: rc $rc $(cat "$tmp/err2")"
chmod 644 "$state/platform.key"
"$las" --state "$state" --socket "$sock" >"$tmp/out2" 2>"$tmp/err2"
rc=$?
[[ $rc -ne 0 ]] && grep -q 'chmod 600' "$tmp/err2" && pass "world-readable key refused" || fail "world-readable key: rc $rc $(cat "$tmp/err2")"
chmod 600 "$state/platform.key"
[[ ! -e $sock ]] || fail "a refused start left a socket"

if [[ $failures -ne 0 ]]; then
  echo "test_las: $failures check(s) failed"
  exit 1
fi
echo "test_las: all checks passed"
