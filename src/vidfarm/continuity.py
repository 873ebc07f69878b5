"""How well a long video holds together: one subject, one world, across every seam and every keyframe.

Two figures, each between two pictures scaled to the same small size (`MEASURE_WIDTH`):
- `histogram_distance`: colour — total-variation distance of the per-channel histograms (`BINS` bins), 0 = the
  same colours in the same amounts, 1 = no colour in common. It ignores where things are.
- `structural_similarity`: layout — SSIM of the luminance over 8x8 blocks, 1 = the same picture, about 0 = unrelated
  pictures. It ignores small colour shifts.

`measure` takes them between the frames either side of every seam (last frame of segment i, first frame of segment
i+1), between keyframe 0 and every later keyframe, and between keyframe 0 and each seam frame (`drift`: how far the
colours have crept from the anchor). The job report carries the result under `continuity` (docs/long-video.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from vidfarm.errors import OutputInvalid

BINS = 32
MEASURE_WIDTH = 256
BLOCK = 8
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over R, G, B of half the L1 distance between normalised histograms ([H, W, 3] uint8-range arrays)."""
    total = 0.0
    for channel in range(3):
        ha = np.histogram(a[..., channel], bins=BINS, range=(0, 256))[0] / a[..., channel].size
        hb = np.histogram(b[..., channel], bins=BINS, range=(0, 256))[0] / b[..., channel].size
        total += 0.5 * float(np.abs(ha - hb).sum())
    return total / 3


def _blocks(luma: np.ndarray) -> np.ndarray:
    height, width = (luma.shape[0] // BLOCK) * BLOCK, (luma.shape[1] // BLOCK) * BLOCK
    cut = luma[:height, :width]
    return cut.reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK * BLOCK)


def structural_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luminance over non-overlapping 8x8 blocks (same-size [H, W, 3] arrays, 0..255)."""
    weights = np.array([0.299, 0.587, 0.114])
    x, y = _blocks(a.astype(np.float64) @ weights), _blocks(b.astype(np.float64) @ weights)
    mx, my = x.mean(axis=1), y.mean(axis=1)
    vx, vy = x.var(axis=1), y.var(axis=1)
    cov = ((x - mx[:, None]) * (y - my[:, None])).mean(axis=1)
    ssim = ((2 * mx * my + _C1) * (2 * cov + _C2)) / ((mx**2 + my**2 + _C1) * (vx + vy + _C2))
    return float(ssim.mean())


def _small(picture: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(picture.convert("RGB").resize(size, Image.Resampling.BILINEAR), np.float64)


def measure_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MEASURE_WIDTH / width)
    return max(BLOCK, round(width * scale)), max(BLOCK, round(height * scale))


def end_frames(video: Path) -> tuple[Image.Image, Image.Image]:
    """The first and the last frame of a video file."""
    first = last = None
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            last = Image.fromarray(frame.to_ndarray(format="rgb24"))
            first = first or last
    if first is None or last is None:
        raise OutputInvalid(f"{video} has no frames; the segment cannot be measured")
    return first, last


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"histogram": round(histogram_distance(a, b), 4), "ssim": round(structural_similarity(a, b), 4)}


def measure(segments: list[Path], keyframes: list[Path]) -> dict[str, Any]:
    """Continuity figures of a job: its segment files in order, and its keyframes (keyframes[0] = the anchor)."""
    ends = [end_frames(path) for path in segments]
    size = measure_size(*ends[0][0].size)
    anchor = _small(Image.open(keyframes[0]), size)
    seams = []
    for i in range(len(ends) - 1):
        before, after = _small(ends[i][1], size), _small(ends[i + 1][0], size)
        seams.append({"seam": i, **compare(before, after), "drift": round(histogram_distance(anchor, before), 4)})
    keys = [{"key": j, **compare(anchor, _small(Image.open(p), size))} for j, p in enumerate(keyframes) if j]
    summary = summarise(seams, keys)
    summary["end_drift"] = round(histogram_distance(anchor, _small(ends[-1][1], size)), 4)
    return {"seams": seams, "keyframes": keys, "summary": summary}


def summarise(seams: list[dict[str, float]], keys: list[dict[str, float]]) -> dict[str, float]:
    summary: dict[str, float] = {}
    if seams:
        summary["seam_histogram_max"] = max(s["histogram"] for s in seams)
        summary["seam_ssim_min"] = min(s["ssim"] for s in seams)
        summary["drift_max"] = max(s["drift"] for s in seams)
    if keys:
        summary["key_histogram_mean"] = round(sum(k["histogram"] for k in keys) / len(keys), 4)
        summary["key_ssim_mean"] = round(sum(k["ssim"] for k in keys) / len(keys), 4)
    return summary
