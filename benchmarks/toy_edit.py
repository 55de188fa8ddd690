"""DynVFX on the toy model: the authors' defaults, their alternatives, and the paper's ablations.

Pairs, variants and scores are defined in :mod:`dynvfx.lab.edit_bench` (``make_pairs``, ``VARIANTS``,
``evaluate``); this script runs them and prints the table. For every variant, per pair:
- success: the strict judge (:func:`dynvfx.toy.judge.judge`) says the output shows the background, the source
  ball and the new ball, each moving as asked, and nothing else (95 % Wilson interval);
- source IoU: the source ball's mask in the output (toy segmenter) vs. its rendered ground truth (bootstrap
  95 % interval of the mean);
- PSNR / SSIM outside the final edit mask vs. the source, of the output as written (``composite="source"``) and
  PSNR of the raw latent output decode(x_comp);
and the toy autoencoder's reconstruction PSNR of the sources (the ceiling of any latent-space edit).

One inversion per source is shared by all variants. The full run (60 pairs, every variant):

    python benchmarks/toy_edit.py --threads 2
    python benchmarks/toy_edit.py --pairs 2 --variants authors,one_iteration   # a quick check
    python benchmarks/toy_edit.py --new seen --variants authors,no_anchor_attn   # new balls the model has seen

Many pairs on several cores: ``--processes N`` runs N consecutive ranges of the pairs side by side and joins
them (``python benchmarks/toy_edit.py --pairs 600 --variants authors --processes 2 --threads 1``); or, to spread
the ranges over machines or sessions, run them yourself and join the saved runs:

    python benchmarks/toy_edit.py --pairs 300 --variants authors,no_anchor_attn,one_iteration --threads 1 --save a.json
    python benchmarks/toy_edit.py --pairs 600 --first 300 --variants authors,no_anchor_attn,one_iteration \
        --threads 1 --save b.json
    python benchmarks/toy_edit.py --merge a.json b.json   # the table of all 600 pairs
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from dynvfx.config import DynVFXConfig
from dynvfx.lab.edit_bench import (VARIANTS, EditRun, edit_benchmark, edit_benchmark_parallel, merge_runs,
                                   variant_names)
from dynvfx.lab.reports import edit_report
from dynvfx.pipeline import load_pipeline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy", help='"toy" or a model folder (e.g. a training run\'s output)')
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--new", choices=("held_out", "seen"), default="held_out",
                   help="the new ball's (colour, motion, background): held out in training (the benchmark) or seen")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=None, help="override num_inference_steps (and inversion steps)")
    p.add_argument("--guidance", type=float, default=None, help="override guidance_scale (default: the toy preset's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--first", type=int, default=0, help="edit pairs FIRST to PAIRS-1 only (a range of the pairs)")
    p.add_argument("--processes", type=int, default=1,
                   help="split the pairs into this many consecutive ranges run side by side (--threads each, "
                        "default 1), joined into one table")
    p.add_argument("--save", metavar="JSON", help="also write the per-pair scores, for --merge")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="print the table of saved runs over consecutive "
                   "ranges of the same pairs (no editing), for the variants they all have")
    args = p.parse_args()
    if args.merge:
        print(edit_report(merge_runs([EditRun.load(path) for path in args.merge])))
        return
    if not 0 <= args.first < args.pairs:
        p.error(f"--first {args.first} must be in [0, --pairs)")
    try:
        names = variant_names(args.variants)
    except ValueError as e:
        p.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    base = DynVFXConfig.toy()
    if args.steps:
        base = base.replace(num_inference_steps=args.steps, inversion_steps=args.steps)
    if args.guidance is not None:
        base = base.replace(guidance_scale=args.guidance)
    wall = time.perf_counter()
    if args.processes > 1:
        run = edit_benchmark_parallel(args.model, args.pairs, names, base, args.processes, args.threads or 1,
                                      new=args.new, first=args.first)
    else:
        run = edit_benchmark(load_pipeline(args.model), args.pairs, names, base,
                             log=lambda line: print(line, flush=True), new=args.new, first=args.first)
    if args.save:
        run.save(args.save)
    print("\n" + edit_report(run))
    if run.joined > 1:  # the report's total adds up the processes' times
        print(f"wall clock {time.perf_counter() - wall:.0f} s, {run.joined} processes side by side")


if __name__ == "__main__":
    main()
