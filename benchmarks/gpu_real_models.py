"""GPU acceptance benchmark: the real Wan 2.2 workflows at full size through ComfyUI's own model code (issue 10.5).

Makes full-size random-weight files on the GPU (tests/support/tiny_models/maker.py: speed does not depend on the
values; one 14B expert file serves both experts through a symlink), then runs them in this process through
ComfyUI's executor (benchmarks/comfy_inprocess.py): the A14B 4-step i2v segment (wan22_14b_i2v_4step) on the fp8
path its marker chooses and its samplers again with fp8 maths off (bf16), the 5B t2v segment (wan22_5b_t2v), the
VAE decodes, the tiled upscale and stereo from depth (vr180_sbs up to VidfarmStereoFromDepth). Prints one row per
stage: seconds, peak memory, the figure the makespan model assumes today and the ratio measured / modelled.

    python3 benchmarks/gpu_real_models.py --prepare .gpubench         # here: ComfyUI source + wheels (~41 MB)
    python3 benchmarks/gpu_real_models.py --bundle .gpubench --out "$OUT"   # on the GPU machine (docs/benchmarks.md)
    ~/.cache/vidfarm/comfyui-0.3.75/venv/bin/python benchmarks/gpu_real_models.py --dry-run   # CPU, toy size

Without a CUDA GPU and without --dry-run it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "src"), str(REPO / "tests" / "support" / "tiny_models")]
import gpu_bundle  # noqa: E402
import gpu_stages  # noqa: E402 - no torch at its top
import modelled_figures  # noqa: E402

GROUPS = gpu_stages.GROUPS
TITLE = "vidfarm gpu_real_models"
# Full-size files of all groups, with room to spare: 14.3 (one A14B expert) + 10.0 (5B) + 6.7 (umt5) + 1.4 (2.2
# VAE) + 0.6 (one LoRA) + 0.3 GB (2.1 VAE, upscaler) [S: ../shared/reference/tiny-models.md, maker sizes]
FULL_FILES_BYTES = 36 * 10**9


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="walk every stage at toy size on the CPU")
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="write the GPU bundle into DIR and exit")
    parser.add_argument("--bundle", type=Path, metavar="DIR", help="the bundle --prepare wrote (on the GPU machine)")
    parser.add_argument("--comfy", type=Path, help="a ComfyUI folder (default: the bundle's, else the local install)")
    parser.add_argument("--work", type=Path, help="models, inputs, outputs and the log (default: a fresh folder)")
    parser.add_argument("--out", type=Path, help="also write the table, JSON and ComfyUI's log here")
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS), help="stage groups to run")
    parser.add_argument("--deadline-s", type=float, default=470.0, help="GPU: start no group expected to end later")
    parser.add_argument("--list-imports", action="store_true", help="print the third-party distributions loaded")
    return parser.parse_args(argv)


def cuda_available() -> bool | None:
    """True/False, or None where torch itself is missing."""
    try:
        import torch
    except ImportError:
        return None
    return bool(torch.cuda.is_available())


def work_folder(args: argparse.Namespace) -> Path:
    """--work; else, with a bundle, an ignored folder of the repository that the device tool does not replace (a
    second call on the still-warm machine reuses the files and ComfyUI), on its disk rather than a RAM-backed /tmp;
    else a temp folder."""
    if args.work:
        work = Path(args.work)
    elif args.bundle:
        work = REPO / ".gpubench-work"
    else:
        work = Path(tempfile.mkdtemp(prefix="vidfarm-gpubench-"))
    work.mkdir(parents=True, exist_ok=True)
    return work.resolve()


def comfy_folder(args: argparse.Namespace, work: Path) -> Path:
    if args.comfy:
        return Path(args.comfy)
    if args.bundle:
        return gpu_bundle.unpack(args.bundle, work)
    from vidfarm.comfy.local import default_install_dir

    return Path(default_install_dir()) / "comfyui"


def run_groups(bench: Any, chosen: list[str], *, began: float, deadline: float | None) -> bool:
    """Each group in order; a failure or a deadline skip leaves its rows empty with the reason. True if none failed."""
    ok = True
    for group in GROUPS:
        if group not in chosen:
            continue
        elapsed = time.perf_counter() - began
        estimate = gpu_stages.GROUP_ESTIMATE_S[group]
        if deadline is not None and elapsed + estimate > deadline:
            reason = f"skipped: {elapsed:.0f} s + ~{estimate:.0f} s [I] would pass --deadline-s {deadline:.0f}"
            gpu_stages.mark(bench, group, reason)
            continue
        try:
            gpu_stages.RUNNERS[group](bench)
        except Exception as error:  # one group's failure must not cost the others' figures on a one-shot machine
            ok = False
            gpu_stages.mark(bench, group, f"failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}")
            bench.notes.append(f"{group} failed:\n" + traceback.format_exc(limit=-4))
            bench.engine.unload()
        rows = "\n".join(format_row(bench, name) for name in gpu_stages.GROUP_ROWS[group])
        print(f"[{time.perf_counter() - began:6.1f} s] {group} done\n{rows}", file=sys.stderr, flush=True)
    return ok


def table(bench: Any, header: list[str]) -> str:
    unit = "GiB" if bench.engine.cuda else "MiB"
    lines = [*header, f"{'stage':<28} {'seconds':>9} {'peak ' + unit:>9} {'modelled s':>10} {'ratio':>6}"]
    lines += [format_row(bench, name) for name in gpu_stages.row_names(bench.groups)]
    return "\n".join(lines + bench.notes)


def format_row(bench: Any, name: str) -> str:
    """stage, seconds, peak memory, modelled seconds, ratio; a row without figures says why after its dashes."""
    row = bench.rows.get(name)
    if row is None or row.seconds is None:
        return f"{name:<28} {'-':>9} {'-':>9} {'-':>10} {'-':>6}  {row.note if row else 'not run'}"
    peak = bench.engine.memory.show(row.peak_bytes) if row.peak_bytes is not None else "-"
    modelled = f"{row.modelled:.3g}" if row.modelled else "-"
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}" if row.ratio < 100 else f"{row.ratio:.0f}"
    return f"{name:<28} {row.seconds:>9.2f} {peak:>9} {modelled:>10} {ratio:>6}"


def header_lines(bench: Any, args: argparse.Namespace, model: dict[str, Any]) -> list[str]:
    import torch

    s = bench.sizes
    device = torch.cuda.get_device_name() if bench.engine.cuda else "cpu"
    kind = "GPU, full size" if not args.dry_run else "CPU DRY RUN at toy size: NOT GPU figures, ratios meaningless"
    return [
        f"{TITLE}: {kind}",
        f"device {device}, torch {torch.__version__}, ComfyUI from {bench.engine.comfy_dir}, "
        f"attention {bench.engine.attention()}",
        f"a14b {s.a14b[0]}x{s.a14b[1]}x{s.a14b[2]} (4 steps), 5b {s.five_b[0]}x{s.five_b[1]}x{s.five_b[2]} "
        f"(20 steps, cfg 5), upscale to {s.upscale[0]}x{s.upscale[1]}, model files {bench.size}",
        f"modelled s: makespan.py '{model['config']}' (generate {model['generate']}, post {model['post']} per "
        "segment, H100) and stereo.py's DIBR model (H100, memory-bound); ratio = measured / modelled",
        f"peak: {bench.engine.memory.unit} within the stage; (warm) rows leave out model loads; "
        f"work {bench.engine.base_dir} ({shutil.disk_usage(bench.engine.base_dir).free / 1e9:.0f} GB free at the end)",
    ]


def run(args: argparse.Namespace, cuda: bool) -> int:
    began = time.perf_counter()
    work = work_folder(args)
    if not args.dry_run and shutil.disk_usage(work).free < FULL_FILES_BYTES:
        free = shutil.disk_usage(work).free / 1e9
        print(
            f"{TITLE}: {free:.0f} GB free at {work}; the full-size files need ~{FULL_FILES_BYTES / 1e9:.0f} GB (--work)"
        )
        return 1
    comfy_dir = comfy_folder(args, work)
    import comfy_inprocess

    comfy_inprocess.log_to(work / "comfyui.log")
    engine = comfy_inprocess.Engine(comfy_dir, work, cuda=cuda)
    bench = gpu_stages.new_bench(engine, dry_run=args.dry_run, groups=args.only)
    bench.add(
        gpu_stages.Row("comfyui start", engine.start(gpu_stages.packs(dry_run=args.dry_run)), engine.memory.peak())
    )
    engine.require_nodes(gpu_stages.NEEDED_NODES)
    ok = run_groups(bench, args.only, began=began, deadline=None if args.dry_run else args.deadline_s)
    model = modelled_figures.makespan_config(gpu_stages.FULL.a14b[2])
    text = table(bench, header_lines(bench, args, model))
    print(text, flush=True)
    if args.list_imports:
        print("third-party distributions loaded: " + ", ".join(loaded_distributions()))
    if args.out:
        write_out(args.out, text, bench, work)
    return 0 if ok else 1


def write_out(out: Path, text: str, bench: Any, work: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_real_models.txt").write_text(text + "\n")
    rows = [asdict(r) | {"ratio": r.ratio} for r in bench.rows.values()]
    (out / "gpu_real_models.json").write_text(json.dumps({"rows": rows, "nodes": bench.nodes}, indent=1))
    shutil.copyfile(work / "comfyui.log", out / "comfyui.log")


def loaded_distributions() -> list[str]:
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    return sorted({d for m in list(sys.modules) if "." not in m for d in owners.get(m, [])})


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.prepare:
        from vidfarm.comfy.local import default_install_dir

        sizes = gpu_bundle.prepare(args.prepare, Path(args.comfy or default_install_dir() / "comfyui"))
        for name, size in sizes.items():
            print(f"{size / 2**20:8.1f} MiB  {name}")
        print(f"{sum(sizes.values()) / 2**20:8.1f} MiB  in all (the device tool carries at most 64 MiB)")
        return 0
    cuda = cuda_available()
    if not cuda and not args.dry_run:
        why = "torch is not installed" if cuda is None else "torch.cuda.is_available() is False"
        print(
            f"{TITLE}: no CUDA GPU on this machine ({why}); nothing measured. --dry-run walks every stage at toy size."
        )
        return 0
    return run(args, bool(cuda))


if __name__ == "__main__":
    raise SystemExit(main())
