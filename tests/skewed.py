"""The runner in a process whose clock is off, as on a host whose clock runs ahead (tests only).

    python tests/skewed.py SECONDS [--other-node] ARGS...

The shift goes in at the one place the runner reads the wall clock (batchrunner/clock.py), before
anything else of the runner is imported. With --other-node the process also takes another node's
identity, as a process on another host would: its pids mean nothing here, and it means nothing
to the pids here.
"""

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchrunner import clock, process  # noqa: E402

skew = timedelta(seconds=float(sys.argv[1]))
wall = clock.utcnow
clock.utcnow = lambda: wall() + skew
args = sys.argv[2:]
if args[:1] == ["--other-node"]:
    process.NODE = "another-node"
    args = args[1:]

from batchrunner.cli import main as runner  # noqa: E402

sys.argv = ["runner", *args]
runner.main()
