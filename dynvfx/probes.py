"""Probes: small measurements of what the model does inside, for the chapters on inversion (01), attention
maps (02) and anchors (04). Each runs the library's own code (the attention processors, the sampler,
:func:`~dynvfx.refinement.refine`) and returns numbers or maps; drawing them is :mod:`dynvfx.figures`' job.

Shapes: frames ``[F, 3, H, W]``; latents ``[1, F', C, h, w]``; token-grid maps ``[F', h', w']``
(``VideoSpec.token_grid``), whose flattened order is the order of the video tokens in the transformer's sequence
(after the ``L`` text tokens).
"""

from __future__ import annotations

import torch

from dynvfx.attention import AnchorContext, AnchorExtendedAttnProcessor, AttentionRecorder, anchor_attention
from dynvfx.pipeline import decode_latents, encode_text, rotary_embeddings
from dynvfx.sampling import add_noise, denoise, initial_noise, predict_v, predicted_x0, sampling_timesteps


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


# ----------------------------------------------------------------------- chapter 4: anchors & masking
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


