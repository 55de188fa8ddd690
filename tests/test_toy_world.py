"""The toy world renderer: deterministic, captioned, with masks that match what is drawn."""

import itertools

import numpy as np

from dynvfx.toy import world


def test_same_seed_same_video_and_caption():
    a, b, c = (world.sample_scene(s) for s in (5, 5, 6))
    assert a == b and a != c
    va, ma = world.render(a)
    vb, mb = world.render(b)
    assert np.array_equal(va, vb) and np.array_equal(ma, mb)
    assert va.shape == (world.FRAMES, world.SIZE, world.SIZE, 3) and va.dtype == np.float32


def test_caption_grammar():
    scene = world.sample_scene(0, triples=[("red", "ball", "right"), ("blue", "square", "bounce")], background="gray")
    assert scene.caption == "a red ball moves right and a blue square bounces on a gray background"
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
        scene = world.sample_scene(1, triples=[("green", "triangle", motion)])
        _, masks = world.render(scene)
        ys, xs = [np.nonzero(m) for m in (masks[0, 0], masks[0, -1])][0], np.nonzero(masks[0, -1])
        start = np.array([np.nonzero(masks[0, 0])[1].mean(), np.nonzero(masks[0, 0])[0].mean()])
        end = np.array([xs[1].mean(), xs[0].mean()])
        move = end - start
        assert np.sign(round(move[0] / 5)) == dx and np.sign(round(move[1] / 5)) == dy, (motion, move)


def test_held_out_combinations():
    assert len(world.HELD_OUT) == 12
    for a, b in ((0, 1), (0, 2), (1, 2)):  # every pair of attributes is still seen in training
        seen = {(t[a], t[b]) for t in itertools.product(world.COLOURS, world.SHAPES, world.MOTIONS)
                if t not in world.HELD_OUT}
        all_pairs = {(t[a], t[b]) for t in itertools.product(world.COLOURS, world.SHAPES, world.MOTIONS)}
        assert seen == all_pairs
    rng = np.random.default_rng(0)
    for _ in range(300):
        scene = world.sample_scene(rng, held_out="exclude")
        assert not any(o.triple in world.HELD_OUT for o in scene.objects)
    assert world.sample_scene(3, held_out="only").objects[0].triple in world.HELD_OUT


def test_two_objects_are_kept_apart():
    for seed in range(40):
        scene = world.sample_scene(seed, n_objects=2)
        a, b = scene.objects
        gap = np.linalg.norm(a.centres() - b.centres(), axis=1).min()
        assert gap > a.radius + b.radius
