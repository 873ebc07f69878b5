"""What a simulated day of bursty phone requests costs on rented GPUs, against the ideal busy-only cost.

Two drivers over the same simulated Vast.ai (storage billed from creation, GPU price from `running`, image pull
while `loading`, model download paid at the GPU price), the same requests and a manual clock:
- before: the old segment-level simulation (tests/support/fleet_sim.simulate_day: every segment a job of its own,
  one worker per 2 queued segments, idle timeout 60 s) - the figures the issue quotes (quiet 1.127, busy 1.077);
- service: the service's real runner - each request is one job record run by `Runner._run`: `_lease_workers`
  (ServiceFleet.obtain: the workers its plan can use, the real Autoscaler), then papermill, then `give_back` and
  `_finish` (the usage on the job's result, the ledger, the job's scratch). Only papermill is replaced
  (`ModelledRunner._papermill`): the render is modelled as the job's segments on its k workers in longest-first
  order, and the job holds all k until the last one ends (the notebook takes a fixed `workers` list). Time is
  virtual: every `sleep` of the fleet and of the jobs waits on the manual clock, which jumps to the next wake-up.
  The runner's queue (max_parallel slots, submission order) is kept by the driver, polled on the virtual clock.
Baselines in the same run: ideal = every segment's GPU seconds x the cheapest offer (no boot, no idle); always-on =
the same 4 workers kept all day. Modelled figures: segment GPU times, pull and download times, prices.

    .venv/bin/python benchmarks/fleet_cost.py
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vidfarm.comfy.local import REPO
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy
from vidfarm.fleet.budget import Budget
from vidfarm.fleet.provider import ManualClock, Offer
from vidfarm.workflow.declaration import find_declaration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test-only simulated parts live in tests/support
from vidfarm_service.fleet import ServiceFleet  # noqa: E402
from vidfarm_service.jobs import Job, JobStore  # noqa: E402
from vidfarm_service.runner import Runner  # noqa: E402
from vidfarm_service.submissions import make_job  # noqa: E402

from tests.support.fleet_sim import Request, SimulatedProvider, bursty_day, simulate_day  # noqa: E402

OFFERS = [Offer(1, "RTX 4090", 0.45, 24, 0.99, 2000, 12.8), Offer(2, "RTX 4090", 0.52, 24, 0.99, 2000, 12.8)]
IMAGE_GB = 12.0  # worker image (CUDA torch runtime + ComfyUI), within the reference's 10-15 GB
WAN14_GB = 38.0  # Wan 2.2 14B FLF2V stack (video.md)
SPEEDS_MB_S = {"slow host (50 MB/s, observed)": 50.0, "inet_down >= 2 Gb/s (250 MB/s)": 250.0}
BUDGET_S = 600.0
HORIZON_S = 86400.0 + 4 * 3600
DAYS = {"busy": (3, 6), "quiet": (2, 5)}


def provider() -> SimulatedProvider:
    return SimulatedProvider(ManualClock(), list(OFFERS), pull_s=120.0, download_s=152.0)


def before(per_burst: tuple[int, int]) -> tuple[float, float]:
    policy = FleetPolicy(
        image="worker", budget=Budget(per_hour=3.0, per_day=30.0), max_workers=4, idle_timeout_s=60.0,
        tick_s=10.0, jobs_per_worker=2,
    )  # fmt: skip
    report = simulate_day(policy, bursty_day(per_burst=per_burst), provider=provider(), preempt_at=(13.2 * 3600,))
    return report.billed / report.ideal, report.idle / report.busy


class VirtualTime:
    """asyncio sleeps on a ManualClock: when every task waits, the clock jumps to the earliest wake-up."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (self.clock.now() + max(0.0, seconds), next(self._order), wake))
        await wake

    async def run(self, tasks: set[asyncio.Task[None]], until: float) -> None:
        while self.clock.now() < until and any(not t.done() for t in tasks):
            while len(self.waiting) < sum(not t.done() for t in tasks):
                await asyncio.sleep(0.0002)  # a task is still running (or in the fleet's worker thread)
            at, _, wake = heapq.heappop(self.waiting)
            self.clock.t = max(self.clock.t, at)
            wake.set_result(None)
            await asyncio.sleep(0)


def makespan(segments: tuple[float, ...], workers: int) -> float:
    loads = [0.0] * max(1, workers)
    for seconds in sorted(segments, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)


@dataclass(frozen=True)
class Policy:
    name: str
    idle_timeout_s: float
    per_job: int  # at most this many workers per job (the plan's width caps it too)
    max_workers: int = 4
    prewarm_lead_s: float = 0.0  # the user opens /options (a pre-warm signal) this long before sending


@dataclass
class Result:
    ideal: float
    billed: float  # the simulated provider's bill
    busy: float  # what the jobs paid (the master's ledger: busy seconds + loading, x price)
    idle: float  # the master's ledger total minus what the jobs paid: warm workers between jobs, idle timeouts
    rentals: int
    warm: int
    jobs: int
    orphans: int
    latency_s: float  # mean arrival -> video


class ModelledRunner(Runner):
    """The service's Runner with papermill replaced by the modelled render on the job's leased workers."""

    def __init__(self, *args: object, time: VirtualTime, segments: dict[str, tuple[float, ...]],
                 sim: SimulatedProvider, **kw: object) -> None:  # fmt: skip
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.time, self.segments, self.sim = time, segments, sim
        self.creates_when_leased: dict[str, int] = {}  # the provider's rentals so far when the job had its workers

    async def _papermill(self, job: Job, parameters: dict[str, object], progress: object, offset: int) -> int:
        self.creates_when_leased[job.id] = self.sim.creates
        workers = json.loads(str(parameters["workers"]))
        await self.time.sleep(makespan(self.segments[job.id], len(workers)))
        Path(str(parameters["result_path"])).write_text(json.dumps({"workers": {}}))
        return 0


def service_day(policy: Policy, requests: list[Request]) -> Result:
    sim = provider()
    clock = sim.clock
    time = VirtualTime(clock)
    fleet_policy = FleetPolicy(image="worker", budget=Budget(per_hour=6.0, per_day=60.0),
                               max_workers=policy.max_workers, idle_timeout_s=policy.idle_timeout_s,
                               tick_s=10.0)  # fmt: skip
    scaler = Autoscaler(sim, fleet_policy, clock=clock, ready_check=sim.ready)
    records = Path(tempfile.mkdtemp()) / "jobs.jsonl"
    fleet = ServiceFleet(scaler, records=records, user_day_budget=1e9, max_per_job=policy.per_job, wait_s=86400,
                         gather_s=60, tick_s=10.0, sleep=time.sleep)  # fmt: skip
    busy, latency, warm = [0.0], [0.0], [0]
    data = Path(tempfile.mkdtemp(prefix="vidfarm-bench-fleet-"))
    segments: dict[str, tuple[float, ...]] = {}
    runner = ModelledRunner(JobStore(data / "jobs.sqlite"), notebook=data / "unused.ipynb", data_dir=data,
                            fleet=fleet, time=time, segments=segments, sim=sim)  # fmt: skip

    slots = [max(1, policy.max_workers // policy.per_job)]  # the Runner's max_parallel

    async def job(n: int, request: Request) -> None:
        if policy.prewarm_lead_s:
            await time.sleep(request.arrival - policy.prewarm_lead_s - clock.now())
            fleet.prewarm(f"tg:{n}")
        await time.sleep(request.arrival - clock.now())
        while slots[0] == 0:  # the rest wait in submission order (polled on the virtual clock)
            await time.sleep(10.0)
        slots[0] -= 1
        parameters = {"prompt": "boat", "seconds": 30.0, "width": 1280, "height": 720, "recipe": "wan22_14b_4step"}
        record = make_job(f"tg:{n}", parameters)
        runner.store.add(record)
        segments[record.id] = request.segments
        before_creates = sim.creates
        await runner._run(record)
        warm[0] += runner.creates_when_leased[record.id] == before_creates  # nothing rented while it waited
        slots[0] += 1
        done = runner.store.get(record.id)
        assert done is not None and done.result is not None, done
        busy[0] += float(done.result["fleet"]["cost"])
        latency[0] += clock.now() - request.arrival

    async def ticking() -> None:
        while clock.now() < HORIZON_S:
            await asyncio.to_thread(fleet.step)
            await time.sleep(10.0)

    async def day() -> None:
        tasks = {asyncio.create_task(job(n, r)) for n, r in enumerate(requests)}
        tasks.add(asyncio.create_task(ticking()))
        await time.run(tasks, HORIZON_S + 10)
        await fleet.stop()

    logging.disable(logging.WARNING)
    try:
        asyncio.run(day())
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(records.parent, ignore_errors=True)
    cheapest = min(o.price_per_hour for o in OFFERS)
    ideal = sum(sum(r.segments) for r in requests) * cheapest / 3600
    idle = scaler.ledger.total(clock.now()) - busy[0]
    return Result(ideal, sim.billed_between(-math.inf, math.inf), busy[0], idle, sim.creates, warm[0], len(requests),
                  len(sim.alive()), latency[0] / len(requests))  # fmt: skip


def cold_start() -> None:
    wan5 = sum(m.size for m in find_declaration(REPO / "workflows", "wan22_5b_i2v").models) / 1e9
    print(f"cold start = image pull ({IMAGE_GB:.0f} GB) + models, against the {BUDGET_S / 60:.0f}-minute budget:")
    for name, gb in (("wan22_5b_i2v (declared sizes)", wan5), ("Wan 2.2 14B stack", WAN14_GB)):
        for speed_name, speed in SPEEDS_MB_S.items():
            seconds = (IMAGE_GB + gb) * 1000 / speed
            verdict = "fits" if seconds <= BUDGET_S else "BLOWS the budget"
            print(f"  {name:<30} {gb:5.1f} GB  {speed_name:<31} {seconds / 60:5.1f} min  "
                  f"ratio {seconds / BUDGET_S:.3f}  {verdict}")  # fmt: skip


POLICIES = [
    Policy("4 workers, 4/job, idle 60 s", 60.0, 4, 4),  # the widest lease: the plan's width, capped
    Policy("4 workers, 2/job, idle 60 s", 60.0, 2, 4),
    Policy("4 workers, 1/job, idle 60 s", 60.0, 1, 4),  # the service's default
    Policy("4 workers, 1/job, idle 60 s, pre-warm 2 min", 60.0, 1, 4, 120.0),
]


def main() -> None:
    logging.disable(logging.WARNING)
    for label, per_burst in DAYS.items():
        requests = bursty_day(per_burst=per_burst)
        ratio, idle = before(per_burst)
        print(f"{label} day (9 bursts of {per_burst[0]}-{per_burst[1]} requests x 6 segments, {len(requests)} jobs)")
        print(f"  before (segment-level sim, idle 60 s):   ratio {ratio:.3f}   idle/busy {idle:.3f}")
        for policy in POLICIES:
            r = service_day(policy, requests)
            always_on = 4 * OFFERS[0].price_per_hour * 24
            print(f"  service, {policy.name:<44} ratio {r.billed / r.ideal:.3f}   idle/busy "
                  f"{r.idle / r.busy:.3f}   ${r.billed:6.2f} vs ideal ${r.ideal:6.2f} "
                  f"(always-on 4: {always_on / r.ideal:.2f}x)   {r.rentals} rentals, {r.warm}/{r.jobs} jobs warm, "
                  f"orphans {r.orphans}, mean wait for the video {r.latency_s / 60:.0f} min")  # fmt: skip
    cold_start()


if __name__ == "__main__":
    main()
