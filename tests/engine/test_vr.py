"""VR output on a real ComfyUI (CPU): stereo from depth, projections, and saved files with V2 metadata.

The synthetic scene (VidfarmSyntheticDepthScene) has known geometry: a textured background at nearness 0, a red box
at nearness 1 starting at object_x*W (+1 px per frame, 15% of W wide, rows 30-70%), a green box at nearness 0.5
(x 60-75%, rows 20-50%). Disparity is d = baseline * W * (nearness - convergence), x_left - x_right = d."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from tests.conftest import declaration
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.comfy.run import RunResult
from vidfarm.errors import ExecutionFailed
from vidfarm.media.spherical import StereoMode, read_side_data, read_spherical, top_level_boxes
from vidfarm.media.vr_format import VRFormat

Pixel = tuple[int, int, int]


def scene(width: int, height: int, frames: int, object_x: float) -> dict[str, Any]:
    return {
        "class_type": "VidfarmSyntheticDepthScene",
        "inputs": {"width": width, "height": height, "frames": frames, "object_x": object_x},
    }


def stereo(baseline: float, convergence: float, *, equirect: bool = False) -> dict[str, Any]:
    return {
        "class_type": "VidfarmStereoFromDepth",
        "inputs": {
            "images": ["1", 0],
            "depth": ["1", 1],
            "baseline": baseline,
            "convergence": convergence,
            "far_is_bright": False,
            "equirect_360": equirect,
        },
    }


def save_png(source: list[Any], name: str) -> dict[str, Any]:
    return {"class_type": "SaveImage", "inputs": {"images": source, "filename_prefix": f"vrtest/{name}"}}


def projection(projection: str, layout: str, eye_size: int, *, right: bool = True) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "left": ["2", 0],
        "projection": projection,
        "layout": layout,
        "fov_degrees": 90.0,
        "eye_size": eye_size,
        "seam_band": 0,
        "pole_band": 0,
    }
    if right:
        inputs["right"] = ["2", 1]
    return {"class_type": "VidfarmVRProjection", "inputs": inputs}


def save_vr(name: str) -> dict[str, Any]:
    return {
        "class_type": "VidfarmSaveVR",
        "inputs": {
            "images": ["3", 0],
            "vr_format": ["3", 1],
            "fps": 8.0,
            "filename_prefix": f"vrtest/{name}",
            "codec": "h264",
            "crf": 20,
        },
    }


def pngs(result: RunResult, node_id: str) -> list[Image.Image]:
    paths = sorted(o.path for o in result.outputs if o.node_id == node_id)
    assert paths, f"node {node_id} saved nothing"
    return [Image.open(p).convert("RGB") for p in paths]


def row(image: Image.Image, y: int) -> list[Pixel]:
    return [image.getpixel((x, y)) for x in range(image.width)]  # type: ignore[misc]


def red_columns(image: Image.Image, y: int) -> list[int]:
    return [x for x, (r, g, b) in enumerate(row(image, y)) if r > 230 and g < 25 and b < 25]


def is_background(pixel: Pixel) -> bool:
    r, g, b = (c / 255 for c in pixel)
    return 0.13 <= r <= 0.37 and 0.23 <= g <= 0.67 and 0.33 <= b <= 0.77


def test_disparity_per_depth_matches_the_geometry(client: ComfyClient, tmp_path: Path) -> None:
    w, h, baseline, convergence = 200, 64, 0.04, 0.5  # red: d = +4 px, green: 0, background: -4
    graph = {
        "1": scene(w, h, 2, 0.25),
        "2": stereo(baseline, convergence),
        "4": save_png(["1", 0], "src"),
        "5": save_png(["2", 0], "left"),
        "6": save_png(["2", 1], "right"),
    }
    result = PromptRun(client, graph, dest_dir=tmp_path).wait()
    sources, lefts, rights = pngs(result, "4"), pngs(result, "5"), pngs(result, "6")
    assert len(lefts) == len(rights) == 2
    for t in range(2):
        left, right, source = lefts[t], rights[t], sources[t]
        red_start = int(0.25 * w) + t
        d_red = baseline * w * (1.0 - convergence)
        assert red_columns(source, 32)[0] == red_start
        assert red_columns(left, 32)[0] == red_start + d_red / 2
        assert red_columns(right, 32)[0] == red_start - d_red / 2
        assert len(red_columns(left, 32)) == len(red_columns(right, 32)) == int(0.15 * w)
        green = [x for x, p in enumerate(row(source, 20)) if p == (0, 255, 0)]
        assert [x for x, p in enumerate(row(left, 20)) if p == (0, 255, 0)] == green  # at the screen plane
        d_bg = round(baseline * w * (0.0 - convergence))  # background row 5 moves by d/2 in each eye
        assert row(left, 5)[10:190] == row(source, 5)[10 - d_bg // 2 : 190 - d_bg // 2]
        assert row(right, 5)[10:190] == row(source, 5)[10 + d_bg // 2 : 190 + d_bg // 2]


def test_disocclusions_are_filled_from_the_background_without_smears(client: ComfyClient, tmp_path: Path) -> None:
    w, h = 240, 64
    graph = {
        "1": scene(w, h, 1, 0.3),
        "2": stereo(0.06, 0.5),  # red +7.2 px, background -7.2 px: ~7 px gaps beside the red box
        "5": save_png(["2", 0], "left"),
        "6": save_png(["2", 1], "right"),
        "7": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 2]}},
        "8": save_png(["7", 0], "filled"),
    }
    result = PromptRun(client, graph, dest_dir=tmp_path).wait()
    left, right, filled = pngs(result, "5")[0], pngs(result, "6")[0], pngs(result, "8")[0]
    y = 32  # a row through the red box
    holes = [x for x in range(w) if filled.getpixel((x, y))[0] > 127]  # type: ignore[index]
    assert len(holes) >= 12, "the scene must open gaps, or this test proves nothing"
    red_left, red_right = red_columns(left, y), red_columns(right, y)
    gap_left = [x for x in holes if red_left[0] - 8 <= x < red_left[0]]  # uncovered left of the box (left eye)
    gap_right = [x for x in holes if red_right[-1] < x <= red_right[-1] + 8]
    assert len(gap_left) >= 6 and len(gap_right) >= 6
    for eye, gap in ((left, gap_left), (right, gap_right)):
        fill = [eye.getpixel((x, y)) for x in gap]
        assert all(is_background(p) for p in fill), f"gap filled with foreground or black: {fill}"
        assert len(set(fill)) > 2, f"gap filled with one stretched colour: {fill}"
    for eye in (left, right):  # nothing is left black or unfilled anywhere
        assert all(sum(p) > 60 for yy in range(h) for p in row(eye, yy))


def test_360_stays_continuous_across_the_seam_and_calm_at_the_poles(client: ComfyClient, tmp_path: Path) -> None:
    w, h, baseline = 256, 128, 0.04
    graph = {
        "1": scene(w, h, 1, 0.95),  # the red box straddles 0°/360°
        "2": stereo(baseline, 0.5, equirect=True),
        "3": projection("equirect360", "tb", 0),
        "5": save_png(["2", 0], "left"),
        "6": save_png(["2", 1], "right"),
        "9": save_vr("pano"),
    }
    result = PromptRun(client, graph, dest_dir=tmp_path).wait()
    left, right = pngs(result, "5")[0], pngs(result, "6")[0]
    for y in range(h):  # the texture is periodic: the seam must not show
        a, b = left.getpixel((0, y)), left.getpixel((w - 1, y))
        assert max(abs(p - q) for p, q in zip(a, b, strict=True)) < 40, f"seam jump at row {y}: {a} vs {b}"  # type: ignore[arg-type]
    start = int(0.95 * w)
    for y in (40, 64, 88):
        latitude = (0.5 - (y + 0.5) / h) * math.pi
        shift = baseline * w * 0.5 * math.cos(latitude) / 2
        cols = red_columns(left, y)
        assert 0 in cols and w - 1 in cols and len(cols) == int(0.15 * w)  # wrapped round, nothing lost
        first = min(c for c in cols if c > w // 2)
        assert abs(first - (start + shift)) <= 1
    assert row(left, 0) == row(right, 0)  # stereo fades out at the poles
    assert row(left, 10) != row(right, 10) or row(left, 64) != row(right, 64)
    video = result.first("video")
    assert video.path.name.endswith("_360_TB.mp4")
    assert (video.info.width, video.info.height) == (w, 2 * h)
    assert read_spherical(video.path) == VRFormat("equirect360", "tb").metadata()
    seen = read_side_data(video.path)
    assert (seen.stereo, seen.projection, seen.bounds) == ("top_bottom", "equirectangular", (0, 0, 0, 0))


def test_mono_vr180_gets_the_duplicated_eye_layout(client: ComfyClient, tmp_path: Path) -> None:
    graph = {
        "1": scene(128, 72, 2, 0.25),
        "2": stereo(0.0, 0.0),  # only to feed node 3's left input; right stays unconnected
        "3": projection("vr180", "mono", 64, right=False),
        "4": save_png(["3", 0], "packed"),
        "9": save_vr("mono180"),
    }
    result = PromptRun(client, graph, dest_dir=tmp_path).wait()
    packed = pngs(result, "4")[0]
    assert packed.size == (128, 64)
    assert packed.crop((0, 0, 64, 64)).tobytes() == packed.crop((64, 0, 128, 64)).tobytes()
    assert packed.getpixel((32, 32)) != (0, 0, 0) and packed.getpixel((1, 32)) == (0, 0, 0)  # window in the dark
    video = result.first("video")
    assert video.path.name.endswith("_180_LR.mp4") and video.info.frames == 2
    meta = read_spherical(video.path)
    assert meta == VRFormat("vr180", "sbs").metadata() and meta is not None
    assert meta.stereo_mode == StereoMode.LEFT_RIGHT
    assert read_side_data(video.path).stereo == "side_by_side"


def test_standin_workflow_writes_a_playable_vr180_file(client: ComfyClient, tmp_path: Path) -> None:
    d = declaration("vr180_standin")
    graph = d.fill(d.graph(), {"width": 160, "height": 90, "frames": 6, "eye_size": 96})
    video = PromptRun(client, graph, dest_dir=tmp_path).wait().first("video")
    assert video.path.name.endswith("_180_LR.mp4")
    assert (video.info.width, video.info.height, video.info.frames, video.info.codec) == (192, 96, 6, "h264")
    assert read_spherical(video.path) == VRFormat("vr180", "sbs").metadata()
    seen = read_side_data(video.path)
    assert (seen.stereo, seen.projection, seen.frames) == ("side_by_side", "equirectangular_tile", 6)
    with video.path.open("rb") as handle:
        kinds = [k for k, _, _ in top_level_boxes(handle)]
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # faststart kept after injection
    assert b"elst" not in video.path.read_bytes()  # no edit list (YouTube)


def write_clip(path: Path, frames: list[Image.Image], fps: int) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        stream.options = {"crf": "10"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def upload(client: ComfyClient, path: Path) -> str:
    with path.open("rb") as handle:
        response = client.http.request(
            "POST",
            "/upload/image",
            files={"image": (path.name, handle)},
            data={"subfolder": "vidfarm/vrtest", "type": "input", "overwrite": "true"},
        )
    assert response.status_code == 200, response.text
    return f"vidfarm/vrtest/{path.name}"


def test_vr180_sbs_workflow_takes_a_clip_and_its_depth_video(client: ComfyClient, tmp_path: Path) -> None:
    frames = [Image.new("RGB", (128, 72), (40 + 20 * i, 120, 160)) for i in range(4)]
    depth = [Image.new("L", (128, 72), 0).convert("RGB") for _ in range(4)]
    for image in depth:
        image.paste((255, 255, 255), (40, 20, 80, 50))
    write_clip(tmp_path / "clip.mp4", frames, 8)
    write_clip(tmp_path / "clip_depth.mp4", depth, 8)
    d = declaration("vr180_sbs")
    values = {"clip": upload(client, tmp_path / "clip.mp4"), "depth_video": upload(client, tmp_path / "clip_depth.mp4")}
    graph = d.fill(d.graph(), {**values, "eye_size": 64})
    video = PromptRun(client, graph, dest_dir=tmp_path / "out").wait().first("video")
    assert video.path.name.endswith("_180_LR.mp4")
    assert (video.info.width, video.info.height, video.info.frames, video.info.fps) == (128, 64, 4, 8.0)
    assert read_spherical(video.path) == VRFormat("vr180", "sbs").metadata()


def test_depth_with_the_wrong_frame_count_is_refused_plainly(client: ComfyClient, tmp_path: Path) -> None:
    graph = {
        "1": scene(64, 32, 3, 0.25),
        "10": {
            "class_type": "VidfarmSyntheticDepthScene",
            "inputs": {"width": 64, "height": 32, "frames": 2, "object_x": 0.1},
        },
        "2": {**stereo(0.03, 0.5), "inputs": {**stereo(0.03, 0.5)["inputs"], "depth": ["10", 1]}},
        "5": save_png(["2", 0], "never"),
    }
    with pytest.raises(ExecutionFailed, match="depth has 2 frames but the video has 3"):
        PromptRun(client, graph, dest_dir=tmp_path).wait()


def test_flat_3d_top_bottom_in_h265_carries_st3d_only(client: ComfyClient, tmp_path: Path) -> None:
    graph = {
        "1": scene(96, 48, 3, 0.25),
        "2": stereo(0.03, 0.5),
        "3": projection("flat", "tb", 0),
        "9": {**save_vr("flat"), "inputs": {**save_vr("flat")["inputs"], "codec": "h265"}},
    }
    video = PromptRun(client, graph, dest_dir=tmp_path).wait().first("video")
    assert video.path.name.endswith("_TB.mp4") and "_180" not in video.path.name and "_360" not in video.path.name
    assert (video.info.width, video.info.height, video.info.frames, video.info.codec) == (96, 96, 3, "hevc")
    assert read_spherical(video.path) == VRFormat("flat", "tb").metadata()
    data = video.path.read_bytes()
    assert b"hvc1" in data and b"st3d" in data and b"sv3d" not in data
    assert read_side_data(video.path).stereo == "top_bottom"


def test_depth_as_a_mask_gives_the_same_eyes_as_depth_as_an_image(client: ComfyClient, tmp_path: Path) -> None:
    graph = {
        "1": scene(160, 48, 1, 0.25),
        "2": stereo(0.05, 0.5),
        "11": {"class_type": "ImageToMask", "inputs": {"image": ["1", 1], "channel": "red"}},
        "12": {**stereo(0.05, 0.5), "inputs": {**stereo(0.05, 0.5)["inputs"], "depth": ["11", 0]}},
        "5": save_png(["2", 0], "from_image"),
        "6": save_png(["12", 0], "from_mask"),
    }
    result = PromptRun(client, graph, dest_dir=tmp_path).wait()
    from_image, from_mask = pngs(result, "5")[0], pngs(result, "6")[0]
    assert red_columns(from_image, 24)[0] == int(0.25 * 160) + 2  # d = 0.05 * 160 * 0.5 = 4 px; left eye +2
    assert from_image.tobytes() == from_mask.tobytes()
