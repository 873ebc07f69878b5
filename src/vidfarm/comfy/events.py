"""The WebSocket side: a background thread that keeps `/ws?clientId=<id>` open and queues its JSON messages.

The socket is for progress only; completion is confirmed from history (ARCHITECTURE §3). It reconnects after a
drop; the server replays nothing, so the watcher reads history after every reconnect (transcript §14).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from typing import Any

import websocket


class EventStream:
    def __init__(
        self,
        http_url: str,
        client_id: str,
        *,
        headers: dict[str, str] | None = None,
        reconnect_delay: float = 0.5,
    ) -> None:
        base = http_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        self.ws_url = f"{base}/ws?clientId={client_id}"
        self.headers = [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connects = 0  # how many times a connection opened; a change means "read history again"
        self.last_message = 0.0
        self._reconnect_delay = reconnect_delay
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._socket: websocket.WebSocket | None = None
        self._thread = threading.Thread(target=self._loop, name=f"comfy-ws-{client_id[:8]}", daemon=True)

    def start(self) -> EventStream:
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        return self._socket is not None and bool(self._socket.connected)

    def wait_connected(self, timeout: float) -> bool:
        return self._opened.wait(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._socket = websocket.create_connection(self.ws_url, header=self.headers, timeout=5)
                self.connects += 1
                self._opened.set()
                self._read(self._socket)
            except (OSError, websocket.WebSocketException):
                pass
            finally:
                self._close_socket()
            self._stop.wait(self._reconnect_delay)

    def _read(self, sock: websocket.WebSocket) -> None:
        sock.settimeout(1.0)
        while not self._stop.is_set():
            try:
                frame = sock.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if not sock.connected:
                return
            self.last_message = time.monotonic()
            if isinstance(frame, str):  # binary frames are previews; not needed for progress
                try:
                    self.messages.put(json.loads(frame))
                except ValueError:
                    continue

    def _close_socket(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self._close_socket()
        self._thread.join(timeout=5)
