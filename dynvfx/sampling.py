"""The denoising loop shared by reconstruction, plain generation and the edit.

One transformer call per step runs, in one batch: the source branch (optional: the inverted source latent at
this timestep, which feeds the anchors' keys/values), then the unconditional and conditional edit branches.
The DDIM update itself is diffusers' ``CogVideoXDDIMScheduler.step`` (v-prediction).
"""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from dynvfx.attention import AnchorContext
from dynvfx.pipeline import execution_device, rotary_embeddings


def sampling_timesteps(pipe, num_steps: int) -> torch.Tensor:
    """The sampler's timesteps ``[num_steps]``, descending (e.g. 999, 979, ..., 19 for 50 trailing steps)."""
    pipe.scheduler.set_timesteps(num_steps)
    return pipe.scheduler.timesteps.clone().cpu()


def start_index(num_steps: int, strength: float) -> int:
    """First step of an SDEdit run at ``strength`` in (0, 1]: 1.0 starts from pure noise."""
    return min(num_steps - 1, max(0, round(num_steps * (1.0 - strength))))


def add_noise(pipe, x: torch.Tensor, timestep: int, generator: torch.Generator) -> torch.Tensor:
    """Forward-diffuse clean latents ``[B, F', C, h, w]`` to ``timestep`` with seeded noise."""
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device)
    return pipe.scheduler.add_noise(x, noise, torch.tensor([timestep]))


@torch.no_grad()
def predict_v(pipe, latents: torch.Tensor, text: torch.Tensor, timestep: int, rope) -> torch.Tensor:
    """One transformer call: latents ``[B, F', C, h, w]`` and text states ``[B, L, D]`` -> v ``[B, F', C, h, w]``."""
    tr, device = pipe.transformer, execution_device(pipe)
    t = torch.full((latents.shape[0],), int(timestep), device=device)
    out = tr(hidden_states=latents.to(device, tr.dtype), encoder_hidden_states=text.to(device, tr.dtype),
             timestep=t, image_rotary_emb=rope, return_dict=False)[0]
    return out.float()


@torch.no_grad()
def denoise(
    pipe,
    x: torch.Tensor,
    timesteps: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    source_latents: Callable[[int], torch.Tensor] | None = None,
    source_text: torch.Tensor | None = None,
    context: AnchorContext | None = None,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
    progress: bool = True,
    desc: str = "denoise",
) -> torch.Tensor:
    """Run DDIM from ``x`` (at ``timesteps[0]``) down to a clean latent.

    Args:
        x: ``[1, F', C, h, w]`` noisy latent at ``timesteps[0]``.
        timesteps: a tail of :func:`sampling_timesteps` (same ``num_inference_steps``; the scheduler must have
            been set to it).
        cond, uncond: text states ``[1, L, D]``; ``uncond`` is used when ``guidance_scale != 1``.
        source_latents: ``t -> [1, F', C, h, w]``, the source branch's latent at timestep t (e.g.
            ``Inversion.at``); with it the batch carries the source and ``context.source_index`` is set to 0.
        source_text: the source branch's text states ``[1, L, D]``.
        context: the shared :class:`AnchorContext` of installed anchor processors (its ``step`` is updated).
        callback: ``callback(step, timestep, x)`` after each step.
    Returns:
        the clean latent ``[1, F', C, h, w]`` (float32).
    """
    cfg = guidance_scale != 1.0 and uncond is not None
    rope = rotary_embeddings(pipe, x)
    x = x.float()
    texts = ([source_text] if source_latents is not None else []) + ([uncond] if cfg else []) + [cond]
    text = torch.cat(texts)
    if context is not None:
        context.source_index = 0 if source_latents is not None else None
    for i, t in enumerate(tqdm(timesteps.tolist(), desc=desc, disable=not progress, leave=False)):
        if context is not None:
            context.step = i
        lat = [source_latents(t)] if source_latents is not None else []
        lat += [x] * (2 if cfg else 1)
        v = predict_v(pipe, torch.cat(lat), text, t, rope)
        v = v[1:] if source_latents is not None else v
        v = v[:1] + guidance_scale * (v[1:] - v[:1]) if cfg else v
        x = pipe.scheduler.step(v.to(x.device), t, x, return_dict=False)[0].float()
        if callback is not None:
            callback(i, t, x)
    return x
