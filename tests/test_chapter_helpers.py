"""Helpers that chapters 03-05 call: the captured extending attention call (04), the steps inside the injection
window (04, 05), the chapters' video choice and the cost note printed before heavy cells (all)."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.embeddings import apply_rotary_emb

from dynvfx.config import DynVFXConfig


@pytest.fixture(scope="module")
def small():
    """A tiny random pipeline (9 frames, 32x32) and an Inversion-shaped stand-in on a 10-step schedule."""
    from conftest import tiny_pipeline

    from dynvfx.inversion import Inversion
    from dynvfx.pipeline import encode_video
    from dynvfx.sampling import sampling_timesteps

    pipe = tiny_pipeline(frames=9, height=32, width=32)
    x_orig = encode_video(pipe, torch.rand(9, 3, 32, 32))
    timesteps = sampling_timesteps(pipe, 10)
    g = torch.Generator().manual_seed(1)
    latents = torch.randn((len(timesteps), *x_orig.shape), generator=g)
    return pipe, Inversion(x_orig, timesteps, latents, "", 10)


def _explicit(call, anchors):
    """The notebook's cell: softmax attention of the edit's queries over [own keys; source keys at anchors]."""
    attn, h, L = call.attn, call.hidden, call.text_len
    heads = lambda x: x.unflatten(-1, (attn.heads, -1)).transpose(1, 2)  # noqa: E731
    q, k, v = heads(attn.to_q(h)), heads(attn.to_k(h)), heads(attn.to_v(h))
    q, k = attn.norm_q(q), attn.norm_k(k)
    q, k = (torch.cat([x[:, :, :L], apply_rotary_emb(x[:, :, L:], call.rope)], 2) for x in (q, k))
    keys, values = torch.cat([k[0], k[1][:, L + anchors]], 1), torch.cat([v[0], v[1][:, L + anchors]], 1)
    p = torch.softmax(q[0] @ keys.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
    return attn.to_out[0]((p @ values).transpose(0, 1).flatten(1))


@torch.no_grad()
def test_captured_call_is_the_extended_attention_written_out(small):
    from dynvfx.probes import capture_anchor_call

    pipe, inv = small
    cfg = DynVFXConfig.toy().replace(num_inference_steps=10)
    anchors = torch.tensor([0, 3, 5, 10])
    call = capture_anchor_call(pipe, inv, "a red ball", "a blue ball", anchors, cfg, layer=1)
    assert call.hidden.shape[0] == 2 and call.output.shape == call.hidden.shape
    assert call.timestep == 899  # strength 0.92 on 10 steps starts at index 1
    assert torch.allclose(_explicit(call, anchors), call.output[0], atol=1e-5)
    # the anchors matter: other anchors, or none, give another output (so the comparison can fail)
    assert not torch.allclose(_explicit(call, torch.tensor([1, 2])), call.output[0], atol=1e-4)
    assert not torch.allclose(_explicit(call, anchors[:0]), call.output[0], atol=1e-4)
    # the library's processors are back in place
    assert all(type(p).__name__ == "CogVideoXAttnProcessor2_0" for p in pipe.transformer.attn_processors.values())


@torch.no_grad()
def test_edit_attention_places_the_chosen_queries_attention_on_the_anchors_positions(small):
    from dynvfx.pipeline import video_spec
    from dynvfx.probes import capture_anchor_call, edit_attention

    pipe, inv = small
    spec = video_spec(pipe)
    anchors = torch.tensor([0, 3, 5, 10])
    call = capture_anchor_call(pipe, inv, "a red ball", "a blue ball", anchors, DynVFXConfig.toy().replace(
        num_inference_steps=10), layer=1)
    queries = torch.zeros(spec.token_grid, dtype=torch.bool)
    queries.view(-1)[[2, 3, 7]] = True
    on_anchors, on_words = edit_attention(call, spec, queries, text_tokens=[1, 2], chunk=5)  # several chunks
    attn, h, L = call.attn, call.hidden, call.text_len
    heads = lambda x: x.unflatten(-1, (attn.heads, -1)).transpose(1, 2)  # noqa: E731
    q, k = attn.norm_q(heads(attn.to_q(h))), attn.norm_k(heads(attn.to_k(h)))
    q, k = (torch.cat([x[:, :, :L], apply_rotary_emb(x[:, :, L:], call.rope)], 2) for x in (q, k))
    p = torch.softmax(q[0, :, L:] @ torch.cat([k[0], k[1][:, L + anchors]], 1).transpose(1, 2)
                      / q.shape[-1] ** 0.5, dim=-1).mean(0)  # [N, L + N + A]
    expected = torch.zeros(queries.numel())
    expected[anchors] = p[queries.flatten(), -len(anchors):].sum(0)
    assert torch.allclose(on_anchors.flatten(), expected, atol=1e-6)
    assert on_anchors.flatten()[[1, 2, 4]].abs().sum() == 0 and on_anchors.sum() > 0  # only at the anchors
    assert torch.allclose(on_words.flatten(), p[:, [1, 2]].sum(-1), atol=1e-6)


def test_injection_steps_are_where_the_recorder_sees_anchors(small):
    from dynvfx.attention import AttentionRecorder
    from dynvfx.probes import injection_steps, mean_anchor_mass
    from dynvfx.refinement import refine

    pipe, inv = small
    cfg = DynVFXConfig.toy().replace(num_inference_steps=10, strengths=(0.9, 0.5))
    # 10 steps, window (0.9, 0.6): timesteps[1:4]; pass 1 starts at index 1 (9 steps), pass 2 at index 5 (5 steps)
    assert injection_steps(pipe, cfg) == [0, 1, 2]
    assert injection_steps(pipe, cfg, passes=[1]) == []
    assert injection_steps(pipe, cfg.replace(injection_max_timestep=1.0, injection_min_timestep=0.0),
                           passes=[1]) == [9, 10, 11, 12, 13]
    rec = AttentionRecorder()
    with pytest.warns(UserWarning, match="token mask"):  # no O_orig token mask: these six anchors serve every call
        refine(pipe, inv, "a red ball", [], None, torch.arange(6), cfg, progress=False, source_caption="a ball",
               recorder=rec)
    with_anchors = sorted({s for (s, _), m in rec.anchor_mass.items() if m.sum() > 0})
    assert with_anchors == injection_steps(pipe, cfg)
    from dynvfx.pipeline import video_spec

    spec = video_spec(pipe)
    inside = mean_anchor_mass(rec, spec, steps=injection_steps(pipe, cfg))
    assert inside.shape == spec.token_grid and inside.mean() > mean_anchor_mass(rec, spec).mean()
    assert mean_anchor_mass(rec, spec, steps=[5], layers=[0]).sum() == 0


def test_source_video_never_needs_a_video_argument(monkeypatch, capsys, tmp_path):
    from dynvfx import notebook
    from dynvfx.paths import EXAMPLES_DIR
    from dynvfx.toy.examples import EXAMPLES, example_frames

    frames, instruction = notebook.source_video(None, "toy")
    assert torch.equal(frames, example_frames("blue_ball_down")) and instruction == EXAMPLES["blue_ball_down"][3]
    frames, instruction = notebook.source_video(None, "toy", video=EXAMPLES_DIR / "green_ball_left.mp4")
    assert frames.shape == (17, 3, 48, 48) and instruction == EXAMPLES["green_ball_left"][3]
    monkeypatch.setattr(notebook, "REAL_VIDEO", tmp_path / "missing.mp4")
    frames, instruction = notebook.source_video(None, "THUDM/CogVideoX-2b")
    note = capsys.readouterr().out
    assert "missing.mp4 is not here" in note and "'blue_ball_down'" in note and "VIDEO = " in note
    assert instruction == EXAMPLES["blue_ball_down"][3]
    assert notebook.source_video(None, "toy", instruction="add a red ball moving up")[1] == "add a red ball moving up"


def test_a_shipped_clip_is_found_by_name_from_any_folder(monkeypatch, tmp_path):
    from dynvfx import notebook
    from dynvfx.paths import EXAMPLES_DIR
    from dynvfx.toy.examples import EXAMPLES

    monkeypatch.chdir(tmp_path)  # as on Colab: the working folder is not notebooks/
    assert notebook.video_path("yellow_ball_up") == EXAMPLES_DIR / "yellow_ball_up.mp4"
    assert str(notebook.video_path("clips/yellow_ball_up")) == "clips/yellow_ball_up"  # a path stays a path
    frames, instruction = notebook.source_video(None, "toy", video="yellow_ball_up")
    assert frames.shape[0] == 17 and instruction == EXAMPLES["yellow_ball_up"][3]
    assert notebook.toy_truth("yellow_ball_up")[1][:3] == ["yellow", "ball", "up"]


def test_cost_is_printed_for_real_models_only(capsys):
    from dynvfx import notebook

    notebook.print_cost("toy", DynVFXConfig.toy())
    assert capsys.readouterr().out == ""
    if not torch.cuda.is_available():
        assert notebook.gpu_key() == "h100"
    notebook.print_cost("THUDM/CogVideoX-2b", DynVFXConfig.classroom())
    out = capsys.readouterr().out
    assert out.startswith("ESTIMATE for THUDM/CogVideoX-2b") and "total" in out


@torch.no_grad()
def test_anchor_change_is_zero_without_anchors_and_grows_with_them(small):
    import dataclasses

    from dynvfx.lab.box_bench import anchor_change
    from dynvfx.pipeline import video_spec
    from dynvfx.probes import capture_anchor_call

    pipe, inv = small
    queries = torch.zeros(video_spec(pipe).token_grid, dtype=torch.bool)
    queries.view(-1)[[2, 3, 7]] = True
    call = capture_anchor_call(pipe, inv, "a red ball", "a blue ball", torch.tensor([0, 3, 5, 10]),
                               DynVFXConfig.toy().replace(num_inference_steps=10), layer=1)
    some = anchor_change(call, queries)
    more = anchor_change(dataclasses.replace(call, anchor_index=torch.arange(queries.numel())), queries)
    assert anchor_change(dataclasses.replace(call, anchor_index=torch.tensor([], dtype=torch.long)), queries) == 0
    assert 0 < some < more
