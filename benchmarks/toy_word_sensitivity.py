"""How much does the toy transformer listen to each caption word (colour, motion)?

For a rendered training-distribution scene, swap one word of its caption (the object's colour, or its motion)
and render the matching counterfactual scene: for a colour swap the same place, size and motion; for a motion
swap the same colour and size, starting where the world starts that motion (a motion's start side is part of it).
At several noise levels t, noise the
*original* latent x_0, let the transformer predict x_0 under both captions, and compare

    ratio = || x0_pred(caption') - x0_pred(caption) || / || x_0(scene') - x_0(scene) ||

i.e. the share of the true latent difference that the word swap produces in the prediction (1: the model draws
the difference; 0: it ignores the word). (Shape left the toy vocabulary after this benchmark found the shape
word heard about half as loudly as the colour word; the README keeps those numbers.)

    python benchmarks/toy_word_sensitivity.py [--model toy] [--scenes 12]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from dynvfx.explain import predicted_x0
from dynvfx.pipeline import encode_video, load_pipeline
from dynvfx.sampling import add_noise
from dynvfx.toy import world
from dynvfx.toy.examples import scene_frames

TIMESTEPS = (900, 700, 500, 300, 100)


WORDS = ("colour", "motion")


def counterfactual(scene: world.Scene, rng: np.random.Generator, word: str) -> world.Scene:
    """The scene with its first object's ``word`` ("colour" or "motion") changed to another value; a new motion
    gets a new start, drawn from the world's start range for that motion; the object's radius is kept."""
    obj = scene.objects[0]
    values = [v for v in (world.COLOURS if word == "colour" else world.MOTIONS) if v != getattr(obj, word)]
    value = values[int(rng.integers(len(values)))]
    if word == "colour":
        new = dataclasses.replace(obj, colour=value)
    else:
        (x_lo, x_hi), (y_lo, y_hi) = world._start_range(value, obj.radius, scene.size)
        x0, y0 = float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi))
        new = dataclasses.replace(obj, motion=value, x0=x0, y0=y0)
    return dataclasses.replace(scene, objects=(new,))


def latent(pipe, scene: world.Scene) -> torch.Tensor:
    """Rendered scene -> x_0 ``[1, F', C, h, w]``."""
    return encode_video(pipe, scene_frames(scene))


def ratios(pipe, scene: world.Scene, x0: torch.Tensor, other: world.Scene, seed: int) -> list[float]:
    """Per timestep in TIMESTEPS: prediction difference / true latent difference (see the module docstring).

    ``x0`` is ``latent(pipe, scene)``; the noise is drawn from ``seed`` (the same at every timestep)."""
    true_difference = (latent(pipe, other) - x0).norm()
    out = []
    for t in TIMESTEPS:
        x_t = add_noise(pipe, x0, t, torch.Generator().manual_seed(seed))
        pred, pred_other = (predicted_x0(pipe, x_t, t, s.caption) for s in (scene, other))
        out.append(((pred_other - pred).norm() / true_difference).item())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy")
    p.add_argument("--scenes", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    rng = np.random.default_rng(0)
    table = {w: [] for w in WORDS}
    for i in range(args.scenes):
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude")
        x0 = latent(pipe, scene)
        for word in table:
            table[word].append(ratios(pipe, scene, x0, counterfactual(scene, rng, word), seed=i))
    mean = {w: np.mean(r, axis=0) for w, r in table.items()}
    print(f"share of the true latent difference that a one-word caption swap produces in the x_0 prediction "
          f"({args.scenes} single-object scenes; 1 = draws it, 0 = ignores the word)\n")
    print("| timestep t | colour swap | motion swap | motion / colour |")
    print("|---|---|---|---|")
    for k, t in enumerate(TIMESTEPS):
        colour, motion = mean["colour"][k], mean["motion"][k]
        print(f"| {t} | {colour:.2f} | {motion:.2f} | {motion / colour:.2f} |")


if __name__ == "__main__":
    main()
