"""Media checks: does a file decode, and what is in it (size, frames, fps). PyAV for video, Pillow for images."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vidfarm.errors import InputImageError, InputVideoError, OutputInvalid

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".gif"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
UPLOAD_FORMATS = {"PNG", "JPEG", "WEBP", "BMP"}
MAX_UPLOAD_PIXELS = 64_000_000  # 8K x 8K; bigger is a decompression bomb or a mistake


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" | "image" | "other"
    width: int
    height: int
    frames: int
    fps: float
    codec: str
    size_bytes: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


def probe(path: str | Path) -> MediaInfo:
    """Decode the whole file and describe it; OutputInvalid if it is empty or does not decode."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise OutputInvalid(f"{path.name} is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return _probe_video(path, size)
    if suffix in IMAGE_SUFFIXES:
        return _probe_image(path, size)
    return MediaInfo("other", 0, 0, 0, 0.0, "", size)


def _probe_video(path: Path, size: int) -> MediaInfo:
    import av  # PyAV is heavy; import on use

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            rate = stream.average_rate or stream.base_rate or Fraction(0)
            return MediaInfo(
                "video",
                stream.codec_context.width,
                stream.codec_context.height,
                frames,
                float(rate),
                stream.codec_context.name,
                size,
            )
    except (av.FFmpegError, IndexError) as exc:
        raise OutputInvalid(f"{path.name} does not decode as video: {exc}") from None


def _probe_image(path: Path, size: int) -> MediaInfo:
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            image.load()
            kind = "video" if frames > 1 else "image"
            duration_ms = image.info.get("duration") or 0
            fps = 1000.0 / duration_ms if frames > 1 and duration_ms else 0.0
            return MediaInfo(kind, image.width, image.height, frames, fps, (image.format or "").lower(), size)
    except (UnidentifiedImageError, OSError) as exc:
        raise OutputInvalid(f"{path.name} does not decode as an image: {exc}") from None


def _within_limit(path: Path, max_bytes: int, error: type[Exception], what: str, advice: str) -> Path:
    """The file exists and is no bigger than the server takes (checked before a byte is read or sent)."""
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    size = path.stat().st_size
    if size > max_bytes:
        raise error(
            f"{what} {path.name} is {size / 1e6:.1f} MB; the server accepts at most {max_bytes / 1e6:.0f} MB - {advice}"
        )
    return path


def check_upload_image(path: str | Path, *, max_bytes: int) -> str:
    """Refuse anything that is not a reasonably sized PNG/JPEG/WEBP/BMP before it is uploaded. Returns the format."""
    path = _within_limit(Path(path), max_bytes, InputImageError, "image", "send a smaller or more compressed image")
    try:
        with Image.open(path) as image:
            if image.format not in UPLOAD_FORMATS:
                raise InputImageError(f"{path.name} is a {image.format} file; send PNG, JPEG, WEBP or BMP")
            if image.width * image.height > MAX_UPLOAD_PIXELS:
                raise InputImageError(f"{path.name} is {image.width}x{image.height}; at most 64 megapixels, please")
            image.verify()
            return str(image.format)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        log.info("refused %s: %s", path, exc)  # the reason, with its path, goes to the log; the person gets the advice
        raise InputImageError(f"{path.name} is not an image Pillow can read; send a PNG or JPEG") from None


def check_upload_video(path: str | Path, *, max_bytes: int) -> MediaInfo:
    """Refuse anything that is not a reasonably sized, decodable video before it is uploaded (first frame decoded)."""
    import av

    path = _within_limit(
        Path(path), max_bytes, InputVideoError, "video", "cut it into segments or re-encode it smaller"
    )
    if path.suffix.lower() not in VIDEO_SUFFIXES - {".gif"}:
        raise InputVideoError(f"{path.name} is not a video file name; send MP4, WEBM, MOV or MKV")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
            if frame.width * frame.height > MAX_UPLOAD_PIXELS:
                raise InputVideoError(f"{path.name} is {frame.width}x{frame.height}; at most 64 megapixels, please")
            rate = stream.average_rate or stream.base_rate or Fraction(0)
            return MediaInfo(
                "video",
                frame.width,
                frame.height,
                stream.frames,
                float(rate),
                stream.codec_context.name,
                path.stat().st_size,
            )
    except (av.FFmpegError, IndexError, StopIteration) as exc:
        raise InputVideoError(f"{path.name} does not decode as video ({exc}); send an MP4 (H.264)") from None
