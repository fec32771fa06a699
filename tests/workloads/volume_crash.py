"""volume_crash.py: the writer and the reader of test_volume_crash.sh, run
under arca with Debian's python3 in a data volume (argv[2]).

    write DIR CTL   appends records to DIR/log (sizes vary, so that records
                    cross 4 KiB blocks), rewrites DIR/state in place with the
                    last record's key, and fsyncs after each record; then
                    prints "acked RUN I". RUN comes from the control file CTL
                    (outside any volume). Runs until killed.
    hold DIR GO     writes DIR/held, prints "written", waits for the file GO
                    (outside any volume), fsyncs and prints "fsync ok" or
                    "fsync failed: ERRNO", then exits (the exit commits too).
    payload RUN I   prints record RUN I's payload (natively, for the test's
                    grep of the volume's directory)
    read DIR        reads every file of the volume in full (any EIO fails),
                    checks every record, checks that state names the log's
                    last record (one commit wrote both), and prints
                    "have RUN I" per record and "verified N files, M bytes".
A record is "RUN I LEN PAYLOAD SUM\\n", SUM the first 16 hex digits of the
SHA-256 of "RUN I PAYLOAD"."""
import hashlib
import os
import random
import sys

STATE_LEN = 64


def record(run, i):
    r = random.Random(run * 1000003 + i)
    payload = "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randrange(10, 3000)))
    head = "%d %d %s" % (run, i, payload)
    return "%d %d %d %s %s\n" % (run, i, len(payload), payload, hashlib.sha256(head.encode()).hexdigest()[:16])


def write(d, ctl):
    with open(ctl) as f:
        run = int(f.read().split()[0])
    print("pid %d" % os.getpid(), flush=True)
    log = os.open(os.path.join(d, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    state = os.open(os.path.join(d, "state"), os.O_RDWR | os.O_CREAT, 0o600)
    i = 0
    while True:
        os.write(log, record(run, i).encode())
        os.pwrite(state, ("%d %d" % (run, i)).ljust(STATE_LEN).encode(), 0)
        os.fsync(log)  # commits the whole volume: both files
        print("acked %d %d" % (run, i), flush=True)
        i += 1


def read(d):
    files = size = 0
    for top, dirs, names in os.walk(d):
        for n in names:
            with open(os.path.join(top, n), "rb") as f:
                while True:
                    b = f.read(1 << 16)
                    if not b:
                        break
                    size += len(b)
            files += 1
    last = None
    logp = os.path.join(d, "log")
    if os.path.exists(logp):
        with open(logp) as f:
            for n, line in enumerate(f):
                parts = line.rstrip("\n").split(" ")
                if not line.endswith("\n") or len(parts) != 5:
                    sys.exit("WRONG: log line %d is torn: %r" % (n + 1, line[:80]))
                run, i = int(parts[0]), int(parts[1])
                if line != record(run, i):
                    sys.exit("WRONG: log line %d (record %d %d) does not check" % (n + 1, run, i))
                print("have %d %d" % (run, i))
                last = (run, i)
    statep = os.path.join(d, "state")
    if os.path.exists(statep):
        with open(statep) as f:
            s = f.read()
        got = tuple(int(x) for x in s.split()) if s.strip() else None
        if got != last:
            sys.exit("WRONG: state says %r, the log's last record is %r (not one commit)" % (got, last))
    elif last is not None:
        sys.exit("WRONG: a log without state")
    print("verified %d files, %d bytes" % (files, size))


def hold(d, go):
    import errno
    import time
    fd = os.open(os.path.join(d, "held"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"never committed\n")
    print("written", flush=True)
    while not os.path.exists(go):
        time.sleep(0.02)
    try:
        os.fsync(fd)
        print("fsync ok", flush=True)
    except OSError as e:
        print("fsync failed: " + errno.errorcode.get(e.errno, str(e.errno)), flush=True)


if sys.argv[1] == "write":
    write(sys.argv[2], sys.argv[3])
elif sys.argv[1] == "hold":
    hold(sys.argv[2], sys.argv[3])
elif sys.argv[1] == "read":
    read(sys.argv[2])
elif sys.argv[1] == "payload":
    print(record(int(sys.argv[2]), int(sys.argv[3])).split(" ")[3])
else:
    sys.exit("volume_crash.py: write DIR CTL | hold DIR GO | read DIR | payload RUN I")
