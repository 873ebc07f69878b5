"""A bearer-token gate in front of a ComfyUI bound to localhost (ComfyUI has no auth of its own).

Every HTTP request and the `/ws` upgrade must carry `Authorization: Bearer <token>`; the token is compared in
constant time, and anything else gets 401 before a byte reaches ComfyUI. Runs on the worker:

    python -m vidfarm.worker.token_proxy --upstream http://127.0.0.1:8188 --port 8288  (token: VIDFARM_WORKER_TOKEN)

`GET /vidfarm/boot` (same token) answers the worker's start-up stage from VIDFARM_BOOT_STATUS (models downloading,
ComfyUI starting: vidfarm.worker.boot_status) itself, so it works before ComfyUI does; worker-start starts the proxy
first for that reason.

With `--idle-shutdown SECONDS` (or VIDFARM_IDLE_SHUTDOWN_S) a watchdog destroys this worker once no authenticated
request or WebSocket message arrived for that long: by default its own instance with the provider's scoped key
(RunPod or Vast.ai, vidfarm.worker.self_destroy); `--shutdown-command CMD` (or VIDFARM_SHUTDOWN_COMMAND) runs CMD
instead, for other hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import os
import threading
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from vidfarm.errors import ConfigError, ProcessStartFailed
from vidfarm.worker import boot_status, self_destroy
from vidfarm.worker.watchdog import Watchdog, run_command

BOOT_PATH = "/vidfarm/boot"

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "content-length",
}


class TokenProxy:
    def __init__(
        self, upstream: str, token: str, *, watchdog: Watchdog | None = None, boot_file: Path | None = None
    ) -> None:
        if len(token) < 16:
            raise ConfigError("the worker token must be at least 16 characters (use secrets.token_urlsafe())")
        self.upstream = upstream.rstrip("/")
        self._token = token.encode()
        self._session: aiohttp.ClientSession | None = None
        self.watchdog = watchdog
        self.boot_file = boot_file

    def __repr__(self) -> str:
        return f"TokenProxy(upstream={self.upstream!r}, token=<hidden>)"

    def _touch(self) -> None:
        if self.watchdog is not None:
            self.watchdog.touch()

    def authorised(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self._token)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_cleanup.append(self._close)
        if self.watchdog is not None:
            app.cleanup_ctx.append(self._watch)
        return app

    async def _watch(self, _app: web.Application) -> Any:
        assert self.watchdog is not None
        task = asyncio.create_task(self.watchdog.run(interval=1.0))
        yield
        task.cancel()

    async def _close(self, _app: web.Application) -> None:
        if self._session:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.authorised(request):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        self._touch()
        if request.path == BOOT_PATH:
            return web.json_response(boot_status.read(self.boot_file))
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        if request.path == "/ws" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.relay_websocket(request, self._session)
        return await self.relay_http(request, self._session)

    async def forward_body(self, request: web.Request) -> Any:
        """The body sent upstream; a seam for tests that simulate other server versions."""
        return request.content if request.body_exists else None

    async def relay_http(self, request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream = await session.request(
                request.method,
                self.upstream + request.rel_url.path_qs,
                headers=headers,
                data=await self.forward_body(request),
                allow_redirects=False,
            )
        except aiohttp.ClientError:
            return web.json_response({"error": "ComfyUI behind this proxy is not answering"}, status=502)
        async with upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP},
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def relay_websocket(self, request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        try:
            upstream = await session.ws_connect(self.upstream.replace("http", "ws", 1) + request.rel_url.path_qs)
        except aiohttp.ClientError:
            return web.json_response({"error": "ComfyUI behind this proxy is not answering"}, status=502)
        client = web.WebSocketResponse()
        await client.prepare(request)

        async def pump(source: Any, sink: Any) -> None:
            async for message in source:
                self._touch()  # an open authenticated socket with traffic means the master is alive
                if message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                else:
                    break

        tasks = [asyncio.create_task(pump(upstream, client)), asyncio.create_task(pump(client, upstream))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await upstream.close()
        await client.close()
        return client


class ProxyThread:
    """Run a TokenProxy in a background thread (tests, notebooks); `url` once started."""

    def __init__(self, proxy: TokenProxy, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.proxy, self.host, self.port = proxy, host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="token-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise ProcessStartFailed(f"the token proxy did not listen on {self.host}:{self.port} within 10 s")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.proxy.app())
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        server = site._server
        if server is not None and self.port == 0:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--upstream", default="http://127.0.0.1:8188")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8288)
    parser.add_argument("--idle-shutdown", type=float, default=float(os.environ.get("VIDFARM_IDLE_SHUTDOWN_S", 0)))
    parser.add_argument("--shutdown-command", default=os.environ.get("VIDFARM_SHUTDOWN_COMMAND", ""))
    args = parser.parse_args()
    token = os.environ.get("VIDFARM_WORKER_TOKEN", "")
    watchdog = None
    if args.idle_shutdown > 0:
        if args.shutdown_command:
            watchdog = Watchdog(args.idle_shutdown, run_command(args.shutdown_command))
        elif (target := self_destroy.detect()) is not None:
            watchdog = Watchdog(args.idle_shutdown, functools.partial(self_destroy.destroy, target))
        else:
            parser.error(
                "--idle-shutdown needs --shutdown-command (or VIDFARM_SHUTDOWN_COMMAND) where no provider is "
                f"detected: looked for {self_destroy.LOOKED_FOR}"
            )
    boot_file = os.environ.get(boot_status.ENV)
    proxy = TokenProxy(args.upstream, token, watchdog=watchdog, boot_file=Path(boot_file) if boot_file else None)
    web.run_app(proxy.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
