"""sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET per state change (sd_notify(3)).

Does nothing when NOTIFY_SOCKET is unset, as when run from a shell.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, env=None):
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" is in the abstract namespace, written with a leading NUL.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_seconds = int(usec) / 1_000_000 if usec.isdigit() and int(usec) > 0 else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> None:
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto("\n".join(lines).encode(), self.address)
            except OSError:
                pass  # the service manager went away; nothing to tell

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self, status: str, extend_seconds: float | None = None) -> None:
        extend = [f"EXTEND_TIMEOUT_USEC={int(extend_seconds * 1_000_000)}"] if extend_seconds else []
        self.send("STOPPING=1", f"STATUS={status}", *extend)

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")
