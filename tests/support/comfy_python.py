"""Run a snippet with the ComfyUI install's own python (torch, ComfyUI's modules), on the CPU; return its stdout.

vidfarm's venv has no torch: facts that only ComfyUI's code can tell (a sampler's sigma schedule, what a loader
detects) are asked of it in a subprocess, the same way the node pack meets that code in the engine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from vidfarm.comfy.local import default_install_dir

PRELUDE = """
import sys
sys.path.insert(0, {comfy!r})
import comfy.cli_args
comfy.cli_args.args.cpu = True
"""


def run_in_comfy(code: str, *args: str, timeout: float = 120.0) -> str:
    install = default_install_dir()
    comfy = install / "comfyui"
    done = subprocess.run(
        [str(install / "venv" / "bin" / "python"), "-c", PRELUDE.format(comfy=str(comfy)) + code, *args],
        cwd=comfy,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"ComfyUI's python failed:\n{done.stderr[-3000:]}")
    return done.stdout


SIGMAS = """
import json, comfy.model_sampling, comfy.samplers
class FlowSampling(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
    pass  # what ComfyUI's ModelSamplingSD3 node patches into the model
sampling = FlowSampling(None)
sampling.set_parameters(shift=float(sys.argv[1]), multiplier=1000)
print(json.dumps(comfy.samplers.calculate_sigmas(sampling, sys.argv[3], int(sys.argv[2])).tolist()))
"""


def sigma_schedule(shift: float, steps: int, scheduler: str = "simple") -> list[float]:
    """The sigmas a KSampler(Advanced) walks for a Wan model patched by ModelSamplingSD3(shift)."""
    values: list[float] = json.loads(run_in_comfy(SIGMAS, str(shift), str(steps), scheduler))
    return values


def make_tiny_models(out_dir: Path, *, seed: int = 0, check: bool = False) -> dict[str, Any]:
    """Write every real recipe's model files as tiny random-weight files under out_dir; returns the manifest."""
    maker = Path(__file__).with_name("tiny_models") / "maker.py"
    install = default_install_dir()
    argv = [str(install / "venv" / "bin" / "python"), str(maker), "--comfy", str(install / "comfyui")]
    argv += ["--out", str(out_dir), "--seed", str(seed)] + (["--check"] if check else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode:
        raise RuntimeError(f"the tiny-model maker failed:\n{done.stderr[-3000:]}")
    manifest: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return manifest
