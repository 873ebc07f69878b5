"""What a video will take and cost, from this farm's own finished jobs: the median pace per second of video of the
last jobs of the same recipe (measured, never modelled), None until one has finished. The cost is what the rented
GPUs billed the job (`result["fleet"]["cost"]`): jobs on the farm's own workers have none, so it stays unknown."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable

from vidfarm_service.jobs import Job, JobStatus

Estimate = Callable[[str, float], float | None]  # (recipe, seconds of video) -> seconds or dollars, None if unknown


def _paces(jobs: Iterable[Job], recipe: str, measure: Callable[[Job], float | None]) -> list[float]:
    paces = []
    for job in jobs:
        if job.status is not JobStatus.SUCCEEDED or job.parameters.get("recipe") != recipe:
            continue
        value, seconds = measure(job), float(job.parameters.get("seconds") or 0)
        if value is not None and seconds > 0:
            paces.append(value / seconds)
    return paces


def _took(job: Job) -> float | None:
    return job.finished - job.started if job.started and job.finished else None


def _billed(job: Job) -> float | None:
    cost = ((job.result or {}).get("fleet") or {}).get("cost")
    return float(cost) if isinstance(cost, int | float) else None


def render_seconds(jobs: Iterable[Job], recipe: str, seconds: float) -> float | None:
    paces = _paces(jobs, recipe, _took)
    return statistics.median(paces) * seconds if paces else None


def gpu_cost(jobs: Iterable[Job], recipe: str, seconds: float) -> float | None:
    paces = _paces(jobs, recipe, _billed)
    return statistics.median(paces) * seconds if paces else None
