"""Keyframe thumbnails: made once per keyframe, small, in keyframe order; a failure of any kind costs only that
thumbnail, never the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from vidfarm.comfy.client import FileRef
from vidfarm.jobs.thumbnails import KeyframeThumbnails


class _Head:
    """Serves keyframes like /view would; `broken` names the ones whose fetch fails, each in its own way."""

    def __init__(self, folder: Path, broken: dict[str, BaseException]) -> None:
        self.folder, self.broken, self.fetched = folder, broken, []  # type: list[str]

    def download(self, ref: FileRef, dest_dir: Path, **kwargs: Any) -> Path:
        self.fetched.append(ref.filename)
        if ref.filename in self.broken:
            raise self.broken[ref.filename]
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / ref.filename
        Image.new("RGB", (1280, 720), (200, 40, 40)).save(path)
        return path


def _ref(index: int) -> FileRef:
    return FileRef(str(index), f"key_{index}.png", "vidfarm/jobs/j/key", "output")


def test_each_keyframe_once_small_and_in_order_and_failures_only_skip_their_own(tmp_path: Path) -> None:
    head = _Head(tmp_path / "head", {"key_1.png": ValueError("not an image"), "key_3.png": OSError("disk full")})
    thumbs = KeyframeThumbnails(head, tmp_path / "keyframes")  # type: ignore[arg-type]
    assert thumbs.update((_ref(2), _ref(0))) == [str(tmp_path / "keyframes" / n) for n in ("key-00.jpg", "key-02.jpg")]
    made = thumbs.update((_ref(2), _ref(0), _ref(1), _ref(3), _ref(4)))
    assert [Path(p).name for p in made] == ["key-00.jpg", "key-02.jpg", "key-04.jpg"]
    assert sorted(head.fetched) == ["key_0.png", "key_1.png", "key_2.png", "key_3.png", "key_4.png"]  # once each
    thumbs.update((_ref(1),))
    assert head.fetched.count("key_1.png") == 1  # a failed one is not fetched again and again
    with Image.open(made[0]) as image:
        assert image.format == "JPEG" and image.size == (480, 270)
    assert not list((tmp_path / "keyframes" / ".download").glob("*.png"))  # the full-size copies are gone
