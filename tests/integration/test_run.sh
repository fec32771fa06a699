#!/usr/bin/env bash
# test_run.sh: `arca run` against the real daemons, for what test_e2e.sh
# and test_launch.sh do not cover: the command taken from the session when
# CMD is omitted (and refused to a non-owner), a CAS given by host name, a
# relative LAS path, host shield variables ignored, the program's own exit
# status, and that the measurement LAS signs for a run (arca-las starts the
# program) is the one `arca measure` printed (the audit log records it).
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
for b in "$arca" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 is needed by scripts/daemons.sh"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-run-test.XXXXXX")
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
port=${ARCA_CAS##*:}

cat_bin=$(readlink -f "$(type -P cat)")
m=$("$arca" measure -- "$cat_bin" | sed -n 's/^measurement //p')
[[ $m =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "FAIL: arca measure $cat_bin"; exit 1; }

cat >"$tmp/s.yaml" <<YAML
name: runs
services:
  - name: cat
    command: ["$cat_bin", /etc/arca-run-test/conf]
    measurement: "$m"
    platform: {sim: {}}
    files:
      /etc/arca-run-test/conf: "hello \$\$arca:pw\$\$\n"
  - name: missing
    command: ["$cat_bin", /nonexistent-arca-run-test]
    measurement: "$m"
    platform: {sim: {}}
secrets:
  - {name: pw, kind: ascii, size: 8}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/s.yaml" >/dev/null || exit 1

last_audit() { tail -n 1 "$ARCA_CAS_STATE/audit.log"; }

# --- CMD omitted: the session's command ---
"$arca" run --session runs --service cat >"$tmp/o" 2>"$tmp/e"; rc=$?
if [[ $rc -eq 0 && $(cat "$tmp/o") =~ ^hello\ [[:print:]]{8}$ && ! -s $tmp/e ]]; then
  pass "command taken from the session"
else
  fail "no CMD: rc $rc out '$(cat "$tmp/o")' err '$(cat "$tmp/e")'"
fi
secret_line=$(cat "$tmp/o")

# --- the measurement LAS signed is the one arca measure printed ---
if last_audit | grep -q "\"measurement\":\"$m\"" && last_audit | grep -q '"outcome":"granted"'; then
  pass "LAS measured what arca measure printed ($m)"
else
  fail "audit: $(last_audit)"
fi

# --- CAS by host name; relative LAS path; host shield variables ignored ---
"$arca" cas attest "localhost:$port" >/dev/null || fail "arca cas attest localhost:$port"
out=$("$arca" run --cas "localhost:$port" --session runs --service cat -- "$cat_bin" 2>"$tmp/e")
[[ $out == "$secret_line" ]] && pass "CAS given by host name" || fail "localhost: '$out' $(cat "$tmp/e")"
out=$(cd "$tmp" && "$arca" run --las las.sock --session runs --service cat -- cat 2>"$tmp/e")
[[ $out == "$secret_line" ]] && pass "relative LAS path" || fail "relative --las: '$out' $(cat "$tmp/e")"
out=$(ARCA_SHIELD_MODE=measure ARCA_MEASURE_FD=1 ARCA_SESSION=nope ARCA_CAS_PIN=SHA256:x LD_LIBRARY_PATH=/nonexistent \
  "$arca" run --session runs --service cat -- "$cat_bin" 2>"$tmp/e")
[[ $out == "$secret_line" ]] && pass "host shield and loader variables ignored" || fail "host ARCA_*: '$out' $(cat "$tmp/e")"

# --- the program's exit status is arca run's ---
"$arca" run --session runs --service missing -- "$cat_bin" >"$tmp/o" 2>"$tmp/e"; rc=$?
if [[ $rc -eq 1 ]] && grep -q 'nonexistent-arca-run-test' "$tmp/e" && ! grep -q 'arca: refused' "$tmp/e"; then
  pass "program's own failure passed through (exit $rc)"
else
  fail "missing file: rc $rc err '$(cat "$tmp/e")'"
fi

# --- refusals reading the command ---
"$arca" run --session runs --service nope >"$tmp/o" 2>"$tmp/e"; rc=$?
[[ $rc -eq 1 ]] && grep -q 'has no service nope' "$tmp/e" && pass "unknown service without CMD refused" || fail "unknown service: rc $rc $(cat "$tmp/e")"
other=$tmp/other-home
ARCA_HOME=$other "$arca" identity create >/dev/null && ARCA_HOME=$other "$arca" cas attest "$ARCA_CAS" >/dev/null
ARCA_HOME=$other "$arca" run --session runs --service cat >"$tmp/o" 2>"$tmp/e"; rc=$?
[[ $rc -eq 1 ]] && grep -q 'only an owner' "$tmp/e" && pass "non-owner without CMD refused" || fail "non-owner: rc $rc $(cat "$tmp/e")"
ARCA_HOME=$other "$arca" run --session runs --service cat -- "$cat_bin" >"$tmp/o" 2>"$tmp/e"; rc=$?
[[ $rc -eq 0 && $(cat "$tmp/o") == "$secret_line" ]] && pass "non-owner with CMD runs (attestation, not identity, decides)" || fail "non-owner with CMD: rc $rc $(cat "$tmp/e")"

if [[ $failures -ne 0 ]]; then
  echo "test_run: $failures check(s) failed"
  exit 1
fi
echo "test_run: all checks passed"
