"""Build a Vast.ai autoscaler from settings (environment variables on the master, or notebook widgets).

VAST_API_KEY       the account key (master only; never logged, never sent to a worker)
VAST_URL           API base URL (tests point it at a local fake); default the SDK's own
VIDFARM_WORKER_IMAGE   the worker image (docker/worker.Dockerfile), e.g. ghcr.io/you/vidfarm-worker:0.1
VIDFARM_MAX_PRICE  $/hour cap per worker offer (default 0.8)
VIDFARM_BUDGET_HOUR / VIDFARM_BUDGET_DAY   fleet-wide caps in dollars (default 4 / 40)
HF_TOKEN           read-only Hugging Face token passed to workers for gated model repos (optional)
VIDFARM_FLEET_LABEL    label prefix of this master's workers (default vidfarm-worker). Orphan cleanup destroys
                   every instance with this prefix it does not own: give concurrent masters/users their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from vidfarm.fleet.autoscaler import Autoscaler, FleetPolicy
from vidfarm.fleet.budget import Budget
from vidfarm.fleet.ledger import Ledger
from vidfarm.fleet.pool import http_ready, node_classes_for
from vidfarm.fleet.provider import OfferQuery, SystemClock
from vidfarm.fleet.vast import API_URL_ENV, VastProvider
from vidfarm.worker.models_fetch import models_for

DEFAULT_IMAGE = "ghcr.io/vidfarm/worker:0.1"


def vast_autoscaler(
    workflows: Sequence[str],
    *,
    workflows_dir: str | Path,
    max_workers: int = 2,
    env: Mapping[str, str] | None = None,
    ledger_path: str | Path | None = None,
    gpu_name: str = "",
) -> Autoscaler:
    settings = os.environ if env is None else env
    provider = VastProvider(settings.get("VAST_API_KEY", ""), server_url=settings.get(API_URL_ENV) or None)
    worker_env = {"VIDFARM_WORKFLOWS": ",".join(workflows)}
    if settings.get("HF_TOKEN"):
        worker_env["HF_TOKEN"] = settings["HF_TOKEN"]
    policy = FleetPolicy(
        image=settings.get("VIDFARM_WORKER_IMAGE", DEFAULT_IMAGE),
        budget=Budget(
            per_hour=float(settings.get("VIDFARM_BUDGET_HOUR", "4")),
            per_day=float(settings.get("VIDFARM_BUDGET_DAY", "40")),
        ),
        query=OfferQuery(gpu_name=gpu_name, max_price_per_hour=float(settings.get("VIDFARM_MAX_PRICE", "0.8"))),
        label_prefix=settings.get("VIDFARM_FLEET_LABEL", "vidfarm-worker"),
        max_workers=max_workers,
        worker_env=worker_env,
    )
    return Autoscaler(
        provider,
        policy,
        clock=SystemClock(),
        ledger=Ledger(ledger_path),
        ready_check=http_ready(
            models_for(workflows, workflows_dir), node_classes=node_classes_for(workflows, workflows_dir)
        ),
    )
