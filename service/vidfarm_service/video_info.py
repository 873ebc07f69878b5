"""A video's width, height and duration from its container header, without decoding frames (for sendVideo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def video_metadata(path: Path) -> dict[str, Any]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        if not duration and container.duration:
            duration = container.duration / 1_000_000
        return {"width": stream.codec_context.width, "height": stream.codec_context.height, "duration": duration}
