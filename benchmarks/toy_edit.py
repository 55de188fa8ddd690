"""DynVFX on the toy model: the authors' defaults, each fidelity choice reverted, and the paper's ablations.

Pairs: a held-out (colour, motion, background) combination of ``world.HELD_OUT`` is the new object; the source is
a one-ball scene on that background (a trained combination, another colour); the instruction asks for the new
ball. For every variant, per pair:
- success: the strict judge (:func:`dynvfx.toy.analysis.judge`) says the output shows the background, the source
  ball and the new ball, each moving as asked, and nothing else (95 % Wilson interval);
- source IoU: the source ball's mask in the output (toy segmenter) vs. its rendered ground truth (bootstrap
  95 % interval of the mean);
- PSNR / SSIM outside the final edit mask vs. the source, of the output as written (``composite="source"``) and
  PSNR of the raw latent output decode(x_comp);
and the toy autoencoder's reconstruction PSNR of the sources (the ceiling of any latent-space edit).

One inversion per source is shared by all variants. The full run (60 pairs, every variant):

    python benchmarks/toy_edit.py --threads 2
    python benchmarks/toy_edit.py --pairs 2 --variants authors,previous   # a quick check
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import torch

from dynvfx.config import DynVFXConfig
from dynvfx.edit import run_edit, sdedit
from dynvfx.masks import clean_mask
from dynvfx.metrics import iou, psnr_outside, ssim_outside
from dynvfx.pipeline import decode_latents, encode_video, load_pipeline
from dynvfx.planning import plan_edit
from dynvfx.segmentation import get_segmenter
from dynvfx.toy import analysis, world
from dynvfx.toy.examples import scene_frames

#: The five choices of the authors' released code (config fields), each with this project's earlier value.
REVERTS = {
    "revert_window": dict(injection_max_timestep=1.0, injection_min_timestep=0.0),
    "revert_branches": dict(anchor_branches="both"),
    "revert_draw": dict(anchor_draw="once"),
    "revert_source_text": dict(source_text="inversion_prompt"),
    "revert_mask": dict(residual_mask="maxpool"),
}
#: ``name: (description, config changes or "sdedit:<strength>")``.
VARIANTS = {
    "authors": ("the authors' defaults", {}),
    "revert_window": ("  source branch at every step", REVERTS["revert_window"]),
    "revert_branches": ("  both CFG branches extended", REVERTS["revert_branches"]),
    "revert_draw": ("  anchors drawn once per edit", REVERTS["revert_draw"]),
    "revert_source_text": ("  source branch reads the inversion prompt", REVERTS["revert_source_text"]),
    "revert_mask": ("  max-pooled residual mask", REVERTS["revert_mask"]),
    "previous": ("previous behaviour (all five reverted)", {k: v for d in REVERTS.values() for k, v in d.items()}),
    "no_anchor_attn": ("no AnchorExtAttn (attention off)", dict(attention_mode="off")),
    "one_iteration": ("no iterative refinement (one iteration)", dict(strengths=(0.92,))),
    "full_attention": ("full attention", dict(attention_mode="full")),
    "masked_attention": ("masked attention", dict(attention_mode="masked")),
    "sdedit_0.6": ("SDEdit 0.6", "sdedit:0.6"),
    "sdedit_0.9": ("SDEdit 0.9", "sdedit:0.9"),
}


def make_pairs(n: int, seed: int = 7):
    """``n`` (source scene, new ``(colour, "ball", motion)``, instruction) pairs; the new ball's (colour, motion)
    on the source's background is a held-out combination, the source ball's is not, and their colours differ."""
    rng = np.random.default_rng(seed)
    held = sorted(world.HELD_OUT)
    pairs = []
    while len(pairs) < n:
        colour, motion, background = held[rng.integers(len(held))]
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude", background=background)
        if scene.objects[0].colour == colour:
            continue
        verb = "that bounces" if motion == "bounce" else f"moving {motion}"
        pairs.append((scene, (colour, "ball", motion), f"add a {colour} ball {verb}"))
    return pairs


def evaluate(out, source, scene, new, edit_mask, segmenter, raw=None) -> dict:
    """Scores of output frames ``out`` ``[F, 3, H, W]`` (and of the raw latent output ``raw``, if given).

    ``success``: the strict judge of ``out`` against the source ball(s) plus the new ball ``new``.
    """
    expected = [(o.colour, o.motion) for o in scene.objects] + [(new[0], new[2])]
    verdict = analysis.judge(out, scene.background, expected)
    gt = torch.from_numpy(world.render(scene)[1][0])[:, None]  # [F, 1, H, W]
    src = segmenter.segment(out, [scene.objects[0].phrase]).union
    return {"success": verdict.ok, "new_moves": verdict.moves[-1], "source_moves": all(verdict.moves[:-1]),
            "background": verdict.background_ok, "no_extra": verdict.extra == 0, "iou": iou(src, gt),
            "psnr": psnr_outside(out, source, edit_mask), "ssim": ssim_outside(out, source, edit_mask)} | (
                {} if raw is None else {"psnr_raw": psnr_outside(raw, source, edit_mask)})


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: list[float], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and its 95 % bootstrap interval."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) == 0:
        return float("inf"), float("inf"), float("inf")
    means = np.random.default_rng(seed).choice(v, (reps, len(v))).mean(1)
    return float(v.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def share(rows: list[dict], key: str) -> str:
    hits = sum(bool(r[key]) for r in rows)
    lo, hi = wilson(hits, len(rows))
    return f"{hits / max(len(rows), 1):.0%} [{lo:.0%}, {hi:.0%}]"


def run_variant(pipe, seg, base: DynVFXConfig, name: str, source, plan, cache_dir: str):
    """Output frames ``[F, 3, H, W]``, final O_edit mask ``[F, 1, H, W]`` and raw decode(x_comp) of one variant."""
    changes = VARIANTS[name][1]
    if isinstance(changes, str):
        out = sdedit(pipe, source, plan.composited_caption, float(changes.split(":")[1]), base, progress=False)
        found = seg.segment(out, plan.objects_edit).union
        return out, clean_mask(found, base.mask_open_radius, dilate_radius=base.mask_dilate_radius), out
    res = run_edit(pipe, source, plan, seg, base.replace(**changes), cache_dir=cache_dir, progress=False)
    return res.frames, res.edit_mask, res.decoded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=None, help="override num_inference_steps (and inversion steps)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    pipe = load_pipeline("toy")
    seg = get_segmenter("toy")
    base = DynVFXConfig.toy()
    if args.steps:
        base = base.replace(num_inference_steps=args.steps, inversion_steps=args.steps)
    results = {n: [] for n in names}
    seconds = {n: [] for n in names}
    ceiling = []
    cache = tempfile.TemporaryDirectory()  # one inversion per source, shared by the variants
    start = time.perf_counter()
    for k, (scene, new, instruction) in enumerate(make_pairs(args.pairs)):
        source = scene_frames(scene)
        ceiling.append(psnr_outside(decode_latents(pipe, encode_video(pipe, source)), source))
        plan = plan_edit(source, instruction, backend="toy")
        for name in names:
            t = time.perf_counter()
            out, mask, raw = run_variant(pipe, seg, base, name, source, plan, cache.name)
            seconds[name].append(time.perf_counter() - t)
            results[name].append(evaluate(out, source, scene, new, mask, seg, raw=raw))
        print(f"pair {k + 1}/{args.pairs} ({time.perf_counter() - start:.0f} s): {instruction!r} on "
              f"{scene.caption!r}", flush=True)

    print(f"\nDynVFX on the toy model: {args.pairs} held-out pairs, {base.num_inference_steps} steps, guidance "
          f"{base.guidance_scale}, strengths {list(base.strengths)}; success = strict judge (background, source "
          f"ball and new ball moving as asked, nothing else); [95 % intervals]\n")
    print("| variant | success | new ball right | source ball right | nothing extra | source IoU | "
          "PSNR outside (dB) | SSIM outside | PSNR outside, raw decode(x_comp) | s / edit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        rows = results[name]
        m, lo, hi = bootstrap([r["iou"] for r in rows])
        psnr, ssim, raw = (bootstrap([r[key] for r in rows])[0] for key in ("psnr", "ssim", "psnr_raw"))
        print(f"| {VARIANTS[name][0]} | {share(rows, 'success')} | {share(rows, 'new_moves')} | "
              f"{share(rows, 'source_moves')} | {share(rows, 'no_extra')} | {m:.2f} [{lo:.2f}, {hi:.2f}] | "
              f"{psnr:.1f} | {ssim:.3f} | {raw:.1f} | {np.mean(seconds[name]):.0f} |")
    print(f"\nautoencoder reconstruction PSNR of the sources (the ceiling outside the mask): {np.mean(ceiling):.1f} dB")
    print(f"total {time.perf_counter() - start:.0f} s on {torch.get_num_threads()} CPU threads")


if __name__ == "__main__":
    main()
