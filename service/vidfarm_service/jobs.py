"""The job queue's state in SQLite: it survives restarts. Jobs, the Telegram allowlist, per-user option choices.

Status moves: queued -> running -> succeeded | failed; queued/running -> canceling -> canceled.
On start the runner puts `running` jobs back to `queued` (same job_id: the notebook reuses finished segments).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a free slot, in submission order
    RUNNING = "running"  # its notebook is executing
    SUCCEEDED = "succeeded"  # the notebook finished and wrote its result JSON
    FAILED = "failed"  # the notebook raised; `error` says why, the executed notebook shows where
    CANCELING = "canceling"  # cancel asked; the notebook is being interrupted
    CANCELED = "canceled"  # stopped on request; nothing more runs

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass
class Job:
    id: str
    owner: str  # "api" or "tg:<user id>"
    parameters: dict[str, Any]
    status: JobStatus = JobStatus.QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stage: str = "queued"
    fraction: float = 0.0
    detail: str = ""
    error: str = ""
    result: dict[str, Any] | None = None
    chat_id: int | None = None  # Telegram: where the status message lives
    status_message_id: int | None = None
    pids: list[int] = field(default_factory=list)  # papermill, kernel: killed if a restart finds them alive
    attempts: int = 0
    rendered: bool = False  # its notebook reported progress (> 0): it used workers, so it counts against the quota
    keyframes: list[str] = field(default_factory=list)  # thumbnails of its finished keyframes (files in its folder)
    lang: str = ""  # the chat's language, for what the service itself writes (empty: the prompt's)

    @property
    def counts_against_quota(self) -> bool:
        """A job canceled before it started, or failed before it rendered anything (bad input the checks missed,
        a broken install), cost nothing: it does not use up the owner's jobs for the day."""
        if self.status is JobStatus.CANCELED:
            return self.started is not None
        if self.status is JobStatus.FAILED:
            return self.rendered
        return True

    @property
    def gpu_seconds(self) -> float:
        if self.result and isinstance(self.result.get("workers"), dict) and self.result["workers"]:
            return float(sum(self.result["workers"].values()))
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "status": self.status.value,
            "parameters": self.parameters,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "stage": self.stage,
            "fraction": self.fraction,
            "detail": self.detail,
            "error": self.error,
            "result": self.result,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER, owner TEXT, created REAL, body TEXT);
CREATE TABLE IF NOT EXISTS allowed (user_id INTEGER PRIMARY KEY, added_by INTEGER, added REAL);
CREATE TABLE IF NOT EXISTS choices (user_id INTEGER PRIMARY KEY, body TEXT);
"""


class JobStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # jobs
    def add(self, job: Job) -> Job:
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute(
                "INSERT INTO jobs (id, seq, owner, created, body) VALUES (?, ?, ?, ?, ?)",
                (job.id, seq, job.owner, job.created, _dump(job)),
            )
        return job

    def save(self, job: Job) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET body = ? WHERE id = ?", (_dump(job), job.id))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _load(row[0]) if row else None

    def recent(self, *, owner: str | None = None, limit: int = 50) -> list[Job]:
        query, args = "SELECT body FROM jobs", []
        if owner is not None:
            query, args = query + " WHERE owner = ?", [owner]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
        return [_load(r[0]) for r in rows]

    def with_status(self, *statuses: JobStatus) -> list[Job]:
        """Jobs in any of `statuses`, oldest first (the queue order)."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM jobs ORDER BY seq").fetchall()
        return [job for job in map(_load, (r[0] for r in rows)) if job.status in statuses]

    def all(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM jobs ORDER BY seq").fetchall()
        return [_load(r[0]) for r in rows]

    def since(self, owner: str, start: float) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM jobs WHERE owner = ? AND created >= ? ORDER BY seq", (owner, start)
            ).fetchall()
        return [_load(r[0]) for r in rows]

    # telegram allowlist and option choices
    def allow(self, user_id: int, *, added_by: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO allowed (user_id, added_by, added) VALUES (?, ?, ?)",
                (user_id, added_by, time.time()),
            )

    def deny(self, user_id: int) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM allowed WHERE user_id = ?", (user_id,)).rowcount > 0

    def is_allowed(self, user_id: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM allowed WHERE user_id = ?", (user_id,)).fetchone() is not None

    def choices(self, user_id: int) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT body FROM choices WHERE user_id = ?", (user_id,)).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_choices(self, user_id: int, choices: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO choices (user_id, body) VALUES (?, ?)", (user_id, json.dumps(choices))
            )


def _dump(job: Job) -> str:
    body = {name: getattr(job, name) for name in job.__dataclass_fields__}
    body["status"] = job.status.value
    return json.dumps(body)


def _load(text: str) -> Job:
    body = json.loads(text)
    body["status"] = JobStatus(body["status"])
    return Job(**body)
