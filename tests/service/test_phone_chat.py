"""The phone experience through the fake Bot API, in both languages: progress as a reply with plain stages, the video
(full file, small thumbnail, seed, buttons) as a reply, failures as a new message without internals, commands and
everything else answered, admin commands, privacy, Telegram unreachable at start, and the watch page in Chromium."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.fakes.telegram import Call, FakeBotApi
from tests.service.harness import ADMIN, FRIEND, STRANGER, ServiceProcess, free_port
from tests.support.waiting import deadline_s, wait_for

JA_USER, EN_USER = FRIEND, ADMIN
BROWSER_MS = deadline_s(60) * 1000  # Playwright waits on its conditions itself: one generous bound, in ms
STICKER = {"file_id": "S", "file_unique_id": "S", "width": 1, "height": 1, "is_animated": False, "is_video": False,
           "type": "regular"}  # fmt: skip


@pytest.fixture(scope="module")
def bot_api() -> Iterator[FakeBotApi]:
    fake = FakeBotApi().start()
    fake.languages[JA_USER] = "ja"
    fake.languages[EN_USER] = "en-GB"
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def service(bot_api: FakeBotApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path_factory.mktemp("chat"), bot_api).start()
    yield svc
    svc.stop()


def sent_after(bot_api: FakeBotApi, method: str, chat: int, after: int, starts: str = "") -> list[Call]:
    return [c for c in bot_api.sent(method, chat)[after:] if c.fields.get("text", "").startswith(starts)]


def wait_sent(bot_api: FakeBotApi, method: str, chat: int, after: int, starts: str = "", what: str = "") -> Call:
    found: list[Call] = bot_api.wait_for(lambda: sent_after(bot_api, method, chat, after, starts), what=what)
    return found[0]


def jpeg(size: tuple[int, int], colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def buttons(call: Call) -> list[str]:
    return [b["text"] for row in json.loads(call.fields["reply_markup"])["inline_keyboard"] for b in row]


def newest_job(service: ServiceProcess, user: int) -> dict[str, object]:
    return next(j for j in service.jobs() if j["owner"] == f"tg:{user}")


def test_japanese_progress_is_a_reply_and_the_video_arrives_in_the_chat(
    bot_api: FakeBotApi, service: ServiceProcess
) -> None:
    before, videos = len(bot_api.sent("sendMessage", JA_USER)), len(bot_api.sent("sendVideo", JA_USER))
    request = bot_api.send_text(JA_USER, "夕暮れの海を飛ぶ赤い凧")
    status = wait_sent(bot_api, "sendMessage", JA_USER, before, "🎬", "the status message")
    assert FakeBotApi.reply_to(status) == request
    assert "夕暮れの海を飛ぶ赤い凧" in status.fields["text"] and "文章 → 動画" in status.fields["text"]
    assert "cancel:" in status.fields["reply_markup"]
    status_id = max(mid for mid, text in bot_api.texts.items() if text.startswith("🎬「夕暮れ"))
    bot_api.wait_for(lambda: "セグメント" in bot_api.texts.get(status_id, ""), what="a stage in Japanese")
    assert "▓" in bot_api.texts[status_id]
    video = bot_api.wait_for(lambda: bot_api.sent("sendVideo", JA_USER)[videos:], what="the video")[0]
    job = newest_job(service, JA_USER)
    assert FakeBotApi.reply_to(video) == request
    caption = video.fields["caption"]
    assert f"シード {job['parameters']['seed']}" in caption and "再生・ダウンロード" in caption  # type: ignore[index]
    assert "有効期限" in caption and "/watch/" in caption
    for verb in ("again:", "same:", "longer:", "vertical:", "vr180:"):
        assert verb in video.fields["reply_markup"]
    assert "🎲 もう一度" in buttons(video)
    assert max(Image.open(io.BytesIO(video.files["thumbnail"])).size) <= 320
    assert bot_api.unchanged_edits == 0


def test_a_failure_is_a_new_message_with_what_to_do_and_no_internals(
    bot_api: FakeBotApi, service: ServiceProcess
) -> None:
    before = len(bot_api.sent("sendMessage", EN_USER))
    request = bot_api.send_text(EN_USER, "please FAIL now")
    failed = wait_sent(bot_api, "sendMessage", EN_USER, before, "❌", "the failure message")
    assert FakeBotApi.reply_to(failed) == request
    text = failed.fields["text"]
    assert "please FAIL now" in text and "Try again" in text
    assert "RuntimeError" not in text and "fake pipeline" not in text and "/tmp" not in text
    assert "reply_markup" not in failed.fields  # no "Again" on a failed job
    job = newest_job(service, EN_USER)
    assert "the fake pipeline was told to fail" in str(job["error"])  # the internals stay in the record


def test_a_portrait_photo_makes_a_portrait_video_and_an_album_makes_one_job(
    bot_api: FakeBotApi, service: ServiceProcess
) -> None:
    videos = len(bot_api.sent("sendVideo", EN_USER))
    bot_api.send_photo(EN_USER, jpeg((48, 64)), caption="she turns and smiles")
    video = bot_api.wait_for(lambda: bot_api.sent("sendVideo", EN_USER)[videos:], what="the portrait video")[0]
    assert (int(video.fields["width"]), int(video.fields["height"])) == (180, 320)
    jobs_before = len(service.jobs())
    before = len(bot_api.sent("sendMessage", EN_USER))
    bot_api.send_photo(EN_USER, jpeg((64, 48)), caption="first and last", album="album-1")
    bot_api.send_photo(EN_USER, jpeg((64, 48)), album="album-1")
    wait_sent(bot_api, "sendMessage", EN_USER, before, "🎬", "one status for the album")
    album = newest_job(service, EN_USER)["parameters"]
    assert isinstance(album, dict) and album["image"] and album["last_image"]  # both photos in it: none left over
    assert len(service.jobs()) == jobs_before + 1
    assert len(sent_after(bot_api, "sendMessage", EN_USER, before, "🎬")) == 1


def test_an_album_of_two_photos_is_one_clip_from_the_first_to_the_second(
    bot_api: FakeBotApi, service: ServiceProcess
) -> None:
    morning, night = jpeg((64, 48), (230, 180, 60)), jpeg((64, 48), (20, 30, 90))
    jobs_before, before = len(service.jobs()), len(bot_api.sent("sendMessage", JA_USER))
    bot_api.send_photo(JA_USER, morning, caption="朝から夜へ", album="album-ja")
    bot_api.send_photo(JA_USER, night, album="album-ja")
    status = wait_sent(bot_api, "sendMessage", JA_USER, before, "🎬", "the album's status")
    assert "写真 2 枚 → 動画: 1 枚目から 2 枚目へ" in status.fields["text"]  # says where the clip goes
    job = newest_job(service, JA_USER)
    parameters = job["parameters"]
    assert isinstance(parameters, dict) and len(service.jobs()) == jobs_before + 1
    assert parameters["prompt"] == "朝から夜へ" and parameters["strategy"] == "keyframes"
    assert Path(parameters["image"]).read_bytes() == morning  # in the album's order: first, then last
    assert Path(parameters["last_image"]).read_bytes() == night
    assert service.wait_status(str(job["id"]), "succeeded")["parameters"]["last_image"] == parameters["last_image"]

    before = len(bot_api.sent("sendMessage", JA_USER))
    bot_api.send_text(JA_USER, "/options strategy chain")
    wait_sent(bot_api, "sendMessage", JA_USER, before, what="the options")
    uploads = set((service.data_dir / "uploads").iterdir())
    before, jobs_before = len(bot_api.sent("sendMessage", JA_USER)), len(service.jobs())
    bot_api.send_photo(JA_USER, morning, album="album-chain")
    bot_api.send_photo(JA_USER, night, album="album-chain")
    refused = wait_sent(bot_api, "sendMessage", JA_USER, before, "開始できませんでした", "the refusal").fields["text"]
    assert "最初と最後のフレーム" in refused and "chain" in refused and "/options" in refused  # what to change
    assert len(service.jobs()) == jobs_before and set((service.data_dir / "uploads").iterdir()) == uploads
    before = len(bot_api.sent("sendMessage", JA_USER))
    bot_api.send_text(JA_USER, "/options strategy keyframes")
    wait_sent(bot_api, "sendMessage", JA_USER, before, what="the options again")


def test_every_message_gets_an_answer(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    commands = bot_api.wait_for(lambda: bot_api.sent("setMyCommands"), what="the commands registered")
    assert {c.fields.get("language_code") for c in commands} == {None, "ja"}
    japanese = json.loads(next(c for c in commands if c.fields.get("language_code") == "ja").fields["commands"])
    assert {"command": "status", "description": "いま生成中のもの"} in japanese
    before, jobs = len(bot_api.sent("sendMessage", JA_USER)), len(service.jobs())
    bot_api.send_text(JA_USER, "/status")
    assert "生成中・順番待ちの動画はありません" in wait_sent(bot_api, "sendMessage", JA_USER, before).fields["text"]
    answers = {
        "/frobnicate": "動画の説明を送っていただくと",
        "sticker": "この種類のメッセージには対応していません",
        "voice": "音声メッセージにはまだ対応していません",
        "location": "この種類のメッセージには対応していません",
    }
    for what, expected in answers.items():
        before = len(bot_api.sent("sendMessage", JA_USER))
        if what.startswith("/"):
            bot_api.send_text(JA_USER, what)
        elif what == "sticker":
            bot_api.send_other(JA_USER, sticker=STICKER)
        elif what == "voice":
            bot_api.send_other(JA_USER, voice={"file_id": "V", "file_unique_id": "V", "duration": 2})
        else:
            bot_api.send_other(JA_USER, location={"latitude": 35.68, "longitude": 139.76})
        assert expected in wait_sent(bot_api, "sendMessage", JA_USER, before, what=what).fields["text"]
    before = len(bot_api.sent("sendMessage", JA_USER))
    bot_api.edit_text(JA_USER, 77, "夜の東京タワー")
    asked = wait_sent(bot_api, "sendMessage", JA_USER, before, "メッセージが編集されました", "the edit question")
    assert "go:" in asked.fields["reply_markup"] and len(service.jobs()) == jobs  # nothing ran yet


def test_cancel_with_no_argument_stops_the_running_job(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    before = len(bot_api.sent("sendMessage", EN_USER))
    bot_api.send_text(EN_USER, "/options seconds ３０")  # full-width digits, as a Japanese keyboard types them
    wait_sent(bot_api, "sendMessage", EN_USER, before, "Options", "the options")
    bot_api.send_text(EN_USER, "the first of two")
    first = bot_api.wait_for(
        lambda: (
            newest_job(service, EN_USER)["parameters"]["prompt"] == "the first of two" and newest_job(service, EN_USER)
        )
    )  # type: ignore[index]  # noqa: E501
    service.wait_status(str(first["id"]), "running")
    bot_api.send_text(EN_USER, "the second of two")
    second = bot_api.wait_for(lambda: (j := newest_job(service, EN_USER))["id"] != first["id"] and j)
    before = len(bot_api.sent("sendMessage", EN_USER))
    bot_api.send_text(EN_USER, "/cancel")
    assert "the first of two" in wait_sent(bot_api, "sendMessage", EN_USER, before, "Stopping").fields["text"]
    service.wait_status(str(first["id"]), "canceled", timeout=60)
    assert service.job(str(second["id"]))["status"] in ("queued", "running")
    bot_api.send_text(EN_USER, "/cancel")
    service.wait_status(str(second["id"]), "canceled", timeout=60)
    bot_api.send_text(EN_USER, "/options seconds 4")


def test_the_watch_page_plays_on_a_phone(bot_api: FakeBotApi, service: ServiceProcess) -> None:
    created = service.api.post("/api/jobs", json={"prompt": "a paper boat in the rain", "seed": 11}).json()
    job = service.wait_status(created["id"], "succeeded")
    page = service.api.get(f"/api/jobs/{job['id']}/link", params={"kind": "watch"})
    assert page.status_code == 200, page.text
    url = page.json()["url"]
    html = httpx.get(url)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    video_url = re.search(r'<video[^>]* src="([^"]+)"', html.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    head = httpx.head(video_url)
    assert head.status_code == 200 and head.headers["content-type"] == "video/mp4"
    assert head.headers["content-disposition"].startswith("inline") and head.headers["accept-ranges"] == "bytes"
    assert int(head.headers["content-length"]) == Path(job["result"]["video"]).stat().st_size
    assert httpx.get(video_url + "&download=1").headers["content-disposition"].startswith("attachment")
    assert httpx.get(url.replace("sig=", "sig=0")).status_code == 403
    poster = re.search(r'<video[^>]* poster="([^"]+)"', html.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    shown = httpx.get(poster)  # the poster carries its own signature: one file of one job each
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.content[:2] == b"\xff\xd8"  # a JPEG
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )  # noqa: E501
        try:
            phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            tab = phone.new_page()
            tab.goto(url + "&lang=ja")
            tab.wait_for_function("document.querySelector('video').readyState >= 2", timeout=BROWSER_MS)
            tab.evaluate("document.querySelector('video').muted = true; document.querySelector('video').play()")
            tab.wait_for_function("document.querySelector('video').currentTime > 0.2", timeout=BROWSER_MS)
            size = tab.evaluate(
                "[document.querySelector('video').videoWidth, document.querySelector('video').videoHeight]"
            )
            assert size == [320, 180]
            assert "a paper boat in the rain" in tab.inner_text("body") and "シード 11" in tab.inner_text("body")
            assert tab.inner_text("#download") == "⬇ ダウンロード"
            box = tab.locator("video").bounding_box()
            assert box is not None and box["width"] <= 390
            tab.goto(url + "&lang=en")  # the docs' screenshot in English: no CJK font needed on the machine
            tab.wait_for_function("document.querySelector('video').readyState >= 2", timeout=BROWSER_MS)
            tab.evaluate("document.querySelector('video').currentTime = 1")
            tab.wait_for_function("document.querySelector('video').seeking === false", timeout=BROWSER_MS)
            # the docs' picture is refreshed only when asked: a test run never edits the checkout
            shot = tab.screenshot()
            assert shot[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("VIDFARM_UPDATE_DOCS_IMAGES") == "1":
                (REPO / "docs" / "images" / "watch-page-phone.png").write_bytes(shot)
        finally:
            browser.close()


def test_rest_rejects_unknown_fields_and_hides_the_pool(bot_api: FakeBotApi, tmp_path: Path) -> None:
    defaults = json.dumps({"seconds": 4, "width": 320, "height": 180, "recipe": "standin", "workers": "local:1"})
    svc = ServiceProcess(tmp_path / "svc", bot_api, defaults=defaults).start()
    try:
        refused = svc.api.post("/api/jobs", json={"prompt": "x", "secondz": 8})
        assert refused.status_code == 422 and "secondz" in refused.text
        created = svc.api.post("/api/jobs", json={"prompt": "a lantern", "seed": 3}).json()
        assert "workers" not in created["parameters"] and "workers" not in svc.jobs()[0]["parameters"]
        assert svc.api.get("/api/jobs", params={"owner": "tg:1"}).json() == []
    finally:
        svc.stop()


def test_deny_outlives_a_restart(tmp_path: Path) -> None:
    bot_api = FakeBotApi().start()
    svc = ServiceProcess(tmp_path / "svc", bot_api)
    try:
        svc.start()
        bot_api.send_text(ADMIN, f"/deny {FRIEND}")
        bot_api.wait_for(lambda: any("no longer" in c.fields["text"] for c in bot_api.sent("sendMessage", ADMIN)))
        svc.stop()
        svc = ServiceProcess(tmp_path / "svc", bot_api).start()  # FRIEND is in ALLOWED_IDS again
        bot_api.send_text(FRIEND, "a dragon")
        refusal = wait_sent(bot_api, "sendMessage", FRIEND, 0, what="a refusal")
        assert "private" in refusal.fields["text"] and not any(j["owner"] == f"tg:{FRIEND}" for j in svc.jobs())
        bot_api.send_text(STRANGER, "/allow 5")
        assert "private" in wait_sent(bot_api, "sendMessage", STRANGER, 0).fields["text"]
    finally:
        svc.stop()
        bot_api.stop()


def test_the_api_serves_while_telegram_is_down_and_the_bot_connects_later(tmp_path: Path) -> None:
    port = free_port()
    absent = FakeBotApi(port=port)  # not started yet: Telegram is unreachable
    svc = ServiceProcess(tmp_path / "svc", absent)
    svc.env["VIDFARM_SERVICE_TELEGRAM_BASE_URL"] = f"http://127.0.0.1:{port}/bot"
    svc.env["VIDFARM_SERVICE_TELEGRAM_BASE_FILE_URL"] = f"http://127.0.0.1:{port}/file/bot"
    try:
        svc.start()
        assert svc.api.post("/api/jobs", json={"prompt": "while telegram is down"}).status_code == 201
        wait_for(lambda: "unreachable" in svc.log(), "the service saw Telegram unreachable", describe=svc.log)
        absent.start()
        absent.send_text(FRIEND, "/help")
        assert (
            "Send me a text"
            in wait_sent(absent, "sendMessage", FRIEND, 0, what="help after reconnecting").fields["text"]
        )
        assert "unreachable" in svc.log() and "123456:TEST" not in svc.log()
    finally:
        svc.stop()
        absent.stop()
