"""Start-up without the cyclic garbage collector's full passes (README, "Development").

A command imports SQLAlchemy, requests and the runner: some 300,000 objects, none of them garbage.
While they are created the collector runs its oldest generation several times over all of them,
which cost 40 to 50 ms of `run-job`'s start (15 % of the bare imports it is measured against). So
`main` holds the collector off, and a command lets it go once its imports are done: the objects
made so far are frozen (module contents, which live as long as the process and need no
collecting), and later passes look only at what the command makes from then on, less often than
CPython's default (YOUNG_THRESHOLD).
"""

from __future__ import annotations

import gc

_held = False
# Allocations between passes over the youngest generation (CPython's default is 700). An export
# page decodes to some 2,000 containers, none of them cyclic garbage: at 700 a 5,000-application
# export ran 50 passes, and their promotions brought the older generations' passes on, a seventh of
# the run's CPU (a sixth of `serve`'s with 8 runs at once; README, "Development"). At 10,000 it runs
# 3, and what a pass finds is freed a few pages later at most.
YOUNG_THRESHOLD = 10_000


def hold_collector() -> None:
    """Called first thing in a process: no collection passes until `imports_done`."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def imports_done() -> None:
    """The command's modules are imported: freeze what exists and collect as usual from here (once)."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        gc.enable()
