"""The bundle the GPU benchmark brings to a machine with only PyTorch: ComfyUI's source and a few wheels.

`prepare` runs here (it needs the local ComfyUI install and pip's access to the package index) and writes into an
ignored folder of the repository, which the device tool then carries; `unpack` runs on the GPU machine (no
internet) and makes the two importable. Sized against the tool's limit: tree + carried paths <= 64 MiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARRY_LIMIT = 64 * 2**20
COMFY_ARCHIVE = "comfyui.tar.xz"
WHEELS = "wheels"

# What the in-process run imports that the GPU image lacks, found by hiding the image's missing packages
# (.library/device/KINDS.md list, read 2026-12) from a dry run: av (ComfyUI's video types), torchsde + trampoline
# (k-diffusion samplers), spandrel (upscale models), websocket-client (the vidfarm node pack's core). Versions are
# the local ComfyUI venv's. Not brought, because nothing needed fails without them: kornia (two optional nodes),
# pydantic(-settings) (a pyproject.toml parse, with a warning), SQLAlchemy/alembic (the server's database), the
# frontend, templates and docs packages (the HTTP server, not used in-process).
WHEEL_PINS = ("av==18.1.0", "torchsde==0.2.6", "trampoline==0.1.2", "spandrel==0.4.2", "websocket-client==1.9.2")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

# Not needed to run workflows in-process: tests, the model/input/output folders, the custom nodes of the install.
SKIP = ("__pycache__", ".git", "tests", "tests-unit", "custom_nodes", "input", "output", "models", "user", "temp")


def _keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    if any(p == "__pycache__" for p in parts) or (len(parts) > 1 and parts[1] in SKIP):
        return None
    return info


def prepare(bundle: Path, comfy_dir: Path) -> dict[str, int]:
    """Write COMFY_ARCHIVE and WHEELS/ into `bundle`; returns the sizes, and refuses a bundle that would not travel."""
    bundle.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle / COMFY_ARCHIVE, "w:xz", preset=6) as archive:
        archive.add(comfy_dir, arcname="comfyui", filter=_keep)
    wheels = bundle / WHEELS
    wheels.mkdir(exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        + ["--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(wheels), *WHEEL_PINS],
        check=True,
    )
    sizes = {str(p.relative_to(bundle)): p.stat().st_size for p in sorted(bundle.rglob("*")) if p.is_file()}
    sizes["(working tree)"] = working_tree_bytes()
    (bundle / "manifest.json").write_text(json.dumps(sizes, indent=1, sort_keys=True))
    total = sum(sizes.values())
    if total > CARRY_LIMIT:
        raise SystemExit(f"bundle + working tree = {total / 2**20:.1f} MiB, over the device tool's 64 MiB")
    return sizes


def working_tree_bytes() -> int:
    """Tracked and untracked-not-ignored files: what the device tool copies besides the carried paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum((REPO / name.decode()).stat().st_size for name in listed if name and (REPO / name.decode()).is_file())


def unpack(bundle: Path, work: Path) -> Path:
    """Extract ComfyUI and install the wheels under `work` (no index); returns the ComfyUI folder."""
    comfy_dir = work / "comfyui"
    if not (comfy_dir / "nodes.py").exists():
        with tarfile.open(bundle / COMFY_ARCHIVE) as archive:
            archive.extractall(work, filter="data")
    site = work / "site"
    if not site.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile"]
            + [
                "--disable-pip-version-check",
                "--target",
                str(site),
                *map(str, sorted((bundle / WHEELS).glob("*.whl"))),
            ],
            check=True,
        )
    sys.path.insert(0, str(site))
    return comfy_dir
