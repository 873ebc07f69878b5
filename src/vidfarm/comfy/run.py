"""One prompt from submission to checked local files, surviving dropped sockets and server restarts.

    run = PromptRun(client, graph, dest_dir="out/", on_progress=print)
    result = run.wait()          # or run.start() ... run.cancel() from another thread

Identity: the prompt_id is minted and recorded before the POST (`run.prompt_id`). Truth comes from `/history`;
the socket only speeds things up. If the server forgets the prompt (restart: history and queue both lack it,
twice in a row) the same graph is re-submitted under the same id, once.

Judged by what the server does: refused connections (nothing listens: dead, or restarting) are borne for
`down_grace`; no answer at all for `unreachable_timeout`; a prompt the server lists as pending behind a running
one is alive (it waits behind other work), one that runs, or waits while nothing runs, must show progress within
`stall_timeout` (a resubmitted prompt too: it ends in a result or a clear error within that bound). `last_alive` is
the last moment the server showed it was working on this prompt, so time lost to a dead worker is not booked as work.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.comfy.client import ComfyClient, FileRef, file_refs, new_prompt_id
from vidfarm.comfy.events import EventStream
from vidfarm.errors import (
    ComfyError,
    ExecutionFailed,
    ExecutionInterrupted,
    PromptLost,
    ServerRefused,
    ServerUnreachable,
    WorkerStalled,
)
from vidfarm.media.checks import MediaInfo, probe
from vidfarm.workflow.graph import Graph, output_prefix, with_unique_outputs

log = logging.getLogger(__name__)
END_EVENTS = ("execution_success", "execution_error", "execution_interrupted")
# sent by VidfarmSegmentScheduler: {"prompt_id", "tasks": {kind: [done, total]}, "keyframes": [/view refs + index]}
TASKS_EVENT = "vidfarm.tasks"


@dataclass
class Progress:
    """Where a prompt is; `fraction` runs 0..1 over the whole graph (steps inside a node count as part of it)."""

    prompt_id: str
    stage: str = "submitted"  # submitted | queued | running | finished | resubmitted
    node_id: str | None = None
    node_class: str | None = None
    nodes_done: int = 0
    nodes_total: int = 1
    step: int = 0
    steps: int = 0
    tasks: dict[str, tuple[int, int]] = field(default_factory=dict)  # a head's sub-tasks: kind -> (done, total)
    keyframes: tuple[FileRef, ...] = ()  # a head's finished keyframes on it, node_id = the keyframe's index

    @property
    def fraction(self) -> float:
        inside = self.step / self.steps if self.steps else 0.0
        return min(1.0, (self.nodes_done + inside) / max(1, self.nodes_total))


@dataclass(frozen=True)
class LocalOutput:
    node_id: str
    path: Path
    info: MediaInfo


@dataclass
class RunResult:
    prompt_id: str
    outputs: list[LocalOutput]
    seconds: float
    resubmitted: bool = False
    reused_outputs: list[str] = field(default_factory=list)  # files another run wrote (cache hit, §7)

    def first(self, kind: str) -> LocalOutput:
        for output in self.outputs:
            if output.info.kind == kind:
                return output
        raise ComfyError(f"the run produced no {kind}; outputs: {[o.path.name for o in self.outputs]}")


class PromptRun:
    def __init__(
        self,
        client: ComfyClient,
        graph: Graph,
        *,
        dest_dir: str | Path,
        on_progress: Callable[[Progress], None] | None = None,
        run_id: str | None = None,
        poll_interval: float = 1.0,
        unreachable_timeout: float = 120.0,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        down_grace: float | None = None,
        unique: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.graph = with_unique_outputs(graph, self.run_id) if unique else graph
        self.dest_dir = Path(dest_dir)
        self.prompt_id = new_prompt_id()
        self.client_id = uuid.uuid4().hex
        self.progress = Progress(self.prompt_id, nodes_total=len(self.graph))
        self._on_progress = on_progress
        self._poll_interval = poll_interval
        self._unreachable_timeout = unreachable_timeout
        self._timeout = timeout
        self._stall_timeout = stall_timeout
        self._down_grace = unreachable_timeout if down_grace is None else down_grace
        self._clock = clock
        self._last_activity = clock()
        self.last_alive = self._last_activity
        self._cancelled = threading.Event()
        self._resubmitted = False
        self._events: EventStream | None = None
        self._started = False
        self._cached = 0  # nodes the server reused from its cache
        self._started_nodes: set[str] = set()

    # --- public -------------------------------------------------------------------------------------------
    def start(self) -> PromptRun:
        """Open the socket first (events go only to the submitting client id), then submit."""
        self._events = EventStream(self.client.url, self.client_id, headers=self.client.http.auth_header).start()
        self._events.wait_connected(timeout=5)
        self._submit()
        self._started = True
        return self

    def wait(self) -> RunResult:
        if not self._started:
            self.start()
        began = self._clock()
        try:
            entry = self._watch(began)
            return self._collect(entry, began)
        finally:
            if self._events:
                self._events.close()

    def cancel(self) -> bool:
        """Stop this prompt on the server (pending or running); wait() then raises ExecutionInterrupted.
        False when the server could not be reached: the prompt may still be there."""
        self._cancelled.set()
        try:
            self.client.cancel(self.prompt_id)
        except ServerUnreachable:
            log.warning(
                "cancel: server unreachable; prompt %s is still there until a cancel gets through", self.prompt_id
            )
            return False
        return True

    # --- internals ----------------------------------------------------------------------------------------
    def _submit(self) -> None:
        submitted = self.client.submit(self.graph, prompt_id=self.prompt_id, client_id=self.client_id)
        if not submitted.honoured_client_id:
            log.info("server ignores client prompt ids; recording its id %s", submitted.prompt_id)
            self.prompt_id = submitted.prompt_id
            self.progress.prompt_id = submitted.prompt_id
        self._alive()
        self._report(stage="queued")

    def _alive(self) -> None:
        self._last_activity = self.last_alive = self._clock()

    def _report(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.progress, key, value)
        if self._on_progress:
            self._on_progress(self.progress)

    def _watch(self, began: float) -> dict[str, Any]:
        assert self._events is not None
        missing = 0
        down_since: float | None = None
        next_poll = self._clock() + self._poll_interval  # the socket reports the end; polls confirm
        seen_connects = self._events.connects
        while True:
            self._check_deadlines(began)
            ended = self._drain_events(timeout=max(0.0, next_poll - self._clock()))
            if not ended and self._clock() < next_poll and self._events.connects == seen_connects:
                continue
            seen_connects = self._events.connects
            next_poll = self._clock() + self._poll_interval
            try:
                entry = self.client.history(self.prompt_id)
                running, pending = ([], []) if entry is not None else self.client.queue()
            except ServerUnreachable as exc:
                down_since = down_since or self._clock()
                self._give_up_when_down(exc, self._clock() - down_since)
                continue
            down_since = None
            if entry is not None:
                return entry
            known = self._judge(running, pending)
            missing = 0 if known else missing + 1
            if missing >= 2:  # two looks apart: not a race between history and queue
                self._handle_lost()
                missing = 0

    def _judge(self, running: list[str], pending: list[str]) -> bool:
        """Whether the server holds our prompt, and whether that counts as progress (for `stall_timeout`).

        Pending behind a running prompt is waiting, which is alive. Pending while nothing runs is a server whose
        executor does not take work (seen after a restart): not progress, so the stall timeout ends the wait.
        Running is alive by the socket's events, or, with no socket, by being listed at all."""
        ours_running, ours_pending = self.prompt_id in running, self.prompt_id in pending
        if ours_running or ours_pending:
            self.last_alive = self._clock()  # it answers and holds our prompt: time spent there is work
        socket = self._events is not None and self._events.connected
        if (ours_pending and running) or (ours_running and not socket):
            self._alive()
        return ours_running or ours_pending

    def _give_up_when_down(self, exc: ServerUnreachable, down_for: float) -> None:
        """Refused (dead, or restarting) is borne for the grace; silence (hung, or a vanished host) longer."""
        limit = self._down_grace if isinstance(exc, ServerRefused) else self._unreachable_timeout
        if down_for > limit:
            raise type(exc)(f"{exc} (for {down_for:.0f} s, prompt {self.prompt_id})") from None

    def _check_deadlines(self, began: float) -> None:
        now = self._clock()
        if self._timeout and now - began > self._timeout:
            self.cancel()
            raise ComfyError(f"prompt {self.prompt_id} did not finish within {self._timeout:.0f} s; cancelled it")
        if self._stall_timeout and now - self._last_activity > self._stall_timeout:
            self.cancel()
            raise WorkerStalled(
                f"{self.client.url} showed no progress on prompt {self.prompt_id} for "
                f"{self._stall_timeout:.0f} s (asked it to cancel the prompt; it may not have heard)"
            )

    def _handle_lost(self) -> None:
        if self._cancelled.is_set():
            raise ExecutionInterrupted(f"prompt {self.prompt_id} was cancelled before it finished")
        if self._resubmitted:
            raise PromptLost(
                f"{self.client.url} lost prompt {self.prompt_id} twice (restarting or crashing?); "
                "check the server's log, then run the job again"
            )
        log.warning("%s forgot prompt %s (restart?); submitting it again", self.client.url, self.prompt_id)
        self._resubmitted = True
        self._submit()
        self._report(stage="resubmitted", nodes_done=0, step=0, steps=0)

    def _drain_events(self, timeout: float) -> bool:
        """Apply socket messages to progress; True when the socket says our prompt ended."""
        assert self._events is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._events.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if self._apply(message):
                return True

    def _apply(self, message: dict[str, Any]) -> bool:
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") != self.prompt_id:
            return False  # other prompts, broadcasts, and the id-less `executing` sent on reconnect
        self._alive()
        if kind == "execution_cached":
            self._cached = len(data.get("nodes", []))
            self._report(stage="running", nodes_done=self._cached)
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                return True  # end-of-prompt marker on every version, the only one on 2024 servers
            self._started_nodes.add(node)
            self._report(
                stage="running",
                node_id=node,
                node_class=self.graph.get(node, {}).get("class_type"),
                nodes_done=min(self.progress.nodes_total, self._cached + len(self._started_nodes) - 1),
                step=0,
                steps=0,
            )
        elif kind == "progress":
            self._report(stage="running", step=int(data.get("value", 0)), steps=int(data.get("max", 0)))
        elif kind == TASKS_EVENT:  # the vidfarm head's own event: keyframes and segments done so far
            tasks = {str(k): (int(v[0]), int(v[1])) for k, v in (data.get("tasks") or {}).items()}
            keys = tuple(
                FileRef(str(k.get("index", "")), str(k["filename"]), str(k.get("subfolder", "")), str(k["type"]))
                for k in data.get("keyframes") or []
                if isinstance(k, dict) and k.get("filename") and k.get("type")
            )
            self._report(stage="running", tasks=tasks, keyframes=keys)
        return kind in END_EVENTS

    def _collect(self, entry: dict[str, Any], began: float) -> RunResult:
        status = entry.get("status", {})
        messages = {name: data for name, data in status.get("messages", []) if isinstance(data, dict)}
        if "execution_interrupted" in messages:
            raise ExecutionInterrupted(f"prompt {self.prompt_id} was interrupted (cancelled) on {self.client.url}")
        if status.get("status_str") == "error" or "execution_error" in messages:
            raise _failure(self.prompt_id, messages.get("execution_error", {}))
        refs = file_refs(entry.get("outputs", {}))
        prefix = output_prefix(self.run_id)
        reused = [r.filename for r in refs if r.type == "output" and not r.subfolder.startswith(prefix)]
        outputs = [self._fetch(ref) for ref in refs]
        self._report(stage="finished", nodes_done=self.progress.nodes_total, step=0, steps=0)
        return RunResult(self.prompt_id, outputs, self._clock() - began, self._resubmitted, reused)

    def _fetch(self, ref: FileRef) -> LocalOutput:
        sub = "temp" if ref.type == "temp" else ""
        path = self.client.download(ref, self.dest_dir / sub if sub else self.dest_dir)
        return LocalOutput(ref.node_id, path, probe(path))


def _failure(prompt_id: str, error: dict[str, Any]) -> ExecutionFailed:
    node_id, node_type = error.get("node_id"), error.get("node_type")
    detail = f"{error.get('exception_type', 'error')}: {str(error.get('exception_message', '')).strip()}"
    where = f"node {node_id} ({node_type})" if node_id else "the workflow"
    hint = (
        " - the server ran out of memory; try a smaller size or fewer frames"
        if "OutOfMemory" in detail or "out of memory" in detail.lower()
        else ""
    )
    return ExecutionFailed(
        f"prompt {prompt_id} failed in {where}: {detail}{hint}", node_id=node_id, node_type=node_type
    )
