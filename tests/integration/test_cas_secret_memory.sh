#!/usr/bin/env bash
# CAS and ARCA_SIM_FLAG_SECRET_MEMORY (CONTRACTS.md "Attestation"): evidence
# of a program that had no memfd_secret memory when it attested is refused
# with platform_unprotected unless its session tolerates no-secret-memory;
# a grant that relied on that says so in its audit record, next to
# no-ptrace-protection when both were needed. cas-test-helper signs the
# evidence with a LAS key CAS trusts and attests as the shield would; no
# root, no arca-las.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
helper=$ARCA_BUILD/bin/cas-test-helper
for b in "$arca" "$helper" "$ARCA_BUILD/bin/arca-cas"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
command -v jq >/dev/null || { echo "SKIP: jq is needed"; exit 77; }

tmp=$(mktemp -d /tmp/arca-cas-secmem.XXXXXX)
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

arca_start_cas "$tmp" --las "$tmp/no-las.sock" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
pin=$(awk '{print $2}' "$ARCA_HOME/cas-pins")
las_fpr=$("$helper" las-key "$tmp/las.key") || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$las_fpr" >/dev/null || exit 1
m="sha256:$(printf 'a program' | sha256sum | cut -d' ' -f1)"

# session NAME [TOLERATE-LINE]
session() {
  cat >"$tmp/$1.yaml" <<YAML
name: $1
services:
  - name: svc
    command: [/bin/app]
    measurement: "$m"
    platform: {sim: {}}
    environment: {PW: \$\$arca:pw\$\$}
secrets:
  - {name: pw, kind: ascii, size: 16}
${2:-}
YAML
  "$arca" session create "$tmp/$1.yaml" >"$tmp/$1.out" 2>&1 || { cat "$tmp/$1.out"; exit 1; }
}
session strict
session tol-secret "tolerate: [no-secret-memory]"
session tol-ptrace "tolerate: [no-ptrace-protection]"
session tol-both "tolerate: [no-ptrace-protection, no-secret-memory]"

last() { tail -n 1 "$ARCA_CAS_STATE/audit.log"; }
# attest SESSION FLAGS: prints "granted" or "refused CODE"
attest() {
  "$helper" attest-once --cas "$ARCA_CAS" --pin "$pin" --las-key "$tmp/las.key" --measurement "$m" \
    --session "$1" --service svc --flags "$2"
}
# expect SESSION FLAGS OUTCOME TOLERATED-JSON [REASON-SUBSTRING...]
expect() {
  local s=$1 f=$2 want=$3 tol=$4; shift 4
  local got; got=$(attest "$s" "$f")
  local a; a=$(last)
  local what="session $s, flags $f"
  [[ $got == "$want" ]] && pass "$what: $got" || fail "$what: got '$got', want '$want'"
  local t; t=$(jq -c '.tolerated // null' <<<"$a")
  [[ $t == "$tol" ]] && pass "$what: audit tolerated $t" || fail "$what: audit tolerated $t, want $tol: $a"
  local r
  for r in "$@"; do
    [[ $(jq -r '.reason' <<<"$a") == *"$r"* ]] && pass "$what: audit reason says '$r'" ||
      fail "$what: audit reason lacks '$r': $a"
  done
}

# Secret memory and ptrace protection (flags 3): nothing to tolerate.
expect strict 3 granted null
# Ptrace-protected, no secret memory (flags 1).
expect strict 1 "refused platform_unprotected" null "has no secret memory on that host" \
  "memfd_secret unavailable: root could read its memory" "does not tolerate no-secret-memory"
expect tol-secret 1 granted '["no-secret-memory"]' "missing secret memory is tolerated"
expect tol-ptrace 1 "refused platform_unprotected" null "does not tolerate no-secret-memory"
# Neither (flags 0): the ptrace check comes first.
expect tol-secret 0 "refused platform_unprotected" null "does not tolerate no-ptrace-protection"
expect tol-ptrace 0 "refused platform_unprotected" null "does not tolerate no-secret-memory"
expect tol-both 0 granted '["no-ptrace-protection","no-secret-memory"]' \
  "missing ptrace protection and the program's missing secret memory are tolerated"
# Secret memory without ptrace protection (flags 2).
expect tol-ptrace 2 granted '["no-ptrace-protection"]'
expect tol-secret 2 "refused platform_unprotected" null "does not tolerate no-ptrace-protection"
# A toleration the evidence does not need is not recorded.
expect tol-both 3 granted null

"$arca" cas audit-verify "$ARCA_CAS_STATE/audit.log" >/dev/null && pass "audit chain verifies" ||
  fail "audit chain: $("$arca" cas audit-verify "$ARCA_CAS_STATE/audit.log" 2>&1)"

[[ $fails -eq 0 ]] && echo "all passed" || echo "$fails failed"
[[ $fails -eq 0 ]]
