"""How one prompt run judges its worker (fake clock, fake server): refused vs silent, queued vs stalled."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import pytest

from vidfarm.comfy.run import PromptRun
from vidfarm.errors import ServerRefused, ServerUnreachable, WorkerStalled

GRAPH = {"1": {"class_type": "X", "inputs": {}}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5  # every look at the clock is half a second later: polls pass fake time
        return self.now


class Events:
    connects, connected = 1, True

    def __init__(self) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()

    def close(self) -> None:
        pass


class Server:
    """Answers history and queue as scripted; `down` raises instead."""

    url = "http://fake"

    def __init__(self, down: Exception | None = None, running: list[str] | None = None) -> None:
        self.down, self.running, self.pending = down, running or [], list[str]()
        self.finish_at: float | None = None
        self.clock: Clock | None = None

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        if self.down:
            raise self.down
        if self.finish_at is not None and self.clock and self.clock.now >= self.finish_at:
            return {"status": {"status_str": "success", "messages": []}, "outputs": {}}
        return None

    def queue(self) -> tuple[list[str], list[str]]:
        return self.running, self.pending

    def cancel(self, prompt_id: str) -> None:
        if self.down:
            raise self.down


def watch(server: Server, tmp: Path, **options: Any) -> tuple[PromptRun, Clock]:
    clock = Clock()
    server.clock = clock
    run = PromptRun(server, GRAPH, dest_dir=tmp, poll_interval=0.0, clock=clock, **options)  # type: ignore[arg-type]
    run._events = Events()  # type: ignore[assignment]
    run._started = True
    return run, clock


def test_refused_gives_up_after_the_grace_not_the_hang_timeout(tmp_path: Path) -> None:
    run, clock = watch(
        Server(down=ServerRefused("connection refused")), tmp_path, unreachable_timeout=300, down_grace=5
    )
    with pytest.raises(ServerRefused, match="connection refused"):
        run.wait()
    assert clock.now < 10


def test_silence_is_borne_for_the_hang_timeout(tmp_path: Path) -> None:
    run, clock = watch(Server(down=ServerUnreachable("read timed out")), tmp_path, unreachable_timeout=60, down_grace=5)
    with pytest.raises(ServerUnreachable):
        run.wait()
    assert 60 <= clock.now < 65


def test_a_prompt_queued_behind_another_job_is_alive(tmp_path: Path) -> None:
    server = Server(running=["someone-else"])
    run, clock = watch(server, tmp_path, stall_timeout=10)
    server.pending = [run.prompt_id]
    server.finish_at = 40.0  # waits 40 s in the queue, four times the stall timeout
    result = run.wait()
    assert result.prompt_id == run.prompt_id and clock.now >= 40


def test_a_running_prompt_without_progress_is_stalled(tmp_path: Path) -> None:
    server = Server()
    run, clock = watch(server, tmp_path, stall_timeout=10)
    server.running = [run.prompt_id]  # listed as running, the socket is up, and no progress arrives
    server.finish_at = 40.0
    with pytest.raises(WorkerStalled, match="no progress"):
        run.wait()
    assert clock.now < 15
    assert run.last_alive > 0  # it answered: time up to then was work
