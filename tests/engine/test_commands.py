"""The README's commands and the `vidfarm` CLI, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from vidfarm.cli import main
from vidfarm.comfy.local import LocalComfy
from vidfarm.media.checks import probe


def test_demo_prints_the_path_of_a_real_video(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [
            str(REPO / "scripts" / "demo"),
            "a paper boat drifting down a rainy street",
            "--seconds",
            "2",
            "--width",
            "320",
            "--height",
            "180",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    video = Path(done.stdout.strip().splitlines()[-1])
    assert video.is_relative_to(out.resolve()) and video.name == "video.mp4"
    info = probe(video)
    assert (info.width, info.height, info.frames, info.fps) == (320, 180, 32, 16.0)
    assert (video.parent / "preview.mp4").exists() and list(out.glob("run-*/executed.ipynb"))  # the record


def test_workflows_validate_against_the_snapshot_and_a_live_server(comfy_server: LocalComfy, capsys) -> None:  # noqa: ANN001
    assert main(["workflows", "validate"]) == 0
    assert "wan22_5b_t2v: ok" in capsys.readouterr().out
    assert main(["workflows", "validate", "standin_t2v", "wan22_5b_t2v", "--server", comfy_server.url]) == 1
    out = capsys.readouterr().out
    assert "standin_t2v: ok" in out and "wan22_5b_t2v: INVALID" in out and "download it to models/vae" in out


def test_cli_run_and_its_bad_inputs(comfy_server: LocalComfy, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    run = ["run", "standin_t2v", "--set", "frames=5", "--set", "width=64", "--set", "height=64"]
    assert main([*run, "--server", comfy_server.url, "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "64x64 5 frames" in first
    assert main([*run, "--set", "frames=9", "--server", comfy_server.url, "--out", str(tmp_path)]) == 0
    second = capsys.readouterr().out
    paths = [Path(line.split()[0]) for line in (first + second).splitlines() if line.endswith("fps")]
    assert len(paths) == 2 and paths[0] != paths[1]  # a second run never overwrites the first (same ComfyUI name)
    assert probe(paths[0]).frames == 5 and probe(paths[1]).frames == 9
    assert main(["run", "standin_t2v", "--set", "colour=red", "--server", comfy_server.url]) == 2
    assert "has no parameter colour" in capsys.readouterr().err
    assert main(["run", "nope", "--server", comfy_server.url]) == 2
    assert "known workflows" in capsys.readouterr().err
    not_image = tmp_path / "x.png"
    not_image.write_text("text")
    assert main(["run", "standin_i2v", "--image", str(not_image), "--server", comfy_server.url]) == 2
    assert "not an image" in capsys.readouterr().err


def test_python_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vidfarm.cli", "workflows", "list"], capture_output=True, text=True, check=True
    )
    assert "standin_t2v" in done.stdout and "18.1 GB" in done.stdout
