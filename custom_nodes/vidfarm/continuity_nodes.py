"""Colour held across seams: every frame of a segment matched to one reference picture, on the worker.

Thin over `vidfarm.render.color_match` (the coefficients); here only the torch that applies them, a chunk of frames at a
time so an 81-frame 720p batch never needs more than a few copies of one chunk.
"""

from __future__ import annotations

import torch
from comfy_api.latest import io

from vidfarm.render.color_match import RGB_TO_YCC, YCC_TO_RGB, frame_transfer

CHUNK = 16


def _stats(ycc: torch.Tensor) -> list[list[tuple[float, float]]]:
    """Per frame, per channel (mean, std) of [F, H, W, 3]."""
    flat = ycc.reshape(ycc.shape[0], -1, 3)
    means, stds = flat.mean(dim=1), flat.std(dim=1, unbiased=False)
    return [list(zip(m.tolist(), s.tolist(), strict=True)) for m, s in zip(means, stds, strict=True)]


def match_colors(images: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """images [F, H, W, 3] matched, frame by frame, to the colour statistics of reference's first image."""
    if strength <= 0:
        return images
    to_ycc = torch.tensor(RGB_TO_YCC, dtype=torch.float32, device=images.device).T
    to_rgb = torch.tensor(YCC_TO_RGB, dtype=torch.float32, device=images.device).T
    ref_stats = _stats(reference[:1, :, :, :3].to(images.device, torch.float32) @ to_ycc)[0]
    out = torch.empty_like(images[..., :3])
    for begin in range(0, images.shape[0], CHUNK):
        ycc = images[begin : begin + CHUNK, :, :, :3].to(torch.float32) @ to_ycc
        coefficients = torch.tensor(
            [frame_transfer(frame, ref_stats, strength) for frame in _stats(ycc)],
            dtype=torch.float32,
            device=images.device,
        )  # [chunk, 3, (a, b)]
        matched = ycc * coefficients[:, None, None, :, 0] + coefficients[:, None, None, :, 1]
        out[begin : begin + CHUNK] = (matched @ to_rgb).clamp(0, 1).to(out.dtype)
    return out


class VidfarmColorMatch(io.ComfyNode):
    """Holds a segment's colours to one reference (keyframe 0), so chains and keyframe segments do not creep."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmColorMatch",
            display_name="Match colours to a reference",
            category="vidfarm/long video",
            description="Moves each frame's colour statistics (mean and spread per YCbCr channel) to those of the "
            "reference image, so every segment of a long video keeps keyframe 0's palette and contrast. Each frame "
            "is matched on its own: a frame two segments share comes out the same in both.",
            inputs=[
                io.Image.Input("images", tooltip="The segment's frames (an IMAGE batch)."),
                io.Image.Input("reference", tooltip="The colour anchor (its first image): keyframe 0 or the photo."),
                io.Float.Input(
                    "strength",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    tooltip="1 = the reference's statistics exactly; 0 = off (the frames pass through).",
                ),
            ],
            outputs=[io.Image.Output("matched", tooltip="The matched frames.")],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, reference: torch.Tensor, strength: float) -> io.NodeOutput:
        return io.NodeOutput(match_colors(images, reference, strength))
