"""Loading a CogVideoX pipeline (the toy one or a real one) and moving between pixels, latents and prompts.

Latents use the transformer's layout ``[B, F', C, h, w]`` (F' = latent frames) and are already multiplied by
the autoencoder's ``scaling_factor``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import torch

from dynvfx.config import DynVFXConfig
from dynvfx.errors import DynVFXError
from dynvfx.paths import KNOWN_HUB_IDS, is_toy_model, resolve_model


def locate_model(name: str) -> str:
    """Where :func:`load_pipeline` will read ``name`` from, checked without loading it: ``"toy"`` and folders as
    :func:`resolve_model`, a hub id as :func:`locate_pretrained`."""
    path = resolve_model(name)
    return path if Path(path).is_dir() else locate_pretrained(path, "model_index.json")


def locate_pretrained(name: str, marker: str = "config.json") -> str:
    """A ``from_pretrained`` name checked without loading: a local folder passes; a hub id held in the local
    Hugging Face cache (its ``marker`` file is) -> its snapshot folder, which loads offline; a hub id the hub says
    exists -> the id (``from_pretrained`` downloads it). Otherwise :class:`DynVFXError` says what to do."""
    if Path(name).is_dir():
        return name
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, marker)
    if isinstance(cached, str):
        return str(Path(cached).parent)
    status = hub_status(name)
    if status == "missing":
        raise DynVFXError(f"no model {name!r} on the Hugging Face hub (for the video model: "
                          f"{', '.join(KNOWN_HUB_IDS)})")
    if status != "found":
        raise DynVFXError(f"model {name!r} is not in the local Hugging Face cache and the hub is {status}: download "
                          f"it on a machine with internet (`hf download {name}`) and copy its Hugging Face cache "
                          "here, or pass a local folder saved with save_pretrained")
    return name


def hub_status(repo_id: str, timeout: float = 10.0) -> str:
    """``"found"``, ``"missing"``, or why it can't be fetched (``"unreachable"``, offline, gated) for a hub id."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return "offline (HF_HUB_OFFLINE is set)"
    try:
        HfApi().model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        return "gated (log in with `hf auth login` after accepting its licence)"
    except RepositoryNotFoundError:
        return "missing"
    except Exception:  # noqa: BLE001 - a closed network surfaces as whichever transport error the client uses
        return "unreachable"
    return "found"


def busy_cores(interval: float = 0.2) -> float | None:
    """How many cores other processes keep busy right now: the machine's CPU time over ``interval`` seconds while
    this process sleeps (``/proc/stat``; None where it cannot be read)."""
    def sample() -> tuple[int, int]:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]  # all of user .. steal; idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / (total1 - total0)) if total1 > total0 else None


def cpu_threads(requested: int | None = None) -> tuple[int, str]:
    """Torch's CPU threads for a run: ``requested``, else torch's default less the cores that other processes
    keep busy (:func:`busy_cores`); and a note when that made it fewer, else "".

    Torch's threads wait for each other by spinning, so when one of them shares a core with another busy process
    the whole run slows down several times (``benchmarks/threads.py``); threads on free cores do not.
    """
    default = torch.get_num_threads()
    if requested is not None:
        return max(1, requested), ""
    busy = busy_cores()
    if busy is None or round(busy) < 1:
        return default, ""
    threads = max(1, min(default, (os.cpu_count() or 1) - round(busy)))
    if threads == default:
        return default, ""
    return threads, (f"other processes keep {busy:.1f} of {os.cpu_count()} CPU cores busy: using {threads} torch "
                     f"thread{'s' * (threads > 1)}, not {default} (--threads N to choose)")


MEMORY_MODES = ("auto", "full", "lean", "offload", "sequential")


def load_pipeline(name: str = "toy", device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                  memory: str = "auto"):
    """Load a ``CogVideoXPipeline``: ``"toy"``, a local folder, or a hub id like ``"THUDM/CogVideoX-5b"``.

    Args:
        device: defaults to CUDA when available, else CPU.
        dtype: :func:`default_dtype`.
        memory: where the weights live (see :func:`apply_memory_mode`): ``"full"``, ``"lean"``, ``"offload"``,
            ``"sequential"``, or ``"auto"`` (on a GPU the fastest mode whose estimated peak fits its free memory;
            on a CPU ``"full"``).
    """
    from diffusers import CogVideoXPipeline

    if memory not in MEMORY_MODES:
        raise DynVFXError(f"unknown memory mode {memory!r}: use one of {', '.join(MEMORY_MODES)}")
    path = locate_model(name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or default_dtype(path, device)
    try:
        pipe = CogVideoXPipeline.from_pretrained(path, dtype=dtype)
    except OSError as e:
        raise DynVFXError(f"cannot load model {name!r}: {str(e).splitlines()[0]}") from None
    if memory == "auto":
        memory = choose_memory_mode(pipe, device)
    apply_memory_mode(pipe, memory, device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def default_dtype(path: str, device: str | torch.device) -> torch.dtype:
    """float32 on a CPU and for a toy-world model anywhere (small, saved in float32: its GPU runs stay comparable
    with CPU ones, and a T4, which lacks bfloat16, runs it natively); on a GPU bfloat16 for CogVideoX-5B and
    float16 for 2B, as their model cards advise."""
    if torch.device(device).type == "cpu" or is_toy_model(path):
        return torch.float32
    return torch.float16 if "2b" in path.lower() else torch.bfloat16


def choose_memory_mode(pipe, device: torch.device) -> str:
    """``"full"`` on a CPU; on a GPU the first of full, lean, offload whose estimated peak (:mod:`dynvfx.cost`,
    plus 1 GiB of margin) fits the free memory, else ``"sequential"``."""
    if torch.device(device).type != "cuda":
        return "full"
    from dynvfx.cost import model_shape_of_pipeline, peak_gib

    free = torch.cuda.mem_get_info(torch.device(device))[0] / 2**30
    shape = model_shape_of_pipeline(pipe)
    for mode in ("full", "lean", "offload"):
        if peak_gib(shape, mode) + 1.0 <= free:
            return mode
    return "sequential"


def apply_memory_mode(pipe, mode: str, device: str | torch.device) -> None:
    """Place the pipeline's modules for ``mode`` (inputs then go to :func:`execution_device`):

    - ``"full"``: everything on ``device``.
    - ``"lean"``: transformer and VAE on ``device``; the text encoder waits on the CPU and visits ``device``
      only while :func:`encode_text` runs (an accelerate offload hook).
    - ``"offload"``: diffusers' ``enable_model_cpu_offload``: one model on ``device`` at a time.
    - ``"sequential"``: diffusers' ``enable_sequential_cpu_offload``: weights stream in layer by layer.

    VAE tiling is switched on for every mode on a GPU (it bounds the decode's peak; off on a CPU, where memory is
    plentiful and the untiled result is the reference).
    """
    from accelerate import cpu_offload_with_hook

    device = torch.device(device)
    if mode == "full":
        pipe.to(device)
    elif mode == "lean":
        pipe.text_encoder.to("cpu")
        pipe.transformer.to(device)
        pipe.vae.to(device)
        cpu_offload_with_hook(pipe.text_encoder, device)
    elif mode == "offload":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        raise DynVFXError(f"unknown memory mode {mode!r}: use one of {', '.join(MEMORY_MODES[1:])}")
    if device.type == "cuda":
        pipe.vae.enable_tiling()
    pipe._dynvfx_memory, pipe._dynvfx_device = mode, device


def memory_mode(pipe) -> str:
    """The mode :func:`apply_memory_mode` set (``"full"`` for a pipeline placed by hand)."""
    return getattr(pipe, "_dynvfx_memory", "full")


def execution_device(pipe) -> torch.device:
    """Where a pipeline's inputs must go: the device :func:`apply_memory_mode` placed it for, else diffusers'
    ``_execution_device`` (the GPU under model or sequential CPU offload, where every module's ``.device`` reads
    ``cpu`` or ``meta`` between calls)."""
    return getattr(pipe, "_dynvfx_device", None) or pipe._execution_device


def _offload_hook(module):
    """The accelerate ``CpuOffload`` hook on ``module`` (model offload / lean), or None."""
    from accelerate.hooks import CpuOffload, SequentialHook

    hook = getattr(module, "_hf_hook", None)
    hooks = hook.hooks if isinstance(hook, SequentialHook) else [hook]
    return next((h for h in hooks if isinstance(h, CpuOffload)), None)


def offload_all(pipe) -> None:
    """Under model offload / lean, send every hooked model back to the CPU now (frees the GPU for the next one)."""
    for name in ("text_encoder", "transformer", "vae"):
        module = getattr(pipe, name, None)
        if module is not None and _offload_hook(module) is not None:
            _offload_hook(module).init_hook(module)  # CpuOffload.init_hook moves the module to the CPU


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
    """``[F, 3, H, W]`` in [0, 1] -> latents ``[1, F', C, h, w]`` (posterior mean, scaled) on the execution device.

    ``vae.encode`` is not ``forward``, but diffusers wraps it (``apply_forward_hook``) so an offload hook moves the
    VAE itself; the hook is not given the inputs, so they must already be on the execution device.
    """
    vae = pipe.vae
    x = (frames * 2 - 1).to(execution_device(pipe), vae.dtype).permute(1, 0, 2, 3).unsqueeze(0)  # [1, 3, F, H, W]
    z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    return z.permute(0, 2, 1, 3, 4).float()


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Latents ``[1, F', C, h, w]`` -> frames ``[F, 3, H, W]`` float32 in [0, 1] (on the CPU)."""
    vae = pipe.vae
    z = latents.to(execution_device(pipe), vae.dtype).permute(0, 2, 1, 3, 4) / vae.config.scaling_factor
    x = vae.decode(z).sample[0]  # [3, F, H, W]
    return ((x.float().permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1).cpu()


@torch.no_grad()
def encode_text(pipe, prompts: list[str]) -> torch.Tensor:
    """Prompts -> text-encoder states ``[B, max_text_tokens, D]`` on the execution device (CogVideoX pads to a
    fixed length).

    Under model offload / lean the other models leave the GPU first and the text encoder leaves it right after,
    so it never sits there during sampling.
    """
    hooked = _offload_hook(pipe.text_encoder) is not None
    if hooked:
        offload_all(pipe)
    embeds, _ = pipe.encode_prompt(
        prompts, do_classifier_free_guidance=False, num_videos_per_prompt=1,
        max_sequence_length=pipe.transformer.config.max_text_seq_length, device=execution_device(pipe),
    )
    if hooked:
        _offload_hook(pipe.text_encoder).init_hook(pipe.text_encoder)
    return embeds.to(pipe.transformer.dtype)


def rotary_embeddings(pipe, latents: torch.Tensor):
    """RoPE tables for latents ``[B, F', C, h, w]``, or None for models without RoPE (CogVideoX-2B)."""
    if not pipe.transformer.config.use_rotary_positional_embeddings:
        return None
    _, f, _, h, w = latents.shape
    s = pipe.vae_scale_factor_spatial
    return pipe._prepare_rotary_positional_embeddings(h * s, w * s, f, execution_device(pipe))


def preset_guidance(pipe) -> float:
    """The guidance scale of the preset for the model ``pipe`` was loaded from (toy 2.5; otherwise the paper's 6)."""
    return DynVFXConfig.for_model(pipe.name_or_path or "").guidance_scale


def generate(pipe, caption: str, seed: int = 0, steps: int = 50, guidance: float | None = None) -> torch.Tensor:
    """The base text-to-video model on its own (diffusers' own sampling loop): ``[F, 3, H, W]`` in [0, 1].
    ``guidance=None``: :func:`preset_guidance`."""
    guidance = preset_guidance(pipe) if guidance is None else guidance
    spec = video_spec(pipe)
    out = pipe(
        prompt=caption, num_frames=spec.num_frames, height=spec.height, width=spec.width,
        num_inference_steps=steps, guidance_scale=guidance, use_dynamic_cfg=False,
        generator=torch.Generator().manual_seed(seed), output_type="pt",
        max_sequence_length=spec.max_text_tokens,
    )
    return out.frames[0].float().cpu()  # [F, 3, H, W]
