"""The link a phone opens: a small page that *plays* the video (HTML5 <video>, which streams with Range requests),
a download button and the job's details; and the signed files it uses, answering HEAD and Range, `inline` unless
the download button asks for an attachment. Guarded by the link's own HMAC (links.py), never the API token.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from vidfarm_service.catalogue import pick_language, say
from vidfarm_service.context import Service
from vidfarm_service.jobs import Job
from vidfarm_service.links import KINDS, PAGE

watch = APIRouter()


def _service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


ServiceDep = Annotated[Service, Depends(_service)]


def _signed_job(svc: Service, job_id: str, kind: str, expires: int, sig: str, lang: str) -> Job:
    job = svc.store.get(job_id)
    if job is None or not svc.signer.verify(job_id, kind, expires, sig):
        raise HTTPException(403, say(lang, "watch_expired"))
    return job


def _page_language(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.headers.get("accept-language", "")[:5])


@watch.api_route("/watch/{job_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def watch_page(job_id: str, expires: int, sig: str, request: Request, svc: ServiceDep) -> HTMLResponse:
    lang = _page_language(request)
    job = _signed_job(svc, job_id, PAGE, expires, sig, lang)
    if not (job.result or {}).get("video"):
        raise HTTPException(404, say(lang, "no_result"))
    video, poster = (svc.signer.url(job_id, kind, expires=expires) for kind in ("video", "thumbnail"))
    return HTMLResponse(render_page(job, video, lang, poster_url=poster))


def render_page(job: Job, video_url: str, lang: str, *, poster_url: str = "") -> str:
    """The page; each file link carries its own signature (one is bound to one file of one job)."""
    result, p = job.result or {}, job.parameters
    details = say(
        lang,
        "watch_details",
        width=result.get("width"),
        height=result.get("height"),
        duration=f"{float(result.get('duration', 0)):.1f}",
        seed=p.get("seed", "?"),
        recipe=p.get("recipe", ""),
    )
    prompt, src = html.escape(str(p.get("prompt", ""))), html.escape(video_url)
    download = html.escape(video_url + "&download=1")
    poster = html.escape(poster_url)
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(say(lang, "watch_title"))}</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; background: #111; color: #eee; }}
main {{ max-width: 960px; margin: 0 auto; padding: 12px; }}
video {{ width: 100%; max-height: 80vh; background: #000; border-radius: 8px; }}
p.prompt {{ font-size: 1.1rem; line-height: 1.4; }}
p.details {{ color: #aaa; font-size: 0.9rem; }}
a.download {{ display: inline-block; padding: 14px 22px; border-radius: 10px; background: #2b6cff; color: #fff;
  text-decoration: none; font-size: 1.05rem; }}
</style></head>
<body><main>
<video id="video" controls playsinline preload="metadata" poster="{poster}" src="{src}"></video>
<p class="prompt">{prompt}</p>
<p class="details">{html.escape(details)}</p>
<a class="download" id="download" href="{download}">{html.escape(say(lang, "watch_download"))}</a>
</main></body></html>
"""


@watch.api_route("/files/{job_id}/{name}", methods=["GET", "HEAD"])
async def signed_file(
    job_id: str, name: str, expires: int, sig: str, request: Request, svc: ServiceDep, download: int = 0
) -> FileResponse:
    kind = name.rsplit(".", 1)[0]
    job = _signed_job(svc, job_id, kind, expires, sig, _page_language(request))
    return file_response(job, kind, attachment=bool(download))


def file_response(job: Job, kind: str, *, attachment: bool = False) -> FileResponse:
    """A job's file with Range and HEAD (Starlette's FileResponse); inline, so a browser plays it."""
    if kind not in KINDS:
        raise HTTPException(404, f"no file kind {kind}; one of {', '.join(KINDS)}")
    path = (job.result or {}).get(kind)
    if not path or not Path(path).is_file():
        raise HTTPException(404, f"job {job.id} has no {kind} (status {job.status.value})")
    media = "image/jpeg" if kind == "thumbnail" else "video/mp4"
    return FileResponse(
        path,
        media_type=media,
        filename=f"{job.id}-{kind}{Path(path).suffix}",
        content_disposition_type="attachment" if attachment else "inline",
    )
