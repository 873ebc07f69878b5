"""Files with a lifetime: what a job leaves in a data folder, how long each kind is kept, and `du` by kind.

A service data folder holds (docs/deploy.md, "Disk"):

    jobs.sqlite         the queue                                   kept
    jobs/<id>/          the record: executed notebook, logs         deleted with the deliverables
    outputs/<id>/       deliverables: video, preview, thumbnail,    kept `keep_days` after the job finished
                        keyframes/ (the phone's keyframe photos)
    outputs/<id>/head/  the head's downloaded copies (scratch)      deleted when the job ends
    heads/<id>/         the job's head ComfyUI: its cached segment  kept while the job may resume, deleted when it
                        results and its local workers' folders      ends (succeeded, failed or canceled)
    uploads/            photos sent for image-to-video              a refused one at once; a job's with its record;
                                                                    one no job names after `upload_grace_minutes`

The sweep is a pure function of the folder, the jobs' finish times and a clock, so a test drives it with a fake one.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vidfarm.errors import ConfigError

KINDS = ("deliverables", "records", "head scratch", "worker outputs", "uploads", "database", "other")
SCRATCH_IN_OUTPUTS = ("head", "vr")  # PromptRun download folders: their files were moved out or are copies
WORKERS_DIR = "vidfarm_workers"  # where a head's local workers keep their folders (scheduler_nodes._local_workers)


@dataclass(frozen=True)
class Policy:
    keep_days: float = 14.0  # a finished job's deliverables and record
    upload_grace_minutes: float = 60.0  # an upload no job names (a crash between saving and submitting)


@dataclass(frozen=True)
class JobLife:
    id: str
    finished: float | None  # None: queued or running, so its files (and cached segments) are still needed
    image: str = ""
    last_image: str = ""  # an album's second photo (the clip's last frame): the same lifetime as `image`


@dataclass
class Swept:
    removed: list[Path] = field(default_factory=list)
    freed_bytes: int = 0

    def add(self, path: Path) -> None:
        if path.exists() or path.is_symlink():
            self.freed_bytes += size_of(path)
            _remove(path)
            self.removed.append(path)


def job_scratch(root: Path, job_id: str) -> list[Path]:
    """What a job needs only while it runs or may resume: its head's folder and the head's downloads."""
    return [root / "heads" / job_id, *(root / "outputs" / job_id / sub for sub in SCRATCH_IN_OUTPUTS)]


def job_files(root: Path, job_id: str) -> list[Path]:
    return [root / "jobs" / job_id, root / "outputs" / job_id, root / "heads" / job_id]


def clean_job_end(root: Path, job_id: str, *, delivered: bool) -> Swept:
    """At a job's end: its scratch goes; a job that delivered nothing (failed, canceled) loses its outputs too."""
    swept = Swept()
    for path in job_scratch(root, job_id) if delivered else [*job_scratch(root, job_id), root / "outputs" / job_id]:
        swept.add(path)
    return swept


def sweep(root: Path, jobs: Iterable[JobLife], policy: Policy, *, now: float | None = None) -> Swept:
    """Delete what the policy says has lived long enough. `jobs` is every job the queue knows."""
    now = time.time() if now is None else now
    expiry = now - policy.keep_days * 86400
    known = {job.id: job for job in jobs}
    swept = Swept()
    kept_images = _sweep_jobs(root, known.values(), expiry, swept)
    for kind in ("jobs", "outputs", "heads"):  # folders of jobs the queue does not know: by age
        for folder in _children(root / kind):
            if folder.name not in known and _mtime(folder) < expiry:
                swept.add(folder)
    upload_expiry = now - policy.upload_grace_minutes * 60
    for upload in _children(root / "uploads"):
        if upload.resolve() not in kept_images and _mtime(upload) < upload_expiry:
            swept.add(upload)
    return swept


def _sweep_jobs(root: Path, jobs: Iterable[JobLife], expiry: float, swept: Swept) -> set[Path]:
    """Expired jobs lose everything; ended ones their scratch (should a crash at the end have left it). Returns
    the uploads still in use."""
    kept_images: set[Path] = set()
    for job in jobs:
        expired = job.finished is not None and job.finished < expiry
        paths = job_files(root, job.id) if expired else job_scratch(root, job.id) if job.finished is not None else []
        for path in paths:
            swept.add(path)
        for image in filter(None, (job.image, job.last_image)):
            if expired:
                swept.add(Path(image))
            else:
                kept_images.add(Path(image).resolve())
    return kept_images


def usage(root: Path) -> dict[str, int]:
    """Bytes under `root` by kind (KINDS), for `vidfarm du` and the service's admin report."""
    found = dict.fromkeys(KINDS, 0)
    for child in _children(root):
        if child.name == "outputs":
            for job in _children(child):
                for part in _children(job):
                    found["head scratch" if part.name in SCRATCH_IN_OUTPUTS else "deliverables"] += size_of(part)
        elif child.name == "heads":
            for head in _children(child):
                workers = size_of(head / WORKERS_DIR)
                found["worker outputs"] += workers
                found["head scratch"] += size_of(head) - workers
        elif child.name in ("jobs", "uploads"):
            found["records" if child.name == "jobs" else "uploads"] += size_of(child)
        elif child.name.startswith("jobs.sqlite"):
            found["database"] += size_of(child)
        else:
            found["other"] += size_of(child)
    return found


def size_of(path: Path) -> int:
    """Bytes on disk of a file or a folder tree (links not followed)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_blocks * 512
    except OSError:
        return 0
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in [*files, *dirs]:
            try:
                stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += stat.st_blocks * 512
    return total


def unique_dir(parent: Path, stem: str) -> Path:
    """A new folder `parent/stem-YYYYmmdd-HHMMSS[-n]`: a run never overwrites an earlier run's outputs."""
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        candidate = parent / (base if n == 0 else f"{base}-{n}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise ConfigError(f"no free folder name for {base} in {parent}: delete old runs there (vidfarm du shows them)")


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # custom_nodes/ links: rmtree removes the link, not the pack
    else:
        path.unlink(missing_ok=True)
