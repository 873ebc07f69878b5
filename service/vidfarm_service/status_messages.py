"""One Telegram status message per job: its text, its buttons, edits throttled to one every few seconds and never
unchanged (Telegram answers an unchanged edit with 400 "message is not modified"), then the video delivered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter

from vidfarm_service.fleet import cost_line, language_of
from vidfarm_service.jobs import Job, JobStatus

log = logging.getLogger(__name__)
MAX_VIDEO_BYTES = 50_000_000  # Bot API upload limit for non-photo files
MAX_THUMBNAIL_BYTES = 200_000


def job_buttons(job: Job) -> InlineKeyboardMarkup | None:
    if job.status.finished:
        return InlineKeyboardMarkup([[InlineKeyboardButton("🎲 Again, new seed", callback_data=f"again:{job.id}")]])
    if job.status is JobStatus.CANCELING:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton("✖ Cancel", callback_data=f"cancel:{job.id}")]])


def status_text(job: Job, *, now: float | None = None) -> str:
    p = job.parameters
    head = (
        f"🎬 job {job.id} · {float(p.get('seconds', 0)):g} s · {p.get('width')}x{p.get('height')} · {p.get('recipe')}"
    )
    kind = "image → video" if p.get("image") else "text → video"
    line = {
        JobStatus.QUEUED: "⏳ queued" + (" (resuming after a restart)" if job.stage == "resuming" else ""),
        JobStatus.CANCELING: "✖ canceling…",
        JobStatus.CANCELED: "✖ canceled",
        JobStatus.SUCCEEDED: "✅ done",
        JobStatus.FAILED: f"❌ failed: {job.error[:300]}",
    }.get(job.status)
    if line is None:  # running
        line = f"⚙ {job.stage} {job.fraction:.0%}"
        if job.detail:
            line += f" · {job.detail[:80]}"
        eta = _eta(job, now=now if now is not None else time.time())
        if eta:
            line += f" · ETA {eta}"
    return f"{head}\n{kind}\n{line}"


def _eta(job: Job, *, now: float) -> str:
    if job.started is None or job.fraction < 0.02:
        return ""
    left = (now - job.started) / job.fraction * (1 - job.fraction)
    return f"{int(left) // 60}:{int(left) % 60:02d}"


@dataclass
class _Message:
    chat_id: int
    message_id: int
    shown: str = ""
    last_edit: float = 0.0
    wanted: tuple[str, InlineKeyboardMarkup | None] | None = None
    task: asyncio.Task[None] | None = None
    done: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class StatusMessages:
    def __init__(self, bot: Bot, *, min_interval: float, link_for: Callable[[str], str]) -> None:
        self.bot = bot
        self.min_interval = min_interval
        self.link_for = link_for
        self._messages: dict[str, _Message] = {}
        self.edits = 0

    def track(self, job_id: str, chat_id: int, message_id: int, shown: str) -> None:
        self._messages[job_id] = _Message(chat_id, message_id, shown=shown, last_edit=time.monotonic())

    async def close(self) -> None:
        for message in self._messages.values():
            if message.task:
                message.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await message.task

    async def on_job(self, job: Job) -> None:
        """Runner listener: schedule an edit (coalesced, throttled); deliver the video when it succeeded."""
        if job.chat_id is None or job.status_message_id is None:
            return
        message = self._messages.get(job.id)
        if message is None:  # after a restart: carry on editing the same message
            message = self._messages[job.id] = _Message(job.chat_id, job.status_message_id)
        message.wanted = (status_text(job), job_buttons(job))
        if job.status is JobStatus.SUCCEEDED:
            message.done.append(lambda: self.deliver(job))
        if message.task is None or message.task.done():
            message.task = asyncio.create_task(self._edit_soon(job.id, message), name=f"status-{job.id}")

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

    async def deliver(self, job: Job) -> None:
        assert job.chat_id is not None and job.result is not None
        result = job.result
        link = self.link_for(job.id)
        caption = (
            f"{str(job.parameters.get('prompt', ''))[:300]}\n\n"
            f"Full resolution {result.get('width')}x{result.get('height')}, {float(result.get('duration', 0)):.1f} s "
            f"(link valid for a while): {link}"
        )
        cost = cost_line(result, language_of(str(job.parameters.get("prompt", ""))))  # fleet: what it cost
        caption = f"{caption}\n{cost}" if cost else caption
        preview = Path(result["preview"])
        if preview.stat().st_size > MAX_VIDEO_BYTES:
            await self.bot.send_message(job.chat_id, f"The preview is too big for Telegram.\n{caption}")
            return
        info = await asyncio.to_thread(video_metadata, preview)
        thumbnail = Path(result.get("thumbnail") or "")
        with preview.open("rb") as video:
            thumb = (
                thumbnail.open("rb") if thumbnail.is_file() and thumbnail.stat().st_size < MAX_THUMBNAIL_BYTES else None
            )
            try:
                await self.bot.send_video(
                    job.chat_id,
                    video=video,
                    filename=f"{job.id}.mp4",
                    caption=caption[:1024],
                    width=info["width"],
                    height=info["height"],
                    duration=max(1, round(info["duration"])),
                    supports_streaming=True,
                    thumbnail=thumb,
                    reply_markup=job_buttons(job),
                    read_timeout=120,
                    write_timeout=120,
                )
            finally:
                if thumb:
                    thumb.close()
        log.info("job %s delivered to chat %s", job.id, job.chat_id)


def video_metadata(path: Path) -> dict[str, Any]:
    """Width, height and duration from the container header, without decoding the frames."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        if not duration and container.duration:
            duration = container.duration / 1_000_000
        return {"width": stream.codec_context.width, "height": stream.codec_context.height, "duration": duration}
