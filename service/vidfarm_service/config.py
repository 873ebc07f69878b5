"""The service's configuration: one pydantic-settings tree, read from `VIDFARM_SERVICE_*` variables, checked at start.

Secrets are SecretStr and placeholders ("changeme", short strings) are refused, so a copied example never goes live.
Adapters get plain arguments taken from here, never this object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidfarm.comfy.local import REPO

PLACEHOLDERS = {"changeme", "change-me", "secret", "token", "password", "xxx", "todo", "example"}
MIN_SECRET_CHARS = 16


def _refuse_placeholder(name: str, secret: SecretStr | None) -> None:
    if secret is None:
        return
    value = secret.get_secret_value()
    if value.lower() in PLACEHOLDERS or len(value) < MIN_SECRET_CHARS:
        raise ValueError(
            f"{name} is a placeholder or shorter than {MIN_SECRET_CHARS} characters; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


class Settings(BaseSettings):
    # env_ignore_empty: `VIDFARM_SERVICE_TELEGRAM_TOKEN=` (as .env.example ships it) means unset, not "".
    model_config = SettingsConfigDict(
        env_prefix="VIDFARM_SERVICE_",
        env_file=None,
        extra="ignore",
        env_ignore_empty=True,
        hide_input_in_errors=True,  # a refused setting's message names it, never prints its (secret) value
    )

    # access
    api_token: SecretStr = Field(description="the REST API's admin bearer token: it sees and runs every job")
    api_users: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="REST users, name -> bearer token: each sees only its own jobs and has its own quota",
    )
    link_secret: SecretStr = Field(description="HMAC key for signed download links")
    public_url: str = Field(default="http://127.0.0.1:8000", description="how phones reach this service")
    link_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # telegram
    telegram_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    telegram_mode: Literal["polling", "webhook", "off"] = "polling"
    telegram_webhook_secret: SecretStr | None = None
    telegram_poll_timeout: float = Field(default=10.0, ge=0)
    admin_ids: list[int] = Field(default_factory=list)
    allowed_ids: list[int] = Field(default_factory=list, description="allowed at start, besides admins")
    status_edit_seconds: float = Field(default=3.0, ge=0)
    telegram_max_upload_bytes: int = Field(
        default=50_000_000, ge=1, le=2_000_000_000, description="50 MB (api.telegram.org); 2 GB with a local Bot API"
    )
    keyframe_photos: int = Field(default=8, ge=0, le=20, description="keyframe thumbnails shown while rendering")
    confirm_seconds: float = Field(default=60.0, gt=0, description="videos this long ask before they start")

    # limits
    jobs_per_day: int = Field(default=20, ge=1)
    gpu_minutes_per_day: float = Field(default=120.0, gt=0)
    max_upload_bytes: int = Field(default=20_000_000, ge=1024)
    max_prompt_chars: int = Field(default=2000, ge=10)
    max_seconds: float = Field(default=120.0, gt=0)

    # running
    data_dir: Path = Field(
        default=REPO / ".vidfarm" / "service",
        description="job database, uploads, executed notebooks, videos (docker-compose.yml: the service-data volume)",
    )
    notebook: Path = REPO / "notebooks" / "10_long_video.ipynb"
    kernel_name: str = "python3"
    max_parallel: int = Field(default=1, ge=1)
    cancel_grace_seconds: float = Field(default=5.0, ge=0)
    stop_grace_seconds: float = Field(
        default=5.0, ge=0, description="a job's processes get SIGTERM, then SIGKILL this long after (stop, cancel)"
    )

    # files (vidfarm.jobs.retention; docs/deploy.md "Disk")
    keep_days: float = Field(default=14.0, gt=0, description="a finished job's video, preview and record")
    upload_grace_minutes: float = Field(default=60.0, ge=0, description="an upload no job names")
    sweep_minutes: float = Field(default=60.0, gt=0, description="how often expired files are deleted")
    defaults: dict[str, object] = Field(
        default_factory=lambda: dict[str, object](seconds=8.0, width=1280, height=720),
        description="notebook parameters every job starts from (JSON); the recipe, unless set here, is the "
        "pipeline's default (a real model: set workers for it, or 'recipe': 'standin' for a model-free demo)",
    )

    # the fleet: rented GPU workers per job (provider "none": the notebook's own `workers`, e.g. local CPU ones)
    fleet_provider: Literal["none", "vast", "runpod"] = "none"
    fleet_api_key: SecretStr | None = Field(default=None, description="the provider account's key (master only)")
    fleet_api_url: str = Field(default="", description="provider API base (empty: the provider's; tests: a fake)")
    fleet_graphql_url: str = Field(default="", description="RunPod only: where GPU prices are asked")
    fleet_gpu: str = Field(default="", description="GPU model (Vast gpu_name, RunPod gpuTypeId); empty: any")
    fleet_max_price: float = Field(default=0.8, gt=0, description="$/hour cap per worker")
    fleet_budget_hour: float = Field(default=4.0, gt=0)
    fleet_budget_day: float = Field(default=40.0, gt=0)
    fleet_budget_user_day: float = Field(default=5.0, gt=0, description="$ per user per UTC day")
    fleet_max_workers: int = Field(default=4, ge=1)
    fleet_workers_per_job: int = Field(
        default=1, ge=1, description="1 is the cheapest (benchmarks/fleet_cost.py); more: a faster video, paid as tails"
    )
    fleet_warm_workers: int = Field(default=0, ge=0)
    fleet_idle_timeout_s: float = Field(default=60.0, ge=0, description="tuned in benchmarks/fleet_cost.py")
    fleet_boot_timeout_s: float = Field(default=1500.0, gt=0)
    fleet_wait_s: float = Field(default=1800.0, gt=0, description="how long a job waits for its first worker")
    fleet_tick_s: float = Field(default=5.0, gt=0)
    fleet_image: str = "ghcr.io/vidfarm/worker:0.1"
    fleet_label: str = Field(default="vidfarm-svc", description="label prefix: orphans with it are destroyed")
    fleet_recipes: list[str] = Field(default_factory=list, description="recipes workers load (empty: defaults')")
    fleet_worker_env: dict[str, str] = Field(default_factory=dict, description="extra worker start-up variables")

    @field_validator("api_token", "link_secret", "telegram_token", "telegram_webhook_secret", "fleet_api_key")
    @classmethod
    def _no_placeholders(cls, value: SecretStr | None, info: object) -> SecretStr | None:
        _refuse_placeholder(str(getattr(info, "field_name", "secret")), value)
        return value

    @field_validator("api_users")
    @classmethod
    def _user_tokens(cls, users: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, token in users.items():
            if not re.fullmatch(r"[a-z0-9_-]{1,32}", name):
                raise ValueError(f"api_users: the name {name!r} is not 1-32 of a-z 0-9 _ -")
            _refuse_placeholder(f"api_users[{name}]", token)
        tokens = [t.get_secret_value() for t in users.values()]
        if len(set(tokens)) < len(tokens):
            raise ValueError("api_users: two users have the same token; give each its own")
        return users

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.api_token.get_secret_value() in {t.get_secret_value() for t in self.api_users.values()}:
            raise ValueError("api_users: a user's token is the admin's api_token; give each user its own")
        if self.telegram_mode == "webhook" and self.telegram_webhook_secret is None:
            raise ValueError(
                "telegram_mode=webhook needs VIDFARM_SERVICE_TELEGRAM_WEBHOOK_SECRET (1-256 of A-Za-z0-9_-)"
            )
        return self

    @model_validator(mode="after")
    def _fleet_needs_key(self) -> Settings:
        if self.fleet_provider != "none" and self.fleet_api_key is None:
            raise ValueError(f"fleet_provider={self.fleet_provider} needs VIDFARM_SERVICE_FLEET_API_KEY")
        return self

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_token is not None and self.telegram_mode != "off"
