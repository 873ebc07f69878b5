"""Run a graph of sub-workflow tasks on a pool of ComfyUI workers, many at once, and survive the workers.

One thread per worker pulls the next ready task (its inputs done) as the look-ahead policy says (schedule.py).
Workers are judged by what they do: refused connections past a short grace (dead or restarting), no answer or no
progress for `hang_timeout` (hung) send the task to another worker and the worker to the side, where it is probed
until it answers, its stale prompt is cancelled for real, and it rejoins (or, silent past `rejoin_timeout`, is
retired). A prompt waiting in a healthy worker's queue is alive. A worker that refuses a workflow (a missing model
or node) is not offered it again; errors on the head's own disk fail the attempt, never the worker. Results are
pulled (workers never call back) into a cache keyed by the task's workflow, values and input files and by the engine
that rendered it (ComfyUI version and install, `vidfarm.comfy.engine`), so a job run again reuses finished tasks,
but only those an engine of its pool rendered: nothing one ComfyUI made is passed off as another's (decision 0180).
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

import requests

from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.comfy.engine import engine_id
from vidfarm.errors import (
    AuthRejected,
    ComfyError,
    DispatchFailed,
    ExecutionFailed,
    ExecutionInterrupted,
    OutputInvalid,
    PromptRejected,
    WorkflowError,
)
from vidfarm.media.checks import probe
from vidfarm.render.schedule import LookaheadPolicy, Node, Snapshot
from vidfarm.workflow.declaration import Declaration

log = logging.getLogger(__name__)
__all__ = ["Attempt", "DispatchFailed", "Dispatcher", "Task", "TaskResult", "Worker", "WorkerStats"]


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
    busy_seconds: float = 0.0  # real work only: an attempt on a dead worker counts up to its last sign of life
    tasks: int = 0
    failures: list[str] = field(default_factory=list)
    retired: str = ""  # why this worker was dropped from the job for good, if it was
    rejoined: int = 0  # times it came back after being set aside (hung or down), its stale prompts cancelled


@dataclass
class Attempt:
    """One try of a task on a worker; the executor fills in the prompt id and the worker's last sign of life."""

    began: float
    alive_at: float
    prompt_id: str = ""


Execute = Callable[[Task, Worker, Attempt], dict[str, Path]]
Revive = Callable[[Worker, set[str]], bool]  # True: answers, and none of these prompts is queued or running there
Engine = Callable[[Worker], str | None]  # the engine a worker runs (vidfarm.comfy.engine); None: cannot tell now
UNKNOWN_ENGINE = "unknown"  # results of a worker whose engine could not be told: stored, never reused
OK, RETRY, UNWELL, STOP = "ok", "retry", "unwell", "stop"


class Dispatcher:
    def __init__(
        self,
        workers: list[Worker],
        declarations: Callable[[str], Declaration],
        cache_dir: Path,
        *,
        hang_timeout: float = 300.0,
        down_grace: float = 10.0,
        rejoin_timeout: float | None = None,
        max_attempts: int = 3,
        poll_interval: float = 1.0,
        on_progress: Callable[[float, str], None] | None = None,
        execute: Execute | None = None,
        revive: Revive | None = None,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not workers:
            raise DispatchFailed("the worker pool is empty; give at least one ComfyUI URL")
        self.workers = workers
        self.declarations = declarations
        self.cache_dir = cache_dir
        self.hang_timeout = hang_timeout
        self.down_grace = down_grace
        # how long a set-aside worker may stay silent before it is retired: a stopped machine may come back
        self.rejoin_timeout = max(hang_timeout, 120.0) if rejoin_timeout is None else rejoin_timeout
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.on_progress = on_progress
        self.clock = clock
        self._execute = execute or self._execute_on_comfy
        self._revive = revive or self._revive_comfy
        # the engine is asked of the ComfyUI the default executor renders on; another executor names its own or none
        self._engine_of = engine or (self._engine_on_comfy if execute is None else _unnamed_engine)
        self._engines: dict[str, str] = {}  # worker name -> engine, asked once per job
        self._sleep = sleep or self._wait_a_while
        self.stats = {w.name: WorkerStats() for w in workers}
        self.results: dict[str, TaskResult] = {}
        self.policy = LookaheadPolicy([])
        self._tasks: dict[str, Task] = {}
        self._running: dict[str, PromptRun | None] = {}  # task id -> its run (None while inputs upload)
        self._started: dict[str, float] = {}
        self._fractions: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        self._refused: dict[str, set[str]] = {}  # worker name -> workflows it refused
        self._aside: dict[str, set[str]] = {}  # worker set aside (hung or down) -> our prompts still on it
        self._reasons: dict[str, list[str]] = {}
        self._failure: DispatchFailed | None = None
        self._cancelled = threading.Event()
        self._cond = threading.Condition()
        self._scheduling = 0  # worker threads taking tasks (not set aside, not ended)
        self._clients: dict[str, ComfyClient] = {}  # one per worker: features are probed once

    # --- public -------------------------------------------------------------------------------------------
    def run(self, tasks: list[Task], given: dict[str, TaskResult] | None = None) -> dict[str, TaskResult]:
        """Run every task (given = results that exist already, e.g. the user's photo); raise if the job fails.

        Returns when the job is done; a worker still set aside then keeps trying to cancel its stale prompt in its
        own thread for at most `rejoin_timeout`."""
        self._tasks = {t.id: t for t in tasks}
        self.results = dict(given or {})
        missing = {d for t in tasks for d in t.deps} - set(self._tasks) - set(self.results)
        if missing:
            raise DispatchFailed(f"tasks depend on unknown tasks {sorted(missing)}")
        self.policy = LookaheadPolicy([Node(t.id, t.workflow, frozenset(t.deps), t.units) for t in tasks])
        engines = self._pool_engines() if any(self.cache_dir.glob("*.json")) else []
        for task in tasks:
            self._reuse_cached(task, engines)
        threads = [
            threading.Thread(target=self._worker_loop, args=(w,), name=f"dispatch-{w.name}", daemon=True)
            for w in self.workers
        ]
        with self._cond:
            self._scheduling = len(threads)
        for thread in threads:
            thread.start()
        with self._cond:
            while not (self._finished() and self._scheduling == 0):
                self._cond.wait(timeout=1.0)
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

    def counts(self) -> dict[str, tuple[int, int]]:
        """Done and total tasks per kind (the id's prefix: `key`, `seg`), for progress a person can read."""
        with self._cond:
            counts: dict[str, tuple[int, int]] = {}
            for task_id in self._tasks:
                kind = task_id.split("-", 1)[0]
                done, total = counts.get(kind, (0, 0))
                counts[kind] = (done + (task_id in self.results), total + 1)
            return counts

    def finished_files(self, kind: str) -> dict[str, dict[str, Path]]:
        """The files of the finished tasks of one kind (`key`, `seg`), by task id: what a progress view can show."""
        with self._cond:
            return {i: dict(r.files) for i, r in self.results.items() if i.split("-", 1)[0] == kind}

    def fraction(self) -> float:
        with self._cond:
            total = sum(t.units for t in self._tasks.values()) or 1.0
            done = sum(t.units for t in self._tasks.values() if t.id in self.results)
            running = sum(self._tasks[i].units * f for i, f in self._fractions.items() if i in self._running)
            return min(1.0, (done + running) / total)

    # --- scheduling ---------------------------------------------------------------------------------------
    def _worker_loop(self, worker: Worker) -> None:
        last_workflow = ""
        try:
            while True:
                task = self._claim(worker, last_workflow)
                if task is None:
                    return
                outcome = self._attempt(task, worker)
                last_workflow = task.workflow
                with self._cond:
                    self._running.pop(task.id, None)
                    self._fractions.pop(task.id, None)
                    self._cond.notify_all()
                if outcome == STOP or (outcome == UNWELL and not self._set_aside(worker)):
                    return
        finally:
            with self._cond:
                self._scheduling -= 1
                self._cond.notify_all()

    def _claim(self, worker: Worker, last_workflow: str) -> Task | None:
        with self._cond:
            task = self._next_task(worker, last_workflow)
            while task is None and not self._finished():
                self._cond.wait(timeout=1.0)
                task = self._next_task(worker, last_workflow)
            if task is None:
                self._cond.notify_all()
                return None
            self._running[task.id] = None
            self._started[task.id] = self.clock()
            self._attempts[task.id] = self._attempts.get(task.id, 0) + 1
            return task

    def _finished(self) -> bool:
        return self._cancelled.is_set() or self._failure is not None or all(t in self.results for t in self._tasks)

    def _next_task(self, worker: Worker, last_workflow: str) -> Task | None:
        if self._finished():
            return None
        refused = self._refused.get(worker.name, set())
        done = set(self.results)
        ready = [
            t.id
            for t in self._tasks.values()
            if t.id not in self.results and t.id not in self._running and t.workflow not in refused and t.deps <= done
        ]
        usable = sum(1 for w in self.workers if not self.stats[w.name].retired and w.name not in self._aside)
        snapshot = Snapshot(self.clock(), frozenset(done), {i: self._started[i] for i in self._running}, max(1, usable))
        chosen = self.policy.choose(snapshot, ready, last_workflow)
        return self._tasks[chosen] if chosen else None

    # --- one attempt --------------------------------------------------------------------------------------
    def _attempt(self, task: Task, worker: Worker) -> str:
        """Run the task once on the worker: OK, RETRY (the task failed, not the worker), UNWELL or STOP."""
        attempt = Attempt(self.clock(), self.clock())
        try:
            files = self._store(task, worker, self._execute(task, worker, attempt))
        except ExecutionInterrupted as exc:
            self._book(worker, attempt, self.clock())
            if self._cancelled.is_set():
                return STOP
            return self._note_failure(task, worker, f"interrupted by someone else: {exc}", RETRY)
        except (PromptRejected, WorkflowError) as exc:
            self._book(worker, attempt, self.clock())
            self._refused.setdefault(worker.name, set()).add(task.workflow)
            return self._note_failure(task, worker, f"refused {task.workflow}: {exc}", RETRY)
        except AuthRejected as exc:  # a wrong token does not heal by itself
            self._book(worker, attempt, self.clock())
            return self._note_failure(task, worker, str(exc), STOP, retire=str(exc))
        except (ExecutionFailed, OutputInvalid) as exc:
            self._book(worker, attempt, self.clock())
            return self._note_failure(task, worker, str(exc), RETRY)
        except (ComfyError, requests.RequestException) as exc:  # refused, silent, stalled, lost: the worker
            self._book(worker, attempt, attempt.alive_at)
            with self._cond:
                self._aside.setdefault(worker.name, set()).update({attempt.prompt_id} - {""})
            return self._note_failure(task, worker, f"{type(exc).__name__}: {exc}", UNWELL)
        except OSError as exc:  # the head's own disk or files: fail the attempt, never the worker
            self._book(worker, attempt, self.clock())
            return self._note_failure(task, worker, f"on the head: {type(exc).__name__}: {exc}", RETRY)
        ended = self.clock()
        self._book(worker, attempt, ended)
        with self._cond:
            self.results[task.id] = TaskResult(files, worker.name, ended - attempt.began, self._attempts[task.id])
            self.stats[worker.name].tasks += 1
            self.policy.learn(task.id, ended - attempt.began)
        self._report(f"{task.id} done on {worker.name}")
        return OK

    def _book(self, worker: Worker, attempt: Attempt, until: float) -> None:
        with self._cond:
            self.stats[worker.name].busy_seconds += max(0.0, until - attempt.began)

    def _note_failure(self, task: Task, worker: Worker, reason: str, outcome: str, *, retire: str = "") -> str:
        log.warning("task %s failed on worker %s: %s", task.id, worker.name, reason)
        with self._cond:
            self.stats[worker.name].failures.append(f"{task.id}: {reason}")
            self._reasons.setdefault(task.id, []).append(f"{worker.name}: {reason}")
            if retire:
                self.stats[worker.name].retired = retire
            if self._attempts[task.id] >= self.max_attempts or not self._someone_can_run(task):
                self._fail(task)
            self._cond.notify_all()
        return outcome

    def _fail(self, task: Task) -> None:
        reasons = self._reasons.get(task.id) or ["no worker can run it"]
        self._failure = self._failure or DispatchFailed(
            f"task {task.id} ({task.workflow}) could not be rendered:\n  " + "\n  ".join(reasons)
        )

    def _someone_can_run(self, task: Task) -> bool:
        return any(
            not self.stats[w.name].retired and task.workflow not in self._refused.get(w.name, set())
            for w in self.workers
        )

    # --- a worker set aside: probed until it answers, its stale prompts cancelled for real, then back ------
    def _set_aside(self, worker: Worker) -> bool:
        """True when the worker rejoins the job; False when it is retired or the job ended meanwhile."""
        with self._cond:
            self._scheduling -= 1
            self._aside.setdefault(worker.name, set())
            self._cond.notify_all()
        silent_since = self.clock()
        while True:
            with self._cond:
                stale = set(self._aside[worker.name])
                if self._finished() and not stale:  # nothing of ours there, and nothing left to do
                    del self._aside[worker.name]
                    self._scheduling += 1  # balanced by the loop's exit
                    return False
            try:
                if self._revive(worker, stale):
                    break
                silent_since = self.clock()  # it answers; the stale prompt is not gone yet: cancel again
            except (ComfyError, requests.RequestException) as exc:
                if self.clock() - silent_since > self.rejoin_timeout:
                    return self._retire(worker, f"gone: no answer for {self.rejoin_timeout:.0f} s ({exc})")
            self._sleep(self.poll_interval)
        with self._cond:
            del self._aside[worker.name]
            if self._finished():
                self._scheduling += 1  # balanced by the loop's exit
                return False
            self.stats[worker.name].rejoined += 1
            self._scheduling += 1
            self._cond.notify_all()
        log.info("worker %s answers again and has none of our prompts: back in the pool", worker.name)
        return True

    def _retire(self, worker: Worker, reason: str) -> bool:
        log.warning("worker %s retired from the job: %s", worker.name, reason)
        with self._cond:
            self._aside.pop(worker.name, None)
            self.stats[worker.name].retired = reason
            self._scheduling += 1  # balanced by the loop's exit
            for task in self._tasks.values():
                if task.id not in self.results and not self._someone_can_run(task):
                    self._fail(task)
            self._cond.notify_all()
        return False

    def _wait_a_while(self, seconds: float) -> None:
        self._cancelled.wait(max(0.2, seconds))

    def _revive_comfy(self, worker: Worker, stale: set[str]) -> bool:
        client = ComfyClient(worker.url, token=worker.token, timeout=min(10.0, self.hang_timeout))
        try:
            client.system_stats()
            for prompt_id in stale:
                client.cancel(prompt_id)
            running, pending = client.queue()
            left = stale & (set(running) | set(pending))
            if left:
                log.info("worker %s still holds stale prompt(s) %s; cancelling again", worker.name, sorted(left))
            return not left
        finally:
            client.close()

    # --- on a real ComfyUI --------------------------------------------------------------------------------
    def _client(self, worker: Worker) -> ComfyClient:
        client = self._clients.get(worker.name)
        if client is None:
            client = ComfyClient(worker.url, token=worker.token, timeout=min(10.0, self.hang_timeout))
            self._clients[worker.name] = client
        return client

    def _execute_on_comfy(self, task: Task, worker: Worker, attempt: Attempt) -> dict[str, Path]:
        declaration = self.declarations(task.workflow)
        client = self._client(worker)
        values = dict(task.values)
        for parameter, (source, role) in task.inputs.items():
            values[parameter] = client.upload_image(self.results[source].files[role], subfolder="vidfarm/inputs")
        attempt.alive_at = self.clock()
        graph = declaration.fill(declaration.graph(), values)
        run = PromptRun(
            client,
            graph,
            dest_dir=self._staging(task, worker),
            poll_interval=self.poll_interval,
            stall_timeout=self.hang_timeout,
            unreachable_timeout=self.hang_timeout,
            down_grace=self.down_grace,
            on_progress=lambda p: self._on_run_progress(task, p.fraction),
        )
        attempt.prompt_id = run.prompt_id
        with self._cond:
            if self._cancelled.is_set():
                raise ExecutionInterrupted("cancelled before it started")
            self._running[task.id] = run
        try:
            result = run.start().wait()
        finally:
            attempt.prompt_id = run.prompt_id  # the server's own id when it ignores ours
            attempt.alive_at = max(attempt.alive_at, run.last_alive)
        by_node = {o.node_id: o.path for o in result.outputs}
        files = {}
        for role, node_id in declaration.outputs.items():
            if node_id not in by_node:
                raise OutputInvalid(f"{task.workflow} on {worker.name} gave no {role} (node {node_id})")
            files[role] = by_node[node_id]
        return files

    def _staging(self, task: Task, worker: Worker) -> Path:
        return self.cache_dir / "staging" / f"{task.id}-{worker.name}"

    def _on_run_progress(self, task: Task, fraction: float) -> None:
        with self._cond:
            self._fractions[task.id] = fraction
        self._report(f"{task.id} {fraction:.0%}")

    def _report(self, detail: str) -> None:
        if self.on_progress:
            self.on_progress(self.fraction(), detail)

    # --- the cache: results keyed by the task and the engine that rendered them -----------------------------
    def _cache_key(self, task: Task, engine: str) -> str:
        digest = hashlib.sha256(json.dumps([task.workflow, task.values, engine], sort_keys=True).encode())
        for parameter in sorted(task.inputs):
            source, role = task.inputs[parameter]
            digest.update(parameter.encode() + _file_digest(self.results[source].files[role]).encode())
        return digest.hexdigest()[:16]

    def _manifest(self, task: Task, engine: str) -> Path:
        return self.cache_dir / f"{task.id}-{self._cache_key(task, engine)}.json"

    def _engine(self, worker: Worker) -> str | None:
        known = self._engines.get(worker.name)
        if known is None:
            known = self._engine_of(worker)
            if known is not None:
                self._engines[worker.name] = known
        return known

    def _pool_engines(self) -> list[str]:
        """The engines of the pool's workers that answer now, asked all at once (a silent one costs one timeout)."""
        threads = [threading.Thread(target=self._engine, args=(w,), daemon=True) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted({self._engines[w.name] for w in self.workers if w.name in self._engines})

    def _store(self, task: Task, worker: Worker, files: dict[str, Path]) -> dict[str, Path]:
        engine = self._engine(worker) or UNKNOWN_ENGINE
        key = self._cache_key(task, engine)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        stored = {}
        for role, path in files.items():
            target = self.cache_dir / f"{task.id}-{key}.{role}{path.suffix}"
            shutil.move(str(path), target)
            stored[role] = target
        manifest = self._manifest(task, engine)
        manifest.with_suffix(".tmp").write_text(json.dumps({r: p.name for r, p in stored.items()}))
        manifest.with_suffix(".tmp").replace(manifest)  # written last: a manifest means every file is complete
        shutil.rmtree(self._staging(task, worker), ignore_errors=True)
        return stored

    def _reuse_cached(self, task: Task, engines: list[str]) -> None:
        """A task whose inputs are all known and whose result one of the pool's engines rendered is done already."""
        if not task.deps <= set(self.results):
            return
        for engine in engines:
            manifest = self._manifest(task, engine)
            if not manifest.exists():
                continue
            files = {role: self.cache_dir / name for role, name in json.loads(manifest.read_text()).items()}
            try:
                for path in files.values():
                    probe(path)
            except (OutputInvalid, OSError):
                continue
            self.results[task.id] = TaskResult(files, reused=True)
            return

    def _engine_on_comfy(self, worker: Worker) -> str | None:
        try:
            return engine_id(self._client(worker).system_stats())
        except (ComfyError, requests.RequestException, ValueError) as exc:
            log.info("worker %s did not say which engine it runs (%s): none of its results is reused", worker.name, exc)
            return None


def _unnamed_engine(worker: Worker) -> str | None:
    return None


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
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _order(task_id: str) -> tuple[str, int]:
    kind, _, number = task_id.rpartition("-")
    return (kind, int(number)) if number.isdigit() else (task_id, 0)


def task_index(task_id: str) -> int:
    """The number of a task (`key-3` -> 3), 0 for an id without one."""
    return _order(task_id)[1]
