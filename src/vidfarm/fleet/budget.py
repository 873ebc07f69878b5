"""$/hour and $/day caps checked BEFORE anything is rented, against the worst case.

Each live worker holds a lease: the autoscaler promises to destroy it by `lease_end` unless the lease is renewed,
and renewals pass the same check. The worst case of a calendar window (UTC hour, UTC day) is what the ledger
already spent in it plus every live worker's price until its lease end (or, for a worker whose destroy failed,
until the window ends). Renting or renewing is allowed only if that stays under the cap in every window the new
lease touches, so a slow or failing provider can delay work but not overspend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vidfarm.fleet.ledger import Ledger

HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class Commitment:
    """A live worker's worst-case spend from now: `price_per_hour` until `until` (inf = unknown end)."""

    name: str
    price_per_hour: float
    until: float


@dataclass(frozen=True)
class Budget:
    per_hour: float
    per_day: float

    def windows(self) -> tuple[tuple[float, float], ...]:
        return ((HOUR, self.per_hour), (DAY, self.per_day))

    def worst_case(self, ledger: Ledger, live: Iterable[Commitment], window: tuple[float, float], now: float) -> float:
        start, end = window
        spent = ledger.spent_between(start, min(end, now), now)
        ahead = sum(c.price_per_hour * max(0.0, min(c.until, end) - max(now, start)) / HOUR for c in live)
        return spent + ahead

    def fits(self, ledger: Ledger, live: list[Commitment], extra: Commitment, now: float) -> bool:
        """True when adding `extra` (a new lease, or a renewal replacing the same name) breaks no cap."""
        others = [c for c in live if c.name != extra.name]
        current = next((c for c in live if c.name == extra.name), None)
        start_from = now if current is None else min(now, current.until)
        for length, cap in self.windows():
            first = math.floor(start_from / length) * length
            window_start = first
            while window_start < extra.until:
                window = (window_start, window_start + length)
                if self.worst_case(ledger, [*others, extra], window, now) > cap + 1e-9:
                    return False
                window_start += length
        return True

    def headroom(self, ledger: Ledger, live: list[Commitment], now: float) -> float:
        """Dollars left in the tighter of the current hour and day windows."""
        left = []
        for length, cap in self.windows():
            start = math.floor(now / length) * length
            left.append(cap - self.worst_case(ledger, live, (start, start + length), now))
        return min(left)
