"""volume_tamper.py: what root does to a protected volume's directory in
test_volume_tamper.sh, run natively (docs/VOLUMES.md "Layout"):
    flip DIR FID BLOCK          flip one bit of the block's current record
    swap DIR FID_A FID_B        swap the two files' slot files (contents)
    truncate DIR FID BLOCKS     cut the slot files to BLOCKS records
    copy DIR FID_SRC FID_DST BLOCK
                                put the source's current record of BLOCK
                                over the destination's current one
The current slot of a block comes from the file's newest leaf table
(FID.tGEN: "ARCALT1\\0", count u64, 32-byte leaves, slot at byte 28)."""
import glob
import os
import struct
import sys

REC = 12 + 4096 + 16


def slot(d, fid, block):
    tables = sorted(glob.glob(os.path.join(d, "d", fid + ".t*")))
    with open(tables[-1], "rb") as f:
        t = f.read()
    assert t[:8] == b"ARCALT1\0", "not a leaf table: " + tables[-1]
    (count,) = struct.unpack("<Q", t[8:16])
    assert block < count, "block %d of %d" % (block, count)
    return t[16 + 32 * block + 28]


def rec_path(d, fid, s):
    return os.path.join(d, "d", "%s.%d" % (fid, s))


op, d = sys.argv[1], sys.argv[2]
if op == "flip":
    fid, block = sys.argv[3], int(sys.argv[4])
    with open(rec_path(d, fid, slot(d, fid, block)), "r+b") as f:
        f.seek(block * REC + 12 + 1000)
        b = f.read(1)
        f.seek(block * REC + 12 + 1000)
        f.write(bytes([b[0] ^ 0x04]))
elif op == "swap":
    a, b = sys.argv[3], sys.argv[4]
    for s in (0, 1):
        pa, pb, tmp = rec_path(d, a, s), rec_path(d, b, s), rec_path(d, a, s) + ".swap"
        if os.path.exists(pa) or os.path.exists(pb):
            open(pa, "ab").close()
            open(pb, "ab").close()
            os.rename(pa, tmp)
            os.rename(pb, pa)
            os.rename(tmp, pb)
elif op == "truncate":
    fid, keep = sys.argv[3], int(sys.argv[4])
    for s in (0, 1):
        if os.path.exists(rec_path(d, fid, s)):
            os.truncate(rec_path(d, fid, s), min(os.path.getsize(rec_path(d, fid, s)), keep * REC))
elif op == "copy":
    src, dst, block = sys.argv[3], sys.argv[4], int(sys.argv[5])
    with open(rec_path(d, src, slot(d, src, block)), "rb") as f:
        f.seek(block * REC)
        rec = f.read(REC)
    assert len(rec) == REC
    with open(rec_path(d, dst, slot(d, dst, block)), "r+b") as f:
        f.seek(block * REC)
        f.write(rec)
else:
    sys.exit("volume_tamper.py: unknown operation " + op)
