"""Shared pieces of the reliability suite: the soak factor, socket and thread accounting, call recording."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from safe_bedrock import CallDetails

# `make soak` sets SAFE_BEDROCK_SOAK=10: every count in this suite is multiplied by it (load, ids, fuzz).
SOAK_VAR = "SAFE_BEDROCK_SOAK"


def soak_factor() -> int:
    raw = os.environ.get(SOAK_VAR, "1").strip() or "1"
    try:
        factor = int(raw)
    except ValueError:
        raise ValueError(f"{SOAK_VAR} must be a whole number >= 1, got {raw!r}") from None
    if factor < 1:
        raise ValueError(f"{SOAK_VAR} must be a whole number >= 1, got {raw!r}")
    return factor


def scaled(default: int, *, full: int | None = None) -> int:
    """`default` in the everyday run; multiplied by the soak factor, capped at `full` when given."""
    count = default * soak_factor()
    return count if full is None else min(count, max(default, full))


_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_ESTABLISHED = "01"


def can_count_connections() -> bool:
    return _TCP_TABLES[0].is_file()


def established_to(port: int) -> int:
    """Client-side TCP connections to `port` that are ESTABLISHED now (read from the kernel's table).

    The table lists every socket of this network namespace; the client side of a connection to the fake
    server is the row whose *remote* port is the server's port. Closed, reset and half-closed connections
    are in other states and not counted, so this is exactly what a connection pool holds open.
    """
    count = 0
    for table in _TCP_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == _ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def foreign_threads(baseline: set[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not in `baseline`, other than the fake server's own."""
    return [
        thread
        for thread in threading.enumerate()
        if thread not in baseline and thread.is_alive() and not thread.name.startswith("fake-bedrock-")
    ]


def wait_for(predicate: object, *, timeout: float = 3.0, interval: float = 0.01) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds passed; returns its last value."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


class Recorder:
    """A call hook keeping every CallDetails it receives; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[CallDetails] = []

    def __call__(self, details: CallDetails, /) -> None:
        with self._lock:
            self.calls.append(details)

    def snapshot(self) -> list[CallDetails]:
        with self._lock:
            return list(self.calls)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
