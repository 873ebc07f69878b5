"""A dead-man switch for a rented worker: shut the instance down when nothing authenticated arrived for a while.

The token proxy touches the watchdog on every authenticated request and WebSocket message; `on_expire` runs once
(on the worker: a command that destroys the instance with its own scoped key, so a crashed master cannot leave it
billing). The clock is injectable so tests move time by hand.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import subprocess
import time
from collections.abc import Callable

from vidfarm.errors import ConfigError

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(
        self, idle_s: float, on_expire: Callable[[], object], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if idle_s <= 0:
            raise ConfigError("the watchdog's idle time must be positive (seconds)")
        self.idle_s, self.on_expire, self.clock = idle_s, on_expire, clock
        self.last = clock()
        self.fired = False

    def touch(self) -> None:
        self.last = self.clock()

    def idle_for(self) -> float:
        return self.clock() - self.last

    def check(self) -> bool:
        """Fire `on_expire` (once) if idle too long; True once it has fired."""
        if not self.fired and self.idle_for() >= self.idle_s:
            self.fired = True
            log.warning("no authenticated request for %.0f s: shutting this worker down", self.idle_for())
            self.on_expire()
        return self.fired

    async def run(self, *, interval: float = 5.0) -> None:
        while not self.check():
            await asyncio.sleep(min(interval, self.idle_s / 4))


def run_command(command: str) -> Callable[[], None]:
    """An `on_expire` that runs a shell-free command line (e.g. the provider's self-destroy call)."""

    def fire() -> None:
        subprocess.run(shlex.split(command), check=False, timeout=120)

    return fire
