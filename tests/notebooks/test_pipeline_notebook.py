"""The pipeline notebook (the contract batch runs and the service rely on), run by papermill for real."""

from __future__ import annotations

import json
from pathlib import Path

import papermill as pm
from PIL import Image

from tests.conftest import REPO, pool_json
from vidfarm.comfy import ComfyClient
from vidfarm.comfy.local import LocalComfy
from vidfarm.media.checks import probe
from vidfarm.jobs.progress_log import ProgressLog
from vidfarm.media.spherical import read_spherical

CONTRACT_KEYS = {"job_id", "video", "preview", "thumbnail", "width", "height", "fps", "frames", "duration",
                 "seconds_taken", "segments", "workers"}


def test_photo_to_long_video_through_the_notebook(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (300, 200), (30, 160, 90)).save(photo)
    result, progress = tmp_path / "result.json", tmp_path / "progress.jsonl"
    parameters = {"prompt": "the same meadow at dusk", "image": str(photo), "recipe": "standin", "seconds": 4.0, "width": 320,
                  "height": 180, "fps": 8, "head_url": comfy_server.url, "workers": pool_json(worker_pool),
                  "out_dir": str(tmp_path / "jobs"), "result_path": str(result), "progress_path": str(progress),
                  "vr": "vr180_mono"}
    pm.execute_notebook(str(REPO / "notebooks" / "10_long_video.ipynb"), str(tmp_path / "run.ipynb"),
                        parameters=parameters, cwd=str(tmp_path), progress_bar=False)
    summary = json.loads(result.read_text())
    assert CONTRACT_KEYS <= set(summary)
    assert (summary["width"], summary["height"], summary["frames"], summary["fps"]) == (320, 180, 32, 8.0)
    assert all(Path(summary[k]).is_file() for k in ("video", "preview", "thumbnail"))
    assert Path(summary["video"]).parent == tmp_path / "jobs" / summary["job_id"]
    assert set(summary["workers"]) == {"test-0", "test-1"}
    vr = Path(summary["vr_video"])  # the pipeline can end in VR: same view in both eyes, with V2 metadata
    assert vr.name.endswith("_180_LR.mp4") and read_spherical(vr).stereo_mode == 2
    assert probe(vr).width == 2 * probe(vr).height
    events, _ = ProgressLog(progress).read_from(0)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and events[-1].stage == "finished"
    assert any("VidfarmSegmentScheduler" in e.detail for e in events)
    counted = [e.detail.split()[-2:] for e in events if "keyframes " in e.detail or "segments " in e.detail]
    assert counted and counted[-1] == ["segments", f"{summary['segments']}/{summary['segments']}"]  # readable counts
    assert any(kind == "keyframes" for kind, _ in counted)
    shown = [e.keyframes for e in events if e.keyframes]  # thumbnails as the keyframes finish, for the phone
    derived = [f"key-{i:02d}.jpg" for i in range(1, summary["segments"] + 1)]  # keyframe 0 is the user's photo
    assert shown and [Path(p).name for p in shown[-1]] == derived
    with Image.open(shown[-1][0]) as thumbnail:
        width, height = thumbnail.size  # the keyframe's own render size (under the video's), at most 480 px
        assert thumbnail.format == "JPEG" and max(width, height) <= 480 and width * 9 == height * 16
    assert Path(shown[-1][0]).parent == tmp_path / "jobs" / summary["job_id"] / "keyframes"

    rendered = [len(ComfyClient(w.url).http.get_json("/history")) for w in worker_pool]
    again = tmp_path / "again.json"  # the same job again: nothing is rendered again
    pm.execute_notebook(str(REPO / "notebooks" / "10_long_video.ipynb"), str(tmp_path / "again.ipynb"),
                        parameters={**parameters, "result_path": str(again), "progress_path": ""},
                        cwd=str(tmp_path), progress_bar=False)
    repeat = json.loads(again.read_text())
    assert repeat["job_id"] == summary["job_id"] and repeat["frames"] == 32
    assert [len(ComfyClient(w.url).http.get_json("/history")) for w in worker_pool] == rendered
