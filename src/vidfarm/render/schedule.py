"""Which ready task a free worker takes next: a look-ahead over lane sizes, on durations learned from the job.

Greedy list scheduling ("the highest task first") puts every worker on keyframes, then runs the segments in rounds,
so the last round leaves workers idle (issue 13). What closes the gap is letting only some workers feed the
keyframes while the others start segments as soon as their keyframes exist; how many depends on the counts and the
durations. So at each decision the policy simulates the rest of the job once per lane size L (at most L workers on
tasks others wait for, while a final task is ready; L = all workers is the greedy plan) and follows the best: never
worse than greedy in the model, and re-planned at every decision as durations are learned from finished tasks.
Within a kind, tasks go by longest remaining path (HLFET), then the workflow the worker ran last (no model reload),
then plan order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    """What the policy knows of a task: its inputs, its workflow, its share of the work."""

    id: str
    workflow: str
    deps: frozenset[str]
    units: float = 1.0


@dataclass
class Estimates:
    """Seconds per unit of work, per workflow, learned from finished tasks (any workflow's rate until then)."""

    rates: dict[str, list[float]] = field(default_factory=dict)

    def learn(self, node: Node, seconds: float) -> None:
        self.rates.setdefault(node.workflow, []).append(seconds / max(node.units, 1e-6))

    def seconds(self, node: Node) -> float:
        known = self.rates.get(node.workflow) or [r for rates in self.rates.values() for r in rates]
        rate = sum(known) / len(known) if known else 1.0
        return node.units * rate


@dataclass(frozen=True)
class Snapshot:
    """The job at one moment: what is done, what runs since when, how many workers can take tasks."""

    now: float
    done: frozenset[str]
    running: Mapping[str, float]  # task id -> when it started
    workers: int  # usable workers, busy or free


class LookaheadPolicy:
    def __init__(self, nodes: list[Node], estimates: Estimates | None = None) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.order = {n.id: i for i, n in enumerate(nodes)}
        self.estimates = estimates or Estimates()
        self.waited_on = {d for n in nodes for d in n.deps}  # tasks other tasks wait for (keyframes)

    def learn(self, task_id: str, seconds: float) -> None:
        self.estimates.learn(self.nodes[task_id], seconds)

    def choose(self, snapshot: Snapshot, candidates: list[str], last_workflow: str = "") -> str | None:
        """The task (among the ready ones this worker may run) the best simulated plan gives a free worker now."""
        if not candidates:
            return None
        seconds = {i: self.estimates.seconds(n) for i, n in self.nodes.items()}
        levels = self._levels(seconds)
        best: tuple[float, bool, int, str] | None = None
        for lane in range(snapshot.workers, 0, -1):
            pick = self._rule(lane, candidates, snapshot.running, levels, last_workflow)
            makespan = simulate(self, snapshot, seconds, levels, lane)
            key = (round(makespan, 6), self.nodes[pick].workflow != last_workflow, -lane, pick)
            best = key if best is None or key < best else best
        assert best is not None
        return best[3]

    # --- the rule a lane size gives, and the simulation that scores it ---------------------------------------
    def _rule(
        self, lane: int, ready: list[str], running: Mapping[str, float], levels: dict[str, float], last: str = ""
    ) -> str:
        """At most `lane` workers on waited-on tasks while a final task is ready; work-conserving otherwise."""
        feeders = [i for i in ready if i in self.waited_on]
        finals = [i for i in ready if i not in self.waited_on]
        on_feeders = sum(1 for i in running if i in self.waited_on)
        pool = feeders if feeders and (not finals or on_feeders < lane) else finals
        return min(pool, key=lambda i: (-levels[i], self.nodes[i].workflow != last, self.order[i]))

    def _levels(self, seconds: dict[str, float]) -> dict[str, float]:
        """Longest path from each task to the end of the job, its own duration included."""
        after: dict[str, list[str]] = {i: [] for i in self.nodes}
        for node in self.nodes.values():
            for dep in node.deps:
                if dep in after:
                    after[dep].append(node.id)
        levels: dict[str, float] = {}
        for task_id in sorted(self.nodes, key=lambda i: -self.order[i]):  # tasks are listed after their inputs
            levels[task_id] = seconds[task_id] + max((levels[s] for s in after[task_id]), default=0.0)
        return levels


def simulate(
    policy: LookaheadPolicy, snapshot: Snapshot, seconds: dict[str, float], levels: dict[str, float], lane: int
) -> float:
    """When the job would end if every free worker followed the rule of `lane` from now on (estimated durations)."""
    now = snapshot.now
    done = set(snapshot.done)
    # running task -> estimated end; one that overran its estimate is assumed nearly done
    ends = {i: max(now + 0.05 * seconds[i], start + seconds[i]) for i, start in snapshot.running.items()}
    pending = [i for i in policy.nodes if i not in done and i not in ends]
    while pending or ends:
        free = snapshot.workers - len(ends)
        ready = [i for i in pending if policy.nodes[i].deps <= done]
        if free > 0 and ready:
            pick = policy._rule(lane, ready, ends, levels)
            pending.remove(pick)
            ends[pick] = now + seconds[pick]
            continue
        if not ends:
            break  # nothing can run (an input is missing): the dispatcher reports that, not the policy
        first = min(ends, key=lambda i: ends[i])
        now = ends.pop(first)
        done.add(first)
    return now
