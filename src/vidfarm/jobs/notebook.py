"""What the notebooks need twice: connect, describe a server, controls for a workflow's inputs, progress, video.

Widgets are imported on use, so the core stays importable without ipywidgets.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.comfy import ComfyClient, Progress
from vidfarm.comfy.local import REPO, LocalComfy
from vidfarm.workflow.declaration import Declaration
from vidfarm.workflow.editor import all_nodes, is_editor_file
from vidfarm.workflow.files import OpenedWorkflow, open_workflow
from vidfarm.workflow.graph import Graph, is_link
from vidfarm.workflow.validate import combo_options, input_specs

WORKFLOWS_DIR = REPO / "workflows"


def connect(
    url: str = "", token: str = "", *, base_dir: str | Path | None = None
) -> tuple[ComfyClient, LocalComfy | None]:
    """A client for `url`, or - when url is empty - for a ComfyUI started here on the CPU (the embedded default)."""
    if url:
        return ComfyClient(url, token=token or None), None
    # die_with_parent: a kernel killed (a crashed service, a closed Jupyter) takes its head along
    local = LocalComfy(base_dir or REPO / ".vidfarm" / "notebook-comfy", die_with_parent=True).start()
    return ComfyClient(local.url), local


def server_summary(client: ComfyClient) -> dict[str, Any]:
    stats = client.system_stats()
    info = client.object_info()
    features = client.features()
    return {
        "url": client.url,
        "comfyui_version": features.version or "unknown (a 2024 build)",
        "jobs_api": features.jobs_api,
        "devices": [
            f"{d.get('name')} ({d.get('type')}, {d.get('vram_total', 0) / 2**30:.1f} GiB)"
            for d in stats.get("devices", [])
        ],
        "node_classes": len(info),
        "vidfarm_nodes": sorted(n for n in info if n.startswith("Vidfarm")),
        "categories": Counter(str(v.get("category", "")).split("/")[0] for v in info.values()).most_common(12),
    }


MODEL_FOLDERS = (
    "checkpoints",
    "diffusion_models",
    "text_encoders",
    "vae",
    "loras",
    "upscale_models",
    "clip_vision",
)


def model_files(client: ComfyClient, folders: tuple[str, ...] = MODEL_FOLDERS) -> dict[str, list[str]]:
    return {folder: client.models(folder) for folder in folders}


@dataclass
class WorkflowInputs:
    """A workflow and the inputs a person may change: declared parameters, or every literal input."""

    graph: Graph
    declaration: Declaration | None
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {type, default, min, max, options}
    opened: OpenedWorkflow | None = None  # how it was read: for an editor file, the conversion

    def apply(self, values: dict[str, Any]) -> Graph:
        if self.declaration:
            return self.declaration.fill(self.graph, values)
        filled: Graph = json.loads(json.dumps(self.graph))
        for name, value in values.items():
            node_id, _, input_name = name.partition(".")
            filled[node_id]["inputs"][input_name] = value
        return filled


def load_workflow(name_or_path: str, object_info: dict[str, Any]) -> WorkflowInputs:
    """A workflow by name (workflows/<name>.toml), an API export or an editor file (converted with object_info)."""
    opened = open_workflow(name_or_path, WORKFLOWS_DIR, object_info)
    if opened.declaration:
        return WorkflowInputs(opened.graph, opened.declaration, _declared_fields(opened.declaration), opened)
    return WorkflowInputs(opened.graph, None, _literal_fields(opened.graph, object_info), opened)


def editor_rows(path: str | Path) -> list[str]:
    """One line per node of an editor file as the editor holds it: id, type, mode, widget values, links in."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not is_editor_file(data):
        return []
    modes = {0: "", 2: "muted", 4: "bypassed"}
    rows = []
    for node in all_nodes(data):
        links = [i.get("link") for i in node.get("inputs") or [] if i.get("link") is not None]
        values = json.dumps(node.get("widgets_values", []), ensure_ascii=False)[:60]
        mode = modes.get(node.get("mode", 0), str(node.get("mode")))
        rows.append(f"{node.get('id')!s:>5} {str(node.get('type'))[:36]:<36} {mode:<9} {values:<60} links {links}")
    return rows


def _declared_fields(declaration: Declaration) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "type": p.type,
            "default": p.default,
            "min": p.minimum,
            "max": p.maximum,
            "options": list(p.options),
        }
        for name, p in declaration.parameters.items()
    }


_FIELD_TYPES = {"INT": "int", "FLOAT": "float", "BOOLEAN": "bool"}


def _literal_fields(graph: Graph, object_info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    fields: dict[str, dict[str, Any]] = {}
    for node_id, node in graph.items():
        required, optional = input_specs(object_info.get(node["class_type"], {}))
        for input_name, value in node["inputs"].items():
            spec = required.get(input_name) or optional.get(input_name)
            if is_link(value) or isinstance(value, list) or spec is None:
                continue  # links (and list values) are not widgets
            listed = combo_options(spec)
            options = listed or []
            limits = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            # a combo with no options (an empty model folder) is still a choice; its type is a list, not a name
            kind = "choice" if listed is not None else _FIELD_TYPES.get(str(spec[0]), "string")
            fields[f"{node_id}.{input_name}"] = {
                "type": kind,
                "default": value,
                "min": limits.get("min"),
                "max": limits.get("max"),
                "options": options,
            }
    return fields


def controls(inputs: WorkflowInputs, values: dict[str, Any]) -> tuple[Any, Any]:
    """ipywidgets controls, one per field, starting at `values` or the default; returns (box, read_values)."""
    import ipywidgets as widgets

    made: dict[str, Any] = {}
    for name, spec in inputs.fields.items():
        value = values.get(name, spec["default"])
        made[name] = _widget(widgets, name, spec, value)
    box = widgets.VBox(list(made.values()))

    def read_values() -> dict[str, Any]:
        return {name: w.value for name, w in made.items() if w.value not in (None, "")}

    return box, read_values


def _widget(widgets: Any, name: str, spec: dict[str, Any], value: Any) -> Any:
    style = {"description_width": "160px"}
    layout = widgets.Layout(width="600px")
    kind = spec["type"]
    if kind == "choice" and spec["options"]:
        return widgets.Dropdown(
            options=spec["options"],
            value=value if value in spec["options"] else None,
            description=name,
            style=style,
            layout=layout,
        )
    if kind == "int":
        return widgets.BoundedIntText(
            value=value,
            min=int(spec["min"] if spec["min"] is not None else -(2**63)),
            max=int(spec["max"] if spec["max"] is not None else 2**63 - 1),
            description=name,
            style=style,
            layout=layout,
        )
    if kind == "float":
        return widgets.BoundedFloatText(
            value=value,
            min=spec["min"] if spec["min"] is not None else -1e18,
            max=spec["max"] if spec["max"] is not None else 1e18,
            description=name,
            style=style,
            layout=layout,
        )
    if kind == "bool":
        return widgets.Checkbox(value=bool(value), description=name, style=style)
    return widgets.Textarea(value="" if value is None else str(value), description=name, style=style, layout=layout)


class ProgressDisplay:
    """A progress bar and a status line that a PromptRun's on_progress can update."""

    def __init__(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self.bar = widgets.FloatProgress(min=0.0, max=1.0, description="queued", bar_style="info")
        self.label = widgets.Label("")
        self.history: list[tuple[str, float]] = []
        display(widgets.HBox([self.bar, self.label]))  # type: ignore[no-untyped-call]

    def __call__(self, progress: Progress) -> None:
        self.bar.value = progress.fraction
        self.bar.description = progress.stage
        step = f" step {progress.step}/{progress.steps}" if progress.steps else ""
        self.label.value = f"{progress.node_class or ''}{step}"
        if progress.stage == "finished":
            self.bar.bar_style = "success"
        self.history.append((progress.stage, round(progress.fraction, 3)))


def show_video(path: str | Path, *, width: int = 640) -> Any:
    """Inline video (embedded, so it stays in the executed notebook as its record)."""
    from IPython.display import Image, Video

    path = Path(path)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        return Image(filename=str(path), width=width)  # type: ignore[no-untyped-call]
    return Video(str(path), embed=True, width=width, mimetype="video/mp4")  # type: ignore[no-untyped-call]
