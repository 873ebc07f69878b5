"""Editor (UI-format) workflow files, read into the few structures the converter walks.

An editor file is `{"nodes": [...], "links": [...], "definitions": {"subgraphs": [...]}, ...}`. Links are lists
`[id, origin_id, origin_slot, target_id, target_slot, type]` at the top level and objects with the same fields
inside subgraph definitions. A node whose `type` is a subgraph id is an instance of that subgraph: inside the
definition, node -10 stands for the instance's inputs and node -20 for its outputs.

A `Scope` is one level of the graph as the converter sees it: the top level, or one subgraph instance (its
definition, seen through that instance). Node ids in the API graph are the path of instance ids, as the editor
itself exports them: node 12 inside instance 57 is "57:12".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUBGRAPH_INPUT = "-10"
SUBGRAPH_OUTPUT = "-20"
MUTED, BYPASSED = 2, 4
# Editor-only nodes: they never reach the server. Reroute and PrimitiveNode are followed, not dropped silently.
UI_ONLY = frozenset(
    {
        "Note",
        "MarkdownNote",
        "Reroute",
        "PrimitiveNode",
        "Label (rgthree)",
        "Bookmark (rgthree)",
        "Fast Groups Bypasser (rgthree)",
        "Fast Groups Muter (rgthree)",
    }
)
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})

EditorNode = dict[str, Any]


@dataclass(frozen=True)
class Link:
    id: str
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: str


def parse_link(raw: Any) -> Link | None:
    """A link in either form (list or object); None for a malformed entry."""
    if isinstance(raw, dict):
        keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot")
        if not all(k in raw for k in keys):
            return None
        parts = [raw[k] for k in keys] + [raw.get("type", "*")]
    elif isinstance(raw, list) and len(raw) >= 5:
        parts = list(raw[:6]) + ["*"] * (6 - len(raw[:6]))
    else:
        return None
    return Link(str(parts[0]), str(parts[1]), int(parts[2]), str(parts[3]), int(parts[4]), str(parts[5]))


def is_editor_file(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


@dataclass
class Scope:
    prefix: str  # "" at the top, "57:" inside instance 57
    nodes: dict[str, EditorNode]
    links: dict[str, Link]
    parent: Scope | None = None
    instance: EditorNode | None = None  # the instance node in the parent scope
    definition: dict[str, Any] = field(default_factory=dict)
    promoted: dict[str, Any] = field(default_factory=dict)  # subgraph input name -> value set on the instance
    overrides: dict[tuple[str, str], Any] = field(default_factory=dict)  # (inner node id, widget) -> value
    chain: tuple[str, ...] = ()  # subgraph ids from the top, to refuse a subgraph that contains itself

    def api_id(self, node_id: str) -> str:
        return f"{self.prefix}{node_id}"


def _index_nodes(nodes: Any) -> dict[str, EditorNode]:
    return {str(n["id"]): n for n in nodes or [] if isinstance(n, dict) and "id" in n}


def _index_links(links: Any) -> dict[str, Link]:
    parsed = (parse_link(raw) for raw in links or [])
    return {link.id: link for link in parsed if link is not None}


def top_scope(data: dict[str, Any]) -> Scope:
    return Scope("", _index_nodes(data.get("nodes")), _index_links(data.get("links")))


def subgraph_definitions(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    definitions = data.get("definitions") or {}
    found = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    return {str(s["id"]): s for s in found or [] if isinstance(s, dict) and "id" in s}


def child_scope(parent: Scope, instance: EditorNode, definition: dict[str, Any]) -> Scope:
    promoted, overrides = promoted_values(instance, definition)
    return Scope(
        prefix=parent.api_id(str(instance["id"])) + ":",
        nodes=_index_nodes(definition.get("nodes")),
        links=_index_links(definition.get("links")),
        parent=parent,
        instance=instance,
        definition=definition,
        promoted=promoted,
        overrides=overrides,
        chain=(*parent.chain, str(definition["id"])),
    )


def promoted_values(
    instance: EditorNode, definition: dict[str, Any]
) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """The widget values an instance sets: per subgraph input, and per inner widget.

    Newer editors list them in `properties.proxyWidgets` (`["-1", input]` for a subgraph input, `[node, widget]` for
    a widget of an inner node); older ones give one value per widget-typed subgraph input, in input order.
    """
    values = instance.get("widgets_values")
    if not isinstance(values, list):
        return {}, {}
    proxy = (instance.get("properties") or {}).get("proxyWidgets")
    by_input: dict[str, Any] = {}
    overrides: dict[tuple[str, str], Any] = {}
    if isinstance(proxy, list) and proxy:
        for entry, value in zip(proxy, values, strict=False):
            node_id, widget = str(entry[0]), str(entry[1])
            if node_id == "-1":
                by_input[widget] = value
            else:
                overrides[(node_id, widget)] = value
        return by_input, overrides
    widget_inputs = [i for i in definition.get("inputs", []) if str(i.get("type")) in WIDGET_TYPES]
    by_input = {str(i["name"]): value for i, value in zip(widget_inputs, values, strict=False)}
    return by_input, overrides


def node_title(node: EditorNode) -> str:
    return str(node.get("title") or "")


def node_pack(node: EditorNode) -> tuple[str, str]:
    """(cnr_id, aux_id) the editor recorded for the node's pack; empty strings where it says nothing."""
    properties = node.get("properties") or {}
    return str(properties.get("cnr_id") or ""), str(properties.get("aux_id") or "")


def all_nodes(data: dict[str, Any]) -> list[EditorNode]:
    """Every node of the file: the top level and every subgraph definition."""
    nodes = [n for n in data.get("nodes") or [] if isinstance(n, dict)]
    for definition in subgraph_definitions(data).values():
        nodes += [n for n in definition.get("nodes") or [] if isinstance(n, dict)]
    return nodes
