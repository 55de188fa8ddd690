"""The denoising loop shared by reconstruction, plain generation and the edit.

A step outside the injection window (or without a source) is plain classifier-free guidance: one call on the
batch [unconditional, conditional]. Inside the window the source branch (the inverted source latent at this
timestep, which feeds the anchors' keys/values) runs beside the edit, laid out as in the authors' code: one call
on [conditional edit, source] with the extension, and the unconditional edit branch alone with plain attention.
The DDIM update itself is diffusers' ``CogVideoXDDIMScheduler.step`` (v-prediction).
"""

from __future__ import annotations

from typing import Callable, Collection

import torch
from tqdm.auto import tqdm

from dynvfx.attention import AnchorContext
from dynvfx.config import start_index, window_indices  # noqa: F401  (start_index: part of this stage's API)
from dynvfx.pipeline import encode_text, execution_device, rotary_embeddings, video_spec


def sampling_timesteps(pipe, num_steps: int) -> torch.Tensor:
    """The sampler's timesteps ``[num_steps]``, descending (e.g. 999, 979, ..., 19 for 50 trailing steps)."""
    pipe.scheduler.set_timesteps(num_steps)
    return pipe.scheduler.timesteps.clone().cpu()


def injection_window(timesteps: torch.Tensor, max_fraction: float, min_fraction: float) -> set[int]:
    """Timesteps of the full ``n``-step schedule ``timesteps [n]`` (descending) at which the source branch runs:
    ``timesteps[n - int(n * max_fraction) : n - int(n * min_fraction)]``, the authors' rule (n = 50, 0.9, 0.6:
    t = 899 ... 619, 15 steps). ``(1.0, 0.0)`` gives every step."""
    start, stop = window_indices(len(timesteps), max_fraction, min_fraction)
    return set(timesteps[start:stop].tolist())


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
    window: Collection[int] | None = None,
    first_step: int = 0,
) -> torch.Tensor:
    """Run DDIM from ``x`` (at ``timesteps[0]``) down to a clean latent.

    Args:
        x: ``[1, F', C, h, w]`` noisy latent at ``timesteps[0]``.
        timesteps: a tail of :func:`sampling_timesteps` (same ``num_inference_steps``; the scheduler must have
            been set to it).
        cond, uncond: text states ``[1, L, D]``; ``uncond`` is used when ``guidance_scale != 1``.
        source_latents: ``t -> [1, F', C, h, w]``, the source branch's latent at timestep t (e.g.
            ``Inversion.at``); with it the batch carries the source and ``context.source_index`` is set to 0.
        source_text: the source branch's text states ``[1, L, D]`` (the authors: the source caption).
        context: the shared :class:`AnchorContext` of installed anchor processors (its ``step`` and
            ``source_index`` are updated).
        callback: ``callback(step, timestep, x)`` after each step.
        window: timesteps at which the source branch runs (:func:`injection_window`); None = every step.
        first_step: ``context.step`` of the first step (the recorder's step keys continue across calls).
    Returns:
        the clean latent ``[1, F', C, h, w]`` (float32).
    """
    cfg = guidance_scale != 1.0 and uncond is not None
    rope = rotary_embeddings(pipe, x)
    x = x.float()
    plain_text = torch.cat([uncond, cond]) if cfg else cond

    def guide(v_uncond, v_cond):
        return v_uncond + guidance_scale * (v_cond - v_uncond) if cfg else v_cond

    def set_source(index):
        if context is not None:
            context.source_index = index

    for i, t in enumerate(tqdm(timesteps.tolist(), desc=desc, disable=not progress, leave=False)):
        if context is not None:
            context.step = first_step + i
        inject = source_latents is not None and (window is None or t in window)
        if not inject:  # plain CFG: [uncond, cond], no source latent, no source forward
            set_source(None)
            v = predict_v(pipe, torch.cat([x] * (2 if cfg else 1)), plain_text, t, rope)
            v = guide(v[:1], v[1:]) if cfg else v
        else:  # the authors' layout: uncond alone (plain attention), then [cond, source] with the extension
            v_uncond = None
            if cfg:
                set_source(None)
                if context is not None:
                    context.recording = False
                v_uncond = predict_v(pipe, x, uncond, t, rope)
                if context is not None:
                    context.recording = True
            set_source(1)
            src = source_latents(t).to(x.device)
            v_cond = predict_v(pipe, torch.cat([x, src]), torch.cat([cond, source_text]), t, rope)[:1]
            v = guide(v_uncond, v_cond)
        x = pipe.scheduler.step(v.to(x.device), t, x, return_dict=False)[0].float()
        if callback is not None:
            callback(i, t, x)
    return x


def initial_noise(pipe, seed: int = 0) -> torch.Tensor:
    """Seeded Gaussian latents ``[1, F', C, h, w]`` at the model's native size (on the CPU)."""
    spec, tc = video_spec(pipe), pipe.transformer.config
    shape = (1, spec.latent_frames, tc.in_channels, tc.sample_height, tc.sample_width)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * pipe.scheduler.init_noise_sigma


@torch.no_grad()
def predicted_x0(pipe, x_t: torch.Tensor, timestep: int, prompt: str = "") -> torch.Tensor:
    """The model's clean estimate ``x0 = sqrt(a) x_t - sqrt(1 - a) v`` for latents ``x_t [1, F', C, h, w]``."""
    a = pipe.scheduler.alphas_cumprod[int(timestep)].float()
    v = predict_v(pipe, x_t, encode_text(pipe, [prompt]), timestep, rotary_embeddings(pipe, x_t)).cpu()
    return a.sqrt() * x_t.cpu() - (1 - a).sqrt() * v
