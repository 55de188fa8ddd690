"""DynVFX end to end, one function per stage, so a notebook cell can run them one at a time.

    frames, note = prepare_source(pipe, "video.mp4")            # [F, 3, H, W] at the model's size
    plan = plan_edit(frames, "add a red ball moving right")     # VFX assistant (dynvfx.planning)
    x_orig = encode_video(pipe, frames)                          # [1, F', C, h, w]
    inv = ddim_invert(pipe, x_orig, ...)                         # dynvfx.inversion
    src = source_anchors(pipe, frames, plan.objects_orig, segmenter, config)  # O_orig's mask, tokens, anchors
    result = refine(pipe, inv, plan.composited_caption, plan.objects_edit, segmenter, src.index, config,
                    source_caption=plan.source_caption, source_tokens=src.tokens)
    out = decode_latents(pipe, result.x_comp)

:func:`run_edit` chains these and times each stage.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

from dynvfx import anchors as anchors_mod
from dynvfx.attention import AttentionRecorder
from dynvfx.config import DynVFXConfig
from dynvfx.errors import DynVFXError
from dynvfx.inversion import Inversion, ddim_invert
from dynvfx.masks import clean_mask, dilate, pixel_to_tokens
from dynvfx.pipeline import decode_latents, encode_text, encode_video, video_spec
from dynvfx.planning.schema import VFXPlan
from dynvfx.refinement import RefinementResult, refine
from dynvfx.segmentation.base import Segmenter
from dynvfx.video import fit_to_model, load_video


def prepare_source(pipe, video: str | Path | torch.Tensor) -> tuple[torch.Tensor, str]:
    """Load (path) or take (``[F, 3, H, W]`` tensor) a video and fit it to the model; returns frames and a note."""
    spec = video_spec(pipe)
    frames = load_video(video)[0] if not isinstance(video, torch.Tensor) else video
    return fit_to_model(frames, spec.num_frames, spec.height, spec.width, spec.temporal_compression)


class SourceAnchors(NamedTuple):
    """O_orig in the source and the anchors drawn from it (:func:`source_anchors`)."""

    mask: torch.Tensor  #: O_orig's pixel mask ``[F, 1, H, W]`` bool
    tokens: torch.Tensor  #: O_orig on the token grid ``[F', h', w']`` bool (the per-call draws' token mask)
    grid: torch.Tensor  #: the first draw's anchors ``[F', h', w']`` bool
    index: torch.Tensor | None  #: their indices ``[A]`` (None if the mode is "off")


def source_anchors(pipe, frames: torch.Tensor, objects_orig: list[str], segmenter: Segmenter,
                   config: DynVFXConfig) -> SourceAnchors:
    """Segment O_orig in the source, put it on the token grid and draw the anchors (``config.generator()``)."""
    spec = video_spec(pipe)
    if objects_orig:
        seg = segmenter.segment(frames, list(objects_orig))
        seg.warn_missing()
        mask = dilate(seg.union, config.source_mask_dilate_radius)
    else:
        mask = torch.zeros(frames.shape[0], 1, *frames.shape[2:], dtype=torch.bool)
    tokens = pixel_to_tokens(mask, spec, config.anchor_token_threshold)
    grid = anchors_mod.anchor_grid(tokens, config.attention_mode, config.fg_keep, config.bg_keep, config.generator())
    index = None if config.attention_mode == "off" else anchors_mod.anchor_index(grid)
    return SourceAnchors(mask, tokens, grid, index)


@dataclasses.dataclass
class EditResult:
    """Everything a run produced. Frames are ``[F, 3, H, W]`` in [0, 1]; masks ``[F, 1, H, W]`` bool."""

    source: torch.Tensor
    frames: torch.Tensor  # the final frames: ``decoded`` composited per ``config.composite``
    decoded: torch.Tensor  # decode(x_comp), the paper's raw output
    reconstruction: torch.Tensor  # decode(x_orig), the model's own reconstruction of the source
    plan: VFXPlan
    config: DynVFXConfig
    source_mask: torch.Tensor
    anchor_grid: torch.Tensor
    inversion: Inversion
    refinement: RefinementResult
    seconds: dict[str, float]

    @property
    def edit_mask(self) -> torch.Tensor:
        return self.refinement.mask


class _Timer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[stage] = timer.seconds.get(stage, 0.0) + time.perf_counter() - self.t

        return _Stage()


def check_plan(plan: VFXPlan) -> None:
    """What an edit needs of a plan beyond its schema: an O_edit to segment and a P_comp to sample."""
    if not plan.objects_edit:
        raise DynVFXError("the plan has no new object (O_edit is empty): nothing to segment during refinement")
    if not plan.composited_caption.strip():
        raise DynVFXError("the plan's composited caption (P_comp) is empty")


def run_edit(pipe, frames: torch.Tensor, plan: VFXPlan, segmenter: Segmenter,
             config: DynVFXConfig = DynVFXConfig(), cache_dir: str | Path | None = None,
             callback=None, progress: bool = True, recorder: AttentionRecorder | None = None) -> EditResult:
    """Inversion, anchors, refinement and decoding for ``frames`` (already fitted) and a reviewed ``plan``.

    The source branch reads ``plan.source_caption``; per-call anchors are drawn from the O_orig token mask;
    ``recorder`` (optional) records attention during the refinement (see :func:`refine`).
    """
    check_plan(plan)
    timer = _Timer()
    with timer("encode"):
        x_orig = encode_video(pipe, frames)
    with timer("inversion"):
        inv = ddim_invert(pipe, x_orig, config.inversion_prompt, config.num_inference_steps, config.inversion_steps,
                          cache_dir=cache_dir, progress=progress)
    with timer("anchors"):
        src = source_anchors(pipe, frames, plan.objects_orig, segmenter, config)
    with timer("refinement"):
        result = refine(pipe, inv, plan.composited_caption, plan.objects_edit, segmenter, src.index, config,
                        callback=callback, progress=progress, source_caption=plan.source_caption,
                        source_tokens=src.tokens, recorder=recorder)
    if not any(it.found for it in result.iterations):
        warnings.warn(f"O_edit {plan.objects_edit} was never found: the output is the source's reconstruction",
                      stacklevel=2)
    with timer("decode"):
        recon = decode_latents(pipe, result.x_orig)
        decoded = decode_latents(pipe, result.x_comp)
        out = composite(decoded, result.mask, recon, frames, config.composite)
    return EditResult(frames, out, decoded, recon, plan, config, src.mask, src.grid, inv, result, timer.seconds)


def sdedit(pipe, frames: torch.Tensor, caption: str, strength: float, config: DynVFXConfig = DynVFXConfig(),
           progress: bool = True) -> torch.Tensor:
    """The SDEdit baseline: noise the source latents to ``strength`` and denoise with ``caption`` (no anchors,
    no residual, no mask). Returns frames ``[F, 3, H, W]``."""
    from dynvfx.sampling import add_noise, denoise, sampling_timesteps, start_index

    x_orig = encode_video(pipe, frames)
    timesteps = sampling_timesteps(pipe, config.num_inference_steps)
    i0 = start_index(len(timesteps), strength)
    x = add_noise(pipe, x_orig, int(timesteps[i0]), config.generator())
    x = denoise(pipe, x, timesteps[i0:], encode_text(pipe, [caption]), encode_text(pipe, [config.negative_prompt]),
                config.guidance_scale, progress=progress, desc=f"SDEdit {strength}")
    return decode_latents(pipe, x)


def composite(decoded: torch.Tensor, mask: torch.Tensor, reconstruction: torch.Tensor, source: torch.Tensor,
              how: str = "reconstruction") -> torch.Tensor:
    """Final frames ``[F, 3, H, W]``: ``decoded`` inside ``mask [F, 1, H, W]``, and outside it ``decoded``
    (``how="latent"``), the model's ``reconstruction`` or the ``source`` frames."""
    if how == "latent":
        return decoded
    base = {"reconstruction": reconstruction, "source": source}.get(how)
    if base is None:
        raise ValueError(f"composite must be 'latent', 'reconstruction' or 'source', not {how!r}")
    m = mask.float()
    return m * decoded + (1 - m) * base


class VariantOutput(NamedTuple):
    """One variant's edit (:func:`edit_variant`)."""

    frames: torch.Tensor  #: the output ``[F, 3, H, W]``
    mask: torch.Tensor  #: O_edit's mask ``[F, 1, H, W]``
    raw: torch.Tensor  #: decode(x_comp) ``[F, 3, H, W]``; for SDEdit the output itself
    coverage: list[float] | None  #: per pass, the share of x_hat's frames with O_edit (None for SDEdit)


def edit_variant(pipe, frames: torch.Tensor, plan: VFXPlan, segmenter: Segmenter, config: DynVFXConfig,
                 changes: dict | float, cache_dir: str | Path | None = None) -> VariantOutput:
    """One variant of the edit of ``frames`` ``[F, 3, H, W]``, for ablations: ``changes`` is a dict of config
    fields for :func:`run_edit`, or a float, an SDEdit strength (the O_edit mask is then segmented in its output).
    """
    if isinstance(changes, dict):
        res = run_edit(pipe, frames, plan, segmenter, config.replace(**changes), cache_dir=cache_dir, progress=False)
        return VariantOutput(res.frames, res.edit_mask, res.decoded, res.refinement.coverage)
    video = sdedit(pipe, frames, plan.composited_caption, float(changes), config, progress=False)
    found = segmenter.segment(video, plan.objects_edit).union
    return VariantOutput(video, clean_mask(found, config.mask_open_radius, dilate_radius=config.mask_dilate_radius),
                         video, None)
