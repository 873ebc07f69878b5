"""Start and stop ComfyUI servers on this machine: the demo's embedded default, the tests' head and workers.

One install (scripts/setup-comfyui) serves many instances and many clones: each instance has its own
`--base-directory` (custom_nodes, models, input, output, temp, user) and port, and loads custom nodes from there
only. The node pack of the clone that starts it is linked into its custom_nodes, and so are the packs named in
VIDFARM_EXTRA_CUSTOM_NODES (folders, separated by ':'); a head passes that on to the local workers it starts, so
one setting reaches every instance of a job. The shared install itself carries no link to any clone (decision 0180).

Which install: the rule scripts/setup-comfyui follows, from the one file both read (scripts/comfyui.tag):
VIDFARM_COMFY_DIR if set; else ~/.cache/vidfarm/comfyui-<tag> for VIDFARM_COMFY_TAG if set; else the pinned
release's folder when it is installed, otherwise the offline one (ComfyUI 0.3.75 from PyPI).

A port is picked free before the server binds, so another process may take it first: an instance is ready only
when the server answering lists its own `--base-directory` in /system_stats `argv`, and an instance whose
server could not bind starts again on another port (unless the port was given).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from vidfarm.comfy.compat import folder_version, version_found, version_line
from vidfarm.errors import ComfyError

REPO = Path(__file__).resolve().parents[3]
NODE_PACK = REPO / "custom_nodes" / "vidfarm"
TAG_FILE = REPO / "scripts" / "comfyui.tag"
PROBE_NODE = "VidfarmTiledUpscale"  # a real node of the pack (every segment workflow ends in it)
PORT_ATTEMPTS = 3


def comfy_tags() -> dict[str, str]:
    """PINNED_TAG (installed online) and OFFLINE_TAG (PyPI) from scripts/comfyui.tag."""
    tags = {"PINNED_TAG": "v0.3.75", "OFFLINE_TAG": "v0.3.75"}
    if TAG_FILE.exists():
        for line in TAG_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in tags and value.strip():
                tags[key.strip()] = value.strip()
    return tags


def install_dir_for(tag: str) -> Path:
    return Path.home() / ".cache" / "vidfarm" / f"comfyui-{tag.removeprefix('v')}"


def default_install_dir() -> Path:
    """The ComfyUI install scripts/setup-comfyui made (the same rule, see the module docstring)."""
    configured = os.environ.get("VIDFARM_COMFY_DIR")
    if configured:
        return Path(configured)
    if os.environ.get("VIDFARM_COMFY_TAG"):
        return install_dir_for(os.environ["VIDFARM_COMFY_TAG"])
    tags = comfy_tags()
    pinned = install_dir_for(tags["PINNED_TAG"])
    if os.environ.get("VIDFARM_COMFY_SOURCE", "auto") != "pypi" and (pinned / ".ready").exists():
        return pinned
    return install_dir_for(tags["OFFLINE_TAG"])


EXTRA_NODES_ENV = "VIDFARM_EXTRA_CUSTOM_NODES"
HEADS_ENV = "VIDFARM_HEADS_DIR"


def heads_dir() -> Path:
    """Where a notebook's per-job head ComfyUIs keep their folders: the service points it into its data folder
    (VIDFARM_HEADS_DIR), so a job's scratch has the job's lifetime (vidfarm.jobs.retention)."""
    return Path(os.environ.get(HEADS_ENV) or REPO / ".vidfarm" / "heads")


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
        node_pack: str | Path = NODE_PACK,
    ) -> None:
        self.install_dir = Path(install_dir) if install_dir else default_install_dir()
        self.base_dir = Path(base_dir).resolve()
        self.node_pack = Path(node_pack).resolve()  # this clone's pack (another clone's for tests of two)
        self.port = port or free_port()
        self._port_given = port is not None
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
        for pack in (self.node_pack, *extra_node_packs()):
            link = self.base_dir / "custom_nodes" / pack.name
            if link.is_symlink() and link.resolve() != pack.resolve():
                link.unlink()  # this base directory is this instance's: a link left by another clone is re-pointed
            if not link.exists():
                link.symlink_to(pack, target_is_directory=True)

    def _directory_args(self) -> list[str]:
        """Feature-detected in the install's own flags: `--base-directory` (0.3.75 and the newest have it) keeps
        custom nodes, models and files to this instance. A ComfyUI without it would also load the shared install's
        custom_nodes, so it is refused, naming its version and the oldest supported."""
        flags = self.install_dir / "comfyui" / "comfy" / "cli_args.py"
        try:
            has_base_directory = "--base-directory" in flags.read_text(errors="replace")
        except OSError:
            has_base_directory = True  # no flags file to read (an unusual layout): let ComfyUI itself say
        if not has_base_directory:
            found = version_found(folder_version(self.install_dir / "comfyui"))
            raise ComfyError(f"{found} at {self.install_dir} has no --base-directory flag: upgrade ComfyUI")
        return ["--base-directory", str(self.base_dir)]

    def start(self, *, ready_timeout: float = 120.0) -> LocalComfy:
        """Launch and wait until ready. Interrupted or failed while it boots (a job canceled while its head
        starts), the process is stopped before the exception goes on: no caller holds it yet to stop it."""
        try:
            self.launch()
            self.wait_ready(ready_timeout)
            self.check_node_pack()
        except BaseException:
            self.kill()
            raise
        return self

    def launch(self) -> LocalComfy:
        """Start the process without waiting (start several, then wait_ready each: they boot in parallel)."""
        python = self._check_install()
        self.prepare()
        args = [
            str(python),
            # by its absolute path: /system_stats argv[0] then names the install (vidfarm.comfy.engine)
            str((self.install_dir / "comfyui" / "main.py").resolve()),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self._directory_args(),
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
            version = (self._stats() or {}).get("system", {}).get("comfyui_version")
            lines = [line for line in self.log_tail(200).splitlines() if "vidfarm" in line]
            old = version_line(version, where=f"ComfyUI at {self.install_dir}")
            self.stop()
            first = f"the vidfarm node pack did not load into {version_found(version)} at {self.install_dir}:"
            raise ComfyError("\n".join([first, *([old] if old else []), *lines]))

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
        """Until this instance's own server answers; a server of someone else's on the port never counts."""
        deadline = time.monotonic() + timeout
        attempts = 1
        while time.monotonic() < deadline:
            stats = self._stats()
            if stats is not None and self._is_mine(stats):
                return
            if self.process is not None and self.process.poll() is not None:
                taken = stats is not None  # ours exited while another server answers on the port
                if taken and not self._port_given and attempts < PORT_ATTEMPTS:
                    attempts += 1
                    self.port = free_port()
                    self.launch()
                    continue
                raise ComfyError(self._start_failure(taken))
            time.sleep(0.3)
        raise ComfyError(f"ComfyUI on port {self.port} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _stats(self) -> dict[str, Any] | None:
        try:
            response = requests.get(self.url + "/system_stats", timeout=2)
            stats = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        return stats if isinstance(stats, dict) else None

    def _is_mine(self, stats: dict[str, Any]) -> bool:
        """The answering server was started with this instance's base directory (a per-instance marker)."""
        argv = stats.get("system", {}).get("argv") or []
        return str(self.base_dir) in argv

    def _start_failure(self, taken: bool) -> str:
        assert self.process is not None
        if taken:
            return (
                f"port {self.port} is taken by another server (not the ComfyUI for {self.base_dir}): "
                "choose another port, or leave it out to pick a free one"
            )
        return (
            f"ComfyUI on port {self.port} exited at start (code {self.process.returncode}); "
            f"last log lines:\n{self.log_tail()}"
        )

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
