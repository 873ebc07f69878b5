"""`vidfarm workflows import` / `validate` on undeclared files, and the notebook's fields for undeclared graphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TRANSCRIPT_WORKFLOWS, WORKFLOWS
from tests.editor_files import to_editor
from tests.unit.test_convert import OBJECT_INFO, video_templates
from vidfarm.cli import STOCK_SNAPSHOT, main
from vidfarm.jobs.notebook import _literal_fields
from vidfarm.workflow.declaration import find_declaration, load_declaration


def test_import_of_the_5b_template_declares_what_the_hand_written_declaration_declares(tmp_path: Path) -> None:
    (template,) = [p for p in video_templates() if p.name == "video_wan2_2_5B_ti2v.json"]
    args = [
        "--dir",
        str(tmp_path),
        "workflows",
        "import",
        str(template),
        "--name",
        "w5b",
        "--object-info",
        str(STOCK_SNAPSHOT),
    ]
    assert main(args) == 0
    assert main(args) == 2  # exists already: refused without --force
    ours = find_declaration(WORKFLOWS, "wan22_5b_t2v")
    imported = load_declaration(tmp_path / "w5b.toml")
    assert imported.kind == "t2v" and not imported.model_free and imported.outputs == {"video": "58"}
    assert {n: [str(t) for t in p.targets] for n, p in imported.parameters.items()} == {
        n: [str(t) for t in p.targets] for n, p in ours.parameters.items() if n not in ("steps", "cfg")
    }
    assert [(m.folder, m.file, m.repo, m.path) for m in imported.models] == [
        (m.folder, m.file, m.repo, m.path) for m in ours.models
    ]
    assert imported.parameters["width"].step == 32 and imported.parameters["seed"].maximum == 2**64 - 1
    assert imported.graph()["3"]["inputs"]["seed"] == imported.parameters["seed"].default


def test_import_names_the_custom_node_packs(tmp_path: Path) -> None:
    (template,) = [p for p in video_templates() if p.name == "video_wan2_2_14B_animate.json"]
    assert (
        main(["--dir", str(tmp_path), "workflows", "import", str(template), "--object-info", str(STOCK_SNAPSHOT)]) == 0
    )
    declaration = load_declaration(tmp_path / "video_wan2_2_14b_animate.toml")
    assert set(declaration.custom_nodes) == {"ComfyUI-segment-anything-2", "comfyui-kjnodes", "comfyui_controlnet_aux"}


def _validate(directory: Path) -> int:
    return main(["--dir", str(directory), "workflows", "validate", "--object-info", str(STOCK_SNAPSHOT)])


def test_validate_checks_undeclared_files_instead_of_claiming_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _validate(tmp_path) == 1  # an empty folder: nothing was checked
    assert "nothing to check" in capsys.readouterr().out
    good = json.loads((TRANSCRIPT_WORKFLOWS / "image_blend_scale.json").read_text())
    (tmp_path / "good_api.json").write_text(json.dumps(good))
    (tmp_path / "good_editor.json").write_text(json.dumps(to_editor(good, OBJECT_INFO)))
    assert _validate(tmp_path) == 0
    assert "2 checked, 0 invalid" in capsys.readouterr().out
    bad = json.loads(json.dumps(good))
    bad["4"]["inputs"]["upscale_method"] = "magic"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert _validate(tmp_path) == 1
    out = capsys.readouterr().out
    assert "bad: INVALID" in out and "[invalid] node 4 (ImageScale) input 'upscale_method'" in out


def test_literal_fields_of_an_export_on_a_server_with_empty_model_folders() -> None:
    object_info = {
        "UNETLoader": {"input": {"required": {"unet_name": [[], {}], "weight_dtype": [["default"], {}]}}},
        "ModelSamplingSD3": {"input": {"required": {"model": ["MODEL", {}], "shift": ["FLOAT", {"min": 0.0}]}}},
    }
    graph = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["1", 0], "shift": 8.0}},
    }
    fields = _literal_fields(graph, object_info)
    assert fields["1.unet_name"] == {
        "type": "choice",
        "default": "wan.safetensors",
        "min": None,
        "max": None,
        "options": [],
    }
    assert fields["2.shift"]["type"] == "float" and "2.model" not in fields
