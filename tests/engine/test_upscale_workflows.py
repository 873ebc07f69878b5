"""The upscale sub-workflows the segment scheduler runs as its post step: a video in, the upscaled video out."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import declaration
from tests.support.random_upscale_model import make_random_compact
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import InputVideoError


def write_clip(path: Path, *, width: int = 64, height: int = 48, frames: int = 6, fps: int = 8) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ys, xs = np.mgrid[0:height, 0:width]
        for t in range(frames):
            rgb = np.stack([(xs * 4 + t * 20) % 256, (ys * 5) % 256, np.full_like(xs, 128)], axis=-1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return path


def test_lanczos_workflow_upscales_an_uploaded_video(client: ComfyClient, tmp_path: Path) -> None:
    name = client.upload_video(write_clip(tmp_path / "clip.mp4"), subfolder="vidfarm/test-upscale")
    assert name == "vidfarm/test-upscale/clip.mp4"
    d = declaration("upscale_lanczos")
    graph = d.fill(d.graph(), {"video": name, "width": 160, "height": 90, "aspect": "pad"})
    video = PromptRun(client, graph, dest_dir=tmp_path / "out").wait().first("video")
    assert (video.info.width, video.info.height, video.info.frames, video.info.fps) == (160, 90, 6, 8.0)


def test_model_workflow_runs_with_any_spandrel_model(
    client: ComfyClient, comfy_server: LocalComfy, tmp_path: Path
) -> None:
    model = make_random_compact(comfy_server.base_dir / "models", scale=2, seed=1)
    name = client.upload_video(write_clip(tmp_path / "clip2.mp4", frames=3), subfolder="vidfarm/test-upscale")
    d = declaration("upscale_model")
    graph = d.fill(d.graph(), {"video": name, "model": model, "width": 96, "height": 96, "aspect": "crop"})
    video = PromptRun(client, graph, dest_dir=tmp_path / "out").wait().first("video")
    assert (video.info.width, video.info.height, video.info.frames) == (96, 96, 3)


def test_upload_video_refuses_what_is_not_a_video(client: ComfyClient, tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(InputVideoError, match="does not decode as video"):
        client.upload_video(fake, subfolder="vidfarm/never")
    with pytest.raises(InputVideoError, match="not a video file name"):
        client.upload_video(write_clip(tmp_path / "clip.mp4").rename(tmp_path / "clip.txt"))
