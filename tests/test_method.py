"""The method's plumbing on tiny random CogVideoX pipelines with CogVideoX-5B's structure (no trained weights)."""

import pytest
import torch

from conftest import SHARED_VIDEOS, BoxSegmenter, tiny_pipeline
from dynvfx.config import DynVFXConfig
from dynvfx.edit import prepare_source, run_edit
from dynvfx.inversion import cache_key, ddim_invert
from dynvfx.pipeline import encode_video, video_spec
from dynvfx.planning.schema import VFXPlan

FAST = DynVFXConfig(num_inference_steps=4, inversion_steps=8, strengths=(0.9, 0.5), mask_open_radius=0,
                    mask_dilate_radius=2, source_mask_dilate_radius=0)
PLAN = VFXPlan(instruction="add a thing", source_caption="a box on a couch", composited_caption="a thing on a box",
               objects_orig=["box"], objects_edit=["thing"])


def _real_frames(pipe):
    if not SHARED_VIDEOS.exists():
        pytest.skip(f"shared videos not found at {SHARED_VIDEOS}")
    frames, note = prepare_source(pipe, SHARED_VIDEOS / "box_frames")
    return frames, note


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_edit_runs_on_5b_structure(dtype):
    pipe = tiny_pipeline(dtype=dtype)
    spec = video_spec(pipe)
    assert (spec.num_frames, spec.temporal_compression, spec.spatial_compression, spec.patch_size) == (49, 4, 8, 2)
    assert pipe.transformer.config.use_rotary_positional_embeddings
    frames, note = _real_frames(pipe)
    assert frames.shape == (49, 3, 64, 96) and "resized 720x480 to 96x64" in note
    res = run_edit(pipe, frames, PLAN, BoxSegmenter(), FAST, progress=False)
    assert res.frames.shape == frames.shape and res.frames.dtype == torch.float32
    assert len(res.refinement.iterations) == 2 and all(it.found for it in res.refinement.iterations)
    # outside M the composite is exactly x_orig; inside it is not
    m = res.refinement.iterations[-1].latent_mask[None]  # [1, F', 1, h, w]
    x_comp, x_orig = res.refinement.x_comp, res.refinement.x_orig
    assert torch.equal((x_comp * (1 - m)), (x_orig * (1 - m)))
    assert (x_comp - x_orig).abs().max() > 0
    assert set(res.seconds) == {"encode", "inversion", "anchors", "refinement", "decode"}


def test_same_seed_same_output_and_different_seed_differs():
    pipe = tiny_pipeline(frames=9, height=32, width=48)
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    runs = [run_edit(pipe, frames, PLAN, BoxSegmenter(), FAST.replace(seed=s), progress=False).frames
            for s in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_nothing_found_keeps_the_residual_and_warns():
    pipe = tiny_pipeline(frames=9, height=32, width=48)
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    with pytest.warns(UserWarning, match="thing"):
        res = run_edit(pipe, frames, PLAN, BoxSegmenter(empty=True), FAST, progress=False)
    assert not any(it.found for it in res.refinement.iterations)
    assert torch.equal(res.refinement.x_comp, res.refinement.x_orig)


@pytest.mark.parametrize("mode", ["off", "full", "masked", "anchor"])
def test_every_attention_mode_runs(mode):
    pipe = tiny_pipeline(frames=9, height=32, width=48)
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    res = run_edit(pipe, frames, PLAN, BoxSegmenter(), FAST.replace(attention_mode=mode, strengths=(0.5,), bg_keep=0.5),
                   progress=False)
    n_anchor = int(res.anchor_grid.sum())
    total = res.anchor_grid.numel()
    expected = {"off": n_anchor == 0, "full": n_anchor == total, "masked": 0 < n_anchor < total,
                "anchor": 0 < n_anchor < total}
    assert expected[mode]


def test_inversion_keeps_sampling_timesteps_and_caches(tmp_path):
    pipe = tiny_pipeline(frames=9, height=32, width=48)
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    x = encode_video(pipe, frames)
    inv = ddim_invert(pipe, x, "", num_steps=4, inversion_steps=8, cache_dir=tmp_path, progress=False)
    assert inv.latents.shape == (4, *x.shape) and inv.timesteps.tolist() == sorted(inv.timesteps.tolist())[::-1]
    assert torch.equal(inv.at(int(inv.timesteps[2])), inv.latents[2])
    assert len(list(tmp_path.glob("*.pt"))) == 1
    again = ddim_invert(pipe, x, "", num_steps=4, inversion_steps=8, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.latents, inv.latents) and len(list(tmp_path.glob("*.pt"))) == 1
    k = cache_key(pipe, x, "", 4, 8)
    assert k != cache_key(pipe, x, "a box", 4, 8) and k != cache_key(pipe, x, "", 4, 4)
    assert k != cache_key(pipe, x + 1e-3, "", 4, 8)
    with torch.no_grad():
        pipe.transformer.proj_out.weight[0, 0] += 1.0  # new weights: the old cache must not be used
    assert cache_key(pipe, x, "", 4, 8) != k
    with pytest.raises(ValueError, match="multiple"):
        ddim_invert(pipe, x, "", num_steps=4, inversion_steps=6)
    with pytest.raises(KeyError):
        inv.at(123456)


def test_composites_outside_the_mask():
    """Outside the edit mask the result is the source's own pixels (default), or the decoded source latents (the
    model's reconstruction); inside it every composite is decode(x_comp)."""
    from dynvfx.pipeline import decode_latents

    pipe = tiny_pipeline(frames=9, height=32, width=48)
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(4))
    seg = BoxSegmenter(box=(0.0, 0.0, 0.3, 0.4))
    res = run_edit(pipe, frames, PLAN, seg, FAST.replace(composite="reconstruction"), progress=False)
    recon = decode_latents(pipe, res.refinement.x_orig)
    diff = (res.frames - recon).abs().amax(1, keepdim=True)
    assert diff[~res.edit_mask].max() == 0  # exactly the reconstruction outside
    assert diff[res.edit_mask].max() > 1e-3
    default = run_edit(pipe, frames, PLAN, seg, FAST, progress=False)
    outside = ~default.edit_mask.expand_as(frames)
    assert default.config.composite == "source" and torch.equal(default.frames[outside], frames[outside])
    assert not torch.equal(default.frames, frames)
    latent_only = run_edit(pipe, frames, PLAN, seg, FAST.replace(composite="latent"), progress=False)
    assert torch.equal(latent_only.frames, res.decoded) and torch.equal(default.decoded, res.decoded)
    assert torch.equal(latent_only.frames[res.edit_mask.expand_as(res.frames)],
                       res.frames[res.edit_mask.expand_as(res.frames)])


def test_real_720x480_video_with_the_toy_model(toy_pipe):
    """A real clip through the toy model: right frame count; outside the O_edit mask the output is the fitted
    input itself (default composite) or exactly the model's reconstruction of it (``composite="reconstruction"``)."""
    if not SHARED_VIDEOS.exists():
        pytest.skip(f"shared videos not found at {SHARED_VIDEOS}")
    frames, note = prepare_source(toy_pipe, SHARED_VIDEOS / "girl_living_room.mp4")
    assert frames.shape == (17, 3, 48, 48) and "17 evenly spaced frames of 49" in note
    cfg = DynVFXConfig.toy().replace(num_inference_steps=10, inversion_steps=10, strengths=(0.9, 0.6))
    res = run_edit(toy_pipe, frames, PLAN, BoxSegmenter(box=(0.5, 0.2, 0.9, 0.6)), cfg, progress=False)
    assert res.frames.shape == frames.shape
    outside = ~res.edit_mask.expand_as(res.frames)
    assert outside.any() and (~outside).any()
    assert torch.equal(res.frames[outside], frames[outside])
    assert not torch.equal(res.frames[~outside], frames[~outside])
    rec = run_edit(toy_pipe, frames, PLAN, BoxSegmenter(box=(0.5, 0.2, 0.9, 0.6)),
                   cfg.replace(composite="reconstruction"), progress=False)
    outside = ~rec.edit_mask.expand_as(rec.frames)
    assert outside.any() and torch.equal(rec.frames[outside], rec.reconstruction[outside])
    assert not torch.equal(rec.frames[outside], frames[outside])


def test_run_edit_records_attention_with_a_recorder():
    """An AttentionRecorder given to run_edit records during the real refinement: anchor mass only at the steps
    inside the injection window (where the source branch runs)."""
    from dynvfx.attention import AttentionRecorder
    from dynvfx.sampling import injection_window, sampling_timesteps, start_index

    pipe = tiny_pipeline(frames=9, height=32, width=48)
    frames = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(5))
    rec = AttentionRecorder(layers=[0])
    cfg = FAST.replace(bg_keep=0.5)
    run_edit(pipe, frames, PLAN, BoxSegmenter(), cfg, progress=False, recorder=rec)
    ts = sampling_timesteps(pipe, cfg.num_inference_steps)
    window = injection_window(ts, cfg.injection_max_timestep, cfg.injection_min_timestep)
    run_ts = [t for s in cfg.strengths for t in ts[start_index(len(ts), s):].tolist()]
    assert sorted(step for step, _ in rec.anchor_mass) == list(range(len(run_ts)))
    assert [rec.anchor_mass[(s, 0)].sum().item() > 0 for s in range(len(run_ts))] == [t in window for t in run_ts]
