"""Spatial Media V2 boxes: byte layout, round trips on PyAV-written MP4s (faststart or not, stco or co64), files
that still decode to the same pixels, and what FFmpeg/PyAV reports back.

PyAV 18.1 exposes no stream-level side data (`Stream` has no `side_data`); FFmpeg's reading of `st3d`/`sv3d` is
visible only as per-frame side data (STEREO3D, SPHERICAL), which `read_side_data` decodes."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import pytest

from vidfarm.media.spherical import (
    VR180_SIDE_BOUND,
    Box,
    EquirectBounds,
    SphericalError,
    SphericalMetadata,
    StereoMode,
    encode_boxes,
    inject_spherical,
    inject_spherical_in_place,
    iter_boxes,
    parse_tree,
    read_side_data,
    read_spherical,
    shift_chunk_offsets,
    top_level_boxes,
    video_sample_entry,
)

W, H, FRAMES = 64, 32, 6


def make_mp4(path: Path, *, faststart: bool, codec: str = "libx264") -> Path:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(FRAMES):
            frame = av.VideoFrame(W, H, "yuv420p")
            for plane, value in zip(frame.planes, (40 + 30 * i, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_levels(path: Path) -> list[int]:
    """The mean luma of each decoded frame's first row: proves the sample data is still found where it lies."""
    with av.open(str(path)) as container:
        return [round(sum(bytes(f.planes[0])[:W]) / W) for f in container.decode(video=0)]


def box_order(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [kind for kind, _, _ in top_level_boxes(handle)]


def to_co64(source: Path, dest: Path) -> None:
    """Rewrite a faststart file's stco as co64 (what big files use), shifting offsets for the grown moov."""
    data = source.read_bytes()
    (payload_start, moov_end) = next((s, e) for k, s, e in iter_boxes(data) if k == b"moov")
    moov_start = payload_start - 8
    moov = parse_tree(data[payload_start:moov_end])
    stbl = [b for b in _all(moov) if b.kind == b"stbl"]
    for table in stbl:
        for i, child in enumerate(table.children or []):
            if child.kind == b"stco":
                (count,) = struct.unpack_from(">I", child.payload, 4)
                offsets = struct.unpack_from(f">{count}I", child.payload, 8)
                table.children[i] = Box(b"co64", child.payload[:8] + struct.pack(f">{count}Q", *offsets))  # type: ignore[index]
    grown = len(moov.encode()) - (moov_end - moov_start)
    shift_chunk_offsets(moov, after=moov_end, delta=grown)
    dest.write_bytes(data[:moov_start] + moov.encode() + data[moov_end:])


def _all(box: Box) -> list[Box]:
    return [box] + [d for c in box.children or [] for d in _all(c)]


def test_st3d_and_sv3d_bytes_follow_the_rfc() -> None:
    data = encode_boxes(SphericalMetadata.vr180())
    assert data[:13] == b"\x00\x00\x00\x0dst3d\x00\x00\x00\x00\x02"
    boxes = list(iter_boxes(data))
    assert [k for k, _, _ in boxes] == [b"st3d", b"sv3d"]
    sv3d = parse_tree(data[boxes[1][1] : boxes[1][2]], b"sv3d")
    assert [c.kind for c in sv3d.children or []] == [b"svhd", b"proj"]
    proj = sv3d.child(b"proj")
    assert proj is not None and [c.kind for c in proj.children or []] == [b"prhd", b"equi"]
    equi = proj.child(b"equi")
    assert equi is not None and struct.unpack(">IIII", equi.payload[4:]) == (0, 0, VR180_SIDE_BOUND, VR180_SIDE_BOUND)
    assert sv3d.child(b"svhd") is not None and sv3d.child(b"svhd").payload[4:] == b"vidfarm\0"  # type: ignore[union-attr]


def test_flat_3d_writes_only_st3d() -> None:
    data = encode_boxes(SphericalMetadata.flat3d(stereo_mode=StereoMode.TOP_BOTTOM))
    assert data == b"\x00\x00\x00\x0dst3d\x00\x00\x00\x00\x01"


@pytest.mark.parametrize("faststart", [True, False])
@pytest.mark.parametrize(
    "meta",
    [
        SphericalMetadata.vr180(),
        SphericalMetadata.vr180(stereo_mode=StereoMode.TOP_BOTTOM),
        SphericalMetadata.equirect360(),
        SphericalMetadata.equirect360(stereo_mode=StereoMode.TOP_BOTTOM),
        SphericalMetadata.flat3d(stereo_mode=StereoMode.LEFT_RIGHT),
        SphericalMetadata(StereoMode.MONO, "equirectangular", EquirectBounds(1, 2, 3, 4), yaw=90, pitch=-10.5, roll=2),
    ],
)
def test_round_trip_keeps_values_and_pixels(tmp_path: Path, faststart: bool, meta: SphericalMetadata) -> None:
    plain = make_mp4(tmp_path / "plain.mp4", faststart=faststart)
    out = tmp_path / "vr.mp4"
    inject_spherical(plain, out, meta)
    assert read_spherical(plain) is None
    assert read_spherical(out) == meta
    assert box_order(out) == box_order(plain)
    assert frame_levels(out) == frame_levels(plain) == [40 + 30 * i for i in range(FRAMES)]


def test_faststart_shifts_chunk_offsets_and_keeps_mdat_bytes(tmp_path: Path) -> None:
    plain = make_mp4(tmp_path / "plain.mp4", faststart=True)
    out = tmp_path / "vr.mp4"
    inject_spherical(plain, out, SphericalMetadata.vr180())
    assert box_order(plain).index(b"moov") < box_order(plain).index(b"mdat")
    grown = out.stat().st_size - plain.stat().st_size
    assert grown == len(encode_boxes(SphericalMetadata.vr180()))
    with plain.open("rb") as a, out.open("rb") as b:
        mdat_a = next((s, e) for k, s, e in top_level_boxes(a) if k == b"mdat")
        mdat_b = next((s, e) for k, s, e in top_level_boxes(b) if k == b"mdat")
    assert mdat_b[0] - mdat_a[0] == grown
    assert plain.read_bytes()[mdat_a[0] : mdat_a[1]] == out.read_bytes()[mdat_b[0] : mdat_b[1]]


def test_non_faststart_leaves_everything_before_moov_untouched(tmp_path: Path) -> None:
    plain = make_mp4(tmp_path / "plain.mp4", faststart=False)
    out = tmp_path / "vr.mp4"
    inject_spherical(plain, out, SphericalMetadata.equirect360())
    with plain.open("rb") as handle:
        moov_start = next(s for k, s, _ in top_level_boxes(handle) if k == b"moov")
    assert out.read_bytes()[:moov_start] == plain.read_bytes()[:moov_start]


def test_co64_files_are_shifted_too(tmp_path: Path) -> None:
    plain = make_mp4(tmp_path / "plain.mp4", faststart=True)
    wide = tmp_path / "wide.mp4"
    to_co64(plain, wide)
    assert b"co64" in wide.read_bytes() and b"stco" not in wide.read_bytes()
    assert frame_levels(wide) == frame_levels(plain)  # the helper itself is right
    out = tmp_path / "vr.mp4"
    inject_spherical(wide, out, SphericalMetadata.vr180())
    assert read_spherical(out) == SphericalMetadata.vr180()
    assert frame_levels(out) == [40 + 30 * i for i in range(FRAMES)]


def test_reinjecting_replaces_instead_of_stacking(tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "clip.mp4", faststart=True)
    inject_spherical_in_place(path, SphericalMetadata.vr180())
    inject_spherical_in_place(path, SphericalMetadata.equirect360(stereo_mode=StereoMode.TOP_BOTTOM))
    assert path.read_bytes().count(b"st3d") == 1 and path.read_bytes().count(b"sv3d") == 1
    assert read_spherical(path) == SphericalMetadata.equirect360(stereo_mode=StereoMode.TOP_BOTTOM)
    assert frame_levels(path) == [40 + 30 * i for i in range(FRAMES)]
    assert not list(tmp_path.glob(".part-*"))


def test_hevc_sample_entry_is_found(tmp_path: Path) -> None:
    plain = make_mp4(tmp_path / "hevc.mp4", faststart=True, codec="libx265")
    out = tmp_path / "vr.mp4"
    inject_spherical(plain, out, SphericalMetadata.vr180())
    data = out.read_bytes()
    moov = next((s, e) for k, s, e in iter_boxes(data) if k == b"moov")
    assert video_sample_entry(parse_tree(data[moov[0] : moov[1]])).kind in (b"hev1", b"hvc1")
    assert read_spherical(out) == SphericalMetadata.vr180()
    assert frame_levels(out) == frame_levels(plain)


def test_ffmpeg_reads_the_boxes_back_as_side_data(tmp_path: Path) -> None:
    plain = make_mp4(tmp_path / "plain.mp4", faststart=True)
    cases = {
        "vr180.mp4": (SphericalMetadata.vr180(), "side_by_side", "equirectangular_tile"),
        "tb360.mp4": (
            SphericalMetadata.equirect360(stereo_mode=StereoMode.TOP_BOTTOM),
            "top_bottom",
            "equirectangular",
        ),
        "flat.mp4": (SphericalMetadata.flat3d(stereo_mode=StereoMode.LEFT_RIGHT), "side_by_side", None),
    }
    for name, (meta, stereo, projection) in cases.items():
        inject_spherical(plain, tmp_path / name, meta)
        seen = read_side_data(tmp_path / name)
        assert (seen.stereo, seen.projection, seen.frames) == (stereo, projection, FRAMES), name
    vr180 = read_side_data(tmp_path / "vr180.mp4")
    assert vr180.bounds == (VR180_SIDE_BOUND, 0, VR180_SIDE_BOUND, 0)  # left, top, right, bottom
    assert read_side_data(plain).stereo is None and read_side_data(plain).projection is None
    with av.open(str(tmp_path / "vr180.mp4")) as container:
        assert not hasattr(container.streams.video[0], "side_data")  # PyAV 18.1: frame side data only


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"hello, this is not a video at all")
    with pytest.raises(SphericalError, match="not an MP4"):
        inject_spherical(text, tmp_path / "out.mp4", SphericalMetadata.vr180())
    clip = make_mp4(tmp_path / "clip.mp4", faststart=False)
    with pytest.raises(SphericalError, match="destination other than"):
        inject_spherical(clip, clip, SphericalMetadata.vr180())
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[:-100])
    with pytest.raises(SphericalError, match="truncated"):
        inject_spherical(truncated, tmp_path / "out2.mp4", SphericalMetadata.vr180())
