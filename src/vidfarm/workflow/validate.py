"""Check an API-format graph against a server's /object_info before sending it.

The verdicts use ComfyUI's own error types (`required_input_missing`, `value_not_in_list`, ...) so a check
made here and the server's own rejection can be compared one to one; each Problem adds the fix.
Like the server, only nodes that feed an output node are checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vidfarm.comfy.compat import missing_node_problem
from vidfarm.errors import Problem
from vidfarm.workflow.declaration import ModelFile
from vidfarm.workflow.graph import Graph, is_link

ObjectInfo = dict[str, dict[str, Any]]
UPLOAD_KEYS = ("image_upload", "video_upload", "audio_upload", "file_upload")
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")


def combo_options(spec: list[Any]) -> list[Any] | None:
    """Options of a combo input in either schema: V1 `[[...], {}]` or V3 `["COMBO", {"options": [...]}]`."""
    if spec and isinstance(spec[0], list):
        return list(spec[0])
    if spec and spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return list(spec[1].get("options", []))
    return None


def input_specs(info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    section = info.get("input", {})
    return dict(section.get("required", {})), dict(section.get("optional", {}))


def output_nodes(graph: Graph, object_info: ObjectInfo) -> list[str]:
    return [nid for nid, node in graph.items() if object_info.get(node["class_type"], {}).get("output_node")]


def _ancestors(graph: Graph, roots: Iterable[str]) -> list[str]:
    seen: list[str] = []
    stack = list(roots)
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in graph:
            continue
        seen.append(nid)
        stack.extend(v[0] for v in graph[nid]["inputs"].values() if is_link(v))
    return seen


def validate_graph(
    graph: Graph,
    object_info: ObjectInfo,
    *,
    models: Iterable[ModelFile] = (),
    server_version: str | None = None,
    origins: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every reason this graph would be rejected by the server that `object_info` came from.

    `server_version` and `origins` (class -> "comfy-core" or a pack id, from an editor file's cnr_id/aux_id) only
    sharpen the advice for a missing node class (compat.missing_node_fix)."""
    missing_classes = [
        missing_node_problem(nid, node["class_type"], server_version=server_version, origins=origins)
        for nid, node in graph.items()
        if node["class_type"] not in object_info
    ]
    if missing_classes:
        return missing_classes
    outputs = output_nodes(graph, object_info)
    if not outputs:
        return [
            Problem(
                "",
                "",
                "prompt_no_outputs",
                None,
                "the workflow has no output node",
                "add a SaveImage, SaveVideo or another save node",
            )
        ]
    by_file = {m.file: m for m in models}
    problems: list[Problem] = []
    for nid in sorted(_ancestors(graph, outputs), key=_node_order):
        problems.extend(_check_node(nid, graph, object_info, by_file))
    return problems


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)


def _check_node(nid: str, graph: Graph, object_info: ObjectInfo, models: dict[str, ModelFile]) -> list[Problem]:
    node = graph[nid]
    class_type = node["class_type"]
    required, optional = input_specs(object_info[class_type])
    problems = [
        Problem(
            nid,
            class_type,
            "required_input_missing",
            name,
            "required input is missing",
            f"connect it or give it a value (e.g. {_example(spec)})",
        )
        for name, spec in required.items()
        if name not in node["inputs"]
    ]
    for name, value in node["inputs"].items():
        spec = required.get(name) or optional.get(name)
        if spec is None:
            continue  # ComfyUI ignores inputs it does not know (e.g. widgets of other versions)
        problem = (
            _check_link(nid, class_type, name, value, spec, graph, object_info)
            if is_link(value)
            else _check_value(nid, class_type, name, value, spec, models)
        )
        if problem:
            problems.append(problem)
    return problems


def _example(spec: list[Any]) -> str:
    options = combo_options(spec)
    if options:
        return repr(options[0])
    if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]:
        return repr(spec[1]["default"])
    return f"a link from a node with a {spec[0]} output"


def _check_link(
    nid: str,
    class_type: str,
    name: str,
    value: list[Any],
    spec: list[Any],
    graph: Graph,
    object_info: ObjectInfo,
) -> Problem | None:
    source_id, index = value
    if source_id not in graph:
        return Problem(
            nid,
            class_type,
            "exception_during_validation",
            name,
            f"is linked to node {source_id}, which is not in the workflow",
            "re-export the workflow from the editor, or fix the link",
        )
    source_class = graph[source_id]["class_type"]
    outputs = object_info[source_class].get("output", [])
    if index >= len(outputs):
        return Problem(
            nid,
            class_type,
            "exception_during_validation",
            name,
            f"is linked to output {index} of node {source_id} ({source_class}), which has {len(outputs)}",
            "fix the link",
        )
    wanted = spec[0] if isinstance(spec[0], str) else "COMBO"
    got = outputs[index]
    if wanted not in ("*", "COMBO") and got != "*" and not _types_match(wanted, got):
        return Problem(
            nid,
            class_type,
            "return_type_mismatch",
            name,
            f"needs {wanted} but node {source_id} ({source_class}) gives {got}",
            "link an output of the right type",
        )
    return None


def _types_match(wanted: str, got: Any) -> bool:
    if not isinstance(got, str):
        return True  # combo outputs are lists
    return bool(set(wanted.split(",")) & set(got.split(",")))


def _check_value(
    nid: str, class_type: str, name: str, value: Any, spec: list[Any], models: dict[str, ModelFile]
) -> Problem | None:
    options = combo_options(spec)
    if options is not None:
        return _check_combo(nid, class_type, name, value, spec, options, models)
    kind = spec[0]
    limits = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if kind in ("INT", "FLOAT"):
        return _check_number(nid, class_type, name, value, kind, limits)
    return None


def _check_number(
    nid: str, class_type: str, name: str, value: Any, kind: str, limits: dict[str, Any]
) -> Problem | None:
    try:
        number = int(value) if kind == "INT" else float(value)
    except (TypeError, ValueError):
        return Problem(
            nid,
            class_type,
            "invalid_input_type",
            name,
            f"{value!r} is not a {kind} value",
            f"give a number such as {limits.get('default', 0)}",
        )
    if "min" in limits and number < limits["min"]:
        return Problem(
            nid,
            class_type,
            "value_smaller_than_min",
            name,
            f"value {number} is smaller than the minimum {limits['min']}",
            f"use at least {limits['min']}",
        )
    if "max" in limits and number > limits["max"]:
        return Problem(
            nid,
            class_type,
            "value_bigger_than_max",
            name,
            f"value {number} is bigger than the maximum {limits['max']}",
            f"use at most {limits['max']}",
        )
    return None


def _check_combo(
    nid: str,
    class_type: str,
    name: str,
    value: Any,
    spec: list[Any],
    options: list[Any],
    models: dict[str, ModelFile],
) -> Problem | None:
    extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if any(extra.get(k) for k in UPLOAD_KEYS) or value in options:
        return None  # LoadImage/LoadVideo-style inputs accept sub-folder paths the combo does not list (transcript §6)
    if isinstance(value, str) and (value in models or value.endswith(MODEL_SUFFIXES)):
        return _missing_model(nid, class_type, name, value, models.get(value))
    shown = ", ".join(map(repr, options[:8])) + (" ..." if len(options) > 8 else "")
    return Problem(
        nid,
        class_type,
        "value_not_in_list",
        name,
        f"{value!r} is not one of [{shown}]",
        "pick one of the listed values",
    )


def _missing_model(nid: str, class_type: str, name: str, value: str, model: ModelFile | None) -> Problem:
    if model is None:
        fix = "put the file in the server's models folder, or declare it in the workflow's [[models]]"
    else:
        source = f"{model.repo}/{model.path}" if model.repo else model.url
        fix = f"download it to models/{model.folder}/{model.file} (from {source})"
    return Problem(nid, class_type, "value_not_in_list", name, f"model file {value} is missing on this server", fix)


def is_missing_model(problem: Problem) -> bool:
    return problem.type == "value_not_in_list" and problem.message.startswith("model file ")
