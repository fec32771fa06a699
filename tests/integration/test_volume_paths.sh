#!/usr/bin/env bash
# test_volume_paths.sh: what root does to the paths of a data volume does
# not make a program under arca write plaintext beside the volume's records
# (docs/ARCHITECTURE.md "The file shield"), against the real daemons:
#   - a volume whose configured path holds a symbolic link (as its last
#     component, or a directory above it) is refused at start: exit 78, a
#     message naming the link, nothing created where it leads, main never
#     runs;
#   - python3 chdir()s into a volume's root; while it waits, root moves the
#     volume's directory away and makes an empty one at its path; the
#     program's os.getcwd() still answers the volume's path, and its
#     relative open("late.txt", "w") and its open of getcwd()/late2.txt go
#     INTO THE VOLUME (both writes succeed; with the directory put back, a
#     later run reads them through arca): the marker they wrote is nowhere
#     under the test's directory on disk, and the empty directory stays
#     empty;
#   - `sed -i` of a file in a volume (glibc's mkostemp makes its temporary
#     file) changes the file as read back through arca, while the volume's
#     directory holds neither the old nor the new text and no sed* file,
#     and keeps its mode (the ACL sed copies is not set on it).
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
py=/usr/bin/python3
for b in "$arca" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
[[ -x $py ]] || { echo "SKIP: $py missing (scripts/deps.sh installs python3)"; exit 77; }
sed_bin=$(readlink -f "$(type -P sed)")
cat_bin=$(readlink -f "$(type -P cat)")
wl=$ARCA_SRC/tests/workloads

# The volumes' paths must be real paths: TMPDIR may itself lead through a link.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-vpaths.XXXXXX") && tmp=$(readlink -f "$tmp")
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
bgpid=
cleanup() {
  [[ -n $bgpid ]] && kill "$bgpid" 2>/dev/null
  arca_stop_all; [[ -n ${ARCA_KEEP_TMP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 passes=0
ok()  { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
show() { sed 's/^/    | /' "$@" | head -n 20; }

vol=$tmp/vol          # the volume the program chdir()s into
sedv=$tmp/sedvol      # the volume sed edits a file in
real=$tmp/real        # where the link lnk leads
lnk=$tmp/lnk          # a volume configured at a symbolic link
pdir=$tmp/pdir        # where the link plnk leads
plnk=$tmp/plnk        # a volume configured below a symbolic link: plnk/vol
mkdir "$real" "$pdir"
ln -s "$real" "$lnk"
ln -s "$pdir" "$plnk"
late='ARCA-LATE-42001'       # what volume_paths.py writes (it computes it)
sedmark='SEDMARK'            # in the line volume_paths.py mkfile writes

arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
m_py=$("$arca" measure -- "$py" 2>/dev/null | awk '/^measurement/ {print $2}')
m_sed=$("$arca" measure -- "$sed_bin" 2>/dev/null | awk '/^measurement/ {print $2}')
m_cat=$("$arca" measure -- "$cat_bin" 2>/dev/null | awk '/^measurement/ {print $2}')
[[ $m_py == sha256:* && $m_sed == sha256:* && $m_cat == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }

svc() { # NAME MEASUREMENT VOLUME PATH ARGV...
  local name=$1 m=$2 v=$3 p=$4; shift 4
  local argv="" a
  for a in "$@"; do argv+="${argv:+, }\"$a\""; done
  echo "  - {name: $name, command: [$argv], measurement: \"$m\","
  echo "     platform: {sim: {}}, volumes: [{name: $v, path: \"$p\"}]}"
}
{
  echo "name: vpaths"
  echo "services:"
  svc link-last "$m_py" lnkv "$lnk" "$py" "$wl/volume_paths.py" mkfile "$lnk/x"
  svc link-parent "$m_py" plnkv "$plnk/vol" "$py" "$wl/volume_paths.py" mkfile "$plnk/vol/x"
  svc chd "$m_py" data "$vol" "$py" "$wl/volume_paths.py" chdir "$vol" "$tmp/ready" "$tmp/go"
  svc chd-sha "$m_py" data "$vol" "$py" "$wl/volume_paths.py" sha "$vol/late.txt"
  svc chd-sha2 "$m_py" data "$vol" "$py" "$wl/volume_paths.py" sha "$vol/late2.txt"
  svc mk "$m_py" sedv "$sedv" "$py" "$wl/volume_paths.py" mkfile "$sedv/f"
  svc sed "$m_sed" sedv "$sedv" "$sed_bin" -i "s/hello/goodbye/" "$sedv/f"
  svc cat "$m_cat" sedv "$sedv" "$cat_bin" "$sedv/f"
  echo "volumes: [{name: lnkv, mode: encrypted}, {name: plnkv, mode: encrypted}, {name: data, mode: encrypted},"
  echo "          {name: sedv, mode: encrypted}]"
  arca_host_tolerate
} >"$tmp/vpaths.yaml"
if ! "$arca" session create "$tmp/vpaths.yaml" >"$tmp/create.out" 2>&1; then
  bad "session create"; show "$tmp/create.out" "$tmp/vpaths.yaml"; exit 1
fi
run() { "$arca" run --session vpaths --service "$@"; }

# ---- (a) a volume path with a symbolic link in it is refused at start
for c in "link-last $lnk $real" "link-parent $plnk $pdir"; do
  read -r name link target <<<"$c"
  run "$name" >"$tmp/$name.out" 2>"$tmp/$name.err"; rc=$?
  if [[ $rc -eq 78 ]] && grep -q "symbolic link" "$tmp/$name.err" && grep -qF "$link" "$tmp/$name.err"; then
    ok "$name: refused at start (exit 78): $(grep -m1 'symbolic link' "$tmp/$name.err" | cut -c1-300)"
  else bad "$name: exit $rc (want 78 and a message naming the link $link)"; show "$tmp/$name.err"; fi
  if [[ ! -s $tmp/$name.out ]] && ! grep -q Traceback "$tmp/$name.err"; then ok "$name: the program did not run"
  else bad "$name: the program ran"; show "$tmp/$name.out" "$tmp/$name.err"; fi
  if [[ -z $(ls -A "$target") ]]; then ok "$name: nothing was created where the link leads ($target)"
  else bad "$name: $target now holds: $(ls -A "$target" | tr '\n' ' ')"; fi
done

# ---- (b, d) chdir into the volume; root moves its directory away meanwhile
mkfifo "$tmp/ready" "$tmp/go"
run chd >"$tmp/chd.out" 2>"$tmp/chd.err" &
bgpid=$!
if [[ $(timeout 60 cat "$tmp/ready") != ready ]]; then
  bad "chd: the program never said it was in the volume"; show "$tmp/chd.out" "$tmp/chd.err"
fi
mv "$vol" "$tmp/vol.moved" && mkdir "$vol" || bad "moving the volume's directory away"
timeout 60 bash -c 'echo go >"$1"' _ "$tmp/go" || bad "chd: the program did not wait for go"
wait "$bgpid"; rc=$?; bgpid=
[[ $rc -eq 0 ]] && ok "chd: exit 0" || { bad "chd: exit $rc"; show "$tmp/chd.err"; }
# (d) getcwd names the volume's path, before and after the move.
grep -qxF "cwd-before $vol" "$tmp/chd.out" && ok "chd: os.getcwd() after chdir into the volume is $vol" ||
  { bad "chd: getcwd before the move is not $vol"; show "$tmp/chd.out"; }
grep -qxF "cwd-after $vol" "$tmp/chd.out" && ok "chd: os.getcwd() is still $vol after root moved the directory" ||
  { bad "chd: getcwd after the move is not $vol: $(grep cwd-after "$tmp/chd.out")"; }
# (b) the relative write and the write through getcwd go into the volume.
if grep -qx "write ok late.txt" "$tmp/chd.out" && grep -qx "write ok late2.txt" "$tmp/chd.out" &&
   grep -qx "listing late.txt late2.txt" "$tmp/chd.out"; then
  ok "chd: open('late.txt', 'w') and open(getcwd()/late2.txt) succeed and the volume lists both"
else bad "chd: the writes did not go into the volume"; show "$tmp/chd.out" "$tmp/chd.err"; fi
if hits=$(grep -rlF "$late" "$tmp" 2>/dev/null); then
  bad "chd: the plaintext marker is on disk: $hits"
else ok "chd: the marker the program wrote is nowhere under $tmp on disk"; fi
[[ -z $(ls -A "$vol") ]] && ok "chd: the empty directory root put at the path is still empty" ||
  bad "chd: $vol now holds: $(ls -A "$vol" | tr '\n' ' ')"
# With the directory put back, arca reads what the program wrote.
rmdir "$vol" && mv "$tmp/vol.moved" "$vol"
want=$(printf '%s\n' "$late" | sha256sum | cut -d' ' -f1)
for s in chd-sha chd-sha2; do
  run "$s" >"$tmp/$s.out" 2>"$tmp/$s.err"; rc=$?
  if [[ $rc -eq 0 && $(cat "$tmp/$s.out") == "$want" ]]; then ok "$s: the volume holds what the program wrote"
  else bad "$s: exit $rc, $(head -c 100 "$tmp/$s.out") (want $want)"; show "$tmp/$s.err"; fi
done

# ---- (c) sed -i in a volume
run mk >"$tmp/mk.out" 2>&1 || { bad "mk: writing the file"; show "$tmp/mk.out"; }
mode_before=$(stat -c %A "$sedv")
run sed >"$tmp/sed.out" 2>"$tmp/sed.err"; rc=$?
[[ $rc -eq 0 ]] && ok "sed -i: exit 0" || { bad "sed -i: exit $rc"; show "$tmp/sed.err"; }
# sed copies the file's ACL to its new file: that must not land on the
# volume's directory (which its descriptors stand for in the kernel).
mode_after=$(stat -c %A "$sedv")
[[ $mode_after == "$mode_before" ]] && ok "sed -i: the volume's directory keeps its mode ($mode_after)" ||
  bad "sed -i: the volume's directory's mode went from $mode_before to $mode_after"
run cat >"$tmp/cat.out" 2>"$tmp/cat.err"; rc=$?
if [[ $rc -eq 0 && $(cat "$tmp/cat.out") == "goodbye-$sedmark-1234" ]]; then
  ok "sed -i: the file read back through arca is changed: $(cat "$tmp/cat.out")"
else bad "sed -i: cat exit $rc, read '$(head -c 100 "$tmp/cat.out")'"; show "$tmp/cat.err"; fi
if hits=$(grep -rl "$sedmark\|hello-\|goodbye-" "$sedv"); then
  bad "sed -i: plaintext in the volume's directory: $hits"
else ok "sed -i: neither the old nor the new text is in the volume's directory"; fi
stray=$(find "$sedv" -name 'sed*' ! -path "$sedv")
[[ -z $stray ]] && ok "sed -i: no sed* file in the volume's directory" || bad "sed -i: stray files: $stray"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
