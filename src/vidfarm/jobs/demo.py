"""The README's first command: a long video from a prompt on the embedded default, through the pipeline notebook.

    scripts/demo "a paper boat drifting down a rainy street"     # 30 s at 2560x1440, 16 fps

The embedded default is a head ComfyUI and two CPU workers on this machine with the model-free recipe; the
notebook is the same one the service and batch runs use (notebooks/10_long_video.ipynb, run by papermill).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from vidfarm.comfy.local import REPO
from vidfarm.errors import JobSpecInvalid
from vidfarm.jobs.options import pipeline_declaration
from vidfarm.jobs.progress_log import ProgressLog
from vidfarm.jobs.retention import unique_dir
from vidfarm.jobs.spec import JobSpec
from vidfarm.workflow.recipe import load_recipes

PIPELINE = REPO / "notebooks" / "10_long_video.ipynb"


def follow(path: Path, stop: threading.Event) -> None:
    """Print the notebook's progress log as it grows."""
    log, offset = ProgressLog(path), 0
    while not stop.wait(0.5):
        events, offset = log.read_from(offset)
        for event in events[-1:]:
            print(
                f"\r[{event.fraction:5.0%}] {event.stage} {event.detail}".ljust(78), end="", file=sys.stderr, flush=True
            )


def run_pipeline(parameters: dict[str, Any], record: Path) -> dict[str, Any]:
    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        result_path, progress_path = Path(tmp) / "result.json", Path(tmp) / "progress.jsonl"
        stop = threading.Event()
        watcher = threading.Thread(target=follow, args=(progress_path, stop), daemon=True)
        watcher.start()
        try:
            papermill.execute_notebook(
                str(PIPELINE),
                str(record),
                cwd=str(REPO),
                progress_bar=False,
                parameters={**parameters, "result_path": str(result_path), "progress_path": str(progress_path)},
            )
        finally:
            stop.set()
            watcher.join()
            print(file=sys.stderr)
        summary: dict[str, Any] = json.loads(result_path.read_text())
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    declared = pipeline_declaration().parameters  # the defaults and ranges of every surface: long_video.toml
    parser.add_argument("prompt", nargs="?", default=declared["prompt"].default)
    parser.add_argument("--image", default="", help="a photo: image-to-video")
    parser.add_argument("--seconds", type=float, default=declared["seconds"].default)
    parser.add_argument("--width", type=int, default=declared["width"].default)
    parser.add_argument("--height", type=int, default=declared["height"].default)
    parser.add_argument("--fps", type=int, default=declared["fps"].default)
    parser.add_argument("--strategy", default=declared["strategy"].default, choices=declared["strategy"].options)
    parser.add_argument(
        "--recipe",
        default="standin",
        choices=list(load_recipes()),
        help="the model family (workflows/recipes.toml); the demo's embedded default is the model-free standin",
    )
    parser.add_argument("--workers", default="local:2", help="'local:N' or a JSON list of {name, url, token}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "demo")
    args = parser.parse_args(argv)
    job = {k: getattr(args, k) for k in ("prompt", "image", "seconds", "width", "height", "fps", "strategy", "recipe",
                                         "workers", "seed")}  # fmt: skip
    try:  # refused here, before any process starts
        JobSpec.from_values(job)
    except JobSpecInvalid as exc:
        print("error: " + "\n       ".join(str(p) for p in exc.problems), file=sys.stderr)
        return 2
    out = unique_dir(args.out.resolve(), "run")  # each run its own folder: never overwrites an earlier video
    record = out / "executed.ipynb"
    print(f"running {PIPELINE.name} (executed copy: {record})", file=sys.stderr)
    try:
        summary = run_pipeline({**job, "out_dir": str(out)}, record)
    except Exception as exc:  # papermill's error carries the notebook's traceback; keep the message short
        print(
            f"error: the pipeline notebook failed: {str(exc).strip().splitlines()[-1]}\n(see {record})", file=sys.stderr
        )
        return 2
    print(
        f"{summary['width']}x{summary['height']}, {summary['duration']:.1f} s at {summary['fps']:g} fps, "
        f"{summary['segments']} segments, made in {summary['seconds_taken']:.0f} s",
        file=sys.stderr,
    )
    print(summary["video"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
