"""Turning a request (from the REST API or a chat) into a job's notebook parameters, and the per-user limits.

Everything a person can get wrong is refused here with a JobRefused naming what to change.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfarm.errors import InputImageError, JobRefused, WorkflowError
from vidfarm.jobs.options import check_job_options
from vidfarm.media.checks import check_upload_image
from vidfarm_service.jobs import Job, JobStatus, JobStore

RESOLUTIONS = {  # the phone's choice of aspect / resolution
    "16:9": (1280, 720),
    "16:9 hd": (2560, 1440),
    "9:16": (720, 1280),
    "1:1": (960, 960),
}
CHOOSABLE = ("seconds", "width", "height", "fps", "strategy", "recipe", "seed", "keyframes", "color_match")


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int
    max_seconds: float
    max_upload_bytes: int
    jobs_per_day: int
    gpu_minutes_per_day: float


def new_job_id() -> str:
    return secrets.token_hex(5)


def job_parameters(
    prompt: str,
    *,
    options: dict[str, Any],
    defaults: dict[str, Any],
    limits: Limits,
    image: Path | None = None,
) -> dict[str, Any]:
    """Notebook parameters for a request; JobRefused if the prompt, an option or the image cannot be used."""
    prompt = prompt.strip()
    if not prompt:
        raise JobRefused("the prompt is empty: describe the video you want")
    if len(prompt) > limits.max_prompt_chars:
        raise JobRefused(
            f"the prompt is {len(prompt)} characters; at most {limits.max_prompt_chars}, please - shorten it"
        )
    unknown = sorted(set(options) - set(CHOOSABLE))
    if unknown:
        raise JobRefused(f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(CHOOSABLE)}")
    parameters: dict[str, Any] = {**defaults, **{k: v for k, v in options.items() if v is not None}, "prompt": prompt}
    _check_options(parameters, limits)
    if image is not None:
        try:
            check_upload_image(image, max_bytes=limits.max_upload_bytes)
        except InputImageError as exc:
            raise JobRefused(str(exc)) from None
        parameters["image"] = str(image)
    return parameters


def _check_options(parameters: dict[str, Any], limits: Limits) -> None:
    seconds = float(parameters.get("seconds", 0))
    if not 1 <= seconds <= limits.max_seconds:
        raise JobRefused(f"seconds must be between 1 and {limits.max_seconds:g}, not {seconds:g}")
    try:  # ranges, recipes and strategies: the pipeline's own declarations (vidfarm.jobs.options)
        parameters.update(check_job_options(parameters))
    except WorkflowError as exc:
        raise JobRefused(str(exc)) from None


def check_quota(store: JobStore, owner: str, limits: Limits, *, now: float | None = None) -> None:
    """JobRefused if `owner` already used today's jobs or GPU minutes (a rolling 24 hours)."""
    now = now if now is not None else time.time()
    today = [job for job in store.since(owner, now - 86400) if job.counts_against_quota]
    if len(today) >= limits.jobs_per_day:
        raise JobRefused(f"you have used your {limits.jobs_per_day} jobs for today; try again tomorrow")
    minutes = sum(job.gpu_seconds for job in today) / 60
    if minutes >= limits.gpu_minutes_per_day:
        raise JobRefused(
            f"you have used {minutes:.0f} of your {limits.gpu_minutes_per_day:g} GPU minutes for today; "
            "try again tomorrow"
        )


def make_job(owner: str, parameters: dict[str, Any], *, chat_id: int | None = None) -> Job:
    return Job(id=new_job_id(), owner=owner, parameters=parameters, status=JobStatus.QUEUED, chat_id=chat_id)
