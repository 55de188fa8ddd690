"""Shared fixtures: tiny random CogVideoX pipelines (real diffusers classes) and the shipped toy model."""

from __future__ import annotations

import os

import pytest
import torch

from dynvfx.paths import REPO_ROOT, SHARED_VIDEOS  # noqa: F401 - SHARED_VIDEOS is imported from here by tests

torch.set_num_threads(int(os.environ.get("DYNVFX_TEST_THREADS", "2")))

ROOT = REPO_ROOT  # the repository root and the shared test videos beside it, as dynvfx.paths computes them


def tiny_pipeline(rope: bool = True, frames: int = 49, height: int = 64, width: int = 96,
                  dtype: torch.dtype = torch.float32, seed: int = 0):
    """A random-weight ``CogVideoXPipeline`` with CogVideoX-5B's structure, shrunk: RoPE, patch 2, 4x temporal
    and 8x spatial compression (4 autoencoder blocks), ``frames`` x ``height`` x ``width`` native size."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    from dynvfx.toy.model import SCHEDULER_CONFIG
    from dynvfx.toy.text import build_tokenizer

    torch.manual_seed(seed)
    tok = build_tokenizer(16)
    text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                                   is_encoder_decoder=False, use_cache=False))
    vae = AutoencoderKLCogVideoX(down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2,
                                 temporal_compression_ratio=4, sample_height=height, sample_width=width)
    tr = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
                                     time_embed_dim=16, text_embed_dim=32, num_layers=2, sample_width=width // 8,
                                     sample_height=height // 8, sample_frames=frames, patch_size=2,
                                     temporal_compression_ratio=4, max_text_seq_length=16,
                                     use_rotary_positional_embeddings=rope)
    pipe = CogVideoXPipeline(tokenizer=tok, text_encoder=text, vae=vae, transformer=tr,
                             scheduler=CogVideoXDDIMScheduler(**SCHEDULER_CONFIG))
    for m in (text, vae, tr):
        m.eval()
    pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_pipe():
    return tiny_pipeline()


@pytest.fixture(scope="session")
def toy_pipe():
    from dynvfx.paths import TOY_MODEL_DIR
    from dynvfx.pipeline import load_pipeline

    if not (TOY_MODEL_DIR / "model_index.json").exists():
        pytest.fail("the toy model is not in data/models/toy")
    return load_pipeline("toy")


class BoxSegmenter:
    """A test double: 'finds' every phrase in a fixed box of every frame (or nowhere, with ``empty``)."""

    name = "box"

    def __init__(self, box=(0.25, 0.25, 0.6, 0.6), empty: bool = False):
        self.box, self.empty = box, empty

    def segment(self, frames, phrases):
        from dynvfx.segmentation.base import Segmentation

        f, _, h, w = frames.shape
        m = torch.zeros(len(phrases), f, 1, h, w, dtype=torch.bool)
        if not self.empty:
            x0, y0, x1, y1 = self.box
            m[..., int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)] = True
        return Segmentation(list(phrases), m, m.flatten(2).any(-1).float())


@pytest.fixture(autouse=True)
def _private_plan_cache(tmp_path, monkeypatch):
    """Each test gets its own plan cache, so a plan cached by an earlier run or test is never reused."""
    monkeypatch.setenv("DYNVFX_CACHE_DIR", str(tmp_path / "plan-cache"))
