"""The look-ahead policy on a fake clock: a discrete-event run of a real long-video plan, decisions it makes."""

from __future__ import annotations

from vidfarm.comfy.local import REPO
from vidfarm.render.dispatch import Task
from vidfarm.render.long_video import build_tasks
from vidfarm.render.plan import make_plan
from vidfarm.render.schedule import LookaheadPolicy, Node, Snapshot
from vidfarm.workflow.recipe import find_recipe

KEY, SEGMENT = 20.0, 130.0  # GPU seconds (video.md §5 config C): what the policy must learn


def job_tasks(derived: bool = True) -> list[Task]:
    plan = make_plan(
        prompt="a paper boat", seconds=30, fps=16, width=2560, height=1440, segment_frames=61, derived_keys=derived
    )
    return build_tasks(plan, find_recipe(REPO / "workflows" / "recipes.toml", "standin"), seed=0, photo=False)


def duration(task_id: str) -> float:
    """True durations, +-10 % by task, unknown to the policy until a task of the workflow finishes."""
    spread = 0.9 + 0.2 * ((int(task_id.split("-")[1]) * 7) % 10) / 9
    return (KEY if task_id.startswith("key") else SEGMENT) * spread


def simulate_job(workers: int, *, greedy: bool = False) -> float:
    """Discrete events on a fake clock: free workers ask the policy (or the old greedy rule) for a task."""
    job = job_tasks()
    policy = LookaheadPolicy([Node(t.id, t.workflow, frozenset(t.deps), t.units) for t in job])
    now, done, started = 0.0, set[str](), dict[str, float]()
    while len(done) < len(job):
        ready = [t.id for t in job if t.id not in done and t.id not in started and t.deps <= done]
        if ready and len(started) < workers:
            snapshot = Snapshot(now, frozenset(done), dict(started), workers)
            pick = ready[0] if greedy else policy.choose(snapshot, ready)  # greedy: plan order, keyframes first
            assert pick in ready
            started[pick] = now
            continue
        first = min(started, key=lambda i: started[i] + duration(i))
        now = started.pop(first) + duration(first)
        policy.learn(first, duration(first))
        done.add(first)
    return now


def bound(workers: int) -> float:
    job = job_tasks()
    work = sum(duration(t.id) for t in job)
    key0 = duration("key-0")
    segments = sorted(duration(t.id) for t in job if t.id.startswith("seg"))
    rounds = -(-len(segments) // workers)
    doubled = len(segments) - workers * (rounds - 1)
    earliest = key0 + min(duration(t.id) for t in job if t.id.startswith("key") and t.id != "key-0")
    packing = earliest + sum(segments[: doubled * rounds]) / doubled
    finish: dict[str, float] = {}
    for task in job:  # listed after their inputs
        finish[task.id] = duration(task.id) + max((finish[d] for d in task.deps), default=0.0)
    return max(key0 + (work - key0) / workers, packing, max(finish.values()))


def test_lookahead_beats_greedy_where_greedy_leaves_workers_idle_and_is_never_worse() -> None:
    for workers in range(1, 10):
        assert simulate_job(workers) <= simulate_job(workers, greedy=True) + 1e-6, workers
    assert simulate_job(3) < 0.95 * simulate_job(3, greedy=True)  # greedy: keys on all three, segments in rounds


def test_lookahead_stays_near_the_bound_at_every_worker_count() -> None:
    # this spread is harsher than the benchmark's: 1.07-1.11 at 3-7 workers (non-clairvoyant: which segments are
    # the long ones is not known in advance); greedy reaches 1.17 at 3
    for workers in range(1, 10):
        assert simulate_job(workers) <= 1.11 * bound(workers), workers


def test_three_workers_one_feeds_keyframes_while_two_start_segments() -> None:
    job = job_tasks()
    policy = LookaheadPolicy([Node(t.id, t.workflow, frozenset(t.deps), t.units) for t in job])
    policy.learn("key-0", KEY)
    policy.learn("key-1", KEY)
    policy.learn("seg-0", SEGMENT)  # as if learned from an earlier job step
    done = frozenset({"key-0", "key-1", "key-2", "key-3"})
    running: dict[str, float] = {}
    picks = []
    for _ in range(3):  # three workers free at t = 40 s
        ready = [t.id for t in job if t.id not in done and t.id not in running and t.deps <= done]
        pick = policy.choose(Snapshot(40.0, done, dict(running), 3), ready)
        assert pick is not None
        running[pick] = 40.0
        picks.append(pick)
    assert sum(p.startswith("key") for p in picks) == 1 and sum(p.startswith("seg") for p in picks) == 2


def test_the_workflow_a_worker_ran_last_breaks_ties() -> None:
    policy = LookaheadPolicy([Node("a-0", "wa", frozenset()), Node("b-0", "wb", frozenset())])
    snapshot = Snapshot(0.0, frozenset(), {}, 1)
    assert policy.choose(snapshot, ["a-0", "b-0"], last_workflow="wb") == "b-0"
    assert policy.choose(snapshot, ["a-0", "b-0"], last_workflow="wa") == "a-0"
    assert policy.choose(snapshot, [], last_workflow="wa") is None
