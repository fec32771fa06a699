#!/usr/bin/env bash
# test_las_memlock.sh: the locked-memory limit of launched programs
# (arca-las --memlock, CONTRACTS.md "Trusted launch"). Secret memory counts
# against RLIMIT_MEMLOCK, so arca-las sets it (soft and hard) for every
# program it starts: unlimited by default, a size when given, and the
# limit arca-las itself has with --memlock 0. A protected `cat
# /proc/self/limits` shows what the program got. Where arca-las cannot
# raise a limit (no CAP_SYS_RESOURCE) it says so at start, and programs get
# the hard limit it has.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
las=$ARCA_BUILD/bin/arca-las
for b in "$arca" "$las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
command -v prlimit >/dev/null || { echo "SKIP: prlimit (util-linux) is needed"; exit 77; }

tmp=$(mktemp -d /tmp/arca-memlock.XXXXXX)
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# --- sizes arca-las refuses, before it needs root ---
for bad in 12X -5 "" 1.5G 99999999999999999999G "unlimited " 4MB; do
  out=$("$las" --memlock "$bad" --state "$tmp/never" --socket "$tmp/never.sock" 2>&1); rc=$?
  [[ $rc -eq 1 && $out == *"--memlock \"$bad\" refused"* ]] && pass "--memlock '$bad' refused" ||
    fail "--memlock '$bad': exit $rc: $out"
done
"$las" --help 2>&1 | grep -q -- '--memlock SIZE' && pass "--help documents --memlock" || fail "--help lacks --memlock"

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
cat_bin=$(readlink -f "$(type -P cat)")
m_cat=$("$arca" measure -- "$cat_bin" | sed -n 's/^measurement //p')
[[ $m_cat == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }
cat >"$tmp/s.yaml" <<YAML
name: memlock
services:
  - name: limits
    command: ["$cat_bin", /proc/self/limits]
    measurement: "$m_cat"
    platform: {sim: {}}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/s.yaml" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; exit 1; }

# limits: "SOFT HARD" of Max locked memory, as the protected program saw it.
limits() {
  "$arca" run --session memlock --service limits -- "$cat_bin" >"$tmp/l.out" 2>"$tmp/l.err" || {
    echo "run failed: $(cat "$tmp/l.err")"; return 1; }
  awk '/^Max locked memory/ {print $4, $5}' "$tmp/l.out"
}
restart_las() {
  arca_stop_pid "$LAS_PID"; LAS_PID=
  arca_start_las "$tmp" "$@" || exit 1
}
# What arca-las could give when it could not raise its own hard limit.
capped() { sed -n 's/^arca-las: warning: cannot raise the locked-memory limit.* launched programs get \([0-9]*\) KiB.*/\1/p' "$tmp/las.out.err"; }

# --- default: unlimited, or the hard limit arca-las has, said at start ---
got=$(limits); cap=$(capped)
if [[ -z $cap ]]; then
  [[ $got == "unlimited unlimited" ]] && pass "default: the program may lock unlimited memory" || fail "default: $got"
else
  echo "arca-las cannot raise its locked-memory limit here (no CAP_SYS_RESOURCE?): programs get $cap KiB"
  [[ $got == "$((cap * 1024)) $((cap * 1024))" ]] && pass "default without CAP_SYS_RESOURCE: the hard limit arca-las has ($cap KiB), soft and hard" ||
    fail "default, capped at $cap KiB: $got"
  grep -q '^arca-las: warning: cannot raise the locked-memory limit to unlimited' "$tmp/las.out.err" &&
    pass "… and arca-las said so in one warning line" || fail "no warning: $(cat "$tmp/las.out.err")"
fi

# --- a size: lowering needs no privilege, so it always takes ---
restart_las --memlock 4M
got=$(limits)
[[ $got == "4194304 4194304" ]] && pass "--memlock 4M: soft and hard 4194304" || fail "--memlock 4M: $got"
grep -q '^arca-las: launched programs may lock 4096 KiB' "$tmp/las.out.err" && pass "… announced at start" ||
  fail "start line: $(grep memlock "$tmp/las.out.err")"
restart_las --memlock 2048k
got=$(limits)
[[ $got == "2097152 2097152" ]] && pass "--memlock 2048k: 2097152" || fail "--memlock 2048k: $got"

# --- 0: the limit arca-las has, whatever it is ---
ARCA_LAS_WRAPPER="prlimit --memlock=1048576:3145728" restart_las --memlock 0
got=$(limits)
# The memory shield may raise its soft limit to the hard one; the hard
# limit is arca-las's own.
[[ $got == "1048576 3145728" || $got == "3145728 3145728" ]] && pass "--memlock 0: the program keeps arca-las's limit ($got)" ||
  fail "--memlock 0 under a 1 MiB:3 MiB arca-las: $got"

[[ $fails -eq 0 ]] && echo "all passed" || echo "$fails failed"
[[ $fails -eq 0 ]]
