"""Cancel on servers with /api/jobs (newest ComfyUI; not installable here), against a local fake of that route."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vidfarm.comfy import ComfyClient


class NewestComfy(BaseHTTPRequestHandler):
    posted: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, body: object, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/system_stats":
            self._json({"system": {"comfyui_version": "0.38.1"}, "devices": []})
        elif self.path.startswith("/api/jobs"):
            self._json({"jobs": [], "pagination": {"offset": 0, "limit": 1, "total": 0, "has_more": False}})
        elif self.path == "/features":
            self._json({"max_upload_size": 1234})
        else:
            self._json({}, 404)

    def do_POST(self) -> None:  # noqa: N802
        NewestComfy.posted.append(self.path)
        self._json({"cancelled": True})


@pytest.fixture
def newest() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NewestComfy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_features_and_cancel_use_the_jobs_api(newest: str) -> None:
    client = ComfyClient(newest)
    features = client.features()
    assert (features.version, features.jobs_api, features.max_upload_size, features.legacy) == (
        "0.38.1",
        True,
        1234,
        False,
    )
    client.cancel("6f1c1d1e-0000-4000-8000-000000000001")
    # one atomic cancel; no /queue delete and no /interrupt that could hit someone else's prompt
    assert NewestComfy.posted == ["/api/jobs/6f1c1d1e-0000-4000-8000-000000000001/cancel"]
