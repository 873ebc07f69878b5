"""A prompt a server holds but never runs ends in a clear error within the stall timeout, resubmitted or not.

The server is tests/fakes/old_comfy.py (no socket, an empty history) and the run's clock is a counter, so the
bounds are counted in the run's own clock readings: nothing here waits on the wall clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.old_comfy import OldComfy
from vidfarm.comfy import ComfyClient
from vidfarm.comfy.run import Progress, PromptRun
from vidfarm.errors import ComfyError, WorkerStalled

GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}


def ticking() -> Callable[[], float]:
    """A clock that moves one second each time it is read."""
    counter = itertools.count()
    return lambda: float(next(counter))


@pytest.fixture
def server() -> Iterator[OldComfy]:
    fake = OldComfy(version="0.3.75", classes={"EmptyImage": {}}).start()
    yield fake
    fake.stop()


def run_on(server: OldComfy, tmp_path: Path, stages: list[str], **bounds: float) -> PromptRun:
    return PromptRun(
        ComfyClient(server.url),
        GRAPH,
        dest_dir=tmp_path,
        poll_interval=0.0,
        clock=ticking(),
        on_progress=lambda p: stages.append(Progress(**vars(p)).stage),
        **bounds,
    )


def test_a_resubmitted_prompt_the_server_never_runs_stalls(server: OldComfy, tmp_path: Path) -> None:
    """A restarted server forgets the prompt, takes it again, then leaves it pending with nothing running."""
    server.accepted = ["forget", "pending"]
    stages: list[str] = []
    run = run_on(server, tmp_path, stages, stall_timeout=60)
    with pytest.raises(WorkerStalled, match="showed no progress"):
        run.wait()
    assert [path for path, _ in server.posted].count("/prompt") == 2  # lost once, submitted again, once
    assert "resubmitted" in stages
    assert ("/queue", {"delete": [run.prompt_id]}) in server.posted  # the stalled prompt is taken off the server


def test_pending_behind_another_prompt_is_waiting_not_stalled(server: OldComfy, tmp_path: Path) -> None:
    """Behind someone else's running prompt, a pending one is alive: only the overall timeout ends the wait."""
    server.accepted = ["pending"]
    server.running = ["someone-elses-prompt"]
    run = run_on(server, tmp_path, [], stall_timeout=60, timeout=600)
    with pytest.raises(ComfyError, match="did not finish within 600 s") as raised:
        run.wait()
    assert not isinstance(raised.value, WorkerStalled)
