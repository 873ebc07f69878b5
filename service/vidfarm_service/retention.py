"""The service's periodic sweep of its data folder (the policy and the layout: vidfarm.jobs.retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from vidfarm.jobs.retention import JobLife, Policy, Swept, sweep
from vidfarm_service.jobs import JobStore

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, store: JobStore, data_dir: Path, policy: Policy, *, every_seconds: float) -> None:
        self.store = store
        self.data_dir = data_dir
        self.policy = policy
        self.every_seconds = every_seconds
        self._task: asyncio.Task[None] | None = None

    def sweep_once(self, *, now: float | None = None) -> Swept:
        lives = [
            JobLife(
                job.id,
                job.finished if job.status.finished else None,
                str(job.parameters.get("image") or ""),
                str(job.parameters.get("last_image") or ""),
            )
            for job in self.store.all()
        ]
        swept = sweep(self.data_dir, lives, self.policy, now=now)
        if swept.removed:
            log.info("retention: deleted %d paths, %.1f MB", len(swept.removed), swept.freed_bytes / 1e6)
        return swept

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await asyncio.to_thread(self.sweep_once)
            except Exception:  # a sweep failing (a file busy) must not stop the next one
                log.exception("retention sweep failed")
            await asyncio.sleep(max(1.0, self.every_seconds - (time.monotonic() - started)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vidfarm-retention")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
