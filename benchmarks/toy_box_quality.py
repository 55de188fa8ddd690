"""Does the toy model draw the box, and balls that pass behind or in front of it?

Generates box captions whose ball crosses the box (``"a red ball moves left behind the box on a gray
background"``) and judges each video with the strict box judge (:func:`dynvfx.toy.occlusion.judge_box`): the box
intact, the ball seen on both sides of it, moving as asked, hidden inside it (behind) or whole over it (in front).
Held-out captions use the (colour, motion, background) combinations that training never shows; seen ones, training
combinations. The negative control judges uniform colour noise against the same captions. Prints the shares with
95 % Wilson intervals and saves the rows as JSON.

    python benchmarks/toy_box_quality.py --model DIR --per-caption 5 --save benchmarks/results/toy_box_quality.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from dynvfx.lab.stats import wilson
from dynvfx.paths import TOY_MODEL_DIR
from dynvfx.pipeline import generate, load_pipeline
from dynvfx.toy import world
from dynvfx.toy.occlusion import judge_box


def box_captions(held_out: bool) -> list[str]:
    """One-ball captions crossing the box: every held-out crossing combination (or as many seen ones, drawn
    evenly) with each relation."""
    pool = sorted(t for t in world.HELD_OUT if t[1] in world.CROSSING_MOTIONS)
    if not held_out:
        seen = sorted(t for t in world.TRAINING_COMBINATIONS if t[1] in world.CROSSING_MOTIONS)
        pool = seen[::max(1, len(seen) // len(pool))][:len(pool)]
    return [world.caption_for(bg, [(c, "ball", m, r)]) for (c, m, bg), r in itertools.product(pool, world.RELATIONS)]


def rows_for(frames: torch.Tensor | np.ndarray, caption: str) -> dict:
    j = judge_box(frames, caption)
    c = j.crossings[0]
    return {"caption": caption, "success": j.ok, "box_intact": j.box_intact, "moves": c.moves, "sides": c.sides,
            "relation": c.relation_ok, "background": j.others.background_ok, "extra": j.others.extra,
            "ball_in_box": round(c.covered, 3), "box_shown": round(j.box_shown, 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=TOY_MODEL_DIR)
    p.add_argument("--per-caption", type=int, default=5, help="generations (seeds) per caption")
    p.add_argument("--seen", action="store_true", help="also the seen captions")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--save", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(str(args.model))
    sets = {"held_out": box_captions(True), **({"seen": box_captions(False)} if args.seen else {})}
    rng = np.random.default_rng(0)
    out, started = {}, time.time()
    for name, captions in sets.items():
        rows, noise = [], []
        for caption, seed in itertools.product(captions, range(args.per_caption)):
            rows.append(rows_for(generate(pipe, caption, seed=seed, steps=args.steps), caption) | {"seed": seed})
            noise.append(rows_for(rng.random((world.FRAMES, world.SIZE, world.SIZE, 3)).astype(np.float32),
                                  caption))
        out[name] = {"generated": rows, "noise": noise}
        for key in ("success", "box_intact", "relation", "moves", "sides"):
            hits = sum(r[key] for r in rows)
            lo, hi = wilson(hits, len(rows))
            print(f"{name:9s} {key:10s} {hits:3d}/{len(rows)} = {hits / len(rows):5.1%} [{lo:.0%}, {hi:.0%}]"
                  f"   noise: {sum(r[key] for r in noise)}/{len(noise)}")
        for relation in world.RELATIONS:
            part = [r for r in rows if world.RELATIONS[relation] in r["caption"]]
            print(f"{name:9s} {relation:6s} success {sum(r['success'] for r in part)}/{len(part)}, ball's colour on "
                  f"the box at most {np.mean([r['ball_in_box'] for r in part]):.0%} of it, the box showing at least "
                  f"{np.mean([r['box_shown'] for r in part]):.0%} (means)")
    print(f"{time.time() - started:.0f} s for {sum(len(v['generated']) for v in out.values())} videos")
    if args.save:
        record = args.model / "training.json"
        training = json.loads(record.read_text()) if record.exists() else {}
        trained = {k: training.get(k) for k in ("steps", "seconds", "settings", "changes") if k in training}
        args.save.write_text(json.dumps({"model": str(args.model), "steps": args.steps, "training": trained, **out},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
