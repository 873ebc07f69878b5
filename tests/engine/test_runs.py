"""Submit, progress and outputs on a real ComfyUI (CPU) with the node pack loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import declaration, transcript_graph
from vidfarm.comfy import ComfyClient, Progress, PromptRun
from vidfarm.comfy.local import free_port
from vidfarm.errors import ExecutionFailed, InputImageError, PromptRejected, ServerUnreachable


def record(into: list[Progress]):  # noqa: ANN201 - a small callback factory
    def on_progress(p: Progress) -> None:
        into.append(Progress(**vars(p)))

    return on_progress


def test_video_run_reports_progress_and_saves_a_checked_mp4(client: ComfyClient, tmp_path: Path) -> None:
    d = declaration("standin_t2v")
    graph = d.fill(d.graph(), {"prompt": "a lighthouse at dusk", "frames": 24, "fps": 12, "width": 320, "height": 176})
    seen: list[Progress] = []
    run = PromptRun(client, graph, dest_dir=tmp_path, on_progress=record(seen))
    result = run.wait()
    video = result.first("video")
    assert (video.info.width, video.info.height, video.info.frames, video.info.fps) == (320, 176, 24, 12.0)
    assert video.info.codec == "h264" and video.path.parent == tmp_path and video.path.suffix == ".mp4"
    assert result.prompt_id == run.prompt_id  # 0.3.x and newer honour the id we chose
    stages = [p.stage for p in seen]
    assert stages[0] == "queued" and stages[-1] == "finished" and "running" in stages
    assert {p.node_class for p in seen} >= {"VidfarmStandInVideo", "CreateVideo", "SaveVideo"}
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert not list(tmp_path.glob(".part-*"))


def test_image_run_collects_every_file(client: ComfyClient, tmp_path: Path) -> None:
    d = declaration("standin_image")
    result = PromptRun(client, d.fill(d.graph(), {"count": 3, "width": 40, "height": 30}), dest_dir=tmp_path).wait()
    assert len(result.outputs) == 3
    assert {(o.info.kind, o.info.width, o.info.height) for o in result.outputs} == {("image", 40, 30)}


def test_transcript_video_and_webp_outputs_are_both_collected(client: ComfyClient, tmp_path: Path) -> None:
    result = PromptRun(client, transcript_graph("video_create_save.json"), dest_dir=tmp_path).wait()
    by_suffix = {o.path.suffix: o.info for o in result.outputs}
    assert by_suffix[".mp4"].frames == 8 and by_suffix[".webp"].frames == 8


def test_image_to_video_uploads_the_start_image(client: ComfyClient, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(photo)
    name = client.upload_image(photo, subfolder="vidfarm/test-i2v")
    assert name == "vidfarm/test-i2v/photo.png"
    d = declaration("standin_i2v")
    graph = d.fill(d.graph(), {"image": name, "frames": 9, "width": 160, "height": 96})
    video = PromptRun(client, graph, dest_dir=tmp_path / "out").wait().first("video")
    assert (video.info.frames, video.info.width, video.info.height) == (9, 160, 96)


def test_upload_refuses_a_text_file_and_uploads_nothing(client: ComfyClient, tmp_path: Path) -> None:
    fake = tmp_path / "not_an_image.png"
    fake.write_text("hello")
    with pytest.raises(InputImageError):
        client.upload_image(fake, subfolder="vidfarm/never")
    assert "vidfarm/never/not_an_image.png" not in str(client.http.get_json("/object_info/LoadImage"))


def test_runtime_error_names_node_and_exception(client: ComfyClient, tmp_path: Path) -> None:
    # Bypass our own upload check to reach the server's run-time failure (transcript §9).
    response = client.http.request(
        "POST",
        "/upload/image",
        files={"image": ("corrupt.png", b"not a png")},
        data={"subfolder": "vidfarm/corrupt", "overwrite": "true"},
    )
    assert response.status_code == 200
    graph = transcript_graph("runtime_error_corrupt_input.json")
    graph["1"]["inputs"]["image"] = "vidfarm/corrupt/corrupt.png"
    with pytest.raises(ExecutionFailed) as err:
        PromptRun(client, graph, dest_dir=tmp_path).wait()
    assert err.value.node_id == "1" and err.value.node_type == "LoadImage"
    assert "UnidentifiedImageError" in str(err.value)
    assert not any(tmp_path.iterdir())


def test_partly_valid_graph_accepted_with_200_is_a_failure(client: ComfyClient, tmp_path: Path) -> None:
    graph = transcript_graph("image_blend_scale.json")
    graph["7"] = {
        "class_type": "ImageScale",
        "inputs": {"image": ["1", 0], "upscale_method": "magic", "width": 8, "height": 8, "crop": "disabled"},
    }
    graph["8"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "x/bad"}}
    with pytest.raises(PromptRejected) as err:
        PromptRun(client, graph, dest_dir=tmp_path).wait()
    assert [(p.node_id, p.type) for p in err.value.problems] == [("7", "value_not_in_list")]


def test_unreachable_server_is_said_plainly(tmp_path: Path) -> None:
    client = ComfyClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ServerUnreachable, match="is it running, and is the URL right"):
        client.system_stats()
