from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidfarm.errors import WorkflowError
from vidfarm.workflow.graph import is_link, load_graph, parse_graph, with_unique_outputs

UI_FORMAT = {
    "last_node_id": 3,
    "nodes": [{"id": 1, "type": "EmptyImage", "widgets_values": [512, 512, 1, 0]}],
    "links": [],
    "version": 0.4,
}


def test_ui_format_is_refused_with_export_instructions() -> None:
    with pytest.raises(WorkflowError) as err:
        parse_graph(UI_FORMAT, source="my.json")
    assert "UI-format" in str(err.value) and "Export (API)" in str(err.value)


def test_non_json_file_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"1": {"class_type": "EmptyImage",, }')
    with pytest.raises(WorkflowError, match=r"not valid JSON \(line 1, column 35"):
        load_graph(bad)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="does not exist"):
        load_graph(tmp_path / "nope.json")


@pytest.mark.parametrize("data", [[], {}, "text", {"1": {"inputs": {}}}, {"1": {"class_type": "X", "inputs": 3}}])
def test_wrong_shapes_are_refused(data: object) -> None:
    with pytest.raises(WorkflowError):
        parse_graph(data)


def test_prompt_request_body_is_accepted() -> None:
    graph = parse_graph({"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}, "client_id": "x"})
    assert graph["1"]["inputs"]["width"] == 8


def test_links_are_told_from_values() -> None:
    assert is_link(["1", 0])
    assert not is_link([1, 0]) and not is_link(["1", True]) and not is_link(["a", "b"]) and not is_link(5)


def test_unique_outputs_rewrite_every_prefix_and_leave_the_original() -> None:
    graph = {
        "1": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "dispatch_test/img", "images": ["2", 0]},
        },
        "2": {"class_type": "EmptyImage", "inputs": {"width": 4}},
    }
    unique = with_unique_outputs(graph, "run42")
    assert unique["1"]["inputs"]["filename_prefix"] == "vidfarm/run42/img"
    assert graph["1"]["inputs"]["filename_prefix"] == "dispatch_test/img"
    assert json.dumps(unique["2"]) == json.dumps(graph["2"])
