"""Who this process is (host, node and pid), and whether another process on this node is still alive.

Run records and token leases carry them so that a dead holder is recognised at once on its own
node, and after a bounded time from anywhere else. The host name is for people; the node says
where a pid means something: the same boot of the same kernel and the same pid namespace. Two
containers that share a host name but not their pids are different nodes, and a machine after a
reboot is a new one.
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


def is_alive(node: str | None, pid_: int) -> bool:
    """False only when `pid_` is certainly gone; a process on another node is presumed alive."""
    if node != NODE:
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
