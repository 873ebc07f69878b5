"""What the request handlers and the bot share: wired once in `app.create_app`, never at import time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vidfarm_service.config import Settings
from vidfarm_service.jobs import JobStore
from vidfarm_service.links import LinkSigner
from vidfarm_service.retention import Sweeper
from vidfarm_service.runner import Runner
from vidfarm_service.submissions import Limits

if TYPE_CHECKING:
    from vidfarm_service.bot import TelegramBot


@dataclass
class Service:
    settings: Settings
    store: JobStore
    runner: Runner
    signer: LinkSigner
    limits: Limits
    bot: TelegramBot | None = None
    sweeper: Sweeper = field(init=False)  # set by app.build_service

    @property
    def uploads_dir(self) -> Path:
        return self.settings.data_dir / "uploads"
