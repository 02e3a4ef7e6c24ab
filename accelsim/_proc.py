"""Process identity and liveness on this machine (used to reclaim the leftovers of killed processes).

A process is named by ``(boot id, pid, start time)``: the boot id tells whether the name was made
on this machine since its last boot, the start time (clock ticks since boot, ``/proc/<pid>/stat``
field 22) tells a live process from a later one that reuses the pid. Assumptions: Linux ``/proc``
gives all three exactly; elsewhere the boot id is the host name and the start time is unknown
(0), so a reused pid counts as alive (the safe side: a leftover is kept, never taken from a live
owner). A zombie (killed, not yet reaped) counts as dead.
"""
from __future__ import annotations

import os
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def boot_id() -> str:
    """This machine's boot id (Linux), else its host name; 12 characters at most."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip().replace("-", "")[:12]
    except OSError:
        return "".join(ch for ch in socket.gethostname() if ch.isalnum())[:12] or "host"


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if no such process (or it is a zombie);
    0 when the platform does not say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return None
    except OSError:
        return 0 if _exists(pid) else None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
    if not fields or fields[0] in ("Z", "X"):
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def identity(pid: int | None = None) -> str:
    """``"<boot id>:<pid>:<start time>"`` of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return f"{boot_id()}:{pid}:{start_time(pid) or 0}"


def is_alive(ident: str) -> bool | None:
    """Whether the process named by :func:`identity` still runs: True/False on this machine, None when
    it was named on another machine (or another boot), where this process cannot tell."""
    try:
        boot, pid_s, start_s = ident.split(":")
        pid, start = int(pid_s), int(start_s)
    except ValueError:
        return None
    if boot != boot_id():
        return None
    now = start_time(pid) if pid > 0 else None
    if now is None:
        return False
    return not (start and now and now != start)
