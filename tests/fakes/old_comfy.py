"""A fake ComfyUI of a version that cannot be installed here, answering only what the client asks.

    OldComfy(version=None)                         a 2024 server: no comfyui_version, bare HTTP 500 for an unknown node
    OldComfy(version="0.5.1", jobs_api=True, cancel_status=404)   2025-12 to 2026-06: /api/jobs but no jobs cancel route

Every POST is recorded in `posted` as (path, JSON body or None), so tests assert on what reached the server.
`accepted` says where each accepted prompt goes, one entry per POST /prompt in order ("pending", "running", or
"forget": as a restarted server that lost it); with none left a prompt goes nowhere. `/history` lists nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CRASH = "500 Internal Server Error\n\nServer got itself in trouble"


@dataclass
class OldComfy:
    version: str | None = None
    jobs_api: bool = False
    cancel_status: int = 404
    cancel_answer: dict[str, Any] = field(default_factory=lambda: {"cancelled": False})
    classes: dict[str, Any] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    posted: list[tuple[str, Any]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OldComfy:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self.reply(*fake.get(self.path))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.posted.append((self.path, body))
                self.reply(*fake.post(self.path, body))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def get(self, path: str) -> tuple[int, Any]:
        if path == "/system_stats":
            system = {"os": "posix", "python_version": "3.10"}
            if self.version:
                system["comfyui_version"] = self.version
            return 200, {"system": system, "devices": []}
        if path.startswith("/api/jobs"):
            return (200, {"jobs": []}) if self.jobs_api else (404, "404: Not Found")
        if path == "/object_info":
            return 200, self.classes
        if path.startswith("/history/"):
            return 200, {}
        if path == "/queue":
            return 200, {
                "queue_running": [[0, pid, {}, {}, []] for pid in self.running],
                "queue_pending": [[1, pid, {}, {}, []] for pid in self.pending],
            }
        return 404, "404: Not Found"

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        if path == "/prompt":
            graph = (body or {}).get("prompt", {})
            if any(node["class_type"] not in self.classes for node in graph.values()):
                return 500, CRASH  # what a pre-V3 server does with an unknown class
            where = self.accepted.pop(0) if self.accepted else "forget"
            if where != "forget":
                getattr(self, where).append(body.get("prompt_id"))
            return 200, {"prompt_id": body.get("prompt_id"), "number": 0, "node_errors": {}}
        if path.startswith("/api/jobs/") and path.endswith("/cancel"):
            if self.cancel_status != 200:
                return self.cancel_status, f"{self.cancel_status}: no such route"
            return 200, self.cancel_answer
        return 200, ""
