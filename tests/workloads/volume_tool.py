"""volume_tool.py: a writer for test_volume_tamper.sh, run under arca with
Debian's python3. Each run reads one instruction from a control file given
on the command line (outside any volume; the session fixes argv) and
carries it out in the volume at argv[1]:
    write NAME SIZE SEED   SIZE pseudo-random bytes of SEED into NAME, fsync
The test computes the same bytes natively to know their SHA-256."""
import os
import random
import sys

vol, ctl = sys.argv[1], sys.argv[2]
with open(ctl) as f:
    words = f.read().split()
if len(words) == 4 and words[0] == "write":
    name, size, seed = words[1], int(words[2]), int(words[3])
    data = random.Random(seed).randbytes(size)
    with open(os.path.join(vol, name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    print("wrote %s %d" % (name, len(data)))
else:
    print("volume_tool.py: unknown instruction %r" % words, file=sys.stderr)
    sys.exit(2)
