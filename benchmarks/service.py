"""What the phone service adds to a job, against running the same notebook with papermill directly.

1. Overhead per job: the same pipeline-contract notebook (tests/data/fake_pipeline.ipynb: a fixed, CPU-cheap
   "render" of --job-seconds, so the machine's noise is not a 2-core ComfyUI render's noise) run by
   `python -m papermill` directly, and through the service (Telegram text -> job -> status succeeded).
   Prints the ratio (target <= 1.05 for a 30 s job) and the time from the message to the job's start.
2. API latency: GET /api/jobs/{id} p50/p99 while 8 jobs run at once, against the same reads on an idle service.

    .venv/bin/python benchmarks/service.py [--job-seconds 30] [--reads 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.telegram import FakeBotApi  # noqa: E402
from tests.service.harness import FAKE_NOTEBOOK, FRIEND, ServiceProcess  # noqa: E402

SIZE = {"width": 320, "height": 180}


def direct_run(folder: Path, seconds: float) -> float:
    parameters = {
        **SIZE,
        "seconds": seconds,
        "out_dir": str(folder / "out"),
        "result_path": str(folder / "r.json"),
        "progress_path": str(folder / "p.jsonl"),
        "job_id": f"direct-{time.monotonic_ns()}",
    }
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(FAKE_NOTEBOOK),
            str(folder / "out.ipynb"),
            "-y",
            json.dumps(parameters),
            "--no-progress-bar",
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    return time.perf_counter() - began


def service_run(bot_api: FakeBotApi, service: ServiceProcess) -> tuple[float, float]:
    """(message -> succeeded, message -> running) for one Telegram text."""
    known = {j["id"] for j in service.jobs()}
    began = time.time()
    bot_api.send_text(FRIEND, "a benchmark boat")
    job_id = bot_api.wait_for(lambda: [j["id"] for j in service.jobs() if j["id"] not in known], what="the job")[0]
    job = service.wait_status(job_id, "succeeded", timeout=600)
    return job["finished"] - began, job["started"] - began


def read_latencies(service: ServiceProcess, path: str, reads: int) -> list[float]:
    timings = []
    for _ in range(reads):
        began = time.perf_counter()
        service.api.get(path).raise_for_status()
        timings.append((time.perf_counter() - began) * 1000)
    return sorted(timings)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-seconds", type=float, default=30.0, help="wall-clock length of the notebook's render")
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    video_seconds = args.job_seconds * 4  # the fake notebook renders 2 s of video in 0.5 s
    work = Path(tempfile.mkdtemp(prefix="vidfarm-bench-"))
    bot_api = FakeBotApi().start()
    service = ServiceProcess(
        work / "svc",
        bot_api,
        defaults=json.dumps({**SIZE, "seconds": video_seconds}),
        max_seconds=10_000,
        max_parallel=8,
        status_edit_seconds=3,
        jobs_per_day=1000,
        gpu_minutes_per_day=100_000,
    ).start()
    try:
        direct = direct_run(work, video_seconds)
        through, to_start = service_run(bot_api, service)
        print(f"job: fake pipeline notebook, {args.job_seconds:g} s render, 2-core shared CPU")
        print(f"papermill directly   {direct:7.2f} s")
        print(f"through the service  {through:7.2f} s   (message -> job running: {to_start * 1000:.0f} ms)")
        print(f"ratio service / direct: {through / direct:.3f}  (target <= 1.05)")

        done = service.api.post("/api/jobs", json={"prompt": "idle", "seconds": 2}).json()["id"]
        service.wait_status(done, "succeeded")
        idle = read_latencies(service, f"/api/jobs/{done}", args.reads)
        ids = [
            service.api.post("/api/jobs", json={"prompt": f"load {i}", "seconds": 60}).json()["id"] for i in range(8)
        ]
        for job_id in ids:
            service.wait_status(job_id, "running", timeout=120)
        busy = read_latencies(service, f"/api/jobs/{ids[0]}", args.reads)
        health = read_latencies(service, "/healthz", args.reads)  # no store, no auth: what the loaded CPU costs
        running = sum(service.job(i)["status"] == "running" for i in ids)
        print(f"status reads, idle:          p50 {pct(idle, 0.5):6.1f} ms  p99 {pct(idle, 0.99):6.1f} ms")
        print(f"status reads, {running} jobs running: p50 {pct(busy, 0.5):6.1f} ms  p99 {pct(busy, 0.99):6.1f} ms")
        print(f"/healthz, same load:          p50 {pct(health, 0.5):6.1f} ms  p99 {pct(health, 0.99):6.1f} ms")
        print(
            f"ratio busy / idle: p50 {pct(busy, 0.5) / pct(idle, 0.5):.2f}  p99 {pct(busy, 0.99) / pct(idle, 0.99):.2f}"
        )
        for job_id in ids:
            service.api.post(f"/api/jobs/{job_id}/cancel")
        for job_id in ids:
            service.wait_status(job_id, "canceled", "succeeded", timeout=120)
    finally:
        service.stop()
        bot_api.stop()


if __name__ == "__main__":
    main()
