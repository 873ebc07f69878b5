"""Wiring: settings -> store, runner, signer, bot, FastAPI app. The one place that knows about all of them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vidfarm.errors import JobRefused, VidfarmError
from vidfarm_service.api import api, public
from vidfarm_service.config import Settings
from vidfarm_service.context import Service
from vidfarm_service.jobs import JobStore
from vidfarm_service.links import LinkSigner
from vidfarm_service.runner import Runner
from vidfarm_service.submissions import Limits

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
        )
    for user_id in settings.allowed_ids:
        store.allow(user_id, added_by=0)
    return service


def create_app(settings: Settings) -> FastAPI:
    service = build_service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.runner.fleet:
            await service.runner.fleet.start()  # orphans a previous service left are destroyed first
        await service.runner.start()
        if service.bot:
            await service.bot.start()
        log.info("vidfarm service up (telegram: %s)", settings.telegram_mode if service.bot else "off")
        try:
            yield
        finally:
            if service.bot:
                await service.bot.stop()
            await service.runner.stop()
            if service.runner.fleet:
                await service.runner.fleet.stop()  # every rented worker destroyed
            service.store.close()

    app = FastAPI(title="vidfarm", lifespan=lifespan)
    app.state.service = service
    app.include_router(api)
    app.include_router(public)

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

    @app.exception_handler(VidfarmError)
    async def refused(request: Request, exc: VidfarmError) -> JSONResponse:
        status = 400 if isinstance(exc, JobRefused) else 422
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return app
