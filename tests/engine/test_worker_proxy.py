"""The worker's front door, for real: the token proxy and its watchdog in front of a real ComfyUI, with real
WebSockets. (test_faults.py::test_token_on_http_and_websocket covers a whole run through the proxy.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import websocket

from tests.fakes.proxies import TEST_TOKEN
from tests.support.waiting import wait_for
from vidfarm.comfy.local import LocalComfy, free_port
from vidfarm.worker.token_proxy import ProxyThread, TokenProxy
from vidfarm.worker.watchdog import Watchdog

GOOD = {"Authorization": f"Bearer {TEST_TOKEN}"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_only_authenticated_traffic_reaches_comfyui_and_keeps_the_worker_alive(comfy_server: LocalComfy) -> None:
    clock, fired = Clock(), []
    dog = Watchdog(300, lambda: fired.append(clock.t), clock=clock)
    proxy = ProxyThread(TokenProxy(comfy_server.url, TEST_TOKEN, watchdog=dog)).start()
    ws_url = proxy.url.replace("http", "ws") + "/ws?clientId=watchdog-test"
    try:
        clock.t += 200
        for path in ("/system_stats", "/object_info", "/view?filename=x.png", "/api/prompt"):
            assert requests.get(proxy.url + path, timeout=10).status_code == 401
        assert requests.post(proxy.url + "/prompt", json={"prompt": {}}, timeout=10).status_code == 401
        bad = {"Authorization": "Bearer " + "x" * len(TEST_TOKEN)}
        assert requests.get(proxy.url + "/system_stats", headers=bad, timeout=10).status_code == 401
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(ws_url, header=bad, timeout=10)
        assert refused.value.status_code == 401
        assert dog.idle_for() == 200  # refused requests do not count as life signs

        sock = websocket.create_connection(ws_url, header=GOOD, timeout=10)
        first = json.loads(sock.recv())  # ComfyUI greets every socket with the queue status
        assert first["type"] == "status"
        assert dog.idle_for() == 0
        clock.t += 250
        assert requests.get(proxy.url + "/system_stats", headers=GOOD, timeout=10).json()["system"]
        assert dog.idle_for() == 0 and not dog.check()
        sock.close()

        clock.t += 299
        assert not dog.check() and fired == []
        clock.t += 1
        assert dog.check() and dog.check() and fired == [1750.0]  # fired once, when due
    finally:
        proxy.stop()


def test_the_proxy_command_runs_the_shutdown_command_after_silence(comfy_server: LocalComfy, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown-called"
    port = free_port()
    env = {**os.environ, "VIDFARM_WORKER_TOKEN": TEST_TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "vidfarm.worker.token_proxy", "--upstream", comfy_server.url, "--host", "127.0.0.1",
         "--port", str(port), "--idle-shutdown", "3", "--shutdown-command", f"touch {marker}"],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def shut_down_while_asked_without_the_token() -> bool:
        requests.get(url + "/queue", timeout=5)  # unauthenticated: does not count as use
        return marker.exists()

    try:
        wait_for(lambda: requests.get(url + "/system_stats", headers=GOOD, timeout=5).ok, "the proxy answers",
                 ignore=(requests.ConnectionError, requests.Timeout))  # fmt: skip
        for _ in range(6):  # a client in use: authenticated requests every 0.5 s keep it alive past its 3 s limit
            assert requests.get(url + "/queue", headers=GOOD, timeout=5).ok
            time.sleep(0.5)
        assert not marker.exists()
        wait_for(shut_down_while_asked_without_the_token, "the shutdown command run after 3 s unused", every=0.3)
    finally:
        process.terminate()
        process.wait(10)
