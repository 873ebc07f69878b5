"""Split one long video into segments a video model can render, and the keyframes they start and end on.

Strategies (ARCHITECTURE §2):
- keyframes: N+1 keyframes first, then N first-last-frame segments, all in parallel; segment i runs from keyframe i
  to keyframe i+1, so the seams meet exactly. Each segment after the first drops its first frame (the shared
  keyframe) before encoding, so the join is a plain concatenation.
- chain: segment i starts from the last frame of segment i-1 (image-to-video): serial, best motion continuity.
- shots: independent cuts, one keyframe + image-to-video segment per shot, all in parallel.

Keyframe 0 comes from the prompt (or is the user's photo); every later keyframe is derived from keyframe 0 by the
recipe's keyframe_edit workflow (decision 0070), so one subject and one world carry through: key 0 -> keys 1..N
(in parallel) -> segments (in parallel). `derived_keys=False` gives the old independent keyframes (for comparison).
With a last photo (keyframes strategy only, decision 0140) keyframe N is that photo as is, and keys 1..N-1 are derived.

Video models render 4n+1 frames (Wan, LTX); every segment renders the same length, and the last one is trimmed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

from vidfarm.errors import PlanError

STRATEGIES = ("keyframes", "chain", "shots")
DERIVED_SOURCES = ("image_edit", "derived")
KEYFRAME_MODES = ("derived", "independent")  # keyframes 1..N from keyframe 0 (decision 0070), or each from text


@dataclass(frozen=True)
class Keyframe:
    index: int
    prompt: str
    # "text" (text-to-image) | "image" (the user's photo as is) | "image_edit" (derived from the photo) |
    # "derived" (derived from keyframe 0, itself rendered from text) | "last_image" (the user's last photo as is)
    source: str

    @property
    def from_key0(self) -> bool:
        """Made from keyframe 0 (the photo or the text render) by the recipe's keyframe_edit workflow."""
        return self.source in DERIVED_SOURCES


@dataclass(frozen=True)
class SegmentSpec:
    index: int
    prompt: str
    render_frames: int  # frames the model renders (4n+1)
    drop_first: int  # frames dropped before encoding: the boundary frame the previous segment already has
    keep: int  # frames kept after dropping
    start_key: int | None  # keyframe of the first frame
    end_key: int | None  # keyframe of the last frame (keyframes strategy)
    after: int | None  # chain: the segment whose last frame starts this one

    @property
    def kind(self) -> str:
        return "flf" if self.end_key is not None else "i2v"


@dataclass(frozen=True)
class Plan:
    strategy: str
    fps: int
    width: int
    height: int
    total_frames: int
    keyframes: tuple[Keyframe, ...]
    segments: tuple[SegmentSpec, ...]

    @property
    def seconds(self) -> float:
        return self.total_frames / self.fps

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["keyframes"] = tuple(Keyframe(**k) for k in data["keyframes"])
        data["segments"] = tuple(SegmentSpec(**s) for s in data["segments"])
        return cls(**data)


def shot_prompts(prompt: str) -> list[str]:
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    if not lines:
        raise PlanError("the prompt is empty; describe the video (for shots: one shot per line)")
    return lines


def _segment_length(new_frames: int, count: int, max_frames: int, step: int) -> int:
    """Smallest 4n+1 length that lets `count` equal segments cover `new_frames` new frames."""
    per = math.ceil(new_frames / (count * step)) * step
    if per + 1 > max_frames:
        raise PlanError(f"internal: segment of {per + 1} frames exceeds {max_frames}")
    return per + 1


def make_plan(
    *,
    prompt: str,
    seconds: float,
    fps: int,
    width: int,
    height: int,
    strategy: str = "keyframes",
    segment_frames: int = 81,
    frame_step: int = 4,
    from_image: bool = False,
    derived_keys: bool = True,
) -> Plan:
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not 0 < seconds <= 600:
        raise PlanError(f"seconds must be between 0 and 600, not {seconds}")
    if segment_frames < frame_step + 1 or (segment_frames - 1) % frame_step:
        raise PlanError(f"segment_frames must be {frame_step}n+1 and at least {frame_step + 1}, not {segment_frames}")
    total = max(2, round(seconds * fps))
    prompts = shot_prompts(prompt)
    if strategy == "shots":
        plan = _shots_plan(prompts, total, fps, width, height, segment_frames, frame_step)
        return _with_sources(plan, from_image, derived_keys)
    count = math.ceil((total - 1) / (segment_frames - 1))
    length = _segment_length(total - 1, count, segment_frames, frame_step)
    segments = []
    for i in range(count):
        start = i * (length - 1)
        drop = 0 if i == 0 else 1
        keep = min(length - drop, total - start - drop)
        chained = strategy == "chain" and i > 0
        segments.append(
            SegmentSpec(
                index=i,
                prompt=prompts[i * len(prompts) // count],
                render_frames=length,
                drop_first=drop,
                keep=keep,
                start_key=None if chained else i,
                end_key=i + 1 if strategy == "keyframes" else None,
                after=i - 1 if chained else None,
            )
        )
    key_count = count + 1 if strategy == "keyframes" else 1
    keyframes = tuple(Keyframe(j, segments[min(j, count - 1)].prompt, "text") for j in range(key_count))
    plan = Plan(strategy, fps, width, height, total, keyframes, tuple(segments))
    return _with_sources(plan, from_image, derived_keys)


def _source(index: int, from_image: bool, derived_keys: bool) -> str:
    if from_image:
        return "image" if index == 0 else "image_edit"
    return "derived" if derived_keys and index > 0 else "text"


def _with_sources(plan: Plan, from_image: bool, derived_keys: bool) -> Plan:
    keys = tuple(replace(k, source=_source(k.index, from_image, derived_keys)) for k in plan.keyframes)
    return replace(plan, keyframes=keys)


def _shots_plan(
    prompts: list[str],
    total: int,
    fps: int,
    width: int,
    height: int,
    segment_frames: int,
    frame_step: int,
) -> Plan:
    count = max(len(prompts), math.ceil(total / segment_frames))
    length = _segment_length(total - count, count, segment_frames, frame_step)
    segments, start = [], 0
    for i in range(count):
        keep = min(length, total - start - (count - 1 - i))  # leave at least one frame for each later shot
        segments.append(
            SegmentSpec(
                index=i,
                prompt=prompts[i * len(prompts) // count],
                render_frames=length,
                drop_first=0,
                keep=keep,
                start_key=i,
                end_key=None,
                after=None,
            )
        )
        start += keep
    keyframes = tuple(Keyframe(i, s.prompt, "text") for i, s in enumerate(segments))
    return Plan("shots", fps, width, height, total, keyframes, tuple(segments))


def boundary_frames(plan: Plan) -> list[int]:
    """Indices in the final video where keyframe i+1 sits (the last frame of segment i), keyframes strategy."""
    indices, position = [], 0
    for segment in plan.segments:
        position += segment.keep
        if segment.end_key is not None and segment.drop_first + segment.keep == segment.render_frames:
            indices.append(position - 1)
    return indices


def with_photo(plan: Plan) -> Plan:
    """The same plan for image-to-video: the user's photo is keyframe 0, the others are derived from it."""
    return _with_sources(plan, True, True)


def with_last_photo(plan: Plan) -> Plan:
    """The same plan ending on the user's last photo: keyframe N is that photo, not rendered. Only the keyframes
    strategy has a keyframe at the end (chain's end is wherever its last segment arrives; shots have none)."""
    if plan.strategy != "keyframes":
        raise PlanError(
            f"a last photo needs the keyframes strategy (only it ends on a given frame), not {plan.strategy}"
        )
    last = plan.keyframes[-1]
    return replace(plan, keyframes=(*plan.keyframes[:-1], replace(last, source="last_image")))
