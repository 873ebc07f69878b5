"""A job owns its processes, with the REAL pipeline notebook: its head ComfyUI and the head's two local workers
(each in a session of its own) are gone after a SIGTERM to the service and after a cancel while the head starts.
And a prompt of any Unicode reaches the head and comes back in the job's report unchanged."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_comfy_install
from tests.fakes.telegram import FakeBotApi
from tests.service.harness import REAL_NOTEBOOK, ServiceProcess
from tests.service.ownership import job_processes
from tests.support.waiting import wait_for


@pytest.fixture
def real_service(tmp_path: Path) -> Iterator[ServiceProcess]:
    require_comfy_install()
    bot_api = FakeBotApi().start()
    service = ServiceProcess(tmp_path / "svc", bot_api, notebook=REAL_NOTEBOOK)
    try:
        yield service.start()
    finally:
        service.stop()
        bot_api.stop()


def _heads(service: ServiceProcess, job_id: str) -> dict[int, str]:
    return {p: c for p, c in job_processes(service.data_dir, job_id).items() if f"heads/{job_id}" in c}


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie (dead, waiting for its parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_sigterm_mid_render_stops_the_head_and_its_workers(real_service: ServiceProcess) -> None:
    service = real_service
    job_id = service.api.post("/api/jobs", json={"prompt": "a very long train", "seconds": 30}).json()["id"]
    workers = f"heads/{job_id}/vidfarm_workers"
    wait_for(lambda: sum(workers in c for c in _heads(service, job_id).values()) == 2, "the head's two local workers",
             timeout=300)  # fmt: skip
    wait_for(lambda: service.job(job_id)["fraction"] > 0, "rendering under way", timeout=300)
    before = job_processes(service.data_dir, job_id)
    assert len(before) >= 5, before  # papermill, kernel, head, 2 workers
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(60) in (0, -signal.SIGTERM)
    assert job_processes(service.data_dir, job_id) == {}


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_cancel_while_the_head_starts_leaves_no_process(real_service: ServiceProcess) -> None:
    service = real_service
    job_id = service.api.post("/api/jobs", json={"prompt": "a very long train", "seconds": 30}).json()["id"]
    booting_heads = wait_for(lambda: _heads(service, job_id), "the head ComfyUI launched", timeout=300)
    head_log = service.data_dir / "heads" / job_id / "comfyui.log"
    booting = "To see the GUI go to" not in (head_log.read_text(errors="replace") if head_log.exists() else "")
    canceled = service.api.post(f"/api/jobs/{job_id}/cancel").json()
    assert booting and canceled["stage"] == "canceling"  # the head was still starting when the cancel came
    job = service.wait_status(job_id, "canceled", timeout=120)
    assert job["fraction"] == 0
    assert job_processes(service.data_dir, job_id) == {}
    # the head that was booting is dead, not just unlisted: it cannot finish booting later and come back
    assert all(_gone(pid) for pid in booting_heads), booting_heads
    assert not (service.data_dir / "heads" / job_id).exists()  # a canceled job's scratch is deleted at once


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_a_prompt_of_any_unicode_reaches_the_head_unchanged(real_service: ServiceProcess) -> None:
    service = real_service
    prompt = "紙の船 🚣‍♀️ סירה قارب cafe\u0301 👩\u200d👩\u200d👧 𝒜"
    job_id = service.api.post("/api/jobs", json={"prompt": prompt}).json()["id"]
    job = service.wait_status(job_id, "succeeded", timeout=600)
    plan = job["result"]["report"]["plan"]  # made by the head's VidfarmPlan node from the prompt it was sent
    assert [s["prompt"] for s in plan["segments"]] == [prompt] * len(plan["segments"])
    assert job["parameters"]["prompt"] == prompt
    assert not (service.data_dir / "heads" / job_id).exists()  # succeeded: the cached segments went with the head
    outputs = service.data_dir / "outputs" / job_id
    keyframes = sorted(p.name for p in (outputs / "keyframes").iterdir())  # the phone's photos, no download scratch
    assert keyframes == [f"key-{i:02d}.jpg" for i in range(len(plan["segments"]) + 1)], keyframes
    assert sorted(p.name for p in outputs.iterdir()) == [
        "keyframes",
        "preview.mp4",
        "report.json",
        "summary.json",
        "thumbnail.jpg",
        "video.mp4",
    ]
