"""Helpers for the tutorial notebooks: the small algorithms and figures that would crowd a notebook cell.

Shapes follow the rest of the library: frames ``[F, 3, H, W]`` float in [0, 1]; pixel masks ``[F, 1, H, W]``
bool; latents ``[1, F', C, h, w]``; token-grid maps ``[F', h', w']`` (``VideoSpec.token_grid``), whose
flattened order is the order of the video tokens in the transformer's sequence (after the ``L`` text tokens).
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path

import torch

from dynvfx.attention import AnchorContext, AnchorExtendedAttnProcessor, AttentionRecorder, anchor_attention
from dynvfx.masks import upsample_to_pixels
from dynvfx.pipeline import decode_latents, encode_text, rotary_embeddings, video_spec
from dynvfx.sampling import add_noise, denoise, predict_v, sampling_timesteps

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real clips for the optional cells (present beside the repository on the course machines, not on Colab).
SHARED_VIDEOS = REPO_ROOT.parent / "shared" / "data" / "videos"
#: GPU memory (GB) of plain inference per the model cards; DynVFX also runs a source branch, so budget more.
GPU_MODELS = {"THUDM/CogVideoX-2b": 12.5, "THUDM/CogVideoX-5b": 20.7}
REAL_VIDEO = SHARED_VIDEOS / "taxi.mp4"
REAL_INSTRUCTION = "add a huge dinosaur walking down the street between the cars"


# ------------------------------------------------------------------------------------------ setup
def setup_notebook(dpi: int = 80) -> None:
    """Notebook defaults: hide the loading progress bars and deprecation chatter of diffusers/transformers, print
    warnings on one line without the source line (dynvfx's own warnings stay visible), and draw figures at
    ``dpi`` dots per inch (keeps the saved notebooks small)."""
    import matplotlib
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for log in (diffusers_logging, transformers_logging):
        log.disable_progress_bar()
        log.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}\n"
    matplotlib.rcParams["figure.dpi"] = dpi


def resolve_choices(model: str = "toy", segmenter: str | None = None, planner: str | None = None):
    """The ``(model, segmenter, planner)`` to run with (None = not used by this chapter, returned as None).

    A CogVideoX model needs a GPU: without one everything falls back to the toy model, segmenter and planner, with
    a note. The toy model only understands toy-world captions, so it always goes with the toy segmenter/planner.
    """
    toy = ("toy", segmenter and "toy", planner and "toy")
    if model != "toy" and not torch.cuda.is_available():
        print(f"no GPU here, so {model!r} cannot run: using the toy model (and the toy segmenter and planner)")
        return toy
    if model == "toy":
        if (segmenter, planner) != toy[1:]:
            print("the toy model goes with the toy segmenter and planner: using those")
        return toy
    if "toy" in (segmenter, planner):
        print("note: the toy segmenter and planner only understand the toy world; set SEGMENTER and PLANNER too")
    if model in GPU_MODELS:
        gb = torch.cuda.get_device_properties(0).total_memory / 2**30
        print(f"{model}: ~{GPU_MODELS[model]} GB for plain inference (more for DynVFX's source branch); "
              f"this GPU has {gb:.0f} GB" + (" - set CPU_OFFLOAD = True" if gb < 1.3 * GPU_MODELS[model] else ""))
    return model, segmenter, planner


def load_model(name: str = "toy", cpu_offload: bool = False, retries: int = 6, wait: float = 10.0):
    """:func:`dynvfx.pipeline.load_pipeline`, tried again a few times: a training run may be re-exporting the toy
    model while we read it, which shows up as a file that cannot be parsed."""
    from dynvfx.pipeline import load_pipeline

    for attempt in range(retries):
        try:
            return load_pipeline(name, cpu_offload=cpu_offload)
        except Exception as err:  # noqa: BLE001 - a half-written file fails in many ways
            if attempt == retries - 1:
                raise
            print(f"loading {name!r} failed ({type(err).__name__}); trying again in {wait:.0f} s")
            time.sleep(wait)


def edit_inputs(model: str, segmenter: str, planner: str, cpu_offload: bool = False, toy_steps: int = 20):
    """Everything a chapter's edit starts from: ``(pipe, spec, frames [F, 3, H, W], plan, segmenter, config)``.

    Loads the model, takes the default source video and instruction (:func:`source_video`), plans the edit with
    ``planner`` and builds ``segmenter``. ``config`` is :meth:`DynVFXConfig.for_model`; for the toy model with
    ``toy_steps`` sampling and inversion steps instead of 50, to keep a chapter short on a CPU.
    """
    from dynvfx.config import DynVFXConfig
    from dynvfx.planning import plan_edit
    from dynvfx.segmentation import get_segmenter

    pipe = load_model(model, cpu_offload=cpu_offload)
    frames, instruction = source_video(pipe, model)
    config = DynVFXConfig.for_model(model)
    if model == "toy":
        config = config.replace(num_inference_steps=toy_steps, inversion_steps=toy_steps)
    plan = plan_edit(frames, instruction, backend=planner)
    return pipe, video_spec(pipe), frames, plan, get_segmenter(segmenter), config


def source_video(pipe, model: str, example: str = "blue_ball_down", video: str | Path | None = None,
                 instruction: str | None = None) -> tuple[torch.Tensor, str]:
    """Source frames ``[F, 3, H, W]`` at the model's size and an edit instruction: the toy ``example`` and its
    instruction for the toy model, else ``video`` (default :data:`REAL_VIDEO`) fitted to the model."""
    if model == "toy":
        from dynvfx.toy.examples import EXAMPLES, example_frames

        return example_frames(example), instruction or EXAMPLES[example][3]
    from dynvfx.edit import prepare_source
    from dynvfx.errors import DynVFXError

    if video is None and not REAL_VIDEO.exists():
        raise DynVFXError(f"no default real clip here ({REAL_VIDEO} ships beside the repository, not with it): "
                          "pass video='my_clip.mp4' (upload it first on Colab)")
    frames, note = prepare_source(pipe, video or REAL_VIDEO)
    if note:
        print(note)
    return frames, instruction or REAL_INSTRUCTION


# ---------------------------------------------------------------------------------------- display
def upscale(frames: torch.Tensor, height: int = 192) -> torch.Tensor:
    """``[F, C, H, W]`` resized (nearest) to ``height`` pixels high, aspect kept: tiny toy frames stay crisp."""
    f, c, h, w = frames.shape
    return torch.nn.functional.interpolate(frames.float(), size=(height, round(w * height / h)), mode="nearest")


def show_videos(videos: dict[str, torch.Tensor], fps: float = 8.0, height: int = 192) -> None:
    """Play ``{title: frames [F, 3, H, W]}`` side by side with mediapy (an HTML5 video per title)."""
    import mediapy

    from dynvfx.video import ffmpeg_exe, to_uint8

    mediapy.set_ffmpeg(ffmpeg_exe())
    mediapy.show_videos({k: to_uint8(upscale(v, height)) for k, v in videos.items()}, fps=fps)


def pick_frames(num_frames: int, k: int = 5) -> list[int]:
    """``k`` frame indices spread evenly from the first to the last frame."""
    return torch.linspace(0, num_frames - 1, min(k, num_frames)).round().long().tolist()


def video_grid(rows: dict[str, torch.Tensor], frames: list[int] | None = None, title: str | None = None,
               size: float = 1.5, labels: list[str] | None = None):
    """A static figure: one row per ``{label: frames [F, 3, H, W]}``, one column per frame index in ``frames``
    (default: 5 spread over the clip), titled ``labels`` (default "frame i"). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n = next(iter(rows.values())).shape[0]
    frames = frames if frames is not None else pick_frames(n)
    labels = labels or [f"frame {f}" for f in frames]
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(size * len(frames) + 1.2, size * len(rows)),
                             squeeze=False)
    for r, (label, video) in enumerate(rows.items()):
        for c, f in enumerate(frames):
            ax = axes[r, c]
            ax.imshow(video[f].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(labels[c] if r == 0 else "", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def grid_to_pixels(grid: torch.Tensor, spec, num_frames: int | None = None) -> torch.Tensor:
    """A latent- or token-grid map ``[F', h, w]`` -> ``[F, 1, H, W]`` (nearest) over the video's frames."""
    return upsample_to_pixels(grid.float(), num_frames or spec.num_frames, spec.temporal_compression,
                              (spec.height, spec.width))


def heat_rgb(heat: torch.Tensor, vmax: float | None = None, cmap: str = "magma") -> torch.Tensor:
    """A map ``[F, 1, H, W]`` (0 .. ``vmax``, default its max) in a matplotlib colormap -> ``[F, 3, H, W]``."""
    import matplotlib

    vmax = float(heat.max()) if vmax is None else vmax
    x = (heat[:, 0].float() / max(vmax, 1e-8)).clamp(0, 1).cpu().numpy()
    return torch.from_numpy(matplotlib.colormaps[cmap](x)[..., :3]).permute(0, 3, 1, 2).float()


# ------------------------------------------------------------------------- chapter 1: DDIM inversion
@torch.no_grad()
def inversion_error_curve(pipe, x_orig: torch.Tensor, steps=(2, 5, 10, 20, 50), fine: int = 1,
                          prompt: str = "") -> list[tuple[int, float]]:
    """For each ``n`` in ``steps``: invert x_orig ``[1, F', C, h, w]`` over ``n * fine`` steps, keep the latents on
    the ``n``-step sampling schedule, sample back with ``n`` steps and measure RMSE(x_rec, x_orig) in latent space.

    Returns ``[(n, rmse), ...]``. The latents are not decoded, so this stays cheap.
    """
    from dynvfx.inversion import ddim_invert

    text = encode_text(pipe, [prompt])
    out = []
    for n in steps:
        inv = ddim_invert(pipe, x_orig, prompt, n, n * fine, progress=False)
        sampling_timesteps(pipe, n)
        x = denoise(pipe, inv.noise.to(pipe.transformer.device), inv.timesteps, text, progress=False)
        out.append((n, (x.cpu() - inv.x_orig).pow(2).mean().sqrt().item()))
    return out


@torch.no_grad()
def predicted_x0(pipe, x_t: torch.Tensor, timestep: int, prompt: str = "") -> torch.Tensor:
    """The model's clean estimate ``x0 = sqrt(a) x_t - sqrt(1 - a) v`` for latents ``x_t [1, F', C, h, w]``."""
    a = pipe.scheduler.alphas_cumprod[int(timestep)].float()
    v = predict_v(pipe, x_t, encode_text(pipe, [prompt]), timestep, rotary_embeddings(pipe, x_t)).cpu()
    return a.sqrt() * x_t.cpu() - (1 - a).sqrt() * v


def noisy_views(pipe, inversion, indices: list[int], seed: int = 0) -> dict[str, dict[int, torch.Tensor]]:
    """Decoded views at the inversion's timesteps ``inversion.timesteps[indices]``.

    Returns ``{"inverted x_t": {t: frames}, "x0 estimate from it": {...}, "forward-noised x_t": {...}}``, frames
    ``[F, 3, H, W]``: the DDIM-inverted latent, the model's clean estimate from it, and x_orig noised to the same
    timestep with random Gaussian noise (what SDEdit starts from).
    """
    views = {"inverted x_t": {}, "x0 estimate from it": {}, "forward-noised x_t": {}}
    g = torch.Generator().manual_seed(seed)
    for i in indices:
        t = int(inversion.timesteps[i])
        x_t = inversion.latents[i]
        views["inverted x_t"][t] = decode_latents(pipe, x_t)
        views["x0 estimate from it"][t] = decode_latents(pipe, predicted_x0(pipe, x_t, t, inversion.prompt))
        views["forward-noised x_t"][t] = decode_latents(pipe, add_noise(pipe, inversion.x_orig, t, g))
    return views


# ------------------------------------------------------------------------- chapter 2: attention maps
def word_token_ids(pipe, prompt: str, word: str) -> list[int]:
    """Positions of ``word``'s tokens in ``prompt`` as the pipeline's T5 tokenizer splits it (every occurrence;
    ``[]`` if absent). They index the text part of the transformer's sequence."""
    tok = pipe.tokenizer
    ids = tok(prompt, add_special_tokens=True).input_ids[: pipe.transformer.config.max_text_seq_length]
    piece = tok(word, add_special_tokens=False).input_ids
    n = len(piece)
    return [i + j for i in range(len(ids) - n + 1) if n and ids[i:i + n] == piece for j in range(n)]


def tokens_of(pipe, prompt: str) -> list[str]:
    """The prompt's tokens as strings (T5 pieces, ``▁`` marks a word start), without padding."""
    return pipe.tokenizer.convert_ids_to_tokens(pipe.tokenizer(prompt).input_ids)


def initial_noise(pipe, seed: int = 0) -> torch.Tensor:
    """Seeded Gaussian latents ``[1, F', C, h, w]`` at the model's native size (on the CPU)."""
    spec, tc = video_spec(pipe), pipe.transformer.config
    shape = (1, spec.latent_frames, tc.in_channels, tc.sample_height, tc.sample_width)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * pipe.scheduler.init_noise_sigma


@torch.no_grad()
def generate_with_recorder(pipe, caption: str, token_ids: list[int], steps: int = 20, seed: int = 0,
                           guidance: float = 6.0, record_steps=None, record_layers=None):
    """Plain text-to-video sampling (no source branch) with an :class:`AttentionRecorder` in every block.

    Returns frames ``[F, 3, H, W]`` and the recorder, whose ``text_to_video[(step, layer)]`` is
    ``[heads, T, N_video]`` (attention of every video query to each of the ``T`` recorded text tokens, for the
    conditional branch). ``record_steps``/``record_layers`` limit what is kept (None = all; keep few on big models).
    """
    rec = AttentionRecorder(token_ids, steps=record_steps, layers=record_layers)
    ctx = AnchorContext(mode="off", source_index=None, recorder=rec)
    timesteps = sampling_timesteps(pipe, steps)
    cond, uncond = encode_text(pipe, [caption]), encode_text(pipe, [""])
    with anchor_attention(pipe.transformer, ctx):
        x = denoise(pipe, initial_noise(pipe, seed).to(pipe.transformer.device), timesteps, cond, uncond,
                    guidance, context=ctx, progress=False)
    return decode_latents(pipe, x), rec


def word_attention(recorder: AttentionRecorder, spec, step: int | None = None, layer: int | None = None,
                   head: int | None = None) -> torch.Tensor:
    """``[F', h', w']``: attention each video token pays to the recorded word (summed over its tokens), averaged
    over the steps / layers / heads left as None."""
    keys = [k for k in recorder.text_to_video if step in (None, k[0]) and layer in (None, k[1])]
    maps = torch.stack([recorder.text_to_video[k] for k in keys]).sum(2).mean(0)  # [heads, N_video]
    return (maps.mean(0) if head is None else maps[head]).view(*spec.token_grid)


class _CaptureQK(AnchorExtendedAttnProcessor):
    """Stock attention (mode "off") that also stores this layer's queries and keys after RoPE."""

    def __init__(self, store: dict, layer: int, keep: bool):
        super().__init__(AnchorContext(mode="off", source_index=None), layer)
        self.store, self.keep = store, keep

    def _qkv(self, attn, hidden_states, text_len, image_rotary_emb):
        q, k, v = super()._qkv(attn, hidden_states, text_len, image_rotary_emb)
        if self.keep:
            self.store[self.layer] = (q.detach().float().cpu(), k.detach().float().cpu())
        return q, k, v


@torch.no_grad()
def capture_qk(pipe, latents: torch.Tensor, text: torch.Tensor, timestep: int, layers=None) -> dict:
    """One transformer call on latents ``[B, F', C, h, w]`` with text states ``[B, L, D]`` at ``timestep``.

    Returns ``{layer: (q, k)}``, each ``[B, heads, L + N, d]`` after RoPE, on the CPU (``layers``: which blocks to
    keep, None = all; on CogVideoX-5B keep one or two, they are large).
    """
    tr, store = pipe.transformer, {}
    before = dict(tr.attn_processors)
    tr.set_attn_processor({name: _CaptureQK(store, int(name.split(".")[1]),
                                            layers is None or int(name.split(".")[1]) in layers)
                           for name in before})
    try:
        predict_v(pipe, latents, text.expand(latents.shape[0], -1, -1), timestep, rotary_embeddings(pipe, latents))
    finally:
        tr.set_attn_processor(before)
    return store


def token_coords(spec) -> torch.Tensor:
    """``[N, 3]`` long: (latent frame, row, column) of every video token, in sequence order."""
    f, h, w = spec.token_grid
    return torch.stack(torch.meshgrid(torch.arange(f), torch.arange(h), torch.arange(w), indexing="ij"), -1).view(-1, 3)


def _video_attention(q: torch.Tensor, k: torch.Tensor, text_len: int, queries: torch.Tensor) -> torch.Tensor:
    """Softmax of video queries ``q[:, text_len + queries]`` over the video keys of ``k`` only, head-averaged:
    ``q, k [heads, L + N, d]`` -> ``[Q, N]`` (one head at a time, to stay small on big models)."""
    qv, kv = q[:, text_len:][:, queries], k[:, text_len:]
    scale = q.shape[-1] ** -0.5
    return sum(torch.softmax(qv[h] @ kv[h].T * scale, dim=-1) for h in range(q.shape[0])) / q.shape[0]


def locality_profile(q: torch.Tensor, k: torch.Tensor, text_len: int, spec, max_queries: int = 512,
                     seed: int = 0) -> torch.Tensor:
    """How attention falls off with distance on the token grid.

    ``q`` (queries of one batch item) and ``k`` (keys of the same or another item), ``[heads, L + N, d]``. Each
    video query's attention over the video keys (softmax over those keys only, heads averaged) is grouped by the
    distance ``max(|df|, |dy|, |dx|)`` between query and key tokens. Returns ``[D + 1]``: mean attention per key
    at each distance divided by the uniform ``1 / N`` (1.0 = no preference for that distance).
    """
    coords = token_coords(spec)
    n = coords.shape[0]
    g = torch.Generator().manual_seed(seed)
    queries = torch.arange(n) if n <= max_queries else torch.randperm(n, generator=g)[:max_queries]
    p = _video_attention(q, k, text_len, queries)  # [Q, N]
    dist = (coords[queries, None] - coords[None]).abs().amax(-1).flatten()
    mass = torch.zeros(int(dist.max()) + 1).scatter_add_(0, dist, p.flatten())
    count = torch.zeros_like(mass).scatter_add_(0, dist, torch.ones_like(p.flatten()))
    return mass / count * n


def query_map(q: torch.Tensor, k: torch.Tensor, text_len: int, spec, query: int) -> torch.Tensor:
    """``[F', h', w']``: where one video query (flattened token index ``query``) looks among the video keys."""
    return _video_attention(q, k, text_len, torch.tensor([query]))[0].view(*spec.token_grid)


def token_index(spec, frame: int, row: int, col: int) -> int:
    """Flattened index of the video token at (latent frame, row, column)."""
    _, h, w = spec.token_grid
    return (frame * h + row) * w + col


def key_change(qk_a: dict, qk_b: dict, text_len: int, spec, item: int = 0) -> dict[int, torch.Tensor]:
    """Per layer, ``[F', h', w']``: how much each video token's key moved between two captures
    (``|k_b - k_a|`` over heads and channels, relative to the mean key norm), e.g. before/after painting a patch."""
    out = {}
    for layer, (_, k_a) in qk_a.items():
        k_a, k_b = k_a[item, :, text_len:], qk_b[layer][1][item, :, text_len:]
        out[layer] = ((k_b - k_a).norm(dim=(0, 2)) / k_a.norm(dim=(0, 2)).mean()).view(*spec.token_grid)
    return out


# ------------------------------------------------------------------------------ chapter 3: planning
class ScriptedChat:
    """A stand-in vision-language model for offline demos of :func:`dynvfx.planning.dialogue.run_dialogue`.

    Called like every planning backend, ``ask(messages, reply_model) -> str``, it answers with ``replies`` in
    order and keeps a copy of each chat it was sent in ``sent`` (a list of message lists).
    """

    def __init__(self, replies: list[str]):
        self.replies, self.sent = list(replies), []

    def __call__(self, messages: list[dict], reply_model) -> str:
        self.sent.append(list(messages))
        return self.replies.pop(0)


def try_plan(frames: torch.Tensor, instruction: str, backend: str, model: str | None = None):
    """:func:`dynvfx.planning.plan_edit` for an optional notebook cell: prints the plan as JSON (without the raw
    reply) and returns it, or prints why the backend failed and returns None."""
    from dynvfx.planning import PlanningError, plan_edit

    try:
        plan = plan_edit(frames, instruction, backend=backend, model=model)
    except PlanningError as err:
        print(f"the {backend} planner failed:", err)
        return None
    print(plan.model_dump_json(indent=2, exclude={"raw_reply"}))
    return plan


def transcript(messages: list[dict], width: int = 100) -> str:
    """A chat (neutral message format) as text: one ``[role]`` block per message, images shown as ``[image]``,
    long texts cut to ``width`` characters per line and 12 lines per message."""
    import textwrap

    blocks = []
    for m in messages:
        parts = ["[image]" if p["type"] == "image" else p["text"] for p in m["content"]]
        lines = [line for part in parts for raw in part.splitlines() for line in textwrap.wrap(raw, width) or [""]]
        cut = lines[:12] + ([f"... ({len(lines) - 12} more lines)"] if len(lines) > 12 else [])
        blocks.append(f"[{m['role']}]\n" + "\n".join(cut))
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------- chapter 4: anchors & masking
def anchor_overlay(frames: torch.Tensor, token_mask: torch.Tensor, anchors: torch.Tensor, spec) -> torch.Tensor:
    """Frames ``[F, 3, H, W]`` with the O_orig token mask ``[F', h', w']`` tinted red and every anchor token
    (``[F', h', w']`` bool) marked by a yellow square in its centre."""
    from dynvfx.visualize import mask_video

    f, _, h, w = frames.shape
    s = spec.spatial_compression * spec.patch_size
    inner = lambda n: ((torch.arange(n) % s) >= s // 4) & ((torch.arange(n) % s) < s - s // 4)  # noqa: E731
    centre = inner(h)[:, None] & inner(w)[None, :]
    out = mask_video(frames, orig_mask=grid_to_pixels(token_mask, spec, f).bool())
    mark = grid_to_pixels(anchors, spec, f).bool() & centre
    return torch.where(mark, torch.tensor([1.0, 0.9, 0.1]).view(1, 3, 1, 1), out)


@torch.no_grad()
def anchor_mass_probe(pipe, inversion, caption: str, anchor_index: torch.Tensor | None, config,
                      strength: float | None = None, record_steps=None, record_layers=None,
                      source_caption: str | None = None):
    """The first refinement iteration (x_res = 0, so x_comp = x_orig): :func:`~dynvfx.refinement.refine` with one
    strength (default ``config.strengths[0]``), no segmentation and an :class:`AttentionRecorder`.

    ``anchor_index`` is used as a fixed draw (``anchor_draw="once"``); the source branch reads ``source_caption``
    (None: the inversion prompt). Returns ``(recorder, frames [F, 3, H, W])``; the recorder's
    ``anchor_mass[(step, layer)]`` ``[N_video]`` is the share of each edit query's attention spent on the anchors
    (0 at steps outside the injection window, where no source branch runs).
    """
    from dynvfx.refinement import refine

    rec = AttentionRecorder(steps=record_steps, layers=record_layers)
    cfg = config.replace(strengths=(strength or config.strengths[0],), anchor_draw="once",
                         source_text="source_caption" if source_caption is not None else "inversion_prompt")
    res = refine(pipe, inversion, caption, [], None, anchor_index, cfg, progress=False,
                 source_caption=source_caption, recorder=rec)
    return rec, res.iterations[0].frames_hat


def mean_anchor_mass(recorder: AttentionRecorder, spec) -> torch.Tensor:
    """``[F', h', w']``: the recorder's anchor mass averaged over every recorded step and layer."""
    return torch.stack(list(recorder.anchor_mass.values())).mean(0).view(*spec.token_grid)


# ------------------------------------------------------------------- chapter 5: residual refinement
def iteration_views(pipe, result) -> list[dict[str, torch.Tensor]]:
    """Per refinement iteration of a :class:`~dynvfx.refinement.RefinementResult`, four videos ``[F, 3, H, W]``:
    ``"x_comp (input)"`` decoded, ``"x_hat"`` decoded, ``"O_edit mask"`` and ``"|x_res|"`` (channel norm of the
    residual after the iteration, upsampled from the latent grid, one colour scale for all iterations)."""
    spec = video_spec(pipe)
    norms = [it.x_res[0].norm(dim=1) for it in result.iterations]  # [F', h, w] each
    vmax = max(float(n.max()) for n in norms) or 1.0
    views = []
    for it, norm in zip(result.iterations, norms):
        f = it.frames_hat.shape[0]
        views.append({"x_comp (input)": decode_latents(pipe, it.x_comp_in), "x_hat": it.frames_hat,
                      "O_edit mask": it.mask.float().expand(-1, 3, -1, -1),
                      "|x_res|": heat_rgb(grid_to_pixels(norm, spec, f), vmax)})
    return views


def run_variants(pipe, frames: torch.Tensor, plan, segmenter, config, variants: dict,
                 done: dict | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Run each variant on the same source and seed: ``{name: changes}`` where ``changes`` is a dict of config
    fields for :func:`~dynvfx.edit.run_edit` or a float, an SDEdit strength (then the O_edit mask is segmented in
    its output). ``done``: results already computed, ``{name: (frames, mask)}``.
    Returns ``{name: (frames [F, 3, H, W], O_edit mask [F, 1, H, W])}``."""
    from dynvfx.edit import run_edit, sdedit
    from dynvfx.masks import clean_mask

    out = dict(done or {})
    for name, changes in variants.items():
        if name in out:
            continue
        if isinstance(changes, dict):
            res = run_edit(pipe, frames, plan, segmenter, config.replace(**changes), progress=False)
            out[name] = (res.frames, res.edit_mask)
        else:
            video = sdedit(pipe, frames, plan.composited_caption, float(changes), config, progress=False)
            found = segmenter.segment(video, plan.objects_edit).union
            out[name] = (video, clean_mask(found, config.mask_open_radius, dilate_radius=config.mask_dilate_radius))
    return out


def load_benchmark():
    """The module ``benchmarks/toy_edit.py`` (held-out pairs: ``make_pairs``; per-edit scores: ``evaluate``)."""
    spec = importlib.util.spec_from_file_location("toy_edit_benchmark", REPO_ROOT / "benchmarks" / "toy_edit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmark_subset(pipe, n_pairs: int, variants: dict, config) -> dict[str, dict[str, float]]:
    """The toy benchmark on its first ``n_pairs`` held-out pairs: per variant (as in :func:`run_variants`), the
    mean of ``success`` (new object present in >= 80 % of frames), ``iou`` (source object kept), and PSNR / SSIM
    outside the O_edit mask versus the source (:mod:`dynvfx.metrics`)."""
    import numpy as np

    from dynvfx.planning import plan_edit
    from dynvfx.segmentation import get_segmenter
    from dynvfx.toy.examples import scene_frames

    bench, segmenter, rows = load_benchmark(), get_segmenter("toy"), {name: [] for name in variants}
    for scene, new, instruction in bench.make_pairs(n_pairs):
        source = scene_frames(scene)
        plan = plan_edit(source, instruction, backend="toy")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = run_variants(pipe, source, plan, segmenter, config, variants)
            for name, (video, mask) in outs.items():
                rows[name].append(bench.evaluate(video, source, scene, new, mask, segmenter))
    return {name: {key: float(np.mean([r[key] for r in rs])) for key in rs[0]} for name, rs in rows.items()}

