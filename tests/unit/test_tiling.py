"""Tile planning: aspect geometry, tile grids, feather weights and the memory budget (plain math)."""

from __future__ import annotations

import pytest

from vidfarm.errors import TilingError
from vidfarm.media.tiling import (
    Box,
    Span,
    choose_tiling,
    count_tiles,
    feather_ramp,
    frame_geometry,
    plan_axis,
    plan_tiles,
    step_bytes,
)


@pytest.mark.parametrize(
    ("src", "mode", "source", "placed"),
    [
        ((1280, 720), "crop", Box(0, 0, 1280, 720), Box(0, 0, 2560, 1440)),  # same aspect: nothing cut
        ((1440, 1080), "crop", Box(0, 135, 1440, 810), Box(0, 0, 2560, 1440)),  # 4:3 -> 16:9 cuts top and bottom
        ((720, 1280), "crop", Box(0, 437, 720, 405), Box(0, 0, 2560, 1440)),  # portrait
        ((1440, 1080), "pad", Box(0, 0, 1440, 1080), Box(320, 0, 1920, 1440)),  # pillarbox
        ((2000, 500), "pad", Box(0, 0, 2000, 500), Box(0, 400, 2560, 640)),  # letterbox
        ((1440, 1080), "stretch", Box(0, 0, 1440, 1080), Box(0, 0, 2560, 1440)),
    ],
)
def test_geometry_reaches_exactly_the_target(src: tuple[int, int], mode: str, source: Box, placed: Box) -> None:
    g = frame_geometry(*src, 2560, 1440, mode)
    assert (g.source, g.placed, g.target_width, g.target_height) == (source, placed, 2560, 1440)
    assert g.pads == (mode == "pad" and placed != Box(0, 0, 2560, 1440))


def test_vr_target_and_odd_sizes_stay_inside_the_canvas() -> None:
    for src in ((1280, 704), (1, 1), (3, 1000), (1000, 3), (777, 333)):
        for mode in ("crop", "pad", "stretch"):
            g = frame_geometry(*src, 5760, 2880, mode)
            assert g.placed.left >= 0 and g.placed.left + g.placed.width <= 5760
            assert g.placed.top >= 0 and g.placed.top + g.placed.height <= 2880
            assert g.source.left + g.source.width <= src[0] and g.source.top + g.source.height <= src[1]
            assert min(g.source.width, g.source.height, g.placed.width, g.placed.height) >= 1


def test_bad_geometry_is_refused_with_the_options() -> None:
    with pytest.raises(TilingError, match="crop, pad, stretch"):
        frame_geometry(10, 10, 20, 20, "zoom")
    with pytest.raises(TilingError, match="positive"):
        frame_geometry(0, 10, 20, 20, "crop")


def test_axis_plan_covers_everything_with_at_least_the_overlap() -> None:
    for length in (1, 63, 64, 65, 100, 720, 1280, 1441):
        spans = plan_axis(length, 64, 8)
        assert spans[0].start == 0 and spans[-1].start + spans[-1].length == length
        for before, after in zip(spans, spans[1:], strict=False):
            shared = before.start + before.length - after.start
            assert shared >= 8 and shared == before.trail_overlap == after.lead_overlap
        assert spans[0].lead_overlap == 0 and spans[-1].trail_overlap == 0


def test_axis_plan_uses_equal_tiles_and_little_extra_work() -> None:
    spans = plan_axis(1280, 512, 32)
    assert [(s.start, s.length) for s in spans] == [(0, 448), (416, 448), (832, 448)]
    assert sum(s.length for s in plan_axis(720, 512, 32)) == 752  # 720 + one 32-pixel overlap


def test_axis_plan_needs_a_tile_larger_than_the_overlap() -> None:
    with pytest.raises(TilingError, match="larger than the overlap"):
        plan_axis(100, 16, 16)


def test_tile_grid_is_row_major_and_counts_match() -> None:
    tiles = plan_tiles(200, 100, tile=64, overlap=8)
    assert len(tiles) == count_tiles(200, 100, tile=64, overlap=8) == 4 * 2
    assert [t.y.start for t in tiles] == [0] * 4 + [46] * 4


def test_feather_ramp_is_one_inside_zero_at_cut_edges_and_rises_monotonically() -> None:
    weights = feather_ramp(Span(start=56, length=64, lead_overlap=16, trail_overlap=8), 2)
    assert len(weights) == 128
    assert weights[:8] == [0.0] * 8  # the outer quarter of the 32 shared output pixels
    assert weights[-4:] == [0.0] * 4
    assert weights[32:-16] == [1.0] * (128 - 48)
    lead = weights[:32]
    assert lead == sorted(lead) and 0 < lead[16] < 1


def test_feather_ramp_at_image_borders_stays_one() -> None:
    assert feather_ramp(Span(0, 10, 0, 0), 3) == [1.0] * 30


def test_overlapping_tiles_always_have_some_weight() -> None:
    for length, tile, overlap in ((100, 64, 8), (1000, 96, 12), (513, 512, 64)):
        total = [0.0] * length
        for span in plan_axis(length, tile, overlap):
            for i, w in enumerate(feather_ramp(span, 1)):
                total[span.start + i] += w
        assert min(total) > 0.2


def test_choose_tiling_takes_the_largest_tile_and_most_frames_that_fit() -> None:
    region = Box(0, 0, 1280, 720)
    big = choose_tiling(region, scale=2, target=(2560, 1440), budget_bytes=64 * 2**30, frames=100)
    assert (big.tile, big.overlap, big.frames_per_step) == (512, 32, 16)
    small = choose_tiling(region, scale=2, target=(2560, 1440), budget_bytes=600 * 2**20, frames=100)
    assert small.tile < 512 and small.frames_per_step == 1 and small.estimated_bytes <= 600 * 2**20
    assert small.estimated_bytes == step_bytes(region, tile=small.tile, scale=2, frames=1, target=(2560, 1440))


def test_choose_tiling_keeps_given_settings() -> None:
    t = choose_tiling(
        Box(0, 0, 64, 64),
        scale=4,
        target=(256, 256),
        budget_bytes=2**40,
        frames=9,
        tile=32,
        overlap=4,
        frames_per_step=3,
    )
    assert (t.tile, t.overlap, t.frames_per_step) == (32, 4, 3)


def test_lanczos_only_needs_no_activation_memory() -> None:
    region = Box(0, 0, 1280, 720)
    with_model = step_bytes(region, tile=512, scale=1, frames=1, target=(2560, 1440))
    without = step_bytes(region, tile=512, scale=1, frames=1, target=(2560, 1440), with_model=False)
    assert without < with_model and without == (1280 * 720 + 2560 * 1440) * 3 * 4


def test_not_even_the_smallest_tile_fitting_is_a_clear_error() -> None:
    with pytest.raises(TilingError, match=r"needs at least \d+ MiB .* 64-pixel tiles, but only 10 MiB is free"):
        choose_tiling(Box(0, 0, 1280, 720), scale=4, target=(3840, 2160), budget_bytes=10 * 2**20, frames=5)
