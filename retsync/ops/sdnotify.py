"""Telling systemd how the daemon is: `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1` over `$NOTIFY_SOCKET`.

The protocol is one datagram of `KEY=value` lines to a UNIX socket (sd_notify(3)); the standard library's socket
does it, so there is no dependency for it. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing, so
`retsync run` in a shell or under another supervisor behaves as before.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class SystemdNotifier:
    """The daemon's line to systemd; a send that fails is logged once and never stops the daemon."""

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):  # an abstract socket (systemd's own, in containers)
            address = "\0" + address[1:]
        self.address = address
        self.watchdog_seconds = _watchdog_seconds(env, os.getpid() if pid is None else pid)
        self._complained = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> bool:
        """Send `KEY=value` lines (`ready="1"` is READY=1); False when there is no systemd to tell or it failed."""
        if self.address is None:
            return False
        message = "\n".join(f"{key.upper()}={_one_line(value)}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError as exc:
            if not self._complained:
                log.warning("systemd_notify_failed", error=f"{type(exc).__name__}: {exc.strerror or exc}")
                self._complained = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(ready="1", status=status)

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def watchdog(self, status: str | None = None) -> bool:
        return self.notify(watchdog="1", **({"status": status} if status is not None else {}))

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(stopping="1", status=status)


def _one_line(value: str) -> str:
    """A value ends at the line's end in the protocol: a line break in channel text must not add a key."""
    return " ".join(str(value).split())


def _watchdog_seconds(env: Mapping[str, str], pid: int) -> float | None:
    """How often systemd wants WATCHDOG=1 (`WatchdogSec=`), or None when it watches no one, or someone else.

    systemd sets `WATCHDOG_PID` to the process it watches; a child started from the daemon inherits the variables
    and must not pet the parent's watchdog (sd_watchdog_enabled(3)).
    """
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    watched = env.get("WATCHDOG_PID")
    if watched and watched.isdigit() and int(watched) != pid:
        return None
    return usec / 1_000_000
