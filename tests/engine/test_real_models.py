"""Every real workflow executed through ComfyUI's own model code, on tiny random-weight files (tiny-models.md).

The files have the published names and key layouts at small dimensions, so ComfyUI's real loaders detect them and
its real Wan, VAE, umt5 and LoRA code runs them: the output is noise, the path is the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import declaration
from tests.support.comfy_python import make_tiny_models, sigma_schedule
from tests.support.real_models import link_models, tiny_pack_loaded
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import WorkflowError

pytestmark = pytest.mark.engine
LIGHTX2V_SIGMAS = [1.0, 0.938, 0.833, 0.625, 0.0]  # shift 5, 4 steps: the schedule the LoRAs were distilled on


@pytest.fixture(scope="module")
def real_comfy(
    tiny_models: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComfyClient]:
    base = tmp_path_factory.mktemp("comfy-real")
    link_models(tiny_models[0], base / "models")
    with tiny_pack_loaded():
        server = LocalComfy(base).start()
    client = ComfyClient(server.url)
    yield client
    client.close()
    server.stop()


def test_tiny_models_have_the_real_layouts(tiny_models: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, manifest = tiny_models
    detected = {name.split("/")[1]: entry["detected"] for name, entry in manifest.items()}
    for expert in ("t2v_high", "t2v_low", "i2v_high", "i2v_low"):
        kind, noise = expert.split("_")
        assert detected[f"wan2.2_{kind}_{noise}_noise_14B_fp8_scaled.safetensors"] == "WAN21/WAN21_T2V"
    assert detected["wan2.2_ti2v_5B_fp16.safetensors"] == "WAN22/WAN22_T2V"
    assert detected["umt5_xxl_fp8_e4m3fn_scaled.safetensors"] == "WanTEModel cond (1, 512, 4096)"
    assert detected["wan2.2_vae.safetensors"].endswith("latent 48")
    assert detected["wan_2.1_vae.safetensors"] == "comfy.ldm.wan.vae latent 16"
    assert detected["RealESRGAN_x4plus.pth"] == "RRDBNet"
    for noise in ("high", "low"):  # each LoRA really changes every weight it targets
        lora = detected[f"wan2.2_i2v_lightx2v_4steps_lora_v1_{noise}_noise.safetensors"]
        _, changed, _, total, _ = lora.split()
        assert changed == total and int(total) >= 20, lora
    for kind in ("t2v", "i2v"):  # 65 input channels (32 noise + 32 image + 1 mask), SigLIP-wide vision input
        assert detected[f"hunyuanvideo1.5_720p_{kind}_fp16.safetensors"] == "HunyuanVideo15/HunyuanVideo15"
    for name in ("qwen_2.5_vl_7b_fp8_scaled.safetensors", "byt5_small_glyphxl_fp16.safetensors"):
        assert detected[name] == "QwenImageTEModel_ cond width 8 byt5 width (16,)"  # a quoted word ran byT5
    assert detected["hunyuanvideo15_vae_fp16.safetensors"].startswith("comfy.ldm.hunyuan_video.vae_refiner.Decoder")
    assert detected["hunyuanvideo15_vae_fp16.safetensors"].endswith("latent (1, 32, 2, 2, 2)")  # 5 frames: 1 + 4
    assert detected["sigclip_vision_patch14_384.safetensors"] == "ClipVisionModel 384px hidden (1, 729, 1152)"
    # Qwen-Image-Edit: the MMDiT detected as Qwen-Image; the Qwen2.5-VL file alone, as CLIPLoader type qwen_image,
    # encodes a prompt with an image (its vision tower runs); the Lightning LoRA changes every weight it targets
    qwen_dit = "qwen_image_edit_2509_fp8_e4m3fn.safetensors"
    assert detected[qwen_dit] == "QwenImage/QwenImage cond width 8 with an image"
    assert detected["qwen_image_vae.safetensors"] == "comfy.ldm.wan.vae latent 16"
    _, changed, _, total, _ = detected["Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors"].split()
    assert changed == total and int(total) >= 28
    # ~79 MB: HunyuanVideo 1.5 adds ~46 MB, most of it widths ComfyUI fixes at 1152 (SigLIP 384, 2 layers: 24 MB);
    # Qwen-Image-Edit ~3.4 MB
    assert sum(e["size"] for e in manifest.values()) < 80e6
    declared = {f"{m.folder}/{m.file}" for name in REAL_WORKFLOWS for m in declaration(name).models}
    assert declared <= set(manifest)  # a file for every model a real workflow declares
    again = make_tiny_models(tmp_path / "again")  # deterministic: same seed, same bytes
    assert {k: v["sha256"] for k, v in again.items()} == {k: v["sha256"] for k, v in manifest.items()}


@pytest.mark.parametrize("name", ["wan22_14b_i2v_4step", "wan22_14b_flf_4step"])
def test_4step_workflows_walk_the_lightx2v_schedule(name: str) -> None:
    graph = declaration(name).graph()
    shifts = {n["inputs"]["shift"] for n in graph.values() if n["class_type"] == "ModelSamplingSD3"}
    steps = {n["inputs"]["steps"] for n in graph.values() if n["class_type"] == "KSamplerAdvanced"}
    assert len(shifts) == 1 and steps == {4}
    assert sigma_schedule(shifts.pop(), 4) == pytest.approx(LIGHTX2V_SIGMAS, abs=1e-3)


def test_keyframe_edit_starts_from_the_noise_its_comment_promises() -> None:
    d = declaration("wan22_14b_keyframe_edit")
    graph = d.graph()
    shift = next(n["inputs"]["shift"] for n in graph.values() if n["class_type"] == "ModelSamplingSD3")
    sampler = next(n["inputs"] for n in graph.values() if n["class_type"] == "KSamplerAdvanced")
    sigma = sigma_schedule(shift, sampler["steps"])[sampler["start_at_step"]]
    assert sigma == pytest.approx(0.40, abs=0.02)
    assert "40 %" in d.graph_path.with_suffix(".toml").read_text()


def test_qwen_image_edit_starts_from_full_noise_in_4_lightning_steps() -> None:
    d = declaration("qwen_image_edit")
    graph = d.graph()
    shift = next(n["inputs"]["shift"] for n in graph.values() if n["class_type"] == "ModelSamplingAuraFlow")
    sampler = next(n["inputs"] for n in graph.values() if n["class_type"] == "KSampler")
    assert (sampler["steps"], sampler["cfg"], sampler["denoise"]) == (4, 1.0, 1.0)
    sigmas = sigma_schedule(shift, sampler["steps"])  # AuraFlow's flow sampling: the same sigmas as SD3's per shift
    assert sigmas[0] == pytest.approx(1.0) and len(sigmas) == 5
    assert "denoise 1.0" in d.graph_path.with_suffix(".toml").read_text()


@pytest.mark.parametrize("name", ["wan22_14b_i2v_4step", "wan22_14b_flf", "wan22_5b_i2v"])
def test_wan_frame_counts_are_4n_plus_1(name: str) -> None:
    d = declaration(name)
    d.fill(d.graph(), {"frames": 81})
    with pytest.raises(WorkflowError, match="multiple of 4"):
        d.fill(d.graph(), {"frames": 80})


def picture(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (160, 120), colour).save(path)
    return path


SEGMENT = {"prompt": "a paper boat", "seed": 3, "width": 128, "height": 96, "frames": 9, "fps": 16.0,
           "out_width": 256, "out_height": 192}  # fmt: skip
HY_PROMPT = 'a paper boat with a sail saying "vidfarm"'
REAL_WORKFLOWS = {
    "wan22_14b_keyframe": ({"prompt": "a paper boat", "seed": 1, "width": 128, "height": 96}, (), "image"),
    "wan22_14b_keyframe_edit": ({"prompt": "the boat at dusk", "width": 128, "height": 96}, ("image",), "image"),
    "qwen_image_edit": ({"prompt": "the boat at dusk", "seed": 2, "width": 128, "height": 96}, ("image",), "image"),
    "wan22_14b_i2v_4step": (SEGMENT, ("image", "reference"), "video"),
    "wan22_14b_i2v": ({**SEGMENT, "drop_first": 1, "keep": 4}, ("image", "reference"), "video"),
    "wan22_14b_flf_4step": (SEGMENT, ("start_image", "end_image", "reference"), "video"),
    "wan22_14b_flf": (SEGMENT, ("start_image", "end_image", "reference"), "video"),
    "wan22_5b_t2v": ({"prompt": "a kite", "width": 128, "height": 96, "frames": 9}, (), "video"),
    "wan22_5b_i2v": ({"prompt": "a kite", "width": 128, "height": 96, "frames": 9}, ("image",), "video"),
    "wan22_5b_keyframe": ({"prompt": "a kite", "seed": 1, "width": 128, "height": 96}, (), "image"),
    "wan22_5b_seg_i2v": ({**SEGMENT, "drop_first": 1, "keep": 4}, ("image", "reference"), "video"),
    # HunyuanVideo 1.5: a quoted word in the prompt also runs the byT5 glyph encoder and the DiT's byT5 mapper
    "hunyuan15_keyframe": ({"prompt": HY_PROMPT, "seed": 1, "width": 128, "height": 96}, (), "image"),
    "hunyuan15_t2v": ({"prompt": HY_PROMPT, "width": 128, "height": 96, "frames": 9}, (), "video"),
    "hunyuan15_i2v": ({"prompt": HY_PROMPT, "width": 128, "height": 96, "frames": 9}, ("image",), "video"),
    "hunyuan15_seg_i2v": (
        {**SEGMENT, "prompt": HY_PROMPT, "drop_first": 1, "keep": 4},
        ("image", "reference"),
        "video",
    ),
}


@pytest.mark.parametrize("name", sorted(REAL_WORKFLOWS))
def test_real_workflow_runs_on_comfyui_model_code(name: str, real_comfy: ComfyClient, tmp_path: Path) -> None:
    values, images, kind = REAL_WORKFLOWS[name]
    d = declaration(name)
    uploads = {
        key: real_comfy.upload_image(picture(tmp_path / f"{key}.png", (40 * i + 60, 120, 200 - 40 * i)))
        for i, key in enumerate(images)
    }
    result = PromptRun(real_comfy, d.fill(d.graph(), {**values, **uploads}), dest_dir=tmp_path / "out").wait()
    info = result.first(kind).info
    if kind == "image":
        assert (info.width, info.height) == (values["width"], values["height"])
        return
    size = (values.get("out_width", values["width"]), values.get("out_height", values["height"]))
    assert (info.width, info.height) == size
    kept = min(values.get("keep", 4096), values["frames"] - values.get("drop_first", 0))
    assert info.frames == kept
    assert info.fps == values.get("fps", d.parameters["fps"].default)
    if "last_frame" in d.outputs:  # a chain's next segment starts from this frame, at the render size
        last = next(o for o in result.outputs if o.node_id == d.outputs["last_frame"]).info
        assert (last.width, last.height) == (values["width"], values["height"])


def test_qwen_image_edit_follows_its_reference(real_comfy: ComfyClient, tmp_path: Path) -> None:
    """Sampling starts from full noise (denoise 1.0: the start latent only sets the size), so the reference reaches
    the output only through the conditioning (Qwen2.5-VL's image tokens and the reference latent): the same seed
    and prompt give the same image for the same reference and another for another reference."""
    d = declaration("qwen_image_edit")
    values = {"prompt": "the boat at dusk", "seed": 5, "width": 128, "height": 96}

    def edit(colour: tuple[int, int, int], run: str) -> bytes:
        image = real_comfy.upload_image(picture(tmp_path / f"{run}.png", colour))
        result = PromptRun(real_comfy, d.fill(d.graph(), {**values, "image": image}), dest_dir=tmp_path / run).wait()
        with Image.open(result.first("image").path) as out:
            return out.convert("RGB").tobytes()

    red, red_again, blue = edit((220, 40, 30), "red"), edit((220, 40, 30), "red-again"), edit((30, 40, 220), "blue")
    assert red == red_again
    assert red != blue
