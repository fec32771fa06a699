#!/usr/bin/env bash
# test_volume_crash.sh: a program killed with SIGKILL at any moment loses
# no write whose fsync returned, and its volume stays one CAS vouches for
# (docs/VOLUMES.md "Commit (fsync) and crash safety").
#
# A writer under arca (tests/workloads/volume_crash.py: append a record to
# a log, rewrite a state file in place, fsync, print "acked RUN I") is
# killed with kill -9 at a random moment after arca-las starts it (during
# start-up, attestation and the volume's creation or opening, or while it
# writes and commits), ITERATIONS times (default 24). After each kill a new
# program under arca
#   (a) starts: no rollback refusal, so the tag CAS holds is what is on
#       disk (also when the kill came between a commit's report to CAS and
#       its manifest's rename, or between the volume's creation and its
#       first tag);
#   (b) reads every file of the volume in full without an error (each
#       block verified; a data volume's key never leaves CAS and attested
#       programs, so `arca fs verify` cannot check it), and every record
#       checks, none torn;
#   (c) holds every record any writer so far printed as acknowledged, and
#       the state file names the log's last record (one commit wrote both).
# The volume's directory starts with what a start killed inside the
# volume's creation leaves (no manifest yet): the first run must make the
# volume there. At the end, CAS is stopped while a program has written
# and not yet fsynced: fsync fails with EIO (the exit's commit too), and
# with CAS back the volume opens at its last commit.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
py=/usr/bin/python3
iterations=${ITERATIONS:-24}
for b in "$arca" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
[[ -x $py ]] || { echo "SKIP: $py missing (scripts/deps.sh installs python3)"; exit 77; }
wl=$ARCA_SRC/tests/workloads

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arca-crash.XXXXXX")
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
WRITER=
cleanup() {
  [[ -n $WRITER ]] && kill -9 "$WRITER" 2>/dev/null
  arca_stop_all; [[ -n ${ARCA_KEEP_TMP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 passes=0
ok()  { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
show() { sed 's/^/    | /' "$@" | head -n 20; }

data=$tmp/data
ctl=$tmp/ctl
arca_start_las "$tmp" || exit $?
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
m_py=$("$arca" measure -- "$py" 2>/dev/null | awk '/^measurement/ {print $2}')
[[ $m_py == sha256:* ]] || { echo "FAIL: arca measure $py"; exit 1; }
cat >"$tmp/crash.yaml" <<YAML
name: crash
services:
  - name: write
    command: ["$py", "$wl/volume_crash.py", write, "$data", "$ctl"]
    measurement: "$m_py"
    platform: {sim: {}}
    volumes: [{name: data, path: "$data"}]
  - name: hold
    command: ["$py", "$wl/volume_crash.py", hold, "$data", "$tmp/go"]
    measurement: "$m_py"
    platform: {sim: {}}
    volumes: [{name: data, path: "$data"}]
  - name: read
    command: ["$py", "$wl/volume_crash.py", read, "$data"]
    measurement: "$m_py"
    platform: {sim: {}}
    volumes: [{name: data, path: "$data"}]
volumes: [{name: data, mode: encrypted}]
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/crash.yaml" >"$tmp/create.out" 2>&1 || { bad "session create"; show "$tmp/create.out"; exit 1; }

# What a start killed inside arca_vol_create leaves before the manifest (a
# lock file, an empty d/, a header): the first start takes the directory
# as empty and makes the volume there.
mkdir -p "$data/d"
: >"$data/lock"
echo '{"format": "arca-volume/1"}' >"$data/arca-volume.json"

las_log=$tmp/las.out.err
: >"$tmp/acked.all"
during_writes=0 during_start=0 started=$SECONDS
for ((run = 1; run <= iterations; run++)); do
  echo "$run" >"$ctl"
  launches=$(grep -c 'launch pid=.* started' "$las_log")
  "$arca" run --session crash --service write >"$tmp/w.$run.out" 2>"$tmp/w.$run.err" &
  WRITER=$!
  # The program's pid, as arca-las reports the launch.
  pid=
  for ((k = 0; k < 200; k++)); do
    if (($(grep -c 'launch pid=.* started' "$las_log") > launches)); then
      pid=$(grep 'launch pid=.* started' "$las_log" | tail -n1 | sed 's/.*launch pid=\([0-9]*\) .*/\1/')
      break
    fi
    sleep 0.02
  done
  if [[ -z $pid ]]; then bad "run $run: arca-las never reported the launch"; show "$tmp/w.$run.err"; break; fi
  # A random moment in the first 1.5 s: start-up takes a few hundred ms.
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", (r % 1500) / 1000 }')"
  kill -9 "$pid" 2>/dev/null
  wait "$WRITER"; rc=$?
  WRITER=
  if [[ $rc -ne 137 ]]; then
    bad "run $run: the writer was not killed by SIGKILL (arca run exit $rc)"; show "$tmp/w.$run.out" "$tmp/w.$run.err"
  fi
  grep '^acked ' "$tmp/w.$run.out" | cut -d' ' -f2- >>"$tmp/acked.all"
  n=$(grep -c '^acked ' "$tmp/w.$run.out")
  if ((n > 0)); then during_writes=$((during_writes + 1)); else during_start=$((during_start + 1)); fi

  "$arca" run --session crash --service read >"$tmp/r.out" 2>"$tmp/r.err"; rc=$?
  if [[ $rc -ne 0 ]] || ! grep -q '^verified ' "$tmp/r.out"; then
    bad "run $run: after the kill ($n acked), the reader exit $rc"; show "$tmp/r.err" "$tmp/r.out"; continue
  fi
  grep '^have ' "$tmp/r.out" | cut -d' ' -f2- | sort >"$tmp/have"
  missing=$(sort "$tmp/acked.all" | comm -23 - "$tmp/have" | head -n3)
  if [[ -n $missing ]]; then
    bad "run $run: acknowledged records missing after the kill: $(echo $missing)"
  else
    ok "run $run: killed after $n acks; restarts, $(grep '^verified ' "$tmp/r.out"), all $(wc -l <"$tmp/acked.all") acked records there"
  fi
done
echo "    $during_writes kills while writing, $during_start during start-up, $((SECONDS - started)) s"
# The records went into the volume, not beside it: no file of the writer's
# by its name on disk, no record in the clear, slot files in d/.
read -r r1 i1 < "$tmp/acked.all"
rec=$("$py" "$wl/volume_crash.py" payload "$r1" "$i1")
if [[ ${#rec} -ge 10 && ! -e $data/log && ! -e $data/state ]] && ls "$data/d" | grep -q '\.0$' &&
   ! grep -rqaF -- "$rec" "$data"; then
  ok "the log and state are inside the volume (no such files on disk, no record in the clear)"
else bad "the writer's files are on disk as themselves, or no slot files in $data/d"; fi
total=$(wc -l <"$tmp/acked.all")
((total > 0)) && ok "$total records acknowledged in all" || bad "no writer ever acknowledged a record"
((during_writes >= iterations / 2)) && ok "$during_writes of $iterations kills came while writing" ||
  bad "only $during_writes of $iterations kills came while writing (the start-up is slower than expected)"

# ---- CAS unreachable: a commit fails (fsync EIO, one line why), so does the
# exit's, and nothing of it becomes current: with CAS back, the volume
# opens at its last commit, without the file written meanwhile.
rm -f "$tmp/go"
"$arca" run --session crash --service hold >"$tmp/h.out" 2>"$tmp/h.err" &
WRITER=$!
for ((k = 0; k < 300; k++)); do grep -qx written "$tmp/h.out" && break; sleep 0.02; done
if grep -qx written "$tmp/h.out"; then
  arca_stop_pid "$CAS_PID"
  touch "$tmp/go"
  wait "$WRITER"; rc=$?
  WRITER=
  if grep -qx 'fsync failed: EIO' "$tmp/h.out" && grep -q 'CAS did not record the new tag' "$tmp/h.err"; then
    ok "CAS down: fsync fails with EIO: $(grep -m1 'CAS did not record' "$tmp/h.err" | cut -c1-200)"
  else bad "CAS down: fsync did not fail with EIO and a line (exit $rc)"; show "$tmp/h.out" "$tmp/h.err"; fi
  grep -q 'the final commit at exit failed' "$tmp/h.err" && ok "CAS down: the exit commit's failure is reported" ||
    bad "CAS down: no line for the failed exit commit"
  arca_restart_cas "$tmp" --las "$ARCA_LAS" || bad "arca-cas did not start again"
  "$arca" run --session crash --service read >"$tmp/r.out" 2>"$tmp/r.err"; rc=$?
  grep '^have ' "$tmp/r.out" | cut -d' ' -f2- | sort >"$tmp/have"
  missing=$(sort "$tmp/acked.all" | comm -23 - "$tmp/have" | head -n3)
  if [[ $rc -eq 0 && -z $missing ]] && grep -q '^verified 2 files' "$tmp/r.out"; then
    ok "CAS back: the volume opens at its last commit, without the uncommitted file: $(grep '^verified ' "$tmp/r.out")"
  else bad "CAS back: reader exit $rc, missing '$missing'"; show "$tmp/r.err" "$tmp/r.out"; fi
else
  bad "the hold writer never wrote"; show "$tmp/h.err"
fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
