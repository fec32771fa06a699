#!/usr/bin/env bash
# The `arca` command as an owner and an operator use it, against the real
# arca-cas (and arca-las when built): identities, offline policy checks,
# pinning a CAS and refusing a changed key, sessions created, read without
# their secrets, updated without a predecessor and refused to a stranger,
# trusting a LAS, and verifying (and catching an edit in) the audit log.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca="$ARCA_BUILD/bin/arca"
for b in "$arca" "$ARCA_BUILD/bin/arca-cas"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to find a free port"; exit 77; }
have_las=0
[[ -x $ARCA_BUILD/bin/arca-las ]] && have_las=1

tmp=$(mktemp -d /tmp/arca-cli.XXXXXX)
export ARCA_HOME="$tmp/home"
unset ARCA_CAS ARCA_LAS ARCA_CAS_STATE
CAS2_PID=
cleanup() { arca_stop_all; arca_stop_pid "$CAS2_PID"; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0; passes=0
ok()   { passes=$((passes + 1)); echo "ok: $*"; }
bad()  { fails=$((fails + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# run OUT CMD…: runs CMD with stdout+stderr in $tmp/OUT, status in $rc.
run() { local out=$1; shift; "$@" >"$tmp/$out" 2>&1; rc=$?; }
expect_rc() { # expect_rc WHAT WANT OUTFILE
  if [[ $rc -eq $2 ]]; then ok "$1 (exit $rc)"; else bad "$1: exit $rc, want $2: $(head -c 600 "$tmp/$3")"; fi
}
has() { # shows what was there when the pattern is missing
  grep -qE -- "$2" "$tmp/$1" && return 0
  echo "  /$2/ not in $1:"; sed 's/^/  | /' "$tmp/$1" | head -n 20; return 1
}
# Fingerprints hold '+' and '/', so they are matched as fixed strings.
has_fixed() {
  grep -qF -- "$2" "$tmp/$1" && return 0
  echo "  '$2' not in $1:"; sed 's/^/  | /' "$tmp/$1" | head -n 20; return 1
}
hasnt() { ! grep -qaF -- "$2" "$tmp/$1"; }
fpr_re='SHA256:[A-Za-z0-9+/]{43}'

# ---- dispatch ---------------------------------------------------------------
run v.out "$arca" --version; expect_rc "--version" 0 v.out
check "--version prints the version" has v.out '^arca [0-9]'
run help.out "$arca" help; expect_rc "help" 0 help.out
check "help lists every command" bash -c "grep -q identity '$tmp/help.out' && grep -q session '$tmp/help.out' && grep -q 'cas ' '$tmp/help.out' && grep -q measure '$tmp/help.out' && grep -q 'run ' '$tmp/help.out'"
check "help says what sim mode does not protect against" has help.out 'malicious'
run none.out "$arca"; expect_rc "no command is a usage error" 2 none.out
check "no command prints usage" has none.out 'usage'
run unk.out "$arca" frobnicate; expect_rc "unknown command" 2 unk.out
for c in bench; do
  run na.out "$arca" "$c"; expect_rc "arca $c" 2 na.out
  check "arca $c says it is not available" has na.out 'not available in this version'
done

# ---- identity ---------------------------------------------------------------
run id0.out "$arca" identity show; expect_rc "identity show without identity" 1 id0.out
check "… says to create one" has id0.out 'arca identity create'
run id1.out "$arca" identity create --name cli-tester; expect_rc "identity create" 0 id1.out
fpr=$(head -n1 "$tmp/id1.out")
check "create prints the fingerprint first" bash -c "[[ '$fpr' =~ ^$fpr_re\$ ]]"
run id2.out "$arca" identity show; expect_rc "identity show" 0 id2.out
check "show prints the same fingerprint alone on line 1" test "$(head -n1 "$tmp/id2.out")" = "$fpr"
check "show names the certificate" has id2.out 'identity\.crt'
check "ARCA_HOME is 0700" test "$(stat -c %a "$ARCA_HOME")" = 700
check "identity.key is 0600" test "$(stat -c %a "$ARCA_HOME/identity.key")" = 600
key_sum=$(sha256sum <"$ARCA_HOME/identity.key")
run id3.out "$arca" identity create; expect_rc "second identity create refused" 1 id3.out
check "… says an identity exists" has id3.out 'already exists'
check "… and left the key alone" test "$(sha256sum <"$ARCA_HOME/identity.key")" = "$key_sum"

# ---- session check (offline) -------------------------------------------------
given="given-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
given_hex=$(printf %s "$given" | od -An -tx1 | tr -d ' \n')
cat >"$tmp/good.yaml" <<YAML
# a policy for the CLI test
name: cli-test
services:
  - name: app
    command: [/bin/true]
    measurement: "sha256:$(printf '%064d' 0)"
    platform:
      sim: {}
    environment:
      TOKEN: \$\$arca:token\$\$
      GIVEN: \$\$arca:given\$\$
secrets:
  - {name: token, kind: ascii, size: 24}
  - {name: given, kind: ascii, value: "$given"}
YAML
run chk.out "$arca" session check "$tmp/good.yaml"; expect_rc "session check good" 0 chk.out
check "check prints ok NAME hash HEX" has chk.out '^ok cli-test hash [0-9a-f]{64}$'
hash0=$(awk '/^ok/ {print $4}' "$tmp/chk.out")
check "check never prints the given value" hasnt chk.out "$given"

sed 's/^    command:/    comand:/' "$tmp/good.yaml" >"$tmp/bad-key.yaml"
run bk.out "$arca" session check "$tmp/bad-key.yaml"; expect_rc "unknown key refused" 1 bk.out
check "… as FILE:LINE:COL: message" has bk.out "^$tmp/bad-key.yaml:5:[0-9]+: "
sed 's/arca:given/arca:nosuch/' "$tmp/good.yaml" >"$tmp/bad-ref.yaml"
run br.out "$arca" session check "$tmp/bad-ref.yaml"; expect_rc "placeholder naming nothing refused" 1 br.out
check "… as FILE:LINE:COL: message" has br.out "^$tmp/bad-ref.yaml:11:[0-9]+: "
printf 'name: [unclosed\n' >"$tmp/bad-yaml.yaml"
run by.out "$arca" session check "$tmp/bad-yaml.yaml"; expect_rc "broken YAML refused" 1 by.out
check "… with a location" has by.out "^$tmp/bad-yaml.yaml:[0-9]+:[0-9]+: "
run bm.out "$arca" session check "$tmp/missing.yaml"; expect_rc "missing file refused" 1 bm.out

# ---- daemons ------------------------------------------------------------------
if [[ $have_las -eq 1 ]]; then
  arca_start_las "$tmp"; rc=$?
  [[ $rc -eq 77 ]] && have_las=0   # it said why (SKIP line)
  [[ $rc -ne 0 && $rc -ne 77 ]] && exit 1
fi
if [[ $have_las -eq 1 ]]; then
  arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
else
  echo "SKIP (part): no arca-las here; CAS attests with platform none"
  arca_start_cas "$tmp" || exit 1
fi
cas_addr=$ARCA_CAS; cas_state=$ARCA_CAS_STATE; cas1_fpr=$CAS_FPR

run nopin.out "$arca" session create "$tmp/good.yaml"; expect_rc "create before attest refused" 1 nopin.out
check "… says to attest first" has nopin.out "arca cas attest $cas_addr"

run att.out "$arca" cas attest "$cas_addr"; expect_rc "cas attest" 0 att.out
check "attest pins the key CAS printed" grep -qxF "pinned $cas_addr $cas1_fpr" "$tmp/att.out"
check "cas-pins holds the pin" grep -qxF "$cas_addr $cas1_fpr" "$ARCA_HOME/cas-pins"
if [[ $have_las -eq 1 ]]; then
  check "attest shows the LAS that signed CAS's evidence" has_fixed att.out "LAS $LAS_FPR"
  check "attest shows CAS's measurement" has att.out 'measurement sha256:[0-9a-f]{64}'
fi
run att2.out "$arca" cas attest "$cas_addr"; expect_rc "attest again, same key" 0 att2.out

cp "$ARCA_HOME/cas-pins" "$tmp/pins.bak"
printf 'garbage line\n' >>"$ARCA_HOME/cas-pins"
run pinbad.out "$arca" cas attest "$cas_addr"; expect_rc "malformed cas-pins refused" 1 pinbad.out
check "… with file:line" has pinbad.out 'cas-pins:2:'
cp "$tmp/pins.bak" "$ARCA_HOME/cas-pins"

# A different CAS key on the same address.
arca_stop_pid "$CAS_PID"; CAS_PID=
"$ARCA_BUILD/bin/arca-cas" --state "$tmp/cas2" --listen "$cas_addr" >"$tmp/cas2.out" 2>"$tmp/cas2.out.err" &
CAS2_PID=$!
arca_wait_ready "$tmp/cas2.out" "$CAS2_PID" "second arca-cas" || exit 1
cas2_fpr=$(grep -oE "fingerprint=$fpr_re" "$tmp/cas2.out" | head -n1 | cut -d= -f2)
run chg.out "$arca" cas attest "$cas_addr"; expect_rc "changed CAS key refused" 1 chg.out
check "… naming --force" has chg.out 'attest --force'
check "… and the pin is unchanged" grep -qxF "$cas_addr $cas1_fpr" "$ARCA_HOME/cas-pins"
run pinned.out "$arca" session show cli-test; expect_rc "pinned connection refuses the other CAS" 1 pinned.out
run frc.out "$arca" cas attest --force "$cas_addr"; expect_rc "attest --force" 0 frc.out
check "… pins the new key" grep -qxF "$cas_addr $cas2_fpr" "$ARCA_HOME/cas-pins"
check "… and says it replaced the old one" has frc.out 'replaced'
if ! grep -q 'evidence: platform sim' "$tmp/frc.out"; then
  check "a CAS without LAS is called trust on first use" has frc.out 'trust on first use'
fi
arca_stop_pid "$CAS2_PID"; CAS2_PID=
if [[ $have_las -eq 1 ]]; then args=(--las "$ARCA_LAS"); else args=(); fi
# A new log file: the old one still holds a ready line, and the shell may
# look before the new process has truncated it.
"$ARCA_BUILD/bin/arca-cas" --state "$cas_state" --listen "$cas_addr" "${args[@]}" >"$tmp/cas3.out" 2>"$tmp/cas3.out.err" &
CAS_PID=$!
arca_wait_ready "$tmp/cas3.out" "$CAS_PID" arca-cas || exit 1
run back.out "$arca" cas attest --force "$cas_addr"; expect_rc "re-pin the first CAS" 0 back.out

# ---- sessions -------------------------------------------------------------------
run cr.out "$arca" session create "$tmp/good.yaml"; expect_rc "session create" 0 cr.out
check "create prints created NAME hash HEX" has cr.out "^created cli-test hash $hash0\$"
run cr2.out "$arca" session create "$tmp/good.yaml"; expect_rc "second create refused" 1 cr2.out
check "… as one CAS refusal line with its code" has cr2.out '^arca: CAS refused: .*\(conflict\)'
run sh.out "$arca" session show cli-test; expect_rc "session show" 0 sh.out
check "show prints the hash" has sh.out "$hash0"
check "show prints the policy" has sh.out '"token"'
check "show says which secrets CAS generated" has sh.out '^secret token ascii, generated inside CAS$'
check "… and which an owner gave" has sh.out '^secret given ascii, given by an owner'
run gc.out env -u ARCA_CAS "$arca" --cas "$cas_addr" session show cli-test; expect_rc "global --cas" 0 gc.out
run sc.out env -u ARCA_CAS "$arca" session show --cas "$cas_addr" cli-test; expect_rc "--cas after the command" 0 sc.out
run dc.out env -u ARCA_CAS "$arca" session show cli-test; expect_rc "default CAS address is not this one" 1 dc.out
check "show never prints the given value" hasnt sh.out "$given"
check "show never prints it in hex" hasnt sh.out "$given_hex"
run shj.out "$arca" session show --json cli-test; expect_rc "session show --json" 0 shj.out
check "--json is JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/shj.out"
check "--json never prints the given value" hasnt shj.out "$given"
run shn.out "$arca" session show no-such-session; expect_rc "show of an unknown session" 1 shn.out
check "… is one CAS refusal line" has shn.out '^arca: CAS refused: .*\([a-z_]+\)'

# Update without a predecessor: the CLI names the current hash itself.
sed 's/^secrets:/    files:\n      \/etc\/x: "x"\nsecrets:/' "$tmp/good.yaml" >"$tmp/v2.yaml"
cp "$tmp/v2.yaml" "$tmp/v2.orig"
run up.out "$arca" session update "$tmp/v2.yaml"; expect_rc "update without predecessor" 0 up.out
check "update prints new and old hash" has up.out "^updated cli-test hash [0-9a-f]{64} \\(was $hash0\\)\$"
hash1=$(awk '/^updated/ {print $4}' "$tmp/up.out")
check "update left the user's file alone" cmp -s "$tmp/v2.yaml" "$tmp/v2.orig"
check "the hash changed" test "$hash1" != "$hash0"
{ cat "$tmp/good.yaml"; echo "predecessor: $hash0"; } >"$tmp/stale.yaml"
run st.out "$arca" session update "$tmp/stale.yaml"; expect_rc "update with a stale predecessor" 1 st.out
check "… says to read the session again" has st.out 'stale_predecessor.*arca session show'
run sh2.out "$arca" session show cli-test
check "show after update prints the new hash" has sh2.out "$hash1"

# A second identity is not an owner.
home1=$ARCA_HOME
export ARCA_HOME="$tmp/home2"
run o2.out "$arca" identity create --name stranger; expect_rc "second identity" 0 o2.out
check "two identities differ" test "$(head -n1 "$tmp/o2.out")" != "$fpr"
run o2a.out "$arca" cas attest "$cas_addr"; expect_rc "stranger pins CAS" 0 o2a.out
run o2u.out "$arca" session update "$tmp/good.yaml"; expect_rc "stranger's update refused" 1 o2u.out
check "… as forbidden or not found" has o2u.out '^arca: CAS refused: .*\((forbidden|not_found|unknown_service)\)'
run o2s.out "$arca" session show cli-test; expect_rc "stranger's show refused" 1 o2s.out
check "stranger never sees the given value" hasnt o2s.out "$given"
export ARCA_HOME=$home1
run sh3.out "$arca" session show cli-test
check "the session is unchanged after the refusal" has sh3.out "$hash1"

# ---- trust-las --------------------------------------------------------------------
tdir="$tmp/trust-state"
if [[ $have_las -eq 1 ]]; then
  run tl.out "$arca" cas trust-las --state "$tdir" "$tmp/las/platform.pub"; expect_rc "trust-las FILE" 0 tl.out
  check "… prints trusted FPR" has_fixed tl.out "trusted $LAS_FPR"
  check "… writes las-trust" grep -qxF "$LAS_FPR" "$tdir/las-trust"
  run tl2.out "$arca" cas trust-las --state "$tdir" "$LAS_FPR"; expect_rc "trust-las again" 0 tl2.out
  check "… adds no duplicate" test "$(grep -c . "$tdir/las-trust")" -eq 1
fi
other=$cas2_fpr
run tl3.out env ARCA_CAS_STATE="$tdir" "$arca" cas trust-las "$other"; expect_rc "trust-las FINGERPRINT via ARCA_CAS_STATE" 0 tl3.out
check "… appended" grep -qxF "$other" "$tdir/las-trust"
run tl4.out "$arca" cas trust-las --state "$tdir" 'SHA256:not-a-fingerprint'; expect_rc "bad fingerprint refused" 1 tl4.out
run tl5.out "$arca" cas trust-las --state "$tdir" "$tmp/no-such.pub"; expect_rc "missing key file refused" 1 tl5.out
run tl6.out "$arca" cas trust-las --state "$tdir" "$tmp/good.yaml"; expect_rc "non-key file refused" 1 tl6.out
check "refusals left las-trust valid" bash -c "! grep -qvE '^($fpr_re)?\$' '$tdir/las-trust'"

# ---- audit log ----------------------------------------------------------------------
log="$cas_state/audit.log"
run av.out "$arca" cas audit-verify "$log"; expect_rc "audit-verify" 0 av.out
check "… reports an intact chain" has av.out "^audit log .*: [1-9][0-9]* records, chain intact\$"
cp "$log" "$tmp/edited.log"
python3 - "$tmp/edited.log" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
l = lines[0]
lines[0] = l.replace("cli-test", "cli-tesT", 1) if "cli-test" in l else l[:-2] + ("x" if l[-2] != "x" else "y") + l[-1:]
open(p, "w").write("\n".join(lines))
PY
run av2.out "$arca" cas audit-verify "$tmp/edited.log"; expect_rc "edited audit log refused" 1 av2.out
check "… naming the first bad line" has av2.out 'line 1|:1[: ]'
run av3.out "$arca" cas audit-verify "$tmp/no-such.log"; expect_rc "missing audit log refused" 1 av3.out

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
