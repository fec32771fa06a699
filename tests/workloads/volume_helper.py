"""volume_helper.py: imported by volume_app.py from the same encrypted code
volume (so the import machinery lists and reads the volume's directory).
payload() is the file volume_app.py writes into the data volume; the test
computes its SHA-256 natively from this same module."""
import random

NAME = "volume_helper"
MARKER = b"ARCA-PLAINTEXT-MARKER-"


def payload():
    """1 MiB and a bit of fixed pseudo-random bytes behind a text marker."""
    return MARKER + random.Random(20240601).randbytes((1 << 20) + 1234)
