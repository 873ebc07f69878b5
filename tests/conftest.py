"""Shared fixtures. Engine tests run a real ComfyUI (setup-comfyui) on the CPU; a missing install fails, never skips."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vidfarm.comfy import ComfyClient
from vidfarm.comfy.local import LocalComfy, default_install_dir
from vidfarm.workflow.declaration import Declaration, find_declaration

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
TRANSCRIPT_WORKFLOWS = REPO / "tests" / "data" / "transcript_workflows"


def require_comfy_install() -> Path:
    install = default_install_dir()
    if not (install / ".ready").exists():
        pytest.fail(f"no ComfyUI install at {install}: run scripts/setup-comfyui (CI does this in scripts/test)")
    return install


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalComfy]:
    """One real ComfyUI with the node pack, shared by the tests that do not hurt it."""
    require_comfy_install()
    server = LocalComfy(tmp_path_factory.mktemp("comfy-head")).start()
    yield server
    server.stop()


@pytest.fixture
def client(comfy_server: LocalComfy) -> Iterator[ComfyClient]:
    c = ComfyClient(comfy_server.url)
    yield c
    c.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LocalComfy]:
    """A ComfyUI of the test's own, for tests that kill or restart it."""
    require_comfy_install()
    server = LocalComfy(tmp_path / "comfy").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def worker_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalComfy]]:
    """Two more real ComfyUI servers: the workers a head (comfy_server) fans segments out to."""
    require_comfy_install()
    workers = [LocalComfy(tmp_path_factory.mktemp(f"comfy-worker{i}")).launch() for i in range(2)]
    for worker in workers:
        worker.wait_ready(120)
        worker.check_node_pack()
    yield workers
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Every real recipe's model files as tiny random-weight files (tests/support/tiny_models), checked by
    ComfyUI's own loaders; (folder, manifest {folder/file: size, sha256, detected})."""
    from tests.support.comfy_python import make_tiny_models

    require_comfy_install()
    folder = tmp_path_factory.mktemp("tiny-models")
    return folder, make_tiny_models(folder, check=True)


def pool_json(servers: list[LocalComfy]) -> str:
    return json.dumps([{"name": f"test-{i}", "url": s.url} for i, s in enumerate(servers)])


def declaration(name: str) -> Declaration:
    return find_declaration(WORKFLOWS, name)


def transcript_graph(name: str) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((TRANSCRIPT_WORKFLOWS / name).read_text())
    return data
