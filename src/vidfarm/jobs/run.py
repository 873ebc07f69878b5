"""One long-video job end to end: a checked JobSpec in, a JobSummary out.

The pipeline notebook calls this (and so the service, batch runs and the demo, which all run the notebook); the
head ComfyUI's nodes plan, dispatch to the workers and join. A head started here is this job's own and is stopped
when the job ends, however it ends.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.comfy import ComfyClient, Progress, PromptRun
from vidfarm.comfy.local import REPO, heads_dir
from vidfarm.errors import OutputInvalid
from vidfarm.jobs.notebook import connect
from vidfarm.jobs.progress_log import ProgressLog
from vidfarm.jobs.spec import WORKFLOWS, JobSpec, check_job_id
from vidfarm.jobs.thumbnails import KeyframeThumbnails
from vidfarm.media.checks import MediaInfo
from vidfarm.render.long_video import head_fraction
from vidfarm.workflow.declaration import find_declaration

VR_SHARE = 0.95  # with a VR copy, the head's render is the first 95 % of the bar
PHOTOS = ("image", "last_image")  # spec fields that are files on this machine: uploaded to the head, then named


def head_workflow(spec: JobSpec) -> str:
    """The head graph a job needs: text only, a first photo, or first and last photos (decision 0140)."""
    return "long_video_flf" if spec.last_image else "long_video_i2v" if spec.image else "long_video"


@dataclass
class JobSummary:
    """What a finished job made and what it took; written as summary.json beside the video."""

    job_id: str
    prompt: str
    video: str
    preview: str
    thumbnail: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    seconds_taken: float
    segments: int
    workers: dict[str, float]  # worker -> busy seconds
    reused_tasks: int
    report: dict[str, Any] = field(repr=False)
    vr_video: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobPlace:
    """Where a job runs: its head (empty = start one here) and its folder."""

    out_dir: Path = REPO / "outputs" / "jobs"
    head_url: str = ""
    head_token: str = field(default="", repr=False)
    heads_dir: Path = field(default_factory=heads_dir)  # VIDFARM_HEADS_DIR: the service points it at its data


def run_job(
    spec: JobSpec,
    *,
    job_id: str = "",
    place: JobPlace | None = None,
    log: ProgressLog | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    workflows_dir: Path = WORKFLOWS,
) -> JobSummary:
    """Render `spec` on the head (and its workers) and return what was made; raises the head's error otherwise."""
    place = place or JobPlace()
    job_id = check_job_id(job_id or spec.content_id())
    log = log or ProgressLog("")
    started = time.monotonic()
    job_dir = Path(place.out_dir).resolve() / job_id
    log.write("starting", 0.0, "connecting to the head")
    client, local_head = connect(
        place.head_url, place.head_token, base_dir=None if place.head_url else place.heads_dir / job_id
    )
    try:
        outputs, info = _render(spec, job_id, client, job_dir, log, on_progress, workflows_dir)
        vr_video = _vr_copy(spec, job_id, client, outputs["video.mp4"], job_dir, log, workflows_dir)
    finally:
        if local_head:
            local_head.stop()
    summary = _summary(spec, job_id, outputs, info, started, vr_video)
    (job_dir / "summary.json").write_text(json.dumps(summary.to_json(), indent=1, ensure_ascii=False))
    log.write("finished", 1.0, summary.video)
    return summary


def head_values(spec: JobSpec, job_id: str, parameters: set[str]) -> dict[str, Any]:
    """The head workflow's inputs: the spec's fields it declares (the photos are uploaded apart), and the job id."""
    values = {k: v for k, v in spec.values().items() if k in parameters and k not in PHOTOS}
    return {**values, "job_id": job_id}


def _render(
    spec: JobSpec,
    job_id: str,
    client: ComfyClient,
    job_dir: Path,
    log: ProgressLog,
    on_progress: Callable[[Progress], None] | None,
    workflows_dir: Path,
) -> tuple[dict[str, Path], MediaInfo]:
    declaration = find_declaration(workflows_dir, head_workflow(spec))
    values = head_values(spec, job_id, set(declaration.parameters))
    for name in PHOTOS:  # each in its own folder: uploads overwrite, and two photos may share a file name
        if getattr(spec, name):
            folder = f"vidfarm/{job_id}" if name == "image" else f"vidfarm/{job_id}/{name}"
            values[name] = client.upload_image(getattr(spec, name), subfolder=folder)
    share = VR_SHARE if spec.vr else 1.0
    thumbnails = KeyframeThumbnails(client, job_dir / "keyframes")
    logged: list[str] = []

    def progress(p: Progress) -> None:
        if on_progress:
            on_progress(p)
        detail = (p.node_class or "") + (
            f" {_counted(p.tasks)}" if p.tasks else f" {p.step}/{p.steps}" if p.steps else ""
        )
        made = thumbnails.update(p.keyframes)
        news = made if made != logged else None  # the list when it grows, not on every progress line
        logged[:] = made
        log.write(p.stage, head_fraction(p) * share, detail, news)

    run = PromptRun(
        client, declaration.fill(declaration.graph(), values), dest_dir=job_dir / "head", on_progress=progress
    )
    try:
        result = run.wait()
    except KeyboardInterrupt:  # the kernel's interrupt: the head cancels its scheduler, which cancels every worker
        run.cancel()
        raise
    files = {o.path.name: o.path for o in result.outputs}
    info = next(o.info for o in result.outputs if o.path.name == "video.mp4") if "video.mp4" in files else None
    missing = {"video.mp4", "preview.mp4", "thumbnail.jpg", "report.json"} - set(files)
    if missing or info is None:
        raise OutputInvalid(f"the head finished without {', '.join(sorted(missing))}; its log says why")
    outputs = {}
    for name, path in files.items():  # one copy each, in the job's folder
        outputs[name] = job_dir / name
        shutil.move(path, outputs[name])
    shutil.rmtree(job_dir / "head", ignore_errors=True)
    shutil.rmtree(job_dir / "keyframes" / ".download", ignore_errors=True)
    return outputs, info


def _counted(tasks: dict[str, tuple[int, int]]) -> str:
    """`keyframes 3/7` while keyframes render, then `segments 4/6`: what a person reads on the phone."""
    done, total = tasks.get("keyframes", (0, 0))
    if done < total:
        return f"keyframes {done}/{total}"
    done, total = tasks.get("segments", (0, 0))
    return f"segments {done}/{total}"


def _vr_copy(
    spec: JobSpec, job_id: str, client: ComfyClient, joined: Path, job_dir: Path, log: ProgressLog, workflows_dir: Path
) -> str:
    if not spec.vr:
        return ""
    log.write("vr", VR_SHARE + 0.01, spec.vr)
    workflow = find_declaration(workflows_dir, spec.vr)
    graph = workflow.fill(workflow.graph(), {"video": client.upload_video(joined, subfolder=f"vidfarm/{job_id}")})
    result = PromptRun(client, graph, dest_dir=job_dir / "vr").wait()
    made = result.first("video").path
    final = job_dir / made.name
    shutil.move(made, final)
    shutil.rmtree(job_dir / "vr", ignore_errors=True)
    return str(final)


def _summary(
    spec: JobSpec, job_id: str, outputs: dict[str, Path], info: MediaInfo, started: float, vr_video: str
) -> JobSummary:
    report = json.loads(outputs["report.json"].read_text())
    return JobSummary(
        job_id=job_id,
        prompt=spec.prompt,
        video=str(outputs["video.mp4"]),
        preview=str(outputs["preview.mp4"]),
        thumbnail=str(outputs["thumbnail.jpg"]),
        width=info.width,
        height=info.height,
        fps=info.fps,
        frames=info.frames,
        duration=info.duration,
        seconds_taken=round(time.monotonic() - started, 2),
        segments=len(report["plan"]["segments"]),
        workers={w: s["busy_seconds"] for w, s in report["workers"].items()},
        reused_tasks=sum(1 for t in report["tasks"].values() if t["reused"]),
        report=report,
        vr_video=vr_video,
    )
