"""Signed, expiring links to a job's files: HMAC-SHA256 over (job, file kind, expiry), so a phone can stream the
full-resolution video without the API token, and a link cannot be widened to another job or kept past its time.
The "watch" kind is the job's page (a player, a download button, its details), which embeds the video's own link
with the same expiry."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

KINDS = ("video", "preview", "thumbnail")
PAGE = "watch"


class LinkSigner:
    def __init__(self, key: bytes, *, public_url: str, ttl_seconds: int) -> None:
        self._key = key
        self.public_url = public_url.rstrip("/")
        self.ttl_seconds = ttl_seconds

    def signature(self, job_id: str, kind: str, expires: int) -> str:
        message = f"{job_id}\n{kind}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def expiry(self, *, now: float | None = None) -> int:
        return int((now if now is not None else time.time()) + self.ttl_seconds)

    def url(self, job_id: str, kind: str = "video", *, now: float | None = None, expires: int | None = None) -> str:
        expires = expires if expires is not None else self.expiry(now=now)
        query = urlencode({"expires": expires, "sig": self.signature(job_id, kind, expires)})
        if kind == PAGE:
            return f"{self.public_url}/watch/{job_id}?{query}"
        suffix = "jpg" if kind == "thumbnail" else "mp4"
        return f"{self.public_url}/files/{job_id}/{kind}.{suffix}?{query}"

    def verify(self, job_id: str, kind: str, expires: int, sig: str, *, now: float | None = None) -> bool:
        if kind not in (*KINDS, PAGE) or expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.signature(job_id, kind, expires), sig)
