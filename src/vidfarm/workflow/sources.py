"""What an editor file says about its needs: model files with their download URLs, and custom node packs.

The official templates give each loader node `properties.models = [{name, url, directory}]` (some files also list
them at the top level, `models`); a Hugging Face URL becomes repo + path (+ revision when not `main`), any other
URL stays a plain URL source. Nodes name their pack in `properties.cnr_id` (registry id) and `aux_id` (GitHub).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from vidfarm.workflow.declaration import ModelFile
from vidfarm.workflow.editor import all_nodes, node_pack
from vidfarm.workflow.verdict import CORE_PACK, pack_source

HF_HOSTS = ("huggingface.co", "hf.co")


def model_from_entry(entry: dict[str, Any]) -> ModelFile | None:
    """One `{name, url, directory}` entry as a ModelFile; None when it lacks a name or folder."""
    name, folder, url = (str(entry.get(k) or "") for k in ("name", "directory", "url"))
    if not name or not folder:
        return None
    parsed = urlparse(url)
    parts = [unquote(p) for p in parsed.path.split("/") if p]
    if parsed.hostname in HF_HOSTS and len(parts) >= 5 and parts[2] in ("resolve", "blob"):
        revision = "" if parts[3] == "main" else parts[3]
        return ModelFile(folder, name, repo="/".join(parts[:2]), path="/".join(parts[4:]), revision=revision)
    return ModelFile(folder, name, url=url)


def editor_models(data: dict[str, Any]) -> list[ModelFile]:
    """Every model file the editor file names, once each (by folder and file)."""
    entries = list(data.get("models") or [])
    for node in all_nodes(data):
        entries += (node.get("properties") or {}).get("models") or []
    found: dict[tuple[str, str], ModelFile] = {}
    for entry in entries:
        model = model_from_entry(entry) if isinstance(entry, dict) else None
        if model and (model.folder, model.file) not in found:
            found[(model.folder, model.file)] = model
    return list(found.values())


@dataclass(frozen=True)
class NodePack:
    name: str  # the registry id, else the GitHub owner/repo
    source: str  # where to get it, in words

    def __str__(self) -> str:
        return f"{self.name} ({self.source})"


def editor_packs(data: dict[str, Any]) -> list[NodePack]:
    """The custom node packs the file's nodes come from (not ComfyUI's core)."""
    found: dict[str, NodePack] = {}
    for node in all_nodes(data):
        cnr_id, aux_id = node_pack(node)
        if cnr_id == CORE_PACK or not (cnr_id or aux_id):
            continue
        name = cnr_id or aux_id
        found.setdefault(name, NodePack(name, pack_source(cnr_id, aux_id)))
    return sorted(found.values(), key=lambda p: p.name)
