from __future__ import annotations

from pathlib import Path

from vidfarm.comfy.run import Progress
from vidfarm.jobs.progress_log import ProgressLog


def test_events_are_read_incrementally_and_half_lines_wait(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    log = ProgressLog(path)
    log.write("queued", 0.0)
    log.on_progress(
        Progress("id", stage="running", node_class="KSampler", nodes_done=1, nodes_total=2, step=5, steps=10)
    )
    events, offset = ProgressLog(path).read_from(0)
    assert [(e.stage, e.fraction, e.detail) for e in events] == [
        ("queued", 0.0, ""),
        ("running", 0.75, "KSampler step 5/10"),
    ]
    with path.open("a") as handle:
        handle.write('{"time": 1, "stage": "fini')
    assert ProgressLog(path).read_from(offset) == ([], offset)


def test_disabled_log_writes_nothing(tmp_path: Path) -> None:
    ProgressLog("").write("queued", 0.0)
    assert not list(tmp_path.iterdir())
    assert ProgressLog(None).read_from(0) == ([], 0)
