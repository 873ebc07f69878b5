"""Validation against the saved 0.3.75 /object_info (the live-server twin is tests/engine/test_validation.py)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, declaration, transcript_graph
from vidfarm.workflow.check import check_declaration, load_object_info
from vidfarm.workflow.declaration import find_declarations
from vidfarm.workflow.validate import combo_options, validate_graph

SNAPSHOT = load_object_info(REPO / "workflows" / "object_info" / "comfyui-0.3.75-vidfarm.json")
STOCK = json.loads((REPO / "workflows" / "object_info" / "comfyui-0.3.75.json").read_text())


def kinds(problems: list) -> set[tuple[str, str, str | None]]:
    return {(p.node_id, p.type, p.input_name) for p in problems}


def test_snapshot_is_the_stock_server_plus_the_node_pack() -> None:
    added = set(SNAPSHOT) - set(STOCK)
    assert added and all(name.startswith("Vidfarm") for name in added)


@pytest.mark.parametrize("name", [d.name for d in find_declarations(REPO / "workflows")])
def test_every_shipped_workflow_is_valid_against_the_snapshot(name: str) -> None:
    report = check_declaration(declaration(name), SNAPSHOT)
    assert report.ok, report.lines()


def test_wan_workflow_reports_each_model_it_needs_with_the_fix() -> None:
    report = check_declaration(declaration("wan22_5b_t2v"), SNAPSHOT)
    assert {p.input_name for p in report.missing_models} == {"unet_name", "clip_name", "vae_name"}
    assert all("download it to models/" in p.fix for p in report.missing_models)
    live = check_declaration(declaration("wan22_5b_t2v"), SNAPSHOT, models_present=True)
    assert not live.ok  # on a live server, a missing model is a real problem


def test_transcript_workflows_are_valid() -> None:
    for name in ("image_blend_scale.json", "video_create_save.json", "animated_webp.json"):
        assert validate_graph(transcript_graph(name), STOCK) == [], name


def test_the_transcripts_error_cases() -> None:
    graph = transcript_graph("image_blend_scale.json")
    del graph["1"]["inputs"]["color"]
    graph["2"]["inputs"]["width"] = -5
    graph["4"]["inputs"]["upscale_method"] = "magic"
    graph["4"]["inputs"]["height"] = "wide"
    assert kinds(validate_graph(graph, STOCK)) == {
        ("1", "required_input_missing", "color"),
        ("2", "value_smaller_than_min", "width"),
        ("4", "value_not_in_list", "upscale_method"),
        ("4", "invalid_input_type", "height"),
    }


def test_unknown_class_no_output_and_dangling_link() -> None:
    assert kinds(validate_graph({"1": {"class_type": "NoSuchNode", "inputs": {}}}, STOCK)) == {
        ("1", "missing_node_type", None)
    }
    assert kinds(validate_graph({"1": {"class_type": "EmptyImage", "inputs": {}}}, STOCK)) == {
        ("", "prompt_no_outputs", None)
    }
    dangling = {"2": {"class_type": "SaveImage", "inputs": {"images": ["99", 0], "filename_prefix": "x"}}}
    [problem] = validate_graph(dangling, STOCK)
    assert problem.type == "exception_during_validation" and "node 99" in problem.message


def test_type_mismatch_and_unreached_nodes() -> None:
    graph = {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": -1}},
    }  # feeds no output: not checked
    assert kinds(validate_graph(graph, STOCK)) == {("2", "return_type_mismatch", "images")}


def test_loadimage_subfolder_paths_are_accepted() -> None:
    assert validate_graph(transcript_graph("loadimage_scale_save.json"), STOCK) == []


def test_loadvideo_files_from_the_input_folder_are_accepted() -> None:
    graph = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "vidfarm/clip.mp4"}},
        "2": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["1", 0], "filename_prefix": "x", "format": "mp4", "codec": "h264"},
        },
    }
    assert validate_graph(graph, STOCK) == []
    graph["2"]["inputs"]["codec"] = "divx"
    assert kinds(validate_graph(graph, STOCK)) == {("2", "value_not_in_list", "codec")}


def test_combo_options_in_both_schemas() -> None:
    assert combo_options([["a", "b"], {}]) == ["a", "b"]
    assert combo_options(["COMBO", {"options": ["mp4"]}]) == ["mp4"]
    assert combo_options(["INT", {"min": 0}]) is None


def test_loadvideo_accepts_an_uploaded_file_the_combo_does_not_list() -> None:
    d = declaration("upscale_lanczos")
    graph = d.fill(d.graph(), {"video": "jobs/j1/segment_03.mp4", "width": 3840, "height": 2160})
    assert graph["1"]["inputs"]["file"] == "jobs/j1/segment_03.mp4"
    assert validate_graph(graph, SNAPSHOT) == []


def test_upscale_model_workflow_names_the_real_esrgan_download() -> None:
    report = check_declaration(declaration("upscale_model"), SNAPSHOT)
    (missing,) = report.missing_models
    assert "RealESRGAN_x4plus.pth" in str(missing) and "github.com/xinntao/Real-ESRGAN" in str(missing)
