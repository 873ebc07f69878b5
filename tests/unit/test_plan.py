from __future__ import annotations

import pytest

from vidfarm.render.plan import Plan, PlanError, boundary_frames, make_plan


def test_thirty_seconds_at_16_fps_keyframes() -> None:
    plan = make_plan(prompt="a boat", seconds=30, fps=16, width=2560, height=1440)
    assert plan.total_frames == 480
    assert sum(s.keep for s in plan.segments) == 480
    assert len(plan.keyframes) == len(plan.segments) + 1
    assert all((s.render_frames - 1) % 4 == 0 and s.render_frames <= 81 for s in plan.segments)
    assert [s.drop_first for s in plan.segments] == [0] + [1] * (len(plan.segments) - 1)
    assert all(s.kind == "flf" and s.end_key == s.start_key + 1 for s in plan.segments)
    # each full segment's last frame is the next keyframe: every boundary lands on one
    step = plan.segments[0].render_frames - 1
    assert boundary_frames(plan)[:3] == [step, 2 * step, 3 * step]


def test_chain_is_serial_and_shots_are_independent() -> None:
    chain = make_plan(prompt="a", seconds=10, fps=16, width=64, height=64, strategy="chain")
    assert [s.after for s in chain.segments] == [None] + list(range(len(chain.segments) - 1))
    assert len(chain.keyframes) == 1 and sum(s.keep for s in chain.segments) == 160
    shots = make_plan(prompt="one\ntwo\nthree", seconds=9, fps=16, width=64, height=64, strategy="shots")
    assert [s.prompt for s in shots.segments] == ["one", "two", "three"]
    assert all(s.drop_first == 0 and s.after is None for s in shots.segments)
    assert sum(s.keep for s in shots.segments) == 144


def test_image_to_video_uses_the_photo_as_keyframe_zero() -> None:
    plan = make_plan(prompt="a", seconds=12, fps=16, width=64, height=64, from_image=True)
    assert [k.source for k in plan.keyframes][:2] == ["image", "image_edit"]


@pytest.mark.parametrize("seconds", [0.2, 1, 5.06, 17.3, 30, 61])
@pytest.mark.parametrize("strategy", ["keyframes", "chain", "shots"])
def test_frame_count_is_exact_for_any_length(seconds: float, strategy: str) -> None:
    plan = make_plan(prompt="a\nb", seconds=seconds, fps=16, width=64, height=64, strategy=strategy)
    assert sum(s.keep for s in plan.segments) == plan.total_frames == max(2, round(seconds * 16))
    assert all(0 < s.keep <= s.render_frames - s.drop_first for s in plan.segments)


def test_round_trip_and_bad_requests() -> None:
    plan = make_plan(prompt="x", seconds=6, fps=8, width=64, height=64, segment_frames=17)
    assert Plan.from_json(plan.to_json()) == plan
    with pytest.raises(PlanError, match="strategy 'loop' is not one of"):
        make_plan(prompt="x", seconds=6, fps=8, width=64, height=64, strategy="loop")
    with pytest.raises(PlanError, match="4n\\+1"):
        make_plan(prompt="x", seconds=6, fps=8, width=64, height=64, segment_frames=80)
    with pytest.raises(PlanError, match="prompt is empty"):
        make_plan(prompt="  \n", seconds=6, fps=8, width=64, height=64)


def test_worker_pool_forms_and_secret_references(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidfarm.errors import DispatchFailed
    from vidfarm.render.dispatch import Worker

    monkeypatch.setenv("GPU1_TOKEN", "s3cret-token-value")
    pool = Worker.parse_pool('[{"name": "gpu1", "url": "https://a:8288", "token": "env:GPU1_TOKEN"}]')
    assert pool == [Worker("gpu1", "https://a:8288", "s3cret-token-value")]
    lines = Worker.parse_pool("http://127.0.0.1:8190\nhttp://127.0.0.1:8191 tok-123\n")
    assert [(w.name, w.token) for w in lines] == [("w0", None), ("w1", "tok-123")]
    with pytest.raises(DispatchFailed, match="MISSING_TOKEN, which is not set"):
        Worker.parse_pool('[{"url": "https://a", "token": "env:MISSING_TOKEN"}]')
    with pytest.raises(DispatchFailed, match="not a JSON list"):
        Worker.parse_pool('[{"name": "no url"}]')
    assert "s3cret" not in repr(pool[0])  # reports and logs never show tokens
