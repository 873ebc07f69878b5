"""The README's first command: a video from a prompt on the embedded default (a CPU ComfyUI, a model-free workflow).

scripts/demo "a paper boat drifting down a rainy street"
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vidfarm.cli import print_progress
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.errors import VidfarmError
from vidfarm.local_comfy import REPO, LocalComfy
from vidfarm.workflow.declaration import find_declaration


def run_demo(prompt: str, *, seconds: float, width: int, height: int, fps: float, seed: int, out_dir: Path) -> Path:
    declaration = find_declaration(REPO / "workflows", "standin_t2v")
    graph = declaration.fill(
        declaration.graph(),
        {
            "prompt": prompt,
            "seed": seed,
            "width": width,
            "height": height,
            "fps": fps,
            "frames": max(1, round(seconds * fps)),
        },
    )
    print(
        f"starting a local ComfyUI on the CPU (embedded default, model-free workflow {declaration.name})",
        file=sys.stderr,
    )
    with LocalComfy(REPO / ".vidfarm" / "demo-comfy") as comfy:
        run = PromptRun(ComfyClient(comfy.url), graph, dest_dir=out_dir, on_progress=print_progress)
        result = run.wait()
    print(file=sys.stderr)
    return result.first("video").path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prompt", nargs="?", default="a paper boat drifting down a rainy street")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "demo" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args(argv)
    try:
        video = run_demo(
            args.prompt,
            seconds=args.seconds,
            width=args.width,
            height=args.height,
            fps=args.fps,
            seed=args.seed,
            out_dir=args.out,
        )
    except VidfarmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(video.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
