"""A local stand-in for the Vast.ai REST API, answering the vastai SDK's requests with the documented shapes
(offline-testing.md §1): offers, create (PUT /asks/<id>/), list (v1), show, destroy. Every request is logged.

`on_create(instance)` lets a test bring a "worker" up (e.g. a real token proxy in front of a real ComfyUI) and
report its host port; `set_status` moves an instance through loading -> running -> stopped (outbid).
`on_destroy(instance)` stops it again; `billed()` is what the account would be charged (price x seconds from create
to destroy), for tests that hold the master's ledger against the provider's bill.

Like Vast.ai, every instance gets its own key (`row["provider_env"]`: CONTAINER_ID, CONTAINER_API_KEY, and VAST_URL
pointing at this fake): it may only destroy (or show) its own instance, 403 elsewhere. `row["destroyed_by"]` says
who destroyed it ("account" or "self"); `fail_deletes` answers the next DELETEs 500.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.json_http import serve_json, stop_server
from vidfarm.fleet.vast import API_URL_ENV

API_KEY = "test-vast-key-0123456789"


def offer_row(offer_id: int, price: float, gpu: str = "RTX 4090") -> dict[str, Any]:
    return {
        "id": offer_id, "gpu_name": gpu, "num_gpus": 1, "gpu_ram": 24564, "dph_total": price, "reliability2": 0.995,
        "inet_down": 2400.0, "cuda_max_good": 12.8, "geolocation": "Testland", "hosting_type": 0, "disk_space": 200,
    }  # fmt: skip


@dataclass
class FakeVast:
    offers: list[dict[str, Any]] = field(default_factory=lambda: [offer_row(111, 0.42), offer_row(222, 0.55)])
    instances: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    on_create: Callable[[dict[str, Any]], int | None] | None = None
    on_destroy: Callable[[dict[str, Any]], None] | None = None
    destroyed: list[dict[str, Any]] = field(default_factory=list)
    gone_offers: set[int] = field(default_factory=set)
    scoped_keys: dict[str, int] = field(default_factory=dict)  # per-instance key -> its instance (kept after destroy)
    fail_deletes: int = 0
    next_id: int = 4242
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_instance(self, label: str, status: str = "running", price: float = 0.4) -> int:
        instance_id = self.next_id
        self.next_id += 1
        self.instances[instance_id] = {
            "id": instance_id, "label": label, "actual_status": status, "intended_status": "running",
            "cur_state": "running", "dph_total": price, "start_date": time.time(), "extra_env": [],
            "public_ipaddr": "127.0.0.1", "ports": {}, "image_uuid": "img",
        }  # fmt: skip
        key = "vast-instance-" + secrets.token_urlsafe(12)
        self.scoped_keys[key] = instance_id
        self.instances[instance_id]["provider_env"] = {
            "CONTAINER_ID": str(instance_id), "CONTAINER_API_KEY": key, API_URL_ENV: self.url if self.server else "",
        }  # fmt: skip
        return instance_id

    def key_of(self, instance_id: int) -> str:
        return next(key for key, own in self.scoped_keys.items() if own == instance_id)

    def set_status(self, instance_id: int, status: str, *, host_port: int | None = None) -> None:
        row = self.instances[instance_id]
        row["actual_status"] = status
        if host_port is not None:
            row["ports"] = {"8288/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(host_port)}]}

    def create(self, offer_id: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        offer = next((o for o in self.offers if o["id"] == offer_id), None)
        if offer is None or offer_id in self.gone_offers:
            return 400, {"success": False, "error": "no_such_ask", "msg": f"offer {offer_id} is no longer available"}
        instance_id = self.add_instance(body.get("label") or "", "loading", offer["dph_total"])
        row = self.instances[instance_id]
        row["extra_env"] = [[k, v] for k, v in (body.get("env") or {}).items()]
        row["image"] = body.get("image")
        if self.on_create is not None:
            port = self.on_create(row)
            if port:
                self.set_status(instance_id, "running", host_port=port)
        return 200, {"success": True, "new_contract": instance_id}

    def start(self) -> FakeVast:
        self.server = serve_json(self._handle)
        return self

    def _handle(self, method: str, path: str, body: dict[str, Any], headers: Message) -> tuple[int, Any]:
        parsed = urlparse(path)
        auth = headers.get("Authorization", "")
        self.requests.append(
            {"method": method, "path": parsed.path, "query": parse_qs(parsed.query), "body": body, "auth": auth}
        )
        scheme, _, key = auth.partition(" ")
        if scheme == "Bearer" and key in self.scoped_keys:  # an instance's own key: its own instance only
            own = self.scoped_keys[key]
            if parsed.path.rstrip("/") != f"/api/v0/instances/{own}" or method not in ("GET", "DELETE"):
                return 403, {"success": False, "error": "forbidden", "msg": "this key is for another instance"}
            return self.route(method, parsed.path, body, by="self")
        if auth != f"Bearer {API_KEY}":
            return 401, {"success": False, "error": "invalid_api_key"}
        return self.route(method, parsed.path, body)

    def route(self, method: str, path: str, body: dict[str, Any], *, by: str = "account") -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and path == "/api/v0/bundles/":
            cap = body.get("dph_total", {}).get("lte")
            return 200, {"offers": [o for o in self.offers if cap is None or o["dph_total"] <= float(cap)]}
        if method == "PUT" and parts[:3] == ["api", "v0", "asks"]:
            return self.create(int(parts[3]), body)
        if method == "GET" and path == "/api/v1/instances/":
            return 200, {"instances": list(self.instances.values()), "next_token": None}
        if parts[:3] == ["api", "v0", "instances"] and len(parts) == 4:
            instance_id = int(parts[3])
            if method == "GET":
                return 200, {"instances": self.instances.get(instance_id)}
            if method == "DELETE":
                if self.fail_deletes > 0:
                    self.fail_deletes -= 1
                    return 500, {"success": False, "error": "internal_error", "msg": "injected"}
                row = self.instances.pop(instance_id, None)
                if row is None:
                    return 404, {"success": False, "error": "no_such_instance"}
                row["end_date"], row["destroyed_by"] = time.time(), by
                self.destroyed.append(row)
                if self.on_destroy is not None:
                    self.on_destroy(row)
                return 200, {"success": True}
        return 404, {"success": False, "error": f"unknown route {method} {path}"}

    def billed(self, now: float | None = None) -> float:
        """Dollars charged so far: every instance's price from its creation to its destruction (or now)."""
        now = time.time() if now is None else now
        rows = [*self.destroyed, *self.instances.values()]
        return sum((row.get("end_date", now) - row["start_date"]) * row["dph_total"] / 3600 for row in rows)

    def stop(self) -> None:
        stop_server(self.server)
