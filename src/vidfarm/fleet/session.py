"""Renting GPUs by hand from a notebook (notebooks/03_rent_gpus): pick an offer, see the price, start workers,
run a pipeline notebook on them, stop. The same object backs the widgets and the papermill run.

The Vast.ai key is read from the environment (VAST_API_KEY), never taken as a notebook parameter, so it never
lands in an executed notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidfarm.errors import ConfigError
from vidfarm.fleet.autoscaler import Autoscaler
from vidfarm.fleet.configure import vast_autoscaler
from vidfarm.fleet.pool import RentedPool
from vidfarm.fleet.provider import Offer
from vidfarm.jobs.batch import BatchRunner


@dataclass
class RentSession:
    workflows: list[str]
    workflows_dir: Path
    out_dir: Path
    gpu_name: str = ""
    size: int = 1
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    offers: list[Offer] = field(default_factory=list)
    pool: RentedPool | None = None
    scaler: Autoscaler | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def _scaler(self) -> Autoscaler:
        if self.scaler is None:
            self.scaler = vast_autoscaler(
                self.workflows,
                workflows_dir=self.workflows_dir,
                max_workers=self.size,
                env=self.env,
                ledger_path=self.out_dir / "ledger.jsonl",
                gpu_name=self.gpu_name,
            )
        return self.scaler

    def search(self) -> list[Offer]:
        scaler = self._scaler()
        self.offers = scaler.provider.search_offers(scaler.policy.query)
        return self.offers

    def price_text(self, offer: Offer) -> str:
        hourly = offer.price_per_hour * self.size
        each = f"${offer.price_per_hour:.3f}/h"
        return f"{self.size} x {offer.gpu_name} at {each} = ${hourly:.2f}/h (${hourly / 60:.3f}/min)"

    def start(self, offer: Offer, *, ready_timeout_s: float = 1800.0, poll_s: float = 10.0) -> list[dict[str, str]]:
        """Rent `size` workers no dearer than `offer` (same GPU model) and wait until they are ready."""
        scaler = self._scaler()
        query = replace(scaler.policy.query, gpu_name=offer.gpu_name, max_price_per_hour=offer.price_per_hour)
        scaler.policy = replace(scaler.policy, query=query)
        self.pool = RentedPool(scaler, size=self.size, ready_timeout_s=ready_timeout_s, poll_s=poll_s)
        self.pool.__enter__()
        return [{"name": e["name"], "url": e["url"]} for e in self.pool.entries()]  # tokens stay hidden

    def run(self, notebook: Path, parameters: dict[str, Any]) -> dict[str, Any]:
        if self.pool is None:
            raise ConfigError("no workers yet: call start_workers() (or run the notebook's rent cell) first")
        runner = BatchRunner(notebook, self.out_dir, pool=self.pool)
        row = runner.run_all([parameters])[0]
        self.rows.append(row)
        return row

    def stop(self) -> float:
        """Destroy every worker; returns what the session cost so far."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.scaler is None:
            return 0.0
        return self.scaler.ledger.total(self.scaler.clock.now())

    def widgets(self, notebook: Path, parameters: dict[str, Any]) -> Any:
        """Offer picker with its price, and Start / Run / Stop buttons, for use in JupyterLab."""
        import ipywidgets as w

        picker = w.Dropdown(options=[(o.describe(), i) for i, o in enumerate(self.offers)], description="offer")
        price = w.HTML()
        out = w.Output()
        buttons = [w.Button(description=d) for d in ("Start", "Run", "Stop")]

        def show_price(_: Any = None) -> None:
            if self.offers:
                price.value = f"<b>{self.price_text(self.offers[picker.value or 0])}</b>"

        def act(kind: str) -> Any:
            def click(_: Any) -> None:
                with out:
                    if kind == "Start":
                        print("ready:", self.start(self.offers[picker.value or 0]))
                    elif kind == "Run":
                        row = self.run(notebook, parameters)
                        print(row["status"], f"{row['seconds']:.0f} s", f"${row['cost']:.3f}", row.get("error", ""))
                    else:
                        print(f"stopped; session cost ${self.stop():.3f}")

            return click

        picker.observe(show_price, names="value")
        for button in buttons:
            button.on_click(act(button.description))
        show_price()
        return w.VBox([picker, price, w.HBox(buttons), out])
