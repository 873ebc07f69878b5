"""A ComfyUI that fails or is interrupted while it boots is stopped: no caller holds it yet to stop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_comfy_install
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import ComfyError


def test_a_start_that_times_out_leaves_no_process(tmp_path: Path) -> None:
    require_comfy_install()
    comfy = LocalComfy(tmp_path / "head")
    with pytest.raises(ComfyError, match="not ready"):
        comfy.start(ready_timeout=0.5)  # far less than a boot takes: as a cancel arriving while the head starts
    assert comfy.process is not None
    assert comfy.process.poll() is not None  # killed and reaped
    assert not Path(f"/proc/{comfy.process.pid}").exists()
