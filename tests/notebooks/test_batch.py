"""scripts/batch: papermill over a grid or a file of parameter sets, resumable, optionally on rented workers
(the real vastai SDK against the fake Vast.ai API, whose "instances" are real token proxies in front of the real
ComfyUI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.fakes.vast_api import API_KEY, FakeVast
from vidfarm.jobs.batch import BatchRunner, grid, load_parameter_sets, main
from vidfarm.errors import BatchError
from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy
from vidfarm.fleet.budget import Budget
from vidfarm.fleet.pool import RentedPool, http_ready
from vidfarm.fleet.provider import SystemClock
from vidfarm.fleet.vast import VastProvider
from vidfarm.comfy.local import LocalComfy
from vidfarm.worker.token_proxy import ProxyThread, TokenProxy

NOTEBOOK = REPO / "notebooks" / "02_gui_to_api.ipynb"


def tiny(seed: int) -> dict[str, Any]:
    return {"prompt": f"kite {seed}", "frames": 4, "width": 64, "height": 48, "seed": seed}


def test_parameter_files_and_grids(tmp_path: Path) -> None:
    assert grid({"seed": [1, 2], "w": ["a", "b"]}) == [
        {"seed": 1, "w": "a"}, {"seed": 1, "w": "b"}, {"seed": 2, "w": "a"}, {"seed": 2, "w": "b"}]  # fmt: skip
    (tmp_path / "p.csv").write_text('workflow,values\nstandin_t2v,"{""frames"": 4}"\n')
    assert load_parameter_sets(tmp_path / "p.csv") == [{"workflow": "standin_t2v", "values": {"frames": 4}}]
    (tmp_path / "p.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    assert load_parameter_sets(tmp_path / "p.jsonl") == [{"a": 1}, {"a": 2}]
    (tmp_path / "g.json").write_text('{"a": [1, 2]}')
    assert load_parameter_sets(tmp_path / "g.json") == [{"a": 1}, {"a": 2}]
    with pytest.raises(BatchError, match="non-empty list"):
        grid({"a": []})
    with pytest.raises(BatchError, match="use .jsonl, .csv"):
        load_parameter_sets(tmp_path / "p.jsonl").extend(load_parameter_sets(tmp_path / "g.json"))  # fine
        (tmp_path / "p.yaml").write_text("a: 1")
        load_parameter_sets(tmp_path / "p.yaml")


def test_batch_runs_each_set_records_it_and_resumes(comfy_server: LocalComfy, tmp_path: Path) -> None:
    out = tmp_path / "batch"
    params = tmp_path / "runs.jsonl"
    params.write_text("\n".join(json.dumps({"values": tiny(s)}) for s in (1, 2)) + "\n"
                      + json.dumps({"workflow": "no_such_workflow"}) + "\n")  # fmt: skip
    code = main([str(NOTEBOOK), "--params", str(params), "--out", str(out), "--set", f"comfy_url={comfy_server.url}"])
    assert code == 1  # one run failed; the others went on
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ok = [r for r in rows if r["status"] == "ok"]
    [failed] = [r for r in rows if r["status"] == "failed"]
    assert len(ok) == 2 and "no_such_workflow" in failed["error"]
    for row in ok:
        run_dir = Path(row["notebook"]).parent
        assert row["result"]["video"]["frames"] == 4 and row["seconds"] > 0 and row["cost"] == 0
        assert Path(row["result"]["outputs"][0]).is_relative_to(run_dir / "outputs")
        assert (run_dir / "progress.jsonl").exists() and Path(row["notebook"]).exists()
    assert (out / "results.csv").read_text().count("\n") == 4
    stamps = {r["run_id"]: Path(r["notebook"]).stat().st_mtime_ns for r in ok}
    code = main([str(NOTEBOOK), "--params", str(params), "--out", str(out), "--set", f"comfy_url={comfy_server.url}"])
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[-1]["run_id"] == failed["run_id"]  # only the failed one ran again
    assert {r: Path(ok[i]["notebook"]).stat().st_mtime_ns for i, r in enumerate(stamps)} == stamps
    with pytest.raises(BatchError, match="has no parameter sedd; it takes: .*comfy_url"):
        BatchRunner(NOTEBOOK, out).run_all([{"sedd": 1}])


@pytest.fixture
def vast_with_real_workers(comfy_server: LocalComfy) -> Iterator[FakeVast]:
    """Each rented "instance" is a real token proxy, with the token the autoscaler gave it, in front of ComfyUI."""
    proxies: list[ProxyThread] = []

    def boot(instance: dict[str, Any]) -> int:
        token = dict(instance["extra_env"])["VIDFARM_WORKER_TOKEN"]
        proxy = ProxyThread(TokenProxy(comfy_server.url, token)).start()
        proxies.append(proxy)
        return proxy.port

    fake = FakeVast(on_create=boot).start()
    yield fake
    fake.stop()
    for proxy in proxies:
        proxy.stop()


def test_batch_on_rented_workers_costs_and_returns_them(vast_with_real_workers: FakeVast, tmp_path: Path) -> None:
    fake = vast_with_real_workers
    leftover = fake.add_instance("vidfarm-worker-0-crashed-master")
    policy = FleetPolicy(image="worker:test", budget=Budget(per_hour=2.0, per_day=10.0), max_workers=1, tick_s=1)
    scaler = Autoscaler(VastProvider(API_KEY, server_url=fake.url, retry=1), policy, clock=SystemClock(),
                        ready_check=http_ready())  # fmt: skip
    runner = BatchRunner(NOTEBOOK, tmp_path / "out")
    with RentedPool(scaler, size=1, poll_s=0.2, ready_timeout_s=60) as pool:
        assert leftover not in fake.instances  # the orphan went first
        [worker] = pool.entries()
        runner.pool = pool
        rows = runner.run_all([{"values": tiny(7)}])
    assert fake.instances == {}  # returned: destroyed, not stopped
    [row] = rows
    assert row["status"] == "ok" and row["cost"] > 0 and row["result"]["video"]["frames"] == 4
    assert row["cost"] == pytest.approx(scaler.ledger.job_cost(row["run_id"]), abs=1e-6)
    record = Path(row["notebook"]).read_text()
    assert worker["token"] not in record and "<worker token hidden>" in record
    assert worker["url"] in record
    assert API_KEY not in json.dumps(fake.requests[-1]["body"])  # the account key is never in a request body
    created = next(r for r in fake.requests if r["method"] == "PUT")
    assert API_KEY not in json.dumps(created["body"])  # ... nor in the worker's environment


def test_rent_gpus_notebook_picks_starts_runs_and_stops(
    vast_with_real_workers: FakeVast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = vast_with_real_workers
    monkeypatch.setenv("VAST_API_KEY", API_KEY)  # the kernel inherits it; it is never a parameter
    result = tmp_path / "rent.json"
    import papermill as pm

    pm.execute_notebook(
        str(REPO / "notebooks" / "03_rent_gpus.ipynb"), str(tmp_path / "03.out.ipynb"),
        parameters={"vast_url": fake.url, "max_price": 0.5, "auto": True, "out_dir": str(tmp_path / "rent"),
                    "notebook": "02_gui_to_api.ipynb",
                    "result_path": str(result), "run_parameters": {"values": tiny(3)}, "poll_s": 0.2,
                    "ready_timeout_s": 60},
        cwd=str(tmp_path), kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    summary = json.loads(result.read_text())
    assert summary["offers"][0].startswith("#111 RTX 4090") and len(summary["offers"]) == 1  # 0.55 is above 0.5
    assert summary["price"] == "1 x RTX 4090 at $0.420/h = $0.42/h ($0.007/min)"
    assert summary["run"]["status"] == "ok", summary["run"]["error"]
    assert summary["run"]["cost"] > 0 and summary["session_cost"] >= summary["run"]["cost"]
    assert fake.instances == {}  # stopped = destroyed
    executed = (tmp_path / "03.out.ipynb").read_text()
    assert API_KEY not in executed


def test_batch_drives_the_long_video_notebook_on_rented_workers(
    comfy_server: LocalComfy, worker_pool: list[LocalComfy], tmp_path: Path
) -> None:
    """The pipeline notebook (contract: `workers` JSON) gets the rented pool; the head fans segments out to it
    through each worker's own token proxy."""
    proxies: list[ProxyThread] = []

    def boot(instance: dict[str, Any]) -> int:
        token = dict(instance["extra_env"])["VIDFARM_WORKER_TOKEN"]
        proxies.append(ProxyThread(TokenProxy(worker_pool[len(proxies) % 2].url, token)).start())
        return proxies[-1].port

    fake = FakeVast(on_create=boot).start()
    policy = FleetPolicy(image="worker:test", budget=Budget(per_hour=2.0, per_day=10.0), max_workers=2, tick_s=1)
    scaler = Autoscaler(VastProvider(API_KEY, server_url=fake.url, retry=1), policy, clock=SystemClock(),
                        ready_check=http_ready())  # fmt: skip
    runner = BatchRunner(REPO / "notebooks" / "10_long_video.ipynb", tmp_path / "out",
                         fixed={"head_url": comfy_server.url, "recipe": "standin", "fps": 8, "width": 256,
                                "height": 144, "seconds": 2.0})  # fmt: skip
    try:
        with RentedPool(scaler, size=2, poll_s=0.2, ready_timeout_s=60) as pool:
            names = sorted(e["name"] for e in pool.entries())
            runner.pool = pool
            [row] = runner.run_all([{"prompt": "a lantern on a pier", "seed": 3}])
        assert row["status"] == "ok", row.get("error")
        result = row["result"]
        assert (result["width"], result["height"], result["frames"]) == (256, 144, 16)
        assert set(result["workers"]) <= set(names) and result["workers"]
        assert Path(result["video"]).is_relative_to(Path(row["notebook"]).parent)
        assert row["cost"] > 0 and fake.instances == {}
    finally:
        fake.stop()
        for proxy in proxies:
            proxy.stop()


def test_batch_command_rents_from_the_environment_settings(
    vast_with_real_workers: FakeVast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = vast_with_real_workers
    for name, value in {"VAST_API_KEY": API_KEY, "VAST_URL": fake.url, "VIDFARM_MAX_PRICE": "0.5",
                        "VIDFARM_FLEET_LABEL": "vidfarm-test"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    (tmp_path / "grid.json").write_text(json.dumps({"values": [tiny(11)]}))
    out = tmp_path / "out"
    assert main([str(NOTEBOOK), "--grid", str(tmp_path / "grid.json"), "--out", str(out), "--vast", "1"]) == 0
    assert "1 ok, 0 failed, $0.00" in capsys.readouterr().out
    created = next(r for r in fake.requests if r["method"] == "PUT")
    assert created["path"] == "/api/v0/asks/111/" and created["body"]["label"].startswith("vidfarm-test-")
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert [entry["kind"] for entry in ledger] == ["worker_started", "job", "worker_stopped"]
    assert fake.instances == {}
