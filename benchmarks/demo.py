"""What the demo's layers (scripts/demo -> papermill -> the pipeline notebook) add to a job, against calling the core's
`run_job` directly with the same JobSpec, in the same run. Both start their own head and two local CPU workers and
render the model-free stand-in, so the ratio is the notebook/papermill/demo overhead, not ComfyUI's speed.

    .venv/bin/python benchmarks/demo.py [--seconds 4] [--before CHECKOUT]

With --before (a checkout of an earlier commit, e.g. `git worktree add /tmp/before 57ef2f5`), that commit's demo
also runs, in the same run and from its own source (PYTHONPATH=CHECKOUT/src reaches its head and its kernel), and
the figure "now / before" says whether the demo got slower.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vidfarm.jobs.demo import main as demo_main
from vidfarm.jobs.run import JobPlace, run_job
from vidfarm.jobs.spec import JobSpec

SIZE = {"width": 320, "height": 180}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="video length of the job")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier commit whose demo to run too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidfarm-bench-demo-"))
    job = {"prompt": "a benchmark boat", "recipe": "standin", "seconds": args.seconds, **SIZE, "fps": 8}
    spec = JobSpec.from_values({**job, "workers": "local:2", "seed": 1})
    began = time.perf_counter()
    run_job(spec, job_id="direct", place=JobPlace(out_dir=work / "direct", heads_dir=work / "heads"))
    direct = time.perf_counter() - began
    began = time.perf_counter()
    flags = ["--seconds", str(args.seconds), "--width", "320", "--height", "180", "--fps", "8", "--recipe", "standin"]
    code = demo_main([str(job["prompt"]), *flags, "--seed", "1", "--out", str(work / "demo")])
    through = time.perf_counter() - began
    if code:
        sys.exit(f"the demo failed ({code})")
    print(f"job: {args.seconds:g} s stand-in at 320x180, 8 fps, head + 2 local CPU workers each, 2-core shared CPU")
    print(f"run_job directly          {direct:7.2f} s")
    print(f"scripts/demo (papermill)  {through:7.2f} s")
    print(f"ratio demo / direct: {through / direct:.3f}  (the notebook, papermill and the demo's own work)")
    if args.before:
        before = _old_demo(args.before.resolve(), [str(job["prompt"]), *flags, "--seed", "1"], work / "before")
        print(f"demo of {args.before}  {before:7.2f} s")
        print(f"ratio demo now / before: {through / before:.3f}")


def _old_demo(checkout: Path, argv: list[str], out: Path) -> float:
    """The earlier commit's demo module, wherever that commit kept it, run from its own source."""
    module = "vidfarm.jobs.demo" if (checkout / "src/vidfarm/jobs/demo.py").is_file() else "vidfarm.demo"
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", module, *argv, "--out", str(out)], env=env, check=True, cwd=checkout)
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
