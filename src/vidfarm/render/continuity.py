"""How well a long video holds together: one subject, one world, across every seam and every keyframe.

Two figures, each between two pictures scaled to the same small size (`MEASURE_WIDTH`):
- `histogram_distance`: colour — total-variation distance of the per-channel histograms (`BINS` bins), 0 = the
  same colours in the same amounts, 1 = no colour in common. It ignores where things are.
- `structural_similarity`: layout — SSIM's structure term (the correlation of the luminance maps) over the whole
  picture scaled to `LAYOUT_WIDTH` pixels wide: where light and dark things are, not fine texture. 1 = the same
  layout, about 0 = unrelated pictures; brightness and contrast changes do not move it (the histogram sees those).

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
LAYOUT_WIDTH = 32
_FLAT = 1e-6


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over R, G, B of half the L1 distance between normalised histograms ([H, W, 3] uint8-range arrays)."""
    total = 0.0
    for channel in range(3):
        ha = np.histogram(a[..., channel], bins=BINS, range=(0, 256))[0] / a[..., channel].size
        hb = np.histogram(b[..., channel], bins=BINS, range=(0, 256))[0] / b[..., channel].size
        total += 0.5 * float(np.abs(ha - hb).sum())
    return total / 3


def _coarse(luma: np.ndarray) -> np.ndarray:
    """Box-average by the whole factor that brings the width nearest LAYOUT_WIDTH."""
    factor = max(1, luma.shape[1] // LAYOUT_WIDTH)
    height, width = max(1, luma.shape[0] // factor) * factor, (luma.shape[1] // factor) * factor
    blocks: np.ndarray = luma[:height, :width].reshape(height // factor, factor, width // factor, factor)
    coarse: np.ndarray = blocks.mean(axis=(1, 3))
    return coarse


def structural_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM's structure term over the whole picture: the correlation of the two luminance maps at LAYOUT_WIDTH."""
    weights = np.array([0.299, 0.587, 0.114])
    x = _coarse(a.astype(np.float64) @ weights).ravel()
    y = _coarse(b.astype(np.float64) @ weights).ravel()
    x, y = x - x.mean(), y - y.mean()
    spread = float(np.sqrt((x * x).sum() * (y * y).sum()))
    if spread < _FLAT:
        return 1.0 if (x * x).sum() < _FLAT and (y * y).sum() < _FLAT else 0.0
    return float((x * y).sum() / spread)


def _small(picture: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(picture.convert("RGB").resize(size, Image.Resampling.BILINEAR), np.float64)


def measure_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MEASURE_WIDTH / width)
    return max(LAYOUT_WIDTH, round(width * scale)), max(1, round(height * scale))


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
    return {"seams": seams, "keyframes": keys, "summary": summarise(seams, keys)}


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


def describe(figures: dict[str, Any] | None) -> str:
    """The continuity figures as a person reads them (the notebook prints this)."""
    if not figures:
        return "continuity: not measured"
    lines = ["continuity (histogram: 0 = same colours; ssim: 1 = same layout; docs/long-video.md):"]
    for seam in figures["seams"]:
        lines.append(
            f"  seam {seam['seam']:>2}: histogram {seam['histogram']:.3f}  ssim {seam['ssim']:.3f}  "
            f"drift from key 0 {seam['drift']:.3f}"
        )
    for key in figures["keyframes"]:
        lines.append(f"  key 0 -> key {key['key']:>2}: histogram {key['histogram']:.3f}  ssim {key['ssim']:.3f}")
    summary = ", ".join(f"{name} {value:.3f}" for name, value in figures["summary"].items())
    lines.append(f"  summary: {summary}")
    return "\n".join(lines)
