"""Loaded through RUNNER_JOBS by the log archive's crash tests: SIGKILLs the runner at one step of
JobState.publish, the KILL_AFTER-th time it gets there. The steps:

- `intent`: the intent is committed, the file not yet renamed;
- `rename`: the file is in place, the checkpoint not yet committed;
- `commit`: the checkpoint is committed.
"""

import os
import signal

from batchrunner.outputs import job_state as state

STEP = os.environ.get("KILL_AT", "")
AFTER = int(os.environ.get("KILL_AFTER", "1"))
_seen = {"intent": 0, "rename": 0, "commit": 0}


def _reached(step: str) -> None:
    _seen[step] += 1
    if step == STEP and _seen[step] == AFTER:
        os.kill(os.getpid(), signal.SIGKILL)


_intend = state.JobState._intend
_settle = state.JobState._settle
_sync_dir = state.sync_dir


def intend(self, *args):
    published = _intend(self, *args)
    _reached("intent")
    return published


def settle(self, intent):
    _settle(self, intent)
    _reached("commit")


def sync_dir(directory):
    _sync_dir(directory)
    _reached("rename")


state.JobState._intend = intend
state.JobState._settle = settle
state.sync_dir = sync_dir
