"""One set of versions: requirements.lock pins what pyproject.toml allows; environment.yml installs the lock."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def _locked() -> dict[str, list[tuple[Version, str]]]:
    """Package → its pins with their markers (a package may be pinned twice, for different Pythons)."""
    pins: dict[str, list[tuple[Version, str]]] = {}
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins.setdefault(canonicalize_name(match.group(1)), []).append(
                (Version(match.group(2)), match.group(3) or "")
            )
    return pins


def _direct_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def test_every_direct_dependency_is_locked_within_its_range() -> None:
    pins = _locked()
    for requirement in _direct_requirements():
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is in pyproject.toml but not in requirements.lock: run scripts/lock"
        for version, _marker in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{requirement.name}=={version} ∉ {requirement}"
            )


def test_every_locked_package_is_pinned_with_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 1)[1])
    assert len(blocks) > 100, "the lock lists the whole tree, not only the direct dependencies"
    for block in blocks:
        assert PIN.match(block.splitlines()[0]), f"not an exact pin: {block.splitlines()[0]}"
        assert "--hash=sha256:" in block, f"no hash for {block.splitlines()[0]}"


def test_the_lock_is_what_is_installed() -> None:
    """scripts/setup installs the lock: this venv holds exactly the locked version of every package it has."""
    from importlib import metadata

    pins = _locked()
    for requirement in _direct_requirements():
        installed = Version(metadata.version(requirement.name))
        assert installed in [v for v, _ in pins[canonicalize_name(requirement.name)]], requirement.name


def test_conda_installs_the_lock_and_the_same_python() -> None:
    text = (REPO / "environment.yml").read_text()
    conda = re.findall(r"^  - (\S.*)$", text.split("\ndependencies:\n", 1)[1], re.M)
    assert conda == ["python=3.11", "pip", "pip:"], "conda gives Python and pip; every package comes from the lock"
    pip_lines = re.findall(r"^      - (.+)$", text, re.M)
    assert pip_lines == ["--require-hashes", "-r requirements.lock"]
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11"


@pytest.mark.network
def test_scripts_lock_check_finds_the_lock_current(tmp_path: Path) -> None:
    """The documented way to move the lock (scripts/lock) resolves the same tree again, and notices a stale lock."""
    done = subprocess.run([REPO / "scripts" / "lock", "--check"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "matches pyproject.toml" in done.stderr

    # A copy whose pyproject.toml narrows a range the lock no longer fits: the check must say so.
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "lock").write_bytes((REPO / "scripts" / "lock").read_bytes())
    (tmp_path / "scripts" / "lock").chmod(0o755)
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "requirements.lock").write_bytes(LOCK.read_bytes())
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"av>=14,<19"' in pyproject
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"av>=14,<19"', '"av>=14,<18"'))
    stale = subprocess.run([tmp_path / "scripts" / "lock", "--check"], capture_output=True, text=True, timeout=600)
    assert stale.returncode == 1, stale.stderr[-2000:]
    assert "-av==18" in stale.stdout and "does not match pyproject.toml" in stale.stderr
