"""benchmarks/gpu_real_models.py --dry-run: every stage of the GPU acceptance benchmark walked at toy size on the CPU
through the local ComfyUI (tiny files, the test-only pack), printing the table in its stable format. The only CI
cover of a benchmark that otherwise runs on a borrowed GPU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, require_comfy_install

pytestmark = pytest.mark.engine

BENCHMARK = REPO / "benchmarks" / "gpu_real_models.py"
# The table's rows, in order: the contract for whoever replaces the modelled figures with measured ones.
STAGES = [
    "make files",
    "comfyui start",
    "a14b load (cold)",
    "a14b text encode",
    "a14b i2v conditioning",
    "a14b sampling fp8",
    "wan2.1 vae decode",
    "a14b generate fp8 (warm)",
    "tiled upscale",
    "video save",
    "segment post (warm)",
    "a14b load bf16 (cold)",
    "a14b sampling bf16",
    "a14b generate bf16 (warm)",
    "5b load (cold)",
    "5b text encode",
    "5b sampling",
    "wan2.2 vae decode",
    "5b generate (warm)",
    "stereo from depth (node)",
    "stereo from depth (device)",
]
MODELLED = {"a14b generate fp8 (warm)", "segment post (warm)", "a14b generate bf16 (warm)"}


def comfy_python() -> str:
    return str(require_comfy_install() / "venv" / "bin" / "python")


def table_rows(output: str) -> dict[str, list[str]]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stage ") and line.rstrip().endswith("ratio"))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 : start + 1 + len(STAGES)]:
        stage, *figures = line.rsplit(None, 4)
        rows[stage.strip()] = figures
    return rows


def test_dry_run_walks_every_stage_and_prints_the_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [comfy_python(), str(BENCHMARK), "--dry-run", "--work", str(tmp_path / "work"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CPU DRY RUN at toy size" in done.stdout
    rows = table_rows(done.stdout)
    assert list(rows) == STAGES
    for stage, (seconds, peak, modelled, _ratio) in rows.items():
        assert float(seconds) > 0, f"{stage}: {seconds}"
        assert int(peak) > 0, f"{stage}: peak {peak}"
        assert (modelled != "-") == (stage in MODELLED or stage.startswith("stereo")), stage
    # the fp8 run follows the file's (empty) marker, the bf16 run the 2-element one: both paths really differ
    assert "a14b fp8 run: marker torch.float8_e4m3fn, fp8 optimisations True" in done.stdout
    assert "a14b bf16 run (marker read as 2 elements): marker torch.float8_e4m3fn, fp8 optimisations False" in (
        done.stdout
    )
    assert (tmp_path / "gpu_real_models.json").exists() and (tmp_path / "gpu_real_models.txt").exists()


def test_without_a_gpu_it_says_so_and_exits_0() -> None:
    done = subprocess.run([comfy_python(), str(BENCHMARK)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing measured" in done.stdout
