"""The JSON-over-HTTP server the cloud fakes (Vast.ai, RunPod) share: a fake only answers
`handle(method, path, body, headers) -> (status, data)`; `data` None is an empty body (RunPod's 204)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handle = Callable[[str, str, dict[str, Any], Message], tuple[int, Any]]


def serve_json(handle: Handle) -> ThreadingHTTPServer:
    """A started server on a free local port; stop it with `stop_server`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, data = handle(self.command, self.path, json.loads(raw) if raw else {}, self.headers)
            body = b"" if data is None else json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
