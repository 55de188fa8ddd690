"""How much does the toy transformer listen to each caption word? A diagnosis of the shape failure.

For a rendered training-distribution scene, swap one word of its caption (the object's colour, or its shape)
and render the matching counterfactual scene (same place, size and motion). At several noise levels t, noise the
*original* latent x_0, let the transformer predict x_0 under both captions, and compare

    ratio = || x0_pred(caption') - x0_pred(caption) || / || x_0(scene') - x_0(scene) ||

i.e. the share of the true latent difference that the word swap produces in the prediction (1: the model draws
the difference; 0: it ignores the word). Colour is the reference: the model draws colours correctly.

    python benchmarks/toy_word_sensitivity.py [--model toy] [--scenes 12]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from dynvfx.pipeline import encode_text, encode_video, load_pipeline, rotary_embeddings
from dynvfx.sampling import predict_v
from dynvfx.toy import world

TIMESTEPS = (900, 700, 500, 300, 100)


def counterfactual(scene: world.Scene, rng: np.random.Generator, word: str) -> world.Scene:
    """The scene with its first object's ``word`` ("colour" or "shape") changed to another value."""
    obj = scene.objects[0]
    values = [v for v in (world.COLOURS if word == "colour" else world.SHAPES) if v != getattr(obj, word)]
    new = dataclasses.replace(obj, **{word: values[int(rng.integers(len(values)))]})
    return dataclasses.replace(scene, objects=(new,))


def latent(pipe, scene: world.Scene) -> torch.Tensor:
    """Rendered scene -> x_0 ``[1, F', C, h, w]``."""
    return encode_video(pipe, torch.from_numpy(world.render(scene)[0]).permute(0, 3, 1, 2))


def ratios(pipe, scene: world.Scene, other: world.Scene, noise: torch.Tensor) -> list[float]:
    """Per timestep in TIMESTEPS: prediction difference / true latent difference (see the module docstring)."""
    x0, x0_other = latent(pipe, scene), latent(pipe, other)
    text = encode_text(pipe, [scene.caption, other.caption])
    rope = rotary_embeddings(pipe, x0)
    alphas = pipe.scheduler.alphas_cumprod
    out = []
    for t in TIMESTEPS:
        a, s = alphas[t].sqrt(), (1 - alphas[t]).sqrt()
        x_t = a * x0 + s * noise
        v = predict_v(pipe, x_t.expand(2, -1, -1, -1, -1), text, t, rope)  # [2, F', C, h, w]
        x0_pred = a * x_t - s * v  # v-prediction -> x_0
        out.append(((x0_pred[1] - x0_pred[0]).norm() / (x0_other - x0).norm()).item())
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
    table = {"colour": [], "shape": []}
    for i in range(args.scenes):
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude")
        noise = torch.randn(latent(pipe, scene).shape, generator=torch.Generator().manual_seed(i))
        for word in table:
            table[word].append(ratios(pipe, scene, counterfactual(scene, rng, word), noise))
    mean = {w: np.mean(r, axis=0) for w, r in table.items()}
    print(f"share of the true latent difference that a one-word caption swap produces in the x_0 prediction "
          f"({args.scenes} single-object scenes; 1 = draws it, 0 = ignores the word)\n")
    print("| timestep t | colour swap | shape swap | shape / colour |")
    print("|---|---|---|---|")
    for k, t in enumerate(TIMESTEPS):
        print(f"| {t} | {mean['colour'][k]:.2f} | {mean['shape'][k]:.2f} | {mean['shape'][k] / mean['colour'][k]:.2f} |")


if __name__ == "__main__":
    main()
