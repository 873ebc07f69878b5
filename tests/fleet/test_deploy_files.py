"""Docker cannot run here, so the deployment files are checked for what matters: pins, ports, paths, secrets."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

WORKER = (REPO / "docker" / "worker.Dockerfile").read_text()


def test_worker_image_pins_comfyui_and_publishes_only_the_proxy() -> None:
    pinned = re.search(r"^PINNED_TAG=(v[\d.]+)$", (REPO / "scripts" / "comfyui.tag").read_text(), re.M)
    assert pinned and f"ARG COMFYUI_TAG={pinned.group(1)}" in WORKER  # the release setup-comfyui installs online
    assert "scripts/install-worker /opt/comfyui" in WORKER and "check-node-pack" in WORKER  # tests run the same
    base = re.search(r"ARG BASE_IMAGE=(\S+)", WORKER)
    assert base and ":" in base.group(1) and not base.group(1).endswith(":latest")
    assert re.findall(r"^EXPOSE (.+)$", WORKER, re.M) == ["8288"]
    assert 'CMD ["/opt/vidfarm/scripts/worker-start"]' in WORKER
    for source in re.findall(r"^COPY (.+) /opt/\S+$", WORKER, re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"the worker image copies {path}, which is not in the repository"


def test_worker_start_binds_comfyui_to_loopback_and_requires_a_token() -> None:
    script = (REPO / "scripts" / "worker-start").read_text()
    assert "--listen 127.0.0.1" in script and "-ge 16" not in script and "-lt 16 ]" in script
    assert "VAST_API_KEY" not in script  # workers never see the account key


def test_master_compose_has_volumes_and_nothing_public_without_auth() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"jupyter", "service", "head"}
    assert {"outputs", "notebooks-work", "comfy-head"} <= set(compose["volumes"])
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
        assert service["env_file"] == [".env"] and service["volumes"]
    assert compose["services"]["head"]["command"] == ["scripts/worker-start"]  # behind the token proxy
    assert "VIDFARM_HEAD_TOKEN" in compose["services"]["head"]["environment"]["VIDFARM_WORKER_TOKEN"]
    assert "IdentityProvider.token" in " ".join(compose["services"]["jupyter"]["command"])
    assert ".env" in (REPO / ".gitignore").read_text().split()
