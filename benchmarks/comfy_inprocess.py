"""ComfyUI run in this process through its own node loader, validation and executor, timed node by node.

No HTTP server and no frontend: `nodes.init_extra_nodes` loads the built-in and custom nodes, `execution.
validate_prompt` checks a graph and `execution.PromptExecutor` runs it, reporting to a probe that stands in for
the server. In-process is what makes the figures honest: each node's interval is closed after a device
synchronise, the peak-memory counter is reset per node, the time spent moving models to the device is counted
apart (`load_models_gpu`), and the fp8 path actually taken by each linear layer is counted (`comfy.ops`).

Used by benchmarks/gpu_real_models.py; needs torch and ComfyUI's dependencies (a ComfyUI venv, or the GPU image
plus the bundle's wheels).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("gpubench")


class BenchError(RuntimeError):
    """The benchmark could not run a stage; the message says what to fix."""


@dataclass
class NodeTime:
    node: str
    class_type: str
    seconds: float = 0.0
    load_seconds: float = 0.0  # of which: models moved to the device (load_models_gpu), LoRA patching included
    peak_bytes: int = 0


@dataclass
class PathLog:
    """What ComfyUI chose for the diffusion models of a run: ops, dtypes, and fp8 matmuls actually taken."""

    models: list[dict[str, Any]] = field(default_factory=list)
    fp8_calls: int = 0  # fp8_linear attempts (only made when ComfyUI chose fp8 matrix maths)
    fp8_taken: int = 0  # of which ran as fp8 matmuls (the rest fell back to a dequantised matmul)


class Memory:
    """Peak memory since the last reset: the device allocator's on CUDA, the process's resident set on a CPU."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.unit = "GiB (cuda allocated)" if cuda else "MiB (process RSS)"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        with contextlib.suppress(OSError):  # without it the figure is the process's peak so far
            Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM back to the current RSS

    def peak(self) -> int:
        if self.cuda:
            return int(torch.cuda.max_memory_allocated())
        match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        return int(match.group(1)) * 1024 if match else 0

    def show(self, size: int) -> str:
        return f"{size / 2**30:.2f}" if self.cuda else f"{size / 2**20:.0f}"


class Probe:
    """Stands in for ComfyUI's PromptServer: the executor reports each node as it starts; the probe times them."""

    def __init__(self, memory: Memory) -> None:
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.sockets_metadata: dict[str, Any] = {}
        self.memory = memory
        self.times: dict[str, NodeTime] = {}
        self.current: NodeTime | None = None
        self.began = 0.0
        self.classes: dict[str, str] = {}
        self.error: dict[str, Any] | None = None

    def start_run(self, graph: dict[str, Any]) -> None:
        self.times, self.current, self.error = {}, None, None
        self.classes = {node: spec["class_type"] for node, spec in graph.items()}

    def send_sync(self, event: str, data: Any, sid: str | None = None) -> None:
        if event in ("executing", "execution_success", "execution_error", "execution_interrupted"):
            self._close()
            node = data.get("node") if event == "executing" else None
            if node is not None:
                self._open(str(node))
        if event == "execution_error":
            self.error = data

    def send_progress_text(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _open(self, node: str) -> None:
        self.memory.sync()
        self.memory.reset()
        self.current = self.times.setdefault(node, NodeTime(node, self.classes.get(node, "?")))
        self.began = time.perf_counter()

    def _close(self) -> None:
        if self.current is None:
            return
        self.memory.sync()
        self.current.seconds += time.perf_counter() - self.began
        self.current.peak_bytes = max(self.current.peak_bytes, self.memory.peak())
        self.current = None

    def add_load(self, seconds: float) -> None:
        if self.current is not None:
            self.current.load_seconds += seconds


class Engine:
    """One ComfyUI, loaded in this process (call `start` once per process: ComfyUI keeps module-level state)."""

    def __init__(self, comfy_dir: Path, base_dir: Path, *, cuda: bool) -> None:
        self.comfy_dir, self.base_dir, self.cuda = comfy_dir.resolve(), base_dir.resolve(), cuda
        self.memory = Memory(cuda)
        self.probe = Probe(self.memory)
        self.paths = PathLog()
        self.marker_elements: int | None = None  # when set: the scaled_fp8 marker Wan files are read with
        self.executor: Any = None

    def start(self, packs: list[Path]) -> float:
        """Import ComfyUI, load its nodes and the given packs; returns the seconds it took."""
        began = time.perf_counter()
        for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        for pack in packs:
            link = self.base_dir / "custom_nodes" / pack.name
            if not link.exists():
                link.symlink_to(pack.resolve(), target_is_directory=True)
        sys.path.insert(0, str(self.comfy_dir))
        import comfy.cli_args

        comfy.cli_args.args.cpu = not self.cuda  # before ComfyUI's model management is imported
        comfy.cli_args.args.base_directory = str(self.base_dir)  # before folder_paths is imported
        importlib.import_module("utils.extra_config")  # as main.py: ComfyUI's utils/ before nodes.py shadows it
        import comfy.utils
        import execution  # noqa: F401 - ComfyUI's executor, imported before nodes as main.py does
        import nodes

        comfy.utils.PROGRESS_BAR_ENABLED = False  # no tqdm bars in the output
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        self._install_hooks()
        return time.perf_counter() - began

    def require_nodes(self, class_types: set[str]) -> None:
        import nodes

        missing = sorted(class_types - set(nodes.NODE_CLASS_MAPPINGS))
        if missing:
            log_file = self.base_dir / "comfyui.log"
            failed = [line for line in log_file.read_text(errors="replace").splitlines() if "Cannot import" in line]
            raise BenchError(
                f"ComfyUI lacks the nodes {', '.join(missing)} (a pack or module failed to import; {log_file}):\n"
                + "\n".join(failed)
            )

    def run(self, graph: dict[str, Any], *, targets: list[str] | None = None) -> dict[str, NodeTime]:
        """Validate the whole graph, execute `targets` (default: its outputs) on a fresh executor; times by node."""
        import execution

        prompt_id = str(uuid.uuid4())
        valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, graph, None))
        if not valid:
            raise BenchError(f"ComfyUI rejected the graph: {error['message']}: {error['details']} {node_errors}")
        self.executor = execution.PromptExecutor(
            self.probe, cache_type=execution.CacheType.CLASSIC, cache_args={"lru": 0, "ram": 0}
        )
        self.probe.start_run(graph)
        self.executor.execute(graph, prompt_id, {"client_id": "gpubench"}, targets or outputs)
        if not self.executor.success:
            err = self.probe.error or {}
            raise BenchError(
                f"{err.get('node_type')} (node {err.get('node_id')}) failed: {err.get('exception_message')}\n"
                + "".join(err.get("traceback", [])[-3:])
            )
        return dict(self.probe.times)

    def output(self, node: str, index: int = 0) -> Any:
        """A value the last run left in ComfyUI's output cache."""
        entry = self.executor.caches.outputs.get(node)
        if entry is None:
            raise BenchError(f"node {node} left no output in the cache")
        return entry.outputs[index][0]

    def unload(self) -> None:
        import comfy.model_management as mm

        self.executor = None
        mm.unload_all_models()
        gc.collect()
        mm.soft_empty_cache()

    @contextmanager
    def marker(self, elements: int | None) -> Iterator[None]:
        """Read Wan diffusion files as if their scaled_fp8 marker had `elements` elements (2: fp8 maths off)."""
        self.marker_elements = elements
        try:
            yield
        finally:
            self.marker_elements = None

    def attention(self) -> str:
        import comfy.ldm.modules.attention as attention

        return str(getattr(attention.optimized_attention, "__name__", attention.optimized_attention))

    def _install_hooks(self) -> None:
        import comfy.model_management as mm
        import comfy.ops
        import comfy.sd

        mm.load_models_gpu = self._timed(mm.load_models_gpu)
        comfy.ops.fp8_linear = self._counted(comfy.ops.fp8_linear)
        comfy.utils.load_torch_file = self._with_marker(comfy.utils.load_torch_file)
        comfy.sd.load_diffusion_model = self._recorded(comfy.sd.load_diffusion_model)

    def _timed(self, load: Callable[..., Any]) -> Callable[..., Any]:
        def timed_load(*args: Any, **kwargs: Any) -> Any:
            self.memory.sync()
            began = time.perf_counter()
            try:
                return load(*args, **kwargs)
            finally:
                self.memory.sync()
                self.probe.add_load(time.perf_counter() - began)

        return timed_load

    def _counted(self, fp8_linear: Callable[..., Any]) -> Callable[..., Any]:
        def counted_fp8_linear(layer: Any, value: Any) -> Any:
            out = fp8_linear(layer, value)
            self.paths.fp8_calls += 1
            self.paths.fp8_taken += out is not None
            return out

        return counted_fp8_linear

    def _with_marker(self, load_torch_file: Callable[..., Any]) -> Callable[..., Any]:
        def load_with_marker(*args: Any, **kwargs: Any) -> Any:
            loaded = load_torch_file(*args, **kwargs)
            sd = loaded[0] if isinstance(loaded, tuple) else loaded
            wan = isinstance(sd, dict) and "head.modulation" in sd and "scaled_fp8" in sd
            if wan and self.marker_elements is not None:
                sd["scaled_fp8"] = torch.zeros((self.marker_elements,), dtype=sd["scaled_fp8"].dtype)
            return loaded

        return load_with_marker

    def _recorded(self, load_diffusion_model: Callable[..., Any]) -> Callable[..., Any]:
        def recorded_load(unet_path: str, *args: Any, **kwargs: Any) -> Any:
            patcher = load_diffusion_model(unet_path, *args, **kwargs)
            base = patcher.model
            config = base.model_config
            self.paths.models.append(
                {
                    "file": Path(unet_path).name,
                    "model": type(base).__name__,
                    "scaled_fp8": str(config.scaled_fp8) if config.scaled_fp8 is not None else None,
                    "fp8_optimisations": bool(config.optimizations.get("fp8", False)),
                    "linear_weights": linear_dtype(base.diffusion_model),
                    "compute_dtype": str(base.manual_cast_dtype or base.get_dtype()),
                }
            )
            return patcher

        return recorded_load


def linear_dtype(module: torch.nn.Module) -> str:
    """The dtype the linear layers hold their weights in (fp8 for a scaled file, whatever ComfyUI reports)."""
    return next((str(m.weight.dtype) for m in module.modules() if isinstance(m, torch.nn.Linear)), "?")


def log_to(path: Path) -> None:
    """ComfyUI's log (long 'unet missing' lists included) to a file; only errors reach the terminal."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.ERROR)
    root.handlers[:] = [to_file, to_terminal]
