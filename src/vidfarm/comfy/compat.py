"""Which ComfyUI versions vidfarm supports, and advice for a node class a server does not have.

The node pack uses the V3 node schema (`comfy_api.latest`: `io.ComfyNode`, `ComfyExtension`, `comfy_entrypoint`);
MIN_VERSION, the oldest ComfyUI vidfarm supports, is kept here and nowhere else. Older servers (the 2024 ones
report no `comfyui_version` in /system_stats) fail to load the pack and answer an unknown node with a bare HTTP 500.
Every check that meets a server says what it found and the oldest supported (`version_found`).

`missing_node_problem` is the one place that tells a core node this server is too old for (upgrade ComfyUI) from a
custom node (install its pack, named when the editor file's `cnr_id`/`aux_id` says which). Callers pass what they
know: the server's version and, per class, its origin (`"comfy-core"` or a pack id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from vidfarm.errors import Problem

# 0.3.64 (2025-10): the oldest release whose behaviour was observed (comfyui.md: every protocol check gave the same
# answers as 0.3.75) and one with the V3 schema and `comfy_entrypoint` the pack is written in (both arrived in
# mid-2025, before 0.3.64); nothing older was ever run. The engine tests run on 0.3.75 offline and on PINNED_TAG online.
MIN_VERSION = "0.3.64"
CORE_ORIGIN = "comfy-core"  # the cnr_id the editor writes on core nodes
NODE_PACK = "vidfarm"
_STOCK_SNAPSHOT = Path(__file__).resolve().parents[3] / "workflows" / "object_info" / "comfyui-0.3.75.json"


def parse_version(version: str | None) -> tuple[int, ...] | None:
    """ "0.45.2" -> (0, 45, 2); "v0.3.75-rc1" -> (0, 3, 75); None or garbage -> None."""
    if not version:
        return None
    parts = []
    for piece in version.lstrip("v").split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.end() < len(piece):
            break  # "75-rc1": the rest is a suffix
    return tuple(parts) or None


def too_old(version: str | None) -> bool:
    found = parse_version(version)
    minimum = parse_version(MIN_VERSION)
    return found is None or (minimum is not None and found < minimum)


def folder_version(comfyui_dir: Path) -> str | None:
    """The version a ComfyUI folder declares (comfyui_version.py, what its /system_stats reports); None without."""
    try:
        found = re.search(r"__version__\s*=\s*[\"']([^\"']+)", (comfyui_dir / "comfyui_version.py").read_text())
    except OSError:
        return None
    return found.group(1) if found else None


def version_found(version: str | None) -> str:
    """What a check found, beside the oldest supported: "ComfyUI 0.3.75 (oldest supported 0.3.64)"."""
    found = f"ComfyUI {version}" if version else "ComfyUI of unknown version (no comfyui_version)"
    return f"{found} (oldest supported {MIN_VERSION})"


def version_line(version: str | None, *, where: str = "this server") -> str | None:
    """One line saying the server is older than vidfarm supports, or None when it is new enough."""
    if not too_old(version):
        return None
    found = f"ComfyUI {version}" if version else "a ComfyUI from before 2025 (no comfyui_version in /system_stats)"
    return (
        f"{where} runs {found}; vidfarm needs ComfyUI {MIN_VERSION} or newer (the oldest supported; the V3 node "
        "schema, comfy_api.latest): upgrade ComfyUI"
    )


@lru_cache(maxsize=1)
def core_classes() -> frozenset[str]:
    """Core node classes of the saved stock /object_info (ComfyUI 0.3.75); empty outside a checkout."""
    try:
        return frozenset(json.loads(_STOCK_SNAPSHOT.read_text()))
    except (OSError, ValueError):
        return frozenset()


def missing_node_fix(class_type: str, *, server_version: str | None = None, origin: str | None = None) -> str:
    """What to do about a node class the server lacks."""
    if class_type.startswith("Vidfarm") or origin == NODE_PACK:
        fix = "the vidfarm node pack is not loaded there: link custom_nodes/vidfarm into its custom_nodes"
        old = version_line(server_version)
        return f"{fix} ({old})" if old else f"{fix} and read ComfyUI's log for 'IMPORT FAILED'"
    if origin == CORE_ORIGIN or (origin is None and class_type in core_classes()):
        found = f"ComfyUI {server_version}" if server_version else "an older ComfyUI"
        return f"{class_type} is a core ComfyUI node this server ({found}) is too old for: upgrade ComfyUI"
    if origin:
        return f"install the custom node pack {origin} (ComfyUI-Manager or comfy node install {origin})"
    return "install the custom node pack that provides it (or, if it is a core node, upgrade ComfyUI)"


def missing_node_problem(
    node_id: str,
    class_type: str,
    *,
    server_version: str | None = None,
    origins: Mapping[str, str] | None = None,
) -> Problem:
    origin = (origins or {}).get(class_type)
    return Problem(
        node_id,
        class_type,
        "missing_node_type",
        None,
        f"node class {class_type} does not exist on this server",
        missing_node_fix(class_type, server_version=server_version, origin=origin),
    )
