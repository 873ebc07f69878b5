"""The learning notebooks, executed for real by papermill against a real ComfyUI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import papermill as pm
import pytest
from PIL import Image

from tests.conftest import REPO, TRANSCRIPT_WORKFLOWS
from tests.editor_files import to_editor
from vidfarm.cli import STOCK_SNAPSHOT
from vidfarm.comfy import ComfyClient
from vidfarm.comfy.local import LocalComfy
from vidfarm.jobs.progress_log import ProgressLog
from vidfarm.workflow.check import load_object_info

NOTEBOOKS = REPO / "notebooks"


def execute(name: str, tmp_path: Path, **parameters: Any) -> dict[str, Any]:
    result = tmp_path / f"{name}.result.json"
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.out.ipynb"),
                        parameters={**parameters, "result_path": str(result)}, cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def test_connect_shows_version_nodes_and_models(comfy_server: LocalComfy, tmp_path: Path) -> None:
    model = comfy_server.base_dir / "models" / "vae" / "tiny_test_vae.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"\0" * 16)
    data = execute("01_connect", tmp_path, comfy_url=comfy_server.url, node_filter="vidfarm")
    running = ComfyClient(comfy_server.url).system_stats()["system"]["comfyui_version"]
    assert running and data["summary"]["comfyui_version"] == running  # whatever version setup-comfyui installed
    assert "VidfarmStandInVideo" in data["summary"]["vidfarm_nodes"] and "VidfarmStandInVideo" in data["matches"]
    assert data["models"]["vae"] == ["tiny_test_vae.safetensors"]


def test_gui_to_api_runs_a_declared_workflow(comfy_server: LocalComfy, tmp_path: Path) -> None:
    data = execute("02_gui_to_api", tmp_path, comfy_url=comfy_server.url, workflow="standin_t2v",
                   values={"prompt": "fireflies over a pond", "frames": 12, "width": 256, "height": 144},
                   out_dir=str(tmp_path / "out"), progress_path=str(tmp_path / "progress.jsonl"))
    assert data["video"] == {"width": 256, "height": 144, "frames": 12, "fps": 16.0}
    assert data["values"]["prompt"] == "fireflies over a pond"
    assert data["progress"][-1] == ["finished", 1.0]
    events, _ = ProgressLog(tmp_path / "progress.jsonl").read_from(0)
    assert events[0].stage == "queued" and events[-1].stage == "finished" and events[-1].fraction == 1.0
    assert any("VidfarmStandInVideo" in e.detail for e in events)
    executed = json.loads((tmp_path / "02_gui_to_api.out.ipynb").read_text())
    assert any("video/mp4" in json.dumps(cell.get("outputs", [])) for cell in executed["cells"])  # shown inline


def test_gui_to_api_takes_an_exported_file_and_an_image(comfy_server: LocalComfy, tmp_path: Path) -> None:
    exported = tmp_path / "my_export.json"
    shutil.copy(TRANSCRIPT_WORKFLOWS / "video_create_save.json", exported)
    data = execute("02_gui_to_api", tmp_path, comfy_url=comfy_server.url, workflow=str(exported),
                   values={"4.seed": 7, "1.batch_size": 2}, out_dir=str(tmp_path / "out"))
    assert data["video"]["frames"] == 6 and data["values"]["4.seed"] == 7
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (200, 120), (10, 120, 200)).save(photo)
    data = execute("02_gui_to_api", tmp_path, comfy_url=comfy_server.url, workflow="standin_i2v",
                   values={"frames": 5, "width": 128, "height": 80}, image=str(photo), out_dir=str(tmp_path / "o2"))
    assert (data["video"]["frames"], data["video"]["width"]) == (5, 128)


def test_gui_to_api_converts_and_runs_an_editor_file(comfy_server: LocalComfy, tmp_path: Path) -> None:
    saved = tmp_path / "saved_not_exported.json"
    graph = json.loads((TRANSCRIPT_WORKFLOWS / "video_create_save.json").read_text())
    saved.write_text(json.dumps(to_editor(graph, load_object_info(STOCK_SNAPSHOT))))
    data = execute("02_gui_to_api", tmp_path, comfy_url=comfy_server.url, workflow=str(saved),
                   values={"1.batch_size": 2}, out_dir=str(tmp_path / "out"))
    assert data["video"]["frames"] == 6
    executed = json.dumps(json.loads((tmp_path / "02_gui_to_api.out.ipynb").read_text())["cells"])
    assert "the editor file:" in executed and "ImageAddNoise" in executed


def test_an_editor_file_needing_a_custom_pack_fails_the_notebook_with_the_verdict(
    comfy_server: LocalComfy, tmp_path: Path
) -> None:
    ui = tmp_path / "needs_vhs.json"
    node = {"id": 1, "type": "VHS_VideoCombine", "mode": 0, "inputs": [], "outputs": [], "widgets_values": {},
            "properties": {"cnr_id": "comfyui-videohelpersuite", "aux_id": "Kosinkadink/ComfyUI-VideoHelperSuite"}}
    ui.write_text(json.dumps({"nodes": [node], "links": [], "version": 0.4}))
    with pytest.raises(pm.PapermillExecutionError, match="fix the problems above first"):
        execute("02_gui_to_api", tmp_path, comfy_url=comfy_server.url, workflow=str(ui))
    executed = json.dumps(json.loads((tmp_path / "02_gui_to_api.out.ipynb").read_text())["cells"])
    assert "[custom nodes] node 1 (VHS_VideoCombine)" in executed and "Kosinkadink/ComfyUI-VideoHelperSuite" in executed


def test_connect_without_url_starts_the_embedded_comfyui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = execute("01_connect", tmp_path, node_filter="VidfarmStandIn")
    assert data["summary"]["url"].startswith("http://127.0.0.1:")
    assert "VidfarmStandInVideo" in data["matches"] and all(m.startswith("VidfarmStandIn") for m in data["matches"])
