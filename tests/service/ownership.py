"""What a test asks of a job's processes: which are alive, found two independent ways - the job's tag in their
environment (what the service itself uses) and the job's id in their command line (heads, workers, papermill)."""

from __future__ import annotations

from pathlib import Path

from vidfarm_service import processes


def job_processes(data_dir: Path, job_id: str) -> dict[int, str]:
    """Live processes of the job: tagged with it, or naming its id in their command line."""
    found: dict[int, str] = {}
    for pid in processes.tagged(processes.owner_tag(data_dir, job_id)):
        found[pid] = _cmdline(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and job_id in _cmdline(int(entry.name)) and processes.alive(int(entry.name)):
            found[int(entry.name)] = _cmdline(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return ""
