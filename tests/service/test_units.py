"""The service's pure parts: config refusing placeholders, signed links, per-user limits, option buttons, the store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from vidfarm_service.config import Settings
from vidfarm_service.jobs import Job, JobStatus, JobStore
from vidfarm_service.links import LinkSigner
from vidfarm_service.options_keyboard import apply_choice, options_keyboard
from vidfarm_service.submissions import Limits, check_quota, job_parameters

from vidfarm.errors import JobRefused

GOOD = "a-long-enough-secret-0123456789"
LIMITS = Limits(max_prompt_chars=100, max_seconds=60, max_upload_bytes=10_000, jobs_per_day=2, gpu_minutes_per_day=1)
DEFAULTS = {"seconds": 8.0, "width": 1280, "height": 720, "recipe": "standin"}


def test_config_refuses_placeholder_and_short_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFARM_SERVICE_LINK_SECRET", GOOD)
    for bad in ("changeme", "short"):
        monkeypatch.setenv("VIDFARM_SERVICE_API_TOKEN", bad)
        with pytest.raises(ValidationError, match="placeholder or shorter than 16"):
            Settings()  # type: ignore[call-arg]
    monkeypatch.setenv("VIDFARM_SERVICE_API_TOKEN", GOOD)
    settings = Settings()  # type: ignore[call-arg]
    assert GOOD not in repr(settings) and settings.api_token.get_secret_value() == GOOD
    monkeypatch.setenv("VIDFARM_SERVICE_TELEGRAM_MODE", "webhook")
    with pytest.raises(ValidationError, match="needs VIDFARM_SERVICE_TELEGRAM_WEBHOOK_SECRET"):
        Settings()  # type: ignore[call-arg]


def test_config_refuses_rest_users_that_would_mix_up_owners(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFARM_SERVICE_LINK_SECRET", GOOD)
    monkeypatch.setenv("VIDFARM_SERVICE_API_TOKEN", GOOD)
    other = "another-long-enough-secret-987"
    for users, message in [
        (f'{{"Alice Smith": "{other}"}}', "is not 1-32 of a-z 0-9"),
        ('{"alice": "short"}', r"api_users\[alice\] is a placeholder or shorter than 16"),
        (f'{{"alice": "{other}", "bob": "{other}"}}', "two users have the same token"),
        (f'{{"alice": "{GOOD}"}}', "a user's token is the admin's api_token"),
    ]:
        monkeypatch.setenv("VIDFARM_SERVICE_API_USERS", users)
        with pytest.raises(ValidationError, match=message) as refused:
            Settings()  # type: ignore[call-arg]
        assert other not in str(refused.value) and GOOD not in str(refused.value)  # named, never printed
    monkeypatch.setenv("VIDFARM_SERVICE_API_USERS", f'{{"alice": "{other}"}}')
    settings = Settings()  # type: ignore[call-arg]
    assert other not in repr(settings) and settings.api_users["alice"].get_secret_value() == other


def test_signed_links_expire_and_cannot_be_moved() -> None:
    signer = LinkSigner(b"k" * 32, public_url="https://farm.example/", ttl_seconds=600)
    url = signer.url("job1", "video", now=1000)
    assert url.startswith("https://farm.example/files/job1/video.mp4?expires=1600&sig=")
    sig = url.rsplit("sig=", 1)[1]
    assert signer.verify("job1", "video", 1600, sig, now=1500)
    assert not signer.verify("job1", "video", 1600, sig, now=1601)  # expired
    assert not signer.verify("job2", "video", 1600, sig, now=1500)  # another job
    assert not signer.verify("job1", "preview", 1600, sig, now=1500)  # another file
    assert not signer.verify("job1", "video", 99999, sig, now=1500)  # stretched expiry
    assert not LinkSigner(b"x" * 32, public_url="", ttl_seconds=1).verify("job1", "video", 1600, sig, now=1500)


def test_requests_are_checked(tmp_path: Path) -> None:
    assert job_parameters("  a kite ", options={"seconds": 4}, defaults=DEFAULTS, limits=LIMITS)["prompt"] == "a kite"
    with pytest.raises(JobRefused, match="101 characters; at most 100"):
        job_parameters("x" * 101, options={}, defaults=DEFAULTS, limits=LIMITS)
    with pytest.raises(JobRefused, match=r"600 s is not offered here \(allowed: 1 to 60\)"):
        job_parameters("a", options={"seconds": 600}, defaults=DEFAULTS, limits=LIMITS)
    with pytest.raises(JobRefused, match="unknown option"):
        job_parameters("a", options={"workers": "local:64"}, defaults=DEFAULTS, limits=LIMITS)
    with pytest.raises(JobRefused, match="strategy: 'magic' is not one of keyframes, chain, shots"):
        job_parameters("a", options={"strategy": "magic"}, defaults=DEFAULTS, limits=LIMITS)
    for bad, message in [({"fps": 0}, "fps: 0 is below the minimum 1"), ({"seed": -1}, "seed: -1 is below"),
                         ({"recipe": "wan22_5bb"}, "no recipe named 'wan22_5bb'"),
                         ({"recipe": "wan22_5b", "strategy": "keyframes"}, "choose chain or shots"),
                         ({"keyframes": "random"}, "keyframes: 'random' is not one of"),
                         ({"color_match": 2}, "color_match: 2.0 is above the maximum 1")]:  # fmt: skip
        with pytest.raises(JobRefused, match=message):  # checked before any process starts
            job_parameters("a", options=bad, defaults=DEFAULTS, limits=LIMITS)
    chosen = job_parameters("a", options={"keyframes": "independent", "color_match": "0.5"}, defaults=DEFAULTS,
                            limits=LIMITS)  # fmt: skip
    assert (chosen["keyframes"], chosen["color_match"]) == ("independent", 0.5)  # in their declared types
    with pytest.raises(JobRefused, match="empty"):
        job_parameters("   ", options={}, defaults=DEFAULTS, limits=LIMITS)
    text = tmp_path / "photo.png"
    text.write_text("not a png")
    with pytest.raises(JobRefused, match="not an image"):
        job_parameters("a", options={}, defaults=DEFAULTS, limits=LIMITS, image=text)


def test_per_user_limits(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    now = time.time()
    check_quota(store, "tg:1", LIMITS, now=now)
    store.add(Job(id="a", owner="tg:1", parameters={}, status=JobStatus.SUCCEEDED, result={"workers": {"w": 70.0}}))
    with pytest.raises(JobRefused, match="GPU minutes"):
        check_quota(store, "tg:1", LIMITS, now=now)
    check_quota(store, "tg:2", LIMITS, now=now)  # others are not affected
    store.add(Job(id="b", owner="tg:2", parameters={}))
    store.add(Job(id="c", owner="tg:2", parameters={}))
    with pytest.raises(JobRefused, match="your 2 jobs for today"):
        check_quota(store, "tg:2", LIMITS, now=now)
    check_quota(store, "tg:2", LIMITS, now=now + 2 * 86400)  # a day later


def test_store_survives_reopening_and_keeps_queue_order(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for name in ("first", "second", "third"):
        store.add(Job(id=name, owner="api", parameters={"prompt": name}))
    store.allow(7, added_by=1)
    store.close()
    reopened = JobStore(tmp_path / "jobs.sqlite")
    assert [j.id for j in reopened.with_status(JobStatus.QUEUED)] == ["first", "second", "third"]
    assert reopened.is_allowed(7) and not reopened.is_allowed(8)


def test_option_buttons_fit_telegram_and_apply() -> None:
    keyboard = options_keyboard({}, DEFAULTS)
    buttons = [b for row in keyboard.inline_keyboard for b in row]
    assert all(len(str(b.callback_data).encode()) <= 64 for b in buttons)
    assert {"✓ 8 s", "✓ from photo", "✓ standin", "✓ keyframes", "— ⏱ Length —"} <= {b.text for b in buttons}
    choices: dict[str, object] = {}
    assert apply_choice(choices, "r:9:16", DEFAULTS) and choices == {"width": 720, "height": 1280}
    assert not apply_choice(choices, "r:9:16", DEFAULTS) and not apply_choice(choices, "s:999", DEFAULTS)
