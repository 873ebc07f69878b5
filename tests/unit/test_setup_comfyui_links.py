"""scripts/setup-comfyui on a ready install links this clone's pack into the clone's own base directory and never
into the shared install; a link an older setup left there goes, a pack installed there for real stays."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "setup-comfyui"


def ready_install(root: Path) -> Path:
    recipe = re.search(r"^RECIPE=(\d+)", SCRIPT.read_text(), re.M)
    assert recipe
    (root / "comfyui" / "custom_nodes").mkdir(parents=True)
    (root / ".ready").write_text(recipe.group(1) + "\n")
    return root / "comfyui" / "custom_nodes" / "vidfarm"


def setup(install: Path) -> None:
    env = {**os.environ, "VIDFARM_COMFY_DIR": str(install)}
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(install)


def test_a_stale_link_in_the_shared_install_is_removed(tmp_path: Path) -> None:
    shared = ready_install(tmp_path)
    shared.symlink_to(tmp_path / "some-other-clone", target_is_directory=True)
    setup(tmp_path)
    assert not shared.is_symlink() and not shared.exists()
    own = REPO / ".vidfarm" / "comfy-base" / "custom_nodes" / "vidfarm"
    assert own.resolve() == (REPO / "custom_nodes" / "vidfarm").resolve()


def test_a_pack_installed_in_the_shared_install_is_left_alone(tmp_path: Path) -> None:
    shared = ready_install(tmp_path)
    shared.mkdir()
    (shared / "__init__.py").write_text("# someone's own copy\n")
    setup(tmp_path)
    assert (shared / "__init__.py").read_text() == "# someone's own copy\n"
