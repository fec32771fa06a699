#!/usr/bin/env bash
# Secret memory is a file (memfd_secret): whoever holds that file can map it
# in a process of their own and read it there, where no EIO stands in the
# way. attack-grabfd takes a duplicate of every descriptor of the program
# (pidfd_getfd) and opens every /proc/PID/map_files entry, maps each
# regular file it gets and searches it. Under arca none of them may give
# the secret: the shield must hold no secret-memory descriptor, and the
# kernel refuses map_files opens of secret memory.
#
# A native program keeps its secret in anonymous memory, which no file
# reaches, so this attack has nothing to find in the native demo; to show
# that the tool works (a broken tool would "protect" everything), the
# native half is a program that holds the secret in a memfd, both as an
# open descriptor and as a mapping: the tool must find it both ways.
. "$ARCA_SRC/tests/attacks/lib.sh"
atk_setup grabfd
atk_start_arca
grab() { "$atk_bin/attack-grabfd" "$1" "$tmp/needle"; }

holder='
import mmap, os, sys
print(f"victim: pid {os.getpid()}", flush=True)
secret = sys.stdin.readline().rstrip("\n").encode()
fd = os.memfd_create("attack-grabfd")
os.write(fd, secret.ljust(4096, b"\0"))
m = mmap.mmap(fd, 4096)
print("victim: waiting", flush=True)
for line in sys.stdin:
    if line.startswith("exit"):
        break
'
if atk_native mn "$python" -c "$holder" && atk_feed mn "$needle" && atk_wait mn '^victim: waiting' >/dev/null; then
  atk_expect found "grabfd, memfd holder, native" grab "$PID_mn"
  if grep -q '(pidfd_getfd)' "$tmp/last-attack.out" && grep -q '(map_files)' "$tmp/last-attack.out"; then
    ok "grabfd reached the memfd both through pidfd_getfd and through map_files"
  else
    bad "grabfd did not reach the memfd both ways:"; sed 's/^/    /' "$tmp/last-attack.out"
  fi
else
  bad "the memfd holder did not start: $(cat "$tmp/mn.out" "$tmp/mn.err")"
fi
atk_stop mn

grab_shows() {  # what the attack looked at, for the log
  echo "    $(grep -cE '^fd [0-9]+' "$tmp/last-attack.out") descriptors, $(grep -c 'secretmem' "$tmp/last-attack.out") lines about secret memory, $(grep -E '^grabfd: mapped' "$tmp/last-attack.out")"
  grep 'secretmem' "$tmp/last-attack.out" | head -n 5 | sed 's/^/    /'
}
if atk_protected cp c-stdin "$victim" && atk_secret cp; then
  atk_expect absent "grabfd, C demo, under arca" grab "$PID_cp"; grab_shows
fi
atk_stop cp
if atk_protected ep c-env "$victim" --env SECRET && atk_wait ep '^victim: waiting' >/dev/null && atk_check_hash ep; then
  atk_expect absent "grabfd, C demo with its secret from CAS, under arca" grab "$PID_ep"; grab_shows
fi
atk_stop ep
if atk_protected pp py-stdin "$python" "$victim_py" && atk_secret pp; then
  atk_expect absent "grabfd, python3, under arca" grab "$PID_pp"; grab_shows
fi
atk_stop pp
atk_finish
