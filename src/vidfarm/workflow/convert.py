"""Convert an editor (UI-format) workflow into an API-format graph, using a server's /object_info.

What the editor's own *Export (API)* does, done here so a shared file runs from a notebook, a batch or a phone:

- widget values are matched to the node's widget inputs in the schema's `input_order`; the hidden
  `control_after_generate` value after a seed and the upload button's value after an image/video input are skipped;
- linked inputs (widgets converted to inputs included) become links; links are followed through `Reroute`,
  `PrimitiveNode` (its value is written in), bypassed nodes (mode 4: to their input of the same type) and subgraph
  instances (into the definition and out again, nested, with promoted widgets); muted nodes (mode 2) are dropped;
- notes and other editor-only nodes are dropped.

Nothing here raises on a strange file: what cannot be converted becomes a `Problem` (see `verdict.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidfarm.errors import Problem
from vidfarm.workflow.editor import (
    BYPASSED,
    MUTED,
    SUBGRAPH_INPUT,
    UI_ONLY,
    WIDGET_TYPES,
    EditorNode,
    Scope,
    child_scope,
    node_title,
    subgraph_definitions,
    top_scope,
)
from vidfarm.workflow.graph import Graph
from vidfarm.workflow.validate import ObjectInfo
from vidfarm.workflow.verdict import unknown_node, unsupported

CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
UPLOAD_KEYS = ("image_upload", "video_upload", "audio_upload", "file_upload")
SEED_NAMES = frozenset({"seed", "noise_seed"})
MAX_DEPTH = 16
KEEP = object()  # a subgraph input nobody set: the inner widget keeps its own value


@dataclass(frozen=True)
class LinkTo:
    node_id: str
    slot: int


@dataclass(frozen=True)
class Literal:
    value: Any


Source = LinkTo | Literal | None


@dataclass
class Conversion:
    graph: Graph
    problems: list[Problem] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # what was left out, and why


def widget_inputs(schema: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """The node's widget inputs in the order the editor stores their values."""
    section = schema.get("input", {})
    order = schema.get("input_order") or {}
    found: list[tuple[str, list[Any]]] = []
    for group in ("required", "optional"):
        specs = section.get(group) or {}
        for name in order.get(group) or list(specs):
            spec = specs.get(name)
            if isinstance(spec, list) and spec and _is_widget(spec):
                found.append((name, spec))
    return found


def _is_widget(spec: list[Any]) -> bool:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("forceInput"):
        return False
    return isinstance(spec[0], list) or spec[0] in WIDGET_TYPES


def map_widgets(values: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """Widget values (a list in schema order, or a dict by name) as {input name: value}."""
    names = widget_inputs(schema)
    if isinstance(values, dict):
        return {name: values[name] for name, _ in names if name in values}
    values = list(values or [])
    mapped: dict[str, Any] = {}
    position = 0
    for index, (name, spec) in enumerate(names):
        if position >= len(values):
            break
        mapped[name] = values[position]
        position += 1
        surplus = len(values) - position > len(names) - index - 1
        if surplus and _has_extra_widget(name, spec, values[position]):
            position += 1
    return mapped


def _has_extra_widget(name: str, spec: list[Any], following: Any) -> bool:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("control_after_generate") or name in SEED_NAMES:
        return following in CONTROL_VALUES
    return any(options.get(key) for key in UPLOAD_KEYS)


class _Converter:
    def __init__(self, data: dict[str, Any], object_info: ObjectInfo) -> None:
        self.object_info = object_info
        self.definitions = subgraph_definitions(data)
        self.result = Conversion({})

    def walk(self, scope: Scope) -> None:
        for node_id, node in scope.nodes.items():
            self._node(scope, node_id, node)

    def _node(self, scope: Scope, node_id: str, node: EditorNode) -> None:
        kind = str(node.get("type", ""))
        where = f"node {scope.api_id(node_id)} ({kind})"
        if node.get("mode") in (MUTED, BYPASSED):
            state = "muted" if node.get("mode") == MUTED else "bypassed (wired through)"
            self.result.dropped.append(f"{where}: {state}")
        elif kind in UI_ONLY:
            self.result.dropped.append(f"{where}: editor-only")
        elif kind in self.definitions:
            self._enter(scope, node)
        elif kind.startswith(("workflow>", "workflow/")):
            self.result.problems.append(
                unsupported(
                    scope.api_id(node_id),
                    kind,
                    "is a group node (the editor's older way to bundle nodes)",
                    "open the file in a recent ComfyUI editor, convert the group node to a subgraph, save it again",
                )
            )
        elif kind not in self.object_info:
            self.result.problems.append(unknown_node(scope.api_id(node_id), kind, node.get("properties") or {}))
        else:
            self._emit(scope, node_id, node, kind)

    def _enter(self, scope: Scope, instance: EditorNode) -> None:
        definition = self.definitions[str(instance["type"])]
        nid = scope.api_id(str(instance["id"]))
        if str(definition["id"]) in scope.chain or len(scope.chain) >= MAX_DEPTH:
            self.result.problems.append(
                unsupported(nid, str(definition.get("name", "")), "is a subgraph that contains itself", "")
            )
            return
        self.walk(child_scope(scope, instance, definition))

    def _emit(self, scope: Scope, node_id: str, node: EditorNode, kind: str) -> None:
        inputs = map_widgets(node.get("widgets_values"), self.object_info[kind])
        for (target, widget), value in scope.overrides.items():
            if target == node_id:
                inputs[widget] = value
        for slot in node.get("inputs") or []:
            self._link_input(scope, slot, inputs)
        title = node_title(node) or str(self.object_info[kind].get("display_name") or kind)
        self.result.graph[scope.api_id(node_id)] = {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}

    def _link_input(self, scope: Scope, slot: dict[str, Any], inputs: dict[str, Any]) -> None:
        if slot.get("link") is None:
            return
        name = str((slot.get("widget") or {}).get("name") or slot.get("name"))
        source = self.follow(scope, str(slot["link"]), 0)
        if source is KEEP and name in inputs:
            return
        if isinstance(source, LinkTo):
            inputs[name] = [source.node_id, source.slot]
        elif isinstance(source, Literal):
            inputs[name] = source.value
        else:
            inputs.pop(name, None)  # linked to nothing that runs: the server sees no value, as from the editor

    def follow(self, scope: Scope, link_id: str, depth: int) -> Source | object:
        link = scope.links.get(link_id)
        if link is None or depth > 64:
            return None
        return self.origin(scope, link.origin_id, link.origin_slot, link.type, depth + 1)

    def origin(self, scope: Scope, node_id: str, slot: int, wanted: str, depth: int) -> Source | object:
        if node_id == SUBGRAPH_INPUT:
            return self._from_instance_input(scope, slot, depth)
        node = scope.nodes.get(node_id)
        if node is None or node.get("mode") == MUTED:
            return None
        kind = str(node.get("type", ""))
        if kind == "Reroute":
            return self._input_source(scope, node, 0, depth)
        if kind == "PrimitiveNode":
            values = node.get("widgets_values") or []
            return Literal(values[0]) if isinstance(values, list) and values else None
        if node.get("mode") == BYPASSED:
            return self._bypass(scope, node, slot, wanted, depth)
        if kind in self.definitions:
            return self._from_instance_output(scope, node, slot, depth)
        return LinkTo(scope.api_id(node_id), slot)

    def _input_source(self, scope: Scope, node: EditorNode, index: int, depth: int) -> Source | object:
        slots = node.get("inputs") or []
        if index >= len(slots) or slots[index].get("link") is None:
            return None
        return self.follow(scope, str(slots[index]["link"]), depth)

    def _bypass(self, scope: Scope, node: EditorNode, slot: int, wanted: str, depth: int) -> Source | object:
        """A bypassed node passes on its input of the output's type: the same slot first, then the first match."""
        outputs = node.get("outputs") or []
        out_type = str(outputs[slot].get("type", wanted)) if slot < len(outputs) else wanted
        slots = node.get("inputs") or []
        order = ([slot] if slot < len(slots) else []) + [i for i in range(len(slots)) if i != slot]
        for index in order:
            in_type = str(slots[index].get("type", ""))
            if in_type == out_type or "*" in (in_type, out_type):
                return self._input_source(scope, node, index, depth)
        return None

    def _from_instance_output(self, scope: Scope, instance: EditorNode, slot: int, depth: int) -> Source | object:
        definition = self.definitions[str(instance["type"])]
        if str(definition["id"]) in scope.chain:
            return None
        outputs = definition.get("outputs") or []
        link_ids = outputs[slot].get("linkIds") or [] if slot < len(outputs) else []
        if not link_ids:
            return None
        return self.follow(child_scope(scope, instance, definition), str(link_ids[0]), depth)

    def _from_instance_input(self, scope: Scope, slot: int, depth: int) -> Source | object:
        if scope.parent is None or scope.instance is None:
            return None
        inputs = scope.definition.get("inputs") or []
        if slot >= len(inputs):
            return None
        name = str(inputs[slot].get("name"))
        for outer in scope.instance.get("inputs") or []:
            if outer.get("name") == name and outer.get("link") is not None:
                return self.follow(scope.parent, str(outer["link"]), depth)
        if name in scope.promoted:
            return Literal(scope.promoted[name])
        return KEEP


def convert_editor(data: dict[str, Any], object_info: ObjectInfo) -> Conversion:
    """The API-format graph of an editor file, and every problem met on the way (never an exception)."""
    converter = _Converter(data, object_info)
    converter.walk(top_scope(data))
    return converter.result
