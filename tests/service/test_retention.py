"""Files with a lifetime: the sweep on a fake clock and back-dated files, `vidfarm du` by kind, refused uploads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vidfarm_service.jobs import Job, JobStatus, JobStore
from vidfarm_service.retention import Sweeper

from tests.fakes.telegram import FakeBotApi
from tests.service.harness import FRIEND, ServiceProcess
from vidfarm.cli import main
from vidfarm.jobs.retention import Policy, size_of, unique_dir, usage

DAY = 86400.0
NOW = 1_900_000_000.0  # the fake clock


def _file(path: Path, size: int, *, age_days: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    stamp = NOW - age_days * DAY
    os.utime(path, (stamp, stamp))
    return path


def _job_tree(root: Path, job_id: str) -> None:
    _file(root / "jobs" / job_id / "executed.ipynb", 5_000)
    _file(root / "outputs" / job_id / "video.mp4", 40_000)
    _file(root / "outputs" / job_id / "head" / "video.mp4", 40_000)  # the head's downloaded copy
    _file(root / "heads" / job_id / "output" / "vidfarm" / "jobs" / job_id / "seg_000.mp4", 30_000)
    _file(root / "heads" / job_id / "vidfarm_workers" / "w0" / "output" / "part.mp4", 20_000)


def _store(root: Path, *jobs: tuple[str, JobStatus, float | None, str]) -> JobStore:
    store = JobStore(root / "jobs.sqlite")
    for job_id, status, finished, image in jobs:
        params = {"prompt": "p", "image": image} if image else {"prompt": "p"}
        store.add(Job(id=job_id, owner="api", parameters=params, status=status, finished=finished))
    return store


def test_the_sweep_keeps_each_kind_exactly_as_long_as_the_policy_says(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for job_id in ("old", "recent", "running", "stray"):
        _job_tree(root, job_id)
    for path in (root / "heads" / "stray", root / "outputs" / "stray", root / "jobs" / "stray"):
        os.utime(path, (NOW - 20 * DAY, NOW - 20 * DAY))  # a folder the queue does not know, back-dated
    old_photo = _file(root / "uploads" / "old.jpg", 1_000, age_days=15)
    recent_photo = _file(root / "uploads" / "recent.jpg", 1_000, age_days=3)
    orphan = _file(root / "uploads" / "orphan.jpg", 1_000, age_days=0.1)  # saved, never submitted: 2.4 h ago
    fresh = _file(root / "uploads" / "fresh.jpg", 1_000, age_days=0.01)  # being submitted right now
    store = _store(
        root,
        ("old", JobStatus.SUCCEEDED, NOW - 15 * DAY, str(old_photo)),
        ("recent", JobStatus.SUCCEEDED, NOW - 3 * DAY, str(recent_photo)),
        ("running", JobStatus.RUNNING, None, ""),
    )
    before = usage(root)
    swept = Sweeper(store, root, Policy(keep_days=14, upload_grace_minutes=60), every_seconds=3600).sweep_once(now=NOW)

    for gone in (root / "jobs" / "old", root / "outputs" / "old", root / "heads" / "old", old_photo, orphan):
        assert not gone.exists(), gone
    assert not (root / "heads" / "recent").exists() and not (root / "outputs" / "recent" / "head").exists()
    assert (root / "outputs" / "recent" / "video.mp4").exists() and (root / "jobs" / "recent").exists()
    assert recent_photo.exists() and fresh.exists()
    assert (root / "heads" / "running" / "output").exists()  # may resume: its cached segments stay
    assert not (root / "heads" / "stray").exists() and not (root / "jobs" / "stray").exists()
    after = usage(root)
    assert sum(before.values()) - sum(after.values()) == pytest.approx(swept.freed_bytes, rel=0.01)
    running_workers = size_of(root / "heads" / "running" / "vidfarm_workers")
    assert after["head scratch"] < before["head scratch"] and after["worker outputs"] == running_workers > 0
    # a day later only the upload nobody submitted has expired; 12 days later the recent job goes too
    assert Sweeper(store, root, Policy(), every_seconds=1).sweep_once(now=NOW + DAY).removed == [fresh]
    later = Sweeper(store, root, Policy(), every_seconds=1).sweep_once(now=NOW + 12 * DAY)
    assert root / "outputs" / "recent" in later.removed and not recent_photo.exists()
    store.close()


def test_an_albums_second_photo_lives_as_long_as_its_job(tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = _file(root / "uploads" / "first.jpg", 1_000, age_days=0.5)  # a long job: past the upload grace
    last = _file(root / "uploads" / "last.jpg", 1_000, age_days=0.5)
    store = JobStore(root / "jobs.sqlite")
    params = {"prompt": "p", "image": str(first), "last_image": str(last)}
    job = store.add(Job(id="album", owner="api", parameters=params, status=JobStatus.RUNNING))
    policy = Policy(keep_days=14, upload_grace_minutes=60)
    Sweeper(store, root, policy, every_seconds=1).sweep_once(now=NOW)
    assert first.exists() and last.exists()  # running: a resume needs both photos
    job.status, job.finished = JobStatus.SUCCEEDED, NOW
    store.save(job)
    Sweeper(store, root, policy, every_seconds=1).sweep_once(now=NOW + 13 * DAY)
    assert first.exists() and last.exists()  # kept with the record
    swept = Sweeper(store, root, policy, every_seconds=1).sweep_once(now=NOW + 15 * DAY)
    assert {first, last} <= set(swept.removed) and not last.exists()  # and go with it
    store.close()


def test_du_reports_each_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    _job_tree(root, "a")
    _file(root / "uploads" / "x.jpg", 7_000)
    found = usage(root)
    assert found["worker outputs"] >= 20_000 and found["head scratch"] >= 70_000 and found["uploads"] >= 7_000
    assert found["deliverables"] >= 40_000 and found["records"] >= 5_000
    assert found["deliverables"] < found["head scratch"]  # the head's copy is scratch, not a deliverable
    assert main(["du", str(root)]) == 0
    out = capsys.readouterr().out
    assert "worker outputs" in out and "uploads" in out and str(root) in out
    assert main(["du", str(tmp_path / "missing")]) == 2


def test_unique_dirs_never_collide(tmp_path: Path) -> None:
    made = {unique_dir(tmp_path, "run") for _ in range(5)}  # all in the same second
    assert len(made) == 5 and all(p.is_dir() for p in made)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[FakeBotApi, ServiceProcess]]:
    bot_api = FakeBotApi().start()
    svc = ServiceProcess(tmp_path / "svc", bot_api, max_prompt_chars=50).start()
    yield bot_api, svc
    svc.stop()
    bot_api.stop()


def test_refused_uploads_are_deleted_at_once(service: tuple[FakeBotApi, ServiceProcess]) -> None:
    from tests.service.test_phone import jpeg

    bot_api, svc = service
    uploads = svc.data_dir / "uploads"
    refused = svc.api.post("/api/jobs/upload", data={"prompt": "a boat"}, files={"image": ("x.png", b"not a png")})
    assert refused.status_code == 422 and str(svc.data_dir) not in refused.text, refused.text  # no server path
    too_long = svc.api.post("/api/jobs/upload", data={"prompt": "x" * 80}, files={"image": ("p.jpg", jpeg())})
    assert too_long.status_code == 422 and "shorten" in too_long.text
    bot_api.send_photo(FRIEND, jpeg(), caption="y" * 80)
    bot_api.wait_for(lambda: any("can't start" in c.fields["text"] for c in bot_api.sent("sendMessage", FRIEND)))
    assert not uploads.exists() or not list(uploads.iterdir())  # deleted before the refusal was sent
    accepted = svc.api.post("/api/jobs/upload", data={"prompt": "a boat"}, files={"image": ("p.jpg", jpeg())})
    assert accepted.status_code == 201 and len(list(uploads.iterdir())) == 1  # an accepted one stays
