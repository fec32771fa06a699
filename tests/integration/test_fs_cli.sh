#!/usr/bin/env bash
# `arca fs` as an owner uses it: seal a tree (nested directories, a 5 MiB
# file, an empty one, modes and mtimes) into a volume, list it, unseal it
# byte for byte; encrypted volumes hide a marker that authenticated ones
# show; verify is clean, then catches each kind of damage and names the
# file (and block): a flipped bit, two files' slot files swapped, a slot
# file cut short, a leaf table put back from an older generation, a
# flipped manifest; a wrong key and bad key files are refused with what is
# wrong; seal refuses a non-empty target, links, FIFOs and hard links
# before writing anything; unseal stops at damage and leaves nothing.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
arca=$ARCA_BUILD/bin/arca
tool=$ARCA_BUILD/bin/arca-test-vol
for b in "$arca" "$tool"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to damage volumes"; exit 77; }

tmp=$(mktemp -d /tmp/arca-fs-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0
ok()   { passes=$((passes + 1)); echo "ok: $*"; }
bad()  { fails=$((fails + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# run OUT CMD…: stdout in $tmp/OUT, stderr in $tmp/OUT.err, status in $rc.
run() { local out=$1; shift; "$@" >"$tmp/$out" 2>"$tmp/$out.err"; rc=$?; }
expect_rc() { # expect_rc WHAT WANT OUT
  if [[ $rc -eq $2 ]]; then ok "$1 (exit $rc)"
  else bad "$1: exit $rc, want $2:"; cat "$tmp/$3" "$tmp/$3.err" | head -n 20 | sed 's/^/  | /'; fi
}
# has OUT REGEX: in stdout or stderr of OUT; shows both when missing.
# grep reads the files itself: with pipefail, `cat … | grep -q` fails when
# grep stops at its match while cat still writes (SIGPIPE) on long output.
has() {
  grep -sqE -- "$2" "$tmp/$1" "$tmp/$1.err" && return 0
  echo "  /$2/ not in $1:"; cat "$tmp/$1" "$tmp/$1.err" | sed 's/^/  | /' | head -n 20; return 1
}
hasnt() { ! grep -sqF -- "$2" "$tmp/$1" "$tmp/$1.err"; }

# ---- the tree ----------------------------------------------------------------------
# Each file has its own number of 4 KiB blocks, so that its leaf table
# (16 + 32 x blocks bytes) tells which FID it is.
marker="arca-fs-marker-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
src=$tmp/src
mkdir -p "$src/bin" "$src/data/nested/deep" "$src/empty-dir"
printf 'readme %s\n' "$marker" >"$src/README.txt"                                  # 1 block
{ echo '#!/bin/sh'; echo "echo $marker"; head -c 5000 /dev/zero | tr '\0' '#'; } >"$src/bin/tool.sh"  # 2
chmod 755 "$src/bin/tool.sh"
head -c 10000 /dev/urandom >"$src/data/nested/deep/x.bin"                            # 3 blocks
{ head -c 14000 /dev/zero | tr '\0' 'r'; echo " $marker"; } >"$src/ro.txt"           # 4 blocks
chmod 400 "$src/ro.txt"
{ head -c 3000000 /dev/urandom; printf '%s' "$marker"; head -c $((5 * 1048576 - 3000000 - ${#marker})) /dev/urandom; } >"$src/data/big.bin"
: >"$src/empty"
chmod 750 "$src/data"
chmod 700 "$src/data/nested/deep"
touch -d '2021-03-04 05:06:07.123456789' "$src/README.txt"
touch -d '2020-01-02 03:04:05' "$src/data/nested/deep" "$src/data/nested" "$src/empty-dir"
check "the big file is 5 MiB" test "$(stat -c %s "$src/data/big.bin")" -eq 5242880

# find-style listing: path type mode size mtime (the root itself left out)
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %T@\n' | LC_ALL=C sort); }
# fid_of DIR BLOCKS: the FID whose leaf table holds BLOCKS leaves
fid_of() {
  local t
  for t in "$1"/d/*.t*; do
    [[ $(stat -c %s "$t") -eq $((16 + 32 * $2)) ]] && { basename "$t" | sed 's/\.t.*//'; return 0; }
  done
  return 1
}
# flip FILE OFFSET: inverts one bit at OFFSET (if the file is that long)
flip() {
  [[ -f $1 ]] || return 0
  python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    d = f.read()
    if off < len(d):
        f.seek(off); f.write(bytes([d[off] ^ 0x10]))
PY
}
restore() { rm -rf "$vol"; cp -a "$tmp/vol.pristine" "$vol"; }
# only OUT PATH-REGEX: every problem line of verify's output in OUT is about PATH
only() {
  [[ -z $(grep -E "^$vol: " "$tmp/$1" | grep -vE "^$vol: [0-9]+ problems?;" | grep -vE "^$vol: $2: ") ]]
}

# ---- usage -----------------------------------------------------------------------------
run help.out "$arca" fs --help; expect_rc "arca fs --help" 0 help.out
check "… explains the four commands and where the key goes" \
  bash -c "grep -q 'seal' '$tmp/help.out' && grep -q 'unseal' '$tmp/help.out' && grep -q 'DIR.key' '$tmp/help.out'"
run top.out "$arca" help; check "arca help lists fs" has top.out '^  fs seal'
run unk.out "$arca" fs frobnicate; expect_rc "an unknown fs command is a usage error" 2 unk.out
run few.out "$arca" fs seal "$tmp"; expect_rc "seal without DIR is a usage error" 2 few.out

# ---- seal -------------------------------------------------------------------------------
vol=$tmp/vol
run seal.out "$arca" fs seal "$src" "$vol"; expect_rc "seal" 0 seal.out
tag=$(sed -n 's/^tag \([0-9a-f]\{64\}\)$/\1/p' "$tmp/seal.out")
check "seal prints 'tag <64 hex>' first" bash -c "head -n1 '$tmp/seal.out' | grep -qE '^tag [0-9a-f]{64}\$'"
key=$tmp/vol.key
check "the key file defaults to DIR.key" test -f "$key"
check "the key file is 0600" test "$(stat -c %a "$key")" = 600
check "the key file is 64 lower-case hex and a newline" \
  bash -c "[[ \$(stat -c %s '$key') -eq 65 ]] && grep -qxE '[0-9a-f]{64}' '$key'"
check "seal never prints the key" hasnt seal.out "$(head -c 64 "$key")"
check "seal says where the key is" has seal.out "$key"
check "seal shows the session snippet with a placeholder" has seal.out 'kind: binary, value: "<the 64 hex digits in'
check "… and the tag to pin" has seal.out "tag: \"$tag\""
check "the volume has the format's layout" test -f "$vol/arca-volume.json" -a -f "$vol/manifest" -a -d "$vol/d"
check "encrypted: the marker is nowhere in the volume" bash -c "! grep -rqaF '$marker' '$vol'"
check "encrypted: no file name is visible" bash -c "! grep -rqaF 'README' '$vol' && ! find '$vol' -name 'big*' | grep -q ."
cp -a "$vol" "$tmp/vol.pristine"

run seal2.out "$arca" fs seal "$src" "$vol"; expect_rc "seal into a non-empty DIR is refused" 1 seal2.out
check "… saying it is not empty" has seal2.out 'not empty'
check "… and leaves the volume alone" diff -r "$vol" "$tmp/vol.pristine"
mkdir "$tmp/emptydir"
run seal3.out "$arca" fs seal "$src" "$tmp/emptydir" --key-out "$key"
expect_rc "seal refuses an existing key file" 1 seal3.out
check "… saying it is never overwritten" has seal3.out 'never overwritten'
check "… and writes nothing into the empty DIR" test -z "$(ls -A "$tmp/emptydir")"
run seal4.out "$arca" fs seal "$src" "$src/inner"; expect_rc "seal into a DIR inside SRC is refused" 1 seal4.out
check "… and DIR is not made" test ! -e "$src/inner"
run seal5.out "$arca" fs seal "$src" "$tmp/v5" --mode sideways; expect_rc "an unknown --mode is a usage error" 2 seal5.out

avol=$tmp/avol
run aseal.out "$arca" fs seal "$src" "$avol" --mode authenticated --key-out "$tmp/akey"
expect_rc "seal --mode authenticated" 0 aseal.out
check "authenticated: the marker is readable in the volume" grep -rqaF "$marker" "$avol"
run averify.out "$arca" fs verify "$avol" --key-file "$tmp/akey"; expect_rc "verify the authenticated volume" 0 averify.out

# ---- refusals before anything is written ----------------------------------------------------
for kind in symlink fifo hardlink; do
  bsrc=$tmp/bad-$kind
  cp -a "$src" "$bsrc"
  case $kind in
    symlink) ln -s ../README.txt "$bsrc/data/link"; want='data/link.*symbolic link' ;;
    fifo) mkfifo "$bsrc/data/pipe"; want='data/pipe.*FIFO' ;;
    hardlink) ln "$bsrc/README.txt" "$bsrc/bin/again"; want='(README.txt|bin/again).*hard link' ;;
  esac
  run bad.out "$arca" fs seal "$bsrc" "$tmp/bad-vol"; expect_rc "seal of a tree with a $kind is refused" 1 bad.out
  check "… naming the path" has bad.out "$want"
  check "… and DIR stays absent" test ! -e "$tmp/bad-vol"
  check "… and no key file is left" test ! -e "$tmp/bad-vol.key"
done

# ---- ls ----------------------------------------------------------------------------------------
run ls.out "$arca" fs ls "$vol" --key-file "$key"; expect_rc "ls" 0 ls.out
for p in README.txt empty empty-dir/ bin/ bin/tool.sh data/ data/big.bin data/nested/ data/nested/deep/ data/nested/deep/x.bin ro.txt; do
  check "ls lists $p" grep -qxF "$p" "$tmp/ls.out"
done
check "ls lists nothing else" test "$(wc -l <"$tmp/ls.out")" -eq 11
check "ls puts parents first" python3 -c '
import sys
seen = set()
for l in open(sys.argv[1]):
    p = l.rstrip("\n").rstrip("/")
    parent = p.rsplit("/", 1)[0] if "/" in p else ""
    if parent and parent not in seen:
        sys.exit(1)
    seen.add(p)' "$tmp/ls.out"
run lsl.out "$arca" fs ls "$vol" --key-file "$key" -l; expect_rc "ls -l" 0 lsl.out
check "ls -l: type, mode, size of the 5 MiB file" grep -qE '^-rw-[r-][w-]-[r-][w-]- +5242880 .* data/big\.bin$' "$tmp/lsl.out"
check "ls -l: an executable's mode" grep -qE '^-rwxr-xr-x +[0-9]+ .* bin/tool\.sh$' "$tmp/lsl.out"
check "ls -l: a directory's mode" grep -qE '^drwxr-x--- +0 .* data/$' "$tmp/lsl.out"
check "ls -l: the mtime, to the nanosecond, in UTC" grep -qE ' 2021-03-04T[0-9]{2}:06:07\.123456789Z README\.txt$' "$tmp/lsl.out"
check "ls -l: the empty file" grep -qE '^-.* +0 .* empty$' "$tmp/lsl.out"

# ---- unseal ----------------------------------------------------------------------------------------
run unseal.out "$arca" fs unseal "$vol" "$tmp/out" --key-file "$key"; expect_rc "unseal" 0 unseal.out
check "unseal gives byte-identical files" diff -r "$src" "$tmp/out"
check "unseal keeps types, modes, sizes and mtimes" diff <(listing "$src") <(listing "$tmp/out")
mkdir -p "$tmp/full"; : >"$tmp/full/x"
run unseal2.out "$arca" fs unseal "$vol" "$tmp/full" --key-file "$key"; expect_rc "unseal into a non-empty OUT is refused" 1 unseal2.out
check "… saying so" has unseal2.out 'not empty'
run averify2.out "$arca" fs unseal "$avol" "$tmp/aout" --key-file "$tmp/akey"; expect_rc "unseal the authenticated volume" 0 averify2.out
check "… byte-identical too" diff -r "$src" "$tmp/aout"

# ---- verify, clean ----------------------------------------------------------------------------------
run v0.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify of an intact volume" 0 v0.out
check "… says intact and gives the tag" has v0.out "intact.*$tag"
run v0t.out "$arca" fs verify "$vol" --key-file "$key" --tag "$tag"; expect_rc "verify --tag with the pinned tag" 0 v0t.out
run v0x.out "$arca" fs verify "$vol" --key-file "$key" --tag "$(printf '%064d' 0)"
expect_rc "verify --tag with another tag is refused" 2 v0x.out
check "… as not the pinned volume" has v0x.out 'not the one pinned'

# ---- keys ---------------------------------------------------------------------------------------------
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/wrong.key"; echo >>"$tmp/wrong.key"; chmod 600 "$tmp/wrong.key"
run wk.out "$arca" fs verify "$vol" --key-file "$tmp/wrong.key"; expect_rc "verify with a wrong key" 2 wk.out
check "… says the key does not open the volume" has wk.out 'does not open the volume'
run wk2.out "$arca" fs ls "$vol" --key-file "$tmp/wrong.key"; expect_rc "ls with a wrong key" 1 wk2.out
k=$(head -c 64 "$key")
badkey() { # badkey NAME WANT-REGEX: writes $tmp/k.NAME from stdin, expects a refusal
  cat >"$tmp/k.$1"; chmod 600 "$tmp/k.$1"
  run bk.out "$arca" fs verify "$vol" --key-file "$tmp/k.$1"; expect_rc "key file $1 refused" 2 bk.out
  check "… saying what is wrong ($1)" has bk.out "$2"
  check "… without showing the key ($1)" hasnt bk.out "${k:0:16}"
}
printf '' | badkey empty 'is empty'
printf '%s\n' "${k:0:62}" | badkey short 'holds 62 hex digits'
printf '%s\r\n' "$k" | badkey crlf 'CR LF'
printf '%sz\n' "${k:0:63}" | badkey nonhex 'byte 64 is not a hex digit'
printf '%s\n%s\n' "$k" "$k" | badkey twice 'holds 130 bytes'
printf '%s \n' "$k" | badkey space 'byte 65 is not a hex digit'
printf '%s' "$k" >"$tmp/k.nonl"; chmod 600 "$tmp/k.nonl"
run nonl.out "$arca" fs verify "$vol" --key-file "$tmp/k.nonl"; expect_rc "a key file without the newline is fine" 0 nonl.out
run nokey.out "$arca" fs verify "$vol"; expect_rc "verify without --key-file is a usage error" 2 nokey.out
check "… naming the option" has nokey.out 'key-file'

# ---- damage: each caught by verify, with the file (and block) named ---------------------------------------
big=$(fid_of "$vol" 1280); tool_fid=$(fid_of "$vol" 2); x_fid=$(fid_of "$vol" 3); readme=$(fid_of "$vol" 1)
check "the FIDs of the test files are found by their leaf tables" test -n "$big" -a -n "$tool_fid" -a -n "$x_fid" -a -n "$readme"

# a flipped bit in block 7 of the big file (both slots: whichever is current)
for s in 0 1; do flip "$vol/d/$big.$s" $((7 * 4124 + 12 + 100)); done
run d1.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify: a flipped bit" 1 d1.out
check "… names data/big.bin and block 7" has d1.out "^$vol: data/big\.bin: block 7\b"
check "… and no other file" only d1.out 'data/big\.bin'
check "… and counts it" has d1.out '1 problem'
run d1u.out "$arca" fs unseal "$vol" "$tmp/dout" --key-file "$key"; expect_rc "unseal stops at the flipped bit" 1 d1u.out
check "… with EIO, the path and the block" has d1u.out 'data/big\.bin: block 7: .*EIO'
check "… and leaves no OUT behind" test ! -e "$tmp/dout"
mkdir "$tmp/dout2"
run d1v.out "$arca" fs unseal "$vol" "$tmp/dout2" --key-file "$key"; expect_rc "unseal into an empty OUT stops too" 1 d1v.out
check "… and empties it again" test -d "$tmp/dout2" -a -z "$(ls -A "$tmp/dout2")"
run d1l.out "$arca" fs ls "$vol" --key-file "$key"; expect_rc "ls still works (names are intact)" 0 d1l.out
restore

# two files' slot files swapped
for s in 0 1; do
  a=$vol/d/$tool_fid.$s b=$vol/d/$x_fid.$s
  if [[ -e $a && -e $b ]]; then mv "$a" "$tmp/swap"; mv "$b" "$a"; mv "$tmp/swap" "$b"
  elif [[ -e $a ]]; then mv "$a" "$b"
  elif [[ -e $b ]]; then mv "$b" "$a"; fi
done
run d2.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify: two files' slot files swapped" 1 d2.out
check "… names bin/tool.sh" has d2.out "^$vol: bin/tool\.sh: "
check "… names data/nested/deep/x.bin" has d2.out "^$vol: data/nested/deep/x\.bin: "
check "… and no other file" only d2.out '(bin/tool\.sh|data/nested/deep/x\.bin)'
restore

# a slot file cut short: the big file keeps 100 records
for s in 0 1; do [[ -e $vol/d/$big.$s ]] && truncate -s $((100 * 4124)) "$vol/d/$big.$s"; done
run d3.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify: a slot file truncated" 1 d3.out
check "… names data/big.bin and block 100" has d3.out "^$vol: data/big\.bin: block 100\b"
check "… and no other file" only d3.out 'data/big\.bin'
restore

# a leaf table put back from an older generation of the file
old=$(ls "$vol/d/$readme".t*)
cp "$old" "$tmp/old-table"
run w.out "$tool" write "$vol" "$key" README.txt 0 CHANGED; expect_rc "a second commit (README.txt rewritten)" 0 w.out
new=$(ls "$vol/d/$readme".t* 2>/dev/null | head -n1)
check "… made a new generation of its leaf table" test -n "$new" -a "$new" != "$old"
run v4a.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify after the second commit" 0 v4a.out
cp "$tmp/old-table" "$new"
run d4.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify: an older generation's leaf table" 1 d4.out
check "… names README.txt" has d4.out "^$vol: README\.txt: "
check "… and no other file" only d4.out 'README\.txt'
restore

# the manifest flipped: nothing can be opened, and it says why
flip "$vol/manifest" 40
run d5.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "verify: the manifest flipped" 1 d5.out
check "… says the manifest does not verify" has d5.out 'manifest'
run d5l.out "$arca" fs ls "$vol" --key-file "$key"; expect_rc "ls of a volume with a flipped manifest" 1 d5l.out
check "… fails with a clear error" has d5l.out 'damaged.*manifest'
check "… not blaming the key" bash -c "! grep -qi 'wrong key' '$tmp/d5l.out.err'"
restore
run vr.out "$arca" fs verify "$vol" --key-file "$key"; expect_rc "the restored volume verifies again" 0 vr.out

# ---- progress: only on a terminal, only for large trees ----------------------------------------------------
many=$tmp/many
mkdir -p "$many"
for ((i = 0; i < 1001; i++)); do printf '%d\n' "$i" >"$many/f$i"; done
run pg0.out "$arca" fs seal "$many" "$tmp/manyvol"; expect_rc "seal of 1001 files" 0 pg0.out
check "no progress bar when stderr is not a terminal" bash -c "! grep -q 'MiB/s' '$tmp/pg0.out.err'"
if command -v script >/dev/null; then
  rm -rf "$tmp/manyvol" "$tmp/manyvol.key"
  script -qec "'$arca' fs seal '$many' '$tmp/manyvol' >/dev/null" /dev/null >"$tmp/pg1.out" 2>&1 </dev/null
  check "a progress bar (bytes, percent, rate) on a terminal" grep -qE 'sealing .*MiB .*100% .*MiB/s' "$tmp/pg1.out"
fi
check "the many-file volume verifies" "$arca" fs verify "$tmp/manyvol" --key-file "$tmp/manyvol.key"

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
