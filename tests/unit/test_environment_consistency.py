"""environment.yml (conda, for the master) and pyproject.toml (pip) list the same dependencies."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO


def _name_and_spec(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_same_packages_and_versions() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pip_deps = dict(_name_and_spec(r) for r in pyproject["project"]["dependencies"])
    conda_deps: dict[str, str] = {}
    text = (REPO / "environment.yml").read_text()
    for line in text.split("\ndependencies:\n", 1)[1].splitlines():
        item = re.match(r"^  - ([^:\s][^#]*)$", line)
        if item and not item.group(1).startswith("python=") and item.group(1).strip() not in ("pip", "pip:"):
            name, spec = _name_and_spec(item.group(1))
            conda_deps[name] = spec
    assert conda_deps == pip_deps
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert "python=3.11" in (REPO / "environment.yml").read_text()
