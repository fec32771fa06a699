#!/usr/bin/env bash
# The classic demonstration: root reads every readable mapping of a process
# through /proc/PID/maps and /proc/PID/mem and greps for the secret. Three
# programs, each native (the secret must be found: the attack works) and
# under arca (it must not be): the C demo that reads its secret from
# stdin, Debian's python3 holding a secret read from stdin in a str, and
# the C demo given its secret by CAS through the environment (natively:
# through the environment of the shell that starts it).
. "$ARCA_SRC/tests/attacks/lib.sh"
atk_setup memdump
atk_start_arca
dump() { atk_expect "$1" "$2" "$atk_bin/attack-memdump" "$3" "$tmp/needle"; }

# C, secret from stdin
if atk_native cn "$victim" && atk_secret cn; then dump found "memdump, C demo, native" "$PID_cn"; fi
atk_stop cn
if atk_protected cp c-stdin "$victim" && atk_secret cp; then dump absent "memdump, C demo, under arca" "$PID_cp"; fi
atk_stop cp

# python3, secret from stdin into a str
if atk_native pn "$python" "$victim_py" && atk_secret pn; then dump found "memdump, python3, native" "$PID_pn"; fi
atk_stop pn
if atk_protected pp py-stdin "$python" "$victim_py" && atk_secret pp; then
  dump absent "memdump, python3, under arca" "$PID_pp"
fi
atk_stop pp

# C, secret from the environment (under arca: from CAS)
if SECRET=$needle atk_native en "$victim" --env SECRET && atk_wait en '^victim: waiting' >/dev/null &&
   atk_check_hash en; then
  dump found "memdump, C demo with the secret in its environment, native" "$PID_en"
fi
atk_stop en
if atk_protected ep c-env "$victim" --env SECRET && atk_wait ep '^victim: waiting' >/dev/null &&
   atk_check_hash ep; then
  dump absent "memdump, C demo with its secret from CAS, under arca" "$PID_ep"
else
  bad "the C demo with its secret from CAS did not run: $(cat "$tmp/ep.out" "$tmp/ep.err")"
fi
atk_stop ep
atk_finish
