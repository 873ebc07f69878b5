"""The main phone flow against the REAL pipeline notebook (notebooks/10_long_video.ipynb): it starts its own head
ComfyUI and CPU workers on this machine with recipe "standin". Text -> status edits with progress -> video."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import require_comfy_install
from tests.fakes.telegram import FakeBotApi
from tests.service.harness import FRIEND, REAL_NOTEBOOK, ServiceProcess
from tests.service.ownership import job_processes
from tests.service.test_phone import _message_id_of, jpeg, status_message
from vidfarm.media.checks import probe


@pytest.fixture
def real_service(tmp_path: Path) -> Iterator[tuple[FakeBotApi, ServiceProcess]]:
    require_comfy_install()
    bot_api = FakeBotApi().start()
    service = ServiceProcess(tmp_path / "svc", bot_api, notebook=REAL_NOTEBOOK, status_edit_seconds=1)
    try:
        yield bot_api, service.start()
    finally:
        service.stop()
        bot_api.stop()


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_text_and_photo_to_video_through_the_real_notebook(real_service: tuple[FakeBotApi, ServiceProcess]) -> None:
    bot_api, service = real_service
    bot_api.send_text(FRIEND, "a paper boat drifting down a rainy street")
    job_id, message_id = status_message(bot_api, service, FRIEND, 0)
    job = service.wait_status(job_id, "succeeded", timeout=600)
    video = bot_api.wait_for(lambda: bot_api.sent("sendVideo", FRIEND), what="the video")[0]  # after the last edit
    shown = [
        c.fields["text"] for c in bot_api.sent("editMessageText", FRIEND) if c.fields["message_id"] == str(message_id)
    ]
    progress = [t for t in shown if "⚙" in t]
    assert len(progress) >= 2 and any(re.search(r"[1-9]\d?%", t) for t in progress), shown
    assert shown[-1].endswith("\ndone") and bot_api.unchanged_edits == 0
    info = probe(job["result"]["video"])
    assert (info.width, info.height) == (320, 180) and info.duration == pytest.approx(4, abs=0.5)
    assert video.fields["width"] == str(info.width) and len(video.files["video"]) == info.size_bytes  # full video
    link = re.search(r"(http://\S+/watch/\S+)", video.fields["caption"])
    source = re.search(r'<video[^>]* src="([^"]+)"', httpx.get(link.group(1)).text) if link else None
    assert (
        source and httpx.get(source.group(1).replace("&amp;", "&"), headers={"Range": "bytes=0-9"}).status_code == 206
    )
    record = service.api.get(f"/api/jobs/{job_id}/notebook")
    assert record.status_code == 200 and "a paper boat drifting" in record.text
    keyframes = bot_api.sent("sendPhoto", FRIEND)  # every keyframe as it finished, silently, under the status
    expected = sorted(f"Keyframe {i}" for i in range(job["result"]["segments"] + 1))
    assert sorted(c.fields["caption"].split(":")[0] for c in keyframes) == expected
    for call in keyframes:
        assert FakeBotApi.reply_to(call) == message_id and call.fields["disable_notification"] == "true"
        with Image.open(io.BytesIO(call.files["photo"])) as photo:
            assert photo.format == "JPEG" and max(photo.size) <= 480 and photo.size[0] * 9 == photo.size[1] * 16

    before = len(bot_api.sent("sendMessage", FRIEND))
    bot_api.send_photo(FRIEND, jpeg((320, 180)), caption="the boat sails away")
    photo_job, _ = status_message(bot_api, service, FRIEND, before)
    job = service.wait_status(photo_job, "succeeded", timeout=600)
    assert job["parameters"]["image"] and probe(job["result"]["video"]).width == 320
    bot_api.wait_for(lambda: len(bot_api.sent("sendVideo", FRIEND)) == 2, what="the second video")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and text in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_cancel_stops_the_real_notebook_and_its_comfyui(real_service: tuple[FakeBotApi, ServiceProcess]) -> None:
    bot_api, service = real_service
    bot_api.send_text(FRIEND, "/options")
    options = bot_api.wait_for(
        lambda: [c for c in bot_api.sent("sendMessage", FRIEND) if c.fields["text"].startswith("Options")]
    )[0]
    bot_api.press(FRIEND, "opt:s:30", _message_id_of(bot_api, options.fields["text"]))
    bot_api.wait_for(lambda: bot_api.sent("editMessageText", FRIEND), what="the choice saved")
    before = len(bot_api.sent("sendMessage", FRIEND))
    bot_api.send_text(FRIEND, "a very long train")
    job_id, message_id = status_message(bot_api, service, FRIEND, before)
    bot_api.wait_for(lambda: _processes_mentioning(f"heads/{job_id}"), what="the job's head ComfyUI", timeout=300)
    bot_api.wait_for(lambda: service.job(job_id)["fraction"] > 0, what="rendering under way", timeout=300)
    bot_api.press(FRIEND, f"cancel:{job_id}", message_id)
    service.wait_status(job_id, "canceled", timeout=120)
    bot_api.wait_for(lambda: "stopped" in bot_api.texts.get(message_id, ""), what="the status shows canceled")
    assert not _processes_mentioning(f"heads/{job_id}")  # gone by the time the job says canceled: head, workers
    assert job_processes(service.data_dir, job_id) == {}  # and the kernel and papermill
    assert not bot_api.sent("sendVideo", FRIEND)
