"""Turning a request (from the REST API or a chat) into a job's notebook parameters, and the per-user limits.

Everything a person can get wrong is refused here with a JobRefused naming what to change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfarm.errors import InputImageError, JobRefused, JobSpecInvalid, OptionProblem, QuotaExceeded
from vidfarm.jobs.spec import JobSpec, new_job_id
from vidfarm.media.checks import check_upload_image
from vidfarm_service.jobs import Job, JobStatus, JobStore

RESOLUTIONS = {  # the phone's choice of aspect / resolution
    "16:9": (1280, 720),
    "16:9 hd": (2560, 1440),
    "9:16": (720, 1280),
    "1:1": (960, 960),
}
CHOOSABLE = ("seconds", "width", "height", "fps", "strategy", "recipe", "seed", "keyframes", "color_match", "vr")


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int
    max_seconds: float
    max_upload_bytes: int
    jobs_per_day: int
    gpu_minutes_per_day: float


def job_parameters(
    prompt: str,
    *,
    options: dict[str, Any],
    defaults: dict[str, Any],
    limits: Limits,
    image: Path | None = None,
    last_image: Path | None = None,
) -> dict[str, Any]:
    """Notebook parameters for a request; JobRefused (with every problem) if the prompt, an option or an image
    cannot be used. The checks are the core's JobSpec: the same ranges as the notebook, the node pack and batch.
    `last_image` (an album's second photo) is the clip's last frame: keyframes strategy only."""
    prompt = prompt.strip()
    if len(prompt) > limits.max_prompt_chars:
        raise JobRefused(
            f"the prompt is {len(prompt)} characters; at most {limits.max_prompt_chars}, please - shorten it"
        )
    problems = [OptionProblem(k, "unknown option", "one of " + ", ".join(CHOOSABLE)) for k in sorted(options)
                if k not in CHOOSABLE]  # fmt: skip
    seconds = options.get("seconds", defaults.get("seconds"))
    if isinstance(seconds, int | float) and not 1 <= seconds <= limits.max_seconds:
        problems.append(OptionProblem("seconds", f"{seconds:g} s is not offered here", f"1 to {limits.max_seconds:g}"))
    if problems:
        raise JobRefused("; ".join(map(str, problems)), problems)
    for photo in (image, last_image):
        if photo is None:
            continue
        try:
            check_upload_image(photo, max_bytes=limits.max_upload_bytes)
        except InputImageError as exc:
            raise JobRefused(str(exc)) from None
    # settings that are not the job's content (head_url, head_token) pass through as notebook parameters
    place = {k: v for k, v in defaults.items() if k not in JobSpec.names()}
    asked = {**{k: v for k, v in defaults.items() if k in JobSpec.names()}, **options, "prompt": prompt}
    if image is not None:
        asked["image"] = str(image)
    if last_image is not None:
        asked["last_image"] = str(last_image)
    try:
        spec = JobSpec.from_values(asked)
    except JobSpecInvalid as exc:
        raise JobRefused(str(exc), exc.problems) from None
    return {**place, **spec.values()}


def check_quota(store: JobStore, owner: str, limits: Limits, *, now: float | None = None) -> None:
    """JobRefused if `owner` already used today's jobs or GPU minutes (a rolling 24 hours)."""
    now = now if now is not None else time.time()
    today = [job for job in store.since(owner, now - 86400) if job.counts_against_quota]
    if len(today) >= limits.jobs_per_day:
        raise QuotaExceeded(f"you have used your {limits.jobs_per_day} jobs for today; try again tomorrow")
    minutes = sum(job.gpu_seconds for job in today) / 60
    if minutes >= limits.gpu_minutes_per_day:
        raise QuotaExceeded(
            f"you have used {minutes:.0f} of your {limits.gpu_minutes_per_day:g} GPU minutes for today; "
            "try again tomorrow"
        )


def make_job(owner: str, parameters: dict[str, Any], *, chat_id: int | None = None, lang: str = "") -> Job:
    return Job(id=new_job_id(), owner=owner, parameters=parameters, status=JobStatus.QUEUED, chat_id=chat_id, lang=lang)
