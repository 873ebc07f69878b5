"""Makespan of a 30 s video on 1..9 workers against its lower bound, for the old plan (independent keyframes) and
the new one (keyframe 0 first, keyframes 1..N derived from it, decision 0070), and the modelled real wall-clock.

The real Dispatcher drives simulated ComfyUI workers (benchmarks/sim_worker.py) whose keyframe and segment times
come from ../shared/reference/video.md (§5 configs B and C), scaled so one minute of GPU time is one second here,
with a deterministic +-10 % host variance. A keyframe edit is charged a whole keyframe (conservative: the Wan edit
runs 8 of 20 steps). Lower bound = max(longest path of the task DAG; total work / workers, plus the idle while only
tasks without inputs can run (key 0 alone); packing: by pigeonhole m = segments - workers * (k - 1) workers run
k = ceil(segments / workers) indivisible segments each, so the busiest runs at least the mean of the m * k shortest,
after the earliest a segment's inputs can be ready), all from the duration of every task as the simulated worker
runs it (the graph the dispatcher sends, filled with the task's values).

    .venv/bin/python benchmarks/makespan.py
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_worker import SimulatedWorker, serve  # noqa: E402

from vidfarm.comfy.local import REPO  # noqa: E402
from vidfarm.render.dispatch import Dispatcher, Task, Worker  # noqa: E402
from vidfarm.render.long_video import build_tasks  # noqa: E402
from vidfarm.render.plan import make_plan  # noqa: E402
from vidfarm.workflow.declaration import find_declaration  # noqa: E402
from vidfarm.workflow.recipe import find_recipe  # noqa: E402

SCALE = 60.0  # one minute of GPU time = one second
# GPU seconds per task, warm workers (video.md §5): keyframe image; segment = generate + upscale + encode.
FIGURES = {
    "8 x RTX 5090 (config C, 61-frame segments)": {"keyframe": 20.0, "segment": 100.0 + 30.0, "frames": 61, "n": 8},
    "6 x H100 (config B, 81-frame segments)": {"keyframe": 12.0, "segment": 60.0 + 20.0, "frames": 81, "n": 6},
}
PLAN_AND_STITCH = 5.0 + 15.0  # seconds on the master (video.md §5 steps 1 and 4), not parallel


def variance(graph: dict[str, Any]) -> float:
    seed = json.dumps(sorted(str(n["inputs"].get("seed", "")) for n in graph.values()))
    return 0.9 + 0.2 * hashlib.sha256(seed.encode()).digest()[0] / 255


def durations_for(keyframe: float, segment: float) -> Any:
    def duration(graph: dict[str, Any]) -> float:
        is_segment = any(n["class_type"] == "VidfarmStandInFirstLast" for n in graph.values())
        return (segment if is_segment else keyframe) / SCALE * variance(graph)

    return duration


def sample_files(folder: Path) -> tuple[Path, Path]:
    image, video = folder / "k.png", folder / "s.mp4"
    Image.new("RGB", (64, 36), (90, 140, 200)).save(image)
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(16))
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for _ in range(4):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((36, 64, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode())
    return image, video


def task_seconds(tasks: list[Task], duration: Any) -> dict[str, float]:
    """What each task costs on a simulated worker: its declared graph, filled as the dispatcher fills it."""
    seconds = {}
    for task in tasks:
        declaration = find_declaration(REPO / "workflows", task.workflow)
        values = {**task.values, **{name: "sim/x.png" for name in task.inputs}}
        seconds[task.id] = duration(declaration.fill(declaration.graph(), values))
    return seconds


def longest_path(tasks: list[Task], seconds: dict[str, float]) -> float:
    """The critical path: the longest chain of dependent tasks (tasks are listed after their inputs)."""
    finish: dict[str, float] = {}
    for task in tasks:
        finish[task.id] = seconds[task.id] + max((finish[d] for d in task.deps), default=0.0)
    return max(finish.values())


def work_bound(tasks: list[Task], seconds: dict[str, float], workers: int) -> float:
    """Total work / workers, less the idle that cannot be avoided: until the first task without inputs ends, only
    such tasks can run (with derived keyframes, key 0 runs alone)."""
    roots = [seconds[t.id] for t in tasks if not t.deps]
    first = min(roots)
    return first + (sum(seconds.values()) - min(len(roots), workers) * first) / workers


def packing_bound(tasks: list[Task], seconds: dict[str, float], workers: int) -> float:
    """Segments are indivisible: at least m = segments - workers * (k - 1) workers run k = ceil(segments / workers)
    of them one after another (pigeonhole), on disjoint segments, so the busiest of those runs at least the mean of
    the m * k shortest; none starts before the earliest a segment's inputs can be ready (8 segments on 6 workers:
    two workers run two segments)."""
    keys = {t.id: t for t in tasks if t.id.startswith("key")}
    ready = {i: seconds[i] + max((seconds[d] for d in t.deps), default=0.0) for i, t in keys.items()}
    segments = [t for t in tasks if t.id.startswith("seg")]
    earliest = min(max((ready[d] for d in t.deps if d in ready), default=0.0) for t in segments)
    rounds = -(-len(segments) // workers)
    doubled = len(segments) - workers * (rounds - 1)
    return earliest + sum(sorted(seconds[t.id] for t in segments)[: doubled * rounds]) / doubled


def run(
    workers: int, keyframe: float, segment: float, frames: int, folder: Path, *, derived: bool = True
) -> dict[str, float]:
    image, video = sample_files(folder)
    sims = [SimulatedWorker(durations_for(keyframe, segment), image, video) for _ in range(workers)]
    servers = [serve(s) for s in sims]
    plan = make_plan(
        prompt="a paper boat", seconds=30, fps=16, width=2560, height=1440, segment_frames=frames, derived_keys=derived
    )
    tasks = build_tasks(plan, find_recipe(REPO / "workflows" / "recipes.toml", "standin"), seed=0, photo=False)
    try:
        dispatcher = Dispatcher(
            [Worker(f"sim{i}", s.url) for i, s in enumerate(servers)],
            lambda n: find_declaration(REPO / "workflows", n),
            folder / f"cache-{workers}-{time.monotonic_ns()}",
            poll_interval=0.5,
        )
        began = time.perf_counter()
        dispatcher.run(tasks)
        makespan = time.perf_counter() - began
    finally:
        for server in servers:
            server.stop()
    seconds = task_seconds(tasks, durations_for(keyframe, segment))
    bound = max(
        longest_path(tasks, seconds), work_bound(tasks, seconds, workers), packing_bound(tasks, seconds, workers)
    )
    keys = sum(1 for t in tasks if t.id.startswith("key"))
    return {"makespan": makespan, "bound": bound, "segments": len(tasks) - keys, "keyframes": keys}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        name, figures = next(iter(FIGURES.items()))
        times = (figures["keyframe"], figures["segment"], int(figures["frames"]))
        print(f"30 s at 2560x1440, 16 fps, keyframes strategy; task times from {name}, 1 GPU-minute = 1 s here")
        print("old = independent keyframes; new = key 0, then keys 1..N derived from it, then the segments")
        print(
            f"{'workers':>7} | {'old s':>6} {'bound':>6} {'ratio':>6} | {'new s':>6} {'bound':>6} {'ratio':>6} "
            f"{'speed-up':>8} | {'new/old':>7}"
        )
        single = 0.0
        for n in range(1, 10):
            old = run(n, *times, folder, derived=False)
            new = run(n, *times, folder)
            single = single or new["makespan"]
            print(
                f"{n:>7} | {old['makespan']:>6.2f} {old['bound']:>6.2f} {old['makespan'] / old['bound']:>6.3f} | "
                f"{new['makespan']:>6.2f} {new['bound']:>6.2f} {new['makespan'] / new['bound']:>6.3f} "
                f"{single / new['makespan']:>7.2f}x | {new['makespan'] / old['makespan']:>7.3f}"
            )
        print("\nmodelled wall-clock of a real 30 s 2560x1440 text-to-video (warm workers, + plan and stitch 20 s):")
        for name, figures in FIGURES.items():
            r = run(int(figures["n"]), figures["keyframe"], figures["segment"], int(figures["frames"]), folder)
            real = r["makespan"] * SCALE + PLAN_AND_STITCH
            print(
                f"  {name}: {r['keyframes']} keyframes + {r['segments']} segments -> {real / 60:.1f} min "
                f"(target < 10, aim < 5)"
            )


if __name__ == "__main__":
    main()
