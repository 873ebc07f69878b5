"""A job is one typed JobSpec, checked once from the pipeline's declared ranges and the recipes, with messages to act
on; every problem is listed at once, and any Unicode in a prompt passes through unchanged."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO
from vidfarm.errors import JobSpecInvalid
from vidfarm.jobs.options import default_recipe, pipeline_declaration
from vidfarm.jobs.spec import JobSpec, check_job_id, vr_choices
from vidfarm.render.plan import STRATEGIES
from vidfarm.workflow.recipe import load_recipes

PROMPTS = [
    "紙の船が雨の路地を流れていく 🚣‍♀️🌧️",  # CJK + emoji with a zero-width joiner
    "سفينة ورقية في شارع ممطر",  # RTL
    "e\u0301te\u0301 — cafe\u0301, Zoë",  # combining marks, not normalised
    "shot one\nshot two\ttabbed",
]


def test_a_good_job_comes_back_in_its_declared_types_with_its_plan() -> None:
    spec = JobSpec.from_values({"seconds": "30", "fps": 16, "width": 2560, "height": 1440, "seed": 7,
                                "strategy": "chain", "recipe": "wan22_5b", "prompt": "a kite"})  # fmt: skip
    values = spec.values()
    assert (values["seconds"], values["seed"], values["strategy"], values["recipe"]) == (30.0, 7, "chain", "wan22_5b")
    declared = pipeline_declaration().parameters
    assert values["crossfade_frames"] == declared["crossfade_frames"].default  # unset: the declared default
    assert spec.plan.strategy == "chain" and spec.plan.total_frames == 30 * 16
    assert "480 frames (30.0 s) at 2560x1440" in spec.describe()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_any_unicode_prompt_passes_through_unchanged(prompt: str) -> None:
    spec = JobSpec.from_values({"prompt": prompt, "recipe": "standin", "seconds": 4})
    assert spec.prompt == prompt and spec.values()["prompt"] == prompt
    assert len(spec.content_id()) == 16 and spec.content_id() == JobSpec.from_values(spec.values()).content_id()


def test_every_problem_is_listed_at_once_and_unknown_fields_are_refused() -> None:
    with pytest.raises(JobSpecInvalid) as refused:
        JobSpec.from_values({"prompt": "a", "fps": 0, "seed": -1, "colour": "red", "vr": "vr360_magic"})
    assert [p.option for p in refused.value.problems] == ["colour", "fps", "seed"]  # types first, all together
    assert "one of prompt, image, last_image, seconds" in refused.value.problems[0].allowed
    with pytest.raises(JobSpecInvalid, match="'vr360_magic' is not a VR output .*vr180_mono"):
        JobSpec.from_values({"prompt": "a", "vr": "vr360_magic", "recipe": "standin"})
    assert "vr180_mono" in vr_choices()
    with pytest.raises(JobSpecInvalid, match="workers"):
        JobSpec.from_values({"prompt": "a", "recipe": "standin", "workers": "local:2"}, allowed=("prompt", "recipe"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prompt": "a\ud800b"}, "cannot be sent .U\\+D800"),
        ({"prompt": "a\x00b"}, "cannot be sent .U\\+0000"),
        ({"prompt": "   "}, "the prompt is empty"),
        ({"workers": "local:99"}, "local:1 to local:16"),
        ({"workers": "ftp://host"}, "not an http.s. URL"),
        ({"workers": '[{"url": 3'}, "not a JSON list"),
        ({"image": "/nonexistent/photo.png"}, "image: "),
        ({"seconds": 0.1, "recipe": "standin"}, "seconds: 0.1 is below the minimum 0.5"),
    ],
)
def test_prompt_workers_and_photo_are_checked(values: dict[str, object], message: str) -> None:
    with pytest.raises(JobSpecInvalid, match=message):
        JobSpec.from_values({"prompt": "a kite", "recipe": "standin", **values})


def test_job_ids_are_safe_folder_names() -> None:
    assert check_job_id("abc_DEF-123") == "abc_DEF-123"
    for bad in ("", "../etc", "a/b", "x" * 65, "ジョブ"):
        with pytest.raises(JobSpecInvalid, match="job_id"):
            check_job_id(bad)


def test_the_declared_strategies_are_the_ones_the_planner_implements() -> None:
    assert pipeline_declaration().parameters["strategy"].options == STRATEGIES


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fps": 0}, "fps: 0 is below the minimum 1"),
        ({"fps": -16}, "fps: -16 is below the minimum 1"),
        ({"fps": 100000}, "fps: 100000 is above the maximum 60"),
        ({"seed": -1}, "seed: -1 is below the minimum 0"),
        ({"seed": 2**70}, "seed: .* is above the maximum"),
        ({"seconds": "abc"}, "seconds: 'abc' is not a valid float"),
        ({"width": 641}, "width: 641 must be 64 plus a multiple of 2"),
        ({"recipe": "wan22_5b_x"}, "no recipe named 'wan22_5b_x'; known recipes: .*wan22_5b"),
        (
            {"recipe": "wan22_5b", "strategy": "keyframes"},
            "recipe wan22_5b cannot do keyframes .allowed: choose chain or shots",
        ),
        ({"strategy": "zoom"}, "strategy: 'zoom' is not one of keyframes, chain, shots"),
    ],
)
def test_bad_options_are_refused_saying_what_to_change(options: dict[str, object], message: str) -> None:
    with pytest.raises(JobSpecInvalid, match=message):
        JobSpec.from_values({"prompt": "a kite", **options})


def test_nothing_a_person_deploys_defaults_to_a_stand_in() -> None:
    recipe = default_recipe()
    assert not load_recipes()[recipe].model_free
    notebook = json.loads((REPO / "notebooks" / "10_long_video.ipynb").read_text())
    parameters = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert f'recipe = "{recipe}"' in "".join(parameters["source"])  # the notebook's default is the declared one
    for graph in ("long_video", "long_video_i2v"):
        plan = json.loads((REPO / "workflows" / f"{graph}.json").read_text())["1"]["inputs"]
        assert plan["recipe"] == recipe
