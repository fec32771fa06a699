#!/usr/bin/env bash
# test_measure.sh: `arca measure` as an operator uses it (output shapes, a
# digest recomputable from its own breakdown, one changed byte changes it,
# host loader variables do not), the programs the launcher refuses
# (static, script), and the shield's refusals when started other than by
# arca-las (exit 78, main never runs).
set -uo pipefail

B=${ARCA_BUILD:-}
if [[ -z "$B" ]]; then echo "SKIP: ARCA_BUILD is not set"; exit 77; fi
arca=$B/bin/arca
shield=$B/lib/libarca-shield.so
for f in "$arca" "$shield"; do
  if [[ ! -e $f ]]; then echo "SKIP: $f is not built"; exit 77; fi
done
if ! command -v python3 >/dev/null; then echo "SKIP: python3 is needed to check the JSON output"; exit 77; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-measure-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export ARCA_HOME=$tmp/home
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

true_bin=$(readlink -f "$(type -P true)")

# --- JSON shape, and the digest recomputed from the breakdown ---
if "$arca" measure --json -- "$true_bin" >"$tmp/true.json" 2>"$tmp/err"; then
  if python3 - "$tmp/true.json" "$true_bin" "$(readlink -f "$shield")" <<'PY'
import hashlib, json, re, sys
doc = json.load(open(sys.argv[1]))
exe, shield = sys.argv[2], sys.argv[3]
assert list(doc.keys()) == ["measurement", "objects"], doc.keys()
hexre = re.compile(r"^sha256:[0-9a-f]{64}$")
assert hexre.match(doc["measurement"]), doc["measurement"]
objs = doc["objects"]
assert isinstance(objs, list) and len(objs) >= 3
paths = [o["path"] for o in objs]
for o in objs:
    assert sorted(o.keys()) == ["path", "sha256"], o
    assert hexre.match(o["sha256"]), o
    # each object's digest is the file's SHA-256
    assert hashlib.sha256(open(o["path"], "rb").read()).hexdigest() == o["sha256"][7:], o["path"]
assert paths == sorted(paths, key=lambda p: p.encode()), "objects not sorted by path bytes"
assert exe in paths, "the executable is missing"
assert shield in paths, "the shield is missing"
assert any("ld-linux" in p or "/ld-" in p for p in paths), "the loader is missing"
h = hashlib.sha256()
for o in objs:
    h.update(o["path"].encode() + b"\0" + bytes.fromhex(o["sha256"][7:]))
assert "sha256:" + h.hexdigest() == doc["measurement"], "digest does not follow from the objects"
PY
  then pass "JSON shape, per-object digests and the measurement formula"; else fail "JSON output: $(cat "$tmp/true.json")"; fi
else
  fail "arca measure --json failed: $(cat "$tmp/err")"
fi

# --- text form agrees with JSON; stable; PATH lookup ---
"$arca" measure -- "$true_bin" >"$tmp/true.txt" 2>"$tmp/err" || fail "arca measure (text): $(cat "$tmp/err")"
m_json=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["measurement"])' "$tmp/true.json")
m_text=$(sed -n 's/^measurement //p' "$tmp/true.txt")
if [[ ! $m_text =~ ^sha256:[0-9a-f]{64}$ ]]; then
  fail "no measurement line: $(cat "$tmp/true.txt")"
  echo "test_measure: cannot go on without a measurement"
  exit 1
fi
[[ $m_text == "$m_json" ]] && pass "text and JSON agree" || fail "text $m_text, JSON $m_json"
n_obj=$(grep -cE '^  sha256:[0-9a-f]{64}  /' "$tmp/true.txt")
[[ $n_obj -eq $(( $(wc -l <"$tmp/true.txt") - 1 )) && $n_obj -ge 3 ]] && pass "one line per object" || fail "object lines: $(cat "$tmp/true.txt")"
again=$("$arca" measure -- "$true_bin" | sed -n 's/^measurement //p')
[[ $again == "$m_text" ]] && pass "measuring twice gives the same digest" || fail "unstable: $again vs $m_text"
via_path=$(PATH=$(dirname "$true_bin") "$arca" measure -- "$(basename "$true_bin")" | sed -n 's/^measurement //p')
[[ $via_path == "$m_text" ]] && pass "CMD found through PATH" || fail "through PATH: $via_path"

# --- the host's loader variables do not reach the measured program ---
other_lib=$(ldd "$B/bin/arca" 2>/dev/null | awk '/libz|libyaml|libjansson/ {print $3; exit}')
hosty=$(LD_LIBRARY_PATH=$tmp LD_PRELOAD=$other_lib ARCA_SHIELD_MODE=attest "$arca" measure -- "$true_bin" | sed -n 's/^measurement //p')
[[ $hosty == "$m_text" ]] && pass "host LD_PRELOAD/LD_LIBRARY_PATH/ARCA_* ignored" || fail "host variables changed the measurement: $hosty"

# --- one changed byte, same path: different measurement, one object differs ---
cp "$true_bin" "$tmp/prog"
"$arca" measure --json -- "$tmp/prog" >"$tmp/a.json" || fail "measure copy"
python3 - "$tmp/prog" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
# a byte of text the loader never looks at
i = b.find(b"Usage")
if i < 0:
    i = len(b) - 1
b[i] ^= 0x01
open(p + ".new", "wb").write(bytes(b))
PY
chmod 755 "$tmp/prog.new" && mv "$tmp/prog.new" "$tmp/prog"
"$arca" measure --json -- "$tmp/prog" >"$tmp/b.json" || fail "measure patched copy"
if python3 - "$tmp/a.json" "$tmp/b.json" "$tmp/prog" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["measurement"] != b["measurement"]
da = {o["path"]: o["sha256"] for o in a["objects"]}
db = {o["path"]: o["sha256"] for o in b["objects"]}
assert da.keys() == db.keys()
changed = [p for p in da if da[p] != db[p]]
assert changed == [sys.argv[3]], changed
PY
then pass "one changed byte changes the measurement, and only that object"; else fail "patched copy: $(cat "$tmp/a.json") / $(cat "$tmp/b.json")"; fi

# --- refused programs ---
printf '#!/bin/sh\ntrue\n' >"$tmp/script.sh"; chmod 755 "$tmp/script.sh"
"$arca" measure -- "$tmp/script.sh" >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -eq 1 ]] && grep -q 'is a script' "$tmp/err" && pass "script refused" || fail "script: rc $rc $(cat "$tmp/err")"
"$arca" measure -- no-such-command-arca >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -eq 1 ]] && grep -q 'not found' "$tmp/err" && pass "unknown command refused" || fail "unknown command: rc $rc"
if command -v cc >/dev/null && printf 'int main(void){return 0;}\n' >"$tmp/s.c" && cc -static -o "$tmp/static" "$tmp/s.c" 2>/dev/null; then
  "$arca" measure -- "$tmp/static" >/dev/null 2>"$tmp/err"; rc=$?
  [[ $rc -eq 1 ]] && grep -q 'statically linked' "$tmp/err" && pass "static binary refused by measure" || fail "static (measure): rc $rc $(cat "$tmp/err")"
  "$arca" run --session s --service v -- "$tmp/static" >/dev/null 2>"$tmp/err"; rc=$?
  [[ $rc -eq 1 ]] && grep -q 'statically linked' "$tmp/err" && pass "static binary refused by run" || fail "static (run): rc $rc $(cat "$tmp/err")"
else
  echo "SKIP (part): cannot build a static binary here (cc or libc.a missing); static refusal not checked"
fi
"$arca" run --session s --service v -- "$true_bin" >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -eq 1 ]] && grep -q 'run arca cas attest' "$tmp/err" && pass "run without a pinned CAS refused" || fail "run without pin: rc $rc $(cat "$tmp/err")"

# --- the shield refuses (78, one line) and main never runs ---
# shield_case NAME EXPECTED_TEXT [--chan] ENV…: /bin/echo with the shield
# and exactly ENV; --chan puts one end of a socketpair on fd 3 (what
# arca-las gives a program it launches).
shield_case() {
  local name=$1 want=$2 chan=0; shift 2
  [[ ${1:-} == --chan ]] && { chan=1; shift; }
  python3 - "$chan" "LD_PRELOAD=$shield" "$@" >"$tmp/s.out" 2>"$tmp/s.err" </dev/null <<'PY'
import os, socket, sys
if sys.argv[1] == "1":
    a, b = socket.socketpair()
    os.dup2(b.fileno(), 3)
    os.set_inheritable(3, True)
env = dict(kv.split("=", 1) for kv in sys.argv[2:])
os.execve("/bin/echo", ["/bin/echo", "main-ran"], env)
PY
  local rc=$?
  if [[ $rc -eq 78 && ! -s $tmp/s.out && $(wc -l <"$tmp/s.err") -eq 1 ]] && grep -q "^arca: refused: .*$want" "$tmp/s.err"; then
    pass "shield: $name"
  else
    fail "shield: $name: rc $rc out '$(cat "$tmp/s.out")' err '$(cat "$tmp/s.err")'"
  fi
}
pin=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
shield_case "no mode" "ARCA_SHIELD_MODE is not set"
shield_case "unknown mode" "expected attest or measure" ARCA_SHIELD_MODE=debug
shield_case "attest without a channel to arca-las" "ARCA_LAS_FD is not set" ARCA_SHIELD_MODE=attest
shield_case "a channel that is no socket" "ARCA_LAS_FD=0 is not a channel to arca-las" ARCA_SHIELD_MODE=attest ARCA_LAS_FD=0
shield_case "attest without CAS" "ARCA_CAS is not set" --chan ARCA_SHIELD_MODE=attest ARCA_LAS_FD=3
shield_case "bad pin" "not a key fingerprint" --chan ARCA_SHIELD_MODE=attest ARCA_CAS=127.0.0.1:1 ARCA_CAS_PIN=x \
  ARCA_LAS_FD=3 ARCA_SESSION=s ARCA_SERVICE=v
shield_case "CAS unreachable" "cannot reach CAS at 127.0.0.1:1" --chan ARCA_SHIELD_MODE=attest ARCA_CAS=127.0.0.1:1 \
  ARCA_CAS_PIN=$pin ARCA_LAS_FD=3 ARCA_SESSION=s ARCA_SERVICE=v
shield_case "a loader variable" "loader variable LD_BIND_NOW" --chan ARCA_SHIELD_MODE=attest LD_BIND_NOW=1 \
  ARCA_CAS=127.0.0.1:1 ARCA_CAS_PIN=$pin ARCA_LAS_FD=3 ARCA_SESSION=s ARCA_SERVICE=v
libz=$(ldd "$B/bin/arca" 2>/dev/null | awk '/libz|libyaml|libjansson/ {print $3; exit}')
shield_case "a second preloaded library" "LD_PRELOAD must name only the shield" --chan ARCA_SHIELD_MODE=attest \
  "LD_PRELOAD=$shield $libz" ARCA_CAS=127.0.0.1:1 ARCA_CAS_PIN=$pin ARCA_LAS_FD=3 ARCA_SESSION=s ARCA_SERVICE=v
shield_case "measure without a channel" "cannot signal readiness" ARCA_SHIELD_MODE=measure ARCA_MEASURE_FD=99

if [[ $failures -ne 0 ]]; then
  echo "test_measure: $failures check(s) failed"
  exit 1
fi
echo "test_measure: all checks passed"
