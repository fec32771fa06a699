#!/usr/bin/env bash
# test_cas_hw.sh: CAS end to end with hardware evidence, as far as a machine
# that is not a confidential VM allows: arca-las in sev-snp (then tdx) mode
# on a fake configfs-tsm (arca-test-fake-tsm) that returns a recorded
# report of ../shared/vectors, a session whose service has a sev-snp (tdx)
# constraint, and `arca run`. The recorded report's signature and chain are
# genuine and current, but its report data is somebody else's, so it cannot
# be the binding of the envelope arca-las wraps around it: CAS must refuse
# the attestation for the binding (binding_mismatch, audited with a reason
# that says binding and report data), not accept it, and main must never
# run. The refusal is the binding's whatever the date: CAS checks the
# binding before the certificates' validity.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
V=${ARCA_VECTORS:-$ARCA_SRC/../shared/vectors}
arca=$ARCA_BUILD/bin/arca
demo=$ARCA_BUILD/bin/arca-demo
fake=$ARCA_BUILD/bin/arca-test-fake-tsm
for b in "$arca" "$demo" "$fake" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 is needed by scripts/daemons.sh"; exit 77; }
genoa=$V/sev-snp/veraison-genoa-tsm-report.json
tdxq=$V/tdx/gtg-spr-e4-quote-v4-trailing.dat
[[ -r $genoa && -r $tdxq ]] || { echo "SKIP: no vectors at $V"; exit 77; }
arca_las_preflight || exit $?

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-cas-hw.XXXXXX")
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
FAKE_PID=
cleanup() { arca_stop_all; arca_stop_pid "$FAKE_PID"; rm -rf "$tmp"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

root=$tmp/tsm/report
# start_hw PLATFORM FAKE-ARGS...: a fresh fake tree and arca-las on it.
start_hw() {
  local platform=$1; shift
  arca_stop_pid "${LAS_PID:-}"; LAS_PID=
  arca_stop_pid "$FAKE_PID"; FAKE_PID=
  rm -rf "$tmp/tsm"; mkdir -p "$tmp/tsm"
  : >"$tmp/fake.out"
  "$fake" "$root" "$@" >"$tmp/fake.out" 2>"$tmp/fake.err" &
  FAKE_PID=$!
  arca_wait_ready "$tmp/fake.out" "$FAKE_PID" arca-test-fake-tsm || return 1
  : >"$tmp/las.out"
  (ARCA_TSM_ROOT=$root arca_las_exec --state "$tmp/las" --socket "$tmp/las.sock" --platform "$platform") \
    >"$tmp/las.out" 2>"$tmp/las.out.err" &
  LAS_PID=$!
  arca_wait_ready "$tmp/las.out" "$LAS_PID" arca-las || return 1
  export ARCA_LAS=$tmp/las.sock
}

start_hw sev-snp --capture "$genoa" || exit 1
grep -q 'platform=sev-snp' "$tmp/las.out" && pass "arca-las in sev-snp mode" || fail "ready: $(cat "$tmp/las.out")"
# CAS asks no LAS about itself here: the client pins it on first use.
arca_start_cas "$tmp" --las "$tmp/no-las.sock" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1

m_demo=$("$arca" measure -- "$demo" | awk '/^measurement/ {print $2}')
[[ $m_demo == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }
# The Genoa report's own launch measurement and product: every
# constraint of the service holds for it, so only the binding can fail.
genoa_meas=7699e6ac12ccdfd1dfac70e649ce1f046cb2afbb003438f4cdddfe2ccbe182fa5ffbe8dcdb930454324e10c52c788980
tdx_mrtd=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(d[48+136:48+184].hex())' "$tdxq")

cat >"$tmp/hw.yaml" <<YAML
name: hw
services:
  - name: app
    command: ["$demo", --env-names]
    measurement: "$m_demo"
    platform:
      sev-snp: {measurement: $genoa_meas, min_tcb: {bootloader: 10, snp: 23}, product: Genoa}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
  - name: vm
    command: ["$demo", --env-names]
    measurement: "$m_demo"
    platform:
      tdx: {mrtd: $tdx_mrtd}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
  - name: simonly
    command: ["$demo", --env-names]
    measurement: "$m_demo"
    platform: {sim: {}}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
secrets:
  - {name: pw, kind: ascii}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/hw.yaml" >/dev/null || { fail "session with hardware constraints refused: $("$arca" session create "$tmp/hw.yaml" 2>&1)"; exit 1; }
pass "a session with a sev-snp and a tdx constraint is accepted"

# A constraint naming a field that does not exist: refused at upload, with
# line and column.
cat >"$tmp/bad.yaml" <<YAML
name: bad
services:
  - name: app
    command: ["$demo"]
    measurement: "$m_demo"
    platform:
      sev-snp:
        measurement: $genoa_meas
        vmpl: 0
YAML
out=$("$arca" session create "$tmp/bad.yaml" 2>&1); rc=$?
if [[ $rc -ne 0 && $out == *":9:9: unknown key 'vmpl' in the sev-snp constraint"* ]]; then
  pass "an unknown constraint field is refused at upload with line:col"
else
  fail "unknown field: rc $rc: $out"
fi

last_audit() { tail -n 1 "$ARCA_CAS_STATE/audit.log"; }

# refused_for_binding WHAT SERVICE PLATFORM
refused_for_binding() {
  local what=$1 svc=$2 platform=$3
  "$arca" run --session hw --service "$svc" -- "$demo" --env-names >"$tmp/r.out" 2>"$tmp/r.err"; local rc=$?
  if [[ $rc -eq 78 ]] && ! grep -q 'main started' "$tmp/r.out" && grep -q 'arca: refused: .*(binding_mismatch)' "$tmp/r.err"; then
    pass "$what: refused before main (exit 78): $(head -n1 "$tmp/r.err")"
  else
    fail "$what: exit $rc, out: $(cat "$tmp/r.out") err: $(cat "$tmp/r.err")"
  fi
  local a; a=$(last_audit)
  if [[ $a == *'"event":"attest_refused"'* && $a == *'"error":"binding_mismatch"'* && $a == *"\"platform\":\"$platform\""* &&
        $a == *'binding: the '"$platform"' report'"'"'s report data '*' is not SHA-512'* ]]; then
    pass "$what: audited as binding_mismatch, the reason naming the binding and the report data"
  else
    fail "$what: audit: $a"
  fi
  [[ $a != *'attest_granted'* ]] || fail "$what: granted"
}

refused_for_binding "sev-snp evidence of a recorded report" app sev-snp
grep -q 'evidence pid=.* granted' "$tmp/las.out.err" && pass "arca-las gave the launched program its envelope" ||
  fail "LAS log: $(cat "$tmp/las.out.err")"
[[ -z $(find "$root" -mindepth 1 -maxdepth 1) ]] && pass "no configfs-tsm entry left" || fail "entries left: $(ls "$root")"
# The binding is checked before the service is even looked at.
refused_for_binding "sev-snp evidence for a sim-only service" simonly sev-snp

# TDX: the same with a recorded quote.
start_hw tdx --outblob "$tdxq" --provider tdx_guest || exit 1
refused_for_binding "tdx evidence of a recorded quote" vm tdx

# sim mode is untouched: the same program through a sim arca-las is
# refused only because the session does not list sim for app.
arca_stop_pid "$LAS_PID"; LAS_PID=
arca_stop_pid "$FAKE_PID"; FAKE_PID=
: >"$tmp/las.out"
(arca_las_exec --state "$tmp/las" --socket "$tmp/las.sock") >"$tmp/las.out" 2>"$tmp/las.out.err" &
LAS_PID=$!
arca_wait_ready "$tmp/las.out" "$LAS_PID" arca-las || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
"$arca" run --session hw --service app -- "$demo" --env-names >"$tmp/r.out" 2>"$tmp/r.err"; rc=$?
[[ $rc -eq 78 ]] && last_audit | grep -q '"error":"platform_not_allowed"' && last_audit | grep -q 'does not list sim' &&
  pass "sim evidence for a sev-snp-only service: platform_not_allowed" || fail "sim for app: rc $rc $(cat "$tmp/r.err") $(last_audit)"
"$arca" run --session hw --service simonly -- "$demo" --env-names >"$tmp/r.out" 2>"$tmp/r.err"; rc=$?
[[ $rc -eq 0 ]] && grep -q 'main started' "$tmp/r.out" && pass "sim evidence for the sim service: granted" ||
  fail "sim service: rc $rc $(cat "$tmp/r.err") $(last_audit)"

if [[ $failures -ne 0 ]]; then
  echo "test_cas_hw: $failures check(s) failed"
  echo "--- arca-las ---"; cat "$tmp/las.out.err"
  echo "--- arca-cas ---"; tail -n 20 "$tmp/cas.out.err"
  exit 1
fi
echo "test_cas_hw: all checks passed"
