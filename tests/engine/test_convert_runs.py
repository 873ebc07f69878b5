"""Editor files converted here run on a real ComfyUI 0.3.75 and give what their API exports give."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from tests.conftest import transcript_graph
from tests.editor_files import to_editor
from tests.unit.test_convert import EXPECTED, nested_file
from vidfarm.cli import main
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.workflow.convert import convert_editor
from vidfarm.workflow.verdict import verdicts


def content(path: Path) -> str:
    """A digest of the decoded pixels (file bytes differ: PNGs embed the prompt, MP4s a creation time)."""
    digest = hashlib.sha256()
    if path.suffix in (".png", ".webp", ".jpg"):
        with Image.open(path) as image:
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                digest.update(image.convert("RGB").tobytes())
        return digest.hexdigest()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest.update(frame.to_ndarray(format="rgb24").tobytes())
    return digest.hexdigest()


def outputs(client: ComfyClient, graph: dict[str, Any], dest: Path) -> list[tuple[str, str]]:
    result = PromptRun(client, graph, dest_dir=dest).wait()
    return sorted((o.path.suffix, content(o.path)) for o in result.outputs)


@pytest.mark.parametrize("name", ["image_blend_scale.json", "video_create_save.json"])
def test_a_converted_editor_file_gives_the_output_of_its_api_export(
    client: ComfyClient, tmp_path: Path, name: str
) -> None:
    api = transcript_graph(name)
    object_info = client.object_info()
    conversion = convert_editor(to_editor(api, object_info), object_info)
    assert verdicts(conversion.graph, object_info) == []
    assert outputs(client, conversion.graph, tmp_path / "editor") == outputs(client, api, tmp_path / "api")


def test_the_nested_subgraph_file_runs_like_its_hand_written_api_graph(client: ComfyClient, tmp_path: Path) -> None:
    conversion = convert_editor(nested_file(), client.object_info())
    converted = outputs(client, conversion.graph, tmp_path / "editor")
    by_hand = outputs(client, EXPECTED, tmp_path / "api")
    assert converted == by_hand and len(by_hand) == 1
    (image,) = (tmp_path / "editor").glob("*.png")
    assert Image.open(image).size == (50, 48)  # ImageScale's own width, the height promoted two levels down


def test_vidfarm_run_takes_an_editor_file_and_refuses_one_it_cannot_run(
    client: ComfyClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(nested_file()))
    assert main(["run", str(saved), "--server", client.url, "--out", str(tmp_path / "out")]) == 0
    (run_dir,) = (tmp_path / "out").iterdir()  # each run its own folder, named after the file
    assert run_dir.name.startswith("saved-") and [p.suffix for p in run_dir.iterdir()] == [".png"]
    broken = nested_file()
    broken["nodes"][0]["properties"] = {"cnr_id": "comfy-core", "ver": "0.9.2"}
    broken["nodes"][0]["type"] = "EmptyImageFromTheFuture"
    saved.write_text(json.dumps(broken))
    assert main(["run", str(saved), "--server", client.url, "--out", str(tmp_path / "out2")]) == 2
    assert "[upgrade] node 1 (EmptyImageFromTheFuture): core node EmptyImageFromTheFuture is newer" in (
        capsys.readouterr().err
    )
