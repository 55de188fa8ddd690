"""Anchor Extended Attention: equivalences with diffusers' processor and with an explicit masked reference."""

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0

from dynvfx import anchors
from dynvfx.attention import AnchorContext, AnchorExtendedAttnProcessor, AttentionRecorder, anchor_attention
from dynvfx.pipeline import rotary_embeddings


def _inputs(pipe, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    tr = pipe.transformer
    f = (tr.config.sample_frames - 1) // 4 + 1
    x = torch.randn(batch, f, tr.config.in_channels, tr.config.sample_height, tr.config.sample_width, generator=g)
    text = torch.randn(batch, tr.config.max_text_seq_length, tr.config.text_embed_dim, generator=g)
    return x, text, rotary_embeddings(pipe, x)


def _forward(pipe, x, text, rope, t=500):
    return pipe.transformer(hidden_states=x, encoder_hidden_states=text, timestep=torch.full((x.shape[0],), t),
                            image_rotary_emb=rope, return_dict=False)[0]


def test_off_mode_equals_diffusers_processor(tiny_pipe):
    x, text, rope = _inputs(tiny_pipe)
    tiny_pipe.transformer.set_attn_processor(CogVideoXAttnProcessor2_0())
    ref = _forward(tiny_pipe, x, text, rope)
    with anchor_attention(tiny_pipe.transformer, AnchorContext(mode="off")):
        out = _forward(tiny_pipe, x, text, rope)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # and the stock processors are back afterwards
    assert all(type(p) is CogVideoXAttnProcessor2_0 for p in tiny_pipe.transformer.attn_processors.values())


def test_source_branch_runs_unchanged_and_edit_changes(tiny_pipe):
    x, text, rope = _inputs(tiny_pipe)
    tiny_pipe.transformer.set_attn_processor(CogVideoXAttnProcessor2_0())
    ref = _forward(tiny_pipe, x, text, rope)
    n = x.shape[1] * (x.shape[3] // 2) * (x.shape[4] // 2)
    ctx = AnchorContext(mode="full", anchor_index=torch.arange(n), source_index=0)
    with anchor_attention(tiny_pipe.transformer, ctx):
        out = _forward(tiny_pipe, x, text, rope)
    torch.testing.assert_close(out[0], ref[0], rtol=1e-5, atol=1e-5)
    assert (out[1:] - ref[1:]).abs().max() > 1e-3


def test_gathered_anchors_equal_an_explicit_attention_mask():
    """The processor gathers anchor keys; a reference attends to all source keys with -inf on non-anchors."""
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    attn = Attention(query_dim=32, heads=4, dim_head=8, qk_norm="layer_norm", eps=1e-6, bias=True, out_bias=True,
                     processor=CogVideoXAttnProcessor2_0())
    b, n_text, n_vid = 3, 5, 24
    text, vid = torch.randn(b, n_text, 32), torch.randn(b, n_vid, 32)
    idx = torch.tensor([1, 4, 5, 10, 23])
    proc = AnchorExtendedAttnProcessor(AnchorContext(mode="masked", anchor_index=idx, source_index=0))
    out_vid, out_text = proc(attn, vid, text)

    x = torch.cat([text, vid], 1)
    q, k, v = (p(x).view(b, -1, 4, 8).transpose(1, 2) for p in (attn.to_q, attn.to_k, attn.to_v))
    q, k = attn.norm_q(q), attn.norm_k(k)
    allowed = torch.full((n_vid,), float("-inf"))
    allowed[idx] = 0.0
    bias = torch.cat([torch.zeros(n_text + n_vid), torch.full((n_text,), float("-inf")), allowed])
    for e in (1, 2):
        k_ext = torch.cat([k[e], k[0]], dim=1)
        v_ext = torch.cat([v[e], v[0]], dim=1)
        ref = F.scaled_dot_product_attention(q[e], k_ext, v_ext, attn_mask=bias.expand(n_text + n_vid, -1))
        ref = attn.to_out[0](ref.transpose(0, 1).reshape(-1, 32))
        torch.testing.assert_close(out_text[e], ref[:n_text], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out_vid[e], ref[n_text:], rtol=1e-5, atol=1e-5)


def test_anchor_sampling_is_seeded_and_respects_keep_rates():
    mask = torch.zeros(4, 30, 30, dtype=torch.bool)
    mask[:, 5:20, 5:20] = True
    a = anchors.anchor_grid(mask, "anchor", 0.7, 0.05, torch.Generator().manual_seed(3))
    b = anchors.anchor_grid(mask, "anchor", 0.7, 0.05, torch.Generator().manual_seed(3))
    c = anchors.anchor_grid(mask, "anchor", 0.7, 0.05, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    fg, bg = a[mask].float().mean().item(), a[~mask].float().mean().item()
    assert 0.6 < fg < 0.8 and 0.02 < bg < 0.09
    assert torch.equal(a[0], a[3])  # one draw per position, shared across latent frames
    assert torch.equal(anchors.anchor_grid(mask, "masked"), mask)
    assert anchors.anchor_grid(mask, "full").all() and not anchors.anchor_grid(mask, "off").any()
    with pytest.raises(ValueError):
        anchors.anchor_grid(mask, "sideways")


def test_recorder_measures_anchor_mass_and_text_attention(tiny_pipe):
    x, text, rope = _inputs(tiny_pipe)
    n = x.shape[1] * (x.shape[3] // 2) * (x.shape[4] // 2)
    rec = AttentionRecorder(token_ids=[0, 2], layers=[1], chunk_elems=512)
    for mode, idx in (("full", torch.arange(n)), ("masked", torch.arange(3))):
        rec.anchor_mass.clear()
        ctx = AnchorContext(mode=mode, anchor_index=idx, source_index=0, recorder=rec)
        with anchor_attention(tiny_pipe.transformer, ctx):
            _forward(tiny_pipe, x, text, rope)
        mass = rec.anchor_mass[(0, 1)]
        assert mass.shape == (n,) and ((mass >= 0) & (mass <= 1)).all()
        if mode == "full":
            full_mass = mass.mean().item()
    assert 0.2 < full_mass < 0.8  # doubling the keys with similar ones takes a good share of the mass
    assert mass.mean().item() < full_mass  # 3 anchors draw less than all of them
    assert rec.text_to_video[(0, 1)].shape == (2, 2, n)  # heads, tokens, video queries
