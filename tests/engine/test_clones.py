"""Two clones on one machine share one ComfyUI install and do not disturb each other: each instance loads the node
pack of the clone that started it, from its own base directory, and the shared install links to no clone
(decision 0180). The second clone is a copy of the pack whose stand-in node has another display name."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from tests.conftest import REPO, require_comfy_install
from vidfarm.comfy.engine import engine_id
from vidfarm.comfy.local import NODE_PACK, LocalComfy

NODE = "VidfarmStandInVideo"
THEIRS = "Stand-in video (the other clone)"


def other_clone(root: Path) -> Path:
    """A second checkout: its own copy of the pack beside the same core and workflows."""
    pack = root / "custom_nodes" / "vidfarm"
    shutil.copytree(NODE_PACK, pack, ignore=shutil.ignore_patterns("__pycache__"))
    source = pack / "standin_nodes.py"
    source.write_text(source.read_text().replace('"Stand-in video (model-free)"', f'"{THEIRS}"', 1))
    (root / "src").symlink_to(REPO / "src", target_is_directory=True)
    (root / "workflows").symlink_to(REPO / "workflows", target_is_directory=True)
    return pack


def test_two_clones_each_load_their_own_pack_from_their_own_base_directory(tmp_path: Path) -> None:
    install = require_comfy_install()
    theirs = other_clone(tmp_path / "clone-b")
    ours_comfy = LocalComfy(tmp_path / "a")
    their_comfy = LocalComfy(tmp_path / "b", node_pack=theirs)
    try:
        for comfy in (ours_comfy.launch(), their_comfy.launch()):  # booting side by side, as two clones' jobs do
            comfy.wait_ready(120)
            comfy.check_node_pack()
        names = {
            c: requests.get(f"{c.url}/object_info/{NODE}", timeout=30).json()[NODE]["display_name"]
            for c in (ours_comfy, their_comfy)
        }
        assert names == {ours_comfy: "Stand-in video (model-free)", their_comfy: THEIRS}
        stats = requests.get(f"{ours_comfy.url}/system_stats", timeout=30).json()
        main = str((install / "comfyui" / "main.py").resolve())
        assert main in engine_id(stats)  # both are the one install's engine: its main.py names it
    finally:
        ours_comfy.stop()
        their_comfy.stop()
    assert (tmp_path / "a" / "custom_nodes" / "vidfarm").resolve() == NODE_PACK.resolve()
    assert (tmp_path / "b" / "custom_nodes" / "vidfarm").resolve() == theirs.resolve()
    shared = install / "comfyui" / "custom_nodes" / "vidfarm"
    assert not shared.is_symlink(), f"the shared install links to a clone: {shared} -> {shared.resolve()}"


def test_a_base_directory_taken_over_links_the_new_owners_pack(tmp_path: Path) -> None:
    theirs = other_clone(tmp_path / "clone-b")
    LocalComfy(tmp_path / "base", node_pack=theirs).prepare()
    LocalComfy(tmp_path / "base").prepare()  # the same folder, started from this clone: its link is re-pointed
    assert (tmp_path / "base" / "custom_nodes" / "vidfarm").resolve() == NODE_PACK.resolve()
