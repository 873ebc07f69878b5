"""Download the model files workflows declare into ComfyUI's `models/<folder>/`, before ComfyUI starts.

    python -m vidfarm.worker.models_fetch --models-dir /opt/comfy/models wan22_5b_i2v standin_t2v

Parallel; files already present (right size, and right sha256 when pinned) are skipped; the free disk space is
checked before the first byte; every file is size-checked and, when its sha256 is declared, hashed (huggingface_hub
itself only checks the byte count). Files from a Hugging Face repo go through `hf_hub_download` (it retries a cut
connection within the process; `HF_ENDPOINT` or `endpoint=` point it elsewhere); files with only a `url` are
fetched with HTTP Range requests into `<file>.part`, so they resume even across restarts. Failures are collected
and reported together, each naming the file, what went wrong and what to do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import requests

from vidfarm.errors import ModelFetchError
from vidfarm.worker import boot_status
from vidfarm.workflow.declaration import ModelFile, find_declaration

SPARE_BYTES = 1 << 30  # keep 1 GiB free beyond what the downloads need
STAGING = ".vidfarm-download"


def disk_free(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def sha256_of(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


def destination(models_dir: Path, model: ModelFile) -> Path:
    return models_dir / model.folder / model.file


def is_present(models_dir: Path, model: ModelFile) -> bool:
    """Present = the file exists, has the declared size, and (when pinned) its hash was verified once."""
    path = destination(models_dir, model)
    if not path.is_file() or (model.size and path.stat().st_size != model.size):
        return False
    if not model.pinned:
        return True
    marker = path.with_name(f".{path.name}.sha256")
    if marker.is_file() and marker.read_text().strip() == model.sha256:
        return True
    if sha256_of(path) == model.sha256:
        marker.write_text(model.sha256)
        return True
    return False


def _verify(path: Path, model: ModelFile) -> None:
    size = path.stat().st_size
    if model.size and size != model.size:
        raise ModelFetchError(f"got {size} bytes, the declaration says {model.size}: the download is incomplete")
    if model.pinned:
        got = sha256_of(path)
        if got != model.sha256:
            path.unlink()
            raise ModelFetchError(
                f"sha256 {got[:12]}... does not match the declared {model.sha256[:12]}...: the file is corrupt "
                "or the declaration is out of date (it was deleted; re-run to download it again)"
            )


def _fetch_url(model: ModelFile, part: Path, *, token: str | None) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with requests.get(model.url, headers=headers, stream=True, timeout=(10, 60)) as response:
        if response.status_code == 416 and have:
            return  # already complete
        if response.status_code == 404:
            raise ModelFetchError(f"{model.url} answered 404: the URL in the declaration is wrong")
        response.raise_for_status()
        mode = "ab" if response.status_code == 206 else "wb"
        with part.open(mode) as out:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)


def _fetch_hub(model: ModelFile, staging: Path, *, endpoint: str | None, token: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(
        str(
            hf_hub_download(
                model.repo,
                model.path,
                revision=model.revision or None,
                local_dir=staging,
                endpoint=endpoint,
                token=token or False,
            )
        )
    )


def fetch_one(models_dir: Path, model: ModelFile, *, endpoint: str | None = None, token: str | None = None) -> Path:
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    final = destination(models_dir, model)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = models_dir / STAGING
    try:
        if model.repo and model.path:
            got = _fetch_hub(model, staging, endpoint=endpoint, token=token)
        elif model.url:
            got = staging / model.folder / (model.file + ".part")
            _fetch_url(model, got, token=token)
        else:
            raise ModelFetchError("the declaration gives neither repo + path nor url: add one")
        _verify(got, model)
        os.replace(got, final)
    except (EntryNotFoundError, RepositoryNotFoundError):
        raise ModelFetchError(f"{model.repo}/{model.path} does not exist on the hub: fix repo/path") from None
    except HfHubHTTPError as exc:
        raise ModelFetchError(f"the hub refused the download ({exc}); check HF_TOKEN for gated repos") from None
    except requests.RequestException as exc:
        raise ModelFetchError(f"download failed ({type(exc).__name__}); re-run to resume") from None
    except OSError as exc:
        raise ModelFetchError(f"could not write it ({exc.strerror or exc}); free disk space and re-run") from None
    if model.pinned:
        final.with_name(f".{final.name}.sha256").write_text(model.sha256)
    return final


def fetch_models(
    models: Iterable[ModelFile],
    models_dir: str | Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    parallel: int = 4,
    free_bytes: Callable[[Path], int] = disk_free,
    on_done: Callable[[ModelFile, str], None] | None = None,
    status_file: Path | None = None,
) -> list[Path]:
    """Make every model present under models_dir; returns their paths. Raises ModelFetchError naming each failure.
    With `status_file`, the bytes done so far are written to it every second (vidfarm.worker.boot_status)."""
    root = Path(models_dir)
    unique = list({(m.folder, m.file): m for m in models}.values())
    missing = [m for m in unique if not is_present(root, m)]
    report = on_done or (lambda m, what: None)
    for model in unique:
        if model not in missing:
            report(model, "present")
    _check_space(root, missing, free_bytes)
    failures: list[str] = []
    finished: list[ModelFile] = []

    def work(model: ModelFile) -> None:
        try:
            fetch_one(root, model, endpoint=endpoint, token=token)
            finished.append(model)
            report(model, "downloaded")
        except ModelFetchError as exc:
            failures.append(f"  - models/{model.folder}/{model.file}: {exc}")

    def done() -> tuple[int, int]:  # the finished files at their place, the rest as far as it is on disk
        landed = list(finished)
        return sum(m.disk_bytes for m in landed) + boot_status.bytes_under(root / STAGING), len(landed)

    total = sum(m.disk_bytes for m in missing)
    with (
        boot_status.DownloadMeter(status_file, total, len(missing), done),
        ThreadPoolExecutor(max_workers=max(1, parallel)) as pool,
    ):
        list(pool.map(work, missing))
    if failures:
        raise ModelFetchError(f"{len(failures)} model file(s) could not be fetched:\n" + "\n".join(sorted(failures)))
    return [destination(root, m) for m in unique]


def _check_space(root: Path, missing: list[ModelFile], free_bytes: Callable[[Path], int]) -> None:
    if not missing:
        return
    needed = sum(m.disk_bytes for m in missing)
    free = free_bytes(root)
    if needed + SPARE_BYTES > free:
        names = ", ".join(f"{m.folder}/{m.file} ({m.disk_bytes / 1e9:.1f} GB)" for m in missing)
        raise ModelFetchError(
            f"not enough disk space in {root}: {needed / 1e9:.1f} GB to download plus 1 GiB spare, "
            f"{free / 1e9:.1f} GB free. Missing: {names}. Rent a larger disk or fetch fewer workflows."
        )


def models_for(workflow_names: Iterable[str], workflows_dir: str | Path) -> list[ModelFile]:
    return [m for name in workflow_names for m in find_declaration(workflows_dir, name).models]


def apply_manifest(models: Iterable[ModelFile], manifest_path: str | Path) -> list[ModelFile]:
    """Replace declared sizes and hashes by a manifest's: {"folder/file": {"size": n, "sha256": hex, "url": u}}.

    For files served under the real names with other contents (the tests' small random-weight models, and `url`
    where a declaration's source is outside the test's reach); a file the manifest does not name keeps its
    declaration. Production runs without a manifest.
    """
    try:
        entries = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFetchError(f"the models manifest {manifest_path} cannot be read ({exc})") from None
    out = []
    for model in models:
        entry = entries.get(f"{model.folder}/{model.file}")
        if entry:
            model = replace(model, size=int(entry["size"]), sha256=str(entry.get("sha256", "")), approx_size=0)
            if entry.get("url"):
                model = replace(model, url=str(entry["url"]), repo="", path="")
        out.append(model)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download the models the named workflows declare.")
    parser.add_argument("workflows", nargs="*", help="workflow names (default: $VIDFARM_WORKFLOWS, comma-separated)")
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--workflows-dir", default=str(Path(__file__).resolve().parents[3] / "workflows"))
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument(
        "--manifest",
        default=os.environ.get("VIDFARM_MODELS_MANIFEST") or None,
        help="JSON {folder/file: {size, sha256}} replacing the declared sizes and hashes (tests)",
    )
    parser.add_argument(
        "--status-file",
        default=os.environ.get(boot_status.ENV) or None,
        help="where the download's progress goes, for the token proxy's GET /vidfarm/boot",
    )
    args = parser.parse_args(argv)
    names = args.workflows or [n for n in os.environ.get("VIDFARM_WORKFLOWS", "").split(",") if n.strip()]
    try:
        models = models_for([n.strip() for n in names], args.workflows_dir)
        if args.manifest:
            models = apply_manifest(models, args.manifest)
        fetch_models(
            models,
            args.models_dir,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
            token=os.environ.get("HF_TOKEN") or None,
            parallel=args.parallel,
            on_done=lambda m, what: print(f"[models] {what}: {m.folder}/{m.file}", flush=True),
            status_file=Path(args.status_file) if args.status_file else None,
        )
    except Exception as exc:  # noqa: BLE001 - the CLI prints every vidfarm error plainly
        print(f"[models] {exc}", file=sys.stderr)
        return 1
    print(f"[models] {len(models)} file(s) ready in {args.models_dir}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
