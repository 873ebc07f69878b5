"""RunPod pods over its REST API (`https://rest.runpod.io/v1`), behind the GpuProvider interface.

Not the `runpod` SDK: it speaks GraphQL built from unescaped f-strings (an env value with `"` breaks it) and its
`cryptography` pin conflicts with `vastai`'s (reference/gpu-clouds.md §2-3). Prices come from the GraphQL
`gpuTypes` query, a fixed text with no user input in it. Both base URLs are settings, so tests point them at a
local fake. A worker is reached on its public IP and the TCP port RunPod maps to 8288 (the token proxy), never
through RunPod's HTTPS proxy (public, 100 s response limit).
"""

from __future__ import annotations

from typing import Any

import requests

from vidfarm.errors import ProviderError
from vidfarm.fleet.provider import Instance, LaunchSpec, Offer, OfferQuery

REST_URL = "https://rest.runpod.io/v1"
REST_URL_ENV = "RUNPOD_REST_URL"  # a worker's self-destroy reads its REST base here (tests: a local fake)
GRAPHQL_URL = "https://api.runpod.io/graphql"
GPU_TYPES_QUERY = "query GpuTypes { gpuTypes { id displayName memoryInGb securePrice communityPrice } }"
LOADING = ("CREATED", "STARTING", "")


def _status(pod: dict[str, Any], port: int) -> tuple[str, str]:
    """(status, url): `running` only once the pod has a public IP and our port mapped."""
    desired = str(pod.get("desiredStatus") or "")
    if desired in ("EXITED", "TERMINATED"):
        return "exited", ""
    mapped = (pod.get("portMappings") or {}).get(str(port))
    address = pod.get("publicIp")
    if desired == "RUNNING" and mapped and address:
        return "running", f"http://{str(address).strip()}:{int(mapped)}"
    return "loading", ""


class RunPodProvider:
    """GpuProvider over RunPod's REST API. `cloud_type` SECURE (the default; Community takes no new hosts)."""

    def __init__(
        self,
        api_key: str,
        *,
        rest_url: str = REST_URL,
        graphql_url: str = GRAPHQL_URL,
        cloud_type: str = "SECURE",
        port: int = 8288,
        timeout: float = 30.0,
    ) -> None:
        if not api_key:
            raise ProviderError("no RunPod API key: set it on the master (never on a worker)")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.rest_url, self.graphql_url = rest_url.rstrip("/"), graphql_url
        self.cloud_type, self.port, self.timeout = cloud_type, port, timeout
        self._gpu_ids: dict[int, str] = {}  # Offer.id -> RunPod gpuTypeId (a string like "NVIDIA GeForce RTX 4090")

    def __repr__(self) -> str:
        return "RunPodProvider(api_key=<hidden>)"

    def _request(self, what: str, method: str, url: str, **kwargs: Any) -> Any:
        try:
            answer = requests.request(method, url, headers=self._headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ProviderError(f"RunPod did not answer while trying to {what}: {type(exc).__name__}") from None
        if answer.status_code >= 400:
            raise ProviderError(
                f"RunPod refused to {what} (HTTP {answer.status_code}); check the API key, balance and GPU type"
            )
        return answer.json() if answer.content else None

    def search_offers(self, query: OfferQuery) -> list[Offer]:
        data = self._request("list GPU prices", "POST", self.graphql_url, json={"query": GPU_TYPES_QUERY})
        price_key = "communityPrice" if self.cloud_type == "COMMUNITY" else "securePrice"
        offers = []
        for n, row in enumerate(((data or {}).get("data") or {}).get("gpuTypes") or [], start=1):
            price = row.get(price_key)
            vram = float(row.get("memoryInGb") or 0)
            name = str(row.get("displayName") or row.get("id") or "?")
            if not price or vram < query.min_vram_gb or float(price) > query.max_price_per_hour:
                continue
            if query.gpu_name and query.gpu_name not in (name, str(row.get("id"))):
                continue
            self._gpu_ids[n] = str(row["id"])
            offers.append(Offer(id=n, gpu_name=name, price_per_hour=float(price), vram_gb=vram, reliability=1.0))
        return sorted(offers, key=lambda o: o.price_per_hour)[: query.limit]

    def create(self, offer: Offer, spec: LaunchSpec) -> str:
        gpu = self._gpu_ids.get(offer.id)
        if gpu is None:
            raise ProviderError(f"offer {offer.id} is not from the last RunPod price list: search again")
        body = {
            "name": spec.label,
            "imageName": spec.image,
            "gpuTypeIds": [gpu],
            "gpuCount": 1,
            "cloudType": self.cloud_type,
            "containerDiskInGb": spec.disk_gb,
            "volumeInGb": 0,  # a volume keeps billing when stopped; workers are destroyed, never stopped
            "ports": [f"{spec.port}/tcp"],
            "env": spec.env,
        }
        pod = self._request(f"rent a {offer.gpu_name} pod", "POST", f"{self.rest_url}/pods", json=body)
        if not isinstance(pod, dict) or not pod.get("id"):
            raise ProviderError(f"RunPod did not create a {offer.gpu_name} pod (none free?): try the next offer")
        return str(pod["id"])

    def list_labelled(self, prefix: str) -> list[Instance]:
        pods = self._request("list pods", "GET", f"{self.rest_url}/pods")
        found = []
        for pod in pods or []:
            name = str(pod.get("name") or "")
            if not name.startswith(prefix):
                continue
            status, url = _status(pod, self.port)
            found.append(Instance(str(pod["id"]), name, status, float(pod.get("costPerHr") or 0.0), url))
        return found

    def destroy(self, instance_id: str) -> None:
        try:
            self._request(f"terminate pod {instance_id}", "DELETE", f"{self.rest_url}/pods/{instance_id}")
        except ProviderError as exc:
            if "HTTP 404" not in str(exc):  # already gone is what we wanted
                raise
