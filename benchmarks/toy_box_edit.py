"""The edit that needs the anchors: a new ball that passes behind the box, with and without AnchorExtAttn.

Pairs, scores and the table are defined in :mod:`dynvfx.lab.box_bench` (``make_box_pairs``, ``evaluate_box``)
and :func:`dynvfx.lab.reports.box_edit_report`: on a source with the box and a ball, "add a yellow ball that moves
right behind the box"; success is the strict box judge of the output against the scene the pair was drawn from.
The variants: the authors' defaults, no AnchorExtAttn, the source branch at every step (no injection window), a
single pass, SDEdit 0.9 (toy planner and segmenter, one inversion per source shared by all).

    python benchmarks/toy_box_edit.py --pairs 60 --threads 1 --save benchmarks/results/toy_box_edit.json
    python benchmarks/toy_box_edit.py --pairs 20 --first 10 --save part.json       # a range of the pairs
    python benchmarks/toy_box_edit.py --merge a.json b.json                        # join saved ranges
    python benchmarks/toy_box_edit.py --attention 10 --save attention.json         # where the new ball looks

``--attention N`` edits nothing: on the first N pairs it measures how much of the new ball's attention goes to the
anchors, and to the box's, per layer and timestep of the injection window
(:func:`dynvfx.lab.box_bench.box_anchor_attention`), and prints the means over pairs.
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from dynvfx.config import DynVFXConfig
from dynvfx.lab.box_bench import BOX_VARIANTS, box_anchor_attention, box_edit_benchmark, make_box_pairs
from dynvfx.lab.edit_bench import VARIANTS, EditRun, merge_runs, variant_names
from dynvfx.lab.reports import box_attention_report, box_edit_report
from dynvfx.pipeline import load_pipeline


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy", help='"toy" or a model folder (e.g. a training run\'s output)')
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--first", type=int, default=0, help="edit pairs FIRST to PAIRS-1 only (a range of the pairs)")
    p.add_argument("--new", choices=("held_out", "seen"), default="held_out",
                   help="the new ball's (colour, motion, background): held out in training (the benchmark) or seen")
    p.add_argument("--variants", default=",".join(BOX_VARIANTS), help=f"comma list of: {', '.join(VARIANTS)}")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--save", metavar="JSON", help="also write the per-pair scores, for --merge")
    p.add_argument("--attention", type=int, metavar="N", help="measure the new ball's attention on the anchors "
                   "on the first N pairs instead of editing")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="print the table of saved runs over consecutive "
                   "ranges of the same pairs (no editing)")
    args = p.parse_args(argv)
    if args.merge:
        print(box_edit_report(merge_runs([EditRun.load(path) for path in args.merge])))
        return
    try:
        names = variant_names(args.variants)
    except ValueError as e:
        p.error(str(e))
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if args.attention:
        return attention_table(load_pipeline(args.model), args.attention, args.new, args.save)
    run = box_edit_benchmark(load_pipeline(args.model), args.pairs, names, DynVFXConfig.toy(), new=args.new,
                             first=args.first, log=lambda line: print(line, flush=True))
    if args.save:
        run.save(args.save)
    print("\n" + box_edit_report(run))


def attention_table(pipe, n: int, new: str, save: str | None) -> None:
    """Print (and save) the means over ``n`` pairs of :func:`box_anchor_attention`, per timestep and layer."""
    rows = [r | {"pair": k} for k, pair in enumerate(make_box_pairs(n, new=new))
            for r in box_anchor_attention(pipe, pair, DynVFXConfig.toy())]
    if save:
        with open(save, "w") as f:
            json.dump({"new": new, "rows": rows}, f)
    print(box_attention_report(rows, new))

if __name__ == "__main__":
    main()
