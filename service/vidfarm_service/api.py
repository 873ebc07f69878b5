"""The REST API for the same jobs the bot runs. A bearer token guards everything except signed file links (their
own HMAC) and the Telegram webhook (Telegram's secret-token header).

Who calls is the token: the admin's (`api_token`) sees and cancels every job; a user's (`api_users`) runs jobs as
owner `api:<name>`, under that owner's quota, and sees only those: another's job is a 404, as if it did not exist."""

from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vidfarm.errors import JobRefused
from vidfarm_service.context import Service
from vidfarm_service.jobs import Job
from vidfarm_service.links import PAGE
from vidfarm_service.submissions import check_quota, job_parameters, make_job
from vidfarm_service.watch import file_response

API_OWNER = "api"
CHUNK = 1 << 20


class JobCreate(BaseModel):
    """A job from the REST API: a field it does not know is refused (422), never silently ignored."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    seconds: float | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    strategy: str | None = None
    recipe: str | None = None
    seed: int | None = None
    keyframes: str | None = None  # derived (from keyframe 0: one subject) | independent
    color_match: float | None = None  # 0..1: how strongly segments are held to keyframe 0's colours
    vr: str | None = None  # empty, or vr180_mono: also a VR180 copy


class LinkPublic(BaseModel):
    url: str
    expires_in: int = Field(description="seconds")


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


ServiceDep = Annotated[Service, Depends(service)]


@dataclass(frozen=True)
class Caller:
    owner: str  # the owner its jobs get
    admin: bool

    def may_see(self, job: Job) -> bool:
        return self.admin or job.owner == self.owner


def require_token(svc: ServiceDep, authorization: Annotated[str, Header()] = "") -> Caller:
    given = authorization.encode()
    found: Caller | None = None
    # every token compared (in constant time each), so the answer's timing does not tell which one nearly matched
    if hmac.compare_digest(given, f"Bearer {svc.settings.api_token.get_secret_value()}".encode()):
        found = Caller(API_OWNER, admin=True)
    for name, token in svc.settings.api_users.items():
        if hmac.compare_digest(given, f"Bearer {token.get_secret_value()}".encode()):
            found = Caller(f"{API_OWNER}:{name}", admin=False)
    if found is None:
        raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer <your API token>'")
    return found


CallerDep = Annotated[Caller, Depends(require_token)]
api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
public = APIRouter()


HIDDEN = ("workers", "head_url", "head_token")  # the farm's settings (from DEFAULTS), not the job's request


def shown(job: Job) -> dict[str, Any]:
    """A job as the API shows it: without the pool's addresses and tokens."""
    body = job.public()
    body["parameters"] = {k: v for k, v in job.parameters.items() if k not in HIDDEN}
    return body


def _job_or_404(svc: Service, job_id: str, caller: Caller) -> Job:
    job = svc.store.get(job_id)
    if job is None or not caller.may_see(job):  # another's job is answered as one that does not exist
        raise HTTPException(404, f"no job {job_id}: GET /api/jobs lists yours")
    return job


def _submit(
    svc: Service, caller: Caller, prompt: str, options: dict[str, Any], image: Path | None = None
) -> dict[str, Any]:
    check_quota(svc.store, caller.owner, svc.limits)
    parameters = job_parameters(prompt, options=options, defaults=svc.settings.defaults, limits=svc.limits, image=image)
    return shown(svc.runner.submit(make_job(caller.owner, parameters)))


@api.post("/jobs", status_code=201)
async def create_job(body: JobCreate, svc: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    return _submit(svc, caller, body.prompt, body.model_dump(exclude={"prompt"}, exclude_none=True))


@api.post("/jobs/upload", status_code=201)
async def create_job_with_image(
    svc: ServiceDep,
    caller: CallerDep,
    image: Annotated[UploadFile, File(description="PNG/JPEG/WEBP/BMP photo for image-to-video")],
    prompt: Annotated[str, Form()],
    options: Annotated[str, Form(description='JSON object of options, e.g. {"seconds": 8}')] = "{}",
) -> dict[str, Any]:
    try:
        chosen = json.loads(options)
    except ValueError:
        raise JobRefused('options must be a JSON object, e.g. {"seconds": 8}') from None
    if not isinstance(chosen, dict):
        raise JobRefused('options must be a JSON object, e.g. {"seconds": 8}')
    path = await save_upload(image, svc.uploads_dir, max_bytes=svc.limits.max_upload_bytes)
    try:
        return _submit(svc, caller, prompt, chosen, path)
    except BaseException:  # refused (quota, prompt, not an image): nothing will ever read it
        path.unlink(missing_ok=True)
        raise


async def save_upload(upload: UploadFile, folder: Path, *, max_bytes: int) -> Path:
    """Stream to disk, stopping at `max_bytes` (a 100 MB upload never fills the disk or the memory)."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(upload.filename or "upload").suffix.lower()[:6] or ".img"
    path = folder / f"{make_job('x', {}).id}{suffix}"
    written = 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                out.close()
                path.unlink()
                raise HTTPException(
                    413, f"the image is over {max_bytes / 1e6:.0f} MB; send a smaller or more compressed one"
                )
            out.write(chunk)
    return path


@api.get("/jobs")
async def list_jobs(
    svc: ServiceDep, caller: CallerDep, limit: int = 50, owner: str | None = None
) -> list[dict[str, Any]]:
    """The caller's jobs, newest first; the admin's: everyone's, or one owner's with `owner`."""
    if not caller.admin:
        if owner not in (None, caller.owner):
            raise HTTPException(403, "only the admin token lists other owners' jobs")
        owner = caller.owner
    return [shown(job) for job in svc.store.recent(limit=min(limit, 500), owner=owner)]


@api.get("/jobs/{job_id}")
async def get_job(job_id: str, svc: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    return shown(_job_or_404(svc, job_id, caller))


@api.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, svc: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    _job_or_404(svc, job_id, caller)
    job = await svc.runner.cancel(job_id)
    assert job is not None
    return shown(job)


@api.get("/jobs/{job_id}/files/{kind}")
async def download(job_id: str, kind: str, svc: ServiceDep, caller: CallerDep) -> FileResponse:
    return file_response(_job_or_404(svc, job_id, caller), kind)


@api.get("/jobs/{job_id}/link")
async def signed_link(job_id: str, svc: ServiceDep, caller: CallerDep, kind: str = "video") -> LinkPublic:
    """A signed link to a file, or (kind=watch) to the page that plays the video."""
    file_response(_job_or_404(svc, job_id, caller), "video" if kind == PAGE else kind)  # 404 unless there is one
    return LinkPublic(url=svc.signer.url(job_id, kind), expires_in=svc.signer.ttl_seconds)


@api.get("/jobs/{job_id}/notebook", response_class=HTMLResponse)
async def executed_notebook(job_id: str, svc: ServiceDep, caller: CallerDep) -> HTMLResponse:
    _job_or_404(svc, job_id, caller)
    executed = svc.runner.executed_notebook(job_id)
    if not executed.exists():
        raise HTTPException(404, f"job {job_id} has not started its notebook yet")
    return HTMLResponse(await asyncio.to_thread(render_html, executed))


def render_html(executed: Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
    for cell in notebook.cells:  # papermill wrote every parameter there, the farm's pool settings too
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = redacted(cell.source)
    body, _ = HTMLExporter().from_notebook_node(notebook)  # type: ignore[no-untyped-call]
    return str(body)


def redacted(source: str) -> str:
    """The injected parameters without the values the API never shows (the head's and the workers' addresses and
    tokens, from DEFAULTS): the record stays readable by the job's owner."""
    lines = []
    for line in source.splitlines():
        name = line.split("=", 1)[0].strip()
        lines.append(f'{name} = "<hidden>"' if "=" in line and name in HIDDEN else line)
    return "\n".join(lines)


@public.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@public.post("/telegram/webhook")
async def telegram_webhook(
    request: Request, svc: ServiceDep, secret: Annotated[str, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = ""
) -> JSONResponse:
    expected = svc.settings.telegram_webhook_secret
    if svc.bot is None or expected is None or svc.settings.telegram_mode != "webhook":
        raise HTTPException(404, "the Telegram webhook is off (VIDFARM_SERVICE_TELEGRAM_MODE=webhook turns it on)")
    if not hmac.compare_digest(secret.encode(), expected.get_secret_value().encode()):
        raise HTTPException(403, "wrong X-Telegram-Bot-Api-Secret-Token")
    try:
        update = await request.json()
    except ValueError:
        raise HTTPException(400, "the webhook body is not JSON") from None
    try:
        await svc.bot.feed(update)
    except (AttributeError, KeyError, TypeError, ValueError):  # python-telegram-bot's de_json on a non-update
        raise HTTPException(400, "the webhook body is not a Telegram update") from None
    return JSONResponse({"ok": True})
