"""Test-only ComfyUI pack: lets ComfyUI's own model code run the two model files whose sizes ComfyUI fixes.

ComfyUI sizes umt5-xxl from `umt5_config_xxl.json` (5.7 B parameters) and the Wan 2.2 VAE from constants in
`comfy/sd.py` (705 M); every other model is sized from its file. This pack makes those two follow the file too:
- the text encoder through ComfyUI's existing model-options hook (`umt5xxl_model_config`, read by
  `sd1_clip.SDClipModel`), filled from the file's tensor shapes;
- the VAE by building ComfyUI's own `vae2_2.WanVAE` at the file's `dim` / `dec_dim`.
The model code itself is untouched, and a full-size file passes through unchanged. Loaded only into the test
ComfyUI instances (VIDFARM_EXTRA_CUSTOM_NODES); it registers no nodes.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import comfy.ldm.wan.vae2_2
import comfy.sd

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


_load_text_encoders = comfy.sd.load_text_encoder_state_dicts


def _load_text_encoders_at_file_size(state_dicts: list[dict[str, Any]] = [], *args: Any, **kwargs: Any) -> Any:  # noqa: B006 - ComfyUI's signature
    if kwargs.get("clip_type") == comfy.sd.CLIPType.WAN and state_dicts and "shared.weight" in state_dicts[0]:
        options = dict(kwargs.get("model_options") or {})
        options.setdefault("umt5xxl_model_config", umt5_config(state_dicts[0]))
        kwargs["model_options"] = options
    return _load_text_encoders(state_dicts, *args, **kwargs)


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


comfy.sd.load_text_encoder_state_dicts = _load_text_encoders_at_file_size
comfy.ldm.wan.vae2_2.WanVAE = WanVAEAtFileSize
comfy.sd.VAE.__init__ = _vae_init_at_file_size
