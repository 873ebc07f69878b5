"""`vidfarm run` stopped by SIGTERM or Ctrl-C (SIGINT) cancels its prompt on the server, says so in one line and
exits with 143 / 130: a running prompt is interrupted, a pending one leaves the queue."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import declaration
from tests.support.waiting import wait_for
from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.comfy.local import LocalComfy
from vidfarm.errors import ExecutionInterrupted


def start_cli(comfy: LocalComfy, out: Path, seed: int) -> subprocess.Popen[str]:
    run = ["run", "test_slow_cpu", "--set", f"seed={seed}", "--server", comfy.url, "--out", str(out)]
    return subprocess.Popen([sys.executable, "-m", "vidfarm.cli", *run], stderr=subprocess.PIPE, text=True)


def stopped(cli: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    cli.send_signal(sig)
    _, err = cli.communicate(timeout=120)
    return cli.returncode, err


def not_succeeded(client: ComfyClient, prompt_id: str) -> bool:
    entry = client.history(prompt_id)
    return entry is None or entry.get("status", {}).get("status_str") != "success"


def test_sigterm_interrupts_the_running_prompt(comfy_server: LocalComfy, client: ComfyClient, tmp_path: Path) -> None:
    assert client.queue() == ([], [])
    cli = start_cli(comfy_server, tmp_path, seed=31)
    try:
        [prompt_id] = wait_for(lambda: client.queue()[0], "the CLI's prompt running on the server")
        code, err = stopped(cli, signal.SIGTERM)
    finally:
        cli.kill()
    assert code == 143, err
    assert f"stopped: prompt {prompt_id} cancelled on the server" in err
    wait_for(lambda: client.queue() == ([], []), "the server's queue empty after the cancel")
    assert not_succeeded(client, prompt_id)
    assert not any(tmp_path.rglob("*.png"))


def test_ctrl_c_removes_the_pending_prompt(comfy_server: LocalComfy, client: ComfyClient, tmp_path: Path) -> None:
    graph = declaration("test_slow_cpu")
    ahead = PromptRun(client, graph.fill(graph.graph(), {"seed": 32}), dest_dir=tmp_path / "ahead").start()
    cli = start_cli(comfy_server, tmp_path / "cli", seed=33)
    try:
        wait_for(lambda: ahead.prompt_id in client.queue()[0], "the prompt ahead running")
        [prompt_id] = wait_for(lambda: client.queue()[1], "the CLI's prompt waiting behind it")
        code, err = stopped(cli, signal.SIGINT)
    finally:
        cli.kill()
        ahead.cancel()
    assert code == 130, err
    assert f"stopped: prompt {prompt_id} cancelled on the server" in err
    assert prompt_id not in client.queue()[1] and client.history(prompt_id) is None
    with pytest.raises(ExecutionInterrupted):
        ahead.wait()
    wait_for(lambda: client.queue() == ([], []), "the server's queue empty")
