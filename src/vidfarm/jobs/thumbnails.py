"""Keyframe thumbnails while a job renders: each keyframe the head reports finished (its `vidfarm.tasks` event) is
fetched once from the head, shrunk to a small JPEG in the job's folder (`keyframes/key-03.jpg`) and named in the
progress log, so the phone can show the subject before the video exists. A thumbnail that cannot be made is
skipped with a log line: it never fails the job."""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from vidfarm.comfy.client import ComfyClient, FileRef

log = logging.getLogger(__name__)
SIDE = 480  # px, the longer side: a phone's inline photo, a few tens of kB
FETCH_S = 20.0  # a thumbnail is fetched inside the progress callback: never hold the job's events for long


class KeyframeThumbnails:
    def __init__(self, client: ComfyClient, folder: Path) -> None:
        self.client, self.folder = client, folder
        self.made: dict[str, Path] = {}  # keyframe index -> thumbnail
        self.tried: set[str] = set()  # each keyframe fetched once, made or not

    def update(self, refs: tuple[FileRef, ...]) -> list[str]:
        """Make the thumbnails of keyframes not seen before; every thumbnail so far, in keyframe order."""
        for ref in refs:
            if ref.node_id not in self.tried:
                self.tried.add(ref.node_id)
                self._make(ref)
        return [str(self.made[k]) for k in sorted(self.made, key=lambda k: int(k) if k.isdigit() else 0)]

    def _make(self, ref: FileRef) -> None:
        index = int(ref.node_id) if ref.node_id.isdigit() else 0
        target = self.folder / f"key-{index:02d}.jpg"
        try:
            downloaded = self.client.download(ref, self.folder / ".download", timeout=FETCH_S)
            with Image.open(downloaded) as image:
                image.thumbnail((SIDE, SIDE))
                image.convert("RGB").save(target, "JPEG", quality=85)
            downloaded.unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - whatever it was (network, a decoder, the disk), the job goes on
            log.warning("keyframe %s: no thumbnail (%s: %s)", ref.node_id, type(exc).__name__, exc)
            return
        self.made[ref.node_id] = target
