"""`python bench/_peak.py ARGS...` runs `runner ARGS...` as `python runner.py` would, then writes the
process's peak RSS (VmHWM, KiB) to the file named by BENCH_PEAK_FILE.

Why not the parent's wait4: Linux gives a child the peak RSS of the memory it was forked from (a
bench holding a large stand-in tenant), so ru_maxrss reports the parent's size when that is larger.
VmHWM counts only the memory of the program after exec.
"""

import atexit
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _report() -> None:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    Path(os.environ["BENCH_PEAK_FILE"]).write_text(peak)


atexit.register(_report)
sys.argv[0] = str(ROOT / "runner.py")
sys.path[0] = str(ROOT)
runpy.run_path(str(ROOT / "runner.py"), run_name="__main__")
