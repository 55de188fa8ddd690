"""Probes: small measurements of what the model does inside, for the chapters on inversion (01), attention
maps (02) and anchors (04). Each runs the library's own code (the attention processors, the sampler,
:func:`~dynvfx.refinement.refine`) and returns numbers or maps; drawing them is :mod:`dynvfx.figures`' job.

Shapes: frames ``[F, 3, H, W]``; latents ``[1, F', C, h, w]``; token-grid maps ``[F', h', w']``
(``VideoSpec.token_grid``), whose flattened order is the order of the video tokens in the transformer's sequence
(after the ``L`` text tokens).
"""

from __future__ import annotations

import dataclasses

import torch

from dynvfx.attention import (AnchorContext, AnchorExtendedAttnProcessor, AttentionRecorder, anchor_attention,
                              processors, project_qkv)
from dynvfx.pipeline import decode_latents, encode_text, execution_device, preset_guidance, rotary_embeddings
from dynvfx.config import refinement_schedule
from dynvfx.sampling import (add_noise, denoise, initial_noise, predict_v, predicted_x0, sampling_timesteps,
                             start_index)


# ------------------------------------------------------------------------- chapter 1: DDIM inversion
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


@torch.no_grad()
def reconstruct_from(pipe, inversion, start: int, noise: str = "inverted", seed: int = 0, prompt: str | None = None,
                     guidance: float = 1.0) -> torch.Tensor:
    """Latents ``[1, F', C, h, w]`` sampled back from the sampling timestep ``start`` (one of
    ``inversion.timesteps``) down the rest of the schedule, with ``prompt`` (None: the inversion's) and
    classifier-free ``guidance`` against the empty prompt (1: none).

    ``noise="inverted"`` starts from the kept latent ``inversion.at(start)``; ``"random"`` from x_orig noised to
    ``start`` with fresh Gaussian noise (``seed``), where SDEdit and every DynVFX refinement pass start.
    """
    if int(start) not in inversion.timesteps:
        raise KeyError(f"timestep {start} is not on this inversion's schedule {inversion.timesteps.tolist()}")
    if noise not in ("inverted", "random"):
        raise ValueError(f"noise must be 'inverted' or 'random', not {noise!r}")
    i = int((inversion.timesteps == int(start)).nonzero()[0, 0])
    x = inversion.latents[i] if noise == "inverted" else \
        add_noise(pipe, inversion.x_orig, int(start), torch.Generator().manual_seed(seed))
    cond = encode_text(pipe, [inversion.prompt if prompt is None else prompt])
    uncond = encode_text(pipe, [""]) if guidance != 1.0 else None
    sampling_timesteps(pipe, len(inversion.timesteps))  # the scheduler's step size follows this schedule
    return denoise(pipe, x.to(execution_device(pipe)), inversion.timesteps[i:], cond, uncond, guidance,
                   progress=False).cpu()


def reconstruction_error(pipe, inversion, start: int, noise: str = "inverted", seed: int = 0,
                         prompt: str | None = None, guidance: float = 1.0) -> float:
    """Latent RMSE(x_rec, x_orig) of :func:`reconstruct_from` (same arguments)."""
    x_rec = reconstruct_from(pipe, inversion, start, noise, seed, prompt, guidance)
    return (x_rec - inversion.x_orig).pow(2).mean().sqrt().item()


def reconstruction_errors(pipe, inversion, noise: str = "inverted", seed: int = 0, starts=None,
                          prompt: str | None = None, guidance: float = 1.0) -> list[tuple[int, float]]:
    """:func:`reconstruction_error` from each of ``starts`` (default: every kept timestep): ``[(t, rmse), ...]``."""
    starts = inversion.timesteps.tolist() if starts is None else starts
    return [(int(t), reconstruction_error(pipe, inversion, int(t), noise, seed, prompt, guidance)) for t in starts]

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


@torch.no_grad()
def generate_with_recorder(pipe, caption: str, token_ids: list[int], steps: int = 20, seed: int = 0,
                           guidance: float | None = None, record_steps=None, record_layers=None):
    """Plain text-to-video sampling (no source branch) with an :class:`AttentionRecorder` in every block.

    Returns frames ``[F, 3, H, W]`` and the recorder, whose ``text_to_video[(step, layer)]`` is
    ``[heads, T, N_video]`` (attention of every video query to each of the ``T`` recorded text tokens, for the
    conditional branch). ``record_steps``/``record_layers`` limit what is kept (None = all; keep few on big models).
    ``guidance=None``: :func:`dynvfx.pipeline.preset_guidance`.
    """
    guidance = preset_guidance(pipe) if guidance is None else guidance
    rec = AttentionRecorder(token_ids, steps=record_steps, layers=record_layers)
    ctx = AnchorContext(mode="off", source_index=None, recorder=rec)
    timesteps = sampling_timesteps(pipe, steps)
    cond, uncond = encode_text(pipe, [caption]), encode_text(pipe, [""])
    with anchor_attention(pipe.transformer, ctx):
        x = denoise(pipe, initial_noise(pipe, seed).to(pipe.transformer.device), timesteps, cond, uncond,
                    guidance, context=ctx, progress=False)
    return decode_latents(pipe, x), rec


def word_attention(recorder: AttentionRecorder, spec, step: int | None = None, layer: int | None = None,
                   head: int | None = None, tokens: list[int] | None = None) -> torch.Tensor:
    """``[F', h', w']``: attention each video token pays to the recorded word (summed over its tokens), averaged
    over the steps / layers / heads left as None. ``tokens``: only these text positions (of the recorded
    ``recorder.token_ids``, e.g. one word's :func:`word_token_ids` when several words were recorded)."""
    keys = [k for k in recorder.text_to_video if step in (None, k[0]) and layer in (None, k[1])]
    pos = slice(None) if tokens is None else [recorder.token_ids.index(i) for i in tokens]
    maps = torch.stack([recorder.text_to_video[k][:, pos] for k in keys]).sum(2).mean(0)  # [heads, N_video]
    return (maps.mean(0) if head is None else maps[head]).view(*spec.token_grid)


def only_tokens(recorder: AttentionRecorder, tokens: list[int]) -> AttentionRecorder:
    """A copy of ``recorder`` that keeps only the text positions ``tokens`` (e.g. one word of several recorded)."""
    pos = [recorder.token_ids.index(i) for i in tokens]
    out = AttentionRecorder(tokens, recorder.steps, recorder.layers)
    out.text_to_video = {key: maps[:, pos] for key, maps in recorder.text_to_video.items()}
    return out


@torch.no_grad()
def record_on_inversion(pipe, inversion, caption: str, token_ids: list[int], record_steps=None,
                        record_layers=None) -> AttentionRecorder:
    """Text-to-video attention while the model looks at the source as DynVFX's source branch does: one call per
    kept timestep on the inverted latent ``inversion.latents[i]`` with ``caption`` (no guidance, nothing sampled).

    The video is the source at every step, so its ground-truth masks apply. The recorder's step ``i`` is
    ``inversion.timesteps[i]``; ``text_to_video[(i, layer)]`` is ``[heads, T, N_video]``.
    """
    rec = AttentionRecorder(token_ids, steps=record_steps, layers=record_layers)
    ctx = AnchorContext(mode="off", source_index=None, recorder=rec)
    text, rope = encode_text(pipe, [caption]), rotary_embeddings(pipe, inversion.x_orig)
    with anchor_attention(pipe.transformer, ctx):
        for i, t in enumerate(inversion.timesteps.tolist()):
            if rec.steps is None or i in rec.steps:
                ctx.step = i
                predict_v(pipe, inversion.latents[i].to(execution_device(pipe)), text, t, rope)
    return rec


def token_coverage(mask: torch.Tensor, spec) -> torch.Tensor:
    """A pixel mask ``[F, 1, H, W]`` -> ``[F', h', w']`` float: the share of each video token's pixels (over its
    frames and its patch) that lie inside the mask."""
    from dynvfx.masks import to_latent_grid

    latent = to_latent_grid(mask, spec.temporal_compression, spec.spatial_compression, reduce="mean")
    return torch.nn.functional.avg_pool2d(latent, spec.patch_size)[:, 0]


def share_inside(attention: torch.Tensor, coverage: torch.Tensor) -> float:
    """The share of a map's total (``[F', h', w']``, e.g. a word's attention) that falls inside a mask, each token
    counted by its covered fraction (:func:`token_coverage`). A uniform map gives ``coverage.mean()``: chance."""
    return float((attention * coverage).sum() / attention.sum())


class _CaptureQK(AnchorExtendedAttnProcessor):
    """Stock attention (mode "off") that also stores this layer's queries and keys after RoPE."""

    def __init__(self, store: dict, layer: int, keep: bool):
        super().__init__(AnchorContext(mode="off", source_index=None), layer)
        self.store, self.keep = store, keep

    def qkv(self, attn, hidden_states, text_len, image_rotary_emb):
        q, k, v = super().qkv(attn, hidden_states, text_len, image_rotary_emb)
        if self.keep:
            self.store[self.layer] = (q.detach().float().cpu(), k.detach().float().cpu())
        return q, k, v


@torch.no_grad()
def capture_qk(pipe, latents: torch.Tensor, text: torch.Tensor, timestep: int, layers=None) -> dict:
    """One transformer call on latents ``[B, F', C, h, w]`` with text states ``[B, L, D]`` at ``timestep``.

    Returns ``{layer: (q, k)}``, each ``[B, heads, L + N, d]`` after RoPE, on the CPU (``layers``: which blocks to
    keep, None = all; on CogVideoX-5B keep one or two, they are large).
    """
    store = {}
    with processors(pipe.transformer, lambda layer: _CaptureQK(store, layer, layers is None or layer in layers)):
        predict_v(pipe, latents, text.expand(latents.shape[0], -1, -1), timestep, rotary_embeddings(pipe, latents))
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


@torch.no_grad()
def edit_attention(call: "AttentionCall", spec, queries: torch.Tensor, text_tokens=(), chunk: int = 1024):
    """Where the edit's video queries look in a captured extending call (:func:`capture_anchor_call`): the
    softmax over [the edit's own keys; the source's keys at the anchors], heads averaged. Returns two
    ``[F', h', w']`` maps:

    - on the source's grid, the attention that the edit queries at ``queries`` (``[F', h', w']`` bool, e.g. the
      new object's tokens) pay to each anchor key, summed over those queries, at the anchor's position (0 where
      there is no anchor);
    - on the edit's grid, the attention each edit video query pays to the text positions ``text_tokens`` (a word
      of the edit's caption): the raw cross-attention map of that word.
    """
    q, k, _ = project_qkv(call.attn, call.hidden, call.text_len, call.rope)
    L, a = call.text_len, call.anchor_index.to(k.device)
    keys = torch.cat([k[0], k[1][:, L + a]], 1).float()  # [heads, L + N + A]: the edit's own, then the anchors
    on_anchors, on_words, chosen = torch.zeros(len(a)), [], queries.flatten()
    for start in range(L, q.shape[2], chunk):
        p = torch.softmax(q[0][:, start:start + chunk].float() @ keys.transpose(1, 2) * q.shape[-1] ** -0.5, -1)
        p = p.mean(0).cpu()  # [chunk, L + N + A]
        on_anchors += p[chosen[start - L:start - L + p.shape[0]], -len(a):].sum(0)
        on_words.append(p[:, list(text_tokens)].sum(-1))
    grid = torch.zeros(chosen.numel()).index_add_(0, a.cpu(), on_anchors)
    return grid.view(*spec.token_grid), torch.cat(on_words).view(*spec.token_grid)


# ----------------------------------------------------------------------- chapter 4: anchors & masking
def mean_anchor_mass(recorder: AttentionRecorder, spec, steps=None, layers=None) -> torch.Tensor:
    """``[F', h', w']``: the recorder's anchor mass averaged over the recorded steps and layers (``steps`` /
    ``layers``: only those, e.g. :func:`injection_steps`; None = all recorded)."""
    keys = [k for k in recorder.anchor_mass if (steps is None or k[0] in steps) and (layers is None or k[1] in layers)]
    return torch.stack([recorder.anchor_mass[k] for k in keys]).mean(0).view(*spec.token_grid)


def injection_steps(pipe, config, passes=None) -> list[int]:
    """The recorder's step keys at which the source branch runs (inside the injection window); the keys count
    denoising steps across the refinement passes, as :func:`~dynvfx.refinement.refine` does. ``passes``: only
    those passes (0-based; None = all). Outside the window the recorded anchor mass is 0 by design."""
    steps, first = [], 0
    for k, p in enumerate(refinement_schedule(config)):
        if passes is None or k in passes:
            steps += [first + i - p.start for i in p.window]
        first += config.num_inference_steps - p.start
    return steps


@dataclasses.dataclass
class AttentionCall:
    """What one self-attention layer received and returned in an extending call (see :func:`capture_anchor_call`).

    Attributes:
        attn: the layer's ``Attention`` module (``to_q``, ``to_k``, ``to_v``, ``norm_q``, ``norm_k``, ``to_out``).
        hidden: ``[2, L + N, D]`` its input, text tokens first, for the batch [edit (conditional), source].
        text_len: ``L``. rope: the rotary embeddings (cos, sin) of the ``N`` video tokens.
        anchor_index: ``[A]`` the anchors (indices into the ``N`` video tokens).
        output: ``[2, L + N, D]`` what the layer returned (after ``to_out``), text tokens first.
        timestep: the denoising timestep of the call.
    """

    attn: torch.nn.Module
    hidden: torch.Tensor
    text_len: int
    rope: tuple
    anchor_index: torch.Tensor
    output: torch.Tensor
    timestep: int


class _CaptureCall(AnchorExtendedAttnProcessor):
    """The library's processor, unchanged, that also keeps its inputs and output at one layer."""

    def __init__(self, context: AnchorContext, layer: int, store: dict | None):
        super().__init__(context, layer)
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask=None, image_rotary_emb=None):
        video, text = super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        if self.store is not None:
            self.store.update(attn=attn, hidden=torch.cat([encoder_hidden_states, hidden_states], 1).detach(),
                              text_len=encoder_hidden_states.shape[1], rope=image_rotary_emb,
                              output=torch.cat([text, video], 1).detach())
        return video, text


@torch.no_grad()
def capture_anchor_call(pipe, inversion, composited_caption: str, source_caption: str, anchor_index: torch.Tensor,
                        config, layer: int, strength: float | None = None) -> AttentionCall:
    """One real extending call, as the first step of the first refinement pass makes it: x_orig noised to the
    pass's timestep (``strength``, default ``config.strengths[0]``; the pass's own seeded noise) beside the
    inverted source at that timestep, texts [P_comp, source caption], the batch [edit, source] (the authors'
    layout), :class:`~dynvfx.attention.AnchorExtendedAttnProcessor` with ``config.attention_mode`` and the fixed
    ``anchor_index`` in every block. Returns what block ``layer``'s self-attention received and returned."""
    timesteps = sampling_timesteps(pipe, config.num_inference_steps)
    t = int(timesteps[start_index(len(timesteps), strength or config.strengths[0])])
    x_t = add_noise(pipe, inversion.x_orig, t, config.generator())
    latents = torch.cat([x_t, inversion.at(t)])
    text = torch.cat([encode_text(pipe, [composited_caption]), encode_text(pipe, [source_caption])])
    ctx, store = AnchorContext(mode=config.attention_mode, anchor_index=anchor_index, source_index=1), {}
    with processors(pipe.transformer, lambda i: _CaptureCall(ctx, i, store if i == layer else None)):
        predict_v(pipe, latents, text, t, rotary_embeddings(pipe, latents))
    return AttentionCall(anchor_index=anchor_index, timestep=t, **store)


