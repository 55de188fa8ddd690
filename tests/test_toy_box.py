"""The box in the toy world: scenes, captions and masks, the occlusion judge and its negative controls, and the
training hooks that teach the toy model its words."""

import dataclasses

import numpy as np
import pytest
import torch

from dynvfx.toy import text, world
from dynvfx.toy.model import build_text_encoder
from dynvfx.toy.occlusion import judge_box
from dynvfx.lab.train import training_scene


def test_box_captions_parse_and_name_the_box_once():
    scene = world.sample_box_scene(0, triples=[("red", "ball", "left")], relation="behind", background="gray")
    assert scene.caption == "a red ball moves left behind the box on a gray background"
    front = dataclasses.replace(scene, objects=(dataclasses.replace(scene.objects[0], relation="front"),))
    assert front.caption == "a red ball moves left in front of the box on a gray background"
    clear = world.sample_box_scene(1, crossing=False, n_objects=1, background="black")
    assert clear.caption.endswith("on a black background with a box") and not clear.objects[0].relation
    for s in (scene, front, clear):
        assert s.caption.split().count(world.BOX_WORD) == 1
        clauses, background = world.parse_caption(s.caption)
        assert [(c.colour, c.motion, c.relation) for c in clauses] == [(o.colour, o.motion, o.relation)
                                                                        for o in s.objects]
        assert world.Scene.from_dict(__import__("json").loads(s.to_json())) == s
    assert world.drop_background(clear.caption).endswith("with a box")
    assert world.exchanged_motions(scene.caption) is None
    with pytest.raises(ValueError, match="not one of"):
        world.parse_caption("a red ball moves left under the box on a gray background")


def test_the_toy_gate_takes_box_scenes_as_toy_clips():
    from dynvfx.toy.gate import source_problem

    for seed in range(4):
        video, _ = world.render(world.sample_box_scene(seed, held_out="any"))
        assert source_problem(torch.from_numpy(video).permute(0, 3, 1, 2)) is None


def test_relation_swapped_turns_each_crossing_ball_round_and_nothing_else():
    caption = "a red ball moves left behind the box and a blue ball moves up on a gray background"
    assert world.relation_swapped(caption) == \
        "a red ball moves left in front of the box and a blue ball moves up on a gray background"
    assert world.relation_swapped(world.relation_swapped(caption)) == caption
    assert world.relation_swapped("a red ball moves left on a gray background with a box") is None
    assert world.relation_swapped("a red ball moves left on a gray background") is None


def test_a_ball_behind_is_hidden_by_the_box_and_one_in_front_covers_it():
    box = world.box_mask()
    for relation in world.RELATIONS:
        scene = world.sample_box_scene(3, triples=[("blue", "ball", "right")], relation=relation)
        video, masks = world.render(scene)
        ball, box_visible = masks
        assert (ball.any(axis=(1, 2))).mean() > 0.5 and not box_visible[:, ~box].any()
        if relation == "behind":
            assert not (ball & box).any() and box_visible.all(axis=0)[box].all()
            assert np.allclose(video[:, box], world.BOX_COLOUR)
        else:
            assert (ball & box).any() and not box_visible.all(axis=0)[box].all()
            shown = video[ball & box] - np.asarray(world.COLOURS["blue"])
            assert np.abs(shown).max(axis=1).mean() < 0.1


def test_balls_that_do_not_cross_stay_clear_of_the_box():
    box = world.box_mask()
    for seed in range(40):
        scene = world.sample_box_scene(seed, held_out="any")
        _, masks = world.render(scene)
        first = 1 if scene.objects[0].relation else 0
        for mask in masks[first:len(scene.objects)]:
            assert not (mask & box).any()


def test_box_scenes_keep_held_out_combinations_out_of_training():
    for seed in range(60):
        scene = world.sample_box_scene(seed)
        assert not scene.held_out
    assert world.sample_box_scene(0, held_out="only").held_out


def test_training_scenes_add_the_box_only_when_asked_and_keep_the_others():
    assert [training_scene(i) for i in range(20)] == [training_scene(i, 0.5, 0.0) for i in range(20)]
    boxed = [training_scene(i, 0.5, 0.5) for i in range(200)]
    share = np.mean([s.box for s in boxed])
    assert 0.35 < share < 0.65
    assert all(a == training_scene(i) for i, a in enumerate(boxed) if not a.box)


def test_judge_accepts_rendered_box_scenes_and_rejects_the_negative_controls():
    rng = np.random.default_rng(0)
    for seed in range(12):
        scene = world.sample_box_scene(seed, held_out="any", crossing=seed % 4 != 0)
        video, _ = world.render(scene)
        assert judge_box(video, scene.caption).ok, scene.caption
        assert not judge_box(world.render(dataclasses.replace(scene, box=False))[0], scene.caption).ok, "no box"
        assert not judge_box(rng.random(video.shape).astype(np.float32), scene.caption).ok, "noise"
        if scene.objects[0].relation:  # the ball drawn over the box where it should pass behind, and vice versa
            verdict = judge_box(video, world.relation_swapped(scene.caption))
            assert not verdict.ok and not verdict.crossings[0].relation_ok
    with pytest.raises(ValueError, match="names no box"):
        judge_box(video, "a red ball moves left on a gray background")


class _Vocabulary:
    """A stand-in for a tokenizer trained before the box's words existed: only its vocabulary is read."""

    def __init__(self, pieces: dict[str, int]):
        self.pieces = pieces

    def get_vocab(self) -> dict[str, int]:
        return self.pieces


def test_a_grown_vocabulary_keeps_each_trained_word_embedding():
    words = text.vocabulary()
    assert words[-len(text.BOX_WORDS):] == list(text.BOX_WORDS) and {"box", "behind", "front"} <= set(words)
    grown = text.build_tokenizer()
    older = [p for p in grown.get_vocab() if p.lstrip("\u2581") not in text.BOX_WORDS]
    old = _Vocabulary({p: i for i, p in enumerate(older)})  # the box's words missing, later ids shifted
    encoder = build_text_encoder(len(older))
    before = encoder.get_input_embeddings().weight.detach().clone()
    added = text.extend_embeddings(encoder, old, grown)
    assert sorted(added) == sorted("\u2581" + w for w in text.BOX_WORDS)
    after = encoder.get_input_embeddings().weight
    assert after.shape[0] == len(grown)
    for piece, i in grown.get_vocab().items():
        if piece in old.pieces:
            assert torch.equal(after[i], before[old.pieces[piece]]), piece


def _frames(scene: world.Scene) -> torch.Tensor:
    return torch.from_numpy(world.render(scene)[0]).permute(0, 3, 1, 2)


def test_the_toy_tools_see_the_box_and_no_ball_in_it():
    from dynvfx.segmentation.toy import ToySegmenter, parse_phrase
    from dynvfx.toy import perception

    for seed, background in enumerate(world.BACKGROUNDS):
        scene = world.sample_box_scene(seed, n_objects=1, crossing=False, background=background)
        video, masks = world.render(scene)
        assert perception.sees_box(video)
        assert [(o.colour, o.motion) for o in perception.detect_objects(video)] == [
            (o.colour, o.motion) for o in scene.objects]  # the brown box is no ball of a nearby colour
        seg = ToySegmenter().segment(_frames(scene), ["the box", "a red box", f"{scene.objects[0].colour} ball"])
        box = seg.masks[0, :, 0].numpy()
        assert (box & masks[-1]).sum() / masks[-1].sum() > 0.95 and (box & ~masks[-1]).sum() / masks[-1].sum() < 0.1
        assert not seg.masks[1].any() and not (seg.masks[2, :, 0].numpy() & masks[-1]).any()
    assert parse_phrase("the blue ball and the box") == ["blue", world.BOX_WORD]
    ball_only = world.render(world.sample_scene(0))[0]
    assert not perception.sees_box(ball_only) and not perception.box_pixels(ball_only).any()
    assert not perception.sees_box(np.zeros_like(ball_only))


def test_the_toy_planner_anchors_on_the_box_and_puts_the_crossing_ball_first():
    from dynvfx.planning.toy import plan_toy

    scene = world.sample_box_scene(3, n_objects=1, crossing=False, background="black")
    src = scene.objects[0]
    plan = plan_toy(_frames(scene), "add a yellow ball that moves right behind the box")
    assert plan.source_caption == scene.caption
    assert plan.composited_caption == world.caption_for("black", [("yellow", "ball", "right", "behind"), src.triple])
    assert plan.objects_orig == [src.phrase, world.BOX_WORD] and plan.objects_edit == ["yellow ball"]
    front = plan_toy(_frames(scene), "add a yellow ball in front of the box")
    assert world.parse_caption(front.composited_caption)[0][0].relation == "front"
    assert world.parse_caption(front.composited_caption)[0][0].motion in world.CROSSING_MOTIONS
    with pytest.raises(ValueError, match="not 'bounce'"):
        plan_toy(_frames(scene), "add a red ball bouncing behind the box")
    with pytest.raises(ValueError, match="shows no box"):
        plan_toy(_frames(world.sample_scene(0)), "add a red ball moving left behind the box")
    with pytest.warns(UserWarning, match="cross the box"):
        plan_toy(_frames(scene), "add a yellow ball moving left")


def test_box_edit_pairs_and_their_score_reject_the_untouched_source_a_blank_video_and_noise():
    from dynvfx.lab.box_bench import STILL_MOTIONS, evaluate_box, make_box_pairs

    pairs = make_box_pairs(8)
    for source, expected, instruction in pairs:
        new, kept = expected.objects
        assert (new.colour, new.motion, expected.background) in world.HELD_OUT and new.relation == "behind"
        assert source.objects == (kept,) and source.box and kept.motion in STILL_MOTIONS
        assert instruction == f"add a {new.colour} ball that moves {new.motion} behind the box"
    source, expected, _ = pairs[0]
    src, target = _frames(source), _frames(expected)
    mask = torch.zeros(len(src), 1, *src.shape[-2:], dtype=torch.bool)
    assert evaluate_box(target, src, expected, mask)["success"]
    blank = torch.ones_like(src) * torch.tensor(world.BACKGROUNDS[expected.background]).view(1, 3, 1, 1)
    noise = torch.rand(src.shape, generator=torch.Generator().manual_seed(0))
    for control in (src, blank, noise):
        assert not evaluate_box(control, src, expected, mask)["success"]
    over = world.render(dataclasses.replace(expected, objects=(
        dataclasses.replace(expected.objects[0], relation="front"), expected.objects[1])))[0]
    scores = evaluate_box(torch.from_numpy(over).permute(0, 3, 1, 2), src, expected, mask)
    assert not scores["success"] and not scores["relation"] and scores["ball_on_box"] > 0.2
