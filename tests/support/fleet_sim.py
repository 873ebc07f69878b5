"""An in-memory GPU provider with a manual clock, and a simulated day of bursty requests driven through the real
Autoscaler: for tests (budget never exceeded, no orphans, idle spend small) and benchmarks/fleet_cost.py.

Billing follows Vast.ai: storage from creation in every state, the GPU price only while `running` (the image pull
happens while `loading`); the model download runs inside the container, so it is paid at the GPU price.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from vidfarm.errors import ProviderError
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy, Worker
from vidfarm.fleet.provider import Instance, LaunchSpec, ManualClock, Offer, OfferQuery


@dataclass
class SimInstance:
    id: str
    label: str
    price_per_hour: float
    created: float
    running_at: float
    ready_at: float
    destroyed: float | None = None
    preempted: bool = False


@dataclass
class SimulatedProvider:
    clock: ManualClock
    offers: list[Offer]
    pull_s: float = 120.0
    download_s: float = 180.0
    storage_per_hour: float = 0.03
    fail_create_every: int = 0  # every n-th create raises, though the instance may exist (a slow provider)
    fail_destroy_every: int = 0
    instances: dict[str, SimInstance] = field(default_factory=dict)
    creates: int = 0
    destroys: int = 0

    def search_offers(self, query: OfferQuery) -> list[Offer]:
        return sorted(
            (o for o in self.offers if o.price_per_hour <= query.max_price_per_hour), key=lambda o: o.price_per_hour
        )

    def create(self, offer: Offer, spec: LaunchSpec) -> str:
        self.creates += 1
        now = self.clock.now()
        instance_id = str(1000 + self.creates)
        running = now + self.pull_s
        self.instances[instance_id] = SimInstance(
            instance_id, spec.label, offer.price_per_hour, now, running, running + self.download_s
        )
        if self.fail_create_every and self.creates % self.fail_create_every == 0:
            raise ProviderError("simulated: create timed out (the instance was rented anyway)")
        return instance_id

    def list_labelled(self, prefix: str) -> list[Instance]:
        now = self.clock.now()
        return [
            self._describe(i, now)
            for i in self.instances.values()
            if i.destroyed is None and i.label.startswith(prefix)
        ]

    def _describe(self, inst: SimInstance, now: float) -> Instance:
        status = "stopped" if inst.preempted else ("running" if now >= inst.running_at else "loading")
        url = f"http://sim/{inst.id}" if status == "running" else ""
        return Instance(inst.id, inst.label, status, inst.price_per_hour, url, preempted=inst.preempted)

    def destroy(self, instance_id: str) -> None:
        self.destroys += 1
        if self.fail_destroy_every and self.destroys % self.fail_destroy_every == 0:
            raise ProviderError("simulated: destroy failed")
        inst = self.instances[instance_id]
        if inst.destroyed is None:
            inst.destroyed = self.clock.now()

    def ready(self, worker: Worker) -> bool:
        inst = self.instances.get(worker.instance_id)
        return inst is not None and self.clock.now() >= inst.ready_at

    def preempt_one(self) -> bool:
        busy = [i for i in self.instances.values() if i.destroyed is None and i.ready_at <= self.clock.now()]
        if busy:
            busy[0].preempted = True
        return bool(busy)

    def billed_between(self, t0: float, t1: float) -> float:
        """What the provider would charge for [t0, t1): storage all the time, GPU while running (not pre-empted)."""
        total = 0.0
        for inst in self.instances.values():
            end = self.clock.now() if inst.destroyed is None else inst.destroyed
            total += _overlap(inst.created, end, t0, t1) * self.storage_per_hour / 3600
            total += _overlap(inst.running_at, end, t0, t1) * (inst.price_per_hour - self.storage_per_hour) / 3600
        return total

    def alive(self) -> list[SimInstance]:
        return [i for i in self.instances.values() if i.destroyed is None]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


@dataclass(frozen=True)
class Request:
    arrival: float
    segments: tuple[float, ...]  # GPU seconds of each segment (a job each)


def bursty_day(seed: int = 7, *, bursts: int = 9, per_burst: tuple[int, int] = (2, 5)) -> list[Request]:
    """A day of phone requests in bursts: each request is a 30 s video cut into 6 segments of 4-8 GPU minutes."""
    rng = random.Random(seed)
    requests = []
    for _ in range(bursts):
        start = rng.uniform(7, 23) * 3600
        for _ in range(rng.randint(*per_burst)):
            segments = tuple(rng.uniform(240, 480) for _ in range(6))
            requests.append(Request(start + rng.uniform(0, 1800), segments))
    return sorted(requests, key=lambda r: r.arrival)


@dataclass
class DayReport:
    jobs: int
    warm_first: int
    billed: float
    busy: float
    ideal: float
    max_hour: float
    max_day: float
    orphans: int
    requeued: int
    refused_for_budget: int
    unfinished: int

    @property
    def idle(self) -> float:
        return self.billed - self.busy


class _Day:
    """The master's side of a simulated day: a queue of segment jobs handed to the autoscaler's workers."""

    def __init__(self, policy: FleetPolicy, requests: list[Request], provider: SimulatedProvider) -> None:
        self.provider, self.clock = provider, provider.clock
        self.queue: deque[str] = deque()
        self.queued_at: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.pending = deque(sorted(enumerate(requests), key=lambda pair: pair[1].arrival))
        self.running: dict[str, tuple[Worker, float]] = {}
        self.requeued: list[str] = []
        self.warm_first = 0
        self.scaler = Autoscaler(provider, policy, clock=self.clock, ready_check=provider.ready, on_lost=self.lost)

    def lost(self, worker: Worker, job: str | None) -> None:
        if job is not None:
            self.running.pop(job, None)
            self.queue.appendleft(job)
            self.requeued.append(job)

    def arrive(self, now: float) -> None:
        while self.pending and self.pending[0][1].arrival <= now:
            index, request = self.pending.popleft()
            for n, seconds in enumerate(request.segments):
                job = f"r{index}s{n}"
                self.durations[job], self.queued_at[job] = seconds, now
                self.queue.append(job)

    def finish(self, now: float) -> None:
        for job, (worker, end) in list(self.running.items()):
            if end <= now:
                self.scaler.release(worker)
                del self.running[job]

    def assign(self, now: float) -> None:
        while self.queue:
            worker = self.scaler.acquire(self.queue[0], queued_at=self.queued_at[self.queue[0]])
            if worker is None:
                return
            job = self.queue.popleft()
            self.warm_first += worker.warm_at_assign and job not in self.requeued
            self.running[job] = (worker, now + self.durations[job])

    def step(self, preempt: bool) -> None:
        now = self.clock.now()
        self.arrive(now)
        if preempt:
            self.provider.preempt_one()
        self.finish(now)
        self.scaler.tick(len(self.queue) + len(self.running))
        self.assign(now)


def simulate_day(
    policy: FleetPolicy,
    requests: list[Request],
    *,
    provider: SimulatedProvider,
    preempt_at: tuple[float, ...] = (),
    horizon_s: float = 86400.0 + 4 * 3600,
) -> DayReport:
    day = _Day(policy, requests, provider)
    day.scaler.destroy_orphans()
    preempts = deque(sorted(preempt_at))
    while provider.clock.now() < horizon_s:
        due = bool(preempts) and preempts[0] <= provider.clock.now()
        if due:
            preempts.popleft()
        day.step(due)
        provider.clock.advance(policy.tick_s)
    day.scaler.shutdown()
    day.scaler.tick(0)
    cheapest = min(o.price_per_hour for o in provider.offers)
    hours = range(int(horizon_s // 3600) + 1)
    return DayReport(
        jobs=len(day.durations),
        warm_first=int(day.warm_first),
        billed=provider.billed_between(-math.inf, math.inf),
        busy=day.scaler.ledger.busy_cost(),
        ideal=sum(day.durations.values()) * cheapest / 3600,
        max_hour=max(provider.billed_between(h * 3600, (h + 1) * 3600) for h in hours),
        max_day=max(provider.billed_between(d * 86400, (d + 1) * 86400) for d in range(int(horizon_s // 86400) + 1)),
        orphans=len(provider.alive()),
        requeued=len(day.requeued),
        refused_for_budget=day.scaler.refused_for_budget,
        unfinished=len(day.queue) + len(day.running),
    )
