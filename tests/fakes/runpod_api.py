"""A local stand-in for RunPod's REST API (pods: create, list, get, terminate) and the one GraphQL query the
provider sends (`gpuTypes` prices), with the documented shapes (reference/gpu-clouds.md §2). Every request is logged.

`on_create(pod)` lets a test bring a "worker" up and report the host port mapped to 8288 (the pod then shows
`publicIp` and `portMappings`); `on_destroy(pod)` stops it; `billed()` is the account's charge (costPerHr x seconds
from create to terminate).

Like RunPod, every pod gets its own pod-scoped key (`pod["provider_env"]`: RUNPOD_POD_ID, RUNPOD_API_KEY, and
RUNPOD_REST_URL pointing at this fake): it may only terminate (or read) its own pod, 403 elsewhere.
`pod["destroyed_by"]` says who terminated it ("account" or "self"); `fail_deletes` answers the next DELETEs 500.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import ThreadingHTTPServer
from typing import Any

from tests.fakes.json_http import serve_json, stop_server
from vidfarm.fleet.runpod import REST_URL_ENV

API_KEY = "test-runpod-key-0123456789"


def gpu_type(gpu_id: str, secure: float, *, memory: int = 24, community: float | None = None) -> dict[str, Any]:
    return {"id": gpu_id, "displayName": gpu_id.replace("NVIDIA GeForce ", ""), "memoryInGb": memory,
            "securePrice": secure, "communityPrice": community if community is not None else secure * 0.8}  # fmt: skip


@dataclass
class FakeRunPod:
    gpu_types: list[dict[str, Any]] = field(
        default_factory=lambda: [gpu_type("NVIDIA GeForce RTX 4090", 0.69), gpu_type("NVIDIA RTX A5000", 0.27)]
    )
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    destroyed: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    on_create: Callable[[dict[str, Any]], int | None] | None = None
    on_destroy: Callable[[dict[str, Any]], None] | None = None
    no_capacity: set[str] = field(default_factory=set)
    scoped_keys: dict[str, str] = field(default_factory=dict)  # pod-scoped key -> its pod (kept after terminate)
    fail_deletes: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def rest_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def add_pod(self, name: str, *, cost: float = 0.3, status: str = "RUNNING") -> str:
        pod_id = secrets.token_hex(7)
        self.pods[pod_id] = {
            "id": pod_id, "name": name, "desiredStatus": status, "costPerHr": cost, "publicIp": None,
            "portMappings": {}, "env": {}, "imageName": "img", "gpu": {"id": "?", "count": 1}, "created": time.time(),
        }  # fmt: skip
        key = "rp-pod-" + secrets.token_urlsafe(12)
        self.scoped_keys[key] = pod_id
        self.pods[pod_id]["provider_env"] = {
            "RUNPOD_POD_ID": pod_id,
            "RUNPOD_API_KEY": key,
            REST_URL_ENV: self.rest_url if self.server else "",
        }
        return pod_id

    def key_of(self, pod_id: str) -> str:
        return next(key for key, pod in self.scoped_keys.items() if pod == pod_id)

    def map_port(self, pod_id: str, host_port: int, *, container_port: int = 8288) -> None:
        pod = self.pods[pod_id]
        pod["publicIp"], pod["portMappings"] = "127.0.0.1", {str(container_port): host_port}

    def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        wanted = list(body.get("gpuTypeIds") or [])
        known = {g["id"]: g for g in self.gpu_types}
        chosen = next((known[g] for g in wanted if g in known and g not in self.no_capacity), None)
        if chosen is None:
            return 500, {"error": "There are no longer any instances available with the requested specifications."}
        price = chosen["communityPrice"] if body.get("cloudType") == "COMMUNITY" else chosen["securePrice"]
        pod_id = self.add_pod(str(body.get("name") or ""), cost=price)
        pod = self.pods[pod_id]
        pod.update(env=dict(body.get("env") or {}), imageName=body.get("imageName"), gpu={"id": chosen["id"]})
        pod["ports"] = list(body.get("ports") or [])
        if self.on_create is not None:
            port = self.on_create(pod)
            if port:
                self.map_port(pod_id, port)
        return 201, pod

    def route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["graphql"]:
            if "gpuTypes" not in str(body.get("query")):
                return 400, {"errors": [{"message": "unsupported query in the fake"}]}
            return 200, {"data": {"gpuTypes": self.gpu_types}}
        if parts == ["v1", "pods"]:
            if method == "POST":
                return self.create(body)
            if method == "GET":
                return 200, list(self.pods.values())
        if len(parts) == 3 and parts[:2] == ["v1", "pods"]:
            return self.one_pod(method, parts[2])
        return 404, {"error": f"unknown route {method} {path}"}

    def one_pod(self, method: str, pod_id: str, *, by: str = "account") -> tuple[int, Any]:
        if method == "DELETE" and self.fail_deletes > 0:
            self.fail_deletes -= 1
            return 500, {"error": "internal error (injected)"}
        pod = self.pods.get(pod_id)
        if pod is None:
            return 404, {"error": "pod not found"}
        if method == "GET":
            return 200, pod
        if method != "DELETE":
            return 404, {"error": f"unknown route {method} /v1/pods/{pod_id}"}
        del self.pods[pod_id]
        pod["desiredStatus"], pod["terminated"], pod["destroyed_by"] = "TERMINATED", time.time(), by
        self.destroyed.append(pod)
        if self.on_destroy is not None:
            self.on_destroy(pod)
        return 204, None

    def billed(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        pods = [*self.destroyed, *self.pods.values()]
        return sum((p.get("terminated", now) - p["created"]) * p["costPerHr"] / 3600 for p in pods)

    def start(self) -> FakeRunPod:
        self.server = serve_json(self._handle)
        return self

    def _handle(self, method: str, path: str, body: dict[str, Any], headers: Message) -> tuple[int, Any]:
        auth = headers.get("Authorization", "")
        self.requests.append({"method": method, "path": path, "body": body, "auth": auth})
        path = path.split("?")[0]
        scheme, _, key = auth.partition(" ")
        if scheme == "Bearer" and key in self.scoped_keys:  # a pod's own key: its own pod only
            own = self.scoped_keys[key]
            if path.rstrip("/") != f"/v1/pods/{own}" or method not in ("GET", "DELETE"):
                return 403, {"error": "Forbidden: this pod-scoped key is for another pod"}
            return self.one_pod(method, own, by="self")
        if auth != f"Bearer {API_KEY}":
            return 401, {"error": "Unauthorized"}
        return self.route(method, path, body)

    def stop(self) -> None:
        stop_server(self.server)
