"""Where a long-video job's rules live: the pipeline's declared parameters (workflows/long_video.toml: ranges and
defaults) and the recipes (workflows/recipes.toml). `vidfarm.jobs.spec.JobSpec` checks a job against them."""

from __future__ import annotations

from pathlib import Path

from vidfarm.workflow.declaration import Declaration, find_declaration
from vidfarm.workflow.recipe import RECIPES_PATH

PIPELINE = "long_video"


def pipeline_declaration(workflows_dir: Path = RECIPES_PATH.parent) -> Declaration:
    return find_declaration(workflows_dir, PIPELINE)


def default_recipe(workflows_dir: Path = RECIPES_PATH.parent) -> str:
    """The recipe a job gets when it names none: the pipeline's declared default (a real model, never a stand-in)."""
    return str(pipeline_declaration(workflows_dir).parameters["recipe"].default)
