"""What an edit will cost on a GPU, before loading anything: steps, seconds and peak memory per stage.

An **estimate**. Compute is counted in FLOPs from the model's structure (linear layers ``2 P N`` and attention
``4 N M d`` per layer, for ``N`` queries and ``M`` keys) and turned into seconds with the efficiency measured on one
H100 80 GB (random weights of CogVideoX-5B / 2B's structures, 49 x 480 x 720, the project's own functions:
``../shared/notes/gpu-measurements.md``), scaled to another GPU by its published dense fp16/bf16 tensor
throughput. Memory is the weights plus activations fitted on the same measurements. Offload modes add the
weights' trips over PCIe. Planning and segmentation are not included (they depend on the backends chosen).

    from dynvfx.cost import estimate
    print(estimate("THUDM/CogVideoX-2b", preset="classroom", gpu="t4").table())
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dynvfx.config import DynVFXConfig, refinement_schedule, window_indices
from dynvfx.errors import DynVFXError
from dynvfx.paths import resolve_model

GIB = 2**30
#: Headroom kept free on the GPU (CUDA context, allocator slack) when deciding whether a mode fits.
MARGIN_GIB = 1.0


@dataclasses.dataclass(frozen=True)
class GPU:
    name: str
    memory_gib: float  # what the card reports as total
    tflops: float  # published dense fp16/bf16 tensor-core throughput
    bf16: bool
    pcie_gbs: float  # effective host <-> device copy rate, GB/s (a rough figure)


GPUS = {
    "t4": GPU("NVIDIA T4 16 GB", 15.0, 65, False, 6),
    "l4": GPU("NVIDIA L4 24 GB", 22.5, 121, True, 12),
    "a10": GPU("NVIDIA A10 24 GB", 22.5, 125, True, 12),
    "a100": GPU("NVIDIA A100 40 GB", 39.4, 312, True, 12),
    "a100-80": GPU("NVIDIA A100 80 GB", 79.1, 312, True, 12),
    "h100": GPU("NVIDIA H100 80 GB (SXM)", 79.1, 989, True, 25),
}
CALIBRATION_GPU = "h100"

#: Measured on the H100 (seconds per call / GiB above the resident weights): (5B, 2B) where both were measured.
MEASURED = {
    "inversion_step": (1.04, 0.48), "cfg_step": (1.88, 0.66), "anchor_step": (3.0, 1.07), "anchors": 1846,
    "vae_encode": 2.15, "vae_decode_tiled": 3.75, "vae_decode": 2.5,
    "act_anchor_gib_5b": 4.0, "decode_tiled_gib": 3.8, "decode_gib": 14.8, "encode_tiled_gib": 2.0,
    "encode_gib": 7.7,
}

_T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
               feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False)
#: CogVideoX transformer configs that differ from diffusers' defaults (which are the 2B's).
KNOWN = {"5b": dict(num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True), "2b": {}}
#: Their parameter counts (transformer, T5-XXL encoder, VAE), counted once on the meta device: building these
#: models, even empty, takes a minute on a small CPU.
KNOWN_PARAMS = {"5b": (5_570_283_072, 4_893_906_944, 215_583_907), "2b": (1_693_783_872, 4_893_906_944, 215_583_907)}


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """What the cost depends on: sizes of the three models and the token counts of one clip."""

    name: str
    transformer_params: int
    text_params: int
    vae_params: int
    layers: int
    inner_dim: int  # heads x head dim
    video_tokens: int
    text_tokens: int
    frames: int  # the clip the model takes: frames, height, width
    height: int
    width: int
    temporal_compression: int
    bytes_per_param: int = 2

    @property
    def tokens(self) -> int:
        return self.video_tokens + self.text_tokens

    @property
    def pixels(self) -> int:
        return self.frames * self.height * self.width

    @property
    def latent_frames(self) -> int:
        return (self.frames - 1) // self.temporal_compression + 1

    def with_frames(self, frames: int) -> "ModelShape":
        """The same model on a clip of ``frames`` frames (1 + 4k; fewer than its native count, e.g. a short video)."""
        clip = dataclasses.replace(self, frames=frames)
        return dataclasses.replace(clip, video_tokens=self.video_tokens // self.latent_frames * clip.latent_frames)

    def gib(self, params: int) -> float:
        return params * self.bytes_per_param / GIB


def _count(cls, config) -> int:
    """Parameters of ``cls(config)`` built on the meta device (no memory, no weights read)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = cls(config)
    return sum(p.numel() for p in model.parameters())


def _shape(name: str, tcfg: dict, text_cfg: dict, vae_cfg: dict, bytes_per_param: int = 2,
           params: tuple[int, int, int] | None = None) -> ModelShape:
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    import inspect
    from types import SimpleNamespace

    defaults = {k: v.default for k, v in inspect.signature(CogVideoXTransformer3DModel.__init__).parameters.items()
                if v.default is not inspect.Parameter.empty}
    tr = SimpleNamespace(**(defaults | {k: v for k, v in tcfg.items() if not k.startswith("_")}))  # no model built
    spatial = 2 ** (len(vae_cfg.get("block_out_channels", (128, 256, 256, 512))) - 1)
    temporal = tr.temporal_compression_ratio
    frames = tr.sample_frames
    latent_frames = (frames - 1) // temporal + 1
    video_tokens = latent_frames * (tr.sample_height // tr.patch_size) * (tr.sample_width // tr.patch_size)
    keys = {k: v for k, v in text_cfg.items() if not k.startswith("_") and k not in ("architectures",)}
    params = params or (_count(CogVideoXTransformer3DModel.from_config, tcfg),
                        _count(T5EncoderModel, T5Config(**keys)), _count(AutoencoderKLCogVideoX.from_config, vae_cfg))
    return ModelShape(
        name=name, transformer_params=params[0], text_params=params[1], vae_params=params[2],
        layers=tr.num_layers, inner_dim=tr.num_attention_heads * tr.attention_head_dim,
        video_tokens=video_tokens, text_tokens=tr.max_text_seq_length, frames=frames,
        height=tr.sample_height * spatial, width=tr.sample_width * spatial, temporal_compression=temporal,
        bytes_per_param=bytes_per_param)


def _configs_in(folder: Path) -> tuple[dict, dict, dict] | None:
    files = [folder / sub / "config.json" for sub in ("transformer", "text_encoder", "vae")]
    if not all(f.exists() for f in files):
        return None
    return tuple(json.loads(f.read_text()) for f in files)


def _cached_hub_configs(repo: str) -> tuple[dict, dict, dict] | None:
    """The hub model's configs from the local Hugging Face cache, if it holds them (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    paths = [try_to_load_from_cache(repo, f"{sub}/config.json") for sub in ("transformer", "text_encoder", "vae")]
    if not all(isinstance(p, str) for p in paths):
        return None
    return tuple(json.loads(Path(p).read_text()) for p in paths)


def model_shape(model: str) -> ModelShape:
    """The shape of ``model`` (``"toy"``, a saved folder, or a hub id) from its configs only; a hub id not in the
    local cache falls back to the known structures of CogVideoX-5B / 2B. Raises :class:`DynVFXError`."""
    path = resolve_model(model)
    configs = _configs_in(Path(path)) if Path(path).is_dir() else _cached_hub_configs(path)
    bytes_per_param = 4 if model == "toy" else 2
    if configs is None:
        kind = "5b" if "5b" in path.lower() else "2b" if "2b" in path.lower() else None
        if kind is None:
            raise DynVFXError(f"cannot read {model!r}'s configs offline and it is neither CogVideoX-5B nor 2B")
        return _shape(model, KNOWN[kind], _T5_XXL, {}, bytes_per_param, KNOWN_PARAMS[kind])
    return _shape(model, *configs, bytes_per_param=bytes_per_param)


def model_shape_of_pipeline(pipe) -> ModelShape:
    """The shape of a loaded pipeline (parameter counts read off its modules, any device, ``meta`` included)."""
    tc = pipe.transformer.config
    s, t = pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
    latent_frames = (tc.sample_frames - 1) // t + 1
    return ModelShape(
        name=str(pipe.config._name_or_path or "pipeline"),
        transformer_params=sum(p.numel() for p in pipe.transformer.parameters()),
        text_params=sum(p.numel() for p in pipe.text_encoder.parameters()),
        vae_params=sum(p.numel() for p in pipe.vae.parameters()),
        layers=tc.num_layers, inner_dim=tc.num_attention_heads * tc.attention_head_dim,
        video_tokens=latent_frames * (tc.sample_height // tc.patch_size) * (tc.sample_width // tc.patch_size),
        text_tokens=tc.max_text_seq_length, frames=tc.sample_frames, height=tc.sample_height * s,
        width=tc.sample_width * s, temporal_compression=t, bytes_per_param=pipe.transformer.dtype.itemsize)


# ------------------------------------------------------------------------------------------------ compute
def branch_flops(shape: ModelShape, keys_extra: int = 0) -> float:
    """FLOPs of one transformer branch (batch 1) whose attention sees ``keys_extra`` extra keys (anchors)."""
    n = shape.tokens
    return 2 * shape.transformer_params * n + 4 * n * (n + keys_extra) * shape.inner_dim * shape.layers


def step_flops(shape: ModelShape, kind: str, anchors: int = 0, conditional_only: bool = True) -> float:
    """``"inversion"`` (batch 1), ``"cfg"`` (2 branches) or ``"anchor"`` (source + 2 CFG branches, the
    conditional one or both extended by ``anchors`` keys)."""
    plain = branch_flops(shape)
    if kind == "inversion":
        return plain
    if kind == "cfg":
        return 2 * plain
    extended = branch_flops(shape, anchors)
    return plain + extended + (plain if conditional_only else extended)


def _calibration() -> dict[str, float]:
    """Achieved FLOP/s of each step kind on the calibration GPU, the mean over the 5B and 2B measurements."""
    shapes = [_known_shape(k) for k in ("5b", "2b")]
    out = {}
    for kind, key in (("inversion", "inversion_step"), ("cfg", "cfg_step"), ("anchor", "anchor_step")):
        rates = [step_flops(s, kind, MEASURED["anchors"], conditional_only=False) / t
                 for s, t in zip(shapes, MEASURED[key])]
        out[kind] = sum(rates) / len(rates)
    return out


_CACHE: dict = {}


def _known_shape(kind: str) -> ModelShape:
    if kind not in _CACHE:
        _CACHE[kind] = _shape(f"CogVideoX-{kind.upper()}", KNOWN[kind], _T5_XXL, {}, 2, KNOWN_PARAMS[kind])
    return _CACHE[kind]


def step_seconds(shape: ModelShape, kind: str, gpu: str = CALIBRATION_GPU, anchors: int = 0,
                 conditional_only: bool = True) -> float:
    """Seconds of one denoising step of ``kind`` on ``gpu`` (see :func:`step_flops`)."""
    speed = GPUS[gpu].tflops / GPUS[CALIBRATION_GPU].tflops
    return step_flops(shape, kind, anchors, conditional_only) / (_rate(kind) * speed)


def _rate(kind: str) -> float:
    if "rate" not in _CACHE:
        _CACHE["rate"] = _calibration()
    return _CACHE["rate"][kind]


# ------------------------------------------------------------------------------------------------ memory
def activation_gib(shape: ModelShape, branches: int = 3) -> float:
    """Activation peak of a denoising step above the weights (fitted: 4.0 GiB for 5B's anchor step)."""
    five = _known_shape("5b")
    per = MEASURED["act_anchor_gib_5b"] / (3 * five.tokens * five.inner_dim)
    return per * branches * shape.tokens * shape.inner_dim * shape.bytes_per_param / 2


def vae_gib(shape: ModelShape, what: str, tiled: bool) -> float:
    """VAE encode/decode peak above the weights, scaled by the clip's pixels (measured at 49 x 480 x 720)."""
    key = {("decode", True): "decode_tiled_gib", ("decode", False): "decode_gib",
           ("encode", True): "encode_tiled_gib", ("encode", False): "encode_gib"}[what, tiled]
    ratio = shape.pixels / (49 * 480 * 720)
    return MEASURED[key] * (min(1.0, ratio) if tiled else ratio)  # tiles bound the peak


def peak_gib(shape: ModelShape, mode: str, tiled: bool = True) -> float:
    """Estimated peak GPU memory of an edit in memory ``mode`` (full, lean, offload, sequential)."""
    te, tr, vae = shape.gib(shape.text_params), shape.gib(shape.transformer_params), shape.gib(shape.vae_params)
    act = activation_gib(shape)
    enc, dec = vae_gib(shape, "encode", tiled), vae_gib(shape, "decode", tiled)
    if mode == "full":
        return te + tr + vae + max(act, enc, dec)
    if mode == "lean":
        return max(te + tr + vae + 0.1, tr + vae + max(act, enc, dec))
    if mode == "offload":
        return max(te + vae + 0.1, tr + vae + act, vae + max(enc, dec))
    if mode == "sequential":
        return max(act, enc, dec) + tr / shape.layers + 0.5
    raise ValueError(f"unknown memory mode {mode!r}")


# ------------------------------------------------------------------------------------------------ estimate
@dataclasses.dataclass
class Stage:
    name: str
    steps: int
    seconds: float
    peak_gib: float


@dataclasses.dataclass
class Estimate:
    """An estimate (not a measurement) of one edit: per stage and in total."""

    model: str
    preset: str
    gpu: str
    memory: str
    stages: list[Stage]
    peak_gib: float
    fits: bool
    notes: list[str]
    clip: str = ""  # the clip estimated for, e.g. "49 frames of 720x480"

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def table(self) -> str:
        g = GPUS[self.gpu]
        lines = [f"ESTIMATE for {self.model}, preset {self.preset}, memory {self.memory}, on {g.name} "
                 f"({g.memory_gib:.0f} GiB, {g.tflops:.0f} dense TFLOPS); calibrated on an H100, not measured here",
                 f"clip: {self.clip}",
                 f"{'stage':<28}{'steps':>6}{'seconds':>10}{'peak GiB':>10}"]
        lines += [f"{s.name:<28}{s.steps:>6}{s.seconds:>10.0f}{s.peak_gib:>10.1f}" for s in self.stages]
        verdict = "fits" if self.fits else "does NOT fit"
        lines.append(f"{'total':<28}{'':>6}{self.seconds:>10.0f}{self.peak_gib:>10.1f}   "
                     f"≈ {self.seconds / 60:.0f} min; {verdict} in {g.memory_gib:.1f} GiB (keeping {MARGIN_GIB} free)")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def refinement_steps(config) -> tuple[int, int]:
    """(steps with the source branch, plain CFG steps) over all refinement iterations."""
    anchor = plain = 0
    for p in refinement_schedule(config):
        inside = len(p.window) if config.attention_mode != "off" else 0
        anchor, plain = anchor + inside, plain + (config.num_inference_steps - p.start) - inside
    return anchor, plain


def _anchor_count(shape: ModelShape, config) -> int:
    share = 0.08  # assumed share of tokens in the O_orig mask (the measured clip: 1,846 anchors of 17,550)
    if config.attention_mode == "full":
        return shape.video_tokens
    if config.attention_mode == "masked":
        return int(share * shape.video_tokens)
    return int((config.bg_keep + (config.fg_keep - config.bg_keep) * share) * shape.video_tokens)


def estimate(model: str, preset: str = "paper", gpu: str = "h100", memory: str = "auto", config=None,
             shape: ModelShape | None = None, frames: int | None = None) -> Estimate:
    """Estimate one edit of ``model`` with ``preset`` (or ``config``) on ``gpu`` in memory mode ``memory``
    (``"auto"``: the fastest that fits), for a clip of ``frames`` frames after fitting (default: the model's
    native count; :func:`dynvfx.video.fitted_frame_count` gives it for a video). Loads no model: configs only."""
    if gpu not in GPUS:
        raise DynVFXError(f"unknown GPU {gpu!r}: choose one of {', '.join(GPUS)}")
    cfg = config or DynVFXConfig.preset(preset)
    shape = shape or model_shape(model)
    if frames is not None:
        shape = shape.with_frames(frames)
    g, notes = GPUS[gpu], []
    if memory == "auto":
        memory = next((m for m in ("full", "lean", "offload") if peak_gib(shape, m) + MARGIN_GIB <= g.memory_gib),
                      "sequential")
    scale = GPUS[CALIBRATION_GPU].tflops / g.tflops
    te, tr, vae = (shape.gib(p) for p in (shape.text_params, shape.transformer_params, shape.vae_params))
    per_pixel = shape.pixels / (49 * 480 * 720)
    n_anchor, n_plain = refinement_steps(cfg)
    iters = len(cfg.strengths)
    decodes = iters + 2  # one per iteration, then x_orig and x_comp
    text_calls = 1 + 3  # the inversion's prompt; P_comp, the negative prompt and the source's text
    act = activation_gib(shape)

    def on_gpu(model_needed: str) -> float:
        """Weights resident while ``model_needed`` (text / vae / transformer) runs, in this memory mode."""
        if memory == "full":
            return te + tr + vae
        if memory == "sequential":
            return {"text": te, "vae": vae, "transformer": tr}[model_needed] / 24
        own = {"text": te, "vae": vae, "transformer": tr}[model_needed]
        if memory == "lean":
            return tr + vae + (te if model_needed == "text" else 0.0)
        return own + (vae if model_needed != "vae" else 0.0)  # offload: the VAE's hook is nobody's previous one

    stages = [
        Stage("text encoding (4 prompts)", text_calls,
              text_calls * 2 * shape.text_params * shape.text_tokens / (_rate("inversion") / scale), on_gpu("text") + 0.1),
        Stage("VAE encode (tiled)", 1, MEASURED["vae_encode"] * per_pixel * scale,
              on_gpu("vae") + vae_gib(shape, "encode", True)),
        Stage("DDIM inversion", cfg.inversion_steps, cfg.inversion_steps * step_seconds(shape, "inversion", gpu),
              on_gpu("transformer") + act / 3),
        Stage("refinement, source branch", n_anchor,
              n_anchor * step_seconds(shape, "anchor", gpu, _anchor_count(shape, cfg)),
              on_gpu("transformer") + act),
        Stage("refinement, plain CFG", n_plain, n_plain * step_seconds(shape, "cfg", gpu),
              on_gpu("transformer") + act * 2 / 3),
        Stage("VAE decode (tiled)", decodes, decodes * MEASURED["vae_decode_tiled"] * per_pixel * scale,
              on_gpu("vae") + vae_gib(shape, "decode", True)),
    ]
    te, tr, vae = (x * GIB / 1e9 for x in (te, tr, vae))  # GB, for the copies
    if memory in ("lean", "offload", "sequential"):
        moved = text_calls * te  # the text encoder visits the GPU for every encode_text
        if memory == "offload":
            moved += (2 + iters) * tr + decodes * vae
        if memory == "sequential":
            calls = cfg.inversion_steps + n_anchor * 2 + n_plain  # an in-window step: two calls
            moved += calls * tr + (1 + decodes) * vae
        stages.append(Stage(f"weights over PCIe ({memory})", 0, moved / g.pcie_gbs, 0.0))
    if not g.bf16 and shape.bytes_per_param == 2:
        notes.append(f"{g.name} has no bfloat16: run in float16 (CogVideoX-2B's own precision; the 5B's model card "
                     "recommends bfloat16)")
    window = window_indices(cfg.num_inference_steps, cfg.injection_max_timestep, cfg.injection_min_timestep)
    notes.append(f"source branch on steps {window[0]}..{window[1] - 1} of {cfg.num_inference_steps} "
                 f"({n_anchor} of {n_anchor + n_plain} refinement steps); planning and segmentation not included")
    peak = max(s.peak_gib for s in stages)
    return Estimate(model, preset if config is None else "custom", gpu, memory, stages, peak,
                    peak + MARGIN_GIB <= g.memory_gib, notes,
                    clip=f"{shape.frames} frames of {shape.width}x{shape.height} (after fitting to the model)")
