"""One Telegram status message per job, as a reply to the person's request: plain stage names, a progress bar, the
queue position and estimated start, an honest ETA; edits throttled and never unchanged (Telegram answers an unchanged
edit with 400 "message is not modified"). The outcome is a *new* message (edits do not notify): the video, or one
line saying what to change. Internals (the notebook's error) stay in the job record, never in the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter, TelegramError

from vidfarm_service.catalogue import duration, say
from vidfarm_service.jobs import Job, JobStatus

log = logging.getLogger(__name__)
BAR_CELLS = 10
TICK_SECONDS = 10.0  # re-render running/queued messages this often, so a stuck stage still shows time passing
Deliver = Callable[[Job, str], Awaitable[None]]


def progress_bar(fraction: float) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * BAR_CELLS)
    return "▓" * filled + "░" * (BAR_CELLS - filled) + f" {fraction:.0%}"


def short_prompt(job: Job, limit: int = 60) -> str:
    prompt = " ".join(str(job.parameters.get("prompt", "")).split())
    return prompt if len(prompt) <= limit else prompt[: limit - 1].rstrip() + "…"


_COUNTED = re.compile(r"\b(keyframe|segment)s?\s+(\d+)\s*/\s*(\d+)")


def plain_stage(job: Job, lang: str) -> str:
    """What the job is doing, in words a person understands (never a node class or a prompt id)."""
    stage, detail = job.stage, job.detail or ""
    counted = _COUNTED.search(detail)
    if counted:
        key = "stage_keyframes" if counted.group(1) == "keyframe" else "stage_segments"
        return say(lang, key, done=counted.group(2), total=counted.group(3))
    if stage == "renting":  # the fleet's cold-start line, already in the job's language ("renting 1 GPU worker(s)")
        return detail or say(lang, "stage_gpu")
    if stage == "starting":
        return say(lang, "stage_gpu" if re.search(r"gpu|rent|vast|lease", detail, re.I) else "stage_starting")
    if stage == "planning" or "VidfarmPlan" in detail:
        return say(lang, "stage_planning")
    if "Join" in detail:
        return say(lang, "stage_joining")
    if stage == "vr":
        return say(lang, "stage_vr")
    if stage == "finished":
        return say(lang, "stage_uploading")
    return say(lang, "stage_rendering")


@dataclass
class EtaClock:
    """An ETA from this job's measured pace that counts down while nothing moves and is re-estimated only when the
    progress does (so it never rises while stuck); unknown until there is enough to measure."""

    fraction: float = 0.0
    deadline: float | None = None

    def update(self, job: Job, now: float) -> float | None:
        if job.started is None:
            return None
        if job.fraction > self.fraction:
            self.fraction = job.fraction
            elapsed = now - job.started
            if job.fraction >= 0.03 and elapsed >= 2:
                self.deadline = now + elapsed / job.fraction * (1 - job.fraction)
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - now)


def eta_words(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return say(lang, "eta_soon")
    rounded = round(seconds / 10) * 10 if seconds < 120 else round(seconds / 60) * 60
    return say(lang, "eta_left", eta=duration(rounded, lang))


def shape_name(width: object, height: object) -> str:
    return f"{width}×{height}"


def status_text(
    job: Job, lang: str, *, eta: float | None = None, ahead: int = 0, starts_in: float | None = None
) -> str:
    p = job.parameters
    head = say(
        lang,
        "status_head",
        prompt=short_prompt(job, 40),
        seconds=f"{float(p.get('seconds', 0)):g}",
        shape=shape_name(p.get("width"), p.get("height")),
        recipe=p.get("recipe", ""),
    )
    kind = say(lang, "kind_photos" if p.get("last_image") else "kind_photo" if p.get("image") else "kind_text")
    if job.status is JobStatus.QUEUED:
        if job.stage == "resuming":
            line = say(lang, "stage_resuming")
        else:
            line = say(lang, "stage_queued", position=ahead) if ahead else say(lang, "stage_queued_first")
        if starts_in is not None:
            line += " · " + say(lang, "stage_starts_in", eta=duration(round(starts_in / 60 + 0.5) * 60, lang))
    elif job.status is JobStatus.CANCELING:
        line = say(lang, "stage_canceling")
    elif job.status.finished:
        line = say(lang, f"status_{job.status.value}")
    else:
        line = f"⚙ {plain_stage(job, lang)}\n{progress_bar(job.fraction)}"
        words = eta_words(eta, lang)
        if words:
            line += f" · {words}"
    return f"{head}\n{kind}\n{line}"


def running_buttons(job: Job, lang: str) -> InlineKeyboardMarkup | None:
    if job.status.finished or job.status is JobStatus.CANCELING:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(say(lang, "btn_cancel"), callback_data=f"cancel:{job.id}")]])


FailureKey = str
_FAILURES: tuple[tuple[str, FailureKey], ...] = (  # (pattern in the job's error record, what to tell the person)
    (r"InputImageError|cannot identify image|not an image", "why_image"),
    (r"out of memory|OutOfMemory|CUDA error: out", "why_memory"),
    (r"no such recipe|unknown recipe|recipe \S+ (cannot|is not)|refused wan|models? (missing|not found)", "why_recipe"),
    (r"GPU budget|GPU予算", "why_budget"),
    (r"WorkerNotReady|no worker|ServerUnreachable|ProviderError|no GPU|GPUワーカーを借りられません", "why_workers"),
    (r"WorkflowError|JobRefused|must be (between|one of)|ZeroDivision", "why_option"),
)


def failure_reason(error: str) -> FailureKey:
    """The one actionable line for a failure: chosen from the error record, which itself never reaches the chat."""
    for pattern, key in _FAILURES:
        if re.search(pattern, error, re.I):
            return key
    return "why_other"


@dataclass
class _Message:
    chat_id: int
    message_id: int
    lang: str
    shown: str = ""
    last_edit: float = 0.0
    wanted: tuple[str, InlineKeyboardMarkup | None] | None = None
    task: asyncio.Task[None] | None = None
    done: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    eta: EtaClock = field(default_factory=EtaClock)
    finished: bool = False
    keyframes_sent: set[str] = field(default_factory=set)


class StatusMessages:
    def __init__(
        self,
        bot: Bot,
        *,
        min_interval: float,
        lang_for: Callable[[Job], str],
        deliver: Deliver,
        outcome: Deliver,
        queue: Callable[[], list[Job]],
        estimate: Callable[[Job], float | None],
        max_parallel: int = 1,
        tick_seconds: float = TICK_SECONDS,
        keyframe_photos: int = 0,
    ) -> None:
        self.bot = bot
        self.keyframe_photos = keyframe_photos  # at most this many keyframe thumbnails per job, as they finish
        self.min_interval = min_interval
        self.lang_for = lang_for
        self.deliver = deliver
        self.outcome = outcome
        self.queue = queue
        self.estimate = estimate
        self.max_parallel = max_parallel
        self.tick_seconds = tick_seconds
        self._messages: dict[str, _Message] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.edits = 0

    def track(self, job: Job, message_id: int, shown: str) -> None:
        assert job.chat_id is not None
        self._messages[job.id] = _Message(
            job.chat_id, message_id, self.lang_for(job), shown=shown, last_edit=time.monotonic()
        )
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick(), name="status-ticker")

    async def close(self) -> None:
        tasks = [m.task for m in self._messages.values() if m.task] + ([self._ticker] if self._ticker else [])
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def text_for(self, job: Job, lang: str, *, now: float | None = None) -> str:
        """The status text now, with the queue position and estimated start for a waiting job."""
        now = now if now is not None else time.time()
        message = self._messages.get(job.id)
        eta = message.eta.update(job, now) if message and job.status is JobStatus.RUNNING else None
        ahead, starts_in = 0, None
        if job.status is JobStatus.QUEUED:
            ahead, starts_in = self._queue_place(job, now)
        return status_text(job, lang, eta=eta, ahead=ahead, starts_in=starts_in)

    def _queue_place(self, job: Job, now: float) -> tuple[int, float | None]:
        """Jobs ahead of `job` (running ones count only past the free slots) and when it should start: the running
        jobs' ETAs and the estimated lengths of those queued ahead, spread over the slots."""
        active = self.queue()
        ids = [j.id for j in active]
        if job.id not in ids:
            return 0, None
        ahead = active[: ids.index(job.id)]
        waiting = [j for j in ahead if j.status is JobStatus.QUEUED]
        running = [j for j in ahead if j.status is not JobStatus.QUEUED]
        if len(running) < self.max_parallel and not waiting:
            return 0, None
        work = 0.0
        for other in ahead:
            clock = self._messages[other.id].eta if other.id in self._messages else EtaClock()
            left = clock.update(other, now) if other.status is JobStatus.RUNNING else self.estimate(other)
            if left is None:
                return len(ahead), None
            work += left
        return len(ahead), work / self.max_parallel

    async def on_job(self, job: Job) -> None:
        """Runner listener: schedule this job's edit and refresh the waiting ones (their place may have moved)."""
        self._schedule(job)
        for other in self.queue():
            if other.id != job.id and other.status is JobStatus.QUEUED and other.id in self._messages:
                self._schedule(other)

    def _schedule(self, job: Job) -> None:
        if job.chat_id is None or job.status_message_id is None:
            return
        message = self._messages.get(job.id)
        if message is None:  # after a restart: carry on editing the same message
            message = self._messages[job.id] = _Message(job.chat_id, job.status_message_id, self.lang_for(job))
        if message.finished:
            return
        message.wanted = (self.text_for(job, message.lang), running_buttons(job, message.lang))
        new = [p for p in job.keyframes if p not in message.keyframes_sent]
        new = new[: max(0, self.keyframe_photos - len(message.keyframes_sent))]
        if new and job.status is JobStatus.RUNNING:
            message.keyframes_sent.update(new)
            message.done.append(lambda: self._send_keyframes(message, new))
        if job.status is JobStatus.SUCCEEDED:
            message.finished = True
            message.done.append(lambda: self.deliver(job, message.lang))
        elif job.status in (JobStatus.FAILED, JobStatus.CANCELED):
            message.finished = True
            message.done.append(lambda: self.outcome(job, message.lang))
        if message.task is None or message.task.done():
            message.task = asyncio.create_task(self._edit_soon(job.id, message), name=f"status-{job.id}")

    async def _tick(self) -> None:
        while any(not m.finished for m in self._messages.values()):
            await asyncio.sleep(self.tick_seconds)
            for job in self.queue():
                if job.id in self._messages and not self._messages[job.id].finished:
                    self._schedule(job)

    async def _edit_soon(self, job_id: str, message: _Message) -> None:
        while message.wanted is not None:
            await asyncio.sleep(max(0.0, message.last_edit + self.min_interval - time.monotonic()))
            text, buttons = message.wanted
            message.wanted = None
            if text != message.shown:
                await self._edit(message, text, buttons)
        while message.done:
            try:
                await message.done.pop(0)()
            except Exception:  # a failed delivery must not stop this job's later edits
                log.exception("job %s: delivery failed", job_id)

    async def _send_keyframes(self, message: _Message, paths: list[str]) -> None:
        """The keyframes as they finish, under the status message and without a notification: the subject is in
        view minutes before the video, in time to cancel a job that went the wrong way."""
        for path in paths:
            index = int(Path(path).stem.rsplit("-", 1)[-1])
            try:
                await self.bot.send_photo(
                    message.chat_id,
                    Path(path).read_bytes(),
                    caption=say(message.lang, "keyframe_photo", index=index),
                    reply_to_message_id=message.message_id,
                    allow_sending_without_reply=True,
                    disable_notification=True,
                )
            except (OSError, TelegramError) as exc:  # gone with a failed job's files, or refused: the next one
                log.warning("keyframe photo %s not sent: %s", Path(path).name, exc)

    async def _edit(self, message: _Message, text: str, buttons: InlineKeyboardMarkup | None) -> None:
        try:
            await self.bot.edit_message_text(
                text, chat_id=message.chat_id, message_id=message.message_id, reply_markup=buttons
            )
            self.edits += 1
        except RetryAfter as exc:  # flood control: show this text later
            message.wanted = message.wanted or (text, buttons)
            delay = exc.retry_after
            await asyncio.sleep(delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay))
            return
        except BadRequest as exc:
            log.warning("status edit refused: %s", exc.message)
        message.shown, message.last_edit = text, time.monotonic()
