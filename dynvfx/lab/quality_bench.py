"""The model-quality benchmark (``benchmarks/toy_model_quality.py``): does the toy text-to-video model draw what
held-out captions ask for, judged strictly (:func:`dynvfx.toy.judge.judge`)?"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from dynvfx.pipeline import generate
from dynvfx.toy import judge, perception, vocabulary, world
from dynvfx.toy.examples import scene_frames


PER_COMBINATION = 4  # captions per held-out combination: 12 x 4 = 48 single-object and 48 two-object captions

#: (label, kinds of caption, check, the project's bar)
QUALITY_ROWS = [
    ("single object: colour and motion right", ("single",), "objects", 0.95),
    ("two objects: both right", ("pair",), "objects", 0.85),
    ("background right", ("single", "pair"), "background", 0.98),
    ("single object: present (one compact blob of its colour)", ("single",), "present", None),
    ("two objects: both present", ("pair",), "present", None),
    ("two objects: motions swapped (each ball moves as the other should)", ("pair",), "swapped", None),
    ("everything right (judge ok), all captions", ("single", "pair"), "all", None),
]


def held_out_cases(per_combination: int = PER_COMBINATION) -> tuple[list[world.Scene], list[world.Scene]]:
    """Single-object and two-object held-out scenes, ``per_combination`` of each per held-out (colour, motion,
    background); a second object is a training combination of another colour on the same background."""
    rng = np.random.default_rng(2024)
    singles, pairs = [], []
    for colour, motion, background in sorted(world.HELD_OUT):
        first = (colour, vocabulary.NOUN, motion)
        for _ in range(per_combination):
            singles.append(world.sample_scene(rng, triples=[first], background=background))
            second = world.sample_triple(rng, background, "exclude")
            while second[0] == colour:
                second = world.sample_triple(rng, background, "exclude")
            pairs.append(world.sample_scene(rng, triples=[first, second], background=background))
    return singles, pairs


def seen_cases(n: int) -> tuple[list[world.Scene], list[world.Scene]]:
    """``n`` single-object and ``n`` two-object scenes whose every (colour, motion, background) combination is a
    training one (fresh positions, seeds outside the training videos'): the same checks without the held-out
    gap, to tell what the model has not learned from what it does not generalise."""
    rng = np.random.default_rng(4048)
    singles = [world.sample_scene(rng, n_objects=1, held_out="exclude") for _ in range(n)]
    pairs = [world.sample_scene(rng, n_objects=2, held_out="exclude") for _ in range(n)]
    return singles, pairs


def checks(judgement: judge.Judgement, swapped: judge.Judgement | None = None) -> dict[str, bool]:
    """The benchmark's checks of one judged video; ``swapped``: the judgement of a two-ball video against the
    caption with the two motions exchanged (None when they are the same motion, or for one ball)."""
    return {
        "objects": all(judgement.moves) and judgement.extra == 0,  # every object right, nothing else
        "present": all(judgement.present),
        "background": judgement.background_ok,
        "all": judgement.ok,
        "swapped": swapped is not None and all(swapped.moves),
    }


def swapped_judgement(frames, scene: world.Scene, labels=None) -> judge.Judgement | None:
    """:func:`judge.judge` of ``frames`` against ``scene``'s two balls with their motions exchanged, or None
    (one ball, or both with the same motion). ``labels``: the frames' colour labels, if already computed."""
    if len(scene.objects) != 2 or scene.objects[0].motion == scene.objects[1].motion:
        return None
    a, b = scene.objects
    return judge.judge(frames, scene.background, [(a.colour, b.motion), (b.colour, a.motion)], labels)


def judged_checks(frames, scene: world.Scene) -> dict[str, bool]:
    """:func:`checks` of a video ``[F, 3, H, W]`` against ``scene``'s caption, its pixels labelled once."""
    labels = perception.colour_labels(frames)[0]
    return checks(judge.judge_scene(frames, scene, labels), swapped_judgement(frames, scene, labels))


def untrained(pipe):
    """``pipe`` with its transformer replaced by a freshly initialised one of the same configuration (seed 0)."""
    torch.manual_seed(0)
    pipe.transformer = type(pipe.transformer).from_config(pipe.transformer.config).to(pipe.device)
    return pipe


def model_quality(pipe, singles: list[world.Scene], pairs: list[world.Scene], steps: int = 50,
                  guidance: float | None = None) -> tuple[dict, dict, list[float]]:
    """Generate a video per caption (seed = its index; ``guidance=None``: the model's preset, see
    :func:`dynvfx.pipeline.generate`) and judge it, and the renderer's own video of the scene.
    ``pipe=None``: uniform colour noise instead of generated videos (the negative control).

    Returns ``(generated, rendered, seconds)``: ``{"single" | "pair": [checks, ...]}`` twice, and the seconds per
    generated video."""
    gen, ref, seconds = {"single": [], "pair": []}, {"single": [], "pair": []}, []
    for kind, scenes in (("single", singles), ("pair", pairs)):
        for i, scene in enumerate(scenes):
            t = time.perf_counter()
            if pipe is None:
                frames = torch.rand(scene.frames, 3, scene.size, scene.size, generator=torch.Generator().manual_seed(i))
            else:
                frames = generate(pipe, scene.caption, seed=i, steps=steps, guidance=guidance)
            seconds.append(time.perf_counter() - t)
            gen[kind].append(judged_checks(frames, scene))
            ref[kind].append(judged_checks(scene_frames(scene), scene))
    return gen, ref, seconds


@dataclasses.dataclass
class QualityRun:
    """What :func:`model_quality` measured and how (``settings``: model, captions, control, steps, guidance,
    threads), as ``toy_model_quality.py --save`` writes it for the docs' tables."""

    settings: dict
    generated: dict
    rendered: dict
    seconds: list[float]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> "QualityRun":
        return cls(**json.loads(Path(path).read_text()))
