"""Tiled upscale (VidfarmTiledUpscale) against ComfyUI's built-in nodes, 1280x720 -> 2560x1440, same frames, same run.

- model: the tiny random Compact x2 (made here) through VidfarmTiledUpscale, against ImageUpscaleWithModel + ImageScale
  (lanczos) - ComfyUI's usual way to reach an exact size with a model;
- lanczos: VidfarmTiledUpscale without a model, against ImageScale (lanczos).
Both run on one private CPU ComfyUI started with --cache-none (every run computes everything), alternating, each
timed from the websocket events of its upscale nodes only (the frame source and the sink are left out). Peak memory
is the server's peak RSS (VmHWM, reset before each run) above its RSS at the start of the run. Prints frames per
second, the ratios (> 1 = vidfarm faster / lighter) and the largest pixel difference between the two outputs.

    .venv/bin/python benchmarks/upscale.py [--frames 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vidfarm.comfy import ComfyClient, Progress, PromptRun
from vidfarm.comfy.local import LocalComfy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test-only simulated parts live in tests/support
from tests.support.random_upscale_model import make_random_compact  # noqa: E402

Graph = dict[str, dict[str, Any]]
SRC, DST = (1280, 720), (2560, 1440)
OURS = {"VidfarmTiledUpscale"}
BUILTIN = {"ImageUpscaleWithModel", "ImageScale"}


def source(frames: int) -> Graph:
    w, h = SRC
    return {
        "1": {
            "class_type": "VidfarmStandInVideo",
            "inputs": {"prompt": "bench", "seed": 1, "width": w, "height": h, "frames": frames},
        },
        "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 2, "strength": 0.2}},
    }


def ours(model: str | None) -> Graph:
    inputs: dict[str, Any] = {"images": ["2", 0], "width": DST[0], "height": DST[1], "aspect": "crop"}
    inputs |= {"tile_size": 0, "overlap": 0, "frames_per_step": 0, "memory_budget_mb": 0}
    graph: Graph = {"10": {"class_type": "VidfarmTiledUpscale", "inputs": inputs}}
    if model:
        graph["9"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}}
        inputs["upscale_model"] = ["9", 0]
    return graph


def builtin(model: str | None) -> Graph:
    scale_input: list[Any] = ["2", 0]
    graph: Graph = {}
    if model:
        graph["9"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}}
        graph["11"] = {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["9", 0], "image": ["2", 0]}}
        scale_input = ["11", 0]
    scale = {"image": scale_input, "upscale_method": "lanczos", "width": DST[0], "height": DST[1], "crop": "center"}
    graph["10"] = {"class_type": "ImageScale", "inputs": scale}
    return graph


def sink(save: bool) -> Graph:
    if save:
        return {"20": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "bench/up"}}}
    tiny = {"image": ["10", 0], "upscale_method": "nearest-exact", "width": 8, "height": 8, "crop": "disabled"}
    return {
        "19": {"class_type": "ImageScale", "inputs": tiny},
        "20": {"class_type": "PreviewImage", "inputs": {"images": ["19", 0]}},
    }


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def timed_run(client: ComfyClient, pid: int, graph: Graph, nodes: set[str], dest: Path) -> tuple[float, float]:
    """Seconds spent in `nodes` (from websocket node changes) and peak RSS growth in MiB."""
    marks: list[tuple[float, str | None]] = []

    def on_progress(p: Progress) -> None:
        if not marks or marks[-1][1] != p.node_class:
            marks.append((time.perf_counter(), p.node_class))

    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = memory_kib(pid, "VmRSS")
    PromptRun(client, graph, dest_dir=dest, on_progress=on_progress).wait()
    peak = (memory_kib(pid, "VmHWM") - before) / 1024
    spent = sum(b[0] - a[0] for a, b in zip(marks, marks[1:], strict=False) if a[1] in nodes)
    return spent, peak


def first_frame(client: ComfyClient, graph: Graph, dest: Path) -> np.ndarray:
    result = PromptRun(client, graph, dest_dir=dest).wait()
    path = sorted(o.path for o in result.outputs)[0]
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def compare(client: ComfyClient, pid: int, model: str | None, args: argparse.Namespace, tmp: Path) -> None:
    label = "tiny model x2" if model else "lanczos only "
    timings: dict[str, list[tuple[float, float]]] = {"vidfarm": [], "builtin": []}
    for _ in range(args.rounds):
        for name, graph, nodes in (("vidfarm", ours(model), OURS), ("builtin", builtin(model), BUILTIN)):
            full = {**source(args.frames), **graph, **sink(save=False)}
            timings[name].append(timed_run(client, pid, full, nodes, tmp / name))
    ours_s = statistics.median(t for t, _ in timings["vidfarm"])
    base_s = statistics.median(t for t, _ in timings["builtin"])
    ours_mb = max(m for _, m in timings["vidfarm"])
    base_mb = max(m for _, m in timings["builtin"])
    a = first_frame(client, {**source(1), **ours(model), **sink(save=True)}, tmp / "qa")
    b = first_frame(client, {**source(1), **builtin(model), **sink(save=True)}, tmp / "qb")
    diff = np.abs(a - b)
    print(
        f"{label}: vidfarm {args.frames / ours_s:.2f} fps, built-in {args.frames / base_s:.2f} fps, "
        f"speed ratio {base_s / ours_s:.2f}x; peak memory vidfarm {ours_mb:.0f} MiB, built-in {base_mb:.0f} MiB, "
        f"memory ratio {base_mb / max(ours_mb, 1):.2f}x; pixel difference mean {diff.mean():.2f} max {diff.max()} /255"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with LocalComfy(tmp / "comfy", extra_args=("--cache-none",)) as server:
            model = make_random_compact(server.base_dir / "models", scale=2, seed=1)
            assert server.process is not None
            client = ComfyClient(server.url)
            warm = {**source(1), **ours(model), **sink(save=False)}
            PromptRun(client, warm, dest_dir=tmp / "warm").wait()  # load torch kernels and the model once
            print(f"{args.frames} frames {SRC[0]}x{SRC[1]} -> {DST[0]}x{DST[1]}, {args.rounds} rounds, CPU")
            compare(client, server.process.pid, model, args, tmp)
            compare(client, server.process.pid, None, args, tmp)
            client.close()


if __name__ == "__main__":
    main()
