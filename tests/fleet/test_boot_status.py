"""A cold start in view: the worker's boot file (stage, model bytes done), served by the real token proxy before
ComfyUI answers, read by the fleet's readiness probe and shown as "fetching models 42 %" in both languages."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests
from vidfarm_service.fleet import boot_line

from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxies import TEST_TOKEN
from tests.support.waiting import wait_for
from vidfarm.fleet.autoscaler import Worker
from vidfarm.fleet.pool import HttpReadiness
from vidfarm.worker import boot_status
from vidfarm.worker.models_fetch import fetch_models
from vidfarm.worker.token_proxy import ProxyThread, TokenProxy
from vidfarm.workflow.declaration import ModelFile


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_meter_writes_bytes_done_while_downloads_run_and_all_at_the_end(tmp_path: Path) -> None:
    status = tmp_path / "boot.json"
    done = [0]
    with boot_status.DownloadMeter(status, 1000, 2, lambda: (done[0], 0), interval=0.02):
        assert boot_status.read(status) == {"stage": "models", "done_bytes": 0, "total_bytes": 1000,
                                            "files_done": 0, "files_total": 2}  # fmt: skip
        done[0] = 420
        wait_for(lambda: boot_status.read(status)["done_bytes"] == 420, "the meter wrote 420 bytes done", every=0.01)
        done[0] = 5000  # never past the total (an estimate of a size can be low)
        wait_for(lambda: boot_status.read(status)["done_bytes"] == 1000, "the meter wrote the total", every=0.01)
    assert boot_status.read(status)["files_done"] == 2
    assert boot_status.read(None) == {"stage": "starting"}
    (tmp_path / "bad.json").write_text("{not json")
    assert boot_status.read(tmp_path / "bad.json") == {"stage": "starting"}
    part = tmp_path / "staging" / "a" / "x.incomplete"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"1" * 123)
    assert boot_status.bytes_under(tmp_path / "staging") == 123


def test_fetch_models_leaves_its_status_at_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    data = b"v" * 200_000
    hub = FakeHub(files={"org/vae/vae.safetensors": data}).start()
    try:
        status = tmp_path / "boot.json"
        model = ModelFile("vae", "vae.safetensors", repo="org/vae", path="vae.safetensors", size=len(data))
        fetch_models([model], tmp_path / "models", endpoint=hub.url, status_file=status)
    finally:
        hub.stop()
    assert json.loads(status.read_text()) == {"stage": "models", "done_bytes": len(data), "total_bytes": len(data),
                                              "files_done": 1, "files_total": 1}  # fmt: skip


def test_the_proxy_answers_the_boot_stage_before_comfyui_and_the_probe_reads_it(tmp_path: Path) -> None:
    status = tmp_path / "boot.json"
    boot_status.write(status, stage="models", done_bytes=4.2e9, total_bytes=1e10, files_done=1, files_total=4)
    proxy = ProxyThread(TokenProxy(f"http://127.0.0.1:{_dead_port()}", TEST_TOKEN, boot_file=status)).start()
    try:
        assert requests.get(f"{proxy.url}/vidfarm/boot", timeout=5).status_code == 401  # behind the token too
        auth = {"Authorization": f"Bearer {TEST_TOKEN}"}
        assert requests.get(f"{proxy.url}/system_stats", headers=auth, timeout=5).status_code == 502
        worker = Worker("w1", TEST_TOKEN, 0.5, 0.0, 0.0, url=proxy.url)
        check = HttpReadiness(timeout=5)
        assert not check(worker)
        assert check.boot["w1"]["done_bytes"] == 4.2e9 and "not up yet" in str(check.last["w1"])
    finally:
        proxy.stop()


def test_the_cold_start_line_follows_the_least_advanced_worker_in_both_languages() -> None:
    models = {"stage": "models", "done_bytes": 4.2e9, "total_bytes": 1e10}
    ahead = {"stage": "models", "done_bytes": 9e9, "total_bytes": 1e10}
    assert boot_line([models, ahead], "en") == "fetching models 42 % (4.2 of 10.0 GB)"
    assert boot_line([models], "ja") == "モデルを取得中 42%（10.0 GB 中 4.2 GB）"
    assert boot_line([models, None], "en") == "pulling the worker image"  # one has no address yet
    assert boot_line([{"stage": "comfyui"}], "ja") == "ComfyUIを起動中"
    assert boot_line([{}], "en") == "starting ComfyUI and fetching models"  # an image without the boot file
    assert boot_line([{"stage": "comfyui"}, models], "en").startswith("fetching models 42 %")
    for odd in ({"stage": "models", "total_bytes": 1}, {"stage": "models", "done_bytes": "x", "total_bytes": 5},
                {"stage": "models", "done_bytes": 1, "total_bytes": float("nan")}):  # fmt: skip
        assert boot_line([odd], "en") == "starting ComfyUI and fetching models"  # a worker's odd answer breaks nothing
    over = {"stage": "models", "done_bytes": 7e9, "total_bytes": 5e9}
    assert boot_line([over], "en") == "fetching models 100 % (5.0 of 5.0 GB)"
