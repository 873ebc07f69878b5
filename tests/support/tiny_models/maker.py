"""Write random-weight model files with the real key layouts and file names, small or full size.

Runs with a ComfyUI's own python (it needs torch, safetensors, spandrel and ComfyUI's model classes), because the
layouts come from ComfyUI's own classes: a file is the state dict of the real `WanModel`, `WanVAE`, `T5` or
`RRDBNet`, built at small dimensions. Deterministic: the same seed gives byte-identical files.

    python maker.py --comfy COMFYUI_DIR --out MODELS_DIR [--size tiny|full] [--seed 0] [--only NAME ...] [--check]

Prints one JSON line: {"folder/file": {"size": bytes, "sha256": hex}, ...}. `--check` loads every file through
ComfyUI's own loaders afterwards (a wrong layout fails there, not in a test far away).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

FP8 = torch.float8_e4m3fn
DEVICE = "cpu"  # where random values are drawn (--device): full-size files are made fastest on a GPU


@dataclass(frozen=True)
class Spec:
    folder: str
    file: str
    kind: str  # a key of MAKERS, or esrgan
    options: dict[str, Any]


WAN_TINY = {"dim": 128, "ffn_dim": 256, "num_heads": 1, "num_layers": 2}
WAN_14B = {"dim": 5120, "ffn_dim": 13824, "num_heads": 40, "num_layers": 40}
WAN_5B = {"dim": 3072, "ffn_dim": 14336, "num_heads": 24, "num_layers": 30}

# The models the real recipes declare (workflows/*.toml), by their published file names.
SPECS = [
    Spec("diffusion_models", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "wan", {"in_dim": 16, "fp8": True}),
    Spec("diffusion_models", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "wan", {"in_dim": 16, "fp8": True}),
    Spec("diffusion_models", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", "wan", {"in_dim": 36, "fp8": True}),
    Spec("diffusion_models", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "wan", {"in_dim": 36, "fp8": True}),
    Spec("diffusion_models", "wan2.2_ti2v_5B_fp16.safetensors", "wan", {"in_dim": 48, "out_dim": 48, "five_b": True}),
    Spec("vae", "wan_2.1_vae.safetensors", "vae21", {}),
    Spec("vae", "wan2.2_vae.safetensors", "vae22", {}),
    Spec("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "umt5", {"fp8": True}),
    Spec(
        "loras",
        "wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
        "lora",
        {"in_dim": 36, "model": "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"},
    ),
    Spec(
        "loras",
        "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
        "lora",
        {"in_dim": 36, "model": "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"},
    ),
    Spec("upscale_models", "RealESRGAN_x4plus.pth", "esrgan", {}),
    # HunyuanVideo 1.5 (Comfy-Org/HunyuanVideo_1.5_repackaged, Comfy-Org/sigclip_vision_384)
    Spec("diffusion_models", "hunyuanvideo1.5_720p_t2v_fp16.safetensors", "hunyuan15", {}),
    Spec("diffusion_models", "hunyuanvideo1.5_720p_i2v_fp16.safetensors", "hunyuan15", {}),
    Spec("vae", "hunyuanvideo15_vae_fp16.safetensors", "vae_hy15", {}),
    Spec("text_encoders", "qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen25vl", {"fp8": True}),
    Spec("text_encoders", "byt5_small_glyphxl_fp16.safetensors", "byt5", {}),
    Spec("clip_vision", "sigclip_vision_patch14_384.safetensors", "siglip", {}),
    # Qwen-Image-Edit 2509 (Comfy-Org/Qwen-Image-Edit_ComfyUI, Comfy-Org/Qwen-Image_ComfyUI,
    # lightx2v/Qwen-Image-Lightning); its text encoder is the Qwen2.5-VL file above
    Spec("diffusion_models", "qwen_image_edit_2509_fp8_e4m3fn.safetensors", "qwen_image", {}),
    Spec("vae", "qwen_image_vae.safetensors", "vae21", {}),  # Qwen-Image's VAE has the Wan 2.1 VAE's layout
    Spec(
        "loras",
        "Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors",
        "qwen_lora",
        {"model": "qwen_image_edit_2509_fp8_e4m3fn.safetensors"},
    ),
]


def _generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator(DEVICE).manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def _randn(shape: tuple[int, ...], seed: int, name: str) -> torch.Tensor:
    return torch.randn(shape, generator=_generator(seed, name), device=DEVICE).cpu()


def _fill(state: dict[str, torch.Tensor], seed: int, *, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Random values of a sane scale per tensor: weights ~ 1/sqrt(fan_in), norms ~ 1, biases and the rest small."""
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        shape = state[name].shape
        gen = _generator(seed, name)
        values = torch.randn(shape, generator=gen, dtype=torch.float32, device=DEVICE)
        fan_in = shape[1:].numel() if len(shape) >= 2 else 0
        if fan_in and not name.endswith("modulation"):
            values = values / fan_in**0.5
        elif "norm" in name or name.endswith("gamma") or name.endswith(".scale"):
            values = 1.0 + 0.02 * values
        else:
            values = 0.02 * values
        out[name] = values.to(dtype).cpu().contiguous()
    return out


def _to_fp8_scaled(state: dict[str, torch.Tensor], linear_names: set[str]) -> dict[str, torch.Tensor]:
    """The layout of ComfyUI's "fp8 scaled" files: fp8 linear weights, a float32 scale each, a `scaled_fp8` marker."""
    out = dict(state)
    for name in linear_names:
        weight = state[name].to(DEVICE).float()  # the maths where the values were drawn: seconds on a GPU, not minutes
        scale = weight.abs().max().clamp(min=1e-8) / 448.0
        out[name] = (weight / scale).to(FP8).cpu()
        out[name[: -len("weight")] + "scale_weight"] = scale.reshape(()).float().cpu()
    # An empty fp8 tensor: ComfyUI reads its dtype (fp8 e4m3fn) and, from its element count, turns on the fp8
    # optimisations (used where the device computes in fp8; on a CPU the weights are scaled up instead).
    out["scaled_fp8"] = torch.empty((0,), dtype=FP8)
    return out


def _linear_weights(module: torch.nn.Module, *, skip: tuple[str, ...] = ()) -> set[str]:
    return {
        f"{name}.weight"
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.Linear) and not any(s in name for s in skip)
    }


def _wan_skeleton(spec: Spec, size: str) -> torch.nn.Module:
    """ComfyUI's own WanModel on the meta device, at the spec's (tiny or published) dimensions."""
    import comfy.ldm.wan.model
    import comfy.ops

    dims = WAN_TINY if size == "tiny" else (WAN_5B if spec.options.get("five_b") else WAN_14B)
    with torch.device("meta"):
        return comfy.ldm.wan.model.WanModel(
            model_type="t2v",
            in_dim=spec.options["in_dim"],
            out_dim=spec.options.get("out_dim", 16),
            operations=comfy.ops.disable_weight_init,
            **dims,
        )


def make_wan(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    model = _wan_skeleton(spec, size)
    dtype = torch.float16 if spec.options.get("five_b") else torch.bfloat16
    state = _fill(model.state_dict(), seed, dtype=dtype)
    if spec.options.get("fp8"):
        state = _to_fp8_scaled(state, _linear_weights(model))
    return state


def make_vae(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    import comfy.ldm.wan.vae
    import comfy.ldm.wan.vae2_2

    common = {
        "dim_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
    }
    with torch.device("meta"):
        if spec.kind == "vae21":
            model: torch.nn.Module = comfy.ldm.wan.vae.WanVAE(dim=8 if size == "tiny" else 96, z_dim=16, **common)
        else:
            dims = {"dim": 8, "dec_dim": 16} if size == "tiny" else {"dim": 160, "dec_dim": 256}
            model = comfy.ldm.wan.vae2_2.WanVAE(z_dim=48, **dims, **common)
    return _fill(model.state_dict(), seed, dtype=torch.float16 if size == "tiny" else torch.bfloat16)


UMT5_TINY = {"d_ff": 16, "d_kv": 8, "num_heads": 2, "vocab_size": 384}


def _tokenizer_model(vocab_size: int) -> bytes:
    """A small SentencePiece model with umt5's special ids (pad 0, eos 1, unk 2), trained on a fixed text."""
    import io

    import sentencepiece as spm

    words = [f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "aeiouy"]
    text = "\n".join(" ".join(words[i : i + 12]) for i in range(0, len(words), 5)) + "\na paper boat drifting\n"
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines() * 4),
        model_writer=model,
        vocab_size=vocab_size,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        model_type="unigram",
        num_threads=1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return model.getvalue()


def make_umt5(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    import comfy.ops
    import comfy.text_encoders.t5

    config_path = Path(comfy.text_encoders.t5.__file__).with_name("umt5_config_xxl.json")
    config = json.loads(config_path.read_text())
    if size == "tiny":
        config.update(UMT5_TINY)  # d_model stays 4096 (Wan's text input) and 24 layers (ComfyUI detects block 23)
    with torch.device("meta"):
        model = comfy.text_encoders.t5.T5(config, torch.float16, "meta", comfy.ops.disable_weight_init)
    state = _fill(model.state_dict(), seed, dtype=torch.float16 if size == "tiny" else torch.bfloat16)
    state = _to_fp8_scaled(state, _linear_weights(model))
    state["spiece_model"] = torch.frombuffer(bytearray(_tokenizer_model(config["vocab_size"])), dtype=torch.uint8)
    return state


def make_lora(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """The lightx2v layout: lora_up/lora_down/alpha on every linear of the blocks, diff_b on their biases."""
    model = _wan_skeleton(spec, size)  # the LoRA's own spec names the expert's in_dim (no five_b: 14B dims)
    rank = 4 if size == "tiny" else 64
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for weight in sorted(n for n in _linear_weights(model) if n.startswith("blocks.")):
        base = "diffusion_model." + weight[: -len(".weight")]
        rows, cols = shapes[weight]
        out[f"{base}.lora_up.weight"] = _randn((rows, rank), seed, base + "u") / rank**0.5
        out[f"{base}.lora_down.weight"] = _randn((rank, cols), seed, base + "d") / cols**0.5
        out[f"{base}.alpha"] = torch.tensor(float(rank))
        out[f"{base}.diff_b"] = 0.01 * _randn((rows,), seed, base + "b")
    for name in out:
        out[name] = out[name].bfloat16().contiguous()
    return out


def make_esrgan(spec: Spec, size: str, seed: int) -> dict[str, Any]:
    """Real-ESRGAN x4plus's layout (basicsr RRDBNet in `params_ema`); few filters when tiny, visible output."""
    feat, blocks, grow = (8, 1, 32) if size == "tiny" else (64, 23, 32)  # spandrel fixes grow at 32
    shapes: dict[str, tuple[int, ...]] = {"conv_first.weight": (feat, 3, 3, 3)}
    for block in range(blocks):
        for rdb in (1, 2, 3):
            for conv in range(1, 6):
                rows = feat if conv == 5 else grow
                shapes[f"body.{block}.rdb{rdb}.conv{conv}.weight"] = (rows, feat + (conv - 1) * grow, 3, 3)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        shapes[f"{name}.weight"] = (feat, feat, 3, 3)
    shapes["conv_last.weight"] = (3, feat, 3, 3)
    for weight, shape in list(shapes.items()):
        shapes[weight.replace(".weight", ".bias")] = (shape[0],)
    state = _fill({k: torch.empty(v) for k, v in shapes.items()}, seed, dtype=torch.float32)
    state["conv_last.bias"] = torch.full((3,), 0.5)  # mid-grey plus structure: a zero-mean net clamps to black
    return {"params_ema": state}


HY15_TINY = {"hidden_size": 128, "num_heads": 1, "depth": 1, "depth_single_blocks": 1}  # 128 per head: 1 head
HY15_FULL = {"hidden_size": 2048, "num_heads": 16, "depth": 54, "depth_single_blocks": 0}  # 8.33 B, as published
QWEN_TINY = {
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}  # fmt: skip - 4 layers: the TE reads layer -3; vocab stays (ComfyUI's tokenizer); 4 KV heads of 128: a lone
# Qwen2.5-VL file (CLIPLoader type qwen_image) is told from others by its k_proj bias width, 512 for the 7B
QWEN_VISION_TINY = {"hidden_size": 80, "intermediate_size": 16, "num_heads": 1, "num_layers": 1}  # 80 per head
BYT5_TINY = {"d_model": 16, "d_kv": 8, "num_heads": 2, "d_ff": 16, "num_layers": 1}  # vocab 1510 stays
BYT5_FULL_MAPPER = {"in_dim": 1472, "out_dim": 2048, "hidden_dim": 2048}  # what HunyuanVideo builds in source
SIGLIP_TINY = {"intermediate_size": 16, "num_hidden_layers": 2}  # width 1152 and 729 positions stay (detection)
HY15_VAE_TINY = {"block_out_channels": [16, 16, 16, 16, 64], "num_res_blocks": 1}  # ends at 2 * z channels
HY15_VAE_FULL = {"block_out_channels": [128, 256, 512, 1024, 1024], "num_res_blocks": 2}


def make_hunyuan15(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """HunyuanVideo 1.5 720p t2v/i2v: ComfyUI's HunyuanVideo with the config model_detection.py derives for 1.5
    (1152-wide vision input, byT5 mapper, cond-type embedding, 65 input channels: 32 noise + 32 image + 1 mask, as
    model_base.HunyuanVideo15.concat_cond expects of both files; t2v gets zeros there)."""
    import comfy.ldm.hunyuan_video.model as hy
    import comfy.ops

    ops = comfy.ops.disable_weight_init
    tiny = size == "tiny"
    config = {
        **(HY15_TINY if tiny else HY15_FULL),
        "in_channels": 65, "out_channels": 32, "vec_in_dim": None, "context_in_dim": 8 if tiny else 3584,
        "mlp_ratio": 4.0, "axes_dim": [16, 56, 56], "theta": 256, "patch_size": [1, 1, 1], "qkv_bias": True,
        "guidance_embed": False, "byt5": False, "meanflow": False, "use_cond_type_embedding": True,
        "vision_in_dim": 1152,
    }  # fmt: skip
    with torch.device("meta"):
        model = hy.HunyuanVideo(image_model="hunyuan_video", operations=ops, **config)
        # ComfyUI builds the byT5 mapper at byT5-small's fixed width (1472); tiny, at the tiny byT5's (the test
        # pack builds it at the file's size, as for the other sizes ComfyUI fixes).
        mapper = {"in_dim": BYT5_TINY["d_model"], "out_dim": 64, "hidden_dim": 64} if tiny else BYT5_FULL_MAPPER
        model.byt5_in = hy.ByT5Mapper(**mapper, out_dim1=config["hidden_size"], use_res=False, operations=ops)
    return _fill(model.state_dict(), seed, dtype=torch.float16)


def make_vae_hy15(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """The HunyuanVideo 1.5 VAE as comfy/sd.py builds it (`decoder.conv_in.conv.weight` with 32 latent channels:
    causal 3D convs, 16x spatial, 4x temporal with the first frame alone)."""
    import comfy.ldm.models.autoencoder

    dims = HY15_VAE_TINY if size == "tiny" else HY15_VAE_FULL
    ddconfig = {"in_channels": 3, "out_channels": 3, "ffactor_spatial": 16, "ffactor_temporal": 4, "z_channels": 32,
                "downsample_match_channel": True, "upsample_match_channel": True, **dims}  # fmt: skip
    target = "comfy.ldm.hunyuan_video.vae_refiner."
    with torch.device("meta"):
        model = comfy.ldm.models.autoencoder.AutoencodingEngine(
            regularizer_config={"target": "comfy.ldm.models.autoencoder.EmptyRegularizer"},
            encoder_config={"target": target + "Encoder", "params": ddconfig},
            decoder_config={"target": target + "Decoder", "params": ddconfig},
        )
    return _fill(model.state_dict(), seed, dtype=torch.float16)


def make_qwen25vl(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """Qwen2.5-VL-7B as ComfyUI's Qwen25_7BVLI (language model + vision tower), fp8 scaled like the real file."""
    import comfy.ops
    import comfy.text_encoders.llama as llama
    import comfy.text_encoders.qwen_vl as qwen_vl

    tiny = size == "tiny"
    ops = comfy.ops.disable_weight_init
    with torch.device("meta"):
        model = llama.Qwen25_7BVLI(QWEN_TINY if tiny else {}, torch.bfloat16, "meta", ops)
        if tiny:  # ComfyUI builds the vision tower at its fixed width 1280; the test pack, at the file's
            model.visual = qwen_vl.Qwen2VLVisionTransformer(
                **QWEN_VISION_TINY,
                output_hidden_size=QWEN_TINY["hidden_size"],
                device="meta",
                dtype=torch.bfloat16,
                ops=ops,
            )
    state = _fill(model.state_dict(), seed, dtype=torch.bfloat16)
    return _to_fp8_scaled(state, _linear_weights(model))


def make_byt5(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """byT5-small glyph (ComfyUI's T5 from byt5_config_small_glyph.json), smaller when tiny."""
    import comfy.ops
    import comfy.text_encoders.t5

    config_path = Path(comfy.text_encoders.t5.__file__).with_name("byt5_config_small_glyph.json")
    config = json.loads(config_path.read_text())
    if size == "tiny":
        config.update(BYT5_TINY)
    with torch.device("meta"):
        model = comfy.text_encoders.t5.T5(config, torch.float16, "meta", comfy.ops.disable_weight_init)
    return _fill(model.state_dict(), seed, dtype=torch.float16)


def make_siglip(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """SigLIP so400m patch14 384 (ComfyUI's CLIPVisionModelProjection from clip_vision_siglip_384.json)."""
    import comfy.clip_model
    import comfy.ops

    config_path = Path(comfy.clip_model.__file__).with_name("clip_vision_siglip_384.json")
    config = json.loads(config_path.read_text())
    if size == "tiny":
        config.update(SIGLIP_TINY)
    with torch.device("meta"):
        model = comfy.clip_model.CLIPVisionModelProjection(config, torch.float16, "meta", comfy.ops.disable_weight_init)
    return _fill(model.state_dict(), seed, dtype=torch.float16)


QWEN_IMAGE_TINY = {"num_layers": 2, "num_attention_heads": 1}  # head width 128 stays: the rope axes 16+56+56
QWEN_IMAGE_FULL = {"num_layers": 60, "num_attention_heads": 24}  # 20.4 B, as published


def _qwen_image_skeleton(size: str) -> torch.nn.Module:
    """ComfyUI's QwenImageTransformer2DModel (the MMDiT of Qwen-Image and its Edit versions) on the meta device:
    64 input channels (16 latent channels in 2x2 patches); its text input is the Qwen2.5-VL file's width."""
    import comfy.ldm.qwen_image.model
    import comfy.ops

    tiny = size == "tiny"
    with torch.device("meta"):
        return comfy.ldm.qwen_image.model.QwenImageTransformer2DModel(
            in_channels=64,
            out_channels=16,
            attention_head_dim=128,
            joint_attention_dim=QWEN_TINY["hidden_size"] if tiny else 3584,
            operations=comfy.ops.disable_weight_init,
            **(QWEN_IMAGE_TINY if tiny else QWEN_IMAGE_FULL),
        )


def make_qwen_image(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """Qwen-Image-Edit as Comfy-Org repackages it "fp8_e4m3fn": fp8 block linears, no scales, the rest bf16."""
    model = _qwen_image_skeleton(size)
    state = _fill(model.state_dict(), seed, dtype=torch.bfloat16)
    for name in _linear_weights(model):
        if name.startswith("transformer_blocks."):
            state[name] = state[name].to(FP8)
    return state


def make_qwen_lora(spec: Spec, size: str, seed: int) -> dict[str, torch.Tensor]:
    """A Lightning-style LoRA: lora_up/lora_down/alpha on every block linear, under the keys ComfyUI maps for
    Qwen-Image (`transformer_blocks.N...`; the published file's exact key names were not checkable offline)."""
    model = _qwen_image_skeleton(size)
    rank = 4 if size == "tiny" else 64
    shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for weight in sorted(n for n in _linear_weights(model) if n.startswith("transformer_blocks.")):
        base = weight[: -len(".weight")]
        rows, cols = shapes[weight]
        out[f"{base}.lora_up.weight"] = _randn((rows, rank), seed, base + "u") / rank**0.5
        out[f"{base}.lora_down.weight"] = _randn((rank, cols), seed, base + "d") / cols**0.5
        out[f"{base}.alpha"] = torch.tensor(float(rank))
    return {name: value.bfloat16().contiguous() for name, value in out.items()}


MAKERS = {"wan": make_wan, "vae21": make_vae, "vae22": make_vae, "umt5": make_umt5, "lora": make_lora,
          "hunyuan15": make_hunyuan15, "vae_hy15": make_vae_hy15, "qwen25vl": make_qwen25vl, "byt5": make_byt5,
          "siglip": make_siglip, "qwen_image": make_qwen_image, "qwen_lora": make_qwen_lora}  # fmt: skip


def write(spec: Spec, out_dir: Path, size: str, seed: int) -> Path:
    seed = seed * 7919 + zlib.crc32(spec.file.encode())  # every file its own values (high != low expert)
    path = out_dir / spec.folder / spec.file
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.kind == "esrgan":
        torch.save(make_esrgan(spec, size, seed), path)
        return path
    from safetensors.torch import save_file

    save_file(MAKERS[spec.kind](spec, size, seed), str(path))
    return path


def check(spec: Spec, path: Path) -> str:
    """Load through ComfyUI's own loaders (with the test pack's file-size hooks); return what ComfyUI detected."""
    import comfy.sd
    import comfy.utils

    sys.path.insert(0, str(Path(__file__).with_name("comfy_nodes")))
    import vidfarm_tiny_models  # noqa: F401 - installs the hooks

    if spec.kind in HY15_CHECKS:
        return HY15_CHECKS[spec.kind](spec, path)
    if spec.folder == "diffusion_models":
        model = comfy.sd.load_diffusion_model(str(path))
        return type(model.model).__name__ + "/" + type(model.model.model_config).__name__
    if spec.folder == "vae":
        vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path)))
        return type(vae.first_stage_model).__module__ + f" latent {vae.latent_channels}"
    if spec.folder == "text_encoders":
        clip = comfy.sd.load_clip([str(path)], clip_type=comfy.sd.CLIPType.WAN)
        tokens = clip.tokenize("a paper boat")
        return f"{type(clip.cond_stage_model).__name__} cond {tuple(clip.encode_from_tokens(tokens).shape)}"
    if spec.folder == "loras":
        return _check_lora(spec, path)
    from spandrel import ModelLoader

    return type(ModelLoader().load_from_file(str(path)).model).__name__


def _check_hy15_text_encoders(spec: Spec, path: Path) -> str:
    """DualCLIPLoader's load: Qwen2.5-VL + byT5 as clip type hunyuan_video_15; a quoted word runs byT5 too."""
    import comfy.sd

    qwen = path.with_name("qwen_2.5_vl_7b_fp8_scaled.safetensors")
    byt5 = path.with_name("byt5_small_glyphxl_fp16.safetensors")
    if not (qwen.exists() and byt5.exists()):
        return "needs both text encoders"
    clip = comfy.sd.load_clip([str(qwen), str(byt5)], clip_type=comfy.sd.CLIPType.HUNYUAN_VIDEO_15)
    cond = clip.encode_from_tokens_scheduled(clip.tokenize('a paper boat named "vidfarm"'))[0]
    byt5_cond = cond[1].get("conditioning_byt5small")
    byt5_shape = None if byt5_cond is None else tuple(byt5_cond.shape[-1:])
    return f"{type(clip.cond_stage_model).__name__} cond width {cond[0].shape[-1]} byt5 width {byt5_shape}"


def _check_siglip(spec: Spec, path: Path) -> str:
    import comfy.clip_vision

    vision = comfy.clip_vision.load(str(path))
    out = vision.encode_image(torch.rand(1, 64, 64, 3))
    return f"ClipVisionModel {vision.image_size}px hidden {tuple(out.last_hidden_state.shape)}"


def _check_vae_hy15(spec: Spec, path: Path) -> str:
    import comfy.sd
    import comfy.utils

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path)))
    latent = vae.encode(torch.rand(5, 32, 32, 3))
    comfy_class = next(c for c in type(vae.first_stage_model.decoder).__mro__ if c.__module__.startswith("comfy."))
    return f"{comfy_class.__module__}.{comfy_class.__name__} latent {tuple(latent.shape)}"


def _check_qwen_image(spec: Spec, path: Path) -> str:
    """The MMDiT as ComfyUI detects it, and the Qwen2.5-VL file loaded as CLIPLoader type qwen_image encoding a
    prompt with an image (the vision tower runs, as TextEncodeQwenImageEditPlus makes it)."""
    import comfy.sd

    model = comfy.sd.load_diffusion_model(str(path))
    found = type(model.model).__name__ + "/" + type(model.model.model_config).__name__
    qwen = path.parent.parent / "text_encoders" / "qwen_2.5_vl_7b_fp8_scaled.safetensors"
    clip = comfy.sd.load_clip([str(qwen)], clip_type=comfy.sd.CLIPType.QWEN_IMAGE)
    tokens = clip.tokenize(
        "Picture 1: <|vision_start|><|image_pad|><|vision_end|>the boat", images=[torch.rand(1, 56, 56, 3)]
    )
    cond = clip.encode_from_tokens_scheduled(tokens)[0][0]
    return f"{found} cond width {cond.shape[-1]} with an image"


HY15_CHECKS = {"qwen25vl": _check_hy15_text_encoders, "byt5": _check_hy15_text_encoders, "siglip": _check_siglip,
               "vae_hy15": _check_vae_hy15, "qwen_image": _check_qwen_image}  # fmt: skip


def _check_lora(spec: Spec, path: Path) -> str:
    """Apply the LoRA the way LoraLoaderModelOnly does and count the target weights it really changed."""
    import comfy.sd
    import comfy.utils

    unet = str(path.parent.parent / "diffusion_models" / spec.options["model"])
    model = comfy.sd.load_diffusion_model(unet)
    lora = comfy.utils.load_torch_file(str(path))
    targets = {
        k.removeprefix("diffusion_model.")[: -len(".lora_up.weight")] + ".weight"
        for k in lora
        if k.endswith("lora_up.weight")
    }
    before = {k: v.float().clone() for k, v in model.model.diffusion_model.state_dict().items() if k in targets}
    patched, _ = comfy.sd.load_lora_for_models(model, None, lora, 1.0, 0)
    with torch.no_grad():
        patched.patch_model()
    after = patched.model.diffusion_model.state_dict()
    changed = sum(not torch.equal(before[k], after[k].float()) for k in before)
    return f"changed {changed} of {len(targets)} targets"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfy", required=True, help="the ComfyUI folder (with main.py and comfy/)")
    parser.add_argument("--out", required=True, help="models folder: files go to OUT/<folder>/<file>")
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="file names to make (default: all)")
    parser.add_argument("--check", action="store_true", help="load each file through ComfyUI's loaders")
    parser.add_argument("--device", default="cpu", help="where random values are drawn (cuda: fast full size)")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    sys.path.insert(0, str(Path(args.comfy).resolve()))
    import comfy.cli_args

    comfy.cli_args.args.cpu = not torch.cuda.is_available()  # before ComfyUI's model management is imported
    torch.set_num_threads(1)
    specs = [s for s in SPECS if args.only is None or s.file in args.only]
    manifest: dict[str, dict[str, Any]] = {}
    paths = [(spec, write(spec, Path(args.out), args.size, args.seed)) for spec in specs]
    for spec, path in paths:  # checks after writing: a pair (DualCLIPLoader) loads together
        entry: dict[str, Any] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        if args.check:
            entry["detected"] = check(spec, path)
        manifest[f"{spec.folder}/{spec.file}"] = entry
    print(json.dumps(manifest, sort_keys=True))
    return 0


def _sha256(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
