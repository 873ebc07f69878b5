"""How much the vidfarm client adds to a prompt's wall-clock time, against a minimal raw requests loop.

Both run the same model-free video workflow on one local CPU ComfyUI, alternating, in the same run:
- raw: POST /prompt, poll /history/{id} every 50 ms, GET /view the file (no socket, no checks);
- vidfarm: PromptRun (socket + history confirmation, download to a temp file, full decode check of the video).
Prints the ratio of median wall-clock times (target <= 1.05) and the client's added milliseconds per prompt.

    .venv/bin/python benchmarks/client_overhead.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from vidfarm.comfy import ComfyClient, PromptRun
from vidfarm.comfy.local import REPO, LocalComfy
from vidfarm.workflow.declaration import find_declaration
from vidfarm.workflow.graph import with_unique_outputs


def raw_run(url: str, graph: dict[str, Any], dest: Path) -> float:
    began = time.perf_counter()
    prompt_id = str(uuid.uuid4())
    requests.post(f"{url}/prompt", json={"prompt": graph, "client_id": "raw", "prompt_id": prompt_id}, timeout=30)
    while True:
        entry = requests.get(f"{url}/history/{prompt_id}", timeout=30).json().get(prompt_id)
        if entry:
            break
        time.sleep(0.05)
    for output in entry["outputs"].values():
        for item in output.get("images", []):
            data = requests.get(f"{url}/view", params=item, timeout=30).content
            (dest / item["filename"]).write_bytes(data)
    return time.perf_counter() - began


def client_run(client: ComfyClient, graph: dict[str, Any], dest: Path) -> float:
    began = time.perf_counter()
    PromptRun(client, graph, dest_dir=dest, unique=False).wait()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--frames", type=int, default=49)
    args = parser.parse_args()
    declaration = find_declaration(REPO / "workflows", "standin_t2v")
    base = declaration.fill(declaration.graph(), {"frames": args.frames, "width": 512, "height": 288})
    with tempfile.TemporaryDirectory() as tmp, LocalComfy(Path(tmp) / "comfy") as comfy:
        client = ComfyClient(comfy.url)
        dest = Path(tmp) / "out"
        dest.mkdir()
        raw_times, client_times = [], []
        for i in range(args.rounds + 1):  # round 0 warms both paths up and is not counted
            raw = raw_run(comfy.url, with_unique_outputs(base, f"raw{i}"), dest)
            ours = client_run(client, with_unique_outputs(base, f"ours{i}"), dest)
            if i:
                raw_times.append(raw)
                client_times.append(ours)
    raw_median, client_median = statistics.median(raw_times), statistics.median(client_times)
    print(f"workflow: standin_t2v, {args.frames} frames 512x288, {args.rounds} rounds, one local CPU ComfyUI 0.3.75")
    print(f"raw requests loop  median {raw_median * 1000:7.1f} ms  (min {min(raw_times) * 1000:.1f})")
    print(f"vidfarm PromptRun  median {client_median * 1000:7.1f} ms  (min {min(client_times) * 1000:.1f})")
    print(f"ratio vidfarm / raw: {client_median / raw_median:.3f}  (target <= 1.05)")
    print(f"added per prompt:    {(client_median - raw_median) * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
