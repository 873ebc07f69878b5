"""Our pre-flight check and the real server give the same verdict on the same bad workflows."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, WORKFLOWS, transcript_graph
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.errors import ExecutionFailed, Problem, PromptRejected
from vidfarm.workflow.check import check_declaration
from vidfarm.workflow.declaration import find_declarations
from vidfarm.workflow.validate import UPLOAD_KEYS, combo_options, validate_graph


def _bad_graphs() -> dict[str, dict[str, Any]]:
    base = transcript_graph("image_blend_scale.json")
    cases: dict[str, dict[str, Any]] = {}
    g = json.loads(json.dumps(base))
    g["1"]["class_type"] = "NoSuchNode"
    cases["unknown class"] = g
    g = json.loads(json.dumps(base))
    del g["1"]["inputs"]["color"]
    cases["missing input"] = g
    g = json.loads(json.dumps(base))
    g["1"]["inputs"]["width"] = -5
    cases["below min"] = g
    g = json.loads(json.dumps(base))
    g["2"]["inputs"]["width"] = 20000
    cases["above max"] = g
    g = json.loads(json.dumps(base))
    g["4"]["inputs"]["upscale_method"] = "magic"
    cases["not in list"] = g
    g = json.loads(json.dumps(base))
    g["1"]["inputs"]["width"] = "wide"
    cases["str for INT"] = g
    g = json.loads(json.dumps(base))
    g["1"]["inputs"]["width"] = -5
    g["2"]["inputs"]["batch_size"] = 0
    del g["3"]["inputs"]["blend_mode"]
    cases["several at once"] = g
    cases["missing model"] = {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "absent.safetensors", "weight_dtype": "default"},
        },
        "2": {"class_type": "ModelSave", "inputs": {"model": ["1", 0], "filename_prefix": "x"}},
    }
    return cases


MISSING_UPSCALE_MODEL = {
    "1": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "absent_x2.safetensors"}},
    "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["2", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
}


BAD = _bad_graphs()


def verdict(problems: list[Problem]) -> set[tuple[str, str, str | None]]:
    return {(p.node_id, p.type, p.input_name) for p in problems}


@pytest.mark.parametrize("case", list(BAD))
def test_same_verdict_before_and_by_the_server(client: ComfyClient, case: str) -> None:
    graph = BAD[case]
    ours = validate_graph(graph, client.object_info())
    assert ours, "our check let a bad workflow through"
    with pytest.raises(PromptRejected) as server:
        client.submit(graph, prompt_id=str(uuid.uuid4()), client_id="validation-test")
    assert verdict(ours) == verdict(server.value.problems)
    assert all(p.fix for p in ours)  # ours also says what to do


def test_missing_model_in_a_v3_combo_is_caught_before_the_server_would(client: ComfyClient, tmp_path: Path) -> None:
    """Our check names the missing model up front. The server refuses it at submit or fails the run naming it:
    which one depends on the version (0.3.75 does not check V3 combo values at submit; newer ones do)."""
    [problem] = validate_graph(MISSING_UPSCALE_MODEL, client.object_info())
    assert (problem.node_id, problem.input_name) == (
        "1",
        "model_name",
    ) and "missing on this server" in problem.message
    with pytest.raises((PromptRejected, ExecutionFailed)) as server:
        PromptRun(client, MISSING_UPSCALE_MODEL, dest_dir=tmp_path).wait()
    if isinstance(server.value, PromptRejected):  # refused at submit: the same verdict as ours
        assert verdict(server.value.problems) == verdict([problem])
    else:  # failed when it ran: in the loader, naming the file
        assert server.value.node_id == "1" and "absent_x2.safetensors" in str(server.value)


def _contract(spec: dict[str, Any]) -> dict[str, Any]:
    """What vidfarm relies on in a node's /object_info (validation, conversion, the editor's widgets): the inputs
    in order with their types, choices, defaults and ranges, and the outputs. Display texts and the fields a
    newer ComfyUI adds are left out: they differ between versions and no check reads them."""

    def one(entry: list[Any]) -> dict[str, Any]:
        options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
        kept = {k: options[k] for k in ("default", "min", "max", "step", "forceInput", *UPLOAD_KEYS) if k in options}
        return {
            "type": "COMBO" if combo_options(entry) is not None else entry[0],
            "options": combo_options(entry),
            **kept,
        }

    section = spec.get("input", {})
    order = spec.get("input_order") or {}
    return {
        "inputs": {
            group: [(name, one(section[group][name])) for name in order.get(group) or list(section.get(group) or {})]
            for group in ("required", "optional")
        },
        "outputs": list(zip(spec.get("output", []), spec.get("output_is_list", []), strict=False)),
        "output_node": bool(spec.get("output_node")),
    }


def test_live_object_info_keeps_what_vidfarm_relies_on(client: ComfyClient) -> None:
    """The saved snapshot (ComfyUI 0.3.75 + the pack) stands in for a server in `workflows validate` and the
    converter: the live server, whatever its version, must agree with it on what those read."""
    snapshot = json.loads((REPO / "workflows" / "object_info" / "comfyui-0.3.75-vidfarm.json").read_text())
    live = client.object_info()
    ours = sorted(n for n in snapshot if n.startswith("Vidfarm"))
    assert sorted(n for n in live if n.startswith("Vidfarm")) == ours, "regenerate the snapshot (docs/workflows.md)"
    for name in ours:
        assert _contract(live[name]) == _contract(snapshot[name]), f"{name} changed: regenerate the snapshot"
    for declared in find_declarations(WORKFLOWS):  # every core node and input the shipped workflows use is there
        report = check_declaration(declared, live)
        assert report.ok, "\n".join(report.lines())
