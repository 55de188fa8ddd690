"""DDIM inversion of the source latents x_orig with a v-prediction model (CogVideoX).

For a v-prediction model at noise level a = alphas_cumprod[t], the clean estimate and the noise estimate are
``x0 = sqrt(a) x_t - sqrt(1-a) v`` and ``eps = sqrt(1-a) x_t + sqrt(a) v``. One inversion step goes from level
``s`` up to the noisier ``t`` deterministically: ``x_t = sqrt(a_t) x0 + sqrt(1-a_t) eps``, with v predicted at
``(x_s, s)``. Run over a fine schedule (the paper: 250 steps), we keep the latent at each timestep of the
sampling schedule (50 steps), so the source's keys and values can be recomputed at any sampling step.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dynvfx.pipeline import decode_latents, encode_text, execution_device, rotary_embeddings
from dynvfx.sampling import denoise, predict_v, sampling_timesteps


@dataclasses.dataclass
class Inversion:
    """Inverted source.

    Attributes:
        x_orig: ``[1, F', C, h, w]`` clean source latents.
        timesteps: ``[T]`` sampling timesteps, descending (``timesteps[0]`` is the noisiest).
        latents: ``[T, 1, F', C, h, w]``; ``latents[i]`` is the source at ``timesteps[i]``.
        prompt: the prompt the inversion was run with ("" = unconditional, the paper's choice).
        inversion_steps: the fine schedule's length.
    """

    x_orig: torch.Tensor
    timesteps: torch.Tensor
    latents: torch.Tensor
    prompt: str
    inversion_steps: int

    def at(self, timestep: int) -> torch.Tensor:
        """The inverted source latent ``[1, F', C, h, w]`` at a sampling ``timestep``."""
        hit = (self.timesteps == int(timestep)).nonzero()
        if len(hit) == 0:
            raise KeyError(f"timestep {timestep} is not on this inversion's schedule {self.timesteps.tolist()}")
        return self.latents[hit[0, 0]]

    @property
    def noise(self) -> torch.Tensor:
        """The fully inverted latent ``[1, F', C, h, w]`` at the noisiest timestep."""
        return self.latents[0]


def _parameter_values(module):
    """``module``'s parameters in ``parameters()`` order, tied ones once, readable on the CPU even when
    accelerate's sequential offload has left them on the ``meta`` device (their values then sit in the hooks'
    weights maps, and ties between the ``meta`` placeholders are gone: storage identifies them)."""
    from contextlib import nullcontext

    from accelerate.utils import align_module_device, has_offloaded_params

    seen = set()
    for sub in module.modules():
        if not any(True for _ in sub.parameters(recurse=False)):
            continue
        place = align_module_device(sub, torch.device("cpu")) if has_offloaded_params(sub) else nullcontext()
        with place:
            for p in sub.parameters(recurse=False):
                key = (p.data_ptr(), tuple(p.shape), p.dtype)
                if key not in seen:
                    seen.add(key)
                    yield p


def model_fingerprint(pipe) -> str:
    """A cheap hash of the model's configs and a few values of every weight (changes when weights do; the same
    under every memory mode)."""
    h = hashlib.sha256()
    for name in ("transformer", "vae", "text_encoder"):
        module = getattr(pipe, name)
        cfg = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
        h.update(repr(sorted(cfg.items())).encode())
        for p in _parameter_values(module):
            h.update(p.detach().flatten()[:16].float().cpu().numpy().tobytes())
    h.update(repr(sorted(dict(pipe.scheduler.config).items())).encode())
    return h.hexdigest()[:16]


def cache_key(pipe, x_orig: torch.Tensor, prompt: str, num_steps: int, inversion_steps: int) -> str:
    """Key of an inversion: hash of (video latents, model fingerprint, schedules, prompt)."""
    h = hashlib.sha256()
    h.update(x_orig.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(f"{model_fingerprint(pipe)}|{num_steps}|{inversion_steps}|{prompt}".encode())
    return h.hexdigest()[:24]


@torch.no_grad()
def ddim_invert(pipe, x_orig: torch.Tensor, prompt: str = "", num_steps: int = 50, inversion_steps: int = 250,
                cache_dir: str | Path | None = None, progress: bool = True) -> Inversion:
    """Invert x_orig ``[1, F', C, h, w]`` and keep its latents at the ``num_steps`` sampling timesteps.

    ``inversion_steps`` must be a multiple of ``num_steps`` (the coarse schedule is then a subset of the fine
    one). With ``cache_dir``, the result is stored as ``<key>.pt`` and reused only for the same key.
    """
    if inversion_steps % num_steps:
        raise ValueError(f"inversion_steps ({inversion_steps}) must be a multiple of num_steps ({num_steps})")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"inversion-{cache_key(pipe, x_orig, prompt, num_steps, inversion_steps)}.pt"
        if path.exists():
            return Inversion(**torch.load(path, weights_only=False))
    keep = sampling_timesteps(pipe, num_steps)
    fine = sampling_timesteps(pipe, inversion_steps).flip(0)  # ascending
    alphas = pipe.scheduler.alphas_cumprod.float()
    text = encode_text(pipe, [prompt])
    rope = rotary_embeddings(pipe, x_orig)
    x, s = x_orig.to(execution_device(pipe)).float(), 0  # the clean latent sits at timestep 0
    kept = {}
    for t in tqdm(fine.tolist(), desc="inversion", disable=not progress, leave=False):
        v = predict_v(pipe, x, text, s, rope).to(x.device)
        a_s, a_t = alphas[s], alphas[t]
        x0 = a_s.sqrt() * x - (1 - a_s).sqrt() * v
        eps = (1 - a_s).sqrt() * x + a_s.sqrt() * v
        x, s = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps, t
        if t in keep.tolist():
            kept[t] = x.cpu()
    inv = Inversion(x_orig=x_orig.cpu(), timesteps=keep, latents=torch.stack([kept[int(t)] for t in keep]),
                    prompt=prompt, inversion_steps=inversion_steps)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(dataclasses.asdict(inv), tmp)
        tmp.replace(path)
    return inv


def reconstruct(pipe, inv: Inversion, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Sample back from the inverted noise with the inversion's prompt (no guidance).

    Returns:
        latents ``[1, F', C, h, w]``, frames ``[F, 3, H, W]`` and the latent error RMSE(x_rec, x_orig).
    """
    sampling_timesteps(pipe, len(inv.timesteps))
    x = denoise(pipe, inv.noise.to(execution_device(pipe)), inv.timesteps, encode_text(pipe, [inv.prompt]),
                progress=progress, desc="reconstruct")
    err = (x.cpu() - inv.x_orig).pow(2).mean().sqrt().item()
    return x, decode_latents(pipe, x), err


@torch.no_grad()
def inversion_error_curve(pipe, x_orig: torch.Tensor, steps=(2, 5, 10, 20, 50), fine: int = 1,
                          prompt: str = "") -> list[tuple[int, float]]:
    """For each ``n`` in ``steps``: invert x_orig ``[1, F', C, h, w]`` over ``n * fine`` steps, keep the latents on
    the ``n``-step sampling schedule, sample back with ``n`` steps and measure RMSE(x_rec, x_orig) in latent space.

    Returns ``[(n, rmse), ...]``. The latents are not decoded, so this stays cheap.
    """
    text = encode_text(pipe, [prompt])
    out = []
    for n in steps:
        inv = ddim_invert(pipe, x_orig, prompt, n, n * fine, progress=False)
        sampling_timesteps(pipe, n)
        x = denoise(pipe, inv.noise.to(pipe.transformer.device), inv.timesteps, text, progress=False)
        out.append((n, (x.cpu() - inv.x_orig).pow(2).mean().sqrt().item()))
    return out
