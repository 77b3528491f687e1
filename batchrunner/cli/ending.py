"""Ending a command's process without the interpreter's teardown (README, "Development").

When a command is done its output is flushed, its run recorded and every file it wrote synced and
renamed: nothing is left that the interpreter's normal exit would finish. That exit still tears
down every module one by one (some 550 of them: SQLAlchemy, requests and the runner), which took
0.15 to 0.25 s after the last answer of an export, more than the whole rest of its tail. So a
command ends here: atexit handlers run (logging flushes), databases close (SQLite checkpoints its
WAL into the file), stdout and stderr are flushed, then `os._exit`. A thread that is no daemon (a
job of RUNNER_JOBS may start one) is waited for as usual: then the normal exit runs instead.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def end_process(code) -> NoReturn:
    """Exit with `code` (as sys.exit takes it) at once, the command being done."""
    if _others_running():
        sys.exit(code)
    status = _status(code)
    atexit._run_exitfuncs()  # what the normal exit would run first (logging.shutdown flushes the log)
    from batchrunner.store.database import close_all

    close_all()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`runner ... | head`) or stream: nothing more to say
            pass
    os._exit(status)


def _others_running() -> bool:
    main = threading.main_thread()
    return any(thread is not main and not thread.daemon and thread.is_alive() for thread in threading.enumerate())


def _status(code) -> int:
    """The exit status sys.exit(code) gives: None is 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
