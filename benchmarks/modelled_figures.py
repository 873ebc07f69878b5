"""The figures other benchmarks assume today, read from their source (no copies here, no imports of them).

- benchmarks/makespan.py `FIGURES`: GPU seconds per task of each fleet config; a segment is written there as
  `generate + post` (e.g. `60.0 + 20.0`), so both parts are kept.
- benchmarks/stereo.py `BYTES_PER_EYE_PIXEL` and `GPU_BANDWIDTH`: its memory-bound model of DIBR on an H100.

Read with `ast` rather than imported: makespan.py pulls in the dispatcher and its HTTP stack, which the GPU
machine lacks; the numbers stay where they are maintained.
"""

from __future__ import annotations

import ast
import operator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
_OPS: dict[type[ast.operator], Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _number(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_number(node.left), _number(node.right)))
    raise ValueError(f"not a plain number: {ast.unparse(node)}")


def _assigned(path: Path, name: str) -> ast.expr:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    raise ValueError(f"{path.name} assigns no {name}")


def makespan_config(frames: int, path: Path = BENCH / "makespan.py") -> dict[str, Any]:
    """The makespan config rendering `frames`-frame segments: name, keyframe, generate, post, segment seconds."""
    configs = _assigned(path, "FIGURES")
    if not isinstance(configs, ast.Dict):
        raise ValueError("makespan.FIGURES is not a dict literal")
    for key, value in zip(configs.keys, configs.values, strict=True):
        if not isinstance(key, ast.Constant) or not isinstance(value, ast.Dict):
            continue
        fields = {k.value: v for k, v in zip(value.keys, value.values, strict=True) if isinstance(k, ast.Constant)}
        if int(_number(fields["frames"])) != frames:
            continue
        segment = fields["segment"]
        split = isinstance(segment, ast.BinOp) and isinstance(segment.op, ast.Add)
        return {
            "config": str(key.value),
            "keyframe": _number(fields["keyframe"]),
            "generate": _number(segment.left) if split else None,  # type: ignore[attr-defined]
            "post": _number(segment.right) if split else None,  # type: ignore[attr-defined]
            "segment": _number(segment),
        }
    raise ValueError(f"makespan.FIGURES has no config with {frames}-frame segments")


def stereo_seconds(frames: int, width: int, height: int, path: Path = BENCH / "stereo.py") -> float:
    """stereo.py's GPU model for `frames` stereo pairs of width x height per eye (both eyes rendered)."""
    per_eye_pixel = _number(_assigned(path, "BYTES_PER_EYE_PIXEL"))
    bandwidth = _number(_assigned(path, "GPU_BANDWIDTH"))
    return frames * 2 * width * height * per_eye_pixel / bandwidth
