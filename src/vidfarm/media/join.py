"""Join video segments into one faststart MP4, and make the phone preview and the thumbnail (PyAV, no torch).

Segments arrive without duplicated boundary frames (the worker drops them before encoding), so a join of
segments with identical encoder settings is a pure stream copy; otherwise, or when crossfades are asked for,
frames are decoded and encoded once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vidfarm.errors import OutputInvalid

PREVIEW_MAX_HEIGHT = 720
PREVIEW_BYTES_PER_30S = 45 * 1024 * 1024


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Write to a temp file beside `path` and rename it into place only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _signature(path: Path) -> tuple[Any, ...]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        return (
            ctx.name,
            ctx.width,
            ctx.height,
            ctx.pix_fmt,
            stream.time_base,
            stream.average_rate,
            bytes(ctx.extradata or b""),
        )


def can_stream_copy(paths: list[Path]) -> bool:
    return len({_signature(p) for p in paths}) == 1


def join_segments(paths: list[Path], out: Path, *, crossfade_frames: int = 0) -> str:
    """Join in order into `out` (faststart). Returns "copy" or "encode" (how it was done)."""
    if not paths:
        raise OutputInvalid("no segments to join")
    if crossfade_frames == 0 and can_stream_copy(paths):
        _remux(paths, out)
        return "copy"
    _reencode(paths, out, crossfade_frames=crossfade_frames)
    return "encode"


def _remux(paths: list[Path], out: Path) -> None:
    with atomic_output(out) as tmp, av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        with av.open(str(paths[0])) as first:
            ostream = dst.add_stream_from_template(first.streams.video[0])
        offset = 0
        for path in paths:
            with av.open(str(path)) as src:
                end = offset
                for packet in src.demux(src.streams.video[0]):
                    if packet.dts is None:
                        continue  # the flush packet
                    packet.pts = (packet.pts or 0) + offset
                    packet.dts += offset
                    end = max(end, packet.pts + (packet.duration or 0))
                    packet.stream = ostream
                    dst.mux(packet)
                offset = end


def _frames(path: Path) -> Iterator[av.VideoFrame]:
    try:
        with av.open(str(path)) as src:
            yield from src.decode(video=0)
    except av.FFmpegError as exc:
        raise OutputInvalid(f"{path.name} does not decode as video: {exc}") from None


def _reencode(paths: list[Path], out: Path, *, crossfade_frames: int) -> None:
    import numpy as np

    with av.open(str(paths[0])) as first:
        stream = first.streams.video[0]
        rate, width, height = (
            stream.average_rate or Fraction(16),
            stream.codec_context.width,
            stream.codec_context.height,
        )
    with atomic_output(out) as tmp, av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        ostream = _h264_stream(dst, rate, width, height, crf=18)
        tail: list[Any] = []  # the last frames of the previous segment, held back for a crossfade
        for path in paths:
            frames = [f.to_ndarray(format="rgb24") for f in _frames(path)]
            k = min(crossfade_frames, len(tail), len(frames))
            for i in range(k):
                w = (i + 1) / (k + 1)
                frames[i] = (tail[len(tail) - k + i] * (1 - w) + frames[i] * w).astype(np.uint8)
            for frame in tail[: len(tail) - k]:
                _encode(dst, ostream, frame)
            hold = min(crossfade_frames, len(frames))
            for frame in frames[: len(frames) - hold]:
                _encode(dst, ostream, frame)
            tail = frames[len(frames) - hold :]
        for frame in tail:
            _encode(dst, ostream, frame)
        dst.mux(ostream.encode())


def _h264_stream(dst: Any, rate: Fraction, width: int, height: int, *, crf: int, max_bit_rate: int = 0) -> Any:
    stream = dst.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": str(crf), "preset": "veryfast"}
    if max_bit_rate:  # constant quality, capped so the file fits its size budget
        stream.options.update({"maxrate": str(max_bit_rate), "bufsize": str(max_bit_rate * 2)})
    return stream


def _encode(dst: Any, stream: Any, rgb: Any) -> None:
    dst.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))


def preview_size(width: int, height: int, *, max_short_side: int = PREVIEW_MAX_HEIGHT) -> tuple[int, int]:
    """At most "720p": the short side capped at 720, so portrait videos stay 720x1280 on a phone."""
    scale = min(1.0, max_short_side / min(width, height))
    return int(width * scale) // 2 * 2, int(height * scale) // 2 * 2


def make_preview(src: Path, out: Path, *, duration: float) -> None:
    """A phone-sized copy: at most 720p and 45 MB per 30 s (bit rate capped accordingly)."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or Fraction(16)
        width, height = preview_size(stream.codec_context.width, stream.codec_context.height)
    budget = PREVIEW_BYTES_PER_30S * max(duration, 1.0) / 30.0
    bit_rate = int(min(3_000_000, 0.85 * budget * 8 / max(duration, 1.0)))
    with atomic_output(out) as tmp, av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        ostream = _h264_stream(dst, rate, width, height, crf=23, max_bit_rate=bit_rate)
        for frame in _frames(src):
            _encode(dst, ostream, frame.to_ndarray(width=width, height=height, format="rgb24"))
        dst.mux(ostream.encode())


def make_thumbnail(src: Path, out: Path, *, at_fraction: float = 0.5, max_width: int = 640) -> None:
    try:
        with av.open(str(src)) as container:
            total = container.streams.video[0].frames
    except (av.FFmpegError, IndexError) as exc:
        raise OutputInvalid(f"{src.name} has no video to take a thumbnail from: {exc}") from None
    wanted = int(total * at_fraction) if total else 0
    chosen = None
    for index, frame in enumerate(_frames(src)):  # decode up to the wanted frame only
        chosen = frame
        if index >= wanted:
            break
    if chosen is None:
        raise OutputInvalid(f"{src.name} has no frames to take a thumbnail from")
    image = chosen.to_image()  # type: ignore[no-untyped-call]
    image.thumbnail((max_width, max_width))
    with atomic_output(out) as tmp:
        image.save(tmp, format="JPEG", quality=85)
