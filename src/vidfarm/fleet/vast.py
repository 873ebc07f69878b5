"""Vast.ai through its `vastai` SDK, behind the GpuProvider interface.

The account API key lives here, on the master, and is never logged or sent to a worker; each worker gets its own
token in its start-up environment. Tests point `server_url` at a local fake of the Vast.ai REST API.
"""

from __future__ import annotations

from typing import Any

import requests

from vidfarm.errors import ProviderError
from vidfarm.fleet.provider import Instance, LaunchSpec, Offer, OfferQuery

API_URL = "https://console.vast.ai"
API_URL_ENV = "VAST_URL"  # the API base override (master: configure.py; worker: its self-destroy), tests' fake


def offer_query_text(query: OfferQuery) -> str:
    """The SDK's query grammar (`field op value`, spaces in names as `_`)."""
    parts = [
        "num_gpus=1",
        f"gpu_ram>={query.min_vram_gb:g}",
        f"dph_total<={query.max_price_per_hour:g}",
        f"reliability>={query.min_reliability:g}",
        f"inet_down>={query.min_inet_down_mbps:g}",
        f"cuda_vers>={query.min_cuda:g}",
        f"disk_space>={query.min_disk_gb:g}",
        "direct_port_count>=1",
    ]
    if query.gpu_name:
        parts.insert(1, "gpu_name=" + query.gpu_name.replace(" ", "_"))
    return " ".join(parts)


def _offer(row: dict[str, Any]) -> Offer:
    return Offer(
        id=int(row["id"]),
        gpu_name=str(row.get("gpu_name", "?")),
        price_per_hour=float(row.get("dph_total", 0.0)),
        vram_gb=float(row.get("gpu_ram", 0.0)) / 1000.0,
        reliability=float(row.get("reliability2", row.get("reliability", 0.0)) or 0.0),
        inet_down_mbps=float(row.get("inet_down", 0.0) or 0.0),
        cuda=float(row.get("cuda_max_good", 0.0) or 0.0),
        location=str(row.get("geolocation", "") or ""),
    )


def _status(row: dict[str, Any]) -> tuple[str, bool]:
    actual = str(row.get("actual_status") or "loading")
    intended = str(row.get("intended_status") or "running")
    preempted = intended == "running" and actual in ("stopped", "exited", "offline")
    return actual, preempted


def _url(row: dict[str, Any], port: int) -> str:
    mapped = (row.get("ports") or {}).get(f"{port}/tcp") or []
    address = row.get("public_ipaddr")
    if not mapped or not address:
        return ""
    return f"http://{str(address).strip()}:{mapped[0]['HostPort']}"


class VastProvider:
    """GpuProvider over the vastai SDK. `server_url` and `retry=1` are for tests against a local fake."""

    def __init__(self, api_key: str, *, server_url: str | None = None, retry: int = 3, port: int = 8288) -> None:
        if not api_key:
            raise ProviderError("no Vast.ai API key: set VAST_API_KEY on the master (never on a worker)")
        from vastai import VastAI  # imported here: it adds a log handler and reads VAST_URL at import

        self._sdk = VastAI(api_key=api_key, server_url=server_url, retry=retry)
        self.port = port

    def __repr__(self) -> str:
        return "VastProvider(api_key=<hidden>)"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            raise ProviderError(f"Vast.ai refused to {what} (HTTP {code}); check the API key and balance") from None
        except requests.RequestException as exc:
            raise ProviderError(f"Vast.ai did not answer while trying to {what}: {type(exc).__name__}") from None

    def search_offers(self, query: OfferQuery) -> list[Offer]:
        rows = self._call(
            "search offers", self._sdk.search_offers, offer_query_text(query), order="dph_total", limit=query.limit
        )
        offers = [_offer(r) for r in rows or []]
        return sorted(
            (o for o in offers if o.price_per_hour <= query.max_price_per_hour), key=lambda o: o.price_per_hour
        )

    def create(self, offer: Offer, spec: LaunchSpec) -> str:
        env = {**spec.env, f"-p {spec.port}:{spec.port}": "1"}
        answer = self._call(
            f"rent offer {offer.id}",
            self._sdk.create_instance,
            offer.id,
            image=spec.image,
            disk=spec.disk_gb,
            env=env,
            label=spec.label,
            cancel_unavail=True,
        )
        if not isinstance(answer, dict) or not answer.get("success") or "new_contract" not in answer:
            raise ProviderError(f"Vast.ai did not rent offer {offer.id} (it may have been taken): try the next one")
        return str(answer["new_contract"])

    def list_labelled(self, prefix: str) -> list[Instance]:
        rows = self._call("list instances", self._sdk.show_instances)
        found = []
        for row in rows or []:
            label = str(row.get("label") or "")
            if not label.startswith(prefix):
                continue
            status, preempted = _status(row)
            found.append(
                Instance(
                    id=str(row["id"]),
                    label=label,
                    status=status,
                    price_per_hour=float(row.get("dph_total", 0.0) or 0.0),
                    url=_url(row, self.port),
                    preempted=preempted,
                )
            )
        return found

    def destroy(self, instance_id: str) -> None:
        self._call(f"destroy instance {instance_id}", self._sdk.destroy_instance, int(instance_id))
