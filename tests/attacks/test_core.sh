#!/usr/bin/env bash
# Core dumps as a way out for the secret. gcore: root makes gdb write a
# core of the running program, and the core is searched. SIGABRT with cores
# enabled (RLIMIT_CORE unlimited for the program, core_pattern pointing at
# a directory of this test): the kernel writes the core. Natively the
# secret must be in both cores (so the method works here); under arca it
# must be in neither (the shield makes the program non-dumpable and its
# memory is secret, which gcore cannot read). core_pattern is global: it is
# changed only around the SIGABRT cases and restored on every way out.
. "$ARCA_SRC/tests/attacks/lib.sh"
atk_setup core
command -v gcore >/dev/null || { echo "SKIP: gcore is not installed (apt-get install gdb)"; exit 77; }
# Before the daemons start, so that arca-las and what it launches inherit
# it: a protected program that dumps no core must do so by its own choice.
ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -Hc)"
echo "core size limit of this test, arca-las and native programs: $(ulimit -c)"
atk_start_arca
mkdir -p "$tmp/cores"
chmod 1777 "$tmp/cores"

# gcore_attack PID LABEL: 0 secret in the core, 1 not, 2 no core written.
gcore_attack() {
  local pid=$1 label=$2 core="$tmp/cores/gcore-$2"
  timeout 300 gcore -o "$core" "$pid" >"$tmp/gcore-$label.log" 2>&1
  local rc=$?
  if [[ ! -s $core.$pid ]]; then
    echo "gcore wrote no core (exit $rc):"; tail -n 20 "$tmp/gcore-$label.log"; return 2
  fi
  echo "gcore: core of $(stat -c %s "$core.$pid") bytes (exit $rc); $(grep -c 'Memory read failed\|Cannot access memory' "$tmp/gcore-$label.log") memory read failures"
  local n; n=$(grep -caF "$needle" "$core.$pid")
  rm -f "$core.$pid"
  if [[ $n -gt 0 ]]; then echo "hit: needle in $n places of the gcore core"; echo FOUND; return 0; fi
  echo NOT FOUND; return 1
}

# C demo, secret from stdin; C demo, secret in its environment; python3.
gcore_case() {  # gcore_case ID-native ID-protected SERVICE LABEL CMD...
  local n=$1 p=$2 svc=$3 label=$4; shift 4
  local pid_var
  if [[ $svc == c-env ]]; then
    SECRET=$needle atk_native "$n" "$@" && atk_wait "$n" '^victim: waiting' >/dev/null && atk_check_hash "$n" &&
      { pid_var="PID_$n"; atk_expect found "gcore, $label, native" gcore_attack "${!pid_var}" "$n"; }
  elif atk_native "$n" "$@" && atk_secret "$n"; then
    pid_var="PID_$n"; atk_expect found "gcore, $label, native" gcore_attack "${!pid_var}" "$n"
  fi
  atk_stop "$n"
  if atk_protected "$p" "$svc" "$@" && if [[ $svc == c-env ]]; then
       atk_wait "$p" '^victim: waiting' >/dev/null && atk_check_hash "$p"; else atk_secret "$p"; fi; then
    pid_var="PID_$p"; atk_expect absent "gcore, $label, under arca" gcore_attack "${!pid_var}" "$p"
  fi
  atk_stop "$p"
}
gcore_case gcn gcp c-stdin "C demo" "$victim"
gcore_case gen gep c-env "C demo with the secret in its environment" "$victim" --env SECRET
gcore_case gpn gpp py-stdin "python3" "$python" "$victim_py"

# SIGABRT with cores enabled.
atk_core_pattern=$(cat /proc/sys/kernel/core_pattern)
if ! printf '%s\n' "$tmp/cores/core.%p" >/proc/sys/kernel/core_pattern 2>/dev/null; then
  bad "cannot set /proc/sys/kernel/core_pattern (read only here?): the SIGABRT cases cannot run"
  atk_core_pattern=
  atk_finish; exit
fi

# abort_attack ID: SIGABRT to ID's program, then its core searched.
abort_attack() {
  local id=$1 pid_var="PID_$1" job_var="JOB_$1"
  local pid=${!pid_var} i
  kill -ABRT "$pid"
  wait "${!job_var}" 2>/dev/null
  local st=$?
  echo "the program ended with status $st (134: SIGABRT)"
  # the kernel writes the core before the process can be reaped
  local core="$tmp/cores/core.$pid"
  if [[ ! -e $core ]]; then echo "no core was written"; echo NOT FOUND; return 1; fi
  echo "core $core: $(stat -c %s "$core") bytes"
  local n; n=$(grep -caF "$needle" "$core")
  if [[ $n -gt 0 ]]; then echo "hit: needle in $n places of the kernel's core"; echo FOUND; return 0; fi
  echo NOT FOUND; return 1
}
abort_native_must_dump() {  # the native half must produce a core at all
  abort_attack "$1"; local rc=$?
  local pid_var="PID_$1"
  [[ -e $tmp/cores/core.${!pid_var} ]] || return 2
  return $rc
}

if atk_native an "$victim" && atk_secret an; then
  atk_expect found "SIGABRT core, C demo, native" abort_native_must_dump an
fi
if atk_protected ap c-stdin "$victim" && atk_secret ap; then
  atk_expect absent "SIGABRT core, C demo, under arca" abort_attack ap
fi
if SECRET=$needle atk_native aen "$victim" --env SECRET && atk_wait aen '^victim: waiting' >/dev/null &&
   atk_check_hash aen; then
  atk_expect found "SIGABRT core, C demo with the secret in its environment, native" abort_native_must_dump aen
fi
if atk_protected aep c-env "$victim" --env SECRET && atk_wait aep '^victim: waiting' >/dev/null &&
   atk_check_hash aep; then
  atk_expect absent "SIGABRT core, C demo with its secret from CAS, under arca" abort_attack aep
fi
if atk_native apn "$python" "$victim_py" && atk_secret apn; then
  atk_expect found "SIGABRT core, python3, native" abort_native_must_dump apn
fi
if atk_protected app py-stdin "$python" "$victim_py" && atk_secret app; then
  atk_expect absent "SIGABRT core, python3, under arca" abort_attack app
fi
printf '%s\n' "$atk_core_pattern" >/proc/sys/kernel/core_pattern && atk_core_pattern=
atk_finish
