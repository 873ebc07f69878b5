"""Two photos, one clip (issue 15, decision 0140): the first is keyframe 0, the last is keyframe N; neither is
rendered, the keyframes between are derived from the first, and only the keyframes strategy can end on a photo."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import WORKFLOWS
from vidfarm.errors import JobSpecInvalid, PlanError
from vidfarm.jobs.run import head_values, head_workflow
from vidfarm.jobs.spec import JobSpec
from vidfarm.render.long_video import build_tasks
from vidfarm.render.plan import make_plan, with_last_photo, with_photo
from vidfarm.workflow.declaration import find_declaration
from vidfarm.workflow.recipe import load_recipes

RECIPES = load_recipes(WORKFLOWS / "recipes.toml")


def test_the_last_keyframe_is_the_last_photo_and_is_not_rendered() -> None:
    plan = make_plan(prompt="a", seconds=12, fps=16, width=640, height=360, segment_frames=17)
    both = with_last_photo(with_photo(plan))
    last = len(both.keyframes) - 1
    assert last >= 3 and [k.source for k in both.keyframes] == ["image", *["image_edit"] * (last - 1), "last_image"]
    tasks = {t.id: t for t in build_tasks(both, RECIPES["standin"], seed=0, photo=True, last_photo=True)}
    assert "key-0" not in tasks and f"key-{last}" not in tasks  # both photos are given, not rendered
    assert {f"key-{i}" for i in range(1, last)} <= set(tasks)
    assert all(tasks[f"key-{i}"].inputs == {"image": ("photo", "image")} for i in range(1, last))  # from photo 1
    final = tasks[f"seg-{len(both.segments) - 1}"]
    assert final.inputs["start_image"] == (f"key-{last - 1}", "image")
    assert final.inputs["end_image"] == ("photo-last", "image")  # the clip ends on the second photo
    assert final.values["color_match"] == 0.0  # not repainted in the first photo's colours
    first = tasks["seg-0"]
    assert first.inputs["start_image"] == ("photo", "image") and first.values["color_match"] == 1.0
    for segment in both.segments:  # every segment still runs between its own two keyframes
        task = tasks[f"seg-{segment.index}"]
        ids = {task.inputs["start_image"][0], task.inputs["end_image"][0]}
        expected = {"photo" if k == 0 else "photo-last" if k == last else f"key-{k}"
                    for k in (segment.start_key, segment.end_key)}  # fmt: skip
        assert ids == expected


def test_a_one_segment_clip_goes_straight_from_the_first_photo_to_the_last() -> None:
    plan = make_plan(prompt="a", seconds=1, fps=16, width=640, height=360, segment_frames=17)
    tasks = build_tasks(with_last_photo(with_photo(plan)), RECIPES["standin"], seed=0, photo=True, last_photo=True)
    assert [t.id for t in tasks] == ["seg-0"]
    assert tasks[0].inputs["start_image"][0] == "photo" and tasks[0].inputs["end_image"][0] == "photo-last"


def test_without_a_last_photo_nothing_changes() -> None:
    plan = with_photo(make_plan(prompt="a", seconds=12, fps=16, width=640, height=360, segment_frames=17))
    tasks = {t.id for t in build_tasks(plan, RECIPES["standin"], seed=0, photo=True)}
    assert f"key-{len(plan.keyframes) - 1}" in tasks and "photo-last" not in str(tasks)


@pytest.mark.parametrize("strategy", ["chain", "shots"])
def test_only_keyframes_can_end_on_a_photo(strategy: str) -> None:
    plan = make_plan(prompt="a\nb", seconds=4, fps=16, width=64, height=64, strategy=strategy)
    with pytest.raises(PlanError, match=f"needs the keyframes strategy .*not {strategy}"):
        with_last_photo(plan)


@pytest.fixture
def photos(tmp_path: Path) -> tuple[str, str]:
    first, last = tmp_path / "a" / "photo.png", tmp_path / "b" / "photo.png"  # the same name in two folders
    for path, colour in ((first, (200, 40, 40)), (last, (40, 40, 200))):
        path.parent.mkdir()
        Image.new("RGB", (64, 48), colour).save(path)
    return str(first), str(last)


def test_a_job_with_two_photos_plans_to_end_on_the_second(photos: tuple[str, str]) -> None:
    first, last = photos
    spec = JobSpec.from_values({"prompt": "dawn to dusk", "image": first, "last_image": last, "recipe": "standin"})
    assert spec.plan.keyframes[0].source == "image" and spec.plan.keyframes[-1].source == "last_image"
    assert head_workflow(spec) == "long_video_flf"
    declaration = find_declaration(WORKFLOWS, head_workflow(spec))
    assert {"image", "last_image"} <= set(declaration.parameters)
    assert not {"image", "last_image"} & set(head_values(spec, "j", set(declaration.parameters)))  # uploaded apart
    one = JobSpec.from_values({"prompt": "dawn to dusk", "image": first, "recipe": "standin"})
    assert head_workflow(one) == "long_video_i2v" and spec.content_id() != one.content_id()
    swapped = JobSpec.from_values({"prompt": "dawn to dusk", "image": last, "last_image": first, "recipe": "standin"})
    job_id = spec.content_id()
    assert swapped.content_id() != job_id  # the photos count by their bytes and their order
    Path(last).rename(Path(last).with_name("moved.png"))
    moved = str(Path(last).with_name("moved.png"))
    again = JobSpec.from_values({"prompt": "dawn to dusk", "image": first, "last_image": moved, "recipe": "standin"})
    assert again.content_id() == job_id  # not by their paths


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "chain"}, "last_image: strategy chain cannot end on a given photo .allowed: strategy keyframes"),
        ({"strategy": "shots"}, "last_image: strategy shots cannot end on a given photo"),
        ({"image": ""}, "last_image: a last photo without a first photo .allowed: give image too"),
        ({"last_image": "/nonexistent/last.png"}, "last_image: "),
    ],
)
def test_a_last_photo_is_refused_where_it_cannot_be_the_end(
    photos: tuple[str, str], options: dict[str, str], message: str
) -> None:
    first, last = photos
    values = {"prompt": "dawn to dusk", "image": first, "last_image": last, "recipe": "standin", **options}
    with pytest.raises(JobSpecInvalid, match=message):
        JobSpec.from_values(values)


def test_a_last_photo_that_is_not_a_picture_is_named(photos: tuple[str, str], tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(JobSpecInvalid) as refused:
        JobSpec.from_values({"prompt": "x", "image": photos[0], "last_image": str(text), "recipe": "standin"})
    assert [p.option for p in refused.value.problems] == ["last_image"]
