"""One subject, one world for 30 s: the stand-ins on real ComfyUI workers, the old design against the new.

The stand-ins behave like a model where it matters here: a keyframe's palette and layout follow its seed, a
keyframe edit keeps its reference's palette and layout while moving it, and each image-to-video extension burns a
little (more contrast, warmer). The continuity figures in the job report must tell the designs apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import pool_json
from tests.engine.test_long_video import outputs, run_long_video
from vidfarm.comfy.local import LocalComfy


def continuity(head: LocalComfy, dest: Path, pool: list[LocalComfy], **values: Any) -> dict[str, Any]:
    result = run_long_video(head, dest, width=320, height=180, fps=8, workers=pool_json(pool), **values)
    report = json.loads(outputs(result)["report.json"].path.read_text())
    figures: dict[str, Any] = report["continuity"]
    print(
        dest.name, json.dumps(figures["summary"]), [s["drift"] for s in figures["seams"]]
    )  # the numbers, for the note (pytest -s)
    return figures


def test_thirty_seconds_of_derived_keyframes_hold_one_world(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    job = {"prompt": "a paper boat drifting down a rainy street", "seconds": 30.0}
    old = continuity(comfy_server, tmp_path / "independent", worker_pool, keyframes="independent", **job)
    new = continuity(comfy_server, tmp_path / "derived", worker_pool, keyframes="derived", **job)
    assert len(new["keyframes"]) == len(old["keyframes"]) == 15  # 30 s at 8 fps: 15 segments, 16 keyframes
    old_sum, new_sum = old["summary"], new["summary"]
    # the old keyframes are strangers: other colours, other layout; the derived ones are keyframe 0, moved
    assert old_sum["key_histogram_mean"] > 0.5 > 0.2 > new_sum["key_histogram_mean"]
    assert old_sum["key_ssim_mean"] < 0.3 < 0.6 < new_sum["key_ssim_mean"]
    assert all(k["ssim"] > 0.4 for k in new["keyframes"])  # every one of them, not only on average
    assert new_sum["drift_max"] < 0.2 < old_sum["drift_max"]
    # the seams meet exactly in both designs: that never told them apart
    assert old_sum["seam_ssim_min"] > 0.9 and new_sum["seam_ssim_min"] > 0.9


def test_colour_matching_holds_a_burning_chain_of_seven_segments(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    job = {"prompt": "a kite over a beach", "strategy": "chain", "seconds": 14.0}  # 112 frames: 7 segments
    burnt = continuity(comfy_server, tmp_path / "off", worker_pool, color_match=0.0, **job)
    held = continuity(comfy_server, tmp_path / "on", worker_pool, color_match=1.0, **job)
    assert len(burnt["seams"]) == len(held["seams"]) == 6
    drifts, kept = [s["drift"] for s in burnt["seams"]], [s["drift"] for s in held["seams"]]
    assert drifts == sorted(drifts) and drifts[-1] > 0.4 and drifts[-1] > 3 * drifts[0]  # each extension burns more
    assert max(kept) < 0.2 and kept[-1] < drifts[-1] / 3  # held to keyframe 0: it stops creeping
    assert held["summary"]["seam_histogram_max"] < 0.15  # and the handovers do not jump
