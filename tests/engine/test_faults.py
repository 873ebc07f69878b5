"""Cancel, crash and restart, servers that ignore our ids, tokens, dead sockets, cache hits - all for real."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import declaration
from tests.fakes.proxies import TEST_TOKEN, LegacyIdsProxy, NoSocketProxy, start_proxy
from tests.support.waiting import deadline_s, wait_for
from vidfarm.comfy import ComfyClient, Progress, PromptRun
from vidfarm.comfy.client import file_refs
from vidfarm.comfy.local import LocalComfy
from vidfarm.comfy.run import RunResult
from vidfarm.errors import AuthRejected, ExecutionInterrupted
from vidfarm.worker.token_proxy import TokenProxy
from vidfarm.workflow.graph import output_prefix


def slow_graph(seed: int = 1) -> dict:
    d = declaration("test_slow_cpu")
    return d.fill(d.graph(), {"seed": seed})


def quick_graph(seed: int = 0) -> dict:
    d = declaration("standin_image")
    return d.fill(d.graph(), {"seed": seed, "count": 1, "width": 32, "height": 32})


def test_cancel_running_prompt_stops_it(client: ComfyClient, tmp_path: Path) -> None:
    run = PromptRun(client, slow_graph(seed=11), dest_dir=tmp_path).start()
    wait_for(lambda: run.prompt_id in client.queue()[0], "the slow prompt runs")
    run.cancel()
    with pytest.raises(ExecutionInterrupted):
        run.wait()
    wait_for(lambda: client.queue() == ([], []), "the server's queue empties")
    # Stopped at a node boundary (an ImageBlur cannot stop mid-node, transcript §11), before the save node ran.
    messages = dict(
        wait_for(lambda: client.history(run.prompt_id), "the cancelled prompt's history")["status"]["messages"]
    )
    assert "execution_interrupted" in messages and "8" not in messages["execution_interrupted"]["executed"]
    assert not any(tmp_path.iterdir())


def test_cancel_pending_prompt_leaves_the_running_one_alone(client: ComfyClient, tmp_path: Path) -> None:
    first = PromptRun(client, slow_graph(seed=12), dest_dir=tmp_path / "a").start()
    wait_for(lambda: first.prompt_id in client.queue()[0], "the slow prompt runs")
    second = PromptRun(client, quick_graph(seed=5), dest_dir=tmp_path / "b").start()
    assert second.prompt_id in client.queue()[1]
    second.cancel()
    with pytest.raises(ExecutionInterrupted, match="cancelled before it finished"):
        second.wait()
    assert first.prompt_id in client.queue()[0]
    first.cancel()
    with pytest.raises(ExecutionInterrupted):
        first.wait()


def test_worker_killed_mid_run_and_restarted(own_server: LocalComfy, tmp_path: Path) -> None:
    """The restarted server has forgotten the prompt: it is posted again under the same id, once, and ends in a
    result; were the new server to hold it without running it, the stall timeout would end it in WorkerStalled."""
    client = ComfyClient(own_server.url)
    seen: list[Progress] = []
    run = PromptRun(
        client,
        slow_graph(seed=21),
        dest_dir=tmp_path,
        poll_interval=0.5,
        stall_timeout=deadline_s(300),
        on_progress=lambda p: seen.append(Progress(**vars(p))),
    ).start()
    outcome: dict[str, object] = {}

    def wait() -> None:
        try:
            outcome["result"] = run.wait()
        except Exception as exc:  # handed to the test thread, which fails with it
            outcome["error"] = exc

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    wait_for(lambda: any(p.node_id == "4" for p in seen), "the slow prompt is past its first blur")
    own_server.kill()
    own_server.start()
    wait_for(lambda: outcome, "the resubmitted prompt ends in a result or an error", timeout=600)
    assert "error" not in outcome, f"the resubmitted prompt failed: {outcome.get('error')!r}"
    done = outcome["result"]
    assert isinstance(done, RunResult)
    assert done.resubmitted and done.prompt_id == run.prompt_id  # same recorded id, posted again once
    stages = [p.stage for p in seen]
    assert stages.count("resubmitted") == 1 and stages[-1] == "finished"
    after = [p for p in seen[stages.index("resubmitted") :] if p.node_id]
    assert after and after[-1].node_id == "8", "the restarted server ran the whole graph again, up to the save"
    assert client.history(run.prompt_id)["status"]["status_str"] == "success"  # the restarted server's own record
    assert done.first("image").info.width == 1024


def test_server_that_ignores_client_prompt_ids(client: ComfyClient, comfy_server: LocalComfy, tmp_path: Path) -> None:
    proxy = start_proxy(LegacyIdsProxy, comfy_server.url)
    try:
        legacy = ComfyClient(proxy.url, token=TEST_TOKEN)
        run = PromptRun(legacy, quick_graph(seed=31), dest_dir=tmp_path)
        chosen = run.prompt_id
        result = run.wait()
        assert result.prompt_id != chosen and run.prompt_id == result.prompt_id
        assert client.history(result.prompt_id) is not None  # the server's own id is the one recorded
        assert len(result.outputs) == 1
    finally:
        proxy.stop()


def test_token_on_http_and_websocket(comfy_server: LocalComfy, tmp_path: Path) -> None:
    proxy = start_proxy(TokenProxy, comfy_server.url)
    try:
        for bad in (None, "wrong-token-wrong-token"):
            with pytest.raises(AuthRejected, match="token is missing or wrong"):
                ComfyClient(proxy.url, token=bad).system_stats()
        seen: list[Progress] = []
        good = ComfyClient(proxy.url, token=TEST_TOKEN)
        d = declaration("standin_t2v")
        graph = d.fill(d.graph(), {"frames": 6, "width": 64, "height": 64})
        result = PromptRun(
            good, graph, dest_dir=tmp_path, on_progress=lambda p: seen.append(Progress(**vars(p)))
        ).wait()
        assert result.first("video").info.frames == 6
        # node-level progress only arrives over the socket, so the socket got through the proxy with the token
        assert any(p.node_class == "VidfarmStandInVideo" for p in seen)
    finally:
        proxy.stop()


def test_polling_alone_finishes_when_the_socket_is_refused(comfy_server: LocalComfy, tmp_path: Path) -> None:
    proxy = start_proxy(NoSocketProxy, comfy_server.url)
    try:
        client = ComfyClient(proxy.url, token=TEST_TOKEN)
        result = PromptRun(client, quick_graph(seed=41), dest_dir=tmp_path, poll_interval=0.3).wait()
        assert len(result.outputs) == 1
    finally:
        proxy.stop()


def test_identical_graph_is_made_unique_so_new_files_are_written(client: ComfyClient, tmp_path: Path) -> None:
    graph = quick_graph(seed=51)
    first = PromptRun(client, graph, dest_dir=tmp_path / "1", unique=False).wait()
    cached = PromptRun(client, graph, dest_dir=tmp_path / "2", unique=False).wait()
    assert cached.reused_outputs  # the trap: history points at the first run's file (transcript §7)
    assert cached.outputs[0].path.name == first.outputs[0].path.name  # the same file, fetched again
    fresh_run = PromptRun(client, graph, dest_dir=tmp_path / "3")
    fresh = fresh_run.wait()
    assert not fresh.reused_outputs
    entry = client.history(fresh.prompt_id)
    assert entry is not None
    [ref] = [r for r in file_refs(entry["outputs"]) if r.type == "output"]
    assert ref.subfolder.startswith(output_prefix(fresh_run.run_id))  # a file of its own, written by this run
