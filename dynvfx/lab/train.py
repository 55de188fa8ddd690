"""Train the toy text-to-video model: ``python -m dynvfx.lab.train`` (CPU; ``--device cuda`` for a GPU).

Three resumable stages, each checkpointed in ``--workdir`` (outside git):
1. ``vae``: the ``AutoencoderKLCogVideoX`` on random 9-frame 32x32 crops of toy videos (MSE + a light KL);
   then its ``scaling_factor`` is set to 1 / std of the latents, as Stable Diffusion did. A fine-tune
   (``--init-from``) copies the loaded one; with ``--decoder-steps`` it trains its decoder alone (the encoder, and
   so the latents the transformer learnt, unchanged) on crops of which ``--box-share`` show the box.
2. ``latents``: encode ``--videos`` toy training videos (held-out combinations excluded; ``--box-share`` of them
   with the box) once (rendered by
   ``--workers`` processes, encoded on ``--device``).
3. ``dit``: the transformer and the T5 text encoder together, v-prediction MSE on uniform timesteps (with
   ``--high-noise-share``, that share of each batch on the noisiest ones),
   10 % empty captions (for classifier-free guidance; with ``--background-dropout``, that share without their
   background phrase; with ``--binding-weight``, a ranking term against the caption with the two balls' motions
   exchanged; with ``--text-binding-weight``, a linear probe that must read from the text states which ball each
   colour and motion word belongs to; ``--rebind-text-steps`` first re-initialises a loaded bag-of-words text
   encoder's attention for that), AdamW with warm-up and cosine decay, EMA weights.

The EMA weights are exported with ``save_pretrained`` to ``--out`` (default ``data/models/toy``) at every
checkpoint, with the loss log and the time spent. Stop at any moment (or with ``--max-minutes``) and run the
same command again to resume.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dynvfx.paths import TOY_MODEL_DIR
from dynvfx.pipeline import rotary_embeddings
from dynvfx.toy import model as toy_model
from dynvfx.toy import world
from dynvfx.toy.text import build_tokenizer, extend_embeddings, write_prompt_vocabulary

DEFAULT_WORKDIR = Path(os.environ.get("DYNVFX_TRAIN_DIR", Path.home() / ".cache" / "dynvfx" / "toy-train"))
DEFAULT_OUT = TOY_MODEL_DIR
VIDEO_SEED_BASE = 1_000_000  # training video i is sample_scene(VIDEO_SEED_BASE + i)


CROSSING_SHARE = 0.8  # of the box scenes, those in which a ball crosses the box


def training_scene(i: int, two_object_share: float = 0.5, box_share: float = 0.0) -> world.Scene:
    """Training video ``i``: two objects with probability ``two_object_share``, the box with probability
    ``box_share`` (a ball crossing it in ``CROSSING_SHARE`` of those), held-out combinations excluded."""
    n = 2 if np.random.default_rng(VIDEO_SEED_BASE + i).random() < two_object_share else 1
    box_draw = np.random.default_rng((VIDEO_SEED_BASE + i, 1)).random(2)  # apart from the draws of box-free scenes
    if box_draw[0] < box_share:
        return world.sample_box_scene(VIDEO_SEED_BASE + i, n_objects=n, held_out="exclude",
                                      crossing=bool(box_draw[1] < CROSSING_SHARE))
    return world.sample_scene(VIDEO_SEED_BASE + i, n_objects=n, held_out="exclude")


def random_crop(rng: np.random.Generator, video: np.ndarray) -> torch.Tensor:
    """A random 9-frame 32x32 crop of a rendered video, in the autoencoder's layout (what its training sees)."""
    f0, y0, x0 = rng.integers(0, world.FRAMES - 8), *rng.integers(0, world.SIZE - 32 + 1, size=2)
    return to_model_video(video[f0:f0 + 9, y0:y0 + 32, x0:x0 + 32])


def to_model_video(video: np.ndarray) -> torch.Tensor:
    """``[F, H, W, 3]`` in [0, 1] -> ``[3, F, H, W]`` in [-1, 1], the autoencoder's input layout."""
    return torch.from_numpy(video).permute(3, 0, 1, 2) * 2 - 1


class State:
    """Progress and wall-clock seconds per stage, kept in ``workdir/state.json``."""

    def __init__(self, workdir: Path):
        self.path = workdir / "state.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"seconds": {}, "done": []}

    def add_time(self, stage: str, seconds: float) -> None:
        self.data["seconds"][stage] = self.data["seconds"].get(stage, 0.0) + seconds

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class Deadline:
    def __init__(self, minutes: float | None):
        self.end = time.time() + minutes * 60 if minutes else math.inf

    def passed(self) -> bool:
        return time.time() > self.end


# ---------------------------------------------------------------- stage 1: autoencoder
def train_vae(args, state: State, deadline: Deadline) -> bool:
    ckpt = args.workdir / "vae.pt"
    source = args.init_from or (args.out if args.warm_start else None)
    if source and not ckpt.exists() and (source / "vae" / "config.json").exists():
        shutil.copytree(source / "vae", args.workdir / "vae", dirs_exist_ok=True)
        print(f"the autoencoder comes from {source / 'vae'}")
        if args.decoder_steps:
            state.data["decoder_mse"] = train_decoder(args, state)
        state.data["done"].append("vae")
        state.save()
        return True
    vae = toy_model.build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    step = 0
    if ckpt.exists():
        c = torch.load(ckpt, weights_only=False)
        vae.load_state_dict(c["model"]), opt.load_state_dict(c["opt"])
        step = c["step"]
    rng = np.random.default_rng(args.seed + step)
    bar = tqdm(total=args.vae_steps, initial=step, desc="vae")
    t0 = time.time()
    while step < args.vae_steps and not deadline.passed():
        clips = []
        for _ in range(args.vae_batch):
            clips.append(random_crop(rng, world.render(world.sample_scene(rng, held_out="any"))[0]))
        x = torch.stack(clips)
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / args.vae_steps))
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample()).sample
        kl = 0.5 * (post.mean**2 + post.var - 1 - post.logvar).mean()
        mse = (recon - x).pow(2).mean()
        loss = mse + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(mse=f"{mse.item():.4f}", kl=f"{kl.item():.2f}")
        if step % 100 == 0 or step == args.vae_steps:
            _atomic_save({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step}, ckpt)
            state.add_time("vae", time.time() - t0)
            t0 = time.time()
            state.save()
    bar.close()
    state.add_time("vae", time.time() - t0)
    if step < args.vae_steps:
        return False
    # Scale latents to unit variance, measured on fresh videos.
    with torch.no_grad():
        vids = torch.stack([to_model_video(world.render(world.sample_scene(s, held_out="any"))[0]) for s in range(64)])
        std = vae.encode(vids).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    vae.save_pretrained(args.workdir / "vae")
    state.data["done"].append("vae")
    state.data["vae_final_mse"] = float(mse.item())
    state.save()
    return True


def train_decoder(args, state: State) -> dict:
    """Fine-tune the copied autoencoder's decoder alone for ``--decoder-steps`` on 9-frame 32x32 crops, a
    ``--box-share`` of them from box scenes; the encoder stays as it is, so the latents keep their meaning. Returns
    the reconstruction error (mean absolute, in [0, 1] units) on box pixels and on all pixels, before and after."""
    from diffusers import AutoencoderKLCogVideoX

    t0 = time.time()
    vae = AutoencoderKLCogVideoX.from_pretrained(args.workdir / "vae")
    vae.encoder.requires_grad_(False)
    rng = np.random.default_rng(args.seed)

    def scene(rng) -> world.Scene:
        seed = int(rng.integers(2**31))
        return world.sample_box_scene(seed, held_out="any") if rng.random() < args.box_share \
            else world.sample_scene(seed, held_out="any")

    def error() -> dict:
        videos = [world.render(world.sample_box_scene(s, held_out="any", background=bg))[0]
                  for s in range(2) for bg in world.BACKGROUNDS]
        x = torch.stack([to_model_video(v) for v in videos])
        with torch.no_grad():
            recon = vae.decode(vae.encode(x).latent_dist.mean).sample
        err = ((recon - x).abs() / 2).mean(1)  # [B, F, H, W]
        return {"box": round(err[..., torch.from_numpy(world.box_mask())].mean().item(), 4),
                "all": round(err.mean().item(), 4)}

    before = error()
    opt = torch.optim.AdamW([p for p in vae.decoder.parameters()], lr=3e-4, weight_decay=0.0)
    for _ in tqdm(range(args.decoder_steps), desc="decoder"):
        clips = []
        for _ in range(args.vae_batch):
            clips.append(random_crop(rng, world.render(scene(rng))[0]))
        x = torch.stack(clips)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
        loss = (vae.decode(z).sample - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    vae.save_pretrained(args.workdir / "vae")
    state.add_time("decoder", time.time() - t0)
    return {"before": before, "after": error()}


# ---------------------------------------------------------------- stage 2: latents
def _render_training_video(args: tuple[int, float, float]) -> tuple[np.ndarray, str]:
    """Training video ``i`` rendered, ``[F, H, W, 3]``, and its caption (a top-level function, so a process pool can
    run it)."""
    scene = training_scene(*args)
    return world.render(scene)[0], scene.caption


def encode_videos(args, state: State, deadline: Deadline) -> bool:
    import multiprocessing

    from diffusers import AutoencoderKLCogVideoX

    chunk = 256
    n_chunks = math.ceil(args.videos / chunk)
    # the pool is made before the autoencoder touches the GPU: its forked workers only render (numpy)
    pool = multiprocessing.get_context("fork").Pool(args.workers) if args.workers > 1 else None
    device = torch.device(args.device)
    vae = AutoencoderKLCogVideoX.from_pretrained(args.workdir / "vae").eval().to(device)
    try:
        for k in tqdm(range(n_chunks), desc="encode"):
            path = args.workdir / f"latents_{k:04d}.pt"
            if path.exists():
                continue
            if deadline.passed():
                return False
            t0 = time.time()
            jobs = [(i, args.two_object_share, args.box_share) for i in range(k * chunk, min((k + 1) * chunk, args.videos))]
            rendered = pool.map(_render_training_video, jobs, chunksize=8) if pool else map(_render_training_video, jobs)
            videos, captions = zip(*rendered)
            x_all = torch.stack([to_model_video(v) for v in videos])  # [B, 3, F, H, W]
            lat = []
            with torch.no_grad():
                for j in range(0, len(x_all), 32):
                    x = x_all[j:j + 32].to(device)
                    z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor  # [B, C, F, h, w]
                    lat.append(z.permute(0, 2, 1, 3, 4).to(torch.float16).cpu())  # [B, F, C, h, w]
            _atomic_save({"latents": torch.cat(lat), "captions": list(captions)}, path)
            state.add_time("latents", time.time() - t0)
            state.save()
    finally:
        if pool:
            pool.close()
    state.data["done"].append("latents")
    state.save()
    return True


# ---------------------------------------------------------------- stage 3: transformer + text encoder
def _load_latents(workdir: Path, n: int) -> tuple[torch.Tensor, list[str]]:
    lats, caps = [], []
    for path in sorted(workdir.glob("latents_*.pt")):
        c = torch.load(path, weights_only=False)
        lats.append(c["latents"])
        caps += c["captions"]
    return torch.cat(lats)[:n], caps[:n]


class Ema:
    """Exponential moving average of a module's parameters (decay warms up from 0)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.module.parameters(), module.parameters()):
            e.lerp_(p, 1 - d)


def caption_ids(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``[N, L]`` of ``captions`` and ``[L]`` of the empty caption (for caption dropout)."""
    ids = tokenizer(captions + [""], padding="max_length", max_length=toy_model.MAX_TEXT_TOKENS, truncation=True,
                    return_tensors="pt").input_ids
    return ids[:-1], ids[-1]


def binding_labels(caption: str) -> list[int]:
    """Per token of a toy caption (one per word, then ``</s>``, padded to ``MAX_TEXT_TOKENS``), what a linear probe
    on the text encoder's output must read there to know which ball each word belongs to: at a ball's colour word
    its motion (``MOTIONS`` index), at its motion word ("left", ..., "bounces") ``len(MOTIONS)`` + its colour
    (``COLOURS`` index); -100 (ignored) elsewhere (positions from :func:`world.parse_caption`). A bag-of-words
    encoder can only guess these in two-ball captions."""
    labels = [-100] * toy_model.MAX_TEXT_TOKENS
    if not caption:  # the empty caption (caption dropout) names no ball
        return labels
    for clause in world.parse_caption(caption)[0]:
        labels[clause.colour_at] = world.MOTIONS.index(clause.motion)
        labels[clause.motion_at] = len(world.MOTIONS) + list(world.COLOURS).index(clause.colour)
    return labels


BINDING_CLASSES = len(world.MOTIONS) + len(world.COLOURS)  # the probe's outputs


def binding_probe_loss(probe: torch.nn.Module, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a linear ``probe`` reading :func:`binding_labels` ``[B, L]`` from text states ``[B, L, D]``."""
    return torch.nn.functional.cross_entropy(probe(emb).flatten(0, 1), labels.flatten(), ignore_index=-100)


def rebind_text_encoder(text_encoder, probe: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor,
                        steps: int, keep_weight: float = 100.0, batch: int = 64, lr: float = 1e-3,
                        seed: int = 0) -> dict:
    """Make a bag-of-words text encoder carry which ball each word belongs to, before the transformer trains on it.

    A trained toy T5 attends by word content, saturated, so its states ignore word order and gradients cannot
    reach its relative-position bias. This re-initialises its query and key projections (small: near-uniform
    attention, where position matters), then trains the encoder and ``probe`` for ``steps`` text-only steps on
    the probe's cross-entropy plus ``keep_weight`` x the relative squared distance of its states ``[N, L, D]``
    to the loaded ones (so the transformer reading them still draws what it drew). Returns the final probe
    accuracy and relative state distance over ``ids`` ``[N, L]``.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ref = text_encoder(ids)[0]
    scale = ref.pow(2).mean()
    for block in text_encoder.encoder.block:
        attention = block.layer[0].SelfAttention
        for proj in (attention.q, attention.k):
            proj.weight.data.copy_(torch.randn(proj.weight.shape, generator=g) * 0.02)
    opt = torch.optim.Adam([*text_encoder.parameters(), *probe.parameters()], lr=lr)
    for _ in tqdm(range(steps), desc="rebind text"):
        idx = torch.randint(0, len(ids), (batch,), generator=g)
        emb = text_encoder(ids[idx])[0]
        loss = binding_probe_loss(probe, emb, labels[idx]) + keep_weight * (emb - ref[idx]).pow(2).mean() / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        emb = text_encoder(ids)[0]
        read, known = probe(emb).argmax(-1), labels >= 0
        return {"probe_accuracy": (read[known] == labels[known]).float().mean().item(),
                "state_change": ((emb - ref).norm() / ref.norm()).item()}


def batch_loss(nets: torch.nn.ModuleDict, g: torch.Generator, latents: torch.Tensor, ids: torch.Tensor,
               empty_ids: torch.Tensor, batch: int, caption_dropout: float, alphas: torch.Tensor,
               rope, high_noise_share: float = 0.0, high_noise_from: int = 500,
               bare_ids: torch.Tensor | None = None, background_dropout: float = 0.0,
               swapped_ids: torch.Tensor | None = None, binding_weight: float = 0.0,
               binding_margin: float = 0.1, labels: torch.Tensor | None = None,
               text_binding_weight: float = 0.0) -> torch.Tensor:
    """The transformer's v-prediction MSE on one random batch drawn with ``g``.

    Args:
        nets: ``{"transformer", "text_encoder"}``; latents: clean latents ``[N, F', C, h, w]``; ids, empty_ids:
        from :func:`caption_ids`; caption_dropout: share of captions replaced by the empty one; alphas: the
        scheduler's ``alphas_cumprod`` ``[T]`` (timesteps are uniform over it); rope: rotary embeddings or None;
        high_noise_share: share of the batch whose timestep is drawn from ``[high_noise_from, T)`` instead (the
        noisy steps where the layout, and so which ball moves where, is decided: the caption matters most there);
        bare_ids: the captions without their background (``world.drop_background``), used for a
        ``background_dropout`` share of the batch (so each ball's motion is learnt from its own clause, apart
        from the background it was seen on);
        swapped_ids: per video, its caption with the two balls' motions exchanged (``world.exchanged_motions``),
        or a row of -1 where there is none; binding_weight: weight of a ranking term on those rows (kept whole,
        not dropped): the exchanged caption's MSE must exceed the true caption's by ``binding_margin`` (relative),
        so the text side has to carry which ball each motion belongs to;
        labels: :func:`binding_labels` per video ``[N, L]``; text_binding_weight: weight of
        :func:`binding_probe_loss` through ``nets["binding_probe"]`` on the captions as used (none for dropped ones).
    """
    device = latents.device  # the draws are made on the CPU with ``g`` (same bytes on every device)
    idx = torch.randint(0, len(latents), (batch,), generator=g)
    x0 = latents[idx.to(device)].float()
    text = ids[idx].clone()
    whole = torch.ones(batch, dtype=torch.bool)
    if background_dropout > 0:
        bare = torch.rand(batch, generator=g) < background_dropout
        text[bare] = bare_ids[idx][bare]
        whole &= ~bare
    dropped = torch.rand(batch, generator=g) < caption_dropout
    text[dropped] = empty_ids
    whole &= ~dropped
    t = torch.randint(0, len(alphas), (batch,), generator=g)
    if high_noise_share > 0:
        k = round(high_noise_share * batch)
        t[:k] = torch.randint(high_noise_from, len(alphas), (k,), generator=g)
    noise = torch.randn(x0.shape, generator=g).to(device)
    text, t = text.to(device), t.to(device)
    a = alphas[t].sqrt().view(-1, 1, 1, 1, 1)
    s = (1 - alphas[t]).sqrt().view(-1, 1, 1, 1, 1)
    x_t, v = a * x0 + s * noise, a * noise - s * x0
    emb = nets["text_encoder"](text)[0]
    pred = nets["transformer"](hidden_states=x_t, encoder_hidden_states=emb, timestep=t,
                               image_rotary_emb=rope, return_dict=False)[0]
    per_video = (pred - v).pow(2).flatten(1).mean(1)
    loss = per_video.mean()
    if text_binding_weight > 0:
        kept = labels[idx].masked_fill(dropped[:, None], -100)  # decided on the CPU: no device sync per step
        if (kept >= 0).any():
            loss = loss + text_binding_weight * binding_probe_loss(nets["binding_probe"], emb, kept.to(device))
    if binding_weight > 0:
        rows = (whole & (swapped_ids[idx] >= 0).all(1)).nonzero().flatten()
        if len(rows):
            r = rows.to(device)
            emb_swapped = nets["text_encoder"](swapped_ids[idx][rows].to(device))[0]
            pred_swapped = nets["transformer"](hidden_states=x_t[r], encoder_hidden_states=emb_swapped,
                                               timestep=t[r], image_rotary_emb=rope, return_dict=False)[0]
            swapped = (pred_swapped - v[r]).pow(2).flatten(1).mean(1)
            gap = (swapped - per_video[r]) / per_video[r].detach().clamp_min(1e-6)
            loss = loss + binding_weight * torch.relu(binding_margin - gap).mean() * len(rows) / batch
    return loss


def last_step(args) -> int:
    """Where the transformer's training ends: ``--steps``, or ``--stop-at`` inside that schedule."""
    return min(args.steps, args.stop_at or args.steps)


def train_dit(args, state: State, deadline: Deadline) -> bool:
    from diffusers import AutoencoderKLCogVideoX

    latents, captions = _load_latents(args.workdir, args.videos)
    vae = AutoencoderKLCogVideoX.from_pretrained(args.workdir / "vae")
    pipe = toy_model.build_pipeline(vae)
    ids, empty_ids = caption_ids(pipe.tokenizer, captions)
    bare_ids = (caption_ids(pipe.tokenizer, [world.drop_background(c) for c in captions])[0]
                if args.background_dropout > 0 else None)
    swapped_ids = None
    if args.binding_weight > 0:
        exchanged = [world.exchanged_motions(c) or (world.relation_swapped(c) if args.relation_contrast else None)
                     for c in captions]
        swapped_ids = caption_ids(pipe.tokenizer, [e or "" for e in exchanged])[0]
        swapped_ids[torch.tensor([e is None for e in exchanged])] = -1
        print(f"binding term on {sum(e is not None for e in exchanged)} of {len(captions)} videos"
              f"{' (crossing balls: their relation turned round)' if args.relation_contrast else ''}")
    nets = torch.nn.ModuleDict({"transformer": pipe.transformer, "text_encoder": pipe.text_encoder})
    labels = None
    if args.text_binding_weight > 0 or args.rebind_text_steps > 0:
        labels = torch.tensor([binding_labels(c) for c in captions])
        nets["binding_probe"] = torch.nn.Linear(toy_model.TEXT_WIDTH, BINDING_CLASSES)  # training only, not exported
    opt = torch.optim.AdamW(nets.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    ema = Ema(nets, args.ema)
    ckpt = args.workdir / "dit.pt"
    step, log = 0, []
    if ckpt.exists():
        c = torch.load(ckpt, weights_only=False)
        nets.load_state_dict(c["model"]), ema.module.load_state_dict(c["ema"]), opt.load_state_dict(c["opt"])
        step, log = c["step"], c["log"]
    elif args.init_from:
        _load_exported(args.init_from, nets, ema)
        print(f"initialised from {args.init_from} (EMA weights; fresh optimizer state and schedule)")
        if args.rebind_text_steps > 0:
            every, started = torch.cat([ids, empty_ids[None]]), time.time()  # the empty caption kept too (guidance)
            state.data["rebind_text"] = rebind_text_encoder(
                nets["text_encoder"], nets["binding_probe"], every,
                torch.cat([labels, torch.full_like(labels[:1], -100)]), args.rebind_text_steps, seed=args.seed)
            state.add_time("rebind_text", time.time() - started)
            print(f"text encoder rebound: {state.data['rebind_text']}")
            ema.module.load_state_dict(nets.state_dict())
    elif args.warm_start and (args.out / "training.json").exists():
        _load_exported(args.out, nets, ema)
        step, log = _exported_progress(args.out)
        print(f"warm start from {args.out} at step {step} (EMA weights; fresh optimizer state)")
    device = torch.device(args.device)
    nets.to(device), ema.module.to(device)
    latents = latents.to(device)
    rope = rotary_embeddings(pipe, latents)
    alphas = pipe.scheduler.alphas_cumprod.float().to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    bar = tqdm(total=args.steps, initial=step, desc="dit")
    t0, running = time.time(), None
    while step < last_step(args) and not deadline.passed():
        warm = min(1.0, (step + 1) / 300)
        for grp in opt.param_groups:
            grp["lr"] = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        g = torch.Generator().manual_seed(args.seed * 7919 + step)
        with autocast:
            loss = batch_loss(nets, g, latents, ids, empty_ids, args.batch, args.caption_dropout, alphas, rope,
                              args.high_noise_share, args.high_noise_from, bare_ids, args.background_dropout,
                              swapped_ids, args.binding_weight, args.binding_margin, labels,
                              args.text_binding_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        opt.step()
        ema.update(nets, step)
        step += 1
        loss = loss.detach()  # the running mean stays on the device: reading it every step would stall the GPU
        running = loss if running is None else 0.98 * running + 0.02 * loss
        bar.update(1)
        if step % 50 == 0:
            log.append({"step": step, "loss": round(running.item(), 5), "lr": opt.param_groups[0]["lr"]})
            bar.set_postfix(loss=f"{log[-1]['loss']:.4f}")
        if step % args.checkpoint_every == 0 or step == last_step(args) or deadline.passed():
            _atomic_save({"model": nets.state_dict(), "ema": ema.module.state_dict(), "opt": opt.state_dict(),
                          "step": step, "log": log}, ckpt)
            state.add_time("dit", time.time() - t0)
            t0 = time.time()
            state.data["dit_step"] = step
            state.save()
            export(pipe, ema.module, args, state, log)
    bar.close()
    state.add_time("dit", time.time() - t0)
    state.save()
    if step >= last_step(args):
        if "dit" not in state.data["done"]:
            state.data["done"].append("dit")
        state.save()
        export(pipe, ema.module, args, state, log)
        return True
    return False


def _load_exported(out: Path, nets: torch.nn.ModuleDict, ema: Ema) -> None:
    """Load the transformer and text encoder of an exported pipeline (e.g. the committed ``data/models/toy``)."""
    from diffusers import CogVideoXTransformer3DModel
    from transformers import T5EncoderModel, T5Tokenizer

    loaded = {"transformer": CogVideoXTransformer3DModel.from_pretrained(out / "transformer"),
              "text_encoder": T5EncoderModel.from_pretrained(out / "text_encoder")}
    tokenizer = T5Tokenizer.from_pretrained(out / "tokenizer")
    if tokenizer.get_vocab() != build_tokenizer().get_vocab():  # a vocabulary grown since: keep the trained rows
        added = extend_embeddings(loaded["text_encoder"], tokenizer, build_tokenizer())
        print(f"text encoder: {len(added)} new words ({', '.join(p.lstrip(chr(0x2581)) for p in added)})")
    for name, module in loaded.items():
        nets[name].load_state_dict(module.state_dict())
        ema.module[name].load_state_dict(module.state_dict())


def _exported_progress(out: Path) -> tuple[int, list[dict]]:
    """Steps and loss log of an exported pipeline, to continue its run (``--warm-start``)."""
    rows = (out / "loss_log.csv").read_text().splitlines()[1:]
    log = [{"step": int(a), "loss": float(b), "lr": float(c)} for a, b, c in (r.split(",") for r in rows)]
    return json.loads((out / "training.json").read_text())["steps"], log


def recorded_settings(args) -> dict:
    """The options that make a run what it is (not where it keeps its files or how long this sitting lasts)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
            if k not in ("workdir", "out", "max_minutes", "init_from")}


def export(pipe, ema_nets: torch.nn.ModuleDict, args, state: State, log: list[dict]) -> None:
    """Save the pipeline with the EMA weights to ``args.out`` (``save_pretrained``), plus the training record."""
    ema_nets = copy.deepcopy(ema_nets).to("cpu")
    out = type(pipe)(tokenizer=pipe.tokenizer, text_encoder=ema_nets["text_encoder"], vae=pipe.vae,
                     transformer=ema_nets["transformer"], scheduler=pipe.scheduler)
    out.vae.register_to_config(_name_or_path="vae")  # not the training machine's folder it was loaded from
    args.out.mkdir(parents=True, exist_ok=True)
    out.save_pretrained(args.out)
    write_prompt_vocabulary(args.out)
    record = {
        "steps": state.data.get("dit_step", 0),
        "seconds": state.data["seconds"],
        "settings": recorded_settings(args),
        "vae_final_mse": state.data.get("vae_final_mse"),
        **({"rebind_text": state.data["rebind_text"]} if "rebind_text" in state.data else {}),
        **({"changes": state.data["changes"]} if "changes" in state.data else {}),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
    }
    if args.init_from:  # a fine-tune: keep the record of the run it started from
        prior = args.init_from / "training.json"
        record["init_from"] = json.loads(prior.read_text()) if prior.exists() else str(args.init_from)
    (args.out / "training.json").write_text(json.dumps(record, indent=2))
    (args.out / "loss_log.csv").write_text(
        "step,loss,lr\n" + "".join(f"{r['step']},{r['loss']},{r['lr']:.6g}\n" for r in log))


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m dynvfx.lab.train", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="checkpoints and cached latents")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the trained pipeline is saved")
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--vae-batch", type=int, default=6)
    p.add_argument("--videos", type=int, default=8192, help="training videos encoded once")
    p.add_argument("--steps", type=int, default=10000, help="transformer training steps")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="processes that render the training videos (latents stage)")
    p.add_argument("--seed", type=int, default=0,
                   help="the batch at step k is drawn from (seed, k): a run continued with --init-from and the same "
                        "seed sees the same sequence of batches (and a fresh binding probe drawn the same way)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this long")
    p.add_argument("--stop-at", type=int, default=None,
                   help="end the run at this step of the --steps schedule (which keeps its length), and export it")
    p.add_argument("--two-object-share", type=float, default=0.5, help="share of training videos with two objects")
    p.add_argument("--box-share", type=float, default=0.0, help="share of training videos (and decoder crops) with "
                                                                 "the box")
    p.add_argument("--decoder-steps", type=int, default=0,
                   help="with --init-from: fine-tune the loaded autoencoder's decoder alone for this many steps")
    p.add_argument("--high-noise-share", type=float, default=0.0,
                   help="share of each batch trained on the noisiest timesteps (>= --high-noise-from)")
    p.add_argument("--high-noise-from", type=int, default=500)
    p.add_argument("--background-dropout", type=float, default=0.0,
                   help="share of captions trained without their background phrase")
    p.add_argument("--binding-weight", type=float, default=0.0,
                   help="weight of the ranking term that makes the exchanged-motion caption predict worse")
    p.add_argument("--binding-margin", type=float, default=0.1, help="its relative margin")
    p.add_argument("--relation-contrast", action="store_true",
                   help="the ranking term also on box scenes: the caption with each crossing ball's relation turned "
                        "round (behind <-> in front of) must predict the video worse")
    p.add_argument("--text-binding-weight", type=float, default=0.0,
                   help="weight of a linear probe's cross-entropy that makes the text encoder's states say which "
                        "ball each colour and motion word belongs to (binding_labels)")
    p.add_argument("--rebind-text-steps", type=int, default=0,
                   help="with --init-from: re-initialise the text encoder's query/key projections and train it "
                        "text-only for this many steps on that probe, its states kept near the loaded ones")
    p.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast); batch and lr as given")
    p.add_argument("--init-from", type=Path, default=None,
                   help="fine-tune: start from this exported pipeline's weights (and autoencoder), step 0, "
                        "fresh schedule")
    p.add_argument("--warm-start", action="store_true",
                   help="without a checkpoint in --workdir, continue from the pipeline exported in --out")
    args = p.parse_args(argv)
    if args.rebind_text_steps and not args.init_from:
        p.error("--rebind-text-steps rebinds a loaded text encoder: give --init-from")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.workdir.mkdir(parents=True, exist_ok=True)
    state = State(args.workdir)
    settings = recorded_settings(args)
    before = state.data.get("settings")
    if before is None and "dit_step" in state.data and (args.out / "training.json").exists():  # an older state file
        before = json.loads((args.out / "training.json").read_text())["settings"]
    changed = {k: v for k, v in settings.items() if k in (before or {}) and before[k] != v
               or before is not None and k not in before and v not in (None, False, 0)}
    if changed:  # a run resumed with other settings: say from which step they hold
        state.data.setdefault("changes", []).append({"step": state.data.get("dit_step", 0), **changed})
        print(f"resumed at step {state.data.get('dit_step', 0)} with {changed}")
    state.data["settings"] = settings
    state.save()
    deadline = Deadline(args.max_minutes)
    for name, stage in (("vae", train_vae), ("latents", encode_videos), ("dit", train_dit)):
        extend = name == "dit" and state.data.get("dit_step", 0) < last_step(args)  # more steps asked for: go on
        if name in state.data["done"] and not extend:
            continue
        if not stage(args, state, deadline):
            print(f"stopped during stage {name!r}; run the same command again to resume")
            return 0
    print(f"done: {args.out} (seconds per stage: {state.data['seconds']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
