"""The toy text-to-video model: diffusers' own CogVideoX classes at a size that trains on a CPU.

Components (all stock classes, only small configs):
- ``AutoencoderKLCogVideoX``: 3 blocks, 4x spatial and 4x temporal compression, 8 latent channels.
- ``CogVideoXTransformer3DModel``: 6 layers, 4 heads x 32, patch 2, RoPE on (like CogVideoX-5B).
- ``T5EncoderModel``: 2 layers, width 128, with a word-level T5 tokenizer (``dynvfx.toy.text``).
- ``CogVideoXDDIMScheduler``: v-prediction, zero terminal SNR, trailing timesteps (like CogVideoX-5B).

A 17-frame 48x48 video becomes latents ``[5, 8, 12, 12]`` and 5 x 6 x 6 = 180 video tokens (+ 24 text tokens).
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
)
from transformers import T5Config, T5EncoderModel

from dynvfx.toy import world
from dynvfx.toy.text import build_tokenizer

MAX_TEXT_TOKENS = 24
TEXT_WIDTH = 128
LATENT_CHANNELS = 8

VAE_CONFIG = dict(
    down_block_types=("CogVideoXDownBlock3D",) * 3,
    up_block_types=("CogVideoXUpBlock3D",) * 3,
    block_out_channels=(16, 32, 32),
    latent_channels=LATENT_CHANNELS,
    layers_per_block=1,
    norm_num_groups=8,
    temporal_compression_ratio=4,
    sample_height=world.SIZE,
    sample_width=world.SIZE,
)

TRANSFORMER_CONFIG = dict(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=LATENT_CHANNELS,
    out_channels=LATENT_CHANNELS,
    time_embed_dim=128,
    text_embed_dim=TEXT_WIDTH,
    num_layers=6,
    sample_width=world.SIZE // 4,
    sample_height=world.SIZE // 4,
    sample_frames=world.FRAMES,
    patch_size=2,
    temporal_compression_ratio=4,
    max_text_seq_length=MAX_TEXT_TOKENS,
    use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=False,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    set_alpha_to_one=True,
    snr_shift_scale=1.0,
    timestep_spacing="trailing",
    clip_sample=False,
    steps_offset=0,
)


def build_vae() -> AutoencoderKLCogVideoX:
    return AutoencoderKLCogVideoX(**VAE_CONFIG)


def build_text_encoder(vocab_size: int) -> T5EncoderModel:
    cfg = T5Config(
        vocab_size=vocab_size, d_model=TEXT_WIDTH, d_kv=32, d_ff=256, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=24, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
    )
    return T5EncoderModel(cfg)


def build_transformer() -> CogVideoXTransformer3DModel:
    """A fresh transformer, with the adaptive-norm modulation and the output head zero-initialised
    (DiT's adaLN-Zero: every block starts as the identity, which speeds up early training)."""
    model = CogVideoXTransformer3DModel(**TRANSFORMER_CONFIG)
    for name, module in model.named_modules():
        if name.endswith(("norm1.linear", "norm2.linear", "norm_out.linear")) or name == "proj_out":
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return model


def build_pipeline(vae: AutoencoderKLCogVideoX | None = None) -> CogVideoXPipeline:
    """An untrained toy pipeline (or one around a trained ``vae``)."""
    tokenizer = build_tokenizer(MAX_TEXT_TOKENS)
    return CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=build_text_encoder(len(tokenizer)),
        vae=vae or build_vae(),
        transformer=build_transformer(),
        scheduler=CogVideoXDDIMScheduler(**SCHEDULER_CONFIG),
    )
