"""The `vidfarm` command: list and validate workflows, run one on a ComfyUI server.

vidfarm workflows list
vidfarm recipes
vidfarm workflows validate [NAME | FILE.json ...] [--server URL | --object-info FILE]
vidfarm workflows import FILE.json [--name NAME] [--server URL | --object-info FILE] [--force]
vidfarm run NAME | FILE.json [--set key=value ...] [--image FILE] [--server URL] [--out DIR]
vidfarm du [DATA_DIR]

`run` saves each run's outputs in a new folder (DIR/NAME-YYYYmmdd-HHMMSS): a run never overwrites an earlier one.
Stopped (Ctrl-C, SIGTERM), it cancels its prompt on the server, says so and exits with 130 / 143.

FILE.json may be an API-format export or an editor (UI-format) file; an editor file is converted with the server's
(or the saved) /object_info.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from vidfarm.comfy import ComfyClient, Progress, PromptRun
from vidfarm.comfy.compat import version_found, version_line
from vidfarm.comfy.local import REPO
from vidfarm.comfy.stopping import StopSignals
from vidfarm.errors import ComfyError, Stopped, VidfarmError, WorkflowInvalid
from vidfarm.jobs.retention import unique_dir, usage
from vidfarm.workflow.check import CheckReport, check_declaration, check_opened, load_object_info
from vidfarm.workflow.declaration import find_declaration, find_declarations
from vidfarm.workflow.files import import_workflow, open_file, open_workflow
from vidfarm.workflow.validate import ObjectInfo
from vidfarm.workflow.verdict import summary

WORKFLOWS_DIR = REPO / "workflows"
STOCK_SNAPSHOT = REPO / "workflows" / "object_info" / "comfyui-0.3.75.json"  # captured from a real server
SNAPSHOT = REPO / "workflows" / "object_info" / "comfyui-0.3.75-vidfarm.json"  # the same plus the node pack


def _client(args: argparse.Namespace) -> ComfyClient:
    return ComfyClient(args.server, token=args.token or os.environ.get("VIDFARM_COMFY_TOKEN") or None)


def cmd_list(args: argparse.Namespace) -> int:
    for d in find_declarations(args.dir):
        size = sum(m.disk_bytes for m in d.models) / 1e9
        needs = "model-free" if d.model_free else f"{len(d.models)} model files, {size:.1f} GB"
        print(f"{d.name:<22} {d.kind:<6} {needs:<32} {d.title}")
        print(f"{'':<29} parameters: {', '.join(d.parameters)}")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    """The recipes (workflows/recipes.toml): what each can do and the model files a worker downloads for it."""
    from vidfarm.workflow.recipe import load_recipes

    for recipe in load_recipes(Path(args.dir) / "recipes.toml").values():
        models = {
            (m.folder, m.file): m for w in recipe.workflows.values() for m in find_declaration(args.dir, w).models
        }
        size = sum(m.disk_bytes for m in models.values()) / 1e9
        native = f"{recipe.gen_width}x{recipe.gen_height}" if recipe.gen_width else "any size"
        print(f"{recipe.name:<16} {', '.join(recipe.strategies):<24} {native:<10} {len(models)} files, {size:.1f} GB")
        print(f"{'':<17}{recipe.title}")
        for m in sorted(models.values(), key=lambda m: m.folder):
            print(f"{'':<19}{m.folder}/{m.file} ({m.disk_bytes / 1e9:.2f} GB{'' if m.size else ', approx.'})")
    return 0


def _object_info(args: argparse.Namespace) -> tuple[ObjectInfo, str]:
    if args.server:
        return _client(args).object_info(), args.server
    return load_object_info(args.object_info), str(args.object_info)


def _version(args: argparse.Namespace) -> str | None:
    """The ComfyUI version checked against: the server's, or the one a saved snapshot's name carries."""
    if args.server:
        version = _client(args).system_stats().get("system", {}).get("comfyui_version")
        return str(version) if version else None
    named = re.match(r"comfyui-(\d+(?:\.\d+)+)", Path(args.object_info).name)
    return named.group(1) if named else None


def _reports(args: argparse.Namespace, object_info: ObjectInfo) -> list[CheckReport]:
    """Named workflows and files; with no names, every declaration and every undeclared .json in the folder."""
    present = bool(args.server)
    files = [Path(n) for n in args.names if n.endswith(".json")]
    names = [n for n in args.names if not n.endswith(".json")]
    declarations = [find_declaration(args.dir, n) for n in names]
    if not args.names:
        declarations = find_declarations(args.dir)
        graphs = {d.graph_path.resolve() for d in declarations}
        files = [p for p in sorted(Path(args.dir).glob("*.json")) if p.resolve() not in graphs]
    reports = [check_declaration(d, object_info, models_present=present) for d in declarations]
    return reports + [check_opened(open_file(p, object_info), object_info, models_present=present) for p in files]


def cmd_validate(args: argparse.Namespace) -> int:
    object_info, source = _object_info(args)
    version = _version(args)
    print(f"checking against {source} ({len(object_info)} node classes): {version_found(version)}")
    old = version_line(version, where=source) if version or args.server else None  # a server without one is old
    if old:
        print(old)
    reports = _reports(args, object_info)
    if not reports:
        print(f"nothing to check: {args.dir} has no workflow declarations (.toml) and no workflow files (.json)")
        return 1
    for report in reports:
        print("\n".join(report.lines()))
    failed = sum(not r.ok for r in reports)
    print(f"{len(reports)} checked, {failed} invalid")
    return 1 if failed else 0


def cmd_import(args: argparse.Namespace) -> int:
    object_info, source = _object_info(args)
    imported = import_workflow(args.file, args.dir, object_info, name=args.name or "", force=args.force)
    print(f"wrote {imported.graph_path} and {imported.declaration_path} (converted with {source})")
    for line in imported.dropped:
        print(f"  dropped {line}")
    print(f"verdict: {summary(imported.problems)}")
    for problem in imported.problems:
        print(f"  - {problem}")
    print(
        f"review the parameters in {imported.declaration_path.name}, then: vidfarm workflows validate {imported.name}"
    )
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Refresh the saved /object_info: the stock 0.3.75 snapshot plus the node pack as a live server shows it."""
    from vidfarm.comfy.local import LocalComfy

    with LocalComfy(REPO / ".vidfarm" / "snapshot-comfy") as comfy:
        live = ComfyClient(comfy.url).object_info()
    merged = load_object_info(STOCK_SNAPSHOT)
    merged.update({name: spec for name, spec in live.items() if name.startswith("Vidfarm")})
    SNAPSHOT.write_text(json.dumps(merged, sort_keys=True))
    print(f"wrote {SNAPSHOT} ({len(merged)} node classes)")
    return 0


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise VidfarmError(f"--set {pair!r} must look like key=value")
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


def print_progress(progress: Progress) -> None:
    node = f" {progress.node_class or ''}" if progress.node_id else ""
    steps = f" step {progress.step}/{progress.steps}" if progress.steps else ""
    print(
        f"\r[{progress.fraction:5.0%}] {progress.stage}{node}{steps}".ljust(70),
        end="",
        file=sys.stderr,
        flush=True,
    )


def cmd_run(args: argparse.Namespace) -> int:
    values = _parse_sets(args.set)
    client = _client(args)
    object_info = client.object_info()
    opened = open_workflow(args.name, args.dir, object_info)
    problems = opened.problems(object_info)
    if problems:
        raise WorkflowInvalid(opened.name, problems)
    if args.image:
        values["image"] = client.upload_image(args.image)
    graph = opened.fill(values)
    dest = unique_dir(args.out, Path(args.name).stem)
    run = PromptRun(client, graph, dest_dir=dest, on_progress=print_progress)
    with StopSignals() as signals:  # Ctrl-C or SIGTERM: the prompt must not keep running on the server
        try:
            with signals.held():  # the server knows the prompt before a stop is acted on
                run.start()
            result = run.wait()
        except Stopped as stop:
            signals.ignore_more()
            print(f"\nstopped: {_cancelled(run)}", file=sys.stderr)
            return stop.exit_code
    print(file=sys.stderr)
    for output in result.outputs:
        info = output.info
        print(f"{output.path}  {info.kind} {info.width}x{info.height} {info.frames} frames {info.fps:g} fps")
    return 0


def _cancelled(run: PromptRun) -> str:
    """Cancel the run's prompt on the server and say how that went, in one line."""
    try:
        if run.cancel():
            return f"prompt {run.prompt_id} cancelled on the server"
        reason = "the server did not answer"
    except ComfyError as exc:
        reason = str(exc)
    return f"prompt {run.prompt_id} may still run on {run.client.url}: cancelling it failed ({reason})"


def cmd_du(args: argparse.Namespace) -> int:
    """Disk used by a data folder (the service's, by default), by kind: what the retention policy deletes when."""
    root = Path(args.data_dir)
    if not root.is_dir():
        raise VidfarmError(f"no data folder at {root}: give the service's VIDFARM_SERVICE_DATA_DIR")
    found = usage(root)
    for kind, size in found.items():
        print(f"{kind:<16} {size / 1e6:10.1f} MB")
    print(f"{'total':<16} {sum(found.values()) / 1e6:10.1f} MB  ({root})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidfarm", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dir", type=Path, default=WORKFLOWS_DIR, help="workflows folder")
    sub = parser.add_subparsers(dest="command", required=True)
    workflows = sub.add_parser("workflows", help="list or validate workflows").add_subparsers(
        dest="action", required=True
    )
    workflows.add_parser("list", help="list workflows and their parameters").set_defaults(func=cmd_list)
    validate = workflows.add_parser("validate", help="check workflows against a server's /object_info")
    validate.add_argument("names", nargs="*")
    validate.add_argument("--server", help="ComfyUI URL (default: the saved 0.3.75 snapshot)")
    validate.add_argument("--object-info", type=Path, default=SNAPSHOT)
    validate.add_argument("--token", default=None)
    validate.set_defaults(func=cmd_validate)
    imports = workflows.add_parser("import", help="declare an editor or API file: NAME.json + a scaffolded NAME.toml")
    imports.add_argument("file", type=Path)
    imports.add_argument("--name", help="workflow name (default: from the file name)")
    imports.add_argument("--server", help="ComfyUI URL whose /object_info converts it (default: the saved one)")
    imports.add_argument("--object-info", type=Path, default=SNAPSHOT)
    imports.add_argument("--token", default=None)
    imports.add_argument("--force", action="store_true", help="overwrite an existing workflow of that name")
    imports.set_defaults(func=cmd_import)
    workflows.add_parser("snapshot", help="refresh the saved /object_info after changing the node pack").set_defaults(
        func=cmd_snapshot
    )
    sub.add_parser("recipes", help="the recipes, what they can do and the models they need").set_defaults(
        func=cmd_recipes
    )
    run = sub.add_parser("run", help="run a workflow on a ComfyUI server and save its outputs")
    run.add_argument("name", help="a workflow name, or a .json file (API export or editor file)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--image", help="input image for image-to-video workflows")
    run.add_argument("--server", default="http://127.0.0.1:8188")
    run.add_argument("--token", default=None)
    run.add_argument("--out", type=Path, default=Path("outputs"))
    run.set_defaults(func=cmd_run)
    du = sub.add_parser("du", help="disk used by a data folder, by kind (deliverables, scratch, uploads, ...)")
    du.add_argument("data_dir", nargs="?", default=REPO / ".vidfarm" / "service", type=Path)
    du.set_defaults(func=cmd_du)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VidfarmError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
