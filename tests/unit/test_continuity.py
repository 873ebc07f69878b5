"""Keyframes that follow the first, colour held to one anchor, and the figures that say so (decision 0070)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import WORKFLOWS
from vidfarm.render.color_match import match_frames
from vidfarm.render.continuity import histogram_distance, structural_similarity
from vidfarm.render.long_video import build_tasks
from vidfarm.render.plan import make_plan, with_photo
from vidfarm.workflow.recipe import load_recipes

RECIPES = load_recipes(WORKFLOWS / "recipes.toml")


def test_keyframes_follow_keyframe_zero_then_segments_run_in_parallel() -> None:
    plan = make_plan(prompt="a boat", seconds=30, fps=16, width=2560, height=1440, segment_frames=81)
    tasks = {t.id: t for t in build_tasks(plan, RECIPES["wan22_14b_4step"], seed=5, photo=False)}
    assert tasks["key-0"].workflow == "wan22_14b_keyframe" and not tasks["key-0"].deps
    later = [t for i, t in tasks.items() if i.startswith("key-") and i != "key-0"]
    assert len(later) == len(plan.segments)
    assert all(t.workflow == "wan22_14b_keyframe_edit" and t.inputs == {"image": ("key-0", "image")} for t in later)
    assert len({t.values["seed"] for t in later}) == len(later)  # each keyframe moves differently
    for segment in plan.segments:
        task = tasks[f"seg-{segment.index}"]
        assert task.deps == {"key-0", f"key-{segment.index}", f"key-{segment.index + 1}"}
        assert task.inputs["reference"] == ("key-0", "image") and task.values["color_match"] == 1.0


def test_the_old_independent_keyframes_and_photo_jobs() -> None:
    old = make_plan(prompt="a", seconds=12, fps=16, width=64, height=64, derived_keys=False)
    tasks = build_tasks(old, RECIPES["standin"], seed=0, photo=False)
    assert all(not t.deps for t in tasks if t.id.startswith("key-"))
    photo = build_tasks(with_photo(old), RECIPES["standin"], seed=0, photo=True)
    assert "key-0" not in {t.id for t in photo}
    assert all(t.inputs == {"image": ("photo", "image")} for t in photo if t.id.startswith("key-"))
    assert all(t.inputs["reference"] == ("photo", "image") for t in photo if t.id.startswith("seg-"))


def test_a_recipe_without_keyframe_edit_keeps_independent_shot_keyframes() -> None:
    plan = make_plan(prompt="one\ntwo\nthree", seconds=9, fps=16, width=64, height=64, strategy="shots")
    tasks = {t.id: t for t in build_tasks(plan, RECIPES["wan22_5b"], seed=0, photo=False)}
    assert {tasks[f"key-{i}"].workflow for i in range(3)} == {"wan22_5b_keyframe"}
    assert all(not tasks[f"key-{i}"].deps for i in range(3))
    # a cut may change the light on purpose: each shot is held to its own keyframe, not to keyframe 0
    assert [tasks[f"seg-{i}"].inputs["reference"] for i in range(3)] == [(f"key-{i}", "image") for i in range(3)]


def picture(seed: int) -> np.ndarray:
    """A 72x128 picture of soft blobs: its own palette and layout for each seed."""
    rng = np.random.default_rng(seed)
    layout = np.kron(rng.uniform(0, 1, (9, 16)), np.ones((8, 8)))[..., None]  # where light and dark things are
    colours = rng.uniform(0.1, 0.9, (2, 3))
    return colours[0] * layout + colours[1] * (1 - layout)


def test_the_figures_tell_one_picture_from_another() -> None:
    a = (picture(1) * 255).astype(np.float64)
    assert histogram_distance(a, a) == 0.0 and structural_similarity(a, a) == pytest.approx(1.0)
    b = (picture(2) * 255).astype(np.float64)
    assert histogram_distance(a, b) > 0.5 and structural_similarity(a, b) < 0.5
    shifted = np.roll(a, 6, axis=1)  # the same picture, moved: same colours, similar layout
    assert histogram_distance(a, shifted) < 0.1


def burn(frame: np.ndarray, amount: float) -> np.ndarray:
    return ((frame - 0.5) * (1 + amount) + 0.5 + np.array([0.5, 0.0, -0.5]) * amount).clip(0, 1)


def chain(anchor: np.ndarray, segments: int, strength: float) -> list[float]:
    """A chain whose every extension burns a little; each segment starts from the last frame of the one before."""
    start, drift = anchor, []
    for _ in range(segments):
        steps = np.linspace(0, 1, 9)[:, None, None, None]
        frames = start[None] * (1 - steps) + burn(start, 0.06)[None] * steps
        frames = match_frames(frames, anchor, strength) if strength else frames
        start = frames[-1]
        drift.append(histogram_distance(anchor * 255, start * 255))
    return drift


def test_colour_matching_removes_a_drift_injected_into_a_chain() -> None:
    anchor = picture(7)
    burnt, held = chain(anchor, 7, 0.0), chain(anchor, 7, 1.0)
    assert burnt[-1] > 0.5 and burnt[-1] > burnt[0] + 0.15  # without the anchor the colours creep, segment by segment
    assert max(held) < 0.05  # held to keyframe 0, the seventh segment ends where the first began
