"""Wiring: settings -> store, runner, signer, bot, FastAPI app. The one place that knows about all of them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from vidfarm.errors import JobRefused, QuotaExceeded, VidfarmError
from vidfarm.jobs.retention import Policy
from vidfarm_service.api import JobCreate, api, public
from vidfarm_service.config import Settings
from vidfarm_service.context import Service
from vidfarm_service.jobs import JobStore
from vidfarm_service.links import LinkSigner
from vidfarm_service.retention import Sweeper
from vidfarm_service.runner import Runner
from vidfarm_service.submissions import Limits
from vidfarm_service.watch import watch

log = logging.getLogger(__name__)
UPLOAD_FORM_SLACK = 64 * 1024  # room for the prompt, the options and multipart boundaries


def build_service(settings: Settings) -> Service:
    store = JobStore(settings.data_dir / "jobs.sqlite")
    fleet = None
    if settings.fleet_provider != "none":
        from vidfarm_service.fleet import build_fleet

        fleet = build_fleet(settings)
    runner = Runner(
        store,
        notebook=settings.notebook,
        data_dir=settings.data_dir,
        kernel_name=settings.kernel_name,
        max_parallel=settings.max_parallel,
        cancel_grace_seconds=settings.cancel_grace_seconds,
        stop_grace_seconds=settings.stop_grace_seconds,
        fleet=fleet,
    )
    signer = LinkSigner(
        settings.link_secret.get_secret_value().encode(),
        public_url=settings.public_url,
        ttl_seconds=settings.link_ttl_seconds,
    )
    limits = Limits(
        max_prompt_chars=settings.max_prompt_chars,
        max_seconds=settings.max_seconds,
        max_upload_bytes=settings.max_upload_bytes,
        jobs_per_day=settings.jobs_per_day,
        gpu_minutes_per_day=settings.gpu_minutes_per_day,
    )
    service = Service(settings, store, runner, signer, limits)
    service.sweeper = Sweeper(
        store,
        settings.data_dir,
        Policy(keep_days=settings.keep_days, upload_grace_minutes=settings.upload_grace_minutes),
        every_seconds=settings.sweep_minutes * 60,
    )
    if settings.telegram_enabled:
        from vidfarm_service.bot import TelegramBot

        assert settings.telegram_token is not None
        service.bot = TelegramBot(
            service,
            token=settings.telegram_token.get_secret_value(),
            base_url=settings.telegram_base_url,
            base_file_url=settings.telegram_base_file_url,
            polling=settings.telegram_mode == "polling",
            poll_timeout=settings.telegram_poll_timeout,
            admin_ids=settings.admin_ids,
            status_edit_seconds=settings.status_edit_seconds,
            max_upload_bytes=settings.telegram_max_upload_bytes,
            confirm_seconds=settings.confirm_seconds,
        )
        redact_in_logs(settings.telegram_token.get_secret_value())
        if urlsplit(settings.public_url).hostname in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "VIDFARM_SERVICE_PUBLIC_URL is %s: links sent to phones will not open; set it to the address "
                "phones reach (docs/phone.md, 'Public links')",
                settings.public_url,
            )
    for user_id in settings.allowed_ids:
        store.allow(user_id, added_by=0)
    return service


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "<telegram token>"), None
        return True


def redact_in_logs(secret: str) -> None:
    """The bot token never reaches a log line (PTB's InvalidToken and httpx's URLs both carry it)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Redact(secret))


def create_app(settings: Settings) -> FastAPI:
    service = build_service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.runner.fleet:
            await service.runner.fleet.start()  # orphans a previous service left are destroyed first
        await service.runner.start()
        service.sweeper.start()
        if service.bot:
            await service.bot.start()
        log.info("vidfarm service up (telegram: %s)", settings.telegram_mode if service.bot else "off")
        try:
            yield
        finally:
            if service.bot:
                await service.bot.stop()
            await service.sweeper.stop()
            await service.runner.stop()
            if service.runner.fleet:
                await service.runner.fleet.stop()  # every rented worker destroyed
            service.store.close()

    app = FastAPI(title="vidfarm", lifespan=lifespan)
    app.state.service = service
    app.include_router(api)
    app.include_router(public)
    app.include_router(watch)

    @app.middleware("http")
    async def refuse_oversized_uploads(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """A declared body far over the upload limit is refused before a byte of it is read or spooled."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > service.limits.max_upload_bytes + UPLOAD_FORM_SLACK:
            limit = service.limits.max_upload_bytes / 1e6
            return JSONResponse(
                {"detail": f"the upload is over {limit:.0f} MB; send a smaller or more compressed image"},
                status_code=413,
            )
        return await call_next(request)

    _refusals(app)
    return app


def _refusals(app: FastAPI) -> None:
    """Every refusal in one shape: {"detail", "problems": [{option, problem, allowed}]}."""

    @app.exception_handler(VidfarmError)
    async def refused(request: Request, exc: VidfarmError) -> JSONResponse:
        """A request that cannot be taken is 422 with what to change (per option where known); over quota, 429."""
        status = 429 if isinstance(exc, QuotaExceeded) else 422
        body: dict[str, object] = {"detail": str(exc)}
        if isinstance(exc, JobRefused) and exc.problems:
            body["problems"] = [asdict(p) for p in exc.problems]
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A body FastAPI cannot read (a wrong type, an unknown field) gets the same shape as our own refusals."""
        problems = [_problem(error) for error in exc.errors()]
        detail = "; ".join(f"{p['option']}: {p['problem']}" for p in problems)
        return JSONResponse({"detail": detail, "problems": problems}, status_code=422)


def _problem(error: Any) -> dict[str, str]:
    option = str(error.get("loc", ["?"])[-1])
    if error.get("type") == "extra_forbidden":
        return {"option": option, "problem": "unknown option", "allowed": "one of " + ", ".join(JobCreate.model_fields)}
    return {"option": option, "problem": str(error.get("msg", "cannot be read")), "allowed": "see /docs"}
