"""Check a declared workflow against a server (or a saved /object_info): structure, parameters, models."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.errors import Problem, VidfarmError, WorkflowError
from vidfarm.workflow.declaration import Declaration
from vidfarm.workflow.files import OpenedWorkflow
from vidfarm.workflow.validate import ObjectInfo, is_missing_model, validate_graph
from vidfarm.workflow.verdict import MODEL


@dataclass
class CheckReport:
    name: str
    problems: list[Problem] = field(default_factory=list)  # would make the server reject it
    missing_models: list[Problem] = field(default_factory=list)  # fixable by fetching the declared files
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        verdict = "ok" if self.ok else "INVALID"
        out = [f"{self.name}: {verdict}"]
        out += [f"  - {p}" for p in self.problems]
        out += [f"  - needs model: {p}" for p in self.missing_models]
        out += [f"  - note: {n}" for n in self.notes]
        return out


def check_declaration(
    declaration: Declaration, object_info: ObjectInfo, *, models_present: bool = False
) -> CheckReport:
    """`models_present=False` (a snapshot, or a worker before its bootstrap) reports missing models separately."""
    report = CheckReport(declaration.name)
    try:
        graph = declaration.fill(declaration.graph(), {})
    except VidfarmError as exc:
        report.problems.append(Problem("", "", "declaration", None, str(exc)))
        return report
    report.problems += [Problem("", "", "declaration", None, text) for text in declaration.check_targets(graph)]
    for problem in validate_graph(graph, object_info, models=declaration.models):
        if is_missing_model(problem) and not models_present and _declared(declaration, problem):
            report.missing_models.append(problem)
        else:
            report.problems.append(problem)
    unpinned = [m.file for m in declaration.models if not m.pinned]
    if unpinned:
        report.notes.append(f"no sha256 pinned yet for {', '.join(unpinned)} (size is checked)")
    return report


def check_opened(opened: OpenedWorkflow, object_info: ObjectInfo, *, models_present: bool = False) -> CheckReport:
    """An undeclared file (API export or editor file): every problem with its kind, missing models apart."""
    report = CheckReport(opened.name)
    for problem in opened.problems(object_info):
        sourced = problem.kind == MODEL and "(from " in problem.fix
        if sourced and not models_present:
            report.missing_models.append(problem)
        else:
            report.problems.append(problem)
    if opened.conversion:
        report.notes.append(f"converted from the editor format ({len(opened.graph)} nodes to run)")
    return report


def _declared(declaration: Declaration, problem: Problem) -> bool:
    return any(problem.message == f"model file {m.file} is missing on this server" for m in declaration.models)


def load_object_info(path: str | Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"cannot read /object_info snapshot {path}: {exc}") from None
    return data
