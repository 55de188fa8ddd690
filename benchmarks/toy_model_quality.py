"""Does the toy text-to-video model draw what held-out captions ask for? Judged strictly.

Generates one video per held-out caption (the first object's (colour, motion, background) combination was never
seen in training) and checks it with the strict judge, :func:`dynvfx.toy.analysis.judge`: the caption's background
in most pixels; each object one compact blob of its colour in >= 80 % of frames, moving as asked; nothing else.
- single-object captions: colour and motion right (the ball is there, moves as asked, and no other object is);
- two-object captions: both objects right (each ball there and moving as asked, no third object);
- every caption: background right.
Each with a 95 % Wilson interval. The renderer's own videos of the same captions are judged too (the judge's
ceiling, 100 %). ``--control noise`` (uniform colour noise instead of videos) and ``--control untrained`` (the
pipeline with a freshly initialised transformer) are negative controls: they must score ~0.

    python benchmarks/toy_model_quality.py [--model DIR] [--steps 50] [--guidance 6] [--control untrained]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dynvfx.pipeline import generate, load_pipeline
from dynvfx.toy import analysis, world
from dynvfx.toy.examples import scene_frames

PER_COMBINATION = 4  # captions per held-out combination: 12 x 4 = 48 single-object and 48 two-object captions

def held_out_cases(per_combination: int = PER_COMBINATION) -> tuple[list[world.Scene], list[world.Scene]]:
    """Single-object and two-object held-out scenes, ``per_combination`` of each per held-out (colour, motion,
    background); a second object is a training combination of another colour on the same background."""
    rng = np.random.default_rng(2024)
    singles, pairs = [], []
    for colour, motion, background in sorted(world.HELD_OUT):
        first = (colour, analysis.NOUN, motion)
        for _ in range(per_combination):
            singles.append(world.sample_scene(rng, triples=[first], background=background))
            second = world.sample_triple(rng, background, "exclude")
            while second[0] == colour:
                second = world.sample_triple(rng, background, "exclude")
            pairs.append(world.sample_scene(rng, triples=[first, second], background=background))
    return singles, pairs


def checks(judgement: analysis.Judgement) -> dict[str, bool]:
    """The benchmark's checks of one judged video."""
    return {
        "objects": all(judgement.moves) and judgement.extra == 0,  # every object right, nothing else
        "present": all(judgement.present),
        "background": judgement.background_ok,
        "all": judgement.ok,
    }


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def cell(results: list[dict], key: str) -> tuple[float, str]:
    """Share of ``results`` whose check ``key`` holds, and that share with its 95 % interval as text."""
    hits = sum(r[key] for r in results)
    lo, hi = wilson(hits, len(results))
    share = hits / max(len(results), 1)
    return share, f"{share:.0%} [{lo:.0%}, {hi:.0%}]"


#: (label, kinds of caption, check, bar of issue 15)
ROWS = [
    ("single object: colour and motion right", ("single",), "objects", 0.95),
    ("two objects: both right", ("pair",), "objects", 0.85),
    ("background right", ("single", "pair"), "background", 0.98),
    ("single object: present (one compact blob of its colour)", ("single",), "present", None),
    ("two objects: both present", ("pair",), "present", None),
    ("everything right (judge ok), all captions", ("single", "pair"), "all", None),
]


def untrained(pipe):
    """``pipe`` with its transformer replaced by a freshly initialised one of the same configuration (seed 0)."""
    torch.manual_seed(0)
    pipe.transformer = type(pipe.transformer).from_config(pipe.transformer.config).to(pipe.device)
    return pipe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy", help='"toy" or a model folder (e.g. a training run\'s output)')
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=6.0)
    p.add_argument("--per-combination", type=int, default=PER_COMBINATION,
                   help="captions of each kind per held-out combination (12 combinations)")
    p.add_argument("--limit", type=int, default=None, help="only the first N captions of each kind")
    p.add_argument("--control", choices=("none", "noise", "untrained"), default="none",
                   help="negative control: colour noise instead of videos, or a freshly initialised transformer")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pipe = None if args.control == "noise" else load_pipeline(args.model)
    if args.control == "untrained":
        pipe = untrained(pipe)
    singles, pairs = held_out_cases(args.per_combination)
    singles, pairs = singles[:args.limit], pairs[:args.limit]
    gen, ref, seconds = {"single": [], "pair": []}, {"single": [], "pair": []}, []
    for kind, scenes in (("single", singles), ("pair", pairs)):
        for i, scene in enumerate(scenes):
            t = time.perf_counter()
            if pipe is None:
                frames = torch.rand(scene.frames, 3, scene.size, scene.size, generator=torch.Generator().manual_seed(i))
            else:
                frames = generate(pipe, scene.caption, seed=i, steps=args.steps, guidance=args.guidance)
            seconds.append(time.perf_counter() - t)
            gen[kind].append(checks(analysis.judge_scene(frames, scene)))
            ref[kind].append(checks(analysis.judge_scene(scene_frames(scene), scene)))
    source = {"none": f"model {args.model!r}", "noise": "uniform colour noise (negative control)",
              "untrained": f"model {args.model!r} with a freshly initialised transformer (negative control)"}
    print(f"toy model quality on held-out captions, strict judge: {source[args.control]}; {len(singles)} "
          f"single-object and {len(pairs)} two-object captions; {args.steps} steps, guidance {args.guidance}\n")
    print("| check | generated [95 % interval] | renderer (ceiling) | bar |")
    print("|---|---|---|---|")
    for label, kinds, key, bar in ROWS:
        g, g_text = cell([r for k in kinds for r in gen[k]], key)
        _, r_text = cell([r for k in kinds for r in ref[k]], key)
        verdict = "" if bar is None else (f"≥ {bar:.0%} " + ("✓" if g >= bar else "✗"))
        print(f"| {label} | {g_text} | {r_text} | {verdict} |")
    print(f"\nseconds per generated video: {np.mean(seconds):.2f} ({torch.get_num_threads()} CPU threads)")


if __name__ == "__main__":
    main()
