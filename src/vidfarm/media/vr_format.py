"""VR output formats: projection + stereo layout → spherical metadata, file-name suffix and size advice.

Plain data shared by the node pack (which renders and saves) and the notebooks/service (which name and check files).
Facts from ../shared/reference/video.md §9 (Google Spatial Media V2, Meta/SKYBOX suffixes, YouTube/Quest limits).

    fmt = VRFormat("vr180", "sbs")
    fmt.metadata()        # SphericalMetadata(stereo_mode=LEFT_RIGHT, equirectangular, left/right bounds 0x3FFFFFFF)
    fmt.file_suffix()     # "_180_LR"
"""

from __future__ import annotations

from dataclasses import dataclass

from vidfarm.errors import VRFormatError
from vidfarm.media.spherical import SphericalMetadata, StereoMode

PROJECTIONS = ("flat", "vr180", "equirect360")
LAYOUTS = ("mono", "sbs", "tb")
_STEREO_MODES = {"mono": StereoMode.MONO, "sbs": StereoMode.LEFT_RIGHT, "tb": StereoMode.TOP_BOTTOM}
_LAYOUT_SUFFIX = {"mono": "", "sbs": "_LR", "tb": "_TB"}
_PROJECTION_SUFFIX = {"flat": "", "vr180": "_180", "equirect360": "_360"}


@dataclass(frozen=True)
class VRFormat:
    projection: str  # flat | vr180 | equirect360
    layout: str  # mono | sbs (left eye left) | tb (left eye on top)

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise VRFormatError(f"projection {self.projection!r} is not one of {', '.join(PROJECTIONS)}")
        if self.layout not in LAYOUTS:
            raise VRFormatError(f"layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        if self.projection == "vr180" and self.layout == "mono":
            raise VRFormatError("YouTube accepts VR180 only as stereo: duplicate the eye into 'sbs' for a mono source")

    @property
    def stereo_mode(self) -> StereoMode:
        return _STEREO_MODES[self.layout]

    def metadata(self, *, source: str = "vidfarm") -> SphericalMetadata | None:
        """What to inject; None for mono flat video (an ordinary file needs no boxes)."""
        if self.projection == "vr180":
            meta = SphericalMetadata.vr180(stereo_mode=self.stereo_mode)
        elif self.projection == "equirect360":
            meta = SphericalMetadata.equirect360(stereo_mode=self.stereo_mode)
        elif self.layout == "mono":
            return None
        else:
            meta = SphericalMetadata.flat3d(stereo_mode=self.stereo_mode)
        return SphericalMetadata(meta.stereo_mode, meta.projection, meta.bounds, source=source)

    def file_suffix(self) -> str:
        """`_180_LR`, `_360_TB`, `_360`, `_LR`, … (Meta 360 player / SKYBOX vocabulary)."""
        return _PROJECTION_SUFFIX[self.projection] + _LAYOUT_SUFFIX[self.layout]

    def eye_size(self, width: int, height: int) -> tuple[int, int]:
        """The size of one eye inside a packed frame of width x height."""
        if self.layout == "sbs":
            return width // 2, height
        if self.layout == "tb":
            return width, height // 2
        return width, height

    def size_notes(self, width: int, height: int, *, codec: str = "h264") -> list[str]:
        """Warnings about a packed frame size for YouTube and Quest; empty when nothing is off."""
        notes: list[str] = []
        if width % 2 or height % 2:
            notes.append(f"{width}x{height} has an odd side; yuv420p video needs even sizes")
        eye_w, eye_h = self.eye_size(width, height)
        expected = {"vr180": 1.0, "equirect360": 2.0}.get(self.projection)
        if expected and abs(eye_w / max(1, eye_h) - expected) > 0.01:
            notes.append(f"each eye is {eye_w}x{eye_h}; {self.projection} wants a {expected:g}:1 eye")
        if codec == "h264" and (width > 5760 or height > 5760 or width * height > 5760 * 2880):
            notes.append(f"{width}x{height} exceeds Quest's H.264 limit (5760x2880 at 30 fps); use H.265")
        if codec == "h265" and width * height > 4096 * 4096:
            notes.append(f"{width}x{height} exceeds Quest's H.265 limit (4096x4096 at 30 fps)")
        if self.projection == "equirect360" and width * height > 8192 * 4096:
            notes.append(f"{width}x{height} exceeds YouTube's 360 maximum (8192x4096)")
        if self.projection != "flat" and eye_w < 1920:
            notes.append(f"each eye is {eye_w} px wide: soft in a headset (below ~16 px per degree)")
        return notes


def parse_vr_format(projection: str, layout: str) -> VRFormat:
    return VRFormat(projection.strip().lower(), layout.strip().lower())
