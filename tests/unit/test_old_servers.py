"""Servers of versions that cannot run here (tests/fakes/old_comfy.py): cancel without the jobs cancel route, and
a pre-V3 server's bare HTTP 500 for an unknown node turned into the class names and what to do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.old_comfy import OldComfy
from vidfarm.comfy import ComfyClient
from vidfarm.comfy.compat import MIN_VERSION, missing_node_fix, parse_version, version_line
from vidfarm.errors import PromptRejected

PROMPT = "0b7c5e3e-8f7a-4f55-9d8c-2a8a4d6a1c11"


@pytest.fixture
def servers() -> Iterator[list[OldComfy]]:
    started: list[OldComfy] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.parametrize(
    ("status", "answer"),
    [(404, {}), (405, {}), (200, {"cancelled": False})],
    ids=["route-missing", "method-not-allowed", "refused"],
)
def test_cancel_reaches_the_running_prompt_when_the_jobs_cancel_route_fails(
    servers: list[OldComfy], status: int, answer: dict[str, bool]
) -> None:
    server = OldComfy(version="0.5.1", jobs_api=True, cancel_status=status, cancel_answer=answer, running=[PROMPT])
    servers.append(server.start())
    client = ComfyClient(server.url)
    assert client.features().jobs_api
    client.cancel(PROMPT)
    assert server.posted == [(f"/api/jobs/{PROMPT}/cancel", None), ("/interrupt", {"prompt_id": PROMPT})]


def test_cancel_of_a_pending_prompt_deletes_it_from_the_queue_when_the_route_is_missing(
    servers: list[OldComfy],
) -> None:
    server = OldComfy(version="0.5.1", jobs_api=True, pending=[PROMPT, "someone-else"])
    servers.append(server.start())
    ComfyClient(server.url).cancel(PROMPT)
    assert server.posted[1:] == [("/queue", {"delete": [PROMPT]})]  # only ours; no interrupt of anyone's run


def test_cancel_stops_at_the_jobs_route_when_it_cancelled(servers: list[OldComfy]) -> None:
    server = OldComfy(version="0.45.2", jobs_api=True, cancel_status=200, cancel_answer={"cancelled": True})
    servers.append(server.start())
    ComfyClient(server.url).cancel(PROMPT)
    assert server.posted == [(f"/api/jobs/{PROMPT}/cancel", None)]


def test_a_pre_v3_servers_bare_500_names_each_missing_class_and_what_to_do(servers: list[OldComfy]) -> None:
    server = OldComfy(version=None, classes={"LoadImage": {}, "SaveImage": {}})
    servers.append(server.start())
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 16.0}},  # core since 2025
        "3": {"class_type": "VidfarmTiledUpscale", "inputs": {"images": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
    }
    with pytest.raises(PromptRejected) as caught:
        ComfyClient(server.url).submit(graph, prompt_id=PROMPT, client_id="c")
    by_class = {p.class_type: p for p in caught.value.problems}
    assert set(by_class) == {"CreateVideo", "VidfarmTiledUpscale"}
    assert by_class["CreateVideo"].node_id == "2" and "upgrade ComfyUI" in by_class["CreateVideo"].fix
    assert "vidfarm node pack" in by_class["VidfarmTiledUpscale"].fix
    message = str(caught.value)
    assert "Server got itself in trouble" not in message
    assert f"needs ComfyUI {MIN_VERSION} or newer" in message and "no comfyui_version" in message


def test_the_advice_tells_core_nodes_from_custom_ones() -> None:
    assert "upgrade ComfyUI" in missing_node_fix("ComfySwitchNode", server_version="0.3.75", origin="comfy-core")
    assert "ComfyUI 0.3.75" in missing_node_fix("ComfySwitchNode", server_version="0.3.75", origin="comfy-core")
    custom = missing_node_fix("WanVideoSampler", origin="ComfyUI-WanVideoWrapper")
    assert "ComfyUI-WanVideoWrapper" in custom and "upgrade" not in custom
    line = version_line("0.3.40")
    assert line is not None and "0.3.40" in line and "\n" not in line
    assert version_line("0.45.2") is None and version_line(MIN_VERSION) is None
    assert parse_version("v0.3.75-rc1") == (0, 3, 75) and parse_version("0.45.2") == (0, 45, 2)
