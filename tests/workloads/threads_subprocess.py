#!/usr/bin/python3
"""A Python program that leans on what the memory shield changes: threads
(their stacks and the heap they share), subprocess and os.fork (a child that
must get its own copy of the heap, not write into the parent's). Run by
tests/integration/test_workloads.sh natively and under arca; it prints one
line per check and "workload: all checks passed" at the end, and exits 1 at
the first wrong answer, so that the test sees a broken result and not only
a crash."""
import hashlib
import os
import subprocess
import sys
import threading

failures = 0


def check(what, cond, detail=""):
    global failures
    if cond:
        print(f"ok: {what}")
    else:
        failures += 1
        print(f"FAIL: {what} {detail}")


# --- threads: each builds its own dict and list, hashes them; the main
# thread recomputes the same work and compares. Several threads at once
# make the allocator serve concurrent arenas and thread stacks.
def work(seed, n):
    d = {}
    for i in range(n):
        k = f"k{seed}-{i}"
        d[k] = [i, seed, k * 3]
    h = hashlib.sha256()
    for k in sorted(d):
        h.update(repr(d[k]).encode())
    return len(d), h.hexdigest()


NTHREADS, N = 8, 20000
results = [None] * NTHREADS


def runner(i):
    results[i] = work(i, N)


threads = [threading.Thread(target=runner, args=(i,)) for i in range(NTHREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for i in range(NTHREADS):
    check(f"thread {i} result", results[i] == work(i, N), repr(results[i]))

# A shared counter under a lock: lost updates would show a broken lock or
# a heap that two threads see differently.
counter = {"n": 0}
lock = threading.Lock()


def bump():
    for _ in range(10000):
        with lock:
            counter["n"] += 1


ts = [threading.Thread(target=bump) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
check("locked counter", counter["n"] == 40000, str(counter["n"]))

# --- subprocess: a program we exec, and a shell pipeline.
r = subprocess.run(["/bin/echo", "hello", "from", "echo"], capture_output=True, text=True)
check("subprocess /bin/echo", r.returncode == 0 and r.stdout == "hello from echo\n", repr(r))
r = subprocess.run(["/bin/sh", "-c", "printf 'b\\na\\nc\\n' | sort | tr -d '\\n'"],
                   capture_output=True, text=True)
check("subprocess sh -c pipeline", r.returncode == 0 and r.stdout == "abc", repr(r))
data = os.urandom(1 << 16)
r = subprocess.run(["/bin/cat"], input=data, capture_output=True)
check("subprocess cat round trip 64 KiB", r.returncode == 0 and r.stdout == data, str(len(r.stdout)))

# --- os.fork: the child writes the same heap object; the parent must not
# see that write, and the child must see only its own.
state = {"value": "parent", "blob": bytearray(b"P" * 4096)}
rfd, wfd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(rfd)
    state["value"] = "child"
    state["blob"][:] = b"C" * 4096
    ok = state["value"] == "child" and state["blob"] == bytearray(b"C" * 4096)
    os.write(wfd, b"child-saw-own-write" if ok else b"child-saw-wrong")
    os.close(wfd)
    os._exit(7)
os.close(wfd)
msg = b""
while True:
    chunk = os.read(rfd, 100)
    if not chunk:
        break
    msg += chunk
os.close(rfd)
_, status = os.waitpid(pid, 0)
check("fork: child exit status 7", os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, str(status))
check("fork: child saw its own write", msg == b"child-saw-own-write", repr(msg))
check("fork: parent value unchanged", state["value"] == "parent", state["value"])
check("fork: parent buffer unchanged", state["blob"] == bytearray(b"P" * 4096))
# The parent writes after the child is gone: still its own heap.
state["value"] = "parent2"
check("fork: parent can still write", state["value"] == "parent2")

# Threads after fork in a child: a child that starts threads of its own.
pid = os.fork()
if pid == 0:
    out = [None] * 4

    def cw(i):
        out[i] = work(100 + i, 2000)

    cts = [threading.Thread(target=cw, args=(i,)) for i in range(4)]
    for t in cts:
        t.start()
    for t in cts:
        t.join()
    os._exit(0 if all(out[i] == work(100 + i, 2000) for i in range(4)) else 3)
_, status = os.waitpid(pid, 0)
check("fork: child with threads", os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, str(status))

if failures:
    print(f"workload: {failures} checks failed")
    sys.exit(1)
print("workload: all checks passed")
