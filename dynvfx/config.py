"""All of DynVFX's hyper-parameters in one dataclass, with the paper's defaults.

``DynVFXConfig()`` holds the published defaults (CogVideoX-5B, 720x480, 49 frames). ``DynVFXConfig.toy()`` holds
the values used with the toy model, where they differ (fewer inversion steps and smaller mask radii, for 48x48
frames). Any field can be overridden: ``DynVFXConfig.toy().replace(guidance_scale=4.0)``, or from YAML.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from dynvfx.paths import is_toy_model

#: SDEdit strengths of the paper's refinement iterations: timesteps 919, 899, 779, 679, 579, 479, 379 of 1000.
PAPER_STRENGTHS = (0.92, 0.90, 0.78, 0.68, 0.58, 0.48, 0.38)
#: Named run presets (:meth:`DynVFXConfig.preset`); their costs: ``python -m dynvfx estimate``.
PRESETS = ("paper", "classroom", "toy")
#: What the extended attention lets the edit's queries see of the source (``DynVFXConfig.attention_mode``):
#: nothing, every source token, the O_orig mask, or the anchors (the paper's AnchorExtAttn).
ATTENTION_MODES = ("off", "full", "masked", "anchor")
#: Choices of the authors' code that the method always makes, as saved configs (benchmarks/results/) name them;
#: docs/fidelity.md keeps the measurements of their other values.
FIXED_CHOICES = {"anchor_branches": "conditional", "anchor_draw": "per_call", "source_text": "source_caption",
                 "residual_mask": "kmeans"}


# The schedule's index rules, in pure Python so that the cost model (dynvfx.cost, no torch) uses the same ones
# as the sampler (dynvfx.sampling).
def start_index(num_steps: int, strength: float) -> int:
    """First step of an SDEdit run at ``strength`` in (0, 1] on a ``num_steps`` schedule: 1.0 starts from noise."""
    return min(num_steps - 1, max(0, round(num_steps * (1.0 - strength))))


def window_indices(num_steps: int, max_fraction: float, min_fraction: float) -> tuple[int, int]:
    """Steps ``[start, stop)`` of a ``num_steps`` schedule where the source branch runs, the authors' rule
    ``n - int(n * max_fraction) : n - int(n * min_fraction)`` (50 steps, 0.9, 0.6: steps 5 to 19)."""
    return num_steps - min(int(num_steps * max_fraction), num_steps), num_steps - int(num_steps * min_fraction)


@dataclasses.dataclass(frozen=True)
class RefinementPass:
    """One refinement iteration on the ``n``-step schedule: it denoises steps ``start .. n-1``, and the source
    branch runs at the steps of ``window`` (those of the injection window that it reaches)."""

    strength: float
    start: int
    window: range


def refinement_schedule(config: "DynVFXConfig") -> list[RefinementPass]:
    """The passes of :func:`dynvfx.refinement.refine` for ``config``: one rule for the sampler, the probes and
    the cost model."""
    n = config.num_inference_steps
    lo, hi = window_indices(n, config.injection_max_timestep, config.injection_min_timestep)
    return [RefinementPass(s, start_index(n, s), range(max(lo, start_index(n, s)), hi)) for s in config.strengths]


@dataclasses.dataclass(frozen=True)
class DynVFXConfig:
    # sampling (paper: 50 DDIM steps, classifier-free guidance 6)
    num_inference_steps: int = 50
    guidance_scale: float = 6.0
    negative_prompt: str = ""
    # DDIM inversion (paper: 250 steps, empty prompt; the latents at the 50 sampling timesteps are kept)
    inversion_steps: int = 250
    inversion_prompt: str = ""
    # Anchor Extended Attention (paper: all blocks; O_orig tokens kept with prob. 0.7, others with 0.05)
    attention_mode: str = "anchor"  # "anchor" | "full" | "masked" | "off"
    fg_keep: float = 0.7
    bg_keep: float = 0.05
    anchor_blocks: tuple[int, ...] | None = None  # None = every transformer block
    anchor_token_threshold: float = 0.25  # share of a token's pixels in the O_orig mask that makes it "in the mask"
    # Fidelity to the authors' released code (docs/fidelity.md). The source branch reads the source caption, only the
    # CFG conditional branch is extended, anchors are drawn anew in every attention call (seeded), and x_res's
    # latent mask M is the VAE-encoded O_edit mask split by 2-means: the method, with no switch.
    # Injection window: the source branch and the extension run only at sampling steps
    # timesteps[n - int(n * max) : n - int(n * min)] of the n-step schedule (the authors' get_timesteps rule;
    # n = 50: t = 899 ... 619); plain CFG elsewhere. (1.0, 0.0) = every step.
    injection_max_timestep: float = 0.9
    injection_min_timestep: float = 0.6
    # An iteration whose x_hat shows no O_edit: "keep" x_res as it was (ours) | "clear" it (x_res = M * (...) with
    # an empty M). The authors' code has no such case (docs/fidelity.md).
    missing_edit: str = "keep"
    # iterative residual refinement
    strengths: tuple[float, ...] = PAPER_STRENGTHS
    # O_edit's pixel mask before M: opened by a (2r+1)-pixel square (drops specks; the authors: 3 x 3, r = 1), then
    # dilated by a safety margin (the authors: none)
    mask_open_radius: int = 1
    mask_dilate_radius: int = 0
    source_mask_dilate_radius: int = 0  # pixels, margin around the O_orig mask before it becomes anchors
    # final frames: decode(x_comp) inside the final O_edit mask, and outside it
    # "source" = the source's own pixels (ours: x_res is zero there anyway, so only the autoencoder's error differs),
    # "reconstruction" = the model's reconstruction decode(x_orig), or "latent" = decode(x_comp) as is (the paper's
    # output; the autoencoder's group norms make every pixel depend a little on the whole latent).
    composite: str = "source"
    seed: int = 0  # every random draw of a run starts from generator(): the anchors and SDEdit's noise

    def __post_init__(self):
        choices = {"missing_edit": ("keep", "clear"), "attention_mode": ATTENTION_MODES,
                   "composite": ("source", "reconstruction", "latent")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if not 0.0 <= self.injection_min_timestep <= self.injection_max_timestep <= 1.0:
            raise ValueError("need 0 <= injection_min_timestep <= injection_max_timestep <= 1")
        if self.num_inference_steps < 1 or self.inversion_steps < 1:
            raise ValueError("num_inference_steps and inversion_steps must be at least 1")
        if not self.strengths or not all(0.0 < s <= 1.0 for s in self.strengths):
            raise ValueError(f"strengths must be one or more numbers in (0, 1], not {list(self.strengths)}")
        if not (0.0 <= self.bg_keep <= 1.0 and 0.0 <= self.fg_keep <= 1.0) or self.guidance_scale < 0:
            raise ValueError("fg_keep and bg_keep must be in [0, 1] and guidance_scale at least 0")

    @classmethod
    def toy(cls) -> "DynVFXConfig":
        """The toy model's values: inversion on the sampling schedule itself (the paper's 250 steps succeed on the
        same share of held-out toy edits, at 1.2x the time: docs/fidelity.md); a 1-pixel margin around O_edit (the
        authors: none); guidance 2.5, not the paper's 6 (docs/fidelity.md): chosen on captions whose combinations
        the toy model has seen, where guidance 1.5 to 3.5 draw one ball per object best and 6 to 9 draw a duplicate
        more often."""
        return cls(inversion_steps=50, guidance_scale=2.5, mask_dilate_radius=1)

    @classmethod
    def paper(cls) -> "DynVFXConfig":
        """The paper's run (= ``DynVFXConfig()``): 250-step inversion, 50 steps, 7 iterations (236 refinement
        steps). Estimate (``python -m dynvfx estimate``): CogVideoX-5B ≈ 13 min on an H100, ≈ 42 min on an A100;
        2B ≈ 81 min on a T4 (lean)."""
        return cls()

    @classmethod
    def classroom(cls) -> "DynVFXConfig":
        """A free Colab GPU's run, meant for CogVideoX-2B: 25 steps, a 50-step inversion, 3 iterations (0.9, 0.7,
        0.5; 53 refinement steps). Estimate: 2B ≈ 21 min on a T4 (lean), ≈ 1 min on an H100. Gives up: a coarser
        inversion (the source is reconstructed less exactly, so more of it drifts), fewer iterations (the new
        object's mask and residual are sharpened 3 times, not 7; no late low-strength passes that fix detail) and
        half the sampling steps (less detail). The inversion is cached: a second instruction on the same clip
        skips it."""
        return cls(num_inference_steps=25, inversion_steps=50, strengths=(0.9, 0.7, 0.5))

    @classmethod
    def preset(cls, name: str) -> "DynVFXConfig":
        """``"paper"``, ``"classroom"`` or ``"toy"`` (see :data:`PRESETS`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return getattr(cls, name)()

    @classmethod
    def for_model(cls, model: str) -> "DynVFXConfig":
        """The preset that matches a model: ``"toy"`` or a toy training run's folder (it ships the toy world's
        ``prompt_vocabulary.json``) -> :meth:`toy`; anything else -> the paper's."""
        return cls.toy() if model == "toy" or is_toy_model(model) else cls()

    def generator(self):
        """A fresh CPU ``torch.Generator`` seeded with ``seed``. Each random stream of a run starts from one: the
        anchor draws (so :func:`dynvfx.edit.source_anchors`' draw is the first per-call draw of the refinement's
        :class:`~dynvfx.attention.AnchorContext`) and SDEdit's noise (:func:`dynvfx.refinement.refine`,
        :func:`dynvfx.edit.sdedit`)."""
        import torch  # this module stays importable without torch (dynvfx.cost reads it)

        return torch.Generator().manual_seed(self.seed)

    def replace(self, **changes) -> "DynVFXConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "DynVFXConfig":
        """The config of a dict (YAML, a saved run). A key of :data:`FIXED_CHOICES` is accepted with the value the
        method always uses, and refused with any other."""
        for key, value in FIXED_CHOICES.items():
            if key in d and d[key] != value:
                raise ValueError(f"{key}={d[key]!r} is not available: DynVFX always runs {key}={value!r} "
                                 "(docs/fidelity.md)")
        d = {k: v for k, v in d.items() if k not in FIXED_CHOICES}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "DynVFXConfig":
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})
