"""scripts/check-node-pack names the ComfyUI version it found and the oldest supported, and refuses an older one
before importing anything of it (a folder that only declares a version is enough to show that)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vidfarm.comfy.compat import MIN_VERSION

REPO = Path(__file__).resolve().parents[2]


def check(comfyui: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}  # the core importable, as install-worker installs it
    script = [
        sys.executable,
        str(REPO / "scripts" / "check-node-pack"),
        str(comfyui),
        str(REPO / "custom_nodes" / "vidfarm"),
    ]
    return subprocess.run(script, capture_output=True, text=True, env=env, timeout=60)


def test_a_too_old_comfyui_is_refused_naming_both_versions(tmp_path: Path) -> None:
    (tmp_path / "comfyui_version.py").write_text('__version__ = "0.3.40"\n')
    done = check(tmp_path)
    assert done.returncode == 1
    assert f"ComfyUI 0.3.40 (oldest supported {MIN_VERSION})" in done.stdout
    assert "0.3.40" in done.stderr and f"needs ComfyUI {MIN_VERSION} or newer" in done.stderr
