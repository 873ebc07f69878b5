"""Run a notebook over many parameter sets with papermill, optionally on a pool of rented GPU workers.

    python -m vidfarm.jobs.batch notebooks/10_long_video.ipynb --grid grid.json --out outputs/batch
    python -m vidfarm.jobs.batch NOTEBOOK --params runs.jsonl|runs.csv --out DIR [--set seconds=10] [--vast 2]

Each run gets a stable id (a hash of its parameters) and a folder `<out>/runs/<id>/` with its executed notebook,
its outputs, result.json and progress.jsonl (passed only when the notebook has those parameters), and one line in
`<out>/results.jsonl` (+ results.csv): parameters, status, timings, cost. Re-running skips finished runs, so an
interrupted batch resumes. With a pool, the workers go in as `workers` (JSON list) or, for notebooks that take a
single server, as `comfy_url` + `token`; each run's cost is its busy seconds x every worker's price.
"""

from __future__ import annotations

import argparse
import ast
import csv
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidfarm.errors import BatchError, JobSpecInvalid, VidfarmError
from vidfarm.fleet.pool import RentedPool
from vidfarm.jobs.spec import JobSpec, content_id


def grid(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, e.g. {"seed": [1, 2], "prompt": ["a", "b"]} gives 4 sets."""
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise BatchError(f"grid axis {name!r} must be a non-empty list of values")
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(axes[n] for n in names))]


def _cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_parameter_sets(path: str | Path) -> list[dict[str, Any]]:
    """A .jsonl (one object a line), a .csv (a header row; cells parsed as JSON when they can be), or a .json
    holding a list of objects or a grid (an object of lists)."""
    path = Path(path)
    if not path.exists():
        raise BatchError(f"parameter file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        sets = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif path.suffix == ".csv":
        sets = [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(text.splitlines())]
    elif path.suffix == ".json":
        data = json.loads(text)
        sets = grid(data) if isinstance(data, dict) else data
    else:
        raise BatchError(f"{path}: use .jsonl, .csv, or .json (a list of objects or a grid of lists)")
    if not all(isinstance(s, dict) for s in sets):
        raise BatchError(f"{path}: every parameter set must be an object of name -> value")
    return sets


def run_id_for(parameters: dict[str, Any]) -> str:
    return "run-" + content_id(parameters)


def notebook_parameters(notebook: Path) -> set[str]:
    """Names assigned in the cell tagged `parameters` (read with ast: papermill's own inspector skips lines
    with trailing comments)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise BatchError(f"{notebook.name} has no cell tagged 'parameters', so papermill cannot pass it any")
    source = "".join(tagged[0]["source"]) if isinstance(tagged[0]["source"], list) else tagged[0]["source"]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


@dataclass
class BatchRunner:
    notebook: Path
    out_dir: Path
    fixed: dict[str, Any] = field(default_factory=dict)
    pool: RentedPool | None = None
    kernel_name: str = "python3"
    execute: Callable[..., Any] | None = None
    accepted: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)  # worker tokens injected so far, scrubbed from the records

    def __post_init__(self) -> None:
        self.notebook, self.out_dir = Path(self.notebook), Path(self.out_dir)
        if not self.notebook.exists():
            raise BatchError(f"notebook {self.notebook} does not exist")
        self.accepted = notebook_parameters(self.notebook)

    @property
    def table(self) -> Path:
        return self.out_dir / "results.jsonl"

    def finished(self) -> dict[str, dict[str, Any]]:
        if not self.table.exists():
            return {}
        rows = [json.loads(line) for line in self.table.read_text().splitlines() if line.strip()]
        return {r["run_id"]: r for r in rows if r["status"] == "ok" and Path(r["notebook"]).exists()}

    def run_all(self, parameter_sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sets = [{**self.fixed, **s} for s in parameter_sets]
        for s in sets:
            self._check_names(s)
        done = self.finished()
        rows = []
        for parameters in sets:
            run_id = run_id_for(parameters)
            rows.append(done[run_id] if run_id in done else self.run_one(run_id, parameters))
        self._write_csv(rows)
        return rows

    def _check_names(self, parameters: dict[str, Any]) -> None:
        unknown = sorted(set(parameters) - self.accepted)
        if unknown:
            takes = ", ".join(sorted(self.accepted))
            raise BatchError(f"{self.notebook.name} has no parameter {', '.join(unknown)}; it takes: {takes}")
        if set(JobSpec.names()) <= self.accepted:  # a pipeline notebook: every row is a whole job, checked up front
            try:
                JobSpec.from_values({k: v for k, v in parameters.items() if k in JobSpec.names()})
            except JobSpecInvalid as exc:
                raise BatchError(f"parameter set {parameters}: {exc}") from None

    def _injected(self, run_id: str, run_dir: Path) -> dict[str, Any]:
        offered: dict[str, Any] = {
            "out_dir": str(run_dir / "outputs"),
            "result_path": str(run_dir / "result.json"),
            "progress_path": str(run_dir / "progress.jsonl"),
            "job_id": run_id,
        }
        if self.pool is not None:
            entries = self.pool.entries()
            self.secrets.update(e["token"] for e in entries)
            if "workers" in self.accepted:
                offered["workers"] = json.dumps(entries)
            elif entries:
                offered.update(comfy_url=entries[0]["url"], token=entries[0]["token"])
        return {k: v for k, v in offered.items() if k in self.accepted}

    def run_one(self, run_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        run_dir = self.out_dir / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        started, began = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
        row: dict[str, Any] = {"run_id": run_id, "parameters": parameters, "started": started}
        cost = 0.0
        try:
            if self.pool is not None:
                with self.pool.busy(run_id):
                    self._execute(run_dir, {**parameters, **self._injected(run_id, run_dir)})
                cost = self.pool.scaler.ledger.job_cost(run_id)
            else:
                self._execute(run_dir, {**parameters, **self._injected(run_id, run_dir)})
            row["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the batch goes on
            row["status"], row["error"] = "failed", str(exc).strip().splitlines()[-1][:500] if str(exc) else repr(exc)
        result = run_dir / "result.json"
        row.update(
            seconds=round(time.monotonic() - began, 3),
            cost=round(cost, 6),
            notebook=str(run_dir / "notebook.ipynb"),
            result=json.loads(result.read_text()) if result.exists() else None,
        )
        with self.table.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
        return row

    def _execute(self, run_dir: Path, parameters: dict[str, Any]) -> None:
        execute = self.execute
        if execute is None:
            import papermill as pm

            execute = pm.execute_notebook
        record = run_dir / "notebook.ipynb"
        try:
            execute(
                str(self.notebook),
                str(record),
                parameters=parameters,
                cwd=str(run_dir),
                kernel_name=self.kernel_name,
                progress_bar=False,
            )
        finally:
            self._hide_tokens(record)

    def _hide_tokens(self, record: Path) -> None:
        """Worker tokens were injected as parameters: keep them out of the executed notebook kept on disk."""
        if not self.secrets or not record.exists():
            return
        text = record.read_text(encoding="utf-8")
        for token in self.secrets:
            text = text.replace(token, "<worker token hidden>")
        record.write_text(text, encoding="utf-8")

    def _write_csv(self, rows: list[dict[str, Any]]) -> None:
        names = sorted({k for r in rows for k in r["parameters"]})
        with (self.out_dir / "results.csv").open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["run_id", "status", "seconds", "cost", *names, "notebook", "error"])
            for r in rows:
                values = [json.dumps(r["parameters"].get(n)) for n in names]
                writer.writerow(
                    [r["run_id"], r["status"], r["seconds"], r["cost"], *values, r["notebook"], r.get("error", "")]
                )


def _fixed(pairs: list[str]) -> dict[str, Any]:
    fixed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise BatchError(f"--set {pair!r} must look like name=value (value as JSON, or plain text)")
        fixed[name] = _cell(value)
    return fixed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("notebook", type=Path)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--grid", type=Path, help="a .json object of lists: every combination is run")
    source.add_argument("--params", type=Path, help="a .jsonl, .csv or .json list of parameter sets")
    parser.add_argument("--out", type=Path, default=Path("outputs/batch"))
    parser.add_argument("--set", action="append", default=[], help="name=value given to every run")
    parser.add_argument("--vast", type=int, default=0, help="rent this many Vast.ai workers around the batch")
    parser.add_argument("--workflows", default="", help="workflows the rented workers fetch models for (a,b)")
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    try:
        sets = load_parameter_sets(args.grid or args.params)
        runner = BatchRunner(args.notebook, args.out, fixed=_fixed(args.set), kernel_name=args.kernel)
        rows = _run_on_vast(runner, sets, args) if args.vast else runner.run_all(sets)
    except VidfarmError as exc:
        print(f"[batch] {exc}", file=sys.stderr)
        return 2
    failed = [r for r in rows if r["status"] != "ok"]
    cost = sum(r["cost"] for r in rows)
    print(f"[batch] {len(rows) - len(failed)} ok, {len(failed)} failed, ${cost:.2f}; table: {runner.table}")
    return 1 if failed else 0


def _run_on_vast(runner: BatchRunner, sets: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    from vidfarm.comfy.local import REPO
    from vidfarm.fleet.configure import vast_autoscaler

    workflows = [w for w in args.workflows.split(",") if w]
    scaler = vast_autoscaler(
        workflows, workflows_dir=REPO / "workflows", max_workers=args.vast, ledger_path=args.out / "ledger.jsonl"
    )
    with RentedPool(scaler, size=args.vast) as pool:
        runner.pool = pool
        return runner.run_all(sets)


if __name__ == "__main__":
    raise SystemExit(main())
