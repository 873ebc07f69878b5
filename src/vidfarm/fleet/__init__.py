"""Rented GPU workers: a provider interface (Vast.ai today), an autoscaler with budget caps, and a cost ledger."""

from vidfarm.fleet.provider import GpuProvider, Instance, LaunchSpec, Offer, OfferQuery

__all__ = ["GpuProvider", "Instance", "LaunchSpec", "Offer", "OfferQuery"]
