"""Can the toy transformer draw shape at all? A capacity check behind the toy model's shape failure.

Takes N single-object training scenes (captions the model saw in training), samples each caption and checks the
object's shape with the toy analysis; then fine-tunes a copy of the transformer and text encoder on just those N
videos (the training script's v-prediction loss) and samples the same captions again. If shape comes right on a
small set, the architecture and the autoencoder can draw it, and what the shipped model lacks is capacity or
compute for the whole world (8192 videos with continuous positions and sizes); if it does not, the cause is
structural. Nothing is saved: the shipped weights stay as they are.

    python benchmarks/toy_shape_capacity.py [--model toy] [--videos 48] [--steps 800] [--threads 1]
"""

from __future__ import annotations

import argparse
import collections
import time

import torch
from tqdm.auto import tqdm

from dynvfx.pipeline import encode_video, generate, load_pipeline, rotary_embeddings
from dynvfx.toy import analysis, train, world
from dynvfx.toy.examples import scene_frames
from toy_model_quality import judge


def single_object_scenes(n: int) -> list[world.Scene]:
    """The first ``n`` one-object scenes of the training set."""
    out, i = [], 0
    while len(out) < n:
        scene = train.training_scene(i)
        if len(scene.objects) == 1:
            out.append(scene)
        i += 1
    return out


def check_shapes(pipe, scenes: list[world.Scene]) -> tuple[float, collections.Counter]:
    """Share of ``scenes`` whose caption's colour+shape is drawn, and a (asked, drawn) shape confusion count."""
    hits, confusion = [], collections.Counter()
    for i, scene in enumerate(tqdm(scenes, desc="sample", leave=False)):
        frames = generate(pipe, scene.caption, seed=i)
        hits.append(judge(frames, scene)["present0"])
        want = scene.objects[0]
        drawn = [o.shape for o in analysis.detect_objects(frames) if o.colour == want.colour]
        confusion[(want.shape, drawn[0] if drawn else "none")] += 1
    return sum(hits) / len(hits), confusion


def fine_tune(pipe, scenes: list[world.Scene], steps: int, lr: float, batch: int = 24) -> float:
    """Fine-tune ``pipe``'s transformer and text encoder in place on ``scenes`` with the training script's loss
    (:func:`dynvfx.toy.train.batch_loss`, 10 % caption dropout); returns the final running loss."""
    with torch.no_grad():
        x0 = torch.cat([encode_video(pipe, scene_frames(s)) for s in scenes])  # [N, F', C, h, w]
    ids, empty = train.caption_ids(pipe.tokenizer, [s.caption for s in scenes])
    rope = rotary_embeddings(pipe, x0)
    alphas = pipe.scheduler.alphas_cumprod.float()
    nets = torch.nn.ModuleDict({"transformer": pipe.transformer, "text_encoder": pipe.text_encoder}).train()
    opt = torch.optim.AdamW(nets.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    running = None
    for step in (bar := tqdm(range(steps), desc="fine-tune")):
        g = torch.Generator().manual_seed(step)
        loss = train.batch_loss(nets, g, x0, ids, empty, batch, 0.1, alphas, rope)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        bar.set_postfix(loss=f"{running:.4f}")
    nets.eval()
    return running


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="toy")
    p.add_argument("--videos", type=int, default=48)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    scenes = single_object_scenes(args.videos)
    t0 = time.perf_counter()
    before, conf_before = check_shapes(pipe, scenes)
    loss = fine_tune(pipe, scenes, args.steps, args.lr)
    after, conf_after = check_shapes(pipe, scenes)
    print(f"\n{args.videos} single-object training captions; fine-tuned {args.steps} steps on those videos only "
          f"(final loss {loss:.4f}); {time.perf_counter() - t0:.0f} s\n")
    print("| asked shape | drawn as asked, shipped model | drawn as asked, after fine-tuning |")
    print("|---|---|---|")
    for shape in world.SHAPES:
        n = sum(v for (want, _), v in conf_before.items() if want == shape)
        print(f"| {shape} | {conf_before[(shape, shape)]}/{n} | {conf_after[(shape, shape)]}/{n} |")
    print(f"| colour+shape present | {before:.0%} | {after:.0%} |")
    print(f"\nratio after/before: {after / max(before, 1e-9):.2f}")
    print("shipped model, (asked, drawn):", dict(sorted(conf_before.items())))
    print("fine-tuned,    (asked, drawn):", dict(sorted(conf_after.items())))


if __name__ == "__main__":
    main()
