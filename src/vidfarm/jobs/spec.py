"""A long-video job as one typed value, checked once against its one source of each rule, before any process starts.

`JobSpec.from_values` takes what a person asked for (REST body, chat options, notebook parameters, a batch row) and
either returns a spec whose every field is in its declared type and range, the recipe can render it, and its plan
exists, or raises `JobSpecInvalid` listing every problem at once (option, what was wrong, what is allowed). The ranges
are the pipeline's declarations (workflows/long_video.toml), the recipes workflows/recipes.toml, the VR choices the
workflows of kind "vr"; nothing here restates a limit.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vidfarm.errors import InputImageError, JobSpecInvalid, OptionProblem, PlanError, VidfarmError, WorkflowError
from vidfarm.jobs.options import pipeline_declaration
from vidfarm.media.checks import check_upload_image
from vidfarm.render.plan import Plan, make_plan, with_last_photo
from vidfarm.workflow.declaration import find_declarations, number
from vidfarm.workflow.recipe import RECIPES_PATH, Recipe, find_recipe

WORKFLOWS = RECIPES_PATH.parent
LOCAL_WORKERS = re.compile(r"local:(\d{1,2})")
MAX_LOCAL_WORKERS = 16  # CPU ComfyUI processes on one machine: each takes ~1 GB before it renders anything
MAX_PHOTO_BYTES = 64_000_000
# Characters that cannot travel: lone surrogates (not encodable as UTF-8) and control characters other than
# newline and tab. Everything else - emoji, CJK, RTL, combining marks - passes through unchanged.
_ALLOWED_CONTROLS = {"\n", "\t"}


@dataclass(frozen=True)
class JobSpec:
    """What to render. Only the fields a person chooses; where it runs (head, output folder) is not part of it.
    No field has a default here: the defaults, like the ranges, are the pipeline's declarations."""

    prompt: str
    image: str  # a photo for image-to-video; empty = text-to-video
    last_image: str  # a photo the clip ends on (keyframe N; needs `image` and the keyframes strategy); empty = none
    seconds: float
    width: int
    height: int
    fps: int
    strategy: str
    recipe: str
    seed: int
    segment_frames: int
    render_height: int
    crossfade_frames: int
    keyframes: str
    color_match: float
    vr: str  # empty, or a workflow of kind "vr" (vr180_mono)
    workers: str
    hang_timeout: float
    down_grace: float
    _plan: Plan | None = field(default=None, compare=False, repr=False)

    # --- building -----------------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if not f.name.startswith("_"))

    @classmethod
    def from_values(
        cls, values: Mapping[str, Any], *, workflows_dir: Path = WORKFLOWS, allowed: tuple[str, ...] | None = None
    ) -> JobSpec:
        """A checked spec from what was asked; None and missing values take the pipeline's declared defaults.

        `allowed` narrows which names a caller may set (the phone cannot choose `workers`); every problem is
        collected, so a person fixes them all at once.
        """
        problems: list[OptionProblem] = []
        allowed = allowed or cls.names()
        for name in sorted(set(values) - set(allowed)):
            problems.append(OptionProblem(name, "unknown option", f"one of {', '.join(allowed)}"))
        chosen = {k: v for k, v in values.items() if k in allowed and v is not None}
        typed = _typed(chosen, workflows_dir, problems)
        if problems:
            raise JobSpecInvalid(problems)
        spec = cls(**typed)
        return spec._checked(workflows_dir)

    def _checked(self, workflows_dir: Path) -> JobSpec:
        problems: list[OptionProblem] = []
        _check_prompt(self.prompt, problems)
        _check_image(self.image, problems)
        _check_last_image(self, problems)
        _check_vr(self.vr, workflows_dir, problems)
        _check_workers(self.workers, problems)
        if problems:
            raise JobSpecInvalid(problems)
        recipe = self.recipe_in(workflows_dir)
        if self.strategy not in recipe.strategies:
            problem = OptionProblem(
                "strategy",
                f"recipe {recipe.name} cannot do {self.strategy}",
                "choose " + " or ".join(recipe.strategies),
            )
            raise JobSpecInvalid([problem])
        try:
            plan = make_plan(
                prompt=self.prompt, seconds=self.seconds, fps=self.fps, width=self.width, height=self.height,
                strategy=self.strategy, segment_frames=self.segment_frames or recipe.segment_frames,
                from_image=bool(self.image), derived_keys=self.keyframes == "derived",
            )  # fmt: skip
            plan = with_last_photo(plan) if self.last_image else plan
            recipe.check(plan)
        except (PlanError, WorkflowError) as exc:
            raise JobSpecInvalid([OptionProblem("plan", str(exc), "another length, strategy or recipe")]) from None
        object.__setattr__(self, "_plan", plan)
        return self

    # --- what it means ------------------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        """The one plan of this job (computed when the spec was checked); the head computes the same from it."""
        assert self._plan is not None, "JobSpec.from_values makes checked specs; construct through it"
        return self._plan

    def recipe_in(self, workflows_dir: Path = WORKFLOWS) -> Recipe:
        return find_recipe(workflows_dir / RECIPES_PATH.name, self.recipe)

    def values(self) -> dict[str, Any]:
        """Every field, in its type: the pipeline notebook's parameters and the record of the job."""
        data = asdict(self)
        data.pop("_plan")
        return data

    def content_id(self) -> str:
        """The job id a spec gets when its caller gives none: the same request is the same job (finished segments
        are reused); a photo counts by its bytes, not its path."""
        values = self.values()
        for name in ("image", "last_image"):
            if values[name]:
                values[name] = hashlib.sha256(Path(values[name]).read_bytes()).hexdigest()
        if not values["last_image"]:
            del values["last_image"]  # the ids of jobs without one stay what they were before it existed
        return content_id(values)

    def describe(self, workflows_dir: Path = WORKFLOWS) -> str:
        """Two lines a person reads before the render starts."""
        plan, recipe = self.plan, self.recipe_in(workflows_dir)
        rendered = recipe.gen_size(self.width, self.height, render_height=self.render_height)
        return (
            f"{plan.total_frames} frames ({plan.seconds:.1f} s) at {self.width}x{self.height}, {self.fps} fps\n"
            f"{len(plan.keyframes)} keyframes, {len(plan.segments)} segments of {plan.segments[0].render_frames} "
            f"frames ({self.strategy}, recipe {self.recipe}: rendered at {rendered[0]}x{rendered[1]})"
        )


def check_options(values: Mapping[str, Any], *, workflows_dir: Path = WORKFLOWS) -> dict[str, Any]:
    """Some of a job's options (a chat's choices so far) checked as a whole job would be, the rest defaulted;
    returns the given ones in their declared types, or raises JobSpecInvalid. Keys that are not job fields
    (a head URL in the service's defaults) are ignored."""
    given = {k: v for k, v in values.items() if k in JobSpec.names() and v is not None}
    spec = JobSpec.from_values({"prompt": "-", **given}, workflows_dir=workflows_dir)
    return {k: v for k, v in spec.values().items() if k in given}


def content_id(values: Any) -> str:
    """The one derived-id scheme (jobs, batch runs, a head run from the editor without an id): 16 hex characters
    of the SHA-256 of the values as canonical JSON, so equal requests share finished work."""
    text = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_job_id() -> str:
    """The id of a job record that its creator names (the service, the CLI): random, so two equal requests are
    two records; a spec's `content_id` is the id when no creator names one."""
    return secrets.token_hex(8)


def check_job_id(job_id: str) -> str:
    """Job ids become folder names and URL parts: refuse anything but [A-Za-z0-9_-]{1,64}."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", job_id):
        raise JobSpecInvalid([OptionProblem("job_id", f"{job_id!r} is not a job id", "1-64 of A-Z a-z 0-9 _ -")])
    return job_id


# --- checks -----------------------------------------------------------------------------------------------
def _typed(chosen: Mapping[str, Any], workflows_dir: Path, problems: list[OptionProblem]) -> dict[str, Any]:
    """Declared parameters coerced to their types and ranges; the others (image, last_image, vr) as strings."""
    declared = pipeline_declaration(workflows_dir).parameters
    typed: dict[str, Any] = {}
    for name in JobSpec.names():
        parameter = declared.get(name)
        if parameter is None:  # image, last_image, vr: not in the pipeline declaration; checked below
            value = chosen.get(name, "")
            if not isinstance(value, str):
                problems.append(OptionProblem(name, f"{value!r} is not text", "a string"))
            typed[name] = value if isinstance(value, str) else ""
            continue
        try:
            typed[name] = parameter.coerce(chosen.get(name, parameter.default))
        except WorkflowError as exc:
            problems.append(OptionProblem(name, str(exc).removeprefix(f"parameter {name}: "), _allowed(parameter)))
    if "recipe" in typed:
        try:
            find_recipe(workflows_dir / RECIPES_PATH.name, typed["recipe"])
        except WorkflowError as exc:
            problems.append(OptionProblem("recipe", str(exc), "vidfarm recipes lists them"))
    return typed


def _allowed(parameter: Any) -> str:
    if parameter.options:
        return "one of " + ", ".join(parameter.options)
    if parameter.minimum is not None and parameter.maximum is not None:
        kind = "a whole number" if parameter.type == "int" else "a number"
        return f"{kind} from {number(parameter.minimum)} to {number(parameter.maximum)}"
    if parameter.max_length is not None:
        return f"text of at most {parameter.max_length} characters"
    return f"a {parameter.type}"


def _check_prompt(prompt: str, problems: list[OptionProblem]) -> None:
    if not prompt.strip():
        problems.append(OptionProblem("prompt", "the prompt is empty", "describe the video you want"))
        return
    bad = sorted(
        {f"U+{ord(c):04X}" for c in prompt if unicodedata.category(c) == "Cs"}
        | {f"U+{ord(c):04X}" for c in prompt if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS}
    )
    if bad:
        problems.append(
            OptionProblem(
                "prompt",
                f"the prompt holds characters that cannot be sent ({', '.join(bad[:5])})",
                "plain text: letters, emoji, newlines",
            )  # fmt: skip
        )


def _check_image(image: str, problems: list[OptionProblem], *, option: str = "image") -> None:
    if not image:
        return
    try:
        check_upload_image(image, max_bytes=MAX_PHOTO_BYTES)
    except (InputImageError, VidfarmError) as exc:
        problems.append(OptionProblem(option, str(exc), "a PNG, JPEG, WEBP or BMP photo"))


def _check_last_image(spec: JobSpec, problems: list[OptionProblem]) -> None:
    """A last photo is keyframe N: there must be a first photo, and only the keyframes strategy ends on a keyframe
    (a chain ends wherever its last segment arrives; shots are cuts)."""
    if not spec.last_image:
        return
    _check_image(spec.last_image, problems, option="last_image")
    if not spec.image:
        problems.append(OptionProblem("last_image", "a last photo without a first photo", "give image too"))
    if spec.strategy != "keyframes":
        problems.append(
            OptionProblem("last_image", f"strategy {spec.strategy} cannot end on a given photo", "strategy keyframes")
        )


def vr_choices(workflows_dir: Path = WORKFLOWS) -> tuple[str, ...]:
    """The VR copies a job can ask for: the workflows of kind "vr" (one flat video in, a VR video out)."""
    return tuple(sorted(d.name for d in find_declarations(workflows_dir) if d.kind == "vr"))


def _check_vr(vr: str, workflows_dir: Path, problems: list[OptionProblem]) -> None:
    if vr and vr not in vr_choices(workflows_dir):
        allowed = "empty, or " + ", ".join(vr_choices(workflows_dir))
        problems.append(OptionProblem("vr", f"{vr!r} is not a VR output", allowed))


def _check_workers(workers: str, problems: list[OptionProblem]) -> None:
    text = workers.strip()
    local = LOCAL_WORKERS.fullmatch(text)
    if local:
        if not 1 <= int(local.group(1)) <= MAX_LOCAL_WORKERS:
            problems.append(OptionProblem("workers", f"{text} workers", f"local:1 to local:{MAX_LOCAL_WORKERS}"))
        return
    from vidfarm.render.dispatch import Worker  # the pool's own parser: one format, one place

    allowed = 'local:N, or a JSON list [{"name", "url", "token"}], or one "URL [token]" per line'
    try:
        pool = Worker.parse_pool(text)
    except VidfarmError as exc:
        problems.append(OptionProblem("workers", str(exc), allowed))
        return
    if not pool:
        problems.append(OptionProblem("workers", "no worker given", allowed))
    for worker in pool:
        if not worker.url.startswith(("http://", "https://")):
            problems.append(OptionProblem("workers", f"{worker.name}: {worker.url!r} is not an http(s) URL", allowed))
