"""The model downloader against a local fake of the Hugging Face hub: parallel, skip present, resume after a cut
connection, bad checksum, 404, disk full, each failure naming its file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WORKFLOWS
from tests.fakes.hf_hub import FakeHub
from vidfarm.errors import ModelFetchError
from vidfarm.worker.models_fetch import apply_manifest, fetch_models, main, models_for
from vidfarm.workflow.declaration import ModelFile
from vidfarm.workflow.recipe import load_recipes

VAE = os.urandom(300_000)
UNET = os.urandom(500_000)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    fake = FakeHub(files={"org/vae/vae.safetensors": VAE, "org/unet/split/unet.safetensors": UNET}).start()
    yield fake
    fake.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vae(**overrides: object) -> ModelFile:
    spec: dict[str, object] = {"folder": "vae", "file": "vae.safetensors", "repo": "org/vae",
                               "path": "vae.safetensors", "sha256": sha(VAE), "size": len(VAE)}  # fmt: skip
    spec.update(overrides)
    return ModelFile(**spec)  # type: ignore[arg-type]


def unet() -> ModelFile:
    return ModelFile("diffusion_models", "unet.safetensors", repo="org/unet", path="split/unet.safetensors",
                     sha256=sha(UNET), size=len(UNET))  # fmt: skip


def test_downloads_in_place_checks_and_skips_what_is_present(hub: FakeHub, tmp_path: Path) -> None:
    models = tmp_path / "models"
    paths = fetch_models([vae(), unet(), vae()], models, endpoint=hub.url, parallel=2)
    assert [p.read_bytes() for p in paths] == [VAE, UNET]
    assert paths[1] == models / "diffusion_models" / "unet.safetensors"
    before = len(hub.log)
    seen: list[str] = []
    fetch_models([vae(), unet()], models, endpoint=hub.url, on_done=lambda m, what: seen.append(what))
    assert len(hub.log) == before and seen == ["present", "present"]  # no request at all the second time


def test_a_cut_connection_is_resumed(hub: FakeHub, tmp_path: Path) -> None:
    hub.cut_first.add("org/unet/split/unet.safetensors")
    [path] = fetch_models([unet()], tmp_path / "models", endpoint=hub.url)
    assert path.read_bytes() == UNET and len(hub.gets("unet.safetensors")) == 2


def test_a_url_download_resumes_from_its_part_file_with_a_range_request(hub: FakeHub, tmp_path: Path) -> None:
    url_model = ModelFile("vae", "vae.safetensors", url=f"{hub.url}/org/vae/resolve/main/vae.safetensors",
                          sha256=sha(VAE), size=len(VAE))  # fmt: skip
    part = tmp_path / "models" / ".vidfarm-download" / "vae" / "vae.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(VAE[:100_000])  # left by an earlier, interrupted start
    [path] = fetch_models([url_model], tmp_path / "models")
    assert path.read_bytes() == VAE and hub.gets("vae.safetensors")[-1][2] == "bytes=100000-"


def test_a_corrupt_file_is_rejected_and_named(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelFetchError, match=r"models/vae/vae.safetensors: sha256 .* does not match") as caught:
        fetch_models([vae(sha256="f" * 64), unet()], tmp_path / "models", endpoint=hub.url)
    assert "1 model file(s)" in str(caught.value)
    assert not (tmp_path / "models" / "vae" / "vae.safetensors").exists()
    assert (tmp_path / "models" / "diffusion_models" / "unet.safetensors").read_bytes() == UNET  # the good one stays


def test_a_missing_file_is_named_with_its_repo(hub: FakeHub, tmp_path: Path) -> None:
    missing = vae(path="nope.safetensors", file="nope.safetensors")
    with pytest.raises(ModelFetchError, match=r"models/vae/nope.safetensors: org/vae/nope.safetensors does not exist"):
        fetch_models([missing], tmp_path / "models", endpoint=hub.url)
    with pytest.raises(ModelFetchError, match="neither repo \\+ path nor url"):
        fetch_models([ModelFile("vae", "x.safetensors")], tmp_path / "models", endpoint=hub.url)


def test_disk_space_is_checked_before_any_download(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelFetchError, match=r"not enough disk space.*vae/vae.safetensors") as caught:
        fetch_models([vae(), unet()], tmp_path / "models", endpoint=hub.url, free_bytes=lambda p: 1 << 29)
    assert "diffusion_models/unet.safetensors" in str(caught.value) and hub.log == []


def test_cli_reads_the_workflow_declarations(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = tmp_path / "workflows"
    wf.mkdir()
    (wf / "needs_vae.toml").write_text(
        '[workflow]\ntitle = "t"\n[[models]]\nfolder = "vae"\nfile = "vae.safetensors"\nrepo = "org/vae"\n'
        f'path = "vae.safetensors"\nsha256 = "{sha(VAE)}"\nsize = {len(VAE)}\n'
    )
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # huggingface_hub reads it at import; the CLI passes it per call
    monkeypatch.setenv("VIDFARM_WORKFLOWS", "needs_vae")
    assert main(["--models-dir", str(tmp_path / "m"), "--workflows-dir", str(wf)]) == 0
    assert "downloaded: vae/vae.safetensors" in capsys.readouterr().out
    assert main(["nope", "--models-dir", str(tmp_path / "m"), "--workflows-dir", str(wf)]) == 1
    assert "no workflow named 'nope'" in capsys.readouterr().err


def test_a_real_recipe_counts_every_model_against_the_disk(hub: FakeHub, tmp_path: Path) -> None:
    """The 14B files have no pinned size: their approx_size still counts, so a 50 GB disk fails before any byte."""
    models = models_for(load_recipes()["wan22_14b_4step"].workflows.values(), WORKFLOWS)
    assert all(m.disk_bytes > 0 for m in models)  # nothing counts as 0
    with pytest.raises(ModelFetchError, match=r"not enough disk space .* 65\.\d GB to download") as refused:
        fetch_models(models, tmp_path / "models", endpoint=hub.url, free_bytes=lambda _: 50 * 10**9)
    assert "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors (14.3 GB)" in str(refused.value)
    assert hub.log == []  # refused before the first request


def test_a_manifest_replaces_declared_sizes_hashes_and_sources(tmp_path: Path) -> None:
    declared = [ModelFile("vae", "a.safetensors", repo="org/x", path="a.safetensors", approx_size=10**9),
                ModelFile("vae", "b.safetensors", repo="org/x", path="b.safetensors", size=5)]  # fmt: skip
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"vae/a.safetensors": {"size": 7, "sha256": "' + "0" * 64 + '", "url": "http://h/a"}}')
    a, b = apply_manifest(declared, manifest)
    assert (a.size, a.approx_size, a.pinned, a.url, a.repo) == (7, 0, True, "http://h/a", "")
    assert b == declared[1]  # a file the manifest does not name keeps its declaration
    manifest.write_text("{not json")
    with pytest.raises(ModelFetchError, match="manifest .* cannot be read"):
        apply_manifest(declared, manifest)
