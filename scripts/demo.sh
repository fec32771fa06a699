#!/usr/bin/env bash
# make demo: a program receives a secret no administrator ever saw, because
# its measurement matched the session; a tampered copy is refused.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export ARCA_BUILD=$(cd "${1:-$src/build}" && pwd)
. "$src/scripts/daemons.sh"
arca="$ARCA_BUILD/bin/arca"
demo="$ARCA_BUILD/bin/arca-demo"

tmp=$(mktemp -d /tmp/arca-demo.XXXXXX)
export ARCA_HOME="$tmp/home"
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

echo "arca demo. Mode: sim (software). It protects against other users and"
echo "against root reading the program's environment, arguments and config"
echo "files on disk; it does NOT protect against a malicious kernel or kernel"
echo "module, firmware, side channels or physical attacks."

step "Starting arca-las (Local Attestation Service, software mode) in $tmp"
echo "arca-las starts every protected program itself (arca run only asks it"
echo "to), so that nothing the caller sets (LD_PRELOAD, LD_LIBRARY_PATH, ...)"
echo "reaches the program. With kernel.yama.ptrace_scope >= 1 no other process"
echo "of the same user can ptrace or write the memory of a protected program in"
echo "the moment before it makes itself non-dumpable; its evidence says whether"
echo "this host had that, and each session decides whether it needs it."
arca_start_las "$tmp"
echo "LAS platform key: $LAS_FPR"

step "Starting arca-cas (Configuration and Attestation Service) on loopback"
arca_start_cas "$tmp" --las "$ARCA_LAS"
echo "CAS listening on $ARCA_CAS, key $CAS_FPR"

step "Creating the owner's identity"
"$arca" identity create --name demo-owner

step "Attesting CAS and pinning its key"
"$arca" cas attest "$ARCA_CAS"

step "Telling CAS to trust this host's LAS"
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub"

step "Measuring the demo program (every object mapped executable at start)"
"$arca" measure -- "$demo"
measurement=$("$arca" measure -- "$demo" | awk '/^measurement/ {print $2}')

step "Creating session 'demo': its database password is generated inside CAS"
sed -e "s|@DEMO@|$demo|" -e "s|@MEASUREMENT@|$measurement|" \
  "$src/examples/demo/session.yaml.in" >"$tmp/session.yaml"
tolerate=$(arca_host_tolerate)
if [[ -n $tolerate ]]; then
  echo "$tolerate" >>"$tmp/session.yaml"
  echo "this kernel has no Yama ptrace protection: the session tolerates it, and CAS records that in the audit log"
fi
"$arca" session create "$tmp/session.yaml"
"$arca" session show demo | head -n 3
echo "(the value itself is never shown: not to the owner, not in any log)"

step "Running the demo under arca, with a host variable the operator set (FOO=bar)"
echo "arca-las starts it as this user with an environment of its own making;"
echo "FOO and PYTHONPATH never reach it. The program gets the password"
echo "through its environment (the session's) and through an"
echo "injected /etc/demo/app.ini (served from memory, never on disk; but"
echo "not secret memory: root can read it while the program has it open), and"
echo "prints only SHA-256 hashes of what it got. Its heap, stacks and data"
echo "live in memfd_secret memory, which root cannot read through"
echo "/proc/PID/mem, ptrace or a core dump (sim mode: this does not stop a"
echo "malicious kernel, or root injecting code); --report shows how much:"
FOO=bar PYTHONPATH=/tmp/evil "$arca" run --report --session demo --service app -- "$demo"
[[ ! -e /etc/demo/app.ini ]] && echo "(/etc/demo/app.ini does not exist on disk)"

step "Running a copy of the program with one byte changed"
cp "$demo" "$tmp/arca-demo-tampered"
python3 - "$tmp/arca-demo-tampered" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.index(b"main started")
b[i] ^= 0x20          # "main" -> "Main": one byte of the program changed
open(p, "wb").write(bytes(b))
PY
if "$arca" run --session demo --service app -- "$tmp/arca-demo-tampered"; then
  echo "demo FAILED: the tampered program was not refused" >&2
  exit 1
fi
echo "(refused as expected: main never ran)"

step "The audit log (hash-chained), last two records"
tail -n 2 "$ARCA_CAS_STATE/audit.log"
"$arca" cas audit-verify "$ARCA_CAS_STATE/audit.log"

step "Stopping the daemons and removing $tmp"
