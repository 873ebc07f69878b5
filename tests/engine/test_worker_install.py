"""The worker image without Docker: scripts/install-worker builds the one-venv worker (layered on the cached ComfyUI
so torch is not installed again), scripts/worker-start serves it behind the token proxy, the pool's readiness check
finds it able to render, and a head renders a real long video's segments on it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, WORKFLOWS, require_comfy_install
from tests.engine.test_long_video import outputs, run_long_video
from tests.fakes.proxies import TEST_TOKEN
from tests.support.waiting import wait_for
from vidfarm.comfy.compat import MIN_VERSION
from vidfarm.comfy.local import LocalComfy, free_port
from vidfarm.fleet.autoscaler import Worker
from vidfarm.fleet.pool import http_ready, node_classes_for
from vidfarm.workflow.recipe import find_recipe

PACK_CLASSES = sorted(
    {name for f in (REPO / "custom_nodes" / "vidfarm").glob("*.py") for name in
     re.findall(r"^class (Vidfarm\w+)\(io\.ComfyNode\)", f.read_text(), re.M)}
)  # fmt: skip


@pytest.fixture(scope="module")
def installed_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """scripts/install-worker into a temporary prefix, then scripts/worker-start on it (as the image's CMD)."""
    tmp = tmp_path_factory.mktemp("worker-install")
    prefix = tmp / "opt-comfyui"
    install = subprocess.run(
        [str(REPO / "scripts" / "install-worker"), str(prefix), "--on", str(require_comfy_install())],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    assert f"(oldest supported {MIN_VERSION})" in install.stderr  # check-node-pack names the version it found
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIDFARM_", "PYTHONPATH"))},
        "VIDFARM_WORKER_TOKEN": TEST_TOKEN,
        "VIDFARM_WORKFLOWS": "",
        "VIDFARM_COMFY_DIR": str(prefix),
        "VIDFARM_BASE_DIR": str(tmp / "workspace"),
        "VIDFARM_COMFY_PORT": str(free_port()),
        "VIDFARM_PUBLIC_PORT": str(port),
        "VIDFARM_COMFY_ARGS": "--cpu",
    }
    log = (tmp / "worker.log").open("wb")
    process = subprocess.Popen([str(REPO / "scripts" / "worker-start")], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", tmp
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)


def test_the_installed_worker_renders_a_heads_segments_behind_its_token(
    installed_worker: tuple[str, Path], comfy_server: LocalComfy, tmp_path: Path
) -> None:
    url, tmp = installed_worker
    recipe = find_recipe(WORKFLOWS / "recipes.toml", "standin")
    needed = node_classes_for(recipe.workflows.values(), WORKFLOWS)
    assert "VidfarmTiledUpscale" in needed and "CreateVideo" in needed
    ready = http_ready(node_classes=needed, timeout=5)
    worker = Worker("rented-0", TEST_TOKEN, 0.4, 0.0, 0.0, url=url)
    wait_for(lambda: ready(worker), "the installed worker ready", every=0.5,
             describe=lambda: f"{ready.reasons()}\n{(tmp / 'worker.log').read_text()[-3000:]}")  # fmt: skip

    # The one venv: ComfyUI runs the installed core (not this checkout) and the pack copied beside it.
    ps = subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True).stdout
    assert f"{tmp}/opt-comfyui/venv/bin/python -m vidfarm.worker.token_proxy" in ps
    pack = (tmp / "workspace" / "custom_nodes" / "vidfarm").resolve()
    assert pack == tmp / "opt-comfyui" / "custom_nodes" / "vidfarm"
    python = str(tmp / "opt-comfyui" / "venv" / "bin" / "python")
    core = subprocess.run([python, "-c", "import vidfarm; print(vidfarm.__file__)"], capture_output=True, text=True)
    assert core.stdout.startswith(str(tmp / "opt-comfyui" / "venv")), core

    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    info = requests.get(url + "/object_info", headers=headers, timeout=60).json()
    assert len(PACK_CLASSES) >= 10 and [c for c in PACK_CLASSES if c not in info] == []
    assert requests.get(url + "/object_info", timeout=10).status_code == 401

    result = run_long_video(
        comfy_server,
        tmp_path,
        prompt="a worker that was installed, not linked",
        seconds=2.0,
        fps=8,
        width=256,
        height=144,
        workers=json.dumps([{"name": "rented-0", "url": url, "token": TEST_TOKEN}]),
        job_id=f"installed-worker-{time.monotonic_ns()}",
    )
    files = outputs(result)
    assert files["video.mp4"].info.frames == 16 and files["video.mp4"].info.width == 256
    report = json.loads(files["report.json"].path.read_text())
    assert report["workers"]["rented-0"]["tasks"] >= 2  # keyframes and the segment ran on the installed worker


def test_readiness_names_the_missing_node_class_on_which_worker(installed_worker: tuple[str, Path]) -> None:
    url, _ = installed_worker
    ready = http_ready(node_classes=["VidfarmTiledUpscale", "ComfySwitchNode"], timeout=5)
    worker = Worker("gpu-3", TEST_TOKEN, 0.4, 0.0, 0.0, url=url)

    def booted() -> bool:  # ready, or answering that it lacks a node class: no longer "still booting"
        missing = ready.missing(worker)
        return missing is None or "lacks" in str(missing)

    wait_for(booted, "the worker booted", every=0.5, describe=lambda: str(ready.missing(worker)))
    assert not ready(worker)
    message = ready.reasons()
    assert message.startswith("worker gpu-3 lacks node class ComfySwitchNode") and "VidfarmTiledUpscale" not in message
    assert "upgrade ComfyUI" in message or "install the node packs" in message
