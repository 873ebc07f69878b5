"""What a simulated day of bursty phone requests costs on rented GPUs, against the ideal busy-only cost.

The real Autoscaler (idle timeout 60 s, destroy never stop, one new worker per 2 queued segments, at most 4 workers,
budget caps) drives a simulated Vast.ai (storage billed from creation, GPU price from `running`, image pull while
`loading`, model download paid at the GPU price) through a day with a manual clock. Baselines in the same run:
- ideal: every segment's GPU seconds x the cheapest offer, nothing else (no boot, no idle);
- always-on: the same 4 workers kept all day (what a fixed pool costs).
Also the share of segments whose first worker was already warm, and the modelled cold start (image pull + model
download at the speeds in docs/../reference/video.md and gpu-clouds.md) against the 10-minute budget.

    .venv/bin/python benchmarks/fleet_cost.py
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from vidfarm.comfy.local import REPO
from vidfarm.fleet.autoscaler import FleetPolicy
from vidfarm.fleet.budget import Budget
from vidfarm.fleet.provider import ManualClock, Offer
from vidfarm.workflow.declaration import find_declaration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test-only simulated parts live in tests/support
from tests.support.fleet_sim import SimulatedProvider, bursty_day, simulate_day  # noqa: E402

OFFERS = [Offer(1, "RTX 4090", 0.45, 24, 0.99, 2000, 12.8), Offer(2, "RTX 4090", 0.52, 24, 0.99, 2000, 12.8)]
IMAGE_GB = 12.0  # worker image (CUDA torch runtime + ComfyUI), within the reference's 10-15 GB
WAN14_GB = 38.0  # Wan 2.2 14B FLF2V stack (video.md)
SPEEDS_MB_S = {"slow host (50 MB/s, observed)": 50.0, "inet_down >= 2 Gb/s (250 MB/s)": 250.0}
BUDGET_S = 600.0


def day(per_burst: tuple[int, int], label: str) -> None:
    provider = SimulatedProvider(ManualClock(), list(OFFERS), pull_s=120.0, download_s=152.0)
    policy = FleetPolicy(
        image="worker", budget=Budget(per_hour=3.0, per_day=30.0), max_workers=4, idle_timeout_s=60.0,
        tick_s=10.0, jobs_per_worker=2,
    )  # fmt: skip
    report = simulate_day(policy, bursty_day(per_burst=per_burst), provider=provider, preempt_at=(13.2 * 3600,))
    always_on = 4 * OFFERS[0].price_per_hour * 24
    print(f"{label}: {report.jobs} segments, {provider.creates} rentals, {report.requeued} re-queued after pre-emption")
    print(f"  ideal busy-only ${report.ideal:7.2f}   autoscaled ${report.billed:7.2f}   always-on 4 ${always_on:7.2f}")
    print(f"  ratio autoscaled / ideal: {report.billed / report.ideal:.3f}  (target <= 1.10)")
    print(f"  ratio always-on / ideal:  {always_on / report.ideal:.3f}")
    print(f"  idle spend / busy spend:  {report.idle / report.busy:.3f}  (test requires < 0.10)")
    print(f"  warm first worker:        {report.warm_first / report.jobs:.0%} of segments")
    print(f"  max spend in any hour ${report.max_hour:.2f} (cap 3.00), day ${report.max_day:.2f} (cap 30.00), "
          f"orphans left {report.orphans}")  # fmt: skip


def cold_start() -> None:
    wan5 = sum(m.size for m in find_declaration(REPO / "workflows", "wan22_5b_i2v").models) / 1e9
    print(f"cold start = image pull ({IMAGE_GB:.0f} GB) + models, against the {BUDGET_S / 60:.0f}-minute budget:")
    for name, gb in (("wan22_5b_i2v (declared sizes)", wan5), ("Wan 2.2 14B stack", WAN14_GB)):
        for speed_name, speed in SPEEDS_MB_S.items():
            seconds = (IMAGE_GB + gb) * 1000 / speed
            verdict = "fits" if seconds <= BUDGET_S else "BLOWS the budget"
            print(f"  {name:<30} {gb:5.1f} GB  {speed_name:<31} {seconds / 60:5.1f} min  "
                  f"ratio {seconds / BUDGET_S:.3f}  {verdict}")  # fmt: skip


def main() -> None:
    logging.disable(logging.WARNING)
    day((3, 6), "busy day (9 bursts of 3-6 requests x 6 segments)")
    day((2, 5), "quiet day (9 bursts of 2-5 requests x 6 segments)")
    cold_start()


if __name__ == "__main__":
    main()
