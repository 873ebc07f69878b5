"""One error tree: every vidfarm error class lives in errors.py, and no built-in exception is raised on purpose
across a public boundary (the few exceptions below are caught where they are raised, or are pydantic's protocol)."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import vidfarm.errors as errors

REPO = Path(__file__).resolve().parents[2]
SOURCES = [*(REPO / "src" / "vidfarm").rglob("*.py"), *(REPO / "service").rglob("*.py"),
           *(REPO / "custom_nodes" / "vidfarm").rglob("*.py")]  # fmt: skip
BUILTIN_ERRORS = {name for name, value in vars(builtins).items() if isinstance(value, type)
                  and issubclass(value, BaseException)}  # fmt: skip
# (file, function): why a built-in exception is right there
ALLOWED = {
    ("declaration.py", "_convert"): "caught by Parameter.coerce, which raises WorkflowError",
    ("config.py", "_refuse_placeholder"): "pydantic validators must raise ValueError; Settings() reports it",
    ("config.py", "_webhook_needs_secret"): "pydantic validators must raise ValueError; Settings() reports it",
    ("config.py", "_fleet_needs_key"): "pydantic validators must raise ValueError; Settings() reports it",
    ("config.py", "_user_tokens"): "pydantic validators must raise ValueError; Settings() reports it",
}


def _raises(tree: ast.AST) -> list[tuple[str, str, int]]:
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name) and target.id in BUILTIN_ERRORS - {"NotImplementedError"}:
                    found.append((func.name, target.id, node.lineno))
    return found


def _is_error_base(base: ast.expr) -> bool:
    if not isinstance(base, ast.Name):
        return False
    known = getattr(errors, base.id, None)
    return base.id.endswith(("Error", "Exception", "Failed")) or (
        isinstance(known, type) and issubclass(known, Exception)
    )


def test_every_error_class_is_in_errors_py() -> None:
    outside = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
        for path in SOURCES
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(_is_error_base(base) for base in node.bases)
    ]
    assert not outside, f"error classes outside src/vidfarm/errors.py: {outside}"


def test_no_builtin_exception_is_raised_across_a_boundary() -> None:
    raised = []
    for path in SOURCES:
        for function, name, line in _raises(ast.parse(path.read_text())):
            if (path.name, function) not in ALLOWED:
                raised.append(f"{path.relative_to(REPO)}:{line} {function} raises {name}")
    assert not raised, "raise a vidfarm error (src/vidfarm/errors.py) instead:\n" + "\n".join(raised)


def test_the_tree_in_the_docstring_names_every_class() -> None:
    classes = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.VidfarmError)}  # fmt: skip
    missing = {name for name in classes if name not in (errors.__doc__ or "")}
    assert not missing, f"errors.py's tree does not show {sorted(missing)}"
