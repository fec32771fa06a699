#!/usr/bin/env bash
# End to end with the real daemons: a secret reaches main through the
# environment and an injected file, survives a CAS restart, never shows up
# where an administrator could read it, and every kind of bad attestation
# is refused before main runs, with the reason in the audit log. On a host
# without Yama ptrace protection a session must tolerate
# no-ptrace-protection to be granted (and the grant says so in the audit
# log); on a host with it, no toleration is needed.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca="$ARCA_BUILD/bin/arca"
demo="$ARCA_BUILD/bin/arca-demo"
for b in "$arca" "$demo" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done

tmp=$(mktemp -d /tmp/arca-e2e.XXXXXX)
export ARCA_HOME="$tmp/home"
LAS2_PID=
cleanup() { arca_stop_all; arca_stop_pid "$LAS2_PID"; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0; passes=0
ok()   { passes=$((passes + 1)); echo "ok: $*"; }
bad()  { fails=$((fails + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1

measure() { "$arca" measure -- "$@" | awk '/^measurement/ {print $2}'; }
m_demo=$(measure "$demo")
m_cat=$(measure /bin/cat)
[[ $m_demo == sha256:* && $m_cat == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }

cat >"$tmp/e2e.yaml" <<YAML
name: e2e
services:
  - name: app
    command: ["$demo", --config, /etc/demo/app.ini, --env-names]
    measurement: "$m_demo"
    platform: {sim: {}}
    environment:
      DB_PASSWORD: \$\$arca:db_password\$\$
      GREETING: hello
    files:
      /etc/demo/app.ini: |
        password = \$\$arca:db_password\$\$
  - name: hold
    command: ["$demo", --config, /etc/demo/app.ini, --hold, "4"]
    measurement: "$m_demo"
    platform: {sim: {}}
    environment:
      DB_PASSWORD: \$\$arca:db_password\$\$
    files:
      /etc/demo/app.ini: "password = \$\$arca:db_password\$\$\n"
  - name: leak
    command: [/bin/cat, /etc/demo/app.ini]
    measurement: "$m_cat"
    platform: {sim: {}}
    files:
      /etc/demo/app.ini: "\$\$arca:db_password\$\$"
secrets:
  - {name: db_password, kind: ascii, size: 32}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/e2e.yaml" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; exit 1; }
# The same program in a session that tolerates nothing.
cat >"$tmp/strict.yaml" <<YAML
name: e2e-strict
services:
  - name: app
    command: ["$demo", --config, /etc/demo/app.ini]
    measurement: "$m_demo"
    platform: {sim: {}}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
    files: {/etc/demo/app.ini: "password = \$\$arca:pw\$\$\n"}
secrets:
  - {name: pw, kind: ascii, size: 16}
YAML
"$arca" session create "$tmp/strict.yaml" >"$tmp/create2.out" 2>&1 || { cat "$tmp/create2.out"; exit 1; }

run() { "$arca" run --session e2e "$@"; }

# Happy path, with host variables that must not reach main.
FOO=bar PYTHONPATH=/tmp/evil run --service app -- "$demo" >"$tmp/app.out" 2>"$tmp/app.err"
check "happy path exits 0" test $? -eq 0
check "main ran" grep -q 'main started' "$tmp/app.out"
check "env and injected file carry the same secret" grep -q 'both copies of the password match' "$tmp/app.out"
check "session variable present" grep -qx 'env-name GREETING' "$tmp/app.out"
check "host FOO absent in main" bash -c "! grep -q 'env-name FOO' '$tmp/app.out'"
check "host PYTHONPATH absent in main" bash -c "! grep -q 'env-name PYTHONPATH' '$tmp/app.out'"
check "no ARCA_ or LD_PRELOAD variable in main" bash -c "! grep -qE 'env-name (ARCA_|LD_PRELOAD)' '$tmp/app.out'"
check "injected file not on disk" test ! -e /etc/demo/app.ini
# Ptrace protection: whether this host has it is in the evidence; whether
# that matters is the session's call.
last_audit() { tail -n 1 "$ARCA_CAS_STATE/audit.log"; }
audit_has() { [[ $(last_audit) == *"$1"* ]]; }
audit_lacks() { [[ $(last_audit) != *"$1"* ]]; }
if arca_ptrace_protected; then
  check "Yama ptrace_scope >= 1: the happy path's grant tolerated nothing" audit_lacks '"tolerated"'
  "$arca" run --session e2e-strict --service app -- "$demo" >"$tmp/strict.out" 2>"$tmp/strict.err"; rc=$?
  check "Yama ptrace_scope >= 1: a session without toleration is granted (exit $rc)" test $rc -eq 0
  check "… and its main ran" grep -q 'main started' "$tmp/strict.out"
  check "… granted in the audit log" audit_has '"event":"attest_granted"'
  check "… tolerating nothing" audit_lacks '"tolerated"'
else
  echo "this host has no Yama ptrace protection (kernel.yama.ptrace_scope missing or 0)"
  check "tolerated session: granted in the audit log" audit_has '"event":"attest_granted"'
  check "… which records the toleration" audit_has '"tolerated":["no-ptrace-protection"]'
  "$arca" run --session e2e-strict --service app -- "$demo" >"$tmp/strict.out" 2>"$tmp/strict.err"; rc=$?
  check "session without toleration refused with exit 78 (got $rc)" test $rc -eq 78
  check "… before main" bash -c "! grep -q 'main started' '$tmp/strict.out'"
  check "… saying what to do" grep -q 'refused: .*kernel.yama.ptrace_scope.*tolerate: \[no-ptrace-protection\].*(platform_unprotected)' "$tmp/strict.err"
  check "… audited as refused" audit_has '"event":"attest_refused"'
  check "… with error platform_unprotected" audit_has '"error":"platform_unprotected"'
  check "… and the reason" audit_has 'does not tolerate no-ptrace-protection'
fi

# Learn the generated secret the way only an attested program can.
run --service leak -- /bin/cat >"$tmp/leak1.out" 2>"$tmp/leak1.err"
secret=$(cat "$tmp/leak1.out")
check "generated secret is 32 characters" test "${#secret}" -eq 32
want=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
check "demo saw exactly that secret" grep -q "password from environment sha256=$want" "$tmp/app.out"

# CAS restarted: the same generated secret is released.
arca_restart_cas "$tmp" --las "$ARCA_LAS" || exit 1
run --service leak -- /bin/cat >"$tmp/leak2.out" 2>"$tmp/leak2.err"
check "same secret after CAS restart" test "$(cat "$tmp/leak2.out")" = "$secret"

# /proc/PID/environ and cmdline of the protected program.
run --service hold -- "$demo" >"$tmp/hold.out" 2>&1 &
hold_pid=$!
pid=
for ((i = 0; i < 50; i++)); do
  pid=$(sed -n 's/^demo: main started (pid \([0-9]*\)).*/\1/p' "$tmp/hold.out")
  [[ -n $pid ]] && break
  sleep 0.1
done
if [[ -n $pid && -r /proc/$pid/environ ]]; then
  check "/proc/PID/environ holds no secret" bash -c "! grep -qaF '$secret' /proc/$pid/environ"
  check "/proc/PID/cmdline holds no secret" bash -c "! grep -qaF '$secret' /proc/$pid/cmdline"
else
  bad "the held program did not start: $(cat "$tmp/hold.out")"
fi
wait "$hold_pid"

# Refusals: main never runs, exit status 78, reason in the audit log.
refused() {  # refused NAME AUDIT_REASON_REGEX -- arca run args…
  local name=$1 reason=$2; shift 3
  "$@" >"$tmp/r.out" 2>"$tmp/r.err"; local rc=$?
  if [[ $rc -ne 0 ]] && ! grep -q 'main started' "$tmp/r.out" && [[ $(wc -l <"$tmp/r.err") -ge 1 ]]; then
    ok "$name refused (exit $rc): $(head -n1 "$tmp/r.err")"
  else
    bad "$name: exit $rc, out: $(cat "$tmp/r.out") err: $(cat "$tmp/r.err")"
  fi
  if tail -n 1 "$ARCA_CAS_STATE/audit.log" | grep -qE "$reason"; then ok "$name audited"; else
    bad "$name not audited with /$reason/: $(tail -n 1 "$ARCA_CAS_STATE/audit.log")"; fi
}
cp "$demo" "$tmp/tampered"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); i=b.index(b"main started"); b[i]^=0x20; open(p,"wb").write(bytes(b))' "$tmp/tampered"
refused "tampered binary" 'measurement' -- run --service app -- "$tmp/tampered"
refused "wrong service" 'unknown_service|no such service' -- run --service nosuch -- "$demo"
refused "wrong session" 'unknown_service|no such session' -- "$arca" run --session nosuch --service app -- "$demo"
(arca_las_exec --state "$tmp/las2" --socket "$tmp/las2.sock") >"$tmp/las2.out" 2>&1 &
LAS2_PID=$!
arca_wait_ready "$tmp/las2.out" "$LAS2_PID" "second arca-las" || exit 1
refused "unknown platform key" 'platform_untrusted|not trusted' -- run --las "$tmp/las2.sock" --service app -- "$demo"

# Expired nonce: a CAS whose nonces expire at once.
arca_restart_cas "$tmp" --las "$ARCA_LAS" --nonce-ttl 0 || exit 1
refused "expired nonce" 'nonce_expired|expired' -- run --service app -- "$demo"

# A statically linked program is refused by arca run itself.
if printf 'int main(void){return 0;}\n' >"$tmp/s.c" && cc -static -o "$tmp/static" "$tmp/s.c" 2>/dev/null; then
  "$arca" run --session e2e --service app -- "$tmp/static" >"$tmp/s.out" 2>"$tmp/s.err"
  rc=$?
  check "static binary refused" test $rc -ne 0
  check "static refusal says why" grep -qi 'static' "$tmp/s.err"
else
  echo "SKIP (part): no static libc to build a static test program"
fi

# No secret in anything an administrator can read.
"$arca" session show e2e >"$tmp/show.out" 2>&1
for f in "$tmp"/*.out "$tmp"/*.err "$tmp"/*.out.err "$ARCA_CAS_STATE/audit.log" "$ARCA_CAS_STATE/store.db"* "$tmp/las"/* "$tmp/show.out"; do
  [[ -f $f ]] || continue
  case $f in "$tmp/leak1.out"|"$tmp/leak2.out") continue ;; esac
  if grep -qaF "$secret" "$f"; then bad "secret found in $f"; fi
done
ok "secret searched in every log, output, the audit log and the store"

check "audit chain verifies" "$arca" cas audit-verify "$ARCA_CAS_STATE/audit.log"
cp "$ARCA_CAS_STATE/audit.log" "$tmp/audit-edited.log"
sed -i '2s/"granted"/"refused"/; 2s/attest_granted/attest_refused/; 2s/"seq":2/"seq":2 /' "$tmp/audit-edited.log"
python3 - "$tmp/audit-edited.log" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
lines[1] = lines[1].replace('"e2e"', '"e2f"', 1) if '"e2e"' in lines[1] else lines[1][:-2] + 'x' + lines[1][-1:]
open(p, "w").write("\n".join(lines))
PY
if "$arca" cas audit-verify "$tmp/audit-edited.log" >"$tmp/av.out" 2>&1; then bad "edited audit line not detected"; else
  ok "edited audit line detected: $(head -n1 "$tmp/av.out")"; fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
