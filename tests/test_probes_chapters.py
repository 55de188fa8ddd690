"""The probes and figures behind chapters 01 (reconstruction error per starting timestep) and 02 (word attention
on the source, its share inside an object's mask), on tiny random-weight pipelines and an oracle model."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_pipeline
from dynvfx import probes
from dynvfx.pipeline import encode_text, encode_video, video_spec


@pytest.fixture(scope="module")
def small_pipe():
    return tiny_pipeline(frames=9, height=32, width=32)


@pytest.fixture(scope="module")
def small_inversion(small_pipe):
    from dynvfx.inversion import ddim_invert

    frames = torch.rand(9, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return ddim_invert(small_pipe, encode_video(small_pipe, frames), "", 5, 5, progress=False)


def _oracle(pipe, x0: torch.Tensor, offset: float = 0.0):
    """A predict_v that knows the clean latent: the exact v of ``x0 + offset`` at every (x_t, t)."""
    alphas = pipe.scheduler.alphas_cumprod.float()

    def predict_v(_pipe, latents, text, timestep, rope):
        a = alphas[int(timestep)]
        return (a.sqrt() * latents.float() - (x0 + offset)) / (1 - a).sqrt()

    return predict_v


@pytest.mark.parametrize("noise", ["inverted", "random"])
def test_reconstruction_error_is_zero_for_an_oracle_and_sees_a_wrong_one(small_pipe, small_inversion, monkeypatch,
                                                                          noise):
    import dynvfx.inversion
    import dynvfx.sampling

    x0 = small_inversion.x_orig
    for t in (999, int(small_inversion.timesteps[2])):
        monkeypatch.setattr(dynvfx.sampling, "predict_v", _oracle(small_pipe, x0))
        assert probes.reconstruction_error(small_pipe, small_inversion, t, noise) < 1e-4
        monkeypatch.setattr(dynvfx.sampling, "predict_v", _oracle(small_pipe, x0, offset=0.5))
        assert probes.reconstruction_error(small_pipe, small_inversion, t, noise) == pytest.approx(0.5, abs=1e-3)


def test_reconstruction_error_samples_from_the_kept_latent_down_the_rest_of_the_schedule(small_pipe, small_inversion):
    from dynvfx.sampling import denoise, sampling_timesteps

    inv, i = small_inversion, 2
    sampling_timesteps(small_pipe, len(inv.timesteps))
    x = denoise(small_pipe, inv.latents[i], inv.timesteps[i:], encode_text(small_pipe, [""]), progress=False)
    expected = (x - inv.x_orig).pow(2).mean().sqrt().item()
    assert probes.reconstruction_error(small_pipe, inv, int(inv.timesteps[i])) == pytest.approx(expected, rel=1e-5)
    assert probes.reconstruction_error(small_pipe, inv, int(inv.timesteps[i]), "random") != pytest.approx(expected)
    errors = probes.reconstruction_errors(small_pipe, inv)
    assert [t for t, _ in errors] == inv.timesteps.tolist() and errors[i][1] == pytest.approx(expected, rel=1e-5)
    assert probes.reconstruction_errors(small_pipe, inv, starts=[inv.timesteps[i]]) == [errors[i]]
    with pytest.raises(KeyError):
        probes.reconstruction_error(small_pipe, inv, 998)
    with pytest.raises(ValueError):
        probes.reconstruction_error(small_pipe, inv, 999, noise="forward")


def test_reconstruction_samples_with_the_prompt_and_guidance_asked_for(small_pipe, small_inversion):
    from dynvfx.sampling import denoise, sampling_timesteps

    inv, i = small_inversion, 2
    sampling_timesteps(small_pipe, len(inv.timesteps))
    x = denoise(small_pipe, inv.latents[i], inv.timesteps[i:], encode_text(small_pipe, ["a red ball"]),
                encode_text(small_pipe, [""]), 3.0, progress=False)
    t = int(inv.timesteps[i])
    got = probes.reconstruct_from(small_pipe, inv, t, prompt="a red ball", guidance=3.0)
    assert torch.allclose(got, x.cpu(), atol=1e-5)
    plain = probes.reconstruct_from(small_pipe, inv, t)  # the inversion's own prompt, no guidance
    assert (got - plain).abs().max() > 1e-3
    assert probes.reconstruction_error(small_pipe, inv, t, prompt="a red ball", guidance=3.0) == \
        pytest.approx((got - inv.x_orig).pow(2).mean().sqrt().item(), rel=1e-5)


def test_recorded_attention_on_the_inversion_is_the_softmax_of_the_captured_keys(small_pipe, small_inversion):
    spec, inv, caption = video_spec(small_pipe), small_inversion, "a red ball moves right"
    ids = probes.word_token_ids(small_pipe, caption, "red") + probes.word_token_ids(small_pipe, caption, "right")
    rec = probes.record_on_inversion(small_pipe, inv, caption, ids, record_layers=[1])
    assert set(rec.text_to_video) == {(i, 1) for i in range(len(inv.timesteps))}
    i, L = 3, spec.max_text_tokens
    q, k = probes.capture_qk(small_pipe, inv.latents[i], encode_text(small_pipe, [caption]),
                             int(inv.timesteps[i]), layers=[1])[1]
    p = torch.softmax(q[0, :, L:] @ k[0].transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)  # [heads, N, L + N]
    explicit = p[:, :, ids[:1]].sum(-1).mean(0).view(*spec.token_grid)
    assert torch.allclose(probes.word_attention(rec, spec, step=i, tokens=ids[:1]), explicit, atol=1e-5)
    one = probes.only_tokens(rec, ids[1:])
    assert torch.equal(probes.word_attention(one, spec), probes.word_attention(rec, spec, tokens=ids[1:]))
    assert not torch.allclose(probes.word_attention(one, spec), probes.word_attention(rec, spec, tokens=ids[:1]))
    few = probes.record_on_inversion(small_pipe, inv, caption, ids, record_steps=[0, 4], record_layers=[0])
    assert set(few.text_to_video) == {(0, 0), (4, 0)}


def test_token_coverage_and_share_inside():
    from dynvfx.pipeline import VideoSpec

    spec = VideoSpec(num_frames=9, height=16, width=16, temporal_compression=4, spatial_compression=4,
                     patch_size=2, max_text_tokens=4)  # token grid (3, 2, 2), each token 8 x 8 pixels
    mask = torch.zeros(9, 1, 16, 16, dtype=torch.bool)
    mask[:, :, :8, :8] = True  # exactly the top-left token of every latent frame
    mask[5:, :, 8:12, 8:16] = True  # half of the bottom-right token of the last latent frame
    cover = probes.token_coverage(mask, spec)
    assert cover.shape == (3, 2, 2) and torch.allclose(cover[:, 0, 0], torch.ones(3))
    assert cover[2, 1, 1] == pytest.approx(0.5) and cover[1, 1, 1] == 0 and cover[:, 0, 1].sum() == 0
    assert probes.share_inside(torch.ones(3, 2, 2), cover) == pytest.approx(cover.mean().item())
    inside = torch.zeros(3, 2, 2)
    inside[:, 0, 0] = 1.0
    assert probes.share_inside(inside, cover) == pytest.approx(1.0)
    assert probes.share_inside(1 - inside, cover) == pytest.approx(0.5 / 9)


def test_word_maps_draws_one_row_per_word_with_colour_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dynvfx import figures
    from dynvfx.pipeline import VideoSpec

    spec = VideoSpec(num_frames=9, height=16, width=16, temporal_compression=4, spatial_compression=4,
                     patch_size=2, max_text_tokens=4)
    maps = {"red": torch.rand(3, 2, 2), "right": torch.rand(3, 2, 2)}
    fig = figures.word_maps(maps, spec, torch.rand(9, 1, 16, 16) > 0.5, frames=[0, 4, 8], notes={"red": "40 %"})
    assert len(fig.axes) == 2 * 3 + 2  # the panels and one colour bar per row
    assert "40 %" in fig.axes[0].get_ylabel() and fig.axes[0].collections  # the mask's outline
    plt.close(fig)


def test_toy_truth_gives_the_renderers_caption_words_and_mask(tmp_path):
    import shutil

    from dynvfx import notebook
    from dynvfx.paths import EXAMPLES_DIR
    from dynvfx.toy.examples import example_frames
    from dynvfx.toy.world import COLOURS

    caption, words, mask = notebook.toy_truth()
    assert caption == "a blue ball moves down on a gray background" and words == ["blue", "ball", "down", "gray"]
    frames = example_frames("blue_ball_down")
    assert mask.shape == (frames.shape[0], 1, *frames.shape[2:]) and mask.any(dim=(1, 2, 3)).all()
    inside = frames.permute(0, 2, 3, 1)[mask[:, 0]]  # [pixels, 3]: the object's colour where the mask says
    exact = ((inside - torch.tensor(COLOURS["blue"])).abs().amax(1) < 0.02).float().mean()
    assert exact > 0.7  # the rest are edge pixels, more than half covered by the ball
    assert notebook.toy_truth(EXAMPLES_DIR / "red_ball_bounce.mp4")[1] == ["red", "ball", "bounces", "gray"]
    shutil.copy(EXAMPLES_DIR / "red_ball_bounce.mp4", tmp_path / "clip.mp4")  # a video with no scene beside it
    assert notebook.toy_truth(tmp_path / "clip.mp4") is None
