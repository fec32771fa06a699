"""volume_app.py: test_volumes.sh runs this with Debian's python3 from an
encrypted code volume; it writes into a data volume (argv[1]) and checks
what it reads back. Prints "ok: ..." per check, "WRONG: ..." on a failed
one, and "workload: all checks passed" at the end when none failed."""
import errno
import hashlib
import os
import sys

import volume_helper  # from the code volume, beside this file

data = sys.argv[1]
code = os.path.dirname(os.path.abspath(__file__))
failed = 0


def check(cond, what):
    global failed
    if cond:
        print("ok: " + what, flush=True)
    else:
        failed += 1
        print("WRONG: " + what, flush=True)


check(volume_helper.NAME == "volume_helper", "imported volume_helper from the code volume " + code)
with open(__file__, "rb") as f:
    src = f.read()
check(src.startswith(b'"""volume_app.py'), "read its own source from the code volume")

big = volume_helper.payload()
path = os.path.join(data, "big.bin")
with open(path, "wb") as f:
    f.write(big)
    f.flush()
    os.fsync(f.fileno())
with open(path, "rb") as f:
    got = f.read()
check(got == big, "read back the %d bytes written to %s" % (len(big), path))
check(os.stat(path).st_size == len(big), "stat gives the size written")
print("sha256 " + hashlib.sha256(got).hexdigest(), flush=True)

logs = os.path.join(data, "py", "logs")
os.makedirs(logs, exist_ok=True)
with open(os.path.join(logs, "run.log"), "a") as f:
    f.write("run\n")
with open(os.path.join(logs, "run.log")) as f:
    runs = f.read().count("run\n")
check(runs >= 1, "appended to py/logs/run.log (%d runs so far)" % runs)
names = sorted(os.listdir(data))
check("big.bin" in names and "py" in names, "listdir of the data volume: %s" % names)
walked = sorted(os.path.relpath(os.path.join(d, n), data) for d, _, fs in os.walk(data) for n in fs)
check(os.path.join("py", "logs", "run.log") in walked, "os.walk reaches py/logs/run.log")

try:
    with open(os.path.join(code, "evil.py"), "w") as f:
        f.write("x = 1\n")
    check(False, "writing into the code volume was refused")
except OSError as e:
    check(e.errno == errno.EROFS, "writing into the code volume fails with EROFS (%s)" % e.strerror)

if failed == 0:
    print("workload: all checks passed", flush=True)
sys.exit(1 if failed else 0)
