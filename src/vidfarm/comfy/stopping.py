"""Turn SIGINT (Ctrl-C) and SIGTERM into `Stopped`, so a foreground run can cancel its prompt before it exits.

    with StopSignals() as signals:
        try:
            with signals.held():
                run.start()          # a signal here waits until the POST has answered
            result = run.wait()      # a signal here raises Stopped at once
        except Stopped as stop:
            signals.ignore_more()    # a second Ctrl-C must not cut the cancel short
            run.cancel()

A signal held back while the prompt is submitted is raised when `held()` ends: by then the server knows the prompt,
so the cancel that follows finds it. Python runs signal handlers in the main thread only; use it there.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from vidfarm.errors import Stopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    def __init__(self) -> None:
        self._holding = 0
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            self._pending = self._pending or signum
            return
        raise Stopped(signum)

    def ignore_more(self) -> None:
        """From now on the signals are dropped: the process is on its way out, cancelling what it started."""
        self._holding += 1
        self._pending = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Signals wait until the block is done, then the first of them raises (unless the block raised)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding and self._pending is not None:
            signum, self._pending = self._pending, None
            raise Stopped(signum)
