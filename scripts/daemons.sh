# daemons.sh: start and stop arca-las and arca-cas for the demo and the
# integration tests. Source it; needs ARCA_BUILD (the build directory).
#   arca_free_port            prints a free loopback TCP port
#   arca_start_las DIR        starts arca-las (state DIR/las, socket DIR/las.sock);
#                             returns 77 (with a SKIP line) where it cannot run
#   arca_start_cas DIR [ARGS] starts arca-cas (state DIR/cas) on a free port
#   arca_stop_all             stops both (SIGTERM, then waits)
# After start: ARCA_LAS, ARCA_CAS, ARCA_CAS_STATE are exported and
# LAS_PID, CAS_PID, LAS_FPR, CAS_FPR are set.

arca_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# arca_wait_ready LOGFILE PID WHAT: waits up to 20 s for a line starting
# with "ready" in LOGFILE.
arca_wait_ready() {
  local log=$1 pid=$2 what=$3 i
  for ((i = 0; i < 200; i++)); do
    if grep -q '^ready' "$log" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited before it was ready:" >&2; cat "$log" "$log.err" >&2 2>/dev/null; return 1
    fi
    sleep 0.1
  done
  echo "$what was not ready after 20 s" >&2; cat "$log" "$log.err" >&2 2>/dev/null; return 1
}

# arca_las_preflight: what arca-las in sim mode needs of the machine (root,
# Yama's ptrace_scope >= 1; CONTRACTS.md "Trusted launch"). As root a scope
# of 0 is raised to 1, with one line saying so. Returns 77 with a SKIP line
# where the tests cannot run arca-las. A kernel built without Yama cannot
# give arca-las what it needs; ARCA_TEST_FAKE_YAMA=1 (root only, tests
# only) then starts arca-las in a mount namespace where a file stands in
# for the sysctl: the daemon's code paths run, but the same-user ptrace
# race that Yama closes stays open on such a host.
ARCA_YAMA=/proc/sys/kernel/yama/ptrace_scope
arca_las_preflight() {
  ARCA_LAS_FAKE_YAMA=0
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: arca-las must run as root (it starts programs as their users and measures them after they made themselves non-dumpable)"
    return 77
  fi
  if [[ -r $ARCA_YAMA ]]; then
    if [[ $(<"$ARCA_YAMA") == 0 ]]; then
      echo 1 >"$ARCA_YAMA" || { echo "SKIP: cannot raise kernel.yama.ptrace_scope to 1"; return 77; }
      echo "daemons.sh: kernel.yama.ptrace_scope was 0; set it to 1 (arca-las needs >= 1)"
    fi
    return 0
  fi
  if [[ ${ARCA_TEST_FAKE_YAMA:-0} == 1 ]] && command -v unshare >/dev/null; then
    echo "daemons.sh: this kernel has no Yama; arca-las runs with a simulated ptrace_scope=1 (ARCA_TEST_FAKE_YAMA=1, tests only)"
    ARCA_LAS_FAKE_YAMA=1
    return 0
  fi
  echo "SKIP: this kernel has no Yama LSM ($ARCA_YAMA is missing), and arca-las refuses sim mode without it; set ARCA_TEST_FAKE_YAMA=1 to run the tests with a simulated one"
  return 77
}

# arca_las_exec ARGS…: runs arca-las in the foreground of this subshell,
# behind the simulated Yama file when arca_las_preflight chose it. The
# stand-in is removed again (nsenter) once the daemon is ready, so that
# the programs it starts see the real /proc/sys/kernel.
arca_las_exec() {
  if [[ ${ARCA_LAS_FAKE_YAMA:-0} == 1 ]]; then
    exec unshare -m --propagation private sh -c '
      mount -t tmpfs -o size=64k,mode=0555 arca-fake-yama /proc/sys/kernel &&
      mkdir /proc/sys/kernel/yama && echo 1 >/proc/sys/kernel/yama/ptrace_scope &&
      exec "$@"' arca-las "$ARCA_BUILD/bin/arca-las" "$@"
  fi
  exec "$ARCA_BUILD/bin/arca-las" "$@"
}

arca_las_unfake() {
  [[ ${ARCA_LAS_FAKE_YAMA:-0} == 1 ]] && nsenter -t "$1" -m umount /proc/sys/kernel 2>/dev/null
  return 0
}

arca_start_las() {
  local dir=$1 rc
  arca_las_preflight; rc=$?
  [[ $rc -eq 0 ]] || return $rc
  mkdir -p "$dir"
  : >"$dir/las.out"   # truncate here: the background job's own redirection may come too late
  (arca_las_exec --state "$dir/las" --socket "$dir/las.sock") >"$dir/las.out" 2>"$dir/las.out.err" &
  LAS_PID=$!
  arca_wait_ready "$dir/las.out" "$LAS_PID" arca-las || return 1
  arca_las_unfake "$LAS_PID"
  LAS_FPR=$(grep -o 'fingerprint=SHA256:[A-Za-z0-9+/]*' "$dir/las.out" | head -n1 | cut -d= -f2)
  export ARCA_LAS="$dir/las.sock"
}

arca_start_cas() {
  local dir=$1; shift
  local port; port=$(arca_free_port)
  mkdir -p "$dir"
  : >"$dir/cas.out"
  "$ARCA_BUILD/bin/arca-cas" --state "$dir/cas" --listen "127.0.0.1:$port" "$@" >"$dir/cas.out" 2>"$dir/cas.out.err" &
  CAS_PID=$!
  arca_wait_ready "$dir/cas.out" "$CAS_PID" arca-cas || return 1
  CAS_FPR=$(grep -o 'fingerprint=SHA256:[A-Za-z0-9+/]*' "$dir/cas.out" | head -n1 | cut -d= -f2)
  export ARCA_CAS="127.0.0.1:$port" ARCA_CAS_STATE="$dir/cas"
}

arca_stop_pid() {
  local pid=$1 i
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

arca_stop_all() {
  arca_stop_pid "${CAS_PID:-}"; CAS_PID=
  arca_stop_pid "${LAS_PID:-}"; LAS_PID=
}

# arca_restart_cas DIR [ARGS]: stops CAS and starts it again on the same
# address and state, with ARGS.
arca_restart_cas() {
  local dir=$1; shift
  arca_stop_pid "${CAS_PID:-}"
  : >"$dir/cas.out"
  "$ARCA_BUILD/bin/arca-cas" --state "$ARCA_CAS_STATE" --listen "$ARCA_CAS" "$@" >"$dir/cas.out" 2>>"$dir/cas.out.err" &
  CAS_PID=$!
  arca_wait_ready "$dir/cas.out" "$CAS_PID" arca-cas
}
