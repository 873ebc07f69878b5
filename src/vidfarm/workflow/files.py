"""Any workflow a person has: a declared name, an API-format export, or an editor (UI-format) file.

`open_workflow` gives each one as a graph plus what is known about it (its declaration, the conversion, the
model files with their sources); `import_workflow` turns an editor or API file into a declared workflow
(`<name>.json` + a scaffolded `<name>.toml`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.errors import Problem, WorkflowError
from vidfarm.workflow.convert import Conversion, convert_editor
from vidfarm.workflow.declaration import Declaration, ModelFile, find_declaration, load_declaration
from vidfarm.workflow.editor import is_editor_file
from vidfarm.workflow.graph import Graph, parse_graph
from vidfarm.workflow.scaffold import scaffold_declaration
from vidfarm.workflow.sources import NodePack, editor_models, editor_packs
from vidfarm.workflow.validate import ObjectInfo
from vidfarm.workflow.verdict import verdicts


@dataclass
class OpenedWorkflow:
    name: str
    graph: Graph
    declaration: Declaration | None = None
    conversion: Conversion | None = None  # set for an editor file
    models: list[ModelFile] = field(default_factory=list)  # declared, else named by the editor file
    packs: list[NodePack] = field(default_factory=list)

    def fill(self, values: dict[str, Any]) -> Graph:
        """The graph with `values` written in: declared parameters, or `"<node_id>.<input>"` keys without one."""
        if self.declaration:
            return self.declaration.fill(self.graph, values)
        filled: Graph = json.loads(json.dumps(self.graph))
        for key, value in values.items():
            node_id, sep, input_name = key.partition(".")
            if not sep or node_id not in filled:
                raise WorkflowError(f"{self.name} has no declaration: set inputs as '<node_id>.<input>', not {key!r}")
            filled[node_id]["inputs"][input_name] = value
        return filled

    def problems(self, object_info: ObjectInfo, graph: Graph | None = None) -> list[Problem]:
        """Every reason it (or `graph`, its filled copy) cannot run on the server `object_info` came from."""
        known = self.conversion.problems if self.conversion else []
        return verdicts(self.graph if graph is None else graph, object_info, models=self.models, known=known)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def open_file(path: Path, object_info: ObjectInfo) -> OpenedWorkflow:
    """An API export or an editor file (converted with `object_info`), with the declaration beside it if any."""
    data = read_json(path)
    beside = path.with_suffix(".toml")
    declaration = load_declaration(beside) if beside.exists() and not is_editor_file(data) else None
    if not is_editor_file(data):
        graph = parse_graph(data, source=str(path))
        models = list(declaration.models) if declaration else []
        return OpenedWorkflow(path.stem, graph, declaration, models=models)
    conversion = convert_editor(data, object_info)
    return OpenedWorkflow(
        path.stem, conversion.graph, None, conversion, models=editor_models(data), packs=editor_packs(data)
    )


def open_workflow(name_or_path: str | Path, directory: Path, object_info: ObjectInfo) -> OpenedWorkflow:
    """A declared workflow by name, or a .json file of either format."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        declaration = find_declaration(directory, str(name_or_path))
        return OpenedWorkflow(declaration.name, declaration.graph(), declaration, models=list(declaration.models))
    return open_file(path, object_info)


def workflow_name(path: Path) -> str:
    """A file name made into a workflow name: lower case, letters, digits and underscores."""
    return re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "imported"


@dataclass
class Imported:
    name: str
    graph_path: Path
    declaration_path: Path
    problems: list[Problem]
    dropped: list[str]


def import_workflow(
    path: Path, directory: Path, object_info: ObjectInfo, *, name: str = "", force: bool = False
) -> Imported:
    """Write `<name>.json` (API format) and a scaffolded `<name>.toml` into `directory`."""
    name = name or workflow_name(path)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise WorkflowError(f"workflow name {name!r}: use letters, digits, '_', '-' and '.'")
    graph_path, declaration_path = directory / f"{name}.json", directory / f"{name}.toml"
    if not force and (graph_path.exists() or declaration_path.exists()):
        raise WorkflowError(f"workflow {name} already exists in {directory}: pick another --name, or --force")
    opened = open_file(path, object_info)
    text = scaffold_declaration(
        name, opened.graph, object_info, models=opened.models, packs=opened.packs, source=path.name
    )
    directory.mkdir(parents=True, exist_ok=True)
    graph_path.write_text(json.dumps(opened.graph, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    declaration_path.write_text(text, encoding="utf-8")
    load_declaration(declaration_path)  # what we wrote must read back
    dropped = opened.conversion.dropped if opened.conversion else []
    return Imported(name, graph_path, declaration_path, opened.problems(object_info), dropped)
