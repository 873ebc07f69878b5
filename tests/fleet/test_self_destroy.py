"""A worker destroys its own instance with the key its provider gave that instance, against the RunPod and Vast.ai
fakes (each pod/instance has its own scoped key there, refused on any other): retries, 404 = gone, no provider =
a clear refusal, and the key never on a command line or in a log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fakes.proxies import TEST_TOKEN
from tests.fakes.runpod_api import FakeRunPod
from tests.fakes.vast_api import FakeVast
from tests.support.waiting import wait_for
from vidfarm.comfy.local import free_port
from vidfarm.worker import self_destroy

PROVIDER_VARS = ("RUNPOD_POD_ID", "RUNPOD_API_KEY", "RUNPOD_REST_URL", "CONTAINER_ID", "CONTAINER_API_KEY", "VAST_URL")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS and not k.startswith("VIDFARM_")}
    return {**env, **extra}


@pytest.fixture
def runpod() -> Iterator[FakeRunPod]:
    fake = FakeRunPod().start()
    yield fake
    fake.stop()


@pytest.fixture
def vast() -> Iterator[FakeVast]:
    fake = FakeVast().start()
    yield fake
    fake.stop()


def test_a_runpod_pod_deletes_itself_with_its_own_key(runpod: FakeRunPod, caplog: pytest.LogCaptureFixture) -> None:
    mine, other = runpod.add_pod("vidfarm-worker-1"), runpod.add_pod("vidfarm-worker-2")
    env = runpod.pods[mine]["provider_env"]
    target = self_destroy.detect(env)
    assert target is not None and (target.provider, target.instance_id) == ("RunPod", mine)
    assert env["RUNPOD_API_KEY"] not in repr(target)
    caplog.set_level(logging.DEBUG)
    assert self_destroy.destroy(target)
    assert mine not in runpod.pods and other in runpod.pods
    assert [(p["id"], p["destroyed_by"]) for p in runpod.destroyed] == [(mine, "self")]
    assert runpod.requests[-1]["auth"] == f"Bearer {runpod.key_of(mine)}"
    assert runpod.requests[-1]["method"] == "DELETE" and runpod.requests[-1]["path"] == f"/v1/pods/{mine}"
    # a pod's key is refused on another pod: no retry, the other pod lives
    stolen = self_destroy.Target("RunPod", other, f"{runpod.rest_url}/pods/{other}", runpod.key_of(mine))
    assert not self_destroy.destroy(stolen)
    assert runpod.requests[-1]["auth"] == f"Bearer {runpod.key_of(mine)}" and other in runpod.pods
    assert requests.get(f"{runpod.rest_url}/pods", headers={"Authorization": f"Bearer {runpod.key_of(other)}"},
                        timeout=10).status_code == 403  # fmt: skip
    assert runpod.key_of(mine) not in caplog.text and runpod.key_of(other) not in caplog.text


def test_a_vast_instance_destroys_itself_with_its_own_key(vast: FakeVast, caplog: pytest.LogCaptureFixture) -> None:
    mine, other = vast.add_instance("vidfarm-worker-1"), vast.add_instance("vidfarm-worker-2")
    target = self_destroy.detect(vast.instances[mine]["provider_env"])
    assert target is not None and (target.provider, target.instance_id) == ("Vast.ai", str(mine))
    caplog.set_level(logging.DEBUG)
    assert self_destroy.destroy(target)
    assert mine not in vast.instances and other in vast.instances
    assert [(r["id"], r["destroyed_by"]) for r in vast.destroyed] == [(mine, "self")]
    assert vast.requests[-1]["auth"] == f"Bearer {vast.key_of(mine)}"
    assert vast.requests[-1]["path"] == f"/api/v0/instances/{mine}/"
    stolen = self_destroy.Target("Vast.ai", str(other), f"{vast.url}/api/v0/instances/{other}/", vast.key_of(mine))
    assert not self_destroy.destroy(stolen) and other in vast.instances
    assert vast.key_of(mine) not in caplog.text


def test_5xx_is_retried_with_backoff_and_404_means_already_gone(runpod: FakeRunPod, vast: FakeVast) -> None:
    pod = runpod.add_pod("vidfarm-worker-1")
    target = self_destroy.detect(runpod.pods[pod]["provider_env"])
    assert target is not None
    runpod.fail_deletes, waits = 2, []
    assert self_destroy.destroy(target, sleep=waits.append)
    assert waits == [2.0, 4.0] and runpod.destroyed[0]["destroyed_by"] == "self"
    assert [r["method"] for r in runpod.requests].count("DELETE") == 3
    assert self_destroy.destroy(target, sleep=waits.append)  # gone already: done, no retry
    assert waits == [2.0, 4.0] and runpod.requests[-1]["auth"] == f"Bearer {runpod.key_of(pod)}"

    row = vast.add_instance("vidfarm-worker-3")
    vast_target = self_destroy.detect(vast.instances[row]["provider_env"])
    assert vast_target is not None
    vast.fail_deletes, waits = 10, []
    assert not self_destroy.destroy(vast_target, attempts=4, sleep=waits.append)  # bounded: gives up
    assert waits == [2.0, 4.0, 8.0] and row in vast.instances
    vast.fail_deletes = 1
    assert self_destroy.destroy(vast_target, sleep=waits.append) and row not in vast.instances


def test_no_provider_is_detected_without_both_variables() -> None:
    assert self_destroy.detect({}) is None
    assert self_destroy.detect({"RUNPOD_POD_ID": "abc"}) is None
    assert self_destroy.detect({"CONTAINER_API_KEY": "k"}) is None
    target = self_destroy.detect({"CONTAINER_ID": "7", "CONTAINER_API_KEY": "k"})
    assert target is not None and target.url == "https://console.vast.ai/api/v0/instances/7/"
    target = self_destroy.detect({"RUNPOD_POD_ID": "p1", "RUNPOD_API_KEY": "k"})
    assert target is not None and target.url == "https://rest.runpod.io/v1/pods/p1"


def test_the_module_entry_exits_0_once_gone_and_2_without_a_provider(vast: FakeVast) -> None:
    row = vast.add_instance("vidfarm-worker-1")
    env = clean_env(**vast.instances[row]["provider_env"])
    command = [sys.executable, "-m", "vidfarm.worker.self_destroy"]
    check = subprocess.run([*command, "--check"], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and row in vast.instances
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert row not in vast.instances and vast.destroyed[0]["destroyed_by"] == "self"
    assert vast.key_of(row) not in done.stdout + done.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already gone" in again.stderr
    none = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "RUNPOD_POD_ID" in none.stderr and "CONTAINER_API_KEY" in none.stderr


def test_the_proxy_destroys_its_pod_when_idle_and_the_key_is_never_on_a_command_line(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    pod = runpod.add_pod("vidfarm-worker-1")
    key = runpod.key_of(pod)
    env = clean_env(VIDFARM_WORKER_TOKEN=TEST_TOKEN, VIDFARM_IDLE_SHUTDOWN_S="1", **runpod.pods[pod]["provider_env"])
    log = tmp_path / "proxy.log"
    with log.open("wb") as out:  # no ComfyUI behind it: the watchdog does not need one
        process = subprocess.Popen(
            [sys.executable, "-m", "vidfarm.worker.token_proxy", "--upstream", f"http://127.0.0.1:{free_port()}",
             "--host", "127.0.0.1", "--port", str(free_port())],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    try:

        def started() -> str | None:  # after exec, not the forked pytest's own command line
            text = cmdline.read_bytes().decode()
            return text if "vidfarm.worker.token_proxy" in text else None

        args = wait_for(started, "the proxy process started", ignore=(OSError,))
        assert key not in args and "RUNPOD_API_KEY" not in args
        wait_for(lambda: pod not in runpod.pods, "the pod deleted itself at the fake", describe=log.read_text)
        assert [(p["id"], p["destroyed_by"]) for p in runpod.destroyed] == [(pod, "self")]
        assert runpod.requests[-1]["auth"] == f"Bearer {key}"
    finally:
        process.terminate()
        process.wait(30)
    assert key not in log.read_text() and "destroyed" in log.read_text()


def test_the_proxy_refuses_an_idle_shutdown_it_cannot_carry_out(tmp_path: Path) -> None:
    env = clean_env(VIDFARM_WORKER_TOKEN=TEST_TOKEN)
    refused = subprocess.run(
        [sys.executable, "-m", "vidfarm.worker.token_proxy", "--port", str(free_port()), "--idle-shutdown", "600"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "RUNPOD_POD_ID" in refused.stderr and "CONTAINER_ID" in refused.stderr
