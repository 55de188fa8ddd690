"""DynVFX on the toy model, against the paper's ablations, on held-out (source video, instruction) pairs.

Each pair: a rendered one-object source video and an instruction to add an object whose colour-shape-motion
combination was never seen in training. For every variant it prints
- success: the new object (colour+shape, per the toy analysis of the output) is present in >= 80 % of frames;
- source IoU: the source object's mask in the output (toy segmenter) vs. its rendered ground truth;
- PSNR / SSIM outside the final edit mask, vs. the source frames, of the output as written (``composite="source"``:
  the source's pixels outside the mask, so the number is infinite unless the mask leaks) and of the raw latent output
  decode(x_comp) (the paper's output, bounded by the autoencoder);
and, for reference, the toy autoencoder's own reconstruction PSNR (the ceiling of any latent-space edit).

    python benchmarks/toy_edit.py [--pairs 20] [--variants full,no_anchor_attn,...]
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

VARIANTS = {
    "full (anchor)": dict(),
    "no AnchorExtAttn": dict(attention_mode="off"),
    "no iterative refinement": dict(strengths=(0.92,)),
    "full attention": dict(attention_mode="full"),
    "masked attention": dict(attention_mode="masked"),
    "SDEdit 0.6": "sdedit:0.6",
    "SDEdit 0.9": "sdedit:0.9",
}


def make_pairs(n: int, seed: int = 7):
    """``n`` (scene, new-object triple, instruction) with held-out new objects of another colour."""
    rng = np.random.default_rng(seed)
    held = sorted(world.HELD_OUT)
    pairs = []
    while len(pairs) < n:
        scene = world.sample_scene(rng, n_objects=1, held_out="exclude")
        new = held[rng.integers(len(held))]
        if new[0] == scene.objects[0].colour:
            continue
        verb = "that bounces" if new[2] == "bounce" else f"moving {new[2]}"
        pairs.append((scene, new, f"add a {new[0]} {new[1]} {verb}"))
    return pairs


def evaluate(out, source, scene, new, edit_mask, segmenter, raw=None) -> dict:
    """Scores of output frames ``out`` (and of the raw latent output ``raw``, if given), all ``[F, 3, H, W]``."""
    objs = analysis.detect_objects(out)
    hit = [o for o in objs if (o.colour, o.shape) == new[:2] and o.presence >= 0.8]
    gt = torch.from_numpy(world.render(scene)[1][0])[:, None]  # [F, 1, H, W]
    src = segmenter.segment(out, [scene.objects[0].phrase]).union
    return {"success": bool(hit), "iou": iou(src, gt), "psnr": psnr_outside(out, source, edit_mask),
            "ssim": ssim_outside(out, source, edit_mask)} | (
                {} if raw is None else {"psnr_raw": psnr_outside(raw, source, edit_mask)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=None, help="override num_inference_steps (and inversion steps)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    pipe = load_pipeline("toy")
    seg = get_segmenter("toy")
    base = DynVFXConfig.toy()
    if args.steps:
        base = base.replace(num_inference_steps=args.steps, inversion_steps=args.steps)
    names = args.variants.split(",")
    results = {n: [] for n in names}
    seconds = []
    ceiling = []
    cache = tempfile.TemporaryDirectory()  # one inversion per source, shared by the variants
    for k, (scene, new, instruction) in enumerate(make_pairs(args.pairs)):
        source = scene_frames(scene)
        ceiling.append(psnr_outside(decode_latents(pipe, encode_video(pipe, source)), source))
        plan = plan_edit(source, instruction, backend="toy")
        for name in names:
            v = VARIANTS[name]
            if isinstance(v, str):
                out = sdedit(pipe, source, plan.composited_caption, float(v.split(":")[1]), base, progress=False)
                found = seg.segment(out, plan.objects_edit).union
                mask = clean_mask(found, base.mask_open_radius, dilate_radius=base.mask_dilate_radius)
            else:
                t = time.perf_counter()
                res = run_edit(pipe, source, plan, seg, base.replace(**v), cache_dir=cache.name, progress=False)
                if name == names[0]:
                    seconds.append(res.seconds | {"total": time.perf_counter() - t})
                out, mask = res.frames, res.edit_mask
            raw = out if isinstance(v, str) else res.decoded
            results[name].append(evaluate(out, source, scene, new, mask, seg, raw=raw))
        print(f"pair {k + 1}/{args.pairs}: {instruction!r} on {scene.caption!r}", flush=True)

    def mean(rows, key):
        vals = [r[key] for r in rows if np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("inf")

    print(f"\nDynVFX on the toy model: {args.pairs} held-out pairs, {base.num_inference_steps} steps, "
          f"guidance {base.guidance_scale}, strengths {list(base.strengths)}\n")
    print("| variant | success | source IoU | PSNR outside (dB) | SSIM outside | PSNR outside, raw decode(x_comp) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        rows = results[name]
        print(f"| {name} | {mean(rows, 'success'):.0%} | {mean(rows, 'iou'):.2f} | {mean(rows, 'psnr'):.1f} | "
              f"{mean(rows, 'ssim'):.3f} | {mean(rows, 'psnr_raw'):.1f} |")
    print(f"\nautoencoder reconstruction PSNR of the sources (the ceiling outside the mask): {np.mean(ceiling):.1f} dB")
    if seconds:
        split = {k: np.mean([s[k] for s in seconds]) for k in seconds[0]}
        print("seconds per full edit (CPU, %d threads): " % torch.get_num_threads()
              + ", ".join(f"{k} {v:.1f}" for k, v in split.items()))


if __name__ == "__main__":
    main()
