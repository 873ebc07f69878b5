"""Tile planning for upscaling video frames: aspect geometry, the tile grid, feather weights, memory budget.

Plain math, no torch: the node pack (`custom_nodes/vidfarm/upscale_nodes.py`) executes these plans inside ComfyUI,
and the notebooks/service can use the same functions to preview what a job will cost.

Pipeline for one chunk of frames (see decision 0010):
1. `frame_geometry`: the part of the source frame to use (a centre crop for `crop`) and where the resized picture
   lands in the target canvas (a letterbox for `pad`).
2. `plan_tiles`: overlapping tiles over that source region; the same grid for every frame, so nothing shimmers.
3. each tile goes through the upscale model; `feather_ramp` weights blend the tiles into one model-scale frame.
4. a single Lanczos resize from model scale to the exact target size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidfarm.errors import TilingError

ASPECT_MODES = ("crop", "pad", "stretch")
TILE_SIZES = (512, 384, 256, 192, 128, 96, 64)  # tried largest first by `choose_tiling`
SMALLEST_TILE = TILE_SIZES[-1]
FLOAT_BYTES = 4
# Working memory per model-input pixel of a tile, as ComfyUI's ImageUpscaleWithModel estimates it
# (3 channels x 4 bytes x scale x 384 for the activations of ESRGAN-sized networks).
ACTIVATION_FACTOR = 384.0


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: left, top, width, height."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class FrameGeometry:
    """Where the picture comes from and where it goes: `source` in the input frame, `placed` in the target canvas."""

    source: Box
    placed: Box
    target_width: int
    target_height: int

    @property
    def pads(self) -> bool:
        return (self.placed.width, self.placed.height) != (self.target_width, self.target_height)


def frame_geometry(src_width: int, src_height: int, target_width: int, target_height: int, mode: str) -> FrameGeometry:
    """Geometry that turns a src_width x src_height frame into exactly target_width x target_height.

    crop: scale to cover the target, cut the overflow equally from both sides (nothing is distorted or black).
    pad: scale to fit inside the target, centre it on black (nothing is cut).
    stretch: scale each axis on its own (the aspect ratio changes when the two differ).
    """
    if min(src_width, src_height, target_width, target_height) < 1:
        raise TilingError(
            f"sizes must be positive: source {src_width}x{src_height}, target {target_width}x{target_height}"
        )
    whole = Box(0, 0, src_width, src_height)
    canvas = Box(0, 0, target_width, target_height)
    if mode == "stretch":
        return FrameGeometry(whole, canvas, target_width, target_height)
    if mode == "crop":
        return FrameGeometry(_centre_crop(src_width, src_height, target_width, target_height), canvas, *_size(canvas))
    if mode == "pad":
        scale = min(target_width / src_width, target_height / src_height)
        width = min(target_width, max(1, round(src_width * scale)))
        height = min(target_height, max(1, round(src_height * scale)))
        placed = Box((target_width - width) // 2, (target_height - height) // 2, width, height)
        return FrameGeometry(whole, placed, target_width, target_height)
    raise TilingError(f"aspect mode {mode!r} is not one of {', '.join(ASPECT_MODES)}")


def _size(box: Box) -> tuple[int, int]:
    return box.width, box.height


def _centre_crop(src_width: int, src_height: int, target_width: int, target_height: int) -> Box:
    target_aspect = target_width / target_height
    if src_width / src_height > target_aspect:  # too wide: cut left and right
        width = max(1, min(src_width, round(src_height * target_aspect)))
        return Box((src_width - width) // 2, 0, width, src_height)
    height = max(1, min(src_height, round(src_width / target_aspect)))
    return Box(0, (src_height - height) // 2, src_width, height)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: where it starts, how long it is, and how much it shares with each neighbour."""

    start: int
    length: int
    lead_overlap: int  # shared with the previous tile (0 at the image border)
    trail_overlap: int  # shared with the next tile (0 at the image border)


def plan_axis(length: int, tile: int, overlap: int) -> list[Span]:
    """The fewest equal tiles of at most `tile` pixels covering 0..length, neighbours sharing at least `overlap`.

    Equal tiles spread evenly (rather than full tiles plus a sliver) keep the work near length: no pixel is computed
    more often than the overlap needs.
    """
    if tile <= overlap:
        raise TilingError(f"tile size {tile} must be larger than the overlap {overlap}")
    if length <= tile:
        return [Span(0, length, 0, 0)]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    starts = [i * (length - size) // (count - 1) for i in range(count)]
    spans = []
    for i, start in enumerate(starts):
        lead = starts[i - 1] + size - start if i > 0 else 0
        trail = start + size - starts[i + 1] if i + 1 < count else 0
        spans.append(Span(start, size, lead, trail))
    return spans


@dataclass(frozen=True)
class Tile:
    x: Span
    y: Span


def plan_tiles(width: int, height: int, *, tile: int, overlap: int) -> list[Tile]:
    """The tile grid over a width x height region, row by row. Depends only on the sizes: every frame gets the same."""
    return [Tile(x, y) for y in plan_axis(height, tile, overlap) for x in plan_axis(width, tile, overlap)]


def feather_ramp(span: Span, scale: int) -> list[float]:
    """Blend weights along one axis of a tile after a `scale`x model, one per output pixel.

    Inside a shared strip of n pixels the weight is 0 for the outer quarter (where the model saw the tile's cut edge),
    rises linearly over the middle half and is 1 beyond it. At image borders the weight stays 1. Overlapping tiles
    are normalised by the sum of their weights, so the weights need not add up to 1.
    """
    out_len = span.length * scale
    weights = [1.0] * out_len
    for n, from_end in ((span.lead_overlap * scale, False), (span.trail_overlap * scale, True)):
        for i in range(n):
            w = min(1.0, max(0.0, (i + 0.5 - n / 4) / (n / 2)))
            index = out_len - 1 - i if from_end else i
            weights[index] = min(weights[index], w)
    return weights


def count_tiles(width: int, height: int, *, tile: int, overlap: int) -> int:
    return len(plan_axis(width, tile, overlap)) * len(plan_axis(height, tile, overlap))


@dataclass(frozen=True)
class Tiling:
    """How one node run proceeds: tile size and overlap in source pixels, and frames per step."""

    tile: int
    overlap: int
    frames_per_step: int
    estimated_bytes: int


def step_bytes(
    region: Box, *, tile: int, scale: int, frames: int, target: tuple[int, int], with_model: bool = True
) -> int:
    """Working memory of one step of `frames` frames (beyond the node's output, which is allocated once)."""
    tile_pixels = min(tile, region.width) * min(tile, region.height)
    activations = tile_pixels * 3 * FLOAT_BYTES * max(scale, 1) * ACTIVATION_FACTOR if with_model else 0
    planes = 3 + 1 if with_model else 3  # weighted sums + weight total, or just the picture
    model_frame = region.width * region.height * scale * scale * planes * FLOAT_BYTES
    resized = target[0] * target[1] * 3 * FLOAT_BYTES
    return int(frames * (activations + model_frame + resized))


def choose_tiling(
    region: Box,
    *,
    scale: int,
    target: tuple[int, int],
    budget_bytes: int,
    frames: int,
    tile: int = 0,
    overlap: int = 0,
    frames_per_step: int = 0,
    max_frames_per_step: int = 16,
    with_model: bool = True,
) -> Tiling:
    """The largest tile and most frames per step (up to max_frames_per_step) that fit in budget_bytes; 0 for
    tile/overlap/frames_per_step means choose.

    Raises TilingError naming the smallest need when even one frame with the smallest tile does not fit.
    """
    tiles = (tile,) if tile else TILE_SIZES
    steps = (frames_per_step,) if frames_per_step else _halvings(min(frames, max_frames_per_step))
    for size in tiles:
        shared = overlap or max(8, size // 16)
        for count in steps:
            need = step_bytes(region, tile=size, scale=scale, frames=count, target=target, with_model=with_model)
            if need <= budget_bytes:
                return Tiling(size, min(shared, size - 1), count, need)
    smallest = step_bytes(region, tile=tiles[-1], scale=scale, frames=steps[-1], target=target, with_model=with_model)
    raise TilingError(
        f"upscaling a {region.width}x{region.height} frame x{scale} to {target[0]}x{target[1]} needs at least "
        f"{smallest / 2**20:.0f} MiB of working memory with {tiles[-1]}-pixel tiles, but only "
        f"{budget_bytes / 2**20:.0f} MiB is free - free memory (close other jobs, unload models), use a smaller "
        "target, or a model with a smaller scale"
    )


def _halvings(start: int) -> list[int]:
    counts = [max(1, start)]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts
