"""Segment scheduling inside the engine: plan a long video, render its segments on a pool of workers, join them.

    VidfarmPlan ──► VidfarmSegmentScheduler ──► VidfarmJoin (output: video, phone preview, thumbnail, report)
    VidfarmWorkerPool ─┘   (optional IMAGE: the user's photo = keyframe 0; optional last_image = keyframe N)

The nodes are thin: planning, dispatching and joining live in the vidfarm core (plan, dispatch, long_video).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import comfy.model_management
import comfy.utils
import folder_paths
import numpy as np
import torch
from comfy_api.latest import io
from PIL import Image
from server import PromptServer

from vidfarm.comfy.local import LocalComfy
from vidfarm.comfy.run import TASKS_EVENT
from vidfarm.errors import PlanError
from vidfarm.jobs.options import default_recipe, pipeline_declaration
from vidfarm.jobs.spec import content_id
from vidfarm.render.dispatch import Dispatcher, Worker, task_index
from vidfarm.render.long_video import dispatch_report, finish_job, render_segments
from vidfarm.render.plan import Plan, make_plan, with_last_photo, with_photo
from vidfarm.workflow.declaration import find_declaration
from vidfarm.workflow.recipe import find_recipe, load_recipes

# The checkout's workflows/ (this folder is linked from it), or the copy scripts/install-worker puts beside ComfyUI.
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
RECIPES = WORKFLOWS / "recipes.toml"
PlanType = io.Custom("VIDFARM_PLAN")
PoolType = io.Custom("VIDFARM_POOL")
SegmentsType = io.Custom("VIDFARM_SEGMENTS")


def _declared(name: str) -> dict[str, Any]:
    """An input's default, range and choices from the pipeline's declaration (workflows/long_video.toml): the same
    rules as the notebook, the service and JobSpec, so the editor cannot offer what a job would refuse."""
    parameter = pipeline_declaration(WORKFLOWS).parameters[name]
    if parameter.options:
        return {"options": list(parameter.options), "default": parameter.default}
    assert parameter.minimum is not None and parameter.maximum is not None, f"{name} is declared without a range"
    cast = int if parameter.type == "int" else float
    bounds = {"default": cast(parameter.default), "min": cast(parameter.minimum), "max": cast(parameter.maximum)}
    return {**bounds, "step": int(parameter.step)} if parameter.step else bounds


class VidfarmPlan(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmPlan",
            display_name="Plan a long video",
            category="vidfarm/long video",
            description="Splits a long video into segments of the model's native length, with keyframes.",
            inputs=[
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="a paper boat drifting down a rainy street",
                    tooltip="What the video shows. For strategy 'shots', one shot per line.",
                ),
                io.Float.Input("seconds", **_declared("seconds"), step=0.5, tooltip="Length of the video."),
                io.Int.Input("fps", **_declared("fps"), tooltip="Frames per second of the result."),
                io.Int.Input("width", **_declared("width"), tooltip="Final width in pixels."),
                io.Int.Input("height", **_declared("height"), tooltip="Final height in pixels."),
                io.Combo.Input(
                    "strategy",
                    **_declared("strategy"),
                    tooltip="keyframes: all segments in parallel between keyframes (seamless); "
                    "chain: each segment from the last frame of the one before (serial); "
                    "shots: independent cuts.",
                ),
                io.Combo.Input(
                    "recipe",
                    options=sorted(load_recipes(RECIPES)),
                    default=default_recipe(WORKFLOWS),
                    tooltip="The model family: which workflows render keyframes and segments (workflows/recipes.toml).",
                ),
                io.Int.Input(
                    "render_height",
                    **_declared("render_height"),
                    optional=True,
                    tooltip="Render height of keyframes and segments; 0 = the recipe's native size.",
                ),
                io.Int.Input(
                    "segment_frames",
                    **_declared("segment_frames"),
                    tooltip="Frames per segment (4n+1); 0 = the recipe's native length.",
                ),
                io.Combo.Input(
                    "keyframes",
                    **_declared("keyframes"),
                    optional=True,
                    tooltip="derived: keyframes 1..N are re-rendered from keyframe 0 (one subject, one world); "
                    "independent: each keyframe from the prompt alone (the old way, for comparison).",
                ),
                io.Float.Input(
                    "color_match",
                    **_declared("color_match"),
                    step=0.05,
                    optional=True,
                    tooltip="How strongly every segment's colours are held to keyframe 0 (0 = off).",
                ),
            ],
            outputs=[PlanType.Output("plan", tooltip="The segment plan.")],
        )

    @classmethod
    def execute(
        cls,
        prompt: str,
        seconds: float,
        fps: int,
        width: int,
        height: int,
        strategy: str,
        recipe: str,
        segment_frames: int,
        render_height: int = 0,
        keyframes: str = "derived",
        color_match: float = 1.0,
    ) -> io.NodeOutput:
        chosen = find_recipe(RECIPES, recipe)
        plan = make_plan(
            prompt=prompt,
            seconds=seconds,
            fps=fps,
            width=width,
            height=height,
            strategy=strategy,
            segment_frames=segment_frames or chosen.segment_frames,
            derived_keys=keyframes == "derived",
        )
        options = {"render_height": render_height, "color_match": color_match}
        return io.NodeOutput({"plan": plan.to_json(), "recipe": recipe, **options})


_LOCAL_WORKERS: dict[int, list[LocalComfy]] = {}
_LOCAL_LOCK = threading.Lock()


def _local_workers(count: int) -> list[Worker]:
    """Workers on this machine, started once and kept warm; they die with this process (even on a crash)."""
    with _LOCAL_LOCK:
        started = _LOCAL_WORKERS.setdefault(count, [])
        # the install this head runs (<install>/comfyui/folder_paths.py): its workers are the same engine. Not
        # sys.executable, whose venv link resolves to the system's python, outside any install.
        install = Path(folder_paths.__file__).resolve().parents[1]
        base = Path(folder_paths.get_user_directory()).parent / "vidfarm_workers"
        while len(started) < count:
            worker = LocalComfy(
                base / f"w{len(started)}",
                install_dir=install if (install / ".ready").exists() else None,
                die_with_parent=True,
            )
            started.append(worker.start())
        for worker in started:
            if worker.process is not None and worker.process.poll() is not None:
                worker.start()  # a local worker that died is brought back
        return [Worker(f"local-{i}", w.url) for i, w in enumerate(started[:count])]


@atexit.register
def _stop_local_workers() -> None:
    for workers in _LOCAL_WORKERS.values():
        for worker in workers:
            worker.stop()


class VidfarmWorkerPool(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmWorkerPool",
            display_name="Worker pool",
            category="vidfarm/long video",
            description="The ComfyUI workers that render segments: URLs with optional tokens, or local workers.",
            inputs=[
                io.String.Input(
                    "workers",
                    multiline=True,
                    default="local:2",
                    tooltip="'local:N' = N workers on this machine; else one 'URL [token]' per line, or "
                    "a JSON list of {name, url, token}.",
                ),
                io.Float.Input(
                    "hang_timeout",
                    default=300.0,
                    min=1.0,
                    max=3600.0,
                    tooltip="Seconds without progress (or without an answer) after which a segment moves to "
                    "another worker.",
                ),
                io.Float.Input(
                    "down_grace",
                    default=10.0,
                    min=0.0,
                    max=600.0,
                    optional=True,
                    tooltip="Seconds a worker may refuse connections (restarting) before its segment moves.",
                ),
            ],
            outputs=[PoolType.Output("pool", tooltip="The worker pool.")],
        )

    @classmethod
    def execute(cls, workers: str, hang_timeout: float, down_grace: float = 10.0) -> io.NodeOutput:
        text = workers.strip()
        local = text.startswith("local:")
        pool = _local_workers(int(text.split(":", 1)[1] or 1)) if local else Worker.parse_pool(text)
        timeouts = {"hang_timeout": hang_timeout, "down_grace": down_grace}
        return io.NodeOutput({"workers": [vars(w) for w in pool], **timeouts})

    @classmethod
    def fingerprint_inputs(cls, workers: str, hang_timeout: float, down_grace: float = 10.0) -> Any:
        return float("nan") if workers.strip().startswith("local:") else workers  # re-check local workers each run


def _keyframe_refs(dispatcher: Dispatcher) -> list[dict[str, Any]]:
    """The finished keyframes that lie in the output folder, as /view references (a photo keyframe is the user's
    own and lies in the input folder: not sent back)."""
    output = Path(folder_paths.get_output_directory()).resolve()
    refs = []
    for task_id, files in sorted(dispatcher.finished_files("key").items(), key=lambda item: task_index(item[0])):
        image = next((p for p in files.values() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")), None)
        if image is None or not image.resolve().is_relative_to(output):
            continue
        relative = image.resolve().relative_to(output)
        subfolder = relative.parent.as_posix()
        refs.append({"index": task_index(task_id), "filename": relative.name, "subfolder": subfolder, "type": "output"})
    return refs


def _send_counts(dispatcher: Dispatcher, sent: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Keyframes and segments done, and the finished keyframes' files, to the client of the running prompt
    (ComfyUI's progress carries one number): the phone shows them as they finish."""
    counts = dispatcher.counts()
    server = PromptServer.instance
    # feature-detected: the running prompt's client and id are server attributes (0.3.75); without them, no event
    client, prompt_id = getattr(server, "client_id", None), getattr(server, "last_prompt_id", None)
    if counts != sent and client is not None and prompt_id is not None:
        tasks = {"keyframes": counts.get("key", (0, 0)), "segments": counts.get("seg", (0, 0))}
        event = {"prompt_id": prompt_id, "tasks": tasks, "keyframes": _keyframe_refs(dispatcher)}
        server.send_sync(TASKS_EVENT, event, client)
    return counts


def _tensor_hash(image: torch.Tensor | None) -> str:
    return hashlib.sha256(image.cpu().numpy().tobytes()).hexdigest() if image is not None else ""


def _save_photo(image: torch.Tensor, path: Path) -> Path:
    array = (image[0, :, :, :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


class VidfarmSegmentScheduler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmSegmentScheduler",
            display_name="Render segments on workers",
            category="vidfarm/long video",
            description="Renders the plan's keyframes and segments on the worker pool, many at once; retries on "
            "another worker when one fails, hangs or vanishes; re-running a job reuses its finished segments.",
            inputs=[
                PlanType.Input("plan", tooltip="From 'Plan a long video'."),
                PoolType.Input("pool", tooltip="From 'Worker pool'."),
                io.Int.Input("seed", default=0, min=0, max=2**63 - 1, tooltip="Base seed for keyframes and segments."),
                io.String.Input(
                    "job_id",
                    default="",
                    tooltip="Stable job id (finished segments are reused); empty = derived from the inputs.",
                ),
                io.Image.Input("image", optional=True, tooltip="A photo: image-to-video, the photo is keyframe 0."),
                io.Image.Input(
                    "last_image",
                    optional=True,
                    tooltip="A second photo the clip ends on (the last keyframe; strategy keyframes, with a photo).",
                ),
            ],
            outputs=[SegmentsType.Output("segments", tooltip="The rendered segments, in order.")],
        )

    @classmethod
    def execute(
        cls,
        plan: dict[str, Any],
        pool: dict[str, Any],
        seed: int,
        job_id: str,
        image: torch.Tensor | None = None,
        last_image: torch.Tensor | None = None,
    ) -> io.NodeOutput:
        the_plan = Plan.from_json(plan["plan"])
        recipe = find_recipe(RECIPES, plan["recipe"])
        if last_image is not None and image is None:
            raise PlanError("a last photo needs a first photo: connect image too")
        photo_hash = _tensor_hash(image)
        inputs = [plan, seed, photo_hash] + ([_tensor_hash(last_image)] if last_image is not None else [])
        job_id = job_id or content_id(inputs)  # run from the editor with no id: the same scheme
        job_dir = Path(folder_paths.get_output_directory()) / "vidfarm" / "jobs" / job_id
        photo = _save_photo(image, job_dir / "photo.png") if image is not None else None
        last_photo = _save_photo(last_image, job_dir / "photo-last.png") if last_image is not None else None
        if photo is not None:
            the_plan = with_photo(the_plan)
        if last_photo is not None:
            the_plan = with_last_photo(the_plan)  # refuses chain and shots, saying why
        dispatcher = Dispatcher(
            [Worker(**w) for w in pool["workers"]],
            lambda name: find_declaration(WORKFLOWS, name),
            job_dir / "cache",
            hang_timeout=pool["hang_timeout"],
            down_grace=float(pool.get("down_grace", 10.0)),
        )
        outcome: dict[str, Any] = {}
        options = {
            "render_height": int(plan.get("render_height", 0)),
            "color_match": float(plan.get("color_match", 1)),
            "last_photo": last_photo,
        }
        thread = threading.Thread(target=_run_into, args=(outcome, dispatcher, the_plan, recipe, seed, photo, options))
        thread.start()
        bar = comfy.utils.ProgressBar(1000)
        counts: dict[str, tuple[int, int]] = {}
        while thread.is_alive():  # progress and cancel from this (the execution) thread
            thread.join(timeout=0.25)
            bar.update_absolute(int(dispatcher.fraction() * 1000), 1000)
            counts = _send_counts(dispatcher, counts)
            if comfy.model_management.processing_interrupted():
                dispatcher.cancel()
                thread.join()
                comfy.model_management.throw_exception_if_processing_interrupted()
        _send_counts(dispatcher, counts)  # the last change may have come as the thread ended
        if "error" in outcome:
            raise outcome["error"]
        report = {
            "job_id": job_id,
            "plan": json.loads(the_plan.to_json()),
            "recipe": recipe.name,
            **dispatch_report(dispatcher),
        }
        rendered = outcome["rendered"]
        return io.NodeOutput(
            {
                "segments": [str(p) for p in rendered.segments],
                "keyframes": [str(p) for p in rendered.keyframes],
                "report": report,
                "job_dir": str(job_dir),
            }
        )


def _run_into(
    outcome: dict[str, Any],
    dispatcher: Dispatcher,
    plan: Plan,
    recipe: Any,
    seed: int,
    photo: Path | None,
    options: dict[str, Any],
) -> None:
    try:
        outcome["rendered"] = render_segments(dispatcher, plan, recipe, seed=seed, photo=photo, **options)
    except Exception as exc:  # handed to the execution thread, which raises it for ComfyUI to report
        outcome["error"] = exc


class VidfarmJoin(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmJoin",
            display_name="Join segments",
            category="vidfarm/long video",
            description="Joins the segments (stream copy when they match, crossfades when asked) into a faststart "
            "MP4, plus a phone-sized preview (<= 720p), a thumbnail and a JSON report.",
            inputs=[
                SegmentsType.Input("segments", tooltip="From 'Render segments on workers'."),
                io.Int.Input(
                    "crossfade_frames",
                    default=0,
                    min=0,
                    max=48,
                    tooltip="Frames blended at each cut (0 = plain join; seams of the keyframes strategy need none).",
                ),
                io.String.Input("filename_prefix", default="vidfarm/long", tooltip="Where in output/ to save."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, segments: dict[str, Any], crossfade_frames: int, filename_prefix: str) -> io.NodeOutput:
        output_dir = folder_paths.get_output_directory()
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir)
        target = Path(folder) / f"{name}_{counter:05}"
        files = finish_job(
            [Path(p) for p in segments["segments"]],
            target,
            report=dict(segments["report"]),
            crossfade_frames=crossfade_frames,
            keyframes=[Path(p) for p in segments.get("keyframes", [])],
        )
        sub = str(Path(subfolder) / target.name)
        saved = [
            {"filename": p.name, "subfolder": sub, "type": "output"}
            for p in (files.video, files.preview, files.thumbnail, files.report)
        ]
        return io.NodeOutput(ui={"images": saved, "animated": [True]})
