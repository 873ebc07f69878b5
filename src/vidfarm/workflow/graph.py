"""API-format ComfyUI graphs: load them, tell them from editor (UI-format) files, make each run unique.

An API-format graph is `{node_id: {"class_type": str, "inputs": {name: value | [node_id, output_index]}}}`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from vidfarm.errors import WorkflowError

Graph = dict[str, dict[str, Any]]

EXPORT_HINT = (
    "In the ComfyUI editor, enable Settings > Comfy > Dev mode (older versions) and use "
    "Workflow > Export (API) - the file it writes maps node ids to {class_type, inputs}."
)


def is_link(value: object) -> bool:
    """A link is `[node_id, output_index]`; anything else is a literal value."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def parse_graph(data: object, *, source: str = "workflow") -> Graph:
    """Check the shape of an API-format graph and return it; say clearly what is wrong otherwise."""
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict) and "nodes" not in data:
        data = data["prompt"]  # a saved /prompt request body
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        raise WorkflowError(f"{source} is an editor (UI-format) workflow, but the API format is needed. {EXPORT_HINT}")
    if not isinstance(data, dict) or not data:
        raise WorkflowError(f"{source} is not an API-format workflow: expected a JSON object of nodes. {EXPORT_HINT}")
    graph: Graph = {}
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise WorkflowError(
                f"{source}: node {node_id!r} has no class_type; is this an API-format export? {EXPORT_HINT}"
            )
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            raise WorkflowError(f"{source}: node {node_id} ({node['class_type']}) has inputs that are not an object")
        graph[str(node_id)] = {**node, "inputs": dict(inputs)}
    return graph


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowError(f"workflow file {path} does not exist") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_graph(data, source=str(path))


def with_unique_outputs(graph: Graph, run_id: str) -> Graph:
    """Copy of the graph whose save nodes write under `vidfarm/<run_id>/`.

    ComfyUI caches the last prompt's node outputs: an identical graph writes no new files and history points at
    the old ones (transcript §7). A per-run filename_prefix makes every save node run again and keeps each run's
    files apart, so what we download is what this run wrote.
    """
    unique = copy.deepcopy(graph)
    for node in unique.values():
        prefix = node["inputs"].get("filename_prefix")
        if isinstance(prefix, str):
            base = prefix.rsplit("/", 1)[-1] or "out"
            node["inputs"]["filename_prefix"] = f"vidfarm/{run_id}/{base}"
    return unique


def output_prefix(run_id: str) -> str:
    return f"vidfarm/{run_id}"
