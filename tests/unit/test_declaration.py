from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import WORKFLOWS, declaration
from vidfarm.errors import WorkflowError
from vidfarm.workflow.declaration import find_declaration, find_declarations, load_declaration


def test_every_declared_target_exists_in_its_graph() -> None:
    declarations = find_declarations(WORKFLOWS)
    assert {d.name for d in declarations} >= {
        "standin_t2v",
        "standin_i2v",
        "standin_image",
        "wan22_5b_t2v",
        "wan22_5b_i2v",
    }
    for d in declarations:
        assert d.check_targets(d.graph()) == [], d.name


def test_fill_writes_values_and_defaults_into_targets() -> None:
    d = declaration("standin_t2v")
    graph = d.fill(d.graph(), {"prompt": "a red kite", "frames": 12, "fps": 8})
    assert graph["1"]["inputs"]["prompt"] == "a red kite"
    assert graph["1"]["inputs"]["frames"] == 12
    assert graph["2"]["inputs"]["fps"] == 8.0 and isinstance(graph["2"]["inputs"]["fps"], float)
    assert graph["1"]["inputs"]["width"] == d.parameters["width"].default


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nope": 1}, "has no parameter nope; it takes: fps, frames, height, prompt, seed, width"),
        ({"frames": 0}, "below the minimum 1"),
        ({"width": 9000}, "above the maximum 8192"),
        ({"width": 515}, "multiple of 2"),
        ({"frames": "many"}, "'many' is not a valid int"),
        ({"frames": 2.5}, "is not a valid int"),
        ({"prompt": "x" * 10_000}, "10000 characters is too long"),
    ],
)
def test_bad_values_get_clear_errors(values: dict[str, object], message: str) -> None:
    d = declaration("standin_t2v")
    with pytest.raises(WorkflowError, match=message):
        d.fill(d.graph(), values)


def test_models_carry_source_size_and_licence() -> None:
    d = declaration("wan22_5b_t2v")
    folders = {m.folder for m in d.models}
    assert folders == {"diffusion_models", "text_encoders", "vae"}
    assert all(m.repo and m.path.endswith(m.file) and m.size > 10**9 and m.licence for m in d.models)
    assert round(sum(m.size for m in d.models) / 1e9, 1) == 18.1  # the template's download size (video.md)


def test_unknown_workflow_lists_known_ones() -> None:
    with pytest.raises(WorkflowError, match="known workflows: .*standin_t2v"):
        find_declaration(WORKFLOWS, "nonexistent")


def test_bad_declarations_are_explained(tmp_path: Path) -> None:
    bad = tmp_path / "w.toml"
    bad.write_text("[parameters.x]\ntype = 'colour'\ntargets = ['1.a']\n")
    with pytest.raises(WorkflowError, match="type 'colour' is not one of"):
        load_declaration(bad)
    bad.write_text("[parameters.x]\ntype = 'int'\n")
    with pytest.raises(WorkflowError, match="declares no targets"):
        load_declaration(bad)
    bad.write_text("[parameters.x\n")
    with pytest.raises(WorkflowError, match="not valid TOML"):
        load_declaration(bad)


def test_file_parameters_take_a_name_and_refuse_other_types() -> None:
    d = declaration("upscale_lanczos")
    assert d.parameters["video"].type == "file"
    assert d.parameters["video"].coerce("a/b.mp4") == "a/b.mp4"
    with pytest.raises(WorkflowError, match="not a valid file"):
        d.parameters["video"].coerce(3)
