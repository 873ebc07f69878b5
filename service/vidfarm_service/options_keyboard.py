"""The inline option buttons: length, shape, model (recipe) and strategy, each row under a label button, built from
what can run here now, each choice checked by the core (`vidfarm.jobs.spec.check_options`) before it is saved.

callback_data is "opt:<key>:<value>" (well under Telegram's 64 bytes); "noop" for the labels. The choice is stored
per user and applies to that user's next videos. A real-model recipe is offered only where DEFAULTS names GPU
workers: without them it would fail after a minute of starting ComfyUI.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from vidfarm.errors import WorkflowError
from vidfarm.jobs.options import default_recipe
from vidfarm.jobs.spec import check_options
from vidfarm.render.plan import STRATEGIES
from vidfarm.workflow.recipe import load_recipes
from vidfarm_service.catalogue import duration, say
from vidfarm_service.estimates import Estimate
from vidfarm_service.submissions import RESOLUTIONS

SECONDS = ("4", "8", "15", "30", "60")
AUTO = "auto"  # shape from the photo (portrait photo -> portrait video); text jobs use the default shape


def runnable_recipes(defaults: dict[str, Any]) -> tuple[str, ...]:
    """Recipes that can run with this service's configuration, in workflows/recipes.toml's order."""
    has_gpus = bool(defaults.get("workers")) and not str(defaults.get("workers")).startswith("local")
    return tuple(name for name, recipe in load_recipes().items() if recipe.model_free or has_gpus)


def unavailable_recipes(defaults: dict[str, Any]) -> tuple[str, ...]:
    return tuple(name for name in load_recipes() if name not in runnable_recipes(defaults))


def merged(choices: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {**defaults, **{k: v for k, v in choices.items() if k != "shape"}}


def _current(choices: dict[str, Any], defaults: dict[str, Any]) -> dict[str, str]:
    values = merged(choices, defaults)
    size = next((name for name, wh in RESOLUTIONS.items() if wh == (values.get("width"), values.get("height"))), "")
    return {
        "s": f"{float(values.get('seconds', 0)):g}",
        "r": AUTO if choices.get("shape") == AUTO or "width" not in choices else size,
        "m": str(values.get("recipe") or default_recipe()),
        "g": str(values.get("strategy", "keyframes")),
    }


def options_text(
    choices: dict[str, Any], defaults: dict[str, Any], lang: str, estimate: Estimate, cost: Estimate
) -> str:
    """The message above the buttons: each runnable model's time (and GPU cost, once measured) for the current
    length, and what cannot run."""
    seconds = float(merged(choices, defaults).get("seconds", 8))
    lines = [say(lang, "options_title")]
    for name in runnable_recipes(defaults):
        took, paid = estimate(name, seconds), cost(name, seconds)
        if took is None:
            lines.append(say(lang, "estimate_unknown", name=name))
        elif paid is None:
            lines.append(say(lang, "estimate", name=name, eta=duration(took, lang)))
        else:
            lines.append(say(lang, "estimate_cost", name=name, eta=duration(took, lang), cost=paid))
    missing = unavailable_recipes(defaults)
    if missing:
        lines.append(say(lang, "recipe_unavailable", names=", ".join(missing)))
    return "\n".join(lines)


def options_keyboard(choices: dict[str, Any], defaults: dict[str, Any], lang: str = "en") -> InlineKeyboardMarkup:
    current = _current(choices, defaults)
    recipes = runnable_recipes(defaults)

    def label(key: str) -> list[InlineKeyboardButton]:
        return [InlineKeyboardButton(f"— {say(lang, key)} —", callback_data="noop")]

    def row(key: str, values: tuple[str, ...], names: dict[str, str] | None = None) -> list[InlineKeyboardButton]:
        shown = names or {}
        return [
            InlineKeyboardButton(
                ("✓ " if current[key] == v else "") + shown.get(v, v + (" s" if key == "s" else "")),
                callback_data=f"opt:{key}:{v}",
            )
            for v in values
        ]

    return InlineKeyboardMarkup(
        [
            label("row_seconds"),
            row("s", SECONDS),
            label("row_shape"),
            row("r", (AUTO, *RESOLUTIONS), {AUTO: say(lang, "shape_auto")}),
            label("row_recipe"),
            *(row("m", recipes[i : i + 2]) for i in range(0, len(recipes), 2)),
            label("row_strategy"),
            row("g", STRATEGIES),
        ]
    )


def apply_choice(choices: dict[str, Any], argument: str, defaults: dict[str, Any]) -> bool:
    """Apply "<key>:<value>" to `choices` in place; False if nothing changed or the value is not offered;
    WorkflowError (the core's message) if the combination cannot run, with `choices` left as it was."""
    key, _, value = argument.partition(":")
    before = dict(choices)
    if key == "s" and value in SECONDS:
        choices["seconds"] = float(value)
    elif key == "r" and value == AUTO:
        choices.pop("width", None), choices.pop("height", None)
        choices["shape"] = AUTO
    elif key == "r" and value in RESOLUTIONS:
        choices["width"], choices["height"] = RESOLUTIONS[value]
        choices.pop("shape", None)
    elif key == "m" and value in runnable_recipes(defaults):
        choices["recipe"] = value
    elif key == "g" and value in STRATEGIES:
        choices["strategy"] = value
    try:
        check_options(merged(choices, defaults))
    except WorkflowError:
        choices.clear()
        choices.update(before)
        raise
    return choices != before


def typed_options(text: str) -> dict[str, Any]:
    """`/options seconds 12 seed 7` (or key=value): the typed form, for values no button offers."""
    words = text.replace("=", " ").split()
    if len(words) % 2:
        raise WorkflowError("write options as pairs, e.g. /options seconds 12 seed 7")
    return dict(zip(words[::2], words[1::2], strict=True))
