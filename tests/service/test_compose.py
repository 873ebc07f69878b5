"""docker-compose.yml's service, started the way compose starts it but outside a container (no Docker daemon here):
its command and environment from the compose file, the variables from .env.example filled in, its named volume
mapped to a temporary folder. It must answer over HTTP on the port compose publishes and keep its data there."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import REPO
from tests.support.waiting import wait_for
from vidfarm.comfy.local import free_port

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
WORKDIR = "/srv/vidfarm"  # docker/master.Dockerfile's WORKDIR: the repository copy the commands run in
_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (the forms docker-compose.yml uses)."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise AssertionError(f"compose would refuse to start: {arg}")
        return arg if kind == "-" else ""

    return _VAR.sub(one, value)


def filled_in_example() -> dict[str, str]:
    """.env.example as a person fills it in: every empty required secret gets a real random value."""
    env = env_file(REPO / ".env.example")
    for key in ("JUPYTER_TOKEN", "VIDFARM_HEAD_TOKEN", "VIDFARM_SERVICE_API_TOKEN", "VIDFARM_SERVICE_LINK_SECRET"):
        assert key in env, f".env.example lacks {key}"
        env[key] = secrets.token_urlsafe(24)
    return env


@pytest.fixture
def compose_service(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    service = COMPOSE["services"]["service"]
    dotenv = filled_in_example()
    env = {**dotenv, **{k: interpolate(str(v), dotenv) for k, v in service.get("environment", {}).items()}}
    # Each named volume becomes a folder under tmp_path; paths in the environment follow their mounts.
    volumes = tmp_path / "volumes"
    for mount in service["volumes"]:
        name, target = mount.split(":")[:2]
        assert name in COMPOSE["volumes"], f"{mount} is not a named volume"
        for key, value in env.items():
            if value == target or value.startswith(target + "/"):
                env[key] = str(volumes / name) + value[len(target) :]
    command = [interpolate(part, dotenv) for part in service["command"]]
    assert command[:3] == [".venv/bin/python", "-m", "vidfarm_service"]
    host = command[command.index("--host") + 1]
    published = service["ports"][0].rsplit(":", 1)[1]
    assert host == "0.0.0.0" and command[command.index("--port") + 1] == published  # reachable from outside
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[0] = str(REPO / ".venv" / "bin" / "python")
    log = (tmp_path / "service.log").open("wb")
    base_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")}
    process = subprocess.Popen(command, cwd=REPO, env={**base_env, **env}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (tmp_path / "service.log").read_text()
        return requests.get(url + "/healthz", timeout=5).ok

    try:
        wait_for(healthy, "the service answers /healthz", ignore=(requests.ConnectionError, requests.Timeout),
                 describe=lambda: (tmp_path / "service.log").read_text()[-3000:])  # fmt: skip
        yield url, env, volumes
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)


def test_the_compose_service_answers_with_its_data_on_the_named_volume(
    compose_service: tuple[str, dict[str, str], Path],
) -> None:
    url, env, volumes = compose_service
    assert requests.get(url + "/api/jobs", timeout=5).status_code == 401  # the API token from the environment applies
    token = {"Authorization": f"Bearer {env['VIDFARM_SERVICE_API_TOKEN']}"}
    listed = requests.get(url + "/api/jobs", headers=token, timeout=5)
    assert listed.status_code == 200, listed.text
    assert Path(env["VIDFARM_SERVICE_DATA_DIR"]) == volumes / "service-data" / "service"
    assert (volumes / "service-data" / "service" / "jobs.sqlite").is_file()


def test_every_master_command_exists_and_no_secret_is_in_the_compose_file() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    example = env_file(REPO / ".env.example")
    for name, service in COMPOSE["services"].items():
        program = service["command"][0]
        assert (REPO / program).exists(), f"{name} runs {program}, which scripts/setup does not make"
        for key, value in service.get("environment", {}).items():
            if any(word in key for word in ("TOKEN", "SECRET", "KEY")):
                assert str(value).startswith("${"), f"{name}: {key} must come from the environment"
    for key, value in example.items():
        if any(word in key for word in ("TOKEN", "SECRET", "KEY")):
            assert value == "", f".env.example must not ship a value for {key}"
    assert "vidfarm.service" not in text and "/opt/comfyui-0.3.75" not in text
    assert ".env" in (REPO / ".dockerignore").read_text().split()  # secrets never reach an image layer
