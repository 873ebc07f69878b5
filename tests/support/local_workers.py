""" "GPU" workers for the fake providers: each rented instance becomes a real `scripts/worker-start` (the real
ComfyUI on loopback, on the CPU, behind the real token proxy with the token the master put in its environment, and
the variables the provider injects: the idle shutdown destroys the instance at the fake with its own scoped key),
and is stopped when the instance is destroyed. Used as the fakes' `on_create` / `on_destroy`."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.conftest import REPO, require_comfy_install
from vidfarm.comfy.local import free_port


def _env_of(instance: dict[str, Any]) -> dict[str, str]:
    """The start-up environment the master sent: Vast.ai rows keep it as [[k, v]], RunPod pods as a dict."""
    if isinstance(instance.get("env"), dict):
        return {str(k): str(v) for k, v in instance["env"].items()}
    return {str(k): str(v) for k, v in instance.get("extra_env") or [] if not str(k).startswith("-p ")}


class LocalWorkers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def create(self, instance: dict[str, Any]) -> int:
        name = str(instance.get("label") or instance.get("name"))
        sent = _env_of(instance)
        port = free_port()
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **sent,
            **{str(k): str(v) for k, v in (instance.get("provider_env") or {}).items()},
            "VIDFARM_COMFY_DIR": str(require_comfy_install()),
            "VIDFARM_BASE_DIR": str(folder / "base"),
            "VIDFARM_COMFY_PORT": str(free_port()),
            "VIDFARM_PUBLIC_PORT": str(port),
            "VIDFARM_COMFY_ARGS": "--cpu",
        }
        log = (folder / "worker.log").open("wb")
        process = subprocess.Popen([str(REPO / "scripts" / "worker-start")], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        with self._lock:
            self.processes[name], self.envs[name] = process, sent
        return port

    def destroy(self, instance: dict[str, Any]) -> None:
        name = str(instance.get("label") or instance.get("name"))
        with self._lock:
            process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)

    def alive(self) -> list[str]:
        with self._lock:
            return [name for name, p in self.processes.items() if p.poll() is None]

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.destroy({"label": name})
