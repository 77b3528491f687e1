"""Loaded through RUNNER_JOBS by the log archive's stale-run test: the runner stops itself (SIGSTOP)
once its first file is published and before it starts the next, as a process paused by a VM freeze
or a debugger would, and goes on where it was once the test sends SIGCONT."""

import os
import signal

from batchrunner.outputs import archive

_start = archive._Writer._start
_files = []


def start(self, first):
    _files.append(first)
    if len(_files) == 2:
        os.kill(os.getpid(), signal.SIGSTOP)
    return _start(self, first)


archive._Writer._start = start
