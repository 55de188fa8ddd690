"""Loading a CogVideoX pipeline (the toy one or a real one) and moving between pixels, latents and prompts.

Latents use the transformer's layout ``[B, F', C, h, w]`` (F' = latent frames) and are already multiplied by
the autoencoder's ``scaling_factor``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dynvfx.errors import DynVFXError

TOY_MODEL_DIR = Path(__file__).resolve().parent.parent / "data" / "models" / "toy"
KNOWN_HUB_IDS = ("THUDM/CogVideoX-5b", "THUDM/CogVideoX-2b")


def resolve_model(name: str) -> str:
    """``"toy"`` -> the shipped toy model's folder; a folder or a hub id pass through."""
    if name == "toy":
        if not (TOY_MODEL_DIR / "model_index.json").exists():
            raise DynVFXError(f"the toy model is missing from {TOY_MODEL_DIR}; train it with "
                              "`python -m dynvfx.toy.train`")
        return str(TOY_MODEL_DIR)
    if Path(name).is_dir():
        if not (Path(name) / "model_index.json").exists():
            raise DynVFXError(f"{name} is a folder but not a saved pipeline (no model_index.json)")
        return name
    if name.count("/") == 1 and not Path(name).exists():
        return name  # a hub id
    raise DynVFXError(f"unknown model {name!r}: use 'toy', a folder saved with save_pretrained, "
                      f"or a CogVideoX hub id such as {', '.join(KNOWN_HUB_IDS)}")


def load_pipeline(name: str = "toy", device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                  cpu_offload: bool = False):
    """Load a ``CogVideoXPipeline``: ``"toy"``, a local folder, or a hub id like ``"THUDM/CogVideoX-5b"``.

    Args:
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to float32 on CPU; on GPU bfloat16 (5B) or float16 (2B), as their model cards advise.
        cpu_offload: ``enable_model_cpu_offload`` (GPU only), for GPUs with less than ~24 GB.
    """
    from diffusers import CogVideoXPipeline

    path = resolve_model(name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        dtype = torch.float32 if device.type == "cpu" else (torch.float16 if "2b" in path.lower() else torch.bfloat16)
    try:
        pipe = CogVideoXPipeline.from_pretrained(path, dtype=dtype)
    except OSError as e:
        raise DynVFXError(f"cannot load model {name!r}: {str(e).splitlines()[0]}") from None
    if cpu_offload and device.type == "cuda":
        pipe.enable_model_cpu_offload()
        pipe.vae.enable_tiling()
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def execution_device(pipe) -> torch.device:
    """Where a pipeline's inputs must go: its execution device (the GPU under model or sequential CPU offload,
    where every module's ``.device`` reads ``cpu`` between calls)."""
    return pipe._execution_device


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    """What the model wants: ``num_frames`` (1 + 4k) of ``height x width`` pixels, and its compression."""

    num_frames: int
    height: int
    width: int
    temporal_compression: int
    spatial_compression: int
    patch_size: int
    max_text_tokens: int

    @property
    def latent_frames(self) -> int:
        return (self.num_frames - 1) // self.temporal_compression + 1

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """``(F', h', w')``: video tokens per latent frame, row and column."""
        s = self.spatial_compression * self.patch_size
        return self.latent_frames, self.height // s, self.width // s


def video_spec(pipe) -> VideoSpec:
    """Read the model's native video size from its configs (49 x 480 x 720 for CogVideoX-5B)."""
    tc = pipe.transformer.config
    return VideoSpec(
        num_frames=tc.sample_frames,
        height=tc.sample_height * pipe.vae_scale_factor_spatial,
        width=tc.sample_width * pipe.vae_scale_factor_spatial,
        temporal_compression=pipe.vae_scale_factor_temporal,
        spatial_compression=pipe.vae_scale_factor_spatial,
        patch_size=tc.patch_size,
        max_text_tokens=tc.max_text_seq_length,
    )


@torch.no_grad()
def encode_video(pipe, frames: torch.Tensor) -> torch.Tensor:
    """``[F, 3, H, W]`` in [0, 1] -> latents ``[1, F', C, h, w]`` (posterior mean, scaled)."""
    vae = pipe.vae
    x = (frames * 2 - 1).to(vae.device, vae.dtype).permute(1, 0, 2, 3).unsqueeze(0)  # [1, 3, F, H, W]
    z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    return z.permute(0, 2, 1, 3, 4).float()


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Latents ``[1, F', C, h, w]`` -> frames ``[F, 3, H, W]`` float32 in [0, 1] (on the CPU)."""
    vae = pipe.vae
    z = latents.to(vae.device, vae.dtype).permute(0, 2, 1, 3, 4) / vae.config.scaling_factor
    x = vae.decode(z).sample[0]  # [3, F, H, W]
    return ((x.float().permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1).cpu()


@torch.no_grad()
def encode_text(pipe, prompts: list[str]) -> torch.Tensor:
    """Prompts -> text-encoder states ``[B, max_text_tokens, D]`` (CogVideoX pads to a fixed length)."""
    embeds, _ = pipe.encode_prompt(
        prompts, do_classifier_free_guidance=False, num_videos_per_prompt=1,
        max_sequence_length=pipe.transformer.config.max_text_seq_length, device=pipe.transformer.device,
    )
    return embeds.to(pipe.transformer.dtype)


def rotary_embeddings(pipe, latents: torch.Tensor):
    """RoPE tables for latents ``[B, F', C, h, w]``, or None for models without RoPE (CogVideoX-2B)."""
    if not pipe.transformer.config.use_rotary_positional_embeddings:
        return None
    _, f, _, h, w = latents.shape
    s = pipe.vae_scale_factor_spatial
    return pipe._prepare_rotary_positional_embeddings(h * s, w * s, f, execution_device(pipe))


def generate(pipe, caption: str, seed: int = 0, steps: int = 50, guidance: float = 6.0) -> torch.Tensor:
    """The base text-to-video model on its own (diffusers' own sampling loop): ``[F, 3, H, W]`` in [0, 1]."""
    spec = video_spec(pipe)
    out = pipe(
        prompt=caption, num_frames=spec.num_frames, height=spec.height, width=spec.width,
        num_inference_steps=steps, guidance_scale=guidance, use_dynamic_cfg=False,
        generator=torch.Generator().manual_seed(seed), output_type="pt",
        max_sequence_length=spec.max_text_tokens,
    )
    return out.frames[0].float().cpu()  # [F, 3, H, W]
