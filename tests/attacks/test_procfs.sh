#!/usr/bin/env bash
# What /proc shows of a program without reading its memory maps:
# /proc/PID/environ and /proc/PID/cmdline. A secret given to a program in
# its environment, or on its command line, is plain to root there when the
# program runs natively (checked first, so that the check is known to
# work); under arca, where CAS gives the secret through the session's
# environment or command, neither file may hold it.
. "$ARCA_SRC/tests/attacks/lib.sh"
atk_setup procfs
atk_start_arca

# procfs_attack WHICH PID: searches /proc/PID/WHICH; 0 found, 1 not found,
# 2 the file is gone (the program is not running).
procfs_attack() {
  local f=/proc/$2/$1
  [[ -e $f ]] || { echo "$f does not exist"; return 2; }
  local size
  if ! size=$(wc -c <"$f" 2>"$tmp/procfs.err"); then
    echo "$f could not be read: $(cat "$tmp/procfs.err")"; echo NOT FOUND; return 1
  fi
  echo "$f: $size bytes: $(tr '\0' ' ' <"$f" | cut -c1-160)" | grep -vF "$needle" || echo "$f: $size bytes"
  if grep -qaF "$needle" "$f"; then echo "hit: the needle is in $f"; echo FOUND; return 0; fi
  echo NOT FOUND; return 1
}
running() {  # running ID: the program took its secret and is waiting
  atk_wait "$1" '^victim: waiting' >/dev/null && atk_check_hash "$1"
}

# The secret in the environment.
if SECRET=$needle atk_native en "$victim" --env SECRET && running en; then
  atk_expect found "/proc/PID/environ, secret in the environment, native" procfs_attack environ "$PID_en"
fi
atk_stop en
if atk_protected ep c-env "$victim" --env SECRET && running ep; then
  atk_expect absent "/proc/PID/environ, secret from CAS in the environment, under arca" procfs_attack environ "$PID_ep"
  atk_expect absent "/proc/PID/cmdline, secret from CAS in the environment, under arca" procfs_attack cmdline "$PID_ep"
fi
atk_stop ep

# The secret on the command line. Natively it has to be on this one
# program's command line: that is what is being shown.
if atk_native an "$victim" --arg "$needle" && running an; then
  atk_expect found "/proc/PID/cmdline, secret on the command line, native" procfs_attack cmdline "$PID_an"
fi
atk_stop an
# Under arca the host command carries no secret; the session's does.
if atk_protected ap c-arg "$victim" && running ap; then
  atk_expect absent "/proc/PID/cmdline, secret from CAS on the command line, under arca" procfs_attack cmdline "$PID_ap"
  atk_expect absent "/proc/PID/environ, secret from CAS on the command line, under arca" procfs_attack environ "$PID_ap"
fi
atk_stop ap
atk_finish
