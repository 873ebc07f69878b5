"""The small interface every GPU rental provider implements (Vast.ai now, RunPod later), and a clock.

Everything the fleet creates carries a label starting with its prefix, so a fresh master can find (and destroy)
instances a crashed one left behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OfferQuery:
    """What a worker needs: one GPU of this model (or any), enough VRAM, a price cap, a fast reliable host."""

    gpu_name: str = ""
    min_vram_gb: float = 24.0
    max_price_per_hour: float = 1.0
    min_reliability: float = 0.98
    min_inet_down_mbps: float = 1000.0
    min_cuda: float = 12.4
    min_disk_gb: float = 100.0
    limit: int = 10


@dataclass(frozen=True)
class Offer:
    id: int
    gpu_name: str
    price_per_hour: float
    vram_gb: float = 0.0
    reliability: float = 0.0
    inet_down_mbps: float = 0.0
    cuda: float = 0.0
    location: str = ""

    def describe(self) -> str:
        return (
            f"#{self.id} {self.gpu_name} {self.vram_gb:.0f} GB ${self.price_per_hour:.3f}/h "
            f"rel {self.reliability:.3f} down {self.inet_down_mbps:.0f} Mb/s CUDA {self.cuda:g} {self.location}"
        )


@dataclass(frozen=True)
class LaunchSpec:
    """How to start a worker: its image, start-up environment (incl. its own token), disk and label."""

    image: str
    label: str
    env: dict[str, str] = field(default_factory=dict)
    disk_gb: int = 100
    port: int = 8288

    def __repr__(self) -> str:  # the env holds the worker token: never print it
        return f"LaunchSpec(image={self.image!r}, label={self.label!r}, env=<{len(self.env)} hidden>)"


@dataclass(frozen=True)
class Instance:
    """One rented machine as the provider reports it. `status`: loading | running | stopped | exited | gone."""

    id: str
    label: str
    status: str
    price_per_hour: float
    url: str = ""
    preempted: bool = False


class GpuProvider(Protocol):
    def search_offers(self, query: OfferQuery) -> list[Offer]: ...

    def create(self, offer: Offer, spec: LaunchSpec) -> str:
        """Rent the offer; returns the new instance id."""
        ...

    def list_labelled(self, prefix: str) -> list[Instance]:
        """Every instance of this account whose label starts with prefix."""
        ...

    def destroy(self, instance_id: str) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock tests and simulations move by hand; `sleep` advances it instantly."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)
