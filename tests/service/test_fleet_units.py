"""The service's fleet (vidfarm_service.fleet) on the simulated provider with a manual clock: how many workers a
job gets, what it pays (loading included), budget refusals before renting, cancel while booting, pre-warm,
the cold-start line, and what people read (English and Japanese)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from vidfarm_service.fleet import ServiceFleet, cost_line, explain, language_of, workers_for

from tests.support.fleet_sim import SimulatedProvider
from vidfarm.errors import FleetRefused
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy
from vidfarm.fleet.budget import Budget
from vidfarm.fleet.provider import ManualClock, Offer

JOB = {"prompt": "a boat", "seconds": 4.0, "width": 320, "height": 180, "recipe": "standin"}


def fleet(tmp_path: Path, *, price: float = 0.45, user_day: float = 5.0, per_hour: float = 3.0,
          offers: bool = True, max_workers: int = 4) -> tuple[ServiceFleet, SimulatedProvider]:  # fmt: skip
    clock = ManualClock(10 * 3600.0)
    provider = SimulatedProvider(clock, [Offer(1, "RTX 4090", price)] if offers else [], pull_s=60, download_s=60)
    policy = FleetPolicy(image="w", budget=Budget(per_hour=per_hour, per_day=30), max_workers=max_workers,
                         idle_timeout_s=60, tick_s=5, lease_s=1800)  # fmt: skip
    scaler = Autoscaler(provider, policy, clock=clock, ready_check=provider.ready)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    service_fleet = ServiceFleet(scaler, records=tmp_path / "jobs.jsonl", user_day_budget=user_day, max_per_job=4,
                                 wait_s=600, gather_s=30, tick_s=5, sleep=sleep)  # fmt: skip
    return service_fleet, provider


async def _noop(line: str) -> None:
    pass


def obtain(f: ServiceFleet, job_id: str, owner: str = "tg:1", parameters: dict[str, object] | None = None,
           lines: list[str] | None = None, lang: str = "") -> list[dict[str, str]] | None:  # fmt: skip
    async def show(line: str) -> None:
        if lines is not None:
            lines.append(line)

    return asyncio.run(f.obtain(job_id, owner, parameters or JOB, show, canceled=lambda: False, lang=lang))


def test_a_job_gets_as_many_workers_as_its_plan_can_use() -> None:
    assert workers_for(JOB, 8) == 5  # 5 keyframes, then 4 segments, all in parallel
    assert workers_for(JOB, 3) == 3
    assert workers_for({**JOB, "strategy": "chain"}, 8) == 1
    assert workers_for({**JOB, "recipe": "no-such-recipe"}, 8) == 1


def test_a_job_rents_its_workers_and_pays_their_loading_too(tmp_path: Path) -> None:
    f, provider = fleet(tmp_path)
    lines: list[str] = []
    workers = obtain(f, "j1", lines=lines)
    assert workers is not None and len(workers) == 4 and provider.creates == 4  # the fleet's cap, all at once
    assert all(w["url"].startswith("http://sim/") and len(w["token"]) > 16 for w in workers)
    assert any("pulling the worker image" in line for line in lines)
    assert any("starting ComfyUI" in line for line in lines) and "renting 4 GPU worker(s)" in lines[0]
    f.scaler.clock.sleep(300)  # the render
    usage = f.give_back("j1")
    assert usage is not None and usage["workers"] == 4
    assert usage["gpu_seconds"] >= 4 * (300 + 120)  # busy + the 120 s each one loaded
    japanese: list[str] = []  # the chat's language, whatever the prompt's ("a boat" is English)
    assert obtain(fleet(tmp_path / "ja")[0], "j2", lines=japanese, lang="ja") is not None
    assert japanese[0].startswith("GPUワーカーを4台レンタル中") and "ComfyUI" in japanese[-1]
    assert usage["cost"] == pytest.approx(usage["gpu_seconds"] * 0.45 / 3600, rel=1e-3)
    assert f.spent_today("tg:1") == pytest.approx(usage["cost"]) and f.spent_today("tg:2") == 0
    second = obtain(f, "j2")  # warm now: nothing new rented, no loading charged
    assert second is not None and provider.creates == 4
    f.scaler.clock.sleep(100)
    again = f.give_back("j2")
    assert again is not None and again["gpu_seconds"] == pytest.approx(4 * 100, abs=4 * 6)


def test_a_spent_user_budget_refuses_before_anything_is_rented(tmp_path: Path) -> None:
    f, provider = fleet(tmp_path, user_day=0.01)
    obtain(f, "j1")
    f.scaler.clock.sleep(600)
    f.give_back("j1")
    with pytest.raises(FleetRefused) as refused:
        obtain(f, "j2")
    assert refused.value.reason == "user_budget" and provider.creates == 4
    assert "予算" in explain(refused.value, "ja") and "$0.01" in explain(refused.value, "en")
    assert "j2" not in f.leases
    assert obtain(f, "j3", owner="tg:2") is not None  # another user's day is their own


def test_a_fleet_cap_refuses_before_renting(tmp_path: Path) -> None:
    f, provider = fleet(tmp_path, per_hour=0.1)  # one worker's 30-minute lease at $0.45/h breaks it
    with pytest.raises(FleetRefused) as refused:
        obtain(f, "j1")
    assert refused.value.reason == "fleet_budget" and provider.creates == 0
    assert "hour" in explain(refused.value, "en") and "1時間" in explain(refused.value, "ja")


def test_no_offer_fails_after_the_wait_with_advice(tmp_path: Path) -> None:
    f, provider = fleet(tmp_path, offers=False)
    with pytest.raises(FleetRefused) as refused:
        obtain(f, "j1")
    assert refused.value.reason == "no_worker" and "try again later" in explain(refused.value, "en")
    assert f.leases == {}


def test_cancel_while_booting_returns_nothing_and_the_workers_idle_out(tmp_path: Path) -> None:
    f, provider = fleet(tmp_path)
    calls = iter(range(100))
    result = asyncio.run(f.obtain("j1", "tg:1", JOB, _noop, canceled=lambda: next(calls) >= 3))
    assert result is None and f.leases == {} and provider.creates == 4
    for _ in range(60):
        f.scaler.clock.sleep(5)
        f.step()
    assert provider.alive() == []  # rented for a canceled job: destroyed after the idle timeout


def test_prewarm_rents_one_worker_the_next_job_takes_warm(tmp_path: Path) -> None:
    f, provider = fleet(tmp_path, max_workers=1)
    assert f.prewarm("tg:1")
    for _ in range(30):
        f.scaler.clock.sleep(5)
        f.step()
    assert provider.creates == 1 and len(f.scaler.pool()) == 1
    clock = f.scaler.clock.now()
    workers = obtain(f, "j1", parameters={**JOB, "strategy": "chain"})
    assert workers is not None and f.scaler.clock.now() - clock < 10 and provider.creates == 1
    usage = f.give_back("j1")
    assert usage is not None and usage["gpu_seconds"] >= 120  # the pre-warmed loading is this job's
    assert not f.prewarm("tg:9") or provider.creates == 1


def test_words_for_people() -> None:
    assert language_of("雨の街を流れる紙の船") == "ja" and language_of("a paper boat") == "en"
    result = {"fleet": {"gpu_seconds": 61.4, "cost": 0.0123, "workers": 1}}
    assert cost_line(result, "en") == "GPU 61 s · $0.012" and cost_line(result, "ja") == "GPU 61秒 · $0.012"
    assert cost_line({"video": "x"}, "en") == "" and cost_line(None, "ja") == ""
