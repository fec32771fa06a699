#!/usr/bin/python3
"""CPU-bound pure-Python work for bench/mem_run.sh: dicts, lists and
strings, the objects CPython allocates from its own arenas (mmap) and from
malloc, so that the memory shield's heap and mmap paths both carry load.
About 1-2 s natively. Prints its own time for the work alone (start-up
excluded) and a checksum that must be the same natively and under arca:

    cpu.py: work_ms=1234.5 checksum=...
"""
import hashlib
import sys
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def words(seed, n):
    # A deterministic stream of short strings (no random module: the same
    # words every run, every interpreter).
    x = seed
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append("w%x" % (x >> 44))
    return out


def one_round(seed):
    ws = words(seed, 60000)
    counts = {}
    for w in ws:
        counts[w] = counts.get(w, 0) + 1
    # Strings: join, split, replace, formatting.
    text = " ".join(ws)
    parts = text.replace("w1", "W1").split(" ")
    lines = ["%s:%d" % (w, counts.get(w.lower(), 0)) for w in parts[:20000]]
    # Lists: sort by two keys, slices, comprehensions.
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = [k for k, v in items[:1000]]
    # Nested containers that live and die (the allocator's churn).
    groups = {}
    for w in ws:
        groups.setdefault(w[:3], []).append(len(w))
    sizes = {k: sum(v) for k, v in groups.items()}
    h = hashlib.sha256()
    h.update("|".join(top).encode())
    h.update("\n".join(lines[:500]).encode())
    h.update(repr(sorted(sizes.items())).encode())
    return h.hexdigest()


t0 = time.perf_counter()
acc = hashlib.sha256()
for r in range(ROUNDS):
    acc.update(one_round(r + 1).encode())
ms = (time.perf_counter() - t0) * 1000.0
print("cpu.py: work_ms=%.1f checksum=%s" % (ms, acc.hexdigest()[:16]))
