#!/usr/bin/env bash
# fs_run.sh [BUILD]: what a protected volume costs, beside the native file
# system and gocryptfs, in one run on one disk (make bench calls it).
#
# Columns, each measured with the same driver (arca-bench-fsio, bench/fs_io.c)
# in a directory under ARCA_BENCH_FS_DIR (default /var/tmp: a disk, not
# tmpfs):
#   native     the driver on a plain directory
#   arca       the driver under `arca run`, with a session whose service
#              mounts an encrypted data volume at the directory (the shield
#              serves the file from the volume; CAS keeps key and tag)
#   gocryptfs  the driver on a gocryptfs mount (FUSE), cipher directory on
#              the same disk
# Tests: sequential write of ARCA_BENCH_FS_MIB MiB (default 256) ending with
# fsync, sequential read, random 4 KiB reads and random 4 KiB writes (then
# fsync) over that file for ARCA_BENCH_FS_SECONDS each (default 3). Every
# pass is a fresh process, so no plaintext that arca decrypted is still in
# memory; the kernel's page cache of what is on disk (the plain file, the
# volume's records, gocryptfs' cipher files) stays warm, as the issue's
# figures (11 GB/s for a native page-cache read) assume, so that reads
# measure the decryption and not the disk. gocryptfs keeps decrypted
# plaintext in the kernel's page cache of its mount: it is unmounted and
# mounted again before each pass so that it starts as cold as arca.
# ARCA_BENCH_FS_RUNS rounds (default
# 3), columns alternating within a round, medians printed. Beside them:
# `openssl speed -evp aes-256-gcm` on 16 KiB blocks, one core, this run,
# the physical limit of anything that encrypts with AES-GCM on one core.
# A column that cannot run here says "not measured" and why; nothing here
# asserts a timing.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export ARCA_BUILD=$(cd "${1:-$src/build}" && pwd)
. "$src/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
drv=$ARCA_BUILD/bin/arca-bench-fsio
mib=${ARCA_BENCH_FS_MIB:-256}
secs=${ARCA_BENCH_FS_SECONDS:-3}
runs=${ARCA_BENCH_FS_RUNS:-3}
base=${ARCA_BENCH_FS_DIR:-/var/tmp}

echo "== file I/O: native, arca volume (encrypted), gocryptfs; $mib MiB sequential, random 4 KiB for ${secs}s; median of $runs"
if [[ ! -x $drv ]]; then echo "skipped: $drv is not built"; exit 0; fi
tmp=$(mktemp -d "$base/arca-fs-bench.XXXXXX") || { echo "skipped: cannot make a directory under $base"; exit 0; }
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
fstype=$(stat -f -c %T "$tmp")
echo "directory: $tmp ($fstype, $(df -P "$tmp" | awk 'NR == 2 {print $1}'))"
[[ $fstype == tmpfs || $fstype == ramfs ]] &&
  echo "note: $base is $fstype, memory rather than a disk; set ARCA_BENCH_FS_DIR to a directory on a disk"

MNT=
cleanup() {
  if [[ -n $MNT ]] && mountpoint -q "$MNT"; then fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; fi
  arca_stop_all
  rm -rf "$tmp"
}
trap cleanup EXIT

# cold COLUMN: before a pass, no decrypted plaintext of that column may be
# left in memory: a fresh process does it for native and arca; gocryptfs is
# mounted again (its plaintext lives in the page cache of the mount).
cold() {
  [[ $1 == gocryptfs && -n $MNT ]] || return 0
  fusermount3 -u "$MNT" 2>/dev/null || return 1
  gocryptfs -q -nosyslog -passfile "$tmp/gc/pass" "$tmp/gc/cipher" "$MNT" >"$tmp/gc.out" 2>&1
}

rec=$tmp/records.tsv   # column  test  value   (or: column  -  reason)
: >"$rec"
declare -A why=()      # column -> reason it is not measured
not_measured() { why[$1]=$2; printf '%s\t-\t%s\n' "$1" "$2" >>"$rec"; }

# pass COLUMN TEST CMD...: one pass in a fresh process; on failure the
# column is not measured any further, with the error as the reason.
pass() {
  local col=$1 test=$2 line v; shift 2
  if ! cold "$col"; then not_measured "$col" "cannot mount gocryptfs again: $(head -n 1 "$tmp/gc.out")"; return 1; fi
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  line=$(grep -m1 "^result test=$test " "$tmp/out")
  v=$(sed -n 's/.* value=\([0-9.]*\) .*/\1/p' <<<"$line")
  if [[ $rc -ne 0 || -z $v ]]; then
    local err
    err=$(cat "$tmp/err" "$tmp/out" | grep -v '^$' | head -n 3 | tr '\n' ' ')
    not_measured "$col" "$test failed (exit $rc): ${err:-no output}"
    return 1
  fi
  printf '%s\t%s\t%s\n' "$col" "$test" "$v" >>"$rec"
}

# ---- native --------------------------------------------------------------------
mkdir -p "$tmp/native"
native_cmd() { printf '%s\n' "$drv" "$1" "$tmp/native/file" "${@:2}"; }

# ---- gocryptfs -------------------------------------------------------------------
gc_setup() {
  if ! command -v gocryptfs >/dev/null; then not_measured gocryptfs "gocryptfs is not installed (scripts/deps.sh installs it)"; return; fi
  if ! command -v fusermount3 >/dev/null; then not_measured gocryptfs "fusermount3 is missing (Debian's fuse3; scripts/deps.sh installs it)"; return; fi
  if [[ ! -c /dev/fuse ]]; then not_measured gocryptfs "no /dev/fuse (load the fuse module: modprobe fuse)"; return; fi
  mkdir -p "$tmp/gc/cipher" "$tmp/gc/plain"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/gc/pass"
  if ! gocryptfs -init -q -passfile "$tmp/gc/pass" "$tmp/gc/cipher" >"$tmp/gc.out" 2>&1; then
    not_measured gocryptfs "gocryptfs -init failed: $(head -n 2 "$tmp/gc.out" | tr '\n' ' ')"; return
  fi
  if ! gocryptfs -q -nosyslog -passfile "$tmp/gc/pass" "$tmp/gc/cipher" "$tmp/gc/plain" >"$tmp/gc.out" 2>&1; then
    not_measured gocryptfs "mount failed: $(head -n 2 "$tmp/gc.out" | tr '\n' ' ')"; return
  fi
  MNT=$tmp/gc/plain
}
gc_cmd() { printf '%s\n' "$drv" "$1" "$MNT/file" "${@:2}"; }

# ---- arca --------------------------------------------------------------------------
vol=$tmp/arca/vol
arca_setup() {
  local b rc=0
  for b in "$arca" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
    [[ -e $b ]] || { not_measured arca "$b is not built"; return; }
  done
  mkdir -p "$tmp/arca"
  arca_start_las "$tmp" >"$tmp/las.start" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then not_measured arca "arca-las cannot run here: $(grep -m1 . "$tmp/las.start")"; return; fi
  if ! arca_start_cas "$tmp" --las "$ARCA_LAS" >"$tmp/cas.start" 2>&1; then
    not_measured arca "arca-cas did not start: $(grep -m1 . "$tmp/cas.start")"; return
  fi
  if ! { "$arca" identity create && "$arca" cas attest "$ARCA_CAS" &&
    "$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub"; } >"$tmp/setup.out" 2>&1; then
    not_measured arca "CLI set-up failed: $(tail -n 1 "$tmp/setup.out")"; return
  fi
  local m
  m=$("$arca" measure -- "$drv" 2>"$tmp/measure.err" | awk '/^measurement/ {print $2}')
  [[ -n $m ]] || { not_measured arca "arca measure failed: $(head -n 1 "$tmp/measure.err")"; return; }
  mkdir -m 700 "$vol"
  {
    echo "name: fs-bench"
    echo "services:"
    local svc args
    for svc in write read randread randwrite; do
      case $svc in
        write) args="--mib, \"$mib\"" ;;
        read) args= ;;
        *) args="--seconds, \"$secs\"" ;;
      esac
      echo "  - name: $svc"
      echo "    command: [\"$drv\", $svc, \"$vol/file\"${args:+, $args}]"
      echo "    measurement: \"$m\""
      echo "    platform: {sim: {}}"
      echo "    volumes: [{name: data, path: \"$vol\"}]"
    done
    echo "volumes:"
    echo "  - {name: data, mode: encrypted}"
    arca_host_tolerate
  } >"$tmp/fs-bench.yaml"
  if ! "$arca" session create "$tmp/fs-bench.yaml" >"$tmp/session.out" 2>&1; then
    not_measured arca "session with a volume refused: $(grep -m1 . "$tmp/session.out")"; return
  fi
}
arca_cmd() { printf '%s\n' "$arca" run --session fs-bench --service "$1" -- "$drv"; }
# After the write pass the volume directory must hold a volume and no
# plaintext: a shield that does not serve volumes would write VOL/file in
# plain, and its speed would be the native one under arca's name.
arca_check_volume() {
  if [[ -e $vol/file ]]; then
    not_measured arca "the shield wrote $vol/file in plain: this build does not serve volumes (file shield not built)"
    return 1
  fi
  if [[ ! -f $vol/arca-volume.json ]]; then
    not_measured arca "no volume in $vol after the write pass (no arca-volume.json)"
    return 1
  fi
  # The driver writes the same bytes everywhere: the native file's first
  # 64 bytes must not appear in the volume (once, in the first round).
  [[ -n ${arca_checked:-} || ! -s $tmp/native/file ]] && return 0
  arca_checked=1
  if ! python3 - "$tmp/native/file" "$vol" <<'PY'
import os, sys
needle = open(sys.argv[1], "rb").read(64)
for d, _, names in os.walk(sys.argv[2]):
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            tail = b""
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                if needle in tail + b:
                    sys.exit(1)
                tail = b[-63:]
PY
  then
    not_measured arca "the volume in $vol holds the driver's data in plain: not an encrypted volume"
    return 1
  fi
  return 0
}

# column COL MAKER: the four passes of one round, stopping at the first failure.
column() {
  local col=$1 mk=$2 cmd
  [[ -z ${why[$col]:-} ]] || return 0
  mapfile -t cmd < <($mk write --mib "$mib")
  pass "$col" seqwrite "${cmd[@]}" || return 0
  if [[ $col == arca ]]; then arca_check_volume || return 0; fi
  mapfile -t cmd < <($mk read)
  pass "$col" seqread "${cmd[@]}" || return 0
  mapfile -t cmd < <($mk randread --seconds "$secs")
  pass "$col" randread "${cmd[@]}" || return 0
  mapfile -t cmd < <($mk randwrite --seconds "$secs")
  pass "$col" randwrite "${cmd[@]}" || return 0
}

gc_setup
arca_setup
for ((r = 1; r <= runs; r++)); do
  column native native_cmd
  column arca arca_cmd
  column gocryptfs gc_cmd
done
if [[ -n $MNT ]]; then fusermount3 -u "$MNT" 2>/dev/null; MNT=; fi

# The physical limit: AES-256-GCM on one core, 16 KiB blocks (4 KiB is
# arca's block; 16 KiB shows the cipher without per-call overhead).
gcm=
if command -v openssl >/dev/null; then
  gcm=$(openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null | awk '/^AES-256-GCM/ {sub(/k$/, "", $2); printf "%.1f", $2 / 1000}')
fi

python3 - "$rec" "$gcm" "$mib" "$secs" <<'PY'
import collections, statistics, sys
rec, gcm, mib, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
v = collections.defaultdict(list)
why = {}
for line in open(rec):
    col, test, x = line.rstrip("\n").split("\t", 2)
    if test == "-":
        why[col] = x
    else:
        v[(col, test)].append(float(x))
cols = ("native", "arca", "gocryptfs")
def med(col, test):
    xs = v.get((col, test))
    return statistics.median(xs) if xs else None
def cell(x):
    return "n/a" if x is None else (f"{x:.1f}" if x < 1000 else f"{x:.0f}")
def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else ""
tests = (("seqwrite", f"seq write {mib} MiB + fsync, MB/s"), ("seqread", f"seq read {mib} MiB, MB/s"),
         ("randread", f"random 4 KiB read, IOPS ({secs}s)"), ("randwrite", f"random 4 KiB write + fsync, IOPS ({secs}s)"))
rows = []
for t, label in tests:
    n, a, g = (med(c, t) for c in cols)
    rows.append((label, cell(n), cell(a), cell(g), ratio(a, n), ratio(a, g)))
hdr = ("test", "native", "arca", "gocryptfs", "arca/native", "arca/gocryptfs")
wid = [max(len(r[i]) for r in rows + [hdr]) for i in range(6)]
fmt = "  ".join(("{:<%d}" if i == 0 else "{:>%d}") % wid[i] for i in range(6))
print(fmt.format(*hdr).rstrip())
for r in rows:
    print(fmt.format(*r).rstrip())
for c in cols:
    if c in why:
        print(f"{c}: not measured ({why[c]})" if not any(v.get((c, t)) for t, _ in tests)
              else f"{c}: partly measured ({why[c]})")
if gcm:
    g = float(gcm)
    a = med("arca", "seqread")
    line = f"AES-256-GCM limit (openssl speed -evp aes-256-gcm, 16 KiB blocks, one core): {g:.1f} MB/s"
    if a is not None:
        line += f"; arca's sequential read is {a / g * 100:.1f}% of it"
    print(line)
else:
    print("AES-256-GCM limit: not measured (no openssl command)")
spread = [(max(xs) / min(xs), c, t) for (c, t), xs in v.items() if len(xs) > 1 and min(xs) > 0]
if spread:
    s, c, t = max(spread)
    label = dict(tests)[t].split(",")[0]
    print(f"largest run-to-run spread of one cell (max/min): {s:.2f}x ({c}, {label})" +
          ("; this disk is noisy: trust the ratios more than the figures" if s > 1.3 else ""))
print(f"MB = 10^6 bytes; every pass a fresh process (gocryptfs mounted again), the page cache of the stored")
print("bytes warm: reads measure decryption, not the disk; writes end with fsync. Ratios of medians.")
PY
