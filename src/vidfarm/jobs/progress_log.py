"""A progress channel from a running notebook to whoever started it (the service, a batch runner).

The notebook appends one JSON line per update to `progress_path` (a papermill parameter); the watcher reads new
lines as they come. A file, not a socket: it survives the watcher restarting and needs no port or auth.

    log = ProgressLog(progress_path)            # in the notebook ("" = off)
    log.write("rendering", 0.4, "segment 3/8")
    for event in ProgressLog(path).read_from(offset)  # in the watcher
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vidfarm.comfy.run import Progress


@dataclass(frozen=True)
class ProgressEvent:
    time: float
    stage: str
    fraction: float
    detail: str = ""
    keyframes: list[str] | None = None  # all keyframe thumbnails so far, on the lines where the list grew


class ProgressLog:
    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def write(self, stage: str, fraction: float, detail: str = "", keyframes: list[str] | None = None) -> None:
        if self.path is None:
            return
        event = asdict(ProgressEvent(time.time(), stage, round(fraction, 4), detail, keyframes or None))
        line = json.dumps({k: v for k, v in event.items() if v is not None})
        with self.path.open("a", encoding="utf-8") as handle:  # one write per line: readers never see half a line
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def on_progress(self, progress: Progress) -> None:
        """Use as a PromptRun's on_progress."""
        detail = progress.node_class or ""
        if progress.steps:
            detail += f" step {progress.step}/{progress.steps}"
        self.write(progress.stage, progress.fraction, detail.strip())

    def read_from(self, offset: int = 0) -> tuple[list[ProgressEvent], int]:
        """Complete lines written after `offset`, and the offset to continue from."""
        if self.path is None or not self.path.exists():
            return [], offset
        with self.path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        events = [ProgressEvent(**json.loads(line)) for line in data[:end].splitlines() if line.strip()]
        return events, offset + end
