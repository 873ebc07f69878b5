"""REST users see only their own jobs: one token per user, each with its own quota; the admin's token sees all.

A real service process (the fast fake pipeline notebook) with two REST users, alice and bob: bob cannot read,
list, cancel, download or link alice's job (it is a 404, as if it did not exist), the admin can."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.telegram import FakeBotApi
from tests.service.harness import API_TOKEN, ServiceProcess

ALICE, BOB = "alice-token-for-tests-0123456789", "bob-token-for-tests-0123456789"
POOL_TOKEN = "the-farms-worker-token-0123456789"  # in DEFAULTS: a REST user must never see it
POOL = json.dumps([{"name": "gpu", "url": "http://127.0.0.1:9", "token": POOL_TOKEN}])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    bot_api = FakeBotApi().start()
    users = json.dumps({"alice": ALICE, "bob": BOB})
    defaults = json.dumps({"seconds": 2, "workers": POOL})
    svc = ServiceProcess(tmp_path / "svc", bot_api, api_users=users, jobs_per_day=1, defaults=defaults)
    yield svc.start()
    svc.stop()
    bot_api.stop()


def _as(svc: ServiceProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_each_rest_user_sees_and_spends_only_their_own(service: ServiceProcess) -> None:
    with _as(service, ALICE) as alice, _as(service, BOB) as bob:
        created = alice.post("/api/jobs", json={"prompt": "alice's boat ⛵"})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert created.json()["owner"] == "api:alice"
        done = service.wait_status(job_id, "succeeded")  # the admin reads every job
        assert done["owner"] == "api:alice"

        assert [j["id"] for j in alice.get("/api/jobs").json()] == [job_id]
        assert bob.get("/api/jobs").json() == []
        record = alice.get(f"/api/jobs/{job_id}/notebook")  # the job's record, readable by its owner
        assert record.status_code == 200 and "alice" in record.text and POOL_TOKEN not in record.text
        assert "&lt;hidden&gt;" in record.text or "<hidden>" in record.text
        assert POOL_TOKEN in (service.data_dir / "jobs" / job_id / "executed.ipynb").read_text()  # redacted, not absent
        paths = ("", "/files/video", "/link", "/notebook")
        for path in (f"/api/jobs/{job_id}{tail}" for tail in paths):
            refused = bob.get(path)
            assert refused.status_code == 404 and "GET /api/jobs lists yours" in refused.json()["detail"], path
            assert alice.get(path).status_code == 200, path
        assert bob.post(f"/api/jobs/{job_id}/cancel").status_code == 404
        assert bob.get("/api/jobs", params={"owner": "api:alice"}).status_code == 403
        assert job_id in [j["id"] for j in service.api.get("/api/jobs", params={"owner": "api:alice"}).json()]

        # one job a day each: alice's second is refused, bob still has his own
        again = alice.post("/api/jobs", json={"prompt": "another boat"})
        assert again.status_code == 429 and "jobs for today" in again.json()["detail"]
        assert bob.post("/api/jobs", json={"prompt": "bob's kite 🪁"}).status_code == 201

    wrong = httpx.get(f"{service.url}/api/jobs", headers={"Authorization": f"Bearer {ALICE}x"})
    assert wrong.status_code == 401 and ALICE not in wrong.text and API_TOKEN not in wrong.text
    assert ALICE not in service.log() and BOB not in service.log()
