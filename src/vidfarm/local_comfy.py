"""Start and stop ComfyUI servers on this machine: the demo's embedded default, the tests' head and workers.

One install (scripts/setup-comfyui) serves many instances: each has its own `--base-directory` (custom_nodes,
models, input, output, temp, user) and port. The node pack is linked into each instance's custom_nodes, and so
are the packs named in VIDFARM_EXTRA_CUSTOM_NODES (folders, separated by ':'); a head passes that on to the local
workers it starts, so one setting reaches every instance of a job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from vidfarm.errors import ComfyError

REPO = Path(__file__).resolve().parents[2]
NODE_PACK = REPO / "custom_nodes" / "vidfarm"
PROBE_NODE = "VidfarmStandInVideo"  # any node of the pack: present means the pack loaded


def default_install_dir() -> Path:
    configured = os.environ.get("VIDFARM_COMFY_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "vidfarm" / "comfyui-0.3.75"


EXTRA_NODES_ENV = "VIDFARM_EXTRA_CUSTOM_NODES"


def extra_node_packs() -> list[Path]:
    return [Path(p).resolve() for p in os.environ.get(EXTRA_NODES_ENV, "").split(":") if p.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalComfy:
    """A ComfyUI process on 127.0.0.1 (CPU), bound to loopback only: ComfyUI has no auth of its own."""

    def __init__(
        self,
        base_dir: str | Path,
        *,
        port: int | None = None,
        install_dir: str | Path | None = None,
        extra_args: tuple[str, ...] = (),
        die_with_parent: bool = False,
    ) -> None:
        self.install_dir = Path(install_dir) if install_dir else default_install_dir()
        self.base_dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.extra_args = extra_args
        self.die_with_parent = die_with_parent  # workers a head started must not outlive a crashed head
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "comfyui.log"

    def _check_install(self) -> Path:
        python = self.install_dir / "venv" / "bin" / "python"
        if not (self.install_dir / ".ready").exists() or not python.exists():
            raise ComfyError(f"no ComfyUI install at {self.install_dir}; run scripts/setup-comfyui first")
        return python

    def prepare(self) -> None:
        for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        for pack in (NODE_PACK, *extra_node_packs()):
            link = self.base_dir / "custom_nodes" / pack.name
            if not link.exists():
                link.symlink_to(pack, target_is_directory=True)

    def start(self, *, ready_timeout: float = 120.0) -> LocalComfy:
        self.launch()
        self.wait_ready(ready_timeout)
        self.check_node_pack()
        return self

    def launch(self) -> LocalComfy:
        """Start the process without waiting (start several, then wait_ready each: they boot in parallel)."""
        python = self._check_install()
        self.prepare()
        args = [
            str(python),
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base_dir),
            "--disable-auto-launch",
            *self.extra_args,
        ]
        self._stop_stale()
        with self.log_path.open("wb") as log:
            # Popen runs python directly (no shell), so signals reach ComfyUI itself (comfyui.md §9).
            self.process = subprocess.Popen(
                args,
                cwd=self.install_dir / "comfyui",
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.pid_path.write_text(str(self.process.pid))
        return self

    def check_node_pack(self) -> None:
        """Fail loudly when the node pack did not load (ComfyUI itself only logs "IMPORT FAILED")."""
        info = requests.get(f"{self.url}/object_info/{PROBE_NODE}", timeout=10).json()
        if PROBE_NODE not in info:
            pack_lines = [line for line in self.log_tail(200).splitlines() if "vidfarm" in line]
            self.stop()
            raise ComfyError("the vidfarm node pack did not load into ComfyUI:\n" + "\n".join(pack_lines))

    @property
    def pid_path(self) -> Path:
        return self.base_dir / "comfyui.pid"

    def _stop_stale(self) -> None:
        """A server left running on this base directory (its owner crashed) is stopped before a new one starts."""
        try:
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if str(self.base_dir) in cmdline and "main.py" in cmdline:
            os.kill(pid, signal.SIGKILL)
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ComfyError(
                    f"ComfyUI on port {self.port} exited at start (code {self.process.returncode}); "
                    f"last log lines:\n{self.log_tail()}"
                )
            try:
                if requests.get(self.url + "/system_stats", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise ComfyError(f"ComfyUI on port {self.port} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL, as a crashed or pre-empted worker would die."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def __enter__(self) -> LocalComfy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the process that started it dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
