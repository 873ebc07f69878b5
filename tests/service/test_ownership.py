"""A job owns its processes: SIGTERM to the service, a cancel, a crash - afterwards no process of the job is left.

The fast fake notebook starts a stand-in head in a session of its own (as the real one starts its head ComfyUI) and
stops it only when it ends normally; test_real_ownership.py does the same with the real notebook and ComfyUI."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeBotApi
from tests.service.harness import FRIEND, ServiceProcess
from tests.service.ownership import job_processes
from tests.service.test_phone import status_message
from tests.support.waiting import wait_for

LONG = '{"seconds": 30, "width": 320, "height": 180}'


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    fake = FakeBotApi().start()
    yield fake
    fake.stop()


def _rendering(service: ServiceProcess, job_id: str) -> dict[int, str]:
    """Wait until the job renders and its stand-in head runs; its processes then."""
    wait_for(lambda: service.job(job_id)["fraction"] > 0, "rendering")
    wait_for(lambda: _heads(service, job_id), "the stand-in head")
    return job_processes(service.data_dir, job_id)


@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_to_the_service_stops_every_process_of_the_job(
    bot_api: FakeBotApi, tmp_path: Path, sig: signal.Signals
) -> None:
    service = ServiceProcess(tmp_path / "svc", bot_api, defaults=LONG).start()
    try:
        job_id = service.api.post("/api/jobs", json={"prompt": "a slow river"}).json()["id"]
        before = _rendering(service, job_id)
        shown = " | ".join(before.values())  # the kernel's command line does not name the job: found by its tag
        assert "papermill" in shown and "ipykernel" in shown and f"heads/{job_id}" in shown, before
        assert service.proc is not None
        service.proc.send_signal(sig)
        # stopped in time, on its own: uvicorn ends by re-raising the signal it handled, after the shutdown
        assert service.proc.wait(30) in (0, -sig) and "Application shutdown complete" in service.log()
        assert job_processes(service.data_dir, job_id) == {}
        assert not [pid for pid in before if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]
        service.start()  # the job resumes after the restart and finishes
        job = service.wait_status(job_id, "succeeded", timeout=120)
        assert job["result"]["prompt"] == "a slow river"
        wait_for(lambda: not job_processes(service.data_dir, job_id), "the job's processes gone after it succeeded")
        assert not (service.data_dir / "heads" / job_id).exists()  # scratch (cached segments) gone at the end
        assert (service.data_dir / "outputs" / job_id / "video.mp4").is_file()  # deliverables kept
    finally:
        service.stop()


@pytest.mark.engine
def test_cancel_mid_render_leaves_no_process(bot_api: FakeBotApi, tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "svc", bot_api, defaults=LONG).start()
    try:
        bot_api.send_text(FRIEND, "a kite over the dunes")
        job_id, message_id = status_message(bot_api, service, FRIEND, 0)
        assert _rendering(service, job_id)
        bot_api.press(FRIEND, f"cancel:{job_id}", message_id)
        service.wait_status(job_id, "canceled")
        assert job_processes(service.data_dir, job_id) == {}  # gone by the time the job says canceled
    finally:
        service.stop()


@pytest.mark.engine
def test_a_crashed_service_leaves_orphans_that_the_next_start_stops(bot_api: FakeBotApi, tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "svc", bot_api, defaults=LONG).start()
    try:
        job_id = service.api.post("/api/jobs", json={"prompt": "a slow river"}).json()["id"]
        before = _rendering(service, job_id)
        service.kill()  # SIGKILL: no clean-up at all (kill() returns once the service is reaped)
        assert _heads(service, job_id), "the orphan this test is about: the head, in a session of its own"
        service.start()
        gone = [pid for pid in before if not Path(f"/proc/{pid}").exists() or not _not_zombie(pid)]
        assert sorted(gone) == sorted(before)  # the new start stopped every one of the old run's processes
        service.wait_status(job_id, "succeeded", timeout=120)
    finally:
        service.stop()


def _heads(service: ServiceProcess, job_id: str) -> list[str]:
    return [c for c in job_processes(service.data_dir, job_id).values() if f"heads/{job_id}" in c]


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
