"""The phone flow end to end: the service as a process, python-telegram-bot talking to a fake Bot API on loopback,
the real papermill running a pipeline notebook. The fast fake notebook (tests/data/fake_pipeline.ipynb, same
parameters and result JSON) is for fault injection; test_real_pipeline.py runs the real one."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.fakes.telegram import FakeBotApi
from tests.service.harness import ADMIN, FRIEND, STRANGER, WEBHOOK_SECRET, ServiceProcess


@pytest.fixture(scope="module")
def bot_api() -> Iterator[FakeBotApi]:
    fake = FakeBotApi().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def service(bot_api: FakeBotApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path_factory.mktemp("service"), bot_api).start()
    yield svc
    svc.stop()


def status_message(bot_api: FakeBotApi, service: ServiceProcess, chat: int, after: int) -> tuple[str, int]:
    """The job id and message id of the first status message sent to `chat` after call number `after` (the status
    names the prompt, not the job id: the job is the newest one of that chat's owner)."""

    def find() -> tuple[str, int] | None:
        for call in bot_api.sent("sendMessage", chat)[after:]:
            if call.fields["text"].startswith("🎬"):
                mine = [j for j in service.jobs() if j["owner"] == f"tg:{chat}"]
                if mine:
                    return mine[0]["id"], _message_id_of(bot_api, call.fields["text"])
        return None

    found: tuple[str, int] = bot_api.wait_for(find, what=f"a status message to {chat}")
    return found


def _message_id_of(bot_api: FakeBotApi, text: str) -> int:
    return max(mid for mid, shown in bot_api.texts.items() if shown.startswith(text.split("\n")[0]))


def replies(bot_api: FakeBotApi, chat: int) -> list[str]:
    return [c.fields["text"] for c in bot_api.sent("sendMessage", chat)]


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_photo_becomes_image_to_video(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    before = len(bot_api.sent("sendMessage", FRIEND))
    bot_api.send_photo(FRIEND, jpeg(), caption="the leaves start to move")
    job_id, _ = status_message(bot_api, service, FRIEND, before)
    job = service.wait_status(job_id, "succeeded")
    assert job["parameters"]["image"].endswith(".jpg") and Path(job["parameters"]["image"]).is_file()
    assert job["parameters"]["prompt"] == "the leaves start to move"
    video = bot_api.wait_for(lambda: bot_api.sent("sendVideo", FRIEND), what="the video")[-1]
    assert video.fields["width"] == "320" and video.fields["height"] == "180"
    assert video.fields["supports_streaming"] == "true" and int(video.fields["duration"]) >= 1
    assert "video" in video.files and "thumbnail" in video.files
    assert max(Image.open(io.BytesIO(video.files["thumbnail"])).size) <= 320  # the Bot API's thumbnail limit
    assert len(video.files["video"]) == Path(job["result"]["video"]).stat().st_size  # the full video, not a preview
    link = re.search(r"(http://\S+/watch/\S+)", video.fields["caption"])
    assert link, video.fields["caption"]
    page = httpx.get(link.group(1))  # no API token: the signature is the key
    source = re.search(r'<video[^>]* src="([^"]+)"', page.text)
    assert page.status_code == 200 and source, page.text
    streamed = httpx.get(source.group(1).replace("&amp;", "&"), headers={"Range": "bytes=0-99"})
    assert streamed.status_code == 206 and len(streamed.content) == 100
    assert streamed.headers["content-range"].startswith("bytes 0-99/")
    assert bot_api.unchanged_edits == 0


def test_a_stranger_is_refused_and_nothing_runs(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    before, downloads = len(service.jobs()), len(bot_api.sent("getFile"))
    bot_api.send_text(STRANGER, "a dragon over the city")
    reply = bot_api.wait_for(lambda: replies(bot_api, STRANGER), what="a refusal")[0]
    assert "private" in reply and str(STRANGER) in reply
    bot_api.send_photo(STRANGER, jpeg())
    bot_api.wait_for(lambda: len(replies(bot_api, STRANGER)) == 2, what="a second refusal")
    assert len(service.jobs()) == before
    assert len(bot_api.sent("getFile")) == downloads  # not even the photo was fetched


def test_admin_allows_a_user(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    newcomer = 4242
    bot_api.send_text(ADMIN, f"/allow {newcomer}")
    bot_api.wait_for(lambda: any("may now use" in t for t in replies(bot_api, ADMIN)), what="the admin's reply")
    told = bot_api.wait_for(lambda: replies(bot_api, newcomer), what="the newcomer told")
    assert "may now use" in told[0]
    bot_api.send_text(newcomer, "/jobs")
    bot_api.wait_for(lambda: len(replies(bot_api, newcomer)) == 2, what="a /jobs reply")
    assert "No jobs yet" in replies(bot_api, newcomer)[1]
    bot_api.send_text(FRIEND, f"/allow {STRANGER}")  # not an admin: told so, not "not on its list"
    bot_api.wait_for(lambda: any("Only the farm's admin" in t for t in replies(bot_api, FRIEND)), what="admin only")
    assert not any("private" in t for t in replies(bot_api, FRIEND))


def test_bad_inputs_get_clear_replies(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    before = len(service.jobs())
    bot_api.send_document(FRIEND, b"%PDF-1.4 definitely not a picture", name="holiday.jpg", mime="image/jpeg")
    bot_api.wait_for(lambda: any("not a picture" in t for t in replies(bot_api, FRIEND)), what="not-an-image reply")
    bot_api.send_document(FRIEND, b"x", name="huge.png", mime="image/png", size=100_000_000)
    bot_api.wait_for(
        lambda: any("100 MB" in t and "up to 20 MB" in t for t in replies(bot_api, FRIEND)), what="a too-big reply"
    )
    bot_api.send_text(FRIEND, "a" * 10_000)
    bot_api.wait_for(lambda: any("10000 characters" in t for t in replies(bot_api, FRIEND)), what="too-long reply")
    assert len(service.jobs()) == before
    # the same through the REST API
    big = service.api.post(
        "/api/jobs/upload", data={"prompt": "x"}, files={"image": ("big.png", b"\0" * 100_000_000, "image/png")}
    )
    assert big.status_code == 413 and "over 20 MB" in big.json()["detail"]
    fake = service.api.post(
        "/api/jobs/upload", data={"prompt": "x"}, files={"image": ("a.jpg", b"hello", "image/jpeg")}
    )
    assert fake.status_code == 422 and "not an image" in fake.json()["detail"]
    long = service.api.post("/api/jobs", json={"prompt": "b" * 10_000})
    assert long.status_code == 422 and "at most 2000" in long.json()["detail"]
    assert len(service.jobs()) == before


@pytest.mark.parametrize(
    ("body", "option", "says"),
    [
        ({"fps": 0}, "fps", "0 is below the minimum 1"),
        ({"fps": -16}, "fps", "-16 is below the minimum 1"),
        ({"fps": 100000}, "fps", "100000 is above the maximum 60"),
        ({"seed": -1}, "seed", "-1 is below the minimum 0"),
        ({"seed": 2**70}, "seed", "is above the maximum 9223372036854775807"),
        ({"recipe": "wan22_5bb"}, "recipe", "no recipe named 'wan22_5bb'"),
        ({"recipe": "wan22_5b", "strategy": "keyframes"}, "strategy", "recipe wan22_5b cannot do keyframes"),
        ({"workers": "local:64"}, "workers", "unknown option"),
        ({"prompt": "a\x07bell"}, "prompt", "cannot be sent (U+0007)"),
    ],
)
def test_every_bad_option_is_422_with_what_to_change_before_any_process(
    service: ServiceProcess, body: dict[str, object], option: str, says: str
) -> None:
    before = len(service.jobs())
    refused = service.api.post("/api/jobs", json={"prompt": "a kite", "seconds": 4, **body})
    assert refused.status_code == 422, refused.text
    problem = next(p for p in refused.json()["problems"] if p["option"] == option)
    assert says in problem["problem"] and problem["allowed"]
    assert len(service.jobs()) == before  # nothing queued, nothing started


def test_malformed_requests_are_refused_not_500(service: ServiceProcess) -> None:
    before = len(service.jobs())
    for body, says in [({"prompt": "a", "seconds": "abc"}, "seconds"), ({"prompt": "a", "colour": "red"}, "colour"),
                       ({"prompt": 5}, "prompt")]:  # fmt: skip
        refused = service.api.post("/api/jobs", json=body)
        assert refused.status_code == 422 and says in refused.text, refused.text
    upload = service.api.post(
        "/api/jobs/upload",
        data={"prompt": "x", "options": '{"width": "abc"}'},
        files={"image": ("a.jpg", jpeg(), "image/jpeg")},
    )
    assert upload.status_code == 422 and upload.json()["problems"][0]["option"] == "width", upload.text
    not_json = service.api.post("/api/jobs/upload", data={"prompt": "x", "options": "{oops"},
                                files={"image": ("a.jpg", jpeg(), "image/jpeg")})  # fmt: skip
    assert not_json.status_code == 422 and "JSON object" in not_json.json()["detail"]
    assert len(service.jobs()) == before


def test_cancel_mid_job_from_the_button(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    before = len(bot_api.sent("sendMessage", FRIEND))
    bot_api.send_text(FRIEND, "/options")
    options = bot_api.wait_for(
        lambda: [c for c in bot_api.sent("sendMessage", FRIEND)[before:] if c.fields["text"].startswith("Options")],
        what="the options",
    )[0]
    assert "opt:s:30" in options.fields["reply_markup"]
    bot_api.press(FRIEND, "opt:s:30", _message_id_of(bot_api, options.fields["text"]))
    bot_api.wait_for(lambda: bot_api.sent("editMessageText", FRIEND), what="the options updated")
    before = len(bot_api.sent("sendMessage", FRIEND))
    request = bot_api.send_text(FRIEND, "a long slow pan over the sea")
    job_id, message_id = status_message(bot_api, service, FRIEND, before)
    bot_api.wait_for(lambda: "Segments" in bot_api.texts.get(message_id, ""), what="a progress edit")
    assert service.job(job_id)["parameters"]["seconds"] == 30.0
    bot_api.press(FRIEND, f"cancel:{job_id}", message_id)
    job = service.wait_status(job_id, "canceled", timeout=60)
    assert job["finished"] is not None
    bot_api.wait_for(lambda: "stopped" in bot_api.texts.get(message_id, ""), what="the status shows canceled")
    stopped = bot_api.wait_for(
        lambda: [c for c in bot_api.sent("sendMessage", FRIEND) if c.fields["text"].startswith("✖ Stopped")],
        what="a new message saying it stopped",
    )
    assert FakeBotApi.reply_to(stopped[0]) == request
    folder = service.data_dir / "jobs" / job_id  # the record: kept
    assert (folder / "canceled").exists()  # the notebook saw KeyboardInterrupt (where it cancels its prompts)
    # a canceled job's scratch (its cached segments) and partial outputs are deleted at once
    assert not (service.data_dir / "heads" / job_id).exists() and not (service.data_dir / "outputs" / job_id).exists()
    rendered = (folder / "rendered.log").read_text().split()
    assert 0 < len(rendered) < 15
    assert not any(c.fields.get("caption", "").startswith("a long slow pan") for c in bot_api.sent("sendVideo"))
    bot_api.send_text(FRIEND, "/options")  # back to short jobs for the other tests
    bot_api.press(FRIEND, "opt:s:4", _message_id_of(bot_api, "Options"))


def test_rest_api_needs_the_token_and_serves_jobs(service: ServiceProcess) -> None:
    assert httpx.get(f"{service.url}/api/jobs").status_code == 401
    assert httpx.get(f"{service.url}/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    created = service.api.post("/api/jobs", json={"prompt": "a red kite", "seed": 7})
    assert created.status_code == 201, created.text
    job = service.wait_status(created.json()["id"], "succeeded")
    assert job["result"]["width"] == 320 and job["parameters"]["seed"] == 7
    assert any(j["id"] == job["id"] for j in service.jobs())
    ranged = service.api.get(f"/api/jobs/{job['id']}/files/video", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and len(ranged.content) == 10
    record = service.api.get(f"/api/jobs/{job['id']}/notebook")
    assert record.status_code == 200 and "a red kite" in record.text and "<html" in record.text
    link = service.api.get(f"/api/jobs/{job['id']}/link").json()["url"]
    assert httpx.get(link).status_code == 200
    assert httpx.get(link.replace("sig=", "sig=0")).status_code == 403
    assert httpx.get(link.replace(job["id"], "someoneelse")).status_code == 403


def test_a_failing_notebook_fails_the_job_with_its_error(service: ServiceProcess) -> None:
    created = service.api.post("/api/jobs", json={"prompt": "please FAIL"}).json()
    job = service.wait_status(created["id"], "failed")
    assert "the fake pipeline was told to fail" in job["error"]
    assert "RuntimeError" in service.api.get(f"/api/jobs/{job['id']}/notebook").text


def test_killed_service_resumes_the_job_on_restart(tmp_path: Path) -> None:
    bot_api = FakeBotApi().start()
    service = ServiceProcess(tmp_path / "svc", bot_api, defaults='{"seconds": 20, "width": 320, "height": 180}')
    try:
        service.start()
        bot_api.send_text(FRIEND, "a train crossing a bridge at dusk")
        job_id, message_id = status_message(bot_api, service, FRIEND, 0)
        rendered = service.data_dir / "jobs" / job_id / "rendered.log"
        bot_api.wait_for(lambda: rendered.exists() and len(rendered.read_text().split()) >= 3, what="3 segments")
        service.kill()
        service.start()
        job = service.wait_status(job_id, "succeeded")
        video = bot_api.wait_for(lambda: bot_api.sent("sendVideo", FRIEND), what="the video after the restart")
        assert len(video) == 1
        segments = rendered.read_text().split()
        assert sorted(segments, key=int) == [str(i) for i in range(10)]  # each segment rendered exactly once
        assert job["result"]["segments"] == 10
        assert "done" in bot_api.texts[message_id]  # the same status message carried on
    finally:
        service.stop()
        bot_api.stop()


def test_forged_webhook_is_rejected(tmp_path: Path) -> None:
    bot_api = FakeBotApi().start()
    service = ServiceProcess(tmp_path / "svc", bot_api, telegram_mode="webhook", telegram_webhook_secret=WEBHOOK_SECRET)
    update = {
        "update_id": 5,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": FRIEND, "type": "private"},
            "from": {"id": FRIEND, "is_bot": False, "first_name": "f"},
            "text": "/jobs",
        },
    }
    try:
        service.start()
        url = f"{service.url}/telegram/webhook"
        forged = httpx.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"})
        assert forged.status_code == 403
        assert httpx.post(url, json=update).status_code == 403
        secret = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        for malformed in (b"{not json", b"[1, 2]", b'{"message": "no update id"}'):  # right secret, bad body
            bad = httpx.post(url, content=malformed, headers={**secret, "Content-Type": "application/json"})
            assert bad.status_code == 400, bad.text
        real = httpx.post(url, json=update, headers=secret)
        assert real.status_code == 200
        assert len(bot_api.wait_for(lambda: replies(bot_api, FRIEND), what="the reply to the real update")) == 1
        assert bot_api.polls == 0  # webhook mode does not poll
    finally:
        service.stop()
        bot_api.stop()


def test_jobs_wait_their_turn_in_order(service: ServiceProcess) -> None:
    ids = [service.api.post("/api/jobs", json={"prompt": f"queued {i}"}).json()["id"] for i in range(3)]
    queued = [service.job(i)["status"] for i in ids[1:]]
    assert queued == ["queued", "queued"]  # one slot (MAX_PARALLEL=1): the others wait
    jobs = [service.wait_status(i, "succeeded") for i in ids]
    for earlier, later in zip(jobs, jobs[1:], strict=False):
        assert later["started"] >= earlier["finished"]  # never two at once, in submission order
