"""A tiny random-weight upscale model (spandrel `Compact`) for tests, benchmarks and demos without downloads.

Real-ESRGAN weights cannot be fetched on a test machine; a random `Compact` network has the same kind of layers
(3x3 convolutions + pixel shuffle), so it exercises the same code paths: UpscaleModelLoader, tiling, blending.
Made with the ComfyUI venv's torch in a subprocess (vidfarm's own venv has no torch).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vidfarm.comfy.local import default_install_dir
from vidfarm.errors import ComfyError

_RECIPE = """
import sys, torch
from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact
torch.manual_seed(int(sys.argv[3]))
net = Compact(num_in_ch=3, num_out_ch=3, num_feat=32, num_conv=8, upscale=int(sys.argv[2]))
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, sys.argv[1])
"""


def make_random_compact(
    models_dir: str | Path, *, scale: int = 2, seed: int = 0, install_dir: Path | None = None
) -> str:
    """Write `tiny_random_compact_x<scale>_s<seed>.safetensors` into models_dir/upscale_models; returns its name."""
    folder = Path(models_dir) / "upscale_models"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"tiny_random_compact_x{scale}_s{seed}.safetensors"
    if (folder / name).exists():
        return name
    python = (install_dir or default_install_dir()) / "venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", _RECIPE, str(folder / name), str(scale), str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ComfyError(f"making the random upscale model with {python} failed: {done.stderr.strip()[-500:]}")
    return name
