"""Recipes: the workflows that make a long video's keyframes and segments for one model family.

Defined in workflows/recipes.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from vidfarm.errors import WorkflowError
from vidfarm.plan import Plan

ROLES = ("keyframe", "keyframe_edit", "flf", "i2v")


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    segment_frames: int
    gen_width: int
    gen_height: int
    workflows: dict[str, str]  # role -> workflow name

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

    def gen_size(self, width: int, height: int) -> tuple[int, int]:
        """Render size: the recipe's native size in the final aspect (multiples of 16), or the final size."""
        if not self.gen_width:
            return width, height
        area = self.gen_width * self.gen_height
        scale = (area / (width * height)) ** 0.5
        return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)


def load_recipes(path: str | Path) -> dict[str, Recipe]:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return {
        name: Recipe(
            name,
            spec.get("title", name),
            int(spec["segment_frames"]),
            int(spec.get("gen_width", 0)),
            int(spec.get("gen_height", 0)),
            {r: spec[r] for r in ROLES if spec.get(r)},
        )
        for name, spec in data.items()
    }


def find_recipe(path: str | Path, name: str) -> Recipe:
    recipes = load_recipes(path)
    if name not in recipes:
        raise WorkflowError(f"no recipe named {name!r}; known recipes: {', '.join(sorted(recipes))}")
    return recipes[name]
