"""VidfarmTiledUpscale on a real ComfyUI (CPU) with a tiny random-weight Compact x2 model made by the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support.random_upscale_model import make_random_compact
from vidfarm.comfy import ComfyClient, Progress, PromptRun
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import ExecutionFailed, ExecutionInterrupted
from vidfarm.media.tiling import count_tiles, plan_axis

Graph = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def model_name(comfy_server: LocalComfy) -> str:
    return make_random_compact(comfy_server.base_dir / "models", scale=2, seed=1)


def source_nodes(width: int, height: int, frames: int, *, seed: int = 3, noise: float = 0.3) -> Graph:
    """Textured, moving frames: the stand-in pattern plus fixed noise (the same frame t in any batch length)."""
    return {
        "1": {
            "class_type": "VidfarmStandInVideo",
            "inputs": {"prompt": "tiles", "seed": seed, "width": width, "height": height, "frames": frames},
        },
        "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 5, "strength": noise}},
    }


def upscale_node(image: list[Any], model: str | None, **settings: Any) -> Graph:
    inputs = {
        "images": image,
        "width": 2560,
        "height": 1440,
        "aspect": "crop",
        "tile_size": 0,
        "overlap": 0,
        "frames_per_step": 0,
        "memory_budget_mb": 0,
        **settings,
    }
    nodes: Graph = {"10": {"class_type": "VidfarmTiledUpscale", "inputs": inputs}}
    if model:
        nodes["9"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}}
        inputs["upscale_model"] = ["9", 0]
    return nodes


def save(image: list[Any], prefix: str) -> Graph:
    return {"20": {"class_type": "SaveImage", "inputs": {"images": image, "filename_prefix": f"vidfarm/t/{prefix}"}}}


def frames_of(client: ComfyClient, graph: Graph, dest: Path, **kwargs: Any) -> list[np.ndarray]:
    result = PromptRun(client, graph, dest_dir=dest, **kwargs).wait()
    paths = sorted(o.path for o in result.outputs)
    return [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255.0 for p in paths]


def builtin_untiled(client: ComfyClient, model: str, w: int, h: int, dest: Path, noise: float) -> list[np.ndarray]:
    graph = {
        **source_nodes(w, h, 1, noise=noise),
        "9": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}},
        "11": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["9", 0], "image": ["2", 0]}},
        **save(["11", 0], "builtin"),
    }
    return frames_of(client, graph, dest)


def builtin_halves(client: ComfyClient, model: str, w: int, h: int, dest: Path) -> list[np.ndarray]:
    graph: Graph = {
        **source_nodes(w, h, 1, noise=0.0),
        "9": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}},
    }
    for i, x in enumerate((0, w // 2)):
        crop = {"image": ["2", 0], "width": w // 2, "height": h, "x": x, "y": 0}
        graph[f"3{i}"] = {"class_type": "ImageCrop", "inputs": crop}
        graph[f"4{i}"] = {
            "class_type": "ImageUpscaleWithModel",
            "inputs": {"upscale_model": ["9", 0], "image": [f"3{i}", 0]},
        }
        graph[f"5{i}"] = save([f"4{i}", 0], f"half{i}")["20"]
    return frames_of(client, graph, dest)


def seam_excess(picture: np.ndarray, reference: np.ndarray, edges: list[int], *, band: int = 4) -> float:
    """How much larger the difference from the untiled reference is across tile edges (columns within `band` of an
    edge) than inside the tiles, in 1/255 steps. A seam is a difference concentrated at the edges."""
    per_column = np.abs(picture - reference).mean(axis=(0, 2)) * 255
    near = np.zeros(per_column.shape[0], dtype=bool)
    for edge in edges:
        near[max(0, edge - band) : edge + band] = True
    return float(per_column[near].mean() - per_column[~near].mean())


def tile_edge_columns(width: int, tile: int, overlap: int, scale: int) -> list[int]:
    """Output columns where a tile starts or ends (where an unblended tiling would show a seam)."""
    spans = plan_axis(width, tile, overlap)
    columns = {s.start * scale for s in spans} | {(s.start + s.length) * scale for s in spans}
    return sorted(c for c in columns if 0 < c < width * scale)


def test_tiled_equals_untiled_away_from_borders_and_shows_no_seams(
    client: ComfyClient, model_name: str, tmp_path: Path
) -> None:
    w, h, tile, overlap = 96, 64, 40, 16
    graph = {
        **source_nodes(w, h, 1, noise=0.0),
        **upscale_node(["2", 0], model_name, width=2 * w, height=2 * h, tile_size=tile, overlap=overlap),
        **save(["10", 0], "tiled"),
    }
    seen: list[Progress] = []
    (tiled,) = frames_of(client, graph, tmp_path / "tiled", on_progress=lambda p: seen.append(Progress(**vars(p))))
    (untiled,) = builtin_untiled(client, model_name, w, h, tmp_path / "untiled", 0.0)  # one 512 tile: the whole frame
    assert tiled.shape == untiled.shape == (2 * h, 2 * w, 3)
    inner = (slice(16, -16), slice(16, -16))
    difference = np.abs(tiled[inner] - untiled[inner])
    assert difference.mean() < 0.2 / 255 and difference.max() <= 2.0 / 255 + 1e-9
    edges = tile_edge_columns(w, tile, overlap, 2)
    assert seam_excess(tiled, untiled, edges) < 0.1
    # The metric does see a real seam: the built-in node run on the two halves separately, then joined.
    naive = np.hstack(builtin_halves(client, model_name, w, h, tmp_path / "halves"))
    assert seam_excess(naive, untiled, [w]) > 0.3
    # Progress ticks come from our node: one per tile (4 x 2 tiles), for the head's progress bar.
    ticks = {(p.step, p.steps) for p in seen if p.node_class == "VidfarmTiledUpscale" and p.steps}
    assert max(ticks) == (8, 8) == (count_tiles(w, h, tile=tile, overlap=overlap),) * 2


def test_the_same_frame_in_two_batches_gives_the_same_pixels(
    client: ComfyClient, model_name: str, tmp_path: Path
) -> None:
    outputs = []
    for frames in (3, 1):  # all three frames through each tile together, then the first frame alone
        graph = {
            **source_nodes(64, 48, frames),
            **upscale_node(["2", 0], model_name, width=160, height=90, tile_size=32, overlap=8, frames_per_step=frames),
            **save(["10", 0], f"batch{frames}"),
        }
        outputs.append(frames_of(client, graph, tmp_path / str(frames)))
    assert len(outputs[0]) == 3 and len(outputs[1]) == 1
    assert np.array_equal(outputs[0][0], outputs[1][0])
    assert not np.array_equal(outputs[0][0], outputs[0][1])  # the frames do differ


@pytest.mark.parametrize("with_model", [False, True])
def test_every_aspect_mode_gives_exactly_the_target_size(
    client: ComfyClient, model_name: str, tmp_path: Path, with_model: bool
) -> None:
    model = model_name if with_model else None
    graph: Graph = source_nodes(80, 60, 1)  # 4:3 into 16:9
    for i, aspect in enumerate(("crop", "pad", "stretch")):
        nodes = upscale_node(["2", 0], model, width=192, height=108, aspect=aspect, tile_size=32, overlap=8)
        upscale = nodes.pop("10")
        graph[f"1{i}"] = upscale
        if model:
            graph["9"] = nodes["9"]
        graph[f"2{i}"] = save([f"1{i}", 0], f"aspect_{aspect}_{with_model}")["20"]
    crop, pad, stretch = frames_of(client, graph, tmp_path)  # files sort by prefix: crop, pad, stretch
    assert crop.shape == pad.shape == stretch.shape == (108, 192, 3)
    # 4:3 in 192x108 is 144 wide: black bars of 24 columns, the picture right up to them.
    assert pad[:, :24].max() == 0.0 and pad[:, -24:].max() == 0.0
    assert pad[:, 24].mean() > 0.05 and pad[:, -25].mean() > 0.05
    assert crop[:, :4].mean() > 0.05 and crop[:, -4:].mean() > 0.05
    assert not np.array_equal(crop, stretch)


def test_lanczos_path_without_a_model_matches_pillow_lanczos(client: ComfyClient, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    source = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    photo = tmp_path / "small.png"
    Image.fromarray(source).save(photo)
    name = client.upload_image(photo, subfolder="vidfarm/test-upscale")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        **upscale_node(["1", 0], None, width=100, height=75, aspect="stretch"),
        **save(["10", 0], "lanczos"),
    }
    (out,) = frames_of(client, graph, tmp_path / "out")
    expected = np.stack(
        [
            np.asarray(Image.fromarray(source[:, :, c].astype(np.float32) / 255, mode="F").resize((100, 75), 1))
            for c in range(3)
        ],
        axis=-1,
    ).clip(0, 1)
    assert out.shape == (75, 100, 3)
    assert np.abs(out - expected).max() <= 1.0 / 255 + 1e-6


def test_a_budget_too_small_for_the_smallest_tile_is_a_clear_error(
    client: ComfyClient, model_name: str, tmp_path: Path
) -> None:
    graph = {
        **source_nodes(256, 256, 1),
        **upscale_node(["2", 0], model_name, width=512, height=512, memory_budget_mb=1),
        **save(["10", 0], "never"),
    }
    with pytest.raises(ExecutionFailed, match="needs at least .* MiB of working memory with 64-pixel tiles"):
        PromptRun(client, graph, dest_dir=tmp_path).wait()


def test_interrupt_stops_between_tiles(client: ComfyClient, model_name: str, tmp_path: Path) -> None:
    seen: list[Progress] = []
    graph = {
        **source_nodes(512, 512, 2),
        **upscale_node(["2", 0], model_name, width=1024, height=1024, tile_size=32, overlap=8, frames_per_step=1),
        **save(["10", 0], "never"),
    }

    def cancel_after_the_first_tile(p: Progress) -> None:
        seen.append(Progress(**vars(p)))
        if p.node_class == "VidfarmTiledUpscale" and p.step == 1:
            run.cancel()

    run = PromptRun(client, graph, dest_dir=tmp_path, on_progress=cancel_after_the_first_tile)
    with pytest.raises(ExecutionInterrupted):
        run.wait()
    steps = [(p.step, p.steps) for p in seen if p.node_class == "VidfarmTiledUpscale" and p.steps]
    total = 2 * count_tiles(512, 512, tile=32, overlap=8)
    assert steps[-1][1] == total and steps[-1][0] < total  # stopped inside the node, between two tiles
    assert not any(tmp_path.iterdir())


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_memory_stays_under_the_cap_on_a_large_frame(own_server: LocalComfy, tmp_path: Path) -> None:
    client = ComfyClient(own_server.url)
    model = make_random_compact(own_server.base_dir / "models", scale=2, seed=1)
    side, budget_mb = 640, 120
    big = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": side, "height": side, "batch_size": 1, "color": 8421504}},
        "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 2, "strength": 0.5}},
        **upscale_node(["2", 0], model, width=2 * side, height=2 * side, aspect="stretch", memory_budget_mb=budget_mb),
        "11": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["10", 0],
                "upscale_method": "nearest-exact",
                "width": 32,
                "height": 32,
                "crop": "disabled",
            },
        },
        **save(["11", 0], "memory"),
    }
    warm = {**big, "1": {**big["1"], "inputs": {**big["1"]["inputs"], "width": 64, "height": 64}}}
    PromptRun(client, warm, dest_dir=tmp_path / "warm").wait()  # loads torch kernels and the model once
    assert own_server.process is not None
    pid = own_server.process.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _memory_kib(pid, "VmRSS")
    PromptRun(client, big, dest_dir=tmp_path / "big").wait()
    growth_mib = (_memory_kib(pid, "VmHWM") - before) / 1024
    frames_mib = (2 * side * side + 2 * side * 2 * side) * 3 * 4 / 2**20  # input + noise + output, kept by the cache
    print(f"peak RSS growth {growth_mib:.0f} MiB for budget {budget_mb} MiB + frames {frames_mib:.0f} MiB")
    assert growth_mib < budget_mb + frames_mib + 64
    client.close()
