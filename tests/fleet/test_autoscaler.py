"""The autoscaler with a controllable clock: a simulated day, budget caps, orphans, pre-emption, provider faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fleet_sim import SimulatedProvider, bursty_day, simulate_day
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy, Worker
from vidfarm.fleet.budget import Budget, Commitment
from vidfarm.fleet.ledger import Ledger
from vidfarm.fleet.provider import LaunchSpec, ManualClock, Offer

OFFERS = [Offer(1, "RTX 4090", 0.45, 24, 0.99, 2000, 12.8), Offer(2, "RTX 4090", 0.55, 24, 0.99, 2000, 12.8)]


def policy(**overrides: object) -> FleetPolicy:
    settings: dict[str, object] = {
        "image": "worker:test",
        "budget": Budget(per_hour=3.0, per_day=30.0),
        "max_workers": 4,
        "idle_timeout_s": 60.0,
        "tick_s": 10.0,
        "jobs_per_worker": 2,
    }
    settings.update(overrides)
    return FleetPolicy(**settings)  # type: ignore[arg-type]


def provider(**faults: int) -> SimulatedProvider:
    return SimulatedProvider(ManualClock(), list(OFFERS), download_s=152, **faults)


def test_a_bursty_day_stays_in_budget_leaves_no_orphans_and_little_idle_spend() -> None:
    sim = provider()
    orphan = sim.create(OFFERS[0], LaunchSpec(image="old", label="vidfarm-worker-0-dead"))  # a crashed master's
    report = simulate_day(policy(), bursty_day(per_burst=(3, 6)), provider=sim, preempt_at=(13.2 * 3600,))
    assert report.unfinished == 0 and report.jobs == 240
    assert report.orphans == 0 and sim.instances[orphan].destroyed == 0.0  # destroyed at start
    assert report.max_hour <= 3.0 and report.max_day <= 30.0
    assert report.idle < 0.10 * report.busy, (report.idle, report.busy)
    assert report.billed / report.ideal <= 1.10
    assert report.warm_first > report.jobs / 2


def test_caps_hold_when_demand_is_far_above_them_and_the_provider_misbehaves() -> None:
    sim = provider(fail_create_every=3, fail_destroy_every=4)
    tight = policy(budget=Budget(per_hour=1.2, per_day=9.0), max_workers=8)
    report = simulate_day(tight, bursty_day(seed=3, bursts=14, per_burst=(5, 8)), provider=sim)
    assert report.refused_for_budget > 0  # the caps, not max_workers, limited the fleet
    assert report.max_hour <= 1.2 + 1e-9 and report.max_day <= 9.0 + 1e-9, (report.max_hour, report.max_day)
    assert report.orphans == 0  # failed creates were found by label and destroyed; failed destroys retried


def test_budget_reserves_worst_case_until_lease_end_in_every_window() -> None:
    budget, ledger = Budget(per_hour=1.0, per_day=5.0), Ledger()
    live = [Commitment("a", 0.6, 1800.0)]
    assert budget.fits(ledger, live, Commitment("b", 0.6, 1800.0), now=0.0)  # 0.3 + 0.3 in the first hour
    assert not budget.fits(ledger, live, Commitment("b", 0.8, 3600.0), now=0.0)  # 0.3 + 0.8 > 1.0
    spanning = [Commitment("c", 1.0, 7200.0)]  # holds the whole next hour
    assert not budget.fits(ledger, spanning, Commitment("b", 0.6, 5400.0), now=3000.0)  # next hour: 1.0 + 0.3
    assert budget.fits(ledger, spanning, Commitment("b", 0.6, 3600.0), now=3000.0)  # this hour only: fine
    live.append(Commitment("b", 0.6, 1800.0))
    assert not budget.fits(ledger, live, Commitment("c", 0.9, 1800.0), now=0.0)  # 0.3 + 0.3 + 0.45
    ledger.worker_started("old", 2.0, -3600.0 * 2)
    ledger.worker_stopped("old", 0.0)  # $4 already spent today
    assert not budget.fits(ledger, [], Commitment("d", 3.0, 1800.0), now=0.0)  # 4 + 1.5 > 5 for the day


def test_preempted_worker_reports_its_job_and_is_destroyed() -> None:
    sim = provider()
    lost: list[tuple[str, str | None]] = []
    scaler = Autoscaler(
        sim, policy(), clock=sim.clock, ready_check=sim.ready, on_lost=lambda w, job: lost.append((w.name, job))
    )
    worker = _ready_worker(scaler, sim)
    assert scaler.acquire("segment-3") is worker
    sim.instances[worker.instance_id].preempted = True  # outbid: Vast shows it stopped
    scaler.tick(1)
    assert lost == [(worker.name, "segment-3")]
    assert sim.instances[worker.instance_id].destroyed is not None  # stopped still bills storage: destroyed
    assert worker.name not in scaler.workers


def test_idle_workers_are_destroyed_not_stopped_and_costs_are_on_record() -> None:
    sim = provider()
    scaler = Autoscaler(sim, policy(warm_workers=0), clock=sim.clock, ready_check=sim.ready)
    worker = _ready_worker(scaler, sim)
    assert scaler.pool() == [{"name": worker.name, "url": f"http://sim/{worker.instance_id}", "token": worker.token}]
    assert len(worker.token) >= 30 and worker.token not in repr(worker)
    scaler.acquire("job-1")
    sim.clock.advance(600)
    cost = scaler.release(worker)
    assert cost == pytest.approx(600 * 0.45 / 3600)
    assert scaler.ledger.job_cost("job-1") == pytest.approx(cost)
    for _ in range(7):
        sim.clock.advance(10)
        scaler.tick(0)
    assert not scaler.workers and sim.instances[worker.instance_id].destroyed is not None
    assert scaler.ledger.worker_cost(worker.name, sim.clock.now()) > cost


def test_warm_pool_keeps_workers_without_demand() -> None:
    sim = provider()
    scaler = Autoscaler(sim, policy(warm_workers=1), clock=sim.clock, ready_check=sim.ready)
    for _ in range(100):
        scaler.tick(0)
        sim.clock.advance(10)
    assert [w.state for w in scaler.workers.values()] == ["ready"]


def test_a_worker_that_never_becomes_ready_is_destroyed() -> None:
    sim = provider()
    scaler = Autoscaler(sim, policy(boot_timeout_s=300), clock=sim.clock, ready_check=lambda w: False)
    scaler.tick(1)
    first = next(iter(scaler.workers.values()))
    for _ in range(40):
        sim.clock.advance(10)
        scaler.tick(1)
    assert sim.instances[first.instance_id].destroyed is not None and first.name not in scaler.workers


def _ready_worker(scaler: Autoscaler, sim: SimulatedProvider) -> Worker:
    scaler.tick(1)
    for _ in range(60):
        sim.clock.advance(10)
        scaler.tick(1)
        ready = [w for w in scaler.workers.values() if w.state == "ready"]
        if ready:
            return ready[0]
    raise AssertionError("no worker became ready")


def test_ledger_keeps_worker_and_job_costs_as_json_lines(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.worker_started("w1", 0.36, 0.0)
    ledger.job_done("job-a", "w1", 100.0, 1100.0)
    ledger.worker_stopped("w1", 1200.0)
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["worker_started", "job", "worker_stopped"]
    assert lines[1]["cost"] == pytest.approx(0.1) and lines[2]["cost"] == pytest.approx(0.12)
    assert ledger.spent_between(0.0, 600.0, now=5000.0) == pytest.approx(0.06)
