"""Model-free stand-ins: nodes with the parameters of real video models that run on a CPU in seconds.

They let the demo and the tests drive every path (submit, progress, outputs, join) without a GPU or model files.
"""

from __future__ import annotations

import hashlib
import math

import torch
from comfy_api.latest import io


def _prompt_palette(prompt: str) -> torch.Tensor:
    """Two RGB colours derived from the prompt, so different prompts give visibly different videos."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return torch.tensor([[digest[i] / 255.0 for i in range(3)], [digest[i] / 255.0 for i in range(3, 6)]])


def render_standin(prompt: str, seed: int, width: int, height: int, frames: int) -> torch.Tensor:
    """[frames, height, width, 3] floats in 0..1: a gradient, drifting stripes and a moving disk.

    Like a real model, the seed matters as much as the prompt: it chooses most of the palette (the prompt only tints
    it), the gradient's direction, the stripes and where the disk is, so two seeds give two unrelated pictures.
    """
    gen = torch.Generator().manual_seed(seed)
    palette = 0.3 * _prompt_palette(prompt) + 0.7 * torch.rand(2, 3, generator=gen)
    angle, phase, speed, tilt = (
        torch.rand(4, generator=gen) * torch.tensor([math.pi, 2 * math.pi, 0.08, 2 * math.pi]) + 0.02
    ).tolist()
    ys = torch.linspace(0, 1, height).view(height, 1, 1)
    xs = torch.linspace(0, 1, width).view(1, width, 1)
    ramp = ((xs - 0.5) * math.cos(tilt) + (ys - 0.5) * math.sin(tilt)) / 1.42 + 0.5  # [H, W, 1], seed's direction
    base = palette[0] * (1 - ramp) + palette[1] * ramp  # [H, W, 3]
    out = torch.empty(frames, height, width, 3)
    for t in range(frames):
        wave = torch.sin(
            2 * math.pi * (xs * math.cos(angle) + ys * math.sin(angle)) * 6 - phase - 2 * math.pi * speed * t
        )
        cx = 0.5 + 0.35 * math.cos(phase + 0.05 * t)
        cy = 0.5 + 0.3 * math.sin(phase * 1.3 + 0.07 * t)
        disk = (((xs - cx) * width / height) ** 2 + (ys - cy) ** 2 < 0.02).float()
        out[t] = (base * (0.75 + 0.2 * wave) * (1 - disk) + disk).clamp(0, 1)
    return out


class VidfarmStandInVideo(io.ComfyNode):
    """A text-to-video stand-in: the same inputs as a video model, a deterministic moving pattern out."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmStandInVideo",
            display_name="Stand-in video (model-free)",
            category="vidfarm/testing",
            description="Model-free stand-in for a text-to-video model: frames derived from the prompt and seed. "
            "For demos and tests on machines without a GPU.",
            inputs=[
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="a paper boat drifting down a rainy street",
                    tooltip="Chooses the colours; any text works.",
                ),
                io.Int.Input("seed", default=0, min=0, max=2**63 - 1, tooltip="Chooses the motion."),
                io.Int.Input(
                    "width",
                    default=512,
                    min=16,
                    max=8192,
                    step=2,
                    tooltip="Frame width in pixels (even, for video encoders).",
                ),
                io.Int.Input(
                    "height",
                    default=288,
                    min=16,
                    max=8192,
                    step=2,
                    tooltip="Frame height in pixels (even, for video encoders).",
                ),
                io.Int.Input("frames", default=49, min=1, max=4096, tooltip="Number of frames to make."),
            ],
            outputs=[io.Image.Output("images", tooltip="The frames as an IMAGE batch.")],
        )

    @classmethod
    def execute(cls, prompt: str, seed: int, width: int, height: int, frames: int) -> io.NodeOutput:
        return io.NodeOutput(render_standin(prompt, seed, width, height, frames))


def move_picture(image: torch.Tensor, seed: int) -> torch.Tensor:
    """[1, H, W, 3] panned (up to 12 %) and zoomed (up to 12 %) by amounts the seed chooses: a new framing of the
    same picture, with its palette and layout."""
    gen = torch.Generator().manual_seed(seed)
    dx, dy, zoom = (
        torch.rand(3, generator=gen) * torch.tensor([0.24, 0.24, 0.12]) - torch.tensor([0.12, 0.12, 0])
    ).tolist()
    theta = torch.tensor([[[1 / (1 + zoom), 0.0, dx], [0.0, 1 / (1 + zoom), dy]]], dtype=image.dtype)
    grid = torch.nn.functional.affine_grid(theta, [1, 3, image.shape[1], image.shape[2]], align_corners=False)
    moved = torch.nn.functional.grid_sample(
        image.movedim(-1, 1), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return moved.movedim(1, -1)


def burn(image: torch.Tensor, amount: float) -> torch.Tensor:
    """The burn-out of an image-to-video extension: more contrast and a warmer cast, by amount."""
    warm = torch.tensor([0.5, 0.0, -0.5], dtype=image.dtype) * amount
    return ((image - 0.5) * (1 + amount) + 0.5 + warm).clamp(0, 1)


def edit_standin(
    image: torch.Tensor, prompt: str, seed: int, width: int, height: int, denoise: float, drift: float
) -> torch.Tensor:
    """A partial-denoise re-render stand-in: the picture moved, with a little (denoise x 0.3) of a fresh render."""
    moved = move_picture(_fit(image, width, height), seed)
    fresh = render_standin(prompt, seed, width, height, 1)
    share = 0.3 * denoise
    return burn(moved * (1 - share) + fresh * share, drift)


class VidfarmStandInEdit(io.ComfyNode):
    """An image-edit / partial-denoise stand-in: keeps its reference's palette and layout while moving it."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmStandInEdit",
            display_name="Stand-in keyframe edit (model-free)",
            category="vidfarm/testing",
            description="Model-free stand-in for a partial-denoise re-render of a picture: the picture panned and "
            "zoomed by the seed, with a little of the prompt's fresh render mixed in; palette and layout carry "
            "through.",
            inputs=[
                io.Image.Input("image", tooltip="The picture to re-render (its first image): keyframe 0 or the photo."),
                io.String.Input("prompt", multiline=True, default="", tooltip="Tints the fresh part a little."),
                io.Int.Input("seed", default=0, min=0, max=2**63 - 1, tooltip="Chooses the pan and zoom."),
                io.Int.Input("width", default=512, min=16, max=8192, step=2, tooltip="Width in pixels."),
                io.Int.Input("height", default=288, min=16, max=8192, step=2, tooltip="Height in pixels."),
                io.Float.Input("denoise", default=0.4, min=0.0, max=1.0, step=0.05, tooltip="How much is re-rendered."),
                io.Float.Input(
                    "drift",
                    default=0.0,
                    min=0.0,
                    max=0.5,
                    step=0.01,
                    tooltip="Burn-out to add (contrast and warmth), as an image-to-video extension of a real "
                    "model adds a little each time; 0 for keyframes.",
                ),
            ],
            outputs=[io.Image.Output("edited", tooltip="The re-rendered picture.")],
        )

    @classmethod
    def execute(
        cls, image: torch.Tensor, prompt: str, seed: int, width: int, height: int, denoise: float, drift: float
    ) -> io.NodeOutput:
        return io.NodeOutput(edit_standin(image, prompt, seed, width, height, denoise, drift))


def _fit(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The first image of a batch, resized to width x height ([1, H, W, 3])."""
    first = image[:1, :, :, :3]
    if first.shape[1:3] == (height, width):
        return first
    resized = torch.nn.functional.interpolate(
        first.movedim(-1, 1), size=(height, width), mode="bilinear", align_corners=False
    )
    return resized.movedim(1, -1)


def render_first_last(start: torch.Tensor, end: torch.Tensor, seed: int, frames: int) -> torch.Tensor:
    """Frames from start to end; the motion term vanishes at both ends, so the first and last frames are exact."""
    height, width = start.shape[1:3]
    gen = torch.Generator().manual_seed(seed)
    phase = float(torch.rand(1, generator=gen)) * 2 * math.pi
    ys = torch.linspace(0, 1, height).view(1, height, 1, 1)
    xs = torch.linspace(0, 1, width).view(1, 1, width, 1)
    steps = torch.linspace(0, 1, frames).view(frames, 1, 1, 1)
    wave = torch.sin(2 * math.pi * (xs * 3 + ys * 2) + phase + 2 * math.pi * steps)
    motion = torch.sin(math.pi * steps) * 0.12 * wave
    return (start * (1 - steps) + end * steps + motion).clamp(0, 1)


class VidfarmStandInFirstLast(io.ComfyNode):
    """A first-last-frame video stand-in: blends the two keyframes over the frames, with some motion between."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmStandInFirstLast",
            display_name="Stand-in first-last-frame video (model-free)",
            category="vidfarm/testing",
            description="Model-free stand-in for a first-last-frame video model: the first frame is start_image, the "
            "last is end_image, exactly, so seams between segments can be checked.",
            inputs=[
                io.Image.Input("start_image", tooltip="The first frame (its first image is used)."),
                io.Image.Input("end_image", tooltip="The last frame (its first image is used)."),
                io.String.Input("prompt", multiline=True, default="", tooltip="Ignored; kept for parity with models."),
                io.Int.Input("seed", default=0, min=0, max=2**63 - 1, tooltip="Chooses the motion."),
                io.Int.Input("width", default=512, min=16, max=8192, step=2, tooltip="Frame width in pixels."),
                io.Int.Input("height", default=288, min=16, max=8192, step=2, tooltip="Frame height in pixels."),
                io.Int.Input("frames", default=17, min=2, max=4096, tooltip="Frames including both keyframes."),
            ],
            outputs=[io.Image.Output("images", tooltip="The frames as an IMAGE batch.")],
        )

    @classmethod
    def execute(
        cls,
        start_image: torch.Tensor,
        end_image: torch.Tensor,
        prompt: str,
        seed: int,
        width: int,
        height: int,
        frames: int,
    ) -> io.NodeOutput:
        start, end = _fit(start_image, width, height), _fit(end_image, width, height)
        return io.NodeOutput(render_first_last(start, end, seed, frames))
