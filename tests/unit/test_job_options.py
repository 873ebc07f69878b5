"""A job's options are checked once, from the pipeline's declared ranges and the recipes, with messages to act on."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO
from vidfarm.errors import WorkflowError
from vidfarm.jobs.options import check_job_options, default_recipe
from vidfarm.workflow.recipe import load_recipes


def test_a_good_job_comes_back_in_its_declared_types() -> None:
    checked = check_job_options({"seconds": "30", "fps": 16, "width": 2560, "height": 1440, "seed": 7,
                                 "strategy": "chain", "recipe": "wan22_5b", "prompt": "ignored here"})  # fmt: skip
    assert checked == {"seconds": 30.0, "fps": 16, "width": 2560, "height": 1440, "seed": 7, "strategy": "chain",
                       "recipe": "wan22_5b"}  # fmt: skip


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
            "wan22_5b cannot do strategy keyframes: choose chain or shots",
        ),
        ({"strategy": "zoom"}, "strategy: 'zoom' is not one of keyframes, chain, shots"),
    ],
)
def test_bad_options_are_refused_saying_what_to_change(options: dict[str, object], message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        check_job_options(options)


def test_nothing_a_person_deploys_defaults_to_a_stand_in() -> None:
    recipe = default_recipe()
    assert not load_recipes()[recipe].model_free
    notebook = json.loads((REPO / "notebooks" / "10_long_video.ipynb").read_text())
    parameters = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert f'recipe = "{recipe}"' in "".join(parameters["source"])  # the notebook's default is the declared one
    for graph in ("long_video", "long_video_i2v"):
        plan = json.loads((REPO / "workflows" / f"{graph}.json").read_text())["1"]["inputs"]
        assert plan["recipe"] == recipe
