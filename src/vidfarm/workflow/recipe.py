"""Recipes: the workflows that make a long video's keyframes and segments for one model family.

Defined in workflows/recipes.toml, the one list every surface (service, notebook, CLI, scheduler node) reads.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from vidfarm.errors import WorkflowError
from vidfarm.render.plan import STRATEGIES, Plan

ROLES = ("keyframe", "keyframe_edit", "flf", "i2v")
RECIPES_PATH = Path(__file__).resolve().parents[3] / "workflows" / "recipes.toml"
STRATEGY_ROLE = {"keyframes": "flf", "chain": "i2v", "shots": "i2v"}  # the segment workflow each strategy needs


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    segment_frames: int
    gen_width: int
    gen_height: int
    workflows: dict[str, str]  # role -> workflow name
    size_step: int = 16  # render sizes are multiples of this (the VAE's stride times the patch size)
    model_free: bool = False

    @property
    def strategies(self) -> tuple[str, ...]:
        return tuple(s for s in STRATEGIES if self.workflows.get(STRATEGY_ROLE[s]))

    def workflow_for(self, role: str) -> str:
        name = self.workflows.get(role)
        if not name:
            raise WorkflowError(
                f"recipe {self.name} has no {role} workflow; it has: {', '.join(sorted(self.workflows))}"
            )
        return name

    def check(self, plan: Plan) -> None:
        """Refuse plans this recipe cannot render, saying which strategy would work."""
        roles = {"keyframe"} | {s.kind for s in plan.segments}
        roles |= {"keyframe_edit" for k in plan.keyframes if k.source == "image_edit"}
        missing = sorted(r for r in roles if not self.workflows.get(r))
        if missing:
            other = "chain or shots" if "flf" in missing else "keyframes"
            raise WorkflowError(
                f"recipe {self.name} cannot do strategy {plan.strategy} (no {', '.join(missing)} "
                f"workflow); use strategy {other}"
            )

    def gen_size(self, width: int, height: int, *, render_height: int = 0) -> tuple[int, int]:
        """Render size in the final aspect, in multiples of size_step: the recipe's native area, or the height
        asked for (render_height: smaller renders for tests and drafts), or the final size for a size-free recipe."""
        if not self.gen_width and not render_height:
            return width, height
        if render_height:
            scale = render_height / height
        else:
            scale = (self.gen_width * self.gen_height / (width * height)) ** 0.5
        step = self.size_step
        return max(step, round(width * scale / step) * step), max(step, round(height * scale / step) * step)


def load_recipes(path: str | Path = RECIPES_PATH) -> dict[str, Recipe]:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return {
        name: Recipe(
            name,
            spec.get("title", name),
            int(spec["segment_frames"]),
            int(spec.get("gen_width", 0)),
            int(spec.get("gen_height", 0)),
            {r: spec[r] for r in ROLES if spec.get(r)},
            size_step=int(spec.get("size_step", 16)),
            model_free=bool(spec.get("model_free", False)),
        )
        for name, spec in data.items()
    }


def find_recipe(path: str | Path, name: str) -> Recipe:
    """The recipe called name (path: a recipes.toml; RECIPES_PATH is the project's)."""
    recipes = load_recipes(path)
    if name not in recipes:
        raise WorkflowError(f"no recipe named {name!r}; known recipes: {', '.join(sorted(recipes))}")
    return recipes[name]
