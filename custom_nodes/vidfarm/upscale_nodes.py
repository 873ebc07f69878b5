"""Tiled upscaling of video frames to an exact target size (2560x1440 by default), with or without a model.

The plan (crop/pad geometry, tile grid, feather weights, memory budget) comes from the core's `vidfarm.media.tiling`;
this module only runs it with torch. Per step of a few frames: cut the source region, run each tile through the
upscale model (the same grid for every frame), blend the tiles with feathered weights into one model-scale picture,
resize that once with Lanczos to the placed size and write it into the preallocated output.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import comfy.model_management as model_management
import comfy.utils
import numpy as np
import torch
from comfy_api.latest import io
from PIL import Image

from vidfarm.errors import TilingError
from vidfarm.media.tiling import (
    ASPECT_MODES,
    Box,
    FrameGeometry,
    Tile,
    Tiling,
    choose_tiling,
    feather_ramp,
    frame_geometry,
    plan_tiles,
)

log = logging.getLogger("vidfarm.upscale")
AUTO_BUDGET_SHARE = 0.5  # of the free memory on the device, when no budget is given
# Frames through one tile at once when chosen automatically: batching only pays on a GPU; on a CPU it costs memory.
AUTO_FRAMES_PER_STEP = {"cpu": 1, "other": 8}
RESIZE_STRIP_ROWS = 256  # output rows per Lanczos strip: small temporaries, enough work per thread


def resize_into(dest: torch.Tensor, frames: torch.Tensor) -> None:
    """Lanczos-resize [B, C, H, W] floats into dest [B, H', W', C] (a view of the output), clamped to 0..1.

    Pillow resizes 32-bit float planes (no 8-bit step, no clipping between its two passes) and releases the GIL, so
    strips of output rows run in parallel threads and land straight in the output. A strip is Pillow's resize of the
    whole plane restricted by `box` (its filter still reads the rows around the box), so strips join exactly.
    """
    height, width = dest.shape[1], dest.shape[2]
    if frames.shape[-2:] == (height, width):
        dest.copy_(frames.movedim(1, -1).clamp(0.0, 1.0))
        return
    planes = frames.float().cpu().numpy()
    pictures = [[Image.fromarray(planes[b, c], mode="F") for c in range(planes.shape[1])] for b in range(len(planes))]
    src_height, src_width = planes.shape[2], planes.shape[3]
    inference = torch.is_inference_mode_enabled()  # ComfyUI runs nodes in inference mode; threads do not inherit it

    def one_strip(index: tuple[int, int, int]) -> None:
        b, c, top = index
        bottom = min(height, top + RESIZE_STRIP_ROWS)
        box = (0.0, top * src_height / height, float(src_width), bottom * src_height / height)
        strip = pictures[b][c].resize((width, bottom - top), Image.Resampling.LANCZOS, box=box)
        with torch.inference_mode(inference):
            # np.array copies: PIL's buffer is read-only, and torch.from_numpy warns on (and must not write to) it
            dest[b, top:bottom, :, c] = torch.from_numpy(np.array(strip)).clamp_(0.0, 1.0)

    strips = [
        (b, c, top)
        for b in range(len(planes))
        for c in range(planes.shape[1])
        for top in range(0, height, RESIZE_STRIP_ROWS)
    ]
    with ThreadPoolExecutor(max_workers=min(len(strips), os.cpu_count() or 1)) as pool:
        list(pool.map(one_strip, strips))


def tile_weights(tile: Tile, scale: int) -> torch.Tensor:
    """[1, 1, h, w] feather weights of one tile at model scale."""
    wy = torch.tensor(feather_ramp(tile.y, scale), dtype=torch.float32)
    wx = torch.tensor(feather_ramp(tile.x, scale), dtype=torch.float32)
    return (wy[:, None] * wx[None, :])[None, None]


class TiledModelRun:
    """One upscale model applied tile by tile to chunks of frames, with weights prepared once for all frames."""

    def __init__(self, model: object, scale: int, region: Box, tiles: list[Tile], device: torch.device) -> None:
        self.model, self.scale, self.region, self.tiles, self.device = model, scale, region, tiles, device
        self.weights = [tile_weights(t, scale) for t in tiles]
        total = torch.zeros(1, 1, region.height * scale, region.width * scale)
        for tile, weight in zip(tiles, self.weights, strict=True):
            total[..., self._rows(tile), self._cols(tile)] += weight
        self.weight_total = total

    def _rows(self, tile: Tile) -> slice:
        return slice(tile.y.start * self.scale, (tile.y.start + tile.y.length) * self.scale)

    def _cols(self, tile: Tile) -> slice:
        return slice(tile.x.start * self.scale, (tile.x.start + tile.x.length) * self.scale)

    def __call__(self, chunk: torch.Tensor, progress: comfy.utils.ProgressBar) -> torch.Tensor:
        """[B, C, h, w] source region -> [B, C, h*scale, w*scale] blended model output."""
        s = self.scale
        acc = torch.zeros(chunk.shape[0], chunk.shape[1], chunk.shape[2] * s, chunk.shape[3] * s)
        for tile, weight in zip(self.tiles, self.weights, strict=True):
            model_management.throw_exception_if_processing_interrupted()
            part = chunk[:, :, tile.y.start : tile.y.start + tile.y.length, tile.x.start : tile.x.start + tile.x.length]
            with torch.no_grad():
                up = self.model(part.to(self.device)).float().cpu()  # type: ignore[operator]
            if up.shape[-2:] != (tile.y.length * s, tile.x.length * s):
                raise TilingError(f"the upscale model returned {tuple(up.shape[-2:])} for a tile; expected x{s}")
            acc[..., self._rows(tile), self._cols(tile)].addcmul_(up, weight)
            progress.update(1)
        return acc.div_(self.weight_total)


def memory_budget(budget_mb: int, device: torch.device) -> int:
    if budget_mb:
        return budget_mb * 2**20
    return int(model_management.get_free_memory(device) * AUTO_BUDGET_SHARE)


def auto_frames_per_step(device: torch.device) -> int:
    return AUTO_FRAMES_PER_STEP["cpu" if device.type == "cpu" else "other"]


def plan_run(
    images: torch.Tensor, geometry: FrameGeometry, scale: int, settings: dict[str, int], *, with_model: bool
) -> Tiling:
    device = model_management.get_torch_device()
    return choose_tiling(
        geometry.source,
        scale=scale,
        target=(geometry.placed.width, geometry.placed.height),
        budget_bytes=memory_budget(settings["memory_budget_mb"], device),
        frames=images.shape[0],
        tile=settings["tile_size"],
        overlap=settings["overlap"],
        frames_per_step=settings["frames_per_step"],
        max_frames_per_step=auto_frames_per_step(device),
        with_model=with_model,
    )


def upscale_frames(
    images: torch.Tensor, geometry: FrameGeometry, tiling: Tiling, model_run: TiledModelRun | None
) -> torch.Tensor:
    """The whole batch at the target size; memory beyond the output is one step of `tiling.frames_per_step` frames."""
    src, placed = geometry.source, geometry.placed
    count = images.shape[0]
    out = torch.zeros(count, geometry.target_height, geometry.target_width, images.shape[-1])
    steps = -(-count // tiling.frames_per_step)
    progress = comfy.utils.ProgressBar(steps * (len(model_run.tiles) if model_run else 1))
    for first in range(0, count, tiling.frames_per_step):
        model_management.throw_exception_if_processing_interrupted()
        last = min(count, first + tiling.frames_per_step)
        chunk = images[first:last, src.top : src.top + src.height, src.left : src.left + src.width].movedim(-1, 1)
        if model_run is None:
            big = chunk.float()
            progress.update(1)
        else:
            big = model_run(chunk, progress)
        resize_into(
            out[first:last, placed.top : placed.top + placed.height, placed.left : placed.left + placed.width], big
        )
    return out


def _int_input(name: str, default: int, maximum: int, tooltip: str, *, minimum: int = 0, step: int = 1) -> io.Int.Input:
    return io.Int.Input(name, default=default, min=minimum, max=maximum, step=step, tooltip=tooltip)


class VidfarmTiledUpscale(io.ComfyNode):
    """Upscale frames by tiles to exactly width x height: model (optional), then Lanczos; no seams, bounded memory."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmTiledUpscale",
            display_name="Tiled upscale to size (video)",
            category="vidfarm/upscale",
            description="Upscales a batch of video frames to an exact size by overlapping tiles blended with a "
            "feathered mask (the same tiles for every frame), with an upscale model from Load Upscale Model, or with "
            "Lanczos alone when none is connected. Memory stays within a budget; interruptible between tiles.",
            inputs=[
                io.Image.Input("images", tooltip="The frames to upscale (an IMAGE batch)."),
                io.UpscaleModel.Input(
                    "upscale_model",
                    optional=True,
                    tooltip="An upscale model from Load Upscale Model (Real-ESRGAN, ...). Leave unconnected for a "
                    "Lanczos-only upscale: fast, no model file, softer.",
                ),
                _int_input(
                    "width",
                    2560,
                    16384,
                    "Output width in pixels (2560 = 1440p, 3840 = 4K, 5760 = VR).",
                    minimum=16,
                    step=2,
                ),
                _int_input("height", 1440, 16384, "Output height in pixels.", minimum=16, step=2),
                io.Combo.Input(
                    "aspect",
                    options=list(ASPECT_MODES),
                    default="crop",
                    tooltip="When the aspect ratio differs: crop = fill the frame and cut the overflow at the centre; "
                    "pad = fit inside and add black bars; stretch = scale each axis on its own.",
                ),
                _int_input("tile_size", 0, 2048, "Tile size in source pixels; 0 = the largest that fits in memory."),
                _int_input("overlap", 0, 512, "Pixels shared by neighbouring tiles; 0 = 1/16 of the tile (min 8)."),
                _int_input("frames_per_step", 0, 256, "Frames upscaled together; 0 = as many as fit (at most 16)."),
                _int_input(
                    "memory_budget_mb",
                    0,
                    1 << 20,
                    "Working memory allowed in MiB, beyond the output; 0 = half of the free VRAM/RAM.",
                ),
            ],
            outputs=[io.Image.Output("upscaled", tooltip="The frames at exactly width x height.")],
        )

    @classmethod
    def execute(
        cls,
        images: torch.Tensor,
        width: int,
        height: int,
        aspect: str,
        tile_size: int,
        overlap: int,
        frames_per_step: int,
        memory_budget_mb: int,
        upscale_model: object | None = None,
    ) -> io.NodeOutput:
        geometry = frame_geometry(images.shape[2], images.shape[1], width, height, aspect)
        scale = int(getattr(upscale_model, "scale", 1)) if upscale_model is not None else 1
        settings = {
            "tile_size": tile_size,
            "overlap": overlap,
            "frames_per_step": frames_per_step,
            "memory_budget_mb": memory_budget_mb,
        }
        tiling = plan_run(images, geometry, scale, settings, with_model=upscale_model is not None)
        log.info("vidfarm upscale: %s, %s", geometry, tiling)
        if upscale_model is None:
            return io.NodeOutput(upscale_frames(images, geometry, tiling, None))
        return io.NodeOutput(run_with_model(images, geometry, tiling, upscale_model, scale))


def run_with_model(
    images: torch.Tensor, geometry: FrameGeometry, tiling: Tiling, upscale_model: object, scale: int
) -> torch.Tensor:
    device = model_management.get_torch_device()
    inner = upscale_model.model  # type: ignore[attr-defined]
    model_management.free_memory(model_management.module_size(inner) + tiling.estimated_bytes, device)
    upscale_model.to(device)  # type: ignore[attr-defined]
    try:
        tiles = plan_tiles(geometry.source.width, geometry.source.height, tile=tiling.tile, overlap=tiling.overlap)
        run = TiledModelRun(upscale_model, scale, geometry.source, tiles, device)
        return upscale_frames(images, geometry, tiling, run)
    finally:
        upscale_model.to("cpu")  # type: ignore[attr-defined]
