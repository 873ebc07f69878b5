"""A long video from a plan: keyframe and segment tasks for the dispatcher, then the join and the phone files.

Used by the head's scheduler and join nodes; plain Python, so it is tested without ComfyUI in the loop too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfarm.comfy import Progress
from vidfarm.media.checks import probe
from vidfarm.media.join import join_segments, make_preview, make_thumbnail
from vidfarm.render.continuity import measure
from vidfarm.render.dispatch import Dispatcher, Task, TaskResult
from vidfarm.render.plan import Keyframe, Plan, SegmentSpec
from vidfarm.workflow.recipe import Recipe

KEYFRAME_UNITS = 0.25  # a keyframe is one image: a small share of a segment's work


def build_tasks(
    plan: Plan,
    recipe: Recipe,
    *,
    seed: int,
    photo: bool,
    last_photo: bool = False,
    render_height: int = 0,
    color_match: float = 1.0,
) -> list[Task]:
    """Keyframe 0, the keyframes derived from it, then segment tasks wired to their keyframes (or, in a chain, to
    the previous segment) and to the colour reference (`color_reference`). The photos (`photo`: keyframe 0,
    `last_photo`: keyframe N) are not rendered: they are the given results "photo" and "photo-last"."""
    recipe.check(plan)
    size = recipe.gen_size(plan.width, plan.height, render_height=render_height)
    given = _given_keys(plan, photo, last_photo)
    keys = [_keyframe_task(key, recipe, seed, size, given) for key in plan.keyframes if key.index not in given]
    segments = [_segment_task(plan, s, recipe, seed, size, given, color_match) for s in plan.segments]
    return keys + segments


def _given_keys(plan: Plan, photo: bool, last_photo: bool) -> dict[int, str]:
    """Keyframe index -> the given result that is that keyframe (the user's photos), for the keys not rendered."""
    given = {0: "photo"} if photo and plan.keyframes[0].source == "image" else {}
    last = plan.keyframes[-1]
    if last_photo and last.source == "last_image":
        given[last.index] = "photo-last"
    return given


def _keyframe_task(key: Keyframe, recipe: Recipe, seed: int, size: tuple[int, int], given: dict[int, str]) -> Task:
    values = {"prompt": key.prompt, "seed": seed + key.index, "width": size[0], "height": size[1]}
    if key.from_key0 and "keyframe_edit" in recipe.workflows:  # without one (wan22_5b): an independent render
        return Task(f"key-{key.index}", recipe.workflow_for("keyframe_edit"), values,
                    {"image": (_key_task(0, given), "image")}, KEYFRAME_UNITS)  # fmt: skip
    return Task(f"key-{key.index}", recipe.workflow_for("keyframe"), values, {}, KEYFRAME_UNITS)


def color_reference(plan: Plan, segment: SegmentSpec) -> int:
    """The keyframe a segment's colours are held to: keyframe 0 (one world), or for shots the shot's own keyframe
    (a cut may change the light on purpose; its own keyframe still stops the burn-out)."""
    return (segment.start_key or 0) if plan.strategy == "shots" else 0


def _segment_task(
    plan: Plan,
    segment: SegmentSpec,
    recipe: Recipe,
    seed: int,
    size: tuple[int, int],
    given: dict[int, str],
    color_match: float,
) -> Task:
    # A segment that ends on the user's last photo is not held to keyframe 0's colours: that would repaint the
    # last photo, which the person chose as the clip's end (decision 0140).
    ends_on_photo = segment.end_key is not None and given.get(segment.end_key) == "photo-last"
    values = {
        "prompt": segment.prompt,
        "seed": seed + 1000 + segment.index,
        "width": size[0],
        "height": size[1],
        "frames": segment.render_frames,
        "fps": float(plan.fps),
        "drop_first": segment.drop_first,
        "keep": segment.keep,
        "out_width": plan.width,
        "out_height": plan.height,
        "color_match": 0.0 if ends_on_photo else color_match,
    }
    inputs: dict[str, tuple[str, str]]
    if segment.kind == "flf":
        inputs = {
            "start_image": (_key_task(segment.start_key, given), "image"),
            "end_image": (_key_task(segment.end_key, given), "image"),
        }
    elif segment.after is not None:
        inputs = {"image": (f"seg-{segment.after}", "last_frame")}
    else:
        inputs = {"image": (_key_task(segment.start_key, given), "image")}
    inputs["reference"] = (_key_task(color_reference(plan, segment), given), "image")
    units = segment.keep / max(1, plan.segments[0].keep)
    return Task(f"seg-{segment.index}", recipe.workflow_for(segment.kind), values, inputs, units)


def _key_task(index: int | None, given: dict[int, str]) -> str:
    return given.get(index, f"key-{index}") if index is not None else f"key-{index}"


@dataclass(frozen=True)
class JobFiles:
    video: Path
    preview: Path
    thumbnail: Path
    report: Path


@dataclass(frozen=True)
class Rendered:
    segments: list[Path]  # in order
    keyframes: list[Path]  # keyframes[0] is the colour anchor (the photo, or key 0)


def render_segments(
    dispatcher: Dispatcher,
    plan: Plan,
    recipe: Recipe,
    *,
    seed: int,
    photo: Path | None,
    last_photo: Path | None = None,
    render_height: int = 0,
    color_match: float = 1.0,
) -> Rendered:
    given = {"photo": TaskResult({"image": photo}, reused=True)} if photo else {}
    if last_photo:
        given["photo-last"] = TaskResult({"image": last_photo}, reused=True)
    tasks = build_tasks(
        plan, recipe, seed=seed, photo=photo is not None, last_photo=last_photo is not None,
        render_height=render_height, color_match=color_match,
    )  # fmt: skip
    results = dispatcher.run(tasks, given)
    keys_given = _given_keys(plan, photo is not None, last_photo is not None)
    keys = [results[_key_task(k.index, keys_given)].files["image"] for k in plan.keyframes]
    return Rendered([results[f"seg-{s.index}"].files["video"] for s in plan.segments], keys)


def finish_job(
    segments: list[Path],
    out_dir: Path,
    *,
    report: dict[str, Any],
    crossfade_frames: int = 0,
    keyframes: list[Path] | None = None,
) -> JobFiles:
    """Join (stream copy when the segments match), then the preview, the thumbnail and the report (with the
    continuity figures when the keyframes are given; keyframes[0] is the anchor)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if keyframes:
        report["continuity"] = measure(segments, keyframes)
    video = out_dir / "video.mp4"
    report["join"] = join_segments(segments, video, crossfade_frames=crossfade_frames)
    info = probe(video)
    preview, thumbnail = out_dir / "preview.mp4", out_dir / "thumbnail.jpg"
    make_preview(video, preview, duration=info.duration)
    make_thumbnail(video, thumbnail)
    report.update(
        {
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "frames": info.frames,
            "duration": info.duration,
            "size_bytes": info.size_bytes,
            "preview_bytes": preview.stat().st_size,
        }
    )
    report_path = out_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=1, default=str))
    return JobFiles(video, preview, thumbnail, report_path)


def dispatch_report(dispatcher: Dispatcher) -> dict[str, Any]:
    return {
        "workers": {
            name: {
                "busy_seconds": round(s.busy_seconds, 2),
                "tasks": s.tasks,
                "failures": s.failures,
                "retired": s.retired,
                "rejoined": s.rejoined,
            }
            for name, s in dispatcher.stats.items()
        },
        "tasks": {
            tid: {"worker": r.worker, "seconds": round(r.seconds, 2), "attempts": r.attempts, "reused": r.reused}
            for tid, r in dispatcher.results.items()
        },
    }


SCHEDULER_NODE = "VidfarmSegmentScheduler"


def head_fraction(progress: Progress) -> float:
    """Whole-job progress of a head prompt: the scheduler's steps are nearly all of the work."""
    if progress.stage == "finished":
        return 1.0
    if progress.node_class == SCHEDULER_NODE and progress.steps:
        return 0.05 + 0.85 * progress.step / progress.steps
    if progress.node_class == "VidfarmJoin":
        return 0.92
    return 0.05 * progress.fraction
