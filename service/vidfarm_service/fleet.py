"""The service's own GPU fleet: each job leases rented workers from the Autoscaler, renders on them, gives them back.

A job asks for as many workers as its plan can use at once (keyframes and segments in parallel; a chain uses one),
within the fleet's caps. Budgets are checked before anything is rented: the user's dollars per UTC day (from the
job records this module keeps), then the fleet's $/hour and $/day worst case (vidfarm.fleet.budget). While
workers boot, the job's progress shows the cold-start stage. A job's cost is its workers' busy seconds x price plus,
for a worker rented for it, the rental while it loaded; idle time between jobs is the fleet's (shown to the admin).

The Autoscaler is synchronous (provider SDKs block), so every call runs in a thread, one at a time under a lock;
a background task ticks it so idle workers are destroyed with no job running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfarm.errors import FleetRefused, JobRefused, VidfarmError
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy, Worker
from vidfarm.fleet.budget import DAY, Budget, Commitment
from vidfarm.fleet.ledger import Ledger
from vidfarm.fleet.pool import HttpReadiness, http_ready, node_classes_for
from vidfarm.fleet.provider import Clock, GpuProvider, OfferQuery, SystemClock
from vidfarm.fleet.runpod import GRAPHQL_URL, REST_URL, RunPodProvider
from vidfarm.fleet.vast import VastProvider
from vidfarm.render.plan import make_plan
from vidfarm.worker.models_fetch import models_for
from vidfarm.workflow.recipe import RECIPES_PATH, find_recipe
from vidfarm_service import catalogue
from vidfarm_service.config import Settings
from vidfarm_service.jobs import JobStatus, JobStore
from vidfarm_service.submissions import Limits

WORKFLOWS_DIR = RECIPES_PATH.parent

log = logging.getLogger(__name__)
Stage = Callable[[str], Awaitable[None]]  # shows a cold-start line in the job's progress

# Everything this module says to people, per language; the lead moves these into the message catalogue at merge.


def language_of(text: str) -> str:
    """ "ja" when the text has kana or kanji (the user writes Japanese), else "en"."""
    for char in text:
        name = unicodedata.name(char, "")
        if name.startswith(("HIRAGANA", "KATAKANA", "CJK UNIFIED")):
            return "ja"
    return "en"


def say(key: str, lang: str, **values: Any) -> str:
    """The fleet's texts live in the service's one catalogue, under `fleet_`."""
    if "window" in values:
        values = {**values, "window": catalogue.say(lang, f"fleet_window_{values['window']}")}
    return catalogue.say(lang, f"fleet_{key}", **values)


def boot_line(statuses: list[dict[str, Any] | None], lang: str) -> str:
    """The least advanced booting worker's stage: None = no address yet (the image is being pulled), else what its
    token proxy's /vidfarm/boot said ({} before it answers: an older image, or not reachable yet)."""
    if any(status is None for status in statuses):
        return say("image", lang)
    stages = [s or {} for s in statuses]
    downloading = [b for b in map(_bytes_of, stages) if b is not None]
    if downloading:
        done, total = min(downloading, key=lambda b: b[0] / b[1])
        return say("models", lang, percent=100 * done / total, done=done / 1e9, total=total / 1e9)
    if stages and all(s.get("stage") == "comfyui" for s in stages):
        return say("comfyui", lang)
    return say("booting", lang)


def _bytes_of(status: dict[str, Any]) -> tuple[float, float] | None:
    """(done, total) of a worker downloading its models; None for another stage or numbers that make no sense
    (the worker's answer is its own: it must never break the job's progress line)."""
    if status.get("stage") != "models":
        return None
    try:
        done, total = float(status["done_bytes"]), float(status["total_bytes"])
    except (KeyError, TypeError, ValueError):
        return None
    return (min(max(done, 0.0), total), total) if math.isfinite(done) and math.isfinite(total) and total > 0 else None


def explain(error: JobRefused, lang: str) -> str:
    """A fleet refusal in the user's language; any other refusal as it is."""
    if isinstance(error, FleetRefused) and f"fleet_{error.reason}" in catalogue.EN:
        return say(error.reason, lang, **error.values)
    return str(error)


def cost_line(result: dict[str, Any] | None, lang: str) -> str:
    """The job's GPU seconds and cost for the user's reply, or "" for a job that rented nothing."""
    usage = (result or {}).get("fleet")
    if not isinstance(usage, dict):
        return ""
    return say("cost", lang, seconds=float(usage["gpu_seconds"]), cost=float(usage["cost"]))


def workers_for(parameters: dict[str, Any], cap: int) -> int:
    """How many workers the job's plan can keep busy at once (its widest phase), at most `cap`."""
    try:
        recipe = find_recipe(RECIPES_PATH, str(parameters["recipe"]))
        plan = make_plan(
            prompt=str(parameters.get("prompt", "")),
            seconds=float(parameters["seconds"]),
            fps=int(parameters.get("fps", 16)),
            width=int(parameters["width"]),
            height=int(parameters["height"]),
            strategy=str(parameters.get("strategy", "keyframes")),
            segment_frames=int(parameters.get("segment_frames") or recipe.segment_frames),
            from_image=bool(parameters.get("image")),
        )
    except (KeyError, ValueError, VidfarmError):
        return 1  # the notebook refuses such a job itself; one worker is the least it could need
    if parameters.get("strategy") == "chain":
        return 1
    return max(1, min(cap, max(len(plan.keyframes), len(plan.segments))))


@dataclass
class Lease:
    job_id: str
    owner: str
    wanted: int
    queued_at: float
    until: float = math.inf  # a pre-warm hint expires; a job's lease lasts until it is given back
    workers: list[Worker] = field(default_factory=list)
    first_at: float | None = None


class ServiceFleet:
    def __init__(
        self,
        scaler: Autoscaler,
        *,
        records: Path,
        user_day_budget: float,
        max_per_job: int,
        wait_s: float,
        gather_s: float = 30.0,
        tick_s: float = 5.0,
        prewarm_s: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.scaler = scaler
        self.records = records
        self.user_day_budget, self.max_per_job = user_day_budget, max_per_job
        self.wait_s, self.gather_s, self.tick_s, self.prewarm_s = wait_s, gather_s, tick_s, prewarm_s
        self.sleep = sleep  # tests and the cost benchmark pass one that moves a ManualClock
        self.leases: dict[str, Lease] = {}
        self._served: set[str] = set()  # workers that have had a job: their boot is no later job's cost
        self._lock = threading.RLock()
        self._loop: asyncio.Task[None] | None = None

    # -- start and stop ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        orphans = await asyncio.to_thread(self._locked, self.scaler.destroy_orphans)
        if orphans:
            log.warning("destroyed %d orphan worker(s) a previous service left", len(orphans))
        self._loop = asyncio.create_task(self._ticking(), name="vidfarm-fleet")

    async def stop(self) -> None:
        if self._loop:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await asyncio.to_thread(self._locked, self._shutdown)

    def _shutdown(self) -> None:
        self.scaler.shutdown()
        self.scaler.tick(0)  # confirm, and retry a destroy that failed

    def _locked(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            return fn()

    async def _ticking(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.step)
            except Exception:  # a provider hiccup must not stop the fleet's clock
                log.exception("fleet tick failed")
            await self.sleep(self.tick_s)

    # -- the control step: the autoscaler sees every lease's want, then hands ready workers out in order ----------
    def step(self) -> None:
        with self._lock:
            now = self.scaler.clock.now()
            for name in [n for n, lease in self.leases.items() if lease.until <= now]:
                self._give_back(self.leases.pop(name))
            self.scaler.tick(sum(lease.wanted for lease in self.leases.values()))
            for lease in sorted(self.leases.values(), key=lambda lease: lease.queued_at):
                while len(lease.workers) < lease.wanted:
                    worker = self.scaler.acquire(lease.job_id, queued_at=lease.queued_at)
                    if worker is None:
                        break
                    lease.workers.append(worker)
                    lease.first_at = now if lease.first_at is None else lease.first_at

    # -- a job's workers --------------------------------------------------------------------------------------
    def check_budget(self, owner: str) -> None:
        """FleetRefused before anything is rented: the user's day is spent, or one more worker breaks a fleet cap."""
        now = self.scaler.clock.now()
        spent = self.spent_today(owner, now)
        if spent >= self.user_day_budget:
            raise FleetRefused(
                "user_budget",
                f"your GPU budget for today (${self.user_day_budget:.2f}) is used up (${spent:.2f} spent)",
                cap=self.user_day_budget,
                spent=spent,
            )
        with self._lock:
            if any(w.state == "ready" and not w.busy for w in self.scaler.workers.values()):
                return  # an idle worker is already paid for
            policy = self.scaler.policy
            probe = Commitment("probe", policy.query.max_price_per_hour, now + policy.lease_s)
            if not policy.budget.fits(self.scaler.ledger, self.scaler._commitments(), probe, now):
                window, cap = self._tight_window(now)
                raise FleetRefused(
                    "fleet_budget", f"the fleet's GPU budget (${cap:.2f} per {window}) is used up", cap=cap,
                    window=window,
                )  # fmt: skip

    def _tight_window(self, now: float) -> tuple[str, float]:
        budget = self.scaler.policy.budget
        headroom = budget.headroom(self.scaler.ledger, self.scaler._commitments(), now)
        return ("hour", budget.per_hour) if headroom <= budget.per_hour else ("day", budget.per_day)

    async def obtain(
        self,
        job_id: str,
        owner: str,
        parameters: dict[str, Any],
        show: Stage,
        *,
        canceled: Callable[[], bool],
        lang: str = "",
    ) -> list[dict[str, str]] | None:
        """The workers for the notebook's `workers`, or None if the job was canceled while they booted. The
        cold-start lines are in `lang` (the chat's), else in the prompt's language."""
        lang = lang or language_of(str(parameters.get("prompt", "")))
        self.check_budget(owner)
        wanted = workers_for(parameters, min(self.max_per_job, self.scaler.policy.max_workers))
        clock = self.scaler.clock
        with self._lock:
            hint = self.leases.pop(f"warm:{owner}", None)
            if hint is not None:
                self._give_back(hint)
            lease = self.leases[job_id] = Lease(job_id, owner, wanted, clock.now())
        refused_before, shown = self.scaler.refused_for_budget, ""
        try:
            while not self._gathered(lease):
                if canceled():
                    self.give_back(job_id)
                    return None
                self._check_waiting(lease, refused_before)
                line = self.describe(lease, lang)
                if line != shown:
                    await show(line)
                    shown = line
                await self.sleep(self.tick_s)
                await asyncio.to_thread(self.step)
        except BaseException:
            self.give_back(job_id)
            raise
        return [w.pool_entry() for w in lease.workers]

    def _gathered(self, lease: Lease) -> bool:
        if len(lease.workers) >= lease.wanted:
            return True
        return lease.first_at is not None and self.scaler.clock.now() - lease.first_at >= self.gather_s

    def _check_waiting(self, lease: Lease, refused_before: int) -> None:
        if lease.workers:
            return
        waited = self.scaler.clock.now() - lease.queued_at
        with self._lock:
            live = [w for w in self.scaler.workers.values() if w.state in ("booting", "ready")]
        if self.scaler.refused_for_budget > refused_before and not live:
            window, cap = self._tight_window(self.scaler.clock.now())
            raise FleetRefused("fleet_budget", f"the fleet's GPU budget (${cap:.2f} per {window}) is used up",
                               cap=cap, window=window)  # fmt: skip
        if waited > self.wait_s:
            price = self.scaler.policy.query.max_price_per_hour
            raise FleetRefused(
                "no_worker", f"no GPU worker could be rented within {self.wait_s / 60:.0f} minutes",
                minutes=self.wait_s / 60, price=price,
            )  # fmt: skip

    def describe(self, lease: Lease, lang: str) -> str:
        """The cold-start line: renting n, then the stage of the least advanced worker still booting."""
        with self._lock:
            booting = [w for w in self.scaler.workers.values() if w.state == "booting"]
            check = self.scaler.ready_check
        parts = [say("renting", lang, n=lease.wanted)]
        if booting:
            boot = check.boot if isinstance(check, HttpReadiness) else {}
            parts.append(boot_line([None if not w.url else boot.get(w.name, {}) for w in booting], lang))
            if isinstance(check, HttpReadiness):
                why = [str(check.last[w.name]) for w in booting if w.name in check.last]
                log.info("workers booting: %s", "; ".join(why) or "no answer yet")
        parts.append(say("ready", lang, ready=len(lease.workers), n=lease.wanted))
        return " · ".join(parts)

    def give_back(self, job_id: str) -> dict[str, Any] | None:
        """Release the job's workers; its usage ({"gpu_seconds", "cost", "workers"}), recorded, or None."""
        with self._lock:
            lease = self.leases.pop(job_id, None)
            return None if lease is None else self._give_back(lease)

    def _give_back(self, lease: Lease) -> dict[str, Any] | None:
        now = self.scaler.clock.now()
        if lease.job_id.startswith("warm:"):  # a pre-warm hint: its worker's boot goes to the job that takes it
            for worker in lease.workers:
                self.scaler.release(worker)
            return None
        seconds = cost = 0.0
        for worker in lease.workers:
            if worker.name not in self._served:  # rented for this job: its loading time is this job's
                boot = max(0.0, worker.job_start - worker.created_at)
                seconds, cost = seconds + boot, cost + boot * worker.price_per_hour / 3600
                self._served.add(worker.name)
            seconds += now - worker.job_start
            cost += self.scaler.release(worker)
        usage = {"gpu_seconds": round(seconds, 3), "cost": round(cost, 6), "workers": len(lease.workers)}
        self.records.parent.mkdir(parents=True, exist_ok=True)
        with self.records.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"job": lease.job_id, "owner": lease.owner, "at": now, **usage}) + "\n")
        return usage

    # -- pre-warm: work is likely coming (the user opened /options or sent /start) ----------------------------
    def prewarm(self, owner: str) -> bool:
        """Ask for one worker for `prewarm_s`, if the budgets allow; True if the hint was taken."""
        try:
            self.check_budget(owner)
        except FleetRefused:
            return False
        with self._lock:
            now = self.scaler.clock.now()
            self.leases[f"warm:{owner}"] = Lease(f"warm:{owner}", owner, 1, now, until=now + self.prewarm_s)
        return True

    # -- money in view ----------------------------------------------------------------------------------------
    def spent_today(self, owner: str, now: float | None = None) -> float:
        now = self.scaler.clock.now() if now is None else now
        start = math.floor(now / DAY) * DAY
        if not self.records.exists():
            return 0.0
        total = 0.0
        for line in self.records.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["owner"] == owner and record["at"] >= start:
                total += float(record["cost"])
        return total

    def fleet_today(self) -> dict[str, Any]:
        """For the admin: what the fleet spent today and every live worker."""
        with self._lock:
            now = self.scaler.clock.now()
            start = math.floor(now / DAY) * DAY
            workers = [
                {
                    "name": w.name,
                    "state": w.state,
                    "job": w.job_id or "",
                    "price_per_hour": w.price_per_hour,
                    "minutes": (now - w.created_at) / 60,
                }  # fmt: skip
                for w in self.scaler.workers.values()
            ]
            return {
                "spent": self.scaler.ledger.spent_between(start, now, now),
                "cap": self.scaler.policy.budget.per_day,
                "workers": workers,
            }


def quota_text(
    store: JobStore, owner: str, limits: Limits, fleet: ServiceFleet | None, *, lang: str, admin: bool
) -> str:
    """/quota: what is left of today's jobs, GPU minutes and money; for the admin also the fleet's day."""
    lang = "ja" if lang.startswith("ja") else "en"
    now = time.time()
    today = [job for job in store.since(owner, now - DAY) if job.status is not JobStatus.CANCELED or job.started]
    minutes = sum(job.gpu_seconds for job in today) / 60
    cap = fleet.user_day_budget if fleet else 0.0
    money = max(0.0, cap - fleet.spent_today(owner)) if fleet else 0.0
    lines = [
        say(
            "quota",
            lang,
            jobs=max(0, limits.jobs_per_day - len(today)),
            jobs_cap=limits.jobs_per_day,
            minutes=max(0.0, limits.gpu_minutes_per_day - minutes),
            minutes_cap=limits.gpu_minutes_per_day,
            money=money,
            money_cap=cap,
        )  # fmt: skip
    ]
    if admin and fleet is not None:
        day = fleet.fleet_today()
        lines.append(say("fleet", lang, spent=day["spent"], cap=day["cap"], live=len(day["workers"])))
        for w in day["workers"]:
            job = f" ({w['job']})" if w["job"] else ""
            lines.append(say("worker", lang, name=w["name"], state=w["state"], job=job, price=w["price_per_hour"],
                             minutes=w["minutes"]))  # fmt: skip
    return "\n".join(lines)


def fleet_workflows(recipes: list[str]) -> list[str]:
    """Every workflow the recipes use: what each worker loads models and node classes for."""
    return sorted({name for recipe in recipes for name in find_recipe(RECIPES_PATH, recipe).workflows.values()})


def make_provider(settings: Settings) -> GpuProvider:
    assert settings.fleet_api_key is not None  # Settings refuses a provider without a key
    key = settings.fleet_api_key.get_secret_value()
    if settings.fleet_provider == "runpod":
        return RunPodProvider(
            key, rest_url=settings.fleet_api_url or REST_URL, graphql_url=settings.fleet_graphql_url or GRAPHQL_URL
        )
    return VastProvider(key, server_url=settings.fleet_api_url or None)


def build_fleet(settings: Settings, *, provider: GpuProvider | None = None, clock: Clock | None = None) -> ServiceFleet:
    recipes = settings.fleet_recipes or [str(settings.defaults.get("recipe") or "wan22_14b_4step")]
    workflows = fleet_workflows(recipes)
    policy = FleetPolicy(
        image=settings.fleet_image,
        budget=Budget(per_hour=settings.fleet_budget_hour, per_day=settings.fleet_budget_day),
        query=OfferQuery(gpu_name=settings.fleet_gpu, max_price_per_hour=settings.fleet_max_price),
        label_prefix=settings.fleet_label,
        max_workers=settings.fleet_max_workers,
        warm_workers=settings.fleet_warm_workers,
        idle_timeout_s=settings.fleet_idle_timeout_s,
        boot_timeout_s=settings.fleet_boot_timeout_s,
        tick_s=settings.fleet_tick_s,
        worker_env={**settings.fleet_worker_env, "VIDFARM_WORKFLOWS": ",".join(workflows)},
    )
    scaler = Autoscaler(
        provider or make_provider(settings),
        policy,
        clock=clock or SystemClock(),
        ledger=Ledger(settings.data_dir / "fleet" / "ledger.jsonl"),
        ready_check=http_ready(
            models_for(workflows, WORKFLOWS_DIR), node_classes=node_classes_for(workflows, WORKFLOWS_DIR)
        ),
    )
    return ServiceFleet(
        scaler,
        records=settings.data_dir / "fleet" / "jobs.jsonl",
        user_day_budget=settings.fleet_budget_user_day,
        max_per_job=settings.fleet_workers_per_job,
        wait_s=settings.fleet_wait_s,
        tick_s=settings.fleet_tick_s,
    )
