"""The toy world renderer: deterministic, captioned, with masks that match what is drawn."""

import itertools

import numpy as np
import pytest

from dynvfx.toy import world


def test_same_seed_same_video_and_caption():
    a, b, c = (world.sample_scene(s) for s in (5, 5, 6))
    assert a == b and a != c
    va, ma = world.render(a)
    vb, mb = world.render(b)
    assert np.array_equal(va, vb) and np.array_equal(ma, mb)
    assert va.shape == (world.FRAMES, world.SIZE, world.SIZE, 3) and va.dtype == np.float32


def test_caption_grammar():
    scene = world.sample_scene(0, triples=[("red", "ball", "right"), ("blue", "ball", "bounce")], background="gray")
    assert scene.caption == "a red ball moves right and a blue ball bounces on a gray background"
    assert world.Scene.from_dict(__import__("json").loads(scene.to_json())) == scene


def test_masks_cover_the_object_colour_and_objects_stay_in_frame():
    for seed in range(30):
        scene = world.sample_scene(seed)
        video, masks = world.render(scene)
        for obj, mask in zip(scene.objects, masks):
            assert mask.any(axis=(1, 2)).all(), "object visible in every frame"
            colour = np.asarray(world.COLOURS[obj.colour])
            assert np.abs(video[mask] - colour).max(axis=1).mean() < 0.1
            c = obj.centres()
            assert (c >= obj.radius).all() and (c <= world.SIZE - obj.radius).all()


def test_motion_directions():
    for motion, (dx, dy) in world.DIRECTIONS.items():
        scene = world.sample_scene(1, triples=[("green", "ball", motion)])
        _, masks = world.render(scene)
        ys, xs = [np.nonzero(m) for m in (masks[0, 0], masks[0, -1])][0], np.nonzero(masks[0, -1])
        start = np.array([np.nonzero(masks[0, 0])[1].mean(), np.nonzero(masks[0, 0])[0].mean()])
        end = np.array([xs[1].mean(), xs[0].mean()])
        move = end - start
        assert np.sign(round(move[0] / 5)) == dx and np.sign(round(move[1] / 5)) == dy, (motion, move)


def test_held_out_combinations():
    combos = set(itertools.product(world.COLOURS, world.MOTIONS, world.BACKGROUNDS))
    assert len(world.HELD_OUT) == 12 and world.HELD_OUT < combos
    assert world.TRAINING_COMBINATIONS | world.HELD_OUT == combos and not world.TRAINING_COMBINATIONS & world.HELD_OUT
    for a, b in ((0, 1), (0, 2), (1, 2)):  # every pair of attributes is still seen in training
        seen = {(t[a], t[b]) for t in combos - world.HELD_OUT}
        assert seen == {(t[a], t[b]) for t in combos}
    rng = np.random.default_rng(0)
    for _ in range(300):
        scene = world.sample_scene(rng, held_out="exclude")
        assert not scene.held_out
        assert not any((o.colour, o.motion, scene.background) in world.HELD_OUT for o in scene.objects)
    for seed in range(20):
        scene = world.sample_scene(seed, held_out="only")
        assert scene.held_out and (scene.objects[0].colour, scene.objects[0].motion, scene.background) in world.HELD_OUT
        c, s, m = world.sample_triple(rng, "white", "only")
        assert s == "ball" and (c, m, "white") in world.HELD_OUT


def test_scenes_hold_balls_of_different_colours():
    shapes, colours_differ = set(), []
    for seed in range(200):
        scene = world.sample_scene(seed, held_out="any")
        shapes |= {o.shape for o in scene.objects}
        if len(scene.objects) == 2:
            colours_differ.append(scene.objects[0].colour != scene.objects[1].colour)
        assert not set(scene.caption.split()) & {"square", "triangle"}
    assert shapes == set(world.CAPTION_SHAPES) == {"ball"} and colours_differ and all(colours_differ)


def test_renderer_keeps_its_other_shapes():
    """Squares and triangles are still drawable (an option), just not in scenes or captions."""
    for shape in world.SHAPES:
        scene = world.sample_scene(2, triples=[("red", shape, "right")], background="gray")
        video, masks = world.render(scene)
        assert masks[0].any(axis=(1, 2)).all()


def test_two_objects_are_kept_apart():
    for seed in range(40):
        scene = world.sample_scene(seed, n_objects=2)
        a, b = scene.objects
        gap = np.linalg.norm(a.centres() - b.centres(), axis=1).min()
        assert gap > a.radius + b.radius


def test_edit_benchmark_pairs_new_ball_held_out_or_seen():
    from dynvfx.lab.edit_bench import make_pairs

    for new, in_held_out in (("held_out", True), ("seen", False)):
        for scene, (colour, noun, motion), instruction in make_pairs(12, new=new):
            source = scene.objects[0]
            assert (source.colour, source.motion, scene.background) not in world.HELD_OUT
            assert ((colour, motion, scene.background) in world.HELD_OUT) == in_held_out
            assert colour != source.colour and noun == "ball" and colour in instruction
    assert make_pairs(5) == make_pairs(5, new="held_out")
    with pytest.raises(ValueError):
        make_pairs(1, new="unseen")
