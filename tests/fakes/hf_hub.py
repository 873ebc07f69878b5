"""A local stand-in for the Hugging Face hub's resolve endpoint (offline-testing.md §2), serving generated files.

HEAD/GET `/{org}/{name}/resolve/{rev}/{path}` answer with X-Repo-Commit, ETag and Content-Length; Range requests
get 206; `cut_first` files send half their body on the first GET and drop the connection; unknown files get
404 + X-Error-Code: EntryNotFound. Every request is logged (method, path, Range).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    files: dict[str, bytes] = field(default_factory=dict)  # "org/name/path" -> content
    cut_first: set[str] = field(default_factory=set)
    log: list[tuple[str, str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def gets(self, name: str) -> list[tuple[str, str, str]]:
        return [entry for entry in self.log if entry[0] == "GET" and entry[1].endswith(name)]

    def start(self) -> FakeHub:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.hub = self  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined,no-any-return]

    def log_message(self, *args: Any) -> None:
        pass

    def _lookup(self) -> tuple[str, bytes | None]:
        repo, _, rest = self.path.partition("/resolve/")
        _rev, _, file_path = rest.partition("/")
        key = f"{repo.strip('/')}/{file_path}"
        return key, self.hub.files.get(key)

    def _headers(self, status: int, content: bytes, length: int, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.send_header("Content-Length", str(length))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()

    def _missing(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "EntryNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802
        self.hub.log.append(("HEAD", self.path, self.headers.get("Range", "")))
        key, content = self._lookup()
        if content is None:
            return self._missing()
        self._headers(200, content, len(content), {})

    def do_GET(self) -> None:  # noqa: N802
        self.hub.log.append(("GET", self.path, self.headers.get("Range", "")))
        key, content = self._lookup()
        if content is None:
            return self._missing()
        start = int(self.headers.get("Range", "bytes=0-")[6:].split("-")[0] or 0)
        body = content[start:]
        if start:
            extra = {"Content-Range": f"bytes {start}-{len(content) - 1}/{len(content)}"}
            self._headers(206, content, len(body), extra)
        else:
            self._headers(200, content, len(body), {})
        if key in self.hub.cut_first:
            self.hub.cut_first.discard(key)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)
