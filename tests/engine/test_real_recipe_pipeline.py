"""The long-video pipeline on the real recipes, end to end: workers that fetch the recipe's models at start
(scripts/worker-start, from a local Hugging Face endpoint serving tiny random-weight files under the real names)
behind their token proxies, a head, and the pipeline notebook run by papermill, as batch runs and the phone do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import papermill as pm
import pytest
from PIL import Image

from tests.conftest import REPO, WORKFLOWS
from tests.engine.test_worker_start import start, stop
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxies import TEST_TOKEN
from tests.support.real_models import TINY_PACK
from tests.support.waiting import wait_for
from vidfarm.comfy.local import LocalComfy, free_port
from vidfarm.fleet.autoscaler import Worker
from vidfarm.fleet.pool import http_ready
from vidfarm.media.checks import probe
from vidfarm.worker.models_fetch import models_for
from vidfarm.workflow.recipe import load_recipes

pytestmark = pytest.mark.engine
RECIPES = ("wan22_14b_4step", "wan22_5b", "hunyuan15")
WORKFLOW_NAMES = sorted({w for r in RECIPES for w in load_recipes()[r].workflows.values()})


def serve_tiny_models(hub: FakeHub, tiny: tuple[Path, dict[str, Any]], manifest_path: Path) -> None:
    """Each declared model under its declared repo/path (or, for a URL source, a hub path the manifest names)."""
    folder, made = tiny
    manifest = {}
    for model in models_for(WORKFLOW_NAMES, WORKFLOWS):
        key = f"{model.folder}/{model.file}"
        content = (folder / key).read_bytes()
        entry = {"size": made[key]["size"], "sha256": made[key]["sha256"]}
        if model.repo:
            hub.files[f"{model.repo}/{model.path}"] = content
        else:
            hub.files[f"vidfarm/urls/{model.file}"] = content
            entry["url"] = f"{hub.url}/vidfarm/urls/resolve/main/{model.file}"
        manifest[key] = entry
    manifest_path.write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def fetched_workers(
    tiny_models: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[dict[str, str]]]:
    root = tmp_path_factory.mktemp("real-workers")
    hub = FakeHub().start()
    serve_tiny_models(hub, tiny_models, root / "manifest.json")
    env = {
        "VIDFARM_WORKFLOWS": ",".join(WORKFLOW_NAMES),
        "VIDFARM_WORKFLOWS_DIR": str(WORKFLOWS),
        "VIDFARM_MODELS_MANIFEST": str(root / "manifest.json"),
        "VIDFARM_EXTRA_CUSTOM_NODES": str(TINY_PACK),
    }
    ports = [free_port(), free_port()]
    for i in range(2):
        (root / f"w{i}").mkdir()
    processes = [start(root / f"w{i}", hub, port, **env) for i, port in enumerate(ports)]
    ready = http_ready(models_for(WORKFLOW_NAMES, WORKFLOWS), timeout=5)
    try:
        workers = [
            Worker(f"w{i}", TEST_TOKEN, 0.4, 0.0, 0.0, url=f"http://127.0.0.1:{port}") for i, port in enumerate(ports)
        ]

        def all_ready() -> bool:  # both boot at once; a worker that exits fails at once, with its log
            for i, process in enumerate(processes):
                assert process.poll() is None, (root / f"w{i}" / "worker.log").read_text()[-3000:]
            return all([ready(worker) for worker in workers])

        def logs() -> str:
            return "\n".join((root / f"w{i}" / "worker.log").read_text()[-1500:] for i in range(2))

        wait_for(all_ready, "both workers ready", every=0.5, describe=logs)
        made = tiny_models[1]
        for model in {(m.folder, m.file) for m in models_for(WORKFLOW_NAMES, WORKFLOWS)}:
            assert len(hub.gets(model[1])) >= 2, model  # each worker's bootstrap downloaded it from the hub
            for i in range(2):
                fetched = root / f"w{i}" / "base" / "models" / model[0] / model[1]
                assert fetched.stat().st_size == made["/".join(model)]["size"]
        yield [{"name": f"gpu{i}", "url": f"http://127.0.0.1:{p}", "token": TEST_TOKEN} for i, p in enumerate(ports)]
    finally:
        for process in processes:
            stop(process)
        hub.stop()


def run_notebook(tmp_path: Path, **parameters: Any) -> dict[str, Any]:
    result = tmp_path / "result.json"
    pm.execute_notebook(str(REPO / "notebooks" / "10_long_video.ipynb"), str(tmp_path / "run.ipynb"),
                        parameters={**parameters, "out_dir": str(tmp_path / "jobs"), "result_path": str(result)},
                        cwd=str(tmp_path), progress_bar=False)  # fmt: skip
    summary: dict[str, Any] = json.loads(result.read_text())
    return summary


def test_text_to_video_on_the_wan22_14b_4step_recipe(
    comfy_server: LocalComfy, fetched_workers: list[dict[str, str]], tmp_path: Path
) -> None:
    summary = run_notebook(tmp_path, prompt="a paper boat 🚣 on a rainy street", seconds=2.0, fps=16, width=256,
                           height=144, strategy="keyframes", recipe="wan22_14b_4step", segment_frames=9,
                           render_height=96, head_url=comfy_server.url,
                           workers=json.dumps(fetched_workers))  # fmt: skip
    assert (summary["width"], summary["height"], summary["fps"], summary["frames"]) == (256, 144, 16.0, 32)
    report = summary["report"]
    assert report["recipe"] == "wan22_14b_4step" and summary["segments"] == 4
    tasks = report["tasks"]
    assert sorted(t for t in tasks if t.startswith("key-")) == [f"key-{i}" for i in range(5)]
    assert {t["worker"] for t in tasks.values()} == {"gpu0", "gpu1"}  # both rented workers rendered
    assert report["join"] == "copy"  # identical segment streams: joined without re-encoding
    assert probe(Path(summary["video"])).frames == 32


def test_photo_to_video_on_the_wan22_5b_recipe_by_chain(
    comfy_server: LocalComfy, fetched_workers: list[dict[str, str]], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (400, 225), (200, 120, 40)).save(photo)
    summary = run_notebook(tmp_path, prompt="the kite climbs", image=str(photo), seconds=1.5, fps=16, width=256,
                           height=144, strategy="chain", recipe="wan22_5b", segment_frames=9, render_height=96,
                           head_url=comfy_server.url, workers=json.dumps(fetched_workers))  # fmt: skip
    assert (summary["width"], summary["height"], summary["frames"]) == (256, 144, 24)
    report = summary["report"]
    assert report["recipe"] == "wan22_5b" and summary["segments"] == 3
    assert not any(t.startswith("key-") for t in report["tasks"])  # a chain from the photo renders no keyframes


def test_text_to_video_on_the_hunyuan15_recipe_by_chain(
    comfy_server: LocalComfy, fetched_workers: list[dict[str, str]], tmp_path: Path
) -> None:
    summary = run_notebook(tmp_path, prompt='a paper boat with a sail saying "vidfarm"', seconds=1.0, fps=16,
                           width=256, height=144, strategy="chain", recipe="hunyuan15", segment_frames=9,
                           render_height=96, head_url=comfy_server.url,
                           workers=json.dumps(fetched_workers))  # fmt: skip
    assert (summary["width"], summary["height"], summary["fps"], summary["frames"]) == (256, 144, 16.0, 16)
    report = summary["report"]
    assert report["recipe"] == "hunyuan15" and summary["segments"] == 2
    assert sorted(t for t in report["tasks"] if t.startswith("key-")) == ["key-0"]  # the chain's first frame
    assert probe(Path(summary["video"])).frames == 16
