"""Google Spatial Media V2 metadata in MP4: write and read `st3d` and `sv3d{svhd, proj{prhd, equi}}`.

ffmpeg and PyAV cannot create these boxes (reference: video.md §9), so vidfarm writes them itself. They go inside
the video track's VisualSampleEntry (`moov/trak/mdia/minf/stbl/stsd/avc1|hvc1|…`), after its 78-byte fixed part:

    st3d  FullBox  u8 stereo_mode        0 mono, 1 top-bottom (left on top), 2 left-right, 3 custom, 4 right-left
    sv3d  Box
      svhd  FullBox  metadata_source (NUL-terminated UTF-8)
      proj  Box
        prhd  FullBox  i32 yaw, pitch, roll (16.16 fixed-point degrees)
        equi  FullBox  u32 bounds top, bottom, left, right (0.32 fixed-point fractions cut from each side)

    inject_spherical("in.mp4", "out.mp4", SphericalMetadata.vr180(stereo_mode=StereoMode.LEFT_RIGHT))
    read_spherical("out.mp4")  ->  SphericalMetadata(...)

Only `moov` is rewritten; every other top-level box is copied byte for byte. When `moov` grows and sample data
follows it (a faststart file), every `stco`/`co64` chunk offset that points past the old `moov` is shifted by the
growth, so the file still plays.
"""

from __future__ import annotations

import enum
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vidfarm.errors import SphericalError

VISUAL_SAMPLE_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1", b"av01", b"vp09", b"mp4v"}
VISUAL_ENTRY_FIXED = 78  # bytes of a VisualSampleEntry before its child boxes (ISO 14496-12 §12.1.3)
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"sv3d", b"proj"}
VR180_SIDE_BOUND = 0x3FFFFFFF  # 0.25 of the width cut from the left and from the right: 180° of 360°
COPY_CHUNK = 1 << 20


class StereoMode(enum.IntEnum):
    MONO = 0
    TOP_BOTTOM = 1
    LEFT_RIGHT = 2
    CUSTOM = 3
    RIGHT_LEFT = 4


@dataclass(frozen=True)
class EquirectBounds:
    """Fractions (0.32 fixed point) of the full sphere's equirectangular image cut from each side."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class SphericalMetadata:
    stereo_mode: StereoMode
    projection: str | None  # "equirectangular" or None for flat 3D (`st3d` only)
    bounds: EquirectBounds = field(default_factory=EquirectBounds)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    source: str = "vidfarm"

    @classmethod
    def vr180(cls, *, stereo_mode: StereoMode = StereoMode.LEFT_RIGHT) -> SphericalMetadata:
        return cls(stereo_mode, "equirectangular", EquirectBounds(left=VR180_SIDE_BOUND, right=VR180_SIDE_BOUND))

    @classmethod
    def equirect360(cls, *, stereo_mode: StereoMode = StereoMode.MONO) -> SphericalMetadata:
        return cls(stereo_mode, "equirectangular")

    @classmethod
    def flat3d(cls, *, stereo_mode: StereoMode) -> SphericalMetadata:
        return cls(stereo_mode, None)


# --- box encoding -----------------------------------------------------------------------------------------------
def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, payload: bytes, *, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _fixed_16_16(degrees: float) -> int:
    return int(round(degrees * 65536))


def encode_boxes(meta: SphericalMetadata) -> bytes:
    """The `st3d` box, followed by `sv3d` unless the video is flat 3D."""
    out = _full_box(b"st3d", struct.pack(">B", int(meta.stereo_mode)))
    if meta.projection is None:
        return out
    if meta.projection != "equirectangular":
        raise SphericalError(f"projection {meta.projection!r} is not supported; use 'equirectangular' or None")
    svhd = _full_box(b"svhd", meta.source.encode("utf-8") + b"\0")
    prhd = _full_box(b"prhd", struct.pack(">iii", *(_fixed_16_16(a) for a in (meta.yaw, meta.pitch, meta.roll))))
    b = meta.bounds
    equi = _full_box(b"equi", struct.pack(">IIII", b.top, b.bottom, b.left, b.right))
    return out + _box(b"sv3d", svhd + _box(b"proj", prhd + equi))


# --- box tree ---------------------------------------------------------------------------------------------------
@dataclass
class Box:
    kind: bytes
    payload: bytes = b""  # leaf data, or the fixed prefix of a container (stsd header, sample-entry fields)
    children: list[Box] | None = None

    def encode(self) -> bytes:
        body = self.payload + b"".join(c.encode() for c in self.children or [])
        if 8 + len(body) > 0xFFFFFFFF:
            return struct.pack(">I4sQ", 1, self.kind, 16 + len(body)) + body
        return _box(self.kind, body)

    def child(self, kind: bytes) -> Box | None:
        return next((c for c in self.children or [] if c.kind == kind), None)


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) for each box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise SphericalError(f"broken MP4: box {kind!r} at byte {pos} claims {size} bytes")
        yield kind, pos + header, pos + size
        pos += size


def _prefix_length(kind: bytes, parent: bytes) -> int | None:
    """How many payload bytes precede the child boxes, or None for a leaf."""
    if kind in CONTAINERS:
        return 0
    if kind == b"stsd":
        return 8  # FullBox header + entry_count
    if parent == b"stsd" and kind in VISUAL_SAMPLE_ENTRIES:
        return VISUAL_ENTRY_FIXED
    return None


def parse_tree(data: bytes, kind: bytes = b"moov", parent: bytes = b"") -> Box:
    """A box tree for one box's payload (`data`), descending only into the boxes vidfarm needs."""
    prefix = _prefix_length(kind, parent)
    if prefix is None:
        return Box(kind, data)
    children = [parse_tree(data[s:e], k, kind) for k, s, e in iter_boxes(data, prefix)]
    return Box(kind, data[:prefix], children)


def _walk(box: Box) -> Iterator[Box]:
    yield box
    for c in box.children or []:
        yield from _walk(c)


def video_sample_entry(moov: Box) -> Box:
    """The VisualSampleEntry of the first video track (the one with a `vmhd`)."""
    for trak in (c for c in moov.children or [] if c.kind == b"trak"):
        minf = _path(trak, b"mdia", b"minf")
        if minf is None or minf.child(b"vmhd") is None:
            continue
        stsd = _path(minf, b"stbl", b"stsd")
        entry = next((c for c in (stsd.children if stsd else None) or [] if c.kind in VISUAL_SAMPLE_ENTRIES), None)
        if entry is not None:
            return entry
    raise SphericalError("the MP4 has no video track with an avc1/hvc1/av01 sample entry to carry spherical metadata")


def _path(box: Box, *kinds: bytes) -> Box | None:
    found: Box | None = box
    for kind in kinds:
        found = found.child(kind) if found else None
    return found


# --- chunk offsets ----------------------------------------------------------------------------------------------
def shift_chunk_offsets(moov: Box, *, after: int, delta: int) -> None:
    for box in _walk(moov):
        if box.kind not in (b"stco", b"co64"):
            continue
        wide = box.kind == b"co64"
        (count,) = struct.unpack_from(">I", box.payload, 4)
        fmt = f">{count}{'Q' if wide else 'I'}"
        offsets = [o + delta if o >= after else o for o in struct.unpack_from(fmt, box.payload, 8)]
        if not wide and offsets and max(offsets) > 0xFFFFFFFF:
            raise SphericalError("chunk offsets outgrow 32 bits after injection; remux the file with co64 offsets")
        box.payload = box.payload[:8] + struct.pack(fmt, *offsets)


# --- file level -------------------------------------------------------------------------------------------------
def top_level_boxes(handle: BinaryIO) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of every top-level box, reading only headers."""
    handle.seek(0, 2)
    total = handle.tell()
    boxes, pos = [], 0
    while pos + 8 <= total:
        handle.seek(pos)
        size, kind = struct.unpack(">I4s", handle.read(8))
        if size == 1:
            (size,) = struct.unpack(">Q", handle.read(8))
        elif size == 0:
            size = total - pos
        if size < 8 or pos + size > total:
            raise SphericalError(f"not an MP4 (or truncated): top-level box {kind!r} at byte {pos} claims {size} bytes")
        boxes.append((kind, pos, pos + size))
        pos += size
    if not any(k == b"moov" for k, _, _ in boxes):
        raise SphericalError("not an MP4 vidfarm can annotate: no 'moov' box (was the encode finished?)")
    return boxes


def _read_moov(handle: BinaryIO, boxes: list[tuple[bytes, int, int]]) -> tuple[Box, int, int]:
    start, end = next((s, e) for k, s, e in boxes if k == b"moov")
    handle.seek(start)
    raw = handle.read(end - start)
    header = 16 if struct.unpack_from(">I", raw)[0] == 1 else 8
    return parse_tree(raw[header:]), start, end


def inject_spherical(source: str | Path, dest: str | Path, meta: SphericalMetadata) -> None:
    """Copy `source` to `dest` with the metadata in the video sample entry (replacing any that was there)."""
    source, dest = Path(source), Path(dest)
    if source.resolve() == dest.resolve():
        raise SphericalError(f"inject_spherical writes a new file; give a destination other than {source}")
    with source.open("rb") as src:
        boxes = top_level_boxes(src)
        moov, start, end = _read_moov(src, boxes)
        entry = video_sample_entry(moov)
        kept = [c for c in entry.children or [] if c.kind not in (b"st3d", b"sv3d")]
        encoded = encode_boxes(meta)
        entry.children = kept + [Box(k, encoded[s:e]) for k, s, e in iter_boxes(encoded)]
        new_moov = moov.encode()
        shift_chunk_offsets(moov, after=end, delta=len(new_moov) - (end - start))
        new_moov = moov.encode()
        with dest.open("wb") as out:
            for kind, box_start, box_end in boxes:
                if kind == b"moov":
                    out.write(new_moov)
                    continue
                src.seek(box_start)
                _copy(src, out, box_end - box_start)


def _copy(src: BinaryIO, out: BinaryIO, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = src.read(min(COPY_CHUNK, remaining))
        if not chunk:
            raise SphericalError("the MP4 ended while being copied (truncated file)")
        out.write(chunk)
        remaining -= len(chunk)


def inject_spherical_in_place(path: str | Path, meta: SphericalMetadata) -> None:
    """Annotate `path` through a sibling temporary file, replaced atomically when complete."""
    path = Path(path)
    temp = path.with_name(f".part-{path.name}")
    try:
        inject_spherical(path, temp, meta)
        shutil.move(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def read_spherical(path: str | Path) -> SphericalMetadata | None:
    """The metadata in the video sample entry, or None when it carries no `st3d`."""
    with Path(path).open("rb") as handle:
        moov, _, _ = _read_moov(handle, top_level_boxes(handle))
    return decode_entry(video_sample_entry(moov))


def decode_entry(entry: Box) -> SphericalMetadata | None:
    st3d = entry.child(b"st3d")
    if st3d is None:
        return None
    mode = StereoMode(st3d.payload[4])
    sv3d = entry.child(b"sv3d")
    if sv3d is None:
        return SphericalMetadata(mode, None)
    svhd, proj = sv3d.child(b"svhd"), sv3d.child(b"proj")
    if svhd is None or proj is None:
        raise SphericalError("sv3d lacks its mandatory svhd or proj box")
    source = svhd.payload[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
    prhd, equi = proj.child(b"prhd"), proj.child(b"equi")
    yaw = pitch = roll = 0.0
    if prhd is not None:
        yaw, pitch, roll = (v / 65536 for v in struct.unpack_from(">iii", prhd.payload, 4))
    if equi is None:
        raise SphericalError("proj carries no equi box; only equirectangular projections are read")
    bounds = EquirectBounds(*struct.unpack_from(">IIII", equi.payload, 4))
    return SphericalMetadata(mode, "equirectangular", bounds, yaw, pitch, roll, source)


# --- what FFmpeg (PyAV) makes of it -----------------------------------------------------------------------------
_FFMPEG_STEREO = {0: "2d", 1: "side_by_side", 2: "top_bottom"}
_FFMPEG_PROJECTION = {0: "equirectangular", 1: "cubemap", 2: "equirectangular_tile"}


@dataclass(frozen=True)
class DecodedSideData:
    """FFmpeg's reading of the boxes, from the first decoded frame's side data (PyAV has no stream side data)."""

    stereo: str | None  # "2d" | "side_by_side" | "top_bottom" | other FFmpeg names
    projection: str | None  # "equirectangular" | "equirectangular_tile" (bounds set, e.g. VR180) | ...
    bounds: tuple[int, int, int, int] | None  # left, top, right, bottom (0.32 fixed point)
    frames: int  # frames that decoded


def read_side_data(path: str | Path) -> DecodedSideData:
    """Decode the file with PyAV and report FFmpeg's view of its stereo and spherical side data."""
    import av  # heavy; only here

    found: dict[str, tuple[int, ...]] = {}
    with av.open(str(path)) as container:
        frames = 0
        for frame in container.decode(video=0):
            if frames == 0:
                found = _side_data_words(frame)
            frames += 1
    stereo = _FFMPEG_STEREO.get(found["STEREO3D"][0]) if "STEREO3D" in found else None
    spherical = found.get("SPHERICAL")
    projection = _FFMPEG_PROJECTION.get(spherical[0], f"type {spherical[0]}") if spherical else None
    bounds = (spherical[4], spherical[5], spherical[6], spherical[7]) if spherical else None
    return DecodedSideData(stereo, projection, bounds, frames)


def _side_data_words(frame: Any) -> dict[str, tuple[int, ...]]:
    """Type name → the first nine little-endian u32 of that side data (AVStereo3D / AVSphericalMapping)."""
    side_data = frame.side_data
    # Iterating yields SideData objects up to PyAV 17 and Type keys from PyAV 18, where it became a mapping.
    items: list[Any] = [entry if hasattr(entry, "type") else side_data[entry] for entry in side_data]
    blobs = [(item.type.name, bytes(item)) for item in items]
    return {name: struct.unpack_from("<9I", blob) for name, blob in blobs if len(blob) >= 36}
