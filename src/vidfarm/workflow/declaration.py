"""Workflow declarations: which node input receives each parameter, its default and range, and the models.

A declaration is a TOML file beside its API-format graph (`workflows/<name>.toml` + `<name>.json`):

    [workflow]
    title = "..."            kind = "t2v" | "i2v" | "image"      model_free = true | false
    graph = "<name>.json"    custom_nodes = ["vidfarm"]
    [parameters.prompt]      targets = ["6.text"]   type = "string"   default = "..."
    [parameters.width]       targets = ["40.width", "41.width"]  type = "int"  default = 1280  min = 32  max = 4096
    [outputs]                video = "7"   last_frame = "10"   (which save node gives which result)
    [[models]]               folder = "vae"  file = "..."  repo = "..."  path = "..."  (revision = "...")
                             or url = "..." (any other download source)  sha256 = "..."  size = 0  licence = "..."

Types: string, int, float, bool, choice (`options = [...]`), image (a file name in ComfyUI's input folder) and file
(any other uploaded input file, e.g. the video LoadVideo reads; also a name in the input folder).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.errors import WorkflowError
from vidfarm.workflow.graph import Graph, load_graph

PARAMETER_TYPES = ("string", "int", "float", "bool", "choice", "image", "file")


@dataclass(frozen=True)
class Target:
    node_id: str
    input_name: str

    @classmethod
    def parse(cls, text: str) -> Target:
        node_id, sep, input_name = text.partition(".")
        if not sep or not node_id or not input_name:
            raise WorkflowError(f"target {text!r} must look like '<node_id>.<input_name>'")
        return cls(node_id, input_name)

    def __str__(self) -> str:
        return f"{self.node_id}.{self.input_name}"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    targets: tuple[Target, ...]
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: tuple[str, ...] = ()
    max_length: int | None = None
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """Return the value in this parameter's type, or raise WorkflowError saying what is allowed."""
        try:
            converted = _convert(self.type, value)
        except (TypeError, ValueError):
            raise WorkflowError(f"parameter {self.name}: {value!r} is not a valid {self.type}") from None
        self._check_bounds(converted)
        return converted

    def _check_bounds(self, value: Any) -> None:
        if self.type in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise WorkflowError(f"parameter {self.name}: {value} is below the minimum {number(self.minimum)}")
            if self.maximum is not None and value > self.maximum:
                raise WorkflowError(f"parameter {self.name}: {value} is above the maximum {number(self.maximum)}")
            if self.type == "int" and self.step and self.minimum is not None and (value - self.minimum) % self.step:
                raise WorkflowError(
                    f"parameter {self.name}: {value} must be {self.minimum:g} plus a multiple of {self.step:g}"
                )
        if self.type == "choice" and value not in self.options:
            raise WorkflowError(f"parameter {self.name}: {value!r} is not one of {', '.join(self.options)}")
        if self.type == "string" and self.max_length is not None and len(value) > self.max_length:
            raise WorkflowError(
                f"parameter {self.name}: {len(value)} characters is too long (at most {self.max_length}); shorten it"
            )


def number(value: float) -> str:
    """A bound as a person writes it: 9223372036854775807, not 9.22337e+18; 0.5, not 0.500000."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _convert(kind: str, value: Any) -> Any:
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if not isinstance(value, str):
        raise TypeError(value)
    return value


@dataclass(frozen=True)
class ModelFile:
    """A model file a workflow needs in ComfyUI's `models/<folder>/`, and where to fetch it."""

    folder: str
    file: str
    repo: str = ""
    path: str = ""
    url: str = ""
    revision: str = ""  # a Hugging Face branch, tag or commit; empty = main
    sha256: str = ""
    size: int = 0  # exact bytes: a download of another size is refused
    approx_size: int = 0  # an estimate where the exact size is not pinned yet: only for the disk-space check
    licence: str = ""

    @property
    def pinned(self) -> bool:
        return len(self.sha256) == 64

    @property
    def disk_bytes(self) -> int:
        """What the file needs on disk: the exact size, else the estimate (0 only where nothing is declared)."""
        return self.size or self.approx_size


@dataclass(frozen=True)
class Declaration:
    name: str
    title: str
    kind: str
    graph_path: Path
    model_free: bool
    parameters: dict[str, Parameter]
    models: tuple[ModelFile, ...] = ()
    custom_nodes: tuple[str, ...] = ()
    description: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # role ("video", "image", "last_frame") -> node id
    extra: dict[str, Any] = field(default_factory=dict)

    def graph(self) -> Graph:
        return load_graph(self.graph_path)

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items() if p.default is not None}

    def fill(self, graph: Graph, values: dict[str, Any]) -> Graph:
        """A copy of `graph` with every given parameter (and every default) written into its targets."""
        unknown = sorted(set(values) - set(self.parameters))
        if unknown:
            raise WorkflowError(
                f"workflow {self.name} has no parameter {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(self.parameters))}"
            )
        filled = copy.deepcopy(graph)
        for name, value in {**self.defaults(), **values}.items():
            parameter = self.parameters[name]
            coerced = parameter.coerce(value)
            for target in parameter.targets:
                filled[target.node_id]["inputs"][target.input_name] = coerced
        return filled

    def check_targets(self, graph: Graph) -> list[str]:
        """Targets that point at nodes missing from the graph (a declaration out of step with its graph)."""
        return [
            f"parameter {p.name} targets node {t.node_id}, which is not in {self.graph_path.name}"
            for p in self.parameters.values()
            for t in p.targets
            if t.node_id not in graph
        ]


def _parameter(name: str, spec: dict[str, Any]) -> Parameter:
    kind = spec.get("type", "string")
    if kind not in PARAMETER_TYPES:
        raise WorkflowError(f"parameter {name}: type {kind!r} is not one of {', '.join(PARAMETER_TYPES)}")
    targets = spec.get("targets")
    if not targets:
        raise WorkflowError(f"parameter {name} declares no targets ('<node_id>.<input_name>')")
    return Parameter(
        name=name,
        type=kind,
        targets=tuple(Target.parse(t) for t in targets),
        default=spec.get("default"),
        minimum=spec.get("min"),
        maximum=spec.get("max"),
        step=spec.get("step"),
        options=tuple(spec.get("options", ())),
        max_length=spec.get("max_length"),
        description=spec.get("description", ""),
    )


def load_declaration(path: str | Path) -> Declaration:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"declaration {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError(f"declaration {path} is not valid TOML: {exc}") from None
    meta = data.get("workflow", {})
    try:
        models = tuple(ModelFile(**m) for m in data.get("models", []))
    except TypeError as exc:
        raise WorkflowError(f"declaration {path}: a [[models]] entry has an unknown field ({exc})") from None
    return Declaration(
        name=path.stem,
        title=meta.get("title", path.stem),
        kind=meta.get("kind", "image"),
        graph_path=path.with_name(meta.get("graph", f"{path.stem}.json")),
        model_free=bool(meta.get("model_free", False)),
        parameters={name: _parameter(name, spec) for name, spec in data.get("parameters", {}).items()},
        models=models,
        custom_nodes=tuple(meta.get("custom_nodes", ())),
        description=meta.get("description", ""),
        outputs={str(k): str(v) for k, v in data.get("outputs", {}).items()},
        extra={k: v for k, v in data.items() if k not in ("workflow", "parameters", "models", "outputs")},
    )


NOT_DECLARATIONS = {"recipes.toml"}  # other TOML files that live in workflows/


def find_declarations(directory: str | Path) -> list[Declaration]:
    return [load_declaration(p) for p in sorted(Path(directory).glob("*.toml")) if p.name not in NOT_DECLARATIONS]


def find_declaration(directory: str | Path, name: str) -> Declaration:
    path = Path(directory) / f"{name}.toml"
    if not path.exists():
        known = ", ".join(d.name for d in find_declarations(directory))
        raise WorkflowError(f"no workflow named {name!r} in {directory}; known workflows: {known}")
    return load_declaration(path)
