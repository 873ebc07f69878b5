"""A long-video job's options, checked once against the one source of each rule, before any process starts.

The ranges are the pipeline's declared parameters (workflows/long_video.toml); the recipe list and what each
recipe can do are workflows/recipes.toml. The phone service (REST and chat), the pipeline notebook, the demo and the
scheduler node all check through here, so a bad option gets the same message everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidfarm.errors import WorkflowError
from vidfarm.workflow.declaration import Declaration, find_declaration
from vidfarm.workflow.recipe import RECIPES_PATH, find_recipe

PIPELINE = "long_video"
CHECKED = ("seconds", "fps", "width", "height", "strategy", "recipe", "seed", "segment_frames", "render_height",
           "crossfade_frames", "keyframes", "color_match")  # fmt: skip


def pipeline_declaration(workflows_dir: Path = RECIPES_PATH.parent) -> Declaration:
    return find_declaration(workflows_dir, PIPELINE)


def default_recipe(workflows_dir: Path = RECIPES_PATH.parent) -> str:
    """The recipe a job gets when it names none: the pipeline's declared default (a real model, never a stand-in)."""
    return str(pipeline_declaration(workflows_dir).parameters["recipe"].default)


def check_job_options(values: Mapping[str, Any], *, workflows_dir: Path = RECIPES_PATH.parent) -> dict[str, Any]:
    """The options in their declared types; WorkflowError naming the option and what is allowed otherwise."""
    declared = pipeline_declaration(workflows_dir).parameters
    checked = {name: declared[name].coerce(values[name]) for name in CHECKED if values.get(name) is not None}
    recipe = find_recipe(workflows_dir / RECIPES_PATH.name, str(checked.get("recipe", declared["recipe"].default)))
    strategy = checked.get("strategy", declared["strategy"].default)
    if strategy not in recipe.strategies:
        raise WorkflowError(
            f"recipe {recipe.name} cannot do strategy {strategy}: choose {' or '.join(recipe.strategies)}"
        )
    return checked
