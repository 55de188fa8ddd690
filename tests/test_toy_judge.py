"""Colour / motion analysis of toy videos and the strict judge, scored against the renderer's ground truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from dynvfx.toy import judge, perception, world

CLEAN_SEEDS = range(40)  # alternating one- and two-object scenes
DEGRADED_SEEDS = range(100, 132)


def render(seed: int, **kwargs) -> tuple[world.Scene, torch.Tensor, np.ndarray]:
    """A scene, its video ``[F, 3, H, W]`` and its ground-truth masks ``[N, F, H, W]``."""
    kwargs.setdefault("n_objects", 1 + seed % 2)
    scene = world.sample_scene(seed, held_out="any", **kwargs)
    video, masks = world.render(scene)
    return scene, torch.from_numpy(video).permute(0, 3, 1, 2), masks


def degrade(frames: torch.Tensor, seed: int) -> torch.Tensor:
    """Imitate a generated video: blur (sigma 0.8-1.8 px), noise, a colour cast and a stray blob."""
    rng = np.random.default_rng(seed)
    v = frames.permute(0, 2, 3, 1).numpy()
    sigma = rng.uniform(0.8, 1.8)
    v = ndimage.gaussian_filter(v, (0, sigma, sigma, 0))
    v = v * rng.uniform(0.9, 1.05, 3) + rng.uniform(-0.05, 0.05, 3) + rng.normal(0, 0.05, v.shape)
    f, y, x = rng.integers(0, len(v) - 2), *rng.integers(4, 42, 2)
    v[f:f + 2, y:y + 3, x:x + 3] = world.COLOURS[list(world.COLOURS)[rng.integers(4)]]
    return torch.from_numpy(np.clip(v, 0, 1).astype(np.float32)).permute(0, 3, 1, 2)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def match(scene: world.Scene, detected: list[perception.DetectedObject]) -> list[perception.DetectedObject | None]:
    """For each scene object, the detection of its colour whose track is nearest its true centres."""
    out = []
    for obj in scene.objects:
        cands = [d for d in detected if d.colour == obj.colour]
        dist = [np.nanmean(np.linalg.norm(d.track - obj.centres(scene.frames), axis=1)) for d in cands]
        out.append(cands[int(np.argmin(dist))] if cands else None)
    return out


def score(seeds, make_frames) -> dict[str, float]:
    """Fractions of objects with the right colour / motion, of scenes exactly right, and mean IoU."""
    hits = {"colour": [], "motion": [], "iou": []}
    exact = []
    for seed in seeds:
        scene, frames, masks = render(seed)
        frames = make_frames(frames, seed)
        detected = perception.detect_objects(frames)
        for obj, det, gt in zip(scene.objects, match(scene, detected), masks):
            hits["colour"].append(det is not None)
            hits["motion"].append(det is not None and det.motion == obj.motion)
            hits["iou"].append(iou(det.masks, gt) if det is not None else 0.0)
        exact.append(sorted(d.triple for d in detected) == sorted(o.triple for o in scene.objects)
                     and perception.background_colour(frames) == scene.background)
    return {k: float(np.mean(v)) for k, v in hits.items()} | {"exact": float(np.mean(exact))}


def test_clean_renders_are_read_correctly():
    s = score(CLEAN_SEEDS, lambda frames, seed: frames)
    assert s["colour"] >= 0.95 and s["motion"] >= 0.95, s
    assert s["exact"] >= 0.95, s  # no missed or spurious objects, right background
    assert s["iou"] >= 0.9, s


def test_degraded_renders_are_read_correctly():
    s = score(DEGRADED_SEEDS, degrade)
    assert s["colour"] >= 0.95 and s["motion"] >= 0.95, s
    assert s["exact"] >= 0.85, s
    assert s["iou"] >= 0.8, s


def generation_like(frames: torch.Tensor, seed: int) -> torch.Tensor:
    """Imitate an under-trained model: faint objects (half-way to the background), 4x4-patch blockiness,
    frames alike in pairs (a jumpy motion), blur and noise."""
    rng = np.random.default_rng(seed)
    v = frames.permute(0, 2, 3, 1).numpy().copy()
    bg = np.median(v[:, 0], axis=(0, 1))
    v = bg + 0.5 * (v - bg)
    v[1::2] = v[:-1:2]
    f, h, w, c = v.shape
    blocks = v.reshape(f, h // 4, 4, w // 4, 4, c).mean((2, 4)).repeat(4, 1).repeat(4, 2)
    v = 0.5 * blocks + 0.5 * ndimage.gaussian_filter(v, (0, 1, 1, 0)) + rng.normal(0, 0.04, v.shape)
    return torch.from_numpy(np.clip(v, 0, 1).astype(np.float32)).permute(0, 3, 1, 2)


def test_faint_blocky_generations_are_read():
    s = score(range(200, 220), generation_like)
    assert s["colour"] >= 0.95 and s["motion"] >= 0.9, s
    assert s["iou"] >= 0.7, s


@pytest.mark.parametrize("background", list(world.BACKGROUNDS))
def test_background_colour(background):
    for seed in range(4):
        _, frames, _ = render(seed, background=background)
        assert perception.background_colour(frames) == background
        assert perception.background_colour(degrade(frames, seed)) == background


def test_colour_mask_follows_ground_truth():
    for seed in range(6):
        scene, frames, masks = render(seed, n_objects=2)
        for colour in world.COLOURS:
            want = np.zeros(masks.shape[1:], bool)
            for obj, m in zip(scene.objects, masks):
                if obj.colour == colour:
                    want |= m
            got = perception.colour_mask(frames, colour)
            assert got.shape == want.shape and got.dtype == bool
            if want.any():
                assert iou(got, want) > 0.9, (seed, colour)
            else:
                assert got.sum() == 0, (seed, colour)


def test_same_colour_objects_are_told_apart():
    triples = [("red", "ball", "left"), ("red", "ball", "right")]
    for seed in range(3):
        scene, frames, _ = render(seed, n_objects=None, triples=triples)
        got = sorted(d.triple for d in perception.detect_objects(degrade(frames, seed)))
        assert got == sorted(triples)


def test_tracks_follow_the_true_centres():
    scene, frames, _ = render(7, n_objects=None, triples=[("blue", "ball", "bounce")])
    (det,) = perception.detect_objects(frames)
    assert det.presence == 1.0 and det.masks.shape == (17, 48, 48) and det.track.shape == (17, 2)
    assert np.abs(det.track - scene.objects[0].centres()).max() < 0.5
    assert ((det.scores > 0.5) & (det.scores <= 1)).all()


@pytest.mark.parametrize("motion", world.MOTIONS)
def test_classify_motion_on_noisy_tracks(motion):
    rng = np.random.default_rng(0)
    for trial in range(10):
        obj = world.place_object(rng, "red", "ball", motion)
        track = obj.centres() + rng.normal(0, 0.7, (world.FRAMES, 2))
        track[rng.choice(world.FRAMES, 3, replace=False)] = np.nan  # missed detections
        assert perception.classify_motion(track) == motion


def test_classify_motion_still_and_empty():
    assert perception.classify_motion(np.full((17, 2), 20.0)) == "still"
    assert perception.classify_motion(np.full((17, 2), np.nan)) == "still"


def test_empty_video_has_no_objects():
    frames = torch.full((5, 3, 48, 48), 0.5)
    assert perception.detect_objects(frames) == []
    assert perception.background_colour(frames) == "gray"


def test_layouts_agree_and_input_is_untouched():
    _, frames, _ = render(3)
    before = frames.clone()
    a = perception.detect_objects(frames)
    b = perception.detect_objects(frames.permute(0, 2, 3, 1).numpy())
    assert [o.triple for o in a] == [o.triple for o in b]
    assert torch.equal(frames, before)
    with pytest.raises(ValueError, match="expected a video"):
        perception.as_video(np.zeros((4, 5, 6, 7)))


def test_colour_mask_rejects_unknown_colour():
    with pytest.raises(ValueError, match="unknown toy colour"):
        perception.colour_mask(torch.zeros(1, 3, 8, 8), "purple")


# ----------------------------------------------------------------------------- the strict judge


def every_caption_scene(seed: int) -> list[world.Scene]:
    """One single-object scene per (colour, motion, background) and as many two-object scenes."""
    rng = np.random.default_rng(seed)
    singles = [world.sample_scene(rng, triples=[(c, "ball", m)], background=b)
               for c in world.COLOURS for m in world.MOTIONS for b in world.BACKGROUNDS]
    pairs = [world.sample_scene(rng, n_objects=2, held_out="any") for _ in singles]
    return singles + pairs


def frames_of(scene: world.Scene) -> torch.Tensor:
    return torch.from_numpy(world.render(scene)[0]).permute(0, 3, 1, 2)


@pytest.mark.parametrize("degraded", [False, True])
def test_judge_passes_every_rendered_caption(degraded):
    scenes = every_caption_scene(5 + degraded)
    assert {(o.colour, o.motion, s.background) for s in scenes for o in s.objects} == {
        (c, m, b) for c in world.COLOURS for m in world.MOTIONS for b in world.BACKGROUNDS}
    assert sum(len(s.objects) == 2 for s in scenes) == 60
    failed = []
    for i, scene in enumerate(scenes):
        frames = degrade(frames_of(scene), i) if degraded else frames_of(scene)
        j = judge.judge_scene(frames, scene)
        if not (j.ok and all(j.present) and len(j.present) == len(scene.objects)):
            failed.append((scene.caption, j))
    assert not failed, failed


def test_judge_rejects_colour_noise():
    """The untrained model's case: colour noise has no background and no object, whatever the caption says."""
    rng = np.random.default_rng(0)
    for trial in range(12):
        noise = torch.rand(17, 3, 48, 48, generator=torch.Generator().manual_seed(trial))
        if trial % 2:  # blotchy noise: blurred and contrast-stretched, so colours form patches
            noise = torch.from_numpy(np.clip(0.5 + 4 * (ndimage.gaussian_filter(noise.numpy(), (0, 0, 1.5, 1.5))
                                                        - 0.5), 0, 1).astype(np.float32))
        background = list(world.BACKGROUNDS)[trial % 3]
        colours = rng.permutation(list(world.COLOURS))[:2]
        objects = [(str(c), world.MOTIONS[rng.integers(5)]) for c in colours]
        j = judge.judge(noise, background, objects)
        assert not j.background_ok and not any(j.present) and not any(j.moves) and not j.ok, (trial, j)


def test_judge_rejects_a_smear():
    scene = world.sample_scene(3, triples=[("green", "ball", "right")], background="black")
    video, masks = world.render(scene)
    green = np.asarray(world.COLOURS["green"], np.float32)
    streak = video.copy()
    streak[:, masks[0].any(0)] = green  # the ball's whole path, in every frame
    region = video.copy()
    region[:, 8:40, 4:44] = green  # the colour spread over a big region
    for smeared in (streak, region):
        j = judge.judge(smeared, "black", [("green", "right")])
        assert j.present == [False] and j.moves == [False] and not j.ok, j


def test_judge_rejects_a_duplicate():
    scene = world.sample_scene(1, triples=[("red", "ball", "left"), ("red", "ball", "down")])
    j = judge.judge(frames_of(scene), scene.background, [("red", "left")])
    assert j.present == [False] and j.extra == 1 and not j.ok, j


def test_judge_rejects_an_extra_object_of_another_colour():
    scene = world.sample_scene(2, n_objects=2)
    first = scene.objects[0]
    j = judge.judge(frames_of(scene), scene.background, [(first.colour, first.motion)])
    assert j.present == [True] and j.moves == [True] and j.extra == 1 and not j.ok, j


def test_judge_rejects_a_missing_object():
    scene = world.sample_scene(4, n_objects=1)
    obj = scene.objects[0]
    other = next(c for c in world.COLOURS if c != obj.colour)
    j = judge.judge(frames_of(scene), scene.background, [(obj.colour, obj.motion), (other, "up")])
    assert j.present == [True, False] and j.moves == [True, False] and j.extra == 0 and not j.ok, j
    empty = torch.full((17, 3, 48, 48), world.BACKGROUNDS[scene.background][0])
    j = judge.judge(empty, scene.background, [(obj.colour, obj.motion)])
    assert j.background_ok and j.present == [False] and j.extra == 0 and not j.ok, j


def test_judge_rejects_a_wrong_background_and_a_wrong_motion():
    scene = world.sample_scene(6, triples=[("blue", "ball", "up")], background="gray")
    frames = frames_of(scene)
    j = judge.judge(frames, "white", [("blue", "up")])
    assert not j.background_ok and j.moves == [True] and not j.ok, j
    j = judge.judge(frames, "gray", [("blue", "down")])
    assert j.background_ok and j.present == [True] and j.moves == [False] and not j.ok, j
    assert judge.judge(frames, "gray", [("blue", "up")]).ok


def test_judge_rejects_a_teleporting_blob():
    scene = world.sample_scene(8, triples=[("yellow", "ball", "right")], background="black")
    video = world.render(scene)[0]
    video[::2] = video[::2, :, ::-1]  # every other frame mirrored: the ball jumps across the frame and back
    j = judge.judge(video, "black", [("yellow", "right")])
    assert j.present == [True] and j.moves == [False], j


def test_judge_checks_its_arguments():
    frames = torch.full((3, 3, 48, 48), 0.5)
    with pytest.raises(ValueError, match="differ in colour"):
        judge.judge(frames, "gray", [("red", "up"), ("red", "down")])
    with pytest.raises(ValueError, match="unknown background"):
        judge.judge(frames, "purple", [])
    with pytest.raises(ValueError, match="unknown object"):
        judge.judge(frames, "gray", [("red", "sideways")])
    assert judge.judge(frames, "gray", []).ok  # an empty background, as asked


def test_negative_control_noise_scores_zero_on_held_out_captions():
    """What the quality benchmark's ``--control noise`` does, on one caption of each kind per held-out combination."""
    rng = np.random.default_rng(1)
    judged = []
    for i, (colour, motion, background) in enumerate(sorted(world.HELD_OUT)):
        other = next(c for c in rng.permutation(list(world.COLOURS)) if c != colour)
        for objects in ([(colour, motion)], [(colour, motion), (str(other), "left")]):
            noise = torch.rand(17, 3, 48, 48, generator=torch.Generator().manual_seed(i))
            judged.append(judge.judge(noise, background, objects))
    assert len(judged) == 24
    assert not any(j.ok or j.background_ok or any(j.present) or any(j.moves) for j in judged)


def test_quality_checks_count_swapped_motions_and_the_renderer_never_swaps():
    """The quality benchmark's "motions swapped" row: a video whose two balls exchange motions counts as swapped
    (and not right); the renderer's own video of the caption does not."""
    from dynvfx.lab.quality_bench import checks, judged_checks, swapped_judgement
    from dynvfx.toy.examples import scene_frames

    scene = world.sample_scene(3, triples=[("red", "ball", "left"), ("blue", "ball", "up")], background="gray")
    a, b = scene.objects
    exchanged = world.Scene(scene.background, (dataclasses.replace(a, motion="up", x0=10.0, y0=38.0, radius=6.0),
                                               dataclasses.replace(b, motion="left", x0=38.0, y0=10.0, radius=6.0)))
    drawn, drawn_exchanged = scene_frames(scene), scene_frames(exchanged)
    right = checks(judge.judge_scene(drawn, scene), swapped_judgement(drawn, scene))
    wrong = checks(judge.judge_scene(drawn_exchanged, scene), swapped_judgement(drawn_exchanged, scene))
    assert right["objects"] and not right["swapped"]
    assert wrong["swapped"] and not wrong["objects"]
    # labelling the pixels once for both judgements changes nothing
    assert judged_checks(drawn, scene) == right and judged_checks(drawn_exchanged, scene) == wrong
    with pytest.raises(ValueError, match="labels"):
        judge.judge(drawn, scene.background, [("red", "left")], perception.colour_labels(drawn[:-1])[0])
    same = world.sample_scene(3, triples=[("red", "ball", "left"), ("blue", "ball", "left")], background="gray")
    assert swapped_judgement(scene_frames(same), same) is None


def test_edit_benchmark_negative_controls_the_untouched_source_and_noise_score_zero():
    """The edit benchmark's success on outputs that add nothing: the source itself, and colour noise."""
    from dynvfx.segmentation import get_segmenter
    from dynvfx.lab.edit_bench import evaluate, make_pairs
    from dynvfx.toy.examples import scene_frames

    seg = get_segmenter("toy")
    for k, (scene, new, _) in enumerate(make_pairs(8)):
        source = scene_frames(scene)
        empty = torch.zeros(source.shape[0], 1, *source.shape[2:], dtype=torch.bool)
        noise = torch.rand(source.shape, generator=torch.Generator().manual_seed(k))
        untouched, noisy = (evaluate(out, source, scene, new, empty, seg) for out in (source, noise))
        assert untouched["source_moves"] and not untouched["success"] and not untouched["new_moves"]
        assert not noisy["success"] and not noisy["new_moves"] and not noisy["source_moves"]
