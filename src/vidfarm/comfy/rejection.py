"""Turn ComfyUI's answers about a bad prompt into Problems (both the 0.3.x and the 2024 shapes, transcript §8)."""

from __future__ import annotations

import re
from typing import Any

from vidfarm.comfy.compat import missing_node_problem
from vidfarm.errors import Problem, PromptRejected

_NODE_ID = re.compile(r"Node ID '#?([^']+)'")
_MISSING_CLASS = re.compile(r"node (\S+) does not exist", re.IGNORECASE)


def problems_from_node_errors(node_errors: Any) -> list[Problem]:
    if not isinstance(node_errors, dict):
        return []  # legacy sends [] when there is nothing per node
    problems = []
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type", "?")
        for error in entry.get("errors", []):
            extra = error.get("extra_info") or {}
            problems.append(
                Problem(
                    node_id=str(node_id),
                    class_type=class_type,
                    type=error.get("type", "unknown"),
                    input_name=extra.get("input_name"),
                    message=f"{error.get('message', '')}: {error.get('details', '')}".rstrip(": "),
                )
            )
    return problems


def rejection_from_response(status: int, body: Any, text: str) -> PromptRejected:
    """The PromptRejected for a /prompt answer that did not queue the whole prompt."""
    if not isinstance(body, dict):
        if status >= 500:
            return PromptRejected(
                f"ComfyUI failed on the request (HTTP {status}): it sends this for malformed JSON and, on old "
                f"versions, for an unknown node class. Server said: {text[:200]!r}",
                [],
            )
        return PromptRejected(f"ComfyUI rejected the prompt (HTTP {status}): {text[:200]!r}", [])
    error = body.get("error")
    problems = problems_from_node_errors(body.get("node_errors"))
    if isinstance(error, str):
        return PromptRejected(f"ComfyUI rejected the prompt: {error}", problems)
    error = error or {}
    message = error.get("message", "")
    missing = _MISSING_CLASS.search(message)
    if missing:
        node = _NODE_ID.search(error.get("details", ""))
        problems.append(missing_node_problem(node.group(1) if node else "?", missing.group(1)))
    if not problems and body.get("node_errors"):
        return PromptRejected("ComfyUI queued the prompt but dropped invalid outputs", problems)
    return PromptRejected(
        f"ComfyUI rejected the prompt: {message or 'no reason given'} ({error.get('type', 'unknown')})",
        problems,
    )
