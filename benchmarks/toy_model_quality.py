"""Does the toy text-to-video model draw what held-out captions ask for? Judged strictly.

Generates one video per held-out caption (the first object's (colour, motion, background) combination was never
seen in training) and checks it with the strict judge, :func:`dynvfx.toy.judge.judge`: the caption's background
in most pixels; each object one compact blob of its colour in >= 80 % of frames, moving as asked; nothing else.
- single-object captions: colour and motion right (the ball is there, moves as asked, and no other object is);
- two-object captions: both objects right (each ball there and moving as asked, no third object);
- every caption: background right.
Each with a 95 % Wilson interval. A diagnostic row counts two-ball videos whose motions are swapped (each ball
moves as the other should). ``--captions seen`` runs the same checks on captions whose combinations were all seen
in training (what the model has not learned, apart from what it does not generalise). The renderer's own videos
of the same captions are judged too (the judge's ceiling: 100 %, and 0 % swapped). ``--control noise`` (uniform
colour noise instead of videos) and ``--control untrained`` (the pipeline with a freshly initialised transformer)
are negative controls: they must score ~0.
The logic is :mod:`dynvfx.lab.quality_bench` (``held_out_cases``, ``seen_cases``, ``model_quality``,
``quality_table``).

    python benchmarks/toy_model_quality.py [--model DIR] [--steps 50] [--guidance 2.5] [--control untrained]
                                           [--captions seen] [--save JSON]

``--save`` writes the per-caption checks with the settings (``QualityRun``); ``scripts/docs_tables.py`` renders
the docs' tables from the files in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dynvfx.config import DynVFXConfig
from dynvfx.lab.quality_bench import (PER_COMBINATION, QualityRun, held_out_cases, model_quality, seen_cases,
                                      untrained)
from dynvfx.lab.reports import quality_table
from dynvfx.pipeline import load_pipeline
from dynvfx.toy import world


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy", help='"toy" or a model folder (e.g. a training run\'s output)')
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=DynVFXConfig.toy().guidance_scale)
    p.add_argument("--per-combination", type=int, default=PER_COMBINATION,
                   help="captions of each kind per held-out combination (12 combinations)")
    p.add_argument("--captions", choices=("held_out", "seen"), default="held_out",
                   help="held-out captions (the benchmark) or captions whose combinations were all seen in training")
    p.add_argument("--limit", type=int, default=None, help="only the first N captions of each kind")
    p.add_argument("--control", choices=("none", "noise", "untrained"), default="none",
                   help="negative control: colour noise instead of videos, or a freshly initialised transformer")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--save", metavar="JSON", help="also write the per-caption checks and the settings")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pipe = None if args.control == "noise" else load_pipeline(args.model)
    if args.control == "untrained":
        pipe = untrained(pipe)
    singles, pairs = (held_out_cases(args.per_combination) if args.captions == "held_out"
                      else seen_cases(len(world.HELD_OUT) * args.per_combination))
    singles, pairs = singles[:args.limit], pairs[:args.limit]
    generated, rendered, seconds = model_quality(pipe, singles, pairs, args.steps, args.guidance)
    source = {"none": f"model {args.model!r}", "noise": "uniform colour noise (negative control)",
              "untrained": f"model {args.model!r} with a freshly initialised transformer (negative control)"}
    print(f"toy model quality on {args.captions.replace('_', '-')} captions, strict judge: {source[args.control]}; "
          f"{len(singles)} single-object and {len(pairs)} two-object captions; {args.steps} steps, "
          f"guidance {args.guidance}\n")
    print(quality_table(generated, rendered))
    print(f"\nseconds per generated video: {np.mean(seconds):.2f} ({torch.get_num_threads()} CPU threads)")
    if args.save:
        settings = {"model": args.model, "captions": args.captions, "control": args.control, "steps": args.steps,
                    "guidance": args.guidance, "limit": args.limit, "threads": torch.get_num_threads()}
        QualityRun(settings, generated, rendered, seconds).save(args.save)


if __name__ == "__main__":
    main()
