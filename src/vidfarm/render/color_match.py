"""Colour matching: hold every frame of a segment to one reference picture's colour statistics (decision 0070).

Per frame and per channel of an opponent colour space (BT.601 YCbCr, linear part), the frame's mean and standard
deviation are moved to the reference's (Reinhard's transfer), blended by `strength`, with the contrast gain kept in
`GAIN_LIMITS` so a flat frame is never blown up. Each frame is matched on its own, so the same frame always comes out
the same: the seam frame two keyframe segments share stays shared, and a chain's handover frame is matched before
the next segment starts from it, so drift cannot pile up.

Plain floats here; `custom_nodes/vidfarm/continuity_nodes.py` (torch, on the worker) and `match_frames` (numpy, for
the head and tests) apply the same coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# RGB (0..1) -> Y, Cb, Cr without the offsets (they cancel in a mean/std transfer); rows are output channels.
RGB_TO_YCC = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
YCC_TO_RGB = (
    (1.0, 0.0, 1.402),
    (1.0, -0.344136, -0.714136),
    (1.0, 1.772, 0.0),
)
GAIN_LIMITS = (0.5, 2.0)
FLAT = 1e-4  # a channel with less spread than this is flat: only its mean moves


def channel_transfer(
    frame_mean: float, frame_std: float, ref_mean: float, ref_std: float, strength: float
) -> tuple[float, float]:
    """(a, b) such that a * x + b moves a channel from the frame's statistics to the reference's, by strength."""
    gain = 1.0 if frame_std < FLAT else min(max(ref_std / frame_std, GAIN_LIMITS[0]), GAIN_LIMITS[1])
    return 1.0 + strength * (gain - 1.0), strength * (ref_mean - frame_mean * gain)


def frame_transfer(
    frame_stats: Sequence[tuple[float, float]], ref_stats: Sequence[tuple[float, float]], strength: float
) -> list[tuple[float, float]]:
    """One (a, b) per channel from (mean, std) per channel of a frame and of the reference."""
    return [channel_transfer(f[0], f[1], r[0], r[1], strength) for f, r in zip(frame_stats, ref_stats, strict=True)]


def _stats(ycc: Any) -> list[tuple[float, float]]:
    flat = ycc.reshape(-1, 3)
    return [(float(m), float(s)) for m, s in zip(flat.mean(axis=0), flat.std(axis=0), strict=True)]


def match_frames(frames: np.ndarray, reference: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """frames [F, H, W, 3] and reference [H', W', 3], floats 0..1 -> the matched frames (numpy twin of the node)."""
    to_ycc, to_rgb = np.array(RGB_TO_YCC, np.float64).T, np.array(YCC_TO_RGB, np.float64).T
    ref_stats = _stats(reference.astype(np.float64) @ to_ycc)
    out = np.empty_like(frames, dtype=np.float64)
    for i, frame in enumerate(frames.astype(np.float64)):
        ycc = frame @ to_ycc
        coefficients = np.array(frame_transfer(_stats(ycc), ref_stats, strength))
        out[i] = ((ycc * coefficients[:, 0] + coefficients[:, 1]) @ to_rgb).clip(0.0, 1.0)
    return out.astype(frames.dtype)
