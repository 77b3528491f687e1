"""Who this process is (host, node, pid and its start time), and whether another on this node is alive.

Run records and token leases carry them so that a dead holder is recognised at once on its own
node, and after a bounded time from anywhere else. The host name is for people; the node says
where a pid means something: the same boot of the same kernel and the same pid namespace. Two
containers that share a host name but not their pids are different nodes, and a machine after a
reboot is a new one. Within a node, a pid and its process's start time name one process: the
kernel reuses pids, never both.
"""

import hashlib
import os
import socket
from pathlib import Path

HOST = socket.gethostname()


def _node() -> str:
    parts = [HOST]
    for source in (lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
                   lambda: str(os.stat("/proc/self/ns/pid").st_ino)):
        try:
            parts.append(source())
        except OSError:
            parts.append("?")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


NODE = _node()


def pid() -> int:
    return os.getpid()  # read each time: a forked child has its own


def started(pid_: int | None = None) -> int | None:
    """When process `pid_` (default: this one) started, in clock ticks after boot; None where unknown."""
    stat = _stat(os.getpid() if pid_ is None else pid_)
    return stat[1] if stat else None


def is_alive(node: str | None, pid_: int, pid_started: int | None = None) -> bool:
    """False only when `pid_` is certainly gone; a process on another node is presumed alive.

    With `pid_started` (recorded with the pid), a live process that started at another time is a
    later one that was given the same pid: the one recorded is gone.
    """
    if node != NODE:
        return True
    try:
        os.kill(pid_, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    stat = _stat(pid_)
    if stat is None:
        return True  # no /proc to ask: the pid answered, so presume it is the one
    state, now_started = stat
    # A killed child that its parent has not reaped yet still answers kill(0).
    return state != b"Z" and (pid_started is None or now_started == pid_started)


def _stat(pid_: int) -> tuple[bytes, int] | None:
    # /proc/PID/stat: the state is field 3, the start time field 22 (proc(5)); the command name
    # (field 2) may hold spaces and parentheses, so count from its closing one.
    try:
        with open(f"/proc/{pid_}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None
