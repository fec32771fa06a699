#!/usr/bin/env bash
# Root reads the secret the debugger's way: PTRACE_PEEKDATA word by word
# (attack-peek ptrace), process_vm_readv (attack-peek vm) and gdb attached
# with -p searching every mapping (gdbscan.py). Against the C demo with its
# secret from stdin, the C demo with its secret in the environment (from
# CAS under arca; copies on stack, .bss and heap) and python3; each native,
# where every attack must find the secret, and under arca, where none may.
. "$ARCA_SRC/tests/attacks/lib.sh"
atk_setup ptrace
atk_start_arca
command -v gdb >/dev/null || { echo "SKIP: gdb is not installed (apt-get install gdb)"; exit 77; }

attacks() {  # attacks found|absent LABEL PID
  atk_expect "$1" "PTRACE_PEEKDATA, $2" "$atk_bin/attack-peek" ptrace "$3" "$tmp/needle"
  atk_expect "$1" "process_vm_readv, $2" "$atk_bin/attack-peek" vm "$3" "$tmp/needle"
  atk_expect "$1" "gdb -p, $2" gdb_attack "$3"
  # The program must have survived the attacks (a debugger that kills
  # what it looks at proves nothing).
  kill -0 "$3" 2>/dev/null || bad "$2: the program died during the attacks"
}

if atk_native cn "$victim" && atk_secret cn; then attacks found "C demo, native" "$PID_cn"; fi
atk_stop cn
if atk_protected cp c-stdin "$victim" && atk_secret cp; then attacks absent "C demo, under arca" "$PID_cp"; fi
atk_stop cp

if SECRET=$needle atk_native en "$victim" --env SECRET && atk_wait en '^victim: waiting' >/dev/null &&
   atk_check_hash en; then
  attacks found "C demo with the secret in its environment, native" "$PID_en"
fi
atk_stop en
if atk_protected ep c-env "$victim" --env SECRET && atk_wait ep '^victim: waiting' >/dev/null &&
   atk_check_hash ep; then
  attacks absent "C demo with its secret from CAS, under arca" "$PID_ep"
fi
atk_stop ep

if atk_native pn "$python" "$victim_py" && atk_secret pn; then attacks found "python3, native" "$PID_pn"; fi
atk_stop pn
if atk_protected pp py-stdin "$python" "$victim_py" && atk_secret pp; then
  attacks absent "python3, under arca" "$PID_pp"
fi
atk_stop pp
atk_finish
