"""scripts/setup-comfyui and LocalComfy agree on the install folder for every tag rule (scripts/comfyui.tag)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from vidfarm.comfy.local import comfy_tags, default_install_dir

TAGS = comfy_tags()
PINNED, OFFLINE = TAGS["PINNED_TAG"], TAGS["OFFLINE_TAG"]


def script_dir(env: dict[str, str]) -> Path:
    out = subprocess.run(
        [str(REPO / "scripts" / "setup-comfyui"), "--print-dir"], env=env, capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


@pytest.mark.parametrize(
    ("settings", "installed", "expected"),
    [
        ({}, [], f"comfyui-{OFFLINE[1:]}"),
        ({}, [PINNED], f"comfyui-{PINNED[1:]}"),
        ({"VIDFARM_COMFY_SOURCE": "pypi"}, [PINNED], f"comfyui-{OFFLINE[1:]}"),
        ({"VIDFARM_COMFY_TAG": "v0.40.1"}, [PINNED], "comfyui-0.40.1"),
        ({"VIDFARM_COMFY_TAG": "v0.40.1", "VIDFARM_COMFY_DIR": "/opt/comfyui"}, [], "/opt/comfyui"),
    ],
    ids=["nothing-installed", "pinned-installed", "pypi-forced", "tag-asked", "dir-asked"],
)
def test_setup_and_local_comfy_pick_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], installed: list[str], expected: str
) -> None:
    for tag in installed:
        folder = tmp_path / ".cache" / "vidfarm" / f"comfyui-{tag[1:]}"
        folder.mkdir(parents=True)
        (folder / ".ready").write_text("3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDFARM_COMFY")}
    env.update(settings, HOME=str(tmp_path))
    for key in ("VIDFARM_COMFY_DIR", "VIDFARM_COMFY_TAG", "VIDFARM_COMFY_SOURCE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        if key.startswith("VIDFARM_COMFY") or key == "HOME":
            monkeypatch.setenv(key, value)
    want = Path(expected) if expected.startswith("/") else tmp_path / ".cache" / "vidfarm" / expected
    assert script_dir(env) == want
    assert default_install_dir() == want


def test_the_pinned_release_is_newer_than_the_offline_one_and_the_worker_image_uses_it() -> None:
    assert tuple(map(int, PINNED[1:].split("."))) > tuple(map(int, OFFLINE[1:].split(".")))
    assert f"ARG COMFYUI_TAG={PINNED}" in (REPO / "docker" / "worker.Dockerfile").read_text()
