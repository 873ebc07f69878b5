"""Which engine a ComfyUI server is: its version and its install, as one string a cache can be keyed by.

Read from /system_stats, which every server answers at no cost (the dispatcher asks each worker once per job):
`comfyui_version`, the install's interpreter and torch (`python_version`, `pytorch_version`: what the numbers are
computed with) and the `main.py` it runs (argv[0]; LocalComfy and scripts/worker-start start it by its absolute
path, so it names the install folder). Not the base directory, the port or the device: a job's local workers share
one install with different base directories and ports, and a rented pool's GPUs change from one rental to the next
while the image stays the same. Not /object_info either: it changes whenever a model file is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any


def engine_id(stats: Mapping[str, Any]) -> str:
    """ "comfyui 0.3.75; torch 2.14.1+cu128; python 3.11.7 (main, ...); /opt/comfyui/comfyui/main.py"."""
    system = stats.get("system") or {}
    argv = system.get("argv") or []
    first = str(argv[0]) if argv else ""
    absolute = PurePosixPath(first).is_absolute() or PureWindowsPath(first).is_absolute()
    main = first if absolute else "main.py (install folder not reported)"
    return "; ".join(
        [
            f"comfyui {system.get('comfyui_version') or 'unknown'}",
            f"torch {system.get('pytorch_version') or 'unknown'}",
            f"python {system.get('python_version') or 'unknown'}",
            main,
        ]
    )
