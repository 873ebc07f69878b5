"""What every worker and every job cost: GPU-seconds x price, kept in memory and appended to a JSON-lines file.

A worker costs from the moment it is rented until it is confirmed destroyed (storage bills from creation, so
this is the safe side); a job costs the seconds its worker was busy with it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class WorkerSpan:
    name: str
    price_per_hour: float
    start: float
    end: float | None = None

    def cost_between(self, t0: float, t1: float, now: float) -> float:
        end = now if self.end is None else self.end
        overlap = min(end, t1) - max(self.start, t0)
        return max(0.0, overlap) * self.price_per_hour / 3600.0


@dataclass(frozen=True)
class JobCost:
    job_id: str
    worker: str
    start: float
    end: float
    price_per_hour: float

    @property
    def cost(self) -> float:
        return (self.end - self.start) * self.price_per_hour / 3600.0


class Ledger:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.workers: dict[str, WorkerSpan] = {}
        self.jobs: list[JobCost] = []

    def _append(self, kind: str, record: dict[str, object]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"kind": kind, **record}) + "\n")

    def worker_started(self, name: str, price_per_hour: float, at: float) -> None:
        span = WorkerSpan(name, price_per_hour, at)
        self.workers[name] = span
        self._append("worker_started", asdict(span))

    def worker_stopped(self, name: str, at: float) -> None:
        span = self.workers[name]
        span.end = at
        self._append("worker_stopped", {"name": name, "end": at, "cost": span.cost_between(span.start, at, at)})

    def job_done(self, job_id: str, worker: str, start: float, end: float) -> JobCost:
        record = JobCost(job_id, worker, start, end, self.workers[worker].price_per_hour)
        self.jobs.append(record)
        self._append("job", {**asdict(record), "cost": record.cost})
        return record

    def spent_between(self, t0: float, t1: float, now: float) -> float:
        return sum(span.cost_between(t0, t1, now) for span in self.workers.values())

    def worker_cost(self, name: str, now: float) -> float:
        span = self.workers[name]
        return span.cost_between(span.start, float("inf"), now)

    def total(self, now: float) -> float:
        return self.spent_between(float("-inf"), float("inf"), now)

    def busy_cost(self) -> float:
        return sum(j.cost for j in self.jobs)

    def job_cost(self, job_id: str) -> float:
        return sum(j.cost for j in self.jobs if j.job_id == job_id)
