"""The dispatcher's result cache is keyed by the engine too: a job run again reuses only what its pool's engines
rendered (decision 0180). Fake workers write real PNGs; each worker names the engine it runs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from vidfarm.comfy.engine import engine_id
from vidfarm.render.dispatch import Attempt, Dispatcher, Task, Worker
from vidfarm.workflow.declaration import Declaration

OLD = "comfyui 0.3.75; torch 2.14.1; python 3.11.7; /a/comfyui/main.py"
NEW = "comfyui 0.47.1; torch 2.14.1; python 3.11.7; /b/comfyui/main.py"


class Farm:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rendered: list[str] = []  # task ids, each time one was really rendered

    def execute(self, task: Task, worker: Worker, attempt: Attempt) -> dict[str, Path]:
        self.rendered.append(task.id)
        out = self.tmp / f"{task.id}-{worker.name}-{len(self.rendered)}.png"
        Image.new("RGB", (8, 8), (len(self.rendered) * 20, 0, 0)).save(out)
        return {"image": out}

    def run(self, engines: dict[str, str | None]) -> dict[str, bool]:
        """One run of the job on workers named after `engines`; which tasks were reused."""
        dispatcher = Dispatcher(
            [Worker(name, f"http://{name}") for name in engines],
            _no_declarations,
            self.tmp / "cache",
            execute=self.execute,
            revive=lambda worker, stale: True,
            engine=lambda worker: engines[worker.name],
        )
        job = [
            Task("key-0", "key", {"seed": 1}),
            Task("seg-0", "seg", {"seed": 1}, inputs={"image": ("key-0", "image")}),
        ]
        return {task_id: result.reused for task_id, result in dispatcher.run(job).items()}


def _no_declarations(name: str) -> Declaration:
    raise AssertionError("fake workers need no declarations")


def test_the_same_engine_reuses_what_it_rendered(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    assert farm.run({"w0": OLD}) == {"key-0": False, "seg-0": False}
    assert farm.run({"w0": OLD}) == {"key-0": True, "seg-0": True}
    assert farm.rendered == ["key-0", "seg-0"]


def test_another_engine_renders_again_and_each_keeps_its_own(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    farm.run({"w0": OLD})
    assert farm.run({"w0": NEW}) == {"key-0": False, "seg-0": False}  # nothing the old engine made is reused
    assert farm.rendered == ["key-0", "seg-0"] * 2
    assert farm.run({"w0": NEW, "w1": OLD}) == {"key-0": True, "seg-0": True}  # a pool with either engine reuses
    assert farm.run({"w0": OLD}) == {"key-0": True, "seg-0": True}  # the old engine's results are still there
    assert len(farm.rendered) == 4


def test_a_worker_that_cannot_name_its_engine_is_never_reused_from(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    farm.run({"w0": None})
    assert farm.run({"w0": None}) == {"key-0": False, "seg-0": False}
    assert farm.run({"w0": OLD}) == {"key-0": False, "seg-0": False}


def test_the_engine_is_the_version_and_the_install_not_the_instance() -> None:
    def stats(version: str, main: str, base: str, device: str) -> dict[str, object]:
        argv = [main, "--port", "8190", "--base-directory", base]
        system = {"comfyui_version": version, "pytorch_version": "2.14.1", "python_version": "3.11.7", "argv": argv}
        return {"system": system, "devices": [{"name": device}]}

    one = engine_id(stats("0.3.75", "/a/comfyui/main.py", "/tmp/w0", "cpu"))
    assert one == engine_id(stats("0.3.75", "/a/comfyui/main.py", "/tmp/w1", "cuda:0 H100"))  # instance, device
    assert one != engine_id(stats("0.3.75", "/b/comfyui/main.py", "/tmp/w0", "cpu"))  # another install
    assert one != engine_id(stats("0.47.1", "/a/comfyui/main.py", "/tmp/w0", "cpu"))  # another version
    assert "0.3.75" in one and "/a/comfyui/main.py" in one
    assert "main.py (install folder not reported)" in engine_id(stats("0.3.75", "main.py", "/tmp/w0", "cpu"))
