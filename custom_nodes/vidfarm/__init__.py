"""vidfarm node pack for ComfyUI (V3 schema): thin node classes over the vidfarm core.

Installed by linking this folder into ComfyUI's custom_nodes (scripts/setup-comfyui, LocalComfy). The core package
lives in the repository's src/; when it is not installed in ComfyUI's venv it is found through this folder's real
path, so one checkout serves the notebooks, the service and the engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.append(str(_SRC))

from comfy_api.latest import ComfyExtension, io  # noqa: E402

from .scheduler_nodes import VidfarmJoin, VidfarmPlan, VidfarmSegmentScheduler, VidfarmWorkerPool  # noqa: E402
from .standin_nodes import VidfarmStandInFirstLast, VidfarmStandInVideo  # noqa: E402
from .upscale_nodes import VidfarmTiledUpscale  # noqa: E402
from .vr_nodes import VidfarmSaveVR, VidfarmStereoFromDepth, VidfarmSyntheticDepthScene, VidfarmVRProjection  # noqa: E402


class VidfarmExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [
            VidfarmStandInVideo,
            VidfarmStandInFirstLast,
            VidfarmPlan,
            VidfarmWorkerPool,
            VidfarmSegmentScheduler,
            VidfarmJoin,
            VidfarmSyntheticDepthScene,
            VidfarmStereoFromDepth,
            VidfarmVRProjection,
            VidfarmSaveVR,
            VidfarmTiledUpscale,
        ]


async def comfy_entrypoint() -> VidfarmExtension:
    return VidfarmExtension()
