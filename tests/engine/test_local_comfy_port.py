"""LocalComfy picks a port before its server binds: another server answering there must never be taken for its own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import vidfarm.comfy.local
from tests.conftest import require_comfy_install
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import ComfyError


class Impostor(BaseHTTPRequestHandler):
    """Someone else's server on the port, answering /system_stats as a ComfyUI would."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        data = json.dumps({"system": {"comfyui_version": "9.9.9", "argv": ["main.py"]}, "devices": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def taken_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_given_port_held_by_another_server_is_refused_not_accepted(taken_port: int, tmp_path: Path) -> None:
    require_comfy_install()
    comfy = LocalComfy(tmp_path / "comfy", port=taken_port)
    try:
        with pytest.raises(ComfyError, match=f"port {taken_port} is taken by another server"):
            comfy.launch().wait_ready(120)
    finally:
        comfy.stop()


def test_a_picked_port_that_was_taken_meanwhile_is_replaced(
    taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_comfy_install()
    picks = iter([taken_port])
    real_free_port = vidfarm.comfy.local.free_port
    monkeypatch.setattr(vidfarm.comfy.local, "free_port", lambda: next(picks, None) or real_free_port())
    comfy = LocalComfy(tmp_path / "comfy")  # picks the taken port, as a race with another process would
    assert comfy.port == taken_port
    try:
        comfy.start()
        assert comfy.port != taken_port
        argv = requests.get(comfy.url + "/system_stats", timeout=5).json()["system"]["argv"]
        assert str(comfy.base_dir) in argv  # its own server, with the node pack checked
    finally:
        comfy.stop()
