"""Our pre-flight check and the real server give the same verdict on the same bad workflows."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, transcript_graph
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.errors import ExecutionFailed, Problem, PromptRejected
from vidfarm.workflow.validate import validate_graph


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
    """0.3.75 does not check V3 combo values at submit: the run fails later. Our check says so up front."""
    [problem] = validate_graph(MISSING_UPSCALE_MODEL, client.object_info())
    assert (problem.node_id, problem.input_name) == (
        "1",
        "model_name",
    ) and "missing on this server" in problem.message
    with pytest.raises(ExecutionFailed, match="not found"):
        PromptRun(client, MISSING_UPSCALE_MODEL, dest_dir=tmp_path).wait()


def test_live_object_info_matches_the_shipped_snapshot(client: ComfyClient) -> None:
    snapshot = json.loads((REPO / "workflows" / "object_info" / "comfyui-0.3.75-vidfarm.json").read_text())
    live = client.object_info()
    for name in [n for n in live if n.startswith("Vidfarm")]:
        assert live[name] == snapshot[name], f"{name} changed: regenerate the snapshot (docs/workflows.md)"
