"""The service as a real process (`python -m vidfarm_service`) talking to the fake Bot API, so tests can kill it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO
from tests.fakes.telegram import TOKEN, FakeBotApi
from tests.support.waiting import wait_for

API_TOKEN = "api-token-for-tests-0123456789"
LINK_SECRET = "link-secret-for-tests-0123456789"
WEBHOOK_SECRET = "webhook-secret-for-tests-0123"
ADMIN, FRIEND, STRANGER = 1001, 1002, 9999
FAKE_NOTEBOOK = REPO / "tests" / "data" / "fake_pipeline.ipynb"
REAL_NOTEBOOK = REPO / "notebooks" / "10_long_video.ipynb"
SMALL = {"seconds": 4.0, "width": 320, "height": 180, "recipe": "standin"}
FINISHED = ("succeeded", "failed", "canceled")  # a job in one of these stays there


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServiceProcess:
    def __init__(self, data_dir: Path, bot: FakeBotApi, *, notebook: Path = FAKE_NOTEBOOK, **env: Any) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "VIDFARM_SERVICE_API_TOKEN": API_TOKEN,
            "VIDFARM_SERVICE_LINK_SECRET": LINK_SECRET,
            "VIDFARM_SERVICE_PUBLIC_URL": self.url,
            "VIDFARM_SERVICE_TELEGRAM_TOKEN": TOKEN,
            "VIDFARM_SERVICE_TELEGRAM_BASE_URL": bot.base_url,
            "VIDFARM_SERVICE_TELEGRAM_BASE_FILE_URL": bot.base_file_url,
            "VIDFARM_SERVICE_TELEGRAM_POLL_TIMEOUT": "1",
            "VIDFARM_SERVICE_ADMIN_IDS": json.dumps([ADMIN]),
            "VIDFARM_SERVICE_ALLOWED_IDS": json.dumps([FRIEND]),
            "VIDFARM_SERVICE_DATA_DIR": str(data_dir),
            "VIDFARM_SERVICE_NOTEBOOK": str(notebook),
            "VIDFARM_SERVICE_STATUS_EDIT_SECONDS": "0.5",
            "VIDFARM_SERVICE_CANCEL_GRACE_SECONDS": "5",
            "VIDFARM_SERVICE_DEFAULTS": json.dumps(SMALL),
            **{f"VIDFARM_SERVICE_{k.upper()}": str(v) for k, v in env.items()},
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60)

    def start(self) -> ServiceProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "service.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidfarm_service", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
        )
        wait_for(self._healthy, "the service answers /healthz", every=0.2, ignore=(httpx.HTTPError,),
                 describe=lambda: self.log()[-3000:])  # fmt: skip
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the service exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200

    def log(self) -> str:
        path = self.data_dir / "service.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self) -> str:
        """The end of the log without the access lines of the tests' own polling."""
        lines = [line for line in self.log().splitlines() if '"GET /api/jobs' not in line and "/healthz" not in line]
        return "\n".join(lines)[-3000:]

    def kill(self) -> None:
        """SIGKILL: the service dies mid-job with no chance to clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.api.close()

    def job(self, job_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.api.get(f"/api/jobs/{job_id}").raise_for_status().json()
        return data

    def jobs(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.api.get("/api/jobs").raise_for_status().json()
        return data

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 300) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def reached() -> dict[str, Any] | None:
            seen[:] = [self.job(job_id)]
            if seen[0]["status"] in statuses:
                return seen[0]
            assert seen[0]["status"] not in FINISHED, describe()  # it ended otherwise: no use waiting on
            return None

        def describe() -> str:
            job = seen[0] if seen else {"status": "?", "error": ""}
            return f"job {job_id} is {job['status']}: {job['error']}\n{self.log_tail()}"

        found: dict[str, Any] = wait_for(reached, f"job {job_id} {' or '.join(statuses)}", timeout=timeout,
                                         every=0.2, describe=describe)  # fmt: skip
        return found
