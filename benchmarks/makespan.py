"""Makespan of a 30 s video with 1, 2, 4 and 8 workers against its lower bound, and the modelled real wall-clock.

The real Dispatcher drives simulated ComfyUI workers (benchmarks/sim_worker.py) whose keyframe and segment times
come from ../shared/reference/video.md (§5 configs B and C), scaled so one minute of GPU time is one second here,
with a deterministic +-10 % host variance. Lower bound = max(critical path, total work / workers).

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

from vidfarm.dispatch import Dispatcher, Worker  # noqa: E402
from vidfarm.local_comfy import REPO  # noqa: E402
from vidfarm.long_video import build_tasks  # noqa: E402
from vidfarm.plan import make_plan  # noqa: E402
from vidfarm.recipe import find_recipe  # noqa: E402
from vidfarm.workflow.declaration import find_declaration  # noqa: E402

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


def run(workers: int, keyframe: float, segment: float, frames: int, folder: Path) -> dict[str, float]:
    image, video = sample_files(folder)
    sims = [SimulatedWorker(durations_for(keyframe, segment), image, video) for _ in range(workers)]
    servers = [serve(s) for s in sims]
    try:
        plan = make_plan(prompt="a paper boat", seconds=30, fps=16, width=2560, height=1440, segment_frames=frames)
        recipe = find_recipe(REPO / "workflows" / "recipes.toml", "standin")
        tasks = build_tasks(plan, recipe, seed=0, photo=False)
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
    keys = [
        durations_for(keyframe, segment)({"k": {"class_type": "SaveImage", "inputs": t.values}})
        for t in tasks
        if t.id.startswith("key")
    ]
    segs = [
        durations_for(keyframe, segment)({"s": {"class_type": "VidfarmStandInFirstLast", "inputs": t.values}})
        for t in tasks
        if t.id.startswith("seg")
    ]
    critical = max(keys) + max(segs)
    bound = max(critical, (sum(keys) + sum(segs)) / workers)
    return {"makespan": makespan, "bound": bound, "segments": len(segs), "keyframes": len(keys)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        name, figures = next(iter(FIGURES.items()))
        print(f"30 s at 2560x1440, 16 fps, keyframes strategy; task times from {name}, 1 GPU-minute = 1 s here")
        print(f"{'workers':>7} {'makespan s':>11} {'bound s':>8} {'ratio':>6} {'speed-up':>9}")
        single = 0.0
        for n in (1, 2, 4, 8, 9):
            r = run(n, figures["keyframe"], figures["segment"], int(figures["frames"]), folder)
            single = single or r["makespan"]
            print(
                f"{n:>7} {r['makespan']:>11.2f} {r['bound']:>8.2f} {r['makespan'] / r['bound']:>6.3f} "
                f"{single / r['makespan']:>8.2f}x"
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
