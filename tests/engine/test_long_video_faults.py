"""A long video survives its workers and its head: killed and hung workers, cancel, a head restarted mid-job."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import declaration, pool_json, require_comfy_install
from tests.support.waiting import deadline_s, wait_for
from vidfarm.comfy import ComfyClient, PromptRun, RunResult
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import ExecutionInterrupted

JOB = {"prompt": "a kite over the sea", "seconds": 12.0, "fps": 8, "width": 1280, "height": 720, "recipe": "standin"}


@pytest.fixture
def own_workers(tmp_path: Path) -> Iterator[list[LocalComfy]]:
    require_comfy_install()
    workers = [LocalComfy(tmp_path / f"worker{i}").launch() for i in range(2)]
    for worker in workers:
        worker.wait_ready(deadline_s(240))
    yield workers
    for worker in workers:
        if worker.process is not None and worker.process.poll() is None:
            worker.process.send_signal(signal.SIGCONT)
        worker.stop()


class Job:
    """A long-video prompt on a head, waited for in a thread so the test can hurt things meanwhile."""

    def __init__(self, head: LocalComfy, dest: Path, **values: Any) -> None:
        d = declaration("long_video")
        self.run = PromptRun(
            ComfyClient(head.url), d.fill(d.graph(), {**JOB, **values}), dest_dir=dest, poll_interval=0.5
        )
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._wait, daemon=True)

    def _wait(self) -> None:
        try:
            self.result = self.run.wait()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def start(self) -> Job:
        self.run.start()
        self.thread.start()
        return self

    def finish(self, timeout: float = 600) -> RunResult:
        self.thread.join(deadline_s(timeout))  # a bound that only turns a hang into a failure
        if self.error:
            raise self.error
        assert self.result is not None, f"the job did not finish within {deadline_s(timeout):.0f} s"
        return self.result


def is_segment(graph: dict[str, Any]) -> bool:
    return any(n.get("class_type") == "VidfarmStandInFirstLast" for n in graph.values())


def running_segment(worker: LocalComfy) -> dict[str, Any] | None:
    """The graph of the segment the worker renders now, if it renders one."""
    running = ComfyClient(worker.url).http.get_json("/queue")["queue_running"]
    return next((item[2] for item in running if is_segment(item[2])), None)


def report_of(result: RunResult) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        next(o.path for o in result.outputs if o.path.name == "report.json").read_text()
    )
    return report


def video_frames(result: RunResult) -> int:
    return next(o.info.frames for o in result.outputs if o.path.name == "video.mp4")


def test_worker_killed_mid_segment(comfy_server: LocalComfy, own_workers: list[LocalComfy], tmp_path: Path) -> None:
    job = Job(comfy_server, tmp_path, workers=pool_json(own_workers), hang_timeout=6.0, job_id="kill-test").start()
    wait_for(lambda: running_segment(own_workers[1]), "test-1 renders a segment")
    own_workers[1].kill()
    result = job.finish()
    assert video_frames(result) == 96
    report = report_of(result)
    assert report["workers"]["test-1"]["failures"]  # seen as unwell, with the reason
    moved = [t for t in report["tasks"].values() if t["attempts"] > 1]
    assert moved and all(t["worker"] == "test-0" for t in moved)  # the killed segment was rendered again


def test_hung_worker_loses_its_segment_after_the_timeout(
    comfy_server: LocalComfy, own_workers: list[LocalComfy], tmp_path: Path
) -> None:
    job = Job(comfy_server, tmp_path, workers=pool_json(own_workers), hang_timeout=5.0, job_id="hang-test").start()
    wait_for(lambda: running_segment(own_workers[0]), "test-0 renders a segment")
    assert own_workers[0].process is not None
    own_workers[0].process.send_signal(signal.SIGSTOP)  # alive, port open, answers nothing: a hung worker
    result = job.finish()
    assert video_frames(result) == 96
    report = report_of(result)
    assert report["workers"]["test-0"]["failures"]  # set aside, with the reason
    moved = [t for t in report["tasks"].values() if t["attempts"] > 1]
    assert moved and all(t["worker"] == "test-1" for t in moved)


def test_cancel_reaches_every_worker(comfy_server: LocalComfy, own_workers: list[LocalComfy], tmp_path: Path) -> None:
    job = Job(comfy_server, tmp_path, workers=pool_json(own_workers), job_id="cancel-test", seconds=30.0).start()
    wait_for(lambda: all(running_segment(w) for w in own_workers), "both workers render a segment")
    job.run.cancel()
    with pytest.raises(ExecutionInterrupted):
        job.finish()
    for worker in own_workers:  # nothing keeps running or waiting anywhere
        client = ComfyClient(worker.url)
        wait_for(lambda c=client: c.queue() == ([], []), f"{worker.url} has nothing queued or running")  # type: ignore[misc]


def test_head_restarted_mid_job_reuses_finished_segments(
    own_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    cache = own_server.base_dir / "output" / "vidfarm" / "jobs" / "restart-test" / "cache"
    job = Job(own_server, tmp_path, workers=pool_json(worker_pool), job_id="restart-test").start()
    wait_for(lambda: len(list(cache.glob("seg-*.json"))) >= 2, "two segments finished in the head's cache")
    own_server.kill()
    finished_before = {p.name.split("-")[1] for p in cache.glob("seg-*.json")}
    own_server.start()
    result = job.finish()
    assert result.resubmitted and video_frames(result) == 96
    report = report_of(result)
    reused = {tid for tid, t in report["tasks"].items() if t["reused"] and tid.startswith("seg-")}
    assert {f"seg-{n}" for n in finished_before} <= reused  # finished segments were not rendered again
