# lib.sh: what the attack tests share. Source it from a test_*.sh; needs
# ARCA_BUILD and ARCA_SRC (ctest sets both).
#
# Every attack runs twice: against the native program, where it must find
# the secret (otherwise the attack is broken and proves nothing), and
# against the same program under `arca run`, where it must not. An attack
# tool that cannot run at all (exit 2) fails the test: "could not look" is
# never "protected".
#
#   atk_setup NAME          root check, temp dir, cleanup trap, needle
#   atk_start_arca [YAML]   daemons, identity, session "attacks" with the
#                           services c-stdin, c-env, c-arg, py-stdin (and
#                           the service YAML given)
#   atk_native ID CMD...    starts CMD with stdin from a fifo; sets PID_<ID>
#   atk_protected ID SERVICE CMD...   the same under arca run
#   atk_feed ID TEXT        writes one line to ID's stdin
#   atk_wait ID PATTERN     waits for a line of ID's stdout
#   atk_expect found|absent WHAT CMD...   runs an attack tool, checks its verdict
#   atk_finish              the summary line and exit status
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"

atk_bin="$ARCA_BUILD/bin"
arca="$atk_bin/arca"
victim="$atk_bin/attack-victim"
victim_py="$ARCA_SRC/tests/attacks/victim.py"
# Debian's interpreter, not whatever python3 comes first on PATH (pyenv):
# the acceptance test is about the distribution's binary.
python=/usr/bin/python3

fails=0
passes=0
ok()  { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }

atk_pids=()
atk_core_pattern=

atk_cleanup() {
  local p
  for p in "${atk_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${atk_pids[@]}"; do wait "$p" 2>/dev/null; done
  arca_stop_all
  if [[ -n $atk_core_pattern ]]; then
    printf '%s\n' "$atk_core_pattern" >/proc/sys/kernel/core_pattern
  fi
  [[ -n ${tmp:-} ]] && rm -rf "$tmp"
}

atk_setup() {
  local name=$1 b
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: the attacks are root's (reading another user's process memory); run as root"
    exit 77
  fi
  for b in "$arca" "$victim" "$atk_bin/arca-las" "$atk_bin/arca-cas" "$atk_bin/attack-memdump" \
           "$atk_bin/attack-peek" "$atk_bin/attack-grabfd"; do
    [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
  done
  [[ -x $python ]] || { echo "SKIP: $python (Debian's python3) is not installed"; exit 77; }
  # Without memfd_secret arca run refuses (unless tolerated, which these
  # sessions never do): there is nothing to attack.
  if ! "$python" -c 'import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).syscall(447, 0) >= 0 else 1)'; then
    echo "SKIP: memfd_secret(2) is not available on this kernel (secretmem.enable=0 or too old)"
    exit 77
  fi
  tmp=$(mktemp -d "/tmp/arca-attack-$name.XXXXXX")
  chmod 755 "$tmp"
  export ARCA_HOME="$tmp/home"
  trap atk_cleanup EXIT
  trap 'exit 130' INT TERM
  # Random per run, so that a hit can only come from this run's secret.
  needle="FUNFOO-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  # The tools read the needle from a file: on their command line it would
  # be visible to all, in the environment a native victim would inherit it.
  printf '%s\n' "$needle" >"$tmp/needle"
  chmod 600 "$tmp/needle"
}

measure() { "$arca" measure -- "$@" | awk '/^measurement/ {print $2}'; }

atk_start_arca() {
  local extra=${1:-}
  arca_start_las "$tmp" || exit $?
  arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
  "$arca" identity create >/dev/null || exit 1
  "$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
  "$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1
  m_victim=$(measure "$victim")
  m_python=$(measure "$python")
  [[ $m_victim == sha256:* && $m_python == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }
  # The env secret is given (not generated), so that the test knows what
  # to look for; it reaches the program only through CAS.
  cat >"$tmp/session.yaml" <<YAML
name: attacks
services:
  - name: c-stdin
    command: ["$victim"]
    measurement: "$m_victim"
    platform: {sim: {}}
  - name: c-env
    command: ["$victim", --env, SECRET]
    measurement: "$m_victim"
    platform: {sim: {}}
    environment:
      SECRET: \$\$arca:needle\$\$
  - name: c-arg
    command: ["$victim", --arg, \$\$arca:needle\$\$]
    measurement: "$m_victim"
    platform: {sim: {}}
  - name: py-stdin
    command: ["$python", "$victim_py"]
    measurement: "$m_python"
    platform: {sim: {}}
$extra
secrets:
  - {name: needle, kind: ascii, value: "$needle"}
$(arca_host_tolerate)
YAML
  "$arca" session create "$tmp/session.yaml" >"$tmp/session.out" 2>&1 || { cat "$tmp/session.out"; exit 1; }
}

# atk_launch ID CMD...: CMD in the background, stdin from a fifo this shell
# keeps open for writing (fd in FD_<ID>), stdout in $tmp/ID.out.
atk_launch() {
  local id=$1; shift
  rm -f "$tmp/$id.in"
  mkfifo "$tmp/$id.in"
  "$@" <"$tmp/$id.in" >"$tmp/$id.out" 2>"$tmp/$id.err" &
  local job=$!
  atk_pids+=("$job")
  local fd
  exec {fd}>"$tmp/$id.in"
  printf -v "FD_$id" %s "$fd"
  printf -v "JOB_$id" %s "$job"
  local pid
  if ! pid=$(atk_wait "$id" '^victim: pid [0-9]+'); then
    bad "$id did not start: $(cat "$tmp/$id.out" "$tmp/$id.err")"
    return 1
  fi
  pid=${pid##* }
  atk_pids+=("$pid")
  printf -v "PID_$id" %s "$pid"
}

atk_native() { atk_launch "$@"; }

atk_protected() {
  local id=$1 service=$2; shift 2
  atk_launch "$id" "$arca" run --session attacks --service "$service" -- "$@"
}

# atk_wait ID REGEX: prints the first matching line of ID's stdout; fails
# after 20 s or when the program is gone.
atk_wait() {
  local id=$1 re=$2 i line job_var="JOB_$1"
  for ((i = 0; i < 200; i++)); do
    line=$(grep -m1 -E "$re" "$tmp/$id.out" 2>/dev/null) && { echo "$line"; return 0; }
    if [[ -n ${!job_var:-} ]] && ! kill -0 "${!job_var}" 2>/dev/null; then
      line=$(grep -m1 -E "$re" "$tmp/$id.out" 2>/dev/null) && { echo "$line"; return 0; }
      return 1
    fi
    sleep 0.1
  done
  return 1
}

atk_feed() {
  local fd_var="FD_$1"
  printf '%s\n' "$2" >&"${!fd_var}"
}

# atk_secret ID: gives ID the needle on stdin and waits until it has
# hashed it; checks the hash, so that we know the program really read it.
atk_secret() {
  local id=$1 want
  atk_feed "$id" "$needle"
  if ! atk_wait "$id" '^victim: waiting' >/dev/null; then
    bad "$id did not take the secret: $(cat "$tmp/$id.out" "$tmp/$id.err")"
    return 1
  fi
  atk_check_hash "$id"
}

atk_check_hash() {
  local id=$1 want
  want=$(printf %s "$needle" | sha256sum | cut -d' ' -f1)
  if grep -q "^sha256 $want\$" "$tmp/$id.out"; then return 0; fi
  bad "$id printed no hash of the secret: $(cat "$tmp/$id.out")"
  return 1
}

# atk_stop ID: ends the program (and its arca run).
atk_stop() {
  local pid_var="PID_$1" job_var="JOB_$1" fd_var="FD_$1"
  [[ -n ${!pid_var:-} ]] && kill -TERM "${!pid_var}" 2>/dev/null
  [[ -n ${!job_var:-} ]] && { kill -TERM "${!job_var}" 2>/dev/null; wait "${!job_var}" 2>/dev/null; }
  local fd=${!fd_var:-}
  [[ -n $fd ]] && exec {fd}>&-
  printf -v "FD_$1" %s ""
  return 0
}

# atk_expect found|absent WHAT CMD...: runs an attack tool (exit 0 found,
# 1 not found, 2 could not run) and checks the verdict. Its output is kept
# in $tmp/last-attack.out and shown on failure.
atk_expect() {
  local want=$1 what=$2; shift 2
  "$@" >"$tmp/last-attack.out" 2>&1
  local rc=$?
  case "$want:$rc" in
    found:0)  ok "$what: found, as expected of the native program ($(grep -m1 '^hit:' "$tmp/last-attack.out"))" ;;
    absent:1) ok "$what: not found ($(grep -v '^NOT FOUND' "$tmp/last-attack.out" | grep -v '^unreadable' | tail -n1))" ;;
    found:1)  bad "$what: the attack did not find the secret in the NATIVE program: the attack is broken"
              sed 's/^/    /' "$tmp/last-attack.out" ;;
    absent:0) bad "$what: SECRET FOUND in the protected program"
              sed 's/^/    /' "$tmp/last-attack.out" ;;
    *)        bad "$what: the attack could not run (exit $rc)"
              sed 's/^/    /' "$tmp/last-attack.out" ;;
  esac
}

atk_finish() {
  echo "$passes passed, $fails failed"
  [[ $fails -eq 0 ]]
}

# gdb_attack PID: gdb attached to PID searches its memory (gdbscan.py);
# exit 0 found, 1 not found, 2 gdb could not do it.
gdb_attack() {
  local out
  out=$(GDBSCAN_NEEDLE="$tmp/needle" timeout 300 gdb -nx -batch -p "$1" -x "$ARCA_SRC/tests/attacks/gdbscan.py" 2>&1)
  printf '%s\n' "$out" | grep -E '^(hit|gdbscan|FOUND|NOT FOUND|ERROR)' || printf '%s\n' "$out" | tail -n 20
  if printf '%s\n' "$out" | grep -q '^FOUND'; then return 0; fi
  if printf '%s\n' "$out" | grep -q '^NOT FOUND'; then return 1; fi
  return 2
}
