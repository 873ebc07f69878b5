"""Rent a fixed pool of workers for a while (a batch, a notebook session) and return them afterwards.

    with RentedPool(autoscaler, size=2) as pool:
        workers = pool.entries()          # [{"name", "url", "token"}] for the pipeline notebook's `workers`
        with pool.busy("run-1"):          # the run's cost = busy seconds x price of every worker
            ...

While the pool is held a background thread keeps ticking the autoscaler (lease renewals, lost workers, the budget
caps), so a long notebook run cannot outlive its workers' leases unchecked.

A worker is ready only when ComfyUI answers through its token proxy and the declared models are listed
(`http_ready`), not merely when the provider says "running".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType

import requests

from vidfarm.errors import ProviderError
from vidfarm.fleet.autoscaler import Autoscaler, Worker
from vidfarm.workflow.declaration import ModelFile


def http_ready(models: Iterable[ModelFile] = (), *, timeout: float = 5.0) -> Callable[[Worker], bool]:
    """A ready check: /system_stats answers with the worker's token and every model is in /models/<folder>."""
    wanted = list(models)

    def check(worker: Worker) -> bool:
        headers = {"Authorization": f"Bearer {worker.token}"}
        try:
            if requests.get(f"{worker.url}/system_stats", headers=headers, timeout=timeout).status_code != 200:
                return False
            for folder in {m.folder for m in wanted}:
                listed = requests.get(f"{worker.url}/models/{folder}", headers=headers, timeout=timeout)
                names = set(listed.json()) if listed.status_code == 200 else set()
                if any(m.file not in names for m in wanted if m.folder == folder):
                    return False
        except (requests.RequestException, ValueError):
            return False
        return True

    return check


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
                raise ProviderError(
                    f"only {len(self.entries())} of {self.size} workers were ready after {self.ready_timeout_s:.0f} s "
                    "(budget cap, no offers, or slow hosts); they were returned"
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
