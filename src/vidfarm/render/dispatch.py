"""Run a graph of sub-workflow tasks on a pool of ComfyUI workers, many at once, and survive the workers.

One thread per worker pulls the next ready task (its inputs done), preferring the workflow it ran last (no needless
model reload). A task whose worker dies, hangs or vanishes goes back to the queue for another worker; a worker that
refuses a workflow (a missing model or node) is not offered it again. Results are pulled (workers never call back)
into a cache keyed by the task's workflow, values and input files, so a job run again reuses finished tasks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.errors import (
    ComfyError,
    DispatchFailed,
    ExecutionFailed,
    ExecutionInterrupted,
    OutputInvalid,
    PromptRejected,
    WorkflowError,
)
from vidfarm.media.checks import probe
from vidfarm.workflow.declaration import Declaration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    name: str
    url: str
    token: str | None = field(default=None, repr=False)

    @classmethod
    def parse_pool(cls, text: str) -> list[Worker]:
        """A JSON list of {name, url, token}, or one `url [token]` per line.

        A token written `env:NAME` is read from the environment of the process that dispatches, so secrets stay out
        of workflows, executed notebooks and ComfyUI's history.
        """
        text = text.strip()
        if text.startswith("["):
            try:
                return [
                    cls(str(w.get("name") or f"w{i}"), str(w["url"]), _secret(w.get("token")))
                    for i, w in enumerate(json.loads(text))
                ]
            except (ValueError, KeyError, AttributeError) as exc:
                raise DispatchFailed(f"the worker pool is not a JSON list of {{name, url, token}}: {exc}") from None
        workers = []
        for i, line in enumerate(filter(None, (line.strip() for line in text.splitlines()))):
            url, _, token = line.partition(" ")
            workers.append(cls(f"w{i}", url, _secret(token.strip())))
        return workers


@dataclass
class Task:
    id: str
    workflow: str
    values: dict[str, Any]
    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)  # parameter -> (task id, output role)
    units: float = 1.0  # share of the job's work, for progress

    @property
    def deps(self) -> set[str]:
        return {task_id for task_id, _ in self.inputs.values()}


@dataclass
class TaskResult:
    files: dict[str, Path]  # output role -> local file
    worker: str = ""
    seconds: float = 0.0
    attempts: int = 0
    reused: bool = False


@dataclass
class WorkerStats:
    busy_seconds: float = 0.0
    tasks: int = 0
    failures: list[str] = field(default_factory=list)
    retired: str = ""  # why this worker was dropped from the job, if it was


class Dispatcher:
    def __init__(
        self,
        workers: list[Worker],
        declarations: Callable[[str], Declaration],
        cache_dir: Path,
        *,
        hang_timeout: float = 300.0,
        max_attempts: int = 3,
        poll_interval: float = 1.0,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> None:
        if not workers:
            raise DispatchFailed("the worker pool is empty; give at least one ComfyUI URL")
        self.workers = workers
        self.declarations = declarations
        self.cache_dir = cache_dir
        self.hang_timeout = hang_timeout
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.on_progress = on_progress
        self.stats = {w.name: WorkerStats() for w in workers}
        self.results: dict[str, TaskResult] = {}
        self._tasks: dict[str, Task] = {}
        self._running: dict[str, PromptRun | None] = {}  # task id -> its run (None while inputs upload)
        self._fractions: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        self._refused: dict[str, set[str]] = {}  # worker name -> workflows it refused
        self._reasons: dict[str, list[str]] = {}
        self._failure: DispatchFailed | None = None
        self._cancelled = threading.Event()
        self._cond = threading.Condition()
        self._clients: dict[str, ComfyClient] = {}  # one per worker: features are probed once

    # --- public -------------------------------------------------------------------------------------------
    def run(self, tasks: list[Task], given: dict[str, TaskResult] | None = None) -> dict[str, TaskResult]:
        """Run every task (given = results that exist already, e.g. the user's photo); raise if the job fails."""
        self._tasks = {t.id: t for t in tasks}
        self.results = dict(given or {})
        missing = {d for t in tasks for d in t.deps} - set(self._tasks) - set(self.results)
        if missing:
            raise DispatchFailed(f"tasks depend on unknown tasks {sorted(missing)}")
        for task in tasks:
            self._reuse_cached(task)
        threads = [
            threading.Thread(target=self._worker_loop, args=(w,), name=f"dispatch-{w.name}", daemon=True)
            for w in self.workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._cancelled.is_set():
            raise ExecutionInterrupted("the job was cancelled; every worker's prompt was cancelled too")
        if self._failure:
            raise self._failure
        return self.results

    def cancel(self) -> None:
        """Cancel the job: every running prompt on every worker, and nothing new starts."""
        self._cancelled.set()
        with self._cond:
            running = list(self._running.values())
            self._cond.notify_all()
        for run in running:
            if run is not None:
                run.cancel()

    def fraction(self) -> float:
        with self._cond:
            total = sum(t.units for t in self._tasks.values()) or 1.0
            done = sum(t.units for t in self._tasks.values() if t.id in self.results)
            running = sum(self._tasks[i].units * f for i, f in self._fractions.items() if i in self._running)
            return min(1.0, (done + running) / total)

    # --- scheduling ---------------------------------------------------------------------------------------
    def _worker_loop(self, worker: Worker) -> None:
        last_workflow = ""
        while True:
            with self._cond:
                task = self._next_task(worker, last_workflow)
                while task is None and not self._finished():
                    self._cond.wait(timeout=1.0)
                    task = self._next_task(worker, last_workflow)
                if task is None:
                    self._cond.notify_all()
                    return
                self._running[task.id] = None
                self._attempts[task.id] = self._attempts.get(task.id, 0) + 1
            keep_going = self._attempt(task, worker)
            last_workflow = task.workflow
            with self._cond:
                self._running.pop(task.id, None)
                self._fractions.pop(task.id, None)
                self._cond.notify_all()
            if not keep_going:
                return

    def _finished(self) -> bool:
        return self._cancelled.is_set() or self._failure is not None or all(t in self.results for t in self._tasks)

    def _next_task(self, worker: Worker, last_workflow: str) -> Task | None:
        if self._finished():
            return None
        refused = self._refused.get(worker.name, set())
        ready = [
            t
            for t in self._tasks.values()
            if t.id not in self.results
            and t.id not in self._running
            and t.workflow not in refused
            and t.deps <= set(self.results)
        ]
        if not ready:
            return None
        return min(ready, key=lambda t: (t.workflow != last_workflow, _order(t.id)))

    # --- one attempt --------------------------------------------------------------------------------------
    def _attempt(self, task: Task, worker: Worker) -> bool:
        """Run the task once on the worker; False when this worker must stop taking tasks."""
        began = time.monotonic()
        try:
            files = self._execute(task, worker)
        except ExecutionInterrupted as exc:
            if self._cancelled.is_set():
                return False
            return self._note_failure(task, worker, f"interrupted by someone else: {exc}", retire=False)
        except (PromptRejected, WorkflowError) as exc:
            self._refused.setdefault(worker.name, set()).add(task.workflow)
            return self._note_failure(task, worker, f"refused {task.workflow}: {exc}", retire=False)
        except ExecutionFailed as exc:
            return self._note_failure(task, worker, str(exc), retire=False)
        except (ComfyError, OSError) as exc:  # unreachable, stalled, lost, bad output: the worker is unwell
            return self._note_failure(task, worker, f"{type(exc).__name__}: {exc}", retire=True)
        finally:
            self.stats[worker.name].busy_seconds += time.monotonic() - began
        with self._cond:
            self.results[task.id] = TaskResult(files, worker.name, time.monotonic() - began, self._attempts[task.id])
            self.stats[worker.name].tasks += 1
        self._report(f"{task.id} done on {worker.name}")
        return True

    def _note_failure(self, task: Task, worker: Worker, reason: str, *, retire: bool) -> bool:
        log.warning("task %s failed on worker %s: %s", task.id, worker.name, reason)
        with self._cond:
            self.stats[worker.name].failures.append(f"{task.id}: {reason}")
            self._reasons.setdefault(task.id, []).append(f"{worker.name}: {reason}")
            if retire:
                self.stats[worker.name].retired = reason
            if self._attempts[task.id] >= self.max_attempts or not self._someone_can_run(task):
                self._failure = DispatchFailed(
                    f"task {task.id} ({task.workflow}) could not be rendered:\n  " + "\n  ".join(self._reasons[task.id])
                )
            self._cond.notify_all()
        return not retire

    def _someone_can_run(self, task: Task) -> bool:
        return any(
            not self.stats[w.name].retired and task.workflow not in self._refused.get(w.name, set())
            for w in self.workers
        )

    def _execute(self, task: Task, worker: Worker) -> dict[str, Path]:
        declaration = self.declarations(task.workflow)
        client = self._clients.get(worker.name)
        if client is None:
            client = ComfyClient(worker.url, token=worker.token, timeout=min(10.0, self.hang_timeout))
            self._clients[worker.name] = client
        values = dict(task.values)
        for parameter, (source, role) in task.inputs.items():
            values[parameter] = client.upload_image(self.results[source].files[role], subfolder="vidfarm/inputs")
        graph = declaration.fill(declaration.graph(), values)
        staging = self.cache_dir / "staging" / f"{task.id}-{worker.name}"
        run = PromptRun(
            client,
            graph,
            dest_dir=staging,
            poll_interval=self.poll_interval,
            stall_timeout=self.hang_timeout,
            unreachable_timeout=self.hang_timeout,
            on_progress=lambda p: self._on_run_progress(task, p.fraction),
        )
        with self._cond:
            if self._cancelled.is_set():
                raise ExecutionInterrupted("cancelled before it started")
            self._running[task.id] = run
        result = run.start().wait()
        by_node = {o.node_id: o.path for o in result.outputs}
        files = {}
        for role, node_id in declaration.outputs.items():
            if node_id not in by_node:
                raise OutputInvalid(f"{task.workflow} on {worker.name} gave no {role} (node {node_id})")
            files[role] = by_node[node_id]
        return self._store(task, files, staging)

    def _on_run_progress(self, task: Task, fraction: float) -> None:
        with self._cond:
            self._fractions[task.id] = fraction
        self._report(f"{task.id} {fraction:.0%}")

    def _report(self, detail: str) -> None:
        if self.on_progress:
            self.on_progress(self.fraction(), detail)

    # --- the cache ----------------------------------------------------------------------------------------
    def _cache_key(self, task: Task) -> str:
        digest = hashlib.sha256(json.dumps([task.workflow, task.values], sort_keys=True).encode())
        for parameter in sorted(task.inputs):
            source, role = task.inputs[parameter]
            digest.update(parameter.encode() + _file_digest(self.results[source].files[role]).encode())
        return digest.hexdigest()[:16]

    def _manifest(self, task: Task) -> Path:
        return self.cache_dir / f"{task.id}-{self._cache_key(task)}.json"

    def _store(self, task: Task, files: dict[str, Path], staging: Path) -> dict[str, Path]:
        key = self._cache_key(task)
        stored = {}
        for role, path in files.items():
            target = self.cache_dir / f"{task.id}-{key}.{role}{path.suffix}"
            shutil.move(str(path), target)
            stored[role] = target
        manifest = self._manifest(task)
        manifest.with_suffix(".tmp").write_text(json.dumps({r: p.name for r, p in stored.items()}))
        manifest.with_suffix(".tmp").replace(manifest)  # written last: a manifest means every file is complete
        shutil.rmtree(staging, ignore_errors=True)
        return stored

    def _reuse_cached(self, task: Task) -> None:
        """A task whose inputs are all known and whose result is in the cache is done already."""
        if not task.deps <= set(self.results):
            return
        manifest = self._manifest(task)
        if not manifest.exists():
            return
        files = {role: self.cache_dir / name for role, name in json.loads(manifest.read_text()).items()}
        try:
            for path in files.values():
                probe(path)
        except (OutputInvalid, OSError):
            return
        self.results[task.id] = TaskResult(files, reused=True)


def _secret(value: str | None) -> str | None:
    if not value:
        return None
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise DispatchFailed(f"the worker token refers to ${name}, which is not set in the head's environment")
        return os.environ[name]
    return value


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _order(task_id: str) -> tuple[str, int]:
    kind, _, number = task_id.rpartition("-")
    return (kind, int(number)) if number.isdigit() else (task_id, 0)
