from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from vidfarm.errors import InputImageError, OutputInvalid
from vidfarm.media.checks import check_upload_image, probe


def test_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    fake = tmp_path / "photo.png"
    fake.write_text("this is not a picture")
    with pytest.raises(InputImageError, match="not an image Pillow can read"):
        check_upload_image(fake, max_bytes=10**6)


def test_too_big_upload_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.effect_noise((256, 256), 64).save(big)
    assert big.stat().st_size > 10_000
    with pytest.raises(InputImageError, match="the server accepts at most"):
        check_upload_image(big, max_bytes=10_000)


def test_wrong_image_type_and_too_many_pixels(tmp_path: Path) -> None:
    gif = tmp_path / "a.gif"
    Image.new("RGB", (8, 8)).save(gif)
    with pytest.raises(InputImageError, match="GIF file; send PNG, JPEG"):
        check_upload_image(gif, max_bytes=10**6)
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 9000)).save(huge)
    with pytest.raises(InputImageError, match="64 megapixels"):
        check_upload_image(huge, max_bytes=10**9)


def test_good_image_passes(tmp_path: Path) -> None:
    ok = tmp_path / "ok.jpg"
    Image.new("RGB", (32, 16), "red").save(ok)
    assert check_upload_image(ok, max_bytes=10**6) == "JPEG"
    info = probe(ok)
    assert (info.kind, info.width, info.height) == ("image", 32, 16)


def test_empty_and_corrupt_outputs_are_invalid(tmp_path: Path) -> None:
    empty = tmp_path / "e.mp4"
    empty.write_bytes(b"")
    with pytest.raises(OutputInvalid, match="empty"):
        probe(empty)
    junk = tmp_path / "j.mp4"
    junk.write_bytes(b"\x00" * 2048)
    with pytest.raises(OutputInvalid, match="does not decode"):
        probe(junk)


def _segment(path: Path, shade: int, frames: int = 6) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(frames):
            array = np.full((96, 160, 3), (shade + 10 * i) % 255, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_join_copies_matching_segments_into_a_faststart_mp4(tmp_path: Path) -> None:
    from vidfarm.media.join import join_segments

    parts = [_segment(tmp_path / f"s{i}.mp4", 40 * i) for i in range(3)]
    out = tmp_path / "joined.mp4"
    assert join_segments(parts, out) == "copy"
    info = probe(out)
    assert (info.frames, info.fps, info.width) == (18, 16.0, 160)
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # faststart: players start before the download ends
    assert join_segments(parts, tmp_path / "x.mp4", crossfade_frames=2) == "encode"
    assert probe(tmp_path / "x.mp4").frames == 18 - 2 * 2


def test_preview_and_thumbnail(tmp_path: Path) -> None:
    from vidfarm.media.join import make_preview, make_thumbnail, preview_size

    assert preview_size(2560, 1440) == (1280, 720) and preview_size(720, 1280) == (720, 1280)
    assert preview_size(1440, 2560) == (720, 1280) and preview_size(640, 360) == (640, 360)
    source = _segment(tmp_path / "s.mp4", 10, frames=16)
    make_preview(source, tmp_path / "p.mp4", duration=1.0)
    assert probe(tmp_path / "p.mp4").frames == 16
    make_thumbnail(source, tmp_path / "t.jpg")
    assert probe(tmp_path / "t.jpg").kind == "image"
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(OutputInvalid, match="junk.mp4"):
        make_thumbnail(tmp_path / "junk.mp4", tmp_path / "t2.jpg")
    assert not (tmp_path / "t2.jpg").exists()
