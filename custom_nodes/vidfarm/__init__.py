"""vidfarm node pack for ComfyUI (V3 schema): thin node classes over the vidfarm core.

The core is found by import: a worker (scripts/install-worker, the worker image) installs the `vidfarm` package
into ComfyUI's venv. Only when it is not installed - a development checkout, whose LocalComfy links this folder
into each instance's own base directory (never into the shared install) - is it taken from the repository's src/
next to this folder (found through the link), so one checkout serves the notebooks, the service and the engine.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("vidfarm") is None:  # not installed: the development fallback
    _SRC = Path(__file__).resolve().parents[2] / "src"
    if (_SRC / "vidfarm").is_dir() and str(_SRC) not in sys.path:
        sys.path.append(str(_SRC))

from comfy_api.latest import ComfyExtension, io  # noqa: E402

from .continuity_nodes import VidfarmColorMatch  # noqa: E402
from .scheduler_nodes import VidfarmJoin, VidfarmPlan, VidfarmSegmentScheduler, VidfarmWorkerPool  # noqa: E402
from .standin_nodes import VidfarmStandInEdit, VidfarmStandInFirstLast, VidfarmStandInVideo  # noqa: E402
from .upscale_nodes import VidfarmTiledUpscale  # noqa: E402
from .vr_nodes import VidfarmSaveVR, VidfarmStereoFromDepth, VidfarmSyntheticDepthScene, VidfarmVRProjection  # noqa: E402


class VidfarmExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [
            VidfarmStandInVideo,
            VidfarmStandInFirstLast,
            VidfarmStandInEdit,
            VidfarmColorMatch,
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
