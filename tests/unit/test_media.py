from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from vidfarm.errors import InputImageError, OutputInvalid
from vidfarm.media import check_upload_image, probe


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
