"""Segment scheduling for real: a head ComfyUI with the node pack fans a long video out to CPU workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from tests.conftest import WORKFLOWS, declaration, pool_json
from vidfarm.comfy import ComfyClient, PromptRun, RunResult
from vidfarm.comfy.local import LocalComfy
from vidfarm.render.color_match import match_frames
from vidfarm.render.plan import boundary_frames, make_plan
from vidfarm.workflow.recipe import find_recipe


def run_long_video(head: LocalComfy, dest: Path, **values: Any) -> RunResult:
    d = declaration("long_video_i2v" if "image" in values else "long_video")
    values = {"recipe": "standin", **values}  # model-free, chosen explicitly (the declared default is a real model)
    return PromptRun(ComfyClient(head.url), d.fill(d.graph(), values), dest_dir=dest).wait()


def outputs(result: RunResult) -> dict[str, Any]:
    return {o.path.name: o for o in result.outputs}


def frames_at(video: Path, indices: set[int]) -> dict[int, np.ndarray]:
    found = {}
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                found[i] = frame.to_ndarray(format="rgb24").astype(np.float32)
    return found


def test_thirty_seconds_at_2560x1440_with_exact_seams(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    result = run_long_video(
        comfy_server,
        tmp_path,
        prompt="a paper boat drifting down a rainy street",
        seconds=30.0,
        fps=8,
        width=2560,
        height=1440,
        workers=pool_json(worker_pool),
        job_id="test-30s",
    )
    files = outputs(result)
    video, preview = files["video.mp4"].info, files["preview.mp4"].info
    assert (video.width, video.height, video.fps, video.frames, video.duration) == (2560, 1440, 8.0, 240, 30.0)
    assert preview.height <= 720 and preview.frames == 240 and preview.size_bytes <= 45 * 1024 * 1024
    assert files["thumbnail.jpg"].info.kind == "image"
    report = json.loads(files["report.json"].path.read_text())
    assert report["join"] == "copy"  # matching segments are joined without re-encoding
    assert all(s["tasks"] > 0 for s in report["workers"].values())  # both workers rendered

    plan = make_plan(
        prompt="x",
        seconds=30,
        fps=8,
        width=2560,
        height=1440,
        segment_frames=find_recipe(WORKFLOWS / "recipes.toml", "standin").segment_frames,
    )
    seams = boundary_frames(plan)
    assert len(seams) == len(plan.segments) - 1
    cache = comfy_server.base_dir / "output" / "vidfarm" / "jobs" / "test-30s" / "cache"
    checked = seams[:3]
    [anchor_file] = cache.glob("key-0-*.image.png")  # every segment's colours are held to keyframe 0
    anchor = np.asarray(Image.open(anchor_file).convert("RGB"), np.float32)
    decoded = frames_at(files["video.mp4"].path, {i for s in checked for i in (s, s + 1, s - 4)})
    for n, seam in enumerate(checked, start=1):
        [key_file] = cache.glob(f"key-{n}-*.image.png")
        raw = np.asarray(Image.open(key_file).convert("RGB"), np.float32)[None] / 255
        held = (match_frames(raw, anchor / 255)[0] * 255).round().astype(np.uint8)  # as the segment's colour step
        key = np.asarray(Image.fromarray(held).resize((2560, 1440), Image.LANCZOS), np.float32)
        at_seam = np.abs(decoded[seam] - key).mean()
        after_seam = np.abs(decoded[seam + 1] - key).mean()
        inside = np.abs(decoded[seam - 4] - key).mean()
        assert at_seam < 4.0, f"seam {n}: the boundary frame is not the keyframe (diff {at_seam:.1f})"
        assert after_seam < 10.0, f"seam {n}: the next segment does not start at the keyframe ({after_seam:.1f})"
        assert inside > 2 * at_seam  # the metric tells frames apart


def test_image_to_video_chain_and_shots(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (400, 300), (220, 120, 20)).save(photo)
    name = ComfyClient(comfy_server.url).upload_image(photo, subfolder="vidfarm/tests")
    pool = pool_json(worker_pool)
    chain = run_long_video(
        comfy_server,
        tmp_path / "chain",
        image=name,
        strategy="chain",
        seconds=4.0,
        fps=8,
        width=320,
        height=180,
        workers=pool,
    )
    info = outputs(chain)["video.mp4"].info
    assert (info.frames, info.width, info.height) == (32, 320, 180)
    first = frames_at(outputs(chain)["video.mp4"].path, {0})[0]
    assert np.abs(first - np.array([220, 120, 20], np.float32)).mean() < 12  # starts on the photo
    report = json.loads(outputs(chain)["report.json"].path.read_text())
    assert "photo" in report["tasks"] and "key-0" not in report["tasks"]
    shots = run_long_video(
        comfy_server,
        tmp_path / "shots",
        prompt="a red boat\na blue boat\na green boat",
        strategy="shots",
        seconds=3.0,
        fps=8,
        width=320,
        height=180,
        workers=pool,
        crossfade_frames=2,
    )
    files = outputs(shots)
    assert files["video.mp4"].info.frames == 24 - 2 * 2  # each crossfade overlaps two frames
    assert json.loads(files["report.json"].path.read_text())["join"] == "encode"
