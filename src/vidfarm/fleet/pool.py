"""Rent a fixed pool of workers for a while (a batch, a notebook session) and return them afterwards.

    with RentedPool(autoscaler, size=2) as pool:
        workers = pool.entries()          # [{"name", "url", "token"}] for the pipeline notebook's `workers`
        with pool.busy("run-1"):          # the run's cost = busy seconds x price of every worker
            ...

While the pool is held a background thread keeps ticking the autoscaler (lease renewals, lost workers, the budget
caps), so a long notebook run cannot outlive its workers' leases unchecked.

A worker is ready only when it can render (`http_ready`): ComfyUI answers through its token proxy, the declared
models are listed and every node class the workflows use is in its /object_info - not merely when the provider
says "running". Until then the check keeps, per worker, a `WorkerNotReady` naming what is missing, and a pool
that gives up says it for each worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from vidfarm.comfy.compat import version_line
from vidfarm.errors import ProviderError, WorkerNotReady
from vidfarm.fleet.autoscaler import Autoscaler, Worker
from vidfarm.workflow.declaration import ModelFile, find_declaration


class HttpReadiness:
    """The ready check: `check(worker)` is True when the worker can render; `last[name]` says why not, and
    `boot[name]` how far its start-up is (the token proxy's /vidfarm/boot: stage, model bytes done) while ComfyUI
    does not answer yet."""

    def __init__(self, models: Iterable[ModelFile] = (), node_classes: Iterable[str] = (), *, timeout: float) -> None:
        self.models = list(models)
        self.node_classes = sorted(set(node_classes))
        self.timeout = timeout
        self.last: dict[str, WorkerNotReady] = {}
        self.boot: dict[str, dict[str, Any]] = {}

    def __call__(self, worker: Worker) -> bool:
        problem = self.missing(worker)
        if problem is None:
            self.last.pop(worker.name, None)
            self.boot.pop(worker.name, None)
            return True
        self.last[worker.name] = problem
        return False

    def _boot(self, worker: Worker, headers: dict[str, str]) -> None:
        """The start-up stage of a worker whose ComfyUI does not answer yet (an older worker image has none)."""
        try:
            answer = requests.get(f"{worker.url}/vidfarm/boot", headers=headers, timeout=self.timeout)
            status = answer.json() if answer.status_code == 200 else None
        except (requests.RequestException, ValueError):
            status = None
        if isinstance(status, dict) and isinstance(status.get("stage"), str):
            self.boot[worker.name] = status

    def missing(self, worker: Worker) -> WorkerNotReady | None:
        """None when ready, else the reason: not answering, token refused, models or node classes missing."""
        headers = {"Authorization": f"Bearer {worker.token}"}
        try:
            stats = requests.get(f"{worker.url}/system_stats", headers=headers, timeout=self.timeout)
            if stats.status_code == 502:  # the proxy is up, ComfyUI is not yet: models downloading, or starting
                self._boot(worker, headers)
                return WorkerNotReady(worker.name, "ComfyUI is not up yet behind its token proxy")
            if stats.status_code != 200:
                return WorkerNotReady(worker.name, f"its token proxy answers HTTP {stats.status_code}")
            version = stats.json().get("system", {}).get("comfyui_version")
            models = [f"{m.folder}/{m.file}" for m in self._missing_models(worker.url, headers)]
            classes = self._missing_classes(worker.url, headers)
        except (requests.RequestException, ValueError) as exc:
            return WorkerNotReady(
                worker.name, f"ComfyUI does not answer through its token proxy ({type(exc).__name__})"
            )
        if not models and not classes:
            return None
        return WorkerNotReady(
            worker.name, "", missing_models=models, missing_nodes=classes, advice=_advice(classes, version)
        )

    def _missing_models(self, url: str, headers: dict[str, str]) -> list[ModelFile]:
        missing = []
        for folder in sorted({m.folder for m in self.models}):
            listed = requests.get(f"{url}/models/{folder}", headers=headers, timeout=self.timeout)
            names = set(listed.json()) if listed.status_code == 200 else set()
            missing += [m for m in self.models if m.folder == folder and m.file not in names]
        return missing

    def _missing_classes(self, url: str, headers: dict[str, str]) -> list[str]:
        if not self.node_classes:
            return []
        info = requests.get(f"{url}/object_info", headers=headers, timeout=max(self.timeout, 60.0))
        known = info.json() if info.status_code == 200 else {}
        return [c for c in self.node_classes if c not in known]

    def reasons(self) -> str:
        return "; ".join(str(problem) for problem in self.last.values())


def _advice(classes: list[str], version: str | None) -> str:
    if not classes:
        return ""
    old = version_line(version, where="it")
    if old:
        return old
    if any(c.startswith("Vidfarm") for c in classes):
        return f"ComfyUI {version} runs but the vidfarm node pack did not load: see its log for 'IMPORT FAILED'"
    return f"ComfyUI {version}: install the node packs these workflows need, or upgrade ComfyUI"


def http_ready(
    models: Iterable[ModelFile] = (), *, node_classes: Iterable[str] = (), timeout: float = 5.0
) -> HttpReadiness:
    """A ready check: /system_stats answers with the worker's token, every model is in /models/<folder> and
    every node class in /object_info (take them from the workflows with `node_classes_for`)."""
    return HttpReadiness(models, node_classes, timeout=timeout)


def node_classes_for(workflow_names: Iterable[str], workflows_dir: str | Path) -> list[str]:
    """Every class_type the named workflows use: what a worker must have to render them."""
    classes = {
        node["class_type"] for name in workflow_names for node in find_declaration(workflows_dir, name).graph().values()
    }
    return sorted(classes)


class RentedPool:
    def __init__(
        self,
        scaler: Autoscaler,
        *,
        size: int,
        ready_timeout_s: float = 1800.0,
        poll_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scaler, self.size = scaler, size
        self.ready_timeout_s, self.poll_s, self.sleep = ready_timeout_s, poll_s, sleep
        self._lock = threading.RLock()  # the autoscaler is not thread-safe: every call goes through this
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> RentedPool:
        self.scaler.destroy_orphans()
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        self._ticker = threading.Thread(target=self._keep_ticking, name="fleet-ticker", daemon=True)
        self._ticker.start()
        return self

    def _keep_ticking(self) -> None:
        while not self._closed.wait(self.poll_s):
            with self._lock:
                if not self._closed.is_set():
                    self.scaler.tick(self.size)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def wait_ready(self) -> None:
        began = self.scaler.clock.now()
        while True:
            with self._lock:
                self.scaler.tick(self.size)
            if len(self.entries()) >= self.size:
                return
            if self.scaler.clock.now() - began > self.ready_timeout_s:
                check = self.scaler.ready_check
                why = check.reasons() if isinstance(check, HttpReadiness) else ""
                raise ProviderError(
                    f"only {len(self.entries())} of {self.size} workers were ready after {self.ready_timeout_s:.0f} s "
                    f"({why or 'budget cap, no offers, or slow hosts'}); they were returned"
                )
            self.sleep(self.poll_s)

    def entries(self) -> list[dict[str, str]]:
        with self._lock:
            return self.scaler.pool()

    def price_per_hour(self) -> float:
        with self._lock:
            return sum(w.price_per_hour for w in self.scaler.workers.values() if w.state == "ready")

    @contextmanager
    def busy(self, job_id: str) -> Iterator[list[Worker]]:
        """Mark every ready worker busy with job_id (so none idles out), release them after; costs are recorded."""
        with self._lock:
            self.scaler.tick(self.size)
            held = []
            while (worker := self.scaler.acquire(job_id)) is not None:
                held.append(worker)
        try:
            yield held
        finally:
            with self._lock:
                for worker in held:
                    self.scaler.release(worker)

    def close(self) -> None:
        self._closed.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=60)
        with self._lock:
            self.scaler.shutdown()
            self.scaler.tick(0)  # confirm, and retry any destroy that failed
