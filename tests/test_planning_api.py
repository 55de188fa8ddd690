"""plan_edit (dispatch, caching, atomic writes), key frames, reply parsing and the word limits."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

import dynvfx.planning as planning
from dynvfx.planning import MAX_CAPTION_WORDS, MAX_OBJECT_WORDS, PlanningError, VFXPlan, plan_edit
from dynvfx.planning.cache import plan_key, plan_path, store_plan
from dynvfx.planning.dialogue import extract_json
from dynvfx.planning.keyframes import frames_to_data_urls, frames_to_images, select_keyframes
from dynvfx.planning.prompts import ObjectsReply, SceneReply, objects_question, scene_question

TURNS = [{"speaker": "assistant", "text": "Where?"}, {"speaker": "artist", "text": "Left side."}]


@pytest.fixture
def frames() -> torch.Tensor:
    """``[5, 3, 16, 24]`` float in [0, 1]."""
    return torch.rand(5, 3, 16, 24, generator=torch.Generator().manual_seed(2))


class FakeOpenAI:
    """Stands in for ``plan_openai`` inside ``plan_edit``; counts calls and returns a plan without keyframes."""

    def __init__(self):
        self.calls = []

    def __call__(self, frames, instruction, keyframes=None, model=None, **kw):
        self.calls.append((instruction, keyframes, model, kw))
        return VFXPlan(instruction=instruction, source_caption="a lawn", composited_caption=f"a lawn; {instruction}",
                       objects_orig=["lawn"], objects_edit=["dog"], backend="openai", model=model or "",
                       raw_reply=f"reply #{len(self.calls)}")


@pytest.fixture
def fake(monkeypatch) -> FakeOpenAI:
    fake = FakeOpenAI()
    monkeypatch.setattr(planning, "plan_openai", fake)
    return fake


# ---------------------------------------------------------------- key frames


def test_select_keyframes():
    assert select_keyframes(49) == [0, 24, 48]
    assert select_keyframes(10, k=4) == [0, 3, 6, 9]
    assert select_keyframes(2) == [0, 1]
    assert select_keyframes(1) == [0]
    assert select_keyframes(9, k=1) == [4]
    with pytest.raises(ValueError):
        select_keyframes(0)


def test_frames_become_png_data_urls(frames):
    urls = frames_to_data_urls(frames, [0, 4])
    assert len(urls) == 2
    raw = base64.b64decode(urls[1].removeprefix("data:image/png;base64,"))
    pixels = np.asarray(Image.open(io.BytesIO(raw)))
    expected = (frames[4].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(pixels, expected)
    assert frames_to_images(frames, [0], max_side=12)[0].size == (12, 8)
    with pytest.raises(ValueError):
        frames_to_images(frames[:, :2], [0])


# ---------------------------------------------------------------- replies and word limits


def test_extract_json_tolerates_fences_and_prose():
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Sure {not json} here: {"a": {"b": "}"}} bye') == {"a": {"b": "}"}}
    with pytest.raises(ValueError):
        extract_json("no braces at all")


def test_word_limits_are_enforced():
    ok = " ".join(["word"] * MAX_CAPTION_WORDS)
    SceneReply(source_caption=ok, conversation=TURNS, composited_caption=ok)
    with pytest.raises(ValidationError, match="limit"):
        SceneReply(source_caption=ok, conversation=TURNS, composited_caption=ok + " more")
    with pytest.raises(ValidationError, match=r"conversation\n.*at least 2"):
        SceneReply(source_caption=ok, conversation=TURNS[:1], composited_caption=ok)
    with pytest.raises(ValidationError, match="speaker"):
        SceneReply(source_caption=ok, conversation=[{"speaker": "director", "text": "x"}] * 2, composited_caption=ok)
    long_phrase = " ".join(["big"] * (MAX_OBJECT_WORDS + 1))
    with pytest.raises(ValidationError, match="limit"):
        ObjectsReply(objects_orig=["lawn"], objects_edit=[long_phrase])
    with pytest.raises(ValidationError):
        ObjectsReply(objects_orig=[], objects_edit=["dog"])
    assert ObjectsReply(objects_orig=["Lawn", "lawn ", "tree"], objects_edit=["dog"]).objects_orig == ["Lawn", "tree"]


def test_prompts_state_the_limits_and_the_instruction():
    q = scene_question("add a dog", [0, 2, 4], 5)
    assert "add a dog" in q and f"{MAX_CAPTION_WORDS} words" in q and "0, 2, 4" in q and "artist" in q
    assert f"{MAX_OBJECT_WORDS} words" in objects_question()


# ---------------------------------------------------------------- plan_edit


def test_empty_instruction_is_refused(frames, fake, tmp_path):
    for bad in ["", "   \n\t"]:
        with pytest.raises(PlanningError, match="empty"):
            plan_edit(frames, bad, backend="openai", cache_dir=tmp_path)
    assert fake.calls == []


def test_unknown_backend_is_refused(frames):
    with pytest.raises(PlanningError, match="toy, openai, hf"):
        plan_edit(frames, "add a dog", backend="gemini")


def test_plan_records_keyframes_backend_and_model(frames, fake):
    plan = plan_edit(frames, "  a dog   runs ", backend="openai", model="m1", cache_dir=False, api_key="k")
    assert fake.calls == [("a dog runs", [0, 2, 4], "m1", {"api_key": "k"})]
    assert (plan.keyframes, plan.backend, plan.model, plan.raw_reply) == ([0, 2, 4], "openai", "m1", "reply #1")


def test_second_call_is_served_from_cache(frames, fake, tmp_path):
    first = plan_edit(frames, "a dog runs", backend="openai", model="m1", cache_dir=tmp_path)
    again = plan_edit(frames, "a dog runs", backend="openai", model="m1", cache_dir=tmp_path)
    assert len(fake.calls) == 1 and again == first
    plan_edit(frames, "a cat sleeps", backend="openai", model="m1", cache_dir=tmp_path)
    assert len(fake.calls) == 2
    plan_edit(frames, "a dog runs", backend="openai", model="m2", cache_dir=tmp_path)
    assert len(fake.calls) == 3
    changed = frames.clone()
    changed[2] = 1 - changed[2]  # a key frame differs
    plan_edit(changed, "a dog runs", backend="openai", model="m1", cache_dir=tmp_path)
    assert len(fake.calls) == 4
    unseen = frames.clone()
    unseen[1] = 0  # not a key frame: same plan
    plan_edit(unseen, "a dog runs", backend="openai", model="m1", cache_dir=tmp_path)
    assert len(fake.calls) == 4
    assert len(list(tmp_path.glob("plan-*.json"))) == 4


def test_default_model_is_part_of_the_key(frames, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("DYNVFX_OPENAI_MODEL", "env-a")
    assert plan_edit(frames, "a dog runs", backend="openai", cache_dir=tmp_path).model == "env-a"
    monkeypatch.setenv("DYNVFX_OPENAI_MODEL", "env-b")
    plan_edit(frames, "a dog runs", backend="openai", cache_dir=tmp_path)
    assert len(fake.calls) == 2


def test_failed_write_leaves_no_file(frames, fake, tmp_path, monkeypatch):
    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr("dynvfx.planning.cache.os.replace", crash)
    with pytest.warns(UserWarning, match="could not cache"):
        plan = plan_edit(frames, "a dog runs", backend="openai", model="m1", cache_dir=tmp_path)
    assert plan.objects_edit == ["dog"]
    assert list(tmp_path.iterdir()) == []  # neither a partial plan nor a temporary file


def test_half_written_plan_is_ignored_and_replaced(frames, fake, tmp_path):
    key = plan_key(frames, [0, 2, 4], "a dog runs", "openai", "m1")
    plan_path(tmp_path, key).write_text('{"instruction": "a dog ru')
    plan = plan_edit(frames, "a dog runs", backend="openai", model="m1", cache_dir=tmp_path)
    assert len(fake.calls) == 1
    assert VFXPlan.model_validate_json(plan_path(tmp_path, key).read_text()) == plan


def test_store_plan_writes_complete_json(tmp_path):
    plan = VFXPlan(instruction="x", source_caption="a", composited_caption="b", objects_orig=["o"], objects_edit=["e"])
    path = store_plan(tmp_path / "sub", "ab" * 32, plan)
    assert json.loads(path.read_text())["objects_edit"] == ["e"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_toy_backend_goes_through_plan_edit(frames):
    pytest.importorskip("dynvfx.planning.toy")
    plan = plan_edit(frames, "a red ball bounces", backend="toy")
    assert plan.keyframes and plan.backend and plan.instruction == "a red ball bounces"


def test_toy_planner_value_error_becomes_planning_error(frames, monkeypatch):
    toy = pytest.importorskip("dynvfx.planning.toy")

    def unreadable(frames, instruction, keyframes=None):
        raise ValueError(f"toy planner: cannot read {instruction!r}")

    monkeypatch.setattr(toy, "plan_toy", unreadable)
    with pytest.raises(PlanningError, match="^toy planner: cannot read") as info:
        plan_edit(frames, "make it nicer", backend="toy")
    assert str(info.value).count("toy planner") == 1


def test_hf_model_that_cannot_load_is_a_clear_error(frames, monkeypatch, tmp_path):
    def offline(model_id, *args, **kwargs):
        raise OSError(f"We couldn't connect to the hub to load {model_id}.\nmore detail")

    monkeypatch.setattr("dynvfx.planning.hf_backend.load_vlm", offline)
    with pytest.raises(PlanningError) as info:
        plan_edit(frames, "a dog runs", backend="hf", model="someone/some-vlm", cache_dir=tmp_path)
    msg = str(info.value)
    assert "someone/some-vlm" in msg and "--planner toy" in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []


def test_reply_schemas_carry_the_speaker_enum():
    """A server that follows the JSON schema exactly can only name a speaker the plan accepts."""
    from openai.lib._pydantic import to_strict_json_schema

    for model in (SceneReply, VFXPlan):
        schema = json.dumps(to_strict_json_schema(model))
        assert '"enum": ["assistant", "artist"]' in schema, f"{model.__name__}: speaker is not an enum"
