"""Iterative residual refinement: x_comp = x_orig + x_res, sharpened over decreasing SDEdit strengths.

Each iteration: noise x_comp to the strength's timestep, denoise it with P_comp, classifier-free guidance and
Anchor Extended Attention (inside the injection window the source branch runs beside it from its inverted
latents, with the source caption as its text), decode x_hat, segment O_edit in it, and keep only the new
content: ``x_res = M * (x_hat - x_orig)`` with M the O_edit mask on the latent grid (as the authors: k-means on
the encoded mask, :func:`residual_mask`). Outside M, x_comp stays x_orig, so the decoded result there is the
model's reconstruction of the source. If O_edit is not found, x_res is left as it was (``config.missing_edit``
"keep"; "clear" sets it to zero) and a warning names the phrase.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import torch

from dynvfx.attention import AnchorContext, AttentionRecorder, anchor_attention
from dynvfx.config import DynVFXConfig, refinement_schedule
from dynvfx.inversion import Inversion
from dynvfx.masks import clean_mask, kmeans_latent_mask, to_latent_grid
from dynvfx.pipeline import decode_latents, encode_text, encode_video, execution_device, video_spec
from dynvfx.sampling import add_noise, denoise, sampling_timesteps
from dynvfx.segmentation.base import Segmenter


@dataclasses.dataclass
class Iteration:
    """One refinement iteration, kept for the notebooks.

    Attributes:
        strength, timestep: the SDEdit strength and the timestep it starts from.
        x_comp_in: ``[1, F', C, h, w]`` the composite that was noised.
        x_hat: ``[1, F', C, h, w]`` the denoised latent; frames_hat ``[F, 3, H, W]`` its decoding.
        mask: ``[F, 1, H, W]`` bool, the cleaned O_edit mask found in frames_hat.
        latent_mask: ``[F', 1, h, w]`` float, M on the latent grid.
        x_res: ``[1, F', C, h, w]`` the residual after this iteration.
        found: whether O_edit was found (if not, x_res was kept).
        scores: ``[N, F]`` the segmenter's scores per O_edit phrase and frame.
    """

    strength: float
    timestep: int
    x_comp_in: torch.Tensor
    x_hat: torch.Tensor
    frames_hat: torch.Tensor
    mask: torch.Tensor
    latent_mask: torch.Tensor
    x_res: torch.Tensor
    found: bool
    scores: torch.Tensor


@dataclasses.dataclass
class RefinementResult:
    x_orig: torch.Tensor  # [1, F', C, h, w]
    x_res: torch.Tensor  # [1, F', C, h, w]
    iterations: list[Iteration]

    @property
    def x_comp(self) -> torch.Tensor:
        return self.x_orig + self.x_res

    @property
    def coverage(self) -> list[float]:
        """Per iteration, the share of frames where O_edit was found in x_hat (0.0 where it was not found)."""
        return [it.mask.flatten(1).any(1).float().mean().item() if it.found else 0.0 for it in self.iterations]

    @property
    def mask(self) -> torch.Tensor:
        """``[F, 1, H, W]`` the O_edit mask of the last iteration that found it (empty if none did)."""
        found = [it for it in self.iterations if it.found]
        return found[-1].mask if found else torch.zeros_like(self.iterations[-1].mask)


def edit_mask(frames: torch.Tensor, objects_edit: list[str], segmenter: Segmenter, config: DynVFXConfig):
    """Segment O_edit in ``[F, 3, H, W]`` frames -> (cleaned ``[F, 1, H, W]`` mask, found?, scores ``[N, F]``)."""
    seg = segmenter.segment(frames, list(objects_edit))
    seg.warn_missing()
    mask = clean_mask(seg.union, open_radius=config.mask_open_radius, dilate_radius=config.mask_dilate_radius)
    return mask, bool(mask.any()), seg.scores


def residual_mask(pipe, mask: torch.Tensor) -> torch.Tensor:
    """M: the O_edit pixel mask ``[F, 1, H, W]`` on the latent grid, ``[F', 1, h, w]`` float in {0, 1}:
    encode the mask as a video and split its latent cells by 2-means on their features (the authors'). An empty
    mask gives zeros."""
    spec = video_spec(pipe)
    if mask.any():
        z = encode_video(pipe, mask.float().expand(-1, 3, -1, -1))  # [1, F', C, h, w]
        return kmeans_latent_mask(z[0], mask)
    return to_latent_grid(mask, spec.temporal_compression, spec.spatial_compression, reduce="max")


def refine(
    pipe,
    inversion: Inversion,
    composited_caption: str,
    objects_edit: list[str],
    segmenter: Segmenter | None,
    anchor_index: torch.Tensor | None,
    config: DynVFXConfig = DynVFXConfig(),
    callback: Callable[[int, int, int, torch.Tensor], None] | None = None,
    progress: bool = True,
    source_caption: str | None = None,
    source_tokens: torch.Tensor | None = None,
    recorder: AttentionRecorder | None = None,
) -> RefinementResult:
    """Run the refinement iterations (``config.strengths``) from x_res = 0.

    Args:
        inversion: the source's :class:`~dynvfx.inversion.Inversion` on ``config.num_inference_steps``.
        composited_caption: P_comp. objects_edit: O_edit phrases for the segmenter.
        segmenter: finds O_edit in each x_hat; None skips segmentation (x_res stays 0; for attention probes).
        anchor_index: ``[A]`` anchor tokens (see :mod:`dynvfx.anchors`), used by modes "full"/"masked" (and by
            mode "anchor" without ``source_tokens``); None or mode "off" runs no source branch.
        callback: ``callback(iteration, step, timestep, x)`` after every denoising step.
        source_caption: the source branch's text (the plan's ``source_caption``); if None, the inversion prompt
            is used, with a warning.
        source_tokens: ``[F', h', w']`` bool O_orig token mask, for anchors drawn in every call (mode "anchor");
            the draws start from ``config.generator()``, as :func:`dynvfx.edit.source_anchors`' draw does, so
            the first is that draw. If None, ``anchor_index`` is used throughout, with a warning.
        recorder: an :class:`~dynvfx.attention.AttentionRecorder` installed for the whole run; its step keys
            count denoising steps across iterations (iteration 0's steps first).
    """
    timesteps = sampling_timesteps(pipe, config.num_inference_steps)
    use_source = config.attention_mode != "off" and anchor_index is not None
    if use_source and source_caption is None:
        warnings.warn("refine: no source_caption given; the source branch reads the inversion prompt", stacklevel=2)
    text = source_caption if source_caption is not None else inversion.prompt
    cond = encode_text(pipe, [composited_caption])
    uncond = encode_text(pipe, [config.negative_prompt])
    source_text = encode_text(pipe, [text])
    generator = config.generator()
    x_orig = inversion.x_orig.to(execution_device(pipe))
    x_res = torch.zeros_like(x_orig)
    ctx = AnchorContext.from_config(config, anchor_index, source_tokens, recorder, source=use_source)
    iterations, first_step = [], 0
    with anchor_attention(pipe.transformer, ctx, list(config.anchor_blocks) if config.anchor_blocks else None):
        for k, step_plan in enumerate(refinement_schedule(config)):
            strength, i0, window = step_plan.strength, step_plan.start, step_plan.window
            x_comp = x_orig + x_res
            x = add_noise(pipe, x_comp, int(timesteps[i0]), generator)
            step_cb = (lambda i, t, x_, k=k: callback(k, i, t, x_)) if callback else None
            x_hat = denoise(pipe, x, timesteps[i0:], cond, uncond, config.guidance_scale,
                            source_latents=(lambda t: inversion.at(t).to(x_orig.device)) if use_source else None,
                            source_text=source_text, context=ctx, callback=step_cb, progress=progress,
                            desc=f"refine {k + 1}/{len(config.strengths)} (strength {strength:.2f})",
                            window=set(timesteps[window.start:window.stop].tolist()),
                            first_step=first_step)
            first_step += len(timesteps) - i0
            frames_hat = decode_latents(pipe, x_hat)
            if segmenter is None:
                mask, found, scores = torch.zeros(frames_hat.shape[0], 1, *frames_hat.shape[2:], dtype=torch.bool), \
                    False, torch.zeros(len(objects_edit), frames_hat.shape[0])
            else:
                mask, found, scores = edit_mask(frames_hat, objects_edit, segmenter, config)
            m_lat = residual_mask(pipe, mask)
            if found:
                x_res = m_lat[None].to(x_hat.device) * (x_hat - x_orig)  # [1, F', 1, h, w] broadcasts over C
            elif segmenter is not None:
                if config.missing_edit == "clear":
                    x_res = torch.zeros_like(x_orig)
                warnings.warn(f"refinement {k + 1}: O_edit {objects_edit} not found; the residual is "
                              f"{'cleared' if config.missing_edit == 'clear' else 'unchanged'}", stacklevel=2)
            iterations.append(Iteration(strength, int(timesteps[i0]), x_comp.cpu(), x_hat.cpu(), frames_hat, mask,
                                        m_lat, x_res.cpu(), found, scores))
    return RefinementResult(x_orig.cpu(), x_res.cpu(), iterations)
