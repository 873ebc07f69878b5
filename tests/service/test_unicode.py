"""Any Unicode passes through unchanged: REST and Telegram -> the notebook's parameters -> the result, equal.

30 submissions, each with an emoji (astral-plane characters: the ones papermill's YAML used to read back as lone
surrogates), half by REST and half by chat, against a quota of 10 a day each: every one succeeds or is refused by
the quota with a clear message, and a job that failed before rendering did not use up the quota."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeBotApi
from tests.service.harness import FRIEND, ServiceProcess

PROMPTS = [
    "a paper boat 🚣 in the rain ☔️",
    "雨の中を漂う紙の船 🌧️",
    "סירת נייר בגשם 🛶 قارب ورقي",
    "cafe\u0301 with combining marks n\u0303 and a family 👩\u200d👩\u200d👧 🇯🇵",
    "math 𝒜𝓁𝓅𝒽𝒶 and a skin tone 👋🏽 — dashes “quotes”",
]
PER_DAY = 10


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[FakeBotApi, ServiceProcess]]:
    bot_api = FakeBotApi().start()
    svc = ServiceProcess(tmp_path / "svc", bot_api, jobs_per_day=PER_DAY, defaults='{"seconds": 2}').start()
    yield bot_api, svc
    svc.stop()
    bot_api.stop()


def _chat_replies(bot_api: FakeBotApi) -> list[str]:
    return [c.fields["text"] for c in bot_api.sent("sendMessage", FRIEND)]


@pytest.mark.timeout(900)
def test_thirty_emoji_prompts_by_rest_and_chat(service: tuple[FakeBotApi, ServiceProcess]) -> None:
    bot_api, svc = service
    failed = svc.api.post("/api/jobs", json={"prompt": "please FAIL 💥"}).json()  # fails before it renders
    assert "the fake pipeline was told to fail" in svc.wait_status(failed["id"], "failed")["error"]
    accepted: dict[str, str] = {}  # job id -> the prompt as sent
    refused_rest, refused_chat = [], []
    for i in range(30):
        prompt = f"{PROMPTS[i % len(PROMPTS)]} #{i}"
        if i % 2 == 0:
            answer = svc.api.post("/api/jobs", json={"prompt": prompt})
            if answer.status_code == 201:
                accepted[answer.json()["id"]] = prompt
            else:
                refused_rest.append(answer)
            continue
        before, known = len(_chat_replies(bot_api)), {j["id"] for j in svc.jobs()}
        bot_api.send_text(FRIEND, prompt)

        def outcome() -> list[str]:
            new = [j["id"] for j in svc.jobs() if j["id"] not in known]  # noqa: B023
            refusals = [t for t in _chat_replies(bot_api)[before:] if "for today" in t]  # noqa: B023
            return new or refusals

        found = bot_api.wait_for(outcome, what="a job or a refusal")[0]
        if "for today" in found:
            refused_chat.append(found)
        else:
            accepted[found] = prompt
    assert len(accepted) == 2 * PER_DAY  # the failed job did not count: REST still had all 10
    assert len(refused_rest) == 15 - PER_DAY and len(refused_chat) == 15 - PER_DAY
    assert all(r.status_code == 429 and "jobs for today" in r.json()["detail"] for r in refused_rest)
    assert all("used your 10 videos for today" in text for text in refused_chat), refused_chat
    for job_id, prompt in accepted.items():
        job = svc.wait_status(job_id, "succeeded", timeout=300)
        assert job["parameters"]["prompt"] == prompt  # the record
        assert job["result"]["prompt"] == prompt  # what the notebook itself saw, written back by it
        sent = json.loads((svc.data_dir / "jobs" / job_id / "parameters.json").read_text(encoding="utf-8"))
        assert sent["prompt"] == prompt


def test_a_failure_before_the_notebook_runs_has_its_real_cause_and_costs_no_quota(tmp_path: Path) -> None:
    bot_api = FakeBotApi().start()
    svc = ServiceProcess(tmp_path / "svc", bot_api, jobs_per_day=1, kernel_name="no-such-kernel").start()
    try:
        for _ in range(2):  # a quota of one job a day: the first failure did not use it up
            created = svc.api.post("/api/jobs", json={"prompt": "a boat 🚣"})
            assert created.status_code == 201, created.text
            job = svc.wait_status(created.json()["id"], "failed")
            assert "no-such-kernel" in job["error"] and "papermill exited" not in job["error"], job["error"]
    finally:
        svc.stop()
        bot_api.stop()
