"""Start-up without the cyclic garbage collector's full passes (README, "Development").

A command imports SQLAlchemy, requests and the runner: some 300,000 objects, none of them garbage.
While they are created the collector runs its oldest generation several times over all of them,
which cost 40 to 50 ms of `run-job`'s start (15 % of the bare imports it is measured against). So
`main` holds the collector off, and a command lets it go once its imports are done: the objects
made so far are frozen (module contents, which live as long as the process and need no
collecting), and later passes look only at what the command makes from then on.
"""

from __future__ import annotations

import gc

_held = False


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
        gc.enable()
