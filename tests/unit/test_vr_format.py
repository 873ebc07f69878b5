"""VR formats: the metadata, file-name suffix and size advice for each projection and layout."""

from __future__ import annotations

import pytest

from vidfarm.errors import VRFormatError
from vidfarm.media.spherical import VR180_SIDE_BOUND, StereoMode
from vidfarm.media.vr_format import VRFormat, parse_vr_format


@pytest.mark.parametrize(
    ("projection", "layout", "suffix", "mode"),
    [
        ("vr180", "sbs", "_180_LR", StereoMode.LEFT_RIGHT),
        ("vr180", "tb", "_180_TB", StereoMode.TOP_BOTTOM),
        ("equirect360", "tb", "_360_TB", StereoMode.TOP_BOTTOM),
        ("equirect360", "mono", "_360", StereoMode.MONO),
        ("flat", "sbs", "_LR", StereoMode.LEFT_RIGHT),
    ],
)
def test_suffix_and_stereo_mode(projection: str, layout: str, suffix: str, mode: StereoMode) -> None:
    fmt = VRFormat(projection, layout)
    assert fmt.file_suffix() == suffix
    meta = fmt.metadata()
    assert meta is not None and meta.stereo_mode == mode


def test_projection_boxes() -> None:
    vr180 = VRFormat("vr180", "sbs").metadata()
    assert vr180 is not None and vr180.projection == "equirectangular"
    assert (vr180.bounds.left, vr180.bounds.right, vr180.bounds.top, vr180.bounds.bottom) == (
        VR180_SIDE_BOUND,
        VR180_SIDE_BOUND,
        0,
        0,
    )
    full = VRFormat("equirect360", "mono").metadata()
    assert full is not None and full.bounds.left == full.bounds.right == 0
    flat = VRFormat("flat", "tb").metadata()
    assert flat is not None and flat.projection is None
    assert VRFormat("flat", "mono").metadata() is None


def test_mono_vr180_and_unknown_names_are_refused_with_advice() -> None:
    with pytest.raises(VRFormatError, match="duplicate the eye"):
        VRFormat("vr180", "mono")
    with pytest.raises(VRFormatError, match="one of flat, vr180, equirect360"):
        parse_vr_format("fisheye", "sbs")
    assert parse_vr_format(" VR180 ", "SBS") == VRFormat("vr180", "sbs")


def test_size_notes_follow_youtube_and_quest_limits() -> None:
    assert VRFormat("vr180", "sbs").size_notes(5760, 2880) == []
    assert any("Quest's H.264" in n for n in VRFormat("vr180", "sbs").size_notes(8192, 4096))
    assert VRFormat("equirect360", "tb").size_notes(4096, 4096, codec="h265") == []  # Quest's square stereo 360
    assert VRFormat("equirect360", "sbs").size_notes(4096, 4096, codec="h265") == [
        "each eye is 2048x4096; equirect360 wants a 2:1 eye"
    ]
    assert any("odd side" in n for n in VRFormat("flat", "sbs").size_notes(641, 360))
    assert any("soft in a headset" in n for n in VRFormat("vr180", "sbs").size_notes(512, 256))
