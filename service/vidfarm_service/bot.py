"""The Telegram bot: a thin adapter over the job runner, running in the service's event loop.

text -> text-to-video; photo (+ caption) -> image-to-video, shaped like the photo; every reply in the person's
language (catalogue.py). Long polling by default (works behind NAT); in webhook mode the API feeds updates through
`feed`. Telegram being unreachable at start does not stop the service: the bot connects in the background with
back-off while the REST API serves. Strangers get a polite refusal and nothing runs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from vidfarm.errors import InputImageError, JobRefused, WorkflowError
from vidfarm.jobs.spec import check_options, new_job_id
from vidfarm.workflow.recipe import load_recipes
from vidfarm_service import estimates
from vidfarm_service.catalogue import normalize, pick_language, say
from vidfarm_service.context import Service
from vidfarm_service.delivery import Delivery
from vidfarm_service.jobs import Job, JobStatus
from vidfarm_service.options_keyboard import apply_choice, options_keyboard, options_text, typed_options
from vidfarm_service.preferences import Preferences
from vidfarm_service.refusals import refusal_text
from vidfarm_service.status_messages import StatusMessages, running_buttons, short_prompt
from vidfarm_service.submissions import CHOOSABLE, check_quota, job_parameters, make_job

log = logging.getLogger(__name__)
DEFAULT_PHOTO_PROMPT = "the photo comes to life, gentle natural motion"
COMMANDS = ("options", "status", "jobs", "cancel", "quota", "lang", "help")
ALBUM_WAIT_SECONDS = 1.5  # the photos of one album arrive as separate updates, close together
RECONNECT_SECONDS = (1, 2, 5, 10, 30, 60)
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
        max_upload_bytes: int = 50_000_000,
        confirm_seconds: float = 60.0,
    ) -> None:
        self.service = service
        self.polling = polling
        self.poll_timeout = poll_timeout
        self.admin_ids = set(admin_ids)
        self.confirm_seconds = confirm_seconds
        self.people = Preferences(service.settings.data_dir / "jobs.sqlite")
        builder = Application.builder().token(token).base_url(base_url).base_file_url(base_file_url)
        builder = builder.concurrent_updates(True).connection_pool_size(16)
        self.app = builder.build() if polling else builder.updater(None).build()
        self.delivery = Delivery(
            self.app.bot,
            service.signer,
            max_upload_bytes=max_upload_bytes,
            reply_to=lambda job_id: self.people.job_chat(job_id)[0],
        )
        self.status = StatusMessages(
            self.app.bot,
            min_interval=status_edit_seconds,
            lang_for=self.job_language,
            deliver=self.delivery.succeeded,
            outcome=self.delivery.ended,
            queue=lambda: service.store.with_status(JobStatus.RUNNING, JobStatus.CANCELING, JobStatus.QUEUED),
            estimate=lambda job: self.estimate(str(job.parameters.get("recipe")), float(job.parameters["seconds"])),
            max_parallel=service.settings.max_parallel,
            keyframe_photos=service.settings.keyframe_photos,
        )
        self._pending: dict[str, dict[str, Any]] = {}  # confirmations and edited messages waiting for a button
        self._albums: dict[str, list[Message]] = {}
        self._connector: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._add_handlers()

    def _add_handlers(self) -> None:
        add, edited = self.app.add_handler, filters.UpdateType.EDITED_MESSAGE
        add(MessageHandler(edited, self.on_edited))
        add(CommandHandler(["start", "help"], self.on_help))
        add(CommandHandler("jobs", self.on_jobs))
        add(CommandHandler("status", self.on_status))
        add(CommandHandler("cancel", self.on_cancel))
        add(CommandHandler("options", self.on_options))
        add(CommandHandler("lang", self.on_lang))
        add(CommandHandler("quota", self.on_quota))
        add(CommandHandler(["allow", "deny"], self.on_allow))
        add(MessageHandler(filters.PHOTO | filters.Document.ALL, self.on_photo))
        add(MessageHandler(filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE, self.on_voice))
        add(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        add(MessageHandler(filters.ALL, self.on_other))  # stickers, video, location, unknown commands
        add(CallbackQueryHandler(self.on_button))
        self.app.add_error_handler(self.on_error)

    # lifecycle
    async def start(self) -> None:
        self.service.runner.listeners.append(self.status.on_job)
        self._connector = asyncio.create_task(self._connect(), name="telegram-connect")
        self._connector.add_done_callback(_log_failure)  # a bug here must not leave a silent, dead bot

    async def _connect(self) -> None:
        """Connect with back-off: a Telegram outage (or a wrong token) never takes the REST API down."""
        for attempt in range(10**9):
            try:
                await self.app.initialize()
                break
            except InvalidToken:
                log.error("Telegram refused the bot token (VIDFARM_SERVICE_TELEGRAM_TOKEN); the bot stays off")
                return
            except (NetworkError, TelegramError, OSError) as exc:
                wait = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
                log.warning("Telegram unreachable (%s); retrying in %d s", type(exc).__name__, wait)
                await asyncio.sleep(wait)
        await self.app.start()
        await self._register_commands()
        if self.polling and self.app.updater:
            await self.app.updater.start_polling(poll_interval=0, timeout=int(self.poll_timeout))
        self.connected.set()
        log.info("telegram connected")

    async def _register_commands(self) -> None:
        for lang in ("en", "ja"):
            commands = [BotCommand(name, say(lang, f"cmd_{name}")) for name in COMMANDS]
            await self.app.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)

    async def stop(self) -> None:
        if self._connector and not self._connector.done():
            self._connector.cancel()
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        await self.status.close()
        if self.app.running:
            await self.app.stop()
        if self.connected.is_set():
            await self.app.shutdown()
        self.people.close()

    async def feed(self, data: dict[str, Any]) -> None:
        """A webhook update (already authenticated by the API)."""
        await self.app.update_queue.put(Update.de_json(data, self.app.bot))

    # people
    def language(self, user: User | None) -> str:
        if user is None:
            return "en"
        self.people.seen(user.id, user.language_code)
        chosen, telegram = self.people.languages(user.id)
        return pick_language(chosen, telegram or user.language_code)

    def stated_language(self, user: User) -> str:
        """The person's language where they or Telegram said it (the /lang choice, language_code), else "": then
        what the service writes about the job itself (the fleet's lines) follows the prompt's language."""
        chosen, telegram = self.people.languages(user.id)
        return self.language(user) if chosen or telegram or user.language_code else ""

    def job_language(self, job: Job) -> str:
        remembered = self.people.job_chat(job.id)[1]
        if remembered:
            return remembered
        user_id = int(job.owner[3:]) if job.owner.startswith("tg:") else 0
        return pick_language(*self.people.languages(user_id))

    def allowed(self, user: User | None) -> bool:
        if user is None:
            return False
        if user.id in self.admin_ids:
            return True
        return self.service.store.is_allowed(user.id) and not self.people.is_denied(user.id)

    async def _refuse(self, update: Update) -> None:
        user = update.effective_user
        lang = self.language(user)
        log.info("refused a stranger (user %s)", user.id if user else "?")
        if update.callback_query:
            await update.callback_query.answer(say(lang, "private_short"))
        elif update.effective_message:
            await update.effective_message.reply_text(say(lang, "private", user_id=user.id if user else "?"))

    async def _reply(self, update: Update, key: str, **fields: Any) -> Message:
        assert update.effective_message
        return await update.effective_message.reply_text(say(self.language(update.effective_user), key, **fields))

    # commands
    async def on_help(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        self._prewarm(update.effective_user)  # /start or /help: work is likely coming
        await self._reply(update, "help")

    async def on_lang(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_user
        if context.args and context.args[0].lower() in ("en", "ja"):
            self.people.choose_language(update.effective_user.id, context.args[0].lower())
            return void(await self._reply(update, "lang_set"))
        buttons = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("English", callback_data="lang:en"),
                    InlineKeyboardButton("日本語", callback_data="lang:ja"),
                ]
            ]
        )
        assert update.effective_message
        await update.effective_message.reply_text(
            say(self.language(update.effective_user), "lang_choose"), reply_markup=buttons
        )

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
        lang = self.language(update.effective_user)
        jobs = self.service.store.recent(owner=_owner(update.effective_user), limit=5)
        if not jobs:
            return void(await self._reply(update, "no_jobs"))
        lines = [say(lang, "jobs_title")]
        rows: list[list[InlineKeyboardButton]] = []
        for number, job in enumerate(jobs, 1):
            lines.append(f"{number}. {short_prompt(job, 50)} · {say(lang, f'status_{job.status.value}')}")
            row = [InlineKeyboardButton(f"{number}. {say(lang, 'btn_rerun')}", callback_data=f"again:{job.id}")]
            if job.status is JobStatus.SUCCEEDED:
                row[:0] = [
                    InlineKeyboardButton(f"{number}. {say(lang, 'btn_resend')}", callback_data=f"resend:{job.id}"),
                    InlineKeyboardButton(f"{number}. {say(lang, 'btn_link')}", callback_data=f"link:{job.id}"),
                ]
            rows.append(row)
        await update.effective_message.reply_text("\n".join(lines), reply_markup=InlineKeyboardMarkup(rows))

    def _active(self, user: User) -> list[Job]:
        """This person's unfinished jobs: running first, then waiting in queue order."""
        mine = [
            j for j in self.service.store.with_status(JobStatus.RUNNING, JobStatus.QUEUED) if j.owner == _owner(user)
        ]
        return sorted(mine, key=lambda j: j.status is not JobStatus.RUNNING)

    async def on_status(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        active = self._active(update.effective_user)
        if not active:
            return void(await self._reply(update, "nothing_running"))
        lang = self.language(update.effective_user)
        text = "\n\n".join(self.status.text_for(job, lang) for job in active)
        await update.effective_message.reply_text(text, reply_markup=running_buttons(active[0], lang))

    async def on_cancel(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        wanted = context.args[0] if context.args else None
        targets = [j for j in self._active(update.effective_user) if wanted in (None, j.id)][:1]
        if not targets:
            return void(await self._reply(update, "nothing_to_cancel"))
        await self.service.runner.cancel(targets[0].id)
        await self._reply(update, "canceling_job", prompt=short_prompt(targets[0]))

    async def on_options(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_user
        lang, user = self.language(update.effective_user), update.effective_user
        choices, defaults = self.service.store.choices(user.id), self.service.settings.defaults
        if context.args:
            try:
                choices = self._typed_choices(choices, " ".join(context.args))
            except WorkflowError as exc:
                return void(await self._reply(update, "option_invalid", detail=str(exc)))
            self.service.store.set_choices(user.id, choices)
        self._prewarm(update.effective_user)
        text = options_text(choices, defaults, lang, self.estimate, self.estimate_cost)
        await update.effective_message.reply_text(text, reply_markup=options_keyboard(choices, defaults, lang))

    def _typed_choices(self, choices: dict[str, Any], text: str) -> dict[str, Any]:
        typed = typed_options(normalize(text))
        unknown = sorted(set(typed) - set(CHOOSABLE))
        if unknown:
            raise WorkflowError(f"unknown option {', '.join(unknown)}; one of {', '.join(CHOOSABLE)}")
        updated = {**choices, **typed}
        checked = check_options({**self.service.settings.defaults, **updated})
        return {**updated, **{k: v for k, v in checked.items() if k in updated}}

    async def on_allow(self, update: Update, context: Context) -> None:
        user, message = update.effective_user, update.effective_message
        assert message
        if user is None or user.id not in self.admin_ids:
            if not self.allowed(user):
                return await self._refuse(update)
            return void(await self._reply(update, "admin_only", command=(message.text or "/allow").split()[0]))
        if not context.args or not context.args[0].lstrip("-").isdigit():
            return void(await self._reply(update, "allow_usage"))
        target = int(context.args[0])
        if message.text and message.text.startswith("/deny"):
            self.service.store.deny(target)
            self.people.deny(target)
            return void(await self._reply(update, "denied", user_id=target))
        self.service.store.allow(target, added_by=user.id)
        self.people.lift_denial(target)
        await self._reply(update, "allowed", user_id=target)
        try:  # they may never have written to the bot: then Telegram refuses, and the admin tells them
            await self.app.bot.send_message(
                target, say(pick_language(*self.people.languages(target)), "welcome_allowed")
            )
        except TelegramError as exc:
            log.info("could not tell user %s they were allowed: %s", target, type(exc).__name__)

    # requests
    async def on_text(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        assert update.effective_message and update.effective_message.text is not None
        await self._start_job(update.effective_message, update.effective_message.text)

    async def on_edited(self, update: Update, context: Context) -> None:
        """An edited message asks before re-running: editing a typo must not silently spend quota."""
        message = update.edited_message
        if message is None or not self.allowed(update.effective_user) or not message.text:
            return
        token = self._hold({"text": message.text, "message": message})
        lang = self.language(message.from_user)
        buttons = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(say(lang, "edited_yes"), callback_data=f"go:{token}"),
                    InlineKeyboardButton(say(lang, "edited_no"), callback_data=f"drop:{token}"),
                ]
            ]  # fmt: skip
        )
        await message.reply_text(say(lang, "edited_ask"), reply_markup=buttons)

    async def on_voice(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        await self._reply(update, "voice")

    async def on_other(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        message = update.effective_message
        if message is None:
            return
        if message.text and message.text.startswith("/"):
            return void(await self._reply(update, "help"))
        lang = self.language(update.effective_user)
        await self._reply(update, "unsupported", help_hint=say(lang, "help_hint"))

    async def on_photo(self, update: Update, context: Context) -> None:
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        message = update.effective_message
        assert message
        if message.media_group_id:
            return await self._album(message)
        await self._photo_job(message)

    async def _album(self, message: Message) -> None:
        """An album's photos arrive one by one: the first two become one clip, from the first to the second (its
        first and last frame); more are only counted."""
        group = str(message.media_group_id)
        first = group not in self._albums
        self._albums.setdefault(group, []).append(message)
        if not first:
            return
        await asyncio.sleep(ALBUM_WAIT_SECONDS)
        photos = self._albums.pop(group)
        await self._photo_job(photos[0], last=photos[1] if len(photos) > 1 else None)
        if len(photos) > 2:
            await photos[0].reply_text(say(self.language(photos[0].from_user), "album_too_many"))

    async def _photo_job(self, message: Message, *, last: Message | None = None) -> None:
        image = await self._download_photo(message)
        if image is None:
            return
        last_image = await self._download_photo(last) if last is not None else None
        if last is not None and last_image is None:  # the second photo was refused (said why): so is the clip
            image.unlink(missing_ok=True)
            return
        caption = message.caption or (last.caption if last is not None else None)  # Telegram puts it on one
        await self._start_job(message, caption or DEFAULT_PHOTO_PROMPT, image=image, last_image=last_image)

    async def _download_photo(self, message: Message) -> Path | None:
        """The message's photo saved in the uploads folder, or None after telling the person why it cannot be used."""
        lang = self.language(message.from_user)
        attachment = message.photo[-1] if message.photo else message.document
        assert attachment is not None
        limit = self.service.limits.max_upload_bytes
        if attachment.file_size and attachment.file_size > limit:
            size, most = f"{attachment.file_size / 1e6:.0f}", f"{limit / 1e6:.0f}"
            await message.reply_text(say(lang, "file_too_big", size=size, limit=most))
            return None
        folder = self.service.uploads_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{new_job_id()}{_suffix(message)}"
        await (await attachment.get_file()).download_to_drive(path)
        try:
            return await asyncio.to_thread(as_jpeg_if_heic, path)
        except InputImageError:
            path.unlink(missing_ok=True)
            await message.reply_text(say(lang, "refused", reason=say(lang, "not_image")))
            return None

    def _options_for(self, user: User, image: Path | None) -> dict[str, Any]:
        chosen = {k: v for k, v in self.service.store.choices(user.id).items() if k != "shape"}
        if image is not None and "width" not in chosen:  # no shape chosen: the photo's (portrait -> portrait)
            chosen.update(photo_shape(image, self.service.settings.defaults))
        return chosen

    async def _start_job(
        self,
        message: Message,
        prompt: str,
        *,
        image: Path | None = None,
        last_image: Path | None = None,
        options: dict[str, Any] | None = None,
        confirmed: bool = False,
    ) -> Job | None:
        user = message.from_user
        assert user is not None
        lang = self.language(user)
        chosen = dict(options) if options is not None else self._options_for(user, image)
        chosen.setdefault("seed", random.randrange(2**31))  # always a seed, so a good result can be reproduced
        try:
            check_quota(self.service.store, _owner(user), self.service.limits)
            parameters = job_parameters(
                prompt, options=chosen, defaults=self.service.settings.defaults, limits=self.service.limits,
                image=image, last_image=last_image,
            )  # fmt: skip
        except JobRefused as exc:
            for photo in (image, last_image):  # a refused photo is deleted at once: nothing will ever read it
                if photo is not None:
                    photo.unlink(missing_ok=True)
            await message.reply_text(say(lang, "refused", reason=refusal_text(str(exc), lang)), do_quote=True)
            return None
        if not confirmed and float(parameters["seconds"]) >= self.confirm_seconds:
            held = {"text": prompt, "message": message, "image": image, "last_image": last_image, "options": chosen}
            await self._ask_first(held, parameters, lang)
            return None
        job = make_job(_owner(user), parameters, chat_id=message.chat_id, lang=self.stated_language(user))
        self.people.remember_job(job.id, message.message_id, lang)
        text = self.status.text_for(job, lang)
        sent = await message.reply_text(text, reply_markup=running_buttons(job, lang), do_quote=True)
        job.status_message_id = sent.message_id
        self.status.track(job, sent.message_id, text)
        return self.service.runner.submit(job)

    async def _ask_first(self, held: dict[str, Any], parameters: dict[str, Any], lang: str) -> None:
        message: Message = held["message"]
        token = self._hold(held)
        recipe, seconds = str(parameters.get("recipe")), float(parameters["seconds"])
        took, paid = self.estimate(recipe, seconds), self.estimate_cost(recipe, seconds)
        from vidfarm_service.catalogue import duration

        eta = duration(took, lang) if took is not None else "?"
        values: dict[str, Any] = {"seconds": f"{seconds:g}", "eta": eta}
        key = "confirm_expensive" if paid is None else "confirm_expensive_cost"
        buttons = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(say(lang, "confirm_yes"), callback_data=f"go:{token}"),
                    InlineKeyboardButton(say(lang, "confirm_no"), callback_data=f"drop:{token}"),
                ]
            ]  # fmt: skip
        )
        await message.reply_text(
            say(lang, key, **values, **({} if paid is None else {"cost": paid})), reply_markup=buttons
        )

    def _hold(self, pending: dict[str, Any]) -> str:
        token = secrets.token_hex(4)
        self._pending[token] = pending
        return token

    def estimate(self, recipe: str, seconds: float) -> float | None:
        """Seconds of rendering for `seconds` of video with `recipe`, from this farm's last finished jobs."""
        return estimates.render_seconds(self.service.store.recent(limit=200), recipe, seconds)

    def estimate_cost(self, recipe: str, seconds: float) -> float | None:
        """Dollars of rented GPU time for it, from what the fleet billed those jobs; None without rented GPUs."""
        return estimates.gpu_cost(self.service.store.recent(limit=200), recipe, seconds)

    # buttons
    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        if not self.allowed(update.effective_user):
            return await self._refuse(update)
        verb, _, argument = (query.data or "").partition(":")
        handler = {"opt": self._choose, "lang": self._choose_language, "go": self._go, "drop": self._drop}.get(verb)
        if handler is not None:
            return await handler(update, argument)
        if verb == "noop":
            return void(await query.answer())
        job = self.service.store.get(argument)
        lang = self.language(query.from_user)
        if job is None or job.owner != _owner(query.from_user):
            return void(await query.answer(say(lang, "not_yours")))
        await self._job_button(update, verb, job, lang)

    async def _job_button(self, update: Update, verb: str, job: Job, lang: str) -> None:
        query = update.callback_query
        assert query is not None
        if verb == "cancel":
            await self.service.runner.cancel(job.id)
            return void(await query.answer(say(lang, "stage_canceling")))
        if verb in ("resend", "link"):
            return await self._resend(update, verb, job, lang)
        changes = variant(job, verb)
        if changes is None or not isinstance(query.message, Message):
            return void(await query.answer())
        await query.answer(say(lang, "starting_again"))
        options = {k: job.parameters[k] for k in CHOOSABLE if k in job.parameters}
        image, last_image = (
            Path(job.parameters[k]) if job.parameters.get(k) else None for k in ("image", "last_image")
        )
        await self._start_job(
            _as_user_message(query.message, query.from_user),
            str(job.parameters["prompt"]),
            image=image,
            last_image=last_image,
            options={**options, **changes},
        )

    async def _resend(self, update: Update, verb: str, job: Job, lang: str) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        if job.status is not JobStatus.SUCCEEDED or job.chat_id is None:
            return void(await self.app.bot.send_message(query.from_user.id, say(lang, "no_result")))
        if verb == "resend":
            return await self.delivery.succeeded(job, lang)
        link, expires = self.delivery.links(job, lang)
        await self.app.bot.send_message(job.chat_id, say(lang, "link_new", link=link, expires=expires))

    async def _choose(self, update: Update, argument: str) -> None:
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        lang, defaults = self.language(user), self.service.settings.defaults
        choices = self.service.store.choices(user.id)
        try:
            changed = apply_choice(choices, argument, defaults)
        except WorkflowError as exc:
            return void(await query.answer(say(lang, "option_invalid", detail=str(exc))[:190], show_alert=True))
        self.service.store.set_choices(user.id, choices)
        await query.answer(say(lang, "option_saved" if changed else "option_same"))
        if changed and isinstance(query.message, Message):
            await query.message.edit_text(
                options_text(choices, defaults, lang, self.estimate, self.estimate_cost),
                reply_markup=options_keyboard(choices, defaults, lang),
            )

    async def _choose_language(self, update: Update, argument: str) -> None:
        query = update.callback_query
        assert query is not None
        if argument in ("en", "ja"):
            self.people.choose_language(query.from_user.id, argument)
        await query.answer()
        await self.app.bot.send_message(query.from_user.id, say(self.language(query.from_user), "lang_set"))

    async def _go(self, update: Update, token: str) -> None:
        query = update.callback_query
        assert query is not None
        pending = self._pending.pop(token, None)
        await query.answer()
        if pending is None:
            return
        message: Message = pending["message"]
        await self._start_job(
            message, pending["text"], image=pending.get("image"), last_image=pending.get("last_image"),
            options=pending.get("options"), confirmed=True,
        )  # fmt: skip

    async def _drop(self, update: Update, token: str) -> None:
        query = update.callback_query
        assert query is not None
        self._pending.pop(token, None)
        await query.answer(say(self.language(query.from_user), "not_started"))

    async def on_error(self, update: object, context: Context) -> None:
        log.error("telegram handler failed: %s", type(context.error).__name__, exc_info=context.error)
        if isinstance(update, Update) and update.effective_message:
            await update.effective_message.reply_text(say(self.language(update.effective_user), "oops"))


def void(_: object) -> None:
    """Lets a handler `return` right after a reply (PTB handlers return None)."""


def variant(job: Job, verb: str) -> dict[str, Any] | None:
    """The options a result's button changes: a new seed, the same seed, twice as long, portrait, VR180."""
    p = job.parameters
    width, height = int(p.get("width", 1280)), int(p.get("height", 720))
    changes: dict[str, dict[str, Any]] = {
        "again": {"seed": random.randrange(2**31)},
        "same": {},
        "longer": {"seconds": float(p.get("seconds", 8)) * 2},
        "vertical": {"width": min(width, height), "height": max(width, height)},
        "vr180": {"vr": "vr180_mono"},
    }
    return changes.get(verb)


def photo_shape(image: Path, defaults: dict[str, Any]) -> dict[str, int]:
    """The default size turned to the photo's orientation (EXIF rotation applied): portrait in, portrait out."""
    try:
        with Image.open(image) as picture:
            width, height = ImageOps.exif_transpose(picture).size
    except OSError:
        return {}  # not readable: job_parameters refuses it with the clear message
    long, short = (
        max(int(defaults.get("width", 1280)), int(defaults.get("height", 720))),
        min(int(defaults.get("width", 1280)), int(defaults.get("height", 720))),
    )
    if abs(width - height) <= 0.1 * max(width, height):
        return {"width": short, "height": short}
    return {"width": short, "height": long} if height > width else {"width": long, "height": short}


def as_jpeg_if_heic(path: Path) -> Path:
    """HEIC/HEIF (iPhone photos sent as files) converted on arrival, so the pipeline sees a JPEG."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head[4:8] != b"ftyp" or head[8:12] not in (b"heic", b"heix", b"mif1", b"msf1", b"heif"):
        return path
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(str(path))
        picture = Image.frombytes(heif.mode, heif.size, bytes(heif.data), "raw", heif.mode, heif.stride)
    except (ValueError, RuntimeError, OSError) as exc:
        raise InputImageError("not a readable HEIC photo") from exc
    converted = path.with_suffix(".jpg")
    picture.convert("RGB").save(converted, "JPEG", quality=92)
    path.unlink()
    return converted


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


def recipe_names() -> tuple[str, ...]:
    return tuple(load_recipes())


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Telegram connection failed", exc_info=task.exception())
