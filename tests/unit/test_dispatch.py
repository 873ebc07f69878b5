"""The Dispatcher with a fake clock and fake workers: how it judges workers, retries, cancels and books time."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.waiting import deadline_s, wait_for
from vidfarm.errors import (
    DispatchFailed,
    ExecutionFailed,
    ExecutionInterrupted,
    PromptRejected,
    ServerRefused,
    ServerUnreachable,
    WorkerStalled,
)
from vidfarm.render.dispatch import Attempt, Dispatcher, Task, Worker
from vidfarm.workflow.declaration import Declaration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


Behaviour = Callable[[Task, Worker, Attempt], None]  # raises to fail the attempt


class FakeFarm:
    """Fake workers: each attempt calls the worker's behaviour (which may raise), then writes an output file."""

    def __init__(self, tmp: Path, clock: FakeClock) -> None:
        self.tmp, self.clock = tmp, clock
        self.behaviour: dict[str, Behaviour] = {}
        self.calls: list[tuple[str, str]] = []  # (worker, task id), in order
        self.revives: list[tuple[str, set[str]]] = []
        self.revive_answers: dict[str, list[bool | Exception]] = {}
        self._lock = threading.Lock()

    def execute(self, task: Task, worker: Worker, attempt: Attempt) -> dict[str, Path]:
        with self._lock:
            self.calls.append((worker.name, task.id))
        attempt.prompt_id = f"{task.id}@{worker.name}#{len(self.calls)}"
        behave = self.behaviour.get(worker.name)
        if behave:
            behave(task, worker, attempt)
        out = self.tmp / f"{task.id}-{worker.name}.png"
        out.write_bytes(b"x")
        return {"image": out}

    def revive(self, worker: Worker, stale: set[str]) -> bool:
        with self._lock:
            self.revives.append((worker.name, set(stale)))
            answers = self.revive_answers.get(worker.name, [])
            answer = answers.pop(0) if answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer

    def dispatcher(self, names: list[str], **options: object) -> Dispatcher:
        return Dispatcher(
            [Worker(n, f"http://{n}") for n in names],
            _no_declarations,
            self.tmp / "cache",
            execute=self.execute,
            revive=self.revive,
            clock=self.clock,
            sleep=self.clock.advance,
            **options,  # type: ignore[arg-type]
        )


def _no_declarations(name: str) -> Declaration:
    raise AssertionError("fake workers need no declarations")


@pytest.fixture
def farm(tmp_path: Path) -> FakeFarm:
    return FakeFarm(tmp_path, FakeClock())


def tasks(n: int, workflow: str = "wf") -> list[Task]:
    return [Task(f"t-{i}", workflow, {"i": i}) for i in range(n)]


def fail_once(error: Exception) -> Behaviour:
    """Fail this worker's first attempt with `error` (a crash, a hang); later ones succeed."""
    failed: list[str] = []

    def behave(task: Task, worker: Worker, attempt: Attempt) -> None:
        if not failed:
            failed.append(task.id)
            raise error

    return behave


def test_refused_worker_is_set_aside_task_moves_and_worker_rejoins(farm: FakeFarm) -> None:
    released = threading.Event()
    farm.behaviour["a"] = fail_once(ServerRefused("connection refused"))
    farm.behaviour["b"] = lambda t, w, a: (released.wait(deadline_s()), None)[
        1
    ]  # b holds its first task until a is back
    farm.revive_answers["a"] = [ServerRefused("still restarting"), True]
    d = farm.dispatcher(["a", "b"])
    threading.Thread(
        target=_when, args=(lambda: d.stats["a"].rejoined == 1, released.set, "a rejoined"), daemon=True
    ).start()
    results = d.run(tasks(4))
    assert len(results) == 4
    assert d.stats["a"].rejoined == 1 and not d.stats["a"].retired
    assert d.stats["a"].tasks >= 1  # used again after it came back
    failed = [tid for tid, r in results.items() if r.attempts == 2]
    assert len(failed) == 1
    assert [name for name, _ in farm.revives] == ["a", "a"]


def test_hung_worker_loses_its_task_its_stale_prompt_is_cancelled_and_it_rejoins(farm: FakeFarm) -> None:
    released = threading.Event()
    farm.behaviour["a"] = fail_once(WorkerStalled("no progress for 300 s"))
    farm.behaviour["b"] = lambda t, w, a: (released.wait(deadline_s()), None)[1]
    # silent twice, then it answers but still holds the prompt (cancel again), then it is clear
    farm.revive_answers["a"] = [ServerUnreachable("no answer"), ServerUnreachable("no answer"), False, True]
    d = farm.dispatcher(["a", "b"], hang_timeout=300.0)
    threading.Thread(
        target=_when, args=(lambda: d.stats["a"].rejoined == 1, released.set, "a rejoined"), daemon=True
    ).start()
    d.run(tasks(4))
    stales = [stale for _, stale in farm.revives]
    assert len(stales) == 4 and all(stale == stales[0] for stale in stales)  # cancelled again until it is gone
    [prompt] = stales[0]
    assert prompt.startswith("t-") and "@a#" in prompt  # the prompt it was running when it hung
    assert d.stats["a"].rejoined == 1 and d.stats["a"].tasks >= 1 and not d.stats["a"].retired


def test_worker_silent_past_the_rejoin_timeout_is_retired_and_the_job_finishes(farm: FakeFarm) -> None:
    farm.behaviour["a"] = fail_once(ServerRefused("connection refused"))
    farm.revive_answers["a"] = [ServerRefused("refused")] * 100
    d = farm.dispatcher(["a", "b"], rejoin_timeout=20.0, poll_interval=1.0)
    assert len(d.run(tasks(3))) == 3
    assert d.stats["a"].retired.startswith("gone")
    assert 20 <= len(farm.revives) <= 23  # one probe per poll interval of the fake clock, until the timeout


def test_head_side_oserror_fails_the_attempt_not_the_worker(farm: FakeFarm) -> None:
    farm.behaviour["a"] = fail_once(OSError(errno.ENOSPC, "No space left on device"))
    d = farm.dispatcher(["a"])
    results = d.run(tasks(2))
    assert all(r.worker == "a" for r in results.values())
    assert sorted(r.attempts for r in results.values()) == [1, 2]
    assert not d.stats["a"].retired and d.stats["a"].rejoined == 0 and not farm.revives
    assert any("on the head" in f and "No space" in f for f in d.stats["a"].failures)


def test_max_attempts_then_the_job_fails_naming_each_reason(farm: FakeFarm) -> None:
    def boom(task: Task, worker: Worker, attempt: Attempt) -> None:
        raise ExecutionFailed(f"node 3 failed on {worker.name}")

    farm.behaviour = {"a": boom, "b": boom}
    d = farm.dispatcher(["a", "b"], max_attempts=3)
    with pytest.raises(DispatchFailed, match="t-0") as caught:
        d.run(tasks(1))
    assert str(caught.value).count("node 3 failed") == 3
    assert len(farm.calls) == 3


def test_a_refused_workflow_is_not_offered_to_that_worker_again(farm: FakeFarm) -> None:
    def refuse_x(task: Task, worker: Worker, attempt: Attempt) -> None:
        if task.workflow == "x":
            raise PromptRejected("missing model", [])

    farm.behaviour["a"] = refuse_x
    d = farm.dispatcher(["a", "b"])
    results = d.run(tasks(3, "x") + [Task(f"y-{i}", "y", {}) for i in range(3)])
    assert all(results[f"t-{i}"].worker == "b" for i in range(3))
    assert sum(1 for w, t in farm.calls if w == "a" and t.startswith("t-")) <= 1


def test_the_job_fails_when_nobody_can_run_a_workflow(farm: FakeFarm) -> None:
    def refuse(task: Task, worker: Worker, attempt: Attempt) -> None:
        raise PromptRejected("missing node", [])

    farm.behaviour = {"a": refuse, "b": refuse}
    with pytest.raises(DispatchFailed, match="missing node"):
        farm.dispatcher(["a", "b"]).run(tasks(1))


def test_cancel_stops_the_job_and_nothing_new_starts(farm: FakeFarm) -> None:
    started, cancelled = threading.Event(), threading.Event()

    def hold(task: Task, worker: Worker, attempt: Attempt) -> None:
        started.set()
        cancelled.wait(deadline_s())
        raise ExecutionInterrupted("cancelled")

    farm.behaviour["a"] = hold
    d = farm.dispatcher(["a"])
    threading.Thread(target=lambda: (started.wait(deadline_s()), d.cancel(), cancelled.set()), daemon=True).start()
    with pytest.raises(ExecutionInterrupted, match="cancelled"):
        d.run(tasks(3))
    assert len(farm.calls) == 1


def test_busy_time_counts_real_work_not_waiting_on_a_dead_worker(farm: FakeFarm) -> None:
    def work(task: Task, worker: Worker, attempt: Attempt) -> None:
        if task.id == "t-1" and not getattr(work, "failed", False):
            work.failed = True  # type: ignore[attr-defined]
            attempt.alive_at = attempt.began + 3.0  # it answered for 3 s, then went silent
            farm.clock.advance(100.0)  # the run waited out the timeout
            raise ServerUnreachable("no answer")
        farm.clock.advance(10.0)

    farm.behaviour["a"] = work
    d = farm.dispatcher(["a"])
    d.run(tasks(2))
    assert d.stats["a"].busy_seconds == pytest.approx(10.0 + 3.0 + 10.0)
    assert d.results["t-1"].seconds == pytest.approx(10.0) and d.results["t-1"].attempts == 2


def test_one_worker_runs_keyframes_in_order_before_the_segments(farm: FakeFarm) -> None:
    from tests.unit.test_dispatch_schedule import job_tasks

    d = farm.dispatcher(["a"])
    job = job_tasks()
    d.run(job)
    order = [t for _, t in farm.calls]
    keys = [t.id for t in job if t.id.startswith("key")]
    assert order[: len(keys)] == keys  # key 0, then the keyframes derived from it, in plan order
    assert sorted(order[len(keys) :]) == sorted(t.id for t in job if t.id.startswith("seg"))


def _when(predicate: Callable[[], bool], then: Callable[[], None], what: str) -> None:
    """Call `then` once `predicate` holds (or once the wait gave up, so that nothing stays held)."""
    try:
        wait_for(predicate, what, every=0.01)
    finally:
        then()
