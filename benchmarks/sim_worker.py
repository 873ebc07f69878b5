"""A simulated ComfyUI worker for benchmarks: speaks the protocol the vidfarm client uses, renders nothing.

Each prompt "runs" for a duration chosen by its node classes (a keyframe, a segment), then appears in /history
with one output file served by /view, and the end is announced on the client's WebSocket as ComfyUI does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from vidfarm.worker.token_proxy import ProxyThread

Durations = Callable[[dict[str, Any]], float]


class SimulatedWorker:
    def __init__(self, durations: Durations, image: Path, video: Path) -> None:
        self.durations = durations
        self.files = {"image.png": image.read_bytes(), "video.mp4": video.read_bytes()}
        self.history: dict[str, Any] = {}
        self.queue: list[tuple[str, dict[str, Any], str]] = []
        self.running: str | None = None
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.busy_seconds = 0.0
        self._wake: asyncio.Event | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/system_stats", lambda r: web.json_response({"system": {"comfyui_version": "sim"}}))
        app.router.add_post("/prompt", self.prompt)
        app.router.add_get("/history/{id}", self.get_history)
        app.router.add_get("/queue", self.get_queue)
        app.router.add_post("/upload/image", self.upload)
        app.router.add_get("/view", self.view)
        app.router.add_get("/ws", self.ws)
        app.on_startup.append(self._start_loop)
        return app

    async def _start_loop(self, _app: web.Application) -> None:
        self._wake = asyncio.Event()
        asyncio.get_running_loop().create_task(self._execute())

    async def prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.queue.append((prompt_id, body["prompt"], body.get("client_id", "")))
        assert self._wake is not None
        self._wake.set()
        return web.json_response({"prompt_id": prompt_id, "number": len(self.history), "node_errors": {}})

    async def _execute(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                prompt_id, graph, client_id = self.queue.pop(0)
                self.running = prompt_id
                seconds = self.durations(graph)
                began = time.monotonic()
                await asyncio.sleep(seconds)
                self.busy_seconds += time.monotonic() - began
                self.running = None
                self.history[prompt_id] = {
                    "status": {"status_str": "success", "messages": []},
                    "outputs": self._outputs(graph),
                }
                await self._send(client_id, {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}})

    def _outputs(self, graph: dict[str, Any]) -> dict[str, Any]:
        outputs = {}
        for node_id, node in graph.items():
            name = {"SaveImage": "image.png", "SaveVideo": "video.mp4"}.get(node["class_type"])
            if name:
                outputs[node_id] = {"images": [{"filename": name, "subfolder": "", "type": "output"}]}
        return outputs

    async def _send(self, client_id: str, message: dict[str, Any]) -> None:
        socket = self.sockets.get(client_id)
        if socket is not None and not socket.closed:
            await socket.send_str(json.dumps(message))

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def get_queue(self, _request: web.Request) -> web.Response:
        running = [[0, self.running, {}, {}, []]] if self.running else []
        return web.json_response(
            {"queue_running": running, "queue_pending": [[0, p, {}, {}, []] for p, _, _ in self.queue]}
        )

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        field = form["image"]
        return web.json_response({"name": getattr(field, "filename", "x.png"), "subfolder": "sim", "type": "input"})

    async def view(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.query["filename"]])

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        client_id = request.query.get("clientId", "")
        self.sockets[client_id] = socket
        await socket.send_str(json.dumps({"type": "status", "data": {"sid": client_id}}))
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
        return socket


class _App:
    """Adapter so ProxyThread can serve any aiohttp app."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def app(self) -> web.Application:
        return self._app


def serve(worker: SimulatedWorker) -> ProxyThread:
    return ProxyThread(_App(worker.app())).start()  # type: ignore[arg-type]
