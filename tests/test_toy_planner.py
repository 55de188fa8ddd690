"""The rule-based toy planner on rendered scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynvfx.planning.schema import VFXPlan
from dynvfx.planning.toy import caption, default_motion, parse_instruction, plan_toy
from dynvfx.toy import world


def render(seed: int, **kwargs) -> tuple[world.Scene, torch.Tensor]:
    scene = world.sample_scene(seed, held_out="any", **kwargs)
    return scene, torch.from_numpy(world.render(scene)[0]).permute(0, 3, 1, 2)


def clauses(text: str) -> tuple[str, set[str]]:
    """``(background phrase, set of object clauses)`` of a toy caption, so object order doesn't matter."""
    objects, background = text.rsplit(" on a ", 1)
    return background, set(objects.split(" and "))


def test_source_caption_matches_scene():
    right = 0
    seeds = range(40)
    for seed in seeds:
        scene, frames = render(seed, n_objects=1 + seed % 2)
        plan = plan_toy(frames, "add a red ball moving right")
        if len(scene.objects) == 1:
            right += plan.source_caption == scene.caption
        else:  # the frames can't tell which object the scene lists first
            right += clauses(plan.source_caption) == clauses(scene.caption)
    assert right >= 0.95 * len(seeds), right


def test_plan_fields():
    scene, frames = render(4, n_objects=1)
    plan = plan_toy(frames, "Add a blue ball that moves down.")
    assert isinstance(plan, VFXPlan) and plan.backend == "toy-rules"
    assert plan.source_caption == scene.caption
    new = ("blue", "ball", "down")
    assert plan.composited_caption == world.caption_for(scene.background, [scene.objects[0].triple, new])
    assert plan.objects_orig == [scene.objects[0].phrase] and plan.objects_edit == ["blue ball"]
    assert plan.keyframes == [0, 8, 16]
    assert plan.conversation[0].speaker == "artist" and plan.conversation[0].text == plan.instruction
    assert any("rule-based" in t.text.lower() for t in plan.conversation)
    assert VFXPlan.model_validate_json(plan.model_dump_json()) == plan


def test_two_object_source():
    scene, frames = render(9, n_objects=2)
    plan = plan_toy(frames, "put a green ball that bounces", keyframes=[2, 5])
    assert sorted(plan.objects_orig) == sorted(o.phrase for o in scene.objects)
    background, objs = clauses(plan.composited_caption)
    assert background == f"{scene.background} background"
    assert objs == clauses(scene.caption)[1] | {"a green ball bounces"}
    assert plan.keyframes == [2, 5]
    assert any("at most 2" in t.text for t in plan.conversation)


@pytest.mark.parametrize(
    "instruction, expected",
    [
        ("add a red ball moving right", ("red", "right")),
        ("add a blue ball that moves down", ("blue", "down")),
        ("add a yellow ball bouncing", ("yellow", "bounce")),
        ("put a green ball that bounces", ("green", "bounce")),
        ("Insert a GREEN circle rising", ("green", "up")),
        ("next to the ball, add a red ball falling", ("red", "down")),
        ("add a yellow circle", ("yellow", None)),
        ("add a blue one, a ball that rises", ("blue", "up")),
    ],
)
def test_parse_instruction(instruction, expected):
    assert parse_instruction(instruction) == expected


def test_default_motion_is_announced_and_new():
    scene, frames = render(1, n_objects=1, triples=[("red", "ball", "right")])
    plan = plan_toy(frames, "add a blue ball")
    assert plan.composited_caption.endswith("a blue ball moves left on a " + scene.background + " background")
    assert any("didn't say how it should move" in t.text for t in plan.conversation)
    assert default_motion([("red", "ball", "right"), ("blue", "ball", "left")]) == "down"


@pytest.mark.parametrize(
    "instruction, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("make it rain", "can't find a colour and a ball"),
        ("add a red thing", "can't find a colour and a ball"),
        ("add a ball", "can't find a colour and a ball"),
        ("add a purple ball", "can't find a colour and a ball"),
        ("remove the red ball", "only add"),
        ("add a yellow square moving up", "only has balls, not 'square'"),
        ("add a red triangle", "only has balls, not 'triangle'"),
        ("put a green box next to the ball", "box is part of the scene"),
    ],
)
def test_bad_instructions(instruction, message):
    _, frames = render(0)
    with pytest.raises(ValueError, match=message):
        plan_toy(frames, instruction)


def test_bad_keyframes():
    _, frames = render(0)
    with pytest.raises(ValueError, match="outside"):
        plan_toy(frames, "add a red ball", keyframes=[0, 17])


def test_empty_background_and_still_objects():
    frames = torch.full((5, 3, 48, 48), 0.95)
    plan = plan_toy(frames, "add a red ball moving up")
    assert plan.source_caption == "an empty white background" and plan.objects_orig == []
    assert plan.composited_caption == "a red ball moves up on a white background"
    assert caption("gray", [("red", "ball", "still")]) == "a red ball stays still on a gray background"


def test_numpy_frames():
    scene, frames = render(3, n_objects=1)
    plan = plan_toy(np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy()), "add a red ball")
    assert plan.source_caption == scene.caption


def test_patches_of_colour_that_are_not_balls_are_not_counted():
    """A red bar (the shape of a stripe in a real video) and a red ball: only the ball is a source object."""
    _, frames = render(3, n_objects=1)
    bar = frames.clone()
    bar[:, :, 40:44, 2:46] = torch.tensor(world.COLOURS["red"]).view(1, 3, 1, 1)
    with pytest.warns(UserWarning, match="not ball-shaped"):
        plan = plan_toy(bar, "add a yellow ball moving up")
    assert plan.objects_orig == plan_toy(frames, "add a yellow ball moving up").objects_orig


def test_unreadable_instructions_name_the_vlm_planners():
    with pytest.raises(ValueError, match="--planner openai or hf"):
        parse_instruction("add a puppy peeking out of the box")
