"""The one way a test waits: on a condition, with one generous deadline, never on the wall clock.

Tests never assert how long something took (that is a benchmark's job, `benchmarks/`); they wait until what they
expect has happened. The deadline only turns a hang into a failure that says what never happened, so it is
generous (a 2-core machine with other work beside it must pass): `VIDFARM_TEST_WAIT_SCALE` widens every deadline
at once on a slower machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 240.0


def deadline_s(timeout: float = DEFAULT_TIMEOUT_S) -> float:
    """A wait's bound in seconds, widened by VIDFARM_TEST_WAIT_SCALE (default 1)."""
    return timeout * float(os.environ.get("VIDFARM_TEST_WAIT_SCALE", "1"))


def wait_for(
    condition: Callable[[], T | None],
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    every: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
    describe: Callable[[], str] | None = None,
) -> T:
    """Call `condition` until it returns something truthy, and return that.

    `what` names the awaited event for the failure message; exceptions of the `ignore` types count as "not yet"
    (a server still starting); `describe` adds what was seen instead when the deadline passes.
    """
    end = time.monotonic() + deadline_s(timeout)
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignore as exc:
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= end:
            seen = f"; seen: {describe()}" if describe else ""
            error = f"; last error: {last_error!r}" if last_error else ""
            raise AssertionError(f"never happened within {deadline_s(timeout):.0f} s: {what}{seen}{error}")
        time.sleep(every)


def hold(condition: Callable[[], object], *, at_most: float, every: float = 0.5) -> bool:
    """Keep an injected fault going until `condition` is true or `at_most` seconds have passed; True when the
    condition ended it.

    This is the length of a fault (a worker kept stopped for a minute unless the job nears its end first), not a
    wait for an outcome: a test must pass whichever ended it, so the bound is not widened by the scale.
    """
    end = time.monotonic() + at_most
    while not condition():
        if time.monotonic() >= end:
            return False
        time.sleep(every)
    return True
