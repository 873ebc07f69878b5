"""The HTTP side of one ComfyUI server: submit, history, queue, cancel, files, /object_info, feature detection.

Routes are used without the `/api` prefix because the 2024 servers lack it (transcript §6) and newer ones serve both.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfarm.comfy.compat import missing_node_problem, version_line
from vidfarm.comfy.http import ComfyHttp
from vidfarm.comfy.rejection import problems_from_node_errors, rejection_from_response
from vidfarm.errors import ComfyError, OutputInvalid, PromptRejected
from vidfarm.media.checks import check_upload_image, check_upload_video
from vidfarm.workflow.graph import Graph

DEFAULT_MAX_UPLOAD = 100 * 1024 * 1024  # ComfyUI's --max-upload-size default


@dataclass(frozen=True)
class ServerFeatures:
    """What this server can do, probed once (versions differ: comfyui.md §1, §6, §7)."""

    version: str | None  # None on 2024 servers, which do not report it
    jobs_api: bool  # /api/jobs and /api/jobs/{id}/cancel (2025-12 and later)
    max_upload_size: int

    @property
    def legacy(self) -> bool:
        return self.version is None


@dataclass(frozen=True)
class Submitted:
    prompt_id: str  # the id the server will use: ours, or its own on servers that ignore client ids
    number: float
    honoured_client_id: bool


@dataclass(frozen=True)
class FileRef:
    node_id: str
    filename: str
    subfolder: str
    type: str


class ComfyClient:
    """One ComfyUI server. `token` is sent as a bearer token on every request (workers sit behind a token proxy)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.http = ComfyHttp(url, token=token, timeout=timeout)
        self._features: ServerFeatures | None = None
        self._object_info: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return self.http.url

    def __repr__(self) -> str:
        return f"ComfyClient({self.url!r})"  # never the token

    # --- what the server is -------------------------------------------------------------------------------
    def system_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.http.get_json("/system_stats")
        return stats

    def features(self, *, refresh: bool = False) -> ServerFeatures:
        if self._features is None or refresh:
            system = self.system_stats().get("system", {})
            jobs = self.http.request("GET", "/api/jobs?limit=1")
            upload = DEFAULT_MAX_UPLOAD
            flags = self.http.request("GET", "/features")
            if flags.status_code == 200:
                upload = int(flags.json().get("max_upload_size", upload))
            self._features = ServerFeatures(system.get("comfyui_version"), jobs.status_code == 200, upload)
        return self._features

    def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """Snapshot of the server's node classes; refresh after adding model files."""
        if self._object_info is None or refresh:
            self._object_info = self.http.get_json("/object_info", timeout=120)
        return self._object_info

    def models(self, folder: str) -> list[str]:
        response = self.http.request("GET", f"/models/{folder}")
        if response.status_code == 404:
            return []
        files: list[str] = response.json()
        return files

    # --- prompts ------------------------------------------------------------------------------------------
    def submit(
        self, graph: Graph, *, prompt_id: str, client_id: str, extra_data: dict[str, Any] | None = None
    ) -> Submitted:
        """POST /prompt with an id the caller chose and recorded; any node error is a failure."""
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = extra_data
        response = self.http.post("/prompt", body)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 500 and not isinstance(answer, dict):
            raise self._diagnose_crash(graph, response.status_code, response.text)
        if response.status_code != 200 or not isinstance(answer, dict):
            raise rejection_from_response(response.status_code, answer, response.text)
        problems = problems_from_node_errors(answer.get("node_errors"))
        if problems:
            # HTTP 200 with node_errors: ComfyUI queued only the valid outputs (comfyui.md §2). Stop that run.
            self.cancel(answer.get("prompt_id", prompt_id))
            raise PromptRejected("ComfyUI accepted only part of the workflow; the invalid outputs are", problems)
        server_id = str(answer.get("prompt_id", prompt_id))
        return Submitted(server_id, float(answer.get("number", 0)), server_id == prompt_id)

    def _diagnose_crash(self, graph: Graph, status: int, text: str) -> PromptRejected:
        """A bare HTTP 500: pre-V3 servers answer an unknown node class so. Name the classes it lacks."""
        try:
            known = self.object_info(refresh=True)
            version = self.features().version
        except ComfyError:
            return rejection_from_response(status, None, text)
        problems = [
            missing_node_problem(nid, node["class_type"], server_version=version)
            for nid, node in graph.items()
            if node["class_type"] not in known
        ]
        if not problems:
            return rejection_from_response(status, None, text)
        old = version_line(version, where=self.url)
        return PromptRejected(
            f"ComfyUI failed on the request (HTTP {status}) because the workflow uses node classes it does not "
            f"have{f'. {old}' if old else ''}:",
            problems,
        )

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The finished prompt's history entry, or None while it is pending, running or unknown."""
        entry = self.http.get_json(f"/history/{prompt_id}").get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def queue(self) -> tuple[list[str], list[str]]:
        """(running prompt ids, pending prompt ids)."""
        data = self.http.get_json("/queue")
        return (
            [str(item[1]) for item in data.get("queue_running", [])],
            [str(item[1]) for item in data.get("queue_pending", [])],
        )

    def cancel(self, prompt_id: str) -> None:
        """Cancel one prompt whether pending or running, without touching anyone else's (comfyui.md §6)."""
        if self.features().jobs_api and self._jobs_cancel(prompt_id):
            return
        # No jobs API, or its cancel route is missing (servers of 2025-12 to 2026-06) or refused: do it by hand.
        running, pending = self.queue()
        if prompt_id in pending:
            self.http.post("/queue", {"delete": [prompt_id]})
        if prompt_id in running:
            # Legacy servers ignore the body and interrupt whatever runs; here that is our prompt.
            self.http.post("/interrupt", {"prompt_id": prompt_id})

    def _jobs_cancel(self, prompt_id: str) -> bool:
        """POST /api/jobs/{id}/cancel; True only when the server says it cancelled (it answers {"cancelled": bool})."""
        response = self.http.post(f"/api/jobs/{prompt_id}/cancel")
        if response.status_code != 200:
            return False
        try:
            return bool(response.json().get("cancelled"))
        except (ValueError, AttributeError):
            return False

    # --- files --------------------------------------------------------------------------------------------
    def upload_image(self, path: str | Path, *, subfolder: str = "vidfarm") -> str:
        """Check and upload an input image; returns the value LoadImage takes (`subfolder/name`)."""
        path = Path(path)
        check_upload_image(path, max_bytes=self.features().max_upload_size)
        return self._upload(path, subfolder)

    def upload_video(self, path: str | Path, *, subfolder: str = "vidfarm") -> str:
        """Check and upload an input video; returns the value LoadVideo takes (`subfolder/name`)."""
        path = Path(path)
        check_upload_video(path, max_bytes=self.features().max_upload_size)
        return self._upload(path, subfolder)

    def _upload(self, path: Path, subfolder: str) -> str:
        # ComfyUI stores every input upload (images, videos) through /upload/image.
        with path.open("rb") as handle:
            response = self.http.request(
                "POST",
                "/upload/image",
                files={"image": (path.name, handle)},
                data={"subfolder": subfolder, "type": "input", "overwrite": "true"},
                timeout=300,
            )
        if response.status_code == 413:
            raise ComfyError(f"the server refused {path.name} as too large (HTTP 413)")
        if response.status_code != 200:
            raise ComfyError(f"uploading {path.name} failed with HTTP {response.status_code}")
        answer = response.json()
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else str(answer["name"])

    def download(self, ref: FileRef, dest_dir: str | Path, *, timeout: float = 300) -> Path:
        """Fetch one output with /view into dest_dir, atomically (no half-written file is ever left)."""
        dest_dir = Path(dest_dir)
        name = Path(ref.filename).name  # a server's file name never places a file outside dest_dir
        if name in ("", ".", ".."):
            raise OutputInvalid(f"output {ref.filename!r} of node {ref.node_id} has no usable file name")
        dest_dir.mkdir(parents=True, exist_ok=True)
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        response = self.http.request("GET", "/view", params=params, stream=True, timeout=timeout)
        if response.status_code != 200:
            raise OutputInvalid(
                f"output {ref.subfolder}/{ref.filename} of node {ref.node_id} could not be "
                f"fetched (HTTP {response.status_code})"
            )
        expected = int(response.headers.get("Content-Length", -1))
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
        try:
            written = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
                    written += len(chunk)
            if expected >= 0 and written != expected:
                raise OutputInvalid(f"{ref.filename}: got {written} of {expected} bytes; the transfer was cut")
            final = dest_dir / name
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared like any saved file
            os.replace(tmp, final)
            return final
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        self.http.close()


def file_refs(outputs: dict[str, Any]) -> list[FileRef]:
    """Every file in a history `outputs`: all keys (images, gifs, videos, ...), each dict with filename and type."""
    refs = []
    for node_id, node_output in outputs.items():
        for value in node_output.values():
            if not isinstance(value, list):
                continue
            for item in value:
                if isinstance(item, dict) and "filename" in item and "type" in item:
                    refs.append(
                        FileRef(
                            str(node_id),
                            str(item["filename"]),
                            str(item.get("subfolder", "")),
                            str(item["type"]),
                        )
                    )
    return refs


def new_prompt_id() -> str:
    """Canonical lowercase UUIDv4: the newest servers refuse any other form (comfyui.md §2)."""
    return str(uuid.uuid4())
