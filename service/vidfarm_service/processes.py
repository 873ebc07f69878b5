"""The operating-system side of a notebook run: find the kernel papermill started, stop both for good.

jupyter_client starts the kernel in a session of its own, so killing papermill's process group never reaches the
kernel (see shared/reference/offline-testing.md): we find it by parent pid and signal it separately.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

OURS = (b"papermill", b"ipykernel", b"ComfyUI", b"main.py", b"vidfarm")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of `pid` (e.g. the head ComfyUI a kernel started), found while they live."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def is_ours(pid: int) -> bool:
    """Alive and started by us (a papermill, a kernel): a recorded pid may have been reused after a reboot."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(word in cmdline for word in OURS)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def interrupt(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGINT)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (each run's papermill and kernel lead their own), else the process."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
