# gdbscan.py: the memory search of tests/attacks done by gdb itself, as an
# administrator would: `gdb -nx -batch -p PID -x gdbscan.py`, with the path
# of the needle file in GDBSCAN_NEEDLE (a path, not the needle: see scan.h).
# It reads every readable mapping through gdb's own memory access and prints
# the same verdict lines as the C tools ("FOUND", "NOT FOUND", or "ERROR")
# after a line "gdbscan: read N bytes ...".
import os

import gdb

CHUNK = 1 << 20
PAGE = 4096


def main():
    needle = open(os.environ["GDBSCAN_NEEDLE"], "rb").read().rstrip(b"\r\n")
    if len(needle) < 8:
        print("ERROR: needle shorter than 8 bytes")
        return
    inf = gdb.selected_inferior()
    if inf is None or inf.pid == 0:
        print("ERROR: gdb is not attached to a process")
        return
    maps = []
    with open(f"/proc/{inf.pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip() if len(parts) > 5 else "[anonymous]"
            if parts[1][0] == "r" and name != "[vsyscall]":
                maps.append((start, end, parts[1], name))
    hits, read, failed, failed_maps = 0, 0, 0, 0
    for start, end, perms, name in maps:
        tail, tail_end, bad = b"", None, False
        addr = start
        while addr < end:
            n = min(CHUNK, end - addr)
            pieces = []
            try:
                pieces.append((addr, inf.read_memory(addr, n).tobytes()))
            except gdb.MemoryError:
                for p in range(addr, addr + n, PAGE):
                    try:
                        pieces.append((p, inf.read_memory(p, PAGE).tobytes()))
                    except gdb.MemoryError:
                        failed += PAGE
                        bad = True
            for a, data in pieces:
                read += len(data)
                joined = tail + data if tail_end == a else data
                base = a - (len(joined) - len(data))
                i = joined.find(needle)
                while i >= 0:
                    hits += 1
                    if hits <= 20:
                        print(f"hit: needle at {base + i:#x} in {start:x}-{end:x} {perms} {name} (gdb)")
                    i = joined.find(needle, i + 1)
                tail, tail_end = joined[-(len(needle) - 1):], a + len(data)
            addr += n
        failed_maps += bad
    print(f"gdbscan: read {read} bytes in {len(maps)} mappings; "
          f"{failed} bytes in {failed_maps} mappings unreadable")
    if hits:
        print(f"FOUND ({hits} hits)")
    elif read == 0:
        print("ERROR: nothing could be read")
    else:
        print("NOT FOUND")


try:
    main()
except Exception as e:  # any failure of the tool is an error, never "not found"
    print(f"ERROR: {type(e).__name__}: {e}")
