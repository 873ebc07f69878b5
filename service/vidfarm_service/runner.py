"""Runs each job's pipeline notebook with papermill, in a process of its own so that cancel can stop it.

A bounded number run at once; the rest wait in submission order. Progress comes from the ProgressLog file the
notebook writes (`progress_path`), never from its output. The executed notebook is the job's record. At start,
jobs a previous service left running are re-run with the same job_id, so the notebook reuses finished segments.

A job owns its processes (decision 0100): papermill, its kernel, the head ComfyUI and the head's local workers all
carry the job's tag in their environment (processes.owner_tag), and whatever ends a job - success, failure, cancel,
the service stopping - stops every process with the tag, bounded in time. A start first stops any process a
crashed service left with its tag. A job's files have a lifetime (vidfarm.jobs.retention): scratch goes at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidfarm.comfy.local import HEADS_ENV
from vidfarm.errors import JobRefused
from vidfarm.jobs import retention
from vidfarm.jobs.progress_log import ProgressLog
from vidfarm_service import processes
from vidfarm_service.jobs import Job, JobStatus, JobStore

if TYPE_CHECKING:
    from vidfarm_service.fleet import ServiceFleet

log = logging.getLogger(__name__)
Listener = Callable[[Job], Awaitable[None]]
POLL_SECONDS = 0.25


class Runner:
    def __init__(
        self,
        store: JobStore,
        *,
        notebook: Path,
        data_dir: Path,
        kernel_name: str = "python3",
        max_parallel: int = 1,
        cancel_grace_seconds: float = 5.0,
        stop_grace_seconds: float = 5.0,
        fleet: ServiceFleet | None = None,
    ) -> None:
        self.store = store
        self.notebook = notebook
        self.data_dir = data_dir
        self.kernel_name = kernel_name
        self.max_parallel = max_parallel
        self.cancel_grace_seconds = cancel_grace_seconds
        self.stop_grace_seconds = stop_grace_seconds  # SIGTERM -> SIGKILL for a job's processes
        self.fleet = fleet  # rents each job's workers (vidfarm_service.fleet); None: the notebook's own workers
        self._worker_tokens: dict[str, dict[str, str]] = {}  # job id -> its rented workers' tokens, by env name
        self.listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._dispatcher: asyncio.Task[None] | None = None

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def executed_notebook(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "executed.ipynb"

    def owner_tag(self, job_id: str) -> str:
        return processes.owner_tag(self.data_dir, job_id)

    async def start(self) -> None:
        orphans = processes.tagged(processes.service_tag(self.data_dir))
        if orphans:  # a crashed (SIGKILLed) service left its jobs' processes running: nobody listens to them
            log.warning("stopping %d processes a previous run of the service left behind", len(orphans))
            await processes.stop_tagged(processes.service_tag(self.data_dir), grace_seconds=self.stop_grace_seconds)
        await self._resume_unfinished()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="vidfarm-dispatch")

    async def stop(self) -> None:
        """Stop dispatching and every process of the running jobs (bounded: SIGTERM, then SIGKILL after
        `stop_grace_seconds`); their jobs stay `running` and resume at the next start."""
        if self._dispatcher:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        running = list(self._running.items())
        for _, task in running:
            task.cancel()
        for _, task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(self._stop_processes(job_id) for job_id, _ in running))

    async def _stop_processes(self, job_id: str) -> None:
        """Every process with the job's tag (papermill and the kernel too: their recorded pids may be reaped and
        reused by now, the tag is not)."""
        left = await processes.stop_tagged(self.owner_tag(job_id), grace_seconds=self.stop_grace_seconds)
        if left:
            log.error("job %s: processes %s did not die", job_id, left)

    def submit(self, job: Job) -> Job:
        self.store.add(job)
        log.info("job %s queued by %s", job.id, job.owner)
        self._wake.set()
        return job

    async def cancel(self, job_id: str) -> Job | None:
        job = self.store.get(job_id)
        if job is None or job.status.finished or job.status is JobStatus.CANCELING:
            return job
        if job.status is JobStatus.QUEUED:
            job.status, job.stage, job.finished = JobStatus.CANCELED, "canceled", time.time()
            self.store.save(job)
            await self._notify(job)
            return job
        job.status, job.stage = JobStatus.CANCELING, "canceling"
        self.store.save(job)
        await self._notify(job)
        asyncio.create_task(self._stop_notebook(job.pids), name=f"cancel-{job_id}")
        return job

    async def _stop_notebook(self, pids: list[int]) -> None:
        """Interrupt the kernel (the notebook cancels its ComfyUI prompts on KeyboardInterrupt), then papermill,
        then kill both process groups."""
        if not pids:  # canceled while its workers were being rented: the fleet hook stops there
            return
        papermill, kernels = pids[0], pids[1:]
        for kernel in kernels:
            processes.interrupt(kernel)
        await _wait_gone(papermill, self.cancel_grace_seconds)
        processes.interrupt(papermill)
        await _wait_gone(papermill, 2.0)
        leftovers = [child for pid in pids for child in processes.descendants(pid)]  # e.g. a head ComfyUI
        _kill_all([*pids, *leftovers])

    async def _resume_unfinished(self) -> None:
        for job in self.store.with_status(JobStatus.RUNNING, JobStatus.CANCELING):
            leftovers = [pid for pid in job.pids if processes.is_ours(pid)]
            if leftovers:  # a run the killed service left behind: stop it the gentle way first
                await self._stop_notebook(leftovers)
            if job.status is JobStatus.CANCELING:
                job.status, job.stage, job.finished = JobStatus.CANCELED, "canceled", time.time()
            else:
                job.status, job.stage = JobStatus.QUEUED, "resuming"
                log.info("job %s was running when the service stopped: re-running it with the same job_id", job.id)
            job.pids = []
            self.store.save(job)

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            for job in self.store.with_status(JobStatus.QUEUED):
                if len(self._running) >= self.max_parallel:
                    break
                if job.id not in self._running:
                    self._running[job.id] = asyncio.create_task(self._run_guarded(job), name=f"job-{job.id}")
            await self._wake.wait()

    async def _run_guarded(self, job: Job) -> None:
        try:
            await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not stop the queue
            log.exception("job %s: the runner failed", job.id)
            await self._stop_processes(job.id)
            job.status, job.error, job.finished = JobStatus.FAILED, f"service error: {exc}", time.time()
            self.store.save(job)
            await self._notify(job)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    def notebook_parameters(self, job: Job) -> dict[str, Any]:
        folder = self.job_dir(job.id)
        return {
            **job.parameters,
            "job_id": job.id,
            "out_dir": str(self.data_dir / "outputs"),
            "result_path": str(folder / "result.json"),
            "progress_path": str(folder / "progress.jsonl"),
        }

    async def _run(self, job: Job) -> None:
        folder = self.job_dir(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        parameters = self.notebook_parameters(job)
        result_file = Path(parameters["result_path"])
        result_file.unlink(missing_ok=True)
        progress = ProgressLog(parameters["progress_path"])
        offset = progress.path.stat().st_size if progress.path and progress.path.exists() else 0
        if self.fleet is not None and not await self._lease_workers(job, parameters):
            return
        try:
            returncode = await self._papermill(job, parameters, progress, offset)
        finally:
            usage = self.fleet.give_back(job.id) if self.fleet is not None else None
            self._worker_tokens.pop(job.id, None)
        await self._finish(job.id, returncode, result_file, usage)

    async def _papermill(self, job: Job, parameters: dict[str, Any], progress: ProgressLog, offset: int) -> int:
        with (self.job_dir(job.id) / "papermill.log").open("ab") as output:
            proc = await asyncio.create_subprocess_exec(
                *self._command(job, parameters),
                stdout=output,
                stderr=output,
                start_new_session=True,
                env=self._environment(job),
            )
        job.status, job.stage, job.started, job.attempts = JobStatus.RUNNING, "starting", time.time(), job.attempts + 1
        job.pids = [proc.pid]
        self.store.save(job)
        log.info("job %s started (papermill pid %d)", job.id, proc.pid)
        await self._notify(job)
        waiter = asyncio.create_task(proc.wait())
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=POLL_SECONDS)
            offset = await self._follow(job, progress, offset, proc.pid)
        return waiter.result()

    # -- fleet hook: the job's rented workers (the cold start shows as its progress) ------------------------------
    async def _lease_workers(self, job: Job, parameters: dict[str, Any]) -> bool:
        """True with `workers` set in parameters; False when the job failed (budget, no worker) or was canceled."""
        from vidfarm_service.fleet import explain, language_of

        assert self.fleet is not None
        job.status, job.stage, job.started, job.fraction = JobStatus.RUNNING, "renting", time.time(), 0.0
        self.store.save(job)
        await self._notify(job)

        async def show(line: str) -> None:
            current = self.store.get(job.id) or job
            current.stage, current.detail = "renting", line
            self.store.save(current)
            await self._notify(current)

        def canceled() -> bool:
            current = self.store.get(job.id)
            return current is None or current.status is JobStatus.CANCELING

        lang = job.lang or language_of(str(job.parameters.get("prompt", "")))  # the chat's, else the prompt's
        try:
            workers = await self.fleet.obtain(job.id, job.owner, parameters, show, canceled=canceled, lang=lang)
        except JobRefused as exc:
            job = self.store.get(job.id) or job
            job.status, job.stage, job.finished = JobStatus.FAILED, "failed", time.time()
            job.error = explain(exc, lang)
            self.store.save(job)
            await self._notify(job)
            return False
        if workers is None:
            job = self.store.get(job.id) or job
            job.status, job.stage, job.finished = JobStatus.CANCELED, "canceled", time.time()
            self.store.save(job)
            await self._notify(job)
            return False
        parameters["workers"] = json.dumps(self._tokens_by_reference(job, parameters, workers))
        return True

    def _tokens_by_reference(
        self, job: Job, parameters: dict[str, Any], workers: list[dict[str, str]]
    ) -> list[dict[str, str]]:
        """The rented workers' tokens go to the job's processes by environment (`env:NAME`, which the head's
        dispatcher reads), so the executed notebook - the job's record, readable by its owner - never holds them.
        A head outside (`head_url`) has not got this environment: it gets them in the parameters file alone."""
        if parameters.get("head_url"):
            return workers
        secrets: dict[str, str] = {}
        referenced = []
        for index, worker in enumerate(workers):
            if worker.get("token"):
                name = f"VIDFARM_WORKER_TOKEN_{index}"
                secrets[name] = worker["token"]
                worker = {**worker, "token": f"env:{name}"}
            referenced.append(worker)
        self._worker_tokens[job.id] = secrets
        return referenced

    def _environment(self, job: Job) -> dict[str, str]:
        """papermill's environment, inherited by its kernel, the head and the head's workers: the job's tag, where
        its head keeps its folder, and UTF-8 whatever the service's locale (a prompt may be any Unicode)."""
        return {
            **os.environ,
            **self._worker_tokens.get(job.id, {}),
            processes.OWNER_ENV: self.owner_tag(job.id),
            HEADS_ENV: str(self.data_dir / "heads"),
            "PYTHONUTF8": "1",
            "PYTHONIOENCODING": "utf-8",
        }

    def _command(self, job: Job, parameters: dict[str, Any]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "papermill",
            str(self.notebook),
            str(self.executed_notebook(job.id)),
            "-f",
            str(self._parameters_file(job, parameters)),
            "-k",
            self.kernel_name,
            "--cwd",
            str(self.job_dir(job.id)),
            "--no-progress-bar",
        ]

    def _parameters_file(self, job: Job, parameters: dict[str, Any]) -> Path:
        """Parameters go in a private file, not the command line: worker tokens must not show in `ps`.

        JSON is YAML, which papermill's -f reads, but only as UTF-8 text: YAML reads a `\\ud83d\\ude00` escape pair
        as two lone surrogates (JSON would join them), and the notebook's prompt could then not be encoded."""
        path = self.job_dir(job.id) / "parameters.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(parameters, ensure_ascii=False), encoding="utf-8")
        return path

    async def _follow(self, job: Job, progress: ProgressLog, offset: int, papermill_pid: int) -> int:
        events, offset = progress.read_from(offset)
        current = self.store.get(job.id) or job
        kernels = [] if len(current.pids) > 1 else processes.children(papermill_pid)  # until the kernel is known
        if not events and not kernels:
            return offset
        current.pids = [*current.pids, *kernels]
        if events and current.status is JobStatus.RUNNING:
            last = events[-1]
            current.stage, current.fraction, current.detail = last.stage, last.fraction, last.detail
            current.rendered = current.rendered or any(event.fraction > 0 for event in events)
            shown = [e.keyframes for e in events if e.keyframes]
            current.keyframes = _keyframes_of(job.id, shown[-1], self.data_dir) if shown else current.keyframes
        self.store.save(current)
        if events:
            await self._notify(current)
        return offset

    async def _finish(
        self, job_id: str, returncode: int, result_file: Path, usage: dict[str, Any] | None = None
    ) -> None:
        await self._stop_processes(job_id)  # a head or worker the notebook left, a kernel of a crashed papermill
        job = self.store.get(job_id)
        assert job is not None
        job.finished = time.time()
        if job.status is JobStatus.CANCELING:
            job.status, job.stage = JobStatus.CANCELED, "canceled"
        elif returncode == 0 and result_file.exists():
            job.status, job.stage, job.fraction = JobStatus.SUCCEEDED, "finished", 1.0
            job.result = json.loads(result_file.read_text())
            if usage is not None:
                job.result["fleet"] = usage  # GPU seconds and cost, for the report and the reply
        else:
            job.status, job.stage = JobStatus.FAILED, "failed"
            job.error = (
                notebook_error(self.executed_notebook(job_id))
                or log_error(self.job_dir(job_id) / "papermill.log")
                or f"papermill exited with {returncode}"
            )
        job.pids = []
        swept = await asyncio.to_thread(
            retention.clean_job_end, self.data_dir, job_id, delivered=job.status is JobStatus.SUCCEEDED
        )
        log.info("job %s: %.1f MB of scratch deleted", job_id, swept.freed_bytes / 1e6)
        self.store.save(job)
        log.info("job %s %s", job.id, job.status.value)
        await self._notify(job)

    async def _notify(self, job: Job) -> None:
        for listener in self.listeners:
            try:
                await listener(job)
            except Exception:  # a listener (the bot) failing must not stop the job
                log.exception("job %s: a listener failed", job.id)


def notebook_error(executed: Path) -> str:
    """The error the executed notebook shows (`ename: evalue`), or "" if there is none."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {output.get('evalue')}"
    return ""


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: .*)?$")  # `module.Name: message`, as a traceback ends


def log_error(log_path: Path) -> str:
    """The exception papermill's own output ends its last traceback with: the cause when papermill failed before
    the notebook ran (its parameters, its kernel), which the executed notebook then does not show."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return ""
    tail = [line for line in lines[starts[-1] + 1 :] if line and not line[0].isspace() and EXCEPTION_LINE.match(line)]
    return tail[-1][:500] if tail else ""


async def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while processes.alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        processes.kill_group(pid)


def _keyframes_of(job_id: str, paths: list[str], data_dir: Path) -> list[str]:
    """Only this job's own keyframe thumbnails are ever sent to its chat (the log is the notebook's to write):
    `outputs/<job id>/keyframes/key-NN.jpg`, checked after links are resolved."""
    folder = (data_dir / "outputs" / job_id / "keyframes").resolve()
    return [p for p in paths if Path(p).resolve().parent == folder and re.fullmatch(r"key-\d+\.jpg", Path(p).name)]
