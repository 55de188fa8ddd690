"""Does the toy text-to-video model draw what held-out captions ask for?

Generates one video per held-out caption (colour-shape-motion combinations never seen in training) and checks it
with the toy analysis (colour/shape/motion from the pixels, not the renderer's ground truth):
- single-object captions: the colour+shape is present, and it moves in the requested direction;
- two-object captions: both colour+shape pairs are present.
Also checks the renderer's own videos of the same captions, as the analysis's ceiling.

    python benchmarks/toy_model_quality.py [--steps 50] [--guidance 6] [--model toy]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from dynvfx.pipeline import generate, load_pipeline
from dynvfx.toy import analysis, world
from dynvfx.toy.examples import scene_frames


def held_out_cases() -> tuple[list[world.Scene], list[world.Scene]]:
    """36 single-object and 36 two-object held-out scenes (the first object's triple is held out)."""
    rng = np.random.default_rng(2024)
    singles, pairs = [], []
    for triple, bg in itertools.product(sorted(world.HELD_OUT), world.BACKGROUNDS):
        singles.append(world.sample_scene(rng, triples=[triple], background=bg))
        second = world.sample_triple(rng, "exclude")
        while second[:2] == triple[:2]:
            second = world.sample_triple(rng, "exclude")
        pairs.append(world.sample_scene(rng, triples=[triple, second], background=bg))
    return singles, pairs


def judge(frames, scene: world.Scene) -> dict[str, bool]:
    """Check ``[F, 3, H, W]`` frames against the scene's caption."""
    objs = analysis.detect_objects(frames)
    out = {"background": analysis.background_colour(frames) == scene.background}
    for i, want in enumerate(scene.objects):
        match = [o for o in objs if (o.colour, o.shape) == (want.colour, want.shape)]
        out[f"present{i}"] = bool(match)
        out[f"colour{i}"] = any(o.colour == want.colour for o in objs)
        out[f"motion{i}"] = bool(match) and match[0].motion == want.motion
        out[f"colour_motion{i}"] = any(o.colour == want.colour and o.motion == want.motion for o in objs)
    return out


def rate(results: list[dict], keys: tuple[str, ...]) -> float:
    """Share of ``results`` in which every check in ``keys`` holds."""
    return float(np.mean([all(r[k] for k in keys) for r in results]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=6.0)
    p.add_argument("--limit", type=int, default=None, help="only the first N captions of each kind")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pipe = load_pipeline(args.model)
    singles, pairs = held_out_cases()
    singles, pairs = singles[:args.limit], pairs[:args.limit]
    gen, ref, seconds = {"single": [], "pair": []}, {"single": [], "pair": []}, []
    for kind, scenes in (("single", singles), ("pair", pairs)):
        for i, scene in enumerate(scenes):
            t = time.perf_counter()
            frames = generate(pipe, scene.caption, seed=i, steps=args.steps, guidance=args.guidance)
            seconds.append(time.perf_counter() - t)
            gen[kind].append(judge(frames, scene))
            rendered = scene_frames(scene)
            ref[kind].append(judge(rendered, scene))
    rows = [  # (label, kind of caption, checks that must all hold, bar)
        ("single object: colour+shape present", "single", ("present0",), 0.90),
        ("single object: moves as asked", "single", ("motion0",), 0.80),
        ("single object: colour present", "single", ("colour0",), None),
        ("single object: an object of its colour moves as asked", "single", ("colour_motion0",), None),
        ("two objects: both present", "pair", ("present0", "present1"), 0.70),
        ("two objects: both colours present", "pair", ("colour0", "colour1"), None),
        ("background right", "single", ("background",), None),
    ]
    print(f"toy model quality on held-out captions ({len(singles)} single-object, {len(pairs)} two-object; "
          f"{args.steps} steps, guidance {args.guidance})\n")
    print("| check | generated | renderer (ceiling) | bar |")
    print("|---|---|---|---|")
    for label, kind, keys, bar in rows:
        g, r = rate(gen[kind], keys), rate(ref[kind], keys)
        verdict = "" if bar is None else (f"≥ {bar:.0%} " + ("✓" if g >= bar else "✗"))
        print(f"| {label} | {g:.0%} | {r:.0%} | {verdict} |")
    print(f"\nseconds per generated video: {np.mean(seconds):.2f} (CPU, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
