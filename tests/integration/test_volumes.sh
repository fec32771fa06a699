#!/usr/bin/env bash
# test_volumes.sh: unmodified programs under arca use protected volumes
# through the shield (docs/ARCHITECTURE.md "The file shield"), against the
# real daemons:
#   - sqlite3 keeps a database in a data volume (CAS makes its key and keeps
#     its tag) through inserts, updates, a ROLLBACK and a committed
#     transaction, with its rollback journal in the volume; the output is
#     the native run's, and a second run (a new process) reads back exactly
#     what the first committed;
#   - Debian's python3 (measured) runs a script from an encrypted code
#     volume sealed with `arca fs seal` (its key a binary secret of the
#     session, its tag pinned), imports a module from it, and writes a
#     1 MiB file into the data volume; writing into the code volume fails
#     with EROFS, in python and for cp;
#   - cat, cp and sha256sum under arca read plaintext (the SHA-256 python
#     computes natively from the same module), while the bytes on disk are
#     ciphertext: no plaintext marker and no file name appears in either
#     volume's directory (the same grep finds them in a plain copy);
#   - a program of a service that does not mount the volume sees only the
#     stored records;
#   - while one program holds the data volume, another that mounts it does
#     not start (one writer per volume).
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
py=/usr/bin/python3
for b in "$arca" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
for b in "$py" /usr/bin/sqlite3; do
  [[ -x $b ]] || { echo "SKIP: $b missing (scripts/deps.sh installs python3 and sqlite3)"; exit 77; }
done
usage=$("$arca" fs 2>&1)   # not piped into grep -q: with pipefail, arca's usage exit would count
[[ $usage == *'arca fs seal'* ]] || { echo "SKIP: this arca has no 'arca fs seal'"; exit 77; }
cat_bin=$(readlink -f "$(type -P cat)")
cp_bin=$(readlink -f "$(type -P cp)")
sha_bin=$(readlink -f "$(type -P sha256sum)")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-volumes.XXXXXX")
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; [[ -n ${ARCA_KEEP_TMP:-} ]] || rm -rf "$tmp"; }
trap cleanup EXIT
fails=0 passes=0
ok()  { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
show() { sed 's/^/    | /' "$@" | head -n 30; }

data=$tmp/data     # the data volume (created by the first run)
code=$tmp/code     # the code volume (sealed below)
out=$tmp/out       # an ordinary directory
mkdir -p "$out" "$tmp/src/pkg"
wl=$ARCA_SRC/tests/workloads

# ---------------------------------------------------------------- native
/usr/bin/sqlite3 "$tmp/native.db" <"$wl/volume_sql_1.sql" >"$tmp/sql.native.1" 2>&1
/usr/bin/sqlite3 "$tmp/native.db" <"$wl/volume_sql_2.sql" >"$tmp/sql.native.2" 2>&1
if grep -qx 'row|a|alpha-marker' "$tmp/sql.native.1" && grep -qx ok "$tmp/sql.native.1" &&
   ! grep -q rolled-back "$tmp/sql.native.1"; then ok "native: sqlite3 script"; else
  bad "native sqlite3 run"; show "$tmp/sql.native.1"; fi
# The queries of run 2 are run 1's last ones: the same lines.
tail -n "$(wc -l <"$tmp/sql.native.2")" "$tmp/sql.native.1" | cmp -s - "$tmp/sql.native.2" ||
  bad "native: the second run's queries do not repeat the first run's"
want_sha=$("$py" -c 'import sys, hashlib; sys.path.insert(0, sys.argv[1]); import volume_helper as h; print(hashlib.sha256(h.payload()).hexdigest())' "$wl")
[[ $want_sha =~ ^[0-9a-f]{64}$ ]] || { echo "FAIL: cannot compute the payload's SHA-256 natively"; exit 1; }
ok "payload SHA-256 (native): $want_sha"

# ---------------------------------------------------------------- seal
cp "$wl/volume_app.py" "$tmp/src/app.py"
cp "$wl/volume_helper.py" "$tmp/src/volume_helper.py"
printf 'nested file\n' >"$tmp/src/pkg/readme.txt"
if ! "$arca" fs seal "$tmp/src" "$code" --mode encrypted --key-out "$tmp/code.key" >"$tmp/seal.out" 2>&1; then
  bad "arca fs seal"; show "$tmp/seal.out"; echo "$passes passed, $fails failed"; exit 1
fi
code_tag=$(sed -n 's/^tag \([0-9a-f]\{64\}\)$/\1/p' "$tmp/seal.out" | head -n1)
code_key=$(tr -d '\n' <"$tmp/code.key")
if [[ $code_tag =~ ^[0-9a-f]{64}$ && $code_key =~ ^[0-9a-f]{64}$ ]]; then ok "sealed the code volume, tag $code_tag"; else
  bad "arca fs seal printed no tag or wrote no key"; show "$tmp/seal.out"; exit 1; fi

# ---------------------------------------------------------------- daemons
arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
measure() {  # measure PROG: its measurement
  "$arca" measure -- "$1" 2>/dev/null | awk '/^measurement/ {print $2}'
}
m_sql=$(measure /usr/bin/sqlite3) m_py=$(measure "$py") m_cat=$(measure "$cat_bin")
m_cp=$(measure "$cp_bin") m_sha=$(measure "$sha_bin")
for m in "$m_sql" "$m_py" "$m_cat" "$m_cp" "$m_sha"; do
  [[ $m == sha256:* ]] || { echo "FAIL: arca measure failed"; exit 1; }
done

dvol="{name: data, path: \"$data\"}"
cvol="{name: code, path: \"$code\"}"
cat >"$tmp/vols.yaml" <<YAML
name: vols
services:
  - name: sql
    command: [/usr/bin/sqlite3, -bail, "$data/app.db"]
    measurement: "$m_sql"
    platform: {sim: {}}
    volumes: [$dvol]
  - name: py
    command: ["$py", "$code/app.py", "$data"]
    measurement: "$m_py"
    platform: {sim: {}}
    volumes: [$cvol, $dvol]
  - name: cat-data
    command: ["$cat_bin", "$data/big.bin"]
    measurement: "$m_cat"
    platform: {sim: {}}
    volumes: [$dvol]
  - name: cat-code
    command: ["$cat_bin", "$code/app.py", "$code/pkg/readme.txt"]
    measurement: "$m_cat"
    platform: {sim: {}}
    volumes: [$cvol]
  - name: cat-unmounted
    command: ["$cat_bin", "$data/big.bin"]
    measurement: "$m_cat"
    platform: {sim: {}}
  - name: cp-out
    command: ["$cp_bin", "$data/big.bin", "$out/copy.bin"]
    measurement: "$m_cp"
    platform: {sim: {}}
    volumes: [$dvol]
  - name: cp-in
    command: ["$cp_bin", "$out/copy.bin", "$data/copy-in.bin"]
    measurement: "$m_cp"
    platform: {sim: {}}
    volumes: [$dvol]
  - name: cp-code
    command: ["$cp_bin", "$out/copy.bin", "$code/evil.bin"]
    measurement: "$m_cp"
    platform: {sim: {}}
    volumes: [$cvol]
  - name: sha
    command: ["$sha_bin", "$data/big.bin", "$data/copy-in.bin", "$code/volume_helper.py"]
    measurement: "$m_sha"
    platform: {sim: {}}
    volumes: [$cvol, $dvol]
secrets:
  - {name: code_key, kind: binary, value: "$code_key"}
volumes:
  - {name: data, mode: encrypted}
  - {name: code, mode: encrypted, key: code_key, tag: "$code_tag"}
$(arca_host_tolerate)
YAML
if ! "$arca" session create "$tmp/vols.yaml" >"$tmp/create.out" 2>&1; then
  bad "session create"; show "$tmp/create.out"; echo "$passes passed, $fails failed"; exit 1
fi
run() { "$arca" run --session vols --service "$@"; }

# ---------------------------------------------------------------- sqlite3
[[ ! -e $data ]] || bad "$data exists before the first run"
run sql <"$wl/volume_sql_1.sql" >"$tmp/sql.arca.1" 2>"$tmp/sql.arca.1.err"; rc=$?
if [[ $rc -eq 0 ]] && cmp -s "$tmp/sql.native.1" "$tmp/sql.arca.1"; then
  ok "sqlite3 in the data volume: inserts, updates, ROLLBACK, COMMIT give the native output"
else bad "sqlite3 run 1 (exit $rc) differs from the native run"; show "$tmp/sql.arca.1" "$tmp/sql.arca.1.err"; fi
[[ -f $data/arca-volume.json && -f $data/manifest ]] && ok "the first run created the volume at $data" ||
  bad "no volume at $data after the first run"
run sql <"$wl/volume_sql_2.sql" >"$tmp/sql.arca.2" 2>"$tmp/sql.arca.2.err"; rc=$?
if [[ $rc -eq 0 ]] && cmp -s "$tmp/sql.native.2" "$tmp/sql.arca.2" && [[ -s $tmp/sql.arca.2 ]]; then
  ok "sqlite3 restarted: reads back exactly what the first run committed ($(grep -c . "$tmp/sql.arca.2") lines)"
else bad "sqlite3 run 2 (exit $rc)"; show "$tmp/sql.arca.2" "$tmp/sql.arca.2.err"; fi

# One writer at a time: while sqlite3 holds the data volume, python3's
# service (which mounts it too) does not start.
mkfifo "$tmp/fifo"
run sql <"$tmp/fifo" >"$tmp/sql.hold" 2>&1 &
holder=$!
exec 7>"$tmp/fifo"
echo "SELECT 'holding';" >&7
for ((i = 0; i < 150; i++)); do grep -qx holding "$tmp/sql.hold" && break; sleep 0.1; done
if grep -qx holding "$tmp/sql.hold"; then
  run py >"$tmp/py.busy.out" 2>"$tmp/py.busy.err"; rc=$?
  if [[ $rc -eq 78 ]] && grep -q 'in use by another process' "$tmp/py.busy.err"; then
    ok "a second writer is refused while sqlite3 holds the volume: $(head -c 200 "$tmp/py.busy.err")"
  else bad "second writer: exit $rc (want 78, 'in use')"; show "$tmp/py.busy.err"; fi
else bad "sqlite3 holding the volume never answered"; show "$tmp/sql.hold"; fi
exec 7>&-
wait "$holder" || bad "sqlite3 holding the volume exited $?"

# ---------------------------------------------------------------- python3
run py >"$tmp/py.out" 2>"$tmp/py.err"; rc=$?
if [[ $rc -eq 0 ]] && grep -qx 'workload: all checks passed' "$tmp/py.out"; then
  ok "python3 ran app.py from the encrypted code volume ($(grep -c '^ok: ' "$tmp/py.out") checks)"
else bad "python3 from the code volume (exit $rc)"; show "$tmp/py.out" "$tmp/py.err"; fi
grep -q '^ok: writing into the code volume fails with EROFS' "$tmp/py.out" &&
  ok "python3: writing into the code volume fails with EROFS" || bad "python3: no EROFS for a write into the code volume"
[[ $(sed -n 's/^sha256 //p' "$tmp/py.out") == "$want_sha" ]] && ok "python3 read back the payload (SHA-256 matches)" ||
  bad "python3's SHA-256 '$(sed -n 's/^sha256 //p' "$tmp/py.out")' is not $want_sha"

# ---------------------------------------------------------------- cat, cp, sha256sum
run cat-data >"$tmp/cat.out" 2>"$tmp/cat.err"; rc=$?
got=$(sha256sum <"$tmp/cat.out" | cut -d' ' -f1)
if [[ $rc -eq 0 && $got == "$want_sha" ]]; then ok "cat of the data volume's big.bin: plaintext (SHA-256 matches)"; else
  bad "cat big.bin (exit $rc): SHA-256 $got"; show "$tmp/cat.err"; fi
run cat-code >"$tmp/catcode.out" 2>"$tmp/catcode.err"; rc=$?
if [[ $rc -eq 0 ]] && cat "$tmp/src/app.py" "$tmp/src/pkg/readme.txt" | cmp -s - "$tmp/catcode.out"; then
  ok "cat of the code volume's files: the sealed sources"; else bad "cat of the code volume (exit $rc)"; show "$tmp/catcode.err"; fi
run cat-unmounted >"$tmp/catu.out" 2>"$tmp/catu.err"; rc=$?
if [[ $rc -ne 0 ]] && grep -q 'No such file' "$tmp/catu.err"; then
  ok "a service without the volume finds no big.bin there (only records on disk)"
else bad "a service that does not mount the volume read $data/big.bin (exit $rc)"; fi
run cp-out >"$tmp/cp.out" 2>&1; rc=$?
got=$(sha256sum "$out/copy.bin" 2>/dev/null | cut -d' ' -f1)
if [[ $rc -eq 0 && $got == "$want_sha" ]]; then ok "cp out of the data volume writes the plaintext"; else
  bad "cp out (exit $rc): SHA-256 '$got'"; show "$tmp/cp.out"; fi
run cp-in >"$tmp/cpin.out" 2>&1; rc=$?
[[ $rc -eq 0 ]] && ok "cp into the data volume" || { bad "cp into the data volume (exit $rc)"; show "$tmp/cpin.out"; }
run cp-code >"$tmp/cpcode.out" 2>&1; rc=$?
if [[ $rc -ne 0 ]] && grep -q 'Read-only file system' "$tmp/cpcode.out"; then
  ok "cp into the code volume fails: $(head -n1 "$tmp/cpcode.out")"
else bad "cp into the code volume (exit $rc) did not fail with EROFS"; show "$tmp/cpcode.out"; fi
run sha >"$tmp/sha.out" 2>"$tmp/sha.err"; rc=$?
want_helper=$(sha256sum "$tmp/src/volume_helper.py" | cut -d' ' -f1)
if [[ $rc -eq 0 && $(awk '{print $1}' "$tmp/sha.out" | paste -sd' ') == "$want_sha $want_sha $want_helper" ]]; then
  ok "sha256sum under arca: big.bin, the copy made inside the volume and the code volume's module"
else bad "sha256sum (exit $rc)"; show "$tmp/sha.out" "$tmp/sha.err"; fi

# ---------------------------------------------------------------- on disk
# The same grep finds the markers in plain copies (so it can fail) ...
grep -rqF alpha-marker "$tmp/native.db" && grep -rqF ARCA-PLAINTEXT-MARKER "$out" &&
  grep -rqF volume_helper "$tmp/src" || bad "grep does not find the markers in the plain copies"
# ... and nothing in the volumes' directories.
for pat in alpha-marker beta-updated ARCA-PLAINTEXT-MARKER; do
  if grep -rqF -- "$pat" "$data"; then bad "plaintext '$pat' found in $data: $(grep -rlF -- "$pat" "$data" | head -n3)"
  else ok "no '$pat' in the data volume's files"; fi
done
for pat in ARCA-PLAINTEXT-MARKER volume_helper 'nested file' 'import hashlib'; do
  if grep -rqF -- "$pat" "$code"; then bad "plaintext '$pat' found in $code"; else ok "no '$pat' in the code volume's files"; fi
done
names=$(find "$data" "$code" \( -name '*.db*' -o -name '*big*' -o -name '*.py' -o -name 'py' -o -name 'pkg' -o -name '*copy*' \) | head -n3)
[[ -z $names ]] && ok "no file or directory name of the program's on disk" || bad "names on disk: $names"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
