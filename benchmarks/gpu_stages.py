"""The stage groups of benchmarks/gpu_real_models.py: each runs one real workflow in the in-process ComfyUI and
turns its per-node times into rows (seconds, peak memory, the modelled figure where the makespan model has one).
Imports no torch at its top, so the benchmark can say "no GPU here" where torch is missing.

Groups: a14b (the 4-step i2v segment, fp8 path as the file's marker decides), bf16 (its samplers again with fp8
maths off), 5b (the t2v segment), stereo (vr180_sbs up to VidfarmStereoFromDepth, on the a14b segment).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import modelled_figures

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKFLOWS = REPO / "workflows"
NODE_PACK = REPO / "custom_nodes" / "vidfarm"
TINY_PACK = REPO / "tests" / "support" / "tiny_models" / "comfy_nodes" / "vidfarm_tiny_models"
GROUPS = ("a14b", "bf16", "5b", "stereo")  # in this order: the makespan rows first
# Rough seconds per group on one H200, files included [I: FLOP estimates in shared/reference/tiny-models.md, no
# measurement yet]; only used to skip a group that would end past --deadline-s. Replace with measured figures.
GROUP_ESTIMATE_S = {"a14b": 230.0, "bf16": 100.0, "5b": 150.0, "stereo": 60.0}
LOADERS = {"UNETLoader", "CLIPLoader", "VAELoader", "LoraLoaderModelOnly", "UpscaleModelLoader", "ModelSamplingSD3"}
SAMPLERS = {"KSampler", "KSamplerAdvanced"}
CONDITIONING = {"WanImageToVideo", "Wan22ImageToVideoLatent"}
SAVING = {"ImageFromBatch", "CreateVideo", "SaveVideo", "SaveImage"}
NEEDED_NODES = (
    LOADERS | SAMPLERS | CONDITIONING | SAVING | {"VidfarmTiledUpscale", "VidfarmStereoFromDepth", "LoadVideo"}
)


@dataclass(frozen=True)
class Sizes:
    a14b: tuple[int, int, int]  # width, height, frames
    five_b: tuple[int, int, int]
    upscale: tuple[int, int]


FULL = Sizes(a14b=(1280, 720, 81), five_b=(1280, 704, 121), upscale=(2560, 1440))
TOY = Sizes(a14b=(128, 96, 9), five_b=(128, 96, 9), upscale=(256, 192))


@dataclass
class Row:
    stage: str
    seconds: float | None = None
    peak_bytes: int | None = None
    modelled: float | None = None
    note: str = ""  # why a row has no figure (skipped, failed)

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.modelled if self.seconds is not None and self.modelled else None


@dataclass
class Bench:
    engine: Any
    maker: Any
    sizes: Sizes
    size: str  # "full" | "tiny" (the maker's sizes)
    model: dict[str, Any]
    groups: list[str]
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    segment_video: Path | None = None

    @property
    def models_dir(self) -> Path:
        return Path(self.engine.base_dir) / "models"

    def add(self, row: Row) -> Row:
        self.rows[row.stage] = row
        return row

    def make_files(self, declaration: Any) -> None:
        """Every model the workflow declares, full size or tiny; a low-noise file links to its high-noise twin."""
        began, peak = time.perf_counter(), 0
        declared = {m.file for m in declaration.models}
        for model in sorted(declaration.models, key=lambda m: "low_noise" in m.file):
            path = self.models_dir / model.folder / model.file
            if path.exists():
                continue
            twin = model.file.replace("low_noise", "high_noise")
            if twin != model.file and twin in declared:
                path.symlink_to(twin)  # same layout and size: the same timing, written once
                continue
            self.engine.memory.reset()
            spec = next(s for s in self.maker.SPECS if s.file == model.file and s.folder == model.folder)
            self.maker.write(spec, self.models_dir, self.size, 0)
            peak = max(peak, self.engine.memory.peak())
        self.engine.unload()  # hand the generator's cached device memory back before ComfyUI sizes its loads
        files = self.rows.setdefault("make files", Row("make files", 0.0, 0))
        files.seconds = (files.seconds or 0.0) + time.perf_counter() - began
        files.peak_bytes = max(files.peak_bytes or 0, peak)


def stage(times: dict[str, Any], classes: set[str], name: str, modelled: float | None = None) -> Row:
    """The nodes of these classes: their seconds less the time spent moving models to the device."""
    chosen = [t for t in times.values() if t.class_type in classes]
    seconds = sum(t.seconds - t.load_seconds for t in chosen)
    return Row(name, seconds, max((t.peak_bytes for t in chosen), default=0), modelled)


def load_stage(times: dict[str, Any], name: str) -> Row:
    """Loader nodes (files read, LoRAs applied) plus every model move to the device: what a warm worker skips."""
    seconds = sum(t.seconds if t.class_type in LOADERS else t.load_seconds for t in times.values())
    peak = max((t.peak_bytes for t in times.values() if t.class_type in LOADERS or t.load_seconds), default=0)
    return Row(name, seconds, peak)


def total(name: str, parts: list[Row], modelled: float | None) -> Row:
    return Row(
        name,
        sum(p.seconds or 0.0 for p in parts),
        max((p.peak_bytes or 0 for p in parts), default=0),
        modelled,
    )


def describe_paths(paths: Any) -> str:
    """Which matmul path the Wan diffusion models of a run took, from what ComfyUI recorded."""
    seen = {(m["scaled_fp8"], m["fp8_optimisations"], m["linear_weights"], m["compute_dtype"]) for m in paths.models}
    parts = [
        f"marker {s}, fp8 optimisations {o}, linear weights {w}, compute {c}" for s, o, w, c in sorted(seen, key=str)
    ]
    if paths.fp8_taken:
        ran = f"fp8 matrix maths ran ({paths.fp8_taken} of {paths.fp8_calls} fp8 linear calls)"
    elif paths.fp8_calls:
        ran = f"fp8 maths asked for but all {paths.fp8_calls} linear calls fell back to dequantised weights"
    else:
        ran = "no fp8 matmul: weights dequantised to the compute dtype per layer"
    return "; ".join(parts) + f" -> {ran}"


def fill(name: str, values: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from vidfarm.workflow.declaration import find_declaration

    declaration = find_declaration(WORKFLOWS, name)
    return declaration, declaration.fill(declaration.graph(), values)


def ids(graph: dict[str, Any], classes: set[str]) -> list[str]:
    return [node for node, spec in graph.items() if spec["class_type"] in classes]


def start_image(path: Path, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def a14b_graph(b: Bench) -> tuple[Any, dict[str, Any]]:
    width, height, frames = b.sizes.a14b
    declaration, graph = fill(
        "wan22_14b_i2v_4step",
        {"width": width, "height": height, "frames": frames, "out_width": b.sizes.upscale[0]}
        | {"out_height": b.sizes.upscale[1]},
    )
    b.make_files(declaration)
    start_image(
        Path(b.engine.base_dir) / "input" / graph[ids(graph, {"LoadImage"})[0]]["inputs"]["image"], width, height
    )
    return declaration, graph


def group_a14b(b: Bench) -> None:
    _, graph = a14b_graph(b)
    b.engine.paths = type(b.engine.paths)()
    times = b.engine.run(graph)
    b.notes.append("a14b fp8 run: " + describe_paths(b.engine.paths))
    b.nodes["a14b"] = [asdict(t) for t in times.values()]
    b.add(load_stage(times, "a14b load (cold)"))
    parts = [
        b.add(stage(times, {"CLIPTextEncode"}, "a14b text encode")),
        b.add(stage(times, CONDITIONING, "a14b i2v conditioning")),
        b.add(stage(times, SAMPLERS, "a14b sampling fp8")),
        b.add(stage(times, {"VAEDecode"}, "wan2.1 vae decode")),
    ]
    b.add(total("a14b generate fp8 (warm)", parts, b.model.get("generate")))
    post = [b.add(stage(times, {"VidfarmTiledUpscale"}, "tiled upscale")), b.add(stage(times, SAVING, "video save"))]
    b.add(total("segment post (warm)", post, b.model.get("post")))
    b.segment_video = newest_segment(b)
    b.engine.unload()


def newest_segment(b: Bench) -> Path | None:
    """The a14b segment video in the work folder (this run's, or an earlier run's on the same machine)."""
    videos = sorted(
        (Path(b.engine.base_dir) / "output" / "vidfarm").glob("segment*.mp4"), key=lambda p: p.stat().st_mtime
    )
    return videos[-1] if videos else None


def group_bf16(b: Bench) -> None:
    _, graph = a14b_graph(b)
    b.engine.paths = type(b.engine.paths)()
    with b.engine.marker(2):  # the marker form that turns ComfyUI's fp8 optimisations off
        times = b.engine.run(graph, targets=ids(graph, SAMPLERS))
    b.notes.append("a14b bf16 run (marker read as 2 elements): " + describe_paths(b.engine.paths))
    b.nodes["bf16"] = [asdict(t) for t in times.values()]
    b.add(load_stage(times, "a14b load bf16 (cold)"))
    sampling = b.add(stage(times, SAMPLERS, "a14b sampling bf16"))
    parts = [stage(times, {"CLIPTextEncode"} | CONDITIONING, "text + conditioning"), sampling]
    decode = b.rows.get("wan2.1 vae decode")
    b.add(total("a14b generate bf16 (warm)", parts + ([decode] if decode else []), b.model.get("generate")))
    if decode is None:
        b.notes.append("a14b generate bf16 (warm) lacks the VAE decode (measured in the a14b group, not run)")
    b.engine.unload()


def group_5b(b: Bench) -> None:
    width, height, frames = b.sizes.five_b
    declaration, graph = fill("wan22_5b_t2v", {"width": width, "height": height, "frames": frames})
    b.make_files(declaration)
    times = b.engine.run(graph)
    b.nodes["5b"] = [asdict(t) for t in times.values()]
    b.add(load_stage(times, "5b load (cold)"))
    parts = [
        b.add(stage(times, {"CLIPTextEncode"}, "5b text encode")),
        stage(times, CONDITIONING, "5b latent"),
        b.add(stage(times, SAMPLERS, "5b sampling")),
        b.add(stage(times, {"VAEDecode"}, "wan2.2 vae decode")),
    ]
    b.add(total("5b generate (warm)", parts, None))
    b.engine.unload()


def group_stereo(b: Bench) -> None:
    from comfy_inprocess import BenchError

    b.segment_video = b.segment_video or newest_segment(b)
    if b.segment_video is None:
        raise BenchError("stereo needs the a14b segment video: run the a14b group first (same --work)")
    declaration, graph = fill("vr180_sbs", {})
    for role in ("clip", "depth_video"):
        where = declaration.parameters[role].targets[0]
        target = Path(b.engine.base_dir) / "input" / graph[where.node_id]["inputs"][where.input_name]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.symlink_to(b.segment_video)  # the segment is its own depth video: values do not change the cost
    node = ids(graph, {"VidfarmStereoFromDepth"})[0]
    times = b.engine.run(graph, targets=[node])
    b.nodes["stereo"] = [asdict(t) for t in times.values()]
    images = b.engine.output(graph[node]["inputs"]["images"][0])
    modelled = modelled_figures.stereo_seconds(images.shape[0], images.shape[2], images.shape[1])
    b.add(stage(times, {"VidfarmStereoFromDepth"}, "stereo from depth (node)", modelled))
    depth = b.engine.output(graph[node]["inputs"]["depth"][0])
    b.add(stereo_on_device(b, graph[node]["inputs"], images, depth, modelled))
    if b.engine.cuda:
        b.notes.append("stereo from depth (node) ran on the CPU: ComfyUI hands the node CPU tensors (peak ~0 GPU)")
    b.engine.unload()


def stereo_on_device(b: Bench, inputs: dict[str, Any], images: Any, depth: Any, modelled: float) -> Row:
    """The same node's code on the same frames moved to the device first (ComfyUI hands the node CPU tensors)."""
    import nodes
    import torch

    device = torch.device("cuda" if b.engine.cuda else "cpu")
    options = {k: v for k, v in inputs.items() if not isinstance(v, list)}
    images, depth = images.to(device), depth.to(device)
    b.engine.memory.sync()
    b.engine.memory.reset()
    began = time.perf_counter()
    # inference mode as ComfyUI's executor runs every node; the default device too, since vr_geometry makes its index
    # tensors without one (on CUDA inputs they would land on the CPU: "Tensor on device cpu is not on ...")
    with torch.inference_mode(), device:
        nodes.NODE_CLASS_MAPPINGS["VidfarmStereoFromDepth"].execute(images=images, depth=depth, **options)
    b.engine.memory.sync()
    return Row("stereo from depth (device)", time.perf_counter() - began, b.engine.memory.peak(), modelled)


RUNNERS: dict[str, Callable[[Bench], None]] = {
    "a14b": group_a14b,
    "bf16": group_bf16,
    "5b": group_5b,
    "stereo": group_stereo,
}
GROUP_ROWS = {
    "a14b": [
        "a14b load (cold)",
        "a14b text encode",
        "a14b i2v conditioning",
        "a14b sampling fp8",
        "wan2.1 vae decode",
        "a14b generate fp8 (warm)",
        "tiled upscale",
        "video save",
        "segment post (warm)",
    ],
    "bf16": ["a14b load bf16 (cold)", "a14b sampling bf16", "a14b generate bf16 (warm)"],
    "5b": ["5b load (cold)", "5b text encode", "5b sampling", "wan2.2 vae decode", "5b generate (warm)"],
    "stereo": ["stereo from depth (node)", "stereo from depth (device)"],
}


def row_names(groups: list[str]) -> list[str]:
    """The table's rows, in their stable order: the two set-up rows, then each group's."""
    return ["make files", "comfyui start"] + [name for g in GROUPS if g in groups for name in GROUP_ROWS[g]]


def mark(bench: Bench, group: str, note: str) -> None:
    """Rows of a group that did not run (or failed) carry the reason instead of figures."""
    for name in GROUP_ROWS[group]:
        if name not in bench.rows:
            bench.rows[name] = Row(name, note=note)


def packs(*, dry_run: bool) -> list[Path]:
    """The node pack; the test-only tiny-model pack in a dry run (tiny umt5 and 2.2 VAE); any named by the env."""
    from vidfarm.comfy.local import extra_node_packs

    chosen = [NODE_PACK, *extra_node_packs()]
    if dry_run and TINY_PACK.resolve() not in {p.resolve() for p in chosen}:
        chosen.append(TINY_PACK)
    return chosen


def new_bench(engine: Any, *, dry_run: bool, groups: list[str]) -> Bench:
    import maker  # tests/support/tiny_models: the same layouts the CPU tests use, at full size on the GPU

    maker.DEVICE = "cuda" if engine.cuda else "cpu"
    return Bench(
        engine=engine,
        maker=maker,
        sizes=TOY if dry_run else FULL,
        size="tiny" if dry_run else "full",
        model=modelled_figures.makespan_config(FULL.a14b[2]),
        groups=groups,
    )
