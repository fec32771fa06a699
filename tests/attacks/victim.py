# victim.py: the demonstration program of tests/attacks in Python, run by
# Debian's /usr/bin/python3. It prints its pid, reads a secret from stdin
# into a str, hashes it and waits: a further line "exit" ends it, and at
# the end of stdin it waits for a signal. Nothing here helps or hinders an
# attacker; the secret lives wherever CPython puts a str.
import hashlib
import os
import signal
import sys

print(f"victim: pid {os.getpid()}", flush=True)
print("Enter a secret: ", end="", flush=True)
secret = sys.stdin.readline().rstrip("\n")
if not secret:
    print("victim: no secret on stdin", file=sys.stderr)
    sys.exit(1)
print()
print("sha256 " + hashlib.sha256(secret.encode()).hexdigest())
print("victim: waiting", flush=True)
for line in sys.stdin:
    if line.startswith("exit"):
        sys.exit(0)
while True:
    signal.pause()
