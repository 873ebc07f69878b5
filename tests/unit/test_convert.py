"""Editor (UI-format) files to API-format graphs: the hand-checked cases, the shipped templates, the verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TRANSCRIPT_WORKFLOWS, WORKFLOWS
from tests.editor_files import to_editor, without_titles
from vidfarm.comfy.local import default_install_dir
from vidfarm.workflow.check import load_object_info
from vidfarm.workflow.convert import convert_editor, map_widgets
from vidfarm.workflow.graph import is_link, load_graph
from vidfarm.workflow.sources import editor_models, editor_packs, model_from_entry
from vidfarm.workflow.verdict import CUSTOM_NODES, KINDS, MODEL, UNSUPPORTED, UPGRADE, summary, verdicts

OBJECT_INFO = load_object_info(WORKFLOWS / "object_info" / "comfyui-0.3.75.json")
OUTER, INNER = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"


def _link(link_id: int, origin: int, origin_slot: int, target: int, target_slot: int, kind: str) -> dict[str, Any]:
    return {
        "id": link_id,
        "origin_id": origin,
        "origin_slot": origin_slot,
        "target_id": target,
        "target_slot": target_slot,
        "type": kind,
    }


def nested_file() -> dict[str, Any]:
    """A primitive feeds a widget, a reroute and a bypassed node sit on the way into a subgraph with a subgraph."""
    inner = {
        "id": INNER,
        "name": "inner",
        "inputs": [
            {"name": "image", "type": "IMAGE", "linkIds": [21]},
            {"name": "method", "type": "COMBO", "linkIds": [22]},
            {"name": "height", "type": "INT", "linkIds": [23]},
        ],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [25]}],
        "nodes": [
            {
                "id": 20,
                "type": "ImageScale",
                "mode": 0,
                "inputs": [
                    {"name": "image", "type": "IMAGE", "link": 21},
                    {"name": "upscale_method", "type": "COMBO", "link": 22, "widget": {"name": "upscale_method"}},
                    {"name": "height", "type": "INT", "link": 23, "widget": {"name": "height"}},
                ],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [24]}],
                "widgets_values": ["nearest-exact", 50, 40, "disabled"],
            },
            {
                "id": 21,
                "type": "ImageInvert",
                "mode": 0,
                "inputs": [{"name": "image", "type": "IMAGE", "link": 24}],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [25]}],
                "widgets_values": [],
            },
        ],
        "links": [
            _link(21, -10, 0, 20, 0, "IMAGE"),
            _link(22, -10, 1, 20, 1, "COMBO"),
            _link(23, -10, 2, 20, 2, "INT"),
            _link(24, 20, 0, 21, 0, "IMAGE"),
            _link(25, 21, 0, -20, 0, "IMAGE"),
        ],
    }
    outer = {
        "id": OUTER,
        "name": "outer",
        "inputs": [
            {"name": "image", "type": "IMAGE", "linkIds": [11]},
            {"name": "height", "type": "INT", "linkIds": [12]},
        ],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [13]}],
        "nodes": [
            # an older editor: one promoted value per widget-typed input of `inner` (method, height); height is linked
            {
                "id": 10,
                "type": INNER,
                "mode": 0,
                "inputs": [
                    {"name": "image", "type": "IMAGE", "link": 11},
                    {"name": "height", "type": "INT", "link": 12, "widget": {"name": "height"}},
                ],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [13]}],
                "widgets_values": ["bilinear", 999],
            },
        ],
        "links": [
            _link(11, -10, 0, 10, 0, "IMAGE"),
            _link(12, -10, 1, 10, 1, "INT"),
            _link(13, 10, 0, -20, 0, "IMAGE"),
        ],
    }
    nodes = [
        {
            "id": 1,
            "type": "EmptyImage",
            "mode": 0,
            "title": "Canvas",
            "inputs": [{"name": "width", "type": "INT", "link": 2, "widget": {"name": "width"}}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
            "widgets_values": [64, 32, 1, 0],
        },
        {
            "id": 2,
            "type": "PrimitiveNode",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "INT", "type": "INT", "links": [2], "widget": {"name": "width"}}],
            "widgets_values": [96, "fixed"],
        },
        {
            "id": 3,
            "type": "Reroute",
            "mode": 0,
            "inputs": [{"name": "", "type": "*", "link": 1}],
            "outputs": [{"name": "", "type": "IMAGE", "links": [3]}],
        },
        {
            "id": 4,
            "type": "ImageInvert",
            "mode": 4,
            "inputs": [{"name": "image", "type": "IMAGE", "link": 3}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [4]}],
            "widgets_values": [],
        },
        # a newer editor: proxyWidgets name the promoted widget (subgraph input "height")
        {
            "id": 5,
            "type": OUTER,
            "mode": 0,
            "inputs": [{"name": "image", "type": "IMAGE", "link": 4}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [5]}],
            "properties": {"proxyWidgets": [["-1", "height"]]},
            "widgets_values": [48],
        },
        {
            "id": 6,
            "type": "SaveImage",
            "mode": 0,
            "inputs": [{"name": "images", "type": "IMAGE", "link": 5}],
            "outputs": [],
            "widgets_values": ["conv/out"],
        },
        {"id": 7, "type": "Note", "mode": 0, "inputs": [], "outputs": [], "widgets_values": ["read me"]},
        {
            "id": 8,
            "type": "ImageBlur",
            "mode": 2,
            "inputs": [{"name": "image", "type": "IMAGE", "link": None}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": []}],
            "widgets_values": [1, 1.0],
        },
    ]
    links = [
        [1, 1, 0, 3, 0, "IMAGE"],
        [2, 2, 0, 1, 0, "INT"],
        [3, 3, 0, 4, 0, "IMAGE"],
        [4, 4, 0, 5, 0, "IMAGE"],
        [5, 5, 0, 6, 0, "IMAGE"],
    ]
    return {"nodes": nodes, "links": links, "definitions": {"subgraphs": [outer, inner]}, "version": 0.4}


EXPECTED = {  # worked out by hand from nested_file()
    "1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 32, "batch_size": 1, "color": 0}},
    "5:10:20": {
        "class_type": "ImageScale",
        "inputs": {"upscale_method": "bilinear", "width": 50, "height": 48, "crop": "disabled", "image": ["1", 0]},
    },
    "5:10:21": {"class_type": "ImageInvert", "inputs": {"image": ["5:10:20", 0]}},
    "6": {"class_type": "SaveImage", "inputs": {"filename_prefix": "conv/out", "images": ["5:10:21", 0]}},
}


def test_two_level_subgraph_bypass_reroute_and_primitive_convert_as_worked_out_by_hand() -> None:
    conversion = convert_editor(nested_file(), OBJECT_INFO)
    assert without_titles(conversion.graph) == EXPECTED
    assert conversion.graph["1"]["_meta"]["title"] == "Canvas"
    assert conversion.problems == []
    assert sorted(conversion.dropped) == [
        "node 2 (PrimitiveNode): editor-only",
        "node 3 (Reroute): editor-only",
        "node 4 (ImageInvert): bypassed (wired through)",
        "node 7 (Note): editor-only",
        "node 8 (ImageBlur): muted",
    ]
    assert verdicts(conversion.graph, OBJECT_INFO) == []


def test_hidden_widget_values_are_skipped_only_where_the_editor_adds_them() -> None:
    sampler = map_widgets([7, "randomize", 20, 5.0, "euler", "simple", 1.0], OBJECT_INFO["KSampler"])
    assert sampler == {
        "seed": 7,
        "steps": 20,
        "cfg": 5.0,
        "sampler_name": "euler",
        "scheduler": "simple",
        "denoise": 1.0,
    }
    assert map_widgets([7, 20, 5.0, "euler", "simple", 1.0], OBJECT_INFO["KSampler"])["steps"] == 20  # no control
    assert map_widgets(["photo.png", "image"], OBJECT_INFO["LoadImage"]) == {"image": "photo.png"}
    assert map_widgets({"image": "a.png", "upload": "image"}, OBJECT_INFO["LoadImage"]) == {"image": "a.png"}


@pytest.mark.parametrize("name", sorted(p.name for p in TRANSCRIPT_WORKFLOWS.glob("*.json")))
def test_api_graphs_saved_as_editor_files_convert_back_to_themselves(name: str) -> None:
    graph = json.loads((TRANSCRIPT_WORKFLOWS / name).read_text())
    if any(node["class_type"] not in OBJECT_INFO for node in graph.values()):
        pytest.fail(f"{name} uses a node class the 0.3.75 snapshot lacks")
    assert without_titles(convert_editor(to_editor(graph, OBJECT_INFO), OBJECT_INFO).graph) == without_titles(graph)


def video_templates() -> list[Path]:
    site = default_install_dir() / "venv" / "lib" / "python3.11" / "site-packages"
    return sorted(site.glob("comfyui_workflow_templates*/templates/*.json"))


def test_every_shipped_video_template_converts_and_gets_a_verdict() -> None:
    templates = [p for p in video_templates() if "media_video" in str(p)]
    assert len(templates) >= 30, "the ComfyUI 0.3.75 install ships the media-video templates (scripts/setup)"
    verdict_lines = {}
    for path in templates:
        data = json.loads(path.read_text())
        conversion = convert_editor(data, OBJECT_INFO)
        problems = verdicts(conversion.graph, OBJECT_INFO, models=editor_models(data), known=conversion.problems)
        assert conversion.graph, path.name
        assert all(p.kind in KINDS and p.message for p in problems), path.name
        judged = {p.node_id for p in conversion.problems}
        links = [v[0] for node in conversion.graph.values() for v in node["inputs"].values() if is_link(v)]
        assert all(target in conversion.graph or target in judged for target in links), path.name
        verdict_lines[path.stem] = summary(problems)
    assert verdict_lines["video_wan2_2_5B_ti2v"] == "3 model"
    assert "custom nodes" in verdict_lines["video_wan2_2_14B_animate"]  # KJNodes, controlnet_aux, SAM2


def test_the_5b_template_is_the_hand_written_workflow_but_for_the_project_s_own_choices() -> None:
    (template,) = [p for p in video_templates() if p.name == "video_wan2_2_5B_ti2v.json"]
    converted = without_titles(convert_editor(json.loads(template.read_text()), OBJECT_INFO).graph)
    ours = without_titles(load_graph(WORKFLOWS / "wan22_5b_t2v.json"))
    project_choices = {  # docs/workflows.md, "From the editor": what the hand-written file changed
        ("6", "text"),
        ("7", "text"),
        ("3", "seed"),
        ("58", "filename_prefix"),
        ("58", "format"),
        ("58", "codec"),
    }
    assert converted.keys() == ours.keys()  # the same node ids, even
    for nid, node in ours.items():
        assert converted[nid]["class_type"] == node["class_type"]
        differing = {
            (nid, k)
            for k in node["inputs"].keys() | converted[nid]["inputs"].keys()
            if node["inputs"].get(k) != converted[nid]["inputs"].get(k)
        }
        assert differing <= project_choices, differing
    assert converted["58"]["inputs"]["format"] == "auto" and ours["58"]["inputs"]["format"] == "mp4"


def _one_node_file(node_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    node = {
        "id": 1,
        "type": node_type,
        "mode": 0,
        "inputs": [],
        "outputs": [],
        "properties": properties,
        "widgets_values": [],
    }
    return {"nodes": [node], "links": []}


@pytest.mark.parametrize(
    ("node_type", "properties", "kind", "says"),
    [
        ("WanFutureNode", {"cnr_id": "comfy-core", "ver": "0.9.2"}, UPGRADE, "saved with ComfyUI 0.9.2"),
        (
            "VHS_VideoCombine",
            {"cnr_id": "comfyui-videohelpersuite", "aux_id": "Kosinkadink/ComfyUI-VideoHelperSuite"},
            CUSTOM_NODES,
            "github.com/Kosinkadink/ComfyUI-VideoHelperSuite",
        ),
        ("MysteryNode", {}, CUSTOM_NODES, "neither a core node"),
        ("workflow>my group", {}, UNSUPPORTED, "group node"),
    ],
)
def test_each_missing_node_gets_the_verdict_of_its_kind(
    node_type: str, properties: dict[str, Any], kind: str, says: str
) -> None:
    conversion = convert_editor(_one_node_file(node_type, properties), OBJECT_INFO)
    (problem,) = verdicts(conversion.graph, OBJECT_INFO, known=conversion.problems)
    assert problem.kind == kind and problem.node_id == "1"
    assert says in str(problem) and problem.fix


def test_a_model_missing_gets_its_folder_file_and_the_source_the_file_names() -> None:
    url = "https://huggingface.co/Org/Repo/resolve/v2/split/vae/tiny.safetensors?download=true"
    data = {
        "nodes": [
            {
                "id": 1,
                "type": "VAELoader",
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "VAE", "type": "VAE", "links": [1]}],
                "properties": {"models": [{"name": "tiny.safetensors", "url": url, "directory": "vae"}]},
                "widgets_values": ["tiny.safetensors"],
            },
            {
                "id": 2,
                "type": "EmptyImage",
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}],
                "widgets_values": [8, 8, 1, 0],
            },
            {
                "id": 3,
                "type": "VAEEncode",
                "mode": 0,
                "inputs": [{"name": "pixels", "type": "IMAGE", "link": 2}, {"name": "vae", "type": "VAE", "link": 1}],
                "outputs": [{"name": "LATENT", "type": "LATENT", "links": [3]}],
            },
            {
                "id": 4,
                "type": "SaveLatent",
                "mode": 0,
                "inputs": [{"name": "samples", "type": "LATENT", "link": 3}],
                "outputs": [],
                "widgets_values": ["x"],
            },
        ],
        "links": [[1, 1, 0, 3, 1, "VAE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 4, 0, "LATENT"]],
    }
    (model,) = editor_models(data)
    assert (model.folder, model.file, model.repo, model.path, model.revision) == (
        "vae",
        "tiny.safetensors",
        "Org/Repo",
        "split/vae/tiny.safetensors",
        "v2",
    )
    (problem,) = verdicts(convert_editor(data, OBJECT_INFO).graph, OBJECT_INFO, models=[model])
    assert (
        problem.kind == MODEL
        and "models/vae/tiny.safetensors (from Org/Repo/split/vae/tiny.safetensors)" in problem.fix
    )


def test_other_download_urls_stay_urls_and_packs_are_named_once() -> None:
    other = model_from_entry(
        {"name": "m.safetensors", "url": "https://example.org/files/m.safetensors", "directory": "loras"}
    )
    assert other is not None and other.url.endswith("/m.safetensors") and not other.repo
    data = _one_node_file("PointsEditor", {"cnr_id": "comfyui-kjnodes"})
    data["nodes"].append({**data["nodes"][0], "id": 2, "properties": {"cnr_id": "comfyui-kjnodes"}})
    data["nodes"].append({**data["nodes"][0], "id": 3, "properties": {"cnr_id": "comfy-core"}})
    assert [p.name for p in editor_packs(data)] == ["comfyui-kjnodes"]
