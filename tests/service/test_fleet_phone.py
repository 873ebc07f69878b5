"""The phone rents its own GPUs: a Telegram message to the service configured with a fake provider (Vast.ai through
its SDK, RunPod over REST); the autoscaler rents "GPU" workers that are real local ComfyUI processes behind real
token proxies, started by the fake provider; the real pipeline notebook renders on them; the user gets the video
with its cost; the workers are destroyed after the idle timeout and the ledger matches the provider's bill. Then
the user's day budget is spent, so the next job is refused before anything is rented, in the user's language."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_comfy_install
from tests.fakes import runpod_api, vast_api
from tests.fakes.runpod_api import FakeRunPod
from tests.fakes.telegram import FakeBotApi
from tests.fakes.vast_api import FakeVast, offer_row
from tests.service.harness import ADMIN, FRIEND, REAL_NOTEBOOK, ServiceProcess
from tests.service.test_phone import replies, status_message
from tests.support.local_workers import LocalWorkers
from tests.support.waiting import wait_for

LABEL = "vidfarm-test"
ORPHAN = f"{LABEL}-left-by-a-crash"
IDLE_S = 4.0


class Rented:
    def __init__(self, kind: str, fake: FakeVast | FakeRunPod, workers: LocalWorkers, bot: FakeBotApi,
                 service: ServiceProcess) -> None:  # fmt: skip
        self.kind, self.fake, self.workers, self.bot, self.service = kind, fake, workers, bot, service

    def live(self) -> list[dict[str, Any]]:
        if isinstance(self.fake, FakeVast):
            return list(self.fake.instances.values())
        return list(self.fake.pods.values())

    def creates(self) -> int:
        return sum(1 for r in self.fake.requests if r["method"] in ("PUT", "POST") and "graphql" not in r["path"]
                   and "bundles" not in r["path"])  # fmt: skip

    def bill(self) -> float:
        """What the provider charged for this service's workers (the orphan was the crashed master's)."""
        rows = [r for r in self.fake.destroyed if (r.get("label") or r.get("name")) != ORPHAN]
        if isinstance(self.fake, FakeVast):
            return sum((r["end_date"] - r["start_date"]) * r["dph_total"] / 3600 for r in rows)
        return sum((r["terminated"] - r["created"]) * r["costPerHr"] / 3600 for r in rows)


@pytest.fixture(params=["vast", "runpod"])
def rented(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rented]:
    require_comfy_install()
    workers = LocalWorkers(tmp_path / "workers")
    fake: FakeVast | FakeRunPod
    if request.param == "vast":
        fake = FakeVast(offers=[offer_row(111, 0.42)], on_create=workers.create, on_destroy=workers.destroy).start()
        fake.add_instance(ORPHAN)
        env = {"fleet_provider": "vast", "fleet_api_key": vast_api.API_KEY, "fleet_api_url": fake.url}
    else:
        fake = FakeRunPod(on_create=workers.create, on_destroy=workers.destroy).start()
        fake.add_pod(ORPHAN)
        env = {"fleet_provider": "runpod", "fleet_api_key": runpod_api.API_KEY, "fleet_api_url": fake.rest_url,
               "fleet_graphql_url": fake.graphql_url}  # fmt: skip
    bot = FakeBotApi().start()
    service = ServiceProcess(tmp_path / "svc", bot, notebook=REAL_NOTEBOOK, status_edit_seconds=0.5,
                             fleet_max_workers=1, fleet_workers_per_job=1, fleet_idle_timeout_s=IDLE_S, fleet_tick_s=1,
                             fleet_budget_user_day=0.0001, fleet_label=LABEL, fleet_boot_timeout_s=300,
                             fleet_wait_s=300, **env)  # fmt: skip
    try:
        yield Rented(request.param, fake, workers, bot, service.start())
    finally:
        service.stop()
        workers.stop_all()
        bot.stop()
        fake.stop()


def ledger(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (data_dir / "fleet" / "ledger.jsonl").read_text().splitlines()]


def ledger_cost(data_dir: Path) -> float:
    return float(sum(r["cost"] for r in ledger(data_dir) if r["kind"] == "worker_stopped"))


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_a_message_rents_a_worker_renders_on_it_and_returns_it(rented: Rented) -> None:
    bot, service = rented.bot, rented.service
    wait_for(lambda: all((r.get("label") or r.get("name")) != ORPHAN for r in rented.live()), "the orphan destroyed")
    assert rented.creates() == 0  # nothing is rented before there is work (warm pool 0)

    bot.send_text(FRIEND, "a paper boat drifting down a rainy street")
    job_id, message_id = status_message(bot, service, FRIEND, 0)
    job = service.wait_status(job_id, "succeeded", timeout=600)
    video = bot.wait_for(lambda: bot.sent("sendVideo", FRIEND), what="the video")[0]

    assert rented.creates() == 1
    shown = [c.fields["text"] for c in bot.sent("editMessageText", FRIEND) if c.fields["message_id"] == str(message_id)]
    assert any("renting" in t and "GPU worker" in t for t in shown), shown  # the cold start is in view
    assert any("· starting ComfyUI ·" in t for t in shown), shown  # its stage, from the worker's /vidfarm/boot
    usage = job["result"]["fleet"]
    assert usage["workers"] == 1 and usage["gpu_seconds"] > 0 and usage["cost"] > 0
    worker_names = {t["worker"] for t in job["result"]["report"]["tasks"].values()}
    assert len(worker_names) == 1 and next(iter(worker_names)).startswith(LABEL)  # rendered on the rented worker
    assert f"${usage['cost']:.3f}" in video.fields["caption"] and "GPU" in video.fields["caption"]
    tokens = [env["VIDFARM_WORKER_TOKEN"] for env in rented.workers.envs.values()]
    record = (service.data_dir / "jobs" / job_id / "executed.ipynb").read_text()
    sent = (service.data_dir / "jobs" / job_id / "parameters.json").read_text()
    assert tokens and "env:VIDFARM_WORKER_TOKEN_0" in sent  # the head read it from its environment
    assert not any(t in record or t in sent or t in service.log() for t in tokens)  # in no file, no log line

    (used,) = [r for r in ledger(service.data_dir) if r["kind"] == "job" and r["job_id"] == job_id]

    def booked_stop() -> dict[str, Any] | None:
        """The worker's end as the ledger booked it (written after the provider confirmed the destroy)."""
        if rented.live() or rented.workers.alive():
            return None
        return next((r for r in ledger(service.data_dir) if r["kind"] == "worker_stopped"), None)

    stopped = wait_for(booked_stop, "the idle worker destroyed and booked", ignore=(ValueError,))  # a line half written
    assert stopped["name"] == used["worker"]
    # kept past its job, then destroyed by the idle rule: the ledger books the job's end before the worker's stop
    # (how long it idled is the autoscaler's fake-clock test's to check, tests/fleet/test_autoscaler.py)
    records = ledger(service.data_dir)
    assert records.index(used) < records.index(stopped), records
    bill = rented.bill()
    assert bill > 0 and ledger_cost(service.data_dir) == pytest.approx(bill, rel=0.02, abs=2e-5)
    assert usage["cost"] <= ledger_cost(service.data_dir) + 1e-9  # the job paid part of what the fleet paid

    # the day's budget ($0.0001) is now spent: the next job is refused before anything is rented, in Japanese
    before = len(bot.sent("sendMessage", FRIEND))
    bot.send_text(FRIEND, "雨の街を流れる紙の船")
    refused, _ = status_message(bot, service, FRIEND, before)
    failed = service.wait_status(refused, "failed", timeout=60)
    assert "予算" in failed["error"] and "$0.00" in failed["error"], failed["error"]
    assert rented.creates() == 1 and not rented.live()

    bot.send_text(FRIEND, "/quota")
    bot.wait_for(lambda: any(t.startswith("Left today") for t in replies(bot, FRIEND)), what="the quota")
    quota = next(t for t in replies(bot, FRIEND) if t.startswith("Left today"))
    assert "18 of 20 jobs" in quota and "$0.00 of $0.00" in quota, quota
    bot.send_text(ADMIN, "/quota")
    bot.wait_for(lambda: any("Fleet:" in t for t in replies(bot, ADMIN)), what="the admin's fleet view")
    fleet = next(t for t in replies(bot, ADMIN) if "Fleet:" in t)
    assert "0 live worker(s)" in fleet and f"${ledger_cost(service.data_dir):.2f} spent today" in fleet, fleet
