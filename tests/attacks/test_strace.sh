#!/usr/bin/env bash
# strace as the attacker: root attaches `strace -f -s 4096 -e
# trace=read,write` to a program that is waiting for its secret on a fifo,
# and only then is the secret written to the fifo. strace prints the bytes
# that pass through the program's read and write buffers; natively the
# secret must show up in its log, under arca it must not (strace fetches
# the buffer from the program's memory, which is secret).
. "$ARCA_SRC/tests/attacks/lib.sh"
atk_setup strace
command -v strace >/dev/null || { echo "SKIP: strace is not installed (apt-get install strace)"; exit 77; }
atk_start_arca

# strace_attack ID: attaches to ID's program, feeds it the secret, stops
# strace and searches its log. 0 found, 1 not, 2 strace did not attach or
# the program did not take the secret.
strace_attack() {
  local id=$1 pid_var="PID_$1" log="$tmp/strace-$1.log" i
  strace -f -s 4096 -e trace=read,write -o "$log" -p "${!pid_var}" 2>"$tmp/strace-$id.err" &
  local spid=$!
  atk_pids+=("$spid")
  for ((i = 0; i < 100; i++)); do
    grep -q 'attached' "$tmp/strace-$id.err" 2>/dev/null && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'attached' "$tmp/strace-$id.err"; then
    echo "strace did not attach:"; cat "$tmp/strace-$id.err"; kill "$spid" 2>/dev/null; return 2
  fi
  atk_feed "$id" "$needle"
  if ! atk_wait "$id" '^victim: waiting' >/dev/null || ! atk_check_hash "$id" >/dev/null; then
    echo "the program did not take the secret"; kill "$spid" 2>/dev/null; wait "$spid"; return 2
  fi
  kill -INT "$spid"; wait "$spid" 2>/dev/null
  local reads; reads=$(grep -c 'read(0,' "$log")
  echo "strace: $(wc -l <"$log") lines, $reads reads of stdin; the read of the secret: $(grep -m1 'read(0,' "$log" | cut -c1-120)"
  [[ $reads -gt 0 ]] || { echo "strace saw no read of stdin"; return 2; }
  if grep -qF "$needle" "$log"; then grep -F "$needle" "$log" | sed 's/^/hit: /' | head -n 5; echo FOUND; return 0; fi
  echo NOT FOUND; return 1
}

if atk_native cn "$victim"; then atk_expect found "strace, C demo, native" strace_attack cn; fi
atk_stop cn
if atk_protected cp c-stdin "$victim"; then atk_expect absent "strace, C demo, under arca" strace_attack cp; fi
atk_stop cp
if atk_native pn "$python" "$victim_py"; then atk_expect found "strace, python3, native" strace_attack pn; fi
atk_stop pn
if atk_protected pp py-stdin "$python" "$victim_py"; then
  atk_expect absent "strace, python3, under arca" strace_attack pp
fi
atk_stop pp
atk_finish
