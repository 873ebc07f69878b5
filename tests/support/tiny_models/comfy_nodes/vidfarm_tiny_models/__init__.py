"""Test-only ComfyUI pack: lets ComfyUI's own model code run the model files whose sizes ComfyUI fixes.

ComfyUI sizes some models from its source instead of the file; this pack makes them follow the file:
- umt5-xxl (`umt5_config_xxl.json`, 5.7 B parameters) and byT5-small glyph (`byt5_config_small_glyph.json`)
  through ComfyUI's existing model-options hook (`<model_name>_model_config`, read by `sd1_clip.SDClipModel`),
  filled from the file's tensor shapes;
- the Wan 2.2 VAE (constants in `comfy/sd.py`, 705 M) by building ComfyUI's own `vae2_2.WanVAE` at the file's
  `dim` / `dec_dim`; the HunyuanVideo 1.5 VAE (`block_out_channels` in `sd.py`) by building ComfyUI's own
  `vae_refiner.Encoder` / `Decoder` at the file's channels;
- Qwen2.5-VL's vision tower (width 1280, 32 layers in `llama.Qwen25_7BVLI`) and HunyuanVideo's byT5 mapper
  (1472 -> 2048 in `hunyuan_video.model`) by building ComfyUI's own classes at the file's widths;
- Qwen-Image's MMDiT (`qwen_image.model`: 24 heads of 128, text width 3584; detection reads only the input
  channels and the depth) by building ComfyUI's own class at the file's head count and text width;
- SigLIP 384: ComfyUI recognises a SigLIP only with 23+ layers (`clip_vision.load_clipvision_from_sd`); a file
  it does not recognise, with SigLIP 384's own signature (1152-wide layers, 729 positions) and fewer layers, is
  built from ComfyUI's `clip_vision_siglip_384.json` at the file's depth and MLP width.
The model code itself is untouched, and a full-size file passes through unchanged (its shapes are the fixed
ones). Loaded only into the test ComfyUI instances (VIDFARM_EXTRA_CUSTOM_NODES); it registers no nodes.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import comfy.clip_vision
import comfy.ldm.hunyuan_video.model
import comfy.ldm.hunyuan_video.vae_refiner
import comfy.ldm.qwen_image.model
import comfy.ldm.wan.vae2_2
import comfy.sd
import comfy.text_encoders.hunyuan_image
import comfy.text_encoders.qwen_vl

NODE_CLASS_MAPPINGS: dict[str, Any] = {}
_local = threading.local()


def umt5_config(sd: dict[str, Any]) -> dict[str, int]:
    """The T5 config the file's shapes imply (the keys ComfyUI's own umt5_config_xxl.json sets)."""
    heads = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape[1]
    inner = sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.block\.(\d+)\.", k))}
    return {
        "d_model": sd["shared.weight"].shape[1],
        "vocab_size": sd["shared.weight"].shape[0],
        "d_ff": sd["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0],
        "num_heads": heads,
        "d_kv": inner // heads,
        "num_layers": max(blocks) + 1,
    }


QWEN_HEAD_DIM = 128  # fixed in llama.Qwen25_7BVLI_Config


def qwen25_config(sd: dict[str, Any]) -> dict[str, int]:
    """The Qwen2.5-VL-7B language-model config the file's shapes imply (llama.Qwen25_7BVLI_Config's keys)."""
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"model\.layers\.(\d+)\.", k))}
    return {
        "vocab_size": sd["model.embed_tokens.weight"].shape[0],
        "hidden_size": sd["model.embed_tokens.weight"].shape[1],
        "intermediate_size": sd["model.layers.0.mlp.gate_proj.weight"].shape[0],
        "num_hidden_layers": max(layers) + 1,
        "num_attention_heads": sd["model.layers.0.self_attn.q_proj.weight"].shape[0] // QWEN_HEAD_DIM,
        "num_key_value_heads": sd["model.layers.0.self_attn.k_proj.weight"].shape[0] // QWEN_HEAD_DIM,
    }


_load_text_encoders = comfy.sd.load_text_encoder_state_dicts
QWEN_CLIP_TYPES = (comfy.sd.CLIPType.HUNYUAN_VIDEO_15, comfy.sd.CLIPType.QWEN_IMAGE)  # Qwen2.5-VL-7B users


def _load_text_encoders_at_file_size(state_dicts: list[dict[str, Any]] = [], *args: Any, **kwargs: Any) -> Any:  # noqa: B006 - ComfyUI's signature
    if kwargs.get("clip_type") == comfy.sd.CLIPType.WAN and state_dicts and "shared.weight" in state_dicts[0]:
        options = dict(kwargs.get("model_options") or {})
        options.setdefault("umt5xxl_model_config", umt5_config(state_dicts[0]))
        kwargs["model_options"] = options
    qwen = next((sd for sd in state_dicts if "model.layers.0.self_attn.k_proj.weight" in sd), None)
    if kwargs.get("clip_type") in QWEN_CLIP_TYPES and qwen is not None:
        options = dict(kwargs.get("model_options") or {})
        options.setdefault("qwen25_7b_model_config", qwen25_config(qwen))
        kwargs["model_options"] = options
    _local.te_sds = state_dicts
    try:
        return _load_text_encoders(state_dicts, *args, **kwargs)
    finally:
        _local.te_sds = None


def _loading(key: str, attr: str = "te_sds") -> dict[str, Any] | None:
    """The state dict being loaded (by the wrapped loaders) that holds key, if any."""
    for sd in getattr(_local, attr, None) or []:
        if key in sd:
            return sd  # type: ignore[no-any-return]
    return None


_ByT5SmallModel = comfy.text_encoders.hunyuan_image.ByT5SmallModel


class ByT5SmallAtFileSize(_ByT5SmallModel):  # type: ignore[misc,valid-type]
    """ComfyUI's byT5-small glyph encoder, its T5 config (byt5_config_small_glyph.json) updated from the file."""

    def __init__(self, *args: Any, model_options: dict[str, Any] = {}, **kwargs: Any) -> None:  # noqa: B006
        sd = _loading("encoder.block.0.layer.0.SelfAttention.o.weight")
        if sd is not None and "shared.weight" in sd:
            model_options = {**model_options, "model_name": "byt5_small", "byt5_small_model_config": umt5_config(sd)}
        super().__init__(*args, model_options=model_options, **kwargs)


_VisionTransformer = comfy.text_encoders.qwen_vl.Qwen2VLVisionTransformer
QWEN_VISION_HEAD_DIM = 80  # 1280 / 16 heads in Qwen2.5-VL's vision tower


class QwenVisionAtFileSize(_VisionTransformer):  # type: ignore[misc,valid-type]
    """ComfyUI's Qwen2-VL vision tower at the file's width, MLP width and depth (ComfyUI fixes 1280 / 3420 / 32)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sd = _loading("visual.patch_embed.proj.weight")
        if sd is not None:
            hidden = sd["visual.patch_embed.proj.weight"].shape[0]
            blocks = {int(m.group(1)) for k in sd if (m := re.match(r"visual\.blocks\.(\d+)\.", k))}
            kwargs.update(
                hidden_size=hidden,
                intermediate_size=sd["visual.blocks.0.mlp.gate_proj.weight"].shape[0],
                num_heads=max(1, hidden // QWEN_VISION_HEAD_DIM),
                num_layers=max(blocks) + 1,
            )
        super().__init__(*args, **kwargs)


_WanVAE = comfy.ldm.wan.vae2_2.WanVAE


class WanVAEAtFileSize(_WanVAE):  # type: ignore[misc,valid-type]
    """ComfyUI's Wan 2.2 VAE, with dim and dec_dim from the state dict being loaded (see _vae_init)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sd = getattr(_local, "vae_sd", None)
        if sd is not None and "encoder.conv1.weight" in sd:
            kwargs["dim"] = sd["encoder.conv1.weight"].shape[0]
            kwargs["dec_dim"] = sd["decoder.conv1.weight"].shape[0] // kwargs.get("dim_mult", [1, 2, 4, 4])[-1]
        super().__init__(*args, **kwargs)


_vae_init = comfy.sd.VAE.__init__


def _vae_init_at_file_size(self: Any, sd: Any = None, *args: Any, **kwargs: Any) -> None:
    _local.vae_sd = sd
    try:
        _vae_init(self, sd, *args, **kwargs)
    finally:
        _local.vae_sd = None


_ByT5Mapper = comfy.ldm.hunyuan_video.model.ByT5Mapper


class ByT5MapperAtFileSize(_ByT5Mapper):  # type: ignore[misc,valid-type]
    """HunyuanVideo's byT5 mapper at the file's widths (ComfyUI fixes byT5-small's 1472 -> 2048 -> 2048)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, *args: Any, **kwargs: Any) -> None:
        sd = getattr(_local, "unet_sd", None) or {}
        fc1 = next((v for k, v in sd.items() if k.endswith("byt5_in.fc1.weight")), None)
        fc2 = next((v for k, v in sd.items() if k.endswith("byt5_in.fc2.weight")), None)
        if fc1 is not None and fc2 is not None:
            hidden_dim, in_dim = fc1.shape
            out_dim = fc2.shape[0]
        super().__init__(in_dim, out_dim, hidden_dim, *args, **kwargs)


_QwenImageDiT = comfy.ldm.qwen_image.model.QwenImageTransformer2DModel


class QwenImageDiTAtFileSize(_QwenImageDiT):  # type: ignore[misc,valid-type]
    """Qwen-Image's MMDiT with the file's head count and text width (ComfyUI fixes 24 heads and 3584)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sd = getattr(_local, "unet_sd", None) or {}
        txt_norm = next((v for k, v in sd.items() if k.endswith("txt_norm.weight")), None)
        norm_q = next((v for k, v in sd.items() if k.endswith("transformer_blocks.0.attn.norm_q.weight")), None)
        img_in = next((v for k, v in sd.items() if k.endswith("img_in.weight")), None)
        if txt_norm is not None and norm_q is not None and img_in is not None:
            kwargs["attention_head_dim"] = norm_q.shape[0]
            kwargs["num_attention_heads"] = img_in.shape[0] // norm_q.shape[0]
            kwargs["joint_attention_dim"] = txt_norm.shape[0]
        super().__init__(*args, **kwargs)


_load_diffusion_model = comfy.sd.load_diffusion_model_state_dict


def _load_diffusion_model_at_file_size(sd: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    _local.unet_sd = sd
    try:
        return _load_diffusion_model(sd, *args, **kwargs)
    finally:
        _local.unet_sd = None


def _hy15_vae_dims(kwargs: dict[str, Any]) -> dict[str, Any]:
    """block_out_channels and num_res_blocks of the HunyuanVideo VAE file being loaded (sd.py fixes them)."""
    sd = getattr(_local, "vae_sd", None) or {}
    conv = next((c for c in ("conv1.conv.weight", "conv1.weight") if f"encoder.down.0.block.0.{c}" in sd), None)
    if conv is None:
        return kwargs
    stages = sorted({int(m.group(1)) for k in sd if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k))}
    channels = [sd[f"encoder.down.{i}.block.0.{conv}"].shape[0] for i in stages]
    return {**kwargs, "block_out_channels": channels, "num_res_blocks": max(blocks) + 1}


_Encoder = comfy.ldm.hunyuan_video.vae_refiner.Encoder
_Decoder = comfy.ldm.hunyuan_video.vae_refiner.Decoder


class HunyuanVAEEncoderAtFileSize(_Encoder):  # type: ignore[misc,valid-type]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_hy15_vae_dims(kwargs))


class HunyuanVAEDecoderAtFileSize(_Decoder):  # type: ignore[misc,valid-type]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_hy15_vae_dims(kwargs))


_load_clipvision = comfy.clip_vision.load_clipvision_from_sd


def _load_clipvision_at_file_size(sd: dict[str, Any], prefix: str = "", convert_keys: bool = False) -> Any:
    model = _load_clipvision(sd, prefix, convert_keys)
    norm = sd.get("vision_model.encoder.layers.0.layer_norm1.weight")
    positions = sd.get("vision_model.embeddings.position_embedding.weight")
    if model is not None or norm is None or positions is None or (norm.shape[0], positions.shape[0]) != (1152, 729):
        return model
    config = json.loads(Path(comfy.clip_vision.__file__).with_name("clip_vision_siglip_384.json").read_text())
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.", k))}
    config["num_hidden_layers"] = max(layers) + 1
    config["intermediate_size"] = sd["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip_vision_siglip_384_at_file_size.json"
        path.write_text(json.dumps(config))
        model = comfy.clip_vision.ClipVisionModel(str(path))
    model.load_sd(sd)
    return model


comfy.sd.load_text_encoder_state_dicts = _load_text_encoders_at_file_size
comfy.sd.load_diffusion_model_state_dict = _load_diffusion_model_at_file_size
comfy.text_encoders.hunyuan_image.ByT5SmallModel = ByT5SmallAtFileSize
comfy.text_encoders.qwen_vl.Qwen2VLVisionTransformer = QwenVisionAtFileSize
comfy.ldm.hunyuan_video.model.ByT5Mapper = ByT5MapperAtFileSize
comfy.ldm.qwen_image.model.QwenImageTransformer2DModel = QwenImageDiTAtFileSize
comfy.ldm.hunyuan_video.vae_refiner.Encoder = HunyuanVAEEncoderAtFileSize
comfy.ldm.hunyuan_video.vae_refiner.Decoder = HunyuanVAEDecoderAtFileSize
comfy.clip_vision.load_clipvision_from_sd = _load_clipvision_at_file_size
comfy.ldm.wan.vae2_2.WanVAE = WanVAEAtFileSize
comfy.sd.VAE.__init__ = _vae_init_at_file_size
