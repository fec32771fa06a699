#!/usr/bin/env bash
# test_las_tsm.sh: arca-las in a confidential VM's hardware mode, against a
# fake configfs-tsm tree (arca-test-fake-tsm) that answers like the
# kernel's, with a recorded SEV-SNP report (the Genoa capture of
# ../shared/vectors) or TDX quote: the start-up report and the ready line,
# an envelope for a caller that names it and carries its report data and
# measurement (and cannot carry the binding, being a recording), every
# entry removed after each request, a generation moved by a racing writer
# (asked again in a fresh entry; refused when it keeps happening), a
# provider that is missing or names the other platform, auto's choice
# either way, and TDX. sim mode itself is test_las.sh's.
set -uo pipefail

B=${ARCA_BUILD:-}
if [[ -z "$B" ]]; then echo "SKIP: ARCA_BUILD is not set"; exit 77; fi
SRC=${ARCA_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
V=${ARCA_VECTORS:-$SRC/../shared/vectors}
las=$B/bin/arca-las
fake=$B/bin/arca-test-fake-tsm
client=$B/bin/arca-test-hw-client
for f in "$las" "$fake" "$client"; do
  if [[ ! -x $f ]]; then echo "SKIP: $f is not built"; exit 77; fi
done
genoa=$V/sev-snp/veraison-genoa-tsm-report.json
tdxq=$V/tdx/trustee-quote-4.dat
if [[ ! -r $genoa || ! -r $tdxq ]]; then echo "SKIP: no vectors at $V"; exit 77; fi

export ARCA_BUILD=$B
. "$SRC/scripts/daemons.sh"
arca_las_preflight || exit $?

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-tsm-test.XXXXXX")
chmod 755 "$tmp"
las_pid= fake_pid=
cleanup() {
  [[ -n $las_pid ]] && kill -KILL "$las_pid" 2>/dev/null
  [[ -n $fake_pid ]] && kill -KILL "$fake_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

state=$tmp/state
sock=$tmp/las.sock
root=$tmp/tsm/report

# start_fake ARGS...: a fresh fake tree at $root.
start_fake() {
  stop_fake
  rm -rf "$tmp/tsm"
  mkdir -p "$tmp/tsm"
  # The background child truncates fake.out only when it gets to run: the
  # previous fake's "ready" must not be there to be read before that.
  rm -f "$tmp/fake.out"
  "$fake" "$root" "$@" >"$tmp/fake.out" 2>"$tmp/fake.err" &
  fake_pid=$!
  for _ in $(seq 100); do
    grep -q '^ready' "$tmp/fake.out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "the fake configfs-tsm did not start:"; cat "$tmp/fake.err"
  return 1
}
stop_fake() {
  [[ -n $fake_pid ]] || return 0
  kill -TERM "$fake_pid" 2>/dev/null
  wait "$fake_pid" 2>/dev/null
  fake_pid=
}

# start_las ARGS...: arca-las on the fake tree; 0 once ready, 1 when it
# exited (its stderr in $tmp/err).
start_las() {
  rm -f "$tmp/out" "$tmp/err"
  (ARCA_TSM_ROOT=$root arca_las_exec --state "$state" --socket "$sock" "$@") >"$tmp/out" 2>"$tmp/err" &
  las_pid=$!
  for _ in $(seq 200); do
    grep -q '^ready ' "$tmp/out" 2>/dev/null && return 0
    if ! kill -0 "$las_pid" 2>/dev/null; then
      wait "$las_pid" 2>/dev/null
      las_rc=$?
      las_pid=
      return 1
    fi
    sleep 0.05
  done
  echo "arca-las neither became ready nor exited; stderr:"; cat "$tmp/err"
  return 1
}
stop_las() {
  [[ -n $las_pid ]] || return 0
  kill -TERM "$las_pid"
  wait "$las_pid"
  local rc=$?
  las_pid=
  return $rc
}

entries_left() { find "$root" -mindepth 1 -maxdepth 1 | wc -l; }
entries_made() { grep -c ': created$' "$tmp/fake.err"; }

# --- sev-snp: start-up report, ready line ---
start_fake --capture "$genoa" || exit 1
if start_las --platform sev-snp; then
  pass "arca-las starts in sev-snp mode"
else
  fail "arca-las --platform sev-snp did not start: $(cat "$tmp/err")"
  exit 1
fi
ready=$(grep '^ready ' "$tmp/out")
[[ $ready =~ ^ready\ socket=$sock\ platform=sev-snp\ fingerprint=SHA256: ]] && pass "ready line says platform=sev-snp" ||
  fail "ready line: $ready"
grep -q "configfs-tsm at $root: provider sev_guest, report 1184 bytes, auxblob 6577 bytes: using sev-snp" "$tmp/err" &&
  pass "start-up report described" || fail "no start-up report line: $(cat "$tmp/err")"
grep -q 'sim mode does not protect' "$tmp/err" && fail "sim warning in sev-snp mode" || pass "no sim warning in sev-snp mode"
[[ $(entries_made) -eq 1 && $(entries_left) -eq 0 ]] && pass "the start-up entry was removed" ||
  fail "after start: $(entries_made) entries made, $(entries_left) left"

# --- an envelope for the caller ---
out=$("$client" "$sock" sev-snp 2>&1); rc=$?
if [[ $rc -eq 0 && $out == *"platform=sev-snp"*"self=match report=1184 auxblob=6577 provider=sev_guest binding=refused"* ]]; then
  pass "envelope names the caller, its report data and measurement; the recorded report cannot bind it"
else
  fail "envelope: rc $rc: $out"
fi
grep -q 'inblob 64 bytes, generation 0 -> 1$' "$tmp/fake.err" && pass "inblob is the 64-byte binding" ||
  fail "fake log: $(cat "$tmp/fake.err")"
[[ $(entries_made) -eq 2 && $(entries_left) -eq 0 ]] && pass "the request's entry was removed" ||
  fail "after a request: $(entries_made) entries made, $(entries_left) left"
grep -q 'request pid=.* granted' "$tmp/err" && pass "LAS logs the request" || fail "LAS log: $(cat "$tmp/err")"
for i in 1 2 3; do "$client" "$sock" sev-snp >/dev/null 2>&1 || fail "request $i"; done
[[ $(entries_made) -eq 5 && $(entries_left) -eq 0 ]] && pass "one entry per request, none left" ||
  fail "after 3 more: $(entries_made) made, $(entries_left) left"
stop_las || fail "arca-las did not stop cleanly"

# --- a racing writer once: asked again in a fresh entry ---
start_fake --capture "$genoa" --race 1 --from 2 || exit 1
start_las --platform sev-snp || { fail "start for the race: $(cat "$tmp/err")"; exit 1; }
out=$("$client" "$sock" sev-snp 2>&1); rc=$?
[[ $rc -eq 0 ]] && pass "a request whose entry another writer touched is answered" || fail "race once: rc $rc: $out"
grep -q 'generation moved from 0 to 2 over one write (attempt 1 of 3): another writer; asking again' "$tmp/err" &&
  pass "LAS saw the generation move by two and asked again" || fail "no retry in LAS log: $(cat "$tmp/err")"
[[ $(entries_made) -eq 3 && $(entries_left) -eq 0 ]] && pass "the raced entry and the retry's were removed" ||
  fail "race once: $(entries_made) made, $(entries_left) left"
stop_las

# --- a racing writer every time: refused ---
start_fake --capture "$genoa" --race 100 --from 2 || exit 1
start_las --platform sev-snp || { fail "start for the races: $(cat "$tmp/err")"; exit 1; }
out=$("$client" "$sock" sev-snp 2>&1); rc=$?
if [[ $rc -eq 3 && $out == *"written by someone else during 3 attempts in a row"* ]]; then
  pass "refused after 3 raced attempts"
else
  fail "race always: rc $rc: $out"
fi
[[ $(entries_made) -eq 4 && $(entries_left) -eq 0 ]] && pass "every raced entry removed" ||
  fail "race always: $(entries_made) made, $(entries_left) left"
stop_las

# --- no provider: refused at start; on a request, refused ---
start_fake --capture "$genoa" --no-provider || exit 1
if start_las --platform sev-snp; then
  fail "arca-las started without a provider"
  stop_las
else
  [[ $las_rc -ne 0 ]] && grep -q "configfs-tsm at $root offers no provider" "$tmp/err" &&
    pass "no provider: refused at start" || fail "no provider: rc $las_rc: $(cat "$tmp/err")"
fi
[[ $(entries_left) -eq 0 ]] && pass "no entry left after the refused start" || fail "$(entries_left) entries left"
start_fake --capture "$genoa" --no-provider --from 2 || exit 1
start_las --platform sev-snp || { fail "start before the provider goes: $(cat "$tmp/err")"; exit 1; }
out=$("$client" "$sock" 2>&1); rc=$?
[[ $rc -eq 3 && $out == *"offers no provider"* ]] && pass "no provider: request refused" || fail "no provider: rc $rc: $out"
[[ $(entries_left) -eq 0 ]] && pass "no entry left after the refusal" || fail "$(entries_left) entries left"
stop_las

# --- a provider of the other platform ---
start_fake --capture "$genoa" --provider tdx_guest || exit 1
if start_las --platform sev-snp; then
  fail "sev-snp mode started on a tdx_guest provider"
  stop_las
else
  grep -q 'offers provider "tdx_guest", not sev_guest' "$tmp/err" && pass "other provider: refused at start" ||
    fail "other provider: $(cat "$tmp/err")"
fi

# --- auto ---
start_fake --capture "$genoa" || exit 1
start_las --platform auto || { fail "auto did not start: $(cat "$tmp/err")"; exit 1; }
grep -q '^ready .* platform=sev-snp ' "$tmp/out" && grep -q 'platform auto: configfs-tsm at .*: using sev-snp' "$tmp/err" &&
  pass "auto chose sev-snp and said so" || fail "auto: $(cat "$tmp/out" "$tmp/err")"
stop_las
stop_fake
rm -rf "$tmp/tsm"
start_las --platform auto || { fail "auto without configfs-tsm did not start: $(cat "$tmp/err")"; exit 1; }
grep -q '^ready .* platform=sim ' "$tmp/out" && grep -q "platform auto: no configfs-tsm at $root .*: using sim" "$tmp/err" &&
  pass "auto without configfs-tsm chose sim and said so" || fail "auto, no tsm: $(cat "$tmp/out" "$tmp/err")"
stop_las
if start_las --platform sev-snp; then
  fail "sev-snp mode started without configfs-tsm"
  stop_las
else
  grep -q "platform sev-snp refused: no configfs-tsm at $root" "$tmp/err" && pass "sev-snp without configfs-tsm refused" ||
    fail "sev-snp without tsm: $(cat "$tmp/err")"
fi
if start_las --platform sgx; then
  fail "an unknown platform started"
  stop_las
else
  grep -q 'platform "sgx" refused' "$tmp/err" && pass "--platform sgx refused" || fail "sgx: $(cat "$tmp/err")"
fi

# --- tdx ---
start_fake --outblob "$tdxq" --provider tdx_guest || exit 1
start_las --platform auto || { fail "auto (tdx) did not start: $(cat "$tmp/err")"; exit 1; }
grep -q '^ready .* platform=tdx ' "$tmp/out" && pass "auto chose tdx" || fail "auto (tdx): $(cat "$tmp/out" "$tmp/err")"
out=$("$client" "$sock" tdx 2>&1); rc=$?
size=$(stat -c %s "$tdxq")
[[ $rc -eq 0 && $out == *"report=$size auxblob=0 provider=tdx_guest binding=refused"* ]] && pass "TDX envelope" ||
  fail "tdx envelope: rc $rc: $out"
[[ $(entries_left) -eq 0 ]] && pass "no TDX entry left" || fail "$(entries_left) TDX entries left"
stop_las

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed"
  echo "--- arca-las stderr ---"; cat "$tmp/err"
  echo "--- fake stderr ---"; cat "$tmp/fake.err"
  exit 1
fi
echo "all arca-las configfs-tsm checks passed"
