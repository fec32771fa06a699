# daemons.sh: start and stop arca-las and arca-cas for the demo and the
# integration tests. Source it; needs ARCA_BUILD (the build directory).
#   arca_free_port            prints a free loopback TCP port
#   arca_start_las DIR [ARGS] starts arca-las (state DIR/las, socket DIR/las.sock)
#                             with ARGS; returns 77 (with a SKIP line) where it
#                             cannot run. ARCA_LAS_WRAPPER, when set, is a command
#                             (split at spaces) that arca-las runs under
#   arca_host_tolerate        the session line a host without Yama ptrace
#                             protection needs (empty where it has it)
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

# arca_las_preflight: what arca-las in sim mode needs of the machine: root
# (CONTRACTS.md "Trusted launch"). Returns 77 with a SKIP line where the
# tests cannot run arca-las. As root, a Yama ptrace_scope of 0 is raised to
# 1, with one line saying so. A kernel without Yama cannot close the window
# in which another process of the same user could reach into a program
# before its shield protects it: arca-las then warns itself, its evidence
# says so, and only sessions that tolerate no-ptrace-protection accept it
# (arca_host_tolerate).
ARCA_YAMA=/proc/sys/kernel/yama/ptrace_scope
arca_las_preflight() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: arca-las must run as root (it starts programs as their users and measures them after they made themselves non-dumpable)"
    return 77
  fi
  if [[ -r $ARCA_YAMA && $(<"$ARCA_YAMA") == 0 ]]; then
    if echo 1 >"$ARCA_YAMA" 2>/dev/null; then
      echo "daemons.sh: kernel.yama.ptrace_scope was 0; set it to 1 (only ancestors may ptrace protected programs)"
    else
      echo "daemons.sh: kernel.yama.ptrace_scope is 0 and cannot be raised here; arca-las will say what that means"
    fi
  fi
  return 0
}

# arca_ptrace_protected: true when this host has Yama with ptrace_scope >= 1,
# i.e. when arca-las's evidence says ARCA_SIM_FLAG_PTRACE_PROTECTED.
arca_ptrace_protected() {
  [[ -r $ARCA_YAMA && $(<"$ARCA_YAMA") =~ ^[1-3]$ ]]
}

# arca_secret_memory_available: true when this kernel offers memfd_secret(2)
# (Linux 5.14+, not disabled with secretmem.enable=0), i.e. when protected
# programs get secret memory and arca-las's evidence says
# ARCA_SIM_FLAG_SECRET_MEMORY.
arca_secret_memory_available() {
  python3 -c 'import ctypes, os, sys; fd = ctypes.CDLL(None, use_errno=True).syscall(447, 0); sys.exit(0 if fd >= 0 else 1)' 2>/dev/null
}

# arca_host_tolerate: prints "tolerate: [...]" (a top-level session key)
# with no-ptrace-protection when this host lacks Yama's protection and
# no-secret-memory when it lacks memfd_secret, nothing when it has both,
# so that a session accepts this host's evidence only as far as it has to.
# With --user, the session's programs run as a user other than root: they
# lack CAP_IPC_LOCK, and where arca-las cannot raise their locked-memory
# limit (no CAP_SYS_RESOURCE) to the 32 MiB the shield needs, they get no
# secret memory either.
arca_user_memlock_ok() {
  (ulimit -H -l unlimited) 2>/dev/null && return 0
  local h; h=$(ulimit -H -l)
  [[ $h == unlimited ]] || (( h >= 32768 ))
}
arca_host_tolerate() {
  local t=()
  arca_ptrace_protected || t+=(no-ptrace-protection)
  if ! arca_secret_memory_available || { [[ ${1:-} == --user ]] && ! arca_user_memlock_ok; }; then
    t+=(no-secret-memory)
  fi
  [[ ${#t[@]} -eq 0 ]] || echo "tolerate: [$(IFS=,; echo "${t[*]}" | sed 's/,/, /g')]"
}

# arca_las_exec ARGS...: runs arca-las in the foreground of this subshell.
arca_las_exec() {
  # shellcheck disable=SC2086 # the wrapper is a command with arguments
  exec ${ARCA_LAS_WRAPPER:-} "$ARCA_BUILD/bin/arca-las" "$@"
}

arca_start_las() {
  local dir=$1 rc; shift
  arca_las_preflight; rc=$?
  [[ $rc -eq 0 ]] || return $rc
  mkdir -p "$dir"
  : >"$dir/las.out"   # truncate here: the background job's own redirection may come too late
  (arca_las_exec --state "$dir/las" --socket "$dir/las.sock" "$@") >"$dir/las.out" 2>"$dir/las.out.err" &
  LAS_PID=$!
  arca_wait_ready "$dir/las.out" "$LAS_PID" arca-las || return 1
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
