"""volume_paths.py: a program for test_volume_paths.sh, run under arca with
Debian's python3. Its markers are computed here, so that they appear
nowhere on disk (not in the session file, not in this script) unless the
program's own writes put them there.
    chdir VOL READY GO   chdir into the volume's root VOL; print getcwd; say
                         "ready" into the FIFO READY and wait for the FIFO GO
                         (meanwhile the test moves VOL away and makes an
                         empty directory at its path); print getcwd again;
                         write the late marker into "late.txt" (relative) and
                         into getcwd()/late2.txt, fsync; print what happened
                         and the listing of "."
    mkfile PATH          write the sed marker line into PATH, fsync
    sha PATH             print the SHA-256 of PATH's bytes
"""
import hashlib
import os
import sys


def late_marker():
    return "ARCA-LATE-" + str(6 * 7 * 1000 + 1)


def sed_line():
    return "hello-" + "SEDMARK" + "-" + str(1000 + 234) + "\n"


def fifo_say(path, what):
    with open(path, "w") as f:
        f.write(what + "\n")


def fifo_wait(path):
    with open(path) as f:
        return f.read().strip()


def chdir_case(vol, ready, go):
    os.chdir(vol)
    print("cwd-before", os.getcwd(), flush=True)
    fifo_say(ready, "ready")
    fifo_wait(go)
    print("cwd-after", os.getcwd(), flush=True)
    marker = late_marker() + "\n"
    for name in ("late.txt", os.path.join(os.getcwd(), "late2.txt")):
        try:
            with open(name, "w") as f:
                f.write(marker)
                f.flush()
                os.fsync(f.fileno())
            print("write ok", os.path.basename(name), flush=True)
        except OSError as e:
            print("write failed", os.path.basename(name), e.errno, e.strerror, flush=True)
    print("listing", " ".join(sorted(os.listdir("."))), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "chdir":
        chdir_case(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "mkfile":
        with open(sys.argv[2], "w") as f:
            f.write(sed_line())
            f.flush()
            os.fsync(f.fileno())
        print("wrote", sys.argv[2])
    elif cmd == "sha":
        with open(sys.argv[2], "rb") as f:
            print(hashlib.sha256(f.read()).hexdigest())
    else:
        print("volume_paths.py: unknown command %r" % cmd, file=sys.stderr)
        sys.exit(2)


main()
