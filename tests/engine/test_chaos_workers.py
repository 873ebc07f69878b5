"""Chaos on real workers during a stand-in long video: kill -9 one mid-segment; SIGSTOP one, then SIGCONT it.

Reuses the head (comfy_server) and the fixtures of test_long_video_faults. The assertions are on what happened
(which worker redid what, why each failure was recorded, what ran where), never on how long it took. The stopped
worker stays stopped until its segment was handed to the other worker, then for at most `VIDFARM_CHAOS_HANG_S`
(60 s, as the issue asks; a short hang_timeout so the hang is seen quickly); it is resumed sooner when the other
worker has done half of the 30 segments alone: rejoining needs work left to rejoin. On a fast machine the other
worker renders a stand-in segment in about 0.5 s, so it has done about 8 by the time the 4 s hang is seen; the rest
is left for a resumed worker to come back to, which takes it a few polls, on fast and slow machines alike.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import pool_json
from tests.engine.test_long_video_faults import Job, is_segment, own_workers, report_of, running_segment, video_frames
from tests.support.waiting import hold, wait_for
from vidfarm.comfy import ComfyClient
from vidfarm.comfy.local import LocalComfy

pytestmark = pytest.mark.engine
__all__ = ["own_workers"]  # the fixture, imported for pytest
HANG_S = float(os.environ.get("VIDFARM_CHAOS_HANG_S", "60"))
PROMPT_ID = re.compile(r"prompt ([0-9a-f-]{36})")


def successes(client: ComfyClient) -> set[str]:
    history = client.http.get_json("/history")
    return {pid for pid, e in history.items() if e.get("status", {}).get("status_str") == "success"}


def segments_done(client: ComfyClient) -> int:
    history = client.http.get_json("/history")
    return sum(
        1 for e in history.values() if e.get("status", {}).get("status_str") == "success" and is_segment(e["prompt"][2])
    )


def task_of(graph: dict[str, Any]) -> str:
    """What a prompt renders, whichever run sent it: its graph without the per-run output prefixes."""
    inputs = {i: {k: v for k, v in n["inputs"].items() if k != "filename_prefix"} for i, n in graph.items()}
    return json.dumps({i: {**n, "inputs": inputs[i]} for i, n in graph.items()}, sort_keys=True)


def took_over(client: ComfyClient, graph: dict[str, Any]) -> bool:
    """The worker runs, queues or ran this very segment (the same task, sent again)."""
    queue = client.http.get_json("/queue")
    graphs = [item[2] for item in queue["queue_running"] + queue["queue_pending"]]
    graphs += [e["prompt"][2] for e in client.http.get_json("/history").values()]
    return any(task_of(g) == task_of(graph) for g in graphs)


def test_kill_9_mid_segment_is_seen_as_refused_and_only_that_segment_is_redone_on_the_other_worker(
    comfy_server: LocalComfy, own_workers: list[LocalComfy], tmp_path: Path
) -> None:
    job = Job(
        comfy_server, tmp_path, workers=pool_json(own_workers), down_grace=3.0, job_id="chaos-kill", seconds=12.0
    ).start()
    wait_for(lambda: running_segment(own_workers[1]), "test-1 renders a segment")
    assert own_workers[1].process is not None
    own_workers[1].process.send_signal(signal.SIGKILL)
    result = job.finish()
    assert video_frames(result) == 96
    report = report_of(result)
    failures = report["workers"]["test-1"]["failures"]
    # seen dead by its refused connections (down_grace), not after hang_timeout (300 s by default): one failure
    assert len(failures) == 1 and ": ServerRefused: " in failures[0], failures
    failed_task = failures[0].split(": ", 1)[0]
    moved = {tid: t for tid, t in report["tasks"].items() if t["attempts"] > 1}
    assert set(moved) == {failed_task}, moved  # the segment it died on was redone, and nothing else
    redone = moved[failed_task]
    assert (redone["worker"], redone["attempts"], redone["reused"]) == ("test-0", 2, False)
    assert report["workers"]["test-1"]["rejoined"] == 0  # a killed worker never came back


def test_stopped_then_resumed_worker_has_its_stale_prompt_cancelled_and_works_again(
    comfy_server: LocalComfy, own_workers: list[LocalComfy], tmp_path: Path
) -> None:
    hung, other = own_workers[0], ComfyClient(own_workers[1].url)
    # 60 s at 8 fps in 17-frame segments: 30 segments, enough for the stopped worker to come back to
    values = {"hang_timeout": 4.0, "job_id": "chaos-hang", "seconds": 60.0, "segment_frames": 17}
    job = Job(comfy_server, tmp_path, workers=pool_json(own_workers), **values).start()
    segment = wait_for(lambda: running_segment(hung), "test-0 renders a segment")
    assert hung.process is not None
    client = ComfyClient(hung.url)
    before = successes(client)
    hung.process.send_signal(signal.SIGSTOP)
    wait_for(lambda: took_over(other, segment), "the stopped worker's segment handed to the other worker")
    hold(lambda: segments_done(other) >= 15, at_most=HANG_S)  # stopped a while longer; resumed while work is left
    hung.process.send_signal(signal.SIGCONT)
    result = job.finish()
    assert video_frames(result) == 480
    report = report_of(result)
    stats = report["workers"]["test-0"]
    stale = {m.group(1) for f in stats["failures"] for m in [PROMPT_ID.search(f)] if m}
    assert stale, stats["failures"]
    assert stats["rejoined"] >= 1 and not stats["retired"]
    moved = [tid for tid, t in report["tasks"].items() if t["attempts"] > 1]
    assert moved and all(report["tasks"][tid]["worker"] == "test-1" for tid in moved)
    assert len(successes(client) - before - stale) >= 1  # it rendered again after it was resumed
    for prompt_id in stale:  # cancelled there for real: it did not run to success behind our back
        entry = client.history(prompt_id)
        status = (entry or {}).get("status", {})
        assert status.get("status_str") != "success" or any(
            name == "execution_interrupted" for name, _ in status.get("messages", [])
        ), status
        assert prompt_id not in sum(client.queue(), [])
