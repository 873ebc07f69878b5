"""The inline option buttons: seconds, aspect/resolution, recipe (the workflow family) and strategy.

callback_data is "opt:<key>:<value>" (well under Telegram's 64 bytes); the choice is stored per user and applies
to that user's next videos.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from vidfarm.jobs.options import default_recipe
from vidfarm.render.plan import STRATEGIES
from vidfarm.workflow.recipe import load_recipes
from vidfarm_service.submissions import RESOLUTIONS

SECONDS = ("4", "8", "15", "30", "60")


def recipe_names() -> tuple[str, ...]:
    return tuple(load_recipes())  # workflows/recipes.toml, in its order


def _current(choices: dict[str, Any], defaults: dict[str, Any]) -> dict[str, str]:
    merged = {**defaults, **choices}
    size = next((name for name, wh in RESOLUTIONS.items() if wh == (merged.get("width"), merged.get("height"))), "")
    return {
        "s": f"{float(merged.get('seconds', 0)):g}",
        "r": size,
        "m": str(merged.get("recipe") or default_recipe()),
        "g": str(merged.get("strategy", "keyframes")),
    }


def options_keyboard(choices: dict[str, Any], defaults: dict[str, Any]) -> InlineKeyboardMarkup:
    current = _current(choices, defaults)
    recipes = recipe_names()

    def row(key: str, values: tuple[str, ...]) -> list[InlineKeyboardButton]:
        return [
            InlineKeyboardButton(("✓ " if current[key] == v else "") + v, callback_data=f"opt:{key}:{v}")
            for v in values
        ]

    return InlineKeyboardMarkup(
        [
            row("s", SECONDS),
            row("r", tuple(RESOLUTIONS)),
            *(row("m", recipes[i : i + 2]) for i in range(0, len(recipes), 2)),
            row("g", STRATEGIES),
        ]
    )


def apply_choice(choices: dict[str, Any], argument: str) -> bool:
    """Apply "<key>:<value>" to `choices` in place; False if nothing changed or the value is unknown."""
    key, _, value = argument.partition(":")
    before = dict(choices)
    if key == "s" and value in SECONDS:
        choices["seconds"] = float(value)
    elif key == "r" and value in RESOLUTIONS:
        choices["width"], choices["height"] = RESOLUTIONS[value]
    elif key == "m" and value in recipe_names():
        choices["recipe"] = value
    elif key == "g" and value in STRATEGIES:
        choices["strategy"] = value
    return choices != before
