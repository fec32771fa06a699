#!/usr/bin/env bash
# test_volume_tamper.sh: what root does to a data volume's directory is
# detected when a program under arca reads it (docs/VOLUMES.md "What it
# protects against"). For each of
#   - one flipped bit in a block record,
#   - two files' contents swapped (their slot files exchanged on disk),
#   - a file truncated on disk,
#   - a file put back to an older version of itself (its d/FID.* files
#     copied aside, the file changed through arca, the old ones put back:
#     the manifest is the newer one),
#   - a block record copied from another file,
# `cat` under arca first reads the file (the SHA-256 of what was written),
# then, after the change, fails with EIO and stderr has the shield's line
# naming the volume, the file and the block; it never prints the file's
# bytes. Then a whole volume directory restored from an earlier copy
# keeps the program from starting (exit 78, a message that says rollback)
# and CAS's audit log has a volume_rollback record; so does a volume
# removed from disk, and a directory that holds a volume CAS has no tag
# for is not taken as a new volume.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
py=/usr/bin/python3
for b in "$arca" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
[[ -x $py ]] || { echo "SKIP: $py missing (scripts/deps.sh installs python3)"; exit 77; }
cat_bin=$(readlink -f "$(type -P cat)")
wl=$ARCA_SRC/tests/workloads

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-tamper.XXXXXX")
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; [[ -n ${ARCA_KEEP_TMP:-} ]] || rm -rf "$tmp"; }
trap cleanup EXIT
fails=0 passes=0
ok()  { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
show() { sed 's/^/    | /' "$@" | head -n 20; }

data=$tmp/data  # the volume root tampers with
rb=$tmp/rb      # the volume restored from an older copy
ctl=$tmp/ctl    # volume_tool.py's instruction
other=$tmp/other # a volume CAS has no tag for

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
m_py=$("$arca" measure -- "$py" 2>/dev/null | awk '/^measurement/ {print $2}')
m_cat=$("$arca" measure -- "$cat_bin" 2>/dev/null | awk '/^measurement/ {print $2}')
[[ $m_py == sha256:* && $m_cat == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }

names=(flip swapa swapb trunc old src copy)
{
  echo "name: tamper"
  echo "services:"
  echo "  - {name: write, command: [\"$py\", \"$wl/volume_tool.py\", \"$data\", \"$ctl\"], measurement: \"$m_py\","
  echo "     platform: {sim: {}}, volumes: [{name: data, path: \"$data\"}]}"
  for n in "${names[@]}"; do
    echo "  - {name: cat-$n, command: [\"$cat_bin\", \"$data/$n\"], measurement: \"$m_cat\","
    echo "     platform: {sim: {}}, volumes: [{name: data, path: \"$data\"}]}"
  done
  echo "  - {name: rb-write, command: [\"$py\", \"$wl/volume_tool.py\", \"$rb\", \"$ctl\"], measurement: \"$m_py\","
  echo "     platform: {sim: {}}, volumes: [{name: rb, path: \"$rb\"}]}"
  echo "  - {name: rb-cat, command: [\"$cat_bin\", \"$rb/f\"], measurement: \"$m_cat\","
  echo "     platform: {sim: {}}, volumes: [{name: rb, path: \"$rb\"}]}"
  echo "  - {name: other-cat, command: [\"$cat_bin\", \"$other/flip\"], measurement: \"$m_cat\","
  echo "     platform: {sim: {}}, volumes: [{name: other, path: \"$other\"}]}"
  echo "volumes: [{name: data, mode: encrypted}, {name: rb, mode: encrypted}, {name: other, mode: encrypted}]"
  arca_host_tolerate
} >"$tmp/tamper.yaml"
if ! "$arca" session create "$tmp/tamper.yaml" >"$tmp/create.out" 2>&1; then
  bad "session create"; show "$tmp/create.out" "$tmp/tamper.yaml"; exit 1
fi
run() { "$arca" run --session tamper --service "$@"; }

fids() { ls "$1/d" 2>/dev/null | sed -n 's/^\([0-9a-f]\{32\}\)\..*/\1/p' | sort -u; }
declare -A fid sha
# write SERVICE VOLDIR NAME SIZE SEED: writes through arca; sets fid[NAME]
# (the new file's identifier, seen as the one new FID on disk) and sha[NAME].
write() {
  local svc=$1 dir=$2 name=$3 size=$4 seed=$5 before
  before=$(fids "$dir")
  echo "write $name $size $seed" >"$ctl"
  if ! run "$svc" >"$tmp/w.out" 2>&1; then bad "writing $name through arca"; show "$tmp/w.out"; return 1; fi
  sha[$name]=$("$py" -c 'import hashlib, random, sys; print(hashlib.sha256(random.Random(int(sys.argv[2])).randbytes(int(sys.argv[1]))).hexdigest())' "$size" "$seed")
  local new; new=$(comm -13 <(echo "$before") <(fids "$dir"))
  if [[ -z ${fid[$name]:-} ]]; then
    [[ $(wc -w <<<"$new") -eq 1 ]] || { bad "cannot tell $name's FID on disk (new: '$new')"; return 1; }
    fid[$name]=$new
  fi
}
# reads NAME: cat under arca gives exactly what was written.
reads() {
  local name=$1 got rc
  run "cat-$name" >"$tmp/cat.out" 2>"$tmp/cat.err"; rc=$?
  got=$(sha256sum <"$tmp/cat.out" | cut -d' ' -f1)
  if [[ $rc -eq 0 && $got == "${sha[$name]}" ]]; then ok "$name: cat reads it before the change"; else
    bad "$name: cat before the change (exit $rc, SHA-256 $got, want ${sha[$name]})"; show "$tmp/cat.err"; fi
}
# refused NAME BLOCK WHAT: cat fails with EIO, the log line names the file
# and the block, and none of the file's bytes came out.
refused() {
  local name=$1 block=$2 what=$3 rc
  run "cat-$name" >"$tmp/cat.out" 2>"$tmp/cat.err"; rc=$?
  local line; line=$(grep -m1 "^arca: volume $data: $name: block $block: " "$tmp/cat.err")
  if [[ $rc -ne 0 ]] && grep -q 'Input/output error' "$tmp/cat.err" && [[ -n $line ]]; then
    ok "$what: cat fails with EIO; $line"
  else bad "$what: cat exit $rc, no EIO or no log line naming $name block $block"; show "$tmp/cat.err"; fi
  # cat stops at the first failed read: what it printed came before it.
  local n; n=$(stat -c %s "$tmp/cat.out")
  if (( n <= block * 4096 )); then ok "$what: nothing of block $block or later was printed ($n bytes before it)"
  else bad "$what: cat printed $n bytes, past the start of block $block"; fi
}
tamper() { "$py" "$wl/volume_tamper.py" "$@" || bad "volume_tamper.py $*"; }

# ---- a flipped bit in a block record
write write "$data" flip 12288 1 && reads flip
tamper flip "$data" "${fid[flip]}" 1
refused flip 1 "a flipped bit in block 1"

# ---- two files' contents swapped
write write "$data" swapa 8192 2 && write write "$data" swapb 8192 3
reads swapa; reads swapb
tamper swap "$data" "${fid[swapa]}" "${fid[swapb]}"
refused swapa 0 "swapa and swapb swapped on disk (swapa)"
refused swapb 0 "swapa and swapb swapped on disk (swapb)"

# ---- a file truncated on disk
write write "$data" trunc 12388 4 && reads trunc
tamper truncate "$data" "${fid[trunc]}" 1
refused trunc 1 "trunc cut to one block on disk"

# ---- a file put back to an older version of itself
# Two versions first, so that both of its slot files hold records that
# verify under its key; then its stored state is set aside, a newer version
# written through arca, and the stored state put back exactly as it was.
write write "$data" old 8192 5 && write write "$data" old 8192 55 && reads old
mkdir -p "$tmp/aside"
cp -p "$data/d/${fid[old]}".* "$tmp/aside/"
write write "$data" old 8192 6 && reads old  # the newer version, through arca
manifest_sum=$(sha256sum <"$data/manifest")
rm -f "$data/d/${fid[old]}".[01]
cp -p "$tmp/aside/"* "$data/d/"
[[ $(sha256sum <"$data/manifest") == "$manifest_sum" ]] || bad "the manifest changed while putting old records back"
refused old 0 "old's records put back from its previous version (the manifest is the newer one)"

# ---- a block record copied from another file
write write "$data" src 8192 7 && write write "$data" copy 8192 8
reads copy
tamper copy "$data" "${fid[src]}" "${fid[copy]}" 0
refused copy 0 "block 0 of copy replaced by src's record"
reads src  # the source itself is untouched

# ---- the whole volume restored from an earlier copy: rollback
audit=$ARCA_CAS_STATE/audit.log
write rb-write "$rb" f 5000 20 || true
cp -a "$rb" "$tmp/rb.earlier"
write rb-write "$rb" f 6000 21 || true
rolls_before=$(grep -c '"volume_rollback"' "$audit")
run rb-cat >"$tmp/rb.out" 2>"$tmp/rb.err"; rc=$?
[[ $rc -eq 0 && $(sha256sum <"$tmp/rb.out" | cut -d' ' -f1) == "${sha[f]}" ]] &&
  ok "rollback: the current volume starts and reads" || { bad "rb-cat before the restore (exit $rc)"; show "$tmp/rb.err"; }
rm -rf "$rb"
cp -a "$tmp/rb.earlier" "$rb"
run rb-cat >"$tmp/rb.out" 2>"$tmp/rb.err"; rc=$?
if [[ $rc -eq 78 ]] && grep -q 'rollback' "$tmp/rb.err" && [[ ! -s $tmp/rb.out ]]; then
  ok "rollback: the program does not start (exit 78): $(head -c 300 "$tmp/rb.err")"
else bad "rollback: exit $rc (want 78 and a message that says rollback)"; show "$tmp/rb.err" "$tmp/rb.out"; fi
rolls_after=$(grep -c '"volume_rollback"' "$audit")
if (( rolls_after > rolls_before )); then
  ok "rollback: CAS's audit log has a volume_rollback record: $(grep '"volume_rollback"' "$audit" | tail -n1 | cut -c1-240)"
else bad "rollback: no volume_rollback record in $audit"; tail -n 3 "$audit"; fi

# ---- a volume CAS vouches for is gone: the program does not start
rm -rf "$rb"
run rb-cat >"$tmp/rb.out" 2>"$tmp/rb.err"; rc=$?
if [[ $rc -eq 78 ]] && grep -q 'holds no volume' "$tmp/rb.err"; then
  ok "a volume removed from disk: the program does not start: $(head -c 200 "$tmp/rb.err")"
else bad "volume removed: exit $rc (want 78, 'holds no volume')"; show "$tmp/rb.err"; fi

# ---- a volume CAS holds no tag for (here: a copy of data under another
# volume name, whose key CAS makes anew) is not taken as a new one
cp -a "$data" "$other"
run other-cat >"$tmp/o.out" 2>"$tmp/o.err"; rc=$?
if [[ $rc -eq 78 ]] && grep -q 'already holds a volume' "$tmp/o.err"; then
  ok "a directory holding a volume CAS has no tag for is refused: $(head -c 200 "$tmp/o.err")"
else bad "foreign volume: exit $rc (want 78, 'already holds a volume')"; show "$tmp/o.err"; fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
