"""scripts/worker-start without Docker: models from a fake HF hub, the real ComfyUI on loopback, the token proxy
on the public port - and the autoscaler's readiness check (ComfyUI answers AND the models are listed)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import requests

from tests.conftest import REPO, require_comfy_install
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxies import TEST_TOKEN
from tests.fakes.runpod_api import FakeRunPod
from tests.support.waiting import wait_for
from vidfarm.comfy.local import free_port
from vidfarm.fleet.autoscaler import Worker
from vidfarm.fleet.pool import http_ready
from vidfarm.workflow.declaration import find_declaration

MODEL = os.urandom(64_000)


def write_workflow(directory: Path) -> None:
    directory.mkdir()
    (directory / "tiny.json").write_text("{}")
    (directory / "tiny.toml").write_text(
        '[workflow]\ntitle = "needs a vae"\n[[models]]\nfolder = "vae"\nfile = "tiny_vae.safetensors"\n'
        f'repo = "org/tiny"\npath = "tiny_vae.safetensors"\nsha256 = "{hashlib.sha256(MODEL).hexdigest()}"\n'
        f"size = {len(MODEL)}\n"
    )


def start(tmp_path: Path, hub: FakeHub, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VIDFARM_WORKER_TOKEN": TEST_TOKEN,
        "VIDFARM_WORKFLOWS": "tiny",
        "VIDFARM_WORKFLOWS_DIR": str(tmp_path / "workflows"),
        "VIDFARM_COMFY_DIR": str(require_comfy_install()),
        "VIDFARM_BASE_DIR": str(tmp_path / "base"),
        "VIDFARM_COMFY_PORT": str(free_port()),
        "VIDFARM_PUBLIC_PORT": str(port),
        "VIDFARM_COMFY_ARGS": "--cpu",
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        **extra,
    }
    log = (tmp_path / "worker.log").open("wb")
    return subprocess.Popen([str(REPO / "scripts" / "worker-start")], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def test_worker_start_fetches_models_and_serves_comfyui_only_behind_the_token(tmp_path: Path) -> None:
    write_workflow(tmp_path / "workflows")
    hub = FakeHub(files={"org/tiny/tiny_vae.safetensors": MODEL}).start()
    port = free_port()
    process = start(tmp_path, hub, port)
    url = f"http://127.0.0.1:{port}"
    worker = Worker("w", TEST_TOKEN, 0.4, 0.0, 0.0, url=url)
    ready = http_ready(find_declaration(tmp_path / "workflows", "tiny").models, timeout=2)
    stages: list[str] = []  # what the probe read from /vidfarm/boot while ComfyUI did not answer yet

    def up() -> bool:
        assert process.poll() is None, (tmp_path / "worker.log").read_text()
        if ready(worker):
            return True
        stages.extend([ready.boot["w"]["stage"]] if "w" in ready.boot else [])
        return False

    try:
        wait_for(up, "the worker ready", every=0.5, describe=lambda: (tmp_path / "worker.log").read_text()[-3000:])
        assert (tmp_path / "base" / "models" / "vae" / "tiny_vae.safetensors").read_bytes() == MODEL
        assert "comfyui" in stages and set(stages) <= {"starting", "models", "comfyui"}, stages  # in view, in order
        assert stages == sorted(stages, key=["starting", "models", "comfyui"].index)
        assert "w" not in ready.boot  # ready: the boot stage is forgotten
        assert requests.get(url + "/system_stats", timeout=5).status_code == 401
        assert not http_ready()(Worker("w", "wrong-token-wrong-token", 0.4, 0.0, 0.0, url=url))
        missing = find_declaration(tmp_path / "workflows", "tiny").models[0]
        other = type(missing)("vae", "not_there.safetensors")
        assert not http_ready([other])(worker)  # running is not ready: the models must be listed
        ps = subprocess.run(["ps", "-ww", "-o", "args=", "-g", str(process.pid)], capture_output=True, text=True).stdout
        assert "--listen 127.0.0.1" in ps and "vidfarm.worker.token_proxy" in ps
    finally:
        stop(process)
        hub.stop()


def test_worker_start_refuses_without_a_token_and_names_a_missing_model(tmp_path: Path) -> None:
    write_workflow(tmp_path / "workflows")
    hub = FakeHub(files={}).start()
    runpod = FakeRunPod().start()
    try:
        no_token = start(tmp_path, hub, free_port(), VIDFARM_WORKER_TOKEN="short")
        assert no_token.wait(30) == 2
        assert "refusing to expose ComfyUI" in (tmp_path / "worker.log").read_text()
        with socket.socket() as taken:  # the public port in use: refused before any model is downloaded
            taken.bind(("0.0.0.0", 0))
            taken.listen()
            blocked = start(tmp_path, hub, taken.getsockname()[1])
            assert blocked.wait(60) == 1
        assert "the token proxy did not start on port" in (tmp_path / "worker.log").read_text()
        assert not (tmp_path / "base" / "models" / "vae").exists()
        # an idle shutdown with nothing to destroy would keep the proxy from starting: turned off, said, started
        missing = start(tmp_path, hub, free_port(), VIDFARM_IDLE_SHUTDOWN_S="600")
        assert missing.wait(60) != 0
        log = (tmp_path / "worker.log").read_text()
        assert "no way to destroy this instance" in log and "(idle shutdown: 0s)" in log
        assert "models/vae/tiny_vae.safetensors: org/tiny/tiny_vae.safetensors does not exist on the hub" in log
        # on RunPod: the proxy destroys its own pod with the pod-scoped key, no command needed
        pod = runpod.add_pod("vidfarm-worker-1")
        on_runpod = start(tmp_path, hub, free_port(), VIDFARM_IDLE_SHUTDOWN_S="600", **runpod.pods[pod]["provider_env"])
        assert on_runpod.wait(60) != 0
        log = (tmp_path / "worker.log").read_text()
        assert "(idle shutdown: 600s)" in log and "does not exist on the hub" in log
        assert "no way to destroy" not in log and runpod.key_of(pod) not in log
    finally:
        hub.stop()
        runpod.stop()
