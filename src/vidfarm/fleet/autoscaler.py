"""Rent, hand out, and return GPU workers: a warm pool of 0..N, idle timeout (destroy, never stop), budget caps
checked before renting, orphans destroyed at start, lost or pre-empted workers reported so their job is re-queued.

The autoscaler is driven by `tick(demand)` (the number of jobs queued or running); it never sleeps, so tests and
the cost benchmark drive it with a ManualClock through a simulated day.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from vidfarm.errors import ProviderError
from vidfarm.fleet.budget import Budget, Commitment
from vidfarm.fleet.ledger import Ledger
from vidfarm.fleet.provider import Clock, GpuProvider, Instance, LaunchSpec, Offer, OfferQuery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetPolicy:
    image: str
    budget: Budget
    query: OfferQuery = field(default_factory=OfferQuery)
    label_prefix: str = "vidfarm-worker"
    max_workers: int = 4
    warm_workers: int = 0
    jobs_per_worker: int = 1  # rent one worker per this many queued/running jobs: fewer cold starts per job
    idle_timeout_s: float = 300.0
    boot_timeout_s: float = 1500.0
    lease_s: float = 1800.0
    tick_s: float = 15.0
    disk_gb: int = 120
    worker_env: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"FleetPolicy(image={self.image!r}, max_workers={self.max_workers}, budget={self.budget})"


@dataclass
class Worker:
    name: str
    token: str
    price_per_hour: float
    created_at: float
    lease_end: float
    instance_id: str = ""
    state: str = "booting"  # booting | ready | draining | destroying | unconfirmed
    url: str = ""
    last_used: float = 0.0
    job_id: str | None = None
    job_start: float = 0.0
    ready_since: float = float("inf")
    warm_at_assign: bool = False

    @property
    def busy(self) -> bool:
        return self.job_id is not None

    def pool_entry(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "token": self.token}

    def __repr__(self) -> str:
        return f"Worker({self.name}, {self.state}, ${self.price_per_hour:.3f}/h, token=<hidden>)"


LostCallback = Callable[[Worker, str | None], None]


class Autoscaler:
    def __init__(
        self,
        provider: GpuProvider,
        policy: FleetPolicy,
        *,
        clock: Clock,
        ledger: Ledger | None = None,
        ready_check: Callable[[Worker], bool] | None = None,
        on_lost: LostCallback | None = None,
    ) -> None:
        self.provider, self.policy, self.clock = provider, policy, clock
        self.ledger = ledger or Ledger()
        self.ready_check = ready_check or (lambda w: bool(w.url))
        self.on_lost = on_lost or (lambda w, job: None)
        self.workers: dict[str, Worker] = {}
        self.refused_for_budget = 0
        self._serial = 0

    # -- start and stop -------------------------------------------------------------------------------------
    def destroy_orphans(self) -> list[str]:
        """At start: destroy every labelled instance this autoscaler does not own (a crashed master's leftovers)."""
        owned = {w.instance_id for w in self.workers.values()}
        orphans = [i for i in self.provider.list_labelled(self.policy.label_prefix) if i.id not in owned]
        for orphan in orphans:
            log.warning("destroying orphan instance %s (%s)", orphan.id, orphan.label)
            self.provider.destroy(orphan.id)
        return [o.id for o in orphans]

    def shutdown(self) -> None:
        for worker in list(self.workers.values()):
            self._destroy(worker)

    # -- handing out workers --------------------------------------------------------------------------------
    def acquire(self, job_id: str, *, queued_at: float | None = None) -> Worker | None:
        """A ready, idle worker now marked busy with `job_id`, or None (the caller keeps the job queued).

        `warm_at_assign` on the worker says whether it was already ready when the job was queued."""
        idle = [w for w in self.workers.values() if w.state == "ready" and not w.busy]
        if not idle:
            return None
        worker = min(idle, key=lambda w: w.price_per_hour)
        worker.warm_at_assign = worker.ready_since <= (self.clock.now() if queued_at is None else queued_at)
        worker.job_id, worker.job_start = job_id, self.clock.now()
        return worker

    def release(self, worker: Worker) -> float:
        """The job on `worker` finished; returns its cost (busy seconds x price)."""
        if worker.job_id is None:
            return 0.0
        now = self.clock.now()
        cost = self.ledger.job_done(worker.job_id, worker.name, worker.job_start, now).cost
        worker.job_id, worker.last_used = None, now
        return cost

    def pool(self) -> list[dict[str, str]]:
        """Ready workers as the pipeline notebook's `workers` parameter wants them."""
        return [w.pool_entry() for w in self.workers.values() if w.state in ("ready", "draining") and w.url]

    # -- the control loop -----------------------------------------------------------------------------------
    def tick(self, demand: int) -> None:
        now = self.clock.now()
        self._observe(now)
        self._retire(now)
        self._grow(demand, now)

    def _observe(self, now: float) -> None:
        try:
            seen = {i.label: i for i in self.provider.list_labelled(self.policy.label_prefix)}
        except ProviderError as exc:
            log.warning("could not list instances (%s); keeping the last known state", exc)
            return
        for worker in list(self.workers.values()):
            self._observe_one(worker, seen.get(worker.name), now)

    def _observe_one(self, worker: Worker, instance: Instance | None, now: float) -> None:
        if worker.state == "unconfirmed":  # create failed or timed out: did it rent anyway?
            if instance is not None:
                worker.instance_id = instance.id
                self._destroy(worker)
            else:
                self._forget(worker, now)
            return
        if instance is None and worker.state == "booting" and now - worker.created_at < 2 * self.policy.tick_s:
            return  # a brand-new instance may not be listed yet
        if instance is None or instance.preempted or instance.status in ("exited", "offline"):
            if worker.state != "destroying":
                log.warning("worker %s lost (%s)", worker.name, instance.status if instance else "gone")
                self.on_lost(worker, worker.job_id)
                worker.job_id = None
            if instance is None:
                self._forget(worker, now)
            else:
                self._destroy(worker)
            return
        if worker.state == "destroying":
            self._destroy(worker)
        elif worker.state == "booting":
            self._boot_progress(worker, instance, now)

    def _boot_progress(self, worker: Worker, instance: Instance, now: float) -> None:
        if instance.status == "running" and instance.url:
            worker.url = instance.url
            if self.ready_check(worker):
                worker.state, worker.last_used, worker.ready_since = "ready", now, now
                return
        if now - worker.created_at > self.policy.boot_timeout_s:
            log.warning("worker %s not ready after %.0f s: destroying it", worker.name, now - worker.created_at)
            self._destroy(worker)

    def _retire(self, now: float) -> None:
        ready = [w for w in self.workers.values() if w.state == "ready"]
        keep_warm = self.policy.warm_workers
        for worker in sorted(ready, key=lambda w: w.last_used):
            idle_for = now - worker.last_used
            if not worker.busy and idle_for >= self.policy.idle_timeout_s and len(ready) > keep_warm:
                self._destroy(worker)
                ready.remove(worker)
        for worker in [w for w in self.workers.values() if w.state in ("booting", "ready", "draining")]:
            self._keep_lease(worker, now)

    def _keep_lease(self, worker: Worker, now: float) -> None:
        if worker.lease_end - now > 2 * self.policy.tick_s:
            return
        renewal = Commitment(worker.name, worker.price_per_hour, now + self.policy.lease_s)
        if worker.state != "draining" and self.policy.budget.fits(self.ledger, self._commitments(), renewal, now):
            worker.lease_end = renewal.until
            return
        worker.state = "draining" if worker.state == "ready" else worker.state
        if not worker.busy or worker.lease_end - now <= self.policy.tick_s:
            if worker.busy:
                self.on_lost(worker, worker.job_id)
                worker.job_id = None
            self._destroy(worker)

    def _grow(self, demand: int, now: float) -> None:
        live = [w for w in self.workers.values() if w.state in ("booting", "ready")]
        by_demand = -(-demand // max(1, self.policy.jobs_per_worker))
        wanted = min(self.policy.max_workers, max(self.policy.warm_workers, by_demand))
        offers: list[Offer] | None = None
        while len(live) < wanted:
            if offers is None:
                offers = self._offers()
            if not offers:
                return
            worker = self._rent(offers, now)
            if worker is None:
                return
            live.append(worker)

    def _offers(self) -> list[Offer]:
        try:
            return self.provider.search_offers(self.policy.query)
        except ProviderError as exc:
            log.warning("offer search failed: %s", exc)
            return []

    def _rent(self, offers: list[Offer], now: float) -> Worker | None:
        while offers:
            offer = offers[0]
            lease = Commitment(self._next_name(), offer.price_per_hour, now + self.policy.lease_s)
            if not self.policy.budget.fits(self.ledger, self._commitments(), lease, now):
                self.refused_for_budget += 1
                return None
            worker = Worker(lease.name, secrets.token_urlsafe(24), offer.price_per_hour, now, lease.until)
            self.workers[worker.name] = worker
            self.ledger.worker_started(worker.name, worker.price_per_hour, now)
            try:
                worker.instance_id = self.provider.create(offer, self._spec(worker))
                return worker
            except ProviderError as exc:
                log.warning("renting offer %s failed: %s", offer.id, exc)
                worker.state = "unconfirmed"  # may exist anyway: the next tick looks for its label
                offers.pop(0)
        return None

    def _spec(self, worker: Worker) -> LaunchSpec:
        env = {
            **self.policy.worker_env,
            "VIDFARM_WORKER_TOKEN": worker.token,
            "VIDFARM_WORKER_NAME": worker.name,
            "VIDFARM_IDLE_SHUTDOWN_S": str(int(self.policy.idle_timeout_s * 2 + 600)),
        }
        return LaunchSpec(image=self.policy.image, label=worker.name, env=env, disk_gb=self.policy.disk_gb)

    def _next_name(self) -> str:
        self._serial += 1
        return f"{self.policy.label_prefix}-{self._serial}-{secrets.token_hex(3)}"

    def _commitments(self) -> list[Commitment]:
        return [
            Commitment(
                w.name, w.price_per_hour, float("inf") if w.state in ("destroying", "unconfirmed") else w.lease_end
            )
            for w in self.workers.values()
        ]

    def _destroy(self, worker: Worker) -> None:
        worker.state = "destroying"
        if not worker.instance_id:
            return
        try:
            self.provider.destroy(worker.instance_id)
        except ProviderError as exc:
            log.warning("destroying %s failed (%s); retrying next tick", worker.name, exc)
            return
        self._forget(worker, self.clock.now())

    def _forget(self, worker: Worker, now: float) -> None:
        self.workers.pop(worker.name, None)
        if self.ledger.workers[worker.name].end is None:
            self.ledger.worker_stopped(worker.name, now)
