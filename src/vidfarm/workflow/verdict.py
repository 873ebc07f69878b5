"""Verdicts: for each problem of a workflow, which kind it is and what the person does about it.

| kind          | meaning                                                    | what to do                          |
|---------------|------------------------------------------------------------|-------------------------------------|
| upgrade       | a core node this ComfyUI is too old for                    | upgrade ComfyUI                     |
| custom nodes  | a node from a custom node pack the server does not have    | install the named pack              |
| model         | a model file missing from the server's models folder       | download it (folder, file, source)  |
| unsupported   | an editor feature the converter does not handle            | what to change in the editor        |
| invalid       | anything else the server would reject                      | the Problem's own fix               |

`unknown_node` is the one place that tells a too-old ComfyUI from a missing custom node pack; the API-format
checks can use it with whatever the file says about the node (an editor file's `properties`), or nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from vidfarm.errors import Problem
from vidfarm.workflow.declaration import ModelFile
from vidfarm.workflow.graph import Graph
from vidfarm.workflow.validate import ObjectInfo, is_missing_model, validate_graph

UPGRADE, CUSTOM_NODES, MODEL, UNSUPPORTED, INVALID = "upgrade", "custom nodes", "model", "unsupported", "invalid"
KINDS = (UPGRADE, CUSTOM_NODES, MODEL, UNSUPPORTED, INVALID)
CORE_PACK = "comfy-core"


def pack_source(cnr_id: str, aux_id: str) -> str:
    """Where a pack comes from, as the editor recorded it: a registry id and/or a GitHub 'owner/repo'."""
    parts = []
    if cnr_id:
        parts.append(f"registry id {cnr_id!r} (comfy node install {cnr_id})")
    if aux_id:
        parts.append(f"repository https://github.com/{aux_id}")
    return ", ".join(parts)


def unknown_node(node_id: str, class_type: str, properties: dict[str, Any], *, server_version: str = "") -> Problem:
    """The verdict for a node class the server lacks, from what the file says about the node's origin."""
    cnr_id = str(properties.get("cnr_id") or "")
    aux_id = str(properties.get("aux_id") or "")
    saved_with = str(properties.get("ver") or "")
    server = f"ComfyUI {server_version}" if server_version else "this ComfyUI"
    if cnr_id == CORE_PACK:
        newer = f" (the file was saved with ComfyUI {saved_with})" if saved_with else ""
        return Problem(
            node_id,
            class_type,
            "missing_node_type",
            None,
            f"core node {class_type} is newer than {server}{newer}",
            "upgrade ComfyUI on the server",
            UPGRADE,
        )
    if cnr_id or aux_id:
        return Problem(
            node_id,
            class_type,
            "missing_node_type",
            None,
            f"node {class_type} comes from the custom node pack {cnr_id or aux_id}, which {server} does not have",
            f"install the pack: {pack_source(cnr_id, aux_id)}",
            CUSTOM_NODES,
        )
    return Problem(
        node_id,
        class_type,
        "missing_node_type",
        None,
        f"node class {class_type} is neither a core node of {server} nor named with its pack in the file",
        "install the custom node pack that provides it (search its name in ComfyUI-Manager), or upgrade ComfyUI",
        CUSTOM_NODES,
    )


def unsupported(node_id: str, class_type: str, what: str, fix: str) -> Problem:
    message = f"{what}; the converter does not handle it"
    return Problem(node_id, class_type, "unsupported_feature", None, message, fix, UNSUPPORTED)


def classify(problem: Problem) -> Problem:
    """The problem with its kind set (validation problems come without one)."""
    if problem.kind:
        return problem
    if is_missing_model(problem):
        kind = MODEL
    elif problem.type == "missing_node_type":
        return unknown_node(problem.node_id, problem.class_type, {})
    else:
        kind = INVALID
    return dataclasses.replace(problem, kind=kind)


def verdicts(
    graph: Graph, object_info: ObjectInfo, *, models: Iterable[ModelFile] = (), known: Iterable[Problem] = ()
) -> list[Problem]:
    """Every problem of a (converted) graph with its kind: `known` ones (from the conversion) first.

    Nodes the conversion already judged are left out of the graph check, so each gets one verdict.
    """
    known = list(known)
    judged = {p.node_id for p in known}
    runnable = {nid: node for nid, node in graph.items() if nid not in judged}
    checked = validate_graph(runnable, object_info, models=models)
    if known:  # links into the judged nodes dangle: of the rest, only the missing models still tell something
        checked = [p for p in checked if is_missing_model(p)]
    return [classify(p) for p in known + checked]


def summary(problems: list[Problem]) -> str:
    """One line: how many problems of each kind ("2 model, 1 custom nodes"), or "runs as it is"."""
    if not problems:
        return "runs as it is"
    counts = {kind: sum(p.kind == kind for p in problems) for kind in KINDS}
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
