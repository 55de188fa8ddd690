"""Anchor Extended Attention as a diffusers attention processor for CogVideoX.

The edit and the source video run side by side in one batch: item ``context.source_index`` is the source branch
(its latent is the inverted source at the current timestep), every other item is an edit branch (e.g. the
unconditional and conditional halves of classifier-free guidance). In each self-attention layer:

- the source branch attends to itself, exactly as the stock ``CogVideoXAttnProcessor2_0`` does;
- each edit branch's text *and* video queries attend to their own keys/values plus the source's video
  keys/values at the anchor tokens ``context.anchor_index`` (after RoPE, so positions line up).

Modes: ``"off"`` (stock attention), ``"full"`` (all source video tokens), ``"masked"`` (O_orig mask tokens),
``"anchor"`` (mask tokens kept with probability fg_keep plus background tokens with bg_keep); the token set is
chosen by :func:`dynvfx.anchors.anchor_grid`. It is either stored once in the context (``anchor_index``) or,
as in the authors' code, drawn anew in every extending attention call (``context.draw = "per_call"``, from
``context.token_mask`` with the context's seeded generator: same seed, same draws). Tensors are
``[B, heads, tokens, dim]``; the extension gathers the anchor keys (no ``tokens x tokens`` mask is built).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import apply_rotary_emb

from dynvfx.config import ATTENTION_MODES, DynVFXConfig

MODES = ATTENTION_MODES  # the modes, defined with the config field that picks one


@dataclasses.dataclass
class AnchorContext:
    """State shared by every installed processor; the sampler updates it as it goes.

    Attributes:
        mode: one of :data:`MODES`.
        anchor_index: ``[A]`` long, indices of anchor tokens in the flattened ``F' x h' x w'`` video-token grid
            (ignored for ``"off"``; with ``draw="per_call"`` it holds the latest draw).
        source_index: batch item holding the source branch, or None when the batch has no source (plain sampling).
        recorder: optional :class:`AttentionRecorder`.
        step: index of the current denoising step (for the recorder).
        draw: ``"once"`` (use ``anchor_index`` as given) or ``"per_call"`` (mode ``"anchor"`` only: every
            extending attention call draws new anchors from ``token_mask`` with ``generator``).
        token_mask: ``[F', h', w']`` bool O_orig token mask, for per-call draws.
        fg_keep, bg_keep: keep rates of per-call draws.
        generator: seeded CPU ``torch.Generator`` of per-call draws.
        draws: number of per-call draws made so far.
        recording: False silences the recorder (e.g. during a separate unconditional call).
    """

    mode: str = "anchor"
    anchor_index: torch.Tensor | None = None
    source_index: int | None = 0
    recorder: "AttentionRecorder | None" = None
    step: int = 0
    draw: str = "once"
    token_mask: torch.Tensor | None = None
    fg_keep: float = DynVFXConfig.fg_keep
    bg_keep: float = DynVFXConfig.bg_keep
    generator: torch.Generator | None = None
    draws: int = 0
    recording: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.draw not in ("once", "per_call"):
            raise ValueError(f"draw must be 'once' or 'per_call', not {self.draw!r}")
        if self.per_call and self.token_mask is None:
            raise ValueError("per-call anchor draws need the O_orig token mask (token_mask)")

    @classmethod
    def from_config(cls, config: DynVFXConfig, anchor_index: torch.Tensor | None = None,
                    token_mask: torch.Tensor | None = None, recorder: "AttentionRecorder | None" = None,
                    source: bool = True) -> "AnchorContext":
        """The context of a refinement run, read from ``config``: its mode (``"off"`` without a ``source``
        branch), keep rates, and in mode ``"anchor"`` anchors drawn anew in every call, seeded with ``config.seed``
        (from the O_orig ``token_mask``; without it, with a warning, the ``anchor_index`` given serves every
        call)."""
        per_call = source and config.attention_mode == "anchor"
        if per_call and token_mask is None:
            warnings.warn("per-call anchor draws need the O_orig token mask; using anchor_index for every call",
                          stacklevel=3)
            per_call = False
        return cls(mode=config.attention_mode if source else "off", anchor_index=anchor_index, recorder=recorder,
                   draw="per_call" if per_call else "once", token_mask=token_mask if per_call else None,
                   fg_keep=config.fg_keep, bg_keep=config.bg_keep,
                   generator=config.generator() if per_call else None)

    @property
    def per_call(self) -> bool:
        return self.draw == "per_call" and self.mode == "anchor"

    @property
    def extends(self) -> bool:
        has_anchors = self.anchor_index is not None or self.per_call
        return self.mode != "off" and self.source_index is not None and has_anchors

    def next_anchor_index(self) -> torch.Tensor:
        """``[A]`` the anchors of the current attention call (a new seeded draw when ``per_call``)."""
        if self.per_call:
            from dynvfx.anchors import anchor_grid, anchor_index

            grid = anchor_grid(self.token_mask, "anchor", self.fg_keep, self.bg_keep, self.generator)
            self.anchor_index = anchor_index(grid)
            self.draws += 1
        return self.anchor_index

    def wants_record(self, layer: int) -> bool:
        return self.recording and self.recorder is not None and self.recorder.wants(self.step, layer)


def project_qkv(attn: Attention, hidden_states: torch.Tensor, text_len: int, image_rotary_emb=None):
    """Queries, keys and values ``[B, heads, L + N, d]`` of one attention layer ``attn`` on ``hidden_states
    [B, L + N, D]`` (the text's L tokens first, then the video's N), as CogVideoX computes them: projected, split into
    heads, normalised per head, and rotated by RoPE (``image_rotary_emb``) on the video tokens only."""
    b = hidden_states.shape[0]
    q, k, v = (proj(hidden_states).view(b, -1, attn.heads, attn.inner_dim // attn.heads).transpose(1, 2)
               for proj in (attn.to_q, attn.to_k, attn.to_v))
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    if image_rotary_emb is not None:
        q = torch.cat([q[:, :, :text_len], apply_rotary_emb(q[:, :, text_len:], image_rotary_emb)], dim=2)
        k = torch.cat([k[:, :, :text_len], apply_rotary_emb(k[:, :, text_len:], image_rotary_emb)], dim=2)
    return q, k, v


class AnchorExtendedAttnProcessor:
    """Drop-in replacement of ``CogVideoXAttnProcessor2_0`` (same call signature) with anchor extension."""

    def __init__(self, context: AnchorContext, layer: int = 0):
        self.context = context
        self.layer = layer

    def qkv(self, attn: Attention, hidden_states, text_len, image_rotary_emb):
        """This layer's :func:`project_qkv`; a subclass may override it to look at q, k and v."""
        return project_qkv(attn, hidden_states, text_len, image_rotary_emb)

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb=None):
        """``hidden_states [B, N_video, D]``, ``encoder_hidden_states [B, N_text, D]`` -> the same two shapes."""
        if attention_mask is not None:
            raise NotImplementedError("CogVideoX passes no attention mask; neither does this processor")
        text_len = encoder_hidden_states.shape[1]
        x = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        q, k, v = self.qkv(attn, x, text_len, image_rotary_emb)
        ctx = self.context
        if ctx.extends:
            out = self._extended(q, k, v, text_len)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
            if ctx.wants_record(self.layer):
                ctx.recorder.record(ctx.step, self.layer, q[-1], k[-1], text_len, n_anchor=0)
        b = x.shape[0]
        out = out.transpose(1, 2).reshape(b, -1, attn.inner_dim)
        out = attn.to_out[1](attn.to_out[0](out))
        return out[:, text_len:], out[:, :text_len]

    def _extended(self, q, k, v, text_len):
        ctx = self.context
        s = ctx.source_index
        idx = ctx.next_anchor_index().to(k.device) + text_len
        edit = [i for i in range(q.shape[0]) if i != s]
        k_anchor = k[s:s + 1, :, idx].expand(len(edit), -1, -1, -1)
        v_anchor = v[s:s + 1, :, idx].expand(len(edit), -1, -1, -1)
        k_edit = torch.cat([k[edit], k_anchor], dim=2)
        v_edit = torch.cat([v[edit], v_anchor], dim=2)
        out = torch.empty_like(q)
        out[s:s + 1] = F.scaled_dot_product_attention(q[s:s + 1], k[s:s + 1], v[s:s + 1])
        out[edit] = F.scaled_dot_product_attention(q[edit], k_edit, v_edit)
        if ctx.wants_record(self.layer):
            ctx.recorder.record(ctx.step, self.layer, q[edit[-1]], k_edit[-1], text_len, n_anchor=len(idx))
        return out


class AttentionRecorder:
    """Keeps small summaries of attention for the notebooks (computed in query chunks, never ``N x N`` at once).

    For the recorded branch (the last edit item, i.e. the conditional one) at the chosen steps and layers:
    - ``text_to_video[(step, layer)]``: ``[heads, T, N_video]``, attention that each video query pays to each
      chosen text token (``token_ids`` index the text sequence), per head (average over dim 0 for all heads);
    - ``anchor_mass[(step, layer)]``: ``[N_video]``, share of each video query's attention on the anchors.

    Args:
        token_ids: text-token positions to record (e.g. the tokens of "ball").
        steps, layers: which denoising steps / transformer blocks to record (None = all).
    """

    def __init__(self, token_ids: list[int] | None = None, steps=None, layers=None, chunk_elems: int = 2**24):
        self.token_ids = list(token_ids or [])
        self.steps = None if steps is None else set(steps)
        self.layers = None if layers is None else set(layers)
        self.chunk_elems = chunk_elems
        self.text_to_video: dict[tuple[int, int], torch.Tensor] = {}
        self.anchor_mass: dict[tuple[int, int], torch.Tensor] = {}

    def wants(self, step: int, layer: int) -> bool:
        return (self.steps is None or step in self.steps) and (self.layers is None or layer in self.layers)

    @torch.no_grad()
    def record(self, step: int, layer: int, q: torch.Tensor, k: torch.Tensor, text_len: int, n_anchor: int) -> None:
        """``q [heads, N_q, d]``, ``k [heads, N_k, d]``; the last ``n_anchor`` keys are the source anchors."""
        heads, n_q, d = q.shape
        n_k = k.shape[1]
        chunk = max(1, self.chunk_elems // (heads * n_k))
        tv, am = [], []
        for start in range(text_len, n_q, chunk):
            p = torch.softmax((q[:, start:start + chunk].float() @ k.float().transpose(1, 2)) / d**0.5, dim=-1)
            if self.token_ids:
                tv.append(p[:, :, self.token_ids].transpose(1, 2))  # [heads, T, c]
            p = p.mean(0)  # [c, N_k], head average
            am.append(p[:, n_k - n_anchor:].sum(-1) if n_anchor else torch.zeros(p.shape[0]))
        if self.token_ids:
            self.text_to_video[(step, layer)] = torch.cat(tv, dim=2).cpu()
        self.anchor_mass[(step, layer)] = torch.cat(am).cpu()


@contextlib.contextmanager
def processors(transformer, make: Callable[[int], object], blocks: list[int] | None = None):
    """``with processors(pipe.transformer, make): ...`` puts ``make(layer)`` on the self-attention of ``blocks``
    (default: all) with diffusers' ``set_attn_processor``, and puts the previous processors back after. The one
    installer of the package: the anchor processors and the probes' recording ones."""
    before = dict(transformer.attn_processors)
    chosen = set(range(len(transformer.transformer_blocks)) if blocks is None else blocks)
    layers = {name: int(name.split(".")[1]) for name in before}
    transformer.set_attn_processor({name: make(layers[name]) if layers[name] in chosen else proc
                                    for name, proc in before.items()})
    try:
        yield
    finally:
        transformer.set_attn_processor(before)


@contextlib.contextmanager
def anchor_attention(transformer, context: AnchorContext, blocks: list[int] | None = None):
    """``with anchor_attention(pipe.transformer, ctx): ...``: :class:`AnchorExtendedAttnProcessor` on ``blocks``
    (default: all), the previous processors restored after."""
    with processors(transformer, lambda layer: AnchorExtendedAttnProcessor(context, layer), blocks):
        yield context
