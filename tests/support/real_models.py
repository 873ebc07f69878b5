"""Fixtures' building blocks for running the real recipes on tiny random-weight models (tiny-models.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidfarm.comfy.local import EXTRA_NODES_ENV

TINY_PACK = Path(__file__).with_name("tiny_models") / "comfy_nodes" / "vidfarm_tiny_models"


@contextmanager
def tiny_pack_loaded() -> Iterator[None]:
    """Every ComfyUI started inside (and every local worker those start) also loads the test-only sizing pack."""
    before = os.environ.get(EXTRA_NODES_ENV)
    os.environ[EXTRA_NODES_ENV] = str(TINY_PACK)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(EXTRA_NODES_ENV, None)
        else:
            os.environ[EXTRA_NODES_ENV] = before


def link_models(tiny_dir: Path, models_dir: Path) -> None:
    """Put the tiny files into a ComfyUI models folder under their real names (symlinks: no copies)."""
    for source in tiny_dir.glob("*/*"):
        target = models_dir / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source)
