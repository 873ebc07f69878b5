"""The chat's pure parts: the catalogue in both languages, plain stage names, the honest ETA, failure lines without
internals, options from what can run, thumbnails within the Bot API limit, the photo's shape, HEIC on arrival."""

from __future__ import annotations

import asyncio
import io
import re
import string
from pathlib import Path

import pytest
from PIL import Image
from vidfarm_service import estimates
from vidfarm_service.bot import as_jpeg_if_heic, photo_shape, variant
from vidfarm_service.catalogue import EN, JA, duration, normalize, pick_language, say
from vidfarm_service.delivery import thumbnail_jpeg
from vidfarm_service.jobs import Job, JobStatus
from vidfarm_service.options_keyboard import (
    apply_choice,
    options_keyboard,
    options_text,
    runnable_recipes,
    typed_options,
)
from vidfarm_service.refusals import refusal_text
from vidfarm_service.status_messages import EtaClock, StatusMessages, failure_reason, plain_stage, status_text

from vidfarm.errors import WorkflowError

DEFAULTS = {"seconds": 8.0, "width": 1280, "height": 720, "recipe": "standin"}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_every_text_with_the_same_fields() -> None:
    assert EN.keys() == JA.keys()
    for key in EN:
        assert _fields(EN[key]) == _fields(JA[key]), key
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    untranslated = [k for k, v in JA.items() if not japanese.search(v) and v != EN[k] and not k.startswith("btn_vr")]
    assert not untranslated
    assert all(v.strip() for v in JA.values())


def test_language_is_the_choice_then_telegram_then_english() -> None:
    assert pick_language(None, "ja-JP") == "ja" and pick_language("en", "ja") == "en"
    assert pick_language(None, "de") == "en" and pick_language(None, None) == "en"
    assert say("ja", "stage_keyframes", done=3, total=7) == "キーフレーム 3/7"
    assert duration(200, "ja") == "3 分 20 秒" and duration(200, "en") == "3:20"
    assert normalize("ｓｅｅｄ　１２") == "seed 12"


def _job(**changes: object) -> Job:
    job = Job(id="ab12cd34ef", owner="tg:1", parameters={**DEFAULTS, "prompt": "a red kite over the sea"})
    for name, value in changes.items():
        setattr(job, name, value)
    return job


def test_status_speaks_plainly_without_internals() -> None:
    job = _job(status=JobStatus.RUNNING, stage="running", fraction=0.4, detail="VidfarmSegmentScheduler 400/1000")
    for lang in ("en", "ja"):
        text = status_text(job, lang, eta=125)
        assert "Vidfarm" not in text and job.id not in text and "a red kite" in text
        assert "▓▓▓▓░░░░░░ 40%" in text
    assert "about 2:00 left" in status_text(job, "en", eta=125)
    assert "残り約 2 分" in status_text(job, "ja", eta=125)
    assert plain_stage(_job(stage="rendering", detail="segment 4/6"), "en") == "Segments 4/6"
    assert plain_stage(_job(stage="running", detail="VidfarmJoin"), "ja") == "セグメントをつないでいます"
    assert plain_stage(_job(stage="renting", detail="GPUワーカーを1台レンタル中"), "ja") == "GPUワーカーを1台レンタル中"
    assert plain_stage(_job(stage="renting"), "en") == "Renting a GPU"
    queued = status_text(_job(), "ja", ahead=2, starts_in=170)
    assert "前に 2 件" in queued and "約 3 分 後に開始" in queued


def test_eta_never_rises_while_nothing_moves() -> None:
    clock, job = EtaClock(), _job(status=JobStatus.RUNNING, started=1000.0)
    job.fraction = 0.25
    first = clock.update(job, 1030.0)  # 30 s for a quarter: 90 s left
    assert first == pytest.approx(90)
    stuck = [clock.update(job, t) for t in (1040.0, 1060.0, 1100.0, 1200.0)]
    assert all(a is not None and b is not None and b <= a for a, b in zip([first, *stuck], stuck, strict=False))
    assert stuck[-1] == 0
    job.fraction = 0.5  # it moved again: a new estimate from the measured pace
    assert clock.update(job, 1200.0) == pytest.approx(200)


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (
            "ExecutionFailed: prompt af2850ec failed in node 3 (VidfarmSegmentScheduler): refused wan22_14b_keyframe",
            "why_recipe",
        ),
        ("InputImageError: cannot identify image file '/srv/uploads/x.jpg'", "why_image"),
        ("RuntimeError: CUDA error: out of memory", "why_memory"),
        ("ZeroDivisionError: division by zero", "why_option"),
        ("RuntimeError: the fake pipeline was told to fail", "why_other"),
    ],
)
def test_a_failure_becomes_one_line_saying_what_to_change(error: str, key: str) -> None:
    assert failure_reason(error) == key
    for lang in ("en", "ja"):
        line = say(lang, "failed", prompt="p", why=say(lang, key))
        assert "/" not in line.replace("/options", "") and "Error" not in line


def test_refusals_in_japanese_and_without_paths() -> None:
    assert refusal_text("the prompt is 10000 characters; at most 2000, please - shorten it", "ja") == (
        "説明が 10000 文字あります。2000 文字以内に短くしてください。"
    )
    shown = refusal_text("cannot read '/work/data/uploads/abc.jpg': bad", "en")
    assert "/work" not in shown
    assert "/srv" not in refusal_text("fps must be between 1 and 60, not 0 (see /srv/x.toml)", "en")


def test_options_offer_only_what_can_run_and_are_checked_by_the_core() -> None:
    assert runnable_recipes(DEFAULTS) == ("standin",)  # no GPU workers configured: no real model offered
    with_gpus = {**DEFAULTS, "workers": '[{"name": "g", "url": "https://x", "token": "env:T"}]'}
    assert "wan22_14b_4step" in runnable_recipes(with_gpus)
    texts = [b.text for row in options_keyboard({}, DEFAULTS, "ja").inline_keyboard for b in row]
    assert "— ⏱ 長さ —" in texts and "✓ 写真に合わせる" in texts and not any("wan22" in t for t in texts)
    choices: dict[str, object] = {"strategy": "keyframes"}
    with pytest.raises(WorkflowError):  # wan22_5b cannot do keyframes: refused, nothing saved
        apply_choice(choices, "m:wan22_5b", with_gpus)
    assert choices == {"strategy": "keyframes"}
    assert typed_options(normalize("seed＝１２ fps 16")) == {"seed": "12", "fps": "16"}


def _image(size: tuple[int, int], fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, fmt)
    return buffer.getvalue()


def test_thumbnails_fit_the_bot_api_and_photos_keep_their_shape(tmp_path: Path) -> None:
    big = tmp_path / "thumb.jpg"
    big.write_bytes(_image((640, 360)))
    small = thumbnail_jpeg(big)
    assert small is not None and len(small) <= 200_000
    assert max(Image.open(io.BytesIO(small)).size) <= 320
    portrait = tmp_path / "portrait.jpg"
    portrait.write_bytes(_image((600, 900)))
    assert photo_shape(portrait, DEFAULTS) == {"width": 720, "height": 1280}
    square = tmp_path / "square.png"
    square.write_bytes(_image((500, 510), "PNG"))
    assert photo_shape(square, DEFAULTS) == {"width": 720, "height": 720}
    job = _job()
    assert variant(job, "vertical") == {"width": 720, "height": 1280} and variant(job, "longer") == {"seconds": 16.0}
    assert variant(job, "vr180") == {"vr": "vr180_mono"} and variant(job, "nonsense") is None


def test_heic_is_converted_on_arrival(tmp_path: Path) -> None:
    import pillow_heif

    heic = tmp_path / "photo.heic"
    pillow_heif.from_pillow(Image.new("RGB", (64, 96), (200, 10, 10))).save(str(heic), quality=80)
    converted = as_jpeg_if_heic(heic)
    assert converted.suffix == ".jpg" and not heic.exists()
    with Image.open(converted) as picture:
        assert picture.format == "JPEG" and picture.size == (64, 96)
    jpeg = tmp_path / "plain.jpg"
    jpeg.write_bytes(_image((8, 8)))
    assert as_jpeg_if_heic(jpeg) == jpeg


def _done(seconds: float, took: float, cost: float | None, recipe: str = "standin") -> Job:
    result = {"fleet": {"cost": cost, "workers": 1}} if cost is not None else {"workers": {"w": took}}
    parameters = {**DEFAULTS, "prompt": "p", "seconds": seconds, "recipe": recipe}
    return Job(
        id=f"j{seconds}{took}", owner="tg:1", parameters=parameters, status=JobStatus.SUCCEEDED,
        started=1000.0, finished=1000.0 + took, result=result,
    )  # fmt: skip


def test_time_and_cost_estimates_are_the_median_measured_pace_of_the_same_recipe() -> None:
    jobs = [_done(10, 100, 0.50), _done(20, 400, 2.00), _done(5, 25, None), _done(8, 999, 9.0, recipe="other")]
    jobs.append(Job(id="failed", owner="tg:1", parameters={**DEFAULTS, "prompt": "p"}, status=JobStatus.FAILED))
    # paces 10, 20 and 5 s per second of video -> median 10; cost 0.05 and 0.10 $/s -> median 0.075
    assert estimates.render_seconds(jobs, "standin", 30) == pytest.approx(300)
    assert estimates.gpu_cost(jobs, "standin", 30) == pytest.approx(2.25)
    assert estimates.render_seconds(jobs, "wan22_14b_4step", 30) is None
    assert estimates.gpu_cost(jobs[2:3], "standin", 30) is None  # own workers: no bill, no cost shown

    def took(recipe: str, seconds: float) -> float | None:
        return estimates.render_seconds(jobs, recipe, seconds)

    def paid(recipe: str, seconds: float) -> float | None:
        return estimates.gpu_cost(jobs, recipe, seconds)

    text = options_text({"seconds": 30.0}, DEFAULTS, "en", took, paid)
    assert "standin: about 5:00, about $2.25 of GPU time" in text
    assert "standin: 約 5 分・GPU料金 約 $2.25" in options_text({"seconds": 30.0}, DEFAULTS, "ja", took, paid)
    assert "standin: about 5:00" in options_text({"seconds": 30.0}, DEFAULTS, "en", took, lambda r, s: None)
    assert "no estimate yet" in options_text({}, DEFAULTS, "en", lambda r, s: None, paid)


class _RecordingBot:
    def __init__(self) -> None:
        self.photos: list[tuple[bytes, str]] = []

    async def edit_message_text(self, *args: object, **kwargs: object) -> None:
        pass

    async def send_photo(self, chat_id: int, photo: bytes, *, caption: str, **kwargs: object) -> None:
        assert kwargs["disable_notification"] is True and kwargs["reply_to_message_id"] == 77
        self.photos.append((photo, caption))


async def _settled(job_id: str) -> None:
    """Until the job's status task (its edit, then its photos or delivery) has run: awaited, no clock involved."""
    for task in asyncio.all_tasks():
        if task.get_name() == f"status-{job_id}":
            await task


def test_keyframe_thumbnails_go_once_each_up_to_the_cap_and_only_while_running(tmp_path: Path) -> None:
    paths = []
    for index in (0, 2, 1, 3):
        paths.append(tmp_path / f"key-{index:02d}.jpg")
        paths[-1].write_bytes(f"jpeg {index}".encode())

    async def scenario() -> list[tuple[bytes, str]]:
        bot = _RecordingBot()

        async def nothing(job: Job, lang: str) -> None:
            pass

        status = StatusMessages(
            bot,  # type: ignore[arg-type]
            min_interval=0, lang_for=lambda job: "ja", deliver=nothing, outcome=nothing, queue=list,
            estimate=lambda job: None, tick_seconds=3600, keyframe_photos=3,
        )  # fmt: skip
        job = _job(status=JobStatus.RUNNING, started=1.0, chat_id=5, status_message_id=77)
        status.track(job, 77, "")
        for shown in (paths[:1], paths[:1], paths[:3], paths):  # the same list twice, then more, then past the cap
            job.keyframes = [str(p) for p in shown]
            await status.on_job(job)
            await _settled(job.id)
        job.status, job.keyframes = JobStatus.SUCCEEDED, [str(tmp_path / "key-09.jpg")]
        await status.on_job(job)
        await _settled(job.id)
        await status.close()
        return bot.photos

    photos = asyncio.run(scenario())
    assert [p for p, _ in photos] == [b"jpeg 0", b"jpeg 2", b"jpeg 1"]  # once each, three at most, none when done
    assert photos[1][1].startswith("キーフレーム 2")


def test_only_the_jobs_own_keyframe_thumbnails_are_taken_from_its_progress_log(tmp_path: Path) -> None:
    from vidfarm_service.runner import _keyframes_of

    own = tmp_path / "outputs" / "job1" / "keyframes"
    wanted = [str(own / "key-00.jpg"), str(own / "key-12.jpg")]
    others = [str(tmp_path / "outputs" / "job2" / "keyframes" / "key-01.jpg"),  # another job's
              str(tmp_path / "outputs" / "job1" / "thumbnail.jpg"), str(own / "notes.jpg"),  # not a keyframe
              str(own / ".." / ".." / "job2" / "keyframes" / "key-02.jpg"), "/etc/passwd"]  # fmt: skip
    assert _keyframes_of("job1", wanted + others, tmp_path) == wanted
