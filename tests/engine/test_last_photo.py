"""Two photos, one clip, for real (issue 15): run_job on a head ComfyUI with CPU workers and the model-free stand-in;
the joined video starts on the first photo and ends on the second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import pool_json
from tests.engine.test_long_video import frames_at
from vidfarm.comfy.local import LocalComfy
from vidfarm.jobs.run import JobPlace, run_job
from vidfarm.jobs.spec import JobSpec

SIZE = (320, 180)


def halves(path: Path, left: tuple[int, int, int], right: tuple[int, int, int]) -> np.ndarray:
    """A photo at the video's own size (no crop to argue about) whose two halves differ: position counts too."""
    image = Image.new("RGB", SIZE, left)
    image.paste(Image.new("RGB", (SIZE[0] // 2, SIZE[1]), right), (SIZE[0] // 2, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return np.asarray(image, np.float32)


def test_an_album_of_two_photos_is_the_first_and_last_frame_of_one_clip(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    first = halves(tmp_path / "a" / "photo.png", (210, 60, 40), (230, 200, 60))  # warm
    last = halves(tmp_path / "b" / "photo.png", (30, 70, 200), (40, 180, 120))  # cold; the same file name
    spec = JobSpec.from_values(
        {
            "prompt": "from morning to night",
            "image": str(tmp_path / "a" / "photo.png"),
            "last_image": str(tmp_path / "b" / "photo.png"),
            "recipe": "standin",
            "seconds": 3.0,
            "fps": 8,
            "width": SIZE[0],
            "height": SIZE[1],
            "workers": pool_json(worker_pool),
        }  # fmt: skip
    )
    summary = run_job(spec, place=JobPlace(out_dir=tmp_path / "jobs", head_url=comfy_server.url))
    assert (summary.width, summary.height, summary.frames) == (*SIZE, 24)
    keys = len(spec.plan.keyframes) - 1
    assert keys >= 2  # at least one keyframe between the photos, derived from the first
    tasks = summary.report["tasks"]
    assert {"photo", "photo-last", "key-1"} <= set(tasks) and "key-0" not in tasks and f"key-{keys}" not in tasks
    assert tasks["photo-last"]["reused"]  # given, not rendered

    frames = frames_at(Path(summary.video), {0, summary.frames - 1})
    end, start = frames[summary.frames - 1], frames[0]
    assert np.abs(end - last).mean() < 10, "the clip does not end on the last photo"
    assert np.abs(end - first).mean() > 5 * np.abs(end - last).mean()  # the measure tells the photos apart
    assert np.abs(end - np.flip(last, axis=1)).mean() > 5 * np.abs(end - last).mean()  # in place, not mirrored
    assert np.abs(start - first).mean() < 10, "the clip does not start on the first photo"
    report = json.loads(Path(summary.video).with_name("report.json").read_text())
    assert report["plan"]["keyframes"][-1]["source"] == "last_image"
