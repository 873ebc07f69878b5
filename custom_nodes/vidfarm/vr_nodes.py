"""VR output nodes: stereo from depth, VR projections, and a saver that writes Spatial Media V2 metadata.

    frames + depth ─ VidfarmStereoFromDepth ─ left, right ─ VidfarmVRProjection ─ frames, vr_format ─ VidfarmSaveVR
The geometry is in vr_geometry.py (torch); formats, metadata and the MP4 box writer are in the core
(vidfarm.media.vr_format, vidfarm.media.spherical). VidfarmSyntheticDepthScene makes frames with known depth for tests.
"""

from __future__ import annotations

import logging
import math
import os

import torch
from comfy_api.latest import io, ui

from vidfarm.errors import VRFormatError
from vidfarm.media.spherical import inject_spherical_in_place
from vidfarm.media.vr_format import LAYOUTS, PROJECTIONS, VRFormat

from . import vr_geometry as geo

log = logging.getLogger(__name__)
VRFormatType = io.Custom("VIDFARM_VR_FORMAT")
CODECS = {"h264": "libx264", "h265": "libx265"}


class VidfarmSyntheticDepthScene(io.ComfyNode):
    """A scene with known depth: a textured far background (nearness 0, periodic across the width so it is also a
    seamless 360 panorama), a red box at nearness 1 and a green box at nearness 0.5."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmSyntheticDepthScene",
            display_name="Synthetic depth scene (model-free)",
            category="vidfarm/testing",
            description="Frames and a depth map with known geometry, for stereo tests and the model-free VR stand-in. "
            "Red box: x from object_x*W (+1 px per frame, wrapping), 15% of W wide, rows 30-70%, nearness 1. "
            "Green box: x 60-75% of W, rows 20-50%, nearness 0.5. Background nearness 0.",
            inputs=[
                io.Int.Input("width", default=256, min=16, max=8192, step=2, tooltip="Frame width in pixels."),
                io.Int.Input("height", default=128, min=16, max=8192, step=2, tooltip="Frame height in pixels."),
                io.Int.Input("frames", default=8, min=1, max=4096, tooltip="Number of frames."),
                io.Float.Input(
                    "object_x",
                    default=0.25,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Left edge of the red box as a fraction of the width (it wraps round the right edge).",
                ),
            ],
            outputs=[
                io.Image.Output("images", tooltip="The frames."),
                io.Image.Output("depth", tooltip="Depth as a grey image, bright = near (like depth model nodes)."),
            ],
        )

    @classmethod
    def execute(cls, width: int, height: int, frames: int, object_x: float) -> io.NodeOutput:
        images, nearness = synthetic_scene(width, height, frames, object_x)
        return io.NodeOutput(images, nearness.unsqueeze(-1).expand(-1, -1, -1, 3).contiguous())


def synthetic_scene(width: int, height: int, frames: int, object_x: float) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.arange(width, dtype=torch.float32).view(1, width)
    ys = torch.arange(height, dtype=torch.float32).view(height, 1)
    turn = 2 * math.pi * xs / width  # whole periods across the width: seamless at 0°/360°
    background = torch.stack(
        [
            0.25 + 0.10 * torch.sin(7 * turn) + 0 * ys,
            0.45 + 0.20 * torch.sin(13 * turn + ys / 5),
            0.55 + 0.20 * torch.cos(5 * turn - ys / 9),
        ],
        dim=-1,
    )
    images = background.expand(frames, height, width, 3).clone()
    nearness = torch.zeros(frames, height, width)
    columns = torch.arange(width)
    green_cols = (columns >= int(0.60 * width)) & (columns < int(0.75 * width))
    g_rows = slice(int(0.20 * height), int(0.50 * height))
    images[:, g_rows, green_cols] = torch.tensor([0.0, 1.0, 0.0])
    nearness[:, g_rows, green_cols] = 0.5
    r_rows = slice(int(0.30 * height), int(0.70 * height))
    for t in range(frames):
        start = int(object_x * width) + t
        red_cols = (columns - start) % width < int(0.15 * width)
        images[t, r_rows, red_cols] = torch.tensor([1.0, 0.0, 0.0])
        nearness[t, r_rows, red_cols] = 1.0
    return images, nearness


class VidfarmStereoFromDepth(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmStereoFromDepth",
            display_name="Stereo from depth (VR)",
            category="vidfarm/vr",
            description="Left and right eyes from frames and a depth map by depth-image-based rendering: each pixel "
            "moves by half of baseline*width*(nearness-convergence), the nearest pixel wins, and uncovered areas "
            "are filled from the background side by mirroring its texture.",
            inputs=[
                io.Image.Input("images", tooltip="The frames (mono)."),
                io.MultiType.Input(
                    "depth",
                    types=[io.Image, io.Mask],
                    tooltip="Depth per frame (IMAGE or MASK) from any depth node, bright = near; resized to fit.",
                ),
                io.Float.Input(
                    "baseline",
                    default=0.03,
                    min=0.0,
                    max=0.2,
                    step=0.001,
                    tooltip="Largest disparity as a fraction of the frame width (0.03 = 3%: comfortable).",
                ),
                io.Float.Input(
                    "convergence",
                    default=0.5,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Nearness that lands on the screen plane (no disparity). Use 0 for VR180 and 360 "
                    "(parallel eyes: only infinity has no disparity).",
                ),
                io.Boolean.Input(
                    "far_is_bright",
                    default=False,
                    tooltip="Turn on when the depth map draws far things bright (metric/distance depth).",
                ),
                io.Boolean.Input(
                    "equirect_360",
                    default=False,
                    tooltip="The frames are 360 panoramas: wrap round the 0°/360° seam and fade stereo to zero "
                    "at the poles.",
                ),
            ],
            outputs=[
                io.Image.Output("left", tooltip="Left-eye frames."),
                io.Image.Output("right", tooltip="Right-eye frames."),
                io.Mask.Output("filled", tooltip="1 where either eye was disoccluded and filled (for inpainting)."),
            ],
        )

    @classmethod
    def execute(
        cls,
        images: torch.Tensor,
        depth: torch.Tensor,
        baseline: float,
        convergence: float,
        far_is_bright: bool,
        equirect_360: bool,
    ) -> io.NodeOutput:
        if depth.shape[0] not in (1, images.shape[0]):
            raise VRFormatError(
                f"depth has {depth.shape[0]} frames but the video has {images.shape[0]}; "
                "give one depth frame per video frame (or a single one for all)"
            )
        near = geo.nearness_from_depth_image(depth, size=tuple(images.shape[1:3]), far_is_bright=far_is_bright)
        near = near.expand(images.shape[0], -1, -1)
        left, right, filled = geo.stereo_from_depth(
            images, near, baseline=baseline, convergence=convergence, equirect=equirect_360
        )
        return io.NodeOutput(left, right, filled)


class VidfarmVRProjection(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmVRProjection",
            display_name="VR projection and layout",
            category="vidfarm/vr",
            description="Packs eyes for a headset: flat 3D, VR180 (each eye reprojected to a 180° half "
            "equirectangular square) or 360 equirectangular (seam closed, poles settled). Without a right eye "
            "the left one is duplicated (YouTube needs VR180 as stereo).",
            inputs=[
                io.Image.Input("left", tooltip="Left-eye frames (or the only frames, for mono)."),
                io.Image.Input("right", optional=True, tooltip="Right-eye frames; leave empty for mono input."),
                io.Combo.Input("projection", options=list(PROJECTIONS), default="vr180", tooltip="Target projection."),
                io.Combo.Input(
                    "layout",
                    options=list(LAYOUTS),
                    default="sbs",
                    tooltip="sbs = left eye left, tb = left eye on top, mono = one view (VR180 turns mono into sbs).",
                ),
                io.Float.Input(
                    "fov_degrees",
                    default=90.0,
                    min=10.0,
                    max=179.0,
                    tooltip="VR180: the horizontal field of view of the input frames.",
                ),
                io.Int.Input(
                    "eye_size",
                    default=0,
                    min=0,
                    max=8192,
                    step=2,
                    tooltip="VR180: side of each square eye; 360: width of each eye. 0 = keep the input's detail.",
                ),
                io.Int.Input("seam_band", default=4, min=0, max=512, tooltip="360: columns blended so 0° meets 360°."),
                io.Int.Input("pole_band", default=2, min=0, max=512, tooltip="360: rows settled towards each pole."),
            ],
            outputs=[
                io.Image.Output("images", tooltip="Packed frames."),
                VRFormatType.Output("vr_format", tooltip="Projection and layout, for Save VR video."),
            ],
        )

    @classmethod
    def execute(
        cls,
        left: torch.Tensor,
        projection: str,
        layout: str,
        fov_degrees: float,
        eye_size: int,
        seam_band: int,
        pole_band: int,
        right: torch.Tensor | None = None,
    ) -> io.NodeOutput:
        if projection == "vr180" and layout == "mono":
            layout = "sbs"
        fmt = VRFormat(projection, layout)
        eyes = [left] if layout == "mono" else [left, left if right is None else right]
        if len(eyes) == 2 and eyes[0].shape != eyes[1].shape:
            raise VRFormatError(f"left eye {tuple(eyes[0].shape)} and right eye {tuple(eyes[1].shape)} differ in size")
        if projection == "vr180":
            size = eye_size or _even(left.shape[2] * 180 / fov_degrees)
            eyes = [geo.half_equirect_from_perspective(e, fov_degrees=fov_degrees, eye_size=size) for e in eyes]
        elif projection == "equirect360":
            eyes = [_panorama_eye(e, eye_width=eye_size, seam_band=seam_band, pole_band=pole_band) for e in eyes]
        packed = geo.pack_eyes(eyes[0], eyes[-1], layout)
        return io.NodeOutput(packed, {"projection": fmt.projection, "layout": fmt.layout})


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _panorama_eye(eye: torch.Tensor, *, eye_width: int, seam_band: int, pole_band: int) -> torch.Tensor:
    h, w = eye.shape[1:3]
    if abs(w / h - 2) > 0.02:
        raise VRFormatError(f"360 frames must be 2:1 equirectangular panoramas; these are {w}x{h}")
    if eye_width and eye_width != w:
        size = (eye_width // 2, eye_width)
        resized = torch.nn.functional.interpolate(eye.permute(0, 3, 1, 2), size=size, mode="bilinear")
        eye = resized.permute(0, 2, 3, 1)
    return geo.settle_poles(geo.close_seam(eye, band=seam_band), band=pole_band)


class VidfarmSaveVR(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VidfarmSaveVR",
            display_name="Save VR video",
            category="vidfarm/vr",
            description="Encodes an MP4 (faststart, no edit list) and writes the Spatial Media V2 boxes (st3d, "
            "sv3d) that YouTube and headsets read; the file name ends in _180_LR, _360_TB, ... as players expect.",
            inputs=[
                io.Image.Input("images", tooltip="Packed frames from VR projection and layout."),
                VRFormatType.Input("vr_format", tooltip="Projection and layout from VR projection and layout."),
                io.Float.Input("fps", default=24.0, min=1.0, max=120.0, tooltip="Frames per second."),
                io.String.Input("filename_prefix", default="vidfarm/vr", tooltip="Output sub-folder and name."),
                io.Combo.Input(
                    "codec",
                    options=list(CODECS),
                    default="h264",
                    tooltip="h264 plays everywhere up to 5760x2880 on Quest; h265 for larger or square stereo 360.",
                ),
                io.Int.Input("crf", default=18, min=0, max=51, tooltip="Quality: lower is better and bigger."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, images: torch.Tensor, vr_format: dict[str, str], fps: float, filename_prefix: str, codec: str, crf: int
    ) -> io.NodeOutput:
        import folder_paths

        fmt = VRFormat(vr_format["projection"], vr_format["layout"])
        height, width = images.shape[1:3]
        if width % 2 or height % 2:
            raise VRFormatError(f"frames are {width}x{height}; video needs even sides - set an even eye_size")
        for note in fmt.size_notes(width, height, codec=codec):
            log.warning("Save VR video: %s", note)
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), width, height
        )
        file = f"{name}_{counter:05}{fmt.file_suffix()}.mp4"
        path = os.path.join(folder, file)
        encode_mp4(images, path, fps=fps, codec=codec, crf=crf)
        meta = fmt.metadata()
        if meta is not None:
            inject_spherical_in_place(path, meta)
        return io.NodeOutput(ui=ui.PreviewVideo([ui.SavedResult(file, subfolder, io.FolderType.output)]))


def encode_mp4(images: torch.Tensor, path: str, *, fps: float, codec: str, crf: int) -> None:
    """yuv420p MP4 with the index first (faststart) and no edit list (YouTube wants none)."""
    from fractions import Fraction

    import av

    options = {"movflags": "+faststart", "use_editlist": "0"}
    with av.open(path, mode="w", format="mp4", options=options) as container:
        stream = container.add_stream(CODECS[codec], rate=Fraction(fps).limit_denominator(1001))
        assert isinstance(stream, av.VideoStream)  # a video codec always gives a video stream
        stream.width, stream.height = images.shape[2], images.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        if codec == "h265":
            stream.codec_tag = "hvc1"  # the tag Apple players and Quest expect
        for frame in images:
            pixels = (frame.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
