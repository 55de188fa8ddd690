"""How much does the toy transformer listen to each caption word (colour, motion), and to which ball each belongs?

For a rendered training-distribution scene, swap one word of its caption (the object's colour, or its motion)
and render the matching counterfactual scene: for a colour swap the same place, size and motion; for a motion
swap the same colour and size, starting where the world starts that motion (a motion's start side is part of it).
At several noise levels t, noise the
*original* latent x_0, let the transformer predict x_0 under both captions, and compare

    ratio = || x0_pred(caption') - x0_pred(caption) || / || x_0(scene') - x_0(scene) ||

i.e. the share of the true latent difference that the word swap produces in the prediction (1: the model draws the
difference; 0: it ignores the word). *Binding*: for a two-ball scene, exchange the two balls' motions ("a red ball
moves left and a blue ball moves up" -> "a red ball moves up and a blue ball moves left", each ball starting where
its new motion starts; both combinations seen in training). The caption keeps the same words, only bound the other
way, so a model that conditions on the bag of words scores 0 there. (Shape left the toy vocabulary after this
benchmark found the shape word heard about half as loudly as the colour word: docs/toy-model.md.)

The logic is :mod:`dynvfx.lab.words_bench` (``counterfactual``, ``binding_scene``, ``ratios``, ``word_sensitivity``).

    python benchmarks/toy_word_sensitivity.py [--model toy] [--scenes 12] [--save JSON]

``--save`` writes the mean ratios with the settings, for ``scripts/docs_tables.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dynvfx.lab.reports import sensitivity_table
from dynvfx.lab.words_bench import SENSITIVITY_TIMESTEPS, word_sensitivity
from dynvfx.pipeline import load_pipeline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy")
    p.add_argument("--scenes", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save", metavar="JSON", help="also write the mean ratios and the settings")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mean = word_sensitivity(load_pipeline(args.model), args.scenes)
    print(f"share of the true latent difference that a caption change produces in the x_0 prediction "
          f"({args.scenes} single-ball scenes for a word swap, {args.scenes} two-ball scenes for exchanged motions; "
          f"1 = draws it, 0 = ignores it)\n")
    print(sensitivity_table(mean))
    if args.save:
        settings = {"model": args.model, "scenes": args.scenes, "timesteps": list(SENSITIVITY_TIMESTEPS)}
        Path(args.save).write_text(json.dumps({"settings": settings, "mean": {w: m.tolist() for w, m in mean.items()}}))


if __name__ == "__main__":
    main()
