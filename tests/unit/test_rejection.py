"""Server answers from the transcript (§8), new and 2024 shapes, turned into Problems."""

from __future__ import annotations

from vidfarm.comfy.client import file_refs
from vidfarm.comfy.rejection import rejection_from_response

SAME = {
    "type": "prompt_outputs_failed_validation",
    "message": "Prompt outputs failed validation",
    "details": "",
    "extra_info": {},
}


def test_missing_input_and_not_in_list() -> None:
    body = {
        "error": SAME,
        "node_errors": {
            "1": {
                "errors": [
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": "color",
                        "extra_info": {"input_name": "color"},
                    }
                ],
                "dependent_outputs": ["2"],
                "class_type": "EmptyImage",
            },
            "3": {
                "errors": [
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": "upscale_method: 'magic' not in ['nearest-exact']",
                        "extra_info": {"input_name": "upscale_method"},
                    }
                ],
                "class_type": "ImageScale",
            },
        },
    }
    error = rejection_from_response(400, body, "")
    assert {(p.node_id, p.type, p.input_name) for p in error.problems} == {
        ("1", "required_input_missing", "color"),
        ("3", "value_not_in_list", "upscale_method"),
    }
    assert "node 1 (EmptyImage) input 'color'" in str(error)


def test_unknown_class_names_the_node() -> None:
    body = {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because node NoSuchNode does not exist.",
            "details": "Node ID '#1'",
            "extra_info": {},
        },
        "node_errors": {},
    }
    [problem] = rejection_from_response(400, body, "").problems
    assert (problem.node_id, problem.class_type, problem.type) == ("1", "NoSuchNode", "missing_node_type")


def test_legacy_shapes_and_500() -> None:
    legacy = rejection_from_response(400, {"error": "no prompt", "node_errors": []}, "")
    assert "no prompt" in str(legacy) and legacy.problems == []
    crash = rejection_from_response(500, None, "500 Internal Server Error\n\nServer got itself in trouble")
    assert "malformed JSON" in str(crash) and "unknown node class" in str(crash)


def test_file_refs_walk_every_key() -> None:
    outputs = {
        "6": {
            "images": [{"filename": "vid_00002_.mp4", "subfolder": "d", "type": "output"}],
            "animated": [True],
        },
        "9": {"gifs": [{"filename": "v.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}]},
        "7": {"text": ["hello"]},
    }
    refs = {(r.node_id, r.filename, r.subfolder) for r in file_refs(outputs)}
    assert refs == {("6", "vid_00002_.mp4", "d"), ("9", "v.mp4", "")}
