"""Every recipe's workflows take exactly what the long-video builder sends them, and give what it takes back."""

from __future__ import annotations

import pytest

from tests.conftest import WORKFLOWS
from vidfarm.errors import WorkflowError
from vidfarm.render.long_video import build_tasks
from vidfarm.render.plan import make_plan
from vidfarm.workflow.declaration import find_declaration
from vidfarm.workflow.recipe import find_recipe, load_recipes

RECIPES = load_recipes(WORKFLOWS / "recipes.toml")
NEEDED_OUTPUTS = {"keyframe": {"image"}, "keyframe_edit": {"image"}, "flf": {"video"}, "i2v": {"video", "last_frame"}}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize(
    ("strategy", "photo"), [("keyframes", False), ("keyframes", True), ("chain", False), ("shots", True)]
)
def test_builder_and_workflows_agree(recipe: str, strategy: str, photo: bool) -> None:
    chosen = RECIPES[recipe]
    plan = make_plan(
        prompt="a\nb",
        seconds=12,
        fps=16,
        width=2560,
        height=1440,
        strategy=strategy,
        segment_frames=chosen.segment_frames,
        from_image=photo,
    )
    needs_edit = photo and strategy == "shots"  # later shots start from keyframes derived from the photo
    if strategy not in chosen.strategies or (needs_edit and "keyframe_edit" not in chosen.workflows):
        with pytest.raises(WorkflowError, match=f"cannot do strategy {strategy}"):
            build_tasks(plan, chosen, seed=3, photo=photo)
        return
    for task in build_tasks(plan, chosen, seed=3, photo=photo):
        declaration = find_declaration(WORKFLOWS, task.workflow)
        values = {**task.values, **{name: "vidfarm/inputs/x.png" for name in task.inputs}}
        graph = declaration.fill(declaration.graph(), values)  # raises on any unknown or out-of-range value
        for name, value in values.items():  # every value the builder sends lands where the declaration says
            parameter = declaration.parameters[name]
            for target in parameter.targets:
                assert graph[target.node_id]["inputs"][target.input_name] == parameter.coerce(value), (task.id, name)
        unset = set(declaration.parameters) - set(values)  # what the builder leaves alone keeps its declared default
        assert all(p.default is not None for name, p in declaration.parameters.items() if name in unset), task.id
        role = next(r for r, name in chosen.workflows.items() if name == task.workflow)
        assert NEEDED_OUTPUTS[role] <= set(declaration.outputs), (task.workflow, declaration.outputs)
        assert all(node in graph for node in declaration.outputs.values())


def test_recipes_render_at_their_native_size_in_the_final_aspect() -> None:
    assert RECIPES["wan22_14b_4step"].gen_size(2560, 1440) == (1280, 720)
    assert RECIPES["wan22_14b"].gen_size(1440, 2560) == (720, 1280)  # portrait, for phones
    assert RECIPES["standin"].gen_size(2560, 1440) == (256, 144)
    assert RECIPES["standin"].gen_size(1280, 704) == (256, 144)  # multiples of 16, as the models need
    assert RECIPES["wan22_5b"].gen_size(2560, 1440) == (1280, 704)  # the 5B's VAE needs multiples of 32
    assert RECIPES["wan22_14b_4step"].gen_size(256, 144, render_height=96) == (176, 96)  # drafts and tests
    assert RECIPES["wan22_5b"].gen_size(1440, 2560, render_height=512) == (288, 512)
    assert RECIPES["hunyuan15"].gen_size(2560, 1440) == (1280, 720)


def test_what_each_recipe_can_do() -> None:
    assert RECIPES["wan22_14b_4step"].strategies == ("keyframes", "chain", "shots")
    assert RECIPES["wan22_5b"].strategies == ("chain", "shots")  # the 5B has no first-last-frame mode
    assert RECIPES["hunyuan15"].strategies == ("chain", "shots")  # nor has HunyuanVideo 1.5
    assert [name for name, r in RECIPES.items() if r.model_free] == ["standin"]


def test_unknown_recipe_and_impossible_strategy() -> None:
    with pytest.raises(WorkflowError, match="known recipes: hunyuan15, standin"):
        find_recipe(WORKFLOWS / "recipes.toml", "sora")
    no_flf = RECIPES["standin"].__class__(
        "x", "x", 17, 0, 0, {"keyframe": "standin_keyframe", "i2v": "standin_seg_i2v"}
    )
    plan = make_plan(prompt="a", seconds=4, fps=8, width=64, height=64, segment_frames=17)
    with pytest.raises(WorkflowError, match="cannot do strategy keyframes.*use strategy chain or shots"):
        no_flf.check(plan)
