"""Who this process is (host and pid), and whether another process on this host is still alive.

Run records and token leases carry host and pid so that a dead holder is recognised at once on
its own host, and after a bounded time from any other host.
"""

import os
import socket

HOST = socket.gethostname()


def pid() -> int:
    return os.getpid()  # read each time: a forked child has its own


def is_alive(host: str, pid_: int) -> bool:
    """False only when `pid_` is certainly gone; a process on another host is presumed alive."""
    if host != HOST:
        return True
    try:
        os.kill(pid_, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return not _is_zombie(pid_)


def _is_zombie(pid_: int) -> bool:
    # A killed child that its parent has not reaped yet still answers kill(0).
    try:
        with open(f"/proc/{pid_}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
