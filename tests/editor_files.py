"""Editor (UI-format) files built in tests, as the ComfyUI editor saves them.

`to_editor` writes an API-format graph the way the editor stores it: widget values in the schema's order, the
hidden `control_after_generate` value after each seed, the upload button's value after an image input, one link
list entry per link, and an input slot (with `widget`) for every linked widget.
"""

from __future__ import annotations

from typing import Any

from vidfarm.workflow.convert import widget_inputs
from vidfarm.workflow.graph import is_link

Editor = dict[str, Any]


def _widgets(node: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for name, spec in widget_inputs(schema):
        value = node["inputs"].get(name)
        values.append(None if is_link(value) else value)
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if options.get("control_after_generate") or name in ("seed", "noise_seed"):
            values.append("fixed")
        if options.get("image_upload") or options.get("video_upload"):
            values.append("image")
    return values


def to_editor(graph: dict[str, dict[str, Any]], object_info: dict[str, Any]) -> Editor:
    nodes: list[dict[str, Any]] = []
    links: list[list[Any]] = []
    for node_id, node in graph.items():
        schema = object_info[node["class_type"]]
        widget_names = {name for name, _ in widget_inputs(schema)}
        inputs = []
        for name, value in node["inputs"].items():
            if not is_link(value):
                continue
            link_id = len(links) + 1
            source = graph[value[0]]["class_type"]
            kind = object_info[source]["output"][value[1]]
            links.append([link_id, int(value[0]), value[1], int(node_id), len(inputs), kind])
            slot: dict[str, Any] = {"name": name, "type": kind, "link": link_id}
            if name in widget_names:
                slot["widget"] = {"name": name}
            inputs.append(slot)
        outputs = [{"name": t, "type": t, "links": []} for t in schema["output"]]
        entry = {
            "id": int(node_id),
            "type": node["class_type"],
            "mode": 0,
            "inputs": inputs,
            "outputs": outputs,
            "properties": {"cnr_id": "comfy-core"},
            "widgets_values": _widgets(node, schema),
        }
        if node.get("_meta", {}).get("title"):
            entry["title"] = node["_meta"]["title"]
        nodes.append(entry)
    for link in links:
        nodes[[n["id"] for n in nodes].index(link[1])]["outputs"][link[2]]["links"].append(link[0])
    return {"last_node_id": max(n["id"] for n in nodes), "nodes": nodes, "links": links, "version": 0.4}


def without_titles(graph: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {nid: {"class_type": n["class_type"], "inputs": n["inputs"]} for nid, n in graph.items()}
