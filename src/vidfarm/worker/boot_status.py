"""A worker's start-up, in view before ComfyUI answers: `worker-start` writes the stage to a small JSON file
(`VIDFARM_BOOT_STATUS`), the model fetcher adds bytes done of bytes to fetch while it downloads, and the token
proxy serves the file at `GET /vidfarm/boot` (behind the same token) from the moment the worker is reachable. The
fleet's readiness probe reads it, so a person sees "fetching models 42 %" rather than a silent cold start.

    {"stage": "models", "done_bytes": 4.2e9, "total_bytes": 1.0e10, "files_done": 1, "files_total": 4}
    {"stage": "comfyui"}                       (models present, ComfyUI starting)

The bytes are counted from the files on disk (huggingface_hub's `*.incomplete` files and our `*.part` files under
the staging folder, finished files at their place), so every way of downloading counts without hooks into it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV = "VIDFARM_BOOT_STATUS"
STAGES = ("starting", "models", "comfyui")  # then ComfyUI answers itself: the file is no longer read


def write(path: Path | None, **fields: Any) -> None:
    """Replace the file at once (a reader never sees half of it); nothing without a path."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(fields), encoding="utf-8")
    os.replace(partial, path)


def read(path: Path | None) -> dict[str, Any]:
    """What the worker last wrote; {"stage": "starting"} before anything was."""
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        data = {}
    return data if isinstance(data, dict) and data.get("stage") in STAGES else {"stage": "starting"}


def bytes_under(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # finished and moved meanwhile: counted at its place
                continue
    return total


class DownloadMeter:
    """Writes the models stage every `interval` seconds while downloads run: `done()` gives (bytes, files) done."""

    def __init__(self, path: Path | None, total_bytes: int, files_total: int, done: Callable[[], tuple[int, int]],
                 *, interval: float = 1.0) -> None:  # fmt: skip
        self.path, self.total, self.files_total = path, total_bytes, files_total
        self.done, self.interval = done, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="boot-status", daemon=True)

    def __enter__(self) -> DownloadMeter:
        if self.path is not None:
            self._write()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.path is not None and exc[0] is None:
            write(self.path, stage="models", done_bytes=self.total, total_bytes=self.total,
                  files_done=self.files_total, files_total=self.files_total)  # fmt: skip

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()

    def _write(self) -> None:
        done_bytes, files_done = self.done()
        write(self.path, stage="models", done_bytes=min(done_bytes, self.total), total_bytes=self.total,
              files_done=files_done, files_total=self.files_total)  # fmt: skip
