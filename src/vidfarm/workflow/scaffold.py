"""A first declaration (TOML) for a converted workflow, for a person to review and edit.

Parameters are guessed from input names, node classes and titles: prompt and negative prompt (a text input; the
title says which), seed, width, height, frames, fps, image (LoadImage) and video (LoadVideo), with the ranges
`/object_info` gives. Models come from the editor file's download URLs; custom node packs from its `cnr_id`/`aux_id`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vidfarm.workflow.declaration import ModelFile
from vidfarm.workflow.graph import Graph, is_link
from vidfarm.workflow.sources import NodePack
from vidfarm.workflow.validate import MODEL_SUFFIXES, ObjectInfo, input_specs

NAMES = {
    "seed": ("seed", "noise_seed"),
    "width": ("width",),
    "height": ("height",),
    "frames": ("length", "frames", "num_frames", "frame_count", "video_frames"),
    "fps": ("fps", "frame_rate"),
}
TEXT_INPUTS = ("text", "prompt", "positive_prompt", "negative_prompt")
FILE_INPUTS = {("LoadImage", "image"): ("image", "image"), ("LoadVideo", "file"): ("video", "file")}
VIDEO_SAVERS = ("SaveVideo", "SaveWEBM", "SaveAnimatedWEBP", "SaveAnimatedPNG", "VHS_VideoCombine")
TYPES = {"INT": "int", "FLOAT": "float", "STRING": "string", "BOOLEAN": "bool"}


@dataclass
class Guess:
    name: str
    type: str
    targets: list[str] = field(default_factory=list)
    default: Any = None
    limits: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _node_order(node_id: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 1 << 30 for p in node_id.split(":"))


def _parameter_for(node: dict[str, Any], input_name: str) -> tuple[str, str] | None:
    """(parameter name, parameter type) this input would fill, or None."""
    if (node["class_type"], input_name) in FILE_INPUTS:
        return FILE_INPUTS[(node["class_type"], input_name)]
    if input_name in TEXT_INPUTS:
        title = f"{node.get('_meta', {}).get('title', '')} {input_name}".lower()
        return ("negative_prompt" if "neg" in title else "prompt"), "string"
    for name, inputs in NAMES.items():
        if input_name in inputs:
            return name, ""
    return None


def guess_parameters(graph: Graph, object_info: ObjectInfo) -> dict[str, Guess]:
    guesses: dict[str, Guess] = {}
    for node_id in sorted(graph, key=_node_order):
        node = graph[node_id]
        required, optional = input_specs(object_info.get(node["class_type"], {}))
        for input_name, value in node["inputs"].items():
            spec = required.get(input_name) or optional.get(input_name)
            found = _parameter_for(node, input_name)
            if found is None or spec is None or is_link(value) or isinstance(value, list):
                continue
            name, kind = found
            kind = kind or TYPES.get(str(spec[0]), "string")
            if name in ("image", "video") and name in guesses:
                name = f"{name}_{sum(g.name.startswith(name) for g in guesses.values()) + 1}"
            guess = guesses.setdefault(name, Guess(name, kind, default=value))
            guess.targets.append(f"{node_id}.{input_name}")
            if not guess.limits and len(spec) > 1 and isinstance(spec[1], dict):
                guess.limits = {
                    k: spec[1][k] for k in ("min", "max", "step") if k in spec[1] and kind in ("int", "float")
                }
            guess.description = guess.description or node.get("_meta", {}).get("title", "")
    return guesses


def guess_kind(graph: Graph, guesses: dict[str, Guess]) -> str:
    video = any(node["class_type"] in VIDEO_SAVERS for node in graph.values())
    if not video:
        return "image"
    return "i2v" if "image" in guesses else "t2v"


def output_roles(graph: Graph) -> dict[str, str]:
    roles: dict[str, str] = {}
    for node_id in sorted(graph, key=_node_order):
        role = "video" if graph[node_id]["class_type"] in VIDEO_SAVERS else None
        if graph[node_id]["class_type"] in ("SaveImage",):
            role = "image"
        if role:
            roles.setdefault(role, node_id)
    return roles


def model_values(graph: Graph) -> list[str]:
    """Literal inputs that look like model files (to list the ones the file gives no source for)."""
    found = {
        v
        for node in graph.values()
        for v in node["inputs"].values()
        if isinstance(v, str) and v.endswith(MODEL_SUFFIXES)
    }
    return sorted(found)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if repr(value) not in ("inf", "-inf", "nan") else json.dumps(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _parameter_lines(guess: Guess) -> list[str]:
    lines = [
        f"[parameters.{guess.name}]",
        f"targets = {_toml_value(guess.targets)}",
        f"type = {_toml_value(guess.type)}",
    ]
    if guess.default is not None and not (guess.type == "float" and not isinstance(guess.default, (int, float))):
        default = float(guess.default) if guess.type == "float" else guess.default
        lines.append(f"default = {_toml_value(default)}")
    for key, limit in guess.limits.items():
        lines.append(f"{key} = {_toml_value(float(limit) if guess.type == 'float' else limit)}")
    if guess.description:
        lines.append(f"description = {_toml_value('from ' + guess.description)}")
    return [*lines, ""]


def _model_lines(model: ModelFile) -> list[str]:
    lines = ["[[models]]", f"folder = {_toml_value(model.folder)}", f"file = {_toml_value(model.file)}"]
    for key in ("repo", "path", "revision", "url"):
        if getattr(model, key):
            lines.append(f"{key} = {_toml_value(getattr(model, key))}")
    return [*lines, ""]


def scaffold_declaration(
    name: str,
    graph: Graph,
    object_info: ObjectInfo,
    *,
    models: list[ModelFile],
    packs: list[NodePack],
    source: str,
) -> str:
    """The text of `<name>.toml` for `graph` (written beside `<name>.json`)."""
    guesses = guess_parameters(graph, object_info)
    lines = [
        f"# Imported from {source} by `vidfarm workflows import`: review the guesses below, then run",
        f"# `vidfarm workflows validate {name}`. Parameter defaults are the editor file's values.",
        "[workflow]",
        f"title = {_toml_value(name.replace('_', ' '))}",
        f"kind = {_toml_value(guess_kind(graph, guesses))}",
        f"model_free = {_toml_value(not model_values(graph))}",
        f"custom_nodes = {_toml_value([p.name for p in packs])}",
    ]
    lines += [f"# custom node pack {p}" for p in packs] + [""]
    for guess in guesses.values():
        lines += _parameter_lines(guess)
    roles = output_roles(graph)
    if roles:
        lines += ["[outputs]", *(f"{role} = {_toml_value(nid)}" for role, nid in roles.items()), ""]
    for model in models:
        lines += _model_lines(model)
    sourced = {m.file for m in models}
    lines += [
        f"# no download source in the file for {v}: add a [[models]] entry"
        for v in model_values(graph)
        if v not in sourced
    ]
    return "\n".join(lines).rstrip() + "\n"
