"""The Telegram bot: a thin adapter over the job runner, running in the service's event loop.

text -> text-to-video; photo (+ caption) -> image-to-video; /options shows buttons for seconds, size, recipe and
strategy; /jobs, /cancel; /allow and /deny for admins. Long polling by default (works behind NAT); in webhook mode
the API feeds updates through `feed`. Strangers get a polite refusal and nothing runs.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from telegram import Message, Update, User
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from vidfarm.errors import JobRefused
from vidfarm_service.context import Service
from vidfarm_service.jobs import Job
from vidfarm_service.options_keyboard import apply_choice, options_keyboard
from vidfarm_service.status_messages import StatusMessages, job_buttons, status_text
from vidfarm_service.submissions import check_quota, job_parameters, make_job, new_job_id

log = logging.getLogger(__name__)
DEFAULT_PHOTO_PROMPT = "the photo comes to life, gentle natural motion"
HELP = (
    "Send me a text and I make a video of it; send a photo (with a caption) and I bring it to life.\n"
    "/options - seconds, size, recipe, strategy\n/jobs - your recent jobs\n/cancel [job] - stop a job\n"
    "/quota - what is left of today's jobs, GPU minutes and money"
)
Context = ContextTypes.DEFAULT_TYPE


class TelegramBot:
    def __init__(
        self,
        service: Service,
        *,
        token: str,
        base_url: str,
        base_file_url: str,
        polling: bool,
        poll_timeout: float,
        admin_ids: list[int],
        status_edit_seconds: float,
    ) -> None:
        self.service = service
        self.polling = polling
        self.poll_timeout = poll_timeout
        self.admin_ids = set(admin_ids)
        builder = Application.builder().token(token).base_url(base_url).base_file_url(base_file_url)
        builder = builder.concurrent_updates(True).connection_pool_size(16)
        self.app = builder.build() if polling else builder.updater(None).build()
        self.status = StatusMessages(
            self.app.bot, min_interval=status_edit_seconds, link_for=lambda job_id: service.signer.url(job_id)
        )
        self._add_handlers()

    def _add_handlers(self) -> None:
        add = self.app.add_handler
        add(CommandHandler(["start", "help"], self.on_help))
        add(CommandHandler("jobs", self.on_jobs))
        add(CommandHandler("cancel", self.on_cancel))
        add(CommandHandler("options", self.on_options))
        add(CommandHandler("quota", self.on_quota))
        add(CommandHandler(["allow", "deny"], self.on_allow))
        add(MessageHandler(filters.PHOTO | filters.Document.ALL, self.on_photo))
        add(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        add(CallbackQueryHandler(self.on_button))
        self.app.add_error_handler(self.on_error)

    async def start(self) -> None:
        await self.app.initialize()
        await self.app.start()
        if self.polling and self.app.updater:
            await self.app.updater.start_polling(poll_interval=0, timeout=int(self.poll_timeout))
        self.service.runner.listeners.append(self.status.on_job)

    async def stop(self) -> None:
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        await self.status.close()
        await self.app.stop()
        await self.app.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        """A webhook update (already authenticated by the API)."""
        await self.app.update_queue.put(Update.de_json(data, self.app.bot))

    # access
    def allowed(self, user: User | None) -> bool:
        return user is not None and (user.id in self.admin_ids or self.service.store.is_allowed(user.id))

    async def _refuse(self, update: Update) -> None:
        user = update.effective_user
        log.info("refused a stranger (user %s)", user.id if user else "?")
        if update.callback_query:
            await update.callback_query.answer("Sorry, this bot is private.")
        elif update.effective_message:
            await update.effective_message.reply_text(
                "Sorry, this is a private render farm and you are not on its list. "
                f"If you know its owner, send them your id: {user.id if user else '?'}"
            )

    # commands
    async def on_help(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message
        self._prewarm(update.effective_user)
        await update.effective_message.reply_text(HELP)

    # fleet: pre-warm on a sign that work is coming, and money in view
    def _prewarm(self, user: User | None) -> None:
        fleet = self.service.runner.fleet
        if fleet is not None and user is not None:
            fleet.prewarm(_owner(user))

    async def on_quota(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        from vidfarm_service.fleet import quota_text

        user = update.effective_user
        text = quota_text(self.service.store, _owner(user), self.service.limits, self.service.runner.fleet,
                          lang=user.language_code or "en", admin=user.id in self.admin_ids)  # fmt: skip
        await update.effective_message.reply_text(text)

    async def on_jobs(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        jobs = self.service.store.recent(owner=_owner(update.effective_user), limit=10)
        lines = [f"{j.id} · {j.status.value} · {str(j.parameters.get('prompt', ''))[:40]}" for j in jobs]
        await update.effective_message.reply_text("\n".join(lines) or "No jobs yet: send me a text.")

    async def on_cancel(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        owner = _owner(update.effective_user)
        wanted = context.args[0] if context.args else None
        mine = [j for j in self.service.store.recent(owner=owner, limit=50) if not j.status.finished]
        targets = [j for j in mine if wanted in (None, j.id)][:1]
        if not targets:
            await update.effective_message.reply_text("Nothing of yours to cancel (see /jobs).")
            return
        await self.service.runner.cancel(targets[0].id)
        await update.effective_message.reply_text(f"Canceling job {targets[0].id}.")

    async def on_options(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        choices = self.service.store.choices(update.effective_user.id)
        self._prewarm(update.effective_user)
        await update.effective_message.reply_text(
            "Options for your next videos:", reply_markup=options_keyboard(choices, self.service.settings.defaults)
        )

    async def on_allow(self, update: Update, context: Context) -> None:
        user, message = update.effective_user, update.effective_message
        assert message
        if user is None or user.id not in self.admin_ids:
            return await self._refuse(update)
        if not context.args or not context.args[0].lstrip("-").isdigit():
            await message.reply_text("Usage: /allow <telegram user id> or /deny <telegram user id>")
            return
        target = int(context.args[0])
        if message.text and message.text.startswith("/deny"):
            self.service.store.deny(target)
            await message.reply_text(f"User {target} removed from the list.")
        else:
            self.service.store.allow(target, added_by=user.id)
            await message.reply_text(f"User {target} may now use the bot.")

    # requests
    async def on_text(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_message.text is not None
        await self._start_job(update.effective_message, update.effective_message.text)

    async def on_photo(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        message = update.effective_message
        assert message
        attachment = message.photo[-1] if message.photo else message.document
        assert attachment is not None
        limit = self.service.limits.max_upload_bytes
        if attachment.file_size and attachment.file_size > limit:
            await message.reply_text(
                f"That file is {attachment.file_size / 1e6:.0f} MB; I take images up to {limit / 1e6:.0f} MB. "
                "Send it as a photo (Telegram compresses it) or a smaller file."
            )
            return
        folder = self.service.uploads_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{new_job_id()}{_suffix(message)}"
        await (await attachment.get_file()).download_to_drive(path)
        await self._start_job(message, message.caption or DEFAULT_PHOTO_PROMPT, image=path)

    async def _start_job(
        self, message: Message, prompt: str, *, image: Path | None = None, options: dict[str, Any] | None = None
    ) -> Job | None:
        user = message.from_user
        assert user is not None
        try:
            check_quota(self.service.store, _owner(user), self.service.limits)
            chosen = options if options is not None else self.service.store.choices(user.id)
            parameters = job_parameters(
                prompt,
                options=chosen,
                defaults=self.service.settings.defaults,
                limits=self.service.limits,
                image=image,
            )
        except JobRefused as exc:
            await message.reply_text(f"I can't start that: {exc}")
            return None
        job = make_job(_owner(user), parameters, chat_id=message.chat_id)
        text = status_text(job)
        sent = await message.reply_text(text, reply_markup=job_buttons(job))
        job.status_message_id = sent.message_id
        self.status.track(job.id, message.chat_id, sent.message_id, text)
        return self.service.runner.submit(job)

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        verb, _, argument = (query.data or "").partition(":")
        if verb == "opt":
            await self._choose(update, argument)
            return
        job = self.service.store.get(argument)
        if job is None or job.owner != _owner(query.from_user):
            await query.answer("That job is not yours or no longer exists.")
            return
        if verb == "cancel":
            await self.service.runner.cancel(job.id)
            await query.answer("Canceling…")
        elif verb == "again" and isinstance(query.message, Message):
            await query.answer("Starting again with a new seed")
            options: dict[str, Any] = {
                k: job.parameters[k]
                for k in ("seconds", "width", "height", "recipe", "strategy")
                if k in job.parameters
            }
            options["seed"] = random.randrange(2**31)
            image = Path(job.parameters["image"]) if job.parameters.get("image") else None
            await self._start_job(
                _as_user_message(query.message, query.from_user),
                str(job.parameters["prompt"]),
                image=image,
                options=options,
            )
        else:
            await query.answer()

    async def _choose(self, update: Update, argument: str) -> None:
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        choices = self.service.store.choices(user.id)
        changed = apply_choice(choices, argument)
        self.service.store.set_choices(user.id, choices)
        await query.answer("Saved" if changed else "Already chosen")
        if changed and isinstance(query.message, Message):
            await query.message.edit_reply_markup(options_keyboard(choices, self.service.settings.defaults))

    async def on_error(self, update: object, context: Context) -> None:
        log.error("telegram handler failed: %s", context.error, exc_info=context.error)
        if isinstance(update, Update) and update.effective_message:
            await update.effective_message.reply_text("Something went wrong on my side; please try again.")


def _owner(user: User) -> str:
    return f"tg:{user.id}"


def _suffix(message: Message) -> str:
    if message.document and message.document.file_name:
        return Path(message.document.file_name).suffix.lower()[:6] or ".img"
    return ".jpg"


def _as_user_message(message: Message, user: User) -> Message:
    """The bot's own message, seen as if the button's user had sent it (replies go to the same chat)."""
    clone = Message.de_json({**message.to_dict(), "from": user.to_dict()}, message.get_bot())
    assert clone is not None
    return clone
