"""Signed, expiring links to a job's files: HMAC-SHA256 over (job, file kind, expiry), so a phone can stream the
full-resolution video without the API token, and a link cannot be widened to another job or kept past its time."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

KINDS = ("video", "preview", "thumbnail")


class LinkSigner:
    def __init__(self, key: bytes, *, public_url: str, ttl_seconds: int) -> None:
        self._key = key
        self.public_url = public_url.rstrip("/")
        self.ttl_seconds = ttl_seconds

    def signature(self, job_id: str, kind: str, expires: int) -> str:
        message = f"{job_id}\n{kind}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, job_id: str, kind: str = "video", *, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.ttl_seconds)
        query = urlencode({"expires": expires, "sig": self.signature(job_id, kind, expires)})
        return (
            f"{self.public_url}/files/{job_id}/{kind}.mp4?{query}"
            if kind != "thumbnail"
            else (f"{self.public_url}/files/{job_id}/{kind}.jpg?{query}")
        )

    def verify(self, job_id: str, kind: str, expires: int, sig: str, *, now: float | None = None) -> bool:
        if kind not in KINDS or expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.signature(job_id, kind, expires), sig)
