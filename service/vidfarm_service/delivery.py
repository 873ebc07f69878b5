"""A finished job, delivered as a new message replying to the request: the full video when it fits the Bot API's
upload limit (50 MB; up to 2 GB through a local Bot API server), else the preview, else only the link; a thumbnail
within the Bot API's 320 px / 200 kB; the seed and cost in the caption; the follow-up buttons and a link that plays.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from vidfarm_service.catalogue import say
from vidfarm_service.jobs import Job
from vidfarm_service.links import PAGE, LinkSigner
from vidfarm_service.status_messages import failure_reason, short_prompt

log = logging.getLogger(__name__)
THUMBNAIL_SIDE = 320  # Bot API: "width and height should not exceed 320"
THUMBNAIL_BYTES = 200_000
CAPTION_CHARS = 1024


def thumbnail_jpeg(path: Path) -> bytes | None:
    """The job's thumbnail shrunk to fit 320x320 and 200 kB (a 640 px one is ignored by Telegram)."""
    if not path.is_file():
        return None
    with Image.open(path) as image:
        picture = image.convert("RGB")
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    for quality in (85, 70, 50):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= THUMBNAIL_BYTES:
            return buffer.getvalue()
    return None


def when(expires: int, lang: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC" if lang == "en" else "%Y年%m月%d日 %H:%M（UTC）", time.gmtime(expires))


def cost_words(job: Job, lang: str) -> str:
    """GPU seconds and cost when the fleet rented workers for the job (`result["fleet"]`); "" for a local run."""
    usage = (job.result or {}).get("fleet")
    if not isinstance(usage, dict):
        return ""
    line = say(lang, "fleet_cost", seconds=float(usage["gpu_seconds"]), cost=float(usage["cost"]))
    return say(lang, "cost", cost=line)


def result_buttons(job: Job, lang: str, watch_url: str | None) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(say(lang, "btn_again"), callback_data=f"again:{job.id}"),
            InlineKeyboardButton(say(lang, "btn_same_seed"), callback_data=f"same:{job.id}"),
            InlineKeyboardButton(say(lang, "btn_longer"), callback_data=f"longer:{job.id}"),
        ],
        [
            InlineKeyboardButton(say(lang, "btn_vertical"), callback_data=f"vertical:{job.id}"),
            InlineKeyboardButton(say(lang, "btn_vr180"), callback_data=f"vr180:{job.id}"),
        ],
    ]
    if watch_url and watch_url.startswith("https://"):  # Telegram refuses http:// and loopback URL buttons
        rows[1].append(InlineKeyboardButton(say(lang, "btn_watch"), url=watch_url))
    return InlineKeyboardMarkup(rows)


@dataclass
class Delivery:
    bot: Bot
    signer: LinkSigner
    max_upload_bytes: int
    reply_to: Callable[[str], int | None]

    def links(self, job: Job, lang: str) -> tuple[str, str]:
        expires = self.signer.expiry()
        return self.signer.url(job.id, PAGE, expires=expires) + f"&lang={lang}", when(expires, lang)

    async def succeeded(self, job: Job, lang: str) -> None:
        assert job.chat_id is not None and job.result is not None
        result = job.result
        link, expires = self.links(job, lang)
        fields: dict[str, Any] = {
            "prompt": short_prompt(job, 300),
            "width": result.get("width"),
            "height": result.get("height"),
            "duration": f"{float(result.get('duration', 0)):.1f}",
            "seed": job.parameters.get("seed", "?"),
            "cost": cost_words(job, lang),
            "link": link,
            "expires": expires,
        }
        caption = say(lang, "done_caption", **fields)[:CAPTION_CHARS]
        buttons = result_buttons(job, lang, link)
        reply = self.reply_to(job.id)
        video = next(
            (Path(result[k]) for k in ("video", "preview") if _fits(result.get(k), self.max_upload_bytes)), None
        )
        if video is None:
            size = Path(str(result.get("video", ""))).stat().st_size / 1e6 if result.get("video") else 0
            await self.bot.send_message(
                job.chat_id,
                say(lang, "done_too_big", **{**fields, "size": f"{size:.0f}"}),
                reply_markup=buttons,
                reply_to_message_id=reply,
                allow_sending_without_reply=True,
            )
            return
        await self._send_video(job, video, caption, buttons, reply)

    async def _send_video(
        self, job: Job, video: Path, caption: str, buttons: InlineKeyboardMarkup, reply: int | None
    ) -> None:
        assert job.chat_id is not None and job.result is not None
        from vidfarm_service.video_info import video_metadata

        info = await asyncio.to_thread(video_metadata, video)
        thumb = await asyncio.to_thread(thumbnail_jpeg, Path(str(job.result.get("thumbnail") or "")))
        with video.open("rb") as handle:
            await self.bot.send_video(
                job.chat_id,
                video=handle,
                filename=f"{job.id}.mp4",
                caption=caption,
                width=info["width"],
                height=info["height"],
                duration=max(1, round(info["duration"])),
                supports_streaming=True,
                thumbnail=thumb,
                reply_markup=buttons,
                reply_to_message_id=reply,
                allow_sending_without_reply=True,
                read_timeout=600,
                write_timeout=600,
            )
        log.info("job %s delivered (%s, %.1f MB)", job.id, video.name, video.stat().st_size / 1e6)

    async def ended(self, job: Job, lang: str) -> None:
        """Failed or canceled: a new message (it notifies) with what to change; the error stays in the record."""
        assert job.chat_id is not None
        if job.status.value == "canceled":
            text = say(lang, "canceled", prompt=short_prompt(job))
        else:
            key = failure_reason(job.error)
            log.info("job %s failed (%s); the record has the error", job.id, key)
            text = say(lang, "failed", prompt=short_prompt(job), why=say(lang, key))
        await self.bot.send_message(
            job.chat_id, text, reply_to_message_id=self.reply_to(job.id), allow_sending_without_reply=True
        )


def _fits(path: object, limit: int) -> bool:
    return bool(path) and Path(str(path)).is_file() and Path(str(path)).stat().st_size <= limit
