"""Stereo from depth at 1920x1080 per eye on the CPU: vidfarm's vectorised torch DIBR against a naive per-pixel
reference written here (same rules: nearest pixel wins, holes filled from the background side by mirroring), plus
the modelled GPU time for a 30 s VR180 5.7K video.

The naive reference runs on a strip of rows and is scaled to a full frame (its cost is linear in pixels); the two are
also compared pixel for pixel on that strip. Torch lives in ComfyUI's venv, so run it with that interpreter:

    ~/.cache/vidfarm/comfyui-0.3.75/venv/bin/python benchmarks/stereo.py [--frames 4] [--rows 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "custom_nodes" / "vidfarm"))
import vr_geometry as geo  # noqa: E402 - the node pack's torch module, loaded without ComfyUI

W, H = 1920, 1080
BASELINE, CONVERGENCE = 0.03, 0.5

# The GPU model (all [I]: assumptions, not measurements). DIBR is memory-bound: counting the passes in
# vr_geometry.render_eye gives ~50 reads/writes of 8-byte values per eye-pixel (int64 keys and indices).
BYTES_PER_EYE_PIXEL = 50 * 8 * 2
GPU_BANDWIDTH = 3.35e12 * 0.6  # H100 SXM HBM3 3.35 TB/s at 60% of peak
VR180_57K = (5760, 2880)  # SBS, 2880x2880 per eye: Quest's H.264 ceiling (reference video.md §9)
SECONDS, FPS = 30, 30


def scene(frames: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(frames, height, W, 3, generator=gen)
    xs = torch.arange(W).view(1, 1, W)
    ys = torch.arange(height).view(1, height, 1)
    nearness = (0.3 + 0.2 * torch.sin(xs / 97.0) * torch.cos(ys / 41.0)).expand(frames, height, W).clone()
    nearness[:, :, 600:1100] = 0.95  # a near slab: real disocclusions at its edges
    return images, nearness


def naive_eye(near: list[list[float]], shift: list[list[float]]) -> list[list[int]]:
    """Per-pixel loops; returns the source column chosen for every output pixel (image rows are looked up)."""
    out = []
    for y, row_near in enumerate(near):
        best = [-1] * W
        for x in range(W):
            t = round(x + shift[y][x])
            if 0 <= t < W:
                key = int(min(max(row_near[x], 0.0), 1.0) * geo.NEARNESS_LEVELS) * W + x
                best[t] = max(best[t], key)
        src = [b % W if b >= 0 else -1 for b in best]
        warped_near = [row_near[s] if s >= 0 else 0.0 for s in src]
        out.append([_naive_fill(src, warped_near, x) for x in range(W)])
    return out


def _naive_fill(src: list[int], near: list[float], x: int) -> int:
    if src[x] >= 0:
        return src[x]
    left = next((i for i in range(x - 1, -1, -1) if src[i] >= 0), -1)
    right = next((i for i in range(x + 1, W) if src[i] >= 0), W)
    if left < 0 and right >= W:
        return x
    use_left = left >= 0 and (right >= W or near[left] <= near[right])
    edge = left if use_left else right
    mirror = 2 * left + 1 - x if use_left else 2 * right - 1 - x
    if 0 <= mirror < W and src[mirror] >= 0 and near[mirror] <= near[edge] + geo.BACKGROUND_TOLERANCE:
        return src[mirror]
    return src[edge]


def vector_eye_columns(near: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The same choice made by vr_geometry, read back as source columns (index image = column numbers)."""
    index = torch.arange(W, dtype=torch.float64).view(1, 1, W, 1).expand(*near.shape, 1).contiguous()
    columns, _ = geo.render_eye(index, near, shift, wrap=False)
    return columns[..., 0].round().long()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="frames timed with the torch version")
    parser.add_argument("--rows", type=int, default=12, help="rows run through the naive reference")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {W}x{H} per eye, baseline {BASELINE}")

    images, nearness = scene(args.frames, H)
    geo.stereo_from_depth(images[:1], nearness[:1], baseline=BASELINE, convergence=CONVERGENCE)  # warm-up
    began = time.perf_counter()
    geo.stereo_from_depth(images, nearness, baseline=BASELINE, convergence=CONVERGENCE)
    vector_s = (time.perf_counter() - began) / args.frames
    print(f"vidfarm torch DIBR   {1 / vector_s:8.3f} stereo frames/s  ({vector_s * 1000:.0f} ms per frame, both eyes)")

    _, strip_near = scene(1, args.rows)
    shift = geo.disparity_pixels(strip_near, baseline=BASELINE, convergence=CONVERGENCE) / 2
    began = time.perf_counter()
    for sign in (1, -1):
        naive = naive_eye(strip_near[0].tolist(), (sign * shift[0]).tolist())
    naive_s = (time.perf_counter() - began) * H / args.rows
    print(
        f"naive per-pixel      {1 / naive_s:8.3f} stereo frames/s  ({naive_s:.1f} s per frame, from {args.rows} rows)"
    )
    agree = (vector_eye_columns(strip_near, -shift)[0] == torch.tensor(naive)).float().mean().item()
    print(f"same pixels chosen:  {agree:.2%} of the strip")
    print(f"ratio torch / naive: {naive_s / vector_s:.0f}x faster")

    eye_pixels = (VR180_57K[0] // 2) * VR180_57K[1]
    frames = SECONDS * FPS
    gpu_s = frames * 2 * eye_pixels * BYTES_PER_EYE_PIXEL / GPU_BANDWIDTH
    cpu_s = frames * vector_s * (2 * eye_pixels) / (2 * W * H)
    print(
        f"modelled 30 s VR180 5.7K ({VR180_57K[0]}x{VR180_57K[1]} SBS, {frames} frames): "
        f"H100 DIBR ~{gpu_s:.0f} s [I: {BYTES_PER_EYE_PIXEL} B/eye-pixel at {GPU_BANDWIDTH / 1e12:.1f} TB/s]; "
        f"this CPU ~{cpu_s / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
