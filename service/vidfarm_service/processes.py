"""The operating-system side of a notebook run: find every process a job started, stop them all for good.

Each layer starts the next in a session of its own (the runner its papermill, jupyter_client the kernel, the kernel
its head ComfyUI, the head its local workers), so no one process group holds a job. What they all share is their
environment: the runner puts `VIDFARM_JOB_OWNER=<data dir>#<job id>` in papermill's, and every descendant inherits it
- and keeps it after its parent dies and it is re-parented to init. `/proc/<pid>/environ` finds them by that tag
while they live, orphans of a crashed service included (decision 0100).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

OURS = (b"papermill", b"ipykernel", b"ComfyUI", b"main.py", b"vidfarm")
OWNER_ENV = "VIDFARM_JOB_OWNER"


def owner_tag(data_dir: Path, job_id: str) -> str:
    """The tag of one job of one service (two services on a machine never touch each other's processes)."""
    return f"{service_tag(data_dir)}{job_id}"


def service_tag(data_dir: Path) -> str:
    return f"{data_dir.resolve()}#"


def tagged(prefix: str) -> list[int]:
    """Live processes whose VIDFARM_JOB_OWNER starts with `prefix` (one job's tag, or a service's)."""
    needle = f"{OWNER_ENV}={prefix}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if any(item.startswith(needle) for item in environ.split(b"\0")) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


async def stop_tagged(prefix: str, *, grace_seconds: float, kill_seconds: float = 5.0) -> list[int]:
    """SIGTERM every process with the tag, SIGKILL what is left after `grace_seconds`; returns those still alive
    after `kill_seconds` more (none, unless the kernel cannot reap them). Bounded: never waits longer than that."""
    for pid in tagged(prefix):
        _signal(pid, signal.SIGTERM)
    if await _wait_until_none(prefix, grace_seconds):
        return []
    for pid in tagged(prefix):
        _signal(pid, signal.SIGKILL)
    await _wait_until_none(prefix, kill_seconds)
    return tagged(prefix)


async def _wait_until_none(prefix: str, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if not tagged(prefix):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


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
    _signal(pid, signal.SIGINT)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (each run's papermill and kernel lead their own), else the process."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _signal(pid, signal.SIGKILL)
