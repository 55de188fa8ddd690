"""The word-sensitivity benchmark (``benchmarks/toy_word_sensitivity.py``): how much does the toy transformer listen
to each caption word?

Swap one word (colour or motion), render the matching counterfactual scene, noise the original latent x_0 to
several t and compare ``|| x0_pred(caption') - x0_pred(caption) || / || x_0(scene') - x_0(scene) ||`` (1: the model
draws the difference; 0: it ignores the word).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dynvfx.pipeline import encode_video
from dynvfx.sampling import add_noise, predicted_x0
from dynvfx.toy import world
from dynvfx.toy.examples import scene_frames


SENSITIVITY_TIMESTEPS = (900, 700, 500, 300, 100)
WORDS = ("colour", "motion", "binding")  # binding: the two balls' motions exchanged (the same bag of words)


def _restart(obj: world.ToyObject, motion: str, rng: np.random.Generator, size: int) -> world.ToyObject:
    """``obj`` moving as ``motion``, from a new start drawn from the world's start range for it (same radius)."""
    (x_lo, x_hi), (y_lo, y_hi) = world._start_range(motion, obj.radius, size)
    x0, y0 = float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi))
    return dataclasses.replace(obj, motion=motion, x0=x0, y0=y0)


def counterfactual(scene: world.Scene, rng: np.random.Generator, word: str) -> world.Scene:
    """The scene with its first object's ``word`` ("colour" or "motion") changed to another value, or with
    ``word="binding"`` its two objects' motions exchanged (its caption then holds the same words, bound the other
    way). A changed motion gets a new start, drawn from the world's start range for it; radii are kept."""
    if word == "binding":
        a, b = scene.objects
        if a.motion == b.motion:
            raise ValueError("counterfactual: exchanging the motions needs two balls that move differently")
        return dataclasses.replace(scene, objects=(_restart(a, b.motion, rng, scene.size),
                                                   _restart(b, a.motion, rng, scene.size)))
    obj = scene.objects[0]
    values = [v for v in (world.COLOURS if word == "colour" else world.MOTIONS) if v != getattr(obj, word)]
    value = values[int(rng.integers(len(values)))]
    new = dataclasses.replace(obj, colour=value) if word == "colour" else _restart(obj, value, rng, scene.size)
    return dataclasses.replace(scene, objects=(new,))


def latent(pipe, scene: world.Scene) -> torch.Tensor:
    """Rendered scene -> x_0 ``[1, F', C, h, w]``."""
    return encode_video(pipe, scene_frames(scene))


def ratios(pipe, scene: world.Scene, x0: torch.Tensor, other: world.Scene, seed: int) -> list[float]:
    """Per timestep in :data:`SENSITIVITY_TIMESTEPS`: prediction difference / true latent difference (see the
    module docstring).

    ``x0`` is ``latent(pipe, scene)``; the noise is drawn from ``seed`` (the same at every timestep)."""
    true_difference = (latent(pipe, other) - x0).norm()
    out = []
    for t in SENSITIVITY_TIMESTEPS:
        x_t = add_noise(pipe, x0, t, torch.Generator().manual_seed(seed))
        pred, pred_other = (predicted_x0(pipe, x_t, t, s.caption) for s in (scene, other))
        out.append(((pred_other - pred).norm() / true_difference).item())
    return out


def binding_scene(rng: np.random.Generator) -> world.Scene:
    """A two-ball training-distribution scene whose balls move differently and whose exchanged-motion
    counterfactual is a training combination too (so a swap is not merely an unseen caption)."""
    while True:
        scene = world.sample_scene(rng, n_objects=2, held_out="exclude")
        if world.exchanged_motions(scene.caption) is not None:
            return scene


def word_sensitivity(pipe, n_scenes: int = 12) -> dict[str, np.ndarray]:
    """Per word of :data:`WORDS`, the mean :func:`ratios` (one per timestep of :data:`SENSITIVITY_TIMESTEPS`)
    over ``n_scenes`` training-distribution scenes: one ball for "colour" and "motion", two
    (:func:`binding_scene`) for "binding"."""
    rng = np.random.default_rng(0)
    table = {w: [] for w in WORDS}
    for i in range(n_scenes):
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude")
        x0 = latent(pipe, scene)
        for word in ("colour", "motion"):
            table[word].append(ratios(pipe, scene, x0, counterfactual(scene, rng, word), seed=i))
        pair = binding_scene(rng)
        table["binding"].append(ratios(pipe, pair, latent(pipe, pair), counterfactual(pair, rng, "binding"), seed=i))
    return {w: np.mean(r, axis=0) for w, r in table.items()}
