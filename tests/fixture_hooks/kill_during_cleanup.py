"""Loaded through RUNNER_JOBS by users-cleanup's crash tests: sends KILL_SIGNAL (SIGKILL unless told,
SIGSTOP to pause) to the runner at one step of a user's action, the KILL_AFTER-th time it gets there:

- `planned`: the ledger row is committed `planned`, the user not yet re-read;
- `sent`: the row is committed `sent` (and a deleted user's copy synced), the write not yet sent;
- `write`: Auth0 answered the write, the row not yet committed `done`;
- `done`: the row is committed `done`.
"""

import os
import signal

from batchrunner.cleanup import apply, ledger

STEP = os.environ.get("KILL_AT", "")
AFTER = int(os.environ.get("KILL_AFTER", "1"))
SIGNAL = getattr(signal, os.environ.get("KILL_SIGNAL", "SIGKILL"))
_seen = {"planned": 0, "sent": 0, "write": 0, "done": 0}

_plan, _mark_sent, _finish, _send = ledger.plan, ledger.mark_sent, ledger.finish, apply.send


def _reached(step: str) -> None:
    _seen[step] += 1
    if step == STEP and _seen[step] == AFTER:
        os.kill(os.getpid(), SIGNAL)


def plan(*args, **kwargs):
    row = _plan(*args, **kwargs)
    _reached("planned")
    return row


def mark_sent(*args, **kwargs):
    _mark_sent(*args, **kwargs)
    _reached("sent")


def send(*args, **kwargs):
    _send(*args, **kwargs)
    _reached("write")


def finish(db, row, state, *args, **kwargs):
    _finish(db, row, state, *args, **kwargs)
    if state == ledger.DONE:
        _reached("done")


ledger.plan, ledger.mark_sent, ledger.finish, apply.send = plan, mark_sent, finish, send
