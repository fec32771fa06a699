#!/usr/bin/env bash
# test_report.sh: `arca run --report` (CONTRACTS.md "Coverage report")
# against the real daemons: when the protected program exits, its stderr
# gets a short account of its private writable memory (secret memory
# against the rest, what the rest is), its peak RSS and page faults, and
# one machine-readable line whose fields the benchmarks parse. Without
# --report nothing of it is printed; a program that forks reports once;
# the program's exit status and stdout are its own.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
demo=$ARCA_BUILD/bin/arca-demo
for b in "$arca" "$demo" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done

tmp=$(mktemp -d /tmp/arca-report.XXXXXX)
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1

measure() { "$arca" measure -- "$1" | sed -n 's/^measurement //p'; }
# A child of fork that leaves through exit(3), which runs the exit
# handlers it inherited (dash would not: it leaves with _exit).
py=/usr/bin/python3
[[ -x $py ]] || { echo "SKIP: $py is needed"; exit 77; }
py_bin=$(readlink -f "$py")
m_demo=$(measure "$demo") m_py=$(measure "$py_bin")
[[ $m_demo == sha256:* && $m_py == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }
cat >"$tmp/s.yaml" <<YAML
name: report
services:
  - name: demo
    command: ["$demo", --config, /etc/demo/app.ini]
    measurement: "$m_demo"
    platform: {sim: {}}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
    files: {/etc/demo/app.ini: "password = \$\$arca:pw\$\$\n"}
  - name: forks
    command: ["$py_bin", -c, "import os, sys\\nfor i in range(3):\\n  p = os.fork()\\n  if p == 0: sys.exit(0)\\n  os.waitpid(p, 0)\\nprint('forked', flush=True)\\nsys.exit(3)"]
    measurement: "$m_py"
    platform: {sim: {}}
secrets:
  - {name: pw, kind: ascii, size: 16}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/s.yaml" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; exit 1; }

line_re='^arca: report: secret_kib=([0-9]+) other_kib=([0-9]+) percent=([0-9]+)\.([0-9]) shared_kib=([0-9]+) maxrss_kib=([0-9]+) minflt=([0-9]+) majflt=([0-9]+) secret_memory=(yes|no)$'

# --- with --report ---
"$arca" run --report --session report --service demo -- "$demo" >"$tmp/r.out" 2>"$tmp/r.err"; rc=$?
[[ $rc -eq 0 ]] && pass "demo with --report exits 0" || fail "demo with --report: exit $rc: $(cat "$tmp/r.err")"
grep -q 'main started' "$tmp/r.out" && pass "… and its main ran" || fail "main did not run: $(cat "$tmp/r.out")"
n=$(grep -c '^arca: report: ' "$tmp/r.err")
[[ $n -eq 1 ]] && pass "exactly one machine-readable report line" || fail "$n report lines: $(cat "$tmp/r.err")"
grep -q 'arca: report' "$tmp/r.out" && fail "the report went to stdout" || pass "the report is on stderr only"
line=$(grep '^arca: report: ' "$tmp/r.err" | tail -n 1)
if [[ $line =~ $line_re ]]; then
  pass "report line parses: $line"
  secret_kib=${BASH_REMATCH[1]} other_kib=${BASH_REMATCH[2]} pct_i=${BASH_REMATCH[3]} pct_f=${BASH_REMATCH[4]}
  shared_kib=${BASH_REMATCH[5]} maxrss=${BASH_REMATCH[6]} minflt=${BASH_REMATCH[7]} secret=${BASH_REMATCH[9]}
  # The percent is the secret share of secret + other private writable memory.
  total=$((secret_kib + other_kib))
  want=$((total > 0 ? (secret_kib * 1000 + total / 2) / total : 0))
  [[ $((pct_i * 10 + pct_f)) -eq $want && $pct_i -le 100 ]] && pass "percent $pct_i.$pct_f is secret/(secret+other)" ||
    fail "percent $pct_i.$pct_f, expected $((want / 10)).$((want % 10)) from $secret_kib and $other_kib KiB"
  [[ $other_kib -gt 0 || $secret_kib -gt 0 ]] && pass "private writable memory was counted ($total KiB)" || fail "no memory counted: $line"
  [[ $maxrss -gt 0 && $minflt -gt 0 ]] && pass "peak RSS ($maxrss KiB) and minor faults ($minflt) reported" || fail "rss/faults: $line"
  if [[ $secret == yes ]]; then
    [[ $secret_kib -gt 0 ]] && pass "secret_memory=yes with $secret_kib KiB of secret memory" || fail "secret_memory=yes but secret_kib=0"
  else
    [[ $secret_kib -eq 0 ]] && pass "secret_memory=no and no secret memory counted" || fail "secret_memory=no but secret_kib=$secret_kib"
  fi
  if arca_secret_memory_available; then
    [[ $secret == yes ]] && pass "this kernel has memfd_secret: the program had secret memory" ||
      fail "this kernel has memfd_secret, yet the program had none"
    echo "coverage of the demo: $pct_i.$pct_f% of $total KiB of private writable memory was secret"
  fi
else
  fail "report line does not parse: '$line'"
fi
head -n 1 "$tmp/r.err" | grep -q '^arca: memory report (sim mode: .*not a malicious kernel' &&
  pass "the report starts by saying what sim mode does not protect against" || fail "first line: $(head -n 1 "$tmp/r.err")"
grep -q '^arca:   NOT covered: other private writable memory: [0-9.]* MiB' "$tmp/r.err" &&
  pass "the report names what is not covered" || fail "no 'NOT covered' line: $(cat "$tmp/r.err")"
grep -q '^arca:   shared writable memory other than secret memory (not counted above)' "$tmp/r.err" &&
  pass "shared writable memory is reported apart" || fail "no shared memory line"
grep -qE '^arca:   peak RSS [0-9.]+ MiB; page faults: [0-9]+ minor, [0-9]+ major$' "$tmp/r.err" &&
  pass "peak RSS and page faults in words" || fail "no peak RSS line"

# --- without --report: nothing ---
"$arca" run --session report --service demo -- "$demo" >"$tmp/n.out" 2>"$tmp/n.err"; rc=$?
[[ $rc -eq 0 ]] && pass "demo without --report exits 0" || fail "demo without --report: exit $rc: $(cat "$tmp/n.err")"
if grep -q 'arca: report\|arca: memory report\|arca:   ' "$tmp/n.err" "$tmp/n.out"; then
  fail "a report without --report: $(cat "$tmp/n.err")"
else
  pass "without --report nothing is printed"
fi

# --- a program that forks: one report, its own exit status ---
"$arca" run --report --session report --service forks -- "$py_bin" >"$tmp/f.out" 2>"$tmp/f.err"; rc=$?
[[ $rc -eq 3 ]] && pass "a forking python3 keeps its exit status under --report (3)" || fail "forking python3: exit $rc: $(cat "$tmp/f.err")"
grep -qx forked "$tmp/f.out" && pass "… and ran" || fail "forking python3 did not run: $(cat "$tmp/f.out")"
n=$(grep -c '^arca: report: ' "$tmp/f.err")
[[ $n -eq 1 ]] && pass "children of fork that exit print no report of their own (1 line)" || fail "$n report lines from a forking python3: $(cat "$tmp/f.err")"

[[ $fails -eq 0 ]] && echo "all passed" || echo "$fails failed"
[[ $fails -eq 0 ]]
